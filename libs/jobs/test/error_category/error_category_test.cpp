// Errc in std::error_code (hosted only: the Cortex-M image of the pure tests has no category).
#include <gtest/gtest.h>

#include <string_view>
#include <system_error>

#include "edgekit/jobs/errc.hpp"

namespace edgekit::jobs {
namespace {

TEST(JobsErrorCategory, ErrorCodeCarriesTheCategoryAndMessages) {
  std::error_code ec = Errc::VersionMismatch;
  EXPECT_STREQ(ec.category().name(), "edgekit.jobs");
  EXPECT_EQ(ec.message(), "rejected: VersionMismatch");
  for (int v = 1; v < 64; ++v) {
    EXPECT_FALSE(std::string_view(to_string(static_cast<Errc>(v))).empty());
  }
}

}  // namespace
}  // namespace edgekit::jobs
