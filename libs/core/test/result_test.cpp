#include "edgekit/core/result.hpp"

#include <gtest/gtest.h>

#include <cstdint>

#include "edgekit/testing/alloc_guard.hpp"

namespace {

// An error type that opts in: zero is its "no error".
enum class ZeroIsOk : std::uint8_t { Ok = 0, Bad = 1, Worse = 2 };
// One that does not: zero is a real error here, so Result<void> must keep its flag.
enum class ZeroIsAnError : std::uint8_t { First = 0, Second = 1 };

}  // namespace

template <>
inline constexpr bool edgekit::kZeroErrorMeansSuccess<ZeroIsOk> = true;

namespace {

using edgekit::fail;
using edgekit::Result;
using ResultVoid = edgekit::testing::PureTest;

// The point of opting in (code size on 32-bit targets): the error alone, one byte.
static_assert(sizeof(Result<void, ZeroIsOk>) == sizeof(ZeroIsOk));
static_assert(sizeof(Result<void, ZeroIsAnError>) > sizeof(ZeroIsAnError));

TEST_F(ResultVoid, AnOptedInErrorTypeKeepsSuccessAndEveryError) {
  const Result<void, ZeroIsOk> ok;
  EXPECT_TRUE(ok.has_value());
  EXPECT_TRUE(static_cast<bool>(ok));
  const Result<void, ZeroIsOk> bad = fail(ZeroIsOk::Bad);
  EXPECT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error(), ZeroIsOk::Bad);
  Result<void, ZeroIsOk> copy = bad;
  EXPECT_EQ(copy.error(), ZeroIsOk::Bad);
  copy = fail(ZeroIsOk::Worse);
  EXPECT_EQ(copy.error(), ZeroIsOk::Worse);
  copy = ok;
  EXPECT_TRUE(copy.has_value());
}

TEST_F(ResultVoid, AnErrorTypeThatDidNotOptInMayFailWithItsZeroValue) {
  const Result<void, ZeroIsAnError> ok;
  EXPECT_TRUE(ok.has_value());
  const Result<void, ZeroIsAnError> first = fail(ZeroIsAnError::First);
  EXPECT_FALSE(first.has_value());
  EXPECT_EQ(first.error(), ZeroIsAnError::First);
}

}  // namespace
