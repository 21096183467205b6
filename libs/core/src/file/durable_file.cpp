// Whole-file atomic replacement: temp file, fsync, rename, directory fsync (durable_file.hpp).
#include "edgekit/core/durable_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace edgekit::file {
namespace {

// A NUL-terminated copy of a path plus room for a suffix (".tmp").
struct PathBuffer {
  char text[kMaxPathLength + 5] = {};
  std::size_t length = 0;

  bool set(std::string_view path, std::string_view suffix = {}) noexcept {
    if (path.empty() || path.size() > kMaxPathLength || path.find('\0') != std::string_view::npos ||
        suffix.size() > 4) {
      return false;
    }
    std::memcpy(text, path.data(), path.size());
    if (!suffix.empty()) std::memcpy(text + path.size(), suffix.data(), suffix.size());
    length = path.size() + suffix.size();
    text[length] = '\0';
    return true;
  }
};

// The directory that holds `path` ("." for a bare name).
PathBuffer directory_of(std::string_view path) noexcept {
  PathBuffer dir;
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos) {
    (void)dir.set(".");  // cannot fail
  } else {
    (void)dir.set(slash == 0 ? std::string_view("/") : path.substr(0, slash));  // a prefix: fits
  }
  return dir;
}

bool write_all(int fd, std::span<const std::byte> data) noexcept {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return true;
}

bool sync_directory_of(std::string_view path) noexcept {
  const PathBuffer dir = directory_of(path);
  const int fd = ::open(dir.text, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool synced = ::fsync(fd) == 0;
  // The directory was only read: a failing close loses nothing (the fsync said what counts).
  (void)::close(fd);
  return synced;
}

}  // namespace

const char* to_string(Status s) noexcept {
  switch (s) {
    case Status::Ok:
      return "Ok";
    case Status::NotFound:
      return "NotFound";
    case Status::TooLarge:
      return "TooLarge";
    case Status::InvalidPath:
      return "InvalidPath";
    case Status::Failed:
      return "Failed";
  }
  return "?";
}

Status write_atomically(std::string_view path, std::span<const std::byte> data,
                        unsigned mode) noexcept {
  PathBuffer target, tmp;
  if (!target.set(path) || !tmp.set(path, ".tmp")) return Status::InvalidPath;
  const int fd = ::open(tmp.text, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::Failed;
  const bool written = write_all(fd, data) && ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!written || !closed || ::rename(tmp.text, target.text) != 0) {
    // The old file is untouched; the partial temporary is removed on a best-effort basis (a
    // leftover is overwritten by the next write and never read).
    (void)::unlink(tmp.text);
    return Status::Failed;
  }
  return sync_directory_of(path) ? Status::Ok : Status::Failed;
}

ReadResult read_whole(std::string_view path, std::span<std::byte> buffer) noexcept {
  PathBuffer p;
  if (!p.set(path)) return {Status::InvalidPath, 0};
  const int fd = ::open(p.text, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {errno == ENOENT ? Status::NotFound : Status::Failed, 0};
  ReadResult r{Status::Ok, 0};
  for (;;) {
    if (r.size == buffer.size()) {
      // Full: one more byte says whether the file is longer.
      std::byte probe;
      ssize_t n;
      do {
        n = ::read(fd, &probe, 1);
      } while (n < 0 && errno == EINTR);
      if (n != 0) r = {n > 0 ? Status::TooLarge : Status::Failed, 0};
      break;
    }
    const ssize_t n = ::read(fd, buffer.data() + r.size, buffer.size() - r.size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r = {Status::Failed, 0};
      break;
    }
    if (n == 0) break;
    r.size += static_cast<std::size_t>(n);
  }
  (void)::close(fd);  // read only: what was read is complete (the loop saw the end)
  return r;
}

Status remove_durably(std::string_view path) noexcept {
  PathBuffer p;
  if (!p.set(path)) return Status::InvalidPath;
  if (::unlink(p.text) != 0) return errno == ENOENT ? Status::Ok : Status::Failed;
  return sync_directory_of(path) ? Status::Ok : Status::Failed;
}

}  // namespace edgekit::file
