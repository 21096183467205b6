#pragma once
/// \file
/// Time in edgekit. Pure code never reads a clock: it takes the current `Instant` as an argument
/// and returns deadlines. Drivers (client, agent) read time through an injected `Clock`, so tests
/// run in simulated time and an RTOS port supplies its tick counter.

#include <chrono>
#include <cstdint>
#include <type_traits>

#if defined(__linux__)
#include <time.h>
#endif

namespace edgekit {

#ifndef EDGEKIT_TIME_32
#define EDGEKIT_TIME_32 0
#endif

#if EDGEKIT_TIME_32
/// Milliseconds, 32 bits (EDGEKIT_TIME_32: CMake's option of that name, on in the cortex-m4
/// preset). Timeouts up to Duration::max(), about 24.8 days.
using Duration = std::chrono::duration<std::int32_t, std::milli>;
#else
/// Milliseconds.
using Duration = std::chrono::milliseconds;
#endif

/// Milliseconds on a monotonic clock, from an arbitrary origin (boot, process start, zero in a
/// simulation). Only differences between two Instants mean anything.
///
/// With EDGEKIT_TIME_32 the count is 32 bits and wraps every 2^32 ms (about 49.7 days), as an
/// RTOS tick counter does: comparisons and differences are taken modulo 2^32 (serial number
/// arithmetic, as RFC 1982), so they hold across the wrap for two Instants less than about 24.8
/// days apart. The libraries only compare times that close: deadlines are at most a timeout
/// (<= Duration::max()) or a keep-alive interval (<= 18.2 h) ahead. 32-bit arithmetic is
/// smaller and faster on 32-bit devices (docs/sizes.md); hosted builds keep 64 bits.
struct Instant {
  Duration since_origin{0};
  // Written out rather than a defaulted <=>, which GCC emits as an out-of-line function
  // returning an ordering that each caller tests again (code size on 32-bit targets).
  friend constexpr bool operator==(Instant a, Instant b) { return a.since_origin == b.since_origin; }
#if EDGEKIT_TIME_32
  // Unsigned arithmetic wraps where signed would overflow; the conversions back to signed are
  // modular (C++20).
  friend constexpr bool operator<(Instant a, Instant b) { return (a - b).count() < 0; }
  friend constexpr Instant operator+(Instant t, Duration d) {
    return Instant{
        Duration{static_cast<std::int32_t>(static_cast<std::uint32_t>(t.since_origin.count()) +
                                           static_cast<std::uint32_t>(d.count()))}};
  }
  friend constexpr Duration operator-(Instant a, Instant b) {
    return Duration{static_cast<std::int32_t>(static_cast<std::uint32_t>(a.since_origin.count()) -
                                              static_cast<std::uint32_t>(b.since_origin.count()))};
  }
#else
  friend constexpr bool operator<(Instant a, Instant b) { return a.since_origin < b.since_origin; }
  friend constexpr Instant operator+(Instant t, Duration d) { return Instant{t.since_origin + d}; }
  friend constexpr Duration operator-(Instant a, Instant b) {
    return a.since_origin - b.since_origin;
  }
#endif
  friend constexpr bool operator>(Instant a, Instant b) { return b < a; }
  friend constexpr bool operator<=(Instant a, Instant b) { return !(b < a); }
  friend constexpr bool operator>=(Instant a, Instant b) { return !(a < b); }
};

/// `now + timeout`, saturating instead of overflowing, so that a caller may pass
/// `Duration::max()` for "no limit" (a plain `now + timeout` overflows a signed count there:
/// undefined behaviour); `now` for a timeout of zero or less. With EDGEKIT_TIME_32 time wraps
/// instead (see Instant): the sum wraps too, and compares later than `now` for every timeout up
/// to Duration::max(). Every library computes its deadlines from a caller's timeout with this.
[[nodiscard]] constexpr Instant deadline_after(Instant now, Duration timeout) noexcept {
  if (timeout <= Duration::zero()) return now;
#if !EDGEKIT_TIME_32
  // timeout > 0, so only a positive overflow is possible.
  if (now.since_origin > Duration::max() - timeout) return Instant{Duration::max()};
#endif
  return now + timeout;
}

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
    // In unsigned arithmetic: with EDGEKIT_TIME_32 the count wraps (see Instant).
    using U = std::make_unsigned_t<Duration::rep>;
    const U ms = static_cast<U>(t.tv_sec) * 1000u + static_cast<U>(t.tv_nsec / 1000000);
    return Instant{Duration{static_cast<Duration::rep>(ms)}};
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
