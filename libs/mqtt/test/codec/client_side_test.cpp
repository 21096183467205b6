// The client-side entry points: decode_from_server must agree with the generic decode() on every
// packet a server may send and refuse the ones it may not; encode_ack must write exactly what
// encode() writes for the same ack without properties.
#include "codec_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

class ClientSide : public edgekit::testing::PureTest,
                   public ::testing::WithParamInterface<Version> {
 protected:
  Version v() const { return GetParam(); }
  bool v5() const { return GetParam() == Version::V5; }

  /// Decodes `wire` both ways and checks they agree: same error, or same alternative and bytes
  /// when encoded again. decode_from_server decodes into the same Packet every time, as a
  /// connection does: nothing of the packet decoded before may show through.
  void expect_same_as_decode(Bytes wire) {
    const Result<Packet> generic = decode(wire, v());
    Packet& mine = mine_;
    const Result<void> r = decode_from_server(wire, v(), mine);
    ASSERT_EQ(generic.has_value(), r.has_value()) << (generic ? "" : to_string(generic.error()));
    if (!generic) {
      EXPECT_EQ(generic.error(), r.error());
      return;
    }
    ASSERT_EQ(generic->index(), mine.index());
    std::array<std::byte, 256> a{};
    std::array<std::byte, 256> b{};
    auto na = encode(*generic, v(), a);
    auto nb = encode(mine, v(), b);
    ASSERT_TRUE(na && nb);
    EXPECT_TRUE(same_bytes(Bytes(a.data(), *na), Bytes(b.data(), *nb)));
  }
  Packet mine_;
  Guarded g_;
};

INSTANTIATE_TEST_SUITE_P(BothVersions, ClientSide, ::testing::Values(Version::V311, Version::V5),
                         [](const auto& param_info) {
                           return std::string(param_info.param == Version::V5 ? "V5" : "V311");
                         });

TEST_P(ClientSide, DecodesEveryPacketAServerSends) {
  std::array<std::byte, 512> buf{};
  auto check = [&](const auto& packet) {
    auto n = encode(packet, v(), buf);
    ASSERT_TRUE(n.has_value()) << to_string(n.error());
    expect_same_as_decode(Bytes(buf.data(), *n));
  };
  ConnAck ca;
  ca.session_present = false;
  if (v5()) ca.properties = all_allowed(2);
  check(ca);
  Publish p;
  p.topic = "a/b";
  p.payload = as_bytes("payload");
  p.qos = QoS::ExactlyOnce;
  p.packet_id = 9;
  if (v5()) p.properties = all_allowed(3);
  check(p);
  // The same alternative again, every field at its default: none of the first shows through.
  Publish plain;
  plain.topic = "c";
  check(plain);
  check(PubAck{3, ReasonCode::Success, {}});
  check(PubRec{4, ReasonCode::Success, {}});
  check(PubRel{5, ReasonCode::Success, {}});
  check(PubComp{6, ReasonCode::Success, {}});
  constexpr ReasonCode codes[] = {ReasonCode::GrantedQoS1, ReasonCode::UnspecifiedError};
  SubAck sa;
  sa.packet_id = 7;
  sa.reason_codes = codes;
  check(sa);
  UnsubAck ua;
  ua.packet_id = 8;
  constexpr ReasonCode ucodes[] = {ReasonCode::Success};
  if (v5()) ua.reason_codes = ucodes;
  check(ua);
  check(PingResp{});
  if (v5()) {
    Disconnect d;
    d.reason_code = ReasonCode::ServerShuttingDown;
    d.properties = all_allowed(14);
    check(d);
  }
  check(Disconnect{});
  if (v5()) {
    Auth au;
    au.reason_code = ReasonCode::ContinueAuthentication;
    check(au);
  }
}

TEST_P(ClientSide, MalformedInputGivesTheSameErrorAsDecode) {
  expect_same_as_decode(B(0x20, 0x01, 0x00));            // CONNACK cut short
  expect_same_as_decode(B(0x32, 0x03, 0x00, 0x01, 'a'));  // QoS 1 PUBLISH without packet id
  expect_same_as_decode(B(0x40, 0x02, 0x00, 0x00));      // PUBACK with packet id 0
  expect_same_as_decode(B(0xD1, 0x00));                  // PINGRESP with reserved flags set
  expect_same_as_decode(B(0x00, 0x00));                  // type 0 is reserved
  expect_same_as_decode(B(0xF0, 0x00));                  // AUTH: 5.0 only
  Packet p;
  EXPECT_EQ(decode_from_server({}, v(), p).error(), Errc::MalformedPacket);
}

TEST_P(ClientSide, RefusesPacketsOnlyAClientSends) {
  // CONNECT, SUBSCRIBE, UNSUBSCRIBE and PINGREQ go from client to server only (spec 2.1.2):
  // ProtocolError, well-formed or not, where decode() accepts the well-formed ones.
  std::array<std::byte, 128> buf{};
  Connect c;
  c.version = v();
  c.client_id = "c";
  const Subscription subs[] = {{"a/#", {}}};
  Subscribe s;
  s.packet_id = 1;
  s.subscriptions = subs;
  const std::string_view filters[] = {"a/#"};
  Unsubscribe u;
  u.packet_id = 2;
  u.filters = filters;
  const Result<std::size_t> sizes[] = {encode(c, v(), std::span(buf).first(32)),
                                       encode(s, v(), std::span(buf).subspan(32, 32)),
                                       encode(u, v(), std::span(buf).subspan(64, 32)),
                                       encode(PingReq{}, v(), std::span(buf).subspan(96, 32))};
  for (std::size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(sizes[i].has_value());
    const Bytes wire(buf.data() + 32 * i, *sizes[i]);
    EXPECT_TRUE(decode(wire, v()).has_value());
    Packet p;
    auto r = decode_from_server(wire, v(), p);
    ASSERT_FALSE(r.has_value()) << i;
    EXPECT_EQ(r.error(), Errc::ProtocolError) << i;
  }
  Packet p;
  EXPECT_EQ(decode_from_server(B(0x82, 0x00), v(), p).error(), Errc::ProtocolError);
}

TEST_P(ClientSide, EncodeAckMatchesTypedEncode) {
  const ReasonCode rc = v5() ? ReasonCode::NoMatchingSubscribers : ReasonCode::Success;
  auto expect_same = [&](PacketType t, const auto& typed) {
    std::array<std::byte, 16> want{};
    auto n = encode(typed, v(), want);
    ASSERT_TRUE(n.has_value());
    for (std::size_t k = 0; k < *n; ++k) {
      g_.reset();
      auto r = encode_ack(t, typed.packet_id, typed.reason_code, v(), g_.region(k));
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error(), Errc::BufferTooSmall);
      EXPECT_TRUE(g_.intact(k));
    }
    g_.reset();
    auto m = encode_ack(t, typed.packet_id, typed.reason_code, v(), g_.region(16));
    ASSERT_TRUE(m.has_value());
    EXPECT_TRUE(same_bytes(Bytes(g_.raw.data() + Guarded::kGuard, *m), Bytes(want.data(), *n)));
  };
  expect_same(PacketType::PubAck, PubAck{1, rc, {}});
  expect_same(PacketType::PubRec, PubRec{2, rc, {}});
  expect_same(PacketType::PubRel, PubRel{3, ReasonCode::Success, {}});
  expect_same(PacketType::PubComp, PubComp{65535, ReasonCode::Success, {}});
  if (v5()) expect_same(PacketType::PubRel, PubRel{4, ReasonCode::PacketIdentifierNotFound, {}});
}

TEST_P(ClientSide, EncodeAckRefusesWhatEncodeRefuses) {
  std::array<std::byte, 16> buf{};
  EXPECT_EQ(encode_ack(PacketType::PubAck, 0, ReasonCode::Success, v(), buf).error(),
            Errc::PacketIdZero);
  EXPECT_EQ(encode_ack(PacketType::SubAck, 1, ReasonCode::Success, v(), buf).error(),
            Errc::InvalidArgument);
  EXPECT_EQ(encode_ack(PacketType::Disconnect, 1, ReasonCode::Success, v(), buf).error(),
            Errc::InvalidArgument);
  if (v5()) {
    // 0x87 Not authorized is not a PUBREL reason code.
    EXPECT_EQ(encode_ack(PacketType::PubRel, 1, ReasonCode::NotAuthorized, v(), buf).error(),
              Errc::InvalidReasonCode);
  }
}

}  // namespace
}  // namespace edgekit::mqtt::test
