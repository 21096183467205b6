// The device program of the Jobs size measurement: what a device links of edgekit::jobs_pure to
// take jobs and report on them (aws-iot-protocols.md 2). It builds the topics it subscribes and
// publishes to, tells which topic a message came in on, writes start-next, describe and update
// requests (with statusDetails), reads notify-next, start-next/accepted (with the job document
// as a JSON view), notify, get/accepted, update/accepted and rejected documents, and maps the
// rejections to Errc; and runs one job through the executor (start-next, the handler, the
// outcome, a record kept meanwhile).
//
// Messages arrive in a receive buffer copied byte by byte from a volatile source, and the thing
// name is read the same way, so nothing is known to the compiler at build time: the image links
// what a device that gets them from the network and its storage links.
//
// It is also a runnable check: under QEMU (mps2-an386) it returns 0 only when every result is
// the expected one, and a step number otherwise.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "edgekit/jobs/documents.hpp"
#include "edgekit/jobs/errc.hpp"
#include "edgekit/jobs/executor.hpp"
#include "edgekit/jobs/topics.hpp"

namespace {

using namespace edgekit::jobs;
using namespace std::string_view_literals;

// --- Buffers a device keeps (static RAM) ---------------------------------------------------------
char g_message[2048];  // the payload as received
char g_request[512];
char g_topic[kMaxTopicLength];
char g_thing[kMaxThingNameLength];

// Bytes "from the network": read through a volatile pointer, so they are not constants.
std::string_view receive(std::string_view message) {
  const volatile char* in = message.data();
  for (std::size_t i = 0; i < message.size(); ++i) g_message[i] = in[i];
  return {g_message, message.size()};
}

// The thing name "from storage", likewise.
std::string_view stored_thing(std::string_view name) {
  const volatile char* in = name.data();
  for (std::size_t i = 0; i < name.size(); ++i) g_thing[i] = in[i];
  return {g_thing, name.size()};
}

int topics(std::string_view thing) {
  auto t = topic(thing, Operation::StartNext, TopicKind::Request, {}, g_topic);
  if (!t || *t != "$aws/things/lamp-1/jobs/start-next"sv) return 1;
  t = reply_filter(thing, Operation::Update, "fw-42"sv, g_topic);
  if (!t || *t != "$aws/things/lamp-1/jobs/fw-42/update/+"sv) return 2;
  auto m = match_topic(receive("$aws/things/lamp-1/jobs/$next/get/accepted"sv));
  if (!m || m->thing != thing || m->job_id != "$next"sv || m->op != Operation::Describe ||
      m->kind != TopicKind::Accepted)
    return 3;
  m = match_topic(receive("$aws/things/lamp-1/jobs/notify-next"sv));
  if (!m || m->op != Operation::NotifyNext) return 4;
  if (match_topic(receive("$aws/things/lamp-1/shadow/get"sv))) return 5;
  return 0;
}

int requests() {
  StartNextRequest s;
  s.step_timeout_in_minutes = 10;
  s.client_token = "tok-1"sv;
  auto d = write_start_next_request(s, g_request);
  if (!d || *d != R"({"stepTimeoutInMinutes":10,"clientToken":"tok-1"})"sv) return 10;
  DescribeRequest q;
  q.execution_number = 1;
  q.include_job_document = true;
  d = write_describe_request(q, g_request);
  if (!d || *d != R"({"executionNumber":1,"includeJobDocument":true})"sv) return 11;
  const StatusDetail details[] = {{"step"sv, "download"sv}, {"progress"sv, "40"sv}};
  UpdateRequest u;
  u.status = JobStatus::InProgress;
  u.status_details = details;
  u.expected_version = 2;
  u.include_job_execution_state = true;
  u.client_token = "tok-2"sv;
  d = write_update_request(u, g_request);
  if (!d || *d != R"({"status":"IN_PROGRESS","statusDetails":{"step":"download","progress":"40"},)"
                  R"("includeJobExecutionState":true,"expectedVersion":2,"clientToken":"tok-2"})"sv)
    return 12;
  d = write_get_pending_request({}, g_request);
  if (!d || *d != "{}"sv) return 13;
  return 0;
}

int replies() {
  auto next = read_execution_reply(
      receive(R"({"timestamp":1517016948,"execution":{"jobId":"fw-42","status":"QUEUED",)"
              R"("queuedAt":1517016947,"lastUpdatedAt":1517016947,"versionNumber":1,)"
              R"("executionNumber":1,"jobDocument":{"operation":"install"}}})"sv));
  if (!next || !next->execution || next->execution->job_id != "fw-42"sv) return 20;
  auto started = read_execution_reply(receive(
      R"({"execution":{"jobId":"fw-42","thingName":"lamp-1","jobDocument":)"
      R"({"operation":"install","url":"https://example.com/fw.bin"},"status":"IN_PROGRESS",)"
      R"("queuedAt":1700000000,"startedAt":1700000100,"lastUpdatedAt":1700000100,)"
      R"("versionNumber":2,"executionNumber":1},"timestamp":1700000100,"clientToken":"tok-1"})"sv));
  if (!started || !started->execution || !started->client_token.equals("tok-1"sv)) return 21;
  const JobExecution& e = *started->execution;
  if (e.status != JobStatus::InProgress || e.version_number.value_or(0) != 2) return 22;
  auto op = e.job_document ? e.job_document->find("operation"sv) : e.thing_name.find("x"sv);
  if (!op || !op->equals("install"sv)) return 23;
  auto notify = read_notify(
      receive(R"({"timestamp":1517016948,"jobs":{"QUEUED":[{"jobId":"job1","queuedAt":1517016947,)"
              R"("lastUpdatedAt":1517016947,"executionNumber":1,"versionNumber":1}]}})"sv));
  if (!notify || notify->queued.size() != 1 || (*notify->queued.begin()).job_id != "job1"sv)
    return 24;
  auto pending = read_get_pending_accepted(
      receive(R"({"inProgressJobs":[{"jobId":"fw-42","versionNumber":2,"executionNumber":1}],)"
              R"("queuedJobs":[],"timestamp":1700000101})"sv));
  if (!pending || pending->in_progress.size() != 1 || !pending->queued.empty()) return 25;
  auto updated = read_update_accepted(
      receive(R"({"executionState":{"status":"IN_PROGRESS","versionNumber":3},)"
              R"("timestamp":1700000102,"clientToken":"tok-2"})"sv));
  if (!updated || !updated->execution_state ||
      updated->execution_state->version_number.value_or(0) != 3)
    return 26;
  struct Case {
    std::string_view doc;
    Errc errc;
  };
  const Case rejections[] = {
      {R"({"code":"VersionMismatch","executionState":{"status":"IN_PROGRESS","versionNumber":4}})"sv,
       Errc::VersionMismatch},
      {R"({"code":"InvalidStateTransition","message":"m","timestamp":1})"sv,
       Errc::InvalidStateTransition},
      {R"({"code":"TerminalStateReached"})"sv, Errc::TerminalStateReached},
      {R"({"code":"RequestThrottled","clientToken":"tok-3"})"sv, Errc::RequestThrottled},
  };
  int step = 30;
  for (const Case& c : rejections) {
    auto r = read_rejected(receive(c.doc));
    if (!r || r->errc != c.errc) return step;
    ++step;
  }
  if (read_execution_reply(receive("not json"sv)).error() != Errc::MalformedDocument) return 40;
  return 0;
}

// The job record in RAM that survives a warm reset (static RAM here).
RamRecordSlot g_slot;
RamRecordStore g_store(g_slot);
char g_executor_topic[kMaxTopicLength];
constexpr HandlerSpec kHandlers[] = {{"install", RebootPolicy::FailJob}};

int executor() {
  ExecutorConfig c;
  c.thing = stored_thing("lamp-1"sv);
  c.handlers = kHandlers;
  c.token_prefix = "dev"sv;
  c.topic_buffer = g_executor_topic;
  c.payload_buffer = g_request;
  Executor e(c, g_store);
  if (!e.start()) return 60;
  Action a = e.poll();
  if (a.kind != ActionKind::Publish || a.topic != "$aws/things/lamp-1/jobs/start-next"sv) return 61;
  if (!e.on_message("$aws/things/lamp-1/jobs/start-next/accepted"sv,
                    receive(R"({"execution":{"jobId":"fw-42","jobDocument":{"operation":)"
                            R"("install"},"status":"IN_PROGRESS","versionNumber":2,)"
                            R"("executionNumber":1},"timestamp":1,"clientToken":"dev-1"})"sv)))
    return 62;
  a = e.poll();
  if (a.kind != ActionKind::RunJob || a.job_id != "fw-42"sv || !g_store.has()) return 63;
  if (!e.finish(JobStatus::Succeeded)) return 64;
  a = e.poll();
  if (a.kind != ActionKind::Publish || a.topic != "$aws/things/lamp-1/jobs/fw-42/update"sv)
    return 65;
  if (!e.on_message("$aws/things/lamp-1/jobs/fw-42/update/accepted"sv,
                    receive(R"({"executionState":{"status":"SUCCEEDED","versionNumber":3},)"
                            R"("timestamp":2,"clientToken":"dev-2"})"sv)))
    return 66;
  if (g_store.has() || e.poll().kind != ActionKind::Publish) return 67;  // the next start-next
  return 0;
}

}  // namespace

int main() {
  const std::string_view thing = stored_thing("lamp-1"sv);
  if (int s = topics(thing)) return s;
  if (int s = requests()) return s;
  if (int s = replies()) return s;
  if (int s = executor()) return s;
  // Which rejections the device retries (inline: no code of the library).
  if (!is_retryable(Errc::RequestThrottled) || is_retryable(Errc::VersionMismatch)) return 50;
  return 0;
}
