// A device killed mid-job (issue 14, "a device rebooted mid-job"), end to end over the real
// broker, edgekit's plugin and the fleetd binary, the device a process of its own that dies by
// SIGKILL and is started again:
//  - fleetd_jobs_device (jobs_reboot_device_main.cpp), the runner with its record in a file,
//    killed at every point of a three-step job (before the job started, after it started before
//    the handler ran, between a step's side effect and its progress, with a progress or the
//    outcome sent and unanswered, after the handler finished before the outcome was saved, sent
//    or acknowledged) and once with its record file torn; each execution must end as its
//    handler's RebootPolicy says (FAILED "rebooted during step" or SUCCEEDED), the side effects
//    the handler logged must show that no step ran twice where it must not, and the job queued
//    behind must then run;
//  - `edgekit jobs run --state`, killed while its job sleeps, resumes the job when run again.
// What happened is read from fleetd's admin API and the device's effect log.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "edgekit/json/json.hpp"
#include "edgekit/testing/child_process.hpp"
#include "token_device.hpp"

namespace edgekit::fleetd::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Where the first boot dies (the flags of fleetd_jobs_device), and what the job's execution
// must end as after the second boot, for the handler that cannot continue ("install",
// FailJob) and the one that can ("configure", Resume): the status, and how often each of the
// three steps' side effects ran.
struct KillPoint {
  const char* name;
  const char* flag;
  int n;
  bool tear_record;  // the record file is truncated before the second boot
  const char* install_status;
  std::array<int, 3> install_effects;
  std::array<int, 3> configure_effects;
  int configure_resumed_at;  // -1: the second boot runs it fresh (or not at all)
};

// One kill point a row.
// clang-format off
constexpr KillPoint kKillPoints[] = {
    // start-next accepted (the service made it IN_PROGRESS) but never read: nothing ran, no
    // record; start-next returns it again and it runs once.
    {"before start", "--kill-on-reply", 1, false, "SUCCEEDED", {1, 1, 1}, {1, 1, 1}, -1},
    // Recorded as started, the handler not yet called: taken as interrupted.
    {"started, before the handler", "--kill-after-save", 1, false, "FAILED", {0, 0, 0},
     {1, 1, 1}, 0},
    // Step 2 done, its progress not yet saved: a Resume handler does step 2 again.
    {"mid-step", "--kill-in-step", 2, false, "FAILED", {1, 1, 0}, {1, 2, 1}, 1},
    // Progress of step 2 saved and sent, its reply not awaited.
    {"progress unanswered", "--kill-after-request", 3, false, "FAILED", {1, 1, 0}, {1, 1, 1}, 2},
    // Progress of step 2 accepted, the reply not read.
    {"progress reply unread", "--kill-on-reply", 3, false, "FAILED", {1, 1, 0}, {1, 1, 1}, 2},
    // All steps done, the outcome not yet saved.
    {"finished, outcome not saved", "--kill-before-save", 5, false, "FAILED", {1, 1, 1},
     {1, 1, 1}, 3},
    // The outcome saved, not sent: sent by the second boot.
    {"outcome saved, not sent", "--kill-after-save", 5, false, "SUCCEEDED", {1, 1, 1}, {1, 1, 1},
     -1},
    // The outcome sent, not acknowledged.
    {"outcome unacknowledged", "--kill-after-request", 5, false, "SUCCEEDED", {1, 1, 1},
     {1, 1, 1}, -1},
    // The outcome accepted, the reply not read (the record not cleared).
    {"outcome reply unread", "--kill-on-reply", 5, false, "SUCCEEDED", {1, 1, 1}, {1, 1, 1}, -1},
    // Mid-step, and the record file torn: not trusted; the service's IN_PROGRESS execution is
    // the interrupted job, resumed from step 0.
    {"mid-step, record torn", "--kill-in-step", 2, true, "FAILED", {1, 1, 0}, {2, 2, 1}, 0},
};
// clang-format on

class JobsRebootTest : public TokenDeviceBroker {
 protected:
  void SetUp() override {
    SecuredBroker::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(fleetd_logged("broker.subscribed", 1, 10s)) << "fleetd never subscribed";
  }

  struct Device {
    std::string thing;
    const KillPoint* point;
    bool resumable;
    testing::Issued cert;
    std::string state, effects;
    pid_t pid = -1;
    std::string out;
  };

  void create_job(const std::string& id, const json& document,
                  const std::vector<std::string>& things) {
    auto r = admin(
        "POST", "/admin/v1/jobs",
        json{{"jobId", id}, {"document", document}, {"targets", {{"things", things}}}}.dump());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }

  // fleetd's executions of job `id`, by thing.
  std::map<std::string, json> executions(const std::string& id) {
    std::map<std::string, json> out;
    auto r = admin_get("/admin/v1/jobs/" + id + "/executions");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    if (!r) return out;
    const json page = json::parse(r->body, nullptr, false);
    if (!page.is_object() || !page["items"].is_array()) return out;
    for (const auto& e : page["items"]) out[e["thingName"].get<std::string>()] = e;
    return out;
  }

  void start(Device& d, std::vector<std::string> extra, const std::string& out) {
    std::vector<std::string> args{FLEETD_JOBS_DEVICE,
                                  "--port",
                                  std::to_string(broker_->tls_port()),
                                  "--ca",
                                  ca_->cert_file(),
                                  "--cert",
                                  d.cert.cert_file,
                                  "--key",
                                  d.cert.key_file,
                                  "--thing",
                                  d.thing,
                                  "--state",
                                  d.state,
                                  "--effects",
                                  d.effects};
    args.insert(args.end(), extra.begin(), extra.end());
    d.out = out;
    d.pid = spawn(std::move(args), out, "w", STDOUT_FILENO);
  }

  // How often the device ran each step of `job` (its effects file).
  static std::array<int, 3> effects_of(const Device& d, const std::string& job) {
    std::array<int, 3> n{};
    std::istringstream in(testing::read_text_file(d.effects));
    std::string id;
    int step = 0;
    while (in >> id >> step) {
      if (id == job && step >= 1 && step <= 3) ++n[static_cast<std::size_t>(step - 1)];
    }
    return n;
  }
};

TEST_F(JobsRebootTest, ADeviceKilledAtEveryStepOfAJobEndsItOnceAsItsHandlerDeclares) {
  // One device per kill point and handler, all at once (each its own thing, record and log).
  std::vector<Device> devices;
  std::vector<std::string> installers, configurers, all;
  for (const KillPoint& p : kKillPoints) {
    for (bool resumable : {false, true}) {
      Device d;
      d.thing = "d" + std::to_string(devices.size());
      d.point = &p;
      d.resumable = resumable;
      testing::CertOptions o;
      o.common_name = d.thing;
      d.cert = ca_->issue(d.thing, o);
      ASSERT_NO_FATAL_FAILURE(register_device(d.thing, d.cert.cert_file));
      d.state = (dir_ / (d.thing + ".record")).string();
      d.effects = (dir_ / (d.thing + ".effects")).string();
      (resumable ? configurers : installers).push_back(d.thing);
      all.push_back(d.thing);
      devices.push_back(std::move(d));
    }
  }
  // The job under test, then one queued behind it (fleetd starts jobs queued in the same
  // second in the order of their ids; a later second comes later anyway).
  ASSERT_NO_FATAL_FAILURE(create_job("a-install", {{"operation", "install"}}, installers));
  ASSERT_NO_FATAL_FAILURE(create_job("a-configure", {{"operation", "configure"}}, configurers));
  ASSERT_NO_FATAL_FAILURE(create_job("b-next", {{"operation", "configure"}}, all));

  const auto first_end = std::chrono::steady_clock::now() + 20s;
  for (Device& d : devices) {
    start(d, {d.point->flag, std::to_string(d.point->n)}, d.state + ".boot1");
  }
  for (Device& d : devices) {
    EXPECT_EQ(testing::wait_child(d.pid, first_end), "signal 9")
        << d.point->name << " (" << d.thing << "): the device did not die there\n"
        << testing::read_text_file(d.out);
  }
  for (Device& d : devices) {
    if (!d.point->tear_record) continue;
    ASSERT_TRUE(std::filesystem::exists(d.state)) << d.point->name;
    std::filesystem::resize_file(d.state, 50);  // a torn write
  }
  const auto second_end = std::chrono::steady_clock::now() + 20s;
  for (Device& d : devices) start(d, {}, d.state + ".boot2");
  for (Device& d : devices) {
    EXPECT_EQ(testing::wait_child(d.pid, second_end), "exit 0")
        << d.point->name << " (" << d.thing << ")\n"
        << testing::read_text_file(d.out);
  }

  auto install = executions("a-install");
  auto configure = executions("a-configure");
  auto next = executions("b-next");
  for (const Device& d : devices) {
    const std::string job = d.resumable ? "a-configure" : "a-install";
    SCOPED_TRACE(std::string(d.point->name) + ", " + job + " on " + d.thing);
    json e = d.resumable ? configure[d.thing] : install[d.thing];
    const std::string boot2 = testing::read_text_file(d.out);
    if (d.resumable) {
      EXPECT_EQ(e["status"], "SUCCEEDED") << e;
      EXPECT_EQ(effects_of(d, job), d.point->configure_effects);
      if (d.point->configure_resumed_at >= 0) {
        EXPECT_NE(boot2.find("run " + job + " resumed " +
                             std::to_string(d.point->configure_resumed_at) + "\n"),
                  std::string::npos)
            << boot2;
      }
    } else {
      EXPECT_EQ(e["status"], std::string(d.point->install_status)) << e;
      if (std::string(d.point->install_status) == "FAILED") {
        EXPECT_EQ(e["statusDetails"]["reason"], "rebooted during step") << e;
      }
      // A handler that cannot continue never runs a step twice.
      EXPECT_EQ(effects_of(d, job), d.point->install_effects);
      EXPECT_EQ(boot2.find("resumed"), std::string::npos) << boot2;
    }
    // Nothing was run as a second execution, and the job behind it ran, once.
    EXPECT_EQ(e["executionNumber"], 1) << e;
    EXPECT_EQ(next[d.thing]["status"], "SUCCEEDED") << next[d.thing];
    EXPECT_EQ(effects_of(d, "b-next"), (std::array<int, 3>{1, 1, 1}));
    // Nothing left for the next boot.
    EXPECT_FALSE(std::filesystem::exists(d.state));
  }
}

// `edgekit jobs run --state`: a run killed while its job sleeps (a Resume handler) resumes it
// when started again, and the record file is gone once the outcome is in.
TEST_F(JobsRebootTest, TheJobsCommandWithAStateFileResumesAJobAfterSigkill) {
  ASSERT_NO_FATAL_FAILURE(make_token_device("t9"));
  const std::string state = (dir_ / "t9.jobs").string();
  const std::string args = "jobs run --thing t9 -h 127.0.0.1 -p " +
                           std::to_string(broker_->tls_port()) + " --cafile " + ca_->cert_file() +
                           " --cert " + token_cert_ + " --key-label t9 --token " + kTokenLabel +
                           " --state " + state;
  // 2 s: long enough to be killed in, short enough to sleep again when resumed.
  ASSERT_NO_FATAL_FAILURE(create_job("nap", {{"operation", "sleep"}, {"ms", 2000}}, {"t9"}));
  const std::string log = (dir_ / "jobs.out").string();
  pid_t pid =
      spawn({"/bin/sh", "-c", token_env() + "exec " + EDGEKIT_CLI + " " + args + " --for 60 2>&1"},
            log, "w", STDOUT_FILENO);
  ASSERT_GT(pid, 0);
  // Sleeping: its progress reached fleetd, so the record holds step 1.
  bool sleeping = false;
  for (int i = 0; i < 200 && !sleeping; ++i) {
    json e = executions("nap")["t9"];
    sleeping = e.is_object() && e.contains("statusDetails") && e["statusDetails"].is_object() &&
               e["statusDetails"].value("step", "") == "sleeping";
    if (!sleeping) std::this_thread::sleep_for(20ms);
  }
  testing::stop_child(pid, SIGKILL, 1s);
  ASSERT_TRUE(sleeping) << testing::read_text_file(log);
  ASSERT_TRUE(std::filesystem::exists(state));
  EXPECT_EQ(testing::read_text_file(log).find("SUCCEEDED"), std::string::npos)
      << "killed too late: " << testing::read_text_file(log);

  auto again = edgekit(args + " --once");
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_NE(again.out.find(state + ": job nap was running (step 1)"), std::string::npos)
      << again.out;
  EXPECT_NE(again.out.find("job nap: sleep 2000 ms: SUCCEEDED (resumed after a restart)\n"),
            std::string::npos)
      << again.out;
  json e = executions("nap")["t9"];
  EXPECT_EQ(e["status"], "SUCCEEDED") << e;
  EXPECT_EQ(e["executionNumber"], 1) << e;
  EXPECT_FALSE(std::filesystem::exists(state));
}

}  // namespace
}  // namespace edgekit::fleetd::test
