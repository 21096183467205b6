#pragma once
/// \file
/// The admin API's request bodies and query strings (untrusted: anyone holding the token, and
/// anyone who can reach the port before the token is checked) and the JSON forms of the
/// registry's records. Parsers bound every size, refuse unknown members (a misspelt field must
/// not be ignored silently) and name the member at fault. Fuzzed: fuzz/fleetd/fuzz_fleetd_admin.
/// Member names follow AWS's IoT API (thingName, certificatePem, policyDocument, templateBody,
/// expectedVersion, ...).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edgekit/json/json.hpp"
#include "edgekit/pki/csr.hpp"
#include "store/claims.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::admin {

/// Largest request body accepted (413 beyond): a template (≤ 10 KB) or a PEM (≤ 16 KB) as a JSON
/// string, escaped, fits with room.
inline constexpr std::size_t kMaxBody = 64 * 1024;
/// The route that takes OTA images, and its larger limit: a 16 MiB image in base64 and the rest.
inline constexpr std::string_view kUploadPath = "/admin/v1/ota/images";
inline constexpr std::size_t kMaxUploadBody = 23 * 1024 * 1024;
/// Default page size of list calls (the store allows 1..1000).
inline constexpr std::size_t kDefaultPage = 100;

/// `?limit=&next=` of a list call: limit 1..1000 decimal (default 100), next ≤ 256 bytes.
[[nodiscard]] Res<PageRequest> parse_page(std::string_view limit, std::string_view next);
/// `?expectedVersion=` (empty: none).
[[nodiscard]] Res<std::optional<std::int64_t>> parse_version_query(std::string_view v);

/// {"thingName", "thingTypeName"?, "attributes"?: {name: value}}
[[nodiscard]] Res<Thing> parse_create_thing(std::string_view body);

struct ThingUpdate {
  std::optional<std::string> type;        ///< absent: unchanged; "": removed
  std::optional<Attributes> attributes;   ///< absent: unchanged
  bool merge = false;  ///< merge into the current attributes ("" removes one) instead of replace
  std::optional<std::int64_t> expected_version;
};
/// {"thingTypeName"?, "attributes"?, "merge"?, "expectedVersion"?}
[[nodiscard]] Res<ThingUpdate> parse_update_thing(std::string_view body);
/// Applies an update to the current thing.
[[nodiscard]] Thing apply(const ThingUpdate& u, Thing current);

/// {"groupName", "description"?}
[[nodiscard]] Res<ThingGroup> parse_create_group(std::string_view body);

struct CertificateRegistration {
  std::string pem;
  CertificateStatus status = CertificateStatus::Inactive;  ///< AWS's default
  std::string ca_id;  ///< "" : found among the registered CAs, if one issued it
};
/// {"certificatePem", "status"?: ACTIVE|INACTIVE|PENDING_ACTIVATION, "caCertificateId"?}
[[nodiscard]] Res<CertificateRegistration> parse_register_certificate(std::string_view body);

struct CertificateFromCsr {
  pki::CsrInfo csr;          ///< signature checked, key type one the CA issues for
  bool set_as_active = false;  ///< AWS's default: INACTIVE
  std::string thing_name;    ///< "": attach to no thing
  std::int64_t validity_days = 365;
};
/// {"certificateSigningRequest": PEM, "setAsActive"?: bool, "thingName"?, "validityDays"?:
/// 1..3650}. The request is read with pki::parse_csr (its signature must verify) and its key
/// must be EC P-256, EC P-384 or RSA 2048; each refusal names the cause.
[[nodiscard]] Res<CertificateFromCsr> parse_certificate_from_csr(std::string_view body);

/// {"policyName", "policyDocument": string or object} — the document must parse as an AWS IoT
/// policy (policy::parse), its error passed on.
[[nodiscard]] Res<Policy> parse_create_policy(std::string_view body);

struct CaRegistration {
  std::string pem;
  CaStatus status = CaStatus::Inactive;  ///< AWS's default
  bool auto_registration = false;
  std::string registration_template;
};
/// {"caCertificatePem", "status"?: ACTIVE|INACTIVE, "autoRegistration"?: bool,
///  "registrationTemplate"?}
[[nodiscard]] Res<CaRegistration> parse_register_ca(std::string_view body);

struct CaUpdate {
  std::optional<bool> auto_registration;
  std::optional<std::string> registration_template;  ///< "": none
};
/// {"autoRegistration"?, "registrationTemplate"?}; at least one.
[[nodiscard]] Res<CaUpdate> parse_update_ca(std::string_view body);

/// {"templateName", "templateBody": string or object, "type"?: FLEET_PROVISIONING|JITP,
///  "description"?, "enabled"?} — the body validated (templates.hpp).
[[nodiscard]] Res<ProvisioningTemplate> parse_create_template(std::string_view body);

struct TemplateUpdate {
  std::optional<std::string> body;  ///< validated against the stored template's type
  std::optional<std::string> description;
  std::optional<bool> enabled;
};
/// {"templateBody"?, "description"?, "enabled"?}; at least one.
[[nodiscard]] Res<TemplateUpdate> parse_update_template(std::string_view body);

/// {"targetArn": an http(s):// URL or an absolute executable path (fleetd's stand-in for a
///  Lambda ARN), "payloadVersion"?: "2020-04-01"} — a template's pre-provisioning hook.
[[nodiscard]] Res<PreProvisioningHook> parse_pre_provisioning_hook(std::string_view body);
/// The optional `preProvisioningHook` member of a template create/update body (AWS's
/// CreateProvisioningTemplate / UpdateProvisioningTemplate field), checked as above.
[[nodiscard]] Res<std::optional<PreProvisioningHook>> template_hook_member(std::string_view body);

/// {"templateBody", "type"?} for the validate call: the template's validation error, if any.
[[nodiscard]] Res<void> parse_and_validate_template(std::string_view body);

// JSON forms of records (AWS's member names; times in epoch seconds).
[[nodiscard]] nlohmann::json to_json(const Thing& t);
[[nodiscard]] nlohmann::json to_json(const ThingGroup& g);
/// Without the PEM unless `with_pem` (lists stay small).
[[nodiscard]] nlohmann::json to_json(const Certificate& c, bool with_pem);
[[nodiscard]] nlohmann::json to_json(const Policy& p);
[[nodiscard]] nlohmann::json to_json(const CaRecord& c, bool with_pem);
[[nodiscard]] nlohmann::json to_json(const ProvisioningTemplate& t);

/// {"items": [...], "next": "..."} (next present only when there is another page).
template <class T, class F>
nlohmann::json page_json(const Page<T>& page, F&& item) {
  nlohmann::json j{{"items", nlohmann::json::array()}};
  for (const auto& i : page.items) j["items"].push_back(item(i));
  if (!page.next.empty()) j["next"] = page.next;
  return j;
}

}  // namespace edgekit::fleetd::admin
