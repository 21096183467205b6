#pragma once
/// \file
/// Jobs request writers and reply readers (aws-iot-protocols.md 2.2-2.5), JSON over edgekit::doc's
/// allocation-free reader and writer. Member names are AWS's exactly: `clientToken`,
/// `statusDetails`, `stepTimeoutInMinutes`, `executionNumber`, `includeJobDocument`, `status`,
/// `expectedVersion`, `includeJobExecutionState`, `inProgressJobs`, `queuedJobs`, `jobs`,
/// `execution`, `executionState`, `jobDocument`, `jobId`, `thingName`, `queuedAt`, `startedAt`,
/// `lastUpdatedAt`, `versionNumber`, `timestamp`, `code`, `message`.
///
/// Writers fill the caller's buffer and return a view of the document in it. Readers take the
/// payload of a reply or notification (untrusted bytes; one trailing NUL byte is tolerated, as
/// edgekit::doc does) and return views into it (`doc::json::Value`, `std::string_view`): the
/// caller reads a job document with the doc reader (`find`, `at_path`, `as_string_view`, ...).
/// Every view stays valid as long as the payload is unchanged and alive. Unknown members are
/// ignored (AWS may add some); a known member of the wrong type is MalformedDocument, and so is a
/// document nested deeper than 16 levels (edgekit::doc's default). Timestamps are integer epoch
/// seconds (section 0).
/// Pure: no heap, no I/O, no clock. Thread safety: none needed (no state).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "edgekit/doc/json.hpp"
#include "edgekit/jobs/errc.hpp"

namespace edgekit::jobs {

/// The longest clientToken the service accepts (section 0).
inline constexpr std::size_t kMaxClientTokenLength = 64;
/// statusDetails limits (2.5): a key is 1-128 characters of `[a-zA-Z0-9:_-]`, a value a string
/// of 1-1024 characters without control characters.
inline constexpr std::size_t kMaxStatusDetailKeyLength = 128;
inline constexpr std::size_t kMaxStatusDetailValueLength = 1024;

/// The status of a job execution (2.4).
enum class JobStatus : std::uint8_t {
  Queued,
  InProgress,
  Succeeded,
  Failed,
  Rejected,
  TimedOut,
  Removed,
  Canceled,
};

/// AWS's spelling: "QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT",
/// "REMOVED", "CANCELED".
[[nodiscard]] std::string_view to_string(JobStatus s) noexcept;
/// Whether no status can follow `s` (everything but QUEUED and IN_PROGRESS, 2.4).
[[nodiscard]] constexpr bool is_terminal(JobStatus s) noexcept {
  return s != JobStatus::Queued && s != JobStatus::InProgress;
}
/// Whether a device may set `s` in an update (IN_PROGRESS, SUCCEEDED, FAILED, REJECTED, 2.2).
[[nodiscard]] constexpr bool device_may_set(JobStatus s) noexcept {
  return s == JobStatus::InProgress || s == JobStatus::Succeeded || s == JobStatus::Failed ||
         s == JobStatus::Rejected;
}

/// One entry of statusDetails (a map of strings to strings, 2.5).
struct StatusDetail {
  std::string_view key;
  std::string_view value;
};

/// Whether `key` can be a statusDetails key: 1-128 characters of `[a-zA-Z0-9:_-]`.
[[nodiscard]] bool valid_status_detail_key(std::string_view key) noexcept;
/// Whether `value` can be a statusDetails value: well-formed UTF-8 of 1-1024 characters (code
/// points) with no control character (U+0000-U+001F, U+007F-U+009F). AWS's rule excludes every
/// Unicode "other" character (`\p{C}`: also format, private-use and unassigned code points);
/// those need Unicode tables, so they are left to the service, which rejects them.
[[nodiscard]] bool valid_status_detail_value(std::string_view value) noexcept;

// --- Requests -----------------------------------------------------------------------------------

/// The GetPendingJobExecutions request (J/get): `{"clientToken":"<token>"}`, or `{}` when
/// `client_token` is empty.
/// Errors: InvalidArgument (token longer than 64 bytes or not UTF-8), BufferTooSmall.
[[nodiscard]] Result<std::string_view, Errc> write_get_pending_request(
    std::string_view client_token, std::span<char> out) noexcept;

/// StartNextPendingJobExecution (J/start-next), every field optional.
struct StartNextRequest {
  /// Absent: none sent. Present (even empty: `{}`): sent as given.
  std::optional<std::span<const StatusDetail>> status_details;
  /// The step timer for the execution it starts (-1: none, 2.5).
  std::optional<std::int64_t> step_timeout_in_minutes;
  std::string_view client_token;  ///< empty: none
};

/// Writes a StartNext request. Errors: InvalidArgument (a statusDetails key or value outside the
/// limits, a key twice, a step timeout below -1, a token longer than 64 bytes), BufferTooSmall.
[[nodiscard]] Result<std::string_view, Errc> write_start_next_request(
    const StartNextRequest& request, std::span<char> out) noexcept;

/// DescribeJobExecution (J/{jobId}/get), every field optional.
struct DescribeRequest {
  std::optional<std::int64_t> execution_number;  ///< absent: the latest execution
  /// Absent: not sent (the service's default over MQTT is true, 2.2).
  std::optional<bool> include_job_document;
  std::string_view client_token;
};

/// Writes a Describe request. Errors: InvalidArgument (token), BufferTooSmall.
[[nodiscard]] Result<std::string_view, Errc> write_describe_request(const DescribeRequest& request,
                                                                    std::span<char> out) noexcept;

/// UpdateJobExecution (J/{jobId}/update). `status` is required.
struct UpdateRequest {
  JobStatus status = JobStatus::InProgress;
  /// Absent: the service keeps the previous details (2.5).
  std::optional<std::span<const StatusDetail>> status_details;
  std::optional<std::int64_t> execution_number;
  std::optional<bool> include_job_execution_state;  ///< the service's default is false
  std::optional<bool> include_job_document;         ///< the service's default is false
  std::optional<std::int64_t> step_timeout_in_minutes;
  /// The update succeeds only if this is the execution's current versionNumber (else
  /// VersionMismatch). Written as a JSON number, as AWS's generated SDKs do.
  std::optional<std::uint64_t> expected_version;
  std::string_view client_token;
};

/// Writes an Update request. Members are written in the order of the struct: `status` first,
/// `expectedVersion` and `clientToken` last (the executor relies on it).
/// Errors: InvalidArgument (a status a device may not set: QUEUED, TIMED_OUT, REMOVED, CANCELED;
/// statusDetails outside the limits; a step timeout below -1; a token longer than 64 bytes),
/// BufferTooSmall.
[[nodiscard]] Result<std::string_view, Errc> write_update_request(const UpdateRequest& request,
                                                                  std::span<char> out) noexcept;

// --- Replies and notifications ------------------------------------------------------------------

/// A JobExecutionSummary (2.3): an entry of notify's and get/accepted's lists.
struct JobExecutionSummary {
  std::string_view job_id;  ///< a valid job id (a view into the payload)
  std::optional<std::int64_t> queued_at;
  std::optional<std::int64_t> started_at;  ///< absent until the execution started
  std::optional<std::int64_t> last_updated_at;
  std::optional<std::uint64_t> version_number;
  std::optional<std::int64_t> execution_number;
};

/// A list of JobExecutionSummary, already checked by the reader that returned it, for range-for:
/// `for (const JobExecutionSummary& s : pending.queued) ...`. A view into the payload.
class SummaryList {
 public:
  class iterator;
  struct sentinel {};
  SummaryList() = default;
  /// `array`: a JSON array whose every element reads as a summary (else the list is empty).
  explicit SummaryList(doc::json::Value array) noexcept : array_(array) {}
  [[nodiscard]] iterator begin() const noexcept;
  [[nodiscard]] sentinel end() const noexcept { return {}; }
  [[nodiscard]] bool empty() const noexcept { return array_.elements().empty(); }
  /// The number of entries (linear: counted on each call).
  [[nodiscard]] std::size_t size() const noexcept { return array_.size(); }

 private:
  doc::json::Value array_;
};

/// Reads one summary. Required: `jobId` (a valid job id without escapes). Optional: the times,
/// `versionNumber` (non-negative), `executionNumber` (integers). Errors: MalformedDocument.
[[nodiscard]] Result<JobExecutionSummary, Errc> read_summary(const doc::json::Value& v) noexcept;

class SummaryList::iterator {
 public:
  using value_type = JobExecutionSummary;
  using difference_type = std::ptrdiff_t;
  iterator() = default;
  iterator(doc::json::ElementRange::iterator it, doc::json::ElementRange::sentinel end) noexcept
      : it_(it), end_(end) {}
  /// The summary at this position (the list's reader checked that it reads).
  [[nodiscard]] JobExecutionSummary operator*() const noexcept {
    return read_summary(*it_).value_or(JobExecutionSummary{});
  }
  iterator& operator++() noexcept {
    ++it_;
    return *this;
  }
  [[nodiscard]] friend bool operator==(const iterator& a, const sentinel&) noexcept {
    return a.it_ == a.end_;
  }

 private:
  doc::json::ElementRange::iterator it_;
  doc::json::ElementRange::sentinel end_;
};

inline SummaryList::iterator SummaryList::begin() const noexcept {
  const doc::json::ElementRange r = array_.elements();
  return {r.begin(), r.end()};
}

/// The state part of an execution (JobExecutionState, 2.3).
struct JobExecutionState {
  JobStatus status = JobStatus::Queued;
  std::optional<doc::json::Value> status_details;  ///< an object of strings
  std::optional<std::uint64_t> version_number;
};

/// A JobExecution (2.3).
struct JobExecution {
  std::string_view job_id;                       ///< a valid job id (a view into the payload)
  doc::json::Value thing_name;                   ///< a string Value (Null when absent)
  std::optional<doc::json::Value> job_document;  ///< an object (absent when not asked for)
  JobStatus status = JobStatus::Queued;
  std::optional<doc::json::Value> status_details;  ///< an object of strings
  std::optional<std::int64_t> queued_at;
  std::optional<std::int64_t> started_at;
  std::optional<std::int64_t> last_updated_at;
  std::optional<std::uint64_t> version_number;
  std::optional<std::int64_t> execution_number;
};

/// start-next/accepted, {jobId}/get/accepted, and notify-next: the execution (absent when
/// nothing is pending, or when notify-next says the queue emptied).
struct ExecutionReply {
  std::optional<JobExecution> execution;
  std::int64_t timestamp = 0;
  /// The request's token as echoed (a string Value; Null when absent, always for notify-next):
  /// correlate with `client_token.equals(mine)`.
  doc::json::Value client_token;
};

/// Reads start-next/accepted, {jobId}/get/accepted or notify-next. Required: `timestamp`.
/// Optional: `execution` (an object with `jobId` and a known `status`; `jobDocument` an object,
/// `statusDetails` an object of strings, the numbers integers), `clientToken` (string).
/// Errors: MalformedDocument (also for a jobId that is not a valid job id or is written with
/// escapes: a job id never needs them, and the view must point into the payload).
[[nodiscard]] Result<ExecutionReply, Errc> read_execution_reply(std::string_view payload) noexcept;

/// get/accepted: the pending executions.
struct PendingJobs {
  SummaryList in_progress;  ///< inProgressJobs (empty when absent)
  SummaryList queued;       ///< queuedJobs (empty when absent)
  std::int64_t timestamp = 0;
  doc::json::Value client_token;
};

/// Reads get/accepted. Required: `timestamp`. Optional: `inProgressJobs`, `queuedJobs` (arrays
/// of summaries), `clientToken`. Errors: MalformedDocument.
[[nodiscard]] Result<PendingJobs, Errc> read_get_pending_accepted(
    std::string_view payload) noexcept;

/// notify (JobExecutionsChanged): the pending executions by status.
struct JobsChanged {
  SummaryList in_progress;  ///< jobs.IN_PROGRESS (empty when absent)
  SummaryList queued;       ///< jobs.QUEUED (empty when absent)
  std::int64_t timestamp = 0;
};

/// Reads notify. Required: `jobs` (an object; `{}` when nothing is pending), `timestamp`. Other
/// status keys are ignored (AWS sends only IN_PROGRESS and QUEUED). Errors: MalformedDocument.
[[nodiscard]] Result<JobsChanged, Errc> read_notify(std::string_view payload) noexcept;

/// {jobId}/update/accepted.
struct UpdateAccepted {
  std::optional<JobExecutionState> execution_state;  ///< when includeJobExecutionState was true
  std::optional<doc::json::Value> job_document;      ///< when includeJobDocument was true
  std::int64_t timestamp = 0;
  doc::json::Value client_token;
};

/// Reads update/accepted. Required: `timestamp`. Optional: `executionState`, `jobDocument`
/// (object), `clientToken`. Errors: MalformedDocument.
[[nodiscard]] Result<UpdateAccepted, Errc> read_update_accepted(std::string_view payload) noexcept;

/// An error document from any …/rejected topic (2.3).
struct Rejected {
  doc::json::Value code;     ///< a string Value
  doc::json::Value message;  ///< a string Value (Null when absent)
  std::optional<std::int64_t> timestamp;
  doc::json::Value client_token;  ///< as in ExecutionReply
  /// Attached for InvalidStateTransition and VersionMismatch: the execution's current state.
  std::optional<JobExecutionState> execution_state;
  /// `rejection_errc(code)` (never Ok).
  Errc errc = Errc::RejectedOther;
};

/// Reads a rejected document. Required: `code` (a string). Optional: `message`, `timestamp`,
/// `clientToken`, `executionState`. The code is compared unescaped. Errors: MalformedDocument.
[[nodiscard]] Result<Rejected, Errc> read_rejected(std::string_view payload) noexcept;

}  // namespace edgekit::jobs
