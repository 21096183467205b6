// The jobs executor core (executor.hpp): the order of saves, requests and handler runs that
// makes a job run once across reboots, lost replies and version conflicts.
#include "edgekit/jobs/executor.hpp"

#include <cstring>

#include "edgekit/core/text.hpp"

namespace edgekit::jobs {
namespace {

constexpr std::size_t kMaxTokenPrefixLength = 40;  // + '-' + 10 digits + margin <= 64
// ResourceNotFound is retryable (2.3), but a job deleted under the device stays not found: after
// this many replies in a row it counts as gone.
constexpr std::uint32_t kMaxNotFoundAttempts = 4;
constexpr std::string_view kStatusHead = R"({"status":")";
constexpr std::string_view kVersionMember = R"(,"expectedVersion":)";
constexpr StatusDetail kRebooted[] = {{"reason", "rebooted during step"}};
constexpr StatusDetail kUnsupported[] = {{"reason", "unsupported operation"}};

// The statusDetails of an outcome the executor decided itself (none for a handler's).
std::optional<std::span<const StatusDetail>> details_of(OutcomeReason reason) noexcept {
  switch (reason) {
    case OutcomeReason::RebootedDuringStep:
      return kRebooted;
    case OutcomeReason::UnsupportedOperation:
      return kUnsupported;
    case OutcomeReason::Handler:
      break;
  }
  return std::nullopt;
}

void put_decimal(TextAppender& w, std::uint64_t v) noexcept {
  char digits[20];
  std::size_t n = 0;
  do {
    digits[sizeof digits - 1 - n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  w.put({digits + sizeof digits - n, n});
}

}  // namespace

Executor::Executor(const ExecutorConfig& config, RecordStore& store) noexcept
    : config_(config), store_(store), counter_(config.token_seed) {}

Result<void, Errc> Executor::start() noexcept {
  phase_ = Phase::Stopped;
  in_flight_ = Request::None;
  publish_due_ = run_due_ = stop_due_ = false;
  if (!valid_thing_name(config_.thing) ||
      !is_aws_name(config_.token_prefix, kMaxTokenPrefixLength, false) ||
      config_.topic_buffer.size() < kMaxTopicLength) {
    return fail(Errc::InvalidArgument);
  }
  for (const HandlerSpec& h : config_.handlers) {
    if (h.operation.empty()) return fail(Errc::InvalidArgument);
  }
  record_ = {};
  unknown_job_ = false;
  JobRecord loaded;
  Result<void, Errc> sent;
  RecordLoad found = store_.load(loaded);
  // A record whose job id is not one is as untrustworthy as one that failed its checksum.
  if (found == RecordLoad::Loaded &&
      (loaded.job_id_length > kMaxJobIdLength || !valid_job_id(loaded.job()))) {
    found = RecordLoad::Corrupt;
  }
  switch (found) {
    case RecordLoad::Loaded:
      record_ = loaded;
      sent = send_describe();
      break;
    case RecordLoad::Corrupt:
      // Which job ran (if any) is unknown: the service's next pending execution says it.
      unknown_job_ = true;
      std::memcpy(record_.job_id.data(), kNextJobId.data(), kNextJobId.size());
      record_.job_id_length = static_cast<std::uint8_t>(kNextJobId.size());
      sent = send_describe();
      break;
    case RecordLoad::None:
      sent = send_start_next();
      break;
  }
  if (!sent) phase_ = Phase::Stopped;
  return sent;
}

ExecutorState Executor::state() const noexcept {
  switch (phase_) {
    case Phase::Stopped:
      return ExecutorState::Stopped;
    case Phase::Idle:
      return in_flight_ == Request::StartNext ? ExecutorState::Starting : ExecutorState::Idle;
    case Phase::Resuming:
      return ExecutorState::Resuming;
    case Phase::Running:
      return ExecutorState::Running;
    case Phase::Finishing:
      return ExecutorState::Finishing;
  }
  return ExecutorState::Stopped;
}

std::string_view Executor::next_token() noexcept {
  TextAppender w{token_};
  w.put(config_.token_prefix);
  w.put("-");
  put_decimal(w, ++counter_);
  token_length_ = w.used;  // fits: a prefix of 40 bytes, '-', at most 10 digits
  return {token_.data(), token_length_};
}

Result<void, Errc> Executor::publish(Operation op, std::string_view job_id) noexcept {
  auto t = topic(config_.thing, op, TopicKind::Request, job_id, config_.topic_buffer);
  if (!t) return fail(t.error());
  topic_ = *t;
  publish_due_ = true;
  return {};
}

Result<void, Errc> Executor::send_start_next() noexcept {
  StartNextRequest r;
  r.step_timeout_in_minutes = config_.step_timeout_in_minutes;
  r.client_token = next_token();
  auto p = write_start_next_request(r, config_.payload_buffer);
  if (!p) return fail(p.error());
  payload_ = *p;
  phase_ = Phase::Idle;
  in_flight_ = Request::StartNext;
  return publish(Operation::StartNext, {});
}

Result<void, Errc> Executor::send_describe() noexcept {
  DescribeRequest r;
  if (record_.execution_number > 0) r.execution_number = record_.execution_number;
  r.include_job_document = true;  // a resumed handler needs it
  r.client_token = next_token();
  auto p = write_describe_request(r, config_.payload_buffer);
  if (!p) return fail(p.error());
  payload_ = *p;
  phase_ = Phase::Resuming;
  in_flight_ = Request::Describe;
  return publish(Operation::Describe, record_.job());
}

Result<void, Errc> Executor::send_outcome(
    JobStatus status, std::optional<std::span<const StatusDetail>> details) noexcept {
  UpdateRequest r;
  r.status = status;
  r.status_details = details;
  r.include_job_execution_state = true;  // the new versionNumber, exactly
  r.expected_version = record_.version;
  r.client_token = next_token();
  auto p = write_update_request(r, config_.payload_buffer);
  if (!p) return fail(p.error());
  payload_ = *p;
  phase_ = Phase::Finishing;
  in_flight_ = Request::Outcome;
  return publish(Operation::Update, record_.job());
}

// The update in the payload buffer, sent again with `status`, `version` and a new token: its
// text is `{"status":"S"` + the other members + `,"expectedVersion":N,"clientToken":"T"}`
// (write_update_request writes these two last), so the middle is kept as it is, details
// included, without the caller's memory. The member text cannot occur inside a string value,
// whose quotes are escaped.
Result<void, Errc> Executor::resend_update(JobStatus status, std::uint64_t version) noexcept {
  const std::string_view old = payload_;
  const std::size_t middle_begin = old.find('"', kStatusHead.size()) + 1;
  const std::size_t middle_end = old.rfind(kVersionMember);
  if (!old.starts_with(kStatusHead) || middle_end == std::string_view::npos ||
      middle_begin > middle_end) {
    return fail(Errc::InvalidArgument);  // not an update written here: cannot happen
  }
  const std::string_view name = to_string(status);
  const std::size_t middle_length = middle_end - middle_begin;
  const std::size_t new_begin = kStatusHead.size() + name.size() + 1;
  std::span<char> buf = config_.payload_buffer;
  if (new_begin + middle_length > buf.size()) return fail(Errc::BufferTooSmall);
  std::memmove(buf.data() + new_begin, old.data() + middle_begin, middle_length);
  std::memcpy(buf.data() + kStatusHead.size(), name.data(), name.size());
  buf[new_begin - 1] = '"';
  TextAppender w{buf.subspan(new_begin + middle_length)};
  w.put(kVersionMember);
  put_decimal(w, version);
  w.put(R"(,"clientToken":")");
  w.put(next_token());
  w.put(R"("})");
  if (w.overflow) return fail(Errc::BufferTooSmall);
  payload_ = {buf.data(), new_begin + middle_length + w.used};
  publish_due_ = true;  // the topic is unchanged
  return {};
}

void Executor::next_job_pending() noexcept {
  if (phase_ != Phase::Idle || in_flight_ != Request::None) return;
  attempts_ = 0;
  (void)send_start_next();  // it was written at start already: it fits
}

void Executor::request_lost() noexcept {
  const Request lost = in_flight_;
  if (lost == Request::None) return;
  ++attempts_;
  // Each was written once already, so writing it again fits: the payload buffer holds the
  // largest request (ExecutorConfig), which counts the longest token and version, and the
  // topic did not change. (None of these can fail for another reason.)
  switch (lost) {
    case Request::StartNext:
      (void)send_start_next();
      break;
    case Request::Describe:
      (void)send_describe();
      break;
    case Request::Progress:
      (void)resend_update(JobStatus::InProgress, record_.version);
      break;
    case Request::Outcome:
      (void)resend_update(record_.status, record_.version);
      break;
    case Request::None:
      break;
  }
}

void Executor::job_over() noexcept {
  (void)store_.clear();  // if it fails, the next boot describes a terminal job and clears again
  record_ = {};
  unknown_job_ = false;
  phase_ = Phase::Idle;
}

std::optional<std::size_t> Executor::handler_for(
    const std::optional<doc::json::Value>& document) const noexcept {
  if (!document) return std::nullopt;
  // An AWS OTA job's document has no `operation`, only its `afr_ota` object (2.6): it is the
  // job of the handler registered for the operation "afr_ota" (what the FreeRTOS OTA agent
  // recognises it by).
  auto op = document->find("operation");
  const bool ota = !op && document->find("afr_ota").has_value();
  if (!op && !ota) return std::nullopt;
  for (std::size_t i = 0; i < config_.handlers.size(); ++i) {
    if (ota ? config_.handlers[i].operation == "afr_ota"
            : op->equals(config_.handlers[i].operation)) {
      return i;
    }
  }
  return std::nullopt;
}

// The record of a job the service returned (its handler running: status IN_PROGRESS, step 0).
void Executor::record_execution(const JobExecution& e) noexcept {
  record_ = {};
  std::memcpy(record_.job_id.data(), e.job_id.data(), e.job_id.size());
  record_.job_id_length = static_cast<std::uint8_t>(e.job_id.size());
  record_.execution_number = e.execution_number.value_or(0);
  record_.version = e.version_number.value_or(0);  // a wrong guess is corrected by VersionMismatch
}

// A fresh job from start-next: saved before anything runs, so that a reboot from here on finds
// it; a job nobody handles is rejected at once.
void Executor::begin_job(const JobExecution& e) noexcept {
  record_execution(e);
  const std::optional<std::size_t> h = handler_for(e.job_document);
  record_.status = h ? JobStatus::InProgress : JobStatus::Rejected;
  record_.reason = h ? OutcomeReason::Handler : OutcomeReason::UnsupportedOperation;
  if (!store_.save(record_)) {
    store_failed_ = true;
    record_ = {};
    phase_ = Phase::Idle;
    return;
  }
  if (!h) {
    // The outcome is in the record: if it cannot be written now (a payload buffer too small
    // for it), the describe after the next boot, or the next start-next, which returns this
    // IN_PROGRESS execution, sends it again; the error is the caller's (begin_job_error_).
    if (auto sent = send_outcome(JobStatus::Rejected, details_of(record_.reason)); !sent) {
      begin_job_error_ = sent.error();
      phase_ = Phase::Idle;
    }
    return;
  }
  phase_ = Phase::Running;
  run_due_ = true;
  run_handler_ = *h;
  run_resumed_ = false;
  run_document_ = *e.job_document;
}

Result<void, Errc> Executor::on_execution_reply(const ExecutionReply& reply) noexcept {
  if (unknown_job_) {  // the reply to describing `$next` after a corrupt record
    unknown_job_ = false;
    if (!reply.execution || reply.execution->status != JobStatus::InProgress) {
      job_over();  // nothing of ours was running: the unreadable record goes
      return send_start_next();
    }
    // Only start-next makes an execution IN_PROGRESS, so this device had started it, and its
    // handler may have run: from here on it is the recorded job, at step 0. If the save fails
    // the store still holds the unreadable record, and the next boot comes here again.
    record_execution(*reply.execution);
    (void)store_.save(record_);
  }
  const bool ours = reply.execution && reply.execution->job_id == record_.job() &&
                    record_.job_id_length > 0 &&
                    (record_.execution_number == 0 ||
                     reply.execution->execution_number.value_or(0) == record_.execution_number);
  if (phase_ == Phase::Idle && !ours) {  // start-next
    if (!reply.execution) return {};     // nothing pending: wait for notify-next
    if (reply.execution->status != JobStatus::InProgress) {
      job_over();  // not started (cannot happen with start-next): ask again later
      return {};
    }
    begin_job(*reply.execution);
    if (store_failed_) {
      store_failed_ = false;
      return fail(Errc::StoreFailed);
    }
    if (begin_job_error_ != Errc::Ok) {
      const Errc e = begin_job_error_;
      begin_job_error_ = Errc::Ok;
      return fail(e);
    }
    return {};
  }
  // The recorded job (described after a reboot, or returned again by start-next).
  if (!ours || reply.execution->status != JobStatus::InProgress) {
    job_over();  // terminal (the outcome got through, or the service ended it), or gone
    return send_start_next();
  }
  const JobExecution& e = *reply.execution;
  record_.version = e.version_number.value_or(record_.version);
  if (is_terminal(record_.status)) return send_outcome(record_.status, details_of(record_.reason));
  const std::optional<std::size_t> h = handler_for(e.job_document);
  if (h && config_.handlers[*h].on_reboot == RebootPolicy::Resume) {
    phase_ = Phase::Running;
    run_due_ = true;
    run_handler_ = *h;
    run_resumed_ = true;
    run_document_ = *e.job_document;
    return {};
  }
  // The handler cannot continue (or is gone): the job failed, and says why.
  record_.status = JobStatus::Failed;
  record_.reason = h ? OutcomeReason::RebootedDuringStep : OutcomeReason::UnsupportedOperation;
  (void)store_.save(record_);  // if it fails, the next boot comes here again: same outcome
  return send_outcome(JobStatus::Failed, details_of(record_.reason));
}

Result<void, Errc> Executor::on_update_accepted(const UpdateAccepted& reply) noexcept {
  if (reply.execution_state && reply.execution_state->version_number) {
    record_.version = *reply.execution_state->version_number;
  } else {
    ++record_.version;  // each accepted update increments it (2.4)
  }
  if (phase_ != Phase::Finishing) return {};  // progress: the handler goes on
  job_over();
  return send_start_next();
}

void Executor::on_rejected(const Rejected& r) noexcept {
  last_rejection_ = r.errc;
  const Request answered = in_flight_;
  in_flight_ = Request::None;
  const bool gone = r.errc == Errc::TerminalStateReached ||
                    (r.execution_state && is_terminal(r.execution_state->status)) ||
                    (r.errc == Errc::ResourceNotFound &&
                     (answered == Request::Describe || attempts_ + 1 >= kMaxNotFoundAttempts));
  if (gone) {
    if (answered == Request::StartNext) {
      phase_ = Phase::Idle;
      return;
    }
    if (answered == Request::Progress) {
      std::memcpy(stopped_job_.data(), record_.job_id.data(), record_.job_id_length);
      stopped_job_length_ = record_.job_id_length;
      stop_due_ = true;  // the service ended the job under the running handler
    }
    job_over();
    (void)send_start_next();  // written at start already: it fits
    return;
  }
  if (is_retryable(r.errc)) {
    in_flight_ = answered;
    request_lost();
    return;
  }
  if (r.execution_state && r.execution_state->version_number &&
      (r.errc == Errc::VersionMismatch || r.errc == Errc::InvalidStateTransition) &&
      (answered == Request::Progress || answered == Request::Outcome)) {
    record_.version = *r.execution_state->version_number;
    if (r.errc == Errc::InvalidStateTransition) {
      // Only an outcome of REJECTED from IN_PROGRESS is worth another try: as FAILED (2.4).
      if (answered != Request::Outcome || record_.status != JobStatus::Rejected) return;
      record_.status = JobStatus::Failed;
      // If the save fails the record keeps REJECTED: a reboot sends REJECTED again, is refused
      // again and comes here again — the same FAILED, one exchange later.
      (void)store_.save(record_);
    }
    in_flight_ = answered;
    ++attempts_;
    const JobStatus status = answered == Request::Outcome ? record_.status : JobStatus::InProgress;
    if (!resend_update(status, record_.version)) in_flight_ = Request::None;
    return;
  }
  switch (answered) {
    case Request::StartNext:
      phase_ = Phase::Idle;  // wait for notify-next
      break;
    case Request::Describe:
      job_over();
      (void)send_start_next();  // written at start already: it fits
      break;
    case Request::Progress:
      break;  // the progress is lost; the handler goes on and reports again
    case Request::Outcome:
      // Kept in the record: a later start-next returns this execution (it is still IN_PROGRESS)
      // and the outcome is sent again instead of running the job twice.
      phase_ = Phase::Idle;
      break;
    case Request::None:
      break;
  }
}

Result<void, Errc> Executor::on_message(std::string_view t, std::string_view payload) noexcept {
  auto m = match_topic(t);
  if (!m) return fail(Errc::TopicMismatch);
  if (m->thing != config_.thing || phase_ == Phase::Stopped) return {};
  if (m->op == Operation::NotifyNext) {
    if (phase_ != Phase::Idle || in_flight_ != Request::None) return {};
    auto next = read_execution_reply(payload);
    if (!next) return fail(next.error());
    if (next->execution) next_job_pending();
    return {};
  }
  if (m->kind == TopicKind::Request) return {};
  Request answers = Request::None;
  if (m->op == Operation::StartNext) answers = Request::StartNext;
  if (m->op == Operation::Describe && m->job_id == record_.job()) answers = Request::Describe;
  if (m->op == Operation::Update && m->job_id == record_.job() &&
      (in_flight_ == Request::Progress || in_flight_ == Request::Outcome)) {
    answers = in_flight_;
  }
  if (answers == Request::None || answers != in_flight_) return {};
  const std::string_view token(token_.data(), token_length_);
  if (m->kind == TopicKind::Rejected) {
    auto r = read_rejected(payload);
    if (!r) return fail(r.error());
    if (!r->client_token.equals(token)) return {};
    on_rejected(*r);
    return {};
  }
  if (answers == Request::StartNext || answers == Request::Describe) {
    auto reply = read_execution_reply(payload);
    if (!reply) return fail(reply.error());
    if (!reply->client_token.equals(token)) return {};
    in_flight_ = Request::None;
    attempts_ = 0;
    last_rejection_ = Errc::Ok;
    return on_execution_reply(*reply);
  }
  auto reply = read_update_accepted(payload);
  if (!reply) return fail(reply.error());
  if (!reply->client_token.equals(token)) return {};
  in_flight_ = Request::None;
  attempts_ = 0;
  last_rejection_ = Errc::Ok;
  return on_update_accepted(*reply);
}

Result<void, Errc> Executor::report_progress(std::optional<std::span<const StatusDetail>> details,
                                             std::optional<std::int64_t> step_timeout,
                                             std::optional<std::uint32_t> step) noexcept {
  if (phase_ != Phase::Running) return fail(Errc::NoJobRunning);
  if (in_flight_ != Request::None) return fail(Errc::Busy);
  if (step && *step != record_.step) {
    record_.step = *step;
    if (!store_.save(record_)) return fail(Errc::StoreFailed);
  }
  UpdateRequest r;
  r.status = JobStatus::InProgress;
  r.status_details = details;
  r.include_job_execution_state = true;
  r.step_timeout_in_minutes = step_timeout;
  r.expected_version = record_.version;
  r.client_token = next_token();
  auto p = write_update_request(r, config_.payload_buffer);
  if (!p) return fail(p.error());
  payload_ = *p;
  in_flight_ = Request::Progress;
  return publish(Operation::Update, record_.job());
}

Result<void, Errc> Executor::finish(JobStatus status,
                                    std::optional<std::span<const StatusDetail>> details) noexcept {
  if (phase_ != Phase::Running) return fail(Errc::NoJobRunning);
  if (in_flight_ != Request::None) return fail(Errc::Busy);
  if (!device_may_set(status) || status == JobStatus::InProgress) {
    return fail(Errc::InvalidArgument);
  }
  // Written first (details the writer refuses change nothing), saved before it can be
  // published (the driver publishes after this returns), so a reboot finds the outcome.
  const JobRecord before = record_;
  record_.status = status;
  record_.reason = OutcomeReason::Handler;
  if (auto sent = send_outcome(status, details); !sent) {
    record_ = before;
    return sent;
  }
  if (!store_.save(record_)) {
    record_ = before;
    publish_due_ = false;
    in_flight_ = Request::None;
    phase_ = Phase::Running;
    return fail(Errc::StoreFailed);
  }
  return {};
}

Action Executor::poll() noexcept {
  Action a;
  if (stop_due_) {
    stop_due_ = false;
    a.kind = ActionKind::StopJob;
    a.job_id = {stopped_job_.data(), stopped_job_length_};
    return a;
  }
  if (run_due_) {
    run_due_ = false;
    a.kind = ActionKind::RunJob;
    a.job_id = record_.job();
    a.handler = run_handler_;
    a.job_document = run_document_;
    a.resumed = run_resumed_;
    a.step = record_.step;
    return a;
  }
  if (publish_due_) {
    publish_due_ = false;
    a.kind = ActionKind::Publish;
    a.topic = topic_;
    a.payload = payload_;
  }
  return a;
}

}  // namespace edgekit::jobs
