#pragma once
/// \file
/// An edgekit image for the OTA tests (docs/ota.md, header version 1): the 64-byte header, then
/// `payload`. Header-only; no state.

#include <string>

namespace edgekit::fleetd::test {

inline std::string edgekit_image(int major, int minor, int build, const std::string& type,
                                 const std::string& payload) {
  std::string h(64, '\0');
  h.replace(0, 4, "EKOI");
  h[4] = 1;
  h[6] = 64;
  h[8] = static_cast<char>(major);
  h[9] = static_cast<char>(minor);
  h[10] = static_cast<char>(build & 0xff);
  h[11] = static_cast<char>(build >> 8);
  for (int i = 0; i < 4; ++i) h[12 + i] = static_cast<char>((payload.size() >> (8 * i)) & 0xff);
  h.replace(16, type.size(), type);
  return h + payload;
}

}  // namespace edgekit::fleetd::test
