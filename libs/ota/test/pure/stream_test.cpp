#include "edgekit/ota/stream.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <string_view>

#include "edgekit/doc/cbor.hpp"
#include "edgekit/testing/alloc_guard.hpp"
#include "edgekit/testing/cbor_builder.hpp"

namespace edgekit::ota {
namespace {

using OtaStream = edgekit::testing::PureTest;
using edgekit::testing::CborBuilder;

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::string_view text_of(std::span<const std::uint8_t> b, std::size_t n) {
  return {reinterpret_cast<const char*>(b.data()), n};
}
bool same(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

TEST_F(OtaStream, CborGetStreamIsByteForByteTheFreeRtosAgentsRequest) {
  // The agent's request (ota_cbor.c): a 6-entry map c, f, l, o, b, n with c = "rdy", o = 0,
  // n = 1, l = 4096 and b the whole-file bitmap (here 20 blocks: 0xff 0xff 0x0f).
  const std::uint8_t bitmap[] = {0xff, 0xff, 0x0f};
  CborBuilder<64> agent;
  agent.map(6).text("c").text("rdy").text("f").uint(0).text("l").uint(4096).text("o").uint(0);
  agent.text("b").head(2, 3).raw(0xff).raw(0xff).raw(0x0f).text("n").uint(1);
  GetStreamRequest r;
  r.client_token = "rdy";
  r.file_id = 0;
  r.block_size = 4096;
  r.offset = 0;
  r.block_count = 1;
  r.bitmap = bitmap;
  std::array<std::uint8_t, 64> out{};
  auto n = write_get_stream_request(Format::Cbor, r, out);
  ASSERT_TRUE(n.has_value());
  EXPECT_TRUE(same(std::span<const std::uint8_t>(out).first(*n), agent.view()));
}

TEST_F(OtaStream, JsonGetStreamWritesTheBitmapAsHexLikeTheServiceDocumentation) {
  // Blocks 20, 21, 24 and 43 from o = 20: bytes 0x13 0x00 0x80, "0x130080" (3.3).
  const std::uint8_t bitmap[] = {0x13, 0x00, 0x80};
  GetStreamRequest r;
  r.client_token = "tok\"1";
  r.file_id = 1;
  r.block_size = 256;
  r.offset = 20;
  r.block_count = 4;
  r.bitmap = bitmap;
  r.stream_version = 2;
  std::array<std::uint8_t, 128> out{};
  auto n = write_get_stream_request(Format::Json, r, out);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(text_of(out, *n), R"({"c":"tok\"1","f":1,"l":256,"o":20,"b":"0x130080","n":4,"s":2})");
  // Exactly enough room, then one byte less.
  auto exact = write_get_stream_request(Format::Json, r, std::span(out).first(*n));
  ASSERT_TRUE(exact.has_value());
  for (std::size_t room : {*n - 1, std::size_t{40}, std::size_t{3}}) {
    auto small = write_get_stream_request(Format::Json, r, std::span(out).first(room));
    ASSERT_FALSE(small.has_value());
    EXPECT_EQ(small.error(), Errc::BufferTooSmall);
  }
}

TEST_F(OtaStream, GetStreamWithoutBitmapLeavesBOut) {
  GetStreamRequest r;
  r.client_token = "c1";
  std::array<std::uint8_t, 64> out{};
  auto n = write_get_stream_request(Format::Json, r, out);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(text_of(out, *n), R"({"c":"c1","f":0,"l":4096,"o":0,"n":1})");
}

TEST_F(OtaStream, GetStreamRefusesValuesOutsideTheServiceLimits) {
  std::array<std::uint8_t, 64> out{};
  const std::uint8_t big_bitmap[kMaxBitmapBytes + 1] = {};
  auto refused = [&](GetStreamRequest r) {
    auto n = write_get_stream_request(Format::Cbor, r, out);
    return !n.has_value() && n.error() == Errc::InvalidArgument;
  };
  GetStreamRequest ok;
  ok.client_token = "t";
  GetStreamRequest r = ok;
  r.client_token = "";
  EXPECT_TRUE(refused(r));
  r = ok;
  r.client_token = "0123456789012345678901234567890123456789012345678901234567890123X";
  EXPECT_TRUE(refused(r));
  r = ok;
  r.block_size = 255;
  EXPECT_TRUE(refused(r));
  r.block_size = 131073;
  EXPECT_TRUE(refused(r));
  r = ok;
  r.offset = kMaxBlockOffset + 1;
  EXPECT_TRUE(refused(r));
  r = ok;
  r.bitmap = big_bitmap;
  EXPECT_TRUE(refused(r));
}

TEST_F(OtaStream, DescribeStreamRequestCarriesTheToken) {
  std::array<std::uint8_t, 32> out{};
  auto n = write_describe_stream_request(Format::Json, "d-1", out);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(text_of(out, *n), R"({"c":"d-1"})");
  n = write_describe_stream_request(Format::Cbor, "d-1", out);
  ASSERT_TRUE(n.has_value());
  CborBuilder<16> expected;
  expected.map(1).text("c").text("d-1");
  EXPECT_TRUE(same(std::span<const std::uint8_t>(out).first(*n), expected.view()));
}

TEST_F(OtaStream, ReadsAJsonDataBlockDecodingItsBase64) {
  std::array<std::byte, 16> block{};
  std::array<char, 16> scratch{};
  auto d = read_data(Format::Json, bytes_of(R"({"c":"rdy","f":3,"l":5,"i":9,"p":"aGVsbG8="})"),
                     block, scratch);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->client_token, "rdy");
  EXPECT_EQ(d->file_id, 3u);
  EXPECT_EQ(d->block_id, 9u);
  ASSERT_EQ(d->payload.size(), 5u);
  EXPECT_EQ(std::memcmp(d->payload.data(), "hello", 5), 0);
  EXPECT_EQ(d->payload.data(), block.data());
}

TEST_F(OtaStream, ReadsACborDataBlockInPlace) {
  CborBuilder<64> m;
  m.map(4).text("f").uint(0).text("i").uint(300).text("l").uint(3).text("p").head(2, 3);
  m.raw(1).raw(2).raw(3);
  std::array<std::byte, 1> block{};  // not used: CBOR bytes are viewed in place
  auto d = read_data(Format::Cbor, m.view(), block, {});
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->block_id, 300u);
  ASSERT_EQ(d->payload.size(), 3u);
  EXPECT_EQ(reinterpret_cast<const std::uint8_t*>(d->payload.data()), m.view().data() + m.size - 3);
  EXPECT_TRUE(d->client_token.empty());
}

TEST_F(OtaStream, RefusesDataMessagesOfTheWrongShape) {
  std::array<std::byte, 8> block{};
  std::array<char, 8> scratch{};
  struct Case {
    std::string_view text;
    Errc expected;
  };
  const Case cases[] = {
      {R"({"f":0,"i":0,"l":3,"p":"AQI="})", Errc::BlockLengthMismatch},
      {R"({"i":0,"l":1,"p":"AQ=="})", Errc::MalformedMessage},
      {R"({"f":0,"l":1,"p":"AQ=="})", Errc::MalformedMessage},
      {R"({"f":0,"i":0,"p":"AQ=="})", Errc::MalformedMessage},
      {R"({"f":0,"i":0,"l":1})", Errc::MalformedMessage},
      {R"({"f":0,"i":-1,"l":1,"p":"AQ=="})", Errc::MalformedMessage},
      {R"({"f":"0","i":0,"l":1,"p":"AQ=="})", Errc::MalformedMessage},
      {R"({"f":0,"i":0,"l":1,"p":"A?=="})", Errc::MalformedMessage},
      {R"({"f":0,"i":0,"l":12,"p":"AAAAAAAAAAAAAAAA"})", Errc::BufferTooSmall},
      {R"({"c":5,"f":0,"i":0,"l":1,"p":"AQ=="})", Errc::MalformedMessage},
      {R"([1])", Errc::MalformedMessage},
      {R"({"f":0,)", Errc::MalformedMessage},
  };
  for (const Case& c : cases) {
    auto d = read_data(Format::Json, bytes_of(c.text), block, scratch);
    ASSERT_FALSE(d.has_value()) << c.text;
    EXPECT_EQ(d.error(), c.expected) << c.text;
  }
  // CBOR `p` must be a byte string, not text (the agent refuses other types too).
  CborBuilder<64> m;
  m.map(4).text("f").uint(0).text("i").uint(0).text("l").uint(1).text("p").text("A");
  auto d = read_data(Format::Cbor, m.view(), block, scratch);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error(), Errc::MalformedMessage);
}

TEST_F(OtaStream, ReadsADescription) {
  std::array<StreamFile, 4> files{};
  std::array<char, 32> scratch{};
  auto d = read_description(
      Format::Json,
      bytes_of(R"({"c":"d-1","s":3,"d":"fw \"v2\"","r":[{"f":0,"z":181},{"f":1,"z":4096}]})"),
      files, scratch);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->client_token, "d-1");
  ASSERT_TRUE(d->stream_version.has_value());
  EXPECT_EQ(*d->stream_version, 3);
  EXPECT_EQ(d->description, "fw \"v2\"");
  ASSERT_EQ(d->file_count, 2u);
  EXPECT_EQ(files[0].file_id, 0u);
  EXPECT_EQ(files[0].size, 181u);
  EXPECT_EQ(files[1].file_id, 1u);
  EXPECT_EQ(files[1].size, 4096u);
  CborBuilder<64> m;
  m.map(1).text("r").head(4, 1).map(2).text("f").uint(5).text("z").uint(1000);
  d = read_description(Format::Cbor, m.view(), files, scratch);
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->stream_version.has_value());
  ASSERT_EQ(d->file_count, 1u);
  EXPECT_EQ(files[0].size, 1000u);
}

TEST_F(OtaStream, RefusesDescriptionsOfTheWrongShape) {
  std::array<StreamFile, 1> files{};
  std::array<char, 8> scratch{};
  for (std::string_view t :
       {R"({"c":"x"})", R"({"r":{}})", R"({"r":[{"f":0}]})", R"({"r":[{"f":256,"z":1}]})",
        R"({"r":[{"f":0,"z":1},{"f":1,"z":1}]})", R"({"r":[],"s":"1"})", R"({"r":[7]})"}) {
    auto d = read_description(Format::Json, bytes_of(t), files, scratch);
    ASSERT_FALSE(d.has_value()) << t;
    EXPECT_EQ(d.error(), Errc::MalformedMessage) << t;
  }
}

// The 13 codes of aws-iot-protocols.md 3.4, each with its own Errc.
struct CodeCase {
  std::string_view code;
  Errc errc;
};
constexpr CodeCase kCodes[] = {
    {"InvalidTopic", Errc::InvalidTopic},
    {"InvalidJson", Errc::InvalidJson},
    {"InvalidCbor", Errc::InvalidCbor},
    {"InvalidRequest", Errc::InvalidRequest},
    {"Unauthorized", Errc::Unauthorized},
    {"BlockSizeOutOfBounds", Errc::BlockSizeOutOfBounds},
    {"OffsetOutOfBounds", Errc::OffsetOutOfBounds},
    {"BlockCountLimitExceeded", Errc::BlockCountLimitExceeded},
    {"BlockBitmapLimitExceeded", Errc::BlockBitmapLimitExceeded},
    {"ResourceNotFound", Errc::ResourceNotFound},
    {"VersionMismatch", Errc::VersionMismatch},
    {"ETagMismatch", Errc::ETagMismatch},
    {"InternalError", Errc::InternalError},
};

TEST_F(OtaStream, MapsEachOfTheThirteenStreamErrorCodes) {
  for (const CodeCase& c : kCodes) {
    EXPECT_EQ(stream_errc(c.code), c.errc) << c.code;
    EXPECT_TRUE(is_rejection(c.errc));
    // Read from a rejected message in both formats.
    std::array<char, 8> scratch{};
    CborBuilder<96> m;
    m.map(3).text("o").text(c.code).text("m").text("why").text("c").text("t-1");
    auto r = read_stream_rejected(Format::Cbor, m.view(), scratch);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->errc, c.errc);
    EXPECT_EQ(r->code, c.code);
    EXPECT_EQ(r->message, "why");
    EXPECT_EQ(r->client_token, "t-1");
  }
  EXPECT_EQ(stream_errc("invalidtopic"), Errc::RejectedOther);  // exact, case-sensitive
  EXPECT_EQ(stream_errc(""), Errc::RejectedOther);
}

TEST_F(OtaStream, ReadsRejectedMessagesWithTheLegacyLongNames) {
  std::array<char, 8> scratch{};
  auto r = read_stream_rejected(
      Format::Json, bytes_of(R"({"code":"ResourceNotFound","clientToken":"abc"})"), scratch);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->errc, Errc::ResourceNotFound);
  EXPECT_EQ(r->client_token, "abc");
  EXPECT_TRUE(r->message.empty());
  for (std::string_view t : {R"({"m":"no code"})", R"({"o":3})", R"({"o":""})", R"("x")"}) {
    auto bad = read_stream_rejected(Format::Json, bytes_of(t), scratch);
    ASSERT_FALSE(bad.has_value()) << t;
    EXPECT_EQ(bad.error(), Errc::MalformedMessage) << t;
  }
}

}  // namespace
}  // namespace edgekit::ota
