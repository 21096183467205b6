// sim::Fibers on a real io_context: start order, FIFO wakes, deadlines, stale wakes, shutdown of
// suspended fibers, many fibers, the guard page, and the cost of a switch (printed, not
// asserted: performance belongs in figures, not in pass/fail).
#include "fiber.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sync.hpp"

namespace edgekit::sim {
namespace {

using namespace std::chrono_literals;

Instant now() {
  return Instant{
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch())};
}

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback
                                    : static_cast<std::size_t>(std::strtoull(v, nullptr, 10));
}

TEST(Fibers, StartInSpawnOrderNeverInsideSpawn) {
  asio::io_context io;
  Fibers fibers(io);
  std::vector<int> order;
  for (int i = 0; i < 3; ++i) fibers.spawn([&order, i] { order.push_back(i); });
  EXPECT_TRUE(order.empty());  // spawn only schedules
  EXPECT_EQ(fibers.live(), 3u);
  io.run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(fibers.live(), 0u);  // ended fibers are freed
}

TEST(Fibers, WakesResumeInTheOrderTheyWereMade) {
  asio::io_context io;
  Fibers fibers(io);
  std::vector<Fiber*> f(3, nullptr);
  std::vector<int> order;
  for (int i = 0; i < 3; ++i) {
    f[static_cast<std::size_t>(i)] = fibers.spawn([&, i] {
      EXPECT_EQ(fibers.wait(), Wake::Woken);
      order.push_back(i);
    });
  }
  io.run();  // all three wait now (no deadline: the io_context has no work left)
  EXPECT_TRUE(order.empty());
  EXPECT_TRUE(fibers.wake(f[2]));
  EXPECT_TRUE(fibers.wake(f[0]));
  EXPECT_FALSE(fibers.wake(f[0])) << "a second wake for the same wait is not posted twice";
  EXPECT_TRUE(fibers.wake(f[1]));
  io.restart();
  io.run();
  EXPECT_EQ(order, (std::vector<int>{2, 0, 1}));
}

TEST(Fibers, WaitEndsAtItsDeadlineAndAWakeEndsItEarlier) {
  asio::io_context io;
  Fibers fibers(io);
  Wake timed = Wake::Woken, woken = Wake::TimedOut;
  std::chrono::steady_clock::duration woken_took{};
  Instant deadline{}, ended{};
  Fiber* sleeper = fibers.spawn([&] {
    const auto t0 = std::chrono::steady_clock::now();
    woken = fibers.wait(now() + Duration{10000});
    woken_took = std::chrono::steady_clock::now() - t0;
  });
  fibers.spawn([&] {
    deadline = now() + Duration{50};
    timed = fibers.wait(deadline);
    ended = now();
    EXPECT_TRUE(fibers.wake(sleeper));
  });
  io.run();
  EXPECT_EQ(timed, Wake::TimedOut);
  EXPECT_GE(ended, deadline);
  EXPECT_EQ(woken, Wake::Woken);
  // The 10 s deadline was cancelled: run() returned long before it (the io_context had no work).
  EXPECT_LT(woken_took, 5s);
  // A deadline already past returns at once, without suspending.
  fibers.spawn([&] { EXPECT_EQ(fibers.wait(now() + Duration{-1}), Wake::TimedOut); });
  io.restart();
  io.run();
}

TEST(Fibers, AWakeOfAFiberThatDoesNotWaitIsRefused) {
  asio::io_context io;
  Fibers fibers(io);
  Wake second = Wake::Woken;
  fibers.spawn([&] {
    EXPECT_FALSE(fibers.wake(Fibers::current())) << "running, not waiting";
    EXPECT_EQ(fibers.wait(now() + Duration{20}), Wake::TimedOut);
    second = fibers.wait(now() + Duration{40});
  });
  io.run();
  EXPECT_EQ(second, Wake::TimedOut);
  EXPECT_FALSE(fibers.wake(nullptr));
}

TEST(Fibers, SleepAndYieldKeepOtherFibersRunning) {
  asio::io_context io;
  Fibers fibers(io);
  std::vector<std::string> log;
  fibers.spawn([&] {
    log.push_back("a1");
    EXPECT_EQ(fibers.yield(), Wake::Woken);
    log.push_back("a2");
    EXPECT_EQ(fibers.sleep_for(Duration{30}), Wake::TimedOut);
    log.push_back("a3");
  });
  fibers.spawn([&] {
    log.push_back("b1");
    EXPECT_EQ(fibers.sleep_for(Duration{10}), Wake::TimedOut);
    log.push_back("b2");
  });
  io.run();
  EXPECT_EQ(log, (std::vector<std::string>{"a1", "b1", "a2", "b2", "a3"}));
}

TEST(Fibers, ShutdownEndsSuspendedFibersAndRunsTheirDestructors) {
  asio::io_context io;
  auto fibers = std::make_unique<Fibers>(io);
  int destroyed = 0, stopping = 0, never_started = 0;
  struct Counted {
    int* n;
    ~Counted() { ++*n; }
  };
  for (int i = 0; i < 5; ++i) {
    fibers->spawn([&, i] {
      Counted c{&destroyed};
      // Every wait after the first Stopping returns Stopping at once: the loop ends.
      while (fibers->wait(i % 2 == 0 ? std::optional<Instant>{} : now() + Duration{60000}) !=
             Wake::Stopping) {
      }
      ++stopping;
      EXPECT_EQ(fibers->sleep_for(Duration{60000}), Wake::Stopping);
      EXPECT_EQ(fibers->yield(), Wake::Stopping);
    });
  }
  io.run_for(50ms);  // all suspended (some with 60 s deadlines)
  std::shared_ptr<int> token(nullptr, [&never_started](int*) { ++never_started; });
  fibers->spawn([token = std::move(token)] { FAIL() << "started"; });
  fibers->shutdown();
  EXPECT_EQ(fibers->live(), 0u);
  EXPECT_EQ(stopping, 5);
  EXPECT_EQ(destroyed, 5);
  EXPECT_EQ(never_started, 1);  // dropped unstarted
  EXPECT_EQ(fibers->spawn([] {}), nullptr);
  fibers.reset();
  // The cancelled deadlines' handlers still run on the io_context: they find no fiber.
  io.restart();
  io.run();
}

TEST(FiberSync, SemaphoreAdmitsInArrivalOrderAndGateReleasesAll) {
  asio::io_context io;
  Fibers fibers(io);
  Semaphore slots(fibers, 2);
  Gate gate(fibers);
  std::vector<int> admitted, passed;
  for (int i = 0; i < 5; ++i) {
    fibers.spawn([&, i] {
      if (!slots.acquire()) return;
      admitted.push_back(i);
      if (!gate.pass(1)) return;
      passed.push_back(i);
      slots.release();
    });
  }
  io.run();  // two hold a slot and wait at the gate; three wait for a slot; no work is left
  EXPECT_EQ(admitted, (std::vector<int>{0, 1}));
  EXPECT_EQ(slots.available(), 0u);
  gate.open(1);
  io.restart();
  io.run();
  EXPECT_EQ(admitted, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(passed.size(), 5u);
  EXPECT_EQ(slots.available(), 2u);
  // A waiter that times out leaves the list; shutdown ends the others.
  WaitList list(fibers);
  Wake timed = Wake::Woken, stopped = Wake::Woken;
  fibers.spawn([&] { timed = list.wait(now() + Duration{10}); });
  fibers.spawn([&] { stopped = list.wait(); });
  io.restart();
  io.run();
  EXPECT_EQ(timed, Wake::TimedOut);
  EXPECT_FALSE(list.empty());
  fibers.shutdown();
  EXPECT_EQ(stopped, Wake::Stopping);
  EXPECT_TRUE(list.empty());
}

// Uses about 1 KiB of stack per level, and keeps the frame alive (no tail call).
int deep(int levels) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(levels);
  if (levels == 0) return frame[0];
  return deep(levels - 1) + frame[0];
}

TEST(FibersDeathTest, OverflowingTheStackHitsTheGuardPage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto overflow = [] {
    asio::io_context io;
    Fibers fibers(io, FiberOptions{.stack_size = 32 * 1024});
    fibers.spawn([] { std::printf("%d\n", deep(256)); });  // 256 KiB on a 32 KiB stack
    io.run();
  };
  EXPECT_DEATH(overflow(), "");
  // Within bounds, the same recursion runs fine.
  asio::io_context io;
  Fibers fibers(io, FiberOptions{.stack_size = 64 * 1024});
  int r = -1;
  fibers.spawn([&] { r = deep(16); });
  io.run();
  EXPECT_GE(r, 0);
}

TEST(Fibers, StackTouchedIsTheHighWaterMark) {
  asio::io_context io;
  Fibers fibers(io, FiberOptions{.stack_size = 256 * 1024});
  std::size_t small = 0, large = 0;
  fibers.spawn([&] { small = fibers.stack_touched(Fibers::current()); });
  fibers.spawn([&] {
    (void)deep(100);
    large = fibers.stack_touched(Fibers::current());
  });
  io.run();
  EXPECT_GT(small, 0u);
  EXPECT_GE(large, 100u * 1024);
  EXPECT_LT(small, large);
  std::printf("stack touched: trivial fiber %zu B, 100 KiB recursion %zu B\n", small, large);
}

// Many fibers ping-ponging through wakes and deadlines on one thread: all finish, in order
// within each pair. Prints the switch cost and memory (EDGEKIT_SIM_FIBERS, default 1000).
TEST(Fibers, ManyFibersPingPong) {
  const std::size_t n = env_size("EDGEKIT_SIM_FIBERS", 1000) / 2 * 2;
  constexpr int kRounds = 20;
  asio::io_context io;
  Fibers fibers(io);
  std::vector<Fiber*> f(n, nullptr);
  std::vector<int> count(n, 0);
  std::size_t finished = 0, max_touched = 0;
  fibers.on_fiber_end = [&](std::size_t touched) { max_touched = std::max(max_touched, touched); };
  for (std::size_t i = 0; i < n; ++i) {
    f[i] = fibers.spawn([&, i] {
      const std::size_t peer = i ^ 1U;
      for (int r = 0; r < kRounds; ++r) {
        // Even fibers move first in each round, then wait for their peer's move. No deadlines:
        // a lost wake would leave the io_context without work, so run() would return early.
        if ((i & 1U) == 0) {
          ++count[i];
          (void)fibers.wake(f[peer]);
          while (count[peer] <= r) (void)fibers.wait();
        } else {
          while (count[peer] <= r) (void)fibers.wait();
          ++count[i];
          (void)fibers.wake(f[peer]);
        }
      }
      ++finished;
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t s0 = fibers.switches();
  io.run();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(finished, n);
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(count[i], kRounds) << i;
  const double switches = static_cast<double>(fibers.switches() - s0);
  std::printf(
      "%zu fibers, %.0f switches in %.3f s: %.0f ns per switch (with the io_context's "
      "posts), max stack touched %zu B\n",
      n, switches, secs, secs * 1e9 / switches, max_touched);
}

// The switch alone: one fiber yielding to the loop and back, nothing else queued.
TEST(Fibers, SwitchCost) {
  asio::io_context io;
  Fibers fibers(io);
  constexpr int kYields = 200000;
  fibers.spawn([&] {
    for (int i = 0; i < kYields; ++i) (void)fibers.yield();
  });
  const auto t0 = std::chrono::steady_clock::now();
  io.run();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The same number of posts without fibers: what the io_context's part of a yield costs.
  int left = kYields;
  std::function<void()> again = [&] {
    if (--left > 0) asio::post(io, again);
  };
  asio::post(io, again);
  io.restart();
  const auto t1 = std::chrono::steady_clock::now();
  io.run();
  const double post_secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("yield round trip (2 switches + 1 post): %.0f ns; a post alone: %.0f ns\n",
              secs * 1e9 / kYields, post_secs * 1e9 / kYields);
}

}  // namespace
}  // namespace edgekit::sim
