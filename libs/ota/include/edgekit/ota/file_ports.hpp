#pragma once
/// \file
/// File-backed implementations of the OTA ports (ports.hpp) for POSIX, and the file-system seam
/// they go through.
///
/// Layout: a `FileDownloadStore` directory holds `download.img` (the partial image, written in
/// place) and `download.state` (the record and the bitmap); a `FileSlots` directory holds
/// `slot-a.img`, `slot-b.img` and `boot.state`. Every state file is written atomically: a
/// temporary file, fsync, rename over the old one, fsync of the directory; and carries a header
/// (magic, format version, sizes) and a CRC-32 over everything, so that a file damaged some other
/// way than by a cut (a torn write the file system let through, a bit flip) is reported as
/// RecordCorrupted and never read as state. A slot image is written to `slot-x.img.part` and
/// renamed into place by `finish_write`.
///
/// Thread safety: one thread at a time per object; two objects must not share a directory.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "edgekit/ota/ports.hpp"

namespace edgekit::ota {

/// The file operations the file-backed ports make, as a seam (in the manner of Envoy's
/// Filesystem): the tests put a file system here that cuts the power after any write.
/// Every call returns false on failure (errno is not kept: the ports report StoreFailed or
/// SlotFailed). Mutating calls are the power-cut points: each may be the last to happen.
class Filesystem {
 public:
  virtual ~Filesystem() = default;
  /// Creates `path` if needed and writes `data` at `offset` (no sync).
  virtual bool write_at(const std::string& path, std::uint64_t offset,
                        std::span<const std::byte> data) = 0;
  /// Creates `path` empty, or truncates it to 0 bytes.
  virtual bool truncate(const std::string& path) = 0;
  /// fsync of `path` (a file or a directory).
  virtual bool sync(const std::string& path) = 0;
  /// rename(2), then fsync of the directory `dir` that holds both.
  virtual bool replace(const std::string& from, const std::string& to, const std::string& dir) = 0;
  /// Removes `path`; true when it is gone (also when it never was).
  virtual bool remove(const std::string& path) = 0;
  /// Reads up to `out.size()` bytes from `offset`: how many, or nullopt on failure or when the
  /// file does not exist (`exists` tells the two apart).
  virtual std::optional<std::size_t> read_at(const std::string& path, std::uint64_t offset,
                                             std::span<std::byte> out) = 0;
  /// The size of `path`, or nullopt when it does not exist.
  virtual std::optional<std::uint64_t> size(const std::string& path) = 0;
};

/// The POSIX file system (open/pwrite/fsync/rename). Thread safe (no state).
[[nodiscard]] Filesystem& posix_filesystem() noexcept;

/// A DownloadStore in a directory (created if missing).
class FileDownloadStore final : public DownloadStore {
 public:
  explicit FileDownloadStore(std::string directory, Filesystem& fs = posix_filesystem());

  Result<void, Errc> save(std::span<const std::uint8_t> record,
                          std::span<const std::uint8_t> bitmap) override;
  Result<StoredDownload, Errc> load(std::span<std::uint8_t> record,
                                    std::span<std::uint8_t> bitmap) override;
  Result<void, Errc> write_block(std::uint64_t offset, std::span<const std::byte> data) override;
  Result<std::size_t, Errc> read_image(std::uint64_t offset, std::span<std::byte> out) override;
  Result<void, Errc> clear() override;

 private:
  std::string dir_;
  Filesystem* fs_;
};

/// Slots in a directory (created if missing). A directory without `boot.state` is Normal with
/// slot A active (a device as it left the factory, its image in `slot-a.img`).
class FileSlots final : public Slots {
 public:
  explicit FileSlots(std::string directory, Filesystem& fs = posix_filesystem());

  Result<BootStatus, Errc> status() override;
  Result<BootStatus, Errc> boot() override;
  Result<void, Errc> begin_write() override;
  Result<void, Errc> write(std::uint64_t offset, std::span<const std::byte> data) override;
  Result<void, Errc> finish_write() override;
  Result<void, Errc> mark_pending() override;
  Result<void, Errc> confirm() override;
  Result<void, Errc> roll_back() override;
  Result<void, Errc> acknowledge() override;
  Result<std::size_t, Errc> read(Slot slot, std::uint64_t offset,
                                 std::span<std::byte> out) override;

  /// The file of `slot`'s image (for a device's start-up and for tests).
  [[nodiscard]] std::string image_path(Slot slot) const;

 private:
  Result<void, Errc> store(BootStatus s);
  std::string dir_;
  Filesystem* fs_;
  std::optional<Slot> writing_;  // the slot being written, between begin_write and finish_write
  bool finished_ = false;        // finish_write succeeded and mark_pending has not used it yet
};

}  // namespace edgekit::ota
