// The event-loop driver. See connection.hpp for the model; this file only moves bytes and time
// between a socket (TCP or OpenSSL over it), an asio::steady_timer and the engine.
#include "edgekit/mqtt_asio/connection.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <asio/post.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <new>

#include "edgekit/tls/tls.hpp"

namespace edgekit::mqtt_asio {

namespace {

// How many packets' views one write gathers: the engine's whole send queue.
constexpr std::size_t kMaxViews = mqtt::Connection::kSendQueuePackets * 2;
// One TLS record of plaintext (RFC 8446 5.1): the most one SSL_write sends as one record.
constexpr std::size_t kTlsRecord = 16384;
// Rounds of read / poll / write one wake-up runs before it yields to the other connections.
constexpr int kMaxRounds = 8;
// How long a connection the engine has closed may take to write its last bytes (DISCONNECT).
constexpr Duration kLinger{2000};
#ifdef __linux__
// IP_BIND_ADDRESS_NO_PORT (Linux 4.2, <linux/in.h>, which clashes with glibc's <netinet/in.h>).
constexpr int kIpBindAddressNoPort = 24;
#endif

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "edgekit.mqtt_asio"; }
  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::Ok: return "ok";
      case Errc::TlsSetupFailed: return "TLS setup failed";
      case Errc::TlsHandshakeFailed: return "TLS handshake failed";
      case Errc::TlsCertificateRejected: return "server certificate rejected";
      case Errc::TlsStreamFailed: return "TLS stream failed";
      case Errc::OutOfMemory: return "out of memory";
      case Errc::Stopped: return "stopped";
      case Errc::TlsClientIdentityRejected: return "TLS client identity rejected";
      case Errc::TlsServerAlert: return "server alert";
    }
    return "unknown";
  }
};

asio::steady_timer::time_point to_time_point(Instant t) noexcept {
  return asio::steady_timer::time_point(
      std::chrono::duration_cast<asio::steady_timer::duration>(t.since_origin));
}

// A peer that went away is TransportClosed; anything else is TransportError.
mqtt::Errc engine_error_of(std::error_code ec) noexcept {
  if (ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe || ec == asio::error::connection_aborted) {
    return mqtt::Errc::TransportClosed;
  }
  return mqtt::Errc::TransportError;
}

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

// --- Driver --------------------------------------------------------------------------------------

Driver::Driver(asio::io_context& io) : io_(io), tls_scratch_(kTlsRecord) {}

Instant Driver::now() noexcept {
  return Instant{std::chrono::duration_cast<Duration>(
      std::chrono::steady_clock::now().time_since_epoch())};
}

// --- Connection ----------------------------------------------------------------------------------

Connection::Connection(Driver& driver, mqtt::Session& session, mqtt::MutableBytes receive_buffer,
                       mqtt::MutableBytes send_buffer, Handler& handler) noexcept
    : driver_(driver),
      handler_(handler),
      engine_(session, receive_buffer, send_buffer),
      socket_(driver.io()),
      timer_(driver.io()) {}

Connection::~Connection() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  std::error_code ignored;
  socket_.close(ignored);
}

mqtt::Result<void> Connection::start(const Endpoint& endpoint, const mqtt::ConnectOptions& options,
                                     Duration timeout) noexcept {
  if (phase_ != Phase::Idle) return edgekit::fail(mqtt::Errc::AlreadyConnected);
  auto r = engine_.connect(options, Driver::now(), timeout);
  if (!r) return r;
  tls_ = endpoint.tls;
  identity_ = endpoint.tls != nullptr ? endpoint.identity : nullptr;
  transport_error_ = {};
  verify_result_ = 0;
  alert_ = -1;
  stats_ = {};
  stats_.started = std::chrono::steady_clock::now();
  close_by_.reset();
  stalled_until_.reset();
  armed_.reset();
  readable_ = read_wants_write_ = write_wants_read_ = false;
  phase_ = Phase::Connecting;
  std::error_code ec;
  if (tls_ != nullptr) {
    try {
      server_name_ = endpoint.server_name.empty() ? endpoint.address.address().to_string()
                                                  : std::string(endpoint.server_name);
    } catch (...) {
      ec = make_error_code(Errc::OutOfMemory);
    }
  }
  if (!ec) socket_.open(endpoint.address.protocol(), ec);
  if (!ec) socket_.non_blocking(true, ec);
  if (!ec) socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  if (!ec && endpoint.socket_buffer_size != 0) {
    const int size = static_cast<int>(endpoint.socket_buffer_size);
    socket_.set_option(asio::socket_base::send_buffer_size(size), ec);
    if (!ec) socket_.set_option(asio::socket_base::receive_buffer_size(size), ec);
  }
  if (!ec && !endpoint.source_address.is_unspecified()) {
#ifdef __linux__
    // The port is then chosen at connect, unique for the whole address pair, not at bind for
    // the local address alone: bound sockets share the range as unbound ones do.
    const int on = 1;
    if (endpoint.source_address.is_v4() &&
        ::setsockopt(socket_.native_handle(), IPPROTO_IP, kIpBindAddressNoPort, &on,
                     sizeof on) != 0) {
      ec = std::error_code(errno, std::system_category());
    }
#endif
    if (!ec) socket_.bind({endpoint.source_address, 0}, ec);
  }
  try {
    ++pending_;
    if (ec) {
      // Reported from the loop, as every other outcome, never from inside start().
      asio::post(driver_.io(), [this, ec] {
        --pending_;
        on_failure(ec, mqtt::Errc::TransportError);
      });
    } else {
      socket_.async_connect(endpoint.address, [this](std::error_code e) {
        --pending_;
        on_connected(e);
      });
    }
  } catch (...) {
    --pending_;
    std::error_code ignored;
    socket_.close(ignored);
    engine_.on_transport_closed(mqtt::Errc::TransportError, Driver::now());
    while (engine_.poll_event(Driver::now())) {
    }
    phase_ = Phase::Idle;
    return edgekit::fail(mqtt::Errc::TransportError);
  }
  arm_timer();
  return {};
}

// --- commands ------------------------------------------------------------------------------------

mqtt::Result<std::uint16_t> Connection::publish(const mqtt::Publish& message) noexcept {
  auto r = engine_.publish(message, Driver::now());
  if (r) flush();
  return r;
}

mqtt::Result<std::uint16_t> Connection::subscribe(std::span<const mqtt::Subscription> subscriptions,
                                                  const mqtt::Properties& properties) noexcept {
  auto r = engine_.subscribe(subscriptions, Driver::now(), properties);
  if (r) flush();
  return r;
}

mqtt::Result<std::uint16_t> Connection::unsubscribe(std::span<const std::string_view> filters,
                                                    const mqtt::Properties& properties) noexcept {
  auto r = engine_.unsubscribe(filters, Driver::now(), properties);
  if (r) flush();
  return r;
}

mqtt::Result<void> Connection::ping() noexcept {
  auto r = engine_.ping(Driver::now());
  if (r) flush();
  return r;
}

mqtt::Result<void> Connection::disconnect(mqtt::ReasonCode reason,
                                          const mqtt::Properties& properties) noexcept {
  auto r = engine_.disconnect(reason, properties, Driver::now());
  // The engine is Closed now; pump writes the DISCONNECT, closes the socket, reports losses.
  if (r) schedule();
  return r;
}

void Connection::stop() noexcept {
  if (phase_ == Phase::Idle || phase_ == Phase::Closing) return;
  if (!transport_error_) transport_error_ = make_error_code(Errc::Stopped);
  close_socket(false);
  engine_.on_transport_closed(mqtt::Errc::TransportClosed, Driver::now());
  schedule();
}

void Connection::stall(Duration length) noexcept {
  if (phase_ == Phase::Idle || phase_ == Phase::Closing) return;
  stalled_until_ = Driver::now() + length;
  schedule();  // pump() arms the timer for the stall's end
}

bool Connection::stalled() const noexcept {
  return stalled_until_ && Driver::now() < *stalled_until_;
}

asio::ip::tcp::endpoint Connection::local_endpoint() const noexcept {
  if (phase_ != Phase::Handshaking && phase_ != Phase::Open) return {};
  std::error_code ec;
  auto e = socket_.local_endpoint(ec);
  return ec ? asio::ip::tcp::endpoint{} : e;
}

void Connection::flush() noexcept {
  // Written by the next turn of the loop, together with every other command made until then
  // (inside a handler: when it returns, with the acks): one write per batch, not per command.
  if (phase_ == Phase::Idle || phase_ == Phase::Closing) return;
  schedule();
}

// Runs pump() from the loop (never inside the caller's call), unless one is running already.
void Connection::schedule() noexcept {
  if (in_pump_) {
    again_ = true;
    return;
  }
  if (scheduled_) return;
  try {
    ++pending_;
    scheduled_ = true;
    asio::post(driver_.io(), [this] {
      --pending_;
      scheduled_ = false;
      pump();
    });
  } catch (...) {
    --pending_;
    scheduled_ = false;
    pump();  // better from inside the caller's call than never
  }
}

// --- socket events -------------------------------------------------------------------------------

void Connection::on_connected(std::error_code ec) noexcept {
  if (phase_ != Phase::Connecting) {  // stopped or timed out meanwhile
    maybe_finish();
    return;
  }
  if (ec) {
    on_failure(ec, mqtt::Errc::TransportError);
    return;
  }
  stats_.tcp_connected = std::chrono::steady_clock::now();
  if (tls_ == nullptr) {
    phase_ = Phase::Open;
    readable_ = true;  // nothing read yet: the first read finds out (edge-triggered reactor)
    pump();
    return;
  }
  auto ssl = tls_->new_client_ssl(socket_.native_handle(), server_name_, identity_);
  identity_ = nullptr;  // the SSL holds its own references now
  if (!ssl) {
    const tls::Cause cause = ssl.error().cause;
    const bool identity = cause == tls::Cause::KeyCertificateMismatch ||
                          cause == tls::Cause::CertificateLoadFailed ||
                          cause == tls::Cause::PrivateKeyLoadFailed;
    on_failure(make_error_code(identity ? Errc::TlsClientIdentityRejected : Errc::TlsSetupFailed),
               mqtt::Errc::TransportError);
    return;
  }
  ssl_ = *ssl;
  // Records buffers only while a record is in flight: thousands of idle connections would
  // otherwise hold OpenSSL's 2 x ~17 KB each. Read-ahead: one recv per burst, not two per record.
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  SSL_set_read_ahead(ssl_, 1);
  phase_ = Phase::Handshaking;
  handshake();
}

void Connection::handshake() noexcept {
  ERR_clear_error();
  errno = 0;
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    stats_.tls_established = std::chrono::steady_clock::now();
    phase_ = Phase::Open;
    readable_ = true;
    pump();
    return;
  }
  const int err = SSL_get_error(ssl_, r);
  if (err == SSL_ERROR_WANT_READ) {
    wait_read();
  } else if (err == SSL_ERROR_WANT_WRITE) {
    wait_write();
  } else {
    const std::error_code ec = tls_error(err, true);
    on_failure(ec, engine_error_of(ec));
    return;
  }
  maybe_finish();  // a failed wait may have closed it
}

void Connection::on_ready(bool read, std::error_code ec) noexcept {
  if (ec == asio::error::operation_aborted || phase_ == Phase::Idle || phase_ == Phase::Closing) {
    maybe_finish();
    return;
  }
  if (ec) {
    on_failure(ec, mqtt::Errc::TransportError);
    maybe_finish();
    return;
  }
  if (phase_ == Phase::Handshaking) {
    handshake();
    return;
  }
  if (read) {
    readable_ = true;
    write_wants_read_ = false;  // retry the TLS write that needed input
  } else if (read_wants_write_) {
    read_wants_write_ = false;  // retry the TLS read that needed to write
    readable_ = true;
  }
  pump();
}

void Connection::on_timer(std::error_code ec) noexcept {
  if (ec == asio::error::operation_aborted) {
    maybe_finish();
    return;
  }
  if (armed_ && Driver::now() >= *armed_) armed_.reset();
  pump();
}

// --- the loop of one connection ------------------------------------------------------------------

void Connection::pump() noexcept {
  if (in_pump_) {
    again_ = true;
    return;
  }
  in_pump_ = true;
  int round = 0;
  for (;;) {
    again_ = false;
    Instant now = Driver::now();
    if (stalled_until_ && *stalled_until_ <= now) {
      stalled_until_.reset();
      readable_ = true;  // whatever came meanwhile raised no edge we acted on
    }
    const bool flowing = !stalled_until_;
    if (phase_ == Phase::Open && flowing && readable_ && !read_wants_write_ &&
        !engine_.read_buffer().empty()) {
      read_some();
      now = Driver::now();
    }
    if (auto d = engine_.next_deadline(); d && *d <= now) engine_.on_timer(now);
    if (close_by_ && *close_by_ <= now && phase_ == Phase::Open) {
      // The last bytes of a closed connection did not leave in time: give up on them.
      if (!transport_error_) transport_error_ = std::make_error_code(std::errc::timed_out);
      close_socket(false);
    }
    bool polled = false;
    while (auto event = engine_.poll_event(now)) {
      handler_.on_event(*this, *event);
      now = Driver::now();
      polled = true;
    }
    if (polled) {
      handler_.on_events_done(*this);
      now = Driver::now();
    }
    if (phase_ == Phase::Open && flowing && !engine_.output_empty() && !write_waiting_ &&
        !write_wants_read_) {
      write_some();
      if (engine_.packet_pending() || engine_.notices_pending()) again_ = true;
    }
    if (phase_ != Phase::Closing && engine_.state() == mqtt::ConnectionState::Closed) {
      if (phase_ != Phase::Open || engine_.output_empty()) {
        close_socket(phase_ == Phase::Open);  // clean: DISCONNECT (if any) has left
      } else if (!close_by_) {
        close_by_ = now + kLinger;
      }
    }
    const bool more_input = phase_ == Phase::Open && flowing && readable_ && !read_wants_write_ &&
                            !engine_.read_buffer().empty();
    if (!again_ && !more_input) break;
    if (++round >= kMaxRounds) {
      in_pump_ = false;
      schedule();  // let the other connections run; continue from the loop
      in_pump_ = true;
      break;
    }
  }
  if (phase_ == Phase::Open) {
    // Wait for input only once a read found the socket empty (the reactor is edge-triggered).
    if (!readable_ && !engine_.read_buffer().empty()) wait_read();
    if (write_wants_read_ || read_wants_write_) {
      if (write_wants_read_) wait_read();
      if (read_wants_write_) wait_write();
    }
  }
  if (phase_ != Phase::Closing && phase_ != Phase::Idle) arm_timer();
  in_pump_ = false;
  maybe_finish();
}

bool Connection::read_some() noexcept {
  mqtt::MutableBytes into = engine_.read_buffer();
  ++stats_.reads;
  if (ssl_ == nullptr) {
    std::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(into.data(), into.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      readable_ = false;
      return false;
    }
    if (ec) {
      on_failure(ec, engine_error_of(ec));
      return false;
    }
    // A short read emptied the socket: whatever comes later raises a new edge.
    if (n < into.size()) readable_ = false;
    engine_.on_read(n, Driver::now());
    return true;
  }
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  const int r = SSL_read_ex(ssl_, into.data(), into.size(), &n);
  if (r == 1) {
    engine_.on_read(n, Driver::now());
    return true;  // TLS: keep reading until WANT_READ (bytes may sit inside OpenSSL)
  }
  const int err = SSL_get_error(ssl_, r);
  if (err == SSL_ERROR_WANT_READ) {
    readable_ = false;
    return false;
  }
  if (err == SSL_ERROR_WANT_WRITE) {
    read_wants_write_ = true;
    return false;
  }
  const std::error_code ec = tls_error(err, false);
  on_failure(ec, engine_error_of(ec));
  return false;
}

bool Connection::write_some() noexcept {
  std::array<mqtt::Bytes, kMaxViews> views;
  const std::size_t count = engine_.output(views);
  if (count == 0) return false;
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) total += views[i].size();
  std::size_t written = 0;
  ++stats_.writes;
  if (ssl_ == nullptr) {
    std::array<asio::const_buffer, kMaxViews> buffers;
    for (std::size_t i = 0; i < count; ++i) buffers[i] = asio::buffer(views[i].data(), views[i].size());
    std::error_code ec;
    written = socket_.write_some(std::span<const asio::const_buffer>(buffers.data(), count), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      wait_write();
      return false;
    }
    if (ec) {
      on_failure(ec, engine_error_of(ec));
      return false;
    }
  } else {
    // One record for every queued packet that fits: MQTT headers, payloads and acks would
    // otherwise become a record (and a send) each. A retry after WANT_WRITE gathers the same
    // leading bytes again (the engine only appends), which OpenSSL's retry rule requires
    // (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER is set on the context).
    std::vector<unsigned char>& g = driver_.tls_scratch_;
    std::size_t len = 0;
    for (std::size_t i = 0; i < count && len < g.size(); ++i) {
      const std::size_t n = std::min(views[i].size(), g.size() - len);
      std::memcpy(g.data() + len, views[i].data(), n);
      len += n;
    }
    ERR_clear_error();
    errno = 0;
    const int r = SSL_write_ex(ssl_, g.data(), len, &written);
    if (r != 1) {
      const int err = SSL_get_error(ssl_, r);
      if (err == SSL_ERROR_WANT_WRITE) {
        wait_write();
        return false;
      }
      if (err == SSL_ERROR_WANT_READ) {
        write_wants_read_ = true;
        return false;
      }
      const std::error_code ec = tls_error(err, false);
      on_failure(ec, engine_error_of(ec));
      return false;
    }
  }
  engine_.on_written(written, Driver::now());
  if (written < total && ssl_ == nullptr) {
    wait_write();  // the socket took less than offered: it is full
  } else if (!engine_.output_empty()) {
    again_ = true;  // more views than one gather, or more than one record
  }
  return true;
}

// --- waits, timer, close -------------------------------------------------------------------------

void Connection::wait_read() noexcept { wait(true); }
void Connection::wait_write() noexcept { wait(false); }

void Connection::wait(bool read) noexcept {
  bool& waiting = read ? read_waiting_ : write_waiting_;
  if (waiting) return;
  if (!read && phase_ == Phase::Open) ++stats_.write_blocks;
  try {
    ++pending_;
    waiting = true;
    socket_.async_wait(read ? asio::socket_base::wait_read : asio::socket_base::wait_write,
                       [this, read](std::error_code ec) {
                         --pending_;
                         (read ? read_waiting_ : write_waiting_) = false;
                         on_ready(read, ec);
                       });
  } catch (...) {
    --pending_;
    waiting = false;
    on_failure(make_error_code(Errc::OutOfMemory), mqtt::Errc::TransportError);
  }
}

void Connection::arm_timer() noexcept {
  std::optional<Instant> d = engine_.next_deadline();
  if (close_by_ && (!d || *close_by_ < *d)) d = close_by_;
  if (stalled_until_ && (!d || *stalled_until_ < *d)) d = stalled_until_;
  if (!d) return;  // an armed timer may fire for nothing; it is not re-armed then
  if (armed_ && *armed_ <= *d) return;  // fires early, then pump() re-arms it
  try {
    ++pending_;
    armed_ = d;
    timer_.expires_at(to_time_point(*d));  // cancels a wait for a later deadline
    timer_.async_wait([this](std::error_code ec) {
      --pending_;
      on_timer(ec);
    });
  } catch (...) {
    --pending_;
    armed_.reset();
    on_failure(make_error_code(Errc::OutOfMemory), mqtt::Errc::TransportError);
  }
}

void Connection::on_failure(std::error_code ec, mqtt::Errc engine_error) noexcept {
  if (!transport_error_) transport_error_ = ec;
  if (phase_ == Phase::Idle || phase_ == Phase::Closing) return;
  close_socket(false);
  engine_.on_transport_closed(engine_error, Driver::now());
  // The close events are reported from the loop: a failure found inside a command (publish's
  // write) must not call the application back, which might destroy us, inside its own call.
  schedule();
}

void Connection::close_socket(bool clean) noexcept {
  if (ssl_ != nullptr) {
    if (clean && phase_ == Phase::Open) {
      // One non-blocking close_notify, best effort: MQTT's DISCONNECT has said it already.
      ERR_clear_error();
      (void)SSL_shutdown(ssl_);
    }
    SSL_free(ssl_);
    ssl_ = nullptr;
    ERR_clear_error();
  }
  std::error_code ignored;
  socket_.close(ignored);  // pending waits complete with operation_aborted
  if (armed_) {
    (void)timer_.cancel();
    armed_.reset();
  }
  readable_ = read_wants_write_ = write_wants_read_ = false;
  close_by_.reset();
  stalled_until_.reset();  // a closed socket sends nothing either way
  phase_ = Phase::Closing;
}

void Connection::maybe_finish() noexcept {
  if (phase_ != Phase::Closing || pending_ != 0 || in_pump_) return;
  // The engine may still hold close events (e.g. closed from inside a handler): report them.
  const Instant now = Driver::now();
  bool polled = false;
  while (auto event = engine_.poll_event(now)) {
    handler_.on_event(*this, *event);
    polled = true;
  }
  if (polled) handler_.on_events_done(*this);
  if (phase_ != Phase::Closing || pending_ != 0) return;
  phase_ = Phase::Idle;
  handler_.on_closed(*this, transport_error_);  // last: the handler may destroy or restart us
}

std::error_code Connection::tls_error(int ssl_error, bool handshaking) noexcept {
  const int saved_errno = errno;
  std::error_code ec;
  if (handshaking) {
    verify_result_ = SSL_get_verify_result(ssl_);
    if (verify_result_ != X509_V_OK) ec = make_error_code(Errc::TlsCertificateRejected);
  }
  if (!ec && ssl_error == SSL_ERROR_SSL) {
    // A fatal alert from the server is queued as reason SSL_AD_REASON_OFFSET + its description
    // (OpenSSL's record layer), which names the cause as the TLS transport does, without a
    // per-connection info callback.
    const unsigned long e = ERR_peek_last_error();
    const int reason = ERR_GET_REASON(e);
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && reason > SSL_AD_REASON_OFFSET &&
        reason < SSL_AD_REASON_OFFSET + 256) {
      alert_ = static_cast<std::int16_t>(reason - SSL_AD_REASON_OFFSET);
      ec = make_error_code(Errc::TlsServerAlert);
    }
  }
  if (!ec) {
    if (ssl_error == SSL_ERROR_ZERO_RETURN) {
      ec = asio::error::eof;
    } else if (ssl_error == SSL_ERROR_SYSCALL) {
      ec = saved_errno != 0 ? std::error_code(saved_errno, std::system_category())
                            : std::error_code(asio::error::eof);
    } else {
      ec = make_error_code(handshaking ? Errc::TlsHandshakeFailed : Errc::TlsStreamFailed);
    }
  }
  ERR_clear_error();
  return ec;
}

}  // namespace edgekit::mqtt_asio
