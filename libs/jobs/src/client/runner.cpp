// The jobs executor driven over a reqres::Channel (runner.hpp).
#include "edgekit/jobs/runner.hpp"

#include <algorithm>
#include <cstring>

#include "edgekit/core/text.hpp"

namespace edgekit::jobs {
namespace {

constexpr std::uint8_t kAccepted = 1;
constexpr std::uint8_t kRejected = 2;
constexpr StatusDetail kDocumentTooLarge[] = {{"reason", "job document too large"}};

Errc errc_of(reqres::Errc e) noexcept {
  switch (e) {
    case reqres::Errc::Timeout:
      return Errc::Timeout;
    case reqres::Errc::NotConnected:
      return Errc::NotConnected;
    case reqres::Errc::SubscribeFailed:
      return Errc::SubscribeFailed;
    case reqres::Errc::ReplyTooLarge:
      return Errc::ReplyTooLarge;
    case reqres::Errc::WouldDeadlock:
      return Errc::WouldDeadlock;
    case reqres::Errc::InvalidArgument:
      return Errc::InvalidArgument;
    case reqres::Errc::Busy:  // one request at a time: the runner never overlaps its own
    case reqres::Errc::Ok:
    case reqres::Errc::PublishFailed:
      break;
  }
  return Errc::PublishFailed;
}

std::string_view text_of(const reqres::Message& m) noexcept {
  return {reinterpret_cast<const char*>(m.payload.data()), m.payload.size()};
}

}  // namespace

// The channel's callbacks: which message is the reply (topic and token), and what an
// unsolicited one means (only notify-next does).
struct Runner::Access {
  static std::uint8_t match(void* context, const reqres::Message& m) noexcept {
    auto* r = static_cast<Runner*>(context);
    const std::string_view request(r->topic_.data(), r->request_topic_length_);
    std::string_view t = m.topic;
    if (!consume_prefix(t, request)) return 0;
    std::uint8_t tag = 0;
    if (t == "/accepted") tag = kAccepted;
    if (t == "/rejected") tag = kRejected;
    if (tag == 0) return 0;
    auto root = doc::json::parse(text_of(m));
    if (!root || !root->is_object()) return 0;
    auto token = root->find("clientToken");
    if (!token || !token->equals(r->executor_.current_token())) return 0;
    return tag;
  }

  static void on_message(void* context, const reqres::Message& m) noexcept {
    auto* r = static_cast<Runner*>(context);
    auto t = match_topic(m.topic);
    if (!t || t->op != Operation::NotifyNext || t->thing != r->config_.thing) return;
    auto next = read_execution_reply(text_of(m));
    if (next && next->execution) r->wake_.store(true);
  }
};

namespace {

ExecutorConfig executor_config(const RunnerConfig& c, std::span<const HandlerSpec> specs,
                               std::span<char> topic, std::span<char> request) noexcept {
  ExecutorConfig e;
  e.thing = c.thing;
  e.handlers = specs;
  e.token_prefix = c.token_prefix;
  e.token_seed = c.token_seed;
  e.step_timeout_in_minutes = c.step_timeout_in_minutes;
  e.topic_buffer = topic;
  e.payload_buffer = request;
  return e;
}

}  // namespace

Runner::Runner(reqres::Channel& channel, RecordStore& store, const Clock& clock,
               const RunnerConfig& config, RunnerBuffers buffers) noexcept
    : channel_(channel),
      clock_(clock),
      config_(config),
      buffers_(buffers),
      executor_(
          executor_config(config, {specs_.data(), std::min(config.handlers.size(), kMaxHandlers)},
                          topic_, buffers.request),
          store) {
  if (config.handlers.size() > kMaxHandlers) config_error_ = Errc::InvalidArgument;
  for (std::size_t i = 0; i < config.handlers.size() && i < kMaxHandlers; ++i) {
    const JobHandler& h = config.handlers[i];
    if (h.run == nullptr) config_error_ = Errc::InvalidArgument;
    specs_[i] = HandlerSpec{h.operation, h.on_reboot};
  }
}

Runner::~Runner() {
  if (took_handler_) channel_.set_message_handler({});
}

Result<void, Errc> Runner::start(Duration subscribe_timeout) noexcept {
  if (config_error_ != Errc::Ok) return fail(config_error_);
  if (!valid_thing_name(config_.thing)) return fail(Errc::InvalidArgument);
  channel_.set_message_handler(reqres::MessageHandler{&Access::on_message, this});
  took_handler_ = true;
  // J/notify-next, J/start-next/+, J/+/get/+ (describe, `$next` included), J/+/update/+.
  std::array<std::array<char, kMaxTopicLength + 4>, 4> buffers{};
  std::array<std::string_view, 4> filters{};
  const std::string_view tails[] = {"notify-next", "start-next/+", "+/get/+", "+/update/+"};
  for (std::size_t i = 0; i < filters.size(); ++i) {
    TextAppender w{buffers[i]};
    w.put("$aws/things/");
    w.put(config_.thing);
    w.put("/jobs/");
    w.put(tails[i]);
    filters[i] = w.view();  // fits: 128 + 30 bytes at most
  }
  if (auto s = channel_.subscribe(filters, subscribe_timeout); !s) return fail(errc_of(s.error()));
  EDGEKIT_TRY(executor_.start());
  return pump();
}

void Runner::wait(Duration d) noexcept {
  const Instant until = deadline_after(clock_.now(), d);
  // Receiving meanwhile (notify-next, late replies); AgentChannel returns at each message.
  while (clock_.now() < until) {
    if (!channel_.poll(until - clock_.now())) return;
  }
}

Result<void, Errc> Runner::exchange(const Action& a) noexcept {
  request_topic_length_ = a.topic.size();  // a.topic is topic_ (the executor's topic buffer)
  auto r = channel_.request(
      a.topic, {reinterpret_cast<const std::uint8_t*>(a.payload.data()), a.payload.size()},
      reqres::Matcher{&Access::match, this},
      {reinterpret_cast<std::uint8_t*>(buffers_.reply.data()), buffers_.reply.size()},
      config_.request_timeout);
  if (!r) return fail(errc_of(r.error()));
  TextAppender w{reply_topic_};
  w.put(a.topic);
  w.put(r->tag == kAccepted ? "/accepted" : "/rejected");
  return executor_.on_message(w.view(), {buffers_.reply.data(), r->size});
}

Result<void, Errc> Runner::pump() noexcept {
  // Sends in a row, in this call, that met no reply or a retryable rejection: bounded by
  // max_attempts, with a growing wait in between. The executor's own count (`attempts`) goes on
  // across calls, so that each later call gets max_attempts sends again.
  std::uint32_t failures = 0;
  for (;;) {
    const Action a = executor_.poll();
    switch (a.kind) {
      case ActionKind::None:
        return {};
      case ActionKind::Publish: {
        if (failures >= config_.max_attempts) {
          // Given up for this call; the next run_for sends it again.
          return fail(last_error_ == Errc::Ok ? Errc::Timeout : last_error_);
        }
        if (failures > 0) wait(config_.retry_delay * failures);
        const std::uint32_t before = executor_.attempts();
        auto done = exchange(a);
        if (!done) {
          // The executor's own errors are not a lost reply: sending again changes nothing.
          if (done.error() == Errc::WouldDeadlock || done.error() == Errc::InvalidArgument ||
              done.error() == Errc::StoreFailed || done.error() == Errc::BufferTooSmall) {
            return done;
          }
          last_error_ = done.error();
          ++failures;
          executor_.request_lost();  // sent again (new token) on the next turn
          break;
        }
        if (executor_.attempts() > before) {  // a retryable rejection: sent again
          last_error_ = executor_.last_rejection();
          ++failures;
        } else {
          last_error_ = Errc::Ok;
          failures = 0;
        }
        break;
      }
      case ActionKind::RunJob: {
        // The document views the reply buffer, which the next request overwrites: the handler
        // gets a copy.
        const std::string_view text = a.job_document.text();
        if (text.size() > buffers_.document.size()) {
          // The handler cannot have the document: the job fails, and says why. If that outcome
          // cannot be saved or written now, the job would sit IN_PROGRESS with no handler, so
          // the next start/run_for tries again (too_large_due_) and the caller hears why.
          too_large_due_ = true;
          EDGEKIT_TRY(fail_too_large());
          break;
        }
        std::memcpy(buffers_.document.data(), text.data(), text.size());
        auto copy = doc::json::parse({buffers_.document.data(), text.size()});
        // Its id goes to the slot the running handler (if any) does not use.
        job_id_slot_ ^= 1;
        auto& id = job_ids_[job_id_slot_];
        const std::size_t id_size = std::min(a.job_id.size(), id.size());
        std::memcpy(id.data(), a.job_id.data(), id_size);
        pending_ = Job{std::string_view(id.data(), id_size), copy ? *copy : doc::json::Value{},
                       a.resumed, a.step};
        pending_handler_ = a.handler;
        run_due_ = true;
        if (!in_handler_) run_pending();
        break;
      }
      case ActionKind::StopJob:
        break;  // the handler learns it from progress/finish (NoJobRunning)
    }
  }
}

Result<void, Errc> Runner::fail_too_large() noexcept {
  if (!too_large_due_) return {};
  if (executor_.state() != ExecutorState::Running) {  // the service ended it meanwhile
    too_large_due_ = false;
    return {};
  }
  EDGEKIT_TRY(executor_.finish(JobStatus::Failed, kDocumentTooLarge));
  too_large_due_ = false;
  return {};
}

// Hands the pending job to its handler; a job that becomes due while a handler runs (its
// `finish` took the next one) waits until it returns, so handlers never nest.
void Runner::run_pending() noexcept {
  while (run_due_) {
    run_due_ = false;
    const JobHandler& h = config_.handlers[pending_handler_];
    const Job job = pending_;
    in_handler_ = true;
    h.run(h.context, *this, job);
    in_handler_ = false;
  }
}

Result<void, Errc> Runner::run_for(Duration duration) noexcept {
  const Instant until = deadline_after(clock_.now(), duration);
  for (;;) {
    // A request given up earlier is sent again; a notify-next wakes an idle executor.
    if (executor_.request_in_flight()) executor_.request_lost();
    if (wake_.exchange(false)) executor_.next_job_pending();
    EDGEKIT_TRY(fail_too_large());
    EDGEKIT_TRY(pump());
    if (!in_handler_) run_pending();
    const Instant now = clock_.now();
    if (now >= until) return {};
    if (wake_.load()) continue;
    auto p = channel_.poll(until - now);
    if (!p && p.error() != reqres::Errc::Busy) return fail(errc_of(p.error()));
  }
}

Result<void, Errc> Runner::progress(std::optional<std::span<const StatusDetail>> details,
                                    std::optional<std::int64_t> step_timeout_in_minutes,
                                    std::optional<std::uint32_t> step) noexcept {
  EDGEKIT_TRY(executor_.report_progress(details, step_timeout_in_minutes, step));
  EDGEKIT_TRY(pump());
  // The service may have ended the job under the handler (the executor moved on).
  if (executor_.state() != ExecutorState::Running) return fail(Errc::NoJobRunning);
  return {};
}

Result<void, Errc> Runner::finish(JobStatus status,
                                  std::optional<std::span<const StatusDetail>> details) noexcept {
  EDGEKIT_TRY(executor_.finish(status, details));
  auto p = pump();
  if (!in_handler_) run_pending();
  return p;
}

}  // namespace edgekit::jobs
