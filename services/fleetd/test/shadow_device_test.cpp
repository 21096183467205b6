// The device's shadow client (edgekit::shadow::Client) end to end against the real system: its
// key in edgekit's PKCS#11 token, mutual TLS to a real Mosquitto whose plugin asks the real
// fleetd, fleetd's shadow service answering — over the blocking client and over the agent. The
// operator's side is fleetd's admin API. Every wait is bounded (kTimeout or kWait).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "edgekit/agent/agent.hpp"
#include "edgekit/json/json.hpp"
#include "edgekit/reqres/channel.hpp"
#include "edgekit/shadow/bindings.hpp"
#include "edgekit/shadow/client.hpp"
#include "edgekit/testing/channel_device.hpp"
#include "edgekit/tls/agent_factory.hpp"
#include "token_device.hpp"

namespace edgekit::fleetd::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::Driver;
namespace sh = edgekit::shadow;

constexpr Duration kWait{5000};

// One device connection over either driver, mutual TLS with the key in the token.
struct TlsDevice {
  bool connect(Driver driver, std::uint16_t port, const tls::Config& config,
               const std::string& client_id) {
    id = client_id;
    if (driver == Driver::Client) {
      peer = std::make_unique<Peer>();
      if (!peer->connect_tls(port, config, id)) return false;
      channel = std::make_unique<reqres::ClientChannel>(peer->client(), peer->clock());
      return true;
    }
    auto context = tls::TlsContext::create(config);
    if (!context) return false;
    factory = std::make_unique<tls::TlsTransportFactory>(std::move(*context), "localhost", port);
    agent::Config c;
    c.slot_size = 4096;
    mqtt::ConnectOptions o;
    o.version = mqtt::Version::V5;
    o.client_id = id;
    agent = std::make_unique<agent::Agent>(c, o, *factory, clock);
    if (!agent->start()) return false;
    channel = std::make_unique<reqres::AgentChannel>(*agent);
    return true;
  }
  TlsDevice() = default;
  TlsDevice(const TlsDevice&) = delete;
  TlsDevice& operator=(const TlsDevice&) = delete;
  ~TlsDevice() { reset(); }
  // The channel first: it points into the driver.
  void reset() {
    channel.reset();
    agent.reset();
    factory.reset();
    peer.reset();
  }

  std::string id;
  SteadyClock clock;
  std::unique_ptr<Peer> peer;
  std::unique_ptr<tls::TlsTransportFactory> factory;
  std::unique_ptr<agent::Agent> agent;
  std::unique_ptr<reqres::Channel> channel;
};

// The application: a thermostat whose fields the shadow drives through a binding table. Over the
// agent the delta handler runs on the agent thread: everything under the mutex.
struct Thermostat {
  std::mutex mutex;
  bool power = false;
  std::int32_t target = 18;
  char mode[16] = "auto";
  sh::FieldSet to_report = 0;
  int deltas = 0;  // deltas handed to the application
  const sh::Binding table[3] = {sh::bind("power", power), sh::bind("heat.target", target),
                                sh::bind("mode", mode)};

  static void on_delta(void* self, const sh::Delta& d) {
    auto* t = static_cast<Thermostat*>(self);
    std::lock_guard lock(t->mutex);
    ++t->deltas;
    if (auto changed = sh::apply_state(d.state, t->table)) t->to_report |= *changed;
  }
  std::int32_t target_now() {
    std::lock_guard lock(mutex);
    return target;
  }
};

// The system up, with device t9's key in the token.
class WithT9 : public TokenDeviceBroker {
 protected:
  void SetUp() override {
    SecuredBroker::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(fleetd_logged("broker.subscribed", 1, 10s)) << "fleetd never subscribed";
    make_token_device("t9");
  }
};

class ShadowDevice : public WithT9, public ::testing::WithParamInterface<Driver> {
 protected:
  // Connects device t9 and starts a shadow client on it (classic, or the named `shadow`).
  std::unique_ptr<sh::Client> start(TlsDevice& device, Thermostat& app,
                                    const std::string& shadow = "", sh::DeltaOrder order = {}) {
    if (!device.connect(GetParam(), broker_->tls_port(), token_tls("t9"), "t9")) {
      ADD_FAILURE() << "t9 did not connect\n" << broker_->log();
      return nullptr;
    }
    sh::ClientConfig config;
    config.thing = "t9";
    config.shadow = shadow;
    config.order = order;
    config.token_seed = static_cast<std::uint32_t>(order.last_applied() * 100);
    auto c = std::make_unique<sh::Client>(*device.channel, config, request_, reply_);
    c->set_delta_handler({&Thermostat::on_delta, &app});
    auto started = c->start(kWait);
    if (!started) {
      ADD_FAILURE() << "start: " << sh::to_string(started.error());
      return nullptr;
    }
    return c;
  }

  // Reports the fields in `which` (all by default); the accepted version.
  std::uint64_t report(sh::Client& c, Thermostat& app, sh::FieldSet which = sh::kAllFields) {
    std::lock_guard lock(app.mutex);
    auto up = c.update(
        [&](sh::UpdateWriter& u) { (void)sh::write_fields(u.reported(), app.table, which); },
        std::nullopt, kWait);
    EXPECT_TRUE(up) << sh::to_string(up.error().errc);
    if (!up) return 0;
    EXPECT_TRUE(up->client_token.equals(c.last_token()));
    app.to_report = 0;
    return up->version;
  }

  // Lets deltas arrive until `done()` (bounded by kWait).
  template <class Pred>
  bool until(sh::Client& c, Pred done) {
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      (void)c.poll(Duration{50});
    }
    return true;
  }

  // The operator's side: fleetd's admin API.
  json admin_shadow(const std::string& method, const std::string& query = "",
                    const std::string& body = "") {
    auto r = admin(method, "/admin/v1/things/t9/shadow" + query, body);
    EXPECT_TRUE(r) << method << " shadow: no answer";
    if (!r) return json();
    EXPECT_EQ(r->status / 100, 2) << r->body;
    return json::parse(r->body, nullptr, false);
  }
  json set_desired(const json& desired, const std::string& query = "") {
    return admin_shadow("POST", query, json{{"state", {{"desired", desired}}}}.dump());
  }

  char request_[2048] = {};
  char reply_[8192] = {};
};

TEST_P(ShadowDevice, AppliesTheOperatorsDeltaReportsAndIgnoresOthersReplies) {
  // Declared in this order: the client goes first (it gives the channel's handler back), then
  // the device's channel and driver, and the application its handler fed last.
  Thermostat app;
  TlsDevice device;
  std::unique_ptr<sh::Client> c;
  c = start(device, app);
  ASSERT_TRUE(c);

  auto missing = c->get(kWait);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().errc, sh::Errc::ShadowNotFound);
  EXPECT_EQ(missing.error().rejection.code, 404);
  EXPECT_TRUE(missing.error().rejection.message.equals("No shadow exists with name: 't9'"));
  EXPECT_EQ(report(*c, app), 1u);

  // The operator wants it warmer; the device applies the delta through its table and reports.
  const json accepted = set_desired({{"heat", {{"target", 22}}}, {"mode", "eco"}});
  EXPECT_EQ(accepted["version"], 2);
  ASSERT_TRUE(until(*c, [&] {
    std::lock_guard lock(app.mutex);
    return app.to_report != 0;
  })) << "no delta reached the device";
  {
    std::lock_guard lock(app.mutex);
    EXPECT_EQ(app.target, 22);
    EXPECT_STREQ(app.mode, "eco");
    EXPECT_EQ(app.to_report, sh::FieldSet{0b110});  // heat.target and mode
  }
  EXPECT_EQ(report(*c, app, 0b110), 3u);

  const json doc = admin_shadow("GET");
  EXPECT_FALSE(doc["state"].contains("delta")) << doc.dump();
  EXPECT_EQ(doc["state"]["reported"]["heat"]["target"], 22);
  EXPECT_EQ(doc["state"]["reported"]["mode"], "eco");
  EXPECT_EQ(doc["state"]["reported"]["power"], false);
  EXPECT_EQ(doc["version"], 3);
  EXPECT_EQ(c->stats().deltas_applied, 1u);
  // A watcher (the operator's console, here a trusted client) on the same shadow topics makes
  // requests of its own: the service answers on the topics the device listens to.
  Peer watcher;
  trusted(watcher, "watcher");
  ASSERT_EQ(watcher.subscribe("$aws/things/t9/shadow/+/+"), ReasonCode::GrantedQoS1);
  const json other = admin_shadow(
      "POST", "",
      json{{"state", {{"reported", {{"power", true}}}}}, {"clientToken", "console-1"}}.dump());
  EXPECT_EQ(other["version"], 4);
  auto mine = c->get(kWait);
  ASSERT_TRUE(mine) << sh::to_string(mine.error().errc);
  EXPECT_TRUE(mine->client_token.equals(c->last_token()));
  EXPECT_EQ(mine->version, 4u);
  ASSERT_TRUE(until(*c, [&] { return c->stats().ignored >= 1; }))
      << "the console's update/accepted was not seen and ignored";
  // The watcher saw both: the console's reply and the device's, told apart by their tokens.
  watcher.pump(2s, 3);
  bool console_seen = false;
  for (const auto& m : watcher.received) {
    if (m.topic == "$aws/things/t9/shadow/update/accepted") {
      console_seen |= json::parse(m.payload).value("clientToken", "") == "console-1";
    }
  }
  EXPECT_TRUE(console_seen);
}

TEST_P(ShadowDevice, NamedShadowVersionConflictAndDelete) {
  // Declared in this order: the client goes first (it gives the channel's handler back), then
  // the device's channel and driver, and the application its handler fed last.
  Thermostat app;
  TlsDevice device;
  std::unique_ptr<sh::Client> c;
  c = start(device, app, "cfg");
  ASSERT_TRUE(c);
  EXPECT_EQ(report(*c, app), 1u);

  auto stale = c->update(
      [&](sh::UpdateWriter& u) { u.reported().begin_object().member("power", true).end_object(); },
      std::uint64_t{7}, kWait);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().errc, sh::Errc::VersionConflict);
  EXPECT_EQ(stale.error().rejection.code, 409);
  EXPECT_TRUE(stale.error().rejection.message.equals("Version conflict"));
  auto right = c->update(
      [&](sh::UpdateWriter& u) { u.reported().begin_object().member("power", true).end_object(); },
      std::uint64_t{1}, kWait);
  ASSERT_TRUE(right) << sh::to_string(right.error().errc);
  EXPECT_EQ(right->version, 2u);
  // The named shadow is its own document: the classic one does not exist.
  const json named = admin_shadow("GET", "?name=cfg");
  EXPECT_EQ(named["state"]["reported"]["power"], true);
  auto classic = admin("GET", "/admin/v1/things/t9/shadow");
  ASSERT_TRUE(classic);
  EXPECT_EQ(classic->status, 404) << classic->body;

  auto removed = c->remove(kWait);
  ASSERT_TRUE(removed) << sh::to_string(removed.error().errc);
  EXPECT_EQ(removed->version, 2u);
  auto gone = c->get(kWait);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().errc, sh::Errc::ShadowNotFound);
  EXPECT_TRUE(gone.error().rejection.message.equals("No shadow exists with name: 'cfg'"));
  auto again = c->remove(kWait);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().errc, sh::Errc::ShadowNotFound);
}

TEST_P(ShadowDevice, DeltasInOrderOnceAndStaleOnesIgnoredAcrossAReconnect) {
  Thermostat app;
  sh::DeltaOrder kept;
  {
    TlsDevice device;
    std::unique_ptr<sh::Client> c;
    c = start(device, app);
    ASSERT_TRUE(c);
    ASSERT_EQ(report(*c, app), 1u);
    // Three wishes in quick succession while connected: each applied once, in order.
    for (int t = 20; t <= 22; ++t) set_desired({{"heat", {{"target", t}}}});
    ASSERT_TRUE(until(*c, [&] { return c->stats().deltas_applied == 3; }))
        << c->stats().deltas_applied;
    EXPECT_EQ(app.target_now(), 22);
    EXPECT_EQ(c->order().last_applied(), 4u);
    kept = c->order();
  }  // the device goes offline

  // More wishes while it is away; deltas published meanwhile reach nobody.
  for (int t = 23; t <= 25; ++t) set_desired({{"heat", {{"target", t}}}});
  TlsDevice device;
  std::unique_ptr<sh::Client> c;
  c = start(device, app, "", kept);
  ASSERT_TRUE(c);
  // Back online: the whole desired state, applied once, makes older deltas stale.
  auto doc = c->get(kWait);
  ASSERT_TRUE(doc) << sh::to_string(doc.error().errc);
  ASSERT_TRUE(doc->desired);
  {
    std::lock_guard lock(app.mutex);
    ASSERT_TRUE(sh::apply_state(*doc->desired, app.table));
  }
  c->document_applied(doc->version);
  EXPECT_EQ(doc->version, 7u);
  EXPECT_EQ(app.target_now(), 25);
  EXPECT_EQ(report(*c, app), 8u);

  // A late redelivery of an old delta, and the last one twice, through the real broker (a
  // trusted client plays the broker's redelivery): both dropped.
  Peer late;
  trusted(late, "late-redelivery");
  const char* topic = "$aws/things/t9/shadow/update/delta";
  const int before = app.deltas;
  EXPECT_EQ(late.publish(topic, R"({"state":{"heat":{"target":21}},"version":3,"timestamp":1})"),
            ReasonCode::Success);
  EXPECT_EQ(late.publish(topic, R"({"state":{"heat":{"target":25}},"version":7,"timestamp":1})"),
            ReasonCode::Success);
  ASSERT_TRUE(until(*c, [&] { return c->stats().deltas_stale + c->stats().deltas_duplicate >= 2; }))
      << c->stats().deltas_stale << " stale, " << c->stats().deltas_duplicate << " duplicate";
  EXPECT_EQ(c->stats().deltas_stale, 1u);
  EXPECT_EQ(c->stats().deltas_duplicate, 1u);
  EXPECT_EQ(app.deltas, before);
  EXPECT_EQ(app.target_now(), 25);

  // A real newer one still applies.
  set_desired({{"heat", {{"target", 26}}}});
  ASSERT_TRUE(until(*c, [&] { return app.target_now() == 26; }));
  EXPECT_EQ(c->order().last_applied(), 9u);
  const json final_doc = admin_shadow("GET");
  EXPECT_EQ(final_doc["state"]["desired"]["heat"]["target"], 26);
}

// `edgekit shadow sync`, the command a person trying the system uses: as thing t9 (key in the
// token), a state file as the application's fields.
class ShadowCommand : public WithT9 {
 public:
  // Waits (up to 10 s) until the file holds `text`; the command writes as it goes.
  static bool file_holds(const std::string& file, const std::string& text) {
    for (int i = 0; i < 200; ++i) {
      if (testing::read_text_file(file).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

 protected:
  std::string sync_args() const {
    return "shadow sync --thing t9 -h 127.0.0.1 -p " + std::to_string(broker_->tls_port()) +
           " --cafile " + ca_->cert_file() + " --cert " + token_cert_ + " --key-label t9 --token " +
           kTokenLabel + " --state " + state_;
  }
  std::string state_ = (dir_ / "t9.state").string();
};

TEST_F(ShadowCommand, SyncReportsThenAppliesTheOperatorsDeltaToTheStateFile) {
  std::ofstream(state_) << "target=18\nmode=\"auto\"\n";
  auto once = edgekit(sync_args() + " --once --report power=false");
  ASSERT_EQ(once.code, 0) << once.out;
  EXPECT_NE(once.out.find("no shadow yet for thing t9 (classic shadow)"), std::string::npos)
      << once.out;
  EXPECT_NE(once.out.find(R"(reported (version 1): mode="auto" power=false target=18)"),
            std::string::npos)
      << once.out;

  const std::string log = (dir_ / "sync.out").string();
  const pid_t pid = spawn(
      {"/bin/sh", "-c", token_env() + "exec " + EDGEKIT_CLI + " " + sync_args() + " --for 20 2>&1"},
      log, "w", STDOUT_FILENO);
  ASSERT_GT(pid, 0);
  const bool in_sync = file_holds(log, "waiting for deltas");
  json doc;
  if (in_sync) {
    auto r = admin("POST", "/admin/v1/things/t9/shadow",
                   R"({"state":{"desired":{"target":22,"mode":"eco"}}})");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    EXPECT_TRUE(file_holds(log, R"(reported (version 4): mode="eco" target=22)"))
        << testing::read_text_file(log);
    auto g = admin("GET", "/admin/v1/things/t9/shadow");
    if (g) doc = json::parse(g->body, nullptr, false);
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(in_sync) << testing::read_text_file(log);
  EXPECT_NE(testing::read_text_file(log).find(R"(delta version 3: mode="eco" target=22)"),
            std::string::npos)
      << testing::read_text_file(log);
  EXPECT_FALSE(doc["state"].contains("delta")) << doc.dump();
  EXPECT_EQ(doc["state"]["reported"]["target"], 22);
  EXPECT_EQ(doc["state"]["reported"]["power"], false);
  const std::string kept = testing::read_text_file(state_);
  EXPECT_NE(kept.find("target=22\n"), std::string::npos) << kept;
  EXPECT_NE(kept.find("mode=\"eco\"\n"), std::string::npos) << kept;
}

// `edgekit jobs run`, the device side of a rollout from the command line: as thing t9 (key in
// the token), the operations it knows and one it does not.
class JobsCommand : public WithT9 {
 protected:
  std::string run_args() const {
    return "jobs run --thing t9 -h 127.0.0.1 -p " + std::to_string(broker_->tls_port()) +
           " --cafile " + ca_->cert_file() + " --cert " + token_cert_ + " --key-label t9 --token " +
           kTokenLabel;
  }
  void create_job(const std::string& id, const json& document) {
    auto r = admin(
        "POST", "/admin/v1/jobs",
        json{{"jobId", id}, {"document", document}, {"targets", {{"things", {"t9"}}}}}.dump());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
  }
  // fleetd's record of t9's execution of `id` (null if none).
  json execution(const std::string& id) { return job_execution(id, "t9"); }
};

TEST_F(JobsCommand, RunsThePendingJobsThenTheOnesThatArriveWhileItWaits) {
  create_job("hello", {{"operation", "echo"}, {"message", "hi there"}});
  create_job("broken", {{"operation", "fail"}, {"reason", "no space"}});
  create_job("mystery", {{"operation", "defrag"}});
  auto once = edgekit(run_args() + " --once");
  ASSERT_EQ(once.code, 0) << once.out;
  EXPECT_NE(once.out.find("job hello: echo \"hi there\": SUCCEEDED\n"), std::string::npos)
      << once.out;
  EXPECT_NE(once.out.find("job broken: fail: FAILED (no space)\n"), std::string::npos) << once.out;
  json e = execution("hello");
  EXPECT_EQ(e["status"], "SUCCEEDED") << e.dump();
  EXPECT_EQ(e["statusDetails"]["message"], "hi there") << e.dump();
  e = execution("broken");
  EXPECT_EQ(e["status"], "FAILED") << e.dump();
  EXPECT_EQ(e["statusDetails"]["reason"], "no space") << e.dump();
  e = execution("mystery");  // the library's answer to an operation without a handler
  EXPECT_EQ(e["status"], "FAILED") << e.dump();
  EXPECT_EQ(e["statusDetails"]["reason"], "unsupported operation") << e.dump();

  // Waiting: a job created now reaches it through notify-next.
  const std::string log = (dir_ / "jobs.out").string();
  const pid_t pid = spawn(
      {"/bin/sh", "-c", token_env() + "exec " + EDGEKIT_CLI + " " + run_args() + " --for 20 2>&1"},
      log, "w", STDOUT_FILENO);
  ASSERT_GT(pid, 0);
  const bool waiting = ShadowCommand::file_holds(log, "waiting for jobs for t9");
  bool slept = false;
  if (waiting) {
    create_job("nap", {{"operation", "sleep"}, {"ms", 100}});
    slept = ShadowCommand::file_holds(log, "job nap: sleep 100 ms: SUCCEEDED\n");
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(waiting) << testing::read_text_file(log);
  EXPECT_TRUE(slept) << testing::read_text_file(log);
  e = execution("nap");
  EXPECT_EQ(e["status"], "SUCCEEDED") << e.dump();
  EXPECT_EQ(e["statusDetails"]["slept_ms"], "100") << e.dump();
}

INSTANTIATE_TEST_SUITE_P(Drivers, ShadowDevice, testing::kBothDrivers, testing::driver_name);

}  // namespace
}  // namespace edgekit::fleetd::test
