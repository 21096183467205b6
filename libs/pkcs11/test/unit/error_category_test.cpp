// pkcs11::Cause in std::error_code: every cause is an error (0 is none of them), in its own
// category.
#include <edgekit/pkcs11/client.hpp>
#include <edgekit/testing/error_category.hpp>
#include <gtest/gtest.h>

#include <system_error>

namespace edgekit::pkcs11 {
namespace {

TEST(Pkcs11ErrorCategory, EveryCauseIsANonZeroErrorCodeWithItsDescription) {
  edgekit::testing::expect_error_category<Cause>(pkcs11_category(), "edgekit.pkcs11", to_string,
                                                 "unknown", 5);
}

TEST(Pkcs11ErrorCategory, LoadFailureConvertsToErrorCode) {
  auto m = Module::load("/nonexistent/edgekit-no-such-module.so");
  ASSERT_FALSE(m);
  const std::error_code ec = m.error().cause;
  EXPECT_EQ(ec, Cause::LoadFailed);
  EXPECT_EQ(ec.message(), "cannot load PKCS#11 module");
}

}  // namespace
}  // namespace edgekit::pkcs11
