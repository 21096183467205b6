// The edgekit image header (docs/ota.md: "The edgekit image: header layout").
#include "edgekit/ota/image.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace edgekit::ota {
namespace {

constexpr std::uint8_t kMagic[4] = {0x45, 0x4B, 0x4F, 0x49};  // "EKOI"
// Field offsets.
constexpr std::size_t kVersionAt = 4;
constexpr std::size_t kFlagsAt = 5;
constexpr std::size_t kHeaderSizeAt = 6;
constexpr std::size_t kMajorAt = 8;
constexpr std::size_t kMinorAt = 9;
constexpr std::size_t kBuildAt = 10;
constexpr std::size_t kPayloadSizeAt = 12;
constexpr std::size_t kDeviceTypeAt = 16;
constexpr std::size_t kReservedAt = kDeviceTypeAt + kMaxDeviceTypeLength;  // 48

std::uint8_t byte_at(std::span<const std::byte> b, std::size_t i) noexcept {
  return static_cast<std::uint8_t>(b[i]);
}
std::uint32_t le(std::span<const std::byte> b, std::size_t at, std::size_t n) noexcept {
  std::uint32_t v = 0;
  for (std::size_t i = n; i-- > 0;) v = v << 8 | byte_at(b, at + i);
  return v;
}
void put_le(std::span<std::byte> b, std::size_t at, std::size_t n, std::uint32_t v) noexcept {
  for (std::size_t i = 0; i < n; ++i) b[at + i] = static_cast<std::byte>(v >> (8 * i));
}

bool device_type_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

bool valid_device_type(std::string_view type) noexcept {
  if (type.empty() || type.size() > kMaxDeviceTypeLength) return false;
  return std::all_of(type.begin(), type.end(), device_type_char);
}

Result<std::string_view, Errc> format_version(ImageVersion v, std::span<char> out) noexcept {
  char* p = out.data();
  char* const end = p + out.size();
  const unsigned parts[] = {v.major, v.minor, v.build};
  for (std::size_t i = 0; i < 3; ++i) {
    if (i > 0) {
      if (p == end) return fail(Errc::BufferTooSmall);
      *p++ = '.';
    }
    auto r = std::to_chars(p, end, parts[i]);
    if (r.ec != std::errc{}) return fail(Errc::BufferTooSmall);
    p = r.ptr;
  }
  return std::string_view(out.data(), static_cast<std::size_t>(p - out.data()));
}

Result<ImageHeader, Errc> read_image_header(std::span<const std::byte> image) noexcept {
  if (image.size() < kImageHeaderSize) return fail(Errc::ImageTruncated);
  if (std::memcmp(image.data(), kMagic, sizeof kMagic) != 0) return fail(Errc::BadMagic);
  if (byte_at(image, kVersionAt) != kImageHeaderVersion) {
    return fail(Errc::UnsupportedHeaderVersion);
  }
  if (byte_at(image, kFlagsAt) != 0 || le(image, kHeaderSizeAt, 2) != kImageHeaderSize) {
    return fail(Errc::MalformedHeader);
  }
  for (std::size_t i = kReservedAt; i < kImageHeaderSize; ++i) {
    if (byte_at(image, i) != 0) return fail(Errc::MalformedHeader);
  }
  // The device type, then NUL bytes only.
  const char* type = reinterpret_cast<const char*>(image.data() + kDeviceTypeAt);
  std::size_t n = 0;
  while (n < kMaxDeviceTypeLength && type[n] != '\0') ++n;
  for (std::size_t i = n; i < kMaxDeviceTypeLength; ++i) {
    if (type[i] != '\0') return fail(Errc::MalformedHeader);
  }
  ImageHeader h;
  h.device_type = std::string_view(type, n);
  if (!valid_device_type(h.device_type)) return fail(Errc::MalformedHeader);
  h.version.major = byte_at(image, kMajorAt);
  h.version.minor = byte_at(image, kMinorAt);
  h.version.build = static_cast<std::uint16_t>(le(image, kBuildAt, 2));
  h.payload_size = le(image, kPayloadSizeAt, 4);
  return h;
}

Result<void, Errc> write_image_header(const ImageHeader& header,
                                      std::span<std::byte> out) noexcept {
  if (!valid_device_type(header.device_type)) return fail(Errc::InvalidArgument);
  if (out.size() < kImageHeaderSize) return fail(Errc::BufferTooSmall);
  std::memset(out.data(), 0, kImageHeaderSize);
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  out[kVersionAt] = std::byte{kImageHeaderVersion};
  put_le(out, kHeaderSizeAt, 2, kImageHeaderSize);
  out[kMajorAt] = std::byte{header.version.major};
  out[kMinorAt] = std::byte{header.version.minor};
  put_le(out, kBuildAt, 2, header.version.build);
  put_le(out, kPayloadSizeAt, 4, header.payload_size);
  std::memcpy(out.data() + kDeviceTypeAt, header.device_type.data(), header.device_type.size());
  return {};
}

Result<void, Errc> check_image(const ImageHeader& header, std::uint32_t file_size,
                               std::string_view device_type, ImageVersion running,
                               bool allow_downgrade) noexcept {
  if (static_cast<std::uint64_t>(header.payload_size) + kImageHeaderSize != file_size) {
    return fail(Errc::ImageSizeMismatch);
  }
  if (header.device_type != device_type) return fail(Errc::WrongDeviceType);
  if (!allow_downgrade && header.version <= running) return fail(Errc::Downgrade);
  return {};
}

}  // namespace edgekit::ota
