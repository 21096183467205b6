#pragma once
/// \file
/// The jobs executor core: a steppable state machine, without I/O, that takes a device's jobs one
/// at a time and reports on them (aws-iot-protocols.md 2.2-2.5):
///
///  1. it asks for the next job (start-next, which makes it IN_PROGRESS), or, after a reboot in
///     the middle of a job, describes that job first;
///  2. it hands the job to the handler the application registered for the job document's
///     `operation` (the application runs it, at its own pace, and reports through the executor);
///  3. it sends the handler's progress (IN_PROGRESS with statusDetails and a step timeout) and its
///     outcome (SUCCEEDED, FAILED or REJECTED), each with `expectedVersion`, so that an update
///     made on stale knowledge is refused (VersionMismatch) instead of overwriting another;
///  4. when idle, a notify-next that names a job makes it ask for the next job again.
///
/// Surviving a reboot: while a job runs, a small `JobRecord` (job id, execution number, version,
/// the status decided, the handler's step) lives in the application's non-volatile storage
/// through `RecordStore`. It is saved before the handler starts and before an outcome is sent,
/// and cleared once the service accepted the outcome. After a reboot the executor describes the
/// recorded execution and, instead of running the job twice:
///  - the execution is terminal (the outcome got through, or the service ended it): the record
///    is cleared and the next job is asked for;
///  - an outcome was decided before the reboot: it is sent again (with the executor's own
///    reason when it decided it; a handler's statusDetails are not kept, so the service keeps
///    the last ones it had);
///  - the handler was running: a `Resume` handler is run again with `resumed` and the last step it
///    recorded; a `FailJob` handler's job is reported FAILED with statusDetails
///    {"reason":"rebooted during step"}.
/// A record that the store cannot read back intact (`RecordLoad::Corrupt`: a torn write, a bad
/// checksum) is never used. A job may have been running, so the executor describes `$next`
/// instead: an IN_PROGRESS execution there is one this device had started (only start-next
/// makes one IN_PROGRESS), and is treated as a job whose handler was running, at step 0 — a
/// `Resume` handler runs again, a `FailJob` one is reported FAILED ("rebooted during step").
/// Otherwise no job was running: the record is cleared and the next job asked for.
///
/// Driving it: feed events (`start`, `on_message`, `request_lost`, `report_progress`, `finish`),
/// then call `poll()` until it returns `ActionKind::None`, doing what each action says: publish
/// a request (QoS 1), start a job's handler, or stop one the service ended. At most one request
/// is in flight; replies are matched by topic, job id and clientToken ("<prefix>-<n>"), and any
/// other message is ignored. A request without a reply (timeout, lost connection) is reported
/// with `request_lost()`, which sends it again with a new token; `attempts()` counts such
/// re-sends (and retryable rejections: RequestThrottled, InternalError) so that the driver can
/// back off before publishing. Times are the driver's: the executor reads no clock.
///
/// Pure: no heap, no I/O, no clock; the record store is the application's. Memory: the caller's
/// topic and payload buffers plus about 200 bytes. Thread safety: none (one thread at a time; the
/// drivers serialise calls).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "edgekit/doc/json.hpp"
#include "edgekit/jobs/documents.hpp"
#include "edgekit/jobs/errc.hpp"
#include "edgekit/jobs/topics.hpp"

namespace edgekit::jobs {

/// What a handler can do when the device rebooted while its job ran.
enum class RebootPolicy : std::uint8_t {
  FailJob,  ///< the job cannot be continued: it is reported FAILED ("rebooted during step")
  Resume,   ///< the handler can continue: it is run again with `resumed` and its last step
};

/// A handler the application registers: the job documents whose `operation` member equals
/// `operation` are its jobs.
struct HandlerSpec {
  std::string_view operation;
  RebootPolicy on_reboot = RebootPolicy::FailJob;
};

/// Why the executor decided an outcome itself (kept in the record so that an outcome sent again
/// after a reboot still says why).
enum class OutcomeReason : std::uint8_t {
  Handler,               ///< the handler's outcome (its details are not kept)
  RebootedDuringStep,    ///< {"reason":"rebooted during step"}
  UnsupportedOperation,  ///< {"reason":"unsupported operation"}
};

/// What the application keeps in non-volatile storage while a job runs (about 90 bytes; store it
/// as it is: the executor reads back only records it wrote, from the same firmware).
struct JobRecord {
  std::array<char, kMaxJobIdLength> job_id{};
  std::uint8_t job_id_length = 0;
  std::int64_t execution_number = 0;
  std::uint64_t version = 0;  ///< the execution's versionNumber when the record was saved
  /// IN_PROGRESS while the handler runs; the outcome (SUCCEEDED, FAILED, REJECTED) once decided.
  JobStatus status = JobStatus::InProgress;
  std::uint32_t step = 0;  ///< the handler's own progress marker (report_progress)
  OutcomeReason reason = OutcomeReason::Handler;  ///< with an outcome the executor decided

  [[nodiscard]] std::string_view job() const noexcept { return {job_id.data(), job_id_length}; }
};

/// What `RecordStore::load` found.
enum class RecordLoad : std::uint8_t {
  None,    ///< no record (none was saved, or it was cleared): no job was running
  Loaded,  ///< the record saved last and not cleared
  /// A record was stored but does not come back intact (a torn write, a checksum that does not
  /// match, a read error): a job may have been running, which one is unknown. The executor
  /// does not use it (see the file comment).
  Corrupt,
};

/// The application's non-volatile storage of the one JobRecord. Each call completes before it
/// returns (a flash write); a failure is reported as false. Thread safety: called from the thread
/// that drives the executor only.
class RecordStore {
 public:
  /// The record saved last and not cleared: Loaded and `out` filled; None when there is none;
  /// Corrupt when one was stored but cannot be trusted (`out` is then unspecified).
  virtual RecordLoad load(JobRecord& out) noexcept = 0;
  /// Replaces the record. False: it was not stored.
  virtual bool save(const JobRecord& record) noexcept = 0;
  /// Removes the record. False: it could not be removed.
  virtual bool clear() noexcept = 0;

 protected:
  ~RecordStore() = default;
};

/// Memory for a `RamRecordStore`: a record and a mark that says it is one.
struct RamRecordSlot {
  JobRecord record{};
  std::uint32_t mark = 0;
};

/// A RecordStore in memory the application provides: RAM that survives a warm reset (a
/// `.noinit` section, a backup SRAM; not a power cut), or plain RAM in tests and simulations.
/// A slot of random content (a cold boot) holds no record unless its mark happens to be
/// `kMark` (1 in 2^32) and its job id is valid. Thread safety: that of the executor.
class RamRecordStore final : public RecordStore {
 public:
  static constexpr std::uint32_t kMark = 0x4A4F4253;  // "JOBS"
  explicit RamRecordStore(RamRecordSlot& slot) noexcept : slot_(slot) {}
  /// Loaded or None (a RAM slot has no checksum: a valid mark is taken at its word; the
  /// executor still refuses a record whose job id is not valid, as Corrupt).
  RecordLoad load(JobRecord& out) noexcept override {
    if (slot_.mark != kMark) return RecordLoad::None;
    out = slot_.record;
    return RecordLoad::Loaded;
  }
  bool save(const JobRecord& record) noexcept override {
    slot_.record = record;
    slot_.mark = kMark;
    return true;
  }
  bool clear() noexcept override {
    slot_.mark = 0;
    return true;
  }
  /// Whether a record is kept, and which (for tests and diagnostics).
  [[nodiscard]] bool has() const noexcept { return slot_.mark == kMark; }
  [[nodiscard]] const JobRecord& record() const noexcept { return slot_.record; }

 private:
  RamRecordSlot& slot_;
};

/// The executor's configuration. Views must outlive the executor.
struct ExecutorConfig {
  std::string_view thing;                 ///< the device's thing name
  std::span<const HandlerSpec> handlers;  ///< the operations it runs
  /// clientTokens are "<prefix>-<n>": 1-40 bytes of `[a-zA-Z0-9_-]` (unique per connection).
  std::string_view token_prefix = "jobs";
  /// The first token's counter. Make it differ across boots (a boot counter, a random number)
  /// so that a late reply to a request of the previous run cannot match a token of this one.
  std::uint32_t token_seed = 0;
  /// Sent with start-next: the first step's timeout (absent: none).
  std::optional<std::int64_t> step_timeout_in_minutes;
  std::span<char> topic_buffer;    ///< at least kMaxTopicLength bytes
  std::span<char> payload_buffer;  ///< holds the largest request (an update with its details)
};

/// What the driver must do next (`poll`).
enum class ActionKind : std::uint8_t {
  None,     ///< nothing until the next event
  Publish,  ///< publish `payload` on `topic` (QoS 1) and wait for its reply
  RunJob,   ///< start the handler `handler` for `job_id` with `job_document`
  StopJob,  ///< the service ended `job_id` (canceled, timed out, removed): stop its handler;
            ///< report nothing more for it
};

/// One action. Views: `topic` and `payload` point into the configured buffers and stay valid
/// until the next event call; `job_document` points into the payload given to the `on_message`
/// call that produced the RunJob (poll right after it, and copy what the handler needs to keep);
/// `job_id` points into the executor.
struct Action {
  ActionKind kind = ActionKind::None;
  std::string_view topic;
  std::string_view payload;
  std::string_view job_id;
  std::size_t handler = 0;  ///< RunJob: the index in ExecutorConfig::handlers
  doc::json::Value job_document;
  bool resumed = false;  ///< RunJob: the job ran before a reboot (a Resume handler)
  /// RunJob when resumed: the last step the handler recorded (0 after an unreadable record).
  std::uint32_t step = 0;
};

/// Where the executor is (for logs and tests).
enum class ExecutorState : std::uint8_t {
  Stopped,    ///< `start` not called yet (or it failed)
  Starting,   ///< start-next in flight
  Idle,       ///< nothing to run; waits for notify-next
  Resuming,   ///< after a reboot: the recorded job is being described
  Running,    ///< the handler runs (a progress update may be in flight)
  Finishing,  ///< the outcome is being reported
};

/// The jobs executor core. See the file comment.
class Executor {
 public:
  Executor(const ExecutorConfig& config, RecordStore& store) noexcept;
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  /// Begins after boot: loads the record and describes its job (`$next` when the record is
  /// corrupt: see the file comment), or asks for the next job.
  /// Errors: InvalidArgument (a thing name or token prefix outside the limits, a topic buffer
  /// smaller than kMaxTopicLength, a handler without operation), BufferTooSmall (the payload
  /// buffer cannot hold a request).
  [[nodiscard]] Result<void, Errc> start() noexcept;

  /// A message received on a jobs topic (subscribe to notify-next and to the replies of
  /// start-next, `$next`/{jobId} get and {jobId} update: `reply_filter`). Messages that are not
  /// for this executor are ignored (Ok).
  /// Errors: TopicMismatch (not a jobs topic), MalformedDocument (the reply to the request in
  /// flight could not be read: the request stays in flight, as if lost), StoreFailed (the record
  /// could not be saved before a job was to start: it is not started, the executor is Idle and
  /// the job stays IN_PROGRESS at the service until its timer or the next start-next),
  /// BufferTooSmall (the FAILED outcome of a job no handler takes does not fit the payload
  /// buffer: it is recorded and sent again after the next start-next or boot).
  [[nodiscard]] Result<void, Errc> on_message(std::string_view topic,
                                              std::string_view payload) noexcept;

  /// What notify-next with an execution means (for drivers that read notify-next themselves):
  /// when idle with nothing in flight, the next job is asked for; otherwise nothing.
  void next_job_pending() noexcept;

  /// The request in flight got no reply (timeout, disconnect): it is sent again (new token).
  /// No effect when nothing is in flight.
  void request_lost() noexcept;

  /// The handler's progress: an IN_PROGRESS update with `details` (absent: the previous ones are
  /// kept, 2.5) and a new step timer (-1 discards it); `step`, when given, is saved in the
  /// record first (what a resumed handler gets back).
  /// Errors: NoJobRunning, Busy (an update is in flight: call again after its reply),
  /// InvalidArgument (details or timeout outside the limits), BufferTooSmall, StoreFailed.
  [[nodiscard]] Result<void, Errc> report_progress(
      std::optional<std::span<const StatusDetail>> details,
      std::optional<std::int64_t> step_timeout_in_minutes = {},
      std::optional<std::uint32_t> step = {}) noexcept;

  /// The handler's outcome: SUCCEEDED, FAILED or REJECTED with `details`. Saved in the record,
  /// then sent; re-sent after a reboot until the service has it. A REJECTED that the service
  /// refuses because the execution is IN_PROGRESS (aws-iot-protocols.md 2.4: AWS accepts it only
  /// from QUEUED) is sent as FAILED with the same details.
  /// Errors: NoJobRunning, Busy, InvalidArgument (another status, details outside the limits),
  /// BufferTooSmall, StoreFailed (nothing was sent: call again).
  [[nodiscard]] Result<void, Errc> finish(
      JobStatus status, std::optional<std::span<const StatusDetail>> details = {}) noexcept;

  /// The next thing to do (see ActionKind); None when there is nothing.
  [[nodiscard]] Action poll() noexcept;

  [[nodiscard]] ExecutorState state() const noexcept;
  /// The running (or finishing) job's record; meaningful in Running, Finishing and Resuming
  /// (while a corrupt record's `$next` is described, its job id is "$next").
  [[nodiscard]] const JobRecord& record() const noexcept { return record_; }
  /// The clientToken of the latest request (a reply echoes it).
  [[nodiscard]] std::string_view current_token() const noexcept {
    return {token_.data(), token_length_};
  }
  /// Whether a request waits for its reply.
  [[nodiscard]] bool request_in_flight() const noexcept { return in_flight_ != Request::None; }
  /// Consecutive re-sends of the request in flight (0 for a first send).
  [[nodiscard]] std::uint32_t attempts() const noexcept { return attempts_; }
  /// The last rejection the service sent (Ok when none).
  [[nodiscard]] Errc last_rejection() const noexcept { return last_rejection_; }

 private:
  enum class Phase : std::uint8_t { Stopped, Idle, Resuming, Running, Finishing };
  enum class Request : std::uint8_t { None, StartNext, Describe, Progress, Outcome };

  Result<void, Errc> send_start_next() noexcept;
  Result<void, Errc> send_describe() noexcept;
  Result<void, Errc> send_outcome(JobStatus status,
                                  std::optional<std::span<const StatusDetail>> details) noexcept;
  Result<void, Errc> resend_update(JobStatus status, std::uint64_t version) noexcept;
  Result<void, Errc> publish(Operation op, std::string_view job_id) noexcept;
  std::string_view next_token() noexcept;
  void job_over() noexcept;
  void record_execution(const JobExecution& e) noexcept;
  void begin_job(const JobExecution& e) noexcept;
  Result<void, Errc> on_execution_reply(const ExecutionReply& reply) noexcept;
  Result<void, Errc> on_update_accepted(const UpdateAccepted& reply) noexcept;
  void on_rejected(const Rejected& r) noexcept;
  std::optional<std::size_t> handler_for(
      const std::optional<doc::json::Value>& document) const noexcept;

  ExecutorConfig config_;
  RecordStore& store_;
  JobRecord record_{};
  std::array<char, kMaxJobIdLength> stopped_job_{};  // the job a StopJob names
  std::size_t stopped_job_length_ = 0;
  Phase phase_ = Phase::Stopped;
  Request in_flight_ = Request::None;
  bool publish_due_ = false;
  bool stop_due_ = false;
  bool run_due_ = false;
  bool store_failed_ = false;
  bool unknown_job_ = false;         // the store's record was corrupt: `$next` is being described
  Errc begin_job_error_ = Errc::Ok;  // the outcome of a job nobody handles could not be written
  std::size_t run_handler_ = 0;
  bool run_resumed_ = false;
  doc::json::Value run_document_;
  std::string_view topic_;
  std::string_view payload_;
  std::array<char, kMaxClientTokenLength> token_{};
  std::size_t token_length_ = 0;
  std::uint32_t counter_ = 0;
  std::uint32_t attempts_ = 0;
  Errc last_rejection_ = Errc::Ok;
};

}  // namespace edgekit::jobs
