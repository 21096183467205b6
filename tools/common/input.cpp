#include "input.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace edgekit::tools {

bool read_input(const std::string& path, std::size_t limit, std::string& out, std::string& error) {
  out.clear();
  int fd = 0;
  if (!path.empty()) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      error = std::strerror(errno);
      return false;
    }
  }
  // Closes what we opened on every return (never standard input).
  struct Closer {
    int fd;
    ~Closer() {
      if (fd > 0) ::close(fd);
    }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    error = "it is a directory";
    return false;
  }
  char chunk[64 * 1024];
  while (true) {
    // One byte past the limit is read to tell "exactly `limit`" from "more".
    const std::size_t want = std::min(sizeof chunk, limit + 1 - out.size());
    const ssize_t n = ::read(fd, chunk, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = std::strerror(errno);
      return false;
    }
    if (n == 0) return true;
    out.append(chunk, static_cast<std::size_t>(n));
    if (out.size() > limit) {
      error = "more than " + std::to_string(limit) + " bytes";
      out.clear();
      return false;
    }
  }
}

}  // namespace edgekit::tools
