#pragma once
/// \file
/// TLS over TCP (OpenSSL 3) behind the `Transport` interface: TLS 1.2 and 1.3, the server's
/// certificate verified against a CA bundle with a host-name (or IP address) check, SNI, ALPN,
/// and a client certificate whose private key is either a PEM file or held in a PKCS#11 token
/// (any module, through edgekit's pkcs11 client). A token-held key never leaves the token: each
/// handshake signature is a C_Sign call in the token.
///
///   tls::Config config;
///   config.ca_file = "/etc/device/ca.pem";
///   config.certificate_file = "/etc/device/device.crt";
///   config.token_key = tls::TokenKey{"/usr/lib/edgekit-pkcs11.so", "device", "1234", "tls", {}};
///   auto ctx = tls::TlsContext::create(config);           // loads CA, certificate, key once
///   auto t = tls::TlsTransport::connect(*ctx, "broker.example", 8883, std::chrono::seconds{10});
///   if (!t) log(t.error().message());                     // e.g. "unknown CA: ..."
///   mqtt::Client client(*t, ...);
///
/// Supported keys: EC P-256 and P-384, from a PEM file or a token (ECDSA done by C_Sign with
/// CKM_ECDSA); RSA from a PEM file only (a token-held RSA key is refused with
/// Cause::TokenKeyUnsupported).
///
/// Errors are `tls::Error`: a `Cause` and a message naming it. The library never throws; it
/// builds with -fno-exceptions -fno-rtti.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "edgekit/core/clock.hpp"
#include "edgekit/core/result.hpp"
#include "edgekit/transport/tcp.hpp"
#include "edgekit/transport/transport.hpp"

// OpenSSL's SSL, X509 and EVP_PKEY (typedefs of these structs in <openssl/types.h>), named
// without its headers.
struct ssl_st;
struct x509_st;
struct evp_pkey_st;

namespace edgekit::pkcs11 {
class Session;  // edgekit/pkcs11/client.hpp
}

namespace edgekit::tls {

/// Why a TLS call failed: the tls library's error enum. Every cause is reported with a message
/// that names it (`Error::message`), and is wired into `std::error_code` (`tls_category()`;
/// value 0 is left out, since a `std::error_code` of 0 means "no error").
///
/// The agent sees TLS failures through `TlsTransportFactory`, in `mqtt::Errc` terms (see there):
/// HostNotFound → mqtt::Errc::HostNotFound, Timeout → mqtt::Errc::Timeout, every other cause →
/// mqtt::Errc::ConnectFailed (permanent for certificate and token causes).
enum class Cause : std::uint8_t {
  // --- configuration (TlsContext::create) ---
  InvalidConfig = 1,       ///< contradictory or incomplete options (detail says which)
  CaLoadFailed,            ///< the CA file or directory cannot be read or holds no certificate
  CertificateLoadFailed,   ///< the client certificate chain file cannot be read or parsed
  PrivateKeyLoadFailed,    ///< the PEM private key cannot be read or parsed (or wrong passphrase)
  KeyCertificateMismatch,  ///< the private key does not belong to the client certificate
  // --- the PKCS#11 token (TlsContext::create; TokenError also during a handshake) ---
  TokenUnavailable,     ///< the module cannot be loaded or no token has the configured label
  TokenLoginFailed,     ///< C_Login failed: wrong PIN (CKR_PIN_INCORRECT), PIN locked
                        ///< (CKR_PIN_LOCKED), ...; `ck_rv` holds the code. Never retried by us.
  TokenKeyNotFound,     ///< no private key with the configured label/id (e.g. it was removed)
  TokenKeyUnsupported,  ///< the token's key is not an EC P-256/P-384 key
  TokenError,           ///< another PKCS#11 call failed (e.g. C_Sign during the handshake with
                        ///< CKR_KEY_HANDLE_INVALID when the key was destroyed); `ck_rv` is set
  // --- TCP (TlsTransport::connect) ---
  HostNotFound,       ///< name resolution failed
  ConnectionRefused,  ///< the server refused the TCP connection
  ConnectFailed,      ///< another TCP failure (`system_error` holds errno)
  Timeout,            ///< the TCP connect and handshake did not finish within the timeout
  // --- the server's certificate (TlsTransport::connect) ---
  UnknownCa,               ///< the server's chain does not lead to a trusted CA
                           ///< (X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, self-signed, ...)
  CertificateExpired,      ///< a certificate in the server's chain has expired
  CertificateNotYetValid,  ///< a certificate in the server's chain is not valid yet
  CertificateRevoked,      ///< a certificate in the server's chain is revoked
  HostNameMismatch,        ///< the server's certificate is not for the host name / IP address
  CertificateInvalid,      ///< any other verification failure (`verify_result` holds the code)
  // --- the handshake and the stream ---
  ServerAlert,       ///< the server sent a fatal alert (`alert` holds its number; the message
                     ///< names it, e.g. "certificate expired", "certificate revoked",
                     ///< "certificate required", "unknown CA"). With TLS 1.3 a server that
                     ///< rejects the client certificate does so after the client's side of the
                     ///< handshake finished; see `TlsTransport::connect`.
  HandshakeFailed,   ///< another handshake failure (no common version, cipher or ALPN protocol;
                     ///< the message holds OpenSSL's reason)
  ConnectionClosed,  ///< the server closed the connection during the handshake, without an alert
  IoError,           ///< a socket or TLS failure on an established stream
};

/// A short static name of `cause`, e.g. "unknown CA", "host-name mismatch".
[[nodiscard]] const char* to_string(Cause cause) noexcept;

/// The name of a TLS alert description (RFC 8446 6), e.g. 48 → "unknown CA", 116 →
/// "certificate required"; "alert <n>" for a number without a name.
[[nodiscard]] std::string alert_name(int alert);

/// The `std::error_category` of `Cause` (name "edgekit.tls", messages from `to_string`).
/// Thread safe. The detail of a failure (`Error::detail`, alert, CKR code) is not in it.
[[nodiscard]] const std::error_category& tls_category() noexcept;

/// Wires `Cause` into `std::error_code`: `std::error_code ec = error.cause;`.
[[nodiscard]] inline std::error_code make_error_code(Cause cause) noexcept {
  return {static_cast<int>(cause), tls_category()};
}

/// A TLS failure.
struct Error {
  Cause cause = Cause::HandshakeFailed;
  std::string detail;        ///< what OpenSSL, the token or the OS said
  long verify_result = 0;    ///< X509_V_* code for the certificate causes, else 0
  int alert = -1;            ///< TLS alert description for ServerAlert, else -1
  unsigned long ck_rv = 0;   ///< CKR_* code for the token causes, else 0
  int system_error = 0;      ///< errno for ConnectFailed / IoError, else 0

  /// "<cause>: <detail>", e.g. "server alert: certificate revoked" or
  /// "token login failed: C_Login: CKR_PIN_INCORRECT (0xa0)".
  [[nodiscard]] std::string message() const;
};

template <class T>
using Result = edgekit::Result<T, Error>;

enum class Version : std::uint8_t { Tls12, Tls13 };

/// A client private key held in a PKCS#11 token. The key is found by label and/or id (at least
/// one); it must be an EC P-256 or P-384 key with CKA_SIGN and a matching public key object
/// (same label/id) or an EC_POINT on the private key, and the token must allow CKM_ECDSA.
struct TokenKey {
  std::string module_path;  ///< the PKCS#11 module (e.g. libedgekit-pkcs11.so, libsofthsm2.so)
  std::string token_label;  ///< the token's label (blank padding ignored)
  std::string pin;          ///< the user PIN; kept in memory only for C_Login at create time
  std::string key_label;    ///< CKA_LABEL of the private key (empty: match by id only)
  std::vector<std::uint8_t> key_id;  ///< CKA_ID of the private key (empty: match by label only)
};

/// How to make TLS connections. Paths are read by `TlsContext::create` only.
struct Config {
  Version min_version = Version::Tls12;
  Version max_version = Version::Tls13;
  /// Trusted CAs for the server's certificate: a PEM bundle and/or a hashed directory
  /// (c_rehash). At least one is required unless verification is disabled.
  std::string ca_file;
  std::string ca_dir;
  /// Turns off every check of the server's certificate (chain and host name). Anyone on the
  /// path can then impersonate the server: for lab benches only. The name is loud on purpose.
  bool dangerously_disable_server_verification = false;
  /// The name the server's certificate must carry and the SNI sent; empty means the host given
  /// to `connect`. An IP address literal is checked against the certificate's IP SANs and is not
  /// sent as SNI (RFC 6066 section 3).
  std::string server_name;
  /// ALPN protocols offered, in order (e.g. "x-amzn-mqtt-ca" for AWS IoT on port 443); each 1 to
  /// 255 bytes (InvalidConfig otherwise). A server that knows none of them fails the handshake
  /// with the alert "no application protocol"; a server without ALPN ignores the offer
  /// (`TlsTransport::info().alpn` is then empty).
  std::vector<std::string> alpn;
  /// The client certificate and its chain (leaf first), PEM. Empty: no client certificate.
  std::string certificate_file;
  /// The client private key as a PEM file (PKCS#8 or traditional), optionally encrypted.
  std::string private_key_file;
  std::string private_key_passphrase;
  /// Or: the client private key held in a PKCS#11 token. Exactly one of private_key_file and
  /// token_key goes with certificate_file.
  std::optional<TokenKey> token_key;
  /// OpenSSL cipher lists; empty keeps OpenSSL's defaults.
  std::string cipher_list_tls12;
  std::string ciphersuites_tls13;
  /// TCP options of the underlying socket (no_delay, buffer sizes, clock).
  transport::TcpOptions tcp;
};

/// What a TLS connection ended up with.
struct ConnectionInfo {
  Version version = Version::Tls13;
  std::string cipher;  ///< e.g. "TLS_AES_256_GCM_SHA384"
  std::string alpn;    ///< the protocol the server selected, empty when none
};

namespace detail {
struct ContextState;
struct TransportState;
struct IdentityState;
}  // namespace detail

/// One client's certificate (with its chain) and private key, held in memory, for a program that
/// makes many connections, each as a different client (the fleet simulator: thousands of
/// devices), from one `TlsContext` that holds what they share (CAs, server verification,
/// versions, ciphers). `TlsContext::new_client_ssl` sets it on a connection's SSL, which then
/// takes references on the certificate and key (nothing is copied), so one identity may serve
/// any number of connections, one after another or at once.
///
/// Memory: a P-256 identity is 5 to 7.5 KB of heap (OpenSSL's X509 and EVP_PKEY; the more when
/// read from PEM, where OpenSSL keeps a decoded copy of the key beside its own). The private key
/// never leaves memory: nothing here writes it anywhere, and OpenSSL wipes it when the last
/// reference (this object or a connection's SSL) is freed. A PEM buffer the caller passes is
/// read, not kept: wiping it afterwards (OPENSSL_cleanse) is the caller's business.
/// Ownership: move-only; a moved-from identity is empty (`valid()` false, refused by
/// `new_client_ssl`).
/// Thread safety: immutable once made; any number of threads may use one identity at once —
/// except an identity `from_token`, whose handshakes use the caller's PKCS#11 session (see there).
class ClientIdentity {
 public:
  /// Reads the certificate chain (PEM: the leaf first, then its intermediates, if any) and the
  /// private key (PEM: PKCS#8 or traditional, encrypted with `passphrase` or not), and checks
  /// that they belong together.
  /// Errors: CertificateLoadFailed (no certificate in the PEM, or a block that does not parse),
  /// PrivateKeyLoadFailed (no key, or a wrong passphrase), KeyCertificateMismatch.
  [[nodiscard]] static Result<ClientIdentity> from_pem(std::string_view certificate_chain_pem,
                                                       std::string_view private_key_pem,
                                                       std::string_view passphrase = {});
  /// As `from_pem`, from two files (read once; their bytes are wiped from memory after parsing).
  /// Errors: as `from_pem`, the file that cannot be read named in the detail.
  [[nodiscard]] static Result<ClientIdentity> from_files(const std::string& certificate_chain_file,
                                                         const std::string& private_key_file,
                                                         std::string_view passphrase = {});
  /// Takes references on OpenSSL objects the caller made (e.g. a key generated in memory and the
  /// certificate a CA signed for it); the caller keeps its own references and frees them as
  /// usual. `chain` is the intermediates after the leaf, possibly none.
  /// Errors: InvalidConfig (a null certificate or key), KeyCertificateMismatch.
  [[nodiscard]] static Result<ClientIdentity> from_openssl(x509_st* certificate,
                                                           evp_pkey_st* private_key,
                                                           std::span<x509_st* const> chain = {});
  /// A key that stays in a PKCS#11 token, through a session the caller opened and logged in as
  /// the user: one module and one token holding the keys of many identities (a gateway's
  /// devices, the fleet simulator's). The private key is the CKO_PRIVATE_KEY labelled
  /// `key_label` (EC P-256/P-384, as for `TokenKey`; each handshake signs with one C_Sign
  /// there); the certificate is `certificate_der`, or when that is empty the token's
  /// CKO_CERTIFICATE under the same label (what provisioning::Provisioner stores).
  /// Borrows `session`: it must stay open and logged in while this identity, or any connection
  /// made with it, lives. Handshakes call C_Sign on it from the thread that drives them, and a
  /// PKCS#11 session is single-threaded: the caller keeps every use of the session (this
  /// identity's handshakes included) on one thread, or serialises them.
  /// Errors: TokenKeyNotFound (no such key, or no certificate under the label),
  /// TokenKeyUnsupported (not EC P-256/P-384), TokenError (another PKCS#11 call failed),
  /// CertificateLoadFailed (the certificate does not parse), KeyCertificateMismatch.
  [[nodiscard]] static Result<ClientIdentity> from_token(
      pkcs11::Session& session, std::string_view key_label,
      std::span<const std::uint8_t> certificate_der = {});

  ClientIdentity() noexcept;
  ClientIdentity(ClientIdentity&&) noexcept;
  ClientIdentity& operator=(ClientIdentity&&) noexcept;
  ClientIdentity(const ClientIdentity&) = delete;
  ClientIdentity& operator=(const ClientIdentity&) = delete;
  ~ClientIdentity();

  /// False for a default-constructed or moved-from identity.
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }
  /// The leaf certificate (still owned by this identity; take a reference with X509_up_ref to
  /// keep it longer). Null when not valid.
  [[nodiscard]] x509_st* certificate() const noexcept;
  /// The leaf's subject common name (what Mosquitto's use_identity_as_username and fleetd's
  /// JITP take as the client's name); empty when there is none.
  [[nodiscard]] std::string common_name() const;

 private:
  friend class TlsContext;
  explicit ClientIdentity(std::unique_ptr<detail::IdentityState> state) noexcept;
  static Result<ClientIdentity> checked(std::unique_ptr<detail::IdentityState> state);
  std::unique_ptr<detail::IdentityState> state_;
};

/// Loaded configuration: an OpenSSL SSL_CTX with the CAs, the client certificate and its key
/// (for a token key: a logged-in session to the token). Make one and reuse it for every
/// connection: loading a CA bundle or logging in to a token is the slow part.
/// Ownership: movable, not copyable. Connections made from it keep what they need alive, so the
/// context may be destroyed before them.
/// Thread safety: `connect` calls on one context may run on several threads at once (OpenSSL's
/// SSL_CTX is shared read-only; signatures in the token are serialised by a mutex).
class TlsContext {
 public:
  /// Checks `config`, loads the CAs, the certificate chain and the key, and for a token key
  /// loads the module, finds the token, logs in and finds the key.
  /// Errors: InvalidConfig (min_version above max_version; no CA and verification not disabled;
  /// a certificate without a key or a key without a certificate; both a key file and a token
  /// key; a token key with neither label nor id); CaLoadFailed; CertificateLoadFailed;
  /// PrivateKeyLoadFailed; KeyCertificateMismatch; TokenUnavailable; TokenLoginFailed (the
  /// login is tried exactly once, so a wrong PIN costs one try of the token's retry counter);
  /// TokenKeyNotFound; TokenKeyUnsupported; TokenError.
  [[nodiscard]] static Result<TlsContext> create(const Config& config);

  TlsContext(TlsContext&&) noexcept;
  TlsContext& operator=(TlsContext&&) noexcept;
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  ~TlsContext();

  /// The configuration this context was made from (the PIN is cleared).
  [[nodiscard]] const Config& config() const noexcept;

  /// For an event loop that runs the TLS handshake and stream itself on its own non-blocking
  /// sockets (edgekit::mqtt_asio): a new client-side OpenSSL `SSL` over the connected socket
  /// `fd`, set up exactly as `TlsTransport` sets up its own: this context's CAs, client
  /// certificate and key (a token-held key signs in the token), the host-name (or IP address)
  /// check and SNI for `config().server_name`, else `server_name`, a socket BIO that sends with
  /// MSG_NOSIGNAL (no SIGPIPE), connect state. The handshake has not started.
  /// Ownership: the caller frees it with SSL_free; `fd` stays the caller's and must outlive it.
  /// The SSL holds a reference on the context's SSL_CTX (and so on a token session), so it may
  /// outlive this TlsContext. Alerts are not recorded (`Error::alert` is for TlsTransport only).
  /// `identity` (may be null) replaces this context's client certificate and key, if any, on
  /// this SSL only: the SSL takes references on its certificate, chain and key, so `identity`
  /// need only live until this call returns.
  /// Errors: InvalidConfig (no usable server name to check, SNI refused; an empty `identity`);
  /// HandshakeFailed (out of memory in OpenSSL); for `identity`: CertificateLoadFailed or
  /// PrivateKeyLoadFailed (OpenSSL refused it, e.g. a key weaker than the context's security
  /// level: "ee key too small"), KeyCertificateMismatch.
  /// Thread safety: as `TlsTransport::connect`.
  [[nodiscard]] Result<ssl_st*> new_client_ssl(int fd, std::string_view server_name,
                                               const ClientIdentity* identity = nullptr) const;

 private:
  friend class TlsTransport;
  explicit TlsContext(std::shared_ptr<detail::ContextState> state) noexcept;
  std::shared_ptr<detail::ContextState> state_;
};

/// A TLS stream over TCP. Owns its socket and SSL object (RAII); the destructor closes it
/// (sending close_notify, best effort). Movable, not copyable; a moved-from transport is closed.
/// Thread safety: one thread at a time, per the Transport contract.
class TlsTransport final : public transport::Transport {
 public:
  /// Connects TCP to `host`:`port`, then runs the TLS handshake, both within `timeout` in
  /// total (a negative timeout counts as 0). The server's certificate is checked against the context's CAs and against the
  /// context's `server_name`, or `host` when that is empty.
  /// TLS 1.3 note: the server judges the client certificate after the client has sent its
  /// Finished message, so a rejection (expired, revoked, unknown CA) arrives as an alert on the
  /// first read: `recv` then returns Error and `last_error()` says ServerAlert with the alert's
  /// name. With TLS 1.2 the same rejection fails `connect` itself.
  /// Errors: HostNotFound, ConnectionRefused, ConnectFailed, Timeout; UnknownCa,
  /// CertificateExpired, CertificateNotYetValid, CertificateRevoked, HostNameMismatch,
  /// CertificateInvalid; ServerAlert; HandshakeFailed; ConnectionClosed; TokenError (a signature
  /// in the token failed, e.g. the key was destroyed after the context was made).
  [[nodiscard]] static Result<TlsTransport> connect(const TlsContext& context,
                                                    std::string_view host, std::uint16_t port,
                                                    Duration timeout) noexcept;

  /// Runs the TLS handshake over an already connected TCP stream (taken over), within
  /// `timeout`. `server_name` as for `connect`'s host. Errors as for `connect` without the TCP
  /// ones.
  [[nodiscard]] static Result<TlsTransport> handshake(const TlsContext& context,
                                                      transport::TcpTransport tcp,
                                                      std::string_view server_name,
                                                      Duration timeout) noexcept;

  /// A closed transport (every call returns Closed).
  TlsTransport() noexcept;
  TlsTransport(TlsTransport&& other) noexcept;
  TlsTransport& operator=(TlsTransport&& other) noexcept;
  TlsTransport(const TlsTransport&) = delete;
  TlsTransport& operator=(const TlsTransport&) = delete;
  ~TlsTransport() override;

  /// Encrypts and sends from `data` (not kept). Ok (possibly partial: at most one TLS record per
  /// call), WouldBlock (the socket is full, or TLS needs to read first; call again with the same
  /// bytes after `wait`), Closed (closed locally, or the peer sent close_notify / reset),
  /// Error (`last_error()` says why; `system_error` holds errno when there is one).
  transport::IoResult send(transport::ConstBuffer data) noexcept override;
  /// Decrypts into `buffer`. Ok with ≥ 1 byte; WouldBlock (no complete record yet); Closed
  /// (close_notify, end of stream or reset); Error (an alert from the server or a protocol
  /// failure: `last_error()` names it, e.g. ServerAlert "certificate revoked").
  transport::IoResult recv(std::span<std::byte> buffer) noexcept override;
  /// Gathers up to 16 KiB of `buffers` into one TLS record (one SSL_write), so that an MQTT
  /// header and its payload do not become two records. Results as for `send`.
  transport::IoResult writev(std::span<const transport::ConstBuffer> buffers) noexcept override;
  /// Ready at once for Read when OpenSSL already holds decrypted bytes (SSL_pending); otherwise
  /// polls the socket, for the direction TLS actually needs (a write that wants to read waits
  /// for readability and vice versa). Error when closed.
  transport::WaitStatus wait(transport::Interest interest, std::uint32_t timeout_ms) noexcept override;
  /// Sends close_notify (best effort, never blocks) and closes the socket. Idempotent.
  void close() noexcept override;

  [[nodiscard]] bool is_open() const noexcept;
  /// The socket, still owned by this transport (for an event loop's poll). Note that readable
  /// bytes may also wait inside OpenSSL: use `wait` or `pending()` as well.
  [[nodiscard]] int native_handle() const noexcept;
  /// Decrypted bytes OpenSSL holds that `recv` will return without reading the socket.
  [[nodiscard]] std::size_t pending() const noexcept;
  /// The negotiated version, cipher and ALPN protocol.
  [[nodiscard]] ConnectionInfo info() const;
  /// Why the last send/recv/writev returned Error (Cause::IoError with no detail if none did).
  [[nodiscard]] const Error& last_error() const noexcept;

 private:
  explicit TlsTransport(std::unique_ptr<detail::TransportState> state) noexcept;
  std::unique_ptr<detail::TransportState> state_;
};

}  // namespace edgekit::tls

template <>
struct std::is_error_code_enum<edgekit::tls::Cause> : std::true_type {};
