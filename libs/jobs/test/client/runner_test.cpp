// The jobs Runner against a real Mosquitto and a scripted jobs service (the model of
// fake_jobs_service.hpp behind an agent, on AWS's topics and documents: jobs_service.hpp), over
// both drivers: a job run with progress to its outcome, a job announced by notify-next, a job
// nobody handles, a lost reply, and a reboot in the middle of a job (resumed, or failed).
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <edgekit/jobs/runner.hpp>
#include <edgekit/reqres/channel.hpp>
#include <edgekit/testing/channel_device.hpp>
#include <edgekit/testing/jobs_service.hpp>
#include <edgekit/testing/mosquitto.hpp>
#include <memory>
#include <string>
#include <vector>

namespace edgekit::jobs::test {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kThing = "lamp-1";
constexpr std::string_view kInstall = R"({"operation":"install","url":"https://example.com/fw"})";
constexpr std::string_view kConfigure = R"({"operation":"configure","level":3})";

// What the handlers saw and do. `finish_now` false: the handler returns with the job still
// running (it would finish later; the test reboots instead).
struct App {
  std::vector<std::string> runs;              // "<job>" or "<job> resumed at <step>"
  std::vector<std::string> ids_after_finish;  // job.job_id read after `finish` returned
  bool finish_now = true;
  Runner* runner = nullptr;

  static void handle(void* ctx, Runner& r, const Job& job) {
    auto* app = static_cast<App*>(ctx);
    std::string entry(job.job_id);
    if (job.resumed) entry += " resumed at " + std::to_string(job.step);
    app->runs.push_back(entry);
    EXPECT_TRUE(job.document.find("operation"));
    for (std::uint32_t step = job.resumed ? job.step : 0; step < 2; ++step) {
      const std::string digit = std::to_string(step + 1);
      const StatusDetail details[] = {{"step", digit}};
      auto p = r.progress(details, 5, step + 1);
      EXPECT_TRUE(p) << to_string(p.error());
      if (!app->finish_now) return;
    }
    const StatusDetail result[] = {{"result", "ok"}};
    auto f = r.finish(JobStatus::Succeeded, result);
    EXPECT_TRUE(f) << to_string(f.error());
    // `finish` may have taken the next job already: this one's id must still be its own.
    app->ids_after_finish.emplace_back(job.job_id);
  }
};

using edgekit::testing::Driver;
using jobs::testing::JobsService;

class JobsRunnerTest : public edgekit::testing::MosquittoFixture,
                       public ::testing::WithParamInterface<Driver> {
 protected:
  void SetUp() override {
    MosquittoFixture::SetUp();
    if (HasFatalFailure()) return;
    service_ = std::make_unique<JobsService>(broker().port(), kThing);
    ASSERT_TRUE(service_->start());
    connect();
  }
  void TearDown() override {
    disconnect();
    service_.reset();
    MosquittoFixture::TearDown();
  }
  void connect() {
    device_ = std::make_unique<edgekit::testing::ChannelDevice>();
    ASSERT_TRUE(device_->connect(GetParam(), broker().port(), "lamp-1"));
  }
  void disconnect() {
    runner_.reset();
    device_.reset();
  }
  reqres::Channel& channel() { return *device_->channel; }
  // A power cycle: everything but the storage (and the broker and service) is gone.
  void reboot() {
    disconnect();
    connect();
  }

  Runner& make_runner(Duration request_timeout = Duration{5000},
                      std::size_t document_size = std::tuple_size_v<decltype(document_)>) {
    RunnerConfig c;
    c.thing = kThing;
    c.handlers = handlers_;
    c.token_prefix = "lamp";
    c.request_timeout = request_timeout;
    c.retry_delay = Duration{50};
    runner_ = std::make_unique<Runner>(
        channel(), store_, clock_, c,
        RunnerBuffers{request_, reply_, std::span(document_).first(document_size)});
    app_.runner = runner_.get();
    return *runner_;
  }

  // Runs until `done` holds, bounded: each run_for returns at its deadline or earlier.
  template <class F>
  bool run_until(Runner& r, F&& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      auto s = r.run_for(Duration{100});
      EXPECT_TRUE(s) << to_string(s.error());
    }
    return done();
  }

  JobStatus status_of(std::string_view id) {
    return service_->with([&](jobs::testing::FakeJobsService& m) { return m.find(id)->status; });
  }
  bool details_say(std::string_view id, std::string_view key, std::string_view value) {
    return service_->with([&](jobs::testing::FakeJobsService& m) {
      auto d = doc::json::parse(m.find(id)->status_details());
      return d && d->find(key) && d->find(key)->equals(value);
    });
  }

  std::unique_ptr<JobsService> service_;
  std::unique_ptr<edgekit::testing::ChannelDevice> device_;
  std::unique_ptr<Runner> runner_;
  SteadyClock clock_;
  jobs::testing::MemoryStore store_;  // survives the reboots
  App app_;
  std::array<JobHandler, 2> handlers_{
      JobHandler{"install", RebootPolicy::FailJob, &App::handle, &app_},
      JobHandler{"configure", RebootPolicy::Resume, &App::handle, &app_}};
  std::array<char, 1024> request_{};
  std::array<char, 4096> reply_{};
  std::array<char, 2048> document_{};
};

TEST_P(JobsRunnerTest, RunsThePendingJobsWithProgressToTheirOutcome) {
  service_->with([](jobs::testing::FakeJobsService& m) {
    m.add("fw-1", kInstall);
    m.add("cfg-2", kConfigure);
    return 0;
  });
  Runner& r = make_runner();
  auto s = r.start(Duration{5000});
  ASSERT_TRUE(s) << to_string(s.error());
  EXPECT_EQ(r.state(), ExecutorState::Idle);
  EXPECT_EQ(app_.runs, (std::vector<std::string>{"fw-1", "cfg-2"}));
  EXPECT_EQ(app_.ids_after_finish, (std::vector<std::string>{"fw-1", "cfg-2"}));
  EXPECT_EQ(status_of("fw-1"), JobStatus::Succeeded);
  EXPECT_EQ(status_of("cfg-2"), JobStatus::Succeeded);
  EXPECT_TRUE(details_say("fw-1", "result", "ok"));
  EXPECT_FALSE(store_.has());
}

TEST_P(JobsRunnerTest, NotifyNextWakesTheRunnerForANewJob) {
  Runner& r = make_runner();
  ASSERT_TRUE(r.start(Duration{5000}));
  EXPECT_EQ(r.state(), ExecutorState::Idle);
  EXPECT_TRUE(app_.runs.empty());
  service_->with([](jobs::testing::FakeJobsService& m) { return &m.add("fw-1", kInstall); });
  service_->publish_notify_next();
  ASSERT_TRUE(run_until(r, [&] { return status_of("fw-1") == JobStatus::Succeeded; }));
  EXPECT_EQ(app_.runs, (std::vector<std::string>{"fw-1"}));
}

TEST_P(JobsRunnerTest, AJobNobodyHandlesIsReportedFailed) {
  service_->with([](jobs::testing::FakeJobsService& m) {
    return &m.add("dance-3", R"({"operation":"dance"})");
  });
  Runner& r = make_runner();
  ASSERT_TRUE(r.start(Duration{5000}));
  EXPECT_EQ(status_of("dance-3"), JobStatus::Failed);
  EXPECT_TRUE(details_say("dance-3", "reason", "unsupported operation"));
  EXPECT_TRUE(app_.runs.empty());
}

TEST_P(JobsRunnerTest, AJobWhoseDocumentDoesNotFitFailsWithoutAHandlerOnceItsOutcomeIsSaved) {
  service_->with([](jobs::testing::FakeJobsService& m) { return &m.add("fw-1", kInstall); });
  Runner& r = make_runner(Duration{5000}, 8);
  store_.saves_left = 1;  // the job's start is recorded; its outcome is not
  auto s = r.start(Duration{5000});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), Errc::StoreFailed);
  EXPECT_EQ(status_of("fw-1"), JobStatus::InProgress);
  store_.saves_left = -1;  // the storage works again: the next call fails the job
  ASSERT_TRUE(run_until(r, [&] { return status_of("fw-1") == JobStatus::Failed; }));
  EXPECT_TRUE(details_say("fw-1", "reason", "job document too large"));
  EXPECT_TRUE(app_.runs.empty());
  EXPECT_FALSE(store_.has());
}

TEST_P(JobsRunnerTest, ALostReplyIsSentAgainAfterTheTimeout) {
  service_->with([](jobs::testing::FakeJobsService& m) { return &m.add("fw-1", kInstall); });
  Runner& r = make_runner(Duration{300});
  service_->drop(1);  // start-next reaches the service (the job starts); its reply is lost
  auto s = r.start(Duration{5000});
  ASSERT_TRUE(s) << to_string(s.error());
  EXPECT_EQ(status_of("fw-1"), JobStatus::Succeeded);
  EXPECT_EQ(app_.runs, (std::vector<std::string>{"fw-1"}));  // once, whatever was lost
  // start-next twice (the first reply lost), two progress updates, the outcome, start-next.
  EXPECT_EQ(service_->with([](jobs::testing::FakeJobsService& m) { return m.requests(); }), 6);
}

TEST_P(JobsRunnerTest, GivesUpAfterMaxAttemptsAndTriesAgainOnTheNextCall) {
  service_->with([](jobs::testing::FakeJobsService& m) { return &m.add("fw-1", kInstall); });
  Runner& r = make_runner(Duration{200});  // max_attempts 3
  service_->drop(3);
  auto s = r.start(Duration{5000});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), Errc::Timeout);
  EXPECT_TRUE(app_.runs.empty());
  // The next call sends start-next again (the service started the job at the first one).
  ASSERT_TRUE(run_until(r, [&] { return status_of("fw-1") == JobStatus::Succeeded; }));
  EXPECT_EQ(app_.runs, (std::vector<std::string>{"fw-1"}));
}

TEST_P(JobsRunnerTest, ARebootDuringAJobFailsItOrResumesItAsItsHandlerDeclares) {
  service_->with([](jobs::testing::FakeJobsService& m) {
    m.add("fw-1", kInstall);     // FailJob
    m.add("cfg-2", kConfigure);  // Resume
    return 0;
  });
  app_.finish_now = false;  // each handler reports its first step and is then cut off
  ASSERT_TRUE(make_runner().start(Duration{5000}));
  EXPECT_EQ(runner_->state(), ExecutorState::Running);
  ASSERT_TRUE(store_.has());
  EXPECT_EQ(store_.record().job(), "fw-1");

  reboot();
  app_.finish_now = false;
  ASSERT_TRUE(make_runner().start(Duration{5000}));
  // fw-1 cannot continue: FAILED with the reason; then cfg-2 runs and is cut off too.
  EXPECT_EQ(status_of("fw-1"), JobStatus::Failed);
  EXPECT_TRUE(details_say("fw-1", "reason", "rebooted during step"));
  EXPECT_EQ(store_.record().job(), "cfg-2");

  reboot();
  app_.finish_now = true;
  ASSERT_TRUE(make_runner().start(Duration{5000}));
  // cfg-2 resumes after its first step and finishes.
  EXPECT_EQ(status_of("cfg-2"), JobStatus::Succeeded);
  EXPECT_EQ(app_.runs, (std::vector<std::string>{"fw-1", "cfg-2", "cfg-2 resumed at 1"}));
  EXPECT_FALSE(store_.has());
}

// The handler of docs/jobs.md's example, kept compiling and true.
void install(void*, Runner& runner, const Job& job) {
  auto url = job.document.find("url");
  if (!url || !url->is_string()) {
    const StatusDetail why[] = {{"reason", "no url"}};
    (void)runner.finish(JobStatus::Failed, why);
    return;
  }
  const StatusDetail downloading[] = {{"step", "download"}};
  (void)runner.progress(downloading, 30, 1);
  (void)runner.finish(JobStatus::Succeeded);
}

TEST_P(JobsRunnerTest, TheUserGuideExampleWorks) {
  service_->with([](jobs::testing::FakeJobsService& m) {
    m.add("fw-1", kInstall);
    m.add("fw-2", R"({"operation":"install"})");
    return 0;
  });
  const JobHandler handlers[] = {{"install", RebootPolicy::FailJob, &install, nullptr}};
  RunnerConfig config;
  config.thing = kThing;
  config.handlers = handlers;
  config.token_seed = 1000;
  Runner runner(channel(), store_, clock_, config, {request_, reply_, document_});
  ASSERT_TRUE(runner.start(Duration{5000}));
  EXPECT_EQ(status_of("fw-1"), JobStatus::Succeeded);
  EXPECT_TRUE(details_say("fw-1", "step", "download"));  // the outcome kept the last details
  EXPECT_EQ(status_of("fw-2"), JobStatus::Failed);
  EXPECT_TRUE(details_say("fw-2", "reason", "no url"));
}

INSTANTIATE_TEST_SUITE_P(Drivers, JobsRunnerTest, edgekit::testing::kBothDrivers,
                         edgekit::testing::driver_name);

}  // namespace
}  // namespace edgekit::jobs::test
