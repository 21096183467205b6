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
