#pragma once
/// \file
/// Time in edgekit. Pure code never reads a clock: it takes the current `Instant` as an argument
/// and returns deadlines. Drivers (client, agent) read time through an injected `Clock`, so tests
/// run in simulated time and an RTOS port supplies its tick counter.

#include <chrono>
#include <cstdint>

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
};
#endif

}  // namespace edgekit
