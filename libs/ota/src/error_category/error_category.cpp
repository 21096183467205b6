// The std::error_category of Errc, in its own translation unit: bare-metal images that never
// build a std::error_code do not link it (it pulls in std::string).
#include "edgekit/core/error_category.hpp"

#include "edgekit/ota/errc.hpp"

namespace edgekit::ota {

const std::error_category& ota_category() noexcept {
  static const EnumErrorCategory<Errc, to_string> category("edgekit.ota");
  return category;
}

}  // namespace edgekit::ota
