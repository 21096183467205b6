#pragma once
/// \file
/// The Device Shadow document model of fleetd's shadow service (aws-iot-protocols.md 1): request
/// parsing, the merge of an update into a stored shadow, metadata, version, delta and the reply
/// documents (get/accepted, update/accepted, update/delta, update/documents, delete/accepted,
/// …/rejected), with AWS's limits (1.7) and exact error messages (1.6).
///
/// Pure: no I/O, no clock (the time is a parameter), no store. Request payloads are untrusted
/// bytes: every failure is a `Rejection` carrying AWS's status code and message, never an
/// exception or an assertion. Thread safety: none needed (no shared state).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edgekit/core/result.hpp"
#include "edgekit/json/json.hpp"

namespace edgekit::fleetd::shadow {

/// AWS's limits (1.7, section 0).
inline constexpr std::size_t kMaxStateBytes = 8 * 1024;  ///< desired + reported, metadata excluded
inline constexpr int kMaxDepth = 6;                      ///< levels within desired / reported
inline constexpr std::size_t kMaxClientToken = 64;
/// The largest request payload read at all (AWS IoT's PUBLISH limit, 6.4): anything longer is
/// 413 before it is parsed.
inline constexpr std::size_t kMaxRequestBytes = 128 * 1024;

/// AWS's messages (1.6), spelled exactly.
namespace msg {
inline constexpr std::string_view kInvalidJson = "Invalid JSON";
inline constexpr std::string_view kMissingState = "Missing required node: state";
inline constexpr std::string_view kStateNotObject = "State node must be an object";
inline constexpr std::string_view kDesiredNotObject = "Desired node must be an object";
inline constexpr std::string_view kReportedNotObject = "Reported node must be an object";
inline constexpr std::string_view kInvalidVersion = "Invalid version";
inline constexpr std::string_view kInvalidClientToken = "Invalid clientToken";
inline constexpr std::string_view kTooDeep =
    "JSON contains too many levels of nesting; maximum is 6";
inline constexpr std::string_view kInvalidNode = "State contains an invalid node";
inline constexpr std::string_view kVersionConflict = "Version conflict";
inline constexpr std::string_view kTooLarge = "The payload exceeds the maximum size allowed";
inline constexpr std::string_view kNotUtf8 =
    "Unsupported documented encoding; supported encoding is UTF-8";
inline constexpr std::string_view kTooManyRequests = "Too many requests";
inline constexpr std::string_view kInternal = "Internal service failure";
}  // namespace msg

/// A refusal: the …/rejected document's `code` and `message`, and the request's clientToken
/// when it could be read (it is echoed in the rejection too, section 0).
struct Rejection {
  int code = 400;
  std::string message;
  std::optional<std::string> client_token;
};

template <class T>
using Outcome = edgekit::Result<T, Rejection>;

/// The parts of a get or delete request: only the token matters (the payload may be empty).
struct TokenRequest {
  std::optional<std::string> client_token;
};

/// An update request (1.2).
struct UpdateRequest {
  /// `state` as sent: an object (holding `desired` and/or `reported`, each an object or null)
  /// or null (clear both). Members of `state` other than desired/reported are dropped here.
  nlohmann::json state;
  std::optional<std::int64_t> version;  ///< optimistic locking when present
  std::optional<std::string> client_token;
};

/// Reads a get or delete request: empty, or a JSON object whose `clientToken` (if any) is a
/// string of at most 64 bytes; one trailing NUL byte is ignored (AWS's C demos send it).
/// Rejections: 413 (over kMaxRequestBytes), 415 (not UTF-8), 400 Invalid JSON, 400 Invalid
/// clientToken.
[[nodiscard]] Outcome<TokenRequest> parse_token_request(std::string_view payload);

/// Reads an update request (one trailing NUL ignored). Rejections, in this order: 413, 415,
/// 400 Invalid JSON (not JSON, or not an object), Invalid clientToken, Invalid version (not an
/// integer), Missing required node: state, State node must be an object, Desired / Reported
/// node must be an object, State contains an invalid node (a null inside an array), the nesting
/// message (a non-empty object or array at level 7, desired/reported being level 1).
[[nodiscard]] Outcome<UpdateRequest> parse_update(std::string_view payload);

/// A stored shadow. `state` is {desired?, reported?} (a section absent when empty) and
/// `metadata` the same shape with {"timestamp": T} per leaf; both are objects.
struct Shadow {
  nlohmann::json state = nlohmann::json::object();
  nlohmann::json metadata = nlohmann::json::object();
  std::int64_t version = 0;
};

/// What an accepted update produced.
struct Applied {
  std::optional<Shadow> previous;  ///< absent when the update created the shadow
  Shadow current;
  nlohmann::json accepted;   ///< the update/accepted document
  nlohmann::json documents;  ///< the update/documents document
  /// The update/delta document, when the updated shadow has a delta (desired differing from
  /// reported; published after every such update, as AWS's Greengrass shadow manager does).
  std::optional<nlohmann::json> delta;
};

/// Applies `request` to `existing` (nullopt: no shadow, never created or deleted) at `now`
/// (epoch seconds). `last_version` is the version a deleted shadow had reached (0 for none):
/// a re-created shadow continues from it (1.5). Rejections: 409 Version conflict (the request's
/// version is not the current one), 400 Invalid version (a version for a shadow that does not
/// exist), 413 (desired + reported over 8 KB after the merge).
[[nodiscard]] Outcome<Applied> apply_update(const std::optional<Shadow>& existing,
                                            std::int64_t last_version, const UpdateRequest& request,
                                            std::int64_t now);

/// The delta of `state` (1.4): every desired key whose value differs from reported (numbers
/// compared by value), nested objects recursively with their path kept, arrays whole. An empty
/// object when there is none.
[[nodiscard]] nlohmann::json delta_of(const nlohmann::json& state);

/// get/accepted: state (with `delta` when there is one), metadata, version, timestamp, token.
[[nodiscard]] nlohmann::json get_accepted(const Shadow& s, std::int64_t now,
                                          const std::optional<std::string>& client_token);
/// delete/accepted: the version the deleted shadow had, timestamp, token.
[[nodiscard]] nlohmann::json delete_accepted(std::int64_t version, std::int64_t now,
                                             const std::optional<std::string>& client_token);
/// …/rejected: code, message, timestamp, token.
[[nodiscard]] nlohmann::json rejected(const Rejection& r, std::int64_t now);
/// The 404 of a get or delete of a shadow that does not exist: `No shadow exists with name:
/// '<name>'` with the thing's name for the classic shadow and the shadow's for a named one.
[[nodiscard]] Rejection not_found(std::string_view thing, std::string_view shadow_name,
                                  std::optional<std::string> client_token);

/// The bytes of `doc` as published (compact JSON; invalid UTF-8 cannot occur: every text came
/// through the parser).
[[nodiscard]] std::string to_payload(const nlohmann::json& doc);

}  // namespace edgekit::fleetd::shadow
