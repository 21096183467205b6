// The execution state machine (aws-iot-protocols.md 2.4). Kept in one table-like function per
// actor so that a reader can check it against the fact sheet line by line.

#include "jobs/execution.hpp"

#include <array>
#include <utility>

namespace edgekit::fleetd::jobs {
namespace {

constexpr std::array<std::pair<ExecutionStatus, std::string_view>, 8> kNames{{
    {ExecutionStatus::Queued, "QUEUED"},
    {ExecutionStatus::InProgress, "IN_PROGRESS"},
    {ExecutionStatus::Succeeded, "SUCCEEDED"},
    {ExecutionStatus::Failed, "FAILED"},
    {ExecutionStatus::Rejected, "REJECTED"},
    {ExecutionStatus::TimedOut, "TIMED_OUT"},
    {ExecutionStatus::Removed, "REMOVED"},
    {ExecutionStatus::Canceled, "CANCELED"},
}};

ExecutionState bumped(const ExecutionState& s, ExecutionStatus to) noexcept {
  return ExecutionState{to, s.version_number + 1, s.execution_number};
}

}  // namespace

const char* to_string(ExecutionStatus s) noexcept {
  for (const auto& [status, name] : kNames) {
    if (status == s) return name.data();
  }
  return "QUEUED";
}

std::optional<ExecutionStatus> execution_status_from(std::string_view s) noexcept {
  for (const auto& [status, name] : kNames) {
    if (name == s) return status;
  }
  return std::nullopt;
}

bool is_terminal(ExecutionStatus s) noexcept {
  return s != ExecutionStatus::Queued && s != ExecutionStatus::InProgress;
}

bool device_may_report(ExecutionStatus s) noexcept {
  return s == ExecutionStatus::InProgress || s == ExecutionStatus::Succeeded ||
         s == ExecutionStatus::Failed || s == ExecutionStatus::Rejected;
}

bool retryable(ExecutionStatus s) noexcept {
  return s == ExecutionStatus::Failed || s == ExecutionStatus::TimedOut;
}

UpdateDecision decide_device_update(const ExecutionState& current, ExecutionStatus requested,
                                    std::optional<std::int64_t> expected_version,
                                    std::optional<std::int64_t> execution_number) noexcept {
  UpdateDecision d;
  if (!device_may_report(requested)) {
    d.refusal = Refusal::InvalidRequest;
    return d;
  }
  if (execution_number && *execution_number != current.execution_number) {
    d.refusal = Refusal::ResourceNotFound;
    return d;
  }
  if (is_terminal(current.status)) {
    d.refusal = Refusal::InvalidStateTransition;
    return d;
  }
  if (expected_version && *expected_version != current.version_number) {
    d.refusal = Refusal::VersionMismatch;
    return d;
  }
  if (current.status == ExecutionStatus::InProgress && requested == ExecutionStatus::Rejected) {
    d.refusal = Refusal::InvalidStateTransition;
    return d;
  }
  d.next = bumped(current, requested);
  d.starts = current.status == ExecutionStatus::Queued;
  return d;
}

std::optional<ExecutionState> decide_service_change(const ExecutionState& current,
                                                    ExecutionStatus to, bool force) noexcept {
  if (is_terminal(current.status)) return std::nullopt;
  switch (to) {
    case ExecutionStatus::TimedOut:
      if (current.status != ExecutionStatus::InProgress) return std::nullopt;
      return bumped(current, to);
    case ExecutionStatus::Canceled:
      if (current.status == ExecutionStatus::InProgress && !force) return std::nullopt;
      return bumped(current, to);
    case ExecutionStatus::Removed:
      return bumped(current, to);
    default:
      return std::nullopt;
  }
}

}  // namespace edgekit::fleetd::jobs
