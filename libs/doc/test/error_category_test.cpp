// doc::Errc in std::error_code (the doc_error_category target; hosted only).
#include "edgekit/testing/error_category.hpp"

#include <gtest/gtest.h>

#include <system_error>

#include "edgekit/doc/errc.hpp"

namespace edgekit::doc::test {
namespace {

TEST(DocErrorCategory, EveryErrcIsAnErrorCodeOfTheDocCategory) {
  // 34 values, Ok (0) among them: 33 errors (the last added: InvalidArgument).
  edgekit::testing::expect_error_category<Errc>(doc_category(), "edgekit.doc", to_string,
                                                "unknown error", 33);
}

TEST(DocErrorCategory, OkIsNoErrorAndEqualityKeepsTheCategory) {
  const std::error_code ok = Errc::Ok;
  EXPECT_FALSE(ok);
  const std::error_code bad = Errc::DuplicateKey;
  EXPECT_TRUE(bad);
  EXPECT_EQ(bad, Errc::DuplicateKey);
  EXPECT_EQ(bad.message(), "duplicate key");
}

}  // namespace
}  // namespace edgekit::doc::test
