// The edgekit image header as fleetd reads it at upload: edgekit::ota's reader (the device's
// own, libs/ota), so that fleetd and the device can never disagree about a header.

#include "ota/image.hpp"

#include <span>

#include "edgekit/ota/image.hpp"

namespace edgekit::fleetd::ota {
namespace {

Unexpected<Error> damaged(const std::string& what) {
  return fail(Errc::InvalidArgument, "the image's edgekit header is damaged: " + what);
}

}  // namespace

std::string ImageHeader::version() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(build);
}

Res<std::optional<ImageHeader>> read_image_header(std::string_view file) {
  if (file.size() < 4 || file.substr(0, 4) != "EKOI") return std::optional<ImageHeader>();
  auto h = edgekit::ota::read_image_header(
      std::as_bytes(std::span<const char>(file.data(), file.size())));
  if (!h) return damaged(edgekit::ota::to_string(h.error()));
  if (h->payload_size != file.size() - edgekit::ota::kImageHeaderSize) {
    return damaged("payload size " + std::to_string(h->payload_size) + " is not the file's " +
                   std::to_string(file.size()) + " bytes less the header");
  }
  ImageHeader out;
  out.major = h->version.major;
  out.minor = h->version.minor;
  out.build = h->version.build;
  out.payload_size = h->payload_size;
  out.device_type = std::string(h->device_type);
  return std::optional<ImageHeader>(std::move(out));
}

}  // namespace edgekit::fleetd::ota
