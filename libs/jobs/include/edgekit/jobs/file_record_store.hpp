#pragma once
/// \file
/// `FileRecordStore`: the executor's `RecordStore` in one POSIX file (hosted builds; part of
/// `edgekit::jobs`), for a device with a file system — and for `edgekit jobs run --state`.
///
/// The file is 96 bytes: magic "EKJR", a format version, the record's fields (little endian,
/// the job id zero-padded to kMaxJobIdLength) and a CRC-32 of everything before it. It is
/// written by `edgekit::file::write_atomically` (temp file, fsync, rename, directory fsync) and
/// removed with a directory fsync, so that a power loss leaves the previous record or the new
/// one. A file that comes back torn anyway — the wrong length, another magic or format, a
/// checksum that does not match, a field out of range — is reported as `RecordLoad::Corrupt`
/// (and why, in `last_problem`), never trusted: the executor then asks the service which job
/// was running (executor.hpp).
///
/// Memory: no heap (the path is copied into the store). Thread safety: that of the executor
/// (one thread); two stores must not share a file.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/core/durable_file.hpp"
#include "edgekit/jobs/executor.hpp"

namespace edgekit::jobs {

/// The size of a record file.
inline constexpr std::size_t kRecordFileSize = 96;

/// See the file comment.
class FileRecordStore final : public RecordStore {
 public:
  /// What went wrong last (for logs): the latest call's, None when it succeeded.
  enum class Problem : std::uint8_t {
    None,
    InvalidPath,   ///< the path is empty, too long (file::kMaxPathLength) or holds a NUL
    ReadFailed,    ///< load: the file exists but could not be read (Corrupt)
    WrongSize,     ///< load: not kRecordFileSize bytes, a torn or truncated file (Corrupt)
    BadHeader,     ///< load: another magic or format version (Corrupt)
    BadChecksum,   ///< load: the CRC-32 does not match the content (Corrupt)
    BadField,      ///< load: a field out of range (Corrupt)
    WriteFailed,   ///< save: not stored (the previous record, if any, is still there)
    RemoveFailed,  ///< clear: not removed
  };

  /// `path`: the record file; its directory must exist. The path is copied; a path longer than
  /// file::kMaxPathLength makes every call fail with InvalidPath.
  explicit FileRecordStore(std::string_view path) noexcept;

  /// Loaded, None (no file), or Corrupt (see Problem; the file is left for inspection until
  /// the executor clears or replaces it).
  RecordLoad load(JobRecord& out) noexcept override;
  /// False: not stored (WriteFailed, InvalidPath).
  bool save(const JobRecord& record) noexcept override;
  /// False: not removed (RemoveFailed, InvalidPath).
  bool clear() noexcept override;

  [[nodiscard]] Problem last_problem() const noexcept { return problem_; }
  [[nodiscard]] std::string_view path() const noexcept { return {path_.data(), path_length_}; }

  /// The file's bytes for `record` (what `save` writes; for tests and tools).
  [[nodiscard]] static std::array<std::byte, kRecordFileSize> encode(
      const JobRecord& record) noexcept;
  /// Reads a record file's bytes (untrusted: any bytes): Loaded and `out` filled, or Corrupt
  /// and `why` (WrongSize, BadHeader, BadChecksum, BadField; the padding after the job id must
  /// be zero, so that a Loaded file is exactly `encode(out)`). Never None.
  [[nodiscard]] static RecordLoad decode(std::span<const std::byte> bytes, JobRecord& out,
                                         Problem& why) noexcept;

 private:
  std::array<char, file::kMaxPathLength> path_{};
  std::size_t path_length_ = 0;
  bool path_valid_ = false;
  Problem problem_ = Problem::None;
};

/// "None", "InvalidPath", "ReadFailed", ...
[[nodiscard]] const char* to_string(FileRecordStore::Problem p) noexcept;

}  // namespace edgekit::jobs
