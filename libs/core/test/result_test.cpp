#include "edgekit/core/result.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <type_traits>

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

// With a small trivially copyable value: trivially copyable itself (so a register return on
// ARM), the error beside the value.
static_assert(std::is_trivially_copyable_v<Result<std::uint16_t, ZeroIsOk>>);
static_assert(sizeof(Result<std::uint16_t, ZeroIsOk>) <= 4);
static_assert(!std::is_trivially_copyable_v<Result<std::uint16_t, ZeroIsAnError>>);

TEST_F(ResultVoid, AnOptedInErrorTypeWithAValueKeepsTheValueOrTheError) {
  const Result<std::uint16_t, ZeroIsOk> zero = std::uint16_t{0};
  ASSERT_TRUE(zero.has_value());
  EXPECT_EQ(*zero, 0);
  const Result<std::uint16_t, ZeroIsOk> value = std::uint16_t{0xBEEF};
  ASSERT_TRUE(value);
  EXPECT_EQ(value.value(), 0xBEEF);
  const Result<std::uint16_t, ZeroIsOk> bad = fail(ZeroIsOk::Worse);
  EXPECT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error(), ZeroIsOk::Worse);
  EXPECT_EQ(bad.value_or(7), 7);
  Result<std::uint16_t, ZeroIsOk> copy = bad;
  EXPECT_EQ(copy.error(), ZeroIsOk::Worse);
  copy = value;
  EXPECT_EQ(*copy, 0xBEEF);
}

TEST_F(ResultVoid, AnErrorTypeThatDidNotOptInMayFailWithItsZeroValue) {
  const Result<void, ZeroIsAnError> ok;
  EXPECT_TRUE(ok.has_value());
  const Result<void, ZeroIsAnError> first = fail(ZeroIsAnError::First);
  EXPECT_FALSE(first.has_value());
  EXPECT_EQ(first.error(), ZeroIsAnError::First);
}

}  // namespace
