#pragma once
/// \file
/// The job execution state machine of AWS IoT Jobs (aws-iot-protocols.md 2.4), as pure code:
/// which statuses exist, which are terminal, which changes a device may ask for and which the
/// service makes itself, and what each does to `versionNumber`. No store, no clock: the caller
/// passes the current state and gets a decision, so every allowed and refused transition is
/// unit-tested without a database (jobs_unit_test) and the MQTT and admin paths cannot
/// disagree.
///
/// Thread safety: stateless functions; safe from any thread.

#include <cstdint>
#include <optional>
#include <string_view>

namespace edgekit::fleetd::jobs {

enum class ExecutionStatus { Queued, InProgress, Succeeded, Failed, Rejected, TimedOut, Removed, Canceled };

/// AWS's names: "QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT",
/// "REMOVED", "CANCELED".
[[nodiscard]] const char* to_string(ExecutionStatus s) noexcept;
/// nullopt for anything but those exact names.
[[nodiscard]] std::optional<ExecutionStatus> execution_status_from(std::string_view s) noexcept;
/// SUCCEEDED, FAILED, REJECTED, TIMED_OUT, REMOVED, CANCELED: nothing changes them again.
[[nodiscard]] bool is_terminal(ExecutionStatus s) noexcept;
/// QUEUED and IN_PROGRESS: the thing's pending executions (get, start-next, notify).
[[nodiscard]] inline bool is_pending(ExecutionStatus s) noexcept { return !is_terminal(s); }
/// The statuses a device may report in UpdateJobExecution: IN_PROGRESS, SUCCEEDED, FAILED,
/// REJECTED (the others are the service's to set).
[[nodiscard]] bool device_may_report(ExecutionStatus s) noexcept;
/// The failures a retry configuration may retry (FAILED and TIMED_OUT, as AWS's
/// `failureType`s); REJECTED, CANCELED and REMOVED are never retried.
[[nodiscard]] bool retryable(ExecutionStatus s) noexcept;

/// The part of an execution the decisions look at.
struct ExecutionState {
  ExecutionStatus status = ExecutionStatus::Queued;
  std::int64_t version_number = 1;  ///< 1 when queued; +1 per accepted change
  std::int64_t execution_number = 1;
};

/// Why a device's update is refused (the `code` of the …/rejected document).
enum class Refusal {
  None,
  InvalidRequest,          ///< a status a device may not report (QUEUED, TIMED_OUT, ...)
  InvalidStateTransition,  ///< from a terminal status, or a change the table does not allow
  VersionMismatch,         ///< `expectedVersion` is not the current version
  ResourceNotFound,        ///< `executionNumber` names another execution of the job
};

/// The decision on one device update.
struct UpdateDecision {
  Refusal refusal = Refusal::None;
  ExecutionState next{};  ///< the state after the update (when refusal is None)
  bool starts = false;    ///< QUEUED -> anything: startedAt is set now
};

/// A device's UpdateJobExecution of `current` to `requested`. Checks in this order: a status a
/// device may not report (InvalidRequest); an `execution_number` that is not the current one
/// (ResourceNotFound); a terminal current status (InvalidStateTransition — AWS's example is
/// SUCCEEDED -> IN_PROGRESS); `expected_version` (VersionMismatch); then the table:
///   QUEUED      -> IN_PROGRESS, SUCCEEDED, FAILED, REJECTED
///   IN_PROGRESS -> IN_PROGRESS (refreshes statusDetails and the step timer), SUCCEEDED, FAILED
/// IN_PROGRESS -> REJECTED is refused: REJECTED means "never started, incompatible", which the
/// FreeRTOS OTA agent relies on by reporting FAILED once it has started.
/// Each accepted update increments `version_number`.
[[nodiscard]] UpdateDecision decide_device_update(const ExecutionState& current,
                                                  ExecutionStatus requested,
                                                  std::optional<std::int64_t> expected_version,
                                                  std::optional<std::int64_t> execution_number) noexcept;

/// A change the service makes: TIMED_OUT (timer expiry), CANCELED (job or execution canceled,
/// or the job aborted), REMOVED (the thing left the target group). Returns nullopt when it does
/// not apply: nothing changes a terminal execution; TIMED_OUT applies to IN_PROGRESS only (a
/// queued execution has no running timer); CANCELED applies to an IN_PROGRESS execution only
/// with `force` (AWS's CancelJob --force); REMOVED applies to QUEUED and IN_PROGRESS. An
/// applied change increments `version_number`.
[[nodiscard]] std::optional<ExecutionState> decide_service_change(const ExecutionState& current,
                                                                  ExecutionStatus to,
                                                                  bool force) noexcept;

}  // namespace edgekit::fleetd::jobs
