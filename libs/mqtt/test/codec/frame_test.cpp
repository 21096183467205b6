// read_frame: incremental framing, several packets back to back, remaining-length rules and the
// maximum packet size.
#include "codec_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using FrameReader = edgekit::testing::PureTest;

TEST_F(FrameReader, ReportsBytesNeededAtEverySplitPoint) {
  // A PUBLISH with a two-byte remaining length (payload 200 bytes).
  std::array<std::byte, 200> payload{};
  Publish p;
  p.topic = "a/b";
  p.payload = payload;
  std::array<std::byte, 512> buf{};
  auto n = encode(p, Version::V311, buf);
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 1 + 2 + 5 + 200u);
  for (std::size_t k = 0; k < *n; ++k) {
    auto f = read_frame(Bytes(buf.data(), k));
    ASSERT_TRUE(f.has_value()) << k;
    EXPECT_FALSE(f->complete) << k;
    const std::size_t expected = k == 0 ? 2 : k < 3 ? 1 : *n - k;
    EXPECT_EQ(f->bytes_needed, expected) << "after " << k << " bytes";
    // Once the length is complete, the header is known early.
    if (k >= 3) {
      EXPECT_EQ(f->header.header_size, 3);
      EXPECT_EQ(f->header.packet_size(), *n);
    }
  }
  auto f = read_frame(Bytes(buf.data(), *n));
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->complete);
  EXPECT_EQ(f->header.type, PacketType::Publish);
  EXPECT_EQ(f->header.remaining_length, 205u);
}

TEST_F(FrameReader, SplitsPacketsBackToBack) {
  std::array<std::byte, 256> buf{};
  std::size_t used = 0;
  Publish p;
  p.topic = "t";
  p.payload = as_bytes("one");
  p.qos = QoS::AtLeastOnce;
  p.packet_id = 1;
  used += encode(p, Version::V5, MutableBytes(buf).subspan(used)).value();
  PubAck a;
  a.packet_id = 9;
  used += encode(a, Version::V5, MutableBytes(buf).subspan(used)).value();
  used += encode(PingResp{}, Version::V5, MutableBytes(buf).subspan(used)).value();
  Bytes rest(buf.data(), used);
  PacketType seen[3] = {};
  int count = 0;
  while (!rest.empty()) {
    auto f = read_frame(rest);
    ASSERT_TRUE(f.has_value());
    ASSERT_TRUE(f->complete);
    auto d = decode(rest.first(f->header.packet_size()), Version::V5);
    ASSERT_TRUE(d.has_value()) << to_string(d.error());
    ASSERT_LT(count, 3);
    seen[count++] = type_of(*d);
    rest = rest.subspan(f->header.packet_size());
  }
  EXPECT_EQ(count, 3);
  EXPECT_EQ(seen[0], PacketType::Publish);
  EXPECT_EQ(seen[1], PacketType::PubAck);
  EXPECT_EQ(seen[2], PacketType::PingResp);
}

TEST_F(FrameReader, ReportsPacketTooLargeAsSoonAsTheLengthIsKnown) {
  // Remaining length 128 (0x80 0x01): the packet is 131 bytes.
  constexpr auto head = B(0x30, 0x80, 0x01);
  auto r = read_frame(head, 130);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::PacketTooLarge);
  auto ok = read_frame(head, 131);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->bytes_needed, 128u);
}

TEST_F(FrameReader, AcceptsTheLargestRemainingLength) {
  constexpr auto head = B(0x30, 0xFF, 0xFF, 0xFF, 0x7F);
  auto f = read_frame(head);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->header.remaining_length, kMaxVarInt);
  EXPECT_EQ(f->header.packet_size(), std::size_t{kMaxPacketSize});
  EXPECT_EQ(f->bytes_needed, kMaxVarInt);
}

TEST_F(FrameReader, RejectsFifthLengthByte) {
  // [MQTT-1.5.5-1] / 2.1.4: the Remaining Length is at most four bytes.
  for (auto bytes : {B(0x30, 0xFF, 0xFF, 0xFF, 0xFF), B(0x30, 0xFF, 0xFF, 0xFF, 0x80)}) {
    auto f = read_frame(bytes);
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.error(), Errc::MalformedRemainingLength);
    // decode reports the same.
    EXPECT_EQ(decode(bytes, Version::V5).error(), Errc::MalformedRemainingLength);
  }
}

TEST_F(FrameReader, RejectsNonMinimalRemainingLength) {
  // [MQTT-1.5.5-1] The encoded value MUST use the minimum number of bytes necessary.
  constexpr auto a = B(0xC0, 0x80, 0x00);
  constexpr auto b = B(0xC0, 0x80, 0x80, 0x00);
  constexpr auto c = B(0xC0, 0xFF, 0x80, 0x80, 0x00);
  for (Bytes bytes : {Bytes(a), Bytes(b), Bytes(c)}) {
    auto f = read_frame(bytes);
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.error(), Errc::MalformedRemainingLength);
  }
}

TEST_F(FrameReader, RejectsPacketTypeZero) {
  // [MQTT-2.1.2] Control packet type 0 is reserved / forbidden.
  EXPECT_EQ(read_frame(B(0x00, 0x00)).error(), Errc::InvalidPacketType);
  EXPECT_EQ(decode(B(0x00, 0x00), Version::V5).error(), Errc::InvalidPacketType);
}

}  // namespace
}  // namespace edgekit::mqtt::test
