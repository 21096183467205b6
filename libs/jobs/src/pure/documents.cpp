// Jobs request writers and reply readers (aws-iot-protocols.md 2.2, 2.3, 2.5) over edgekit::doc's
// JSON reader and writer.
#include "edgekit/jobs/documents.hpp"

#include <array>

#include "edgekit/core/text.hpp"
#include "edgekit/jobs/topics.hpp"

namespace edgekit::jobs {
namespace {

using doc::json::Value;
using doc::json::Writer;

// Member names, exactly as AWS spells them (2.2, 2.3).
constexpr std::string_view kClientToken = "clientToken";
constexpr std::string_view kStatusDetails = "statusDetails";
constexpr std::string_view kStepTimeout = "stepTimeoutInMinutes";
constexpr std::string_view kExecutionNumber = "executionNumber";
constexpr std::string_view kIncludeJobDocument = "includeJobDocument";
constexpr std::string_view kIncludeState = "includeJobExecutionState";
constexpr std::string_view kExpectedVersion = "expectedVersion";
constexpr std::string_view kStatus = "status";
constexpr std::string_view kTimestamp = "timestamp";
constexpr std::string_view kExecution = "execution";
constexpr std::string_view kExecutionState = "executionState";
constexpr std::string_view kJobDocument = "jobDocument";
constexpr std::string_view kJobId = "jobId";
constexpr std::string_view kThingName = "thingName";
constexpr std::string_view kVersionNumber = "versionNumber";
constexpr std::string_view kCode = "code";
constexpr std::string_view kMessage = "message";

constexpr std::string_view kStatusNames[] = {"QUEUED",   "IN_PROGRESS", "SUCCEEDED", "FAILED",
                                             "REJECTED", "TIMED_OUT",   "REMOVED",   "CANCELED"};

// The doc writer fails for text that is not UTF-8 or for room; the jobs writers never misuse it.
Errc writer_errc(doc::Errc e) noexcept {
  return e == doc::Errc::BufferTooSmall ? Errc::BufferTooSmall : Errc::InvalidArgument;
}

Result<std::string_view, Errc> finish(const Writer& w) noexcept {
  auto done = w.finish();
  if (!done) return fail(writer_errc(done.error().code));
  return *done;
}

bool valid_token(std::string_view token) noexcept {
  return token.size() <= kMaxClientTokenLength;
}

bool valid_step_timeout(const std::optional<std::int64_t>& minutes) noexcept {
  return !minutes || *minutes >= -1;  // -1 discards the step timer (2.5)
}

// Checks every entry and that no key comes twice (the service would see invalid JSON, and
// edgekit::doc refuses duplicate keys too).
bool valid_details(const std::optional<std::span<const StatusDetail>>& details) noexcept {
  if (!details) return true;
  for (std::size_t i = 0; i < details->size(); ++i) {
    const StatusDetail& d = (*details)[i];
    if (!valid_status_detail_key(d.key) || !valid_status_detail_value(d.value)) return false;
    for (std::size_t j = 0; j < i; ++j) {
      if ((*details)[j].key == d.key) return false;
    }
  }
  return true;
}

void put_details(Writer& w, const std::optional<std::span<const StatusDetail>>& details) noexcept {
  if (!details) return;
  w.key(kStatusDetails).begin_object();
  for (const StatusDetail& d : *details) w.member(d.key, d.value);
  w.end_object();
}

template <class T>
void put_optional(Writer& w, std::string_view key, const std::optional<T>& v) noexcept {
  if (v) w.member(key, *v);
}

void put_token(Writer& w, std::string_view token) noexcept {
  if (!token.empty()) w.member(kClientToken, token);
}

// --- Reading ---

Result<Value, Errc> root_object(std::string_view payload) noexcept {
  auto root = doc::json::parse(payload);
  if (!root || !root->is_object()) return fail(Errc::MalformedDocument);
  return *root;
}

// An optional member of type `is` (an object, a string, ...).
Result<std::optional<Value>, Errc> optional_member(const Value& object, std::string_view key,
                                                   bool (Value::*is)() const noexcept) noexcept {
  auto v = object.find(key);
  if (!v) return std::optional<Value>{};
  if (!((*v).*is)()) return fail(Errc::MalformedDocument);
  return std::optional<Value>(*v);
}

Result<Value, Errc> client_token(const Value& object) noexcept {
  auto v = optional_member(object, kClientToken, &Value::is_string);
  if (!v) return fail(v.error());
  return v->value_or(Value{});
}

Result<std::optional<std::int64_t>, Errc> optional_int(const Value& object,
                                                       std::string_view key) noexcept {
  auto v = object.find(key);
  if (!v) return std::optional<std::int64_t>{};
  auto n = v->as_int64();
  if (!n) return fail(Errc::MalformedDocument);
  return std::optional<std::int64_t>(*n);
}

Result<std::optional<std::uint64_t>, Errc> optional_uint(const Value& object,
                                                         std::string_view key) noexcept {
  auto v = object.find(key);
  if (!v) return std::optional<std::uint64_t>{};
  auto n = v->as_uint64();
  if (!n) return fail(Errc::MalformedDocument);
  return std::optional<std::uint64_t>(*n);
}

Result<std::int64_t, Errc> required_timestamp(const Value& object) noexcept {
  auto t = optional_int(object, kTimestamp);
  if (!t || !*t) return fail(Errc::MalformedDocument);
  return **t;
}

// The members every reply ends with: `timestamp` (required) and `clientToken` (optional), into
// `out`'s fields of those names.
template <class Reply>
Result<void, Errc> read_timestamp_token(const Value& root, Reply& out) noexcept {
  auto timestamp = required_timestamp(root);
  if (!timestamp) return fail(timestamp.error());
  auto token = client_token(root);
  if (!token) return fail(token.error());
  out.timestamp = *timestamp;
  out.client_token = *token;
  return {};
}

// A job id as a view into the payload: a string without escapes that is a valid job id.
Result<std::string_view, Errc> required_job_id(const Value& object) noexcept {
  auto v = object.find(kJobId);
  if (!v) return fail(Errc::MalformedDocument);
  auto s = v->as_string_view();
  if (!s || !valid_job_id(*s)) return fail(Errc::MalformedDocument);
  return *s;
}

Result<JobStatus, Errc> status_of(const Value& v) noexcept {
  for (std::size_t i = 0; i < std::size(kStatusNames); ++i) {
    if (v.equals(kStatusNames[i])) return static_cast<JobStatus>(i);
  }
  return fail(Errc::MalformedDocument);
}

// statusDetails: an object whose every value is a string (2.5).
Result<std::optional<Value>, Errc> status_details(const Value& object) noexcept {
  auto d = optional_member(object, kStatusDetails, &Value::is_object);
  if (!d) return fail(d.error());
  if (*d) {
    for (const doc::json::Member& m : (*d)->members()) {
      if (!m.value.is_string()) return fail(Errc::MalformedDocument);
    }
  }
  return *d;
}

Result<JobExecutionState, Errc> read_state(const Value& v) noexcept {
  if (!v.is_object()) return fail(Errc::MalformedDocument);
  JobExecutionState s;
  auto status = v.find(kStatus);
  if (!status) return fail(Errc::MalformedDocument);
  auto st = status_of(*status);
  if (!st) return fail(st.error());
  s.status = *st;
  auto details = status_details(v);
  if (!details) return fail(details.error());
  s.status_details = *details;
  auto version = optional_uint(v, kVersionNumber);
  if (!version) return fail(version.error());
  s.version_number = *version;
  return s;
}

Result<std::optional<JobExecutionState>, Errc> optional_state(const Value& object) noexcept {
  auto v = object.find(kExecutionState);
  if (!v) return std::optional<JobExecutionState>{};
  auto s = read_state(*v);
  if (!s) return fail(s.error());
  return std::optional<JobExecutionState>(*s);
}

// The times and numbers a summary and an execution share.
template <class T>
Result<void, Errc> read_numbers(const Value& v, T& out) noexcept {
  auto queued = optional_int(v, "queuedAt");
  auto started = optional_int(v, "startedAt");
  auto updated = optional_int(v, "lastUpdatedAt");
  auto version = optional_uint(v, kVersionNumber);
  auto execution = optional_int(v, kExecutionNumber);
  if (!queued || !started || !updated || !version || !execution) {
    return fail(Errc::MalformedDocument);
  }
  out.queued_at = *queued;
  out.started_at = *started;
  out.last_updated_at = *updated;
  out.version_number = *version;
  out.execution_number = *execution;
  return {};
}

Result<JobExecution, Errc> read_execution(const Value& v) noexcept {
  if (!v.is_object()) return fail(Errc::MalformedDocument);
  JobExecution e;
  auto id = required_job_id(v);
  if (!id) return fail(id.error());
  e.job_id = *id;
  auto thing = optional_member(v, kThingName, &Value::is_string);
  if (!thing) return fail(thing.error());
  e.thing_name = thing->value_or(Value{});
  auto document = optional_member(v, kJobDocument, &Value::is_object);
  if (!document) return fail(document.error());
  e.job_document = *document;
  auto state = read_state(v);  // status, statusDetails, versionNumber
  if (!state) return fail(state.error());
  e.status = state->status;
  e.status_details = state->status_details;
  EDGEKIT_TRY(read_numbers(v, e));
  return e;
}

// An optional array of summaries, each checked.
Result<SummaryList, Errc> summaries(const Value& object, std::string_view key) noexcept {
  auto a = optional_member(object, key, &Value::is_array);
  if (!a) return fail(a.error());
  if (!*a) return SummaryList{};
  for (const Value& element : (*a)->elements()) {
    if (!read_summary(element)) return fail(Errc::MalformedDocument);
  }
  return SummaryList(**a);
}

// The two lists of summaries of get/accepted (`inProgressJobs`, `queuedJobs`) and notify
// (`IN_PROGRESS`, `QUEUED` inside `jobs`), into `out.in_progress` and `out.queued`.
template <class Reply>
Result<void, Errc> read_lists(const Value& object, std::string_view in_progress_key,
                              std::string_view queued_key, Reply& out) noexcept {
  auto in_progress = summaries(object, in_progress_key);
  if (!in_progress) return fail(in_progress.error());
  auto queued = summaries(object, queued_key);
  if (!queued) return fail(queued.error());
  out.in_progress = *in_progress;
  out.queued = *queued;
  return {};
}

}  // namespace

std::string_view to_string(JobStatus s) noexcept {
  const auto i = static_cast<std::size_t>(s);
  return i < std::size(kStatusNames) ? kStatusNames[i] : std::string_view{"?"};
}

bool valid_status_detail_key(std::string_view key) noexcept {
  return is_aws_name(key, kMaxStatusDetailKeyLength, true);
}

bool valid_status_detail_value(std::string_view value) noexcept {
  // Count code points, and refuse C0, DEL and C1 controls; the UTF-8 well-formedness is checked
  // by the writer, so only what these two rules need is decoded here.
  std::size_t chars = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto b = static_cast<unsigned char>(value[i]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte
    ++chars;
    if (b < 0x20 || b == 0x7F) return false;
    // U+0080-U+009F is C2 80 .. C2 9F.
    if (b == 0xC2 && i + 1 < value.size()) {
      const auto next = static_cast<unsigned char>(value[i + 1]);
      if (next >= 0x80 && next <= 0x9F) return false;
    }
  }
  return chars >= 1 && chars <= kMaxStatusDetailValueLength;
}

Result<std::string_view, Errc> write_get_pending_request(std::string_view client_token,
                                                         std::span<char> out) noexcept {
  if (!valid_token(client_token)) return fail(Errc::InvalidArgument);
  Writer w(out);
  w.begin_object();
  put_token(w, client_token);
  w.end_object();
  return finish(w);
}

Result<std::string_view, Errc> write_start_next_request(const StartNextRequest& r,
                                                        std::span<char> out) noexcept {
  if (!valid_token(r.client_token) || !valid_details(r.status_details) ||
      !valid_step_timeout(r.step_timeout_in_minutes)) {
    return fail(Errc::InvalidArgument);
  }
  Writer w(out);
  w.begin_object();
  put_details(w, r.status_details);
  put_optional(w, kStepTimeout, r.step_timeout_in_minutes);
  put_token(w, r.client_token);
  w.end_object();
  return finish(w);
}

Result<std::string_view, Errc> write_describe_request(const DescribeRequest& r,
                                                      std::span<char> out) noexcept {
  if (!valid_token(r.client_token)) return fail(Errc::InvalidArgument);
  Writer w(out);
  w.begin_object();
  put_optional(w, kExecutionNumber, r.execution_number);
  put_optional(w, kIncludeJobDocument, r.include_job_document);
  put_token(w, r.client_token);
  w.end_object();
  return finish(w);
}

Result<std::string_view, Errc> write_update_request(const UpdateRequest& r,
                                                    std::span<char> out) noexcept {
  if (!device_may_set(r.status) || !valid_token(r.client_token) ||
      !valid_details(r.status_details) || !valid_step_timeout(r.step_timeout_in_minutes)) {
    return fail(Errc::InvalidArgument);
  }
  Writer w(out);
  w.begin_object();
  w.member(kStatus, to_string(r.status));
  put_details(w, r.status_details);
  put_optional(w, kExecutionNumber, r.execution_number);
  put_optional(w, kIncludeState, r.include_job_execution_state);
  put_optional(w, kIncludeJobDocument, r.include_job_document);
  put_optional(w, kStepTimeout, r.step_timeout_in_minutes);
  // Last but the token: the executor re-sends an update with a new version and token by
  // rewriting this tail only (executor.cpp).
  put_optional(w, kExpectedVersion, r.expected_version);
  put_token(w, r.client_token);
  w.end_object();
  return finish(w);
}

Result<JobExecutionSummary, Errc> read_summary(const Value& v) noexcept {
  if (!v.is_object()) return fail(Errc::MalformedDocument);
  JobExecutionSummary s;
  auto id = required_job_id(v);
  if (!id) return fail(id.error());
  s.job_id = *id;
  EDGEKIT_TRY(read_numbers(v, s));
  return s;
}

Result<ExecutionReply, Errc> read_execution_reply(std::string_view payload) noexcept {
  auto root = root_object(payload);
  if (!root) return fail(root.error());
  ExecutionReply r;
  if (auto e = root->find(kExecution)) {
    auto execution = read_execution(*e);
    if (!execution) return fail(execution.error());
    r.execution = *execution;
  }
  EDGEKIT_TRY(read_timestamp_token(*root, r));
  return r;
}

Result<PendingJobs, Errc> read_get_pending_accepted(std::string_view payload) noexcept {
  auto root = root_object(payload);
  if (!root) return fail(root.error());
  PendingJobs p;
  EDGEKIT_TRY(read_lists(*root, "inProgressJobs", "queuedJobs", p));
  EDGEKIT_TRY(read_timestamp_token(*root, p));
  return p;
}

Result<JobsChanged, Errc> read_notify(std::string_view payload) noexcept {
  auto root = root_object(payload);
  if (!root) return fail(root.error());
  auto jobs = root->find("jobs");
  if (!jobs || !jobs->is_object()) return fail(Errc::MalformedDocument);
  JobsChanged c;
  EDGEKIT_TRY(read_lists(*jobs, "IN_PROGRESS", "QUEUED", c));
  auto timestamp = required_timestamp(*root);
  if (!timestamp) return fail(timestamp.error());
  c.timestamp = *timestamp;
  return c;
}

Result<UpdateAccepted, Errc> read_update_accepted(std::string_view payload) noexcept {
  auto root = root_object(payload);
  if (!root) return fail(root.error());
  UpdateAccepted u;
  auto state = optional_state(*root);
  if (!state) return fail(state.error());
  auto document = optional_member(*root, kJobDocument, &Value::is_object);
  if (!document) return fail(document.error());
  u.execution_state = *state;
  u.job_document = *document;
  EDGEKIT_TRY(read_timestamp_token(*root, u));
  return u;
}

Result<Rejected, Errc> read_rejected(std::string_view payload) noexcept {
  auto root = root_object(payload);
  if (!root) return fail(root.error());
  Rejected r;
  auto code = root->find(kCode);
  if (!code || !code->is_string()) return fail(Errc::MalformedDocument);
  r.code = *code;
  auto message = optional_member(*root, kMessage, &Value::is_string);
  if (!message) return fail(message.error());
  r.message = message->value_or(Value{});
  auto timestamp = optional_int(*root, kTimestamp);
  if (!timestamp) return fail(timestamp.error());
  r.timestamp = *timestamp;
  auto token = client_token(*root);
  if (!token) return fail(token.error());
  r.client_token = *token;
  auto state = optional_state(*root);
  if (!state) return fail(state.error());
  r.execution_state = *state;
  // Map on the unescaped code. Every code the mapping names is shorter than 32 bytes, so a
  // longer one is RejectedOther, as an unknown code is.
  std::array<char, 32> unescaped{};
  std::string_view text;
  if (auto copied = code->copy_string(unescaped)) text = *copied;
  r.errc = rejection_errc(text);
  return r;
}

}  // namespace edgekit::jobs
