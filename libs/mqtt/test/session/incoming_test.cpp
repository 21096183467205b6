// Inbound publishes: QoS 1/2 acknowledgement, exactly-once delivery, topic aliases.
#include "session_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using SessionIncoming = SessionTest;
using SessionInboundAlias = SessionTest;

Publish inbound(QoS qos, std::uint16_t id, std::string_view topic = "in/t") {
  Publish p;
  p.topic = topic;
  p.payload = as_bytes("hello");
  p.qos = qos;
  p.packet_id = id;
  return p;
}

TEST_F(SessionIncoming, QoS0IsDeliveredWithoutReply) {
  connect();
  Publish p = inbound(QoS::AtMostOnce, 0);
  auto r = session.on_publish(p);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->deliver);
  EXPECT_FALSE(r->reply);
}

TEST_F(SessionIncoming, QoS1IsDeliveredAndAcknowledged) {
  connect();
  Publish p = inbound(QoS::AtLeastOnce, 5);
  auto r = session.on_publish(p);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->deliver);
  ASSERT_TRUE(r->reply);
  EXPECT_EQ(r->reply->type, PacketType::PubAck);
  EXPECT_EQ(r->reply->packet_id, 5);
  // The reply converts to the packet the codec encodes.
  const Packet pk = r->reply->to_packet();
  ASSERT_TRUE(std::holds_alternative<PubAck>(pk));
  EXPECT_EQ(std::get<PubAck>(pk).packet_id, 5);
}

TEST_F(SessionIncoming, QoS2DuplicateIsNotDeliveredTwice) {
  connect();
  Publish p = inbound(QoS::ExactlyOnce, 7);
  auto first = session.on_publish(p);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->deliver);
  ASSERT_TRUE(first->reply);
  EXPECT_EQ(first->reply->type, PacketType::PubRec);

  Publish dup = inbound(QoS::ExactlyOnce, 7);
  dup.dup = true;
  auto second = session.on_publish(dup);
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->deliver) << "QoS 2 message delivered twice [MQTT-4.3.3]";
  ASSERT_TRUE(second->reply);
  EXPECT_EQ(second->reply->type, PacketType::PubRec);

  PubRel rel;
  rel.packet_id = 7;
  auto comp = session.on_pubrel(rel);
  ASSERT_TRUE(comp);
  ASSERT_TRUE(comp->reply);
  EXPECT_EQ(comp->reply->type, PacketType::PubComp);
  EXPECT_EQ(comp->reply->reason_code, ReasonCode::Success);

  // After PUBCOMP the id may carry a new message, which is delivered.
  Publish next = inbound(QoS::ExactlyOnce, 7);
  auto third = session.on_publish(next);
  ASSERT_TRUE(third);
  EXPECT_TRUE(third->deliver);
}

TEST_F(SessionIncoming, UnknownPubRelIsAnsweredWithPubComp) {
  connect();
  PubRel rel;
  rel.packet_id = 99;
  auto r = session.on_pubrel(rel);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->reply);
  EXPECT_EQ(r->reply->type, PacketType::PubComp);
  EXPECT_EQ(r->reply->reason_code, ReasonCode::PacketIdentifierNotFound);
}

TEST_F(SessionIncoming, ReceiveMaximumIsAnnouncedAndEnforced) {
  Connect c;
  c.client_id = "d";
  ASSERT_TRUE(session.prepare_connect(c));
  // The storage holds 4 ids: that is what the server is told [MQTT-3.3.4-9].
  EXPECT_EQ(c.properties.receive_maximum(), std::optional<std::uint16_t>(4));
  EXPECT_EQ(c.properties.topic_alias_maximum(), std::optional<std::uint16_t>(4));
  ASSERT_TRUE(session.on_connack(ConnAck{}));
  for (std::uint16_t id = 1; id <= 4; ++id) {
    Publish p = inbound(QoS::ExactlyOnce, id);
    ASSERT_TRUE(session.on_publish(p));
  }
  Publish p = inbound(QoS::ExactlyOnce, 5);
  auto r = session.on_publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::ReceiveMaximumExceeded);  // the client disconnects with 0x93
}

TEST_F(SessionIncoming, CallerReceiveMaximumIsLoweredNeverRaised) {
  Connect c;
  c.client_id = "d";
  c.properties.set_receive_maximum(2);
  ASSERT_TRUE(session.prepare_connect(c));
  EXPECT_EQ(c.properties.receive_maximum(), std::optional<std::uint16_t>(2));
}

TEST_F(SessionIncoming, V311IncomingQoS2OverflowIsSessionStateFull) {
  connect(Version::V311);
  for (std::uint16_t id = 1; id <= 4; ++id) {
    Publish p = inbound(QoS::ExactlyOnce, id);
    ASSERT_TRUE(session.on_publish(p));
  }
  Publish p = inbound(QoS::ExactlyOnce, 5);
  auto r = session.on_publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::SessionStateFull);
}

TEST_F(SessionIncoming, V5WithoutQoS2StorageAnnouncesNothingAndReportsNoRoom) {
  std::array<OutgoingRecord, 2> records{};
  Session s(SessionStorage{records, {}, {}, {}, {}});
  Connect c;
  c.client_id = "d";
  ASSERT_TRUE(s.prepare_connect(c));
  EXPECT_FALSE(c.properties.receive_maximum());
  EXPECT_FALSE(c.properties.topic_alias_maximum());
  ASSERT_TRUE(s.on_connack(ConnAck{}));
  Publish p = inbound(QoS::ExactlyOnce, 1);
  auto r = s.on_publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::SessionStateFull);
}

TEST_F(SessionInboundAlias, AliasIsLearnedAndResolved) {
  connect();
  char frame[32] = "dev/42/cmd";
  Publish first = inbound(QoS::AtMostOnce, 0, std::string_view(frame));
  first.properties.set_topic_alias(3);
  auto r1 = session.on_publish(first);
  ASSERT_TRUE(r1);
  EXPECT_TRUE(r1->deliver);
  EXPECT_EQ(first.topic, "dev/42/cmd");
  // The frame buffer is reused for the next packet; the alias must not depend on it.
  std::fill(std::begin(frame), std::end(frame), 'z');

  Publish second = inbound(QoS::AtLeastOnce, 1, "");
  second.properties.set_topic_alias(3);
  auto r2 = session.on_publish(second);
  ASSERT_TRUE(r2);
  EXPECT_TRUE(r2->deliver);
  EXPECT_EQ(second.topic, "dev/42/cmd");

  // A new topic for the same alias replaces the mapping.
  Publish third = inbound(QoS::AtMostOnce, 0, "dev/42/other");
  third.properties.set_topic_alias(3);
  ASSERT_TRUE(session.on_publish(third));
  Publish fourth = inbound(QoS::AtMostOnce, 0, "");
  fourth.properties.set_topic_alias(3);
  ASSERT_TRUE(session.on_publish(fourth));
  EXPECT_EQ(fourth.topic, "dev/42/other");
}

TEST_F(SessionInboundAlias, ZeroTooLargeAndUnknownAliasesAreInvalid) {
  connect();
  for (std::uint16_t alias : {std::uint16_t{0}, std::uint16_t{5}}) {
    Publish p = inbound(QoS::AtMostOnce, 0, "t");
    p.properties.set_topic_alias(alias);
    auto r = session.on_publish(p);
    ASSERT_FALSE(r) << alias;
    EXPECT_EQ(r.error(), Errc::TopicAliasInvalid) << alias;  // [MQTT-3.3.2-8], [MQTT-3.3.2-9]
  }
  Publish unknown = inbound(QoS::AtMostOnce, 0, "");
  unknown.properties.set_topic_alias(2);
  auto r = session.on_publish(unknown);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::TopicAliasInvalid);
}

TEST_F(SessionInboundAlias, AliasesDoNotSurviveAReconnect) {
  connect();
  Publish p = inbound(QoS::AtMostOnce, 0, "t");
  p.properties.set_topic_alias(1);
  ASSERT_TRUE(session.on_publish(p));
  session.on_connection_lost();
  connect();
  Publish q = inbound(QoS::AtMostOnce, 0, "");
  q.properties.set_topic_alias(1);
  auto r = session.on_publish(q);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::TopicAliasInvalid);
}

TEST_F(SessionInboundAlias, TopicLongerThanASlotIsDeliveredButNotRemembered) {
  connect();
  const std::string_view long_topic = "a/very/long/topic/name/that/exceeds/32/bytes";
  Publish p = inbound(QoS::AtMostOnce, 0, long_topic);
  p.properties.set_topic_alias(1);
  auto r = session.on_publish(p);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->deliver);
  EXPECT_EQ(p.topic, long_topic);
  Publish q = inbound(QoS::AtMostOnce, 0, "");
  q.properties.set_topic_alias(1);
  auto r2 = session.on_publish(q);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error(), Errc::TopicAliasInvalid);
}

TEST_F(SessionIncoming, DispatchThroughOnPacket) {
  connect();
  Packet pk = inbound(QoS::AtLeastOnce, 3);
  auto r = session.on_packet(pk);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->deliver);
  Packet bad = PingReq{};
  auto r2 = session.on_packet(bad);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error(), Errc::ProtocolError);
}

}  // namespace
}  // namespace edgekit::mqtt::test

namespace edgekit::mqtt::test {
namespace {

using SessionCarriedQoS2 = SessionTest;

// A broker that lost some QoS 2 state across its own restart never sends their PUBREL. Those ids
// must not block every new QoS 2 message forever (seen with Mosquitto 2 in the agent's stress test:
// the receiver looped on 0x93 with 159k duplicate deliveries).
TEST_F(SessionCarriedQoS2, StaleCarriedOverIdsMakeRoomForNewMessages) {
  for (Version v : {Version::V311, Version::V5}) {
    SessionBuffers b;
    Session s(b.storage());
    connect_session(s, v, /*clean_start=*/false, {});
    for (std::uint16_t id = 1; id <= 4; ++id) {
      Publish p = inbound(QoS::ExactlyOnce, id);
      auto r = s.on_publish(p);
      ASSERT_TRUE(r);
      EXPECT_TRUE(r->deliver);
    }
    s.on_connection_lost();
    ConnAck present;
    present.session_present = true;
    connect_session(s, v, /*clean_start=*/false, present);

    // The server resends one PUBREL (id 2) as it should; the others it forgot.
    PubRel rel;
    rel.packet_id = 2;
    ASSERT_TRUE(s.on_pubrel(rel));
    // A duplicate of a carried-over id is still recognised and not delivered again.
    Publish dup = inbound(QoS::ExactlyOnce, 3);
    dup.dup = true;
    auto d = s.on_publish(dup);
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->deliver);
    // New messages: the released slot first, then stale carried-over ids give way.
    for (std::uint16_t id = 10; id < 14; ++id) {
      Publish p = inbound(QoS::ExactlyOnce, id);
      auto r = s.on_publish(p);
      ASSERT_TRUE(r) << "id " << id << ": " << to_string(r.error());
      EXPECT_TRUE(r->deliver);
    }
    // Now every slot holds this connection's ids: a fifth is a real overflow again.
    Publish extra = inbound(QoS::ExactlyOnce, 20);
    auto r = s.on_publish(extra);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), v == Version::V5 ? Errc::ReceiveMaximumExceeded : Errc::SessionStateFull);
    // And this connection's ids are still deduplicated.
    Publish dup11 = inbound(QoS::ExactlyOnce, 11);
    dup11.dup = true;
    auto d11 = s.on_publish(dup11);
    ASSERT_TRUE(d11);
    EXPECT_FALSE(d11->deliver);
  }
}

}  // namespace
}  // namespace edgekit::mqtt::test
