#pragma once
/// \file
/// A `Clock` whose time only moves when a test says so.

#include <atomic>
#include <cstdint>

#include "edgekit/core/clock.hpp"

namespace edgekit::testing {

/// Simulated monotonic time for tests. Starts at `start` (zero by default) and moves only through
/// `advance` / `set`. Thread safety: every member may be called from any thread.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Instant start = Instant{}) noexcept : ms_(start.since_origin.count()) {}

  [[nodiscard]] Instant now() const noexcept override {
    return Instant{Duration{ms_.load(std::memory_order_acquire)}};
  }
  /// `now()` less the lag set by `set_coarse_lag` (zero by default): lets a test see which
  /// reading a driver took.
  [[nodiscard]] Instant now_coarse() const noexcept override {
    return Instant{Duration{ms_.load(std::memory_order_acquire) -
                            coarse_lag_ms_.load(std::memory_order_acquire)}};
  }
  /// How far `now_coarse()` trails `now()`, as a tick-based clock's coarse reading may.
  void set_coarse_lag(Duration lag) noexcept {
    coarse_lag_ms_.store(lag.count(), std::memory_order_release);
  }
  /// Moves time forward by `d` (a negative `d` is ignored: the clock is monotonic).
  void advance(Duration d) noexcept {
    if (d.count() > 0) ms_.fetch_add(d.count(), std::memory_order_acq_rel);
  }
  /// Sets the time to `t` if that is not earlier than now (monotonic); returns the new time.
  Instant set(Instant t) noexcept {
    std::int64_t want = t.since_origin.count();
    std::int64_t cur = ms_.load(std::memory_order_acquire);
    while (cur < want && !ms_.compare_exchange_weak(cur, want, std::memory_order_acq_rel)) {
    }
    return now();
  }

 private:
  std::atomic<std::int64_t> ms_;
  std::atomic<std::int64_t> coarse_lag_ms_{0};
};

}  // namespace edgekit::testing
