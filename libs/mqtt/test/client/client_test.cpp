// The blocking client against a scripted in-memory broker, in simulated time, for both protocol
// versions.
#include <algorithm>

#include "client_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using transport::IoStatus;

Disconnect disconnect_with(ReasonCode rc) {
  Disconnect d;
  d.reason_code = rc;
  return d;
}

class ClientTest : public ::testing::TestWithParam<Version>, public ClientTestBase {
 public:
  ClientTest() : ClientTestBase(GetParam()) {}
};

std::string version_name(const ::testing::TestParamInfo<Version>& p) {
  return p.param == Version::V5 ? "V5" : "V311";
}

INSTANTIATE_TEST_SUITE_P(BothVersions, ClientTest, ::testing::Values(Version::V311, Version::V5),
                         version_name);

// --- connect -------------------------------------------------------------------------------------

TEST_P(ClientTest, ConnectSendsOptionsAndReturnsConnAck) {
  broker
      .expect_matching("CONNECT as configured",
                       [&](const Packet& p) {
                         const auto* c = std::get_if<Connect>(&p);
                         if (c == nullptr) return false;
                         bool ok = c->client_id == "dev-1" && c->keep_alive == 60 &&
                                   c->clean_start &&
                                   c->username == std::optional<std::string_view>("u");
                         if (version == Version::V5) {
                           // The receive buffer's size is advertised [MQTT-3.1.2-24].
                           ok = ok && c->properties.maximum_packet_size() == rx.size();
                         }
                         return ok;
                       })
      .reply_with(ConnAck{});
  auto opts = options();
  opts.username = "u";
  opts.password = as_bytes("p");
  auto r = client.connect(opts, 5s);
  ASSERT_TRUE(r.has_value()) << to_string(r.error());
  EXPECT_FALSE(r->session_present);
  EXPECT_EQ(r->reason_code, ReasonCode::Success);
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(client.keep_alive_seconds(), 60);
  EXPECT_TRUE(broker.verify());
}

TEST_P(ClientTest, ConnectWithWillMessage) {
  broker
      .expect_matching("CONNECT with will",
                       [](const Packet& p) {
                         const auto* c = std::get_if<Connect>(&p);
                         return c != nullptr && c->will && c->will->topic == "dev/status" &&
                                as_string(c->will->payload) == "gone" &&
                                c->will->qos == QoS::AtLeastOnce && c->will->retain;
                       })
      .reply_with(ConnAck{});
  auto opts = options();
  Will w;
  w.topic = "dev/status";
  w.payload = as_bytes("gone");
  w.qos = QoS::AtLeastOnce;
  w.retain = true;
  opts.will = w;
  ASSERT_TRUE(client.connect(opts, 5s).has_value());
}

TEST_P(ClientTest, ConnectRefusedReportsEachReasonCode) {
  std::vector<ReasonCode> reasons{
      ReasonCode::UnsupportedProtocolVersion, ReasonCode::ClientIdentifierNotValid,
      ReasonCode::ServerUnavailable, ReasonCode::BadUserNameOrPassword, ReasonCode::NotAuthorized};
  if (version == Version::V5) {
    reasons.insert(reasons.end(), {ReasonCode::UnspecifiedError, ReasonCode::Banned,
                                   ReasonCode::ServerBusy, ReasonCode::QuotaExceeded});
  }
  for (ReasonCode rc : reasons) {
    testing::MemoryTransport t;
    testing::ScriptedBroker b(t, version);
    Client c(t, clock, session, std::span<std::byte>(rx), tx);
    ConnAck refusal;
    refusal.reason_code = rc;
    b.expect(PacketType::Connect).reply_with(refusal);
    auto r = c.connect(options(), 5s);
    ASSERT_FALSE(r.has_value()) << to_string(rc);
    EXPECT_EQ(r.error(), Errc::ConnectionRefused) << to_string(rc);
    EXPECT_EQ(c.server_reason(), rc);
    EXPECT_FALSE(c.connected());
    EXPECT_TRUE(t.closed_by_client());
    // Poisoned: nothing but connect works.
    EXPECT_EQ(c.publish(make_publish("t", "x", QoS::AtMostOnce), 1s).error(), Errc::NotConnected);
  }
}

TEST_P(ClientTest, ConnectTimesOutWithoutConnAck) {
  broker.expect(PacketType::Connect);
  auto r = client.connect(options(), 3s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::Timeout);
  EXPECT_TRUE(net.closed_by_client());
  EXPECT_GE(clock.now().since_origin, 3s);
}

TEST_P(ClientTest, FirstPacketOtherThanConnAckIsAProtocolError) {
  broker.expect(PacketType::Connect).reply_with(PingResp{});
  if (version == Version::V5) broker.expect(disconnect_with(ReasonCode::ProtocolError));
  auto r = client.connect(options(), 3s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::ProtocolError);
  auto sent = sent_packets();
  if (version == Version::V5) {
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(std::get<Disconnect>(sent[1]).reason_code, ReasonCode::ProtocolError);
  } else {
    EXPECT_EQ(sent.size(), 1u);  // 3.1.1 has no way to say why: just close
  }
}

TEST_P(ClientTest, ConnectTwiceIsAlreadyConnected) {
  connect_ok();
  EXPECT_EQ(client.connect(options(), 1s).error(), Errc::AlreadyConnected);
}

// --- publish -------------------------------------------------------------------------------------

TEST_P(ClientTest, PublishQoS0IsOneWritevWithThePayloadNotCopied) {
  connect_ok();
  const std::string payload(300, 'x');
  broker.expect(make_publish("a/b", payload, QoS::AtMostOnce));
  spy.writevs.clear();
  const auto before = net.stats();
  Publish p = make_publish("a/b", payload, QoS::AtMostOnce);
  auto id = client.publish(p, 1s);
  ASSERT_TRUE(id.has_value()) << to_string(id.error());
  EXPECT_EQ(*id, 0);
  EXPECT_EQ(net.stats().write_calls() - before.write_calls(), 1u);
  ASSERT_EQ(spy.writevs.size(), 1u);
  ASSERT_EQ(spy.writevs[0].size(), 2u);
  // The payload goes out from the caller's memory: same address, same length.
  EXPECT_EQ(spy.writevs[0][1].data(), reinterpret_cast<const std::byte*>(payload.data()));
  EXPECT_EQ(spy.writevs[0][1].size(), payload.size());
  EXPECT_GE(spy.writevs[0][0].data(), tx.data());
  EXPECT_LT(spy.writevs[0][0].data(), tx.data() + tx.size());
  EXPECT_TRUE(broker.verify());
}

TEST_P(ClientTest, PublishQoS0WithASmallPayloadIsOneSendOfOneBufferPastTheQueue) {
  connect_ok();
  const std::string payload(Connection::kDirectCopyMax, 's');
  broker.expect(make_publish("a/b", payload, QoS::AtMostOnce));
  spy.writevs.clear();
  spy.sends.clear();
  const auto before = net.stats();
  const auto queued = client.connection().queued_total();
  auto id = client.publish(make_publish("a/b", payload, QoS::AtMostOnce), 1s);
  ASSERT_TRUE(id.has_value()) << to_string(id.error());
  EXPECT_EQ(*id, 0);
  EXPECT_EQ(net.stats().write_calls() - before.write_calls(), 1u);
  EXPECT_TRUE(spy.writevs.empty());
  ASSERT_EQ(spy.sends.size(), 1u);
  // Header and payload, one buffer in the send buffer.
  EXPECT_GE(spy.sends[0].data(), tx.data());
  EXPECT_LE(spy.sends[0].data() + spy.sends[0].size(), tx.data() + tx.size());
  EXPECT_EQ(spy.sends[0].size(),
            *encoded_size(make_publish("a/b", payload, QoS::AtMostOnce), version));
  EXPECT_TRUE(client.connection().output_empty());
  EXPECT_EQ(client.connection().written_total() - queued, spy.sends[0].size());
  EXPECT_TRUE(broker.verify());
}

TEST_P(ClientTest, PublishQoS0FromTheHandlerNeverOvertakesAQueuedAck) {
  connect_ok();
  // Two QoS 1 messages in one read: polling the second queues the first one's PUBACK, so a
  // publish from the second one's handler finds it queued and must go behind it; the second
  // PUBACK follows after the handler.
  ByteVector glued;
  for (std::uint16_t id = 1; id <= 2; ++id) {
    auto b = testing::encode_packet(make_publish("in/q1", "m", QoS::AtLeastOnce, id), version);
    glued.insert(glued.end(), b.begin(), b.end());
  }
  broker.expect(ack<PubAck>(1));
  broker.expect(make_publish("from/handler", "p", QoS::AtMostOnce));
  broker.expect(ack<PubAck>(2));
  std::size_t calls = 0;
  bool published = false;
  on_event_hook = [&](Client& c, const Event& e) {
    if (e.type != EventType::MessageReceived || ++calls != 2) return;
    published = c.publish(make_publish("from/handler", "p", QoS::AtMostOnce), 1s).has_value();
  };
  broker.send_bytes(glued);
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_TRUE(published);
  EXPECT_TRUE(broker.verify());
  EXPECT_EQ(broker.mismatches(), 0u);
}

TEST_P(ClientTest, PublishQoS1CompletesThroughProcessLoop) {
  connect_ok();
  const ReasonCode rc =
      version == Version::V5 ? ReasonCode::NoMatchingSubscribers : ReasonCode::Success;
  broker.expect(PacketType::Publish).reply_with([&](const Packet& p) {
    return std::vector<Packet>{ack<PubAck>(std::get<Publish>(p).packet_id, rc)};
  });
  auto id = client.publish(make_publish("a/b", "hello", QoS::AtLeastOnce), 1s);
  ASSERT_TRUE(id.has_value());
  EXPECT_NE(*id, 0);
  EXPECT_EQ(session.publishes_in_flight(), 1u);
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(count(EventType::PublishCompleted), 1u);
  EXPECT_EQ(events.back().packet_id, *id);
  EXPECT_EQ(events.back().reason_code, rc);
  EXPECT_EQ(session.publishes_in_flight(), 0u);
  auto sent = sent_packets();
  ASSERT_EQ(sent.size(), 2u);
  const auto& pub = std::get<Publish>(sent[1]);
  EXPECT_EQ(pub.packet_id, *id);
  EXPECT_EQ(pub.qos, QoS::AtLeastOnce);
  EXPECT_FALSE(pub.dup);
}

TEST_P(ClientTest, PublishQoS2RunsPubRecPubRelPubComp) {
  connect_ok();
  broker.expect(PacketType::Publish).reply_with([](const Packet& p) {
    return std::vector<Packet>{ack<PubRec>(std::get<Publish>(p).packet_id)};
  });
  broker.expect(PacketType::PubRel).reply_with([](const Packet& p) {
    return std::vector<Packet>{ack<PubComp>(std::get<PubRel>(p).packet_id)};
  });
  auto id = client.publish(make_publish("a/b", "hello", QoS::ExactlyOnce), 1s);
  ASSERT_TRUE(id.has_value());
  ASSERT_TRUE(client.process_loop(1s).has_value());  // PUBREC → PUBREL
  EXPECT_EQ(count(EventType::PublishCompleted), 0u);
  ASSERT_TRUE(client.process_loop(1s).has_value());  // PUBCOMP
  ASSERT_EQ(count(EventType::PublishCompleted), 1u);
  EXPECT_EQ(events.back().packet_id, *id);
  EXPECT_EQ(events.back().reason_code, ReasonCode::Success);
  EXPECT_TRUE(broker.verify());
  auto sent = sent_packets();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(std::get<PubRel>(sent[2]).packet_id, *id);
}

TEST_P(ClientTest, PublishAndWaitReturnsTheBrokersReasonCode) {
  connect_ok();
  broker.expect(PacketType::Publish).reply_with([](const Packet& p) {
    return std::vector<Packet>{ack<PubAck>(std::get<Publish>(p).packet_id)};
  });
  auto rc = client.publish_and_wait(make_publish("a/b", "x", QoS::AtLeastOnce), 2s);
  ASSERT_TRUE(rc.has_value()) << to_string(rc.error());
  EXPECT_EQ(*rc, ReasonCode::Success);
  EXPECT_EQ(count(EventType::PublishCompleted), 1u);
}

TEST_P(ClientTest, PublishAndWaitTimesOutWhenNoAckComes) {
  connect_ok();
  broker.expect(PacketType::Publish);
  auto rc = client.publish_and_wait(make_publish("a/b", "x", QoS::AtLeastOnce), 2s);
  ASSERT_FALSE(rc.has_value());
  EXPECT_EQ(rc.error(), Errc::Timeout);
  EXPECT_TRUE(client.connected());  // the record stays; not fatal
  EXPECT_EQ(session.publishes_in_flight(), 1u);
}

TEST_P(ClientTest, PartialWritesAreRetriedUntilThePacketIsOut) {
  connect_ok();
  const std::string payload(200, 'p');
  broker.expect(make_publish("part/ial", payload, QoS::AtMostOnce));
  net.set_send_cap(7);
  net.script_send({IoStatus::WouldBlock, IoStatus::Ok, IoStatus::WouldBlock});
  const auto before = net.stats();
  ASSERT_TRUE(client.publish(make_publish("part/ial", payload, QoS::AtMostOnce), 1s).has_value());
  EXPECT_GT(net.stats().write_calls() - before.write_calls(), 30u);
  EXPECT_TRUE(broker.verify());
  EXPECT_EQ(broker.mismatches(), 0u);
}

TEST_P(ClientTest, SendThatCannotProgressTimesOut) {
  connect_ok();
  // Nothing written and QoS 0: not fatal.
  net.script_send({IoStatus::WouldBlock, IoStatus::WouldBlock, IoStatus::WouldBlock,
                   IoStatus::WouldBlock, IoStatus::WouldBlock, IoStatus::WouldBlock});
  auto r = client.publish(make_publish("t", "x", QoS::AtMostOnce), 0ms);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::Timeout);
  EXPECT_TRUE(client.connected());
}

// --- incoming publishes --------------------------------------------------------------------------

TEST_P(ClientTest, IncomingQoS1IsDeliveredAndAcked) {
  connect_ok();
  broker.expect(ack<PubAck>(9));
  broker.send(make_publish("in/1", "data", QoS::AtLeastOnce, 9));
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(count(EventType::MessageReceived), 1u);
  EXPECT_EQ(events[0].topic, "in/1");
  EXPECT_EQ(events[0].payload, "data");
  EXPECT_EQ(events[0].qos, QoS::AtLeastOnce);
  EXPECT_TRUE(broker.verify());
}

TEST_P(ClientTest, IncomingQoS2DuplicateIsNotDeliveredTwice) {
  connect_ok();
  broker.expect(ack<PubRec>(5)).times(2);
  broker.expect(ack<PubComp>(5));
  broker.send(make_publish("in/2", "once", QoS::ExactlyOnce, 5));
  ASSERT_TRUE(client.process_loop(1s).has_value());
  Publish again = make_publish("in/2", "once", QoS::ExactlyOnce, 5);
  again.dup = true;
  broker.send(again);
  ASSERT_TRUE(client.process_loop(1s).has_value());
  broker.send(ack<PubRel>(5));
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_EQ(count(EventType::MessageReceived), 1u);
  EXPECT_TRUE(broker.verify());
}

TEST_P(ClientTest, EveryPacketOfOneRecvIsHandledInOneProcessLoop) {
  connect_ok();
  ByteVector glued;
  for (std::uint16_t id = 1; id <= 3; ++id) {
    auto b = testing::encode_packet(make_publish("many", "m", QoS::AtLeastOnce, id), version);
    glued.insert(glued.end(), b.begin(), b.end());
  }
  auto q0 = testing::encode_packet(make_publish("many", "zero", QoS::AtMostOnce), version);
  glued.insert(glued.end(), q0.begin(), q0.end());
  broker.expect(ack<PubAck>(1));
  broker.expect(ack<PubAck>(2));
  broker.expect(ack<PubAck>(3));
  broker.send_bytes(glued);
  const auto before = net.stats();
  const auto client_recvs = client.recv_calls();
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_EQ(net.stats().recv_calls - before.recv_calls, 1u);
  EXPECT_EQ(client.recv_calls() - client_recvs, 1u);
  EXPECT_EQ(count(EventType::MessageReceived), 4u);
  // The three PUBACKs leave together in one write.
  EXPECT_EQ(net.stats().write_calls() - before.write_calls(), 1u);
  EXPECT_TRUE(broker.verify());
}

TEST_P(ClientTest, LongestTimeoutDoesNotOverflow) {
  connect_ok();
  broker.auto_reply_to_pings(true);  // an hour later, a keep-alive ping is due first
  clock.advance(1h);
  broker.send(make_publish("t", "x", QoS::AtMostOnce));
  ASSERT_TRUE(client.process_loop(Duration::max()).has_value());
  EXPECT_EQ(count(EventType::MessageReceived), 1u);
}

TEST_P(ClientTest, PacketSplitOverSeveralRecvsIsReassembled) {
  connect_ok();
  net.set_recv_chunk(3);
  broker.send(make_publish("slow/topic", "payload bytes", QoS::AtMostOnce));
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(count(EventType::MessageReceived), 1u);
  EXPECT_EQ(events[0].payload, "payload bytes");
}

TEST_P(ClientTest, PublishFromInsideTheHandlerIsAllowedButLoopingIsNot) {
  connect_ok();
  Errc nested = Errc::Ok;
  on_event_hook = [&](Client& c, const Event& e) {
    if (e.type != EventType::MessageReceived) return;
    nested = c.process_loop(0ms).error();
    (void)c.publish(make_publish("echo", "back", QoS::AtMostOnce), 1s);
  };
  broker.expect(make_publish("echo", "back", QoS::AtMostOnce));
  broker.send(make_publish("in", "x", QoS::AtMostOnce));
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_EQ(nested, Errc::CalledFromHandler);
  EXPECT_TRUE(broker.verify());
}

TEST_P(ClientTest, EventHandlerBindsALambdaByReference) {
  connect_ok();
  int calls = 0;
  std::string topic;
  auto on_event = [&](Client&, const Event& e) {
    ++calls;
    if (e.message != nullptr) topic = std::string(e.message->topic);
  };
  client.set_event_handler(EventHandler::bind(on_event));
  broker.send(make_publish("bound", "x", QoS::AtMostOnce));
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(topic, "bound");
  EXPECT_TRUE(events.empty());  // the fixture's handler was replaced
}

TEST_P(ClientTest, DisconnectFromInsideTheHandlerEndsTheLoopCleanly) {
  connect_ok();
  on_event_hook = [&](Client& c, const Event& e) {
    if (e.type == EventType::MessageReceived) {
      EXPECT_TRUE(c.disconnect().has_value());
    }
  };
  broker.expect(Disconnect{});  // and no PUBACK: the message will come again on resume
  ByteVector two = testing::encode_packet(make_publish("in", "1", QoS::AtLeastOnce, 1), version);
  ByteVector more = testing::encode_packet(make_publish("in", "2", QoS::AtLeastOnce, 2), version);
  two.insert(two.end(), more.begin(), more.end());
  broker.send_bytes(two);
  EXPECT_TRUE(client.process_loop(1s).has_value());
  EXPECT_FALSE(client.connected());
  EXPECT_EQ(count(EventType::MessageReceived), 1u);
  EXPECT_EQ(count(EventType::ConnectionClosed), 0u);
  EXPECT_TRUE(broker.verify());
  EXPECT_EQ(client.process_loop(1s).error(), Errc::NotConnected);
}

// --- subscribe / unsubscribe ---------------------------------------------------------------------

TEST_P(ClientTest, SubscribeReturnsReasonCodesAndDeliversPublishesMeanwhile) {
  connect_ok();
  broker.expect(PacketType::Subscribe).reply_with([&](const Packet& p) {
    SubAck a;
    a.packet_id = std::get<Subscribe>(p).packet_id;
    static const std::array<ReasonCode, 2> codes{ReasonCode::GrantedQoS1,
                                                 ReasonCode::UnspecifiedError};
    a.reason_codes = codes;
    // A retained message arrives before the SUBACK.
    return std::vector<Packet>{make_publish("s/1", "retained", QoS::AtMostOnce), a};
  });
  std::array<Subscription, 2> subs{};
  subs[0].filter = "s/+";
  subs[0].options.qos = QoS::AtLeastOnce;
  subs[1].filter = "forbidden/#";
  std::array<ReasonCode, 2> codes{};
  auto r = client.subscribe(subs, codes, 2s);
  ASSERT_TRUE(r.has_value()) << to_string(r.error());
  EXPECT_EQ(codes[0], ReasonCode::GrantedQoS1);
  EXPECT_EQ(codes[1], ReasonCode::UnspecifiedError);
  EXPECT_EQ(count(EventType::MessageReceived), 1u);
}

TEST_P(ClientTest, SubscribeRejectsTooFewReasonCodeSlots) {
  connect_ok();
  std::array<Subscription, 2> subs{};
  subs[0].filter = "a";
  subs[1].filter = "b";
  std::array<ReasonCode, 1> codes{};
  EXPECT_EQ(client.subscribe(subs, codes, 1s).error(), Errc::InvalidArgument);
}

TEST_P(ClientTest, SubscribeTimesOut) {
  connect_ok();
  broker.expect(PacketType::Subscribe);
  std::array<Subscription, 1> subs{};
  subs[0].filter = "a";
  std::array<ReasonCode, 1> codes{};
  EXPECT_EQ(client.subscribe(subs, codes, 2s).error(), Errc::Timeout);
  EXPECT_TRUE(client.connected());
}

TEST_P(ClientTest, UnsubscribeWaitsForUnsubAck) {
  connect_ok();
  broker.expect(PacketType::Unsubscribe).reply_with([&](const Packet& p) {
    UnsubAck a;
    a.packet_id = std::get<Unsubscribe>(p).packet_id;
    static const std::array<ReasonCode, 1> codes{ReasonCode::NoSubscriptionExisted};
    if (version == Version::V5) a.reason_codes = codes;
    return std::vector<Packet>{a};
  });
  std::array<std::string_view, 1> filters{"x/#"};
  std::array<ReasonCode, 1> codes{ReasonCode::UnspecifiedError};
  ASSERT_TRUE(client.unsubscribe(filters, codes, 2s).has_value());
  EXPECT_EQ(codes[0],
            version == Version::V5 ? ReasonCode::NoSubscriptionExisted : ReasonCode::Success);
}

// --- keep-alive ----------------------------------------------------------------------------------

TEST_P(ClientTest, PingReqIsSentWhenKeepAliveIsDue) {
  auto opts = options();
  opts.keep_alive_seconds = 10;
  connect_ok({}, opts);
  broker.expect(PacketType::PingReq).reply_with(PingResp{});
  const Instant connected_at = clock.now();
  // Nothing arrives: the loop waits, and sends PINGREQ when 10 s have passed since CONNECT.
  ASSERT_TRUE(client.process_loop(15s).has_value());
  EXPECT_TRUE(broker.done());
  EXPECT_GE(clock.now() - connected_at, 10s);
  ASSERT_TRUE(client.process_loop(1s).has_value());  // PINGRESP handled
  EXPECT_TRUE(client.connected());
}

// The QoS 0 publish written at once restarts the keep-alive with the clock's cheap reading
// (Clock::now_coarse), which may trail now(): the PINGREQ then comes that much early, never late.
TEST_P(ClientTest, AQoS0PublishRestartsTheKeepAliveFromTheCoarseReadingSoThePingIsNeverLate) {
  auto opts = options();
  opts.keep_alive_seconds = 10;
  connect_ok({}, opts);
  clock.advance(4s);
  clock.set_coarse_lag(3ms);
  broker.expect(make_publish("a/b", "x", QoS::AtMostOnce));
  const Instant published_at = clock.now();
  ASSERT_TRUE(client.publish(make_publish("a/b", "x", QoS::AtMostOnce), 1s).has_value());
  broker.expect(PacketType::PingReq).reply_with(PingResp{});
  ASSERT_TRUE(client.process_loop(15s).has_value());
  EXPECT_TRUE(broker.done());
#if defined(__OPTIMIZE_SIZE__)
  // Size builds queue the publish and count it written with now().
  EXPECT_EQ(clock.now() - published_at, 10s);
#else
  EXPECT_EQ(clock.now() - published_at, 10s - 3ms);
#endif
  clock.set_coarse_lag(0ms);
}

TEST_P(ClientTest, MissingPingRespClosesWithKeepAliveTimeout) {
  auto opts = options();
  opts.keep_alive_seconds = 10;
  connect_ok({}, opts);
  broker.expect(PacketType::PingReq);  // never answered
  Result<void> r{};
  for (int i = 0; i < 10 && r.has_value(); ++i) r = client.process_loop(5s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::KeepAliveTimeout);
  EXPECT_FALSE(client.connected());
  EXPECT_EQ(client.fatal_error(), Errc::KeepAliveTimeout);
  EXPECT_TRUE(net.closed_by_client());
  ASSERT_EQ(count(EventType::ConnectionClosed), 1u);
  EXPECT_EQ(events.back().error, Errc::KeepAliveTimeout);
  EXPECT_EQ(client.process_loop(1s).error(), Errc::NotConnected);
}

TEST_P(ClientTest, PingWaitsForPingResp) {
  connect_ok();
  broker.expect(PacketType::PingReq).reply_with(PingResp{});
  EXPECT_TRUE(client.ping(1s).has_value());
  broker.expect(PacketType::PingReq);
  EXPECT_EQ(client.ping(1s).error(), Errc::KeepAliveTimeout);
  EXPECT_FALSE(client.connected());
}

// --- errors --------------------------------------------------------------------------------------

class SmallBufferClientTest : public ::testing::TestWithParam<Version>, public ClientTestBase {
 public:
  SmallBufferClientTest() : ClientTestBase(GetParam(), 128) {}
};
INSTANTIATE_TEST_SUITE_P(BothVersions, SmallBufferClientTest,
                         ::testing::Values(Version::V311, Version::V5), version_name);

TEST_P(SmallBufferClientTest, PacketLargerThanTheBufferIsReportedNeverDropped) {
  connect_ok();
  const std::string big(300, 'B');
  if (version == Version::V5) broker.expect(disconnect_with(ReasonCode::PacketTooLarge));
  broker.send(make_publish("big", big, QoS::AtLeastOnce, 3));
  auto r = client.process_loop(1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::IncomingPacketTooLarge);
  EXPECT_FALSE(client.connected());
  EXPECT_TRUE(net.closed_by_client());
  ASSERT_EQ(count(EventType::ConnectionClosed), 1u);
  EXPECT_EQ(events.back().error, Errc::IncomingPacketTooLarge);
  auto sent = sent_packets();
  if (version == Version::V5) {
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(std::get<Disconnect>(sent[1]).reason_code, ReasonCode::PacketTooLarge);
  } else {
    EXPECT_EQ(sent.size(), 1u);  // only CONNECT: 3.1.1 just closes
  }
}

TEST_P(SmallBufferClientTest, PacketThatFitsExactlyIsAccepted) {
  connect_ok();
  // 128 bytes in all: 1 type byte + 2 length bytes + 2 + 3 topic bytes (+1 v5 properties) +
  // payload.
  const std::size_t overhead = 1 + 2 + 2 + 3 + (version == Version::V5 ? 1 : 0);
  const std::string payload(128 - overhead, 'F');
  broker.send(make_publish("fit", payload, QoS::AtMostOnce));
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(count(EventType::MessageReceived), 1u);
  EXPECT_EQ(events[0].payload.size(), payload.size());
}

TEST_P(ClientTest, MalformedPacketClosesWithDisconnect0x81) {
  connect_ok();
  // PUBACK with reserved flags set (0x42 instead of 0x40) [MQTT-2.2.2-2].
  const ByteVector bad{std::byte{0x42}, std::byte{0x02}, std::byte{0x00}, std::byte{0x01}};
  if (version == Version::V5) broker.expect(disconnect_with(ReasonCode::MalformedPacket));
  broker.send_bytes(bad);
  auto r = client.process_loop(1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::ReservedFlagsSet);
  EXPECT_FALSE(client.connected());
  auto sent = sent_packets();
  if (version == Version::V5) {
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(std::get<Disconnect>(sent[1]).reason_code, ReasonCode::MalformedPacket);
  } else {
    EXPECT_EQ(sent.size(), 1u);
  }
}

TEST_P(ClientTest, MalformedRemainingLengthIsFatal) {
  connect_ok();
  const ByteVector bad{std::byte{0x30}, std::byte{0xFF}, std::byte{0xFF},
                       std::byte{0xFF}, std::byte{0xFF}, std::byte{0x01}};
  if (version == Version::V5) broker.expect(disconnect_with(ReasonCode::MalformedPacket));
  broker.send_bytes(bad);
  auto r = client.process_loop(1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::MalformedRemainingLength);
  EXPECT_FALSE(client.connected());
}

TEST_P(ClientTest, UnexpectedPacketIsAProtocolError) {
  connect_ok();
  if (version == Version::V5) broker.expect(disconnect_with(ReasonCode::ProtocolError));
  broker.send(ConnAck{});  // a second CONNACK
  auto r = client.process_loop(1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::ProtocolError);
  auto sent = sent_packets();
  if (version == Version::V5) {
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(std::get<Disconnect>(sent[1]).reason_code, ReasonCode::ProtocolError);
  }
}

TEST_P(ClientTest, PeerClosingIsReportedAsTransportClosed) {
  connect_ok();
  broker.close();
  auto r = client.process_loop(1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::TransportClosed);
  EXPECT_EQ(count(EventType::ConnectionClosed), 1u);
  EXPECT_EQ(client.publish(make_publish("t", "x", QoS::AtMostOnce), 1s).error(),
            Errc::NotConnected);
}

TEST_P(ClientTest, DisconnectSendsDisconnectAndClosesTheTransport) {
  connect_ok();
  broker.expect(Disconnect{});
  ASSERT_TRUE(client.disconnect().has_value());
  EXPECT_FALSE(client.connected());
  EXPECT_TRUE(net.closed_by_client());
  EXPECT_EQ(count(EventType::ConnectionClosed), 0u);
  EXPECT_TRUE(broker.verify());
}

}  // namespace
}  // namespace edgekit::mqtt::test
