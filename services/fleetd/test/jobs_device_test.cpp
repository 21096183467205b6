// The device Jobs library (libs/jobs: `jobs::Runner` over the blocking client and over the agent)
// against fleetd's Jobs service end to end: the device's key in edgekit's PKCS#11 token, mutual
// TLS through a real Mosquitto with edgekit's plugin, the fleetd binary, jobs created and canceled
// through the admin API. What the device did is checked on fleetd's side (its executions).

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <edgekit/agent/agent.hpp>
#include <edgekit/jobs/runner.hpp>
#include <edgekit/pki/token.hpp>
#include <edgekit/reqres/channel.hpp>
#include <edgekit/testing/channel_device.hpp>
#include <edgekit/testing/token_env.hpp>
#include <edgekit/tls/agent_factory.hpp>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "edgekit/json/json.hpp"
#include "secured_broker.hpp"

namespace edgekit::fleetd::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using edgekit::testing::Driver;

constexpr const char* kPin = "1234";

// One boot of the device t1: a connection (its key in the token) and a channel over it.
struct Device {
  std::unique_ptr<Peer> peer;  // the blocking client
  std::unique_ptr<tls::TlsTransportFactory> factory;
  std::unique_ptr<agent::Agent> agent;
  std::unique_ptr<reqres::Channel> channel;
  SteadyClock clock;
  ~Device() {
    channel.reset();  // it points into the driver
    if (agent) agent->stop();
  }
};

class JobsDeviceTest : public SecuredBroker, public ::testing::WithParamInterface<Driver> {
 protected:
  void SetUp() override {
    SecuredBroker::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(fleetd_logged("broker.subscribed", 1, 10s)) << "fleetd never subscribed";
    // The device's key lives in its token (imported once, as a factory would); the certificate
    // is the test CA's for t1.
    module_ = edgekit::testing::prepare_token_env(edgekit::testing::TokenKind::Edgekit,
                                                  (dir_ / "device").string(), EDGEKIT_TOKEN_MODULE, "");
    auto m = pkcs11::Module::load(module_);
    ASSERT_TRUE(m) << m.error().message();
    auto slot = edgekit::testing::init_test_token(*m, "device", "87654321", kPin);
    ASSERT_TRUE(slot);
    auto opened = m->open_session(*slot, true);
    ASSERT_TRUE(opened && opened->login(pkcs11::UserType::User, kPin));
    // Kept open (and logged in) for the test, as a device keeps its token session: the TLS
    // layer's own sessions, on the agent's thread too, then share that login.
    module_handle_.emplace(std::move(*m));
    session_.emplace(std::move(*opened));
    auto& s = session_;
    std::stringstream key;
    key << std::ifstream(issued("t1").key_file).rdbuf();
    auto kp = pki::import_private_key(*s, key.str(), "tls", pki::Bytes{7});
    ASSERT_TRUE(kp) << kp.error().message;
    ASSERT_NO_FATAL_FAILURE(boot());
  }
  void TearDown() override {
    runner_.reset();
    device_.reset();
    session_.reset();
    module_handle_.reset();
    SecuredBroker::TearDown();
  }

  tls::Config tls_config() const {
    tls::Config c;
    c.ca_file = ca_->cert_file();
    c.certificate_file = devices_.at("t1").cert_file;
    c.token_key = tls::TokenKey{module_, "device", kPin, "tls", {}};
    return c;
  }

  // A power cycle: everything but the record store goes (the broker sees the connection drop).
  void boot() {
    runner_.reset();
    device_.reset();
    device_ = std::make_unique<Device>();
    if (GetParam() == Driver::Client) {
      device_->peer = std::make_unique<Peer>();
      auto ack = device_->peer->connect_tls(broker_->tls_port(), tls_config(), "t1");
      ASSERT_TRUE(ack) << mqtt::to_string(ack.error()) << "\n" << broker_->log();
      device_->channel =
          std::make_unique<reqres::ClientChannel>(device_->peer->client(), device_->clock);
    } else {
      auto ctx = tls::TlsContext::create(tls_config());
      ASSERT_TRUE(ctx) << ctx.error().message();
      device_->factory = std::make_unique<tls::TlsTransportFactory>(std::move(*ctx), "localhost",
                                                                    broker_->tls_port(), kTimeout);
      mqtt::ConnectOptions connect;
      connect.version = mqtt::Version::V5;
      connect.client_id = "t1";
      agent::Config config;
      config.slot_size = 4096;
      device_->agent = std::make_unique<agent::Agent>(config, connect, *device_->factory,
                                                      device_->clock);
      ASSERT_TRUE(device_->agent->start());
      device_->channel = std::make_unique<reqres::AgentChannel>(*device_->agent);
    }
    jobs::RunnerConfig c;
    c.thing = "t1";
    c.handlers = handlers_;
    c.token_seed = ++boots_ * 1000;
    c.request_timeout = Duration{2000};
    c.retry_delay = Duration{100};
    runner_ = std::make_unique<jobs::Runner>(*device_->channel, store_, device_->clock, c,
                                             jobs::RunnerBuffers{request_, reply_, document_});
  }

  // An update of t1's execution of `job` sent by someone other than the runner, over the same
  // connection (a second connection as t1 would take the first one's place at the broker).
  void side_update(const std::string& job, const std::string& payload) {
    const std::string topic = "$aws/things/t1/jobs/" + job + "/update";
    if (device_->peer) {
      EXPECT_EQ(device_->peer->publish(topic, payload), ReasonCode::Success);
      return;
    }
    mqtt::Publish p;
    p.topic = topic;
    p.payload = mqtt::as_bytes(payload);
    p.qos = mqtt::QoS::AtLeastOnce;
    EXPECT_TRUE(device_->agent->publish(p));
  }

  void create_job(const std::string& id, const json& document) {
    auto r = admin("POST", "/admin/v1/jobs",
                   json{{"jobId", id}, {"document", document}, {"targets", {{"things", {"t1"}}}}}
                       .dump());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }

  // fleetd's record of t1's execution of `id` (null if none).
  json execution(const std::string& id) {
    auto r = admin_get("/admin/v1/jobs/" + id + "/executions");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    if (!r) return {};
    const json page = json::parse(r->body, nullptr, false);
    for (const auto& e : page["items"]) {
      if (e["thingName"] == "t1") return e;
    }
    return {};
  }
  std::string status_of(const std::string& id) {
    json e = execution(id);
    return e.is_object() && e["status"].is_string() ? e["status"].get<std::string>() : "";
  }

  // Runs the runner until `done` holds or 10 s pass.
  bool run_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      auto s = runner_->run_for(Duration{100});
      EXPECT_TRUE(s) << jobs::to_string(s.error());
    }
    return done();
  }

  // The handlers: what they saw, and what they do by the document's `operation`.
  static void handle(void* ctx, jobs::Runner& r, const jobs::Job& job) {
    auto* t = static_cast<JobsDeviceTest*>(ctx);
    std::string entry(job.job_id);
    if (job.resumed) entry += " resumed at " + std::to_string(job.step);
    t->runs_.push_back(entry);
    auto op = job.document.find("operation");
    std::string_view what;
    if (op) {
      if (auto v = op->as_string_view()) what = *v;  // escape-free operation names only
    }
    const std::string id(job.job_id);
    if (what == "fail") {
      const jobs::StatusDetail why[] = {{"reason", "asked to"}};
      EXPECT_TRUE(r.finish(jobs::JobStatus::Failed, why));
      return;
    }
    if (what == "refuse") {
      const jobs::StatusDetail why[] = {{"reason", "incompatible"}};
      EXPECT_TRUE(r.finish(jobs::JobStatus::Rejected, why));
      return;
    }
    if (t->cut_off_ && !job.resumed) {  // the power goes after the first step
      const jobs::StatusDetail step[] = {{"step", "1"}};
      EXPECT_TRUE(r.progress(step, 5, 1));
      return;
    }
    if (what == "wait") {
      // Reports progress until the service ends the job; the test cancels it after the first.
      for (int i = 1; i <= 20; ++i) {
        const std::string n = std::to_string(i);
        const jobs::StatusDetail step[] = {{"step", n}};
        auto p = r.progress(step);
        if (!p) {
          t->stopped_with_ = p.error();
          return;
        }
        if (i == 1 && t->on_first_step_) t->on_first_step_(id);
      }
      ADD_FAILURE() << "the handler was never told to stop";
      return;
    }
    const jobs::StatusDetail step[] = {{"step", "1"}};
    EXPECT_TRUE(r.progress(step, 5, 1));
    if (t->on_first_step_) t->on_first_step_(id);
    const jobs::StatusDetail step2[] = {{"step", "2"}};
    auto p = r.progress(step2, 5, 2);
    EXPECT_TRUE(p) << jobs::to_string(p.error());
    const jobs::StatusDetail done[] = {{"result", "ok"}};
    auto f = r.finish(jobs::JobStatus::Succeeded, done);
    EXPECT_TRUE(f) << jobs::to_string(f.error());
  }

  std::string module_;
  std::optional<pkcs11::Module> module_handle_;
  std::optional<pkcs11::Session> session_;
  std::unique_ptr<Device> device_;
  std::unique_ptr<jobs::Runner> runner_;
  std::uint32_t boots_ = 0;
  jobs::RamRecordSlot slot_{};
  jobs::RamRecordStore store_{slot_};  // survives the reboots
  std::vector<std::string> runs_;
  bool cut_off_ = false;
  std::function<void(const std::string&)> on_first_step_;
  std::optional<jobs::Errc> stopped_with_;
  std::array<jobs::JobHandler, 5> handlers_{
      jobs::JobHandler{"echo", jobs::RebootPolicy::Resume, &handle, this},
      jobs::JobHandler{"install", jobs::RebootPolicy::FailJob, &handle, this},
      jobs::JobHandler{"fail", jobs::RebootPolicy::FailJob, &handle, this},
      jobs::JobHandler{"refuse", jobs::RebootPolicy::FailJob, &handle, this},
      jobs::JobHandler{"wait", jobs::RebootPolicy::FailJob, &handle, this}};
  std::array<char, 1024> request_{};
  std::array<char, 8192> reply_{};
  std::array<char, 4096> document_{};
};

TEST_P(JobsDeviceTest, NotifyNextToSucceededWithProgressThenFailedAndRejected) {
  auto s = runner_->start(Duration{5000});
  ASSERT_TRUE(s) << jobs::to_string(s.error());
  ASSERT_NO_FATAL_FAILURE(create_job("echo-1", {{"operation", "echo"}, {"text", "hi"}}));
  // Progress reached fleetd while the handler ran.
  on_first_step_ = [&](const std::string& id) {
    json e = execution(id);
    EXPECT_EQ(e["status"], "IN_PROGRESS") << e;
    EXPECT_EQ(e["statusDetails"]["step"], "1") << e;
  };
  ASSERT_TRUE(run_until([&] { return status_of("echo-1") == "SUCCEEDED"; })) << execution("echo-1");
  on_first_step_ = nullptr;
  json e = execution("echo-1");
  EXPECT_EQ(e["statusDetails"]["result"], "ok") << e;
  // An update's statusDetails replace the earlier ones (AWS's UpdateJobExecution).
  EXPECT_FALSE(e["statusDetails"].contains("step")) << e;

  ASSERT_NO_FATAL_FAILURE(create_job("fail-2", {{"operation", "fail"}}));
  ASSERT_TRUE(run_until([&] { return status_of("fail-2") == "FAILED"; })) << execution("fail-2");
  EXPECT_EQ(execution("fail-2")["statusDetails"]["reason"], "asked to");

  // REJECTED after start-next: fleetd refuses it from IN_PROGRESS (aws-iot-protocols.md 2.4),
  // so the runner reports FAILED with the same details.
  ASSERT_NO_FATAL_FAILURE(create_job("refuse-3", {{"operation", "refuse"}}));
  ASSERT_TRUE(run_until([&] { return status_of("refuse-3") == "FAILED"; })) << execution("refuse-3");
  EXPECT_EQ(execution("refuse-3")["statusDetails"]["reason"], "incompatible");
  EXPECT_EQ(runs_, (std::vector<std::string>{"echo-1", "fail-2", "refuse-3"}));
  EXPECT_FALSE(store_.has());
}

TEST_P(JobsDeviceTest, ACanceledJobStopsItsHandler) {
  ASSERT_TRUE(runner_->start(Duration{5000}));
  on_first_step_ = [&](const std::string& id) {
    auto r = admin("POST", "/admin/v1/jobs/" + id + "/cancel", R"({"force":true})");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
  };
  ASSERT_NO_FATAL_FAILURE(create_job("wait-1", {{"operation", "wait"}}));
  ASSERT_TRUE(run_until([&] { return stopped_with_.has_value(); }));
  EXPECT_EQ(*stopped_with_, jobs::Errc::NoJobRunning);
  EXPECT_EQ(status_of("wait-1"), "CANCELED");
  // The runner takes the next job.
  on_first_step_ = nullptr;
  ASSERT_NO_FATAL_FAILURE(create_job("echo-2", {{"operation", "echo"}}));
  ASSERT_TRUE(run_until([&] { return status_of("echo-2") == "SUCCEEDED"; }));
  EXPECT_EQ(runs_, (std::vector<std::string>{"wait-1", "echo-2"}));
}

TEST_P(JobsDeviceTest, ARebootMidJobEndsTheExecutionOnceAsTheHandlerDeclares) {
  // Created in the same second: fleetd starts them in the order of their ids then (AWS by the
  // time they were queued), so the ids say the order.
  ASSERT_NO_FATAL_FAILURE(create_job("a-fw", {{"operation", "install"}}));   // FailJob
  ASSERT_NO_FATAL_FAILURE(create_job("b-cfg", {{"operation", "echo"}}));     // Resume
  cut_off_ = true;
  ASSERT_TRUE(runner_->start(Duration{5000}));
  EXPECT_EQ(status_of("a-fw"), "IN_PROGRESS");
  ASSERT_TRUE(store_.has());

  ASSERT_NO_FATAL_FAILURE(boot());
  ASSERT_TRUE(runner_->start(Duration{5000}));
  // a-fw cannot continue: FAILED with the runner's reason; b-cfg runs and is cut off too.
  EXPECT_EQ(status_of("a-fw"), "FAILED");
  EXPECT_EQ(execution("a-fw")["statusDetails"]["reason"], "rebooted during step");
  EXPECT_EQ(status_of("b-cfg"), "IN_PROGRESS");

  cut_off_ = false;
  ASSERT_NO_FATAL_FAILURE(boot());
  ASSERT_TRUE(runner_->start(Duration{5000}));
  EXPECT_EQ(status_of("b-cfg"), "SUCCEEDED");
  EXPECT_EQ(runs_, (std::vector<std::string>{"a-fw", "b-cfg", "b-cfg resumed at 1"}));
  EXPECT_FALSE(store_.has());
  // Nothing ran twice: one execution each, and nothing left for the device.
  EXPECT_EQ(execution("a-fw")["executionNumber"], 1);
  EXPECT_EQ(execution("b-cfg")["executionNumber"], 1);
}

TEST_P(JobsDeviceTest, AVersionConflictIsResolvedByAdoptingTheServicesVersion) {
  ASSERT_TRUE(runner_->start(Duration{5000}));
  on_first_step_ = [&](const std::string& id) {
    // Someone else's update in between: the runner's next one names a stale version.
    side_update(id, R"({"status":"IN_PROGRESS","statusDetails":{"by":"other"},"clientToken":"x"})");
  };
  ASSERT_NO_FATAL_FAILURE(create_job("echo-1", {{"operation", "echo"}}));
  ASSERT_TRUE(run_until([&] { return status_of("echo-1") == "SUCCEEDED"; })) << execution("echo-1");
  // fleetd refused the stale update once (the runner then sent it again with the new version).
  EXPECT_EQ(fleetd_log_count("VersionMismatch"), 1u);
  EXPECT_EQ(execution("echo-1")["statusDetails"]["result"], "ok");
  EXPECT_EQ(runs_, (std::vector<std::string>{"echo-1"}));
}

INSTANTIATE_TEST_SUITE_P(Drivers, JobsDeviceTest, edgekit::testing::kBothDrivers,
                         edgekit::testing::driver_name);

}  // namespace
}  // namespace edgekit::fleetd::test
