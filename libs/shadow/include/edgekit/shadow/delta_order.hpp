#pragma once
/// \file
/// Applying each shadow delta once, in version order (aws-iot-protocols.md 1.5): messages may
/// arrive out of order or twice (QoS 1 redelivery, a resubscription), and every accepted update
/// increments the shadow's version by one, its update/delta carrying that version. A device
/// keeps the version of the last state it applied and asks this helper about each delta:
///
///   shadow::DeltaOrder order;                 // nothing applied yet (or restored from flash)
///   auto d = shadow::read_delta(payload);
///   if (d && order.accept(d->version) == shadow::DeltaDecision::Apply) apply(d->state);
///
/// Versions may skip (a reported-only update makes no delta), so any newer version is applied.
/// A full document read from get/accepted counts as applied up to its version
/// (`applied_document`). After the shadow is deleted, call `reset()`: a shadow re-created more
/// than 48 hours later numbers its versions from 0 again (1.5).
/// Pure, constexpr, 16 bytes of state. Thread safety: none (one thread at a time).

#include <cstdint>

namespace edgekit::shadow {

/// What to do with a delta.
enum class DeltaDecision : std::uint8_t {
  Apply,            ///< newer than anything applied: apply it
  IgnoreStale,      ///< older than the last applied version: a newer state is already applied
  IgnoreDuplicate,  ///< the version already applied (a redelivery)
};

/// The last applied shadow version, and the decision for each delta.
class DeltaOrder {
 public:
  /// Nothing applied yet: the first delta is applied whatever its version.
  constexpr DeltaOrder() noexcept = default;
  /// Resumes after `last_applied` (e.g. a version kept in flash across a reboot).
  constexpr explicit DeltaOrder(std::uint64_t last_applied) noexcept
      : last_(last_applied), known_(true) {}

  /// The decision for a delta of `version`, without recording anything.
  [[nodiscard]] constexpr DeltaDecision decide(std::uint64_t version) const noexcept {
    if (!known_ || version > last_) return DeltaDecision::Apply;
    return version == last_ ? DeltaDecision::IgnoreDuplicate : DeltaDecision::IgnoreStale;
  }
  /// `decide(version)`, and when it is Apply, records `version` as applied: the caller must then
  /// apply the delta (or call `reset`/construct anew if applying failed and it wants it again).
  constexpr DeltaDecision accept(std::uint64_t version) noexcept {
    const DeltaDecision d = decide(version);
    if (d == DeltaDecision::Apply) {
      last_ = version;
      known_ = true;
    }
    return d;
  }
  /// Records that a whole shadow document of `version` (get/accepted) was applied: deltas up to
  /// it are then stale or duplicate. Never moves backwards.
  constexpr void applied_document(std::uint64_t version) noexcept {
    if (!known_ || version > last_) {
      last_ = version;
      known_ = true;
    }
  }
  /// Forgets the last version (after the shadow was deleted).
  constexpr void reset() noexcept { *this = DeltaOrder(); }

  /// Whether any version was applied.
  [[nodiscard]] constexpr bool has_applied() const noexcept { return known_; }
  /// The last applied version (0 when none: see `has_applied`).
  [[nodiscard]] constexpr std::uint64_t last_applied() const noexcept { return last_; }

 private:
  std::uint64_t last_ = 0;
  bool known_ = false;
};

}  // namespace edgekit::shadow
