// POSIX TCP transport and listener. See tcp.hpp for the contract.
#include "edgekit/transport/tcp.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

namespace edgekit::transport {
namespace {

// Linux has MSG_NOSIGNAL per call; BSDs and macOS have SO_NOSIGPIPE per socket (set at creation).
#if defined(MSG_NOSIGNAL)
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;
#endif

// Longest DNS name (253) plus room; longer input is rejected rather than truncated.
constexpr std::size_t kMaxHostLength = 253;

#if defined(IOV_MAX)
constexpr std::size_t kMaxIov = IOV_MAX < 64 ? IOV_MAX : 64;
#else
constexpr std::size_t kMaxIov = 16;
#endif

const Clock& clock_or_default(const Clock* clock) noexcept {
  static const SteadyClock steady;  // stateless: not hidden global state
  return clock != nullptr ? *clock : steady;
}

TcpError system_error(int err) noexcept {
  return TcpError{TcpErrc::SystemError, err, std::strerror(err)};
}

bool set_nonblocking_cloexec(int fd) noexcept {
  int fl = ::fcntl(fd, F_GETFL, 0);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return false;
  int fdfl = ::fcntl(fd, F_GETFD, 0);
  return fdfl >= 0 && ::fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) >= 0;
}

// Creates a non-blocking, close-on-exec socket that never raises SIGPIPE.
int open_socket(int family) noexcept {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return -1;
#else
  int fd = ::socket(family, SOCK_STREAM, IPPROTO_TCP);
  if (fd < 0) return -1;
  if (!set_nonblocking_cloexec(fd)) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
#endif
#if defined(SO_NOSIGPIPE)
  int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  return fd;
}

// Options that must be in place before the handshake (buffer sizes set the window scale).
void apply_buffer_options(int fd, const TcpOptions& o) noexcept {
  if (o.send_buffer_size > 0) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o.send_buffer_size, sizeof o.send_buffer_size);
  }
  if (o.receive_buffer_size > 0) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o.receive_buffer_size,
                       sizeof o.receive_buffer_size);
  }
}

void apply_stream_options(int fd, const TcpOptions& o) noexcept {
  int on = 1;
  if (o.no_delay) (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  if (o.keep_alive) (void)::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
}

int to_poll_timeout(std::int64_t ms) noexcept {
  if (ms <= 0) return 0;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

// poll() one fd, retrying EINTR with the time left. Returns poll's result (0 on timeout).
int poll_one(int fd, short events, std::int64_t timeout_ms, const Clock& clock,
             short& revents) noexcept {
  const Instant deadline = deadline_after(clock.now(), Duration{timeout_ms});
  for (;;) {
    pollfd p{fd, events, 0};
    std::int64_t left = (deadline - clock.now()).count();
    int r = ::poll(&p, 1, to_poll_timeout(left));
    if (r < 0 && errno == EINTR) continue;
    revents = p.revents;
    return r;
  }
}

// The rest of TcpTransport::send after a send that failed with errno: retries EINTR, maps the
// error.
[[gnu::noinline]] IoResult send_failed(int fd, ConstBuffer data) noexcept {
  for (;;) {
    const int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) return {IoStatus::WouldBlock, 0, 0};
    if (e == EPIPE || e == ECONNRESET) return {IoStatus::Closed, 0, e};
    if (e != EINTR) return {IoStatus::Error, 0, e};
    const ssize_t n = ::send(fd, data.data(), data.size(), kSendFlags);
    if (n >= 0) return {IoStatus::Ok, static_cast<std::size_t>(n), 0};
  }
}

enum class AttemptOutcome : std::uint8_t { Connected, Failed, TimedOut };

// One non-blocking connect to `ai`, bounded by `budget_ms`. On Connected, `fd` is the socket.
AttemptOutcome attempt(const addrinfo& ai, const TcpOptions& options, std::int64_t budget_ms,
                       const Clock& clock, int& fd, int& err) noexcept {
  fd = open_socket(ai.ai_family);
  if (fd < 0) {
    err = errno;
    return AttemptOutcome::Failed;
  }
  apply_buffer_options(fd, options);
  int r;
  do {
    r = ::connect(fd, ai.ai_addr, ai.ai_addrlen);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EINPROGRESS) {
    err = errno;
    ::close(fd);
    fd = -1;
    return AttemptOutcome::Failed;
  }
  if (r < 0) {
    short revents = 0;
    int pr = poll_one(fd, POLLOUT, budget_ms, clock, revents);
    if (pr == 0) {
      err = ETIMEDOUT;
      ::close(fd);
      fd = -1;
      return AttemptOutcome::TimedOut;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    if (pr < 0) {
      so_error = errno;
    } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) < 0) {
      so_error = errno;
    }
    if (so_error != 0) {
      err = so_error;
      ::close(fd);
      fd = -1;
      return AttemptOutcome::Failed;
    }
  }
  apply_stream_options(fd, options);
  return AttemptOutcome::Connected;
}

}  // namespace

const char* to_string(TcpErrc e) noexcept {
  switch (e) {
    case TcpErrc::HostNotFound:
      return "HostNotFound";
    case TcpErrc::ConnectionRefused:
      return "ConnectionRefused";
    case TcpErrc::Timeout:
      return "Timeout";
    case TcpErrc::InvalidArgument:
      return "InvalidArgument";
    case TcpErrc::SystemError:
      return "SystemError";
  }
  return "Unknown";
}

// ---------------------------------------------------------------------------------------------
// TcpTransport

Result<TcpTransport, TcpError> TcpTransport::connect(std::string_view host, std::uint16_t port,
                                                     Duration timeout,
                                                     const TcpOptions& options) noexcept {
  if (host.empty() || host.size() > kMaxHostLength) {
    return fail(TcpError{TcpErrc::InvalidArgument, 0, "host name empty or longer than 253"});
  }
  // IPv6 literals may come bracketed as in URLs ("[::1]").
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  char host_z[kMaxHostLength + 1];
  std::memcpy(host_z, host.data(), host.size());
  host_z[host.size()] = '\0';
  if (std::strlen(host_z) != host.size()) {
    return fail(TcpError{TcpErrc::InvalidArgument, 0, "host name contains a NUL character"});
  }
  char port_z[8];
  {
    // Small manual conversion: snprintf is fine too, but this keeps the path allocation-free
    // and locale-free.
    char tmp[8];
    int n = 0;
    unsigned v = port;
    do {
      tmp[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    for (int i = 0; i < n; ++i) port_z[i] = tmp[n - 1 - i];
    port_z[n] = '\0';
  }

  const Clock& clock = clock_or_default(options.clock);
  const Instant deadline = deadline_after(clock.now(), timeout);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  int gai = ::getaddrinfo(host_z, port_z, &hints, &list);
  if (gai != 0) {
    if (gai == EAI_SYSTEM) return fail(system_error(errno));
    return fail(TcpError{TcpErrc::HostNotFound, 0, ::gai_strerror(gai)});
  }

  std::size_t count = 0;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) ++count;

  int last_err = 0;
  bool any_refused = false;
  bool timed_out = false;
  std::size_t index = 0;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next, ++index) {
    std::int64_t left = (deadline - clock.now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    // Share the time left among the addresses still to try, so one black-holed address (an
    // IPv6 route that drops SYNs, say) does not starve the others; the last gets all of it.
    std::int64_t budget = left / static_cast<std::int64_t>(count - index);
    if (budget <= 0) budget = left;
    int fd = -1;
    int err = 0;
    switch (attempt(*ai, options, budget, clock, fd, err)) {
      case AttemptOutcome::Connected:
        ::freeaddrinfo(list);
        return TcpTransport(fd, options.clock);
      case AttemptOutcome::TimedOut:
        timed_out = true;
        break;
      case AttemptOutcome::Failed:
        if (err == ECONNREFUSED) any_refused = true;
        last_err = err;
        break;
    }
  }
  ::freeaddrinfo(list);

  // The most telling failure wins: a timeout (the caller's budget is spent), then a refusal (a
  // host answered: nothing listens there), then the last local error (e.g. EADDRNOTAVAIL for an
  // IPv6 address on a host without IPv6).
  if (timed_out) return fail(TcpError{TcpErrc::Timeout, ETIMEDOUT, "connect timed out"});
  if (any_refused) {
    return fail(TcpError{TcpErrc::ConnectionRefused, ECONNREFUSED, std::strerror(ECONNREFUSED)});
  }
  if (last_err == 0) return fail(TcpError{TcpErrc::HostNotFound, 0, "no address to connect to"});
  return fail(system_error(last_err));
}

TcpTransport TcpTransport::adopt(int fd, const TcpOptions& options) noexcept {
  if (fd < 0) return TcpTransport{};
  (void)set_nonblocking_cloexec(fd);
#if defined(SO_NOSIGPIPE)
  int one = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  apply_buffer_options(fd, options);
  apply_stream_options(fd, options);
  return TcpTransport(fd, options.clock);
}

TcpTransport::TcpTransport(TcpTransport&& other) noexcept : fd_(other.fd_), clock_(other.clock_) {
  other.fd_ = -1;
}

TcpTransport& TcpTransport::operator=(TcpTransport&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    clock_ = other.clock_;
    other.fd_ = -1;
  }
  return *this;
}

TcpTransport::~TcpTransport() {
  close();
}

IoResult TcpTransport::send(ConstBuffer data) noexcept {
  if (fd_ < 0) return {IoStatus::Closed, 0, 0};
  if (data.empty()) return {IoStatus::Ok, 0, 0};
  // The usual case first and alone (a publisher makes one send per message); a failure, and
  // the retry after EINTR, out of line.
  const ssize_t n = ::send(fd_, data.data(), data.size(), kSendFlags);
  if (n >= 0) return {IoStatus::Ok, static_cast<std::size_t>(n), 0};
  return send_failed(fd_, data);
}

IoResult TcpTransport::writev(std::span<const ConstBuffer> buffers) noexcept {
  if (fd_ < 0) return {IoStatus::Closed, 0, 0};
  iovec iov[kMaxIov];
  std::size_t n_iov = 0;
  for (ConstBuffer b : buffers) {
    if (b.empty()) continue;
    if (n_iov == kMaxIov) break;  // the rest goes with the next call (a partial send)
    // iovec's base is non-const for readv's sake; sendmsg only reads it.
    iov[n_iov].iov_base = const_cast<std::byte*>(b.data());
    iov[n_iov].iov_len = b.size();
    ++n_iov;
  }
  if (n_iov == 0) return {IoStatus::Ok, 0, 0};
  // One buffer (a packet, or a batch of acks, in one region): a plain send, which costs the
  // kernel markedly less than sendmsg with one iovec (docs/benchmarks.md: about 0.25 µs per
  // 64-byte message on loopback).
  if (n_iov == 1) {
    return send(ConstBuffer(static_cast<const std::byte*>(iov[0].iov_base), iov[0].iov_len));
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = n_iov;
  for (;;) {
    ssize_t n = ::sendmsg(fd_, &msg, kSendFlags);
    if (n >= 0) return {IoStatus::Ok, static_cast<std::size_t>(n), 0};
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) return {IoStatus::WouldBlock, 0, 0};
    if (e == EPIPE || e == ECONNRESET) return {IoStatus::Closed, 0, e};
    return {IoStatus::Error, 0, e};
  }
}

IoResult TcpTransport::recv(std::span<std::byte> buffer) noexcept {
  if (fd_ < 0) return {IoStatus::Closed, 0, 0};
  if (buffer.empty()) return {IoStatus::Ok, 0, 0};
  for (;;) {
    ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (n > 0) return {IoStatus::Ok, static_cast<std::size_t>(n), 0};
    if (n == 0) return {IoStatus::Closed, 0, 0};
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) return {IoStatus::WouldBlock, 0, 0};
    if (e == ECONNRESET) return {IoStatus::Closed, 0, e};
    return {IoStatus::Error, 0, e};
  }
}

WaitStatus TcpTransport::wait(Interest interest, std::uint32_t timeout_ms) noexcept {
  if (fd_ < 0) return WaitStatus::Error;
  short events = 0;
  if ((static_cast<unsigned>(interest) & static_cast<unsigned>(Interest::Read)) != 0)
    events |= POLLIN;
  if ((static_cast<unsigned>(interest) & static_cast<unsigned>(Interest::Write)) != 0)
    events |= POLLOUT;
  short revents = 0;
  int r = poll_one(fd_, events, timeout_ms, clock_or_default(clock_), revents);
  if (r < 0) return WaitStatus::Error;
  if (r == 0) return WaitStatus::Timeout;
  if ((revents & POLLNVAL) != 0) return WaitStatus::Error;
  // POLLERR / POLLHUP count as ready: the next recv or send reports what happened.
  return WaitStatus::Ready;
}

void TcpTransport::close() noexcept {
  if (fd_ >= 0) {
    // Closing a socket whose receive queue still holds unread bytes makes the kernel send RST
    // instead of FIN, and a peer that gets the RST before it has read what we sent last (the
    // acks and the DISCONNECT of a clean close) throws those bytes away: the broker then
    // resends messages we had acknowledged. So: end our side with FIN, then read and discard
    // until the peer closes too (a broker does at once after DISCONNECT), for at most
    // kCloseLingerMs; a dead or reset peer ends the wait at once.
    // An abortive close that the owner asked for (SO_LINGER with a zero timeout) stays one.
    linger lg{};
    socklen_t lg_len = sizeof lg;
    const bool abortive = ::getsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, &lg_len) == 0 &&
                          lg.l_onoff != 0 && lg.l_linger == 0;
    if (!abortive && ::shutdown(fd_, SHUT_WR) == 0) {
      constexpr int kCloseLingerMs = 100;
      std::array<std::byte, 4096> sink;
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kCloseLingerMs);
      for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now()).count();
        if (left <= 0) break;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
        const ssize_t n = ::recv(fd_, sink.data(), sink.size(), MSG_DONTWAIT);
        if (n == 0) break;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
      }
    }
    // close(2) may report EINTR, but the descriptor is released anyway on Linux and retrying
    // could close a descriptor another thread just received.
    (void)::close(fd_);
    fd_ = -1;
  }
}

std::uint16_t TcpTransport::local_port() const noexcept {
  if (fd_ < 0) return 0;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// TcpListener

Result<TcpListener, TcpError> TcpListener::bind(std::string_view address, std::uint16_t port,
                                                int backlog) noexcept {
  char addr_z[64];
  if (address.empty() || address.size() >= sizeof addr_z) {
    return fail(TcpError{TcpErrc::InvalidArgument, 0, "address must be a numeric IP address"});
  }
  std::memcpy(addr_z, address.data(), address.size());
  addr_z[address.size()] = '\0';

  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, addr_z, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, addr_z, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
  } else {
    return fail(TcpError{TcpErrc::InvalidArgument, 0, "address must be a numeric IP address"});
  }

  int fd = open_socket(ss.ss_family);
  if (fd < 0) return fail(system_error(errno));
  int on = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (ss.ss_family == AF_INET6) (void)::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0 || ::listen(fd, backlog) < 0) {
    int e = errno;
    ::close(fd);
    return fail(system_error(e));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) < 0) {
    int e = errno;
    ::close(fd);
    return fail(system_error(e));
  }
  std::uint16_t actual = bound.ss_family == AF_INET
                             ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                             : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return TcpListener(fd, actual);
}

TcpListener::TcpListener(TcpListener&& other) noexcept : fd_(other.fd_), port_(other.port_) {
  other.fd_ = -1;
  other.port_ = 0;
}

TcpListener& TcpListener::operator=(TcpListener&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    port_ = other.port_;
    other.fd_ = -1;
    other.port_ = 0;
  }
  return *this;
}

TcpListener::~TcpListener() {
  close();
}

Result<TcpTransport, TcpError> TcpListener::accept(Duration timeout,
                                                   const TcpOptions& options) noexcept {
  if (fd_ < 0) return fail(system_error(EBADF));
  const Clock& clock = clock_or_default(options.clock);
  const Instant deadline = deadline_after(clock.now(), timeout);
  for (;;) {
    short revents = 0;
    int r = poll_one(fd_, POLLIN, (deadline - clock.now()).count(), clock, revents);
    if (r < 0) return fail(system_error(errno));
    if (r == 0) return fail(TcpError{TcpErrc::Timeout, ETIMEDOUT, "accept timed out"});
    int cfd = ::accept(fd_, nullptr, nullptr);
    if (cfd >= 0) return TcpTransport::adopt(cfd, options);
    int e = errno;
    // The connection may have gone between poll and accept; wait for the next one.
    if (e == EINTR || e == EAGAIN || e == EWOULDBLOCK || e == ECONNABORTED) continue;
    return fail(system_error(e));
  }
}

void TcpListener::close() noexcept {
  if (fd_ >= 0) {
    (void)::close(fd_);
    fd_ = -1;
  }
}

}  // namespace edgekit::transport
