#include "provisioning/jit.hpp"

#include <vector>

#include "edgekit/json/json.hpp"
#include "edgekit/pki/certificate.hpp"

namespace edgekit::fleetd::provisioning {
namespace {

// The subject fields JITP offers as AWS::IoT::Certificate::<name>, by OpenSSL short name
// (aws-iot-protocols.md 5, "JITP parameters").
constexpr std::pair<std::string_view, std::string_view> kSubjectFields[] = {
    {"C", "Country"},
    {"O", "Organization"},
    {"OU", "OrganizationalUnit"},
    {"dnQualifier", "DistinguishedNameQualifier"},
    {"ST", "StateName"},
    {"CN", "CommonName"},
    {"serialNumber", "SerialNumber"}};

std::map<std::string, std::string> subject_parameters(const pki::Name& subject) {
  std::map<std::string, std::string> out;
  for (const auto& e : subject.entries) {
    for (const auto& [field, name] : kSubjectFields) {
      if (e.field == field) out[std::string(name)] = e.value;  // the last one wins, as for CN
    }
  }
  return out;
}

JitOutcome not_registered(std::string reason, bool roll_back = false) {
  JitOutcome o;
  o.reason = std::move(reason);
  o.roll_back = roll_back;
  return o;
}

// The ACTIVE auto-registration CA that issued `cert` (through `chain`), or why there is none.
struct Issuer {
  std::optional<CaRecord> ca;
  std::string why_not;
};

Res<Issuer> find_issuer(Tx& tx, const pki::CertificateInfo& cert,
                        const std::vector<pki::CertificateInfo>& chain) {
  Issuer out;
  for (PageRequest page;;) {
    auto cas = tx.list_cas(page);
    if (!cas) return fail(cas.error());
    for (const auto& ca : cas.value().items) {
      if (ca.status != CaStatus::Active || !ca.auto_registration) continue;
      auto info = pki::parse_certificate(ca.pem);
      if (!info) continue;  // stored CAs were parsed when registered
      const pki::CertificateInfo trusted[] = {info.value()};
      auto verified = pki::verify_chain(cert, chain, trusted, tx.now());
      if (verified) {
        out.ca = ca;
        return out;
      }
      // Keep the reason of a CA that is the named issuer (an expired certificate, a bad
      // signature): more useful in the log than "no CA".
      if (verified.error().code != pki::Errc::UnknownIssuer || cert.issuer == info->subject) {
        out.why_not = "CA " + ca.id + ": " + verified.error().message;
      }
    }
    if (cas.value().next.empty()) break;
    page.after = cas.value().next;
  }
  return out;
}

}  // namespace

std::string registration_topic(const RegistrationEvent& e) {
  return "$aws/events/certificates/registered/" + e.ca_certificate_id;
}

std::string registration_json(const RegistrationEvent& e, std::int64_t now_ms) {
  nlohmann::json j{{"certificateId", e.certificate_id},
                   {"caCertificateId", e.ca_certificate_id},
                   {"timestamp", now_ms},
                   {"certificateStatus", to_string(e.status)},
                   {"awsAccountId", kAccountId},
                   {"certificateRegistrationTimestamp", e.registered_at * 1000}};
  return j.dump();
}

Res<JitOutcome> register_just_in_time(Tx& tx, const std::string& certificate_id,
                                      std::string_view pem, std::string_view chain) {
  const std::string unknown = "certificate " + certificate_id + " is not registered";
  if (pem.empty()) return not_registered(unknown);
  auto cert = pki::parse_certificate(pem);
  if (!cert)
    return not_registered(unknown + " (its PEM is unreadable: " + cert.error().message + ")");
  if (cert->id != certificate_id) {
    return not_registered(unknown + " (the PEM sent is another certificate)");
  }
  std::vector<pki::CertificateInfo> intermediates;
  if (!chain.empty()) {
    auto parsed = pki::parse_certificates(chain);
    if (parsed) intermediates = std::move(parsed.value());
  }
  auto issuer = find_issuer(tx, cert.value(), intermediates);
  if (!issuer) return fail(issuer.error());
  if (!issuer->ca) {
    return not_registered(unknown +
                          ", and no ACTIVE registered CA with auto-registration issued it" +
                          (issuer->why_not.empty() ? "" : " (" + issuer->why_not + ")"));
  }
  const CaRecord& ca = *issuer->ca;

  // A JITP CA's template is checked before anything is written.
  std::optional<ProvisioningTemplate> tmpl;
  if (!ca.registration_template.empty()) {
    auto t = tx.get_template(ca.registration_template);
    if (!t) {
      if (t.error().code != Errc::NotFound) return fail(t.error());
      return not_registered("the registration template '" + ca.registration_template + "' of CA " +
                            ca.id + " does not exist");
    }
    if (!t->enabled || t->type != "JITP") {
      return not_registered("the registration template '" + ca.registration_template + "' of CA " +
                            ca.id + " is " + (!t->enabled ? "disabled" : "not a JITP template"));
    }
    tmpl = std::move(t.value());
  }

  Certificate record;
  record.id = cert->id;
  record.pem = cert->pem();
  record.status = CertificateStatus::PendingActivation;
  record.ca_id = ca.id;
  record.serial = cert->serial_hex;
  record.not_before = cert->not_before;
  record.not_after = cert->not_after;
  auto created = tx.create_certificate(record);
  if (!created) return fail(created.error());

  JitOutcome out;
  out.registered = true;
  out.event = RegistrationEvent{record.id, ca.id, CertificateStatus::PendingActivation,
                                created->created_at};
  if (!tmpl) return out;

  auto run =
      run_template(tx, *tmpl, {}, CertificateContext{record.id, subject_parameters(cert->subject)});
  if (!run) {
    const Rejection& r = run.error();
    if (r.store_error && r.store_error->code == Errc::Busy) return fail(*r.store_error);
    return not_registered("provisioning template '" + tmpl->name + "' refused certificate " +
                              record.id + ": " + std::to_string(r.status_code) + " " +
                              r.error_code + " " + r.error_message,
                          /*roll_back=*/true);
  }
  out.event->status = run->certificate_status;
  out.provisioned = std::move(run.value());
  return out;
}

}  // namespace edgekit::fleetd::provisioning
