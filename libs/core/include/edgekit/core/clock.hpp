#pragma once
/// \file
/// Time in edgekit. Pure code never reads a clock: it takes the current `Instant` as an argument
/// and returns deadlines. Drivers (client, agent) read time through an injected `Clock`, so tests
/// run in simulated time and an RTOS port supplies its tick counter.

#include <chrono>
#include <cstdint>

#if defined(__linux__)
#include <time.h>
#endif

namespace edgekit {

/// Milliseconds on a monotonic clock, from an arbitrary origin (boot, process start, zero in a
/// simulation). Only differences between two Instants mean anything.
using Duration = std::chrono::milliseconds;
struct Instant {
  Duration since_origin{0};
  // Written out rather than a defaulted <=>, which GCC emits as an out-of-line function
  // returning an ordering that each caller tests again (code size on 32-bit targets).
  friend constexpr bool operator==(Instant a, Instant b) { return a.since_origin == b.since_origin; }
  friend constexpr bool operator<(Instant a, Instant b) { return a.since_origin < b.since_origin; }
  friend constexpr bool operator>(Instant a, Instant b) { return b < a; }
  friend constexpr bool operator<=(Instant a, Instant b) { return !(b < a); }
  friend constexpr bool operator>=(Instant a, Instant b) { return !(a < b); }
  friend constexpr Instant operator+(Instant t, Duration d) { return Instant{t.since_origin + d}; }
  friend constexpr Duration operator-(Instant a, Instant b) { return a.since_origin - b.since_origin; }
};

/// A monotonic clock. Implementations: `SteadyClock` (std::chrono::steady_clock, hosted builds),
/// `testing::ManualClock` (tests), a tick counter on an RTOS. Must be safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Instant now() const noexcept = 0;
  /// A cheaper reading, for callers that only need the time to within a few milliseconds and
  /// for which a time slightly *earlier* than `now()` is safe. It is never later than `now()`
  /// read at the same moment and lags it by at most a few milliseconds (the kernel's tick). The
  /// blocking client restarts the keep-alive interval with it after each publish: an early
  /// time only brings the next PINGREQ that much forward, never past the interval the server
  /// enforces. The default is `now()`; an implementation must keep both on one timeline.
  [[nodiscard]] virtual Instant now_coarse() const noexcept { return now(); }
};

#if !defined(EDGEKIT_NO_STD_CLOCK)
/// `std::chrono::steady_clock` as a `Clock`. Header-only so that bare-metal builds, which never
/// instantiate it, do not link any clock.
class SteadyClock final : public Clock {
 public:
  [[nodiscard]] Instant now() const noexcept override {
    return Instant{std::chrono::duration_cast<Duration>(
        std::chrono::steady_clock::now().time_since_epoch())};
  }
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
  /// CLOCK_MONOTONIC_COARSE: the same clock as steady_clock (CLOCK_MONOTONIC) as of the last
  /// kernel tick, read without the time counter: about 5 ns against 24–33 ns for `now()` on the
  /// virtual machines measured (docs/benchmarks.md), where it is a measurable share of a QoS 0
  /// publish. Used only when its resolution is at most 10 ms (one tick at HZ >= 100).
  [[nodiscard]] Instant now_coarse() const noexcept override {
    if (!coarse_) return now();
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return Instant{Duration{static_cast<Duration::rep>(t.tv_sec) * 1000 + t.tv_nsec / 1000000}};
  }

 private:
  static bool coarse_usable() noexcept {
    timespec r{};
    return ::clock_getres(CLOCK_MONOTONIC_COARSE, &r) == 0 && r.tv_sec == 0 &&
           r.tv_nsec <= 10'000'000;
  }
  bool coarse_ = coarse_usable();
#endif
};
#endif

}  // namespace edgekit
