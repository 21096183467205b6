#pragma once
/// \file
/// The two ports a device implements for OTA (docs/ota.md, "Ports"): where a download in progress
/// is kept (`DownloadStore`), and the A/B image slots with their boot state (`Slots`). File-backed
/// implementations for POSIX are in file_ports.hpp; on a microcontroller the same interfaces sit
/// over flash pages (a `DownloadStore` can write blocks straight into the inactive slot).
///
/// Errors are `ota::Errc`. Thread safety: an implementation is used by one thread at a time (the
/// OTA agent's); the interfaces make no promise beyond that.

#include <cstddef>
#include <cstdint>
#include <span>

#include "edgekit/ota/errc.hpp"
#include "edgekit/ota/image.hpp"

namespace edgekit::ota {

/// The largest record a `DownloadStore` must keep beside the bitmap (the agent's job id, file
/// id, sizes, signature, ...).
inline constexpr std::size_t kMaxDownloadRecordSize = 1024;

/// Sizes of what `DownloadStore::load` read.
struct StoredDownload {
  std::size_t record_size = 0;
  std::size_t bitmap_size = 0;
};

/// Keeps a download across power cuts: the partial image, and a state record with the block
/// bitmap (download.hpp) that says which of its blocks are there.
///
/// The guarantee a port must give, on which "never download a byte twice, never install a byte
/// that did not arrive" rests: after a power cut at any point, `load` returns either the pair the
/// last completed `save` wrote or the one before it (never a mix, never a torn record: a record
/// that does not pass its checksum is reported as RecordCorrupted, not returned), and every block
/// written with `write_block` before a `save` returned is durable once that `save` returned. So
/// a bitmap never claims a block whose bytes are not stored.
class DownloadStore {
 public:
  virtual ~DownloadStore() = default;

  /// Persists `record` (at most kMaxDownloadRecordSize bytes) and `bitmap` together, atomically,
  /// after making the blocks written so far durable.
  /// Errors: InvalidArgument (record too large), StoreFailed.
  [[nodiscard]] virtual Result<void, Errc> save(std::span<const std::uint8_t> record,
                                                std::span<const std::uint8_t> bitmap) = 0;
  /// Reads the last saved pair into the caller's buffers.
  /// Errors: NoDownload (nothing saved, or cleared), RecordCorrupted (the stored record fails its
  /// checksum or layout), BufferTooSmall (a buffer smaller than what is stored), StoreFailed.
  [[nodiscard]] virtual Result<StoredDownload, Errc> load(std::span<std::uint8_t> record,
                                                          std::span<std::uint8_t> bitmap) = 0;
  /// Writes `data` at `offset` of the partial image (durable at the next `save`).
  /// Errors: StoreFailed.
  [[nodiscard]] virtual Result<void, Errc> write_block(std::uint64_t offset,
                                                       std::span<const std::byte> data) = 0;
  /// Reads up to `out.size()` bytes of the partial image from `offset`; returns how many (fewer
  /// only at its end). Errors: StoreFailed.
  [[nodiscard]] virtual Result<std::size_t, Errc> read_image(std::uint64_t offset,
                                                             std::span<std::byte> out) = 0;
  /// Forgets the download: afterwards `load` is NoDownload and the image is gone.
  /// Errors: StoreFailed.
  [[nodiscard]] virtual Result<void, Errc> clear() = 0;
};

/// One of the two image slots.
enum class Slot : std::uint8_t { A = 0, B = 1 };

/// The other slot.
[[nodiscard]] constexpr Slot other(Slot s) noexcept {
  return s == Slot::A ? Slot::B : Slot::A;
}

/// Where the A/B pair stands.
enum class BootState : std::uint8_t {
  Normal = 0,   ///< the active slot runs, confirmed
  PendingTest,  ///< the inactive slot holds a verified image that the next boot will try
  Testing,      ///< the active slot was booted for a test; it is rolled back at the next boot
                ///< unless confirmed before it
  RolledBack,   ///< the last image tried was rolled back (until `acknowledge`)
};

/// The boot record: the active slot and the state.
struct BootStatus {
  Slot active = Slot::A;
  BootState state = BootState::Normal;
  friend constexpr bool operator==(const BootStatus&, const BootStatus&) = default;
};

/// The A/B image slots and their boot state (what a bootloader and the application share).
///
/// The state machine (docs/ota.md):
///
///   Normal --write + mark_pending--> PendingTest --boot--> Testing (active = new slot)
///   Testing --confirm--> Normal            Testing --boot (no confirm: a reset or a hang
///   Testing --roll_back--> RolledBack      during the self-test)--> RolledBack (active = old)
///   PendingTest --roll_back--> RolledBack  RolledBack --acknowledge--> Normal
///
/// The guarantee a port must give: every state change is atomic (after a power cut the record is
/// the old one or the new one), and the active slot is never one whose image was not completely
/// written (`finish_write` makes it durable before `mark_pending` can name it). The running image
/// is never written: `begin_write` always opens the inactive slot.
class Slots {
 public:
  virtual ~Slots() = default;

  /// The boot record. Errors: RecordCorrupted, SlotFailed.
  [[nodiscard]] virtual Result<BootStatus, Errc> status() = 0;
  /// What a bootloader does at reset: PendingTest → Testing with the other slot active;
  /// Testing → RolledBack with the other slot active again; otherwise nothing. Returns the new
  /// record. Errors: RecordCorrupted, SlotFailed.
  [[nodiscard]] virtual Result<BootStatus, Errc> boot() = 0;

  /// Starts writing a new image into the inactive slot, discarding what it held. Not allowed
  /// while an image is pending or under test. Errors: SlotStateInvalid, SlotFailed.
  [[nodiscard]] virtual Result<void, Errc> begin_write() = 0;
  /// Writes `data` at `offset` of the image being written. Errors: SlotStateInvalid (no
  /// `begin_write`), SlotFailed.
  [[nodiscard]] virtual Result<void, Errc> write(std::uint64_t offset,
                                                 std::span<const std::byte> data) = 0;
  /// Makes the image written durable as the inactive slot's image. Errors: SlotStateInvalid,
  /// SlotFailed.
  [[nodiscard]] virtual Result<void, Errc> finish_write() = 0;
  /// Normal or RolledBack → PendingTest: the next boot tries the inactive slot. Only the image
  /// this object's last `finish_write` completed may be named: after a reboot the inactive slot
  /// may hold an older complete image that must not be booted by mistake, so the caller writes
  /// the verified image again.
  /// Errors: NoImage (no image finished since the last `begin_write` or `mark_pending`),
  /// SlotStateInvalid, SlotFailed.
  [[nodiscard]] virtual Result<void, Errc> mark_pending() = 0;
  /// Testing → Normal: the image under test stays. Errors: SlotStateInvalid, SlotFailed.
  [[nodiscard]] virtual Result<void, Errc> confirm() = 0;
  /// Testing → RolledBack with the other slot active (the caller resets into it next), or
  /// PendingTest → RolledBack (the test never started). Errors: SlotStateInvalid, SlotFailed.
  [[nodiscard]] virtual Result<void, Errc> roll_back() = 0;
  /// RolledBack → Normal, once the failure was reported. Errors: SlotStateInvalid, SlotFailed.
  [[nodiscard]] virtual Result<void, Errc> acknowledge() = 0;

  /// Reads up to `out.size()` bytes of `slot`'s image from `offset`; returns how many.
  /// Errors: NoImage, SlotFailed.
  [[nodiscard]] virtual Result<std::size_t, Errc> read(Slot slot, std::uint64_t offset,
                                                       std::span<std::byte> out) = 0;
  /// The version in the active slot's image header. Errors: NoImage, as read_image_header,
  /// SlotFailed.
  [[nodiscard]] Result<ImageVersion, Errc> active_version();
};

}  // namespace edgekit::ota
