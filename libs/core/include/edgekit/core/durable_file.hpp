#pragma once
/// \file
/// Whole files replaced atomically and durably on a POSIX file system (hosted builds only;
/// target `edgekit::core_file`): the one way edgekit's small state files (the provisioning
/// state, the jobs record) are written, so that a crash or power loss at any point leaves the
/// old content or the new one, never a mix, and a completed write survives the power loss.
///
/// A write goes to `<path>.tmp` (created with the given mode), is fsync'ed, renamed over
/// `<path>`, and the directory is fsync'ed (the rename is durable only once the directory is).
/// A removal unlinks `<path>` and fsyncs the directory. What these calls cannot tell is whether
/// the storage itself kept the bytes: a file can still come back torn or altered (a file system
/// without ordered writes, a bad sector, someone's editor), so the caller puts a checksum in
/// what it writes (edgekit/core/crc32.hpp) and checks it when reading.
///
/// Memory: no heap (paths are built in stack buffers of kMaxPathLength + 5 bytes).
/// Thread safety: the calls share no state; two writers of one path must not run at once (the
/// temporary name is fixed).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace edgekit::file {

/// The longest path the calls take.
inline constexpr std::size_t kMaxPathLength = 1024;

/// How a call ended.
enum class Status : std::uint8_t {
  Ok,
  NotFound,     ///< read: there is no file at the path (a removal of none is Ok)
  TooLarge,     ///< read: the file is longer than the caller's buffer (nothing usable was read)
  InvalidPath,  ///< empty, longer than kMaxPathLength, or holding a NUL byte
  /// The system refused (errno says why). A write that failed before its rename left the old
  /// file as it was; one whose directory fsync failed has the new content in place, not yet
  /// known to be durable (after a power loss: old or new).
  Failed,
};

/// A short static name of `s`.
[[nodiscard]] const char* to_string(Status s) noexcept;

/// Replaces the file at `path` with `data` (see the file comment); its directory must exist.
/// `mode`: the permissions of a newly written file (0600: the state files may hold secrets).
/// Errors: InvalidPath, Failed.
[[nodiscard]] Status write_atomically(std::string_view path, std::span<const std::byte> data,
                                      unsigned mode = 0600) noexcept;

/// What `read_whole` read.
struct ReadResult {
  Status status = Status::Failed;
  std::size_t size = 0;  ///< bytes of the caller's buffer the file filled (when Ok)
};

/// Reads the whole file at `path` into `buffer`. Errors: NotFound, TooLarge, InvalidPath, Failed.
[[nodiscard]] ReadResult read_whole(std::string_view path, std::span<std::byte> buffer) noexcept;

/// Removes the file at `path` (none there: Ok) and fsyncs its directory.
/// Errors: InvalidPath, Failed.
[[nodiscard]] Status remove_durably(std::string_view path) noexcept;

}  // namespace edgekit::file
