// The Jobs service: device requests in one store transaction each (in fleetd a savepoint of the
// broker link's batch, store.hpp), replies and events after it (a reply never announces a change
// that was rolled back; in a batch the link holds them until the batch committed).

#include "jobs/service.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>

#include "jobs/config.hpp"

namespace edgekit::fleetd::jobs {
namespace {

using nlohmann::json;

std::int64_t epoch_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What a request's transaction decided: an accepted document, or a rejection (with the
// execution's state for InvalidStateTransition and VersionMismatch).
struct Answer {
  bool accepted = false;
  json document;
  Rejection rejection;
  std::optional<JobExecution> state;
};

Answer accepted(json doc) {
  Answer a;
  a.accepted = true;
  a.document = std::move(doc);
  return a;
}

Answer rejected(ErrorCode code, std::string message,
                std::optional<JobExecution> state = std::nullopt) {
  Answer a;
  a.rejection = Rejection{code, std::move(message)};
  a.state = std::move(state);
  return a;
}

// The step timer's absolute deadline: -1 discards it; it never reaches past the in-progress
// timer's deadline (aws-iot-protocols.md 2.5).
std::int64_t step_deadline(std::int64_t now, std::int64_t minutes, std::int64_t in_progress_at,
                           std::int64_t seconds_per_minute) {
  if (minutes < 0) return 0;
  const std::int64_t at = now + minutes * seconds_per_minute;
  return in_progress_at > 0 ? std::min(at, in_progress_at) : at;
}

// A device's accepted change (start-next, update) applied to the execution: status, version,
// startedAt and the in-progress timer when it starts (fixed from then on), statusDetails when
// given (kept otherwise), the step timer when given; no timer runs once it ended.
void apply_device_change(JobExecution& e, const UpdateDecision& d, const Job& job,
                         const Request& req, std::int64_t now, std::int64_t seconds_per_minute) {
  e.status = d.next.status;
  e.version_number = d.next.version_number;
  e.last_updated_at = now;
  if (d.starts) {
    e.started_at = now;
    if (job.in_progress_timeout_minutes > 0) {
      e.in_progress_timeout_at = now + job.in_progress_timeout_minutes * seconds_per_minute;
    }
  }
  if (req.status_details) e.status_details = *req.status_details;
  if (req.step_timeout_minutes) {
    e.step_timeout_at = step_deadline(now, *req.step_timeout_minutes, e.in_progress_timeout_at,
                                      seconds_per_minute);
  }
  if (is_terminal(e.status)) {
    e.step_timeout_at = 0;
    e.in_progress_timeout_at = 0;
  }
}

// A service change (TIMED_OUT, CANCELED) applied: every such status is terminal.
void apply_service_change(JobExecution& e, const ExecutionState& next, std::int64_t now) {
  e.status = next.status;
  e.version_number = next.version_number;
  e.last_updated_at = now;
  e.step_timeout_at = 0;
  e.in_progress_timeout_at = 0;
}

// One rollout group as it stands: its things, and how their latest executions ended.
struct GroupView {
  std::vector<std::string> unstarted;
  std::int64_t size = 0;
  std::int64_t succeeded = 0;
  std::int64_t failed = 0;  // FAILED, REJECTED, TIMED_OUT
};

// The job's targets in name order cut into its rollout groups (the last takes the rest).
Res<std::vector<GroupView>> group_views(Tx& tx, const Job& job,
                                        const std::vector<RolloutGroup>& groups) {
  auto targets = job_target_things(tx, job);
  if (!targets) return fail(targets.error());
  std::map<std::string, ExecutionStatus> latest;
  std::string after;
  for (;;) {
    auto page = job_executions(tx, job.job_id, {after, 1000}, std::nullopt);
    if (!page) return fail(page.error());
    for (const auto& e : page.value().items) latest[e.thing_name] = e.status;
    if (page.value().next.empty()) break;
    after = page.value().next;
  }
  std::vector<GroupView> out(groups.size());
  std::size_t g = 0;
  for (const auto& thing : targets.value()) {
    while (g + 1 < groups.size() && out[g].size >= groups[g].count) ++g;
    GroupView& v = out[g];
    ++v.size;
    auto it = latest.find(thing);
    if (it == latest.end()) {
      v.unstarted.push_back(thing);
    } else if (it->second == ExecutionStatus::Succeeded) {
      ++v.succeeded;
    } else if (it->second == ExecutionStatus::Failed || it->second == ExecutionStatus::Rejected ||
               it->second == ExecutionStatus::TimedOut) {
      ++v.failed;
    }
  }
  return out;
}

double percent(std::int64_t n, std::int64_t of) {
  return of == 0 ? 100.0 : 100.0 * static_cast<double>(n) / static_cast<double>(of);
}

bool same_next(const std::vector<JobExecution>& a, const std::vector<JobExecution>& b) {
  if (a.empty() || b.empty()) return a.empty() == b.empty();
  return a.front().job_id == b.front().job_id &&
         a.front().execution_number == b.front().execution_number &&
         a.front().status == b.front().status && a.front().version_number == b.front().version_number;
}

bool same_list(const std::vector<JobExecution>& a, const std::vector<JobExecution>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].job_id != b[i].job_id || a[i].status != b[i].status ||
        a[i].execution_number != b[i].execution_number) {
      return false;
    }
  }
  return true;
}

}  // namespace

JobsService::JobsService(Store& store, Logger& log, Publisher publish, JobsOptions options)
    : store_(store), log_(log), publish_(std::move(publish)), options_(options) {}

Res<void> JobsService::Changes::touch(Tx& tx, const std::string& thing) {
  if (before.count(thing)) return {};
  auto p = pending_executions(tx, thing);
  if (!p) return fail(p.error());
  before[thing] = std::move(p.value());
  return {};
}

Res<void> JobsService::Changes::finish(Tx& tx) {
  for (const auto& [thing, list] : before) {
    auto p = pending_executions(tx, thing);
    if (!p) return fail(p.error());
    if (!p.value().empty() && !documents.count(p.value().front().job_id)) {
      auto j = get_job(tx, p.value().front().job_id);
      if (!j) return fail(j.error());
      documents[j.value().job_id] = j.value().document;
    }
    after[thing] = std::move(p.value());
  }
  return {};
}

void JobsService::notify(const Changes& changes, std::int64_t now) {
  for (const auto& [thing, after] : changes.after) {
    const auto& before = changes.before.at(thing);
    if (!same_list(before, after)) {
      publish_(notify_topic(thing), notify_json(after, now).dump(), {});
    }
    // notify-next: the next execution is another one (or none), or the same one changed
    // status (QUEUED -> IN_PROGRESS is news to an executor waiting on it).
    if (!same_next(before, after)) {
      json doc{{"timestamp", now}};
      if (!after.empty()) {
        doc["execution"] = execution_json(after.front(), &changes.documents.at(after.front().job_id));
      }
      publish_(notify_next_topic(thing), doc.dump(), {});
    }
  }
}

void JobsService::reply(std::string_view request_topic, bool ok, const json& doc,
                        std::string_view client_id) {
  publish_(reply_topic(request_topic, ok), doc.dump(), client_id);
}

void JobsService::reject(std::string_view request_topic, const Rejection& r,
                         const std::optional<std::string>& client_token,
                         std::string_view client_id, std::int64_t now, const JobExecution* state) {
  log_.info("jobs.rejected", {{"topic", request_topic},
                              {"client_id", client_id},
                              {"code", to_string(r.code)},
                              {"message", r.message}});
  reply(request_topic, false, rejection_json(r, now, client_token, state), client_id);
}

Res<void> JobsService::queue(Tx& tx, const Job& job, const std::string& thing, Changes& changes,
                             std::int64_t execution_number, std::int64_t retry_attempt,
                             std::int64_t rollout_group) {
  if (auto t = changes.touch(tx, thing); !t) return t;
  JobExecution e;
  e.job_id = job.job_id;
  e.thing_name = thing;
  e.execution_number = execution_number;
  e.retry_attempt = retry_attempt;
  e.rollout_group = rollout_group;
  e.queued_at = e.last_updated_at = tx.now();
  return insert_execution(tx, e);
}

Res<void> JobsService::settle_job(Tx& tx, const std::string& job_id) {
  auto job = get_job(tx, job_id);
  if (!job) return fail(job.error());
  if (job.value().status != JobStatus::InProgress || job.value().continuous) return {};
  auto unfinished = has_unfinished_executions(tx, job_id);
  if (!unfinished) return fail(unfinished.error());
  if (unfinished.value()) return {};
  auto left = unstarted_targets(tx, job.value(), 1);
  if (!left) return fail(left.error());
  if (!left.value().empty()) return {};  // the rollout has more to queue
  job.value().status = JobStatus::Completed;
  job.value().completed_at = tx.now();
  if (auto s = save_job(tx, job.value()); !s) return fail(s.error());
  return {};
}

void JobsService::handle(const JobsRequest& rq) {
  if (rq.client_id.empty()) {
    log_.warn("jobs.unstamped", {{"topic", rq.topic}});
    return;
  }
  auto topic = read_topic(rq.topic);
  if (!topic) {
    log_.warn("jobs.not_a_request", {{"topic", rq.topic}});
    return;
  }
  const std::int64_t now = epoch_now();
  auto reading = read_request(topic->topic.operation, rq.payload);
  if (topic->rejection) {
    return reject(rq.topic, *topic->rejection, reading.client_token, rq.client_id, now);
  }
  if (!reading.request) {
    return reject(rq.topic, reading.rejection, reading.client_token, rq.client_id, now);
  }
  const Request& req = *reading.request;
  if (!admit(topic->topic.thing)) {
    return reject(rq.topic, Rejection{ErrorCode::RequestThrottled, "Rate exceeded"},
                  req.client_token, rq.client_id, now);
  }
  const std::string thing(topic->topic.thing);
  const std::string job_id(topic->topic.job_id);
  const Operation op = topic->topic.operation;
  Changes changes;
  std::int64_t tx_now = now;
  auto answer = store_.transact([&](Tx& tx) -> Res<Answer> {
    changes = Changes{};
    tx_now = tx.now();
    auto with_token = [&](json doc) {
      doc["timestamp"] = tx.now();
      if (req.client_token) doc["clientToken"] = *req.client_token;
      return doc;
    };
    switch (op) {
      case Operation::GetPending: {
        auto p = pending_executions(tx, thing);
        if (!p) return fail(p.error());
        return accepted(pending_json(p.value(), tx.now(), req.client_token));
      }
      case Operation::Describe: {
        std::optional<JobExecution> e;
        if (job_id == "$next") {
          auto p = pending_executions(tx, thing);
          if (!p) return fail(p.error());
          if (!p.value().empty()) e = p.value().front();
          if (!e) return accepted(with_token(json::object()));
        } else {
          auto got = req.execution_number
                         ? get_execution(tx, job_id, thing, *req.execution_number)
                         : latest_execution(tx, job_id, thing);
          if (!got) return fail(got.error());
          e = std::move(got.value());
          if (!e) {
            return rejected(ErrorCode::ResourceNotFound,
                            "job execution '" + job_id + "' of thing '" + thing + "' not found");
          }
          if (is_terminal(e->status)) {
            return rejected(ErrorCode::TerminalStateReached,
                            "job execution '" + job_id + "' of thing '" + thing + "' is " +
                                to_string(e->status));
          }
        }
        std::string document;
        if (req.include_job_document) {
          auto j = get_job(tx, e->job_id);
          if (!j) return fail(j.error());
          document = j.value().document;
        }
        return accepted(with_token(
            json{{"execution", execution_json(*e, req.include_job_document ? &document : nullptr)}}));
      }
      case Operation::StartNext: {
        if (auto t = changes.touch(tx, thing); !t) return fail(t.error());
        const auto& pending = changes.before.at(thing);
        if (pending.empty()) return accepted(with_token(json::object()));
        JobExecution e = pending.front();
        auto job = get_job(tx, e.job_id);
        if (!job) return fail(job.error());
        if (e.status == ExecutionStatus::Queued) {
          const std::int64_t previous = e.version_number;
          const auto d = decide_device_update(e.state(), ExecutionStatus::InProgress, {}, {});
          apply_device_change(e, d, job.value(), req, tx.now(), options_.seconds_per_minute);
          if (auto s = save_execution(tx, e, previous); !s) return fail(s.error());
          if (auto f = changes.finish(tx); !f) return fail(f.error());
        } else {
          // Already IN_PROGRESS: AWS returns it as it is.
          changes = Changes{};
        }
        return accepted(with_token(json{{"execution", execution_json(e, &job.value().document)}}));
      }
      case Operation::Update: {
        auto got = latest_execution(tx, job_id, thing);
        if (!got) return fail(got.error());
        if (!got.value()) {
          return rejected(ErrorCode::ResourceNotFound,
                          "job execution '" + job_id + "' of thing '" + thing + "' not found");
        }
        JobExecution e = *got.value();
        const auto d = decide_device_update(e.state(), *req.status, req.expected_version,
                                            req.execution_number);
        switch (d.refusal) {
          case Refusal::None: break;
          case Refusal::InvalidRequest:
            return rejected(ErrorCode::InvalidRequest, "a device may not report this status");
          case Refusal::ResourceNotFound:
            return rejected(ErrorCode::ResourceNotFound,
                            "execution number " + std::to_string(*req.execution_number) +
                                " of job '" + job_id + "' on thing '" + thing + "' not found");
          case Refusal::InvalidStateTransition:
            return rejected(ErrorCode::InvalidStateTransition,
                            std::string("cannot change the execution from ") +
                                to_string(e.status) + " to " + to_string(*req.status),
                            e);
          case Refusal::VersionMismatch:
            return rejected(ErrorCode::VersionMismatch,
                            "expected version " + std::to_string(*req.expected_version) +
                                " but the execution is at version " +
                                std::to_string(e.version_number),
                            e);
        }
        if (auto t = changes.touch(tx, thing); !t) return fail(t.error());
        auto job = get_job(tx, job_id);
        if (!job) return fail(job.error());
        const std::int64_t previous = e.version_number;
        apply_device_change(e, d, job.value(), req, tx.now(), options_.seconds_per_minute);
        if (auto s = save_execution(tx, e, previous); !s) return fail(s.error());
        if (is_terminal(e.status)) {
          if (auto s = ended(tx, e, changes); !s) return fail(s.error());
        }
        if (auto f = changes.finish(tx); !f) return fail(f.error());
        json doc = with_token(json::object());
        if (req.include_execution_state) doc["executionState"] = state_json(e);
        if (req.include_job_document) {
          doc["jobDocument"] = json::parse(job.value().document, nullptr, false);
        }
        return accepted(std::move(doc));
      }
    }
    return fail(Errc::Internal, "unknown jobs operation");
  });
  if (!answer) {
    log_.error("jobs.store_failed", {{"topic", rq.topic}, {"error", answer.error().message}});
    return reject(rq.topic, Rejection{ErrorCode::InternalError, "internal error"},
                  req.client_token, rq.client_id, now);
  }
  const Answer& a = answer.value();
  if (!a.accepted) {
    return reject(rq.topic, a.rejection, req.client_token, rq.client_id, tx_now,
                  a.state ? &*a.state : nullptr);
  }
  reply(rq.topic, true, a.document, rq.client_id);
  notify(changes, tx_now);
}

template <class F>
auto JobsService::changing(F f) -> decltype(f(std::declval<Tx&>(), std::declval<Changes&>())) {
  using R = decltype(f(std::declval<Tx&>(), std::declval<Changes&>()));
  Changes changes;
  std::int64_t now = 0;
  R out = store_.transact([&](Tx& tx) -> R {
    changes = Changes{};  // a retried transaction starts again
    now = tx.now();
    R r = f(tx, changes);
    if (!r) return r;
    if (auto done = changes.finish(tx); !done) return fail(done.error());
    return r;
  });
  if (out) notify(changes, now);
  return out;
}

bool JobsService::admit(std::string_view thing) {
  const auto now = std::chrono::steady_clock::now();
  auto it = buckets_.find(thing);
  if (it == buckets_.end()) {
    // Idle things' buckets are full again: forgetting them changes nothing, and bounds memory.
    if (buckets_.size() >= 100'000) {
      for (auto b = buckets_.begin(); b != buckets_.end();) {
        const std::chrono::duration<double> idle = now - b->second.at;
        b = idle.count() * options_.requests_per_second >= options_.request_burst
                ? buckets_.erase(b)
                : std::next(b);
      }
    }
    it = buckets_.emplace(std::string(thing), Bucket{options_.request_burst, now}).first;
  }
  Bucket& b = it->second;
  const std::chrono::duration<double> elapsed = now - b.at;
  b.tokens = std::min(options_.request_burst,
                      b.tokens + elapsed.count() * options_.requests_per_second);
  b.at = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

Res<Job> JobsService::create(Job job) {
  // Checked here, before anything is stored, so that no timer meets one it cannot read.
  if (auto r = read_retry_config(job.retry_config); !r) return fail(r.error());
  if (auto a = read_abort_config(job.abort_config); !a) return fail(a.error());
  auto rollout = read_rollout_config(job.rollout_config);
  if (!rollout) return fail(rollout.error());
  auto groups = read_rollout_groups(job.rollout_groups);
  if (!groups) return fail(groups.error());
  const bool staged = rollout.value().limited() || !groups.value().empty();
  auto created = changing([&](Tx& tx, Changes& changes) -> Res<Job> {
    auto j = create_job(tx, job);
    if (!j) return j;
    if (staged) {
      // The rollout queues its executions at its rate and group by group, from now on (tick).
      if (auto r = roll_out(tx, j.value(), changes); !r) return fail(r.error());
      return get_job(tx, j.value().job_id);
    }
    auto things = job_target_things(tx, j.value());
    if (!things) return fail(things.error());
    for (const auto& t : things.value()) {
      if (auto q = queue(tx, j.value(), t, changes); !q) return fail(q.error());
    }
    if (things.value().empty()) {
      if (auto s = settle_job(tx, j.value().job_id); !s) return fail(s.error());
    }
    return get_job(tx, j.value().job_id);
  });
  if (created) log_.info("jobs.created", {{"job_id", created.value().job_id}});
  return created;
}

Res<Job> JobsService::cancel_in(Tx& tx, Job job, const CancelRequest& rq, Changes& changes) {
  std::string after;
  for (;;) {
    auto page = job_executions(tx, job.job_id, {after, 1000}, std::nullopt);
    if (!page) return fail(page.error());
    for (JobExecution e : page.value().items) {
      auto next = decide_service_change(e.state(), ExecutionStatus::Canceled, rq.force);
      if (!next) continue;
      if (auto t = changes.touch(tx, e.thing_name); !t) return fail(t.error());
      const std::int64_t previous = e.version_number;
      apply_service_change(e, *next, tx.now());
      if (auto s = save_execution(tx, e, previous); !s) return fail(s.error());
    }
    if (page.value().next.empty()) break;
    after = page.value().next;
  }
  job.status = JobStatus::Canceled;
  job.force_canceled = job.force_canceled || rq.force;
  job.reason_code = rq.reason_code;
  job.comment = rq.comment;
  job.completed_at = tx.now();
  return save_job(tx, job);
}

Res<Job> JobsService::cancel(const CancelRequest& rq) {
  auto canceled = changing([&](Tx& tx, Changes& changes) -> Res<Job> {
    auto j = get_job(tx, rq.job_id);
    if (!j) return j;
    const Job& job = j.value();
    if (job.status == JobStatus::Completed ||
        (job.status == JobStatus::Canceled && (job.force_canceled || !rq.force))) {
      return fail(Errc::Conflict,
                  "job '" + job.job_id + "' is already " + to_string(job.status));
    }
    return cancel_in(tx, job, rq, changes);
  });
  if (canceled) log_.info("jobs.canceled", {{"job_id", rq.job_id}, {"force", rq.force}});
  return canceled;
}

Res<void> JobsService::thing_added_to_group(std::string_view group, std::string_view thing) {
  return changing([&](Tx& tx, Changes& changes) -> Res<void> {
    auto ids = continuous_jobs_of_group(tx, group);
    if (!ids) return fail(ids.error());
    for (const auto& id : ids.value()) {
      auto existing = latest_execution(tx, id, thing);
      if (!existing) return fail(existing.error());
      if (existing.value()) continue;  // a thing gets a continuous job once
      auto job = get_job(tx, id);
      if (!job) return fail(job.error());
      if (auto q = queue(tx, job.value(), std::string(thing), changes); !q) return q;
    }
    return {};
  });
}

Res<void> JobsService::ended(Tx& tx, const JobExecution& e, Changes& changes) {
  auto job = get_job(tx, e.job_id);
  if (!job) return fail(job.error());
  if (job.value().status != JobStatus::InProgress) return {};
  if (retryable(e.status)) {
    auto retry = read_retry_config(job.value().retry_config);
    if (!retry) return fail(retry.error());
    auto attempts = thing_attempt_counts(tx, e.job_id, e.thing_name);
    if (!attempts) return fail(attempts.error());
    auto count = [&](ExecutionStatus s) {
      auto it = attempts.value().find(s);
      return it == attempts.value().end() ? std::int64_t{0} : it->second;
    };
    if (retry.value().should_retry(e.status, count(ExecutionStatus::Failed),
                                   count(ExecutionStatus::TimedOut))) {
      log_.info("jobs.retry", {{"job_id", e.job_id},
                               {"thing", e.thing_name},
                               {"execution_number", e.execution_number + 1}});
      return queue(tx, job.value(), e.thing_name, changes, e.execution_number + 1,
                   e.retry_attempt + 1);
    }
  }
  if (is_terminal(e.status) && e.status != ExecutionStatus::Succeeded && !job.value().paused) {
    auto groups = read_rollout_groups(job.value().rollout_groups);
    if (!groups) return fail(groups.error());
    const auto g = static_cast<std::size_t>(e.rollout_group);
    if (g < groups.value().size()) {
      auto views = group_views(tx, job.value(), groups.value());
      if (!views) return fail(views.error());
      const GroupView& v = views.value()[g];
      if (percent(v.failed, v.size) >= groups.value()[g].error_threshold) {
        // hawkBit's error action: the rollout stops where it is until an admin resumes it.
        log_.warn("jobs.rollout_paused", {{"job_id", e.job_id},
                                          {"group", static_cast<std::int64_t>(g)},
                                          {"failed", v.failed},
                                          {"size", v.size}});
        job.value().paused = true;
        if (auto s = save_job(tx, job.value()); !s) return fail(s.error());
      }
    }
  }
  auto abort = read_abort_config(job.value().abort_config);
  if (!abort) return fail(abort.error());
  if (!abort.value().criteria.empty()) {
    auto counts = execution_counts(tx, e.job_id);
    if (!counts) return fail(counts.error());
    auto count = [&](ExecutionStatus s) {
      auto it = counts.value().find(s);
      return it == counts.value().end() ? std::int64_t{0} : it->second;
    };
    if (abort.value().should_abort(count(ExecutionStatus::Succeeded), count(ExecutionStatus::Failed),
                                   count(ExecutionStatus::Rejected),
                                   count(ExecutionStatus::TimedOut))) {
      log_.warn("jobs.aborted", {{"job_id", e.job_id}});
      // As AWS's CANCEL action: queued executions are canceled, running ones may finish.
      auto c = cancel_in(tx, job.value(),
                         CancelRequest{e.job_id, false, "ABORTED", "abort criteria met"}, changes);
      if (!c) return fail(c.error());
      return {};
    }
  }
  return settle_job(tx, e.job_id);
}

Res<void> JobsService::roll_out(Tx& tx, const Job& job, Changes& changes) {
  auto config = read_rollout_config(job.rollout_config);
  if (!config) return fail(config.error());
  auto groups = read_rollout_groups(job.rollout_groups);
  if (!groups) return fail(groups.error());
  if (!config.value().limited() && groups.value().empty()) return {};
  if (job.paused || job.status != JobStatus::InProgress) return {};
  std::int64_t allowed = std::numeric_limits<std::int64_t>::max();
  if (config.value().limited()) {
    const std::int64_t minute = options_.seconds_per_minute;
    auto notified = first_attempts(tx, job.job_id, 0);
    if (!notified) return fail(notified.error());
    auto counts = execution_counts(tx, job.job_id);
    if (!counts) return fail(counts.error());
    auto succeeded = counts.value().find(ExecutionStatus::Succeeded);
    const std::int64_t rate = config.value().rate_per_minute(
        notified.value(), succeeded == counts.value().end() ? 0 : succeeded->second);
    // At most `rate` in any minute, and at most its per-second share in any second: a rollout
    // spreads over the minute instead of starting as a burst.
    auto in_minute = first_attempts(tx, job.job_id, tx.now() - minute + 1);
    if (!in_minute) return fail(in_minute.error());
    auto in_second = first_attempts(tx, job.job_id, tx.now());
    if (!in_second) return fail(in_second.error());
    const std::int64_t per_second = (rate + minute - 1) / minute;
    allowed = std::min(rate - in_minute.value(), per_second - in_second.value());
    if (allowed <= 0) return {};
  }
  if (groups.value().empty()) {
    auto next = unstarted_targets(tx, job, static_cast<std::size_t>(allowed));
    if (!next) return fail(next.error());
    for (const auto& thing : next.value()) {
      if (auto q = queue(tx, job, thing, changes); !q) return q;
    }
    return {};
  }
  auto views = group_views(tx, job, groups.value());
  if (!views) return fail(views.error());
  for (std::size_t g = 0; g < views.value().size() && allowed > 0; ++g) {
    if (g > 0) {
      // A group starts once the one before it reached its success threshold.
      const GroupView& prev = views.value()[g - 1];
      if (percent(prev.succeeded, prev.size) < groups.value()[g - 1].success_threshold) break;
    }
    for (const auto& thing : views.value()[g].unstarted) {
      if (allowed-- <= 0) break;
      if (auto q = queue(tx, job, thing, changes, 1, 0, static_cast<std::int64_t>(g)); !q) {
        return q;
      }
    }
  }
  return {};
}

Res<void> JobsService::thing_removed_from_group(std::string_view group, std::string_view thing) {
  return changing([&](Tx& tx, Changes& changes) -> Res<void> {
    auto ids = continuous_jobs_of_group(tx, group);
    if (!ids) return fail(ids.error());
    for (const auto& id : ids.value()) {
      auto job = get_job(tx, id);
      if (!job) return fail(job.error());
      auto targets = job_target_things(tx, job.value());
      if (!targets) return fail(targets.error());
      if (std::binary_search(targets.value().begin(), targets.value().end(), thing)) continue;
      auto latest = latest_execution(tx, id, thing);
      if (!latest) return fail(latest.error());
      if (!latest.value()) continue;
      JobExecution e = *latest.value();
      auto next = decide_service_change(e.state(), ExecutionStatus::Removed, false);
      if (!next) continue;
      if (auto t = changes.touch(tx, e.thing_name); !t) return t;
      const std::int64_t previous = e.version_number;
      apply_service_change(e, *next, tx.now());
      if (auto s = save_execution(tx, e, previous); !s) return s;
      log_.info("jobs.removed", {{"job_id", id}, {"thing", thing}});
    }
    return {};
  });
}

Res<Job> JobsService::set_paused(std::string_view job_id, bool paused) {
  auto r = changing([&](Tx& tx, Changes& changes) -> Res<Job> {
    auto job = get_job(tx, job_id);
    if (!job) return job;
    if (job.value().status != JobStatus::InProgress) {
      return fail(Errc::Conflict, "job '" + std::string(job_id) + "' is " +
                                      to_string(job.value().status) + ", not IN_PROGRESS");
    }
    job.value().paused = paused;
    auto saved = save_job(tx, job.value());
    if (!saved) return saved;
    // Resumed: the rollout goes on at once rather than at the next tick.
    if (!paused) {
      if (auto o = roll_out(tx, saved.value(), changes); !o) return fail(o.error());
    }
    return saved;
  });
  if (r) log_.info(paused ? "jobs.paused" : "jobs.resumed", {{"job_id", job_id}});
  return r;
}

Res<void> JobsService::tick() {
  return changing([&](Tx& tx, Changes& changes) -> Res<void> {
    auto expired = expired_executions(tx, tx.now());
    if (!expired) return fail(expired.error());
    for (JobExecution e : expired.value()) {
      auto next = decide_service_change(e.state(), ExecutionStatus::TimedOut, false);
      if (!next) continue;
      if (auto t = changes.touch(tx, e.thing_name); !t) return t;
      const std::int64_t previous = e.version_number;
      apply_service_change(e, *next, tx.now());
      if (auto s = save_execution(tx, e, previous); !s) return s;
      log_.info("jobs.timed_out", {{"job_id", e.job_id}, {"thing", e.thing_name}});
      if (auto d = ended(tx, e, changes); !d) return d;
    }
    auto ids = active_job_ids(tx);
    if (!ids) return fail(ids.error());
    for (const auto& id : ids.value()) {
      auto job = get_job(tx, id);
      if (!job) return fail(job.error());
      if (auto r = roll_out(tx, job.value(), changes); !r) return r;
      if (auto s = settle_job(tx, id); !s) return s;
    }
    return {};
  });
}

}  // namespace edgekit::fleetd::jobs
