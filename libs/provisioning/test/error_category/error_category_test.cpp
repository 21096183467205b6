// Errc in std::error_code (hosted only: the Cortex-M image of the pure tests has no category).
#include <gtest/gtest.h>

#include <string_view>
#include <system_error>

#include "edgekit/provisioning/errc.hpp"

namespace edgekit::provisioning {
namespace {

TEST(ProvisioningErrorCategory, ErrorCodeCarriesTheCategoryAndMessages) {
  std::error_code ec = Errc::InvalidParameters;
  EXPECT_STREQ(ec.category().name(), "edgekit.provisioning");
  EXPECT_EQ(ec.message(), "rejected: InvalidParameters");
  for (int v = 1; v < 80; ++v) {
    EXPECT_FALSE(std::string_view(to_string(static_cast<Errc>(v))).empty());
  }
}

}  // namespace
}  // namespace edgekit::provisioning
