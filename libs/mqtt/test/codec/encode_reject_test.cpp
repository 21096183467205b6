// The encoder never puts on the wire what a conforming peer would reject; and the property
// table (which property in which packet) is checked for every pair, on both sides.
#include "codec_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using EncodeRejects = edgekit::testing::PureTest;
using PropertyTable = edgekit::testing::PureTest;

#if EDGEKIT_MQTT_ENABLE_V5
// A property is written only through its setter, which also marks it present: a value written
// past it would have no presence bit and would silently not be sent, so the storage is private
// and such a write does not compile. (`Open` shows that the check can see a public field.)
template <class P>
concept WritesStorageDirectly = requires(P p) { p.storage_.topic_alias_ = std::uint16_t{1}; };
struct Open {
  struct {
    std::uint16_t topic_alias_;
  } storage_;
};
static_assert(WritesStorageDirectly<Open>);
static_assert(!WritesStorageDirectly<Properties>);
static_assert(requires(Properties p) { p.set_topic_alias(1); });
#endif

template <class T>
Errc encode_error(const T& p, Version v) {
  std::array<std::byte, 1024> buf{};
  auto s = encoded_size(p, v);
  auto r = encode(p, v, buf);
  EXPECT_EQ(s.has_value(), r.has_value());
  if (s && r) {
    EXPECT_EQ(*s, *r);
  }
  return r ? Errc::Ok : r.error();
}

Publish publish(std::string_view topic, QoS q = QoS::AtMostOnce, std::uint16_t id = 0) {
  Publish p;
  p.topic = topic;
  p.qos = q;
  p.packet_id = id;
  return p;
}

TEST_F(EncodeRejects, PublishFields) {
  EXPECT_EQ(encode_error(publish("a/+"), Version::V5), Errc::WildcardInTopicName);
  EXPECT_EQ(encode_error(publish("#"), Version::V311), Errc::WildcardInTopicName);
  EXPECT_EQ(encode_error(publish(""), Version::V311), Errc::EmptyTopic);
  EXPECT_EQ(encode_error(publish(""), Version::V5), Errc::EmptyTopic);
  EXPECT_EQ(encode_error(publish("a\xED\xA0\x80"), Version::V5), Errc::InvalidUtf8);
  EXPECT_EQ(encode_error(publish(std::string_view("a\0", 2)), Version::V5),
            Errc::NullCharacterInString);
  EXPECT_EQ(encode_error(publish("a", QoS::AtLeastOnce, 0), Version::V5), Errc::PacketIdZero);
  EXPECT_EQ(encode_error(publish("a", static_cast<QoS>(3), 1), Version::V5), Errc::InvalidQoS);
  Publish dup = publish("a");
  dup.dup = true;  // [MQTT-3.3.1-2]
  EXPECT_EQ(encode_error(dup, Version::V5), Errc::InvalidArgument);
  // An empty topic with a Topic Alias is fine in MQTT 5.
  Publish alias = publish("");
  alias.properties.set_topic_alias(4);
  EXPECT_EQ(encode_error(alias, Version::V5), Errc::Ok);
  EXPECT_EQ(encode_error(alias, Version::V311), Errc::EmptyTopic);
}

TEST_F(EncodeRejects, PropertiesInV311) {
  Publish p = publish("a");
  p.properties.set_message_expiry_interval(5);
  EXPECT_EQ(encode_error(p, Version::V311), Errc::InvalidArgument);
  constexpr UserProperty ups[] = {{"k", "v"}};
  PubAck a;
  a.packet_id = 1;
  a.properties.user_properties = ups;
  EXPECT_EQ(encode_error(a, Version::V311), Errc::InvalidArgument);
  Connect c;
  c.version = Version::V311;
  c.will = Will{"t", {}, QoS::AtMostOnce, false, {}};
  c.will->properties.set_will_delay_interval(1);
  EXPECT_EQ(encode_error(c, Version::V311), Errc::InvalidArgument);
}

TEST_F(EncodeRejects, PropertyValues) {
  ConnAck a;
  a.properties.set_receive_maximum(0);
  EXPECT_EQ(encode_error(a, Version::V5), Errc::InvalidPropertyValue);
  a.properties.clear_receive_maximum();
  a.properties.set_maximum_packet_size(0);
  EXPECT_EQ(encode_error(a, Version::V5), Errc::InvalidPropertyValue);
  a.properties.clear_maximum_packet_size();
  a.properties.set_maximum_qos(QoS::ExactlyOnce);
  EXPECT_EQ(encode_error(a, Version::V5), Errc::InvalidPropertyValue);
  Publish p = publish("a");
  p.properties.set_topic_alias(0);
  EXPECT_EQ(encode_error(p, Version::V5), Errc::InvalidPropertyValue);
  p.properties.clear_topic_alias();
  constexpr std::uint32_t zero[] = {0};
  constexpr std::uint32_t big[] = {kMaxVarInt + 1};
  p.properties.subscription_identifiers = zero;
  EXPECT_EQ(encode_error(p, Version::V5), Errc::InvalidPropertyValue);
  p.properties.subscription_identifiers = big;
  EXPECT_EQ(encode_error(p, Version::V5), Errc::InvalidPropertyValue);
  p.properties.subscription_identifiers = {};
  p.properties.set_response_topic("r/#");
  EXPECT_EQ(encode_error(p, Version::V5), Errc::WildcardInTopicName);
  constexpr UserProperty bad[] = {{"k", "\xC0\x80"}};
  p.properties.clear_response_topic();
  p.properties.user_properties = bad;
  EXPECT_EQ(encode_error(p, Version::V5), Errc::InvalidUtf8);
}

TEST_F(EncodeRejects, TwoSubscriptionIdentifiersInSubscribe) {
  constexpr std::uint32_t ids[] = {1, 2};
  const Subscription subs[] = {{"a", {}}};
  Subscribe s;
  s.packet_id = 1;
  s.subscriptions = subs;
  s.properties.subscription_identifiers = ids;
  EXPECT_EQ(encode_error(s, Version::V5), Errc::DuplicateProperty);
}

TEST_F(EncodeRejects, SubscribeFields) {
  Subscribe s;
  s.packet_id = 1;
  EXPECT_EQ(encode_error(s, Version::V5), Errc::EmptySubscriptionList);
  const Subscription bad_filter[] = {{"a/#/b", {}}};
  s.subscriptions = bad_filter;
  EXPECT_EQ(encode_error(s, Version::V5), Errc::InvalidTopicFilter);
  const Subscription bad_rh[] = {
      {"a", {QoS::AtMostOnce, false, false, static_cast<RetainHandling>(3)}}};
  s.subscriptions = bad_rh;
  EXPECT_EQ(encode_error(s, Version::V5), Errc::InvalidSubscriptionOptions);
  const Subscription shared_nl[] = {{"$share/g/a", {QoS::AtMostOnce, true}}};
  s.subscriptions = shared_nl;
  EXPECT_EQ(encode_error(s, Version::V5), Errc::InvalidSubscriptionOptions);
  const Subscription ok[] = {{"a", {}}};
  s.subscriptions = ok;
  s.packet_id = 0;
  EXPECT_EQ(encode_error(s, Version::V5), Errc::PacketIdZero);
  Unsubscribe u;
  u.packet_id = 1;
  EXPECT_EQ(encode_error(u, Version::V311), Errc::EmptySubscriptionList);
}

TEST_F(EncodeRejects, ReasonCodes) {
  PubAck a;
  a.packet_id = 1;
  a.reason_code = ReasonCode::PacketIdentifierNotFound;  // PUBREL/PUBCOMP only
  EXPECT_EQ(encode_error(a, Version::V5), Errc::InvalidReasonCode);
  ConnAck c;
  c.reason_code = ReasonCode::Banned;  // no 3.1.1 return code for it
  EXPECT_EQ(encode_error(c, Version::V311), Errc::InvalidReasonCode);
  EXPECT_EQ(encode_error(c, Version::V5), Errc::Ok);
  c.session_present = true;  // [MQTT-3.2.2-6]
  EXPECT_EQ(encode_error(c, Version::V5), Errc::InvalidArgument);
  const ReasonCode sub5[] = {ReasonCode::QuotaExceeded};
  SubAck s;
  s.packet_id = 1;
  s.reason_codes = sub5;
  EXPECT_EQ(encode_error(s, Version::V5), Errc::Ok);
  EXPECT_EQ(encode_error(s, Version::V311), Errc::InvalidReasonCode);
  Disconnect d;
  d.reason_code = ReasonCode::GrantedQoS1;
  EXPECT_EQ(encode_error(d, Version::V5), Errc::InvalidReasonCode);
}

TEST_F(EncodeRejects, ConnectFields) {
  Connect c;
  c.version = Version::V311;
  c.password = as_bytes("p");  // [MQTT-3.1.2-22]
  EXPECT_EQ(encode_error(c, Version::V311), Errc::InvalidArgument);
  c.version = Version::V5;
  EXPECT_EQ(encode_error(c, Version::V5), Errc::Ok);
  EXPECT_EQ(encode_error(c, Version::V311), Errc::InvalidArgument);  // version mismatch
  Connect e;
  e.version = Version::V311;
  e.clean_start = false;  // [MQTT-3.1.3-7] empty client id needs a clean session in 3.1.1
  EXPECT_EQ(encode_error(e, Version::V311), Errc::InvalidArgument);
  Connect w;
  w.will = Will{"a/+", {}, QoS::AtMostOnce, false, {}};
  EXPECT_EQ(encode_error(w, Version::V5), Errc::WildcardInTopicName);
  w.will->topic = "a";
  w.will->qos = static_cast<QoS>(3);
  EXPECT_EQ(encode_error(w, Version::V5), Errc::InvalidQoS);
  EXPECT_EQ(encode_error(PingReq{}, static_cast<Version>(3)), Errc::InvalidArgument);
}

// Builds one packet of kind `kind` carrying `p` and encodes it in MQTT 5.
Errc encode_kind(unsigned kind, const Properties& p) {
  const Subscription subs[] = {{"a", {}}};
  const std::string_view filters[] = {"a"};
  const ReasonCode codes[] = {ReasonCode::Success};
  switch (kind) {
    case 0: {
      Connect c;
      c.will = Will{"w", {}, QoS::AtMostOnce, false, p};
      return encode_error(c, Version::V5);
    }
    case 1: {
      Connect c;
      c.properties = p;
      return encode_error(c, Version::V5);
    }
    case 2: return encode_error(ConnAck{false, ReasonCode::Success, p}, Version::V5);
    case 3: {
      Publish x = publish("a");
      x.properties = p;
      return encode_error(x, Version::V5);
    }
    case 4: return encode_error(PubAck{1, ReasonCode::Success, p}, Version::V5);
    case 5: return encode_error(PubRec{1, ReasonCode::Success, p}, Version::V5);
    case 6: return encode_error(PubRel{1, ReasonCode::Success, p}, Version::V5);
    case 7: return encode_error(PubComp{1, ReasonCode::Success, p}, Version::V5);
    case 8: return encode_error(Subscribe{1, subs, p}, Version::V5);
    case 9: return encode_error(SubAck{1, codes, p}, Version::V5);
    case 10: return encode_error(Unsubscribe{1, filters, p}, Version::V5);
    case 11: return encode_error(UnsubAck{1, codes, p}, Version::V5);
    case 14: return encode_error(Disconnect{ReasonCode::Success, p}, Version::V5);
    case 15: return encode_error(Auth{ReasonCode::Success, p}, Version::V5);
    default: return Errc::InvalidArgument;
  }
}

TEST_F(PropertyTable, EncoderAcceptsExactlyTheAllowedProperties) {
  for (unsigned kind : {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 14u, 15u}) {
    for (const PropRule& r : kRules) {
      Properties p;
      set_property(p, r.id, kind);
      const bool allowed = (r.mask & (1u << kind)) != 0;
      EXPECT_EQ(encode_kind(kind, p), allowed ? Errc::Ok : Errc::PropertyNotAllowed)
          << "kind " << kind << " property 0x" << std::hex << static_cast<int>(r.id);
    }
  }
}

TEST_F(PropertyTable, DecoderAcceptsExactlyTheAllowedProperties) {
  // One property of each identifier, encoded through the Will bit (0) of a property block
  // built by hand: [length] [id] [value].
  for (unsigned type = 1; type <= 15; ++type) {
    for (const PropRule& r : kRules) {
      std::array<std::byte, 16> block{};
      std::size_t n = 1;
      block[n++] = static_cast<std::byte>(r.id);
      switch (r.id) {
        case PropertyId::MessageExpiryInterval:
        case PropertyId::SessionExpiryInterval:
        case PropertyId::WillDelayInterval:
        case PropertyId::MaximumPacketSize:
          for (int i = 0; i < 4; ++i) block[n++] = std::byte{1};
          break;
        case PropertyId::ServerKeepAlive:
        case PropertyId::ReceiveMaximum:
        case PropertyId::TopicAliasMaximum:
        case PropertyId::TopicAlias:
          block[n++] = std::byte{0};
          block[n++] = std::byte{1};
          break;
        case PropertyId::ContentType:
        case PropertyId::ResponseTopic:
        case PropertyId::CorrelationData:
        case PropertyId::AssignedClientIdentifier:
        case PropertyId::AuthenticationMethod:
        case PropertyId::AuthenticationData:
        case PropertyId::ResponseInformation:
        case PropertyId::ServerReference:
        case PropertyId::ReasonString:
          block[n++] = std::byte{0};
          block[n++] = std::byte{1};
          block[n++] = std::byte{'x'};
          break;
        case PropertyId::UserProperty:
          for (int i = 0; i < 2; ++i) {
            block[n++] = std::byte{0};
            block[n++] = std::byte{1};
            block[n++] = std::byte{'x'};
          }
          break;
        default: block[n++] = std::byte{1}; break;  // byte values and Subscription Identifier 1
      }
      block[0] = static_cast<std::byte>(n - 1);
      std::size_t consumed = 0;
      auto d = decode_properties(Bytes(block.data(), n), static_cast<PacketType>(type), consumed);
      const bool allowed = (r.mask & (1u << type)) != 0;
      ASSERT_EQ(d.has_value(), allowed)
          << "type " << type << " property 0x" << std::hex << static_cast<int>(r.id);
      if (d) {
        EXPECT_EQ(consumed, n);
      } else {
        EXPECT_EQ(d.error(), Errc::PropertyNotAllowed);
      }
    }
  }
}

}  // namespace
}  // namespace edgekit::mqtt::test
