#pragma once
/// \file
/// Fleet provisioning by claim (aws-iot-protocols.md 4): fleetd's answers on
///   $aws/certificates/create/{json|cbor}                       CreateKeysAndCertificate
///   $aws/certificates/create-from-csr/{json|cbor}              CreateCertificateFromCsr
///   $aws/provisioning-templates/{template}/provision/{json|cbor}  RegisterThing
/// each answered on <topic>/accepted or <topic>/rejected with AWS's fields, in the request's
/// format, and PRIVATELY: a reply carries the broker plugin's `x-edgekit-reply-to` marker so that
/// only the requesting client receives it (it may hold a private key).
///
/// The requester is known only from the plugin's stamps (x-edgekit-client-id and
/// x-edgekit-certificate-id, which a device cannot forge); a message without them is not
/// answered. Which templates a claim certificate may use is the broker's decision (its policy
/// allows that template's provision topics only), as on AWS.
///
/// CreateKeysAndCertificate generates an EC P-256 key: its PKCS#8 PEM (about 240 bytes) and a
/// P-256 certificate keep the JSON reply near 1.4 KB, well inside the 4 KB reply buffer of
/// AWS's C demos, where an RSA-2048 key (about 1.7 KB of PEM) with its certificate would take
/// about 3.3 KB; P-256 is also what those demos' mbedTLS is limited to. The key exists in
/// fleetd's memory only until the reply is handed to the broker link, then it is wiped.
///
/// New certificates are PENDING_ACTIVATION with an ownership token (ownership_token.hpp) valid
/// for one hour; `sweep` removes the ones never registered once their token expires.
/// RegisterThing checks the token, the template (present, enabled, a fleet provisioning
/// template), runs the template's pre-provisioning hook off the event loop (hook.hpp), then the
/// template engine in one store transaction that also uses up the token and records the result
/// with the request's parameters and the reply; the certificate is ACTIVE (or as the template
/// says) before the accepted reply leaves, so the device's reconnect with it is admitted.
/// A used token is refused, except in an identical repeat of the request that used it (same
/// token, template, claim certificate and parameters; the certificate still attached to its
/// thing and not revoked): that gets the recorded reply again, and nothing is run again — the
/// device that lost the first reply keeps its certificate instead of starting over.
///
/// Thread safety: everything runs on the io_context's thread, as the store and the broker link.

#include <asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "ca/authority.hpp"
#include "log.hpp"
#include "provisioning/claim_wire.hpp"
#include "provisioning/engine.hpp"
#include "provisioning/hook.hpp"
#include "provisioning/ownership_token.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::provisioning {

/// The topic filters fleetd subscribes to for these APIs.
inline constexpr std::string_view kCreateFilter = "$aws/certificates/create/+";
inline constexpr std::string_view kCreateFromCsrFilter = "$aws/certificates/create-from-csr/+";
inline constexpr std::string_view kProvisionFilter = "$aws/provisioning-templates/+/provision/+";

/// One request as the broker link delivered it.
struct ClaimRequest {
  std::string_view topic;
  std::string_view payload;
  std::string_view client_id;       ///< x-edgekit-client-id
  std::string_view certificate_id;  ///< x-edgekit-certificate-id
};

/// Sends a reply: QoS 1 to `topic`, private to `client_id`. The payload may be wiped as soon as
/// the call returns.
using ReplySender = std::function<void(const std::string& topic, const std::string& payload,
                                       std::string_view client_id)>;
/// The template engine (provisioning::run_template; a fake in unit tests).
using TemplateRunner = std::function<Outcome<Provisioned>(Tx&, const ProvisioningTemplate&,
                                                          const std::map<std::string, std::string>&,
                                                          const CertificateContext&)>;

struct ClaimOptions {
  std::int64_t validity_days = ca::kDefaultDeviceValidityDays;
  std::chrono::milliseconds hook_limit = kHookTimeLimit;
};

class ClaimService {
 public:
  /// `ca` may be null (no CA configured): the create calls are then rejected (503), RegisterThing
  /// still works for certificates issued earlier.
  ClaimService(asio::io_context& io, Store& store, ca::Authority* ca, std::string token_secret,
               Logger& log, ReplySender send, TemplateRunner runner, ClaimOptions options = {});
  ~ClaimService();
  ClaimService(const ClaimService&) = delete;
  ClaimService& operator=(const ClaimService&) = delete;

  /// Answers one request (or ignores a message that is none: logged).
  void handle(const ClaimRequest& request);

  /// Removes expired ownership tokens and the certificates nobody registered in time. Returns
  /// how many certificates went (or the store's error).
  [[nodiscard]] Res<std::size_t> sweep();

 private:
  struct Pending;
  void create_keys(const ClaimRequest& rq, Format f);
  void create_from_csr(const ClaimRequest& rq, Format f);
  void register_thing(const ClaimRequest& rq, const RequestTopic& t);
  void finish_register(const std::shared_ptr<Pending>& p);
  /// Issues a certificate for `csr`, records it PENDING_ACTIVATION with a new token; the
  /// accepted document's fields (certificateId, certificatePem, certificateOwnershipToken).
  Outcome<nlohmann::json> issue(const pki::CsrInfo& csr, std::string_view claim_certificate_id);
  void reply(std::string_view request_topic, Format f, const nlohmann::json& doc,
             std::string_view client_id, bool accepted);
  void reject(std::string_view request_topic, Format f, const Rejection& r,
              std::string_view client_id);
  /// Answers an identical repeat of a RegisterThing that succeeded: its recorded reply again.
  void answer_repeat(std::string_view topic, Format f, const nlohmann::json& accepted,
                     std::string_view client_id, std::string_view certificate_id,
                     std::string_view template_name);

  Store& store_;
  ca::Authority* ca_;
  TokenAuthority tokens_;
  Logger& log_;
  ReplySender send_;
  TemplateRunner runner_;
  ClaimOptions options_;
  HookRunner hooks_;  // last: destroyed first, so no verdict arrives after the rest is gone
};

}  // namespace edgekit::fleetd::provisioning
