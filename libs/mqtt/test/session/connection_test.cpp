// Connect, resume, discard, keep-alive, server DISCONNECT, assigned client id, session expiry.
#include "session_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using SessionResume = SessionTest;
using SessionKeepAlive = SessionTest;
using SessionConnect = SessionTest;

TEST_F(SessionResume, UnackedRecordsAreResentInOrderWithDupAndPubRel) {
  ConnAck ca;
  ca.properties.set_topic_alias_maximum(4);
  connect(Version::V5, false, ca);
  const auto a = publish("t/a", QoS::AtLeastOnce, "A");
  const auto b = publish("t/b", QoS::ExactlyOnce, "B");
  const auto c = publish("t/c", QoS::ExactlyOnce, "C");
  const auto d = publish("t/a", QoS::AtLeastOnce, "D");  // sent with alias only
  // c gets PUBREC: it now awaits PUBCOMP and is resent as PUBREL, after the PUBLISHes that
  // were sent before its PUBREC arrived.
  PubRec rec;
  rec.packet_id = c;
  ASSERT_TRUE(session.on_pubrec(rec));
  session.on_connection_lost();
  EXPECT_FALSE(session.connected());

  ConnAck resumed;
  resumed.session_present = true;
  const ConnAckOutcome out = connect(Version::V5, false, resumed);
  EXPECT_TRUE(out.session_present);
  EXPECT_EQ(out.resend_count, 4u);
  EXPECT_EQ(out.lost_count, 0u);

  struct Expect {
    PacketType type;
    std::uint16_t id;
    std::string_view topic;
    std::string_view payload;
  };
  const Expect expected[] = {{PacketType::Publish, a, "t/a", "A"},
                             {PacketType::Publish, b, "t/b", "B"},
                             {PacketType::Publish, d, "t/a", "D"},
                             {PacketType::PubRel, c, "", ""}};
  for (const Expect& e : expected) {
    auto r = session.next_resend();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->type, e.type);
    if (e.type == PacketType::Publish) {
      EXPECT_EQ(r->publish.packet_id, e.id);
      EXPECT_TRUE(r->publish.dup) << "resent PUBLISH must carry DUP [MQTT-3.3.1-1]";
      EXPECT_EQ(r->publish.topic, e.topic) << "aliases do not survive the connection";
      EXPECT_FALSE(r->publish.properties.topic_alias());
      EXPECT_EQ(as_string(r->publish.payload), e.payload);
    } else {
      EXPECT_EQ(r->pubrel.packet_id, e.id);
    }
  }
  EXPECT_FALSE(session.next_resend());
  // The flows continue normally after the resend.
  PubComp comp;
  comp.packet_id = c;
  auto done = session.on_pubcomp(comp);
  ASSERT_TRUE(done);
  ASSERT_TRUE(done->completion);
  EXPECT_EQ(done->completion->packet_id, c);
}

// [MQTT-4.9.0-2] holds for resends too: a resumed session on a connection whose Receive Maximum
// is smaller than what is outstanding resends only what fits, the rest as acknowledgements free
// quota, and no new publish overtakes the held-back ones [MQTT-4.6.0-1].
TEST_F(SessionResume, ResendsRespectTheNewConnectionsReceiveMaximum) {
  connect(Version::V5, false);
  const auto a = publish("t/a", QoS::AtLeastOnce, "A");
  const auto b = publish("t/a", QoS::AtLeastOnce, "B");
  const auto c = publish("t/a", QoS::AtLeastOnce, "C");
  const auto e = publish("t/e", QoS::ExactlyOnce, "E");
  PubRec rec;
  rec.packet_id = e;
  ASSERT_TRUE(session.on_pubrec(rec));  // e awaits PUBCOMP: the server holds it
  session.on_connection_lost();

  ConnAck resumed;
  resumed.session_present = true;
  resumed.properties.set_receive_maximum(2);
  EXPECT_EQ(connect(Version::V5, false, resumed).resend_count, 4u);
  auto next_id = [&]() -> std::uint16_t {
    auto r = session.next_resend();
    if (!r) return 0;
    return r->type == PacketType::Publish ? r->publish.packet_id : r->pubrel.packet_id;
  };
  // e counts against the quota of 2: one PUBLISH fits, then e's PUBREL (never held back).
  EXPECT_EQ(next_id(), a);
  EXPECT_EQ(next_id(), e);
  EXPECT_EQ(next_id(), 0) << "b and c would exceed Receive Maximum 2";
  EXPECT_EQ(session.pending_resends(), 2u);
  Publish fresh;
  fresh.topic = "t/a";
  fresh.payload = as_bytes("new");
  fresh.qos = QoS::AtLeastOnce;
  auto refused = session.begin_publish(fresh);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), Errc::ReceiveMaximumExceeded) << "must not overtake b and c";

  PubAck ack;
  ack.packet_id = a;
  ASSERT_TRUE(session.on_puback(ack));
  EXPECT_EQ(next_id(), b);
  EXPECT_EQ(next_id(), 0);
  PubComp comp;
  comp.packet_id = e;
  ASSERT_TRUE(session.on_pubcomp(comp));
  EXPECT_EQ(next_id(), c);
  EXPECT_EQ(session.pending_resends(), 0u);
  EXPECT_EQ(session.begin_publish(fresh).error(), Errc::ReceiveMaximumExceeded)
      << "b and c are in flight: the quota is used up";
  ack.packet_id = b;
  ASSERT_TRUE(session.on_puback(ack));
  EXPECT_TRUE(session.begin_publish(fresh));
}

// A QoS 2 PUBREL never waits for quota, even behind a held-back PUBLISH: PUBCOMP is what frees it.
TEST_F(SessionResume, PubRelResendsAreNeverHeldBack) {
  connect(Version::V5, false);
  const auto a = publish("t/a", QoS::ExactlyOnce, "A");
  const auto b = publish("t/b", QoS::ExactlyOnce, "B");
  PubRec rec;
  rec.packet_id = b;
  ASSERT_TRUE(session.on_pubrec(rec));
  session.on_connection_lost();
  ConnAck resumed;
  resumed.session_present = true;
  resumed.properties.set_receive_maximum(1);
  connect(Version::V5, false, resumed);
  auto r = session.next_resend();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, PacketType::PubRel);
  EXPECT_EQ(r->pubrel.packet_id, b);
  EXPECT_FALSE(session.next_resend()) << "a waits: b holds the only slot";
  PubComp comp;
  comp.packet_id = b;
  ASSERT_TRUE(session.on_pubcomp(comp));
  r = session.next_resend();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, PacketType::Publish);
  EXPECT_EQ(r->publish.packet_id, a);
  EXPECT_TRUE(r->publish.dup);
}

// A QoS 2 publish the server had accepted (PUBREC received, PUBREL sent) and then lost may
// already have been delivered: the loss report must say so, so the driver does not resend it
// blindly (exactly once would become twice). QoS 1 and QoS 2 before PUBREC are plain losses.
TEST_F(SessionResume, LostQoS2AfterPubRecSaysTheServerHadAcceptedIt) {
  connect(Version::V5, false);
  const auto a = publish("t/a", QoS::AtLeastOnce, "A");
  const auto b = publish("t/b", QoS::ExactlyOnce, "B");
  const auto c = publish("t/c", QoS::ExactlyOnce, "C");
  PubRec rec;
  rec.packet_id = c;
  auto in = session.on_pubrec(rec);
  ASSERT_TRUE(in);
  ASSERT_TRUE(in->reply);
  EXPECT_EQ(in->reply->type, PacketType::PubRel);
  session.on_connection_lost();
  const ConnAckOutcome out = connect(Version::V5, false, ConnAck{});  // session_present = 0
  EXPECT_EQ(out.lost_count, 3u);
  auto la = session.next_lost();
  ASSERT_TRUE(la);
  EXPECT_EQ(la->packet_id, a);
  EXPECT_FALSE(la->pubrec_received);
  auto lb = session.next_lost();
  ASSERT_TRUE(lb);
  EXPECT_EQ(lb->packet_id, b);
  EXPECT_FALSE(lb->pubrec_received);
  auto lc = session.next_lost();
  ASSERT_TRUE(lc);
  EXPECT_EQ(lc->packet_id, c);
  EXPECT_TRUE(lc->pubrec_received);
  EXPECT_EQ(lc->publish.qos, QoS::ExactlyOnce);
  EXPECT_EQ(as_string(lc->publish.payload), "C");
  EXPECT_FALSE(session.next_lost());
}

TEST_F(SessionResume, SessionNotPresentReportsEveryLostPublish) {
  connect(Version::V5, false);
  const auto a = publish("t/a", QoS::AtLeastOnce, "A");
  const auto b = publish("t/b", QoS::ExactlyOnce, "B");
  session.on_connection_lost();
  const ConnAckOutcome out = connect(Version::V5, false, ConnAck{});  // session_present = 0
  EXPECT_FALSE(out.session_present);
  EXPECT_EQ(out.resend_count, 0u);
  EXPECT_EQ(out.lost_count, 2u);
  EXPECT_FALSE(session.next_resend());
  auto l1 = session.next_lost();
  ASSERT_TRUE(l1);
  EXPECT_EQ(l1->kind, OperationKind::Publish);
  EXPECT_EQ(l1->packet_id, a);
  EXPECT_EQ(l1->publish.topic, "t/a");
  EXPECT_EQ(as_string(l1->publish.payload), "A");
  auto l2 = session.next_lost();
  ASSERT_TRUE(l2);
  EXPECT_EQ(l2->packet_id, b);
  EXPECT_FALSE(session.next_lost());
  EXPECT_EQ(session.records_in_use(), 0u);
  // The server forgot them: late acks are unknown.
  PubAck ack;
  ack.packet_id = a;
  EXPECT_FALSE(session.on_puback(ack));
}

TEST_F(SessionResume, SessionPresentAfterCleanStartIsAProtocolError) {
  Connect c;
  c.client_id = "d";
  c.clean_start = true;
  ASSERT_TRUE(session.prepare_connect(c));
  ConnAck ca;
  ca.session_present = true;
  auto r = session.on_connack(ca);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::ProtocolError);
}

TEST_F(SessionResume, V311ResumeWorksTheSameWay) {
  connect(Version::V311, false);
  const auto a = publish("t/a", QoS::AtLeastOnce, "A");
  session.on_connection_lost();
  ConnAck ca;
  ca.session_present = true;
  EXPECT_EQ(connect(Version::V311, false, ca).resend_count, 1u);
  auto r = session.next_resend();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->publish.packet_id, a);
  EXPECT_TRUE(r->publish.dup);
}

TEST_F(SessionConnect, RefusedConnAckIsReportedAndKeepsRecords) {
  connect(Version::V5, false);
  publish("t", QoS::AtLeastOnce);
  session.on_connection_lost();
  Connect c;
  c.client_id = "device-1";
  c.clean_start = false;
  ASSERT_TRUE(session.prepare_connect(c));
  ConnAck ca;
  ca.reason_code = ReasonCode::ServerBusy;
  auto r = session.on_connack(ca);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::ConnectionRefused);
  EXPECT_FALSE(session.connected());
  EXPECT_EQ(session.records_in_use(), 1u);
}

TEST_F(SessionConnect, ConnAckWithoutConnectIsAProtocolError) {
  auto r = session.on_connack(ConnAck{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::ProtocolError);
}

TEST_F(SessionConnect, ServerAssignedClientIdIsUsedForTheNextConnect) {
  Connect c;
  c.client_id = "";
  c.clean_start = false;
  c.properties.set_session_expiry_interval(600);
  ASSERT_TRUE(session.prepare_connect(c));
  ConnAck ca;
  ca.properties.set_assigned_client_identifier("auto-7f3a");
  auto r = session.on_connack(ca);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->warning, Errc::Ok);
  EXPECT_EQ(session.client_id(), "auto-7f3a");
  session.on_connection_lost();
  Connect again;
  again.client_id = "";
  again.clean_start = false;
  ASSERT_TRUE(session.prepare_connect(again));
  EXPECT_EQ(again.client_id, "auto-7f3a");
}

TEST_F(SessionConnect, AssignedClientIdTooLongForStorageIsAWarning) {
  Connect c;
  c.client_id = "";
  ASSERT_TRUE(session.prepare_connect(c));
  ConnAck ca;
  static constexpr char kLong[80] = "0123456789012345678901234567890123456789012345678901234567890123456789";
  ca.properties.set_assigned_client_identifier(std::string_view(kLong, 70));
  auto r = session.on_connack(ca);
  ASSERT_TRUE(r);
  EXPECT_TRUE(session.connected());
  EXPECT_EQ(r->warning, Errc::BufferTooSmall);
}

TEST_F(SessionConnect, ServerDisconnectIsAnEvent) {
  connect();
  publish("t", QoS::AtLeastOnce);
  Disconnect d;
  d.reason_code = ReasonCode::ServerShuttingDown;
  Packet pk = d;
  auto r = session.on_packet(pk);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->server_disconnect);
  EXPECT_EQ(*r->server_disconnect, ReasonCode::ServerShuttingDown);
  EXPECT_FALSE(session.connected());
  EXPECT_EQ(session.records_in_use(), 1u);  // kept for a resume
  Publish p;
  p.topic = "t";
  auto pr = session.begin_publish(p);
  ASSERT_FALSE(pr);
  EXPECT_EQ(pr.error(), Errc::NotConnected);
}

TEST_F(SessionConnect, SessionExpiryFromConnAckOverridesAndZeroDiscardsOnDisconnect) {
  ConnAck ca;
  ca.properties.set_session_expiry_interval(0);  // the server says: no session after this
  connect(Version::V5, false, ca);
  EXPECT_EQ(session.session_expiry_interval(), 0u);
  publish("t", QoS::AtLeastOnce);
  ASSERT_TRUE(session.prepare_disconnect(Disconnect{}));
  EXPECT_FALSE(session.connected());
  EXPECT_EQ(session.pending_lost(), 1u);
  ASSERT_TRUE(session.next_lost());
}

TEST_F(SessionConnect, DisconnectKeepsTheSessionWhenItOutlivesTheConnection) {
  connect(Version::V5, false);
  EXPECT_EQ(session.session_expiry_interval(), 3600u);
  publish("t", QoS::AtLeastOnce);
  ASSERT_TRUE(session.prepare_disconnect(Disconnect{}));
  EXPECT_EQ(session.pending_lost(), 0u);
  EXPECT_EQ(session.records_in_use(), 1u);
}

TEST_F(SessionConnect, ExpiryCannotBeRaisedFromZeroAtDisconnect) {
  connect(Version::V5, true);  // no Session Expiry Interval: 0
  Disconnect d;
  d.properties.set_session_expiry_interval(60);
  auto r = session.prepare_disconnect(d);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::ProtocolError);  // [MQTT-3.14.2-2]
}

TEST_F(SessionConnect, SecondConnectIsRefused) {
  connect();
  Connect c;
  c.client_id = "d";
  auto r = session.prepare_connect(c);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::AlreadyConnected);
}

TEST_F(SessionKeepAlive, PingIsDueWhenKeepAliveElapsedSinceLastSend) {
  connect(Version::V5, true, ConnAck{}, 10);  // CONNECT sent at t = 1 s
  EXPECT_EQ(session.next_deadline(), at_ms(11'000));
  auto r = session.on_timer(at_ms(10'999));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, TimerAction::None);
  // Sending something restarts the interval [MQTT-3.1.2-23].
  session.on_sent(at_ms(5'000));
  EXPECT_EQ(session.next_deadline(), at_ms(15'000));
  r = session.on_timer(at_ms(15'000));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, TimerAction::SendPingReq);
  session.on_sent(at_ms(15'000));
  // Now waiting for PINGRESP: default timeout 1.5 × keep-alive.
  EXPECT_EQ(session.next_deadline(), at_ms(30'000));
  ASSERT_TRUE(session.on_pingresp());
  EXPECT_EQ(session.next_deadline(), at_ms(25'000));
}

TEST_F(SessionKeepAlive, MissingPingRespTimesOut) {
  connect(Version::V311, true, ConnAck{}, 10);
  auto r = session.on_timer(at_ms(11'000));
  ASSERT_TRUE(r);
  ASSERT_EQ(*r, TimerAction::SendPingReq);
  session.on_sent(at_ms(11'000));
  r = session.on_timer(at_ms(25'999));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, TimerAction::None);  // no second PINGREQ while one is outstanding
  r = session.on_timer(at_ms(26'000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::KeepAliveTimeout);
}

TEST_F(SessionKeepAlive, ConfiguredPingTimeoutIsUsed) {
  SessionBuffers b2;
  Session s(b2.storage(), nullptr, SessionConfig{Duration{2'000}});
  connect_session(s, Version::V5, true, ConnAck{}, 10);
  ASSERT_EQ(*s.on_timer(at_ms(11'000)), TimerAction::SendPingReq);
  EXPECT_EQ(s.next_deadline(), at_ms(13'000));
  auto r = s.on_timer(at_ms(13'000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::KeepAliveTimeout);
}

TEST_F(SessionKeepAlive, ServerKeepAliveOverridesTheClients) {
  ConnAck ca;
  ca.properties.set_server_keep_alive(5);
  connect(Version::V5, true, ca, 60);
  EXPECT_EQ(session.keep_alive(), 5);
  EXPECT_EQ(session.next_deadline(), at_ms(6'000));
  EXPECT_EQ(*session.on_timer(at_ms(6'000)), TimerAction::SendPingReq);
}

TEST_F(SessionKeepAlive, ZeroDisablesKeepAlive) {
  connect(Version::V5, true, ConnAck{}, 0);
  EXPECT_FALSE(session.next_deadline());
  EXPECT_EQ(*session.on_timer(at_ms(1'000'000)), TimerAction::None);
}

}  // namespace
}  // namespace edgekit::mqtt::test
