#include "provisioning/claim_wire.hpp"

#include <algorithm>

namespace edgekit::fleetd::provisioning {
namespace {

using nlohmann::json;

constexpr std::string_view kCertificates = "$aws/certificates/";
constexpr std::string_view kTemplates = "$aws/provisioning-templates/";

std::optional<Format> format_of(std::string_view s) {
  if (s == "json") return Format::Json;
  if (s == "cbor") return Format::Cbor;
  return std::nullopt;
}

bool template_name_ok(std::string_view s) {
  if (s.empty() || s.size() > kMaxTemplateName) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

}  // namespace

Rejection rejection(int status_code, std::string error_code, std::string message) {
  Rejection r;
  r.status_code = status_code;
  r.error_code = std::move(error_code);
  r.error_message = std::move(message);
  return r;
}

Rejection invalid_payload(std::string message) {
  return rejection(400, "InvalidPayload", std::move(message));
}

std::optional<RequestTopic> parse_request_topic(std::string_view topic) {
  RequestTopic t;
  if (topic.starts_with(kCertificates)) {
    std::string_view rest = topic.substr(kCertificates.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const std::string_view op = rest.substr(0, slash);
    if (op == "create") {
      t.api = Api::CreateKeysAndCertificate;
    } else if (op == "create-from-csr") {
      t.api = Api::CreateCertificateFromCsr;
    } else {
      return std::nullopt;
    }
    auto f = format_of(rest.substr(slash + 1));
    if (!f) return std::nullopt;
    t.format = *f;
    return t;
  }
  if (topic.starts_with(kTemplates)) {
    std::string_view rest = topic.substr(kTemplates.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const std::string_view name = rest.substr(0, slash);
    rest = rest.substr(slash + 1);
    constexpr std::string_view kProvision = "provision/";
    if (!template_name_ok(name) || !rest.starts_with(kProvision)) return std::nullopt;
    auto f = format_of(rest.substr(kProvision.size()));
    if (!f) return std::nullopt;
    t.api = Api::RegisterThing;
    t.format = *f;
    t.template_name = std::string(name);
    return t;
  }
  return std::nullopt;
}

std::string reply_topic(std::string_view request_topic, bool accepted) {
  return std::string(request_topic) + (accepted ? "/accepted" : "/rejected");
}

Outcome<json> decode_request(std::string_view payload, Format format) {
  if (payload.size() > kMaxRequest) {
    return edgekit::fail(invalid_payload("Payload of " + std::to_string(payload.size()) +
                                         " bytes exceeds the limit of " +
                                         std::to_string(kMaxRequest) + " bytes."));
  }
  if (payload.empty()) return json::object();
  json j;
  if (format == Format::Json) {
    // AWS's C demos publish C strings with their terminating NUL.
    if (payload.back() == '\0') payload.remove_suffix(1);
    // No other NUL may stand in JSON text, and nlohmann's reader would stop at one as if the
    // input ended there.
    if (payload.find('\0') != std::string_view::npos) {
      return edgekit::fail(invalid_payload("Payload is not valid JSON."));
    }
    j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return edgekit::fail(invalid_payload("Payload is not valid JSON."));
  } else {
    // nlohmann's CBOR reader throws out_of_range ("excessive array size") for a huge declared
    // length even with allow_exceptions=false (found by fuzz_fleetd_provisioning): a device's
    // bytes must never end fleetd, so that throw is caught here.
    try {
      j = json::from_cbor(payload, /*strict=*/true, /*allow_exceptions=*/false);
    } catch (const json::exception&) {
      j = json(json::value_t::discarded);
    }
    if (j.is_discarded()) return edgekit::fail(invalid_payload("Payload is not valid CBOR."));
  }
  if (!j.is_object()) return edgekit::fail(invalid_payload("Payload is not an object."));
  return j;
}

Outcome<void> parse_create_keys(std::string_view payload, Format format) {
  auto j = decode_request(payload, format);
  if (!j) return edgekit::fail(j.error());
  return {};
}

Outcome<CreateFromCsrRequest> parse_create_from_csr(std::string_view payload, Format format) {
  auto j = decode_request(payload, format);
  if (!j) return edgekit::fail(j.error());
  auto it = j.value().find("certificateSigningRequest");
  if (it == j.value().end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return edgekit::fail(
        invalid_payload("certificateSigningRequest is required and must be a string."));
  }
  return CreateFromCsrRequest{it->get<std::string>()};
}

Outcome<RegisterThingRequest> parse_register_thing(std::string_view payload, Format format) {
  auto j = decode_request(payload, format);
  if (!j) return edgekit::fail(j.error());
  RegisterThingRequest r;
  const json& doc = j.value();
  if (auto it = doc.find("certificateOwnershipToken"); it != doc.end() && !it->is_null()) {
    if (!it->is_string()) {
      return edgekit::fail(invalid_payload("certificateOwnershipToken must be a string."));
    }
    r.certificate_ownership_token = it->get<std::string>();
  }
  if (auto it = doc.find("parameters"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) {
      return edgekit::fail(invalid_payload("parameters must be a map of strings."));
    }
    if (it->size() > kMaxParameters) {
      return edgekit::fail(invalid_payload("parameters has more than " +
                                           std::to_string(kMaxParameters) + " entries."));
    }
    for (auto p = it->begin(); p != it->end(); ++p) {
      if (!p.value().is_string()) {
        return edgekit::fail(
            invalid_payload("parameter '" + p.key().substr(0, 64) + "' must be a string."));
      }
      const auto& v = p.value().get_ref<const std::string&>();
      if (p.key().empty() || p.key().size() > kMaxParameter || v.size() > kMaxParameter) {
        return edgekit::fail(invalid_payload("a parameter name must be 1-" +
                                             std::to_string(kMaxParameter) +
                                             " bytes and its value at most as long."));
      }
      r.parameters[p.key()] = v;
    }
  }
  return r;
}

std::string encode(const json& document, Format format) {
  // A device may have sent text that is not UTF-8 (CBOR text strings are not checked on
  // reading); a reply that echoes it must not throw.
  if (format == Format::Json) return document.dump(-1, ' ', false, json::error_handler_t::replace);
  std::vector<std::uint8_t> cbor = json::to_cbor(document);
  return std::string(cbor.begin(), cbor.end());
}

json rejection_document(const Rejection& r) {
  return json{{"statusCode", r.status_code},
              {"errorCode", r.error_code},
              {"errorMessage", r.error_message}};
}

std::string claim_policy_name(std::string_view template_name) {
  return "claim-" + std::string(template_name);
}

std::string claim_policy_document(std::string_view template_name) {
  const std::string t(template_name);
  const json topics =
      json::array({"arn:aws:iot:*:*:topic/$aws/certificates/create/*",
                   "arn:aws:iot:*:*:topic/$aws/certificates/create-from-csr/*",
                   "arn:aws:iot:*:*:topic/$aws/provisioning-templates/" + t + "/provision/*"});
  const json filters = json::array(
      {"arn:aws:iot:*:*:topicfilter/$aws/certificates/create/*",
       "arn:aws:iot:*:*:topicfilter/$aws/certificates/create-from-csr/*",
       "arn:aws:iot:*:*:topicfilter/$aws/provisioning-templates/" + t + "/provision/*"});
  return json{
      {"Version", "2012-10-17"},
      {"Statement",
       json::array(
           {json{{"Effect", "Allow"}, {"Action", "iot:Connect"}, {"Resource", "*"}},
            json{{"Effect", "Allow"},
                 {"Action", json::array({"iot:Publish", "iot:Receive"})},
                 {"Resource", topics}},
            json{{"Effect", "Allow"}, {"Action", "iot:Subscribe"}, {"Resource", filters}}})}}
      .dump();
}

}  // namespace edgekit::fleetd::provisioning
