// The build switches on the host: the codec and the session built with one protocol version
// (EDGEKIT_MQTT_ENABLE_V311 / _V5), under the same sanitizers and allocation guard as the full
// build. This binary is compiled twice, once per version left out; the device programs of
// scripts/size-report run the same builds on the emulated Cortex-M.
#include <array>
#include <cstdint>
#include <span>
#include <type_traits>

#include <gtest/gtest.h>

#include "edgekit/mqtt/codec.hpp"
#include "edgekit/mqtt/connection.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::mqtt {
namespace {

using OneVersion = edgekit::testing::PureTest;

#if EDGEKIT_MQTT_ENABLE_V5
constexpr Version kOn = Version::V5;
constexpr Version kOff = Version::V311;
#else
constexpr Version kOn = Version::V311;
constexpr Version kOff = Version::V5;
#endif
static_assert(EDGEKIT_MQTT_ENABLE_V5 != EDGEKIT_MQTT_ENABLE_V311, "built with one version only");

Publish message(QoS q = QoS::AtLeastOnce) {
  Publish p;
  p.topic = "t/1";
  p.qos = q;
  p.packet_id = q == QoS::AtMostOnce ? 0 : 7;
  p.payload = as_bytes(std::span<const char>("hello", 5));
  return p;
}

Errc encode_error(const Publish& p, Version v) {
  std::array<std::byte, 256> buf{};
  const auto size = encoded_size(p, v);
  const auto n = encode(p, v, buf);
  EXPECT_EQ(size.has_value(), n.has_value());
  return n ? Errc::Ok : n.error();
}

TEST_F(OneVersion, TheOtherVersionIsRefusedByEveryEntryPoint) {
  std::array<std::byte, 256> buf{};
  EXPECT_EQ(encode_error(message(), kOff), Errc::ProtocolVersionDisabled);
  const auto header = encode_publish_header(message(), kOff, buf);
  ASSERT_FALSE(header.has_value());
  EXPECT_EQ(header.error(), Errc::ProtocolVersionDisabled);
  const auto ack = encode_ack(PacketType::PubAck, 7, ReasonCode::Success, kOff, buf);
  ASSERT_FALSE(ack.has_value());
  EXPECT_EQ(ack.error(), Errc::ProtocolVersionDisabled);

  // Bytes that are a valid PUBACK in either version.
  const std::array<std::byte, 4> puback{std::byte{0x40}, std::byte{0x02}, std::byte{0x00},
                                        std::byte{0x07}};
  Packet out{std::in_place_type<PingResp>};
  const auto decoded = decode_from_server(puback, kOff, out);
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error(), Errc::ProtocolVersionDisabled);
  ASSERT_TRUE(decode_from_server(puback, kOn, out).has_value());
  EXPECT_EQ(std::get<PubAck>(out).packet_id, 7);

  std::array<OutgoingRecord, 2> records{};
  std::array<std::uint16_t, 2> incoming{};
  Session session(SessionStorage{records, incoming, {}, {}, {}}, nullptr, {});
  Connect c;
  c.version = kOff;
  c.client_id = "dev";
  const auto prepared = session.prepare_connect(c);
  ASSERT_FALSE(prepared.has_value());
  EXPECT_EQ(prepared.error(), Errc::ProtocolVersionDisabled);
}

TEST_F(OneVersion, PublishRoundTrips) {
  std::array<std::byte, 256> buf{};
  const Publish p = message();
  const auto n = encode(p, kOn, buf);
  ASSERT_TRUE(n.has_value());
  Packet out{std::in_place_type<PingResp>};
  ASSERT_TRUE(decode_from_server(std::span<const std::byte>(buf.data(), *n), kOn, out));
  const Publish& q = std::get<Publish>(out);
  EXPECT_EQ(q.topic, "t/1");
  EXPECT_EQ(q.packet_id, 7);
  EXPECT_EQ(q.qos, QoS::AtLeastOnce);
  ASSERT_EQ(q.payload.size(), 5u);
}

// A session in the compiled-in version, end to end: CONNECT and CONNACK, a QoS 1 publish out
// and its PUBACK, a QoS 2 publish in (PUBREC, duplicate, PUBREL), a subscription, a resumed
// session's resend and a disconnect, through the codec's own bytes where a driver would use them.
TEST_F(OneVersion, ASessionRunsEndToEnd) {
  std::array<OutgoingRecord, 4> records{};
  std::array<std::uint16_t, 4> incoming{};
  std::array<char, 16> client_id{};
  Session session(SessionStorage{records, incoming, {}, {}, client_id}, nullptr, {});
  std::array<std::byte, 256> buf{};

  Connect c;
  c.version = kOn;
  c.client_id = "dev";
  c.clean_start = false;
  ASSERT_TRUE(session.prepare_connect(c).has_value());
  ASSERT_TRUE(encode(c, kOn, buf).has_value());
  // CONNACK, no session present: bytes that are the same in both versions but for MQTT 5's
  // property length.
  const std::array<std::byte, 5> connack{std::byte{0x20}, std::byte{kOn == Version::V5 ? 3 : 2},
                                         std::byte{0x00}, std::byte{0x00}, std::byte{0x00}};
  Packet in{std::in_place_type<PingResp>};
  ASSERT_TRUE(decode_from_server(std::span<const std::byte>(connack.data(),
                                                            kOn == Version::V5 ? 5u : 4u),
                                 kOn, in)
                  .has_value());
  auto connected = session.on_packet(in);
  ASSERT_TRUE(connected.has_value());
  ASSERT_TRUE(connected->connack.has_value());
  EXPECT_FALSE(connected->connack->session_present);
  EXPECT_TRUE(session.connected());

  Publish out = message();
  ASSERT_TRUE(session.begin_publish(out).has_value());
  EXPECT_NE(out.packet_id, 0);
  ASSERT_TRUE(encode(out, kOn, buf).has_value());
  EXPECT_EQ(session.publishes_in_flight(), 1u);
  const auto ack_bytes = encode_ack(PacketType::PubAck, out.packet_id, ReasonCode::Success, kOn, buf);
  ASSERT_TRUE(ack_bytes.has_value());
  ASSERT_TRUE(decode_from_server(std::span<const std::byte>(buf.data(), *ack_bytes), kOn, in));
  auto done = session.on_packet(in);
  ASSERT_TRUE(done.has_value());
  ASSERT_TRUE(done->completion.has_value());
  EXPECT_EQ(done->completion->packet_id, out.packet_id);
  EXPECT_EQ(session.publishes_in_flight(), 0u);

  Publish q2 = message(QoS::ExactlyOnce);
  q2.packet_id = 9;
  const auto q2_bytes = encode(q2, kOn, buf);
  ASSERT_TRUE(q2_bytes.has_value());
  for (int i = 0; i < 2; ++i) {  // the second time as a duplicate: not delivered again
    ASSERT_TRUE(decode_from_server(std::span<const std::byte>(buf.data(), *q2_bytes), kOn, in));
    auto r = session.on_packet(in);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->deliver, i == 0);
    ASSERT_TRUE(r->reply.has_value());
    EXPECT_EQ(r->reply->type, PacketType::PubRec);
  }
  PubRel rel;
  rel.packet_id = 9;
  auto comp = session.on_pubrel(rel);
  ASSERT_TRUE(comp.has_value());
  ASSERT_TRUE(comp->reply.has_value());
  EXPECT_EQ(comp->reply->type, PacketType::PubComp);

  const Subscription subs[] = {{"a/+", {QoS::AtLeastOnce}}};
  Subscribe s;
  s.subscriptions = subs;
  ASSERT_TRUE(session.begin_subscribe(s).has_value());
  ASSERT_TRUE(encode(s, kOn, buf).has_value());
  SubAck sa;
  sa.packet_id = s.packet_id;
  const ReasonCode granted[] = {ReasonCode::GrantedQoS1};
  sa.reason_codes = granted;
  auto subscribed = session.on_suback(sa);
  ASSERT_TRUE(subscribed.has_value());
  ASSERT_TRUE(subscribed->completion.has_value());
  EXPECT_EQ(subscribed->completion->reason_code, ReasonCode::Success);

  // A publish left unacknowledged goes again, with DUP, after a resumed session.
  Publish pending = message();
  ASSERT_TRUE(session.begin_publish(pending).has_value());
  session.on_connection_lost();
  ASSERT_TRUE(session.prepare_connect(c).has_value());
  ConnAck resumed;
  resumed.session_present = true;
  auto again = session.on_connack(resumed);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->resend_count, 1u);
  Resend resend;
  ASSERT_TRUE(session.next_resend(resend, true));
  EXPECT_EQ(resend.type, PacketType::Publish);
  EXPECT_TRUE(resend.publish.dup);
  EXPECT_EQ(resend.publish.packet_id, pending.packet_id);
  ASSERT_TRUE(encode(resend.publish, kOn, buf).has_value());

  ASSERT_TRUE(session.prepare_disconnect(Disconnect{}).has_value());
  EXPECT_FALSE(session.connected());
}

// Time: the 3.1.1 build keeps it in 32 bits (EDGEKIT_TIME_32, as the cortex-m4 preset does),
// the MQTT 5 build in 64. The same instants, just below 2^31 ms, are where a 32-bit count wraps
// from positive to negative: there the comparisons must still follow the clock (and UBSan
// would report a signed overflow in the arithmetic).
#if EDGEKIT_MQTT_ENABLE_V311
static_assert(EDGEKIT_TIME_32 == 1 && sizeof(Duration::rep) == 4,
              "the 3.1.1 build's time is 32-bit");
#else
static_assert(EDGEKIT_TIME_32 == 0 && sizeof(Duration::rep) == 8,
              "the MQTT 5 build's time is 64-bit");
#endif
constexpr Instant kBeforeWrap{Duration{0x7fff'ffff - 4'000}};
static_assert(kBeforeWrap < kBeforeWrap + Duration{5'000});
static_assert(kBeforeWrap + Duration{5'000} > kBeforeWrap + Duration{4'999});
static_assert((kBeforeWrap + Duration{5'000}) - kBeforeWrap == Duration{5'000});
static_assert(kBeforeWrap - (kBeforeWrap + Duration{5'000}) == Duration{-5'000});
#if EDGEKIT_TIME_32
// The longest timeout still ends later than it starts (64-bit time saturates instead:
// deadline_after).
static_assert(kBeforeWrap + Duration::max() > kBeforeWrap);
// Past 2^32 the count starts again at 0, and 0 comes after it.
static_assert(Instant{Duration{-1}} < Instant{Duration{0}});
static_assert(Instant{Duration{-1}} + Duration{1} == Instant{Duration{0}});
#endif

TEST_F(OneVersion, TheKeepAliveHoldsWhereA32BitClockWraps) {
  std::array<OutgoingRecord, 2> records{};
  std::array<std::uint16_t, 2> incoming{};
  Session session(SessionStorage{records, incoming, {}, {}, {}}, nullptr, {});
  Connect c;
  c.version = kOn;
  c.client_id = "dev";
  c.keep_alive = 10;
  ASSERT_TRUE(session.prepare_connect(c).has_value());
  const Instant t0 = kBeforeWrap;
  session.on_sent(t0);
  ASSERT_TRUE(session.on_connack(ConnAck{}).has_value());
  const auto action = [&](Instant now) {
    const auto r = session.on_timer(now);
    return r ? *r : TimerAction::None;
  };
  // The PINGREQ is due 10 s after the last packet sent, past the wrap.
  ASSERT_EQ(session.next_deadline(), t0 + Duration{10'000});
  EXPECT_EQ(action(t0 + Duration{9'999}), TimerAction::None);
  EXPECT_EQ(action(t0 + Duration{10'000}), TimerAction::SendPingReq);
  session.on_sent(t0 + Duration{10'000});
  // No PINGRESP: the connection is dead 1.5 × keep-alive later, not before.
  EXPECT_TRUE(session.on_timer(t0 + Duration{24'999}).has_value());
  EXPECT_EQ(action(t0 + Duration{24'999}), TimerAction::None);
  const auto timed_out = session.on_timer(t0 + Duration{25'000});
  ASSERT_FALSE(timed_out.has_value());
  EXPECT_EQ(timed_out.error(), Errc::KeepAliveTimeout);
}

#if !EDGEKIT_MQTT_ENABLE_V5
// Without MQTT 5 in the build `Properties` has no members: packets and records carry no
// property storage, and setting a property is a compile error rather than a run-time
// InvalidArgument.
template <class P>
concept HasPayloadFormat = requires(P p) { p.payload_format_utf8(); };
template <class P>
concept HasUserProperties = requires(P p) { p.user_properties; };
static_assert(std::is_empty_v<Properties>);
static_assert(!HasPayloadFormat<Properties> && !HasUserProperties<Properties>);
// [[no_unique_address]]: the empty member takes no room in any packet.
static_assert(sizeof(Disconnect) == sizeof(ReasonCode));
static_assert(sizeof(Publish) <= 4 * sizeof(void*) + 8);

TEST_F(OneVersion, PropertiesOfTheOtherVersionAreRefused) {
  // A 3.1.1 build still decodes only 3.1.1: a property block is never read.
  std::size_t consumed = 1;
  const std::array<std::byte, 1> empty_block{std::byte{0x00}};
  const auto props = decode_properties(empty_block, PacketType::Publish, consumed);
  ASSERT_FALSE(props.has_value());
  EXPECT_EQ(props.error(), Errc::ProtocolVersionDisabled);
  EXPECT_EQ(consumed, 0u);
}
#endif

TEST_F(OneVersion, ConnectOptionsDefaultToTheVersionCompiledIn) {
  // Never a silent MQTT 5 in a 3.1.1-only build (issue 10): the one version there is.
  EXPECT_EQ(ConnectOptions{}.version, EDGEKIT_MQTT_ENABLE_V5 ? Version::V5 : Version::V311);
}

}  // namespace
}  // namespace edgekit::mqtt
