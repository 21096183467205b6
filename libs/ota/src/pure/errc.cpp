#include "edgekit/ota/errc.hpp"

#include <cstddef>

namespace edgekit::ota {
namespace {

// The stream error codes, in the order of their Errc values (aws-iot-protocols.md 3.4).
constexpr std::string_view kStreamCodes[] = {
    "InvalidTopic",
    "InvalidJson",
    "InvalidCbor",
    "InvalidRequest",
    "Unauthorized",
    "BlockSizeOutOfBounds",
    "OffsetOutOfBounds",
    "BlockCountLimitExceeded",
    "BlockBitmapLimitExceeded",
    "ResourceNotFound",
    "VersionMismatch",
    "ETagMismatch",
    "InternalError",
};
static_assert(std::size(kStreamCodes) == static_cast<std::size_t>(Errc::RejectedOther) -
                                             static_cast<std::size_t>(Errc::InvalidTopic));

}  // namespace

Errc stream_errc(std::string_view code) noexcept {
  for (std::size_t i = 0; i < std::size(kStreamCodes); ++i) {
    if (code == kStreamCodes[i]) {
      return static_cast<Errc>(static_cast<std::size_t>(Errc::InvalidTopic) + i);
    }
  }
  return Errc::RejectedOther;
}

}  // namespace edgekit::ota
