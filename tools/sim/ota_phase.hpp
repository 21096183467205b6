#pragma once
/// \file
/// The OTA rollout phase of the fleet simulator (scenario.hpp `OtaSpec`, docs/simulator.md "OTA
/// rollout"): the operator's side through fleetd's admin API, and each simulated device's side,
/// the real `ota::Agent` (libs/ota) unchanged in a `jobs::Runner` over the device's
/// `sim::LoopChannel`, with in-memory ports.
///
/// Operator (blocking HTTP: call it on a thread of its own, never the loop's):
///   `prepare_ota_release` uploads an edgekit image (version 2.0.0 for device type "sim", a
///   deterministic payload), has fleetd sign it with its code-signing key (POST .../sign), and
///   reads the signer's public key from the certificate fleetd returns; `create_ota_update`
///   then creates the update (a stream of the update's own, job `AFR_OTA-<id>`) for the things
///   or the thing group, with the rollout rate when set.
///
/// Device: `run_ota_device` runs in the device's fiber: runner start (the device is then ready
/// for the update) → notify → the agent downloads every block over the MQTT stream
/// (GetStream/data, CBOR or JSON), checks the signature (SHA-256 and ECDSA P-256 with OpenSSL,
/// the `ImageVerifier` port a device implements over its crypto), writes the inactive slot,
/// marks it pending and asks for a reboot; the simulated reboot is a disconnect and a clean
/// reconnect (`OtaDeviceHooks::reboot`) with a new agent and runner over the same ports, as after
/// a real reset; the agent then finds the image under test, the self-test passes, it confirms
/// and reports SUCCEEDED.
///
/// Ports (why in memory, and what they cost): the agent's `DownloadStore` and `Slots` here keep
/// everything in RAM that outlives the simulated reboot (the objects live for the phase), as a
/// device's flash would. No device keeps a copy of the image: `SparseImage` compares each
/// written range with the one reference copy the fleet shares (the bytes the operator uploaded),
/// keeps one bit per 64 bytes that matched, and keeps privately only bytes that differ — so a
/// changed or misplaced block is stored as received and the signature check sees it, while a
/// correct download costs image/512 bytes per copy (the download and slot B), e.g. 128 B for a
/// 64 KB image. Per device while the phase runs: the ports' bits and record (about 1.1 KB), the
/// agent (about 3 KB) and runner, and the buffers (`ota_device_bytes`); nothing after it.
///
/// Thread safety: `run_ota_device` and the ports on the loop thread only; `OtaRelease` is
/// read-only once made and shared by every device.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <edgekit/core/clock.hpp>
#include <edgekit/ota/errc.hpp>
#include <edgekit/ota/image_verifier.hpp>
#include <edgekit/ota/ports.hpp>
#include <edgekit/reqres/channel.hpp>
#include <openssl/types.h>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics.hpp"
#include "scenario.hpp"


namespace edgekit::sim {

/// The device type of the simulated devices and of the image (the agent compares them).
inline constexpr std::string_view kOtaDeviceType = "sim";

/// What the operator made; shared, read-only, by every device of the phase.
struct OtaRelease {
  std::string image_name;  ///< fleetd's image name (version "2.0.0")
  std::string update_id;   ///< the update; its job is AFR_OTA-<update_id>
  /// The file as uploaded (header and payload): the reference the devices' ports compare with.
  std::shared_ptr<const std::vector<std::byte>> image;
  /// What every device runs before the update: version 1.0.0, a header alone.
  std::shared_ptr<const std::vector<std::byte>> factory;
  /// fleetd's code-signing public key (from the certificate the sign call returned).
  std::shared_ptr<EVP_PKEY> signer;
};

/// The image of `spec.image_bytes` (version 2.0.0) and the factory image (1.0.0), with the same
/// payload for the same size (a fixed pseudo-random sequence).
[[nodiscard]] OtaRelease make_ota_images(const OtaSpec& spec);

/// The operator's first step: uploads `release.image` as image `<prefix>-ota-<unix time>`
/// version 2.0.0, has fleetd sign it and sets `release.signer`, `image_name` and `update_id`.
/// Returns an empty string, or what failed ("upload: 400 ...", "sign: 404 ...: fleetd has no CA
/// of its own", "the signer's certificate: ...").
[[nodiscard]] std::string prepare_ota_release(const std::string& admin_url,
                                              const std::string& admin_token,
                                              const std::string& prefix, OtaRelease& release);

/// The operator's second step: creates the update for `things` (or `spec.group` when set) in
/// blocks of `spec.block_bytes`, with `spec.rollout_per_minute`. Returns an empty string or the
/// failure ("create update: 409 ...").
[[nodiscard]] std::string create_ota_update(const std::string& admin_url,
                                            const std::string& admin_token, const OtaSpec& spec,
                                            const OtaRelease& release,
                                            std::span<const std::string> things);

/// A device's image in the ports: a sparse copy over a shared reference (see the file comment).
/// Bytes never written read as 0 (a sparse file's hole); `size` is the end of the furthest
/// write. Memory: one bit per 64 bytes of the image, plus 72 bytes and a map node for each
/// 64-byte grain written with bytes that differ from the reference.
class SparseImage {
 public:
  static constexpr std::size_t kGrain = 64;
  /// Empty, over `reference` (may be null: then every write is kept privately).
  void reset(std::shared_ptr<const std::vector<std::byte>> reference);
  void write(std::uint64_t offset, std::span<const std::byte> data);
  /// Up to `out.size()` bytes from `offset`; how many (fewer only at the end, 0 beyond it).
  [[nodiscard]] std::size_t read(std::uint64_t offset, std::span<std::byte> out) const;
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  /// Grains held privately (bytes that differed from the reference).
  [[nodiscard]] std::size_t private_grains() const noexcept;
  /// The bytes this object holds (bits and private grains; not the shared reference).
  [[nodiscard]] std::size_t memory_bytes() const noexcept;

 private:
  // A grain written (in part) with bytes that are not the reference's: its bytes, and which of
  // them were written (bit i: byte i).
  struct Own {
    std::array<std::byte, kGrain> bytes{};
    std::uint64_t written = 0;
  };
  std::shared_ptr<const std::vector<std::byte>> reference_;
  std::vector<std::uint8_t> same_;  // bit g: grain g was written with the reference's bytes
  std::map<std::uint64_t, Own> own_;
  std::uint64_t size_ = 0;
};

/// The `DownloadStore` port in RAM (ports.hpp): atomic by construction (a reboot of the
/// simulator's device keeps the object).
class MemoryDownloadStore final : public ota::DownloadStore {
 public:
  explicit MemoryDownloadStore(std::shared_ptr<const std::vector<std::byte>> reference);
  edgekit::Result<void, ota::Errc> save(std::span<const std::uint8_t> record,
                                    std::span<const std::uint8_t> bitmap) override;
  edgekit::Result<ota::StoredDownload, ota::Errc> load(std::span<std::uint8_t> record,
                                                   std::span<std::uint8_t> bitmap) override;
  edgekit::Result<void, ota::Errc> write_block(std::uint64_t offset,
                                           std::span<const std::byte> data) override;
  edgekit::Result<std::size_t, ota::Errc> read_image(std::uint64_t offset,
                                                 std::span<std::byte> out) override;
  edgekit::Result<void, ota::Errc> clear() override;
  [[nodiscard]] const SparseImage& image() const noexcept { return image_; }

 private:
  std::shared_ptr<const std::vector<std::byte>> reference_;
  SparseImage image_;
  std::vector<std::uint8_t> record_, bitmap_;
  bool saved_ = false;
};

/// The `Slots` port in RAM (ports.hpp, its state machine): slot A holds `factory`, and an image
/// written to the inactive slot is compared with `update`.
class MemorySlots final : public ota::Slots {
 public:
  MemorySlots(std::shared_ptr<const std::vector<std::byte>> factory,
              std::shared_ptr<const std::vector<std::byte>> update);
  edgekit::Result<ota::BootStatus, ota::Errc> status() override;
  edgekit::Result<ota::BootStatus, ota::Errc> boot() override;
  edgekit::Result<void, ota::Errc> begin_write() override;
  edgekit::Result<void, ota::Errc> write(std::uint64_t offset, std::span<const std::byte> data) override;
  edgekit::Result<void, ota::Errc> finish_write() override;
  edgekit::Result<void, ota::Errc> mark_pending() override;
  edgekit::Result<void, ota::Errc> confirm() override;
  edgekit::Result<void, ota::Errc> roll_back() override;
  edgekit::Result<void, ota::Errc> acknowledge() override;
  edgekit::Result<std::size_t, ota::Errc> read(ota::Slot slot, std::uint64_t offset,
                                           std::span<std::byte> out) override;
  [[nodiscard]] const SparseImage& image(ota::Slot s) const noexcept {
    return slots_[static_cast<std::size_t>(s)];
  }

 private:
  std::shared_ptr<const std::vector<std::byte>> update_;
  SparseImage slots_[2];
  ota::BootStatus status_{};
  bool writing_ = false, finished_ = false;
};

/// The `ImageVerifier` port over OpenSSL: SHA-256 of the image read through the source, then
/// ECDSA P-256 verification of the signature (DER or raw r || s) with `key`. Errors as the port
/// says: InvalidArgument, ImageTruncated, the source's, MalformedSignature, SignatureInvalid,
/// TokenFailed (OpenSSL failed).
class OpenSslImageVerifier final : public ota::ImageVerifier {
 public:
  explicit OpenSslImageVerifier(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  edgekit::Result<void, ota::Errc> verify(ota::ImageSource source, std::uint64_t size,
                                      std::span<const std::byte> signature,
                                      std::span<std::byte> buffer) noexcept override;

 private:
  std::shared_ptr<EVP_PKEY> key_;
};

/// The public key of the first certificate in `pem` (a bundle); null and `error` set otherwise.
[[nodiscard]] std::shared_ptr<EVP_PKEY> public_key_of(std::string_view pem, std::string& error);

/// What the fleet gives a device for the phase. Every callback runs in the device's fiber.
struct OtaDeviceHooks {
  /// The runner has started (subscribed, asked for its next job): ready for the update.
  std::function<void()> ready;
  /// The agent asked for a reboot: disconnect, reconnect with a clean session. False when the
  /// device could not come back.
  std::function<bool()> reboot;
  /// False once the run stops or the phase is abandoned.
  std::function<bool()> keep_going;
  /// Sleeps the fiber (the agent's wait between self-test polls while disconnected).
  std::function<void(Duration)> sleep;
};

struct OtaDeviceOutcome {
  bool succeeded = false;
  /// When not: a short stable cause ("ota: FAILED: rejected: signature invalid", "ota: no
  /// update before the phase's timeout", ...) and its detail.
  std::string cause, detail;
  std::uint32_t blocks = 0, duplicates = 0;
  bool rebooted = false;
  /// After SUCCEEDED: the active slot (B) reads back as the uploaded file, byte for byte.
  bool image_matches = false;
  std::size_t port_bytes = 0;  ///< what the ports held at the end (bits, record, private grains)
};

/// The device's part of the phase, in its fiber (file comment). `ota_bytes` counts the bytes of
/// every block stored. Returns when the device reported SUCCEEDED or FAILED, at `deadline`, or
/// when `hooks.keep_going` says so.
[[nodiscard]] OtaDeviceOutcome run_ota_device(reqres::Channel& channel, std::string_view thing,
                                              std::uint32_t index, const OtaSpec& spec,
                                              const OtaRelease& release, Counter& ota_bytes,
                                              std::chrono::steady_clock::time_point deadline,
                                              const OtaDeviceHooks& hooks);

/// Bytes a device allocates for the phase besides its ports: agent, runner, their buffers.
[[nodiscard]] std::size_t ota_device_bytes(const OtaSpec& spec);

}  // namespace edgekit::sim
