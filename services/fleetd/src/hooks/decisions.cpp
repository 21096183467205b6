#include "hooks/decisions.hpp"

#include <optional>
#include <set>

namespace edgekit::fleetd {
namespace {

AuthDecision deny(std::string reason) {
  AuthDecision d;
  d.allow = false;
  d.reason = std::move(reason);
  return d;
}

// The decision on a registered certificate `c`.
Res<AuthDecision> decide(Tx& tx, const AuthRequest& req, const Certificate& c) {
  if (c.status != CertificateStatus::Active) {
    return deny("certificate " + c.id + " is " + to_string(c.status));
  }
  if (tx.now() < c.not_before) return deny("certificate " + c.id + " is not yet valid");
  if (tx.now() > c.not_after) return deny("certificate " + c.id + " has expired");
  if (!c.ca_id.empty()) {
    auto ca = tx.get_ca(c.ca_id);
    if (!ca) return fail(ca.error());
    if (ca.value().status != CaStatus::Active) {
      return deny("the CA " + c.ca_id + " of certificate " + c.id + " is INACTIVE");
    }
  }
  // ${iot:Connection.Thing.ThingName}: the attached thing whose name is the client id (AWS
  // resolves it only then; a certificate may be attached to several things).
  auto things = tx.things_of(c.id);
  if (!things) return fail(things.error());
  std::string thing;
  for (const auto& t : things.value()) {
    if (t == req.client_id) thing = t;
  }
  auto names = tx.policies_of(c.id);
  if (!names) return fail(names.error());
  std::vector<policy::Document> docs;
  for (const auto& n : names.value()) {
    auto p = tx.get_policy(n);
    if (!p) return fail(p.error());
    auto doc = policy::parse(p.value().document);
    // Stored policies were validated when written; one that no longer parses is a damaged
    // store, and nothing it might have allowed is granted.
    if (!doc) return deny("policy '" + n + "' is damaged: " + doc.error().message);
    docs.push_back(std::move(doc.value()));
  }
  if (docs.empty()) docs.push_back(policy::default_thing_policy());
  AuthDecision d;
  d.rules = policy::resolve(docs, policy::Context{thing, req.client_id});
  if (!policy::allowed(d.rules, policy::Action::Connect, req.client_id)) {
    return deny("client id '" + req.client_id + "' is not allowed to connect with certificate " +
                c.id + (thing.empty() ? " (no attached thing has that name)" : ""));
  }
  d.allow = true;
  d.reason = "ok";
  d.thing_name = thing;
  d.certificate_id = c.id;
  return d;
}

}  // namespace

Res<AuthDecision> authenticate(Store& store, const AuthRequest& req,
                               const RegistrationSink& events) {
  std::optional<provisioning::RegistrationEvent> event;
  std::optional<std::string> refused;  // a JITP run rejected: its writes are rolled back
  auto decided = store.transact([&](Tx& tx) -> Res<AuthDecision> {
    event.reset();
    refused.reset();
    if (req.certificate_id.empty()) return deny("a client certificate is required");
    auto cert = tx.get_certificate(req.certificate_id);
    if (cert) {
      if (cert->status == CertificateStatus::PendingActivation && !cert->ca_id.empty()) {
        // AWS publishes the event again whenever a still-pending certificate is presented.
        event = provisioning::RegistrationEvent{
            cert->id, cert->ca_id, CertificateStatus::PendingActivation, cert->created_at};
      }
      return decide(tx, req, cert.value());
    }
    if (cert.error().code != Errc::NotFound) return fail(cert.error());
    auto jit = provisioning::register_just_in_time(tx, req.certificate_id, req.certificate_pem,
                                                   req.certificate_chain);
    if (!jit) return fail(jit.error());
    if (jit->roll_back) {
      refused = jit->reason;
      return fail(Errc::Conflict, jit->reason);  // rolls the transaction back
    }
    if (!jit->registered) return deny(jit->reason);
    event = jit->event;
    cert = tx.get_certificate(req.certificate_id);
    if (!cert) return fail(cert.error());
    auto d = decide(tx, req, cert.value());
    if (d && jit->provisioned) {
      d->reason += " (provisioned just in time: thing '" + jit->provisioned->thing_name + "')";
    } else if (d && !jit->provisioned) {
      d->reason += " (registered just in time, awaiting activation)";
    }
    return d;
  });
  if (refused) return deny(*refused);
  if (decided && event && events) events(*event);
  return decided;
}

Res<bool> certificate_refused(Store& store, const std::string& id) {
  return store.transact([&](Tx& tx) -> Res<bool> {
    auto cert = tx.get_certificate(id);
    if (!cert) {
      if (cert.error().code == Errc::NotFound) return true;
      return fail(cert.error());
    }
    if (cert.value().status != CertificateStatus::Active) return true;
    if (cert.value().ca_id.empty()) return false;
    auto ca = tx.get_ca(cert.value().ca_id);
    if (!ca) return fail(ca.error());
    return ca.value().status != CaStatus::Active;
  });
}

Res<std::vector<std::string>> refused_certificates(Store& store) {
  std::set<std::string> inactive_cas;
  for (PageRequest page;;) {
    auto cas = store.transact([&](Tx& tx) { return tx.list_cas(page); });
    if (!cas) return fail(cas.error());
    for (const auto& ca : cas.value().items) {
      if (ca.status != CaStatus::Active) inactive_cas.insert(ca.id);
    }
    if (cas.value().next.empty()) break;
    page.after = cas.value().next;
  }
  std::vector<std::string> refused;
  for (PageRequest page;;) {
    auto certs = store.transact([&](Tx& tx) { return tx.list_certificates(page); });
    if (!certs) return fail(certs.error());
    for (const auto& c : certs.value().items) {
      if (c.status != CertificateStatus::Active || inactive_cas.count(c.ca_id) != 0) {
        refused.push_back(c.id);
      }
    }
    if (certs.value().next.empty()) break;
    page.after = certs.value().next;
  }
  return refused;
}

}  // namespace edgekit::fleetd
