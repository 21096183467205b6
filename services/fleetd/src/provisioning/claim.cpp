#include "provisioning/claim.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <optional>

#include "edgekit/pki/csr.hpp"
#include "edgekit/pki/keys.hpp"
#include "edgekit/pki/name.hpp"
#include "store/claims.hpp"

namespace edgekit::fleetd::provisioning {
namespace {

using nlohmann::json;

Rejection internal(std::string message) {
  return rejection(500, "InternalFailure", std::move(message));
}

Rejection bad_csr(std::string message) {
  return rejection(400, "InvalidCertificateSigningRequest", std::move(message));
}

// Wipes a string that held a private key (or a reply carrying one).
void wipe(std::string& s) {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
  s.shrink_to_fit();
}

// A store failure inside a transaction whose real outcome is a rejection: rolls back and lets
// the caller answer the rejection.
constexpr std::string_view kRejected = "provisioning request rejected";

// A flat string map (parameters, a device configuration) as a JSON object. Its text is the same
// for the same map (keys in order), so recorded parameters compare as text.
json object_of(const std::map<std::string, std::string>& values) {
  json j = json::object();
  for (const auto& [k, v] : values) j[k] = v;
  return j;
}

json register_accepted(const std::string& thing_name, const json& configuration) {
  return json{{"deviceConfiguration", configuration}, {"thingName", thing_name}};
}

// The accepted reply again when a RegisterThing whose token was used already repeats the request
// that used it — same certificate (the token names it), template, claim certificate and
// parameters — and what that request made is still in place (the certificate attached to the
// thing, not revoked). A device whose power failed, or whose claim connection dropped, after
// fleetd registered it but before the reply arrived sends exactly that; answering it as the
// first time (nothing is run again: no hook, no template) lets it keep the certificate it holds,
// where a refusal would make it start over and leave an ACTIVE certificate on its thing that
// nobody has a key for. nullopt: not such a repeat (the caller refuses the used token).
Res<std::optional<json>> repeated_register(Tx& tx, const std::string& certificate_id,
                                           const std::string& template_name,
                                           const std::string& claim_certificate_id,
                                           const std::string& request_parameters) {
  auto result = get_provisioning_result(tx, certificate_id);
  if (!result) return fail(result.error());
  const auto& r = result.value();
  if (!r || r->template_name != template_name || r->claim_certificate_id != claim_certificate_id ||
      r->request_parameters.empty() || r->request_parameters != request_parameters) {
    return std::optional<json>();
  }
  auto cert = tx.get_certificate(certificate_id);
  if (!cert) {
    if (cert.error().code == Errc::NotFound) return std::optional<json>();
    return fail(cert.error());
  }
  if (cert.value().status == CertificateStatus::Revoked) return std::optional<json>();
  auto things = tx.things_of(certificate_id);
  if (!things) return fail(things.error());
  if (std::find(things.value().begin(), things.value().end(), r->thing_name) ==
      things.value().end()) {
    return std::optional<json>();
  }
  json configuration = json::parse(r->device_configuration, nullptr, false);
  if (!configuration.is_object()) return std::optional<json>();
  return std::optional<json>(register_accepted(r->thing_name, configuration));
}

}  // namespace

struct ClaimService::Pending {
  std::string topic;
  Format format = Format::Json;
  std::string client_id;
  std::string claim_certificate_id;
  std::string template_name;
  TokenClaims claims;
  std::map<std::string, std::string> parameters;
  std::string request_parameters;  ///< the request's as JSON text, before a hook's overrides
};

ClaimService::ClaimService(asio::io_context& io, Store& store, ca::Authority* ca,
                           std::string token_secret, Logger& log, ReplySender send,
                           TemplateRunner runner, ClaimOptions options)
    : store_(store),
      ca_(ca),
      tokens_(std::move(token_secret)),
      log_(log),
      send_(std::move(send)),
      runner_(std::move(runner)),
      options_(options),
      hooks_(io, options.hook_limit) {}

ClaimService::~ClaimService() = default;

void ClaimService::handle(const ClaimRequest& rq) {
  auto t = parse_request_topic(rq.topic);
  if (!t) {
    log_.warn("claim.unknown_topic", {{"topic", rq.topic}});
    return;
  }
  if (rq.client_id.empty() || rq.certificate_id.empty()) {
    // Only the plugin's stamps say who asked; without them there is nobody to answer privately.
    log_.warn("claim.unstamped_request", {{"topic", rq.topic}});
    return;
  }
  switch (t->api) {
    case Api::CreateKeysAndCertificate:
      return create_keys(rq, t->format);
    case Api::CreateCertificateFromCsr:
      return create_from_csr(rq, t->format);
    case Api::RegisterThing:
      return register_thing(rq, *t);
  }
}

void ClaimService::reply(std::string_view request_topic, Format f, const json& doc,
                         std::string_view client_id, bool accepted) {
  std::string payload = encode(doc, f);
  send_(reply_topic(request_topic, accepted), payload, client_id);
  wipe(payload);
}

void ClaimService::reject(std::string_view request_topic, Format f, const Rejection& r,
                          std::string_view client_id) {
  log_.info("claim.rejected", {{"topic", request_topic},
                               {"client_id", client_id},
                               {"status", r.status_code},
                               {"error_code", r.error_code},
                               {"error", r.error_message}});
  reply(request_topic, f, rejection_document(r), client_id, false);
}

Outcome<json> ClaimService::issue(const pki::CsrInfo& csr, std::string_view claim_certificate_id) {
  if (auto k = ca::check_device_key(csr); !k) return edgekit::fail(bad_csr(k.error().message));
  std::optional<Rejection> rejected;
  auto out = store_.transact([&](Tx& tx) -> Res<json> {
    rejected.reset();
    auto cert = ca_->issue(csr, options_.validity_days, tx.now(), tx);
    if (!cert) {
      rejected = cert.error().code == Errc::InvalidArgument ? bad_csr(cert.error().message)
                                                            : internal(cert.error().message);
      return fail(Errc::Conflict, std::string(kRejected));
    }
    const Certificate c = ca::record_of(*ca_, cert.value(), CertificateStatus::PendingActivation);
    if (auto s = tx.create_certificate(c); !s) return fail(s.error());
    TokenClaims claims;
    std::string token = tokens_.issue(c.id, tx.now() + kOwnershipTokenLifetime, claims);
    if (token.empty()) return fail(Errc::Internal, "no ownership token could be made");
    if (auto r = record_ownership_token(
            tx, {claims.token_id, c.id, std::string(claim_certificate_id), claims.expires_at, 0});
        !r) {
      return fail(r.error());
    }
    return json{
        {"certificateId", c.id}, {"certificatePem", c.pem}, {"certificateOwnershipToken", token}};
  });
  if (rejected) return edgekit::fail(*rejected);
  if (!out) return edgekit::fail(internal(out.error().message));
  return std::move(out.value());
}

void ClaimService::create_keys(const ClaimRequest& rq, Format f) {
  if (auto p = parse_create_keys(rq.payload, f); !p)
    return reject(rq.topic, f, p.error(), rq.client_id);
  if (ca_ == nullptr) {
    return reject(rq.topic, f,
                  rejection(503, "ServiceUnavailable", "fleetd has no certificate authority."),
                  rq.client_id);
  }
  auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
  if (!key) return reject(rq.topic, f, internal(key.error().message), rq.client_id);
  auto subject = pki::Name::parse("/CN=fleetd device");
  if (!subject) return reject(rq.topic, f, internal(subject.error().message), rq.client_id);
  auto csr_pem = pki::make_csr(key.value(), subject.value());
  if (!csr_pem) return reject(rq.topic, f, internal(csr_pem.error().message), rq.client_id);
  auto csr = pki::parse_csr(csr_pem.value());
  if (!csr) return reject(rq.topic, f, internal(csr.error().message), rq.client_id);
  auto issued = issue(csr.value(), rq.certificate_id);
  if (!issued) return reject(rq.topic, f, issued.error(), rq.client_id);
  json doc = std::move(issued.value());
  std::string private_key = key.value().private_key_pem();
  doc["privateKey"] = private_key;
  wipe(private_key);
  const std::string id = doc["certificateId"].get<std::string>();
  reply(rq.topic, f, doc, rq.client_id, true);
  // The key's copy in the document goes too; the signer's memory is wiped by OpenSSL when the
  // signer is destroyed at the end of this scope.
  wipe(doc["privateKey"].get_ref<std::string&>());
  log_.info("claim.certificate_created",
            {{"certificate_id", id}, {"client_id", rq.client_id}, {"keys", "fleetd"}});
}

void ClaimService::create_from_csr(const ClaimRequest& rq, Format f) {
  auto p = parse_create_from_csr(rq.payload, f);
  if (!p) return reject(rq.topic, f, p.error(), rq.client_id);
  if (ca_ == nullptr) {
    return reject(rq.topic, f,
                  rejection(503, "ServiceUnavailable", "fleetd has no certificate authority."),
                  rq.client_id);
  }
  auto csr = pki::parse_csr(p.value().certificate_signing_request);
  if (!csr) {
    return reject(rq.topic, f,
                  bad_csr(csr.error().code == pki::Errc::BadSignature
                              ? "The certificate signing request's signature does not verify."
                              : "The certificate signing request is not a valid PEM CSR."),
                  rq.client_id);
  }
  auto issued = issue(csr.value(), rq.certificate_id);
  if (!issued) return reject(rq.topic, f, issued.error(), rq.client_id);
  reply(rq.topic, f, issued.value(), rq.client_id, true);
  log_.info("claim.certificate_created",
            {{"certificate_id", issued.value()["certificateId"].get<std::string>()},
             {"client_id", rq.client_id},
             {"keys", "device"}});
}

void ClaimService::register_thing(const ClaimRequest& rq, const RequestTopic& t) {
  const Format f = t.format;
  auto req = parse_register_thing(rq.payload, f);
  if (!req) return reject(rq.topic, f, req.error(), rq.client_id);
  // What can be checked before the hook runs (read only; the token's use is checked again when
  // it is used, in the transaction that runs the template).
  std::optional<Rejection> rejected;
  std::optional<PreProvisioningHook> hook;
  std::optional<TokenClaims> claims;
  std::optional<json> repeated;
  std::string certificate_pem;
  const std::string request_parameters = object_of(req.value().parameters).dump();
  auto checked = store_.transact([&](Tx& tx) -> Res<void> {
    rejected.reset();
    repeated.reset();
    // The store's clock, the one the token's expiry was set from.
    auto verified = tokens_.verify(req.value().certificate_ownership_token, tx.now());
    if (!verified) {
      rejected = verified.error();
      return {};
    }
    claims = std::move(verified.value());
    auto token = get_ownership_token(tx, claims->token_id);
    if (!token) {
      if (token.error().code != Errc::NotFound) return fail(token.error());
      rejected = token_rejection("Certificate ownership token is invalid.");
      return {};
    }
    if (token.value().used_at != 0) {
      auto again = repeated_register(tx, claims->certificate_id, t.template_name,
                                     std::string(rq.certificate_id), request_parameters);
      if (!again) return fail(again.error());
      repeated = std::move(again.value());
      if (!repeated) {
        rejected = token_rejection("Certificate ownership token has already been used.");
      }
      return {};
    }
    auto cert = tx.get_certificate(claims->certificate_id);
    if (!cert) {
      if (cert.error().code != Errc::NotFound) return fail(cert.error());
      rejected = token_rejection("Certificate ownership token is invalid.");
      return {};
    }
    certificate_pem = cert.value().pem;
    auto tmpl = tx.get_template(t.template_name);
    if (!tmpl) {
      if (tmpl.error().code != Errc::NotFound) return fail(tmpl.error());
      rejected =
          rejection(404, "ResourceNotFound", "Template " + t.template_name + " does not exist.");
      return {};
    }
    if (tmpl.value().type != "FLEET_PROVISIONING") {
      rejected =
          rejection(400, "InvalidRequest",
                    "Template " + t.template_name + " is not a fleet provisioning template.");
      return {};
    }
    if (!tmpl.value().enabled) {
      rejected = rejection(400, "InvalidRequest", "Template " + t.template_name + " is disabled.");
      return {};
    }
    auto h = get_pre_provisioning_hook(tx, t.template_name);
    if (!h) return fail(h.error());
    hook = std::move(h.value());
    return {};
  });
  if (!checked) return reject(rq.topic, f, internal(checked.error().message), rq.client_id);
  if (rejected) return reject(rq.topic, f, *rejected, rq.client_id);
  if (repeated) {
    return answer_repeat(rq.topic, f, *repeated, rq.client_id, claims->certificate_id,
                         t.template_name);
  }

  auto p = std::make_shared<Pending>();
  p->topic = std::string(rq.topic);
  p->format = f;
  p->client_id = std::string(rq.client_id);
  p->claim_certificate_id = std::string(rq.certificate_id);
  p->template_name = t.template_name;
  p->claims = std::move(*claims);
  p->parameters = std::move(req.value().parameters);
  p->request_parameters = request_parameters;
  if (!hook) return finish_register(p);

  HookInput in;
  in.claim_certificate_id = p->claim_certificate_id;
  in.certificate_id = p->claims.certificate_id;
  in.certificate_pem = certificate_pem;
  in.template_arn = "arn:aws:iot:local:000000000000:provisioningtemplate/" + t.template_name;
  in.client_id = p->client_id;
  in.parameters = p->parameters;
  log_.info("claim.hook_called", {{"template", t.template_name}, {"target", hook->target}});
  hooks_.run(hook->target, hook_input_json(in), [this, p](HookVerdict v) {
    if (!v.allow) {
      log_.warn("claim.hook_denied", {{"template", p->template_name}, {"why", v.problem}});
      return reject(
          p->topic, p->format,
          rejection(403, "ACCESS_DENIED", "The pre-provisioning hook did not allow provisioning."),
          p->client_id);
    }
    // AWS merges the overrides into the request's parameters (an override wins).
    for (auto& [k, val] : v.parameter_overrides) p->parameters[k] = val;
    finish_register(p);
  });
}

void ClaimService::finish_register(const std::shared_ptr<Pending>& p) {
  std::optional<Rejection> rejected;
  std::optional<json> repeated;
  auto done = store_.transact([&](Tx& tx) -> Res<Provisioned> {
    rejected.reset();
    repeated.reset();
    auto tmpl = tx.get_template(p->template_name);
    if (!tmpl) {
      if (tmpl.error().code != Errc::NotFound) return fail(tmpl.error());
      rejected =
          rejection(404, "ResourceNotFound", "Template " + p->template_name + " does not exist.");
      return fail(Errc::Conflict, std::string(kRejected));
    }
    if (auto u = use_ownership_token(tx, p->claims.token_id); !u) {
      if (u.error().code != Errc::Conflict) return fail(u.error());
      // Used meanwhile (a racing RegisterThing), or swept with its certificate while the hook
      // ran (it expired): say which.
      auto still = get_ownership_token(tx, p->claims.token_id);
      if (!still && still.error().code != Errc::NotFound) return fail(still.error());
      if (still) {
        // Used meanwhile by the same request (a device's retry that overtook this one while the
        // hook ran): the same answer.
        auto again = repeated_register(tx, p->claims.certificate_id, p->template_name,
                                       p->claim_certificate_id, p->request_parameters);
        if (!again) return fail(again.error());
        repeated = std::move(again.value());
      }
      if (!repeated) {
        rejected = token_rejection(still ? "Certificate ownership token has already been used."
                                         : "Certificate ownership token has expired.");
      }
      return fail(Errc::Conflict, std::string(kRejected));
    }
    auto run =
        runner_(tx, tmpl.value(), p->parameters, CertificateContext{p->claims.certificate_id, {}});
    if (!run) {
      // A Busy store goes back to transact, which reruns the whole request's transaction.
      if (run.error().store_error && run.error().store_error->code == Errc::Busy) {
        return fail(*run.error().store_error);
      }
      rejected = run.error();
      return fail(Errc::Conflict, std::string(kRejected));
    }
    if (auto r = record_provisioning_result(
            tx, {p->claims.certificate_id, run.value().thing_name, p->template_name,
                 p->claim_certificate_id, p->client_id, 0, p->request_parameters,
                 object_of(run.value().device_configuration).dump()});
        !r) {
      return fail(r.error());
    }
    return std::move(run.value());
  });
  if (repeated) {
    return answer_repeat(p->topic, p->format, *repeated, p->client_id, p->claims.certificate_id,
                         p->template_name);
  }
  if (rejected) return reject(p->topic, p->format, *rejected, p->client_id);
  if (!done) return reject(p->topic, p->format, internal(done.error().message), p->client_id);
  reply(p->topic, p->format,
        register_accepted(done.value().thing_name, object_of(done.value().device_configuration)),
        p->client_id, true);
  log_.info("claim.thing_registered", {{"thing_name", done.value().thing_name},
                                       {"certificate_id", p->claims.certificate_id},
                                       {"template", p->template_name},
                                       {"client_id", p->client_id}});
}

void ClaimService::answer_repeat(std::string_view topic, Format f, const json& accepted,
                                 std::string_view client_id, std::string_view certificate_id,
                                 std::string_view template_name) {
  reply(topic, f, accepted, client_id, true);
  log_.info("claim.thing_register_repeated",
            {{"thing_name", accepted["thingName"].get_ref<const std::string&>()},
             {"certificate_id", certificate_id},
             {"template", template_name},
             {"client_id", client_id}});
}

Res<std::size_t> ClaimService::sweep() {
  auto removed = store_.transact([](Tx& tx) { return sweep_expired_ownership_tokens(tx); });
  if (!removed) return fail(removed.error());
  for (const auto& id : removed.value()) {
    log_.info("claim.certificate_expired", {{"certificate_id", id}});
  }
  return removed.value().size();
}

}  // namespace edgekit::fleetd::provisioning
