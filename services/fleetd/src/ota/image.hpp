#pragma once
/// \file
/// The edgekit image header (docs/ota.md, "The edgekit image: header layout (version 1)"), as
/// fleetd reads it at upload: a firmware image that starts with the magic "EKOI" must carry a
/// well-formed header whose version and device type agree with what the upload says, since the
/// device refuses downgrades and other device types by the header (covered by the signature),
/// not by fleetd's records. Files without the magic are other files (fileType != 0) or another
/// vendor's firmware, and stay opaque bytes.
///
/// Read with edgekit::ota's own reader (libs/ota, the device's). Thread safety: stateless.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/errc.hpp"

namespace edgekit::fleetd::ota {

inline constexpr std::size_t kImageHeaderSize = 64;

struct ImageHeader {
  int major = 0;
  int minor = 0;
  int build = 0;
  std::uint32_t payload_size = 0;
  std::string device_type;
  /// "major.minor.build", the form fleetd's image versions take for edgekit images.
  [[nodiscard]] std::string version() const;
};

/// nullopt when `file` does not start with the magic. InvalidArgument naming the fault (edgekit::
/// ota's Errc) for a header that does: a file shorter than the header, an unknown header
/// version, flags, header size, a device type outside 1-32 of [A-Za-z0-9._-] then NULs, reserved
/// bytes not zero, a payload size that is not the file's size less 64.
[[nodiscard]] Res<std::optional<ImageHeader>> read_image_header(std::string_view file);

}  // namespace edgekit::fleetd::ota
