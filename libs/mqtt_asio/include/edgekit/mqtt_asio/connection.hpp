#pragma once
/// \file
/// The event-loop driver: many `mqtt::Connection` engines on one `asio::io_context` thread
/// (standalone Asio), over TCP or TLS (OpenSSL, with the client key in a PEM file or in a PKCS#11
/// token, through `edgekit::tls::TlsContext`). It is what fleetd and the fleet simulator use.
///
/// Model. The driver only moves bytes and time; every MQTT rule lives in the engine. Each
/// `mqtt_asio::Connection` owns a socket, one `asio::steady_timer` and the engine, and works the
/// socket in the reactor style (readiness, then non-blocking calls):
///   - readable: read straight into `engine.read_buffer()` (for TLS: SSL_read into it), then
///     `on_read`, then poll every event and hand it to the `Handler`, then write;
///   - write: gather `engine.output()` into one non-blocking writev (TLS: the views copied into
///     one record of the loop's scratch buffer, one SSL_write), `on_written(n)`; only when the
///     socket is full does it wait for writability, and then it asks `output()` again. So no
///     engine view is held across a wait, and the application may queue commands at any time;
///   - the timer is armed at `engine.next_deadline()`; moved earlier at once, but when the
///     deadline moves later (every write restarts the keep-alive) it is left to fire early and
///     re-armed then, so a busy connection does not cancel and re-arm a timer per message.
/// Commands (`publish`, `subscribe`, ...) go to the engine at once (their results are the
/// engine's) and are written by the next turn of the loop, together with every other command
/// made until then (from inside a `Handler` call: when it returns, with the acks): one write per
/// batch, not per command.
///
/// Threading. One thread runs the io_context; every call on a Connection and on its Driver is
/// made on that thread (from a handler, or through `asio::post` / `dispatch` to it). Handlers
/// are called on that thread, from the loop only: never from inside `start`, a command or
/// `stop` (a failure found while a command writes is reported from the loop). Several
/// io_context threads each with their own Driver and connections are fine; a Connection never
/// moves between them.
///
/// Buffers and memory. The `mqtt::Session` (with its record storage) and the receive and send
/// buffers are the caller's and must outlive the Connection; the receive buffer bounds the
/// largest incoming packet, the send buffer holds every outgoing packet except PUBLISH payloads,
/// which are written from the caller's memory (see mqtt/connection.hpp for how long payload
/// views must stay valid). The driver's own state is `sizeof(Connection)` (about 2.5 KB on x86-64,
/// of which the engine is 2.1 KB), plus about 0.5 KB of heap while connected (Asio's per-socket
/// reactor record and the pending waits); TLS adds OpenSSL's per-connection state, about 25 KB
/// of heap (the SSL object alone is 7.6 KB; record buffers are released while idle with
/// SSL_MODE_RELEASE_BUFFERS). docs/benchmarks.md has the measured figures.
///
/// Errors. Nothing throws out of this library (Asio's error_code overloads throughout; an
/// allocation failure inside Asio becomes a transport error). Socket and TLS failures reach the
/// engine as `on_transport_closed(TransportClosed)` (end of stream, reset, close_notify) or
/// `(TransportError)` (anything else, TLS handshake and certificate failures included); the
/// engine then reports ConnectFailed or ConnectionClosed as an ordinary event. The transport's
/// own error is kept in `transport_error()` (a `std::error_code`: system errors, or
/// `mqtt_asio::Errc` for TLS; a server's alert is named by `tls_alert()`) and passed to `Handler::on_closed`, called once per `start` when
/// the socket is closed and no operation is pending any more: from then on the Connection may be
/// started again (a resume, with the same Session) or destroyed.
///
/// Lifetime. Pending Asio operations point at the Connection. Destroy it only when it is idle
/// (never started, or after `on_closed`), or after its io_context has stopped for good (the
/// io_context must then be destroyed without running again).
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/connection.hpp"

struct ssl_st;

namespace edgekit::tls {
class TlsContext;
class ClientIdentity;
}

namespace edgekit::mqtt_asio {

/// Failures of the driver itself, apart from the system's (`std::errc`, Asio's) and MQTT's.
enum class Errc : std::uint8_t {
  Ok = 0,
  TlsSetupFailed = 1,      ///< the SSL object could not be made (see TlsContext::new_client_ssl)
  TlsHandshakeFailed,      ///< the handshake failed (alert, protocol, token signature, ...)
  TlsCertificateRejected,  ///< the server's certificate failed verification (CA, name, dates)
  TlsStreamFailed,         ///< a TLS protocol failure on an established stream
  OutOfMemory,             ///< Asio could not allocate an operation
  Stopped,                 ///< `stop()` closed the connection
  /// The endpoint's client identity could not be set on the connection (tls::Cause
  /// KeyCertificateMismatch, or a key or certificate OpenSSL refuses under the context's
  /// security level). Nothing was sent.
  TlsClientIdentityRejected,
  /// The server ended the handshake or the stream with a fatal TLS alert, as the TLS transport's
  /// tls::Cause::ServerAlert: `Connection::tls_alert()` holds its description and
  /// `tls::alert_name` names it ("unknown CA", "certificate required", "certificate expired",
  /// ...). With TLS 1.3 a server that refuses the client's certificate says so after the
  /// client's side of the handshake is done, so the alert may arrive on the first read.
  TlsServerAlert,
};
/// The `std::error_category` of `Errc` (name "edgekit.mqtt_asio").
[[nodiscard]] const std::error_category& error_category() noexcept;
[[nodiscard]] inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

class Connection;

/// What a Connection reports to the application. Called on the io_context thread.
class Handler {
 public:
  /// One engine event (see mqtt::Event; its views are valid during this call only). The handler
  /// may call any command of `connection` (they are written when the handler returns) and
  /// `stop()`, but must not destroy it.
  virtual void on_event(Connection& connection, const mqtt::Event& event) = 0;
  /// The events that one read of the socket (or a timer, or a close) produced have all been
  /// handed to `on_event`, and what they queued (the acks of incoming messages, replies) is
  /// about to be written. For an application that handles such a group together (fleetd
  /// commits the requests of one read in one database transaction, before their PUBACKs and
  /// replies leave). The same rules as `on_event`. Default: nothing.
  virtual void on_events_done(Connection& connection) { (void)connection; }
  /// The socket is closed and nothing is pending: the last call for this `start`. `error` is
  /// the transport's failure (empty after a clean `disconnect`; `Errc::Stopped` after `stop`).
  /// The Connection may be restarted or destroyed from here.
  virtual void on_closed(Connection& connection, std::error_code error) = 0;

 protected:
  ~Handler() = default;
};

/// State shared by the connections of one io_context thread: the io_context, the clock and the
/// TLS write scratch buffer. Thread safety: one thread (the io_context's).
class Driver {
 public:
  explicit Driver(asio::io_context& io);
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  [[nodiscard]] asio::io_context& io() noexcept { return io_; }
  /// The current time on the steady clock, as the engines see it.
  [[nodiscard]] static Instant now() noexcept;

 private:
  friend class Connection;
  asio::io_context& io_;
  std::vector<unsigned char> tls_scratch_;  // one TLS record, reused by every write
};

/// Where to connect, and as whom. `tls` null: plain TCP.
struct Endpoint {
  Endpoint(asio::ip::tcp::endpoint where, const tls::TlsContext* context = nullptr,
           std::string_view name = {}, const tls::ClientIdentity* client = nullptr) noexcept
      : address(where), tls(context), server_name(name), identity(client) {}
  asio::ip::tcp::endpoint address;
  /// TLS settings (loaded once, shared by any number of connections); must outlive the
  /// connection attempt's handshake.
  const tls::TlsContext* tls = nullptr;
  /// The name checked in the server's certificate and sent as SNI (unless the context's
  /// `server_name` is set); empty: the address as text. Copied by `start`.
  std::string_view server_name;
  /// This connection's client certificate and key (TLS only), in place of the context's, so
  /// that one context serves any number of devices each with its own identity; null: the
  /// context's (if any). The SSL takes references on the identity's certificate and key when
  /// the TCP connection is up, so the identity must outlive the connection attempt until then:
  /// simplest, until `on_closed`. Failure to set it: Errc::TlsClientIdentityRejected.
  /// Memory per device (Release, 1,000 and 10,000 devices, EventLoopScale in scale_test.cpp):
  /// a TlsContext per device takes about 26 KB of heap, an identity 5 to 7.5 KB; what a
  /// connection adds (the SSL object, Asio) is about 25.5 KB either way.
  const tls::ClientIdentity* identity = nullptr;
  /// SO_SNDBUF and SO_RCVBUF of the socket in bytes (the kernel's memory per connection, which
  /// Linux doubles); 0 keeps the system's defaults and auto-tuning.
  std::uint32_t socket_buffer_size = 0;
  /// The local address the socket is bound to before it connects; unspecified (the default):
  /// the system chooses. Each local address has its own range of ephemeral ports
  /// (`net.ipv4.ip_local_port_range`, 28,232 ports by default on Linux), so a client that needs
  /// more connections to one server address and port than that spreads them over several
  /// source addresses (on Linux all of 127.0.0.0/8 is the loopback interface). The port is
  /// still the system's: on Linux with IP_BIND_ADDRESS_NO_PORT, chosen at connect for the whole
  /// address pair. A bind failure (e.g. EADDRNOTAVAIL: not an address of this host) is a
  /// transport error of the attempt, reported as any other (ConnectFailed, then `on_closed`).
  asio::ip::address source_address;
};

/// What a connection's socket has done since `start` (for benchmarks and tests).
/// The moments of the last connect, on the steady clock (time_point{} when not reached), so
/// that a load generator can tell the TCP connect, the TLS handshake and the CONNACK apart.
struct Stats {
  std::uint32_t reads = 0;         ///< read calls (recv / SSL_read), would-block ones included
  std::uint32_t writes = 0;        ///< write calls (sendmsg / SSL_write), would-block ones included
  std::uint32_t write_blocks = 0;  ///< writes that found the socket full and waited
  std::chrono::steady_clock::time_point started{};          ///< `start` was called
  std::chrono::steady_clock::time_point tcp_connected{};    ///< the TCP connect completed
  std::chrono::steady_clock::time_point tls_established{};  ///< the TLS handshake completed
};

/// One MQTT client connection driven by the io_context. See the file comment.
class Connection {
 public:
  /// `session`, the buffers and `handler` are the caller's and must outlive the Connection.
  Connection(Driver& driver, mqtt::Session& session, mqtt::MutableBytes receive_buffer,
             mqtt::MutableBytes send_buffer, Handler& handler) noexcept;
  /// See "Lifetime" in the file comment.
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Queues CONNECT in the engine (the CONNACK must arrive within `timeout`, which covers the
  /// TCP connect and the TLS handshake too), then connects the socket, runs the TLS handshake
  /// and writes. The outcome is a Connected or ConnectFailed event, followed by `on_closed`
  /// when it failed. `options` is used during the call only.
  /// Errors (nothing started): AlreadyConnected (the previous start has not reached
  /// `on_closed`); the errors of `mqtt::Connection::connect`.
  [[nodiscard]] mqtt::Result<void> start(const Endpoint& endpoint,
                                         const mqtt::ConnectOptions& options,
                                         Duration timeout) noexcept;

  /// The engine's commands, written by the next turn of the loop (see the file comment).
  /// Results, errors and view lifetimes are the engine's (mqtt/connection.hpp); SendQueueFull
  /// means: retry after a completion event.
  [[nodiscard]] mqtt::Result<std::uint16_t> publish(const mqtt::Publish& message) noexcept;
  [[nodiscard]] mqtt::Result<std::uint16_t> subscribe(
      std::span<const mqtt::Subscription> subscriptions,
      const mqtt::Properties& properties = {}) noexcept;
  [[nodiscard]] mqtt::Result<std::uint16_t> unsubscribe(
      std::span<const std::string_view> filters, const mqtt::Properties& properties = {}) noexcept;
  [[nodiscard]] mqtt::Result<void> ping() noexcept;
  /// Sends DISCONNECT; the socket is closed once it is written (then `on_closed`, no error).
  [[nodiscard]] mqtt::Result<void> disconnect(
      mqtt::ReasonCode reason = mqtt::ReasonCode::Success,
      const mqtt::Properties& properties = {}) noexcept;
  /// Closes the socket now without DISCONNECT (the engine sees TransportClosed and reports the
  /// close), then `on_closed` with Errc::Stopped. Nothing happens when idle.
  void stop() noexcept;
  /// A fault for simulators and tests: the open connection stops carrying bytes in both
  /// directions for `length` without closing, as a NAT or radio link that goes silent. Nothing
  /// is read from or written to the socket meanwhile: what the peer sends waits in the kernel,
  /// what the application queues waits in the engine (its send queue fills: SendQueueFull), and
  /// the engine's timers run on, so the keep-alive PINGREQ falls due and, with no PINGRESP
  /// within the ping timeout, the engine closes the connection (KeepAliveTimeout) as it would on
  /// a dead link; a shorter stall ends by itself and the queued bytes flow. Affects the open
  /// stream only (not a TCP connect or TLS handshake in progress: the stall then starts when the
  /// stream opens, if it has not ended by then). Ends at its time, at `stop`, when the
  /// connection closes, or at the next `start`; a second call replaces the end. Nothing happens
  /// when idle.
  void stall(Duration length) noexcept;
  /// True while a `stall` is in force.
  [[nodiscard]] bool stalled() const noexcept;
  /// The socket's local address and port (getsockname) while the TCP connection is up; an
  /// empty endpoint otherwise. With `Endpoint::source_address`, the address bound.
  [[nodiscard]] asio::ip::tcp::endpoint local_endpoint() const noexcept;

  /// The engine, for its state and counters. Commands must go through this class (or be
  /// followed by `flush()`), else they wait for the next socket event or timer to be written.
  [[nodiscard]] mqtt::Connection& engine() noexcept { return engine_; }
  [[nodiscard]] const mqtt::Connection& engine() const noexcept { return engine_; }
  /// Has what the engine has queued written by the next turn of the loop (after commands made
  /// on `engine()` directly).
  void flush() noexcept;
  /// True between `start` and `on_closed`.
  [[nodiscard]] bool active() const noexcept { return phase_ != Phase::Idle; }
  /// The transport's failure of the last connection (empty if none).
  [[nodiscard]] std::error_code transport_error() const noexcept { return transport_error_; }
  /// Counters of the socket calls since the last `start`.
  [[nodiscard]] const Stats& stats() const noexcept { return stats_; }
  /// For TLS: the X.509 verification result of the last handshake (X509_V_OK = 0 when it passed
  /// or did not get that far).
  [[nodiscard]] long tls_verify_result() const noexcept { return verify_result_; }
  /// For TLS: the description of the fatal alert the server sent on the last connection
  /// (Errc::TlsServerAlert), else -1. `tls::alert_name` names it.
  [[nodiscard]] int tls_alert() const noexcept { return alert_; }

 private:
  enum class Phase : std::uint8_t { Idle, Connecting, Handshaking, Open, Closing };

  void on_connected(std::error_code ec) noexcept;
  void handshake() noexcept;
  void on_ready(bool read, std::error_code ec) noexcept;
  void on_timer(std::error_code ec) noexcept;
  void pump() noexcept;
  bool read_some() noexcept;
  bool write_some() noexcept;
  void wait_read() noexcept;
  void wait_write() noexcept;
  void wait(bool read) noexcept;
  void arm_timer() noexcept;
  void on_failure(std::error_code ec, mqtt::Errc engine_error) noexcept;
  void schedule() noexcept;
  void close_socket(bool clean) noexcept;
  void maybe_finish() noexcept;
  std::error_code tls_error(int ssl_error, bool handshaking) noexcept;

  Driver& driver_;
  Handler& handler_;
  mqtt::Connection engine_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  ssl_st* ssl_ = nullptr;
  const tls::TlsContext* tls_ = nullptr;
  const tls::ClientIdentity* identity_ = nullptr;  // until the SSL is made
  std::string server_name_;  // for the TLS handshake only (usually in its small-string buffer)
  std::error_code transport_error_;
  long verify_result_ = 0;
  Stats stats_;
  std::optional<Instant> armed_;     // the deadline the timer waits for
  std::optional<Instant> close_by_;  // the engine closed: its last bytes must leave by then
  std::optional<Instant> stalled_until_;  // stall(): no socket reads or writes until then
  Phase phase_ = Phase::Idle;
  std::int16_t alert_ = -1;        // the server's fatal alert (TLS), -1 when none
  std::uint16_t pending_ = 0;      // Asio operations whose handler has not run yet
  bool read_waiting_ = false;      // an async_wait(read) is pending
  bool write_waiting_ = false;     // an async_wait(write) is pending
  bool readable_ = false;          // the socket may have bytes (last read did not block)
  bool read_wants_write_ = false;  // TLS: SSL_read needs the socket writable
  bool write_wants_read_ = false;  // TLS: SSL_write needs the socket readable
  bool in_pump_ = false;           // re-entrancy guard (commands from inside a handler)
  bool again_ = false;             // work arrived during pump
  bool scheduled_ = false;         // a pump() is posted
};

}  // namespace edgekit::mqtt_asio

template <>
struct std::is_error_code_enum<edgekit::mqtt_asio::Errc> : std::true_type {};
