#include "edgekit/core/backoff.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

#include "edgekit/testing/alloc_guard.hpp"

namespace {

using edgekit::Duration;
using namespace edgekit::backoff;

// A random source that returns what the test tells it.
class Scripted final : public RandomSource {
 public:
  std::uint32_t value = 0;
  std::uint32_t calls = 0;
  std::uint32_t next_u32() noexcept override {
    ++calls;
    return value;
  }
};

using BackoffWindow = edgekit::testing::PureTest;
using BackoffJitter = edgekit::testing::PureTest;
using BackoffSequence = edgekit::testing::PureTest;

TEST_F(BackoffWindow, DoublesFromBaseAndStopsAtCap) {
  const Policy p{Duration{100}, Duration{1000}};
  EXPECT_EQ(window(p, 0), Duration{100});
  EXPECT_EQ(window(p, 1), Duration{200});
  EXPECT_EQ(window(p, 2), Duration{400});
  EXPECT_EQ(window(p, 3), Duration{800});
  EXPECT_EQ(window(p, 4), Duration{1000});
  EXPECT_EQ(window(p, 40), Duration{1000});
  EXPECT_EQ(window(p, 0xFFFF'FFFFu), Duration{1000});
}

TEST_F(BackoffWindow, NeverOverflowsWithHugeCap) {
  const Policy p{Duration{1}, Duration::max()};
  EXPECT_EQ(window(p, 10), Duration{1024});
  EXPECT_GT(window(p, 200), Duration{0});
  EXPECT_LE(window(p, 200), Duration::max());
}

TEST_F(BackoffWindow, BadPolicyIsClampedNotUndefined) {
  EXPECT_EQ(window(Policy{Duration{0}, Duration{0}}, 3), Duration{1});
  EXPECT_EQ(window(Policy{Duration{500}, Duration{100}}, 3), Duration{500});
}

TEST_F(BackoffJitter, CoversTheWholeWindowInclusive) {
  const Policy p{Duration{100}, Duration{1000}};
  EXPECT_EQ(full_jitter(p, 0, 0), Duration{0});
  EXPECT_EQ(full_jitter(p, 0, 0xFFFF'FFFFu), Duration{100});
  EXPECT_EQ(full_jitter(p, 0, 0x8000'0000u), Duration{50});
  EXPECT_EQ(full_jitter(p, 5, 0xFFFF'FFFFu), Duration{1000});
}

TEST_F(BackoffSequence, UsesOneRandomNumberPerAttemptAndResets) {
  Scripted r;
  r.value = 0xFFFF'FFFFu;
  Backoff b(Policy{Duration{10}, Duration{50}}, r);
  EXPECT_EQ(b.next(), Duration{10});
  EXPECT_EQ(b.next(), Duration{20});
  EXPECT_EQ(b.next(), Duration{40});
  EXPECT_EQ(b.next(), Duration{50});
  EXPECT_EQ(b.attempts(), 4u);
  EXPECT_EQ(r.calls, 4u);
  b.reset();
  EXPECT_EQ(b.attempts(), 0u);
  EXPECT_EQ(b.next(), Duration{10});
}

TEST_F(BackoffSequence, SplitMixSpreadsDelaysOverTheWindow) {
  SplitMix64 r(42);
  const Policy p{Duration{1000}, Duration{1000}};
  std::array<int, 10> buckets{};
  for (int i = 0; i < 10'000; ++i) {
    const auto d = full_jitter(p, 0, r.next_u32());
    ASSERT_GE(d.count(), 0);
    ASSERT_LE(d.count(), 1000);
    ++buckets[static_cast<std::size_t>(d.count() == 1000 ? 9 : d.count() / 100)];
  }
  // Uniform: each tenth of the window gets about 1000 of 10,000 draws.
  for (int n : buckets) {
    EXPECT_GT(n, 850);
    EXPECT_LT(n, 1150);
  }
  // Different seeds give different sequences (devices of a fleet do not jitter alike).
  SplitMix64 a(1), b(2);
  EXPECT_NE(a.next_u32(), b.next_u32());
}

}  // namespace
