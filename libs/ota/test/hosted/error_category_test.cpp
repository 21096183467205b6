// Errc in std::error_code (hosted only: the Cortex-M image of the pure tests has no category).
#include <gtest/gtest.h>

#include <string_view>
#include <system_error>

#include "edgekit/ota/errc.hpp"

namespace edgekit::ota {
namespace {

TEST(OtaErrorCategory, ErrorCodeCarriesTheCategoryAndMessages) {
  std::error_code ec = Errc::BlockBitmapLimitExceeded;
  EXPECT_STREQ(ec.category().name(), "edgekit.ota");
  EXPECT_EQ(ec.message(), "rejected: BlockBitmapLimitExceeded");
  for (int v = 0; v < 128; ++v) {
    EXPECT_FALSE(std::string_view(to_string(static_cast<Errc>(v))).empty());
  }
}

}  // namespace
}  // namespace edgekit::ota
