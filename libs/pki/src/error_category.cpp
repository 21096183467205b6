// The pki error category, apart so that an image that never makes a std::error_code does not
// link it (edgekit/core/error_category.hpp).
#include <edgekit/core/error_category.hpp>
#include <edgekit/pki/error.hpp>

namespace edgekit::pki {

const std::error_category& pki_category() noexcept {
  static const EnumErrorCategory<Errc, to_string> category("edgekit.pki");
  return category;
}

}  // namespace edgekit::pki
