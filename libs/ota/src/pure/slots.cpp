// What every Slots port shares (ports.hpp): the version of the running image, from its header.
#include "edgekit/ota/ports.hpp"

namespace edgekit::ota {

Result<ImageVersion, Errc> Slots::active_version() {
  auto s = status();
  if (!s) return fail(s.error());
  std::byte header[kImageHeaderSize];
  auto n = read(s->active, 0, header);
  if (!n) return fail(n.error());
  auto h = read_image_header(std::span<const std::byte>(header, *n));
  if (!h) return fail(h.error());
  return h->version;
}

}  // namespace edgekit::ota
