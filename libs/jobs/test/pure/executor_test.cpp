// The executor core stepped against a model of the Jobs service (fake_jobs_service.hpp):
// every job runs once and ends with the right status, across lost replies, version conflicts,
// cancellations and a reboot at every step.
#include "edgekit/jobs/executor.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <optional>
#include <string_view>

#include "edgekit/testing/alloc_guard.hpp"
#include "edgekit/testing/fake_jobs_service.hpp"

namespace edgekit::jobs {
namespace {

using JobsExecutor = edgekit::testing::PureTest;
using testing::FakeJobsService;
using testing::MemoryStore;
using testing::Message;

constexpr std::string_view kThing = "lamp-1";

// Handlers: "install" cannot continue after a reboot, "configure" can; both report two steps
// of progress and then succeed. "dance" is nobody's. "afr_ota" is the operation name of AWS OTA
// jobs, whose documents have no `operation`, only an `afr_ota` object.
constexpr HandlerSpec kHandlers[] = {
    {"install", RebootPolicy::FailJob},
    {"configure", RebootPolicy::Resume},
    {"afr_ota", RebootPolicy::Resume},
};
constexpr std::string_view kInstall = R"({"operation":"install","url":"https://example.com/fw"})";
constexpr std::string_view kConfigure = R"({"operation":"configure","level":3})";
constexpr std::string_view kDance = R"({"operation":"dance"})";
constexpr std::string_view kOta = R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s1"}})";
constexpr std::string_view kNoOperation = R"({"firmware":"2.0"})";
constexpr std::uint32_t kSteps = 2;

struct JobLog {
  std::string_view id;
  int fresh_runs = 0;    // RunJob without `resumed`
  int resumed_runs = 0;  // RunJob with `resumed`
  int stops = 0;
};

// One device: its storage survives reboots; the executor, its buffers and the handler's state
// do not.
class Device {
 public:
  explicit Device(FakeJobsService& service) : service_(service) {}

  void boot() {
    executor_.reset();
    handler_running_ = false;
    inbox_length_ = 0;
    inbox_topic_length_ = 0;
    ExecutorConfig c;
    c.thing = kThing;
    c.handlers = kHandlers;
    c.token_prefix = "dev";
    c.step_timeout_in_minutes = 30;
    c.topic_buffer = topic_;
    c.payload_buffer = payload_;
    executor_.emplace(c, store);
    ASSERT_TRUE(executor_->start());
  }

  // One step: the next pending action, else the message in the inbox, else the handler's next
  // move. False when there is nothing left to do.
  bool step() {
    Action a = executor_->poll();
    switch (a.kind) {
      case ActionKind::Publish: {
        ++publishes;
        if (drop_replies > 0) {
          // The request reaches the service; its reply is lost on the way back.
          (void)service_.handle(a.topic, a.payload);
          --drop_replies;
          executor_->request_lost();
          return true;
        }
        if (auto reply = service_.handle(a.topic, a.payload)) keep(*reply);
        return true;
      }
      case ActionKind::RunJob:
        run(a);
        return true;
      case ActionKind::StopJob:
        log(a.job_id).stops++;
        handler_running_ = false;
        return true;
      case ActionKind::None:
        break;
    }
    if (inbox_length_ > 0 || inbox_topic_length_ > 0) {
      const std::string_view topic(inbox_topic_.data(), inbox_topic_length_);
      const std::string_view payload(inbox_.data(), inbox_length_);
      inbox_length_ = inbox_topic_length_ = 0;
      auto r = executor_->on_message(topic, payload);
      EXPECT_TRUE(r) << topic;
      return true;
    }
    if (handler_running_ && executor_->attempts() == 0) return handler_move();
    return false;
  }

  // Steps until nothing is left (bounded: a livelock fails the test).
  void settle() {
    for (int i = 0; i < 400; ++i) {
      if (!step()) return;
    }
    EXPECT_TRUE(false) << "the executor did not settle";
  }

  void keep(const Message& m) {
    std::memcpy(inbox_topic_.data(), m.topic.data(), m.topic.size());
    inbox_topic_length_ = m.topic.size();
    std::memcpy(inbox_.data(), m.payload.data(), m.payload.size());
    inbox_length_ = m.payload.size();
  }

  JobLog& log(std::string_view id) {
    for (JobLog& l : logs) {
      if (l.id == id) return l;
    }
    for (JobLog& l : logs) {
      if (l.id.empty()) {
        // The id views into the service's job table, which outlives the device's executors.
        l.id = service_.find(id) ? service_.find(id)->id : std::string_view{};
        return l;
      }
    }
    return logs[0];
  }

  Executor& executor() { return *executor_; }

  MemoryStore store;
  std::array<JobLog, 4> logs{};
  int publishes = 0;
  int drop_replies = 0;          // lose the replies of this many requests
  bool finish_rejected = false;  // the handler's outcome is REJECTED instead of SUCCEEDED

 private:
  void run(const Action& a) {
    JobLog& l = log(a.job_id);
    (a.resumed ? l.resumed_runs : l.fresh_runs)++;
    // The document is a view into the reply: read what the handler needs now.
    auto op = a.job_document.find("operation");
    if (kHandlers[a.handler].operation == "afr_ota") {
      EXPECT_TRUE(!op && a.job_document.find("afr_ota"));
    } else {
      EXPECT_TRUE(op && op->equals(kHandlers[a.handler].operation));
    }
    handler_running_ = true;
    handler_step_ = a.resumed ? a.step : 0;
  }

  bool handler_move() {
    if (handler_step_ < kSteps) {
      std::array<char, 2> digit{static_cast<char>('1' + handler_step_), 0};
      const StatusDetail details[] = {{"step", {digit.data(), 1}}};
      auto r = executor_->report_progress(details, 5, handler_step_ + 1);
      if (!r && r.error() == Errc::Busy) return false;
      EXPECT_TRUE(r);
      ++handler_step_;
      return true;
    }
    const StatusDetail result[] = {{"result", "ok"}};
    auto r =
        executor_->finish(finish_rejected ? JobStatus::Rejected : JobStatus::Succeeded, result);
    if (!r && r.error() == Errc::Busy) return false;
    EXPECT_TRUE(r);
    handler_running_ = false;
    return true;
  }

  FakeJobsService& service_;
  std::optional<Executor> executor_;
  std::array<char, kMaxTopicLength> topic_{};
  std::array<char, 512> payload_{};
  std::array<char, kMaxTopicLength> inbox_topic_{};
  std::size_t inbox_topic_length_ = 0;
  std::array<char, 1024> inbox_{};
  std::size_t inbox_length_ = 0;
  bool handler_running_ = false;
  std::uint32_t handler_step_ = 0;
};

bool details_say(const testing::FakeJob& j, std::string_view key, std::string_view value) {
  auto d = doc::json::parse(j.status_details());
  if (!d) return false;
  auto v = d->find(key);
  return v && v->equals(value);
}

TEST_F(JobsExecutor, RunsEveryPendingJobOnceAndReportsProgressAndOutcome) {
  FakeJobsService service(kThing);
  service.add("fw-1", kInstall);
  service.add("cfg-2", kConfigure);
  Device d(service);
  d.boot();
  d.settle();
  EXPECT_EQ(d.executor().state(), ExecutorState::Idle);
  for (std::string_view id : {"fw-1", "cfg-2"}) {
    const testing::FakeJob& j = *service.find(id);
    EXPECT_EQ(j.status, JobStatus::Succeeded) << id;
    EXPECT_TRUE(details_say(j, "result", "ok")) << id;
    // start-next, two progress updates and the outcome: four versions on top of the first.
    EXPECT_EQ(j.version, 5u) << id;
    EXPECT_EQ(d.log(id).fresh_runs, 1) << id;
    EXPECT_EQ(d.log(id).resumed_runs, 0) << id;
  }
  EXPECT_FALSE(d.store.has());
  // Two start-next that found a job, one that found none, and three updates per job.
  EXPECT_EQ(d.publishes, 3 + 2 * 3);
}

TEST_F(JobsExecutor, AJobNobodyHandlesEndsFailedWhenTheServiceRefusesRejected) {
  FakeJobsService service(kThing);
  service.add("dance-3", kDance);
  Device d(service);
  d.boot();
  d.settle();
  const testing::FakeJob& j = *service.find("dance-3");
  // REJECTED is refused once IN_PROGRESS (2.4): the executor reports FAILED with the reason.
  EXPECT_EQ(j.status, JobStatus::Failed);
  EXPECT_TRUE(details_say(j, "reason", "unsupported operation"));
  EXPECT_EQ(d.executor().last_rejection(), Errc::Ok);
  EXPECT_EQ(d.log("dance-3").fresh_runs, 0);
  EXPECT_FALSE(d.store.has());
}

TEST_F(JobsExecutor, AnAwsOtaDocumentIsTheAfrOtaHandlersJob) {
  FakeJobsService service(kThing);
  service.add("AFR_OTA-u1", kOta);
  service.add("plain-2", kNoOperation);  // neither an operation nor afr_ota: nobody's
  Device d(service);
  d.boot();
  d.settle();
  EXPECT_EQ(service.find("AFR_OTA-u1")->status, JobStatus::Succeeded);
  EXPECT_EQ(d.log("AFR_OTA-u1").fresh_runs, 1);
  const testing::FakeJob& plain = *service.find("plain-2");
  EXPECT_EQ(plain.status, JobStatus::Failed);
  EXPECT_TRUE(details_say(plain, "reason", "unsupported operation"));
  EXPECT_EQ(d.log("plain-2").fresh_runs, 0);
}

TEST_F(JobsExecutor, AHandlersRejectedBecomesFailedWithItsDetails) {
  FakeJobsService service(kThing);
  service.add("fw-1", kInstall);
  Device d(service);
  d.finish_rejected = true;
  d.boot();
  d.settle();
  const testing::FakeJob& j = *service.find("fw-1");
  EXPECT_EQ(j.status, JobStatus::Failed);
  EXPECT_TRUE(details_say(j, "result", "ok"));  // the handler's details, kept
}

// The reference run: how many steps a clean run of these jobs takes.
int clean_steps(FakeJobsService& service) {
  Device d(service);
  d.boot();
  int steps = 0;
  while (d.step()) ++steps;
  return steps;
}

// What the reboots of a run met, so that a test shows it reached each case.
struct RebootCases {
  int failed_by_reboot = 0;
  int resumed = 0;
  int outcome_resent = 0;
};

void add_three_jobs(FakeJobsService& service) {
  service.add("fw-1", kInstall);     // FailJob
  service.add("cfg-2", kConfigure);  // Resume
  service.add("dance-3", kDance);    // nobody's
}

// Boots, reboots after each number of steps in `reboots` in turn (counted from the boot before),
// then runs to the end. Every job ends terminal, none runs twice from the start, and the
// outcome is the one the reboots allow.
// With `corrupt`, the record a reboot finds is unreadable (a torn write): the executor then
// learns from the service which job was running, and takes it as interrupted mid-step.
void run_with_reboots(std::span<const int> reboots, RebootCases& cases, bool corrupt = false) {
  FakeJobsService service(kThing);
  add_three_jobs(service);
  Device d(service);
  d.boot();
  bool install_was_running = false;
  for (int steps : reboots) {
    for (int i = 0; i < steps && d.step(); ++i) {
    }
    // What the storage says at the moment of a reboot decides fw-1's outcome; without a
    // readable record, any record of fw-1 while the service has it IN_PROGRESS does (an
    // outcome decided but not yet accepted is indistinguishable from a handler mid-step).
    const bool recorded = d.store.has() && d.store.record().job() == "fw-1";
    const bool running =
        recorded && (corrupt ? service.find("fw-1")->status == JobStatus::InProgress
                             : d.store.record().status == JobStatus::InProgress);
    install_was_running = install_was_running || running;
    cases.failed_by_reboot += running ? 1 : 0;
    cases.outcome_resent +=
        !corrupt && d.store.has() && is_terminal(d.store.record().status) ? 1 : 0;
    d.store.corrupt = corrupt;
    d.boot();
  }
  d.settle();
  const int first = reboots[0];
  const int second = reboots.size() > 1 ? reboots[1] : -1;
  EXPECT_EQ(d.executor().state(), ExecutorState::Idle) << "reboots " << first << " " << second;
  EXPECT_FALSE(d.store.has()) << "reboots " << first << " " << second;
  const testing::FakeJob& fw = *service.find("fw-1");
  if (install_was_running) {
    EXPECT_EQ(fw.status, JobStatus::Failed) << "reboots " << first << " " << second;
    EXPECT_TRUE(details_say(fw, "reason", "rebooted during step"))
        << "reboots " << first << " " << second;
  } else {
    EXPECT_EQ(fw.status, JobStatus::Succeeded) << "reboots " << first << " " << second;
  }
  EXPECT_EQ(service.find("cfg-2")->status, JobStatus::Succeeded)
      << "reboots " << first << " " << second;
  EXPECT_EQ(service.find("dance-3")->status, JobStatus::Failed)
      << "reboots " << first << " " << second;
  EXPECT_TRUE(details_say(*service.find("dance-3"), "reason", "unsupported operation"))
      << "reboots " << first << " " << second;
  // Never from the start twice; a resumable job resumes instead.
  EXPECT_LE(d.log("fw-1").fresh_runs, 1) << "reboots " << first << " " << second;
  EXPECT_EQ(d.log("fw-1").resumed_runs, 0) << "reboots " << first << " " << second;
  EXPECT_LE(d.log("cfg-2").fresh_runs, 1) << "reboots " << first << " " << second;
  EXPECT_GE(d.log("cfg-2").fresh_runs + d.log("cfg-2").resumed_runs, 1)
      << "reboots " << first << " " << second;
  EXPECT_EQ(d.log("dance-3").fresh_runs + d.log("dance-3").resumed_runs, 0);
  cases.resumed += d.log("cfg-2").resumed_runs;
}

int clean_run_steps() {
  FakeJobsService service(kThing);
  add_three_jobs(service);
  return clean_steps(service);
}

// A reboot before each step in turn.
TEST_F(JobsExecutor, SurvivesARebootAtEveryStep) {
  const int total = clean_run_steps();
  ASSERT_GT(total, 20);
  RebootCases cases;
  for (int at = 0; at <= total; ++at) {
    const int reboots[] = {at};
    run_with_reboots(reboots, cases);
  }
  EXPECT_GT(cases.failed_by_reboot, 0);
  EXPECT_GT(cases.resumed, 0);
  EXPECT_GT(cases.outcome_resent, 0);
}

// A reboot before each step, and another within the next few steps (during the describe and
// the re-sent outcome that follow a reboot).
TEST_F(JobsExecutor, SurvivesASecondRebootSoonAfterTheFirst) {
  const int total = clean_run_steps();
  RebootCases cases;
  for (int at = 0; at <= total; ++at) {
    for (int then = 0; then <= 4; ++then) {
      const int reboots[] = {at, then};
      run_with_reboots(reboots, cases);
    }
  }
  EXPECT_GT(cases.failed_by_reboot, 0);
  EXPECT_GT(cases.resumed, 0);
  EXPECT_GT(cases.outcome_resent, 0);
}

// A reboot before each step that finds the record unreadable: nothing runs twice from the
// start, a resumable job is resumed (at step 0), the other fails ("rebooted during step").
TEST_F(JobsExecutor, SurvivesARebootAtEveryStepWithTheRecordCorrupted) {
  const int total = clean_run_steps();
  RebootCases cases;
  for (int at = 0; at <= total; ++at) {
    const int reboots[] = {at};
    run_with_reboots(reboots, cases, true);
  }
  EXPECT_GT(cases.failed_by_reboot, 0);
  EXPECT_GT(cases.resumed, 0);
}

TEST_F(JobsExecutor, ACorruptRecordWithNothingInProgressIsClearedAndTheNextJobRuns) {
  FakeJobsService service(kThing);
  service.add("fw-1", kInstall);
  Device d(service);
  // A torn record of a job that is over (its outcome got through before the power went).
  JobRecord old;
  old.job_id[0] = 'x';
  old.job_id_length = 1;
  ASSERT_TRUE(d.store.save(old));
  d.store.corrupt = true;
  d.boot();
  EXPECT_EQ(d.executor().state(), ExecutorState::Resuming);
  EXPECT_EQ(d.executor().record().job(), kNextJobId);
  d.settle();
  EXPECT_EQ(service.find("fw-1")->status, JobStatus::Succeeded);
  EXPECT_EQ(d.log("fw-1").fresh_runs, 1);
  EXPECT_EQ(d.log("fw-1").resumed_runs, 0);
  EXPECT_FALSE(d.store.has());
}

TEST_F(JobsExecutor, AResumedHandlerGetsItsLastStep) {
  FakeJobsService service(kThing);
  service.add("cfg-2", kConfigure);
  Device d(service);
  d.boot();
  // Run until the first progress (step 1) is saved and accepted.
  for (int i = 0; i < 50 && service.find("cfg-2")->version < 3; ++i) ASSERT_TRUE(d.step());
  ASSERT_EQ(d.store.record().step, 1u);
  d.boot();  // the reboot
  d.settle();
  EXPECT_EQ(d.log("cfg-2").fresh_runs, 1);
  EXPECT_EQ(d.log("cfg-2").resumed_runs, 1);
  EXPECT_EQ(service.find("cfg-2")->status, JobStatus::Succeeded);
  // Resumed at step 1: one more progress (step 2), not two.
  EXPECT_EQ(service.find("cfg-2")->version, 2u + 2u + 1u);
}

TEST_F(JobsExecutor, ALostReplyIsSentAgainAndTheVersionConflictItMakesIsResolved) {
  FakeJobsService service(kThing);
  service.add("fw-1", kInstall);
  Device d(service);
  d.boot();
  // Up to the first progress update: start-next published and answered, the job running.
  while (d.executor().state() != ExecutorState::Running) ASSERT_TRUE(d.step());
  d.drop_replies = 1;  // the first progress reaches the service, its reply does not come back
  d.settle();
  const testing::FakeJob& j = *service.find("fw-1");
  EXPECT_EQ(j.status, JobStatus::Succeeded);
  EXPECT_EQ(d.log("fw-1").fresh_runs, 1);
  // The re-sent progress met VersionMismatch (the first had been applied) and went again with
  // the service's version: one more accepted update than the clean run.
  EXPECT_EQ(j.version, 6u);
}

TEST_F(JobsExecutor, AVersionChangedBehindItsBackIsAdoptedAndTheDetailsKept) {
  FakeJobsService service(kThing);
  service.add("fw-1", kInstall);
  Device d(service);
  d.boot();
  while (d.executor().state() != ExecutorState::Running) ASSERT_TRUE(d.step());
  service.find("fw-1")->version += 3;  // another party's updates
  // The first progress goes out with the old version, is refused, and goes again with the
  // service's version.
  for (int i = 0; i < 10 && d.executor().last_rejection() != Errc::VersionMismatch; ++i) {
    ASSERT_TRUE(d.step());
  }
  ASSERT_EQ(d.executor().last_rejection(), Errc::VersionMismatch);
  EXPECT_EQ(d.executor().attempts(), 1u);
  EXPECT_EQ(service.find("fw-1")->version, 5u);
  ASSERT_TRUE(d.step());  // the re-sent progress, published and accepted
  EXPECT_EQ(service.find("fw-1")->version, 6u);
  EXPECT_TRUE(details_say(*service.find("fw-1"), "step", "1"));
  d.settle();
  EXPECT_EQ(service.find("fw-1")->status, JobStatus::Succeeded);
}

TEST_F(JobsExecutor, AJobTheServiceEndsUnderTheHandlerIsStopped) {
  FakeJobsService service(kThing);
  service.add("fw-1", kInstall);
  service.add("cfg-2", kConfigure);
  Device d(service);
  d.boot();
  while (d.executor().state() != ExecutorState::Running) ASSERT_TRUE(d.step());
  service.find("fw-1")->status = JobStatus::Canceled;
  d.settle();
  EXPECT_EQ(d.log("fw-1").stops, 1);
  EXPECT_EQ(service.find("fw-1")->status, JobStatus::Canceled);
  EXPECT_EQ(service.find("cfg-2")->status, JobStatus::Succeeded);  // the next job ran
  EXPECT_FALSE(d.store.has());
}

TEST_F(JobsExecutor, NotifyNextWakesAnIdleExecutorOnly) {
  FakeJobsService service(kThing);
  Device d(service);
  d.boot();
  d.settle();
  EXPECT_EQ(d.executor().state(), ExecutorState::Idle);
  const int before = d.publishes;
  // The queue is empty: notify-next without an execution changes nothing.
  ASSERT_TRUE(d.executor().on_message(service.notify_next().topic, service.notify_next().payload));
  EXPECT_EQ(d.executor().poll().kind, ActionKind::None);
  service.add("fw-1", kInstall);
  Message m = service.notify_next();
  ASSERT_TRUE(d.executor().on_message(m.topic, m.payload));
  EXPECT_EQ(d.executor().state(), ExecutorState::Starting);
  d.settle();
  EXPECT_EQ(service.find("fw-1")->status, JobStatus::Succeeded);
  EXPECT_GT(d.publishes, before);
  // While a job runs, notify-next is ignored (the next job is asked for after it).
  service.add("cfg-2", kConfigure);
  service.add("fw-3", kInstall);
  m = service.notify_next();
  ASSERT_TRUE(d.executor().on_message(m.topic, m.payload));
  while (d.executor().state() != ExecutorState::Running) ASSERT_TRUE(d.step());
  ASSERT_TRUE(d.step());  // the handler starts
  const int publishes = d.publishes;
  m = service.notify_next();
  ASSERT_TRUE(d.executor().on_message(m.topic, m.payload));
  EXPECT_EQ(d.executor().poll().kind, ActionKind::None);
  EXPECT_EQ(d.publishes, publishes);
}

TEST_F(JobsExecutor, IgnoresRepliesThatAreNotForItAndReportsBadOnes) {
  FakeJobsService service(kThing);
  service.add("fw-1", kInstall);
  Device d(service);
  d.boot();
  Executor& e = d.executor();
  ASSERT_EQ(e.state(), ExecutorState::Starting);
  // Another token, another thing, another operation's reply, a request topic: ignored.
  EXPECT_TRUE(e.on_message("$aws/things/lamp-1/jobs/start-next/accepted",
                           R"({"timestamp":1,"clientToken":"dev-99"})"));
  EXPECT_TRUE(e.on_message("$aws/things/lamp-2/jobs/start-next/accepted",
                           R"({"timestamp":1,"clientToken":"dev-1"})"));
  EXPECT_TRUE(e.on_message("$aws/things/lamp-1/jobs/get/accepted",
                           R"({"timestamp":1,"clientToken":"dev-1"})"));
  EXPECT_TRUE(e.on_message("$aws/things/lamp-1/jobs/start-next", "{}"));
  EXPECT_TRUE(e.on_message("$aws/things/lamp-1/jobs/notify", R"({"jobs":{},"timestamp":1})"));
  EXPECT_EQ(e.state(), ExecutorState::Starting);
  EXPECT_EQ(e.on_message("$aws/things/lamp-1/shadow/get", "{}").error(), Errc::TopicMismatch);
  EXPECT_EQ(e.on_message("$aws/things/lamp-1/jobs/start-next/accepted", "{").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(e.state(), ExecutorState::Starting);  // still waiting for its reply
  // The handler's calls out of turn.
  EXPECT_EQ(e.report_progress(std::nullopt).error(), Errc::NoJobRunning);
  EXPECT_EQ(e.finish(JobStatus::Succeeded).error(), Errc::NoJobRunning);
  d.settle();
}

TEST_F(JobsExecutor, AnUnsupportedJobsOutcomeThatDoesNotFitIsReportedAndKeptInTheRecord) {
  FakeJobsService service(kThing);
  service.add("dance-3", kDance);
  MemoryStore store;
  std::array<char, kMaxTopicLength> topic{};
  std::array<char, 64> payload{};  // holds start-next, not the FAILED update with its reason
  ExecutorConfig c;
  c.thing = kThing;
  c.handlers = kHandlers;
  c.token_prefix = "dev";
  c.topic_buffer = topic;
  c.payload_buffer = payload;
  Executor e(c, store);
  ASSERT_TRUE(e.start());
  const Action a = e.poll();
  ASSERT_EQ(a.kind, ActionKind::Publish);
  auto reply = service.handle(a.topic, a.payload);
  ASSERT_TRUE(reply);
  auto r = e.on_message(reply->topic, reply->payload);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::BufferTooSmall);
  EXPECT_EQ(e.state(), ExecutorState::Idle);
  EXPECT_EQ(e.poll().kind, ActionKind::None);
  // Recorded: the next boot (or start-next) sends the outcome again.
  ASSERT_TRUE(store.has());
  EXPECT_EQ(store.record().job(), "dance-3");
  EXPECT_EQ(store.record().status, JobStatus::Rejected);
}

TEST_F(JobsExecutor, TheHandlersCallsAreCheckedWhileAJobRuns) {
  FakeJobsService service(kThing);
  service.add("fw-1", kInstall);
  Device d(service);
  d.boot();
  while (d.executor().state() != ExecutorState::Running) ASSERT_TRUE(d.step());
  Executor& e = d.executor();
  ASSERT_EQ(e.poll().kind, ActionKind::RunJob);  // this test plays the handler itself
  EXPECT_EQ(e.finish(JobStatus::InProgress).error(), Errc::InvalidArgument);
  EXPECT_EQ(e.finish(JobStatus::Canceled).error(), Errc::InvalidArgument);
  const StatusDetail bad[] = {{"a b", "x"}};
  EXPECT_EQ(e.report_progress(bad).error(), Errc::InvalidArgument);
  EXPECT_EQ(e.report_progress(std::nullopt, -2).error(), Errc::InvalidArgument);
  ASSERT_TRUE(e.report_progress(std::nullopt));
  EXPECT_EQ(e.report_progress(std::nullopt).error(), Errc::Busy);
  EXPECT_EQ(e.finish(JobStatus::Succeeded).error(), Errc::Busy);
  Action a = e.poll();
  ASSERT_EQ(a.kind, ActionKind::Publish);
  EXPECT_EQ(a.topic, "$aws/things/lamp-1/jobs/fw-1/update");
  EXPECT_TRUE(a.payload.starts_with(R"({"status":"IN_PROGRESS","includeJobExecutionState":true,)"
                                    R"("expectedVersion":2,"clientToken":"dev-)"))
      << a.payload;
  // A storage that refuses: the outcome is not sent (nothing would say it after a reboot).
  e.request_lost();  // (drop that progress; it is sent again)
  a = e.poll();
  ASSERT_EQ(a.kind, ActionKind::Publish);
  if (auto reply = service.handle(a.topic, a.payload)) {
    ASSERT_TRUE(e.on_message(reply->topic, reply->payload));
  }
  d.store.fail_saves = true;
  EXPECT_EQ(e.finish(JobStatus::Succeeded).error(), Errc::StoreFailed);
  EXPECT_EQ(e.poll().kind, ActionKind::None);
  EXPECT_EQ(e.state(), ExecutorState::Running);
  d.store.fail_saves = false;
  EXPECT_TRUE(e.finish(JobStatus::Succeeded));
  EXPECT_EQ(e.state(), ExecutorState::Finishing);
  d.settle();
  EXPECT_EQ(service.find("fw-1")->status, JobStatus::Succeeded);
}

TEST_F(JobsExecutor, AJobIsNotStartedWhenItsRecordCannotBeSaved) {
  FakeJobsService service(kThing);
  service.add("fw-1", kInstall);
  Device d(service);
  d.store.fail_saves = true;
  d.boot();
  Action a = d.executor().poll();
  ASSERT_EQ(a.kind, ActionKind::Publish);
  auto reply = service.handle(a.topic, a.payload);
  ASSERT_TRUE(reply);
  EXPECT_EQ(d.executor().on_message(reply->topic, reply->payload).error(), Errc::StoreFailed);
  EXPECT_EQ(d.executor().poll().kind, ActionKind::None);
  EXPECT_EQ(d.executor().state(), ExecutorState::Idle);
  EXPECT_EQ(d.log("fw-1").fresh_runs, 0);
  // A later boot with a working storage picks the (IN_PROGRESS) job up and runs it once.
  d.store.fail_saves = false;
  d.boot();
  d.settle();
  EXPECT_EQ(service.find("fw-1")->status, JobStatus::Succeeded);
  EXPECT_EQ(d.log("fw-1").fresh_runs, 1);
}

TEST_F(JobsExecutor, RetriesThrottledRequestsAndCountsAttempts) {
  FakeJobsService service(kThing);
  Device d(service);
  d.boot();
  Executor& e = d.executor();
  Action a = e.poll();
  ASSERT_EQ(a.kind, ActionKind::Publish);
  ASSERT_TRUE(e.on_message("$aws/things/lamp-1/jobs/start-next/rejected",
                           R"({"code":"RequestThrottled","clientToken":"dev-1"})"));
  EXPECT_EQ(e.attempts(), 1u);
  EXPECT_EQ(e.last_rejection(), Errc::RequestThrottled);
  a = e.poll();
  ASSERT_EQ(a.kind, ActionKind::Publish);
  EXPECT_EQ(a.payload, R"({"stepTimeoutInMinutes":30,"clientToken":"dev-2"})");
  // A rejection that will not change: back to idle, waiting for notify-next.
  ASSERT_TRUE(e.on_message("$aws/things/lamp-1/jobs/start-next/rejected",
                           R"({"code":"InvalidRequest","clientToken":"dev-2"})"));
  EXPECT_EQ(e.state(), ExecutorState::Idle);
  EXPECT_EQ(e.poll().kind, ActionKind::None);
}

TEST_F(JobsExecutor, ARamRecordStoreKeepsOneRecordBehindItsMark) {
  RamRecordSlot slot;
  slot.mark = 0xA5A5A5A5;  // what a cold boot may leave in `.noinit` RAM
  slot.record.job_id_length = 0xA5;
  RamRecordStore store(slot);
  JobRecord r;
  EXPECT_EQ(store.load(r), RecordLoad::None);
  EXPECT_FALSE(store.has());
  JobRecord saved;
  saved.job_id[0] = 'j';
  saved.job_id_length = 1;
  saved.version = 7;
  ASSERT_TRUE(store.save(saved));
  RamRecordStore again(slot);  // a warm reset: the slot kept its content
  ASSERT_EQ(again.load(r), RecordLoad::Loaded);
  EXPECT_EQ(r.job(), "j");
  EXPECT_EQ(r.version, 7u);
  ASSERT_TRUE(again.clear());
  EXPECT_EQ(again.load(r), RecordLoad::None);
}

TEST_F(JobsExecutor, RefusesABadConfiguration) {
  MemoryStore store;
  std::array<char, kMaxTopicLength> topic{};
  std::array<char, 256> payload{};
  ExecutorConfig c;
  c.thing = kThing;
  c.handlers = kHandlers;
  c.topic_buffer = topic;
  c.payload_buffer = payload;
  {
    Executor e(c, store);
    EXPECT_TRUE(e.start());
  }
  c.token_prefix = "has space";
  {
    Executor e(c, store);
    EXPECT_EQ(e.start().error(), Errc::InvalidArgument);
    EXPECT_EQ(e.state(), ExecutorState::Stopped);
  }
  c.token_prefix = "jobs";
  c.thing = "bad/thing";
  {
    Executor e(c, store);
    EXPECT_EQ(e.start().error(), Errc::InvalidArgument);
  }
  c.thing = kThing;
  c.topic_buffer = std::span<char>(topic.data(), kMaxTopicLength - 1);
  {
    Executor e(c, store);
    EXPECT_EQ(e.start().error(), Errc::InvalidArgument);
  }
  c.topic_buffer = topic;
  c.payload_buffer = std::span<char>(payload.data(), 8);
  {
    Executor e(c, store);
    EXPECT_EQ(e.start().error(), Errc::BufferTooSmall);
    EXPECT_EQ(e.state(), ExecutorState::Stopped);
    EXPECT_EQ(e.poll().kind, ActionKind::None);
  }
}

}  // namespace
}  // namespace edgekit::jobs
