#pragma once
/// \file
/// Errors of the Device Shadow client (aws-iot-protocols.md 1): the service's rejections, each
/// code and message of the fact sheet's table 1.6 with a value of its own so that a device can act
/// on it without comparing strings, and the local failures of the pure part. The rejection
/// document itself (code, message, clientToken) is kept apart, in `Rejected` (documents.hpp).
/// Pure: no heap; `to_string` returns static text. Thread safety: none needed (no state).

#include <cstdint>
#include <string_view>
#include <system_error>

#include "edgekit/core/result.hpp"

namespace edgekit::shadow {

/// Every error the shadow library returns. Values are stable; new ones go at the end of a group.
enum class Errc : std::uint8_t {
  Ok = 0,

  // --- The service rejected the request (…/rejected, aws-iot-protocols.md 1.6). ----------------
  // Mapped from the rejection's `code` and, for 400 and 404, its exact `message`.
  InvalidJson = 1,      ///< 400 "Invalid JSON"
  MissingState,         ///< 400 "Missing required node: state"
  StateNotObject,       ///< 400 "State node must be an object"
  DesiredNotObject,     ///< 400 "Desired node must be an object"
  ReportedNotObject,    ///< 400 "Reported node must be an object"
  InvalidVersion,       ///< 400 "Invalid version"
  InvalidClientToken,   ///< 400 "Invalid clientToken" (longer than 64 bytes)
  TooDeeplyNested,      ///< 400 "JSON contains too many levels of nesting; maximum is 6"
  InvalidStateNode,     ///< 400 "State contains an invalid node"
  BadRequest,           ///< any other 400 (a message the fact sheet does not list)
  Unauthorized,         ///< 401 "Unauthorized"
  Forbidden,            ///< 403 "Forbidden"
  ThingNotFound,        ///< 404 "Thing not found"
  ShadowNotFound,       ///< 404 "No shadow exists with name: '<name>'", or any other 404
  VersionConflict,      ///< 409 "Version conflict": the update named a version that is not
                        ///< the current one; get the shadow and try again
  PayloadTooLarge,      ///< 413 "The payload exceeds the maximum size allowed"
  UnsupportedEncoding,  ///< 415 "Unsupported documented encoding; supported encoding is UTF-8"
  Throttled,            ///< 429: more than 10 requests in flight on the connection
  ServiceFailure,       ///< 500 "Internal service failure", or any other 5xx
  RejectedOther,        ///< any other code

  // --- The document received could not be used. ------------------------------------------------
  MalformedDocument = 30,  ///< not JSON, not an object, a required member missing, a member of
                           ///< the wrong type (e.g. a version that is not a non-negative integer)
  FieldTypeMismatch,       ///< bindings.hpp: a value of another JSON type than the application's
                           ///< field at that path (e.g. a string for a bool)
  FieldOverflow,           ///< bindings.hpp: a number outside the field's range, or a string
                           ///< longer than its buffer

  // --- Caller errors (pure part). -------------------------------------------------------------
  BufferTooSmall = 40,  ///< the caller's buffer cannot hold the topic or document
  InvalidArgument,      ///< a thing or shadow name outside AWS's limits, a clientToken longer
                        ///< than 64 bytes, a state section that is not a JSON object or null,
                        ///< an update without desired or reported, a topic kind the operation
                        ///< does not have, text that is not UTF-8
  TopicMismatch,        ///< the topic is not a Device Shadow topic

  // --- The request/response client (client.hpp) over an MQTT channel. -----------------------
  Timeout = 50,      ///< no reply within the request's timeout (a reply arriving later is ignored)
  NotConnected,      ///< the MQTT connection is down, or the agent is stopped
  Busy,              ///< a request of this client is in flight already
  ReplyTooLarge,     ///< the reply is longer than the client's reply buffer
  SubscribeFailed,   ///< the broker refused the reply filters, or did not answer in time
  PublishFailed,     ///< the request could not be published
  WouldDeadlock,     ///< a waiting call from the agent's thread (e.g. from the delta handler)
};

/// True for the failures that a later, identical request may not meet again (the rejections
/// Throttled and ServiceFailure; the client's Timeout, NotConnected, Busy, SubscribeFailed,
/// PublishFailed). VersionConflict is not among them: the request itself must change. Every
/// value is listed, so a new `Errc` fails to compile until it is placed.
[[nodiscard]] constexpr bool is_retryable(Errc e) noexcept {
  switch (e) {
    case Errc::Throttled:
    case Errc::ServiceFailure:
    case Errc::Timeout:
    case Errc::NotConnected:
    case Errc::Busy:
    case Errc::SubscribeFailed:
    case Errc::PublishFailed:
      return true;
    case Errc::Ok:
    case Errc::InvalidJson:
    case Errc::MissingState:
    case Errc::StateNotObject:
    case Errc::DesiredNotObject:
    case Errc::ReportedNotObject:
    case Errc::InvalidVersion:
    case Errc::InvalidClientToken:
    case Errc::TooDeeplyNested:
    case Errc::InvalidStateNode:
    case Errc::BadRequest:
    case Errc::Unauthorized:
    case Errc::Forbidden:
    case Errc::ThingNotFound:
    case Errc::ShadowNotFound:
    case Errc::VersionConflict:
    case Errc::PayloadTooLarge:
    case Errc::UnsupportedEncoding:
    case Errc::RejectedOther:
    case Errc::MalformedDocument:
    case Errc::BufferTooSmall:
    case Errc::InvalidArgument:
    case Errc::TopicMismatch:
    case Errc::FieldTypeMismatch:
    case Errc::FieldOverflow:
    case Errc::ReplyTooLarge:
    case Errc::WouldDeadlock:
      return false;
  }
  return false;
}

/// True for the values that stand for a …/rejected reply of the service.
[[nodiscard]] constexpr bool is_rejection(Errc e) noexcept {
  return e >= Errc::InvalidJson && e <= Errc::RejectedOther;
}

/// The `Errc` of a rejection document: 400 and 404 by their exact, case-sensitive `message`
/// (aws-iot-protocols.md 1.6; a 404 whose message starts "No shadow exists with name: " is
/// ShadowNotFound whatever name follows), then by `code` alone (401, 403, 409, 413, 415, 429,
/// 5xx; another 400 is BadRequest, another 404 ShadowNotFound, anything else RejectedOther).
/// Never returns Ok.
[[nodiscard]] Errc rejection_errc(std::int64_t code, std::string_view message) noexcept;

/// A short, static, human-readable description of `e` (never allocates).
[[nodiscard]] const char* to_string(Errc e) noexcept;

/// The `std::error_category` of `Errc` (name "edgekit.shadow"). Thread safe. Not pure
/// (std::string): in its own target, `edgekit::shadow_error_category`.
[[nodiscard]] const std::error_category& shadow_category() noexcept;

/// Wires `Errc` into `std::error_code`.
[[nodiscard]] inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), shadow_category()};
}

}  // namespace edgekit::shadow

template <>
struct std::is_error_code_enum<edgekit::shadow::Errc> : std::true_type {};

/// `Errc::Ok` is zero: a `Result<void, Errc>` is the error alone (result.hpp).
template <>
inline constexpr bool edgekit::kZeroErrorMeansSuccess<edgekit::shadow::Errc> = true;
