#pragma once
/// \file
/// Errors of fleet provisioning by claim (aws-iot-protocols.md 4): local failures of the
/// provisioning client, and the service's rejections, each AWS `errorCode` the fact sheet names
/// with a value of its own so that a device can act on it without comparing strings. The
/// rejection document itself (statusCode, errorCode, errorMessage) is kept apart, in
/// `RejectedReply` (documents.hpp) and `Provisioner::last_rejection()` (client.hpp).
/// Pure: no heap; `to_string` returns static text.

#include <cstdint>
#include <string_view>
#include <system_error>

#include "edgekit/core/result.hpp"

namespace edgekit::provisioning {

/// Every error the provisioning library returns. Values are stable; new ones go at the end of a
/// group.
enum class Errc : std::uint8_t {
  Ok = 0,

  // --- The service rejected the request (…/rejected). ------------------------------------------
  // Mapped from the rejection's `errorCode` first (exact strings of aws-iot-protocols.md 4.1,
  // 4.3 and fleetd's engine), then from its `statusCode` for codes the fact sheet does not name
  // (its 9.5: the full list is unconfirmed).
  InvalidCertificateOwnershipToken = 1,  ///< 400 "InvalidCertificateOwnershipToken": empty,
                                         ///< unknown, used or expired ownership token
  InvalidParameters,  ///< 400 "InvalidParameters": a template parameter missing
                      ///< or unresolvable ("Cannot resolve reference value: …")
  AccessDenied,       ///< "ACCESS_DENIED" (pre-provisioning hook refused, failed
                      ///< or timed out) or any other 401/403
  ResourceConflict,   ///< "ResourceConflictsException" (template OverrideSettings
                      ///< FAIL met an existing resource)
  Throttled,          ///< 429, or "ThrottlingException": retried with backoff
  ServiceFailure,     ///< "InternalFailure", "ServiceUnavailable" or any 5xx:
                      ///< retried with backoff
  ResourceNotFound,   ///< 404 "ResourceNotFound": no such template (fleetd's
                      ///< code; AWS's is unconfirmed, fact sheet 9.5)
  InvalidRequest,     ///< 400 "InvalidRequest" (template not of type
                      ///< FLEET_PROVISIONING, or disabled), "InvalidPayload"
                      ///< (not a document of the format) or
                      ///< "InvalidCertificateSigningRequest": fleetd's codes
  RejectedOther,      ///< any other rejection (an unknown 4xx code): not retried

  // --- The reply could not be used. -----------------------------------------------------------
  MalformedReply = 30,  ///< not a JSON/CBOR object of the expected shape, a field of the wrong
                        ///< type, a required field missing or empty, a certificate id that is
                        ///< not 64 hex digits
  ReplyTooLarge,        ///< the reply does not fit the caller's reply buffer

  // --- Caller errors (pure part). -------------------------------------------------------------
  BufferTooSmall = 40,  ///< the caller's buffer cannot hold the topic or document
  InvalidArgument,      ///< a template name that is empty, longer than 36 bytes or not
                        ///< `[a-zA-Z0-9:_-]+`; too many parameters; a field out of range
  TopicMismatch,        ///< the topic is none of the provisioning reply topics asked about

  // --- Client (over MQTT and the token). ------------------------------------------------------
  Timeout = 60,         ///< no reply on …/accepted or …/rejected in time (after every retry)
  NotConnected,         ///< the MQTT connection is down (or ended during the request)
  SubscribeFailed,      ///< the broker refused the subscription to the reply topics
  PublishFailed,        ///< the request could not be published (the MQTT layer's error)
  Busy,                 ///< a request is already in flight on this channel (one at a time:
                        ///< fleet provisioning replies carry no clientToken)
  TokenFailed,          ///< a PKCS#11 call failed (key generation, import, store, destroy)
  CertificateMismatch,  ///< the certificate received is not for the device's key, or its id is
                        ///< not the SHA-256 of its DER
  StateStoreFailed,     ///< the provisioning state could not be read or written
  StateCorrupted,       ///< the stored provisioning state failed its integrity check
  AlreadyProvisioned,   ///< a flow was asked of a device that has its identity already
  CsrFailed,            ///< the CSR could not be made (the token signer failed)
};

/// True for rejections and failures that a later attempt may not meet again (Throttled,
/// ServiceFailure, Timeout, NotConnected, PublishFailed): the client retries these with
/// backoff. Every value is listed, so a new `Errc` fails to compile until it is placed.
[[nodiscard]] constexpr bool is_retryable(Errc e) noexcept {
  switch (e) {
    case Errc::Throttled:
    case Errc::ServiceFailure:
    case Errc::Timeout:
    case Errc::NotConnected:
    case Errc::PublishFailed:
      return true;
    case Errc::Ok:
    case Errc::InvalidCertificateOwnershipToken:
    case Errc::InvalidParameters:
    case Errc::AccessDenied:
    case Errc::ResourceConflict:
    case Errc::ResourceNotFound:
    case Errc::InvalidRequest:
    case Errc::RejectedOther:
    case Errc::MalformedReply:
    case Errc::ReplyTooLarge:
    case Errc::BufferTooSmall:
    case Errc::InvalidArgument:
    case Errc::TopicMismatch:
    case Errc::SubscribeFailed:
    case Errc::Busy:
    case Errc::TokenFailed:
    case Errc::CertificateMismatch:
    case Errc::StateStoreFailed:
    case Errc::StateCorrupted:
    case Errc::AlreadyProvisioned:
    case Errc::CsrFailed:
      return false;
  }
  return false;
}

/// True for the values that stand for a …/rejected reply of the service.
[[nodiscard]] constexpr bool is_rejection(Errc e) noexcept {
  return e >= Errc::InvalidCertificateOwnershipToken && e <= Errc::RejectedOther;
}

/// The `Errc` of a rejection document: by `error_code` (exact, case-sensitive AWS strings), then
/// by `status_code` (401/403 AccessDenied, 429 Throttled, 5xx ServiceFailure, else
/// RejectedOther; 404 ResourceNotFound). Never returns Ok.
[[nodiscard]] Errc rejection_errc(std::int64_t status_code, std::string_view error_code) noexcept;

/// A short, static, human-readable description of `e` (never allocates).
[[nodiscard]] const char* to_string(Errc e) noexcept;

/// The `std::error_category` of `Errc` (name "edgekit.provisioning"). Thread safe. Not pure
/// (std::string): in its own target, `edgekit::provisioning_error_category`.
[[nodiscard]] const std::error_category& provisioning_category() noexcept;

/// Wires `Errc` into `std::error_code`.
[[nodiscard]] inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), provisioning_category()};
}

}  // namespace edgekit::provisioning

template <>
struct std::is_error_code_enum<edgekit::provisioning::Errc> : std::true_type {};

/// `Errc::Ok` is zero: a `Result<void, Errc>` is the error alone (result.hpp).
template <>
inline constexpr bool edgekit::kZeroErrorMeansSuccess<edgekit::provisioning::Errc> = true;
