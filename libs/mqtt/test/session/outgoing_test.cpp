// Outgoing publishes: packet ids, QoS 1/2 flows, flow control, limits of the server, aliases.
#include "session_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using SessionPacketIds = SessionTest;
using SessionQoS1 = SessionTest;
using SessionQoS2 = SessionTest;
using SessionFlowControl = SessionTest;
using SessionServerLimits = SessionTest;
using SessionOutboundAlias = SessionTest;
using SessionSubscribe = SessionTest;

TEST_F(SessionPacketIds, AreAssignedInOrderStartingAtOne) {
  connect();
  EXPECT_EQ(publish("a", QoS::AtLeastOnce), 1);
  EXPECT_EQ(publish("a", QoS::ExactlyOnce), 2);
  Subscribe s;
  Subscription subs[] = {{"f/#", {}}};
  s.subscriptions = subs;
  ASSERT_TRUE(session.begin_subscribe(s));
  EXPECT_EQ(s.packet_id, 3);
}

TEST_F(SessionPacketIds, QoS0PublishGetsNoIdAndNoRecord) {
  connect();
  Publish p;
  p.topic = "t";
  p.packet_id = 77;
  ASSERT_TRUE(session.begin_publish(p));
  EXPECT_EQ(p.packet_id, 0);
  EXPECT_EQ(session.records_in_use(), 0u);
}

TEST_F(SessionPacketIds, WrapAfter65535SkippingZeroAndIdsInUse) {
  connect();
  const std::uint16_t held = publish("held", QoS::AtLeastOnce);  // stays in flight: id 1
  ASSERT_EQ(held, 1);
  std::uint16_t last = 0;
  for (std::uint32_t i = 2; i <= 65535; ++i) {
    last = publish("t", QoS::AtLeastOnce);
    ASSERT_EQ(last, i);
    PubAck ack;
    ack.packet_id = last;
    ASSERT_TRUE(session.on_puback(ack));
  }
  EXPECT_EQ(last, 65535);
  // Next would be 0 (never used) then 1 (in use): 2 is the answer [MQTT-2.2.1-3].
  EXPECT_EQ(publish("t", QoS::AtLeastOnce), 2);
}

TEST_F(SessionPacketIds, RecordsFullIsReportedNotOverwritten) {
  connect();
  for (std::size_t i = 0; i < buf.records.size(); ++i) publish("t", QoS::AtLeastOnce);
  Publish p;
  p.topic = "t";
  p.qos = QoS::AtLeastOnce;
  auto r = session.begin_publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::SessionStateFull);
  EXPECT_EQ(session.records_in_use(), buf.records.size());
}

TEST_F(SessionQoS1, PubAckCompletesWithItsReasonCode) {
  connect();
  const auto id = publish("a/b", QoS::AtLeastOnce);
  EXPECT_EQ(session.publishes_in_flight(), 1u);
  PubAck ack;
  ack.packet_id = id;
  ack.reason_code = ReasonCode::NoMatchingSubscribers;
  auto r = session.on_puback(ack);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->completion);
  EXPECT_EQ(r->completion->kind, OperationKind::Publish);
  EXPECT_EQ(r->completion->packet_id, id);
  EXPECT_EQ(r->completion->qos, QoS::AtLeastOnce);
  EXPECT_EQ(r->completion->reason_code, ReasonCode::NoMatchingSubscribers);
  EXPECT_FALSE(r->reply);
  EXPECT_EQ(session.records_in_use(), 0u);
}

TEST_F(SessionQoS1, UnknownPubAckIsReported) {
  connect();
  PubAck ack;
  ack.packet_id = 9;
  auto r = session.on_puback(ack);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::UnknownPacketId);
}

TEST_F(SessionQoS1, PubAckForAQoS2PublishIsAProtocolError) {
  connect();
  PubAck ack;
  ack.packet_id = publish("a", QoS::ExactlyOnce);
  auto r = session.on_puback(ack);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::ProtocolError);
}

TEST_F(SessionQoS2, PubRecRepliesPubRelThenPubCompCompletes) {
  connect();
  const auto id = publish("a", QoS::ExactlyOnce);
  PubRec rec;
  rec.packet_id = id;
  auto r1 = session.on_pubrec(rec);
  ASSERT_TRUE(r1);
  ASSERT_TRUE(r1->reply);
  EXPECT_EQ(r1->reply->type, PacketType::PubRel);
  EXPECT_EQ(r1->reply->packet_id, id);
  EXPECT_FALSE(r1->completion);
  EXPECT_EQ(buf.records[0].state, OutgoingState::AwaitPubComp);
  // Still counts for Receive Maximum until PUBCOMP.
  EXPECT_EQ(session.publishes_in_flight(), 1u);
  PubComp comp;
  comp.packet_id = id;
  auto r2 = session.on_pubcomp(comp);
  ASSERT_TRUE(r2);
  ASSERT_TRUE(r2->completion);
  EXPECT_EQ(r2->completion->packet_id, id);
  EXPECT_EQ(r2->completion->reason_code, ReasonCode::Success);
  EXPECT_EQ(session.records_in_use(), 0u);
}

TEST_F(SessionQoS2, FailingPubRecEndsTheFlowWithoutPubRel) {
  connect();
  const auto id = publish("a", QoS::ExactlyOnce);
  PubRec rec;
  rec.packet_id = id;
  rec.reason_code = ReasonCode::QuotaExceeded;  // >= 0x80 [MQTT-4.3.3]
  auto r = session.on_pubrec(rec);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->reply);
  ASSERT_TRUE(r->completion);
  EXPECT_EQ(r->completion->reason_code, ReasonCode::QuotaExceeded);
  EXPECT_EQ(session.records_in_use(), 0u);
}

TEST_F(SessionQoS2, PubCompBeforePubRecIsAProtocolError) {
  connect();
  PubComp comp;
  comp.packet_id = publish("a", QoS::ExactlyOnce);
  auto r = session.on_pubcomp(comp);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::ProtocolError);
}

TEST_F(SessionQoS2, UnknownPubRecIsAnsweredWithPacketIdentifierNotFound) {
  connect();
  PubRec rec;
  rec.packet_id = 42;
  auto r = session.on_pubrec(rec);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->reply);
  EXPECT_EQ(r->reply->type, PacketType::PubRel);
  EXPECT_EQ(r->reply->reason_code, ReasonCode::PacketIdentifierNotFound);
}

TEST_F(SessionFlowControl, ReceiveMaximumMakesTheCallerWait) {
  ConnAck ca;
  ca.properties.set_receive_maximum(2);
  connect(Version::V5, true, ca);
  EXPECT_EQ(session.server_receive_maximum(), 2);
  const auto first = publish("a", QoS::AtLeastOnce);
  publish("a", QoS::ExactlyOnce);
  Publish p;
  p.topic = "a";
  p.qos = QoS::AtLeastOnce;
  auto r = session.begin_publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::ReceiveMaximumExceeded);
  EXPECT_EQ(session.records_in_use(), 2u);  // nothing recorded for the refused one
  // QoS 0 is not subject to Receive Maximum.
  Publish q0;
  q0.topic = "a";
  EXPECT_TRUE(session.begin_publish(q0));
  PubAck ack;
  ack.packet_id = first;
  ASSERT_TRUE(session.on_puback(ack));
  EXPECT_TRUE(session.begin_publish(p));
}

TEST_F(SessionFlowControl, V311HasNoReceiveMaximum) {
  connect(Version::V311);
  for (std::size_t i = 0; i < buf.records.size(); ++i) EXPECT_NE(publish("a", QoS::AtLeastOnce), 0);
}

TEST_F(SessionServerLimits, MaximumPacketSizeIsRespected) {
  ConnAck ca;
  ca.properties.set_maximum_packet_size(64);
  connect(Version::V5, true, ca);
  Publish p;
  p.topic = "a/b";
  p.qos = QoS::AtLeastOnce;
  static constexpr char kBig[100] = {};
  p.payload = as_bytes(std::string_view(kBig, sizeof kBig));
  auto r = session.begin_publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::PacketTooLarge);
  EXPECT_EQ(session.records_in_use(), 0u);
  p.payload = as_bytes(std::string_view(kBig, 40));
  EXPECT_TRUE(session.begin_publish(p));
}

TEST_F(SessionServerLimits, MaximumQoSAndRetainAvailableAreRespected) {
  ConnAck ca;
  ca.properties.set_maximum_qos(QoS::AtLeastOnce);
  ca.properties.set_retain_available(false);
  connect(Version::V5, true, ca);
  Publish p;
  p.topic = "a";
  p.qos = QoS::ExactlyOnce;
  auto r = session.begin_publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::QoSNotSupported);
  p.qos = QoS::AtLeastOnce;
  p.retain = true;
  r = session.begin_publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::RetainNotSupported);
  p.retain = false;
  EXPECT_TRUE(session.begin_publish(p));
}

TEST_F(SessionServerLimits, PublishWhileDisconnectedIsRefused) {
  Publish p;
  p.topic = "a";
  auto r = session.begin_publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::NotConnected);
}

TEST_F(SessionOutboundAlias, FirstUseCarriesTopicAndAliasLaterUsesOnlyTheAlias) {
  ConnAck ca;
  ca.properties.set_topic_alias_maximum(2);
  connect(Version::V5, true, ca);
  Publish p;
  p.topic = "sensors/temp";
  ASSERT_TRUE(session.begin_publish(p));
  EXPECT_EQ(p.topic, "sensors/temp");
  EXPECT_EQ(p.properties.topic_alias(), std::optional<std::uint16_t>(1));

  Publish p2;
  p2.topic = "sensors/temp";
  p2.qos = QoS::AtLeastOnce;
  ASSERT_TRUE(session.begin_publish(p2));
  EXPECT_EQ(p2.topic, "");
  EXPECT_EQ(p2.properties.topic_alias(), std::optional<std::uint16_t>(1));
  // The record keeps the full topic for a resend on a new connection.
  EXPECT_EQ(buf.records[0].publish.topic, "sensors/temp");
  EXPECT_FALSE(buf.records[0].publish.properties.topic_alias());

  Publish p3;
  p3.topic = "sensors/hum";
  ASSERT_TRUE(session.begin_publish(p3));
  EXPECT_EQ(p3.properties.topic_alias(), std::optional<std::uint16_t>(2));
  // The server allows 2: a third topic goes without an alias.
  Publish p4;
  p4.topic = "sensors/other";
  ASSERT_TRUE(session.begin_publish(p4));
  EXPECT_EQ(p4.topic, "sensors/other");
  EXPECT_FALSE(p4.properties.topic_alias());
}

TEST_F(SessionOutboundAlias, AliasesResetOnReconnect) {
  ConnAck ca;
  ca.properties.set_topic_alias_maximum(4);
  connect(Version::V5, true, ca);
  Publish p;
  p.topic = "t";
  ASSERT_TRUE(session.begin_publish(p));
  session.on_connection_lost();
  connect(Version::V5, true, ca);
  Publish again;
  again.topic = "t";
  ASSERT_TRUE(session.begin_publish(again));
  EXPECT_EQ(again.topic, "t");  // mapping is new on this connection [MQTT-3.3.2-7]
  EXPECT_EQ(again.properties.topic_alias(), std::optional<std::uint16_t>(1));
}

TEST_F(SessionOutboundAlias, NoAliasesWithoutServerSupportOrInV311) {
  connect(Version::V5);  // no Topic Alias Maximum in CONNACK: 0
  Publish p;
  p.topic = "t";
  ASSERT_TRUE(session.begin_publish(p));
  EXPECT_FALSE(p.properties.topic_alias());
}

TEST_F(SessionOutboundAlias, CallerSetAliasIsRejected) {
  ConnAck ca;
  ca.properties.set_topic_alias_maximum(4);
  connect(Version::V5, true, ca);
  Publish p;
  p.topic = "t";
  p.properties.set_topic_alias(1);
  auto r = session.begin_publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::InvalidArgument);
}

TEST_F(SessionSubscribe, SubAckCompletesWithTheFirstFailure) {
  connect();
  Subscribe s;
  Subscription subs[] = {{"a/#", {}}, {"b", {}}};
  s.subscriptions = subs;
  ASSERT_TRUE(session.begin_subscribe(s));
  SubAck ack;
  ack.packet_id = s.packet_id;
  const ReasonCode codes[] = {ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized};
  ack.reason_codes = codes;
  auto r = session.on_suback(ack);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->completion);
  EXPECT_EQ(r->completion->kind, OperationKind::Subscribe);
  EXPECT_EQ(r->completion->reason_code, ReasonCode::NotAuthorized);
  EXPECT_EQ(session.records_in_use(), 0u);

  Unsubscribe u;
  const std::string_view filters[] = {"a/#"};
  u.filters = filters;
  ASSERT_TRUE(session.begin_unsubscribe(u));
  UnsubAck uack;
  uack.packet_id = u.packet_id;
  auto r2 = session.on_unsuback(uack);
  ASSERT_TRUE(r2);
  ASSERT_TRUE(r2->completion);
  EXPECT_EQ(r2->completion->kind, OperationKind::Unsubscribe);
  EXPECT_EQ(r2->completion->reason_code, ReasonCode::Success);
}

TEST_F(SessionSubscribe, PendingSubscribeIsReportedLostWhenTheConnectionDrops) {
  connect();
  Subscribe s;
  Subscription subs[] = {{"a", {}}};
  s.subscriptions = subs;
  ASSERT_TRUE(session.begin_subscribe(s));
  session.on_connection_lost();
  EXPECT_EQ(session.pending_lost(), 1u);
  auto lost = session.next_lost();
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->kind, OperationKind::Subscribe);
  EXPECT_EQ(lost->packet_id, s.packet_id);
  EXPECT_FALSE(session.next_lost());
  EXPECT_EQ(session.records_in_use(), 0u);
}

}  // namespace
}  // namespace edgekit::mqtt::test
