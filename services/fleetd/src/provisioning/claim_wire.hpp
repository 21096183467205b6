#pragma once
/// \file
/// The documents and topics of fleet provisioning by claim (aws-iot-protocols.md 4.1), read and
/// written without I/O so that they are unit-tested and fuzzed alone: which API a topic names,
/// the request documents (JSON or CBOR with the same text keys), the accepted and rejected
/// replies.
///
/// Requests are untrusted bytes from a device: every malformed one is a `Rejection` naming what
/// is wrong (400 InvalidPayload), never an exception or a crash. JSON requests may end in one
/// NUL byte (AWS's C demos send C strings); CreateKeysAndCertificate takes an empty payload.
///
/// Thread safety: free functions without shared state.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgekit/json/json.hpp"
#include "provisioning/engine.hpp"

namespace edgekit::fleetd::provisioning {

enum class Api { CreateKeysAndCertificate, CreateCertificateFromCsr, RegisterThing };
enum class Format { Json, Cbor };

/// The largest request read: a PEM CSR of an RSA 4096 key is about 1.8 KB and a template's
/// parameters are small; anything larger is refused before it is parsed.
inline constexpr std::size_t kMaxRequest = 16 * 1024;
/// A template name's limit (aws-iot-protocols.md 0).
inline constexpr std::size_t kMaxTemplateName = 36;
/// At most this many request parameters, each name and value at most kMaxParameter bytes.
inline constexpr std::size_t kMaxParameters = 64;
inline constexpr std::size_t kMaxParameter = 1024;

/// What a request topic names.
struct RequestTopic {
  Api api = Api::CreateKeysAndCertificate;
  Format format = Format::Json;
  std::string template_name;  ///< RegisterThing only
};

/// `$aws/certificates/create/{fmt}`, `$aws/certificates/create-from-csr/{fmt}`,
/// `$aws/provisioning-templates/{template}/provision/{fmt}`; nullopt for any other topic
/// (including the …/accepted and …/rejected replies, and a template name AWS would not allow).
[[nodiscard]] std::optional<RequestTopic> parse_request_topic(std::string_view topic);

/// `<request topic>/accepted` or `/rejected`.
[[nodiscard]] std::string reply_topic(std::string_view request_topic, bool accepted);

/// The request document as JSON: an empty payload is an empty object (the create call's
/// request), a JSON payload may end in one NUL byte. 400 InvalidPayload when it is larger than
/// kMaxRequest, not a document of `format`, or not an object.
[[nodiscard]] Outcome<nlohmann::json> decode_request(std::string_view payload, Format format);

struct CreateFromCsrRequest {
  std::string certificate_signing_request;  ///< PEM, not yet checked
};
struct RegisterThingRequest {
  std::string certificate_ownership_token;  ///< may be empty (the caller rejects it)
  std::map<std::string, std::string> parameters;
};

/// CreateKeysAndCertificate takes no fields; any document (even `{}` or with unknown members,
/// which AWS ignores) is accepted, a malformed payload is not.
[[nodiscard]] Outcome<void> parse_create_keys(std::string_view payload, Format format);
/// `certificateSigningRequest` (a string) is required.
[[nodiscard]] Outcome<CreateFromCsrRequest> parse_create_from_csr(std::string_view payload,
                                                                  Format format);
/// `certificateOwnershipToken` (a string; missing reads as empty), `parameters` (optional map of
/// string to string, bounded by kMaxParameters and kMaxParameter).
[[nodiscard]] Outcome<RegisterThingRequest> parse_register_thing(std::string_view payload,
                                                                 Format format);

/// The reply bytes of `document` in `format` (CBOR: a map with text keys, as the demos read).
[[nodiscard]] std::string encode(const nlohmann::json& document, Format format);
/// {"statusCode", "errorCode", "errorMessage"}.
[[nodiscard]] nlohmann::json rejection_document(const Rejection& r);

/// The policy of claim certificates for `template_name`: "claim-<template>".
[[nodiscard]] std::string claim_policy_name(std::string_view template_name);
/// Its document, as AWS's documentation gives it for a claim certificate (aws-iot-protocols.md
/// 4.2): iot:Connect for any client id; iot:Publish and iot:Receive on
/// `$aws/certificates/create/*`, `$aws/certificates/create-from-csr/*` and
/// `$aws/provisioning-templates/<template>/provision/*`; iot:Subscribe on the same filters.
/// Nothing else: a claim certificate reaches no thing's topics and no other template.
[[nodiscard]] std::string claim_policy_document(std::string_view template_name);

/// A rejection document's fields (no store error).
[[nodiscard]] Rejection rejection(int status_code, std::string error_code, std::string message);
/// The rejections fleetd sends for a malformed request (400 InvalidPayload).
[[nodiscard]] Rejection invalid_payload(std::string message);

}  // namespace edgekit::fleetd::provisioning
