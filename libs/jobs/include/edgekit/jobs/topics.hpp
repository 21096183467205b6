#pragma once
/// \file
/// Jobs topics (aws-iot-protocols.md 2.1), built into the caller's buffer and matched without
/// copying. With J = `$aws/things/{thing}/jobs`:
///
///   J/get            J/get/accepted            J/get/rejected            GetPending
///   J/start-next     J/start-next/accepted     J/start-next/rejected     StartNext
///   J/{jobId}/get    J/{jobId}/get/accepted    J/{jobId}/get/rejected    Describe ($next allowed)
///   J/{jobId}/update J/{jobId}/update/accepted J/{jobId}/update/rejected Update
///   J/notify                                                             Notify
///   J/notify-next                                                        NotifyNext
///
/// Topics are case sensitive. A job id is 1-64 bytes of `[a-zA-Z0-9_-]`; the literal `$next`
/// stands for the next pending execution in Describe only (2.1, section 0), and its replies carry
/// `$next` in their topic.
/// Pure: no heap, no I/O. Returned views point into the caller's buffer (builders) or into the
/// topic given (matcher) and stay valid as long as that memory. Thread safety: none needed.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/jobs/errc.hpp"

namespace edgekit::jobs {

/// The four requests a device makes and the two messages the service publishes to it.
enum class Operation : std::uint8_t {
  GetPending,  ///< GetPendingJobExecutions (J/get)
  StartNext,   ///< StartNextPendingJobExecution (J/start-next)
  Describe,    ///< DescribeJobExecution (J/{jobId}/get)
  Update,      ///< UpdateJobExecution (J/{jobId}/update)
  Notify,      ///< JobExecutionsChanged (J/notify)
  NotifyNext,  ///< NextJobExecutionChanged (J/notify-next)
};

/// Which topic of an operation: the request or one of its replies. Notify and NotifyNext have
/// one topic only, which is their `Request` kind (the topic itself).
enum class TopicKind : std::uint8_t { Request, Accepted, Rejected };

/// AWS's limits (aws-iot-protocols.md 0): a thing name is 1-128 bytes of `[a-zA-Z0-9:_-]`, a job
/// id 1-64 bytes of `[a-zA-Z0-9_-]`.
inline constexpr std::size_t kMaxThingNameLength = 128;
inline constexpr std::size_t kMaxJobIdLength = 64;
/// The job id that names the next pending execution (Describe only).
inline constexpr std::string_view kNextJobId = "$next";
/// Room enough for every jobs topic: `$aws/things/` + 128 + `/jobs/` + 64 +
/// `/update/accepted` = 226 bytes.
inline constexpr std::size_t kMaxTopicLength = 226;

/// Whether `name` can be a thing name: 1-128 bytes of `[a-zA-Z0-9:_-]`.
[[nodiscard]] bool valid_thing_name(std::string_view name) noexcept;
/// Whether `id` can be a job id: 1-64 bytes of `[a-zA-Z0-9_-]` (`$next` is not a job id).
[[nodiscard]] bool valid_job_id(std::string_view id) noexcept;

/// Writes the topic of `op`/`kind` for `thing` into `buffer` and returns a view of it. `job_id`
/// is required for Describe (a job id or `$next`) and Update (a job id), and must be empty for
/// the other operations.
/// Errors: InvalidArgument (a thing name or job id outside the limits, a job id where none
/// belongs, Accepted/Rejected of Notify or NotifyNext), BufferTooSmall (nothing useful is left
/// in `buffer`; kMaxTopicLength always suffices).
[[nodiscard]] Result<std::string_view, Errc> topic(std::string_view thing, Operation op,
                                                   TopicKind kind, std::string_view job_id,
                                                   std::span<char> buffer) noexcept;

/// Writes the filter `<request topic>/+` that covers both replies of a request (what AWS's SDK
/// v2 subscribes to). Errors: as `topic`; InvalidArgument for Notify and NotifyNext.
[[nodiscard]] Result<std::string_view, Errc> reply_filter(std::string_view thing, Operation op,
                                                          std::string_view job_id,
                                                          std::span<char> buffer) noexcept;

/// What a jobs topic names. `thing` and `job_id` view into the matched topic (`job_id` empty
/// unless the operation is Describe or Update; it may be `$next` for Describe).
struct TopicMatch {
  std::string_view thing;
  std::string_view job_id;
  Operation op = Operation::GetPending;
  TopicKind kind = TopicKind::Request;
};

/// Reads any jobs topic (request, reply or notification). Exact match only: a valid thing name,
/// a valid job id (or `$next` for Describe), a known operation, no further levels.
/// Errors: TopicMismatch (not a jobs topic).
[[nodiscard]] Result<TopicMatch, Errc> match_topic(std::string_view topic) noexcept;

}  // namespace edgekit::jobs
