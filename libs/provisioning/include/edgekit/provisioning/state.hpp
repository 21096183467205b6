#pragma once
/// \file
/// The provisioning state a device keeps across reboots, so that a flow interrupted at any step
/// (power loss after the certificate arrived, before RegisterThing answered, ...) resumes or
/// restarts cleanly on the next boot without leaving two identities in its token.
///
/// Where it lives, and why a file rather than a CKO_DATA object in the token: the token is the
/// truth for *which objects exist* (the device key and certificate, found by their label), and
/// `Provisioner` reconciles it with this state at every start. The state says *how far the
/// service got* (certificate issued, thing registered) and holds the ownership token. Each
/// step must change it atomically; PKCS#11 has no transaction, and a CKO_DATA value cannot be
/// rewritten in place on every module (CKA_MODIFIABLE, SoftHSM2 vs. edgekit's token), so an
/// update there is a destroy + create pair that a power loss can split. A file written to a
/// temporary name, fsync'ed and renamed over the old one is either old or new after a crash.
/// The interface lets a device without a file system keep it elsewhere (flash sector pair).
/// The ownership token is a bearer credential for one hour: the file is created mode 0600.
///
/// Thread safety: none; one `Provisioner` uses a store from one thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edgekit/provisioning/errc.hpp"

namespace edgekit::provisioning {

/// How far provisioning got. Values are stored: never renumber.
enum class Step : std::uint8_t {
  /// Nothing the service knows of. Objects under the device label (a key generated before a
  /// power loss) are leftovers and are destroyed before a new attempt.
  Started = 1,
  /// The certificate and key are in the token under the device label; the service issued the
  /// certificate (`certificate_id`) and the `ownership_token` is good until `expires_at`.
  CertificateReceived = 2,
  /// RegisterThing accepted: the device identity is final (`thing_name`). The claim identity is
  /// not used again.
  Registered = 3,
};

/// "Started", "CertificateReceived", "Registered".
[[nodiscard]] const char* to_string(Step step) noexcept;

/// What is persisted.
struct State {
  Step step = Step::Started;
  std::string certificate_id;   ///< 64 lower-case hex digits (CertificateReceived, Registered)
  std::string ownership_token;  ///< CertificateReceived only (cleared once registered)
  std::int64_t expires_at = 0;  ///< epoch seconds when the ownership token stops being valid
  std::string thing_name;       ///< Registered
  friend bool operator==(const State&, const State&) = default;
};

/// Persistence of `State`.
class StateStore {
 public:
  virtual ~StateStore() = default;
  /// The stored state; nullopt when none was stored (a device that never started provisioning).
  /// Errors: StateStoreFailed (cannot read), StateCorrupted (integrity check failed: the
  /// caller starts over, as with no state, after destroying what the token holds for it).
  [[nodiscard]] virtual Result<std::optional<State>, Errc> load() = 0;
  /// Replaces the stored state atomically (old or new after a crash, never a mix).
  /// Errors: StateStoreFailed.
  [[nodiscard]] virtual Result<void, Errc> save(const State& state) = 0;
  /// Removes the state (a device reset to its claim identity). Errors: StateStoreFailed.
  [[nodiscard]] virtual Result<void, Errc> clear() = 0;
};

/// `StateStore` in one POSIX file: text fields and a SHA-256 over them, written to `<path>.tmp`
/// (mode 0600), fsync'ed, renamed over `<path>`, and the directory fsync'ed.
class FileStateStore final : public StateStore {
 public:
  /// `path`: the state file (its directory must exist).
  explicit FileStateStore(std::string path);
  [[nodiscard]] Result<std::optional<State>, Errc> load() override;
  [[nodiscard]] Result<void, Errc> save(const State& state) override;
  [[nodiscard]] Result<void, Errc> clear() override;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// Seconds since the Unix epoch, for the ownership token's expiry, which must hold across a
/// reboot (a monotonic `Clock` restarts at boot). Must be safe to call from any thread.
class WallClock {
 public:
  virtual ~WallClock() = default;
  [[nodiscard]] virtual std::int64_t epoch_seconds() const noexcept = 0;
};

/// `WallClock` over the system's real-time clock (hosted builds).
class SystemWallClock final : public WallClock {
 public:
  [[nodiscard]] std::int64_t epoch_seconds() const noexcept override;
};

}  // namespace edgekit::provisioning
