#include "edgekit/core/clock.hpp"

#include <gtest/gtest.h>

#include "edgekit/testing/alloc_guard.hpp"

namespace {

using edgekit::Duration;
using edgekit::Instant;
using edgekit::SteadyClock;
using namespace std::chrono_literals;
using SteadyClockTest = edgekit::testing::PureTest;

// The contract drivers rely on (Clock::now_coarse): one timeline with now(), never later than
// it, and behind it by no more than a kernel tick (SteadyClock accepts a coarse clock of at most
// 10 ms resolution).
TEST_F(SteadyClockTest, TheCoarseReadingIsNeverLaterThanNowAndAtMostATickBehind) {
  const SteadyClock clock;
  for (int i = 0; i < 20000; ++i) {
    const Instant coarse = clock.now_coarse();
    const Instant precise = clock.now();
    ASSERT_LE(coarse, precise) << "at iteration " << i;
    // 10 ms of resolution, plus 1 ms for the truncation of both readings to milliseconds and
    // some slack for a preemption between the two reads.
    ASSERT_LE(precise - coarse, 50ms) << "at iteration " << i;
  }
}

TEST_F(SteadyClockTest, TheCoarseReadingMovesForward) {
  const SteadyClock clock;
  const Instant first = clock.now_coarse();
  Instant later = first;
  // Spins on the clock (no sleep, which a loaded machine may stretch): a tick is at most 10 ms.
  const Instant give_up = clock.now() + 2000ms;
  while (later == first && clock.now() < give_up) later = clock.now_coarse();
  EXPECT_GT(later, first);
}

}  // namespace

namespace {
// deadline_after is how every library turns a caller's timeout into a deadline: Duration::max()
// ("no limit") must not overflow the signed count (undefined behaviour, which UBSan reports),
// and a zero or negative timeout is due at once.
static_assert(edgekit::deadline_after(Instant{Duration{5}}, Duration{0}) == Instant{Duration{5}});
static_assert(edgekit::deadline_after(Instant{Duration{5}}, Duration{-3}) == Instant{Duration{5}});
static_assert(edgekit::deadline_after(Instant{Duration{5}}, Duration{7}) == Instant{Duration{12}});

using DeadlineTest = edgekit::testing::PureTest;

TEST_F(DeadlineTest, AnUnlimitedTimeoutIsTheLatestDeadlineNotAnOverflow) {
  for (const Duration start : {Duration{0}, Duration{1}, Duration{86'400'000}, -Duration{1000},
                               Duration::max() - Duration{1}, Duration::max()}) {
    const Instant now{start};
    const Instant d = edgekit::deadline_after(now, Duration::max());
    EXPECT_TRUE(d > now || d == now) << start.count();
#if !EDGEKIT_TIME_32
    // 64-bit time saturates: nothing is later.
    if (start > Duration{0}) {
      EXPECT_EQ(d, Instant{Duration::max()}) << start.count();
    }
#endif
    EXPECT_GE(edgekit::deadline_after(now, Duration{1}), now);
  }
}
}  // namespace
