// The edgekit image header, version 1 (docs/ota.md): 64 bytes, little-endian integers.

#include "ota/image.hpp"

#include <algorithm>

namespace edgekit::fleetd::ota {
namespace {

std::uint32_t le(std::string_view b, std::size_t at, int bytes) {
  std::uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<std::uint8_t>(b[at + static_cast<std::size_t>(i)]);
  }
  return v;
}

Unexpected<Error> damaged(const std::string& what) {
  return fail(Errc::InvalidArgument, "the image's edgekit header is damaged: " + what);
}

}  // namespace

std::string ImageHeader::version() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(build);
}

Res<std::optional<ImageHeader>> read_image_header(std::string_view file) {
  if (file.size() < 4 || file.substr(0, 4) != "EKOI") return std::optional<ImageHeader>();
  if (file.size() < kImageHeaderSize) return damaged("the file is shorter than its header");
  if (static_cast<std::uint8_t>(file[4]) != 1) return damaged("header version is not 1");
  if (file[5] != 0) return damaged("flags are not 0");
  if (le(file, 6, 2) != kImageHeaderSize) return damaged("header size is not 64");
  ImageHeader h;
  h.major = static_cast<int>(le(file, 8, 1));
  h.minor = static_cast<int>(le(file, 9, 1));
  h.build = static_cast<int>(le(file, 10, 2));
  h.payload_size = le(file, 12, 4);
  if (h.payload_size != file.size() - kImageHeaderSize) {
    return damaged("payload size " + std::to_string(h.payload_size) + " is not the file's " +
                   std::to_string(file.size()) + " bytes less the header");
  }
  const std::string_view type = file.substr(16, 32);
  const std::size_t end = std::min(type.find('\0'), type.size());
  h.device_type = std::string(type.substr(0, end));
  const bool chars_ok = std::all_of(h.device_type.begin(), h.device_type.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
  });
  if (h.device_type.empty() || !chars_ok ||
      type.substr(end).find_first_not_of('\0') != std::string_view::npos) {
    return damaged("the device type is not 1-32 of [A-Za-z0-9._-] followed by NULs");
  }
  if (file.substr(48, 16).find_first_not_of('\0') != std::string_view::npos) {
    return damaged("reserved bytes are not zero");
  }
  return std::optional<ImageHeader>(std::move(h));
}

}  // namespace edgekit::fleetd::ota
