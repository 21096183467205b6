#include "admin/wire.hpp"

#include <charconv>

#include "admin/pem.hpp"
#include "admin/templates.hpp"
#include "ca/authority.hpp"
#include "http/json_body.hpp"
#include "policy/policy.hpp"

namespace edgekit::fleetd::admin {
namespace {

using nlohmann::json;
using http::bool_member;
using http::integer_member;
using http::only_members;
using http::string_member;

constexpr std::size_t kMaxName = 128;
constexpr std::size_t kMaxAttributes = 50;
constexpr std::size_t kMaxAttributeValue = 800;  // AWS's limit
constexpr std::size_t kMaxDescription = 2048;
constexpr std::size_t kMaxPolicyDocument = 20 * 1024;

Res<json> body_object(std::string_view body) { return http::object_of(body, kMaxBody); }

bool printable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

Res<Attributes> attributes_of(const json& j) {
  auto it = j.find("attributes");
  if (it == j.end() || it->is_null()) return Attributes{};
  if (!it->is_object()) return fail(Errc::InvalidArgument, "member 'attributes' is not an object");
  if (it->size() > kMaxAttributes) {
    return fail(Errc::InvalidArgument, "more than 50 attributes");
  }
  Attributes a;
  for (auto m = it->begin(); m != it->end(); ++m) {
    if (m.key().empty() || m.key().size() > kMaxName || !printable(m.key())) {
      return fail(Errc::InvalidArgument, "attribute names are 1-128 printable characters");
    }
    if (!m.value().is_string()) {
      return fail(Errc::InvalidArgument,
                  "attribute '" + m.key() + "' is not a string (AWS attributes are strings)");
    }
    const auto& v = m.value().get_ref<const std::string&>();
    if (v.size() > kMaxAttributeValue || !printable(v)) {
      return fail(Errc::InvalidArgument,
                  "attribute '" + m.key() + "' must be at most 800 printable characters");
    }
    a[m.key()] = v;
  }
  return a;
}

// A JSON document given either as a string (AWS's form) or inline as an object (handier).
Res<std::string> document_member(const json& j, const char* name, std::size_t max) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    return fail(Errc::InvalidArgument, std::string("missing member '") + name + "'");
  }
  std::string text;
  if (it->is_string()) {
    text = it->get<std::string>();
  } else if (it->is_object()) {
    text = http::dump(*it);
  } else {
    return fail(Errc::InvalidArgument,
                std::string("member '") + name + "' is neither a JSON string nor an object");
  }
  if (text.size() > max) {
    return fail(Errc::InvalidArgument, std::string("member '") + name + "' is larger than " +
                                           std::to_string(max) + " bytes");
  }
  return text;
}

// A member the request cannot do without: present, a string, not empty, at most `max` bytes.
// (An empty name would only be refused later by the store; refusing it here names the member.)
Res<std::string> required_text(const nlohmann::json& j, const char* name, std::size_t max) {
  auto r = string_member(j, name, true, max);
  if (r && r.value().empty()) {
    return fail(Errc::InvalidArgument, std::string("member '") + name + "' is empty");
  }
  return r;
}

}  // namespace

Res<PageRequest> parse_page(std::string_view limit, std::string_view next) {
  PageRequest p;
  p.limit = kDefaultPage;
  if (!limit.empty()) {
    std::size_t v = 0;
    auto [ptr, ec] = std::from_chars(limit.data(), limit.data() + limit.size(), v);
    if (ec != std::errc() || ptr != limit.data() + limit.size() || v == 0 || v > 1000) {
      return fail(Errc::InvalidArgument, "limit must be a number from 1 to 1000");
    }
    p.limit = v;
  }
  if (next.size() > 256) return fail(Errc::InvalidArgument, "next is longer than 256 bytes");
  p.after = std::string(next);
  return p;
}

Res<std::optional<std::int64_t>> parse_version_query(std::string_view v) {
  if (v.empty()) return std::optional<std::int64_t>();
  std::int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || ptr != v.data() + v.size()) {
    return fail(Errc::InvalidArgument, "expectedVersion must be an integer");
  }
  return std::optional<std::int64_t>(n);
}

Res<Thing> parse_create_thing(std::string_view body) {
  auto j_r = body_object(body);
  if (!j_r) return fail(j_r.error());
  auto j = std::move(j_r.value());
  if (auto o = only_members(j, {"thingName", "thingTypeName", "attributes"}); !o) {
    return fail(o.error());
  }
  Thing t;
  auto name_r = required_text(j, "thingName", kMaxName);
  if (!name_r) return fail(name_r.error());
  auto name = std::move(name_r.value());
  auto type_r = string_member(j, "thingTypeName", false, kMaxName);
  if (!type_r) return fail(type_r.error());
  auto type = std::move(type_r.value());
  auto attributes_r = attributes_of(j);
  if (!attributes_r) return fail(attributes_r.error());
  auto attributes = std::move(attributes_r.value());
  t.name = std::move(name);
  t.type = std::move(type);
  t.attributes = std::move(attributes);
  return t;
}

Res<ThingUpdate> parse_update_thing(std::string_view body) {
  auto j_r = body_object(body);
  if (!j_r) return fail(j_r.error());
  auto j = std::move(j_r.value());
  if (auto o = only_members(j, {"thingTypeName", "attributes", "merge", "expectedVersion"}); !o) {
    return fail(o.error());
  }
  ThingUpdate u;
  if (j.contains("thingTypeName")) {
    auto type_r = string_member(j, "thingTypeName", false, kMaxName);
    if (!type_r) return fail(type_r.error());
    auto type = std::move(type_r.value());
    u.type = std::move(type);
  }
  if (j.contains("attributes")) {
    auto attributes_r = attributes_of(j);
    if (!attributes_r) return fail(attributes_r.error());
    auto attributes = std::move(attributes_r.value());
    u.attributes = std::move(attributes);
  }
  auto merge_r = bool_member(j, "merge");
  if (!merge_r) return fail(merge_r.error());
  auto merge = std::move(merge_r.value());
  u.merge = merge.value_or(false);
  auto version_r = integer_member(j, "expectedVersion");
  if (!version_r) return fail(version_r.error());
  auto version = std::move(version_r.value());
  u.expected_version = version;
  return u;
}

Thing apply(const ThingUpdate& u, Thing current) {
  if (u.type) current.type = *u.type;
  if (u.attributes) {
    if (!u.merge) {
      current.attributes = *u.attributes;
    } else {
      // AWS's merge: an empty value removes the attribute.
      for (const auto& [k, v] : *u.attributes) {
        if (v.empty()) {
          current.attributes.erase(k);
        } else {
          current.attributes[k] = v;
        }
      }
    }
  }
  return current;
}

Res<ThingGroup> parse_create_group(std::string_view body) {
  auto j_r = body_object(body);
  if (!j_r) return fail(j_r.error());
  auto j = std::move(j_r.value());
  if (auto o = only_members(j, {"groupName", "description"}); !o) return fail(o.error());
  auto name_r = required_text(j, "groupName", kMaxName);
  if (!name_r) return fail(name_r.error());
  auto name = std::move(name_r.value());
  auto description_r = string_member(j, "description", false, kMaxDescription);
  if (!description_r) return fail(description_r.error());
  auto description = std::move(description_r.value());
  return ThingGroup{std::move(name), std::move(description), 0};
}

Res<CertificateRegistration> parse_register_certificate(std::string_view body) {
  auto j_r = body_object(body);
  if (!j_r) return fail(j_r.error());
  auto j = std::move(j_r.value());
  if (auto o = only_members(j, {"certificatePem", "status", "caCertificateId"}); !o) {
    return fail(o.error());
  }
  CertificateRegistration r;
  auto pem_r = required_text(j, "certificatePem", kMaxPem);
  if (!pem_r) return fail(pem_r.error());
  auto pem = std::move(pem_r.value());
  auto status_r = string_member(j, "status", false, 32);
  if (!status_r) return fail(status_r.error());
  auto status = std::move(status_r.value());
  auto ca_r = string_member(j, "caCertificateId", false, 64);
  if (!ca_r) return fail(ca_r.error());
  auto ca = std::move(ca_r.value());
  r.pem = std::move(pem);
  r.ca_id = std::move(ca);
  if (!status.empty()) {
    auto s = certificate_status_from(status);
    if (!s || *s == CertificateStatus::Revoked) {
      return fail(Errc::InvalidArgument,
                  "status must be ACTIVE, INACTIVE or PENDING_ACTIVATION at registration");
    }
    r.status = *s;
  }
  return r;
}

Res<CertificateFromCsr> parse_certificate_from_csr(std::string_view body) {
  auto j_r = body_object(body);
  if (!j_r) return fail(j_r.error());
  auto j = std::move(j_r.value());
  if (auto o = only_members(
          j, {"certificateSigningRequest", "setAsActive", "thingName", "validityDays"});
      !o) {
    return fail(o.error());
  }
  auto pem_r = required_text(j, "certificateSigningRequest", kMaxPem);
  if (!pem_r) return fail(pem_r.error());
  auto active_r = bool_member(j, "setAsActive");
  if (!active_r) return fail(active_r.error());
  auto thing_r = string_member(j, "thingName", false, kMaxName);
  if (!thing_r) return fail(thing_r.error());
  auto days_r = integer_member(j, "validityDays");
  if (!days_r) return fail(days_r.error());
  CertificateFromCsr r;
  if (days_r.value()) {
    if (*days_r.value() < 1 || *days_r.value() > ca::kMaxDeviceValidityDays) {
      return fail(Errc::InvalidArgument, "member 'validityDays' must be from 1 to 3650");
    }
    r.validity_days = *days_r.value();
  }
  // Untrusted: the request's own signature must verify (proof that the caller holds the key).
  auto csr = pki::parse_csr(pem_r.value());
  if (!csr) {
    return fail(Errc::InvalidArgument,
                "member 'certificateSigningRequest': " + csr.error().message);
  }
  if (auto k = ca::check_device_key(csr.value()); !k) return fail(k.error());
  r.csr = std::move(csr.value());
  r.set_as_active = active_r.value().value_or(false);
  r.thing_name = std::move(thing_r.value());
  return r;
}

Res<Policy> parse_create_policy(std::string_view body) {
  auto j_r = body_object(body);
  if (!j_r) return fail(j_r.error());
  auto j = std::move(j_r.value());
  if (auto o = only_members(j, {"policyName", "policyDocument"}); !o) {
    return fail(o.error());
  }
  auto name_r = required_text(j, "policyName", kMaxName);
  if (!name_r) return fail(name_r.error());
  auto name = std::move(name_r.value());
  auto document_r = document_member(j, "policyDocument", kMaxPolicyDocument);
  if (!document_r) return fail(document_r.error());
  auto document = std::move(document_r.value());
  if (auto p = policy::parse(document); !p) {
    return fail(Errc::InvalidArgument, "invalid policy document: " + p.error().message);
  }
  Policy p;
  p.name = std::move(name);
  p.document = std::move(document);
  return p;
}

Res<CaRegistration> parse_register_ca(std::string_view body) {
  auto j_r = body_object(body);
  if (!j_r) return fail(j_r.error());
  auto j = std::move(j_r.value());
  if (auto o = only_members(
          j, {"caCertificatePem", "status", "autoRegistration", "registrationTemplate"});
      !o) {
    return fail(o.error());
  }
  CaRegistration r;
  auto pem_r = required_text(j, "caCertificatePem", kMaxPem);
  if (!pem_r) return fail(pem_r.error());
  auto pem = std::move(pem_r.value());
  auto status_r = string_member(j, "status", false, 32);
  if (!status_r) return fail(status_r.error());
  auto status = std::move(status_r.value());
  auto automatic_r = bool_member(j, "autoRegistration");
  if (!automatic_r) return fail(automatic_r.error());
  auto automatic = std::move(automatic_r.value());
  auto tmpl_r = string_member(j, "registrationTemplate", false, 36);
  if (!tmpl_r) return fail(tmpl_r.error());
  auto tmpl = std::move(tmpl_r.value());
  r.pem = std::move(pem);
  if (!status.empty()) {
    auto s = ca_status_from(status);
    if (!s) return fail(Errc::InvalidArgument, "status must be ACTIVE or INACTIVE");
    r.status = *s;
  }
  r.auto_registration = automatic.value_or(false);
  r.registration_template = std::move(tmpl);
  return r;
}

Res<CaUpdate> parse_update_ca(std::string_view body) {
  auto j_r = body_object(body);
  if (!j_r) return fail(j_r.error());
  auto j = std::move(j_r.value());
  if (auto o = only_members(j, {"autoRegistration", "registrationTemplate"}); !o) {
    return fail(o.error());
  }
  CaUpdate u;
  auto automatic_r = bool_member(j, "autoRegistration");
  if (!automatic_r) return fail(automatic_r.error());
  auto automatic = std::move(automatic_r.value());
  u.auto_registration = automatic;
  if (j.contains("registrationTemplate")) {
    auto tmpl_r = string_member(j, "registrationTemplate", false, 36);
    if (!tmpl_r) return fail(tmpl_r.error());
    auto tmpl = std::move(tmpl_r.value());
    u.registration_template = std::move(tmpl);
  }
  if (!u.auto_registration && !u.registration_template) {
    return fail(Errc::InvalidArgument,
                "nothing to change: give autoRegistration or registrationTemplate");
  }
  return u;
}

Res<ProvisioningTemplate> parse_create_template(std::string_view body) {
  auto j_r = body_object(body);
  if (!j_r) return fail(j_r.error());
  auto j = std::move(j_r.value());
  if (auto o = only_members(
          j, {"templateName", "templateBody", "type", "description", "enabled", "preProvisioningHook"});
      !o) {
    return fail(o.error());
  }
  ProvisioningTemplate t;
  auto name_r = required_text(j, "templateName", 36);
  if (!name_r) return fail(name_r.error());
  auto name = std::move(name_r.value());
  auto text_r = document_member(j, "templateBody", kMaxTemplateBody);
  if (!text_r) return fail(text_r.error());
  auto text = std::move(text_r.value());
  auto type_r = string_member(j, "type", false, 32);
  if (!type_r) return fail(type_r.error());
  auto type = std::move(type_r.value());
  auto description_r = string_member(j, "description", false, 500);
  if (!description_r) return fail(description_r.error());
  auto description = std::move(description_r.value());
  auto enabled_r = bool_member(j, "enabled");
  if (!enabled_r) return fail(enabled_r.error());
  auto enabled = std::move(enabled_r.value());
  t.name = std::move(name);
  t.type = type.empty() ? "FLEET_PROVISIONING" : std::move(type);
  if (auto v = validate_template(text, t.type); !v) return fail(v.error());
  t.body = std::move(text);
  t.description = std::move(description);
  t.enabled = enabled.value_or(false);
  return t;
}

Res<TemplateUpdate> parse_update_template(std::string_view body) {
  auto j_r = body_object(body);
  if (!j_r) return fail(j_r.error());
  auto j = std::move(j_r.value());
  if (auto o = only_members(j, {"templateBody", "description", "enabled", "preProvisioningHook"}); !o) {
    return fail(o.error());
  }
  TemplateUpdate u;
  if (j.contains("templateBody")) {
    auto text_r = document_member(j, "templateBody", kMaxTemplateBody);
    if (!text_r) return fail(text_r.error());
    auto text = std::move(text_r.value());
    u.body = std::move(text);
  }
  if (j.contains("description")) {
    auto description_r = string_member(j, "description", false, 500);
    if (!description_r) return fail(description_r.error());
    auto description = std::move(description_r.value());
    u.description = std::move(description);
  }
  auto enabled_r = bool_member(j, "enabled");
  if (!enabled_r) return fail(enabled_r.error());
  auto enabled = std::move(enabled_r.value());
  u.enabled = enabled;
  if (!u.body && !u.description && !u.enabled && !j.contains("preProvisioningHook")) {
    return fail(Errc::InvalidArgument,
                "nothing to change: give templateBody, description, enabled or "
                "preProvisioningHook");
  }
  return u;
}

Res<void> parse_and_validate_template(std::string_view body) {
  auto j_r = body_object(body);
  if (!j_r) return fail(j_r.error());
  auto j = std::move(j_r.value());
  if (auto o = only_members(j, {"templateBody", "type"}); !o) return fail(o.error());
  auto text_r = document_member(j, "templateBody", kMaxTemplateBody);
  if (!text_r) return fail(text_r.error());
  auto text = std::move(text_r.value());
  auto type_r = string_member(j, "type", false, 32);
  if (!type_r) return fail(type_r.error());
  auto type = std::move(type_r.value());
  return validate_template(text, type.empty() ? "FLEET_PROVISIONING" : type);
}

json to_json(const Thing& t) {
  return {{"thingName", t.name},   {"thingTypeName", t.type}, {"attributes", t.attributes},
          {"version", t.version}, {"createdAt", t.created_at}};
}

json to_json(const ThingGroup& g) {
  return {{"groupName", g.name}, {"description", g.description}, {"createdAt", g.created_at}};
}

json to_json(const Certificate& c, bool with_pem) {
  json j{{"certificateId", c.id},       {"status", to_string(c.status)},
         {"caCertificateId", c.ca_id},  {"serialNumber", c.serial},
         {"notBefore", c.not_before},   {"notAfter", c.not_after},
         {"createdAt", c.created_at}};
  if (c.revoked_at > 0) j["revokedAt"] = c.revoked_at;
  if (with_pem) j["certificatePem"] = c.pem;
  return j;
}

json to_json(const Policy& p) {
  return {{"policyName", p.name}, {"policyDocument", p.document}, {"version", p.version},
          {"createdAt", p.created_at}};
}

json to_json(const CaRecord& c, bool with_pem) {
  json j{{"caCertificateId", c.id},
         {"status", to_string(c.status)},
         {"autoRegistration", c.auto_registration},
         {"registrationTemplate", c.registration_template},
         {"createdAt", c.created_at}};
  if (with_pem) j["caCertificatePem"] = c.pem;
  return j;
}

json to_json(const ProvisioningTemplate& t) {
  return {{"templateName", t.name},   {"templateBody", t.body},      {"type", t.type},
          {"description", t.description}, {"enabled", t.enabled}, {"version", t.version},
          {"createdAt", t.created_at}};
}

namespace {

// {"targetArn", "payloadVersion"?} as a JSON object.
Res<PreProvisioningHook> hook_from(const json& j) {
  if (!j.is_object()) return fail(Errc::InvalidArgument, "preProvisioningHook must be an object");
  if (auto o = only_members(j, {"targetArn", "payloadVersion"}); !o) return fail(o.error());
  auto target_r = required_text(j, "targetArn", 2048);
  if (!target_r) return fail(target_r.error());
  auto version_r = string_member(j, "payloadVersion", false, 32);
  if (!version_r) return fail(version_r.error());
  PreProvisioningHook h;
  h.target = std::move(target_r.value());
  if (!h.target.starts_with("http://") && !h.target.starts_with("https://") &&
      !h.target.starts_with("/")) {
    return fail(Errc::InvalidArgument,
                "targetArn must be an http(s):// URL or the absolute path of an executable");
  }
  if (!version_r.value().empty() && version_r.value() != "2020-04-01") {
    return fail(Errc::InvalidArgument, "payloadVersion must be 2020-04-01");
  }
  return h;
}

}  // namespace

Res<PreProvisioningHook> parse_pre_provisioning_hook(std::string_view body) {
  auto j = body_object(body);
  if (!j) return fail(j.error());
  return hook_from(j.value());
}

Res<std::optional<PreProvisioningHook>> template_hook_member(std::string_view body) {
  auto j = body_object(body);
  if (!j) return fail(j.error());
  auto it = j.value().find("preProvisioningHook");
  if (it == j.value().end() || it->is_null()) return std::optional<PreProvisioningHook>();
  auto h = hook_from(*it);
  if (!h) return fail(h.error());
  return std::optional<PreProvisioningHook>(std::move(h.value()));
}

}  // namespace edgekit::fleetd::admin
