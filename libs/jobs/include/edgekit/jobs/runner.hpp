#pragma once
/// \file
/// `edgekit::jobs::Runner`: the jobs executor (executor.hpp) driven over MQTT through a
/// `reqres::Channel` — the blocking client or the agent — in caller-owned memory.
///
///   void install(void* app, jobs::Runner& runner, const jobs::Job& job) {
///     auto url = job.document.find("url");        // the job document (a JSON view)
///     ...  download, then:
///     const jobs::StatusDetail step[] = {{"step", "flashing"}};
///     runner.progress(step, 10);                   // IN_PROGRESS, a 10-minute step timer
///     ...
///     runner.finish(jobs::JobStatus::Succeeded);
///   }
///   const jobs::JobHandler handlers[] = {
///       {"install", jobs::RebootPolicy::FailJob, &install, &app}};
///   jobs::RunnerConfig config;
///   config.thing = "lamp-1";
///   config.handlers = handlers;
///   jobs::Runner runner(channel, store, clock, config, buffers);
///   runner.start(5s);           // subscribes, then runs what is pending (after a reboot: resumes)
///   for (;;) runner.run_for(1s); // waits for notify-next and runs each new job
///
/// A handler runs on the caller's thread, inside `start` or `run_for`. It may report progress
/// and its outcome before it returns, or return at once and call `progress`/`finish` later from
/// the same thread (a long download, say): the job stays IN_PROGRESS meanwhile, and the runner
/// takes no other job. A reboot in between is what `RebootPolicy` is for: after it the runner
/// describes the job and resumes the handler or reports it FAILED (executor.hpp).
///
/// Each request waits for its reply up to `RunnerConfig::request_timeout`; a request without a
/// reply is sent again (new clientToken) up to `max_attempts` times, waiting `retry_delay` times
/// the attempt in between (receiving meanwhile), and so is one the service answers with a
/// retryable rejection (RequestThrottled, InternalError); then the call returns Timeout (or the
/// channel's error, or the rejection) and the next `run_for` tries again. Replies are taken by
/// topic and clientToken only; notify-next wakes an idle runner; every other message is ignored.
///
/// Memory: the caller's buffers (`RunnerBuffers`); no heap. Thread safety: one thread calls the
/// runner (and the handlers run on it). Over the agent, the channel's handler runs on the agent
/// thread and only sets a flag.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "edgekit/core/clock.hpp"
#include "edgekit/jobs/executor.hpp"
#include "edgekit/reqres/channel.hpp"

namespace edgekit::jobs {

class Runner;

/// A job handed to a handler. `job_id` is valid until the handler returns; `document` points into
/// the runner's document buffer and is valid until the handler returns or calls `finish`,
/// whichever comes first: the reply to `finish` may bring the next job, whose document takes
/// the buffer (copy what is needed after `finish`).
struct Job {
  std::string_view job_id;
  doc::json::Value document;  ///< the job document (an object)
  bool resumed = false;       ///< run again after a reboot (a Resume handler)
  /// When resumed: the last step reported through `progress` (0 when none was, or when the
  /// record could not be read back: executor.hpp).
  std::uint32_t step = 0;
};

/// A handler for the jobs whose document's `operation` is `operation`.
struct JobHandler {
  std::string_view operation;
  RebootPolicy on_reboot = RebootPolicy::FailJob;
  void (*run)(void* context, Runner& runner, const Job& job) = nullptr;
  void* context = nullptr;
};

/// The most handlers a runner takes.
inline constexpr std::size_t kMaxHandlers = 8;

struct RunnerConfig {
  std::string_view thing;                ///< the thing name (a view: must outlive the runner)
  std::span<const JobHandler> handlers;  ///< at most kMaxHandlers (a view, likewise)
  /// clientTokens are "<prefix>-<n>" (1-40 bytes of `[a-zA-Z0-9_-]`).
  std::string_view token_prefix = "jobs";
  std::uint32_t token_seed = 0;  ///< make it differ across boots (ExecutorConfig::token_seed)
  std::optional<std::int64_t> step_timeout_in_minutes;  ///< sent with start-next
  Duration request_timeout{5000};
  std::uint32_t max_attempts = 3;  ///< sends of one request per call before giving up
  Duration retry_delay{500};       ///< times the attempt number, between sends
};

/// The caller's buffers: `request` holds the largest request (an update with its statusDetails),
/// `reply` the largest reply (start-next/accepted with the job document: up to 32 KB plus the
/// execution, 2.3), `document` a copy of the job document handed to the handler.
struct RunnerBuffers {
  std::span<char> request;
  std::span<char> reply;
  std::span<char> document;
};

/// See the file comment.
class Runner {
 public:
  /// Borrows everything, which must outlive the runner; `clock` times `run_for` and the waits
  /// between re-sends. Nothing is sent before `start`.
  Runner(reqres::Channel& channel, RecordStore& store, const Clock& clock,
         const RunnerConfig& config, RunnerBuffers buffers) noexcept;
  /// Gives the channel's message handler back (empty) when `start` took it, so that no message
  /// reaches a destroyed runner: the channel may outlive it.
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  /// Subscribes to notify-next and the replies (J/notify-next, J/start-next/+, J/+/get/+,
  /// J/+/update/+), starts the executor (describing the job a reboot interrupted, or asking for
  /// the next one) and runs until there is nothing to do.
  /// Errors: InvalidArgument (the configuration), SubscribeFailed, NotConnected, WouldDeadlock,
  /// and those of `run_for`.
  [[nodiscard]] Result<void, Errc> start(Duration subscribe_timeout) noexcept;

  /// Receives for up to `duration`, running every job that notify-next announces; returns when
  /// `duration` has passed (or at the first error). A job whose document does not fit the
  /// document buffer is reported FAILED {"reason":"job document too large"} without a handler.
  /// Errors: Timeout, NotConnected, PublishFailed, ReplyTooLarge (after `max_attempts` sends),
  /// WouldDeadlock, StoreFailed (a record could not be saved: the job waits, tried again by the
  /// next call), BufferTooSmall (the request buffer cannot hold an outcome).
  [[nodiscard]] Result<void, Errc> run_for(Duration duration) noexcept;

  /// The running job's progress (`Executor::report_progress`), sent and answered before it
  /// returns. Errors: those of `report_progress`, of `run_for`, and NoJobRunning once the
  /// service ended the job (canceled, timed out): the handler should stop.
  [[nodiscard]] Result<void, Errc> progress(
      std::optional<std::span<const StatusDetail>> details,
      std::optional<std::int64_t> step_timeout_in_minutes = {},
      std::optional<std::uint32_t> step = {}) noexcept;

  /// The running job's outcome (`Executor::finish`), sent before it returns; the next job is
  /// then taken: after the handler returned when called from it, else (a handler that finishes
  /// later) before this call returns. Errors: those of `finish` and of `run_for`.
  [[nodiscard]] Result<void, Errc> finish(
      JobStatus status, std::optional<std::span<const StatusDetail>> details = {}) noexcept;

  [[nodiscard]] ExecutorState state() const noexcept { return executor_.state(); }
  [[nodiscard]] const Executor& executor() const noexcept { return executor_; }

  struct Access;  // the channel's callbacks (sources)

 private:
  Result<void, Errc> pump() noexcept;
  Result<void, Errc> exchange(const Action& a) noexcept;
  void run_pending() noexcept;
  Result<void, Errc> fail_too_large() noexcept;

  void wait(Duration d) noexcept;

  reqres::Channel& channel_;
  const Clock& clock_;
  RunnerConfig config_;
  RunnerBuffers buffers_;
  std::array<HandlerSpec, kMaxHandlers> specs_{};
  std::array<char, kMaxTopicLength> topic_{};
  std::array<char, kMaxTopicLength + 16> reply_topic_{};
  std::size_t request_topic_length_ = 0;
  Executor executor_;
  bool took_handler_ = false;  // `start` set the channel's message handler
  Errc config_error_ = Errc::Ok;
  std::atomic<bool> wake_{false};  // notify-next named a job (set on the receiving thread)
  bool in_handler_ = false;
  // A job to hand to its handler once the current one returns (its document is copied).
  bool run_due_ = false;
  std::size_t pending_handler_ = 0;
  Job pending_{};
  // The ids of the running job and of the one pending behind it (the executor's record, which
  // the id would otherwise view, is the next job's once `finish` took it).
  std::array<std::array<char, kMaxJobIdLength>, 2> job_ids_{};
  std::size_t job_id_slot_ = 0;
  Errc last_error_ = Errc::Ok;  // why the latest send got no reply
  bool too_large_due_ = false;  // a job whose document did not fit is still to be failed
};

}  // namespace edgekit::jobs
