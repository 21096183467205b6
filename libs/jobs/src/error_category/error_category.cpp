// The std::error_category of Errc, in its own translation unit: bare-metal images that never
// build a std::error_code do not link it (it pulls in std::string).
#include "edgekit/core/error_category.hpp"

#include "edgekit/jobs/errc.hpp"

namespace edgekit::jobs {

const std::error_category& jobs_category() noexcept {
  static const EnumErrorCategory<Errc, to_string> category("edgekit.jobs");
  return category;
}

}  // namespace edgekit::jobs
