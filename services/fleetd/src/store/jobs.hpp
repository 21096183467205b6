#pragma once
/// \file
/// The store's records of AWS IoT Jobs (aws-iot-protocols.md 2): jobs (their inline document,
/// targets, target selection, status and the AWS-shaped configurations: timeouts, retries,
/// abort criteria, rollout rate, and fleetd's rollout groups) and job executions (one row per
/// attempt of a job on a thing: executionNumber, status, versionNumber, statusDetails,
/// timestamps, the absolute deadlines of its timers, the retry attempt). Everything a timer or
/// a rollout needs lives here, so that it survives a fleetd restart.
///
/// Kept beside the registry's operations (store.hpp), over the same transaction, in the tables
/// of the jobs schema migration. Thread safety: that of `Tx`.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jobs/execution.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd {

/// AWS's limit on an inline job document (BOTO-J).
inline constexpr std::size_t kMaxJobDocument = 32768;

/// A job's own status (AWS's JobStatus, without the deletion states: fleetd deletes at once).
enum class JobStatus { InProgress, Canceled, Completed };
/// "IN_PROGRESS", "CANCELED", "COMPLETED".
[[nodiscard]] const char* to_string(JobStatus s) noexcept;
[[nodiscard]] std::optional<JobStatus> job_status_from(std::string_view s) noexcept;

struct Job {
  std::string job_id;  ///< 1-64 of [a-zA-Z0-9_-]
  std::string document;  ///< a JSON object, at most kMaxJobDocument bytes
  std::string description;
  std::vector<std::string> target_things;  ///< sorted, unique
  std::vector<std::string> target_groups;  ///< sorted, unique
  bool continuous = false;  ///< targetSelection CONTINUOUS (else SNAPSHOT)
  JobStatus status = JobStatus::InProgress;
  bool force_canceled = false;
  bool paused = false;  ///< a rollout paused by an admin or by an error threshold
  std::string reason_code;  ///< why it was canceled (an admin's, or abort criteria's)
  std::string comment;
  std::int64_t in_progress_timeout_minutes = 0;  ///< 0: none
  /// AWS-shaped configurations as JSON text ("" = none): jobExecutionsRetryConfig,
  /// abortConfig, jobExecutionsRolloutConfig; and fleetd's rolloutGroups (a JSON array).
  std::string retry_config;
  std::string abort_config;
  std::string rollout_config;
  std::string rollout_groups;
  /// Rollout progress: how many executions were created so far (the rate counts them).
  std::int64_t rollout_created = 0;
  std::int64_t created_at = 0;
  std::int64_t last_updated_at = 0;
  std::int64_t completed_at = 0;  ///< 0 until COMPLETED or CANCELED
};

struct JobExecution {
  std::string job_id;
  std::string thing_name;
  std::int64_t execution_number = 1;
  jobs::ExecutionStatus status = jobs::ExecutionStatus::Queued;
  std::int64_t version_number = 1;
  std::map<std::string, std::string> status_details;
  std::int64_t queued_at = 0;
  std::int64_t started_at = 0;  ///< 0 until it left QUEUED
  std::int64_t last_updated_at = 0;
  std::int64_t step_timeout_at = 0;         ///< epoch seconds; 0 none
  std::int64_t in_progress_timeout_at = 0;  ///< epoch seconds; 0 none
  std::int64_t retry_attempt = 0;           ///< 0 for the first attempt
  std::int64_t rollout_group = 0;           ///< index into the job's rollout groups
  [[nodiscard]] jobs::ExecutionState state() const noexcept {
    return {status, version_number, execution_number};
  }
};

/// Checks and records a new job (status IN_PROGRESS, created_at now). InvalidArgument (job id,
/// document not a JSON object or too large, no targets, configurations not JSON); NotFound (a
/// target thing or group); AlreadyExists.
[[nodiscard]] Res<Job> create_job(Tx& tx, Job job);
/// NotFound.
[[nodiscard]] Res<Job> get_job(Tx& tx, std::string_view job_id);
/// Writes the mutable fields (status, force_canceled, paused, reason_code, comment,
/// rollout_created, completed_at; last_updated_at = now). NotFound.
[[nodiscard]] Res<Job> save_job(Tx& tx, const Job& job);
/// In job id order.
[[nodiscard]] Res<Page<Job>> list_jobs(Tx& tx, const PageRequest& page);
/// The things a job targets now: its things and the current members of its groups, sorted,
/// unique.
[[nodiscard]] Res<std::vector<std::string>> job_target_things(Tx& tx, const Job& job);
/// IN_PROGRESS CONTINUOUS jobs that target `group` (a thing added to it gets them).
[[nodiscard]] Res<std::vector<std::string>> continuous_jobs_of_group(Tx& tx,
                                                                     std::string_view group);
/// IN_PROGRESS jobs, in job id order (the timers and rollouts walk them).
[[nodiscard]] Res<std::vector<std::string>> active_job_ids(Tx& tx);

/// Records a new execution. AlreadyExists for a (job, thing, execution number) that exists.
[[nodiscard]] Res<void> insert_execution(Tx& tx, const JobExecution& e);
/// Writes the execution's mutable fields, provided its stored version is `previous_version`
/// (Conflict otherwise: another change won). NotFound.
[[nodiscard]] Res<void> save_execution(Tx& tx, const JobExecution& e,
                                       std::int64_t previous_version);
/// The latest execution (highest execution number) of `job_id` on `thing`; nullopt when none.
[[nodiscard]] Res<std::optional<JobExecution>> latest_execution(Tx& tx, std::string_view job_id,
                                                                std::string_view thing);
/// A given execution number; nullopt when none.
[[nodiscard]] Res<std::optional<JobExecution>> get_execution(Tx& tx, std::string_view job_id,
                                                             std::string_view thing,
                                                             std::int64_t execution_number);
/// The thing's QUEUED and IN_PROGRESS executions: IN_PROGRESS first, then by queuedAt, then
/// job id (AWS's order for notify and start-next).
[[nodiscard]] Res<std::vector<JobExecution>> pending_executions(Tx& tx, std::string_view thing);
/// The latest execution of each thing of the job, in thing order, optionally only those with
/// `status`; keyset-paginated by thing name.
[[nodiscard]] Res<Page<JobExecution>> job_executions(Tx& tx, std::string_view job_id,
                                                     const PageRequest& page,
                                                     std::optional<jobs::ExecutionStatus> status);
/// Counts of the latest executions of the job by status (describe's jobProcessDetails, abort
/// criteria, rollout rates), from job_execution_counts, which insert_execution and
/// save_execution keep: cost independent of the job's size.
[[nodiscard]] Res<std::map<jobs::ExecutionStatus, std::int64_t>> execution_counts(
    Tx& tx, std::string_view job_id);
/// The same counts made from the executions themselves (every execution of the job visited):
/// what execution_counts must always equal; for tests and checks, not for the request path.
[[nodiscard]] Res<std::map<jobs::ExecutionStatus, std::int64_t>> counted_latest_executions(
    Tx& tx, std::string_view job_id);
/// Whether any execution of the job is QUEUED or IN_PROGRESS (settling a job after each ended
/// execution). One index probe (job_executions_by_job_status), where execution_counts visits
/// every execution of the job: at 10,000 things that was 18 ms per ended execution, which made a
/// rollout quadratic.
[[nodiscard]] Res<bool> has_unfinished_executions(Tx& tx, std::string_view job_id);
/// Every attempt of the job (all execution numbers), counted by status (abort criteria count
/// failures of every attempt).
[[nodiscard]] Res<std::map<jobs::ExecutionStatus, std::int64_t>> attempt_counts(
    Tx& tx, std::string_view job_id);
/// Up to `limit` things the job targets now that have no execution of it yet, in name order
/// (the rollout's next things).
[[nodiscard]] Res<std::vector<std::string>> unstarted_targets(Tx& tx, const Job& job,
                                                             std::size_t limit);
/// First attempts (execution number 1) of the job queued at or after `since` (0: all): the
/// things notified, which the rollout rate counts.
[[nodiscard]] Res<std::int64_t> first_attempts(Tx& tx, std::string_view job_id,
                                               std::int64_t since);
/// Every attempt of the job on one thing, counted by status (retries count them).
[[nodiscard]] Res<std::map<jobs::ExecutionStatus, std::int64_t>> thing_attempt_counts(
    Tx& tx, std::string_view job_id, std::string_view thing);
/// IN_PROGRESS executions whose step or in-progress deadline is at or before `now`.
[[nodiscard]] Res<std::vector<JobExecution>> expired_executions(Tx& tx, std::int64_t now);
/// The earliest step or in-progress deadline of an IN_PROGRESS execution; 0 when none.
[[nodiscard]] Res<std::int64_t> next_deadline(Tx& tx);

}  // namespace edgekit::fleetd
