// Round trips of every control packet in both protocol versions: encode into a guarded buffer
// (and every shorter buffer), frame it, decode it, compare every field.
#include "codec_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

class RoundTrip : public edgekit::testing::PureTest,
                  public ::testing::WithParamInterface<Version> {
 protected:
  Version v() const { return GetParam(); }
  bool v5() const { return GetParam() == Version::V5; }
  /// Properties for packet kind `kind` in this version: every allowed one in 5, none in 3.1.1.
  Properties props(unsigned kind) const { return v5() ? all_allowed(kind) : Properties{}; }

  /// Frames `wire` and decodes it as a Packet of alternative T.
  template <class T>
  T decoded(Bytes wire) {
    auto fr = read_frame(wire);
    EXPECT_TRUE(fr.has_value());
    if (fr) {
      EXPECT_TRUE(fr->complete);
      EXPECT_EQ(fr->header.packet_size(), wire.size());
    }
    auto p = decode(wire, v());
    EXPECT_TRUE(p.has_value()) << (p ? "" : to_string(p.error()));
    if (!p) return T{};
    EXPECT_TRUE(std::holds_alternative<T>(*p));
    const T* t = std::get_if<T>(&*p);
    return t ? *t : T{};
  }
  /// Encodes the decoded packet `d` again (its lists are views of `wire`) and expects `wire`'s
  /// bytes: a server or bridge passing a request on sends what it received.
  template <class T>
  void expect_same_again(const T& d, Bytes wire) {
    Guarded again;
    Bytes wire2 = encode_guarded(d, v(), again);
    ASSERT_EQ(wire2.size(), wire.size());
    EXPECT_TRUE(std::equal(wire.begin(), wire.end(), wire2.begin()));
  }
  Guarded g_;
};

INSTANTIATE_TEST_SUITE_P(BothVersions, RoundTrip, ::testing::Values(Version::V311, Version::V5),
                         [](const auto& param_info) {
                           return std::string(param_info.param == Version::V5 ? "V5" : "V311");
                         });

TEST_P(RoundTrip, Connect) {
  constexpr std::array<std::byte, 4> pw = {std::byte{'p'}, std::byte{0}, std::byte{'w'},
                                           std::byte{0xFF}};
  constexpr std::array<std::byte, 5> will_payload = {std::byte{'b'}, std::byte{'y'},
                                                     std::byte{'e'}, std::byte{0}, std::byte{1}};
  Connect c;
  c.version = v();
  c.client_id = "device-\xE2\x82\xAC";
  c.clean_start = false;
  c.keep_alive = 0xBEEF;
  c.username = "user";
  c.password = Bytes(pw);
  Will w;
  w.topic = "devices/d1/status";
  w.payload = will_payload;
  w.qos = QoS::ExactlyOnce;
  w.retain = true;
  w.properties = props(0);
  c.will = w;
  c.properties = props(1);
  Bytes wire = encode_guarded(c, v(), g_);
  auto d = decode_connect(wire);
  ASSERT_TRUE(d.has_value()) << to_string(d.error());
  EXPECT_EQ(d->version, v());
  EXPECT_EQ(d->client_id, c.client_id);
  EXPECT_FALSE(d->clean_start);
  EXPECT_EQ(d->keep_alive, 0xBEEF);
  EXPECT_EQ(d->username, c.username);
  ASSERT_TRUE(d->password.has_value());
  EXPECT_TRUE(same_bytes(*d->password, pw));
  ASSERT_TRUE(d->will.has_value());
  EXPECT_EQ(d->will->topic, w.topic);
  EXPECT_TRUE(same_bytes(d->will->payload, will_payload));
  EXPECT_EQ(d->will->qos, QoS::ExactlyOnce);
  EXPECT_TRUE(d->will->retain);
  expect_props_eq(d->will->properties, w.properties);
  expect_props_eq(d->properties, c.properties);
  // Through the generic decoder too.
  Connect via = decoded<Connect>(wire);
  EXPECT_EQ(via.client_id, c.client_id);
}

TEST_P(RoundTrip, ConnectMinimal) {
  Connect c;
  c.version = v();
  Bytes wire = encode_guarded(c, v(), g_);
  Connect d = decoded<Connect>(wire);
  EXPECT_EQ(d.client_id, "");
  EXPECT_TRUE(d.clean_start);
  EXPECT_EQ(d.keep_alive, 60);
  EXPECT_FALSE(d.username || d.password || d.will);
}

TEST_P(RoundTrip, ConnAck) {
  for (ReasonCode rc : {ReasonCode::Success, ReasonCode::NotAuthorized,
                        ReasonCode::BadUserNameOrPassword, ReasonCode::ServerUnavailable,
                        ReasonCode::ClientIdentifierNotValid,
                        ReasonCode::UnsupportedProtocolVersion}) {
    ConnAck a;
    a.session_present = rc == ReasonCode::Success;
    a.reason_code = rc;
    a.properties = props(2);
    Bytes wire = encode_guarded(a, v(), g_);
    ConnAck d = decoded<ConnAck>(wire);
    EXPECT_EQ(d.session_present, a.session_present);
    EXPECT_EQ(d.reason_code, rc);
    expect_props_eq(d.properties, a.properties);
  }
}

TEST_P(RoundTrip, Publish) {
  constexpr std::string_view payload = "{\"temp\": 21.5}";
  for (QoS q : {QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce}) {
    Publish p;
    p.topic = "sensors/\xC3\xA9t\xC3\xA9/temp";
    p.payload = as_bytes(payload);
    p.qos = q;
    p.retain = q == QoS::AtLeastOnce;
    p.dup = q == QoS::ExactlyOnce;
    p.packet_id = q == QoS::AtMostOnce ? 0 : 0xFFFF;
    p.properties = props(3);
    Bytes wire = encode_guarded(p, v(), g_);
    Publish d = decoded<Publish>(wire);
    EXPECT_EQ(d.topic, p.topic);
    EXPECT_EQ(as_string(d.payload), payload);
    EXPECT_EQ(d.qos, q);
    EXPECT_EQ(d.retain, p.retain);
    EXPECT_EQ(d.dup, p.dup);
    EXPECT_EQ(d.packet_id, p.packet_id);
    expect_props_eq(d.properties, p.properties);
  }
}

// A received message passed on (a bridge, a forwarder): its decoded lists are views of the
// received block, and the encoder copies their entries as they are. The bytes come out the same,
// and the lists' rules still hold: the two Subscription Identifiers a PUBLISH may carry are one
// too many in a SUBSCRIBE.
TEST_P(RoundTrip, DecodedListsEncodeAsReceived) {
  if (!v5()) return;  // MQTT 5 lists (a skip message would allocate in this pure test)
  Publish p;
  p.topic = "a/b";
  p.qos = QoS::AtLeastOnce;
  p.packet_id = 7;
  p.properties = props(3);
  ASSERT_EQ(p.properties.subscription_identifiers.size(), 2u);
  ASSERT_GE(p.properties.user_properties.size(), 2u);
  Bytes wire = encode_guarded(p, v(), g_);
  // A copy: the second encode reuses no buffer of the first.
  std::array<std::byte, 512> copy{};
  ASSERT_LE(wire.size(), copy.size());
  std::copy(wire.begin(), wire.end(), copy.begin());
  const Bytes first(copy.data(), wire.size());
  Publish d = decoded<Publish>(first);
  Guarded again;
  Bytes wire2 = encode_guarded(d, v(), again);
  ASSERT_EQ(wire2.size(), first.size());
  EXPECT_TRUE(std::equal(first.begin(), first.end(), wire2.begin()));

  Subscribe s;
  s.packet_id = 1;
  const Subscription subs[] = {{"a/#", {}}};
  s.subscriptions = subs;
  s.properties.subscription_identifiers = d.properties.subscription_identifiers;
  auto r = encoded_size(s, v());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::DuplicateProperty);
  // One decoded list is enough for a SUBSCRIBE's User Properties (any number is allowed).
  s.properties.subscription_identifiers = {};
  s.properties.user_properties = d.properties.user_properties;
  EXPECT_TRUE(encoded_size(s, v()).has_value());

  // A list made from bytes that are not a property block is refused, not sent cut short: an
  // entry whose string runs past the block, and an unknown identifier before a good entry.
  const std::byte cut[] = {std::byte{0x26}, std::byte{0}, std::byte{5}, std::byte{'k'}};
  const std::byte unknown[] = {std::byte{0x7f}, std::byte{0x26}, std::byte{0}, std::byte{0},
                               std::byte{0}, std::byte{0}};
  for (Bytes block : {Bytes(cut), Bytes(unknown)}) {
    s.properties.user_properties = UserProperties::from_block(block);
    auto bad = encoded_size(s, v());
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error(), Errc::InvalidArgument);
  }
}

TEST_P(RoundTrip, PublishEmptyPayload) {
  Publish p;
  p.topic = "t";
  Bytes wire = encode_guarded(p, v(), g_);
  Publish d = decoded<Publish>(wire);
  EXPECT_EQ(d.topic, "t");
  EXPECT_TRUE(d.payload.empty());
}

template <class A>
void ack_round_trip(RoundTrip& t, Version v, bool v5, Guarded& g, PacketType type,
                    std::initializer_list<ReasonCode> codes) {
  for (ReasonCode rc : codes) {
    for (bool with_props : {false, true}) {
      A a;
      a.packet_id = 0x1234;
      a.reason_code = v5 ? rc : ReasonCode::Success;
      if (with_props && v5) a.properties = all_allowed(static_cast<unsigned>(type));
      Bytes wire = encode_guarded(a, v, g);
      // Shortest form: remaining length 2 for Success without properties.
      if (!v5 || (rc == ReasonCode::Success && !with_props)) {
        EXPECT_EQ(wire.size(), 4u);
      }
      if (v5 && rc != ReasonCode::Success && !with_props) {
        EXPECT_EQ(wire.size(), 5u);
      }
      auto p = decode(wire, v);
      ASSERT_TRUE(p.has_value()) << to_string(p.error());
      const A* d = std::get_if<A>(&*p);
      ASSERT_NE(d, nullptr);
      EXPECT_EQ(d->packet_id, 0x1234);
      EXPECT_EQ(d->reason_code, a.reason_code);
      expect_props_eq(d->properties, a.properties);
    }
  }
  (void)t;
}

TEST_P(RoundTrip, PubAck) {
  ack_round_trip<PubAck>(*this, v(), v5(), g_, PacketType::PubAck,
                         {ReasonCode::Success, ReasonCode::NoMatchingSubscribers,
                          ReasonCode::QuotaExceeded, ReasonCode::PayloadFormatInvalid});
}
TEST_P(RoundTrip, PubRec) {
  ack_round_trip<PubRec>(*this, v(), v5(), g_, PacketType::PubRec,
                         {ReasonCode::Success, ReasonCode::PacketIdentifierInUse});
}
TEST_P(RoundTrip, PubRel) {
  ack_round_trip<PubRel>(*this, v(), v5(), g_, PacketType::PubRel,
                         {ReasonCode::Success, ReasonCode::PacketIdentifierNotFound});
}
TEST_P(RoundTrip, PubComp) {
  ack_round_trip<PubComp>(*this, v(), v5(), g_, PacketType::PubComp,
                          {ReasonCode::Success, ReasonCode::PacketIdentifierNotFound});
}

TEST_P(RoundTrip, Subscribe) {
  const Subscription subs[] = {
      {"a/+/c", {QoS::AtMostOnce, false, false, RetainHandling::SendOnSubscribe}},
      {"sport/#", {QoS::AtLeastOnce, true, true, RetainHandling::SendIfNotSubscribed}},
      {"$share/group/x/y", {QoS::ExactlyOnce, false, true, RetainHandling::DoNotSend}},
  };
  Subscribe s;
  s.packet_id = 42;
  s.subscriptions = subs;
  s.properties = props(8);
  Bytes wire = encode_guarded(s, v(), g_);
  Subscribe d = decoded<Subscribe>(wire);
  EXPECT_EQ(d.packet_id, 42);
  expect_props_eq(d.properties, s.properties);
  ASSERT_EQ(d.subscriptions.size(), 3u);
  std::size_t i = 0;
  for (const Subscription& sub : d.subscriptions) {
    EXPECT_EQ(sub.filter, subs[i].filter);
    EXPECT_EQ(sub.options.qos, subs[i].options.qos);
    if (v5()) {
      EXPECT_TRUE(sub.options == subs[i].options);
    } else {
      // 3.1.1 has only the QoS bits; the MQTT 5 options are not sent.
      EXPECT_FALSE(sub.options.no_local);
      EXPECT_FALSE(sub.options.retain_as_published);
      EXPECT_EQ(sub.options.retain_handling, RetainHandling::SendOnSubscribe);
    }
    ++i;
  }
  EXPECT_EQ(i, 3u);
  expect_same_again(d, wire);
}

TEST_P(RoundTrip, SubAck) {
  const ReasonCode codes[] = {ReasonCode::GrantedQoS1, ReasonCode::Success,
                              ReasonCode::GrantedQoS2, ReasonCode::UnspecifiedError};
  SubAck a;
  a.packet_id = 42;
  a.reason_codes = codes;
  a.properties = props(9);
  Bytes wire = encode_guarded(a, v(), g_);
  SubAck d = decoded<SubAck>(wire);
  EXPECT_EQ(d.packet_id, 42);
  ASSERT_EQ(d.reason_codes.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(d.reason_codes[i], codes[i]);
  expect_props_eq(d.properties, a.properties);
}

TEST_P(RoundTrip, Unsubscribe) {
  const std::string_view filters[] = {"a/b", "+/#", "$share/g/q"};
  Unsubscribe u;
  u.packet_id = 7;
  u.filters = filters;
  u.properties = props(10);
  Bytes wire = encode_guarded(u, v(), g_);
  Unsubscribe d = decoded<Unsubscribe>(wire);
  EXPECT_EQ(d.packet_id, 7);
  ASSERT_EQ(d.filters.size(), 3u);
  std::size_t i = 0;
  for (std::string_view f : d.filters) EXPECT_EQ(f, filters[i++]);
  expect_props_eq(d.properties, u.properties);
  expect_same_again(d, wire);
}

TEST_P(RoundTrip, UnsubAck) {
  const ReasonCode codes[] = {ReasonCode::Success, ReasonCode::NoSubscriptionExisted};
  UnsubAck a;
  a.packet_id = 9;
  if (v5()) a.reason_codes = codes;
  a.properties = props(11);
  Bytes wire = encode_guarded(a, v(), g_);
  UnsubAck d = decoded<UnsubAck>(wire);
  EXPECT_EQ(d.packet_id, 9);
  if (v5()) {
    ASSERT_EQ(d.reason_codes.size(), 2u);
    EXPECT_EQ(d.reason_codes[1], ReasonCode::NoSubscriptionExisted);
  } else {
    EXPECT_EQ(wire.size(), 4u);
    EXPECT_TRUE(d.reason_codes.empty());
  }
  expect_props_eq(d.properties, a.properties);
}

TEST_P(RoundTrip, Pings) {
  Bytes wire = encode_guarded(PingReq{}, v(), g_);
  EXPECT_TRUE(same_bytes(wire, B(0xC0, 0x00)));
  (void)decoded<PingReq>(wire);
  wire = encode_guarded(PingResp{}, v(), g_);
  EXPECT_TRUE(same_bytes(wire, B(0xD0, 0x00)));
  (void)decoded<PingResp>(wire);
}

TEST_P(RoundTrip, Disconnect) {
  Disconnect x;
  Bytes wire = encode_guarded(x, v(), g_);
  EXPECT_TRUE(same_bytes(wire, B(0xE0, 0x00)));  // shortest form: Success, no properties
  (void)decoded<Disconnect>(wire);
  if (!v5()) return;
  x.reason_code = ReasonCode::DisconnectWithWillMessage;
  wire = encode_guarded(x, v(), g_);
  EXPECT_TRUE(same_bytes(wire, B(0xE0, 0x01, 0x04)));
  EXPECT_EQ(decoded<Disconnect>(wire).reason_code, ReasonCode::DisconnectWithWillMessage);
  x.reason_code = ReasonCode::ServerMoved;
  x.properties = all_allowed(14);
  wire = encode_guarded(x, v(), g_);
  Disconnect d = decoded<Disconnect>(wire);
  EXPECT_EQ(d.reason_code, ReasonCode::ServerMoved);
  expect_props_eq(d.properties, x.properties);
}

TEST_P(RoundTrip, Auth) {
  Auth a;
  a.reason_code = ReasonCode::ContinueAuthentication;
  a.properties = all_allowed(15);
  if (!v5()) {
    // AUTH does not exist in 3.1.1.
    auto r = encode(a, v(), g_.region(64));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), Errc::InvalidArgument);
    EXPECT_EQ(decode(B(0xF0, 0x00), v()).error(), Errc::InvalidPacketType);
    return;
  }
  Bytes wire = encode_guarded(a, v(), g_);
  Auth d = decoded<Auth>(wire);
  EXPECT_EQ(d.reason_code, ReasonCode::ContinueAuthentication);
  expect_props_eq(d.properties, a.properties);
  wire = encode_guarded(Auth{}, v(), g_);
  EXPECT_TRUE(same_bytes(wire, B(0xF0, 0x00)));
  EXPECT_EQ(decoded<Auth>(wire).reason_code, ReasonCode::Success);
}

TEST_P(RoundTrip, PacketVariantEncodeMatchesTyped) {
  Publish p;
  p.topic = "x/y";
  p.payload = as_bytes("hello");
  p.qos = QoS::AtLeastOnce;
  p.packet_id = 5;
  Packet any = p;
  std::array<std::byte, 64> a{};
  std::array<std::byte, 64> b{};
  auto n1 = encode(p, v(), a);
  auto n2 = encode(any, v(), b);
  ASSERT_TRUE(n1 && n2);
  EXPECT_EQ(*n1, *n2);
  EXPECT_EQ(encoded_size(any, v()).value(), *n1);
  EXPECT_EQ(type_of(any), PacketType::Publish);
  EXPECT_TRUE(same_bytes(Bytes(a.data(), *n1), Bytes(b.data(), *n2)));
}

TEST_P(RoundTrip, PublishHeaderForScatterGather) {
  constexpr std::string_view payload = "0123456789abcdef";
  Publish p;
  p.topic = "t/1";
  p.payload = as_bytes(payload);
  p.qos = QoS::AtLeastOnce;
  p.packet_id = 77;
  p.properties = props(3);
  std::array<std::byte, 512> full{};
  auto n = encode(p, v(), full);
  ASSERT_TRUE(n.has_value());
  const std::size_t header = *n - payload.size();
  // Too small for the header alone: refused without writing outside.
  for (std::size_t k = 0; k < header; ++k) {
    g_.reset();
    auto r = encode_publish_header(p, v(), g_.region(k));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), Errc::BufferTooSmall);
    EXPECT_TRUE(g_.intact(k));
  }
  g_.reset();
  auto h = encode_publish_header(p, v(), g_.region(header));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(*h, header);
  EXPECT_TRUE(g_.intact(header));
  EXPECT_TRUE(same_bytes(Bytes(g_.raw.data() + Guarded::kGuard, header), Bytes(full.data(), header)));
}

}  // namespace
}  // namespace edgekit::mqtt::test
