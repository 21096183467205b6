#pragma once
/// \file
/// `Provisioner`: the device side of fleet provisioning by claim (aws-iot-protocols.md 4), run
/// to the end over a `Channel` (channel.hpp: the blocking MQTT client or the agent), with every
/// key in a PKCS#11 token and a crash-safe `StateStore` (state.hpp).
///
/// Boot sequence of a device:
/// \code
///   Provisioner p(session, store, wall_clock, sleeper, random, options);
///   auto id = p.provisioned();                 // no network: state + token only
///   if (id && *id) { connect_with(options.device_label); return; }   // never the claim again
///   // connect with the claim identity (TLS key and certificate under options.claim_label),
///   // make a ClientChannel or AgentChannel over that connection, then:
///   auto r = p.run(channel);                   // a finished Identity, or a named error
///   // disconnect the claim connection; reconnect with options.device_label
/// \endcode
///
/// The flows (`Method`):
/// - CreateCertificateFromCsr (the default): a key pair is generated inside the token under the
///   device label, a CSR is signed inside the token, the certificate received is checked (its
///   key is ours, its id is the SHA-256 of its DER) and stored beside the key.
/// - CreateKeysAndCertificate: the service makes the key; the private key received is imported
///   into the token (sensitive, not extractable) and every copy this library can reach is wiped:
///   the reply buffer, the unescaped copy, the MQTT driver's receive buffer (channel.hpp says
///   what is out of reach).
/// - then RegisterThing with the template parameters; the reply's thingName and
///   deviceConfiguration are returned.
/// Before each request the channel subscribes to its accepted and rejected topics; a request
/// that times out, or is rejected as Throttled or ServiceFailure, is sent again after a backoff
/// with full jitter (`Options::attempts`, `Options::backoff`).
///
/// Resume (after a power loss at any step), decided by `run` from the stored state and what the
/// token holds under the device label:
/// - state Registered and the key and certificate present → that identity, no request at all;
/// - state CertificateReceived, key and certificate present and the ownership token valid for
///   at least `Options::token_margin_seconds` more → RegisterThing again with the stored token;
///   should the service reject that token (InvalidCertificateOwnershipToken: already used,
///   expired early), the device identity is destroyed and the whole flow starts over, once
///   (other rejections, e.g. InvalidParameters, are returned: a new certificate would meet
///   them too);
/// - anything else (no state, Started, an expired token, a state that the token contradicts, a
///   corrupted state) → every object under the device label is destroyed (a key generated
///   before the certificate arrived is never reused: the service may have issued a certificate
///   for it that we never saw) and the flow starts from the beginning.
/// So the token never holds more than one device identity (one key pair and one certificate
/// under the device label). A certificate the service issued for an abandoned attempt stays
/// PENDING_ACTIVATION there and is deleted by the service after an hour (4.2).
///
/// Errors: every `Errc` the channel returns (Timeout after the last attempt, NotConnected,
/// SubscribeFailed, PublishFailed, ReplyTooLarge); the rejection values (InvalidParameters,
/// InvalidCertificateOwnershipToken, AccessDenied, ...: `last_rejection()` has the document);
/// MalformedReply; CertificateMismatch; TokenFailed; CsrFailed; StateStoreFailed;
/// InvalidArgument (options: template name, equal labels, too many parameters).
/// `detail()` has words for a person about the last failure.
///
/// Thread safety: one thread at a time (the session's rule). Memory: hosted; buffers are
/// allocated once in the constructor.

#include <cstdint>
#include <edgekit/core/backoff.hpp>
#include <edgekit/pkcs11/client.hpp>
#include <edgekit/pki/keys.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "edgekit/provisioning/channel.hpp"
#include "edgekit/provisioning/documents.hpp"
#include "edgekit/provisioning/state.hpp"

namespace edgekit::provisioning {

/// How the device gets its certificate.
enum class Method : std::uint8_t { CreateCertificateFromCsr, CreateKeysAndCertificate };

/// Waits between retries (injected: tests do not sleep). Thread safety: the caller's thread.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual void sleep(Duration duration) noexcept = 0;
};

/// `Sleeper` over std::this_thread::sleep_for (hosted builds).
class ThreadSleeper final : public Sleeper {
 public:
  void sleep(Duration duration) noexcept override;
};

/// Settings of a `Provisioner`.
struct Options {
  Method method = Method::CreateCertificateFromCsr;
  Format format = Format::Json;
  /// The provisioning template (1-36 bytes of `[a-zA-Z0-9_-]`).
  std::string template_name;
  /// RegisterThing `parameters` (e.g. {"SerialNumber", "..."}); at most kMaxParameters.
  std::vector<std::pair<std::string, std::string>> parameters;
  /// Token label of the device identity (key pair and certificate) this flow creates.
  std::string device_label = "device";
  /// Token label of the claim identity the caller connects with; only checked to differ from
  /// `device_label` (the provisioner never touches it).
  std::string claim_label = "claim";
  /// CreateCertificateFromCsr: the key generated in the token and the CSR's subject ("/CN=...").
  pki::KeyAlgorithm key_algorithm = pki::KeyAlgorithm::EcP256;
  std::string csr_subject = "/CN=edgekit-device";
  /// How long to wait for each reply, and how many times to send a request in all.
  Duration reply_timeout{10'000};
  std::uint32_t attempts = 3;
  backoff::Policy backoff{Duration{1'000}, Duration{30'000}};
  /// SUBSCRIBE / UNSUBSCRIBE acknowledgement timeout.
  Duration subscribe_timeout{10'000};
  /// The ownership token's life (AWS: 1 hour, 4.2), and how much of it must be left for a
  /// resumed RegisterThing to use it.
  std::int64_t token_lifetime_seconds = 3600;
  std::int64_t token_margin_seconds = 60;
  /// The largest reply accepted (AWS's embedded demos use 4 KB for the keys flow; RSA keys and
  /// a certificate chain take more in JSON).
  std::size_t reply_buffer_size = 16 * 1024;
};

/// What provisioning produced.
struct Identity {
  std::string thing_name;
  std::string certificate_id;
  std::string device_label;  ///< where the key pair and certificate are in the token
  /// deviceConfiguration of the RegisterThing reply (empty when resumed from the state: it is
  /// not persisted).
  std::vector<std::pair<std::string, std::string>> device_configuration;
  /// True when nothing was requested this time (state Registered at start).
  bool already_provisioned = false;
  /// True when an interrupted flow was resumed (RegisterThing with the stored token).
  bool resumed = false;
};

/// The last rejection document received (owned copies).
struct Rejection {
  Api api = Api::RegisterThing;
  std::int64_t status_code = 0;
  std::string error_code;
  std::string error_message;
};

/// See the file comment.
class Provisioner {
 public:
  /// `session`: read/write, logged in as the user (private objects are only visible then).
  /// Everything is borrowed and must outlive the provisioner.
  Provisioner(pkcs11::Session& session, StateStore& store, const WallClock& wall_clock,
              Sleeper& sleeper, backoff::RandomSource& random, Options options);
  ~Provisioner();
  Provisioner(const Provisioner&) = delete;
  Provisioner& operator=(const Provisioner&) = delete;

  /// Whether the device has its identity already (state Registered and the key and certificate
  /// under the device label in the token), without any request: nullopt when not.
  /// Errors: StateStoreFailed, TokenFailed.
  [[nodiscard]] Result<std::optional<Identity>, Errc> provisioned();

  /// Runs, resumes or restarts provisioning over `channel` (connected with the claim identity)
  /// until the device identity is final. See the file comment for the steps, resume rules and
  /// errors. After an error the state and token are left so that the next `run` resumes.
  [[nodiscard]] Result<Identity, Errc> run(Channel& channel);

  /// The last rejection received (valid after a rejection error).
  [[nodiscard]] const Rejection& last_rejection() const noexcept { return rejection_; }
  /// Words for a person about the last failure ("" after success).
  [[nodiscard]] const std::string& detail() const noexcept { return detail_; }

  /// Objects under the device label in the token (for tests and diagnostics: a provisioned
  /// device has exactly three: private key, public key, certificate).
  [[nodiscard]] Result<std::size_t, Errc> device_object_count();

 private:
  struct Certificate;  // the certificate step's outcome (sources)
  Result<Identity, Errc> run_once(Channel& channel, bool& restart);
  Result<void, Errc> certificate_step(Channel& channel, State& state);
  Result<Identity, Errc> register_step(Channel& channel, State& state, bool resumed);
  Result<Reply, Errc> exchange(Channel& channel, Api api, std::size_t request_size);
  Result<void, Errc> destroy_device_objects();
  pkcs11::ObjectQuery device_query(std::optional<CK_OBJECT_CLASS> object_class = {}) const;
  Result<bool, Errc> device_identity_present();
  Result<void, Errc> save(const State& state);
  Errc failed(Errc e, std::string detail);
  void wipe_buffers() noexcept;

  pkcs11::Session* session_;
  StateStore* store_;
  const WallClock* wall_;
  Sleeper* sleeper_;
  backoff::RandomSource* random_;
  Options options_;
  std::vector<std::uint8_t> request_;
  std::vector<std::uint8_t> reply_;
  std::vector<char> scratch_;
  Rejection rejection_;
  std::string detail_;
};

}  // namespace edgekit::provisioning
