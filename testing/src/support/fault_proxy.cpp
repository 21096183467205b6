#include "edgekit/testing/fault_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace edgekit::testing {

namespace {

int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Writes everything (the sockets are blocking); false when the peer is gone.
bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

struct Pair {
  int client = -1;
  int server = -1;
};

void close_pair(Pair& p) {
  if (p.client >= 0) ::close(p.client);
  if (p.server >= 0) ::close(p.server);
  p.client = p.server = -1;
}

}  // namespace

FaultProxy::FaultProxy(std::uint16_t target_port) : target_port_(target_port) {}

FaultProxy::~FaultProxy() { stop(); }

bool FaultProxy::start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return false;
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    return false;
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { run(); });
  return true;
}

void FaultProxy::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void FaultProxy::pass() {
  stalled_ = false;
  stalled_to_client_ = false;
  slow_delay_ms_ = 0;
  slow_chunk_ = 0;
}
void FaultProxy::stall() {
  stalled_ = true;
  settle();
}
void FaultProxy::stall_to_client() {
  stalled_to_client_ = true;
  settle();
}
void FaultProxy::settle() {
  // The proxy thread may be inside a poll that still watches for input (up to 5 ms): wait until
  // it has started two new rounds, so the next bytes a client writes are held back for sure.
  if (!thread_.joinable()) return;
  const std::size_t seen = rounds_.load();
  while (rounds_.load() < seen + 2 && !stop_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}
void FaultProxy::cut() { ++cut_requests_; }
void FaultProxy::slow(std::chrono::milliseconds delay, std::size_t chunk) {
  slow_chunk_ = chunk == 0 ? 1 : chunk;
  slow_delay_ms_ = delay.count();
}
void FaultProxy::refuse(bool on) { refusing_ = on; }

void FaultProxy::run() {
  std::vector<Pair> pairs;
  std::vector<pollfd> fds;
  std::vector<char> buf(64 * 1024);
  std::size_t cuts_seen = 0;
  while (!stop_) {
    ++rounds_;
    if (const std::size_t c = cut_requests_.load(); c != cuts_seen) {
      cuts_seen = c;
      for (Pair& p : pairs) close_pair(p);
      pairs.clear();
      ++cuts_done_;
    }
    fds.clear();
    fds.push_back({listen_fd_, POLLIN, 0});
    const bool stalled = stalled_;
    const bool stalled_down = stalled || stalled_to_client_;
    for (const Pair& p : pairs) {
      fds.push_back({p.client, static_cast<short>(stalled ? 0 : POLLIN), 0});
      fds.push_back({p.server, static_cast<short>(stalled_down ? 0 : POLLIN), 0});
    }
    const int r = ::poll(fds.data(), fds.size(), 5);
    if (r <= 0) continue;
    if ((fds[0].revents & POLLIN) != 0) {
      const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        if (refusing_) {
          ::close(c);
        } else {
          const int one = 1;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          const int s = connect_loopback(target_port_);
          if (s < 0) {
            ::close(c);
          } else {
            pairs.push_back({c, s});
            ++connections_;
          }
        }
      }
    }
    const std::size_t chunk = slow_chunk_;
    const auto delay = std::chrono::milliseconds(slow_delay_ms_.load());
    bool copied_slowly = false;
    for (std::size_t k = 0; k + 1 < fds.size(); k += 2) {
      Pair& p = pairs[k / 2];
      for (int side = 0; side < 2; ++side) {
        const pollfd& f = fds[k + 1 + static_cast<std::size_t>(side)];
        if (f.revents == 0 || p.client < 0) continue;
        const int from = side == 0 ? p.client : p.server;
        const int to = side == 0 ? p.server : p.client;
        const std::size_t want = chunk > 0 ? std::min(chunk, buf.size()) : buf.size();
        const ssize_t n = ::recv(from, buf.data(), want, 0);
        if (n <= 0 || !write_all(to, buf.data(), static_cast<std::size_t>(n))) {
          close_pair(p);
          continue;
        }
        if (chunk > 0) copied_slowly = true;
      }
    }
    std::erase_if(pairs, [](const Pair& p) { return p.client < 0; });
    if (copied_slowly && delay.count() > 0) std::this_thread::sleep_for(delay);
  }
  for (Pair& p : pairs) close_pair(p);
}

}  // namespace edgekit::testing
