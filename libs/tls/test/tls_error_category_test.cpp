// tls::Cause in std::error_code: every cause is an error (0 is none of them), in its own category.
#include <gtest/gtest.h>

#include <system_error>

#include "edgekit/testing/error_category.hpp"
#include "edgekit/tls/tls.hpp"

namespace edgekit::tls::test {
namespace {

TEST(TlsErrorCategory, EveryCauseIsANonZeroErrorCodeWithItsName) {
  edgekit::testing::expect_error_category<Cause>(tls_category(), "edgekit.tls", to_string,
                                                 "unknown", 24);
}

TEST(TlsErrorCategory, ConfigFailureConvertsToErrorCode) {
  Config config;  // no CA and verification on: InvalidConfig
  auto ctx = TlsContext::create(config);
  ASSERT_FALSE(ctx);
  const std::error_code ec = ctx.error().cause;
  EXPECT_EQ(ec, Cause::InvalidConfig);
  EXPECT_EQ(ec.category(), tls_category());
}

}  // namespace
}  // namespace edgekit::tls::test
