// The build switches on the host: the codec and the session built with one protocol version
// (EDGEKIT_MQTT_ENABLE_V311 / _V5), under the same sanitizers and allocation guard as the full
// build. This binary is compiled twice, once per version left out; the device programs of
// scripts/size-report run the same builds on the emulated Cortex-M.
#include <array>
#include <cstdint>
#include <span>

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
  const auto prepared = session.prepare_connect(c, Instant{});
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

#if !EDGEKIT_MQTT_ENABLE_V5
// Without MQTT 5 in the build the codec checks "no property set" member by member (no property
// table is linked): every kind of member must still be seen.
TEST_F(OneVersion, AnySetPropertyIsRefusedIn311) {
  EXPECT_EQ(encode_error(message(), Version::V311), Errc::Ok);
  {
    Publish p = message();
    p.properties.payload_format_utf8 = false;  // set, even to false
    EXPECT_EQ(encode_error(p, Version::V311), Errc::InvalidArgument);
  }
  {
    Publish p = message();
    p.properties.shared_subscription_available = true;  // the last member
    EXPECT_EQ(encode_error(p, Version::V311), Errc::InvalidArgument);
  }
  {
    Publish p = message();
    p.properties.content_type = "";  // an empty string is still set
    EXPECT_EQ(encode_error(p, Version::V311), Errc::InvalidArgument);
  }
  {
    Publish p = message();
    p.properties.topic_alias = 1;
    EXPECT_EQ(encode_error(p, Version::V311), Errc::InvalidArgument);
  }
  {
    Publish p = message();
    const UserProperty up[] = {{"k", "v"}};
    p.properties.user_properties = up;
    EXPECT_EQ(encode_error(p, Version::V311), Errc::InvalidArgument);
  }
  {
    Publish p = message();
    const std::uint32_t ids[] = {3};
    p.properties.subscription_identifiers = ids;
    EXPECT_EQ(encode_error(p, Version::V311), Errc::InvalidArgument);
  }
  {
    // A list decoded from a property block: the block holds a property, so one is set.
    Publish p = message();
    const std::array<std::byte, 2> block{std::byte{0x01}, std::byte{0x01}};
    p.properties.user_properties = UserProperties::from_block(block);
    EXPECT_EQ(encode_error(p, Version::V311), Errc::InvalidArgument);
    p.properties.user_properties = UserProperties::from_block({});
    EXPECT_EQ(encode_error(p, Version::V311), Errc::Ok);
  }
  {
    Connect c;
    c.version = Version::V311;
    c.client_id = "dev";
    c.properties.receive_maximum = 5;
    std::array<std::byte, 64> buf{};
    const auto n = encode(c, Version::V311, buf);
    ASSERT_FALSE(n.has_value());
    EXPECT_EQ(n.error(), Errc::InvalidArgument);
  }
}
#endif

TEST_F(OneVersion, ConnectOptionsDefaultToTheVersionCompiledIn) {
  // Never a silent MQTT 5 in a 3.1.1-only build (issue 10): the one version there is.
  EXPECT_EQ(ConnectOptions{}.version, EDGEKIT_MQTT_ENABLE_V5 ? Version::V5 : Version::V311);
}

}  // namespace
}  // namespace edgekit::mqtt
