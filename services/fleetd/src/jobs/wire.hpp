#pragma once
/// \file
/// The device side of AWS IoT Jobs on the wire (aws-iot-protocols.md 2.1-2.3): reading a
/// request's topic and payload (untrusted bytes: fuzzed by fuzz_fleetd_jobs) and writing the
/// reply and event documents with AWS's exact members. No store, no clock: the time is a
/// parameter (epoch seconds, as AWS's MQTT timestamps).
///
/// Thread safety: stateless functions; safe from any thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgekit/json/json.hpp"
#include "jobs/execution.hpp"

namespace edgekit::fleetd {
struct JobExecution;
}

namespace edgekit::fleetd::jobs {

/// The filters fleetd subscribes to (not `…/jobs/#`: notify and the replies are its own).
inline constexpr std::string_view kGetPendingFilter = "$aws/things/+/jobs/get";
inline constexpr std::string_view kStartNextFilter = "$aws/things/+/jobs/start-next";
inline constexpr std::string_view kDescribeFilter = "$aws/things/+/jobs/+/get";
inline constexpr std::string_view kUpdateFilter = "$aws/things/+/jobs/+/update";

enum class Operation { GetPending, StartNext, Describe, Update };

/// A request topic taken apart. Views into the topic.
struct RequestTopic {
  Operation operation = Operation::GetPending;
  std::string_view thing;
  std::string_view job_id;  ///< Describe and Update only; "$next" possible for Describe
};

/// AWS's error codes of a …/rejected document.
enum class ErrorCode {
  InvalidTopic,
  InvalidJson,
  InvalidRequest,
  InvalidStateTransition,
  ResourceNotFound,
  VersionMismatch,
  InternalError,
  RequestThrottled,
  TerminalStateReached,
};
/// "InvalidTopic", "InvalidJson", ... (AWS's spelling).
[[nodiscard]] const char* to_string(ErrorCode c) noexcept;

struct Rejection {
  ErrorCode code = ErrorCode::InvalidRequest;
  std::string message;
};

/// Reads a topic fleetd subscribed to. nullopt when it is not a jobs request topic at all (not
/// answered). A topic that is one in shape but names an invalid thing or job id (or `$next`
/// anywhere but Describe) returns the operation with `rejection` set to InvalidTopic, so the
/// device still gets its …/rejected.
struct TopicReading {
  RequestTopic topic;
  std::optional<Rejection> rejection;
};
[[nodiscard]] std::optional<TopicReading> read_topic(std::string_view topic);

/// A request's members (aws-iot-protocols.md 2.2); each optional as in AWS's API.
struct Request {
  std::optional<std::string> client_token;
  std::optional<std::map<std::string, std::string>> status_details;
  std::optional<std::int64_t> step_timeout_minutes;  ///< -1 discards the step timer
  std::optional<std::int64_t> expected_version;
  std::optional<std::int64_t> execution_number;
  std::optional<ExecutionStatus> status;  ///< Update: required
  bool include_job_document = true;       ///< Describe: default true; Update: default false
  bool include_execution_state = false;   ///< Update only
};

/// A request, or why not, with the clientToken read when the payload got that far (so that even
/// a rejection echoes it).
struct RequestReading {
  std::optional<Request> request;
  Rejection rejection;  ///< when `request` is empty
  std::optional<std::string> client_token;
};
/// Reads a request payload. An empty payload is `{}` (AWS's demos send none for get). Checks:
/// a JSON object (InvalidJson); clientToken a string of at most 64 bytes; statusDetails an
/// object of at most 10 entries with keys 1-128 of [a-zA-Z0-9:_-] and string values 1-1024
/// characters without control characters; stepTimeoutInMinutes -1 or 1..10080;
/// expectedVersion a number or numeric string; executionNumber a positive number; Update's
/// status required and one a device may report; booleans as booleans (InvalidRequest for each,
/// naming the member).
[[nodiscard]] RequestReading read_request(Operation op, std::string_view payload);

/// `<request topic>/accepted` or `/rejected`.
[[nodiscard]] std::string reply_topic(std::string_view request_topic, bool accepted);
/// `$aws/things/<thing>/jobs/notify` and `…/notify-next`.
[[nodiscard]] std::string notify_topic(std::string_view thing);
[[nodiscard]] std::string notify_next_topic(std::string_view thing);

/// A JobExecution (jobId, thingName, jobDocument when given, status, statusDetails when any,
/// queuedAt, startedAt once started, lastUpdatedAt, versionNumber, executionNumber).
/// `job_document` is the job's JSON object text (nullptr: omitted).
[[nodiscard]] nlohmann::json execution_json(const JobExecution& e, const std::string* job_document);
/// A JobExecutionSummary.
[[nodiscard]] nlohmann::json summary_json(const JobExecution& e);
/// JobExecutionState: status, statusDetails, versionNumber.
[[nodiscard]] nlohmann::json state_json(const JobExecution& e);
/// The …/rejected document: code, message, timestamp, clientToken when the request had one,
/// executionState when given (InvalidStateTransition, VersionMismatch).
[[nodiscard]] nlohmann::json rejection_json(const Rejection& r, std::int64_t now,
                                            const std::optional<std::string>& client_token,
                                            const JobExecution* state);
/// get/accepted: inProgressJobs and queuedJobs from `pending` (in its order).
[[nodiscard]] nlohmann::json pending_json(const std::vector<JobExecution>& pending,
                                          std::int64_t now,
                                          const std::optional<std::string>& client_token);
/// notify: {"timestamp", "jobs": {"IN_PROGRESS": [...], "QUEUED": [...]}} with at most 10
/// summaries, in `pending`'s order; `"jobs": {}` when empty.
[[nodiscard]] nlohmann::json notify_json(const std::vector<JobExecution>& pending, std::int64_t now);

}  // namespace edgekit::fleetd::jobs
