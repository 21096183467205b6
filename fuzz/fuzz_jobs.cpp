// Fuzzes the Jobs readers (edgekit::jobs, pure): what a device reads from notify, notify-next,
// get/accepted, start-next/accepted, {jobId}/get/accepted, {jobId}/update/accepted and …/rejected,
// and the topic matcher. Every input is tried as each payload and as a topic.
// Oracles: no reader reads outside the payload (ASan); every view a reader returns lies inside
// the payload and has the type its header promises; every job id read is a valid job id and
// builds an update topic; every summary of a list reads again through the list's iterator, as
// many as the list says; a job document and statusDetails read from an execution are written
// back into an update request (details entry by entry) that parses and reads back the same; a
// rejection's errc is the mapping of its code; a matched topic is rebuilt byte for byte from what
// the matcher returned.
// The executor (pure) is fed the input as each reply it waits for, accepted or rejected in turn,
// with "@T@" replaced by the token of its request (so that replies correlate), a reboot in the
// middle; the handler reports progress and finishes. Oracles: every request it publishes is on a
// jobs request topic of its thing and is a JSON object carrying the current token; a RunJob
// names a valid job id, a registered handler and an object document; the record it keeps names
// a valid job id; nothing it does reads outside the buffers (ASan). For inputs of odd length the
// first boot finds its record unreadable (a torn write), so the `$next` describe is fed too.
// The input is also a job record file (FileRecordStore::decode, hosted): one it loads is
// exactly what `encode` writes for that record (so nothing in the file goes unchecked), with a
// valid job id; one it refuses says why.
#include <algorithm>
#include <edgekit/jobs/documents.hpp>
#include <edgekit/jobs/executor.hpp>
#include <edgekit/jobs/file_record_store.hpp>
#include <edgekit/jobs/topics.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"

namespace jobs = edgekit::jobs;
using edgekit::doc::json::Value;

namespace {

bool inside(std::string_view t, std::string_view payload) {
  return t.data() >= payload.data() && t.data() + t.size() <= payload.data() + payload.size();
}

bool inside(const Value& v, std::string_view payload) {
  const std::string_view t = v.text();
  if (v.is_null() && t == "null" && t.data() != payload.data()) return true;  // a default Value
  return inside(t, payload);
}

bool inside(const std::optional<Value>& v, std::string_view payload) {
  return !v || inside(*v, payload);
}

void check_job_id(std::string_view id, std::string_view payload) {
  FUZZ_CHECK(jobs::valid_job_id(id) && inside(id, payload));
  char buf[jobs::kMaxTopicLength];
  FUZZ_CHECK(jobs::topic("thing", jobs::Operation::Update, jobs::TopicKind::Request, id, buf));
}

void check_list(const jobs::SummaryList& list, std::string_view payload) {
  std::size_t n = 0;
  for (const jobs::JobExecutionSummary& s : list) {
    check_job_id(s.job_id, payload);
    ++n;
  }
  FUZZ_CHECK(n == list.size());
}

// statusDetails read back from a reply: an object of strings. Those that meet the request
// limits are written into an update request, which then reads back the same entries.
void check_details(const std::optional<Value>& details, std::string_view payload) {
  if (!details) return;
  FUZZ_CHECK(details->is_object() && inside(*details, payload));
  std::vector<jobs::StatusDetail> entries;
  std::vector<std::vector<char>> values;
  for (const edgekit::doc::json::Member& m : details->members()) {
    FUZZ_CHECK(m.value.is_string());
    auto key = m.key.as_string_view();
    std::vector<char> value(m.value.string_length().value_or(0) + 1);
    auto v = m.value.copy_string(value);
    FUZZ_CHECK(v.has_value());
    if (!key || !jobs::valid_status_detail_key(*key) || !jobs::valid_status_detail_value(*v)) {
      continue;
    }
    values.push_back(std::move(value));
    entries.push_back({*key, std::string_view(values.back().data(), v->size())});
  }
  jobs::UpdateRequest r;
  r.status = jobs::JobStatus::InProgress;
  r.status_details = std::span<const jobs::StatusDetail>(entries);
  std::vector<char> out(details->text().size() * 6 + 64);
  auto doc = jobs::write_update_request(r, out);
  FUZZ_CHECK(doc.has_value());
  auto parsed = edgekit::doc::json::parse(*doc);
  FUZZ_CHECK(parsed.has_value());
  auto written = parsed->find("statusDetails");
  FUZZ_CHECK(written.has_value());
  for (const jobs::StatusDetail& d : entries) FUZZ_CHECK(written->find(d.key)->equals(d.value));
}

void check_execution(const jobs::JobExecution& e, std::string_view payload) {
  check_job_id(e.job_id, payload);
  FUZZ_CHECK(e.thing_name.is_null() || e.thing_name.is_string());
  FUZZ_CHECK(inside(e.thing_name, payload) && inside(e.job_document, payload));
  FUZZ_CHECK(!e.job_document || e.job_document->is_object());
  FUZZ_CHECK(!jobs::to_string(e.status).empty() && jobs::to_string(e.status) != "?");
  check_details(e.status_details, payload);
}

void check_state(const std::optional<jobs::JobExecutionState>& s, std::string_view payload) {
  if (!s) return;
  FUZZ_CHECK(jobs::to_string(s->status) != "?");
  check_details(s->status_details, payload);
}

constexpr jobs::HandlerSpec kHandlers[] = {{"install", jobs::RebootPolicy::FailJob},
                                           {"configure", jobs::RebootPolicy::Resume}};

void check_publish(const jobs::Executor& e, const jobs::Action& a) {
  auto m = jobs::match_topic(a.topic);
  FUZZ_CHECK(m && m->thing == "lamp-1" && m->kind == jobs::TopicKind::Request);
  auto doc = edgekit::doc::json::parse(a.payload);
  FUZZ_CHECK(doc && doc->is_object());
  auto token = doc->find("clientToken");
  FUZZ_CHECK(token && token->equals(e.current_token()));
}

// Up to 12 actions of one boot; the input is every reply.
void drive(jobs::Executor& e, std::string_view input, int& round) {
  for (int i = 0; i < 12; ++i, ++round) {
    const jobs::Action a = e.poll();
    switch (a.kind) {
      case jobs::ActionKind::None:
        return;
      case jobs::ActionKind::Publish: {
        check_publish(e, a);
        std::string reply(input);
        for (std::size_t at = reply.find("@T@"); at != std::string::npos; at = reply.find("@T@")) {
          reply.replace(at, 3, e.current_token());
        }
        const std::string topic =
            std::string(a.topic) + (round % 3 == 2 ? "/rejected" : "/accepted");
        (void)e.on_message(topic, reply);
        if (e.request_in_flight() && round % 4 == 3) e.request_lost();
        break;
      }
      case jobs::ActionKind::RunJob:
        FUZZ_CHECK(jobs::valid_job_id(a.job_id) && a.handler < std::size(kHandlers));
        FUZZ_CHECK(a.job_document.is_object());
        if (round % 2 == 0) {
          const jobs::StatusDetail d[] = {{"step", "1"}};
          (void)e.report_progress(d, 5, 1);
        } else {
          (void)e.finish(jobs::JobStatus::Succeeded);
        }
        break;
      case jobs::ActionKind::StopJob:
        FUZZ_CHECK(jobs::valid_job_id(a.job_id));
        break;
    }
  }
}

// The record as a torn write leaves it, on the first load only; then the store underneath.
class TornOnce final : public jobs::RecordStore {
 public:
  explicit TornOnce(jobs::RecordStore& inner) : inner_(inner) {}
  jobs::RecordLoad load(jobs::JobRecord& out) noexcept override {
    if (!torn_) return inner_.load(out);
    torn_ = false;
    return jobs::RecordLoad::Corrupt;
  }
  bool save(const jobs::JobRecord& r) noexcept override { return inner_.save(r); }
  bool clear() noexcept override { return inner_.clear(); }

 private:
  jobs::RecordStore& inner_;
  bool torn_ = true;
};

void record_file(std::span<const std::byte> bytes) {
  jobs::JobRecord r;
  jobs::FileRecordStore::Problem why{};
  if (jobs::FileRecordStore::decode(bytes, r, why) == jobs::RecordLoad::Loaded) {
    FUZZ_CHECK(why == jobs::FileRecordStore::Problem::None);
    FUZZ_CHECK(jobs::valid_job_id(r.job()));
    const auto again = jobs::FileRecordStore::encode(r);
    FUZZ_CHECK(std::equal(again.begin(), again.end(), bytes.begin(), bytes.end()));
  } else {
    FUZZ_CHECK(why != jobs::FileRecordStore::Problem::None);
  }
}

void executor(std::string_view input) {
  jobs::RamRecordSlot slot;
  jobs::RamRecordStore ram(slot);
  TornOnce torn(ram);
  jobs::RecordStore& store = input.size() % 2 == 1 ? static_cast<jobs::RecordStore&>(torn) : ram;
  char topic[jobs::kMaxTopicLength];
  char payload[512];
  jobs::ExecutorConfig c;
  c.thing = "lamp-1";
  c.handlers = kHandlers;
  c.token_prefix = "fz";
  c.topic_buffer = topic;
  c.payload_buffer = payload;
  int round = 0;
  for (int boot = 0; boot < 2; ++boot) {
    jobs::Executor e(c, store);
    FUZZ_CHECK(e.start().has_value());
    drive(e, input, round);
    if (e.state() == jobs::ExecutorState::Running) {
      (void)e.finish(jobs::JobStatus::Failed);
      drive(e, input, round);
    }
    FUZZ_CHECK(!ram.has() || jobs::valid_job_id(ram.record().job()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);

  if (auto r = jobs::read_execution_reply(payload)) {
    if (r->execution) check_execution(*r->execution, payload);
    FUZZ_CHECK(inside(r->client_token, payload));
    FUZZ_CHECK(r->client_token.is_null() || r->client_token.is_string());
  }
  if (auto p = jobs::read_get_pending_accepted(payload)) {
    check_list(p->in_progress, payload);
    check_list(p->queued, payload);
    FUZZ_CHECK(inside(p->client_token, payload));
  }
  if (auto n = jobs::read_notify(payload)) {
    check_list(n->in_progress, payload);
    check_list(n->queued, payload);
  }
  if (auto u = jobs::read_update_accepted(payload)) {
    check_state(u->execution_state, payload);
    FUZZ_CHECK(inside(u->job_document, payload) && inside(u->client_token, payload));
    FUZZ_CHECK(!u->job_document || u->job_document->is_object());
  }
  if (auto r = jobs::read_rejected(payload)) {
    FUZZ_CHECK(jobs::is_rejection(r->errc));
    FUZZ_CHECK(r->code.is_string() && inside(r->code, payload));
    FUZZ_CHECK(r->message.is_null() || r->message.is_string());
    FUZZ_CHECK(inside(r->message, payload) && inside(r->client_token, payload));
    check_state(r->execution_state, payload);
    char code[32];
    auto c = r->code.copy_string(code);
    FUZZ_CHECK(r->errc == jobs::rejection_errc(c ? *c : std::string_view{}));
  }

  if (auto m = jobs::match_topic(payload)) {
    char buf[jobs::kMaxTopicLength];
    auto t = jobs::topic(m->thing, m->op, m->kind, m->job_id, buf);
    FUZZ_CHECK(t.has_value() && *t == payload);
  }
  executor(payload);
  record_file(std::as_bytes(std::span(data, size)));
  return 0;
}
