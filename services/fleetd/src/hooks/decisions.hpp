#pragma once
/// \file
/// The broker's questions and fleetd's answers — the decision interface, in the shape of EMQX's
/// HTTP authentication and authorization hooks so that a clustered broker can ask fleetd without
/// our Mosquitto plugin (docs/fleetd.md, "Decision interface"):
///
///   authenticate: {clientid, username, peerhost, certificate_id, certificate_pem?,
///                  certificate_chain?}
///     -> {result: "allow"|"deny", reason, is_superuser: false, acl: [rules], client_attrs:
///         {thing_name, certificate_id}}
///   authorize:    {clientid, certificate_id, action: "publish"|"subscribe"|"receive", topic}
///     -> {result: "allow"|"deny", reason}
///
/// A device is known by its certificate (the SHA-256 of its DER, AWS's certificateId; the
/// broker verified the chain in the TLS handshake). It may connect when the certificate is
/// registered and ACTIVE, within its validity, issued by no CA or by an ACTIVE registered one,
/// and its policy (the attached policies, or the default thing policy when none is attached)
/// allows iot:Connect for the client id. The rules returned are that policy resolved for this
/// connection; the broker applies them to every message (and fleetd answers `authorize` with the
/// same rules for brokers that ask per message). An unknown certificate sent with its PEM may be
/// registered just in time (provisioning/jit.hpp).

#include <functional>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "provisioning/jit.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd {

struct AuthRequest {
  std::string client_id;
  std::string username;  ///< ignored with certificate authentication (AWS SDKs put metrics here)
  std::string peer;
  std::string certificate_id;  ///< empty: no client certificate
  /// The client certificate, PEM (optional). Needed only when the certificate is not
  /// registered: fleetd then checks whether a registered CA with auto-registration issued it
  /// (JITR / JITP, provisioning/jit.hpp). Must be the certificate `certificate_id` names.
  std::string certificate_pem;
  /// Certificates the client sent after its own (intermediates), PEM, optional: used to reach
  /// a registered CA that did not issue the certificate directly. (Mosquitto 2.0's plugin API
  /// gives the plugin the client certificate only, so edgekit's plugin never sends it.)
  std::string certificate_chain;
};

struct AuthDecision {
  bool allow = false;
  std::string reason;  ///< why not (or "ok"), for the broker's log and fleetd's
  std::vector<policy::Rule> rules;
  std::string thing_name;
  std::string certificate_id;
};

/// Receives a certificate registration event once its transaction has committed, on the thread
/// that called `authenticate` (fleetd's io thread: the broker link may be used from there).
using RegistrationSink = std::function<void(const provisioning::RegistrationEvent&)>;

/// Decides within one transaction. A certificate that is not registered, presented with its PEM
/// (`request.certificate_pem`), is registered just in time when a registered CA with
/// auto-registration issued it (provisioning/jit.hpp) in the same transaction: JITR leaves it
/// PENDING_ACTIVATION (denied), JITP provisions it with the CA's template and the decision is
/// then made on the result (allowed when the template activated it and its policy lets the
/// client id connect). A JITP run that the template rejects is rolled back whole and denied
/// with the template's reason. `events` (may be empty) gets the registration event of a
/// certificate registered now, or of a PENDING_ACTIVATION certificate of a CA presented again.
/// Errors only when the store fails (the broker then denies: it never fails open).
[[nodiscard]] Res<AuthDecision> authenticate(Store& store, const AuthRequest& request,
                                             const RegistrationSink& events = {});

/// True when a connection with certificate `id` must not exist whatever its client id: the
/// certificate is unknown or not ACTIVE, or its CA is INACTIVE. Errors when the store fails.
[[nodiscard]] Res<bool> certificate_refused(Store& store, const std::string& id);

/// Every registered certificate that `certificate_refused` would refuse (not ACTIVE, or its CA
/// INACTIVE), read page by page (one transaction per page, so a large registry does not hold
/// one long transaction). Errors when the store fails.
[[nodiscard]] Res<std::vector<std::string>> refused_certificates(Store& store);

}  // namespace edgekit::fleetd
