#include "edgekit/ota/image.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <string_view>

#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::ota {
namespace {

using OtaImage = edgekit::testing::PureTest;

// The layout of docs/ota.md, written out by hand: magic, version 1, flags 0, size 64,
// v2.5.258, payload 1000, device type "sensor-v1", reserved zero.
constexpr std::array<std::uint8_t, 64> kHeader = {
    0x45, 0x4B, 0x4F, 0x49, 0x01, 0x00, 0x40, 0x00, 0x02, 0x05, 0x02, 0x01, 0xE8, 0x03, 0x00, 0x00,
    's',  'e',  'n',  's',  'o',  'r',  '-',  'v',  '1',  0,    0,    0,    0,    0,    0,    0,
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
};

std::span<const std::byte> as_image(const std::array<std::uint8_t, 64>& a) {
  return std::as_bytes(std::span(a));
}

TEST_F(OtaImage, ReadsTheDocumentedLayout) {
  auto h = read_image_header(as_image(kHeader));
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->version.major, 2);
  EXPECT_EQ(h->version.minor, 5);
  EXPECT_EQ(h->version.build, 258);
  EXPECT_EQ(h->version.packed(), 0x02050102u);
  EXPECT_EQ(h->payload_size, 1000u);
  EXPECT_EQ(h->device_type, "sensor-v1");
  std::array<char, 12> text{};
  EXPECT_EQ(*format_version(h->version, text), "2.5.258");
}

TEST_F(OtaImage, WriterProducesTheSameBytes) {
  ImageHeader h;
  h.version = {2, 5, 258};
  h.payload_size = 1000;
  h.device_type = "sensor-v1";
  std::array<std::byte, 64> out{};
  out.fill(std::byte{0xAA});
  ASSERT_TRUE(write_image_header(h, out).has_value());
  EXPECT_EQ(std::memcmp(out.data(), kHeader.data(), 64), 0);
  auto small = write_image_header(h, std::span(out).first(63));
  ASSERT_FALSE(small.has_value());
  EXPECT_EQ(small.error(), Errc::BufferTooSmall);
  h.device_type = "has space";
  auto bad = write_image_header(h, out);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error(), Errc::InvalidArgument);
}

TEST_F(OtaImage, RefusesHeadersThatBreakTheLayout) {
  struct Case {
    std::size_t at;
    std::uint8_t value;
    Errc expected;
  };
  const Case cases[] = {
      {0, 'X', Errc::BadMagic},         {4, 2, Errc::UnsupportedHeaderVersion},
      {5, 1, Errc::MalformedHeader},     // flags
      {6, 0x41, Errc::MalformedHeader},  // header size
      {16, 0, Errc::MalformedHeader},    // empty device type
      {18, ' ', Errc::MalformedHeader},  // a character outside the set
      {30, 'x', Errc::MalformedHeader},  // not NUL-padded after the type
      {63, 1, Errc::MalformedHeader},    // reserved
  };
  for (const Case& c : cases) {
    auto h = kHeader;
    h[c.at] = c.value;
    auto r = read_image_header(as_image(h));
    ASSERT_FALSE(r.has_value()) << c.at;
    EXPECT_EQ(r.error(), c.expected) << c.at;
  }
  auto short_image = read_image_header(as_image(kHeader).first(63));
  ASSERT_FALSE(short_image.has_value());
  EXPECT_EQ(short_image.error(), Errc::ImageTruncated);
}

TEST_F(OtaImage, ChecksSizeDeviceTypeAndDowngrade) {
  auto h = read_image_header(as_image(kHeader));
  ASSERT_TRUE(h.has_value());
  EXPECT_TRUE(check_image(*h, 1064, "sensor-v1", {2, 5, 257}).has_value());
  auto size = check_image(*h, 1063, "sensor-v1", {1, 0, 0});
  ASSERT_FALSE(size.has_value());
  EXPECT_EQ(size.error(), Errc::ImageSizeMismatch);
  auto type = check_image(*h, 1064, "sensor-v2", {1, 0, 0});
  ASSERT_FALSE(type.has_value());
  EXPECT_EQ(type.error(), Errc::WrongDeviceType);
  for (ImageVersion running :
       {ImageVersion{2, 5, 258}, ImageVersion{2, 6, 0}, ImageVersion{3, 0, 0}}) {
    auto down = check_image(*h, 1064, "sensor-v1", running);
    ASSERT_FALSE(down.has_value());
    EXPECT_EQ(down.error(), Errc::Downgrade);
    EXPECT_TRUE(check_image(*h, 1064, "sensor-v1", running, /*allow_downgrade=*/true).has_value());
  }
}

}  // namespace
}  // namespace edgekit::ota
