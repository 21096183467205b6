#pragma once
/// \file
/// The edgekit image header: 64 bytes in front of the payload, covered by the signature, so that
/// the version and device type a device checks before installing are authenticated (the layout
/// is documented in docs/ota.md; the fleetd side writes it with `write_image_header`).
/// Pure: no heap, no I/O. Thread safety: none needed (no state).

#include <compare>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/ota/errc.hpp"

namespace edgekit::ota {

inline constexpr std::size_t kImageHeaderSize = 64;
inline constexpr std::uint8_t kImageHeaderVersion = 1;
/// The longest device type (the header's field).
inline constexpr std::size_t kMaxDeviceTypeLength = 32;

/// An image version: major.minor.build, ordered as the FreeRTOS agent's AppVersion32.
struct ImageVersion {
  std::uint8_t major = 0;
  std::uint8_t minor = 0;
  std::uint16_t build = 0;
  /// `major << 24 | minor << 16 | build` (what the agent reports as `updatedBy`).
  [[nodiscard]] constexpr std::uint32_t packed() const noexcept {
    return static_cast<std::uint32_t>(major) << 24 | static_cast<std::uint32_t>(minor) << 16 |
           build;
  }
  [[nodiscard]] static constexpr ImageVersion unpack(std::uint32_t v) noexcept {
    return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
            static_cast<std::uint16_t>(v)};
  }
  friend constexpr auto operator<=>(const ImageVersion& a, const ImageVersion& b) noexcept {
    return a.packed() <=> b.packed();
  }
  friend constexpr bool operator==(const ImageVersion&, const ImageVersion&) = default;
};

/// "<major>.<minor>.<build>" into `out`. Errors: BufferTooSmall (12 bytes always suffice).
[[nodiscard]] Result<std::string_view, Errc> format_version(ImageVersion v,
                                                            std::span<char> out) noexcept;

/// A decoded header. `device_type` views into the bytes given to `read_image_header`.
struct ImageHeader {
  ImageVersion version;
  std::string_view device_type;  ///< 1-32 bytes of `[A-Za-z0-9._-]`
  std::uint32_t payload_size = 0;
};

/// Whether `type` can be a device type: 1-32 bytes of `[A-Za-z0-9._-]`.
[[nodiscard]] bool valid_device_type(std::string_view type) noexcept;

/// Reads the header at the start of `image` (at least 64 bytes; the rest is not looked at).
/// Errors: ImageTruncated (fewer than 64 bytes), BadMagic, UnsupportedHeaderVersion,
/// MalformedHeader (flags not 0, header size not 64, device type invalid or not NUL-padded,
/// reserved bytes not 0).
[[nodiscard]] Result<ImageHeader, Errc> read_image_header(
    std::span<const std::byte> image) noexcept;

/// Writes `header` into the first 64 bytes of `out`. Errors: InvalidArgument (device type
/// invalid), BufferTooSmall.
[[nodiscard]] Result<void, Errc> write_image_header(const ImageHeader& header,
                                                    std::span<std::byte> out) noexcept;

/// What a device checks of an image before it installs it (after the signature holds): that
/// the file is the header plus its payload, that it is for this device type, and that it is
/// newer than what runs (unless `allow_downgrade`).
/// Errors: ImageSizeMismatch (64 + payload size is not `file_size`), WrongDeviceType, Downgrade
/// (version not greater than `running`).
[[nodiscard]] Result<void, Errc> check_image(const ImageHeader& header, std::uint32_t file_size,
                                             std::string_view device_type, ImageVersion running,
                                             bool allow_downgrade = false) noexcept;

}  // namespace edgekit::ota
