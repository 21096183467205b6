#pragma once
/// \file
/// The edgekit image header (docs/ota.md, "The edgekit image: header layout (version 1)"), as
/// fleetd reads it at upload: a firmware image that starts with the magic "EKOI" must carry a
/// well-formed header whose version and device type agree with what the upload says, since the
/// device refuses downgrades and other device types by the header (covered by the signature),
/// not by fleetd's records. Files without the magic are other files (fileType != 0) or another
/// vendor's firmware, and stay opaque bytes.
///
/// Thread safety: stateless functions.

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

/// nullopt when `file` does not start with the magic. InvalidArgument naming the fault for a
/// header that does (an unknown header version, flags, header size, a payload size that is not
/// the file's size minus 64, a device type outside 1-32 of [A-Za-z0-9._-] then NULs, reserved
/// bytes not zero, a file shorter than the header).
[[nodiscard]] Res<std::optional<ImageHeader>> read_image_header(std::string_view file);

}  // namespace edgekit::fleetd::ota
