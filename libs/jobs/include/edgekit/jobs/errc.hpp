#pragma once
/// \file
/// Errors of the Jobs library (aws-iot-protocols.md 2): the service's rejections, each error
/// `code` of the fact sheet (2.3) with a value of its own so that a device acts on it without
/// comparing strings, the local failures of the pure part, and those of the executor.
/// The rejection document itself (code, message, clientToken, executionState) is kept apart, in
/// `Rejected` (documents.hpp).
/// Pure: no heap; `to_string` returns static text. Thread safety: none needed (no state).

#include <cstdint>
#include <string_view>
#include <system_error>

#include "edgekit/core/result.hpp"

namespace edgekit::jobs {

/// Every error the jobs library returns. Values are stable; new ones go at the end of a group.
enum class Errc : std::uint8_t {
  Ok = 0,

  // --- The service rejected the request (…/rejected, `code`, aws-iot-protocols.md 2.3). --------
  InvalidTopic = 1,        ///< "InvalidTopic": the request topic is not a Jobs request topic
  InvalidJson,             ///< "InvalidJson": the request is not a JSON document
  InvalidRequest,          ///< "InvalidRequest": a field missing or out of range (e.g. no status)
  InvalidStateTransition,  ///< "InvalidStateTransition": the status cannot follow the current one
                           ///< (e.g. an update of a terminal execution); executionState attached
  ResourceNotFound,        ///< "ResourceNotFound": no such job or execution (retryable, 2.3)
  VersionMismatch,         ///< "VersionMismatch": expectedVersion is not the execution's version;
                           ///< executionState attached
  InternalError,           ///< "InternalError" (retryable)
  RequestThrottled,        ///< "RequestThrottled" (retryable)
  TerminalStateReached,    ///< "TerminalStateReached": the execution is in a terminal state
  RejectedOther,           ///< any other code (one the fact sheet does not list)

  // --- The document received could not be used. ------------------------------------------------
  MalformedDocument = 30,  ///< not JSON, not an object, a required member missing, a member of
                           ///< the wrong type, an unknown status, an invalid jobId

  // --- Caller errors (pure part). -------------------------------------------------------------
  BufferTooSmall = 40,  ///< the caller's buffer cannot hold the topic or document
  InvalidArgument,      ///< a thing name or job id outside AWS's limits, a clientToken longer
                        ///< than 64 bytes, a statusDetails key or value outside its limits (or a
                        ///< key twice), a status a device may not set, a step timeout below -1,
                        ///< a topic kind the operation does not have, text that is not UTF-8
  TopicMismatch,        ///< the topic is not a Jobs topic

  // --- Executor (executor.hpp). ---------------------------------------------------------------
  Busy = 60,     ///< a request is in flight: call again after its reply (or request_lost)
  NoJobRunning,  ///< progress or an outcome reported while no job is running
  StoreFailed,   ///< the application's RecordStore could not save or clear the record

  // --- Runner (runner.hpp: over MQTT, through edgekit::reqres). ----------------------------------
  Timeout = 80,     ///< no reply within the request timeout (after every re-send)
  NotConnected,     ///< the MQTT connection is down (or the agent is stopped)
  PublishFailed,    ///< a request could not be published
  SubscribeFailed,  ///< the broker refused the jobs topics, or did not answer in time
  ReplyTooLarge,    ///< a reply does not fit the reply buffer (a job document too large)
  WouldDeadlock,    ///< a waiting call made on the agent's own thread
};

/// True for the failures that a later, identical request may not meet again: the rejections
/// RequestThrottled, ResourceNotFound and InternalError (device clients retry these,
/// aws-iot-protocols.md 2.3), and Timeout, NotConnected and PublishFailed.
/// Every value is listed, so a new `Errc` fails to compile until it is placed.
[[nodiscard]] constexpr bool is_retryable(Errc e) noexcept {
  switch (e) {
    case Errc::RequestThrottled:
    case Errc::ResourceNotFound:
    case Errc::InternalError:
      return true;
    case Errc::Ok:
    case Errc::InvalidTopic:
    case Errc::InvalidJson:
    case Errc::InvalidRequest:
    case Errc::InvalidStateTransition:
    case Errc::VersionMismatch:
    case Errc::TerminalStateReached:
    case Errc::RejectedOther:
    case Errc::MalformedDocument:
    case Errc::BufferTooSmall:
    case Errc::InvalidArgument:
    case Errc::TopicMismatch:
    case Errc::Busy:
    case Errc::NoJobRunning:
    case Errc::StoreFailed:
    case Errc::ReplyTooLarge:
    case Errc::WouldDeadlock:
    case Errc::SubscribeFailed:
      return false;
    case Errc::Timeout:
    case Errc::NotConnected:
    case Errc::PublishFailed:
      return true;
  }
  return false;
}

/// True for the values that stand for a …/rejected reply of the service.
[[nodiscard]] constexpr bool is_rejection(Errc e) noexcept {
  return e >= Errc::InvalidTopic && e <= Errc::RejectedOther;
}

/// The `Errc` of a rejection's `code`, compared exactly (case-sensitive); RejectedOther for any
/// other code. Never returns Ok.
[[nodiscard]] Errc rejection_errc(std::string_view code) noexcept;

/// A short, static, human-readable description of `e` (never allocates).
[[nodiscard]] const char* to_string(Errc e) noexcept;

/// The `std::error_category` of `Errc` (name "edgekit.jobs"). Thread safe. Not pure
/// (std::string): in its own target, `edgekit::jobs_error_category`.
[[nodiscard]] const std::error_category& jobs_category() noexcept;

/// Wires `Errc` into `std::error_code`.
[[nodiscard]] inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), jobs_category()};
}

}  // namespace edgekit::jobs

template <>
struct std::is_error_code_enum<edgekit::jobs::Errc> : std::true_type {};

/// `Errc::Ok` is zero: a `Result<void, Errc>` is the error alone (result.hpp).
template <>
inline constexpr bool edgekit::kZeroErrorMeansSuccess<edgekit::jobs::Errc> = true;
