#pragma once
/// \file
/// `edgekit::backoff`: exponential backoff with full jitter, for reconnects and retried requests.
///
/// Full jitter (as described in the AWS Architecture Blog, "Exponential Backoff And Jitter"):
/// attempt n (0-based) waits a uniformly random time in [0, min(cap, base * 2^n)]. Many devices
/// that lost the same broker at the same moment therefore spread their reconnects over the whole
/// window instead of arriving in waves.
///
/// Pure: no clock, no heap, no global state. The random source is injected (`RandomSource`), so
/// tests and the deterministic simulation choose the numbers; `SplitMix64` is a small seeded
/// generator for devices without a better one (seed it from something unique per device, such as
/// a hardware RNG or the serial number, or every device of a fleet jitters alike).
/// Thread safety: none (value types; one owner at a time).

#include <cstdint>

#include "edgekit/core/clock.hpp"

namespace edgekit::backoff {

/// A source of uniformly distributed 32-bit numbers.
class RandomSource {
 public:
  /// The next number, uniform over [0, 2^32).
  [[nodiscard]] virtual std::uint32_t next_u32() noexcept = 0;

 protected:
  ~RandomSource() = default;
};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, statistically good enough for jitter. Not
/// for cryptography.
class SplitMix64 final : public RandomSource {
 public:
  explicit constexpr SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}
  [[nodiscard]] std::uint32_t next_u32() noexcept override {
    state_ += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<std::uint32_t>((z ^ (z >> 31)) >> 32);
  }

 private:
  std::uint64_t state_;
};

/// Settings of a backoff.
struct Policy {
  /// The window of the first retry (attempt 0). Must be > 0.
  Duration base{500};
  /// The largest window; the window stops growing here. Must be >= base.
  Duration cap{30'000};
};

/// The window of attempt `attempt` (0-based): min(cap, base * 2^attempt), without overflow.
[[nodiscard]] constexpr Duration window(const Policy& policy, std::uint32_t attempt) noexcept {
  const std::int64_t base = policy.base.count() > 0 ? policy.base.count() : 1;
  const std::int64_t cap = policy.cap.count() > base ? policy.cap.count() : base;
  std::int64_t w = base;
  for (std::uint32_t i = 0; i < attempt && w < cap; ++i) w = (w > cap / 2) ? cap : w * 2;
  return Duration{w < cap ? w : cap};
}

/// Full jitter: maps `random` (uniform 32-bit) onto [0, window(policy, attempt)] inclusive.
[[nodiscard]] constexpr Duration full_jitter(const Policy& policy, std::uint32_t attempt,
                                             std::uint32_t random) noexcept {
  const auto w = static_cast<std::uint64_t>(window(policy, attempt).count());
  // Multiply-shift maps [0, 2^32) onto [0, w] without the bias of a modulo by a small number.
  const std::uint64_t scaled = (static_cast<std::uint64_t>(random) * (w + 1)) >> 32;
  return Duration{static_cast<std::int64_t>(scaled)};
}

/// Counts attempts and hands out the delay before each retry.
class Backoff {
 public:
  constexpr Backoff(Policy policy, RandomSource& random) noexcept
      : policy_(policy), random_(&random) {}

  /// The delay before the next attempt; counts one attempt.
  [[nodiscard]] Duration next() noexcept {
    const Duration d = full_jitter(policy_, attempts_, random_->next_u32());
    if (attempts_ < 0xFFFF'FFFFu) ++attempts_;
    return d;
  }
  /// Starts over (after a success).
  constexpr void reset() noexcept { attempts_ = 0; }
  /// Attempts counted since the last reset.
  [[nodiscard]] constexpr std::uint32_t attempts() const noexcept { return attempts_; }
  [[nodiscard]] constexpr const Policy& policy() const noexcept { return policy_; }

 private:
  Policy policy_;
  RandomSource* random_;
  std::uint32_t attempts_ = 0;
};

}  // namespace edgekit::backoff
