// The OpenSSL 3 TLS transport. See tls.hpp for the contract.
#include "edgekit/tls/tls.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <utility>

#include "edgekit/core/error_category.hpp"
#include "internal.hpp"

namespace edgekit::tls {

namespace detail {

struct ContextState {
  SSL_CTX* ctx = nullptr;
  Config config;
  ~ContextState() { SSL_CTX_free(ctx); }
};

// Heap-allocated so that the SSL object's back pointer (for the alert callback) survives moves
// of the TlsTransport.
struct TransportState {
  std::shared_ptr<ContextState> context;
  transport::TcpTransport tcp;
  SSL* ssl = nullptr;
  bool closed = false;
  bool fatal = false;             // OpenSSL forbids SSL_shutdown after a fatal error
  bool handshake_done = false;
  bool read_wants_write = false;  // the last SSL_read asked for writability
  bool write_wants_read = false;  // the last SSL_write asked for readability
  int alert_received = -1;        // description of a fatal alert the server sent
  Error last_error{Cause::IoError, {}, 0, -1, 0, 0};
  std::vector<unsigned char> gather;  // writev's record buffer

  ~TransportState() { shut(); }

  void shut() noexcept {
    if (ssl != nullptr) {
      if (handshake_done && !fatal && !closed) {
        // One non-blocking call: sends close_notify if the socket takes it, never waits for the
        // peer's (MQTT has already said DISCONNECT when it matters).
        ERR_clear_error();
        (void)SSL_shutdown(ssl);
      }
      SSL_free(ssl);
      ssl = nullptr;
    }
    ERR_clear_error();
    tcp.close();
    closed = true;
  }
};

Error make_error(Cause cause, std::string detail) {
  Error e;
  e.cause = cause;
  e.detail = std::move(detail);
  return e;
}

std::string openssl_reason() {
  unsigned long code = ERR_peek_error();
  std::string out;
  if (code != 0) {
    const char* reason = ERR_reason_error_string(code);
    out = reason != nullptr ? reason : "";
    if (out.empty()) {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof buf);
      out = buf;
    }
  }
  ERR_clear_error();
  return out.empty() ? std::string("no details from OpenSSL") : out;
}

}  // namespace detail

namespace {

using detail::ContextState;
using detail::make_error;
using detail::openssl_reason;
using detail::TransportState;

constexpr std::size_t kRecordSize = 16384;  // TLS plaintext record limit (RFC 8446 5.1)

// OpenSSL's socket BIO writes with write(2), which raises SIGPIPE when the peer has already gone
// (a close_notify or a record sent after a reset) and kills an application that did not ignore
// the signal. A library must not impose that, so the TLS stream runs over this socket BIO, which
// is the same except that it sends with MSG_NOSIGNAL (EPIPE then comes back as an error).
int socket_fd(BIO* bio) noexcept {
  return static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(bio)));
}

bool should_retry(int error) noexcept {
  return error == EAGAIN || error == EWOULDBLOCK || error == EINTR || error == EINPROGRESS;
}

int nosigpipe_write(BIO* bio, const char* data, int length) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = ::send(socket_fd(bio), data, static_cast<std::size_t>(length), MSG_NOSIGNAL);
  if (n < 0 && should_retry(errno)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int nosigpipe_read(BIO* bio, char* out, int length) {
  if (out == nullptr) return 0;
  BIO_clear_retry_flags(bio);
  const ssize_t n = ::recv(socket_fd(bio), out, static_cast<std::size_t>(length), 0);
  if (n == 0) BIO_set_flags(bio, BIO_FLAGS_IN_EOF);  // lets libssl tell EOF from an error
  if (n < 0 && should_retry(errno)) BIO_set_retry_read(bio);
  return static_cast<int>(n);
}

int nosigpipe_puts(BIO* bio, const char* text) {
  return nosigpipe_write(bio, text, static_cast<int>(std::strlen(text)));
}

long nosigpipe_ctrl(BIO* bio, int command, long /*number*/, void* pointer) {
  switch (command) {
    case BIO_C_GET_FD:
      if (pointer != nullptr) *static_cast<int*>(pointer) = socket_fd(bio);
      return socket_fd(bio);
    case BIO_CTRL_EOF:
      return BIO_test_flags(bio, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_DUP:
      return 1;
    default:
      return 0;
  }
}

// The method table, made once (thread-safe static init) and kept for the process.
const BIO_METHOD* nosigpipe_method() noexcept {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "edgekit socket (MSG_NOSIGNAL)");
    if (m == nullptr) return m;
    BIO_meth_set_write(m, &nosigpipe_write);
    BIO_meth_set_read(m, &nosigpipe_read);
    BIO_meth_set_puts(m, &nosigpipe_puts);
    BIO_meth_set_ctrl(m, &nosigpipe_ctrl);
    return m;
  }();
  return method;
}

// A BIO over `fd` that does not own it (TcpTransport closes the socket).
BIO* make_socket_bio(int fd) noexcept {
  const BIO_METHOD* method = nosigpipe_method();
  if (method == nullptr) return nullptr;
  BIO* bio = BIO_new(method);
  if (bio == nullptr) return nullptr;
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
  BIO_set_init(bio, 1);
  return bio;
}

const Clock& clock_of(const Config& c) {
  static const SteadyClock steady;  // stateless
  return c.tcp.clock != nullptr ? *c.tcp.clock : steady;
}

int ossl_version(Version v) { return v == Version::Tls12 ? TLS1_2_VERSION : TLS1_3_VERSION; }

bool is_ip_literal(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

int transport_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Records the fatal alert the server sends so that the failure can name it.
void info_callback(const SSL* ssl, int where, int value) {
  if ((where & SSL_CB_READ_ALERT) == 0) return;
  auto* state = static_cast<TransportState*>(SSL_get_ex_data(ssl, transport_index()));
  if (state == nullptr) return;
  // `value` is (level << 8) | description (RFC 8446 6); warnings (close_notify) are not failures.
  if ((value >> 8) == SSL3_AL_FATAL) state->alert_received = value & 0xff;
}

}  // namespace

std::string alert_name(int alert) {
  const char* name = SSL_alert_desc_string_long(alert);
  if (name != nullptr && std::strcmp(name, "unknown") != 0) return name;
  // Names OpenSSL 3.0's table lacks (RFC 8446 6.2).
  switch (alert) {
    case 109: return "missing extension";
    case 116: return "certificate required";
    case 120: return "no application protocol";
    default: return "alert " + std::to_string(alert);
  }
}

namespace {

Cause verify_cause(long v) {
  switch (v) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
      return Cause::UnknownCa;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CRL_HAS_EXPIRED:
      return Cause::CertificateExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return Cause::CertificateNotYetValid;
    case X509_V_ERR_CERT_REVOKED:
      return Cause::CertificateRevoked;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return Cause::HostNameMismatch;
    default:
      return Cause::CertificateInvalid;
  }
}

// Looks for a token signature failure on the error queue (see internal.hpp).
bool token_failure(Error& out) {
  const char* data = nullptr;
  int flags = 0;
  unsigned long code = 0;
  while ((code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0) {
    if (ERR_GET_LIB(code) == detail::kTokenErrorLib) {
      out = make_error(Cause::TokenError,
                       (flags & ERR_TXT_STRING) != 0 && data != nullptr ? data : "C_Sign failed");
      out.ck_rv = static_cast<unsigned long>(ERR_GET_REASON(code));
      ERR_clear_error();
      return true;
    }
  }
  return false;
}

// Why a handshake step failed: the token, the server's certificate, the server's alert, the
// connection, or OpenSSL's reason, in that order of specificity.
Error handshake_failure(TransportState& st, int ssl_error, int saved_errno) {
  // Collect OpenSSL's reason before token_failure() empties the queue.
  const unsigned long first = ERR_peek_error();
  char reason_buf[256] = {};
  if (first != 0) {
    const char* r = ERR_reason_error_string(first);
    std::snprintf(reason_buf, sizeof reason_buf, "%s", r != nullptr ? r : "");
  }
  Error e;
  if (token_failure(e)) return e;
  ERR_clear_error();
  const long verify = SSL_get_verify_result(st.ssl);
  if (verify != X509_V_OK && !st.context->config.dangerously_disable_server_verification) {
    e = make_error(verify_cause(verify), X509_verify_cert_error_string(verify));
    e.verify_result = verify;
    return e;
  }
  if (st.alert_received >= 0) {
    e = make_error(Cause::ServerAlert, alert_name(st.alert_received));
    e.alert = st.alert_received;
    return e;
  }
  if (ssl_error == SSL_ERROR_ZERO_RETURN ||
      (ssl_error == SSL_ERROR_SYSCALL && (saved_errno == 0 || saved_errno == ECONNRESET ||
                                          saved_errno == EPIPE))) {
    e = make_error(Cause::ConnectionClosed, "the server closed the connection during the handshake");
    e.system_error = saved_errno;
    return e;
  }
  if (ssl_error == SSL_ERROR_SYSCALL) {
    e = make_error(Cause::ConnectFailed, std::strerror(saved_errno));
    e.system_error = saved_errno;
    return e;
  }
  if (std::strstr(reason_buf, "unexpected eof") != nullptr) {
    return make_error(Cause::ConnectionClosed, "the server closed the connection during the handshake");
  }
  return make_error(Cause::HandshakeFailed, reason_buf[0] != '\0' ? reason_buf : "handshake failed");
}

Error tcp_failure(const transport::TcpError& t) {
  Error e;
  switch (t.code) {
    case transport::TcpErrc::HostNotFound: e.cause = Cause::HostNotFound; break;
    case transport::TcpErrc::ConnectionRefused: e.cause = Cause::ConnectionRefused; break;
    case transport::TcpErrc::Timeout: e.cause = Cause::Timeout; break;
    default: e.cause = Cause::ConnectFailed; break;
  }
  e.detail = t.detail != nullptr ? t.detail : "";
  e.system_error = t.system_error;
  return e;
}

// Builds the SSL_CTX for `config`.
Result<SSL_CTX*> make_ctx(const Config& config) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return fail(make_error(Cause::HandshakeFailed, openssl_reason()));
  struct Guard {
    SSL_CTX*& ctx;
    ~Guard() { SSL_CTX_free(ctx); }
  };
  SSL_CTX* owned = ctx;
  Guard guard{owned};

  if (SSL_CTX_set_min_proto_version(ctx, ossl_version(config.min_version)) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, ossl_version(config.max_version)) != 1) {
    return fail(make_error(Cause::InvalidConfig, "TLS version range: " + openssl_reason()));
  }
  // Partial writes: send() reports each record as it leaves. A moving buffer: the retry after
  // WouldBlock may come from another address with the same bytes (writev's gather buffer).
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // MQTT frames its own packets, so a missing close_notify cannot truncate a message unnoticed:
  // an end of stream without it is an ordinary Closed. Renegotiation is never needed.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);

  if (config.dangerously_disable_server_verification) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    if (!config.ca_file.empty() && SSL_CTX_load_verify_file(ctx, config.ca_file.c_str()) != 1) {
      return fail(make_error(Cause::CaLoadFailed, config.ca_file + ": " + openssl_reason()));
    }
    if (!config.ca_dir.empty() && SSL_CTX_load_verify_dir(ctx, config.ca_dir.c_str()) != 1) {
      return fail(make_error(Cause::CaLoadFailed, config.ca_dir + ": " + openssl_reason()));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  if (!config.cipher_list_tls12.empty() &&
      SSL_CTX_set_cipher_list(ctx, config.cipher_list_tls12.c_str()) != 1) {
    return fail(make_error(Cause::InvalidConfig, "cipher_list_tls12: " + openssl_reason()));
  }
  if (!config.ciphersuites_tls13.empty() &&
      SSL_CTX_set_ciphersuites(ctx, config.ciphersuites_tls13.c_str()) != 1) {
    return fail(make_error(Cause::InvalidConfig, "ciphersuites_tls13: " + openssl_reason()));
  }
  if (!config.alpn.empty()) {
    std::vector<unsigned char> wire;  // RFC 7301 3.1: each name prefixed by its length
    for (const std::string& p : config.alpn) {
      if (p.empty() || p.size() > 255) {
        return fail(make_error(Cause::InvalidConfig, "an ALPN protocol name must be 1 to 255 bytes"));
      }
      wire.push_back(static_cast<unsigned char>(p.size()));
      wire.insert(wire.end(), p.begin(), p.end());
    }
    // Returns 0 on success (unlike the rest of the API).
    if (SSL_CTX_set_alpn_protos(ctx, wire.data(), static_cast<unsigned>(wire.size())) != 0) {
      return fail(make_error(Cause::InvalidConfig, "ALPN: " + openssl_reason()));
    }
  }

  if (!config.certificate_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, config.certificate_file.c_str()) != 1) {
      return fail(make_error(Cause::CertificateLoadFailed,
                             config.certificate_file + ": " + openssl_reason()));
    }
    detail::PkeyPtr key;
    if (!config.private_key_file.empty()) {
      FILE* f = std::fopen(config.private_key_file.c_str(), "r");
      if (f == nullptr) {
        return fail(make_error(Cause::PrivateKeyLoadFailed,
                               config.private_key_file + ": " + std::strerror(errno)));
      }
      // An empty passphrase is passed as "" so that an encrypted key fails instead of prompting.
      key.reset(PEM_read_PrivateKey(f, nullptr, nullptr,
                                    const_cast<char*>(config.private_key_passphrase.c_str())));
      std::fclose(f);
      if (!key) {
        return fail(make_error(Cause::PrivateKeyLoadFailed,
                               config.private_key_file + ": " + openssl_reason()));
      }
    } else {
      auto k = detail::load_token_key(*config.token_key);
      if (!k) return fail(k.error());
      key = std::move(*k);
    }
    X509* cert = SSL_CTX_get0_certificate(ctx);
    if (cert == nullptr || X509_check_private_key(cert, key.get()) != 1) {
      ERR_clear_error();
      return fail(make_error(Cause::KeyCertificateMismatch,
                             "the private key does not match the certificate in " +
                                 config.certificate_file));
    }
    if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
      return fail(make_error(Cause::PrivateKeyLoadFailed, openssl_reason()));
    }
  }
  owned = nullptr;  // handed to the caller
  return ctx;
}


// A client SSL over `fd` (not owned) with the context's settings, the server-name checks and SNI,
// the MSG_NOSIGNAL socket BIO, in connect state. `st` (may be null) receives the alerts the
// server sends (info_callback).
Result<SSL*> make_client_ssl(const ContextState& ctx, int fd, std::string_view server_name,
                            TransportState* st) {
  const Config& config = ctx.config;
  ERR_clear_error();
  std::unique_ptr<SSL, void (*)(SSL*)> owned(SSL_new(ctx.ctx), &SSL_free);
  SSL* const ssl = owned.get();
  if (ssl == nullptr) return fail(make_error(Cause::HandshakeFailed, openssl_reason()));
  BIO* bio = make_socket_bio(fd);
  if (bio == nullptr) return fail(make_error(Cause::HandshakeFailed, openssl_reason()));
  SSL_set_bio(ssl, bio, bio);  // the SSL owns the BIO from here
  if (st != nullptr) {
    SSL_set_ex_data(ssl, transport_index(), st);
    SSL_set_info_callback(ssl, &info_callback);
  }

  const std::string name(config.server_name.empty() ? server_name : config.server_name);
  const bool ip = is_ip_literal(name);
  if (!config.dangerously_disable_server_verification) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                      : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (name.empty() || ok != 1) {
      ERR_clear_error();
      return fail(make_error(Cause::InvalidConfig, "no usable server name to check: \"" + name + "\""));
    }
  }
  // RFC 6066 3: a literal IP address is not sent as SNI.
  if (!ip && !name.empty() && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
    return fail(make_error(Cause::InvalidConfig, "SNI: " + openssl_reason()));
  }
  SSL_set_connect_state(ssl);
  return owned.release();  // handed to the caller
}
}  // namespace

// --- names and messages --------------------------------------------------------------------------

const char* to_string(Cause cause) noexcept {
  switch (cause) {
    case Cause::InvalidConfig: return "invalid TLS configuration";
    case Cause::CaLoadFailed: return "cannot load the CA certificates";
    case Cause::CertificateLoadFailed: return "cannot load the client certificate";
    case Cause::PrivateKeyLoadFailed: return "cannot load the private key";
    case Cause::KeyCertificateMismatch: return "private key does not match the certificate";
    case Cause::TokenUnavailable: return "PKCS#11 token unavailable";
    case Cause::TokenLoginFailed: return "token login failed";
    case Cause::TokenKeyNotFound: return "key not found in the token";
    case Cause::TokenKeyUnsupported: return "unsupported key in the token";
    case Cause::TokenError: return "token error";
    case Cause::HostNotFound: return "host not found";
    case Cause::ConnectionRefused: return "connection refused";
    case Cause::ConnectFailed: return "TCP connect failed";
    case Cause::Timeout: return "timeout";
    case Cause::UnknownCa: return "unknown CA";
    case Cause::CertificateExpired: return "certificate expired";
    case Cause::CertificateNotYetValid: return "certificate not yet valid";
    case Cause::CertificateRevoked: return "certificate revoked";
    case Cause::HostNameMismatch: return "host-name mismatch";
    case Cause::CertificateInvalid: return "invalid server certificate";
    case Cause::ServerAlert: return "server alert";
    case Cause::HandshakeFailed: return "TLS handshake failed";
    case Cause::ConnectionClosed: return "connection closed";
    case Cause::IoError: return "TLS I/O error";
  }
  return "unknown";
}

const std::error_category& tls_category() noexcept {
  static const EnumErrorCategory<Cause, to_string> category("edgekit.tls");
  return category;
}

std::string Error::message() const {
  std::string out = to_string(cause);
  if (!detail.empty()) out += ": " + detail;
  return out;
}

// --- TlsContext ----------------------------------------------------------------------------------

TlsContext::TlsContext(std::shared_ptr<detail::ContextState> state) noexcept
    : state_(std::move(state)) {}
TlsContext::TlsContext(TlsContext&&) noexcept = default;
TlsContext& TlsContext::operator=(TlsContext&&) noexcept = default;
TlsContext::~TlsContext() = default;

const Config& TlsContext::config() const noexcept { return state_->config; }

Result<ssl_st*> TlsContext::new_client_ssl(int fd, std::string_view server_name,
                                           const ClientIdentity* identity) const {
  if (identity != nullptr && !identity->valid()) {
    return fail(make_error(Cause::InvalidConfig, "an empty ClientIdentity"));
  }
  auto ssl = make_client_ssl(*state_, fd, server_name, nullptr);
  if (!ssl || identity == nullptr) return ssl;
  if (auto applied = detail::apply_identity(*identity->state_, *ssl); !applied) {
    SSL_free(*ssl);
    return fail(applied.error());
  }
  return ssl;
}

Result<TlsContext> TlsContext::create(const Config& config) {
  if (config.min_version == Version::Tls13 && config.max_version == Version::Tls12) {
    return fail(make_error(Cause::InvalidConfig, "min_version is above max_version"));
  }
  if (!config.dangerously_disable_server_verification && config.ca_file.empty() &&
      config.ca_dir.empty()) {
    return fail(make_error(Cause::InvalidConfig,
                           "no ca_file or ca_dir (server verification is always on unless "
                           "dangerously_disable_server_verification is set)"));
  }
  const bool has_key = !config.private_key_file.empty() || config.token_key.has_value();
  if (!config.private_key_file.empty() && config.token_key.has_value()) {
    return fail(make_error(Cause::InvalidConfig, "both private_key_file and token_key are set"));
  }
  if (config.certificate_file.empty() != !has_key) {
    return fail(make_error(Cause::InvalidConfig,
                           "a client certificate needs a private key and vice versa"));
  }
  if (config.token_key && config.token_key->key_label.empty() && config.token_key->key_id.empty()) {
    return fail(make_error(Cause::InvalidConfig, "token_key needs key_label or key_id"));
  }
  ERR_clear_error();
  auto ctx = make_ctx(config);
  if (!ctx) return fail(ctx.error());
  auto state = std::make_shared<ContextState>();
  state->ctx = *ctx;
  state->config = config;
  if (state->config.token_key) {
    // The session stays logged in; the PIN is not needed again.
    std::string& pin = state->config.token_key->pin;
    std::memset(pin.data(), 0, pin.size());
    pin.clear();
  }
  return TlsContext(std::move(state));
}

// --- TlsTransport --------------------------------------------------------------------------------

TlsTransport::TlsTransport() noexcept = default;
TlsTransport::TlsTransport(std::unique_ptr<detail::TransportState> state) noexcept
    : state_(std::move(state)) {}
TlsTransport::TlsTransport(TlsTransport&& other) noexcept = default;
TlsTransport& TlsTransport::operator=(TlsTransport&& other) noexcept = default;
TlsTransport::~TlsTransport() = default;

Result<TlsTransport> TlsTransport::connect(const TlsContext& context, std::string_view host,
                                           std::uint16_t port, Duration timeout) noexcept {
  const Config& config = context.state_->config;
  const Clock& clock = clock_of(config);
  const Instant start = clock.now();
  auto tcp = transport::TcpTransport::connect(host, port, timeout, config.tcp);
  if (!tcp) return fail(tcp_failure(tcp.error()));
  const Duration left = std::max(timeout - (clock.now() - start), Duration::zero());
  // "[::1]" is how a v6 literal reaches TcpTransport; the certificate names the bare address.
  std::string_view name = host;
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  return handshake(context, std::move(*tcp), name, left);
}

Result<TlsTransport> TlsTransport::handshake(const TlsContext& context, transport::TcpTransport tcp,
                                             std::string_view server_name,
                                             Duration timeout) noexcept {
  const std::shared_ptr<ContextState>& ctx = context.state_;
  const Config& config = ctx->config;
  auto st = std::unique_ptr<TransportState>(new (std::nothrow) TransportState);
  if (!st) return fail(make_error(Cause::HandshakeFailed, "out of memory"));
  st->context = ctx;
  st->tcp = std::move(tcp);
  auto ssl = make_client_ssl(*ctx, st->tcp.native_handle(), server_name, st.get());
  if (!ssl) return fail(ssl.error());
  st->ssl = *ssl;

  const Clock& clock = clock_of(config);
  const Instant deadline = deadline_after(clock.now(), timeout);
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_do_handshake(st->ssl);
    if (r == 1) break;
    const int saved_errno = errno;
    const int err = SSL_get_error(st->ssl, r);
    transport::Interest interest;
    if (err == SSL_ERROR_WANT_READ) {
      interest = transport::Interest::Read;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      interest = transport::Interest::Write;
    } else {
      st->fatal = true;
      return fail(handshake_failure(*st, err, saved_errno));
    }
    const Instant now = clock.now();
    if (now >= deadline) {
      return fail(make_error(Cause::Timeout, "the TLS handshake did not finish in time"));
    }
    const auto left = static_cast<std::uint32_t>((deadline - now).count());
    const transport::WaitStatus w = st->tcp.wait(interest, left);
    if (w == transport::WaitStatus::Error) {
      return fail(make_error(Cause::ConnectFailed, "poll failed during the handshake"));
    }
  }
  st->handshake_done = true;
  st->gather.reserve(kRecordSize);
  return TlsTransport(std::move(st));
}

bool TlsTransport::is_open() const noexcept { return state_ && !state_->closed; }
int TlsTransport::native_handle() const noexcept {
  return is_open() ? state_->tcp.native_handle() : -1;
}
std::size_t TlsTransport::pending() const noexcept {
  return is_open() ? static_cast<std::size_t>(SSL_pending(state_->ssl)) : 0;
}

ConnectionInfo TlsTransport::info() const {
  ConnectionInfo out;
  if (!is_open()) return out;
  out.version = SSL_version(state_->ssl) == TLS1_3_VERSION ? Version::Tls13 : Version::Tls12;
  const char* cipher = SSL_get_cipher_name(state_->ssl);
  out.cipher = cipher != nullptr ? cipher : "";
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(state_->ssl, &alpn, &alpn_len);
  if (alpn != nullptr) out.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  return out;
}

const Error& TlsTransport::last_error() const noexcept {
  static const Error none{Cause::IoError, {}, 0, -1, 0, 0};
  return state_ ? state_->last_error : none;
}

namespace {

transport::IoResult alert_failure(TransportState& st) {
  st.fatal = true;
  st.last_error = make_error(Cause::ServerAlert, alert_name(st.alert_received));
  st.last_error.alert = st.alert_received;
  ERR_clear_error();
  return {transport::IoStatus::Error, 0, 0};
}

// A write that found the connection reset may be the server rejecting us: with TLS 1.3 the server
// judges the client certificate after the client's handshake is over (RFC 8446 4.4.2.4), sends
// an alert and closes, and the reset reaches our first write before we read the alert, which is
// still in the socket's receive queue. One read picks it up so the failure can be named.
bool server_sent_alert(TransportState& st) {
  if (st.alert_received < 0) {
    ERR_clear_error();
    unsigned char scratch[256];
    std::size_t n = 0;
    (void)SSL_read_ex(st.ssl, scratch, sizeof scratch, &n);
    ERR_clear_error();
  }
  return st.alert_received >= 0;
}

// Turns a failed SSL_read_ex / SSL_write_ex into an IoResult, remembering why in last_error.
transport::IoResult io_failure(TransportState& st, int r, bool reading) {
  const int saved_errno = errno;
  const int err = SSL_get_error(st.ssl, r);
  transport::IoResult out;
  switch (err) {
    case SSL_ERROR_WANT_READ:
      // Normal for a read; a write that must read first (a TLS 1.3 key update) waits for input.
      if (reading) st.read_wants_write = false;
      else st.write_wants_read = true;
      out.status = transport::IoStatus::WouldBlock;
      return out;
    case SSL_ERROR_WANT_WRITE:
      if (reading) st.read_wants_write = true;
      else st.write_wants_read = false;
      out.status = transport::IoStatus::WouldBlock;
      return out;
    case SSL_ERROR_ZERO_RETURN:
      out.status = transport::IoStatus::Closed;
      return out;
    case SSL_ERROR_SYSCALL:
      if (!reading && (saved_errno == ECONNRESET || saved_errno == EPIPE) &&
          server_sent_alert(st)) {
        return alert_failure(st);
      }
      st.fatal = true;
      if (saved_errno == 0 || saved_errno == ECONNRESET || saved_errno == EPIPE) {
        out.status = transport::IoStatus::Closed;
        out.system_error = saved_errno;
        ERR_clear_error();
        return out;
      }
      st.last_error = make_error(Cause::IoError, std::strerror(saved_errno));
      st.last_error.system_error = saved_errno;
      out.status = transport::IoStatus::Error;
      out.system_error = saved_errno;
      ERR_clear_error();
      return out;
    default:
      if (st.alert_received >= 0) return alert_failure(st);
      st.fatal = true;
      st.last_error = make_error(Cause::IoError, openssl_reason());
      out.status = transport::IoStatus::Error;
      return out;
  }
}

}  // namespace

transport::IoResult TlsTransport::send(transport::ConstBuffer data) noexcept {
  if (!is_open() || state_->fatal) return {transport::IoStatus::Closed, 0, 0};
  if (data.empty()) return {};
  ERR_clear_error();
  errno = 0;
  std::size_t written = 0;
  const int r = SSL_write_ex(state_->ssl, data.data(), data.size(), &written);
  if (r == 1) {
    state_->write_wants_read = false;
    return {transport::IoStatus::Ok, written, 0};
  }
  return io_failure(*state_, r, false);
}

transport::IoResult TlsTransport::recv(std::span<std::byte> buffer) noexcept {
  if (!is_open() || state_->fatal) return {transport::IoStatus::Closed, 0, 0};
  if (buffer.empty()) return {};
  ERR_clear_error();
  errno = 0;
  std::size_t got = 0;
  const int r = SSL_read_ex(state_->ssl, buffer.data(), buffer.size(), &got);
  if (r == 1) {
    state_->read_wants_write = false;
    return {transport::IoStatus::Ok, got, 0};
  }
  return io_failure(*state_, r, true);
}

transport::IoResult TlsTransport::writev(std::span<const transport::ConstBuffer> buffers) noexcept {
  std::size_t non_empty = 0;
  const transport::ConstBuffer* only = nullptr;
  for (const auto& b : buffers) {
    if (!b.empty()) {
      ++non_empty;
      only = &b;
    }
  }
  if (non_empty == 0) return {};
  if (non_empty == 1) return send(*only);
  if (!is_open()) return {transport::IoStatus::Closed, 0, 0};
  // One record for header + payload (and for several small packets). A retry after WouldBlock
  // gathers the same leading bytes again, which is what OpenSSL's write retry requires.
  std::vector<unsigned char>& g = state_->gather;
  g.clear();
  for (const auto& b : buffers) {
    const std::size_t room = kRecordSize - g.size();
    const std::size_t n = b.size() < room ? b.size() : room;
    const auto* p = reinterpret_cast<const unsigned char*>(b.data());
    g.insert(g.end(), p, p + n);
    if (g.size() == kRecordSize) break;
  }
  return send(std::as_bytes(std::span<const unsigned char>(g)));
}

transport::WaitStatus TlsTransport::wait(transport::Interest interest,
                                         std::uint32_t timeout_ms) noexcept {
  if (!is_open()) return transport::WaitStatus::Error;
  const bool want_read = interest != transport::Interest::Write;
  const bool want_write = interest != transport::Interest::Read;
  // Decrypted bytes already inside OpenSSL never show up on the socket.
  if (want_read && SSL_pending(state_->ssl) > 0) return transport::WaitStatus::Ready;
  if (state_->fatal) return transport::WaitStatus::Ready;  // the next call reports it
  bool poll_read = false;
  bool poll_write = false;
  if (want_read) (state_->read_wants_write ? poll_write : poll_read) = true;
  if (want_write) (state_->write_wants_read ? poll_read : poll_write) = true;
  const transport::Interest sock = poll_read && poll_write ? transport::Interest::ReadWrite
                                   : poll_read             ? transport::Interest::Read
                                                           : transport::Interest::Write;
  return state_->tcp.wait(sock, timeout_ms);
}

void TlsTransport::close() noexcept {
  if (state_) state_->shut();
}

}  // namespace edgekit::tls
