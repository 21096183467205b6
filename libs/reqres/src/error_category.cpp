// The std::error_category of reqres::Errc.
#include "edgekit/core/error_category.hpp"

#include "edgekit/reqres/channel.hpp"

namespace edgekit::reqres {

const std::error_category& reqres_category() noexcept {
  static const EnumErrorCategory<Errc, to_string> category("edgekit.reqres");
  return category;
}

}  // namespace edgekit::reqres
