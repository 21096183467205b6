#pragma once
/// \file
/// The broker's questions and fleetd's answers — the decision interface, in the shape of EMQX's
/// HTTP authentication and authorization hooks so that a clustered broker can ask fleetd without
/// our Mosquitto plugin (docs/fleetd.md, "Decision interface"):
///
///   authenticate: {clientid, username, peerhost, certificate_id}
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
/// same rules for brokers that ask per message).

#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd {

struct AuthRequest {
  std::string client_id;
  std::string username;  ///< ignored with certificate authentication (AWS SDKs put metrics here)
  std::string peer;
  std::string certificate_id;  ///< empty: no client certificate
};

struct AuthDecision {
  bool allow = false;
  std::string reason;  ///< why not (or "ok"), for the broker's log and fleetd's
  std::vector<policy::Rule> rules;
  std::string thing_name;
  std::string certificate_id;
};

/// Decides within one read transaction. Errors only when the store fails (the broker then
/// denies: it never fails open).
[[nodiscard]] Res<AuthDecision> authenticate(Store& store, const AuthRequest& request);

/// True when a connection with certificate `id` must not exist whatever its client id: the
/// certificate is unknown or not ACTIVE, or its CA is INACTIVE. Errors when the store fails.
[[nodiscard]] Res<bool> certificate_refused(Store& store, const std::string& id);

/// Every registered certificate that `certificate_refused` would refuse (not ACTIVE, or its CA
/// INACTIVE), read page by page (one transaction per page, so a large registry does not hold
/// one long transaction). Errors when the store fails.
[[nodiscard]] Res<std::vector<std::string>> refused_certificates(Store& store);

}  // namespace edgekit::fleetd
