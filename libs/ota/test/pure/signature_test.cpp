#include "edgekit/ota/signature.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::ota {
namespace {

using OtaSignature = edgekit::testing::PureTest;

template <std::size_t N>
std::span<const std::byte> bytes(const std::array<std::uint8_t, N>& a) {
  return std::as_bytes(std::span(a));
}

// r = 0x80 followed by 31 bytes of 0x11 (needs DER's leading zero: 33 bytes), s = 0x05 (1 byte).
constexpr std::array<std::uint8_t, 2 + 2 + 33 + 2 + 1> kDer = [] {
  std::array<std::uint8_t, 40> d{};
  d[0] = 0x30;
  d[1] = 38;
  d[2] = 0x02;
  d[3] = 33;
  d[4] = 0x00;
  d[5] = 0x80;
  for (std::size_t i = 6; i < 37; ++i) d[i] = 0x11;
  d[37] = 0x02;
  d[38] = 1;
  d[39] = 0x05;
  return d;
}();

TEST_F(OtaSignature, ConvertsDerToRawRightAligned) {
  std::array<std::byte, kRawSignatureSize> raw{};
  ASSERT_TRUE(raw_p256_signature(bytes(kDer), raw).has_value());
  EXPECT_EQ(raw[0], std::byte{0x80});
  EXPECT_EQ(raw[31], std::byte{0x11});
  for (std::size_t i = 32; i < 63; ++i) EXPECT_EQ(raw[i], std::byte{0}) << i;
  EXPECT_EQ(raw[63], std::byte{0x05});
}

TEST_F(OtaSignature, TakesSixtyFourBytesAsRaw) {
  std::array<std::uint8_t, 64> given{};
  for (std::size_t i = 0; i < given.size(); ++i) given[i] = static_cast<std::uint8_t>(i + 1);
  std::array<std::byte, kRawSignatureSize> raw{};
  ASSERT_TRUE(raw_p256_signature(bytes(given), raw).has_value());
  EXPECT_EQ(std::memcmp(raw.data(), given.data(), 64), 0);
}

TEST_F(OtaSignature, RefusesDerThatIsNotStrict) {
  struct Case {
    std::size_t at;
    std::uint8_t value;
  };
  const Case cases[] = {
      {0, 0x31},   // not a SEQUENCE
      {1, 39},     // length beyond the end
      {2, 0x03},   // not an INTEGER
      {4, 0x01},   // no leading zero needed... and r then 33 significant bytes
      {5, 0x70},   // a leading zero before a byte without its top bit: not minimal
      {38, 2},     // s longer than what is left
      {39, 0x85},  // s negative
  };
  std::array<std::byte, kRawSignatureSize> raw{};
  for (const Case& c : cases) {
    auto d = kDer;
    d[c.at] = c.value;
    auto r = raw_p256_signature(bytes(d), raw);
    ASSERT_FALSE(r.has_value()) << c.at;
    EXPECT_EQ(r.error(), Errc::MalformedSignature) << c.at;
  }
  // A trailing byte, and a truncated signature.
  std::array<std::uint8_t, 41> longer{};
  std::memcpy(longer.data(), kDer.data(), kDer.size());
  longer[1] = 39;
  EXPECT_FALSE(raw_p256_signature(bytes(longer), raw).has_value());
  EXPECT_FALSE(raw_p256_signature(bytes(kDer).first(39), raw).has_value());
  EXPECT_FALSE(raw_p256_signature({}, raw).has_value());
}

}  // namespace
}  // namespace edgekit::ota
