// The POSIX file system behind the file-backed ports.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "edgekit/ota/file_ports.hpp"

namespace edgekit::ota {
namespace {

// Closes a descriptor on every path out.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool sync_path(const std::string& path) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  return f.fd >= 0 && ::fsync(f.fd) == 0;
}

class PosixFilesystem final : public Filesystem {
 public:
  bool write_at(const std::string& path, std::uint64_t offset,
                std::span<const std::byte> data) override {
    Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (f.fd < 0) return false;
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n =
          ::pwrite(f.fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
  bool truncate(const std::string& path) override {
    Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    return f.fd >= 0;
  }
  bool sync(const std::string& path) override { return sync_path(path); }
  bool replace(const std::string& from, const std::string& to, const std::string& dir) override {
    // The rename is durable only once the directory is.
    return ::rename(from.c_str(), to.c_str()) == 0 && sync_path(dir);
  }
  bool remove(const std::string& path) override {
    return ::unlink(path.c_str()) == 0 || errno == ENOENT;
  }
  std::optional<std::size_t> read_at(const std::string& path, std::uint64_t offset,
                                     std::span<std::byte> out) override {
    Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.fd < 0) return std::nullopt;
    std::size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(f.fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return std::nullopt;
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    return done;
  }
  std::optional<std::uint64_t> size(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.st_size);
  }
};

}  // namespace

Filesystem& posix_filesystem() noexcept {
  static PosixFilesystem fs;
  return fs;
}

}  // namespace edgekit::ota
