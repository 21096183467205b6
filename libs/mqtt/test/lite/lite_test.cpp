// The minimal MQTT 3.1.1 client over an in-memory transport, in simulated time. What it writes
// is decoded by the full codec (edgekit::mqtt::decode), an independent reader of the same
// protocol; what it reads is written byte by byte here.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "edgekit/mqtt/codec.hpp"
#include "edgekit/mqtt/lite.hpp"
#include "edgekit/testing/manual_clock.hpp"
#include "edgekit/testing/memory_transport.hpp"

namespace edgekit::mqtt::lite {
namespace {

using namespace std::chrono_literals;
using transport::IoStatus;

struct Seen {
  EventType type{};
  Errc error = Errc::Ok;
  std::uint16_t packet_id = 0;
  QoS qos = QoS::AtMostOnce;
  bool retain = false;
  bool dup = false;
  bool pubrec_received = false;
  std::string topic;
  std::string payload;
  std::vector<std::uint8_t> codes;
};

class LiteTest : public ::testing::Test {
 public:
  // The handler (Handler::bind(*this)): copies every event.
  void operator()(Client&, const Event& e) {
    Seen s{e.type, e.error, e.packet_id, e.qos, e.retain, e.dup, e.pubrec_received,
           std::string(e.topic), std::string(as_string(e.payload)), {}};
    for (std::byte b : e.return_codes) s.codes.push_back(static_cast<std::uint8_t>(b));
    seen.push_back(s);
    if (on_event) on_event(e);
  }

 protected:
  LiteTest() { net.attach_clock(&clock); }

  void push(std::initializer_list<int> bytes) {
    std::vector<std::byte> v;
    for (int b : bytes) v.push_back(static_cast<std::byte>(b));
    net.push_inbound(v);
  }

  // Every packet written since the last call, decoded as a server would.
  std::vector<Packet> sent() {
    out = net.take_outbound();
    std::vector<Packet> packets;
    Bytes rest(out.data(), out.size());
    while (!rest.empty()) {
      auto f = read_frame(rest);
      EXPECT_TRUE(f.has_value() && f->complete) << "a cut or malformed packet";
      if (!f || !f->complete) break;
      auto p = decode(rest.first(f->header.packet_size()), Version::V311);
      EXPECT_TRUE(p.has_value()) << to_string(p.error());
      if (!p) break;
      packets.push_back(*p);
      rest = rest.subspan(f->header.packet_size());
    }
    return packets;
  }

  // Connects; the CONNACK is queued before the call, as a broker on the same machine answers.
  void connect(bool clean = true, bool session_present = false) {
    push({0x20, 2, session_present ? 1 : 0, 0});
    ConnectOptions o;
    o.client_id = "dev-1";
    o.clean_session = clean;
    o.keep_alive_s = keep_alive_s;
    auto r = client.connect(net, o, 5s);
    ASSERT_TRUE(r.has_value()) << to_string(r.error());
    EXPECT_EQ(*r, session_present);
  }

  // Packet `i` as a `T` (a copy: its views point into `out`, which lives until the next sent()).
  template <class T>
  T only(const std::vector<Packet>& packets, std::size_t i = 0) {
    EXPECT_LT(i, packets.size());
    if (i >= packets.size()) return T{};
    const T* p = std::get_if<T>(&packets[i]);
    EXPECT_NE(p, nullptr) << "packet " << i << " has another type";
    return p != nullptr ? *p : T{};
  }

  testing::ManualClock clock;
  testing::MemoryTransport net;
  std::array<Record, 4> records{};
  std::array<std::uint16_t, 2> qos2{};
  std::array<std::byte, 128> rx{};
  std::vector<Seen> seen;
  std::function<void(const Event&)> on_event;
  std::uint16_t keep_alive_s = 0;
  std::vector<std::byte> out;
  Client client{clock, records, qos2, rx, Handler::bind(*this)};
};

// --- connect ------------------------------------------------------------------------------------

TEST_F(LiteTest, ConnectWritesEveryFieldAndReturnsSessionPresent) {
  push({0x20, 2, 1, 0});
  Will will{"dev/status", as_bytes("gone"), QoS::AtLeastOnce, true};
  ConnectOptions o;
  o.client_id = "dev-1";
  o.clean_session = false;
  o.keep_alive_s = 30;
  o.username = "user";
  o.password = as_bytes("secret");
  o.will = &will;
  auto r = client.connect(net, o, 5s);
  ASSERT_TRUE(r.has_value()) << to_string(r.error());
  EXPECT_TRUE(*r);
  EXPECT_TRUE(client.connected());
  auto packets = sent();
  ASSERT_EQ(packets.size(), 1u);
  const auto c = only<Connect>(packets);
  EXPECT_EQ(c.version, Version::V311);
  EXPECT_EQ(c.client_id, "dev-1");
  EXPECT_FALSE(c.clean_start);
  EXPECT_EQ(c.keep_alive, 30);
  EXPECT_EQ(c.username, std::optional<std::string_view>("user"));
  ASSERT_TRUE(c.password.has_value());
  EXPECT_EQ(as_string(*c.password), "secret");
  ASSERT_TRUE(c.will.has_value());
  EXPECT_EQ(c.will->topic, "dev/status");
  EXPECT_EQ(as_string(c.will->payload), "gone");
  EXPECT_EQ(c.will->qos, QoS::AtLeastOnce);
  EXPECT_TRUE(c.will->retain);
}

TEST_F(LiteTest, ConnectRefusedReturnsConnectionRefusedWithTheCode) {
  push({0x20, 2, 0, 5});
  ConnectOptions o;
  o.client_id = "dev-1";
  auto r = client.connect(net, o, 5s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::ConnectionRefused);
  EXPECT_EQ(client.connack_code(), 5);
  EXPECT_FALSE(client.connected());
  EXPECT_TRUE(net.closed_by_client());
}

TEST_F(LiteTest, ConnectWithoutConnAckTimesOutInSimulatedTime) {
  ConnectOptions o;
  o.client_id = "dev-1";
  const Instant start = clock.now();
  auto r = client.connect(net, o, 3s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::Timeout);
  EXPECT_EQ(clock.now() - start, 3s);
  EXPECT_TRUE(net.closed_by_client());
}

TEST_F(LiteTest, ConnectRefusesBadOptionsBeforeWriting) {
  ConnectOptions o;
  o.clean_session = false;  // an empty client id needs a clean session [MQTT-3.1.3-7]
  EXPECT_EQ(client.connect(net, o, 1s).error(), Errc::InvalidArgument);
  o.client_id = "dev";
  o.password = as_bytes("p");  // a password without a user name [MQTT-3.1.2-22]
  EXPECT_EQ(client.connect(net, o, 1s).error(), Errc::InvalidArgument);
  o.password.reset();
  Will will{"a/+", as_bytes("x")};
  o.will = &will;
  EXPECT_EQ(client.connect(net, o, 1s).error(), Errc::WildcardInTopicName);
  o.will = nullptr;
  o.client_id = std::string_view("a\0b", 3);
  EXPECT_EQ(client.connect(net, o, 1s).error(), Errc::NullCharacterInString);
  EXPECT_TRUE(net.outbound().empty());
  EXPECT_FALSE(net.closed_by_client());
}

TEST_F(LiteTest, AFirstPacketOtherThanConnAckIsAProtocolError) {
  push({0xD0, 0});
  ConnectOptions o;
  o.client_id = "dev-1";
  EXPECT_EQ(client.connect(net, o, 1s).error(), Errc::ProtocolError);
}

TEST_F(LiteTest, ASessionPresentFlagAfterACleanSessionIsAProtocolError) {
  push({0x20, 2, 1, 0});
  ConnectOptions o;
  o.client_id = "dev-1";
  EXPECT_EQ(client.connect(net, o, 1s).error(), Errc::ProtocolError);
}

TEST_F(LiteTest, AMalformedConnAckIsRefused) {
  push({0x20, 2, 2, 0});  // reserved flag bit
  ConnectOptions o;
  o.client_id = "dev-1";
  EXPECT_EQ(client.connect(net, o, 1s).error(), Errc::MalformedPacket);
}

// --- publish ------------------------------------------------------------------------------------

TEST_F(LiteTest, QoS0PublishIsOneWriteOfTheCallersBytes) {
  connect();
  (void)sent();
  net.reset_stats();
  auto id = client.publish("a/b", as_bytes("hello"), QoS::AtMostOnce, true, 1s);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(*id, 0);
  EXPECT_EQ(net.stats().write_calls(), 1u);
  auto packets = sent();
  const auto p = only<Publish>(packets);
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(as_string(p.payload), "hello");
  EXPECT_EQ(p.qos, QoS::AtMostOnce);
  EXPECT_TRUE(p.retain);
  EXPECT_EQ(client.outstanding(), 0u);
}

TEST_F(LiteTest, QoS1PublishCompletesOnItsPubAck) {
  connect();
  (void)sent();
  auto id = client.publish("a/b", as_bytes("x"), QoS::AtLeastOnce, false, 1s);
  ASSERT_TRUE(id.has_value());
  EXPECT_NE(*id, 0);
  const auto p = only<Publish>(sent());
  EXPECT_EQ(p.packet_id, *id);
  EXPECT_EQ(p.qos, QoS::AtLeastOnce);
  EXPECT_EQ(client.outstanding(), 1u);
  push({0x40, 2, *id >> 8, *id & 0xFF});
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].type, EventType::PublishCompleted);
  EXPECT_EQ(seen[0].packet_id, *id);
  EXPECT_EQ(client.outstanding(), 0u);
}

TEST_F(LiteTest, QoS2PublishSendsPubRelOnPubRecAndCompletesOnPubComp) {
  connect();
  (void)sent();
  auto id = client.publish("a/b", as_bytes("x"), QoS::ExactlyOnce, false, 1s);
  ASSERT_TRUE(id.has_value());
  (void)sent();
  push({0x50, 2, *id >> 8, *id & 0xFF});
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(only<PubRel>(sent()).packet_id, *id);
  push({0x70, 2, *id >> 8, *id & 0xFF});
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].type, EventType::PublishCompleted);
  EXPECT_EQ(client.outstanding(), 0u);
}

TEST_F(LiteTest, EveryRecordInUseIsSessionStateFullAndNotFatal) {
  connect();
  for (std::size_t i = 0; i < records.size(); ++i) {
    ASSERT_TRUE(client.publish("t", as_bytes("x"), QoS::AtLeastOnce, false, 1s).has_value());
  }
  auto r = client.publish("t", as_bytes("x"), QoS::AtLeastOnce, false, 1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::SessionStateFull);
  EXPECT_TRUE(client.connected());
  // QoS 0 needs no record.
  EXPECT_TRUE(client.publish("t", as_bytes("x"), QoS::AtMostOnce, false, 1s).has_value());
}

TEST_F(LiteTest, PacketIdsAreUniqueAmongOutstandingRecords) {
  connect();
  std::vector<std::uint16_t> ids;
  for (int i = 0; i < 3; ++i) {
    auto id = client.publish("t", as_bytes("x"), QoS::AtLeastOnce, false, 1s);
    ASSERT_TRUE(id.has_value());
    for (std::uint16_t other : ids) EXPECT_NE(*id, other);
    ids.push_back(*id);
  }
}

TEST_F(LiteTest, PublishRefusesABadTopicWithoutClosing) {
  connect();
  EXPECT_EQ(client.publish("a/#", {}, QoS::AtMostOnce, false, 1s).error(),
            Errc::WildcardInTopicName);
  EXPECT_EQ(client.publish("", {}, QoS::AtMostOnce, false, 1s).error(), Errc::EmptyTopic);
  EXPECT_EQ(client.publish("t", {}, static_cast<QoS>(3), false, 1s).error(), Errc::InvalidQoS);
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(client.outstanding(), 0u);
}

TEST_F(LiteTest, PartialWritesAndOneByteReadsGiveTheSamePackets) {
  net.set_send_cap(3);
  net.set_recv_chunk(1);
  connect();
  (void)sent();
  auto id = client.publish("topic/with/levels", as_bytes("payload of some length"),
                           QoS::AtLeastOnce, false, 1s);
  ASSERT_TRUE(id.has_value());
  const auto p = only<Publish>(sent());
  EXPECT_EQ(p.topic, "topic/with/levels");
  EXPECT_EQ(as_string(p.payload), "payload of some length");
  push({0x40, 2, *id >> 8, *id & 0xFF});
  for (int i = 0; i < 4 && seen.empty(); ++i) ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].type, EventType::PublishCompleted);
}

TEST_F(LiteTest, AWriteThatCannotFinishByItsDeadlineClosesWithTimeout) {
  connect();
  net.script_send({IoStatus::WouldBlock, IoStatus::WouldBlock, IoStatus::WouldBlock});
  net.on_wait([&](transport::Interest, std::uint32_t ms) { clock.advance(Duration{ms}); });
  auto r = client.publish("t", as_bytes("x"), QoS::AtLeastOnce, false, 2s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::Timeout);
  EXPECT_FALSE(client.connected());
  // The call reported the failure: its record is not reported again as lost.
  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(client.outstanding(), 0u);
}

// --- incoming -----------------------------------------------------------------------------------

TEST_F(LiteTest, AnIncomingQoS1MessageIsDeliveredThenAcknowledged) {
  connect();
  (void)sent();
  on_event = [&](const Event&) { EXPECT_TRUE(net.outbound().empty()) << "ack before delivery"; };
  push({0x33, 9, 0, 3, 'a', '/', 'b', 0x12, 0x34, 'h', 'i'});
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].type, EventType::MessageReceived);
  EXPECT_EQ(seen[0].topic, "a/b");
  EXPECT_EQ(seen[0].payload, "hi");
  EXPECT_EQ(seen[0].qos, QoS::AtLeastOnce);
  EXPECT_TRUE(seen[0].retain);
  EXPECT_EQ(seen[0].packet_id, 0x1234);
  EXPECT_EQ(only<PubAck>(sent()).packet_id, 0x1234);
}

TEST_F(LiteTest, AnIncomingQoS2MessageIsDeliveredOnceAndReleased) {
  connect();
  (void)sent();
  const std::initializer_list<int> message = {0x34, 7, 0, 1, 't', 0, 9, 'h', 'i'};
  push(message);
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_EQ(only<PubRec>(sent()).packet_id, 9);
  push({0x3C, 7, 0, 1, 't', 0, 9, 'h', 'i'});  // the same, DUP, before PUBREL
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_EQ(only<PubRec>(sent()).packet_id, 9);
  EXPECT_EQ(seen.size(), 1u) << "a resend awaiting PUBREL is not delivered again";
  push({0x62, 2, 0, 9});
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_EQ(only<PubComp>(sent()).packet_id, 9);
  push(message);  // id 9 is free again: a new message
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_EQ(seen.size(), 2u);
}

TEST_F(LiteTest, MoreOpenInboundQoS2IdsThanSlotsClosesWithSessionStateFull) {
  connect();
  push({0x34, 5, 0, 1, 't', 0, 1});
  push({0x34, 5, 0, 1, 't', 0, 2});
  push({0x34, 5, 0, 1, 't', 0, 3});
  auto r = client.process_loop(1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::SessionStateFull);
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_FALSE(client.connected());
}

TEST_F(LiteTest, APubRelForAnUnknownIdIsStillAnsweredWithPubComp) {
  connect();
  (void)sent();
  push({0x62, 2, 0, 77});
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_EQ(only<PubComp>(sent()).packet_id, 77);
}

TEST_F(LiteTest, SeveralPacketsInOneReadAreAllHandled) {
  connect();
  push({0x30, 4, 0, 1, 'a', '1', 0x30, 4, 0, 1, 'b', '2', 0x30, 4, 0, 1, 'c', '3'});
  ASSERT_TRUE(client.process_loop(0ms).has_value());
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].topic, "c");
  EXPECT_EQ(seen[2].payload, "3");
}

TEST_F(LiteTest, APacketLargerThanTheReceiveBufferIsReportedNotDropped) {
  connect();
  // Remaining length 200 > 128 bytes of buffer: refused as soon as the length is known.
  push({0x30, 0xC8, 0x01, 0, 1, 't'});
  auto r = client.process_loop(1s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::IncomingPacketTooLarge);
  EXPECT_FALSE(client.connected());
}

struct Malformed {
  const char* name;
  std::initializer_list<int> bytes;
  Errc error;
};

TEST_F(LiteTest, MalformedOrUnexpectedPacketsCloseWithTheirOwnError) {
  const Malformed cases[] = {
      {"PUBACK of 3 bytes", {0x40, 3, 0, 1, 0}, Errc::MalformedPacket},
      {"PUBACK with flags", {0x41, 2, 0, 1}, Errc::ReservedFlagsSet},
      {"PUBREL without its flags", {0x60, 2, 0, 1}, Errc::ReservedFlagsSet},
      {"PUBACK for no record", {0x40, 2, 0, 1}, Errc::UnknownPacketId},
      {"PUBACK id 0", {0x40, 2, 0, 0}, Errc::PacketIdZero},
      {"PUBLISH QoS 3", {0x36, 5, 0, 1, 't', 0, 1}, Errc::InvalidQoS},
      {"PUBLISH QoS 0 with DUP", {0x38, 3, 0, 1, 't'}, Errc::MalformedPacket},
      {"PUBLISH topic past the end", {0x30, 3, 0, 9, 't'}, Errc::MalformedPacket},
      {"PUBLISH wildcard topic", {0x30, 3, 0, 1, '#'}, Errc::WildcardInTopicName},
      {"PUBLISH bad UTF-8", {0x30, 3, 0, 1, 0xFF}, Errc::InvalidUtf8},
      {"PUBLISH QoS 1 id 0", {0x32, 5, 0, 1, 't', 0, 0}, Errc::PacketIdZero},
      {"a second CONNACK", {0x20, 2, 0, 0}, Errc::ProtocolError},
      {"SUBSCRIBE from the server", {0x82, 6, 0, 1, 0, 1, 't', 0}, Errc::ProtocolError},
      {"PINGREQ from the server", {0xC0, 0}, Errc::ProtocolError},
      {"DISCONNECT from the server", {0xE0, 0}, Errc::ProtocolError},
      {"AUTH (MQTT 5 only)", {0xF0, 0}, Errc::ProtocolError},
      {"PINGRESP with a body", {0xD0, 1, 0}, Errc::MalformedPacket},
      {"reserved type 0", {0x00, 0}, Errc::InvalidPacketType},
      {"5-byte remaining length", {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, Errc::MalformedRemainingLength},
  };
  for (const Malformed& c : cases) {
    SCOPED_TRACE(c.name);
    net.~MemoryTransport();
    new (&net) testing::MemoryTransport();
    net.attach_clock(&clock);
    connect();
    push(c.bytes);
    auto r = client.process_loop(1s);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), c.error) << to_string(r.error());
    EXPECT_FALSE(client.connected());
    EXPECT_TRUE(net.closed_by_client());
  }
}

// --- subscribe / unsubscribe ----------------------------------------------------------------------

TEST_F(LiteTest, ASubscribeOfManyFiltersIsOnePacketAndItsSubAckCodesAreReported) {
  connect();
  (void)sent();
  // Seven filters: more than one batch of pieces.
  const std::array<Filter, 7> filters = {{{"a/1", QoS::AtMostOnce},
                                          {"a/2", QoS::AtLeastOnce},
                                          {"a/+/3", QoS::ExactlyOnce},
                                          {"b/#", QoS::AtLeastOnce},
                                          {"c", QoS::AtMostOnce},
                                          {"d/e/f", QoS::ExactlyOnce},
                                          {"#", QoS::AtLeastOnce}}};
  auto id = client.subscribe(filters, 1s);
  ASSERT_TRUE(id.has_value());
  const auto s = only<Subscribe>(sent());
  EXPECT_EQ(s.packet_id, *id);
  std::size_t i = 0;
  for (const Subscription& sub : s.subscriptions) {
    ASSERT_LT(i, filters.size());
    EXPECT_EQ(sub.filter, filters[i].filter);
    EXPECT_EQ(sub.options.qos, filters[i].qos);
    ++i;
  }
  EXPECT_EQ(i, filters.size());
  push({0x90, 9, *id >> 8, *id & 0xFF, 0, 1, 2, 1, 0x80, 2, 1});
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].type, EventType::SubscribeCompleted);
  EXPECT_EQ(seen[0].error, Errc::Ok);
  EXPECT_EQ(seen[0].codes, (std::vector<std::uint8_t>{0, 1, 2, 1, 0x80, 2, 1}));
  EXPECT_EQ(client.outstanding(), 0u);
}

TEST_F(LiteTest, ASubAckWithTheWrongNumberOfCodesIsMalformed) {
  connect();
  const Filter f[] = {{"a", QoS::AtMostOnce}, {"b", QoS::AtMostOnce}};
  auto id = client.subscribe(f, 1s);
  ASSERT_TRUE(id.has_value());
  push({0x90, 3, *id >> 8, *id & 0xFF, 0});
  EXPECT_EQ(client.process_loop(1s).error(), Errc::MalformedPacket);
}

TEST_F(LiteTest, SubscribeRefusesBadFiltersWithoutClosing) {
  connect();
  EXPECT_EQ(client.subscribe(std::span<const Filter>{}, 1s).error(), Errc::EmptySubscriptionList);
  const Filter bad[] = {{"a/#/b", QoS::AtMostOnce}};
  EXPECT_EQ(client.subscribe(bad, 1s).error(), Errc::InvalidTopicFilter);
  const Filter qos3[] = {{"a", static_cast<QoS>(3)}};
  EXPECT_EQ(client.subscribe(qos3, 1s).error(), Errc::InvalidQoS);
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(client.outstanding(), 0u);
}

TEST_F(LiteTest, UnsubscribeCompletesOnItsUnsubAck) {
  connect();
  (void)sent();
  const std::string_view filters[] = {"a/#", "b"};
  auto id = client.unsubscribe(filters, 1s);
  ASSERT_TRUE(id.has_value());
  const auto u = only<Unsubscribe>(sent());
  EXPECT_EQ(u.packet_id, *id);
  std::vector<std::string_view> got;
  for (std::string_view f : u.filters) got.push_back(f);
  EXPECT_EQ(got, (std::vector<std::string_view>{"a/#", "b"}));
  push({0xB0, 2, *id >> 8, *id & 0xFF});
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].type, EventType::UnsubscribeCompleted);
  EXPECT_EQ(seen[0].error, Errc::Ok);
}

// --- keep-alive -----------------------------------------------------------------------------------

TEST_F(LiteTest, AnIdleConnectionSendsPingReqAtTheKeepAliveInterval) {
  keep_alive_s = 10;
  connect();
  (void)sent();
  const Instant start = clock.now();
  ASSERT_TRUE(client.process_loop(9s).has_value());
  EXPECT_TRUE(sent().empty());
  ASSERT_TRUE(client.process_loop(2s).has_value());
  auto packets = sent();
  ASSERT_EQ(packets.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<PingReq>(packets[0]));
  EXPECT_EQ(clock.now() - start, 11s);
  push({0xD0, 0});
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_TRUE(client.connected());
}

TEST_F(LiteTest, APublishRestartsTheKeepAliveInterval) {
  keep_alive_s = 10;
  connect();
  ASSERT_TRUE(client.process_loop(8s).has_value());
  ASSERT_TRUE(client.publish("t", {}, QoS::AtMostOnce, false, 1s).has_value());
  (void)sent();
  ASSERT_TRUE(client.process_loop(9s).has_value());
  EXPECT_TRUE(sent().empty()) << "no PINGREQ within 10 s of the PUBLISH";
}

TEST_F(LiteTest, NoPingRespInTimeClosesWithKeepAliveTimeout) {
  keep_alive_s = 10;
  connect();
  auto r = client.process_loop(60s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::KeepAliveTimeout);
  EXPECT_FALSE(client.connected());
}

TEST_F(LiteTest, AZeroPingTimeoutWaitsOneAndAHalfKeepAliveIntervalsForThePingResp) {
  push({0x20, 2, 0, 0});
  ConnectOptions o;
  o.client_id = "dev-1";
  o.keep_alive_s = 10;
  o.ping_timeout = Duration{0};
  ASSERT_TRUE(client.connect(net, o, 5s).has_value());
  const Instant start = clock.now();
  auto r = client.process_loop(60s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::KeepAliveTimeout);
  EXPECT_EQ(clock.now() - start, 25s) << "PINGREQ at 10 s, then 15 s without PINGRESP";
}

// --- resume and loss ----------------------------------------------------------------------------

TEST_F(LiteTest, AResumedSessionResendsPublishesWithDupAndPubRelsOldestFirst) {
  connect(false);
  auto a = client.publish("t/a", as_bytes("1"), QoS::AtLeastOnce, false, 1s);
  auto b = client.publish("t/b", as_bytes("2"), QoS::ExactlyOnce, false, 1s);
  auto c = client.publish("t/c", as_bytes("3"), QoS::ExactlyOnce, false, 1s);
  ASSERT_TRUE(a && b && c);
  push({0x50, 2, *b >> 8, *b & 0xFF});  // b's PUBREC: b now awaits PUBCOMP
  ASSERT_TRUE(client.process_loop(1s).has_value());
  net.close_inbound();
  EXPECT_EQ(client.process_loop(1s).error(), Errc::TransportClosed);
  EXPECT_TRUE(seen.empty()) << "a persistent session keeps its records";

  net.~MemoryTransport();
  new (&net) testing::MemoryTransport();
  net.attach_clock(&clock);
  connect(false, true);
  auto packets = sent();
  ASSERT_EQ(packets.size(), 4u);  // CONNECT, then the three in their first order
  const auto ra = only<Publish>(packets, 1);
  EXPECT_EQ(ra.packet_id, *a);
  EXPECT_TRUE(ra.dup);
  EXPECT_EQ(ra.topic, "t/a");
  EXPECT_EQ(only<PubRel>(packets, 2).packet_id, *b);
  const auto rc = only<Publish>(packets, 3);
  EXPECT_EQ(rc.packet_id, *c);
  EXPECT_TRUE(rc.dup);
  EXPECT_EQ(rc.qos, QoS::ExactlyOnce);
  EXPECT_EQ(client.outstanding(), 3u);
}

TEST_F(LiteTest, ASessionTheBrokerForgotReportsEveryPublishLost) {
  connect(false);
  auto a = client.publish("t/a", as_bytes("1"), QoS::AtLeastOnce, false, 1s);
  auto b = client.publish("t/b", as_bytes("2"), QoS::ExactlyOnce, false, 1s);
  ASSERT_TRUE(a && b);
  push({0x50, 2, *b >> 8, *b & 0xFF});
  ASSERT_TRUE(client.process_loop(1s).has_value());
  ASSERT_TRUE(client.disconnect().has_value());
  EXPECT_TRUE(seen.empty());

  net.~MemoryTransport();
  new (&net) testing::MemoryTransport();
  net.attach_clock(&clock);
  connect(false, false);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].type, EventType::MessageLost);
  EXPECT_EQ(seen[0].packet_id, *a);
  EXPECT_EQ(seen[0].topic, "t/a");
  EXPECT_EQ(seen[0].payload, "1");
  EXPECT_FALSE(seen[0].pubrec_received);
  EXPECT_EQ(seen[1].type, EventType::MessageLost);
  EXPECT_EQ(seen[1].qos, QoS::ExactlyOnce);
  EXPECT_TRUE(seen[1].pubrec_received);
  EXPECT_EQ(client.outstanding(), 0u);
  EXPECT_EQ(sent().size(), 1u) << "nothing resent";
}

TEST_F(LiteTest, ACleanSessionsRecordsAreLostWithItsConnection) {
  connect(true);
  ASSERT_TRUE(client.publish("t", as_bytes("1"), QoS::AtLeastOnce, false, 1s).has_value());
  const Filter f[] = {{"a", QoS::AtMostOnce}};
  ASSERT_TRUE(client.subscribe(f, 1s).has_value());
  net.close_inbound();
  EXPECT_EQ(client.process_loop(1s).error(), Errc::TransportClosed);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].type, EventType::MessageLost);
  EXPECT_EQ(seen[1].type, EventType::SubscribeCompleted);
  EXPECT_EQ(seen[1].error, Errc::NotConnected);
  EXPECT_EQ(client.outstanding(), 0u);
}

TEST_F(LiteTest, APendingSubscribeIsReportedWhenThePersistentConnectionEnds) {
  connect(false);
  ASSERT_TRUE(client.publish("t", as_bytes("1"), QoS::AtLeastOnce, false, 1s).has_value());
  const std::string_view f[] = {"a"};
  ASSERT_TRUE(client.unsubscribe(f, 1s).has_value());
  net.fail(104);
  EXPECT_EQ(client.process_loop(1s).error(), Errc::TransportError);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].type, EventType::UnsubscribeCompleted);
  EXPECT_EQ(seen[0].error, Errc::NotConnected);
  EXPECT_EQ(client.outstanding(), 1u) << "the publish is kept for the resume";
}

// --- the handler ----------------------------------------------------------------------------------

TEST_F(LiteTest, TheHandlerMayPublishAndDisconnectButNotRunTheLoop) {
  connect();
  (void)sent();
  on_event = [&](const Event& e) {
    if (e.type != EventType::MessageReceived) return;
    EXPECT_EQ(client.process_loop(0ms).error(), Errc::CalledFromHandler);
    EXPECT_TRUE(client.publish("reply", e.payload, QoS::AtMostOnce, false, 1s).has_value());
    EXPECT_TRUE(client.disconnect().has_value());
  };
  push({0x32, 6, 0, 1, 'q', 0, 5, 'x', 0x30, 3, 0, 1, 'n'});
  ASSERT_TRUE(client.process_loop(1s).has_value());
  EXPECT_FALSE(client.connected());
  auto packets = sent();
  ASSERT_EQ(packets.size(), 2u) << "the reply and DISCONNECT; no PUBACK after disconnect";
  EXPECT_EQ(only<Publish>(packets, 0).topic, "reply");
  EXPECT_TRUE(std::holds_alternative<Disconnect>(packets[1]));
  EXPECT_EQ(seen.size(), 1u) << "the second message stays unhandled";
}

TEST_F(LiteTest, CallsWithoutAConnectionReturnNotConnected) {
  EXPECT_EQ(client.publish("t", {}, QoS::AtMostOnce, false, 1s).error(), Errc::NotConnected);
  EXPECT_EQ(client.process_loop(1s).error(), Errc::NotConnected);
  EXPECT_EQ(client.disconnect().error(), Errc::NotConnected);
  const std::string_view f[] = {"a"};
  EXPECT_EQ(client.unsubscribe(f, 1s).error(), Errc::NotConnected);
}

}  // namespace
}  // namespace edgekit::mqtt::lite
