// Fleet provisioning by claim end to end with edgekit's own device client: `Provisioner` over
// `ClientChannel` and `AgentChannel`, keys in edgekit's PKCS#11 token, against the real fleetd
// (its own CA), Mosquitto and the plugin (the SecuredBroker fixture). Then the crash tests: the
// device killed with SIGKILL at every step of the flow and booted again, and fleetd killed with
// SIGKILL during a burst of devices provisioning, each followed by a check of the registry.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "edgekit/json/json.hpp"
#include "edgekit/testing/child_process.hpp"
#include "edgekit/testing/token_env.hpp"
#include "provisioning_device.hpp"
#include "secured_broker.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::test {
namespace {

namespace fs = std::filesystem;
namespace pv = edgekit::provisioning;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr char kSoPin[] = "87654321";

// The thing's own policy, as a device template gives it: connect as the thing, its own topics.
constexpr const char* kThingPolicy =
    R"({"Version":"2012-10-17","Statement":[)"
    R"({"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},)"
    R"({"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/${iot:Connection.Thing.ThingName}/*"},)"
    R"({"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/${iot:Connection.Thing.ThingName}/*"}]})";

json template_body() {
  return json{
      {"Parameters", {{"SerialNumber", {{"Type", "String"}}}}},
      {"Resources",
       {{"thing",
         {{"Type", "AWS::IoT::Thing"},
          {"Properties",
           {{"ThingName",
             {{"Fn::Join", json::array({"", json::array({"dev-", {{"Ref", "SerialNumber"}}})})}}},
            {"AttributePayload", {{"serial", {{"Ref", "SerialNumber"}}}}}}}}},
        {"certificate",
         {{"Type", "AWS::IoT::Certificate"},
          {"Properties",
           {{"CertificateId", {{"Ref", "AWS::IoT::Certificate::Id"}}}, {"Status", "ACTIVE"}}}}},
        {"policy",
         {{"Type", "AWS::IoT::Policy"}, {"Properties", {{"PolicyDocument", kThingPolicy}}}}}}},
      {"DeviceConfiguration", {{"Interval", "30"}}}};
}

std::string format_name(pv::Format f) {
  return f == pv::Format::Json ? "json" : "cbor";
}

// A PUBACK that accepted the publish (MQTT 5 says 0x10 when nobody subscribes to the topic).
bool accepted(int reason) {
  return reason == static_cast<int>(ReasonCode::Success) ||
         reason == static_cast<int>(ReasonCode::NoMatchingSubscribers);
}

class DeviceProvisioning : public SecuredBroker {
 protected:
  DeviceProvisioning() { own_ca_ = true; }

  void SetUp() override {
    SecuredBroker::SetUp();
    if (HasFatalFailure()) return;
    auto r = admin(
        "POST", "/admin/v1/provisioning-templates",
        json{{"templateName", "fleet"}, {"templateBody", template_body().dump()}, {"enabled", true}}
            .dump());
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
  }

  // A device of its own: token folder, state file and work folder under the test's folder.
  DeviceSetup setup(const std::string& serial, pv::Method method, pv::Format format,
                    bool agent = false) {
    const fs::path home = dir_ / ("device-" + serial);
    fs::create_directories(home);
    DeviceSetup s;
    s.module_path = EDGEKIT_TOKEN_MODULE;
    s.state_file = (home / "provisioning.state").string();
    s.work_dir = home.string();
    s.port = broker_->tls_port();
    s.ca_file = ca_->cert_file();
    s.claim_client_id = "factory-" + serial;
    s.agent = agent;
    s.options.method = method;
    s.options.format = format;
    s.options.template_name = "fleet";
    s.options.parameters = {{"SerialNumber", serial}};
    s.options.reply_timeout = Duration{3000};
    s.options.attempts = 2;
    s.options.backoff = backoff::Policy{Duration{100}, Duration{1000}};
    s.options.subscribe_timeout = Duration{3000};
    return s;
  }

  json get(const std::string& path) {
    auto r = admin_get(path);
    if (!r || r->status != 200) return json();
    return json::parse(r->body, nullptr, false);
  }

  // fleetd's registry for a provisioned device: the thing exists with exactly one certificate,
  // the device's, ACTIVE, attached, under the template's policy (named by the SHA-256 of its
  // document) and nothing else.
  void expect_registered(const std::string& thing, const std::string& certificate_id) {
    const json t = get("/admin/v1/things/" + thing);
    ASSERT_TRUE(t.is_object()) << thing << " is not in the registry";
    EXPECT_EQ(t["certificates"], json::array({certificate_id})) << thing;
    const json c = get("/admin/v1/certificates/" + certificate_id);
    ASSERT_TRUE(c.is_object()) << certificate_id;
    EXPECT_EQ(c["status"], "ACTIVE");
    EXPECT_EQ(c["things"], json::array({thing}));
    ASSERT_EQ(c["policies"].size(), 1u) << c.dump();
    const std::string policy = c["policies"][0];
    EXPECT_EQ(policy.size(), 64u) << "a policy made from a document is named by its hash";
    const json p = get("/admin/v1/policies/" + policy);
    ASSERT_TRUE(p.is_object()) << policy;
    EXPECT_EQ(json::parse(p.value("policyDocument", "{}"), nullptr, false),
              json::parse(kThingPolicy));
  }

  // Every ACTIVE certificate but the claim's belongs to a thing, and every thing the template
  // made (dev-*) has exactly one ACTIVE certificate. Returns the number of dev-* things.
  std::size_t expect_registry_consistent() {
    std::vector<json> certs;
    std::string next;
    do {
      const json page =
          get("/admin/v1/certificates?limit=1000" + (next.empty() ? "" : "&next=" + next));
      if (!page.is_object()) {
        ADD_FAILURE() << "cannot list certificates";
        return 0;
      }
      for (const auto& c : page["items"]) certs.push_back(c);
      next = page.value("next", "");
    } while (!next.empty());
    for (const auto& c : certs) {
      const std::string id = c.value("certificateId", "");
      if (id == ids_["claim"] || c.value("status", "") != "ACTIVE") continue;
      const json d = get("/admin/v1/certificates/" + id);
      EXPECT_FALSE(d["things"].empty()) << "ACTIVE certificate " << id << " has no thing";
    }
    const json things = get("/admin/v1/things?limit=1000");
    std::size_t provisioned = 0;
    for (const auto& t : things["items"]) {
      const std::string name = t.value("thingName", "");
      if (name.rfind("dev-", 0) != 0) continue;
      ++provisioned;
      const json d = get("/admin/v1/things/" + name);
      int active = 0;
      for (const auto& id : d["certificates"]) {
        if (get("/admin/v1/certificates/" + id.get<std::string>()).value("status", "") ==
            "ACTIVE") {
          ++active;
        }
      }
      EXPECT_EQ(active, 1) << name << " has " << active << " ACTIVE certificates: " << d.dump();
    }
    return provisioned;
  }

  // In process: the factory step, then one boot, watched by a trusted subscriber on the thing's
  // topics (the publish is accepted and delivered).
  void provision_in_process(const std::string& serial, pv::Method method, pv::Format format,
                            bool agent) {
    DeviceSetup s = setup(serial, method, format, agent);
    s.module_path = testing::prepare_token_env(testing::TokenKind::Edgekit, s.work_dir,
                                               EDGEKIT_TOKEN_MODULE, "");
    ASSERT_EQ(install_claim(s, kSoPin, testing::read_text_file(issued("claim").key_file),
                            testing::read_text_file(issued("claim").cert_file)),
              "");
    const std::string thing = "dev-" + serial;
    Peer watcher;
    ASSERT_NO_FATAL_FAILURE(trusted(watcher, "watcher-" + serial));
    ASSERT_EQ(watcher.subscribe(thing + "/#"), ReasonCode::GrantedQoS1);

    const auto start = std::chrono::steady_clock::now();
    const BootReport r = boot(s);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    ASSERT_TRUE(r.ok) << r.error;
    RecordProperty("boot_ms", static_cast<int>(took.count()));
    EXPECT_TRUE(r.used_claim);
    EXPECT_FALSE(r.identity.already_provisioned);
    EXPECT_EQ(r.identity.thing_name, thing);
    EXPECT_EQ(r.identity.device_configuration,
              (std::vector<std::pair<std::string, std::string>>{{"Interval", "30"}}));
    EXPECT_EQ(r.device_objects, 3u) << "one key pair and one certificate";
    EXPECT_EQ(r.own_publish, static_cast<int>(ReasonCode::Success));
    EXPECT_EQ(r.foreign_publish, static_cast<int>(ReasonCode::NotAuthorized));
    watcher.pump(3s, 1);
    ASSERT_EQ(watcher.received.size(), 1u) << "the device's publish did not arrive";
    EXPECT_EQ(watcher.received[0].topic, thing + "/telemetry");
    ASSERT_NO_FATAL_FAILURE(expect_registered(thing, r.identity.certificate_id));

    // The claim credential is not used again: with the claim certificate revoked, the next boot
    // still connects as the thing and publishes, and asks fleetd nothing.
    auto revoked = admin_post("/admin/v1/certificates/" + ids_["claim"] + "/revoke");
    ASSERT_TRUE(revoked && revoked->status == 200) << (revoked ? revoked->body : "no answer");
    const std::size_t requests_before = fleetd_log_count("claim.");
    const BootReport again = boot(s);
    ASSERT_TRUE(again.ok) << again.error;
    EXPECT_TRUE(again.identity.already_provisioned);
    EXPECT_FALSE(again.used_claim);
    EXPECT_EQ(again.identity.certificate_id, r.identity.certificate_id);
    EXPECT_TRUE(accepted(again.own_publish)) << again.own_publish;
    EXPECT_EQ(again.device_objects, 3u);
    EXPECT_EQ(fleetd_log_count("claim."), requests_before) << "a provisioning request was made";
    std::cout << "[ measured ] " << format_name(format) << (agent ? " agent " : " client ")
              << (method == pv::Method::CreateKeysAndCertificate ? "keys" : "csr")
              << ": claim connect + provisioning + device reconnect + publish " << took.count()
              << " ms\n";
  }
};

// One device per flow, format and driver: both flows in both formats over the blocking client,
// and one of each flow over the agent.
struct Flow {
  const char* serial;
  pv::Method method;
  pv::Format format;
  bool agent;
};

void PrintTo(const Flow& f, std::ostream* os) { *os << "device " << f.serial; }

std::string flow_name(const ::testing::TestParamInfo<Flow>& p) {
  const Flow& f = p.param;
  return std::string(f.method == pv::Method::CreateKeysAndCertificate ? "Keys" : "Csr") +
         (f.format == pv::Format::Json ? "Json" : "Cbor") + (f.agent ? "Agent" : "Client");
}

class DeviceFlows : public DeviceProvisioning, public ::testing::WithParamInterface<Flow> {};

TEST_P(DeviceFlows, ProvisionsReconnectsAsItsThingAndNeverUsesTheClaimAgain) {
  const Flow f = GetParam();
  provision_in_process(f.serial, f.method, f.format, f.agent);
}

INSTANTIATE_TEST_SUITE_P(
    All, DeviceFlows,
    ::testing::Values(Flow{"1001", pv::Method::CreateCertificateFromCsr, pv::Format::Json, false},
                      Flow{"1002", pv::Method::CreateCertificateFromCsr, pv::Format::Cbor, false},
                      Flow{"1003", pv::Method::CreateKeysAndCertificate, pv::Format::Json, false},
                      Flow{"1004", pv::Method::CreateKeysAndCertificate, pv::Format::Cbor, false},
                      Flow{"1005", pv::Method::CreateCertificateFromCsr, pv::Format::Cbor, true},
                      Flow{"1006", pv::Method::CreateKeysAndCertificate, pv::Format::Json, true}),
    flow_name);

// ---- The device program, killed and booted again -------------------------------------------

struct CrashPoint {
  const char* name;
  const char* flag;
  int n;
};

// Every step of the flow: before and after each write of the state (Started,
// CertificateReceived, Registered), after each request went out without its reply, and when each
// reply arrived but was never read (the service did its work; the device never learnt of it).
constexpr CrashPoint kCrashPoints[] = {
    {"before Started", "--kill-before-save", 1},
    {"after Started", "--kill-after-save", 1},
    {"certificate request sent", "--kill-after-request", 1},
    {"certificate reply lost", "--kill-on-reply", 1},
    {"before CertificateReceived", "--kill-before-save", 2},
    {"after CertificateReceived", "--kill-after-save", 2},
    {"RegisterThing sent", "--kill-after-request", 2},
    {"RegisterThing reply lost", "--kill-on-reply", 2},
    {"before Registered", "--kill-before-save", 3},
    {"after Registered", "--kill-after-save", 3},
};

// A run of the device program: its pid, and where its report goes.
struct DeviceRun {
  pid_t pid = -1;
  std::string out;
};

class DeviceCrashes : public DeviceProvisioning {
 protected:
  // Starts one boot of the device program for `s` with `extra` arguments.
  DeviceRun start_device(const DeviceSetup& s, const std::vector<std::string>& extra,
                         bool factory) {
    std::vector<std::string> args{
        PROVISIONING_DEVICE,
        "--module",
        EDGEKIT_TOKEN_MODULE,
        "--token-dir",
        s.work_dir,
        "--state",
        s.state_file,
        "--work",
        s.work_dir,
        "--port",
        std::to_string(s.port),
        "--ca",
        s.ca_file,
        "--client-id",
        s.claim_client_id,
        "--method",
        s.options.method == pv::Method::CreateKeysAndCertificate ? "keys" : "csr",
        "--format",
        format_name(s.options.format),
        "--serial",
        s.options.parameters[0].second,
        "--attempts",
        std::to_string(s.options.attempts),
        "--reply-timeout-ms",
        std::to_string(s.options.reply_timeout.count())};
    if (factory) {
      for (const std::string& a :
           {std::string("--factory"), std::string("--claim-key"), issued("claim").key_file,
            std::string("--claim-cert"), issued("claim").cert_file}) {
        args.push_back(a);
      }
    }
    args.insert(args.end(), extra.begin(), extra.end());
    DeviceRun run;
    run.out = s.work_dir + "/boot-" + std::to_string(++boots_) + ".out";
    run.pid = spawn(std::move(args), run.out, "w", STDOUT_FILENO);
    return run;
  }

  // Waits (bounded) for a run; its report, and how it ended: "exit <n>" or "signal <n>".
  std::pair<BootReport, std::string> finish(DeviceRun& run, std::chrono::seconds limit = 20s) {
    const std::string how = testing::wait_child(run.pid, std::chrono::steady_clock::now() + limit);
    if (how == "hung") return {BootReport{}, how};
    return {from_text(testing::read_text_file(run.out)), how};
  }

  void crash_at_every_step(pv::Method method, pv::Format format, int base) {
    // All points at once (each its own device, serial and token), then every device booted again.
    std::vector<DeviceSetup> setups;
    std::vector<DeviceRun> runs;
    for (std::size_t i = 0; i < std::size(kCrashPoints); ++i) {
      setups.push_back(setup(std::to_string(base + static_cast<int>(i)), method, format));
      runs.push_back(start_device(setups.back(),
                                  {kCrashPoints[i].flag, std::to_string(kCrashPoints[i].n)}, true));
    }
    for (std::size_t i = 0; i < runs.size(); ++i) {
      auto [report, how] = finish(runs[i]);
      EXPECT_EQ(how, "signal 9") << kCrashPoints[i].name << ": the device did not die there; "
                                 << report.error;
    }
    for (std::size_t i = 0; i < setups.size(); ++i) runs[i] = start_device(setups[i], {}, false);
    for (std::size_t i = 0; i < runs.size(); ++i) {
      SCOPED_TRACE(kCrashPoints[i].name);
      auto [report, how] = finish(runs[i]);
      ASSERT_EQ(how, "exit 0") << report.error;
      EXPECT_EQ(report.identity.thing_name, "dev-" + setups[i].options.parameters[0].second);
      EXPECT_EQ(report.device_objects, 3u) << "exactly one identity in the token";
      EXPECT_TRUE(accepted(report.own_publish)) << report.own_publish;
      EXPECT_EQ(report.used_claim,
                std::string(kCrashPoints[i].flag) != "--kill-after-save" || kCrashPoints[i].n != 3)
          << "only a device that saved Registered is done with the claim";
      ASSERT_NO_FATAL_FAILURE(
          expect_registered(report.identity.thing_name, report.identity.certificate_id));
    }
    EXPECT_EQ(expect_registry_consistent(), std::size(kCrashPoints));
  }

  int boots_ = 0;
};

TEST_F(DeviceCrashes, KilledAtEveryStepOfTheCsrFlowAndBootedAgainEndsWithOneIdentity) {
  crash_at_every_step(pv::Method::CreateCertificateFromCsr, pv::Format::Json, 2000);
}

TEST_F(DeviceCrashes, KilledAtEveryStepOfTheKeysFlowAndBootedAgainEndsWithOneIdentity) {
  crash_at_every_step(pv::Method::CreateKeysAndCertificate, pv::Format::Cbor, 3000);
}

// ---- fleetd killed during a burst ----------------------------------------------------------

TEST_F(DeviceCrashes, FleetdKilledDuringABurstLeavesNoHalfProvisionedDeviceAndRetriesComplete) {
  constexpr int kDevices = 24;
  std::vector<DeviceSetup> setups;
  std::vector<DeviceRun> runs;
  for (int i = 0; i < kDevices; ++i) {
    DeviceSetup s =
        setup(std::to_string(4000 + i),
              i % 2 ? pv::Method::CreateKeysAndCertificate : pv::Method::CreateCertificateFromCsr,
              i % 3 ? pv::Format::Json : pv::Format::Cbor);
    // Long enough to ride out fleetd's restart on the same claim connection.
    s.options.attempts = 6;
    s.options.reply_timeout = Duration{2000};
    setups.push_back(s);
    runs.push_back(start_device(setups.back(), {}, true));
  }
  // Kill while the burst is under way: the first devices are registered, others have their
  // certificate or are asking for it, and RegisterThing requests are in flight.
  const auto end = std::chrono::steady_clock::now() + 20s;
  while (fleetd_log_count("claim.thing_registered") < 3 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(2ms);
  }
  const std::size_t created = fleetd_log_count("claim.certificate_created");
  const std::size_t registered = fleetd_log_count("claim.thing_registered");
  ASSERT_GE(registered, 3u) << "the burst did not get going";
  ASSERT_LT(registered, static_cast<std::size_t>(kDevices)) << "the burst ended before the kill";
  testing::stop_child(fleetd_, SIGKILL, 1s);
  std::cout << "[ measured ] fleetd killed after " << created << " certificates and " << registered
            << " registrations of " << kDevices << " devices\n";
  ASSERT_NO_FATAL_FAILURE(start_fleetd());

  // Devices whose boot failed while fleetd was away (a refused connection, retries used up) boot
  // again, as a device does; every one must end provisioned.
  int reboots = 0;
  std::vector<BootReport> reports(kDevices);
  for (int round = 0; round < 3; ++round) {
    std::vector<int> again;
    for (int i = 0; i < kDevices; ++i) {
      if (runs[static_cast<std::size_t>(i)].pid <= 0) continue;
      auto [report, how] = finish(runs[static_cast<std::size_t>(i)], 40s);
      runs[static_cast<std::size_t>(i)].pid = -1;
      if (how == "exit 0") {
        reports[static_cast<std::size_t>(i)] = report;
      } else {
        again.push_back(i);
      }
    }
    for (int i : again) {
      ++reboots;
      runs[static_cast<std::size_t>(i)] =
          start_device(setups[static_cast<std::size_t>(i)], {}, false);
    }
  }
  std::cout << "[ measured ] " << reboots << " device reboots after the kill; "
            << fleetd_log_count("claim.thing_register_repeated")
            << " RegisterThing repeats answered as the first\n";
  for (int i = 0; i < kDevices; ++i) {
    const BootReport& r = reports[static_cast<std::size_t>(i)];
    SCOPED_TRACE("device " + std::to_string(4000 + i));
    ASSERT_TRUE(r.ok) << "did not complete";
    EXPECT_EQ(r.device_objects, 3u);
    EXPECT_TRUE(accepted(r.own_publish)) << r.own_publish;
    ASSERT_NO_FATAL_FAILURE(expect_registered(r.identity.thing_name, r.identity.certificate_id));
  }
  EXPECT_EQ(expect_registry_consistent(), static_cast<std::size_t>(kDevices));

  // In the store itself: no ACTIVE certificate without a thing, no provisioned thing without a
  // certificate, nothing dangling.
  testing::stop_child(fleetd_, SIGTERM, 5s);
  auto db = open_sqlite({(dir_ / "state" / "fleetd.db").string()});
  ASSERT_TRUE(db) << db.error().message;
  auto store = Store::open(std::move(db.value()));
  ASSERT_TRUE(store) << store.error().message;
  const std::string claim = ids_["claim"];
  auto counts = store.value()->transact([&claim](Tx& t) -> Res<std::vector<std::int64_t>> {
    std::vector<std::int64_t> n;
    for (const std::string& q :
         {"SELECT COUNT(*) FROM certificates WHERE status = 'ACTIVE' AND id <> '" + claim +
              "' AND id NOT IN (SELECT certificate_id FROM thing_principals)",
          std::string("SELECT COUNT(*) FROM things WHERE name LIKE 'dev-%' AND name NOT IN "
                      "(SELECT thing_name FROM thing_principals)"),
          std::string("SELECT COUNT(*) FROM provisioning_results WHERE certificate_id NOT IN "
                      "(SELECT certificate_id FROM thing_principals)")}) {
      auto r = t.db().query(q);
      if (!r) return fail(r.error());
      n.push_back(r.value().front().integer(0));
    }
    auto fk = t.db().query("PRAGMA foreign_key_check");
    if (!fk) return fail(fk.error());
    n.push_back(static_cast<std::int64_t>(fk.value().size()));
    return n;
  });
  ASSERT_TRUE(counts) << counts.error().message;
  EXPECT_EQ(counts.value()[0], 0) << "ACTIVE certificates without a thing";
  EXPECT_EQ(counts.value()[1], 0) << "provisioned things without a certificate";
  EXPECT_EQ(counts.value()[2], 0) << "provisioning results whose certificate has no thing";
  EXPECT_EQ(counts.value()[3], 0) << "foreign key violations";
}

}  // namespace
}  // namespace edgekit::fleetd::test
