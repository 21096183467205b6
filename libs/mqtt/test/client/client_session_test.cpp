// The client's use of the session: resume (resend with DUP, PUBREL), lost messages, MQTT 5
// server limits, topic aliases and server DISCONNECT.
#include "client_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

std::string version_name(const ::testing::TestParamInfo<Version>& p) {
  return p.param == Version::V5 ? "V5" : "V311";
}

Disconnect disconnect_with(ReasonCode rc) {
  Disconnect d;
  d.reason_code = rc;
  return d;
}

class ClientSessionTest : public ::testing::TestWithParam<Version>, public ClientTestBase {
 public:
  ClientSessionTest() : ClientTestBase(GetParam()) {}

  // Leaves a QoS 1 publish awaiting PUBACK (id1) and a QoS 2 publish awaiting PUBCOMP (id2),
  // then the connection drops.
  void leave_unacked_then_drop() {
    ConnAck first;
    connect_ok(first, options(false));
    broker.expect(PacketType::Publish);  // QoS 1, never acknowledged
    broker.expect(PacketType::Publish).reply_with([](const Packet& p) {
      return std::vector<Packet>{ack<PubRec>(std::get<Publish>(p).packet_id)};
    });
    broker.expect(PacketType::PubRel);  // never completed
    auto a = client.publish(make_publish("r/1", "one", QoS::AtLeastOnce), 1s);
    auto b = client.publish(make_publish("r/2", "two", QoS::ExactlyOnce), 1s);
    ASSERT_TRUE(a.has_value());
    ASSERT_TRUE(b.has_value());
    id1 = *a;
    id2 = *b;
    ASSERT_TRUE(client.process_loop(1s).has_value());  // PUBREC → PUBREL
    ASSERT_TRUE(broker.verify());
    broker.close();
    auto r = client.process_loop(1s);
    ASSERT_FALSE(r.has_value());
    ASSERT_EQ(r.error(), Errc::TransportClosed);
    events.clear();
  }

  std::uint16_t id1 = 0;
  std::uint16_t id2 = 0;
};

INSTANTIATE_TEST_SUITE_P(BothVersions, ClientSessionTest,
                         ::testing::Values(Version::V311, Version::V5), version_name);

TEST_P(ClientSessionTest, ResumeResendsPublishWithDupAndPubRel) {
  leave_unacked_then_drop();
  testing::MemoryTransport net2;
  net2.attach_clock(&clock);
  testing::ScriptedBroker broker2(net2, version);
  ConnAck resumed;
  resumed.session_present = true;
  broker2.expect(PacketType::Connect).reply_with(resumed);
  broker2
      .expect_matching("PUBLISH r/1 resent with DUP",
                       [&](const Packet& p) {
                         const auto* pub = std::get_if<Publish>(&p);
                         return pub != nullptr && pub->dup && pub->packet_id == id1 &&
                                pub->topic == "r/1" && as_string(pub->payload) == "one" &&
                                pub->qos == QoS::AtLeastOnce;
                       })
      .reply_with(ack<PubAck>(id1));
  broker2.expect(ack<PubRel>(id2)).reply_with(ack<PubComp>(id2));
  ASSERT_TRUE(client.set_transport(net2).has_value());
  auto r = client.connect(options(false), 5s);
  ASSERT_TRUE(r.has_value()) << to_string(r.error());
  EXPECT_TRUE(r->session_present);
  EXPECT_TRUE(broker2.verify());
  for (int i = 0; i < 3 && count(EventType::PublishCompleted) < 2; ++i) {
    ASSERT_TRUE(client.process_loop(1s).has_value());
  }
  ASSERT_EQ(count(EventType::PublishCompleted), 2u);
  EXPECT_EQ(count(EventType::MessageLost), 0u);
  EXPECT_EQ(session.records_in_use(), 0u);
}

// Issue 11: an application that went on after a failed `Session::restore` connected, and its
// publishes took the stored packet ids and replaced the stored messages. The session now refuses
// to connect, so the client does too, before anything is sent or stored.
TEST_P(ClientSessionTest, AFailedRestoreRefusesToConnectAndKeepsTheStore) {
  alignas(8) std::array<std::byte, 8 * 128> arena{};
  std::array<std::uint16_t, 2> ids{};
  MemorySessionStore store(arena, 128, ids);
  for (std::uint16_t id = 1; id <= 3; ++id) {
    Publish p = make_publish("r/1", "stored", QoS::AtLeastOnce);
    p.packet_id = id;
    ASSERT_TRUE(store.save_publish(id, p, version));
  }
  const auto before = arena;
  std::array<OutgoingRecord, 2> two{};
  std::array<char, 32> id_chars{};
  Session small(SessionStorage{two, {}, {}, {}, id_chars}, &store);
  auto restored = small.restore();  // a careless application ignores this
  ASSERT_FALSE(restored.has_value());
  EXPECT_EQ(restored.error(), Errc::SessionStateFull);
  std::array<std::byte, 512> rx2{};
  std::array<std::byte, 512> tx2{};
  Client careless(net, clock, small, rx2, tx2);
  auto r = careless.connect(options(false), 5s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::SessionStateFull);
  EXPECT_TRUE(broker.received().empty()) << "no CONNECT was sent";
  EXPECT_FALSE(careless.publish(make_publish("r/2", "new", QoS::AtLeastOnce), 1s).has_value());
  EXPECT_EQ(arena, before) << "the stored messages are as they were";
}

TEST_P(ClientSessionTest, SessionNotPresentReportsEveryLostMessage) {
  leave_unacked_then_drop();
  testing::MemoryTransport net2;
  net2.attach_clock(&clock);
  testing::ScriptedBroker broker2(net2, version);
  broker2.expect(PacketType::Connect).reply_with(ConnAck{});  // session_present = 0
  ASSERT_TRUE(client.set_transport(net2).has_value());
  auto r = client.connect(options(false), 5s);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(count(EventType::MessageLost), 2u);
  EXPECT_EQ(events[0].packet_id, id1);
  EXPECT_EQ(events[0].topic, "r/1");
  EXPECT_EQ(events[1].packet_id, id2);
  EXPECT_EQ(events[1].topic, "r/2");
  // r/1 (QoS 1) is simply lost; r/2 (QoS 2, PUBREC received) may have been delivered already.
  EXPECT_FALSE(events[0].pubrec_received);
  EXPECT_TRUE(events[1].pubrec_received);
  EXPECT_EQ(session.records_in_use(), 0u);
  EXPECT_TRUE(broker2.verify());  // nothing resent
}

TEST_P(ClientSessionTest, SetTransportIsRefusedWhileConnected) {
  connect_ok();
  testing::MemoryTransport other;
  EXPECT_EQ(client.set_transport(other).error(), Errc::AlreadyConnected);
}

TEST_P(ClientSessionTest, PacketsBehindTheConnAckAreHandledByTheNextLoopWithoutARead) {
  ConnAck ca;
  broker.expect(PacketType::Connect)
      .reply_with(ca)
      .reply_with(make_publish("early", "bird", QoS::AtMostOnce));
  auto r = client.connect(options(), 1s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(count(EventType::MessageReceived), 0u);  // not before connect returned
  const auto recvs = client.recv_calls();
  ASSERT_TRUE(client.process_loop(0ms).has_value());
  EXPECT_EQ(client.recv_calls(), recvs);
  ASSERT_EQ(count(EventType::MessageReceived), 1u);
  EXPECT_EQ(events[0].topic, "early");
}

TEST_P(ClientSessionTest, ConnectAgainAfterATimedOutConnect) {
  broker.expect(PacketType::Connect);  // no CONNACK
  ASSERT_EQ(client.connect(options(), 1s).error(), Errc::Timeout);
  testing::MemoryTransport net2;
  net2.attach_clock(&clock);
  testing::ScriptedBroker broker2(net2, version);
  broker2.expect(PacketType::Connect).reply_with(ConnAck{});
  ASSERT_TRUE(client.set_transport(net2).has_value());
  auto r = client.connect(options(), 1s);
  ASSERT_TRUE(r.has_value()) << to_string(r.error());
  EXPECT_TRUE(client.connected());
}

TEST_P(ClientSessionTest, DisconnectEndingTheSessionReportsLostMessages) {
  connect_ok();  // clean start: the session ends with the connection
  broker.expect(PacketType::Publish);
  broker.expect(PacketType::Disconnect);
  auto id = client.publish(make_publish("gone", "x", QoS::AtLeastOnce), 1s);
  ASSERT_TRUE(id.has_value());
  ASSERT_TRUE(client.disconnect().has_value());
  ASSERT_EQ(count(EventType::MessageLost), 1u);
  EXPECT_EQ(events.back().packet_id, *id);
  EXPECT_EQ(session.records_in_use(), 0u);
}

// --- MQTT 5 only ---------------------------------------------------------------------------------

class ClientV5Test : public ::testing::Test, public ClientTestBase {
 public:
  ClientV5Test() : ClientTestBase(Version::V5) {}
};

TEST_F(ClientV5Test, PubRecWithErrorCodeEndsTheQoS2Flow) {
  connect_ok();
  broker.expect(PacketType::Publish).reply_with([](const Packet& p) {
    return std::vector<Packet>{
        ack<PubRec>(std::get<Publish>(p).packet_id, ReasonCode::QuotaExceeded)};
  });
  auto id = client.publish(make_publish("q/2", "x", QoS::ExactlyOnce), 1s);
  ASSERT_TRUE(id.has_value());
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(count(EventType::PublishCompleted), 1u);
  EXPECT_EQ(events.back().packet_id, *id);
  EXPECT_EQ(events.back().reason_code, ReasonCode::QuotaExceeded);
  EXPECT_EQ(session.records_in_use(), 0u);
  // No PUBREL follows a failing PUBREC (MQTT 5 spec 4.3.3): the script ends, any packet would fail.
  EXPECT_TRUE(broker.verify());
  EXPECT_EQ(broker.mismatches(), 0u);
}

TEST_F(ClientV5Test, ServerDisconnectIsSurfacedWithReasonString) {
  connect_ok();
  Disconnect d = disconnect_with(ReasonCode::ServerShuttingDown);
  d.properties.set_reason_string("maintenance");
  broker.send(d);
  auto r = client.process_loop(1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::ServerDisconnected);
  EXPECT_EQ(client.server_reason(), ReasonCode::ServerShuttingDown);
  EXPECT_FALSE(client.connected());
  EXPECT_TRUE(net.closed_by_client());
  ASSERT_EQ(count(EventType::ServerDisconnected), 1u);
  EXPECT_EQ(events[0].reason_code, ReasonCode::ServerShuttingDown);
  EXPECT_EQ(events[0].reason_string, "maintenance");
  EXPECT_EQ(count(EventType::ConnectionClosed), 0u);
}

TEST_F(ClientV5Test, OutboundTopicAliasIsAssignedAndReused) {
  ConnAck ca;
  ca.properties.set_topic_alias_maximum(5);
  connect_ok(ca);
  broker.expect_matching("PUBLISH with topic and alias", [](const Packet& p) {
    const auto* pub = std::get_if<Publish>(&p);
    return pub != nullptr && pub->topic == "alias/topic" && pub->properties.topic_alias().has_value();
  });
  broker.expect_matching("PUBLISH with alias only", [](const Packet& p) {
    const auto* pub = std::get_if<Publish>(&p);
    return pub != nullptr && pub->topic.empty() && pub->properties.topic_alias().has_value();
  });
  ASSERT_TRUE(client.publish(make_publish("alias/topic", "1", QoS::AtMostOnce), 1s).has_value());
  ASSERT_TRUE(client.publish(make_publish("alias/topic", "2", QoS::AtMostOnce), 1s).has_value());
  EXPECT_TRUE(broker.verify());
  auto sent = sent_packets();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(std::get<Publish>(sent[1]).properties.topic_alias(),
            std::get<Publish>(sent[2]).properties.topic_alias());
}

TEST_F(ClientV5Test, InboundTopicAliasIsResolved) {
  broker
      .expect_matching("CONNECT announcing Topic Alias Maximum",
                       [&](const Packet& p) {
                         const auto* c = std::get_if<Connect>(&p);
                         return c != nullptr && c->properties.topic_alias_maximum() == 4;
                       })
      .reply_with(ConnAck{});
  ASSERT_TRUE(client.connect(options(), 1s).has_value());
  Publish first = make_publish("in/topic", "a", QoS::AtMostOnce);
  first.properties.set_topic_alias(2);
  Publish second = make_publish("", "b", QoS::AtMostOnce);
  second.properties.set_topic_alias(2);
  broker.send(first);
  broker.send(second);
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(count(EventType::MessageReceived), 2u);
  EXPECT_EQ(events[0].topic, "in/topic");
  EXPECT_EQ(events[1].topic, "in/topic");
  EXPECT_EQ(events[1].payload, "b");
}

TEST_F(ClientV5Test, UnknownInboundTopicAliasClosesWith0x94) {
  connect_ok();
  broker.expect(disconnect_with(ReasonCode::TopicAliasInvalid));
  Publish p = make_publish("", "b", QoS::AtMostOnce);
  p.properties.set_topic_alias(3);
  broker.send(p);
  auto r = client.process_loop(1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::TopicAliasInvalid);
  EXPECT_TRUE(broker.verify());
}

TEST_F(ClientV5Test, ServerLimitsApply) {
  ConnAck ca;
  ca.properties.set_receive_maximum(1);
  ca.properties.set_server_keep_alive(5);
  ca.properties.set_maximum_qos(QoS::AtLeastOnce);
  connect_ok(ca);
  EXPECT_EQ(client.keep_alive_seconds(), 5);
  broker.expect(PacketType::Publish);
  ASSERT_TRUE(client.publish(make_publish("a", "1", QoS::AtLeastOnce), 1s).has_value());
  // Receive Maximum 1 reached: refused locally, not fatal.
  EXPECT_EQ(client.publish(make_publish("a", "2", QoS::AtLeastOnce), 1s).error(),
            Errc::ReceiveMaximumExceeded);
  EXPECT_EQ(client.publish(make_publish("a", "3", QoS::ExactlyOnce), 1s).error(),
            Errc::QoSNotSupported);
  EXPECT_TRUE(client.connected());
}

// A resumed session resends no more PUBLISH packets than the new connection's Receive Maximum
// [MQTT-4.9.0-2]; the held-back one goes when the PUBACK frees the quota, before any new publish.
TEST_F(ClientV5Test, ResendsWaitForTheNewReceiveMaximum) {
  connect_ok({}, options(false));
  broker.expect(PacketType::Publish);
  broker.expect(PacketType::Publish);
  auto a = client.publish(make_publish("r/1", "one", QoS::AtLeastOnce), 1s);
  auto b = client.publish(make_publish("r/1", "two", QoS::AtLeastOnce), 1s);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  ASSERT_TRUE(broker.verify());
  broker.close();
  ASSERT_FALSE(client.process_loop(1s).has_value());
  events.clear();

  testing::MemoryTransport net2;
  net2.attach_clock(&clock);
  testing::ScriptedBroker broker2(net2, version);
  ConnAck resumed;
  resumed.session_present = true;
  resumed.properties.set_receive_maximum(1);
  broker2.expect(PacketType::Connect).reply_with(resumed);
  broker2.expect_matching("PUBLISH one resent", [&](const Packet& p) {
    const auto* pub = std::get_if<Publish>(&p);
    return pub != nullptr && pub->dup && pub->packet_id == *a;
  });
  broker2
      .expect_matching("PUBLISH two resent only after one's PUBACK",
                       [&](const Packet& p) {
                         const auto* pub = std::get_if<Publish>(&p);
                         return pub != nullptr && pub->dup && pub->packet_id == *b &&
                                count(EventType::PublishCompleted) == 1;
                       })
      .reply_with(ack<PubAck>(*b));
  ASSERT_TRUE(client.set_transport(net2).has_value());
  ASSERT_TRUE(client.connect(options(false), 5s).has_value());
  EXPECT_EQ(client.publish(make_publish("r/1", "three", QoS::AtLeastOnce), 1s).error(),
            Errc::ReceiveMaximumExceeded)
      << "a new publish must not overtake the held-back resend";
  broker2.send(ack<PubAck>(*a));
  for (int i = 0; i < 3 && count(EventType::PublishCompleted) < 2; ++i) {
    ASSERT_TRUE(client.process_loop(1s).has_value());
  }
  EXPECT_EQ(count(EventType::PublishCompleted), 2u);
  EXPECT_TRUE(broker2.verify());
  EXPECT_EQ(broker2.mismatches(), 0u);
}

TEST_F(ClientV5Test, DisconnectCarriesReasonAndProperties) {
  ConnectOptions o = options(false);
  connect_ok({}, o);
  Disconnect expected = disconnect_with(ReasonCode::DisconnectWithWillMessage);
  expected.properties.set_session_expiry_interval(60);
  broker.expect(expected);
  Properties props;
  props.set_session_expiry_interval(60);
  ASSERT_TRUE(client.disconnect(ReasonCode::DisconnectWithWillMessage, props).has_value());
  EXPECT_TRUE(broker.verify());
}

TEST_F(ClientV5Test, AdvertisedMaximumPacketSizeNeverExceedsTheBuffer) {
  broker
      .expect_matching("CONNECT with Maximum Packet Size = buffer",
                       [&](const Packet& p) {
                         const auto* c = std::get_if<Connect>(&p);
                         return c != nullptr && c->properties.maximum_packet_size() == rx.size();
                       })
      .reply_with(ConnAck{});
  ConnectOptions o = options();
  o.properties.set_maximum_packet_size(1'000'000);  // more than we can take: lowered
  ASSERT_TRUE(client.connect(o, 1s).has_value());
  EXPECT_TRUE(broker.verify());
}

}  // namespace
}  // namespace edgekit::mqtt::test
