#pragma once
/// \file
/// One check for every library's error enum in `std::error_code` (see
/// edgekit/core/error_category.hpp): each value `to_string` names is an error (never 0), in the
/// library's category, with `to_string`'s text as its message.

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <system_error>

namespace edgekit::testing {

/// Tries every value 0..255 of `Enum`; those that `to_string` names (any text but `unknown`)
/// and that are not 0 must convert to a true `std::error_code` of `category` whose message is
/// the name. Value 0 must be unnamed or convert to a false error_code ("no error"). Expects
/// `named` such values (so that a new one is noticed), and `category.name()` == `name`.
template <class Enum>
void expect_error_category(const std::error_category& category, const char* name,
                           const char* (*to_string)(Enum) noexcept, const char* unknown,
                           int named) {
  EXPECT_STREQ(category.name(), name);
  const std::error_code zero = static_cast<Enum>(0);
  EXPECT_FALSE(zero);
  EXPECT_EQ(&zero.category(), &category);
  int seen = 0;
  for (int v = 1; v <= 255; ++v) {
    const auto e = static_cast<Enum>(v);
    if (std::strcmp(to_string(e), unknown) == 0) continue;
    ++seen;
    const std::error_code ec = e;
    EXPECT_TRUE(ec) << name << " value " << v;
    EXPECT_EQ(ec.value(), v);
    EXPECT_EQ(&ec.category(), &category);
    EXPECT_EQ(ec.message(), std::string(to_string(e))) << name << " value " << v;
  }
  EXPECT_EQ(seen, named) << name << ": a value was added or removed; update the expected count";
}

}  // namespace edgekit::testing
