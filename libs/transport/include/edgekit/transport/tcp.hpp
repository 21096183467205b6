#pragma once
/// \file
/// The POSIX TCP transport: a non-blocking socket behind the `Transport` interface, and a
/// listener (loopback servers in tests, the fault proxy).
///
/// Sockets are non-blocking from the moment they exist; `TcpTransport::wait` (poll) is the only
/// call that blocks. TCP_NODELAY is on (MQTT packets are small and latency-bound), SIGPIPE is
/// never raised (MSG_NOSIGNAL / SO_NOSIGPIPE), and `writev` hands every buffer to one sendmsg call
/// so a packet's header and payload leave in one system call without copying the payload.
///
/// No heap, no exceptions (the library builds with -fno-exceptions), no global state.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

#include "edgekit/core/clock.hpp"
#include "edgekit/core/result.hpp"
#include "edgekit/transport/transport.hpp"

namespace edgekit::transport {

/// Why a TCP connect, bind or accept failed: the transport library's error enum, wired into
/// `std::error_code` (`tcp_category()`). Value 0 is left out: a `std::error_code` of 0 means
/// "no error".
///
/// The MQTT client and the agent do not return these; they report a transport failure in
/// `mqtt::Errc`'s "transport and client" group, mapped as the agent's `TcpTransportFactory` does:
/// HostNotFound → mqtt::Errc::HostNotFound; Timeout → mqtt::Errc::Timeout; ConnectionRefused,
/// InvalidArgument (permanent), SystemError → mqtt::Errc::ConnectFailed. On an established stream
/// `IoStatus::Closed` → mqtt::Errc::TransportClosed and `IoStatus::Error` →
/// mqtt::Errc::TransportError.
enum class TcpErrc : std::uint8_t {
  HostNotFound = 1,   ///< name resolution failed; `TcpError::detail` holds gai_strerror's text
  ConnectionRefused,  ///< every address refused (ECONNREFUSED)
  Timeout,            ///< the timeout passed before any address accepted the connection
  InvalidArgument,    ///< empty or over-long host name, or an address that is not numeric where one
                      ///< must be
  SystemError,        ///< any other failure; `TcpError::system_error` holds errno
};

/// A TCP failure. `detail` is a static string (never owned, never freed): getaddrinfo's message
/// for HostNotFound, strerror-like text otherwise. `system_error` is the errno of the last
/// attempt when there was one (also set for ConnectionRefused and often for SystemError).
struct TcpError {
  TcpErrc code = TcpErrc::SystemError;
  int system_error = 0;
  const char* detail = "";
};

/// A short static name of `e`, e.g. "ConnectionRefused".
[[nodiscard]] const char* to_string(TcpErrc e) noexcept;

/// The `std::error_category` of `TcpErrc` (name "edgekit.tcp", messages from `to_string`).
/// Thread safe; a function-local static.
[[nodiscard]] const std::error_category& tcp_category() noexcept;

/// Wires `TcpErrc` into `std::error_code`: `std::error_code ec = error.code;`.
[[nodiscard]] inline std::error_code make_error_code(TcpErrc e) noexcept {
  return {static_cast<int>(e), tcp_category()};
}

/// Options of `TcpTransport::connect`.
struct TcpOptions {
  bool no_delay = true;         ///< TCP_NODELAY: send small packets at once (Nagle off)
  bool keep_alive = false;      ///< SO_KEEPALIVE (the MQTT keep-alive usually makes it redundant)
  int send_buffer_size = 0;     ///< SO_SNDBUF when > 0 (tests use it to force partial writes)
  int receive_buffer_size = 0;  ///< SO_RCVBUF when > 0
  /// Measures the connect timeout and the time left after EINTR in `wait`; nullptr means a
  /// `SteadyClock`. Not owned; must outlive the transport.
  const Clock* clock = nullptr;
};

/// A connected TCP stream. Owns its socket (RAII): the destructor closes it. Movable, not
/// copyable; a moved-from transport is closed.
/// Thread safety: one thread at a time, per the Transport contract.
class TcpTransport final : public Transport {
 public:
  /// Resolves `host` (a name, or an IPv4/IPv6 literal) and connects to each resolved address in
  /// turn until one accepts or `timeout` has passed in total (a negative timeout counts as 0).
  /// The time is shared among the addresses still to try, so one address that drops SYNs does
  /// not starve the next. `host` may be "[v6-literal]".
  /// Errors: HostNotFound (with getaddrinfo's message), Timeout (the time ran out; wins over the
  /// others), ConnectionRefused (some address refused, none timed out), InvalidArgument (empty
  /// host or longer than 253 characters), SystemError (with the errno of the last attempt, e.g.
  /// ENETUNREACH).
  [[nodiscard]] static Result<TcpTransport, TcpError> connect(
      std::string_view host, std::uint16_t port, Duration timeout,
      const TcpOptions& options = {}) noexcept;

  /// Takes ownership of a connected socket `fd` (e.g. from accept) and makes it non-blocking
  /// with the given options. A negative fd yields a closed transport.
  [[nodiscard]] static TcpTransport adopt(int fd, const TcpOptions& options = {}) noexcept;

  /// A closed transport (every call returns Closed).
  TcpTransport() noexcept = default;
  TcpTransport(TcpTransport&& other) noexcept;
  TcpTransport& operator=(TcpTransport&& other) noexcept;
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;
  ~TcpTransport() override;

  /// Sends from `data` with one send(2). Ok (possibly partial; an empty `data` is Ok with 0 bytes
  /// and no system call), WouldBlock (socket buffer full), Closed (closed locally, or the peer is
  /// gone: EPIPE / ECONNRESET, with `system_error` set), Error with errno otherwise.
  IoResult send(ConstBuffer data) noexcept override;
  /// Receives into `buffer` with one recv(2). Ok with ≥ 1 byte, WouldBlock, Closed on end of
  /// stream or ECONNRESET, Error with errno otherwise. An empty buffer returns Ok with 0 bytes
  /// without a system call.
  IoResult recv(std::span<std::byte> buffer) noexcept override;
  /// Sends every buffer with one sendmsg(2) (at most IOV_MAX buffers; the rest are left for the
  /// next call, reported as a partial send). Results as for `send`.
  IoResult writev(std::span<const ConstBuffer> buffers) noexcept override;
  /// poll(2) for `interest`, up to `timeout_ms`. Ready also when the socket has an error or the
  /// peer hung up (the next recv/send reports it). Error when the transport is closed or poll
  /// fails. EINTR is retried with the remaining time.
  WaitStatus wait(Interest interest, std::uint32_t timeout_ms) noexcept override;
  /// Closes the socket. Idempotent.
  void close() noexcept override;

  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  /// The socket, still owned by this transport (for getsockopt, tests, an event loop).
  [[nodiscard]] int native_handle() const noexcept { return fd_; }
  /// The local port, or 0 when closed / unknown.
  [[nodiscard]] std::uint16_t local_port() const noexcept;

 private:
  TcpTransport(int fd, const Clock* clock) noexcept : fd_(fd), clock_(clock) {}
  int fd_ = -1;
  const Clock* clock_ = nullptr;
};

/// A listening TCP socket. Owns it (RAII), movable. Thread safety: one thread at a time.
class TcpListener {
 public:
  /// Binds `address` (a numeric IPv4 or IPv6 address, default the IPv4 loopback) on `port`
  /// (0 = a free port chosen by the system, see `port()`) and listens with `backlog`.
  /// SO_REUSEADDR is set so a restarted server can rebind its port.
  /// Errors: InvalidArgument (address not numeric), SystemError (errno, e.g. EADDRINUSE,
  /// EADDRNOTAVAIL when IPv6 is unavailable).
  [[nodiscard]] static Result<TcpListener, TcpError> bind(std::string_view address = "127.0.0.1",
                                                          std::uint16_t port = 0,
                                                          int backlog = 16) noexcept;

  TcpListener() noexcept = default;
  TcpListener(TcpListener&& other) noexcept;
  TcpListener& operator=(TcpListener&& other) noexcept;
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;
  ~TcpListener();

  /// Waits up to `timeout` for a connection and returns it as a non-blocking transport (a
  /// negative timeout counts as 0: only a connection already waiting is taken).
  /// Errors: Timeout, SystemError (errno; EBADF when the listener is closed).
  [[nodiscard]] Result<TcpTransport, TcpError> accept(Duration timeout,
                                                      const TcpOptions& options = {}) noexcept;

  /// The bound port (the one the system chose when bound with port 0).
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  [[nodiscard]] int native_handle() const noexcept { return fd_; }
  /// Stops listening. Idempotent.
  void close() noexcept;

 private:
  TcpListener(int fd, std::uint16_t port) noexcept : fd_(fd), port_(port) {}
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace edgekit::transport

template <>
struct std::is_error_code_enum<edgekit::transport::TcpErrc> : std::true_type {};
