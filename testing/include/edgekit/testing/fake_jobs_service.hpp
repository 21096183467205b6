#pragma once
// A small model of the Jobs service for one thing (aws-iot-protocols.md 2.2-2.4), for stepping
// the executor (and, behind a broker, for the integration tests: jobs_service.hpp): start-next, describe and update with their accepted/rejected replies, versions
// that each accepted update increments, expectedVersion checks (VersionMismatch with the
// execution state), updates of terminal executions (InvalidStateTransition), REJECTED refused
// once IN_PROGRESS (as AWS does, 2.4), describing a terminal execution (TerminalStateReached),
// and notify-next. Built from the library's own topic matcher and edgekit::doc; no heap, so it
// runs under the allocation guard and in the QEMU image. Not a second implementation of fleetd:
// only what the executor's tests need. Also the device side's storage of the job record, in RAM.
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include "edgekit/doc/json.hpp"
#include "edgekit/jobs/documents.hpp"
#include "edgekit/jobs/executor.hpp"
#include "edgekit/jobs/topics.hpp"

namespace edgekit::jobs::testing {

struct FakeJob {
  std::string_view id;
  std::string_view document;  // the jobDocument's JSON text
  JobStatus status = JobStatus::Queued;
  std::uint64_t version = 1;
  std::int64_t execution_number = 1;
  std::array<char, 256> details{};  // the statusDetails JSON text last set (empty: none)
  std::size_t details_length = 0;
  [[nodiscard]] std::string_view status_details() const { return {details.data(), details_length}; }
};

/// A message from the service: topic and payload, in the service's buffers.
struct Message {
  std::string_view topic;
  std::string_view payload;
};

class FakeJobsService {
 public:
  explicit FakeJobsService(std::string_view thing) : thing_(thing) {}

  FakeJob& add(std::string_view id, std::string_view document) {
    FakeJob& j = jobs_[count_++];
    j.id = id;
    j.document = document;
    return j;
  }
  FakeJob* find(std::string_view id) {
    for (std::size_t i = 0; i < count_; ++i) {
      if (jobs_[i].id == id) return &jobs_[i];
    }
    return nullptr;
  }
  [[nodiscard]] std::size_t count() const { return count_; }
  FakeJob& at(std::size_t i) { return jobs_[i]; }
  /// Requests handled so far (every publish the executor made).
  [[nodiscard]] int requests() const { return requests_; }

  /// Handles one request; the reply (or nothing, for a topic it does not serve).
  std::optional<Message> handle(std::string_view topic, std::string_view payload) {
    ++requests_;
    auto m = match_topic(topic);
    if (!m || m->thing != thing_ || m->kind != TopicKind::Request) return std::nullopt;
    auto req = doc::json::parse(payload);
    if (!req || !req->is_object()) return std::nullopt;
    token_ = {};
    if (auto t = req->find("clientToken")) token_ = t->as_string_view().value_or("");
    switch (m->op) {
      case Operation::StartNext:
        return start_next(*req);
      case Operation::Describe:
        return describe(m->job_id);
      case Operation::Update:
        return update(m->job_id, *req);
      default:
        return std::nullopt;
    }
  }

  /// The notify-next message for the next pending execution (or the empty one).
  Message notify_next() {
    FakeJob* j = next();
    doc::json::Writer w(payload_);
    w.begin_object().member("timestamp", kNow);
    if (j) {
      w.key("execution");
      write_execution(w, *j);
    }
    w.end_object();
    return reply(Operation::NotifyNext, TopicKind::Request, {}, w);
  }

 private:
  static constexpr std::int64_t kNow = 1700000000;

  FakeJob* next() {
    for (JobStatus s : {JobStatus::InProgress, JobStatus::Queued}) {
      for (std::size_t i = 0; i < count_; ++i) {
        if (jobs_[i].status == s) return &jobs_[i];
      }
    }
    return nullptr;
  }

  Message reply(Operation op, TopicKind kind, std::string_view job, const doc::json::Writer& w) {
    auto t = topic(thing_, op, kind, job, topic_);
    auto p = w.finish();
    EXPECT_TRUE(t && p);
    return {t ? *t : std::string_view{}, p ? *p : std::string_view{}};
  }

  void write_state(doc::json::Writer& w, const FakeJob& j) {
    w.begin_object().member("status", to_string(j.status));
    if (j.details_length > 0) {
      w.key("statusDetails").value(*doc::json::parse(j.status_details()));
    }
    w.member("versionNumber", j.version).end_object();
  }

  void write_execution(doc::json::Writer& w, const FakeJob& j) {
    w.begin_object().member("jobId", j.id).member("thingName", thing_);
    w.key("jobDocument").value(*doc::json::parse(j.document));
    w.member("status", to_string(j.status));
    if (j.details_length > 0) {
      w.key("statusDetails").value(*doc::json::parse(j.status_details()));
    }
    w.member("queuedAt", kNow - 10).member("lastUpdatedAt", kNow);
    w.member("versionNumber", j.version).member("executionNumber", j.execution_number);
    w.end_object();
  }

  Message rejected(Operation op, std::string_view job, std::string_view code,
                   const FakeJob* state) {
    doc::json::Writer w(payload_);
    w.begin_object().member("code", code).member("message", "fake").member("timestamp", kNow);
    if (!token_.empty()) w.member("clientToken", token_);
    if (state) {
      w.key("executionState");
      write_state(w, *state);
    }
    w.end_object();
    return reply(op, TopicKind::Rejected, job, w);
  }

  void set_details(FakeJob& j, const doc::json::Value& req) {
    if (auto d = req.find("statusDetails")) {
      const std::string_view text = d->text();
      EXPECT_TRUE(text.size() <= j.details.size());
      j.details_length = text.size() <= j.details.size() ? text.size() : 0;
      std::memcpy(j.details.data(), text.data(), j.details_length);
    }
  }

  Message start_next(const doc::json::Value& req) {
    FakeJob* j = next();
    if (j && j->status == JobStatus::Queued) {
      j->status = JobStatus::InProgress;
      ++j->version;
      set_details(*j, req);
    }
    doc::json::Writer w(payload_);
    w.begin_object();
    if (j) {
      w.key("execution");
      write_execution(w, *j);
    }
    w.member("timestamp", kNow);
    if (!token_.empty()) w.member("clientToken", token_);
    w.end_object();
    return reply(Operation::StartNext, TopicKind::Accepted, {}, w);
  }

  Message describe(std::string_view id) {
    FakeJob* j = id == kNextJobId ? next() : find(id);
    if (!j) return rejected(Operation::Describe, id, "ResourceNotFound", nullptr);
    if (is_terminal(j->status)) {
      return rejected(Operation::Describe, id, "TerminalStateReached", nullptr);
    }
    doc::json::Writer w(payload_);
    w.begin_object().key("execution");
    write_execution(w, *j);
    w.member("timestamp", kNow);
    if (!token_.empty()) w.member("clientToken", token_);
    w.end_object();
    return reply(Operation::Describe, TopicKind::Accepted, id, w);
  }

  Message update(std::string_view id, const doc::json::Value& req) {
    FakeJob* j = find(id);
    if (!j) return rejected(Operation::Update, id, "ResourceNotFound", nullptr);
    auto status_value = req.find("status");
    std::optional<JobStatus> status;
    for (JobStatus s :
         {JobStatus::InProgress, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Rejected}) {
      if (status_value && status_value->equals(to_string(s))) status = s;
    }
    if (!status) return rejected(Operation::Update, id, "InvalidRequest", nullptr);
    if (is_terminal(j->status)) return rejected(Operation::Update, id, "InvalidStateTransition", j);
    if (auto expected = req.find("expectedVersion")) {
      if (expected->as_uint64().value_or(0) != j->version) {
        return rejected(Operation::Update, id, "VersionMismatch", j);
      }
    }
    if (*status == JobStatus::Rejected && j->status == JobStatus::InProgress) {
      return rejected(Operation::Update, id, "InvalidStateTransition", j);
    }
    j->status = *status;
    ++j->version;
    set_details(*j, req);
    doc::json::Writer w(payload_);
    w.begin_object();
    if (auto include = req.find("includeJobExecutionState");
        include && include->as_bool().value_or(false)) {
      w.key("executionState");
      write_state(w, *j);
    }
    w.member("timestamp", kNow);
    if (!token_.empty()) w.member("clientToken", token_);
    w.end_object();
    return reply(Operation::Update, TopicKind::Accepted, id, w);
  }

  std::string_view thing_;
  std::array<FakeJob, 4> jobs_{};
  std::size_t count_ = 0;
  int requests_ = 0;
  std::string_view token_;
  std::array<char, kMaxTopicLength> topic_{};
  std::array<char, 1024> payload_{};
};

/// The application's non-volatile storage of the job record, in RAM (it survives the tests'
/// reboots); `fail_saves` makes it refuse; `corrupt` makes a stored record unreadable (a torn
/// write) until the next save or clear.
class MemoryStore final : public RecordStore {
 public:
  RecordLoad load(JobRecord& out) noexcept override {
    if (corrupt && ram_.has()) return RecordLoad::Corrupt;
    return ram_.load(out);
  }
  bool save(const JobRecord& r) noexcept override {
    if (fail_saves) return false;
    if (saves_left == 0) return false;
    if (saves_left > 0) --saves_left;
    corrupt = false;
    return ram_.save(r);
  }
  bool clear() noexcept override {
    corrupt = false;
    return ram_.clear();
  }
  [[nodiscard]] bool has() const { return ram_.has(); }
  [[nodiscard]] const JobRecord& record() const { return ram_.record(); }
  bool fail_saves = false;
  int saves_left = -1;  // >= 0: that many more saves succeed, then they fail
  bool corrupt = false;

 private:
  RamRecordSlot slot_{};
  RamRecordStore ram_{slot_};
};

}  // namespace edgekit::jobs::testing
