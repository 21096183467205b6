// A real AWS client, unmodified, against the secured broker: the AWS IoT Device SDK v2 for
// JavaScript (testing/node, its MQTT 3.1.1 and MQTT 5 clients) is driven line by line through
// testing/node/sdk_peer.js, and each assertion is on what the SDK itself reported, plus what a
// trusted observer on the broker saw.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgekit/json/json.hpp"
#include "edgekit/pki/pki.hpp"
#include "edgekit/testing/child_process.hpp"
#include "secured_broker.hpp"

namespace edgekit::fleetd::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// The SDK's reason codes as its mqtt5 client reports them (MQTT 5 section 3.9.3 / 3.4.2.1).
constexpr int kGrantedQoS1 = 1;
constexpr int kNotAuthorized = 135;
constexpr int kSuccess = 0;
// aws-c-mqtt's 3.1.1 client reports a SUBACK failure (0x80) as the granted QoS.
constexpr int kSubackFailure = 128;

// One node process running sdk_peer.js: commands out on its stdin, answers and events in.
class SdkPeer {
 public:
  explicit SdkPeer(std::string log_file) : log_file_(std::move(log_file)) {
    // A peer that died must fail the test, not kill it with SIGPIPE on the next command.
    ::signal(SIGPIPE, SIG_IGN);
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Killed with the test, so that no node process outlives a crashed test.
      if (!testing::die_with_parent(parent)) ::_exit(126);
      ::dup2(in[0], STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      // Only async-signal-safe calls between fork and exec.
      const int log = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (log >= 0) ::dup2(log, STDERR_FILENO);
      const char* argv[] = {"node", EDGEKIT_SDK_PEER, nullptr};
      ::execvp("node", const_cast<char* const*>(argv));
      constexpr char kNoNode[] =
          "cannot run node (is Node.js installed? scripts/install-deps node)\n";
      (void)!::write(STDERR_FILENO, kNoNode, sizeof kNoNode - 1);
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }

  ~SdkPeer() {
    if (to_ >= 0) ::close(to_);  // end of stdin: the peer disconnects and exits
    if (from_ >= 0) ::close(from_);
    testing::stop_child(pid_, SIGTERM, 5s);
  }
  SdkPeer(const SdkPeer&) = delete;
  SdkPeer& operator=(const SdkPeer&) = delete;

  // The peer is up when node started and the SDK (with aws-crt's native module) loaded.
  [[nodiscard]] bool wait_ready(std::chrono::milliseconds timeout) {
    return next_event("ready", "", timeout).has_value();
  }

  // Sends one command and returns its answer ({"ok": false, "error": "timeout"} if none came).
  json call(json cmd, std::chrono::milliseconds timeout = 20s) {
    const int id = ++last_id_;
    cmd["id"] = id;
    const std::string line = cmd.dump() + "\n";
    if (::write(to_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return json{{"ok", false}, {"error", "peer's stdin closed"}};
    }
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (true) {
      for (auto it = answers_.begin(); it != answers_.end(); ++it) {
        if ((*it)["id"] == id) {
          json r = *it;
          answers_.erase(it);
          return r;
        }
      }
      if (!read_some(end)) return json{{"ok", false}, {"error", "no answer in time"}};
    }
  }

  // The next unasked event of `type` (for "message": on `topic`), waiting up to `timeout`.
  std::optional<json> next_event(std::string_view type, std::string_view topic,
                                 std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (true) {
      for (auto it = events_.begin(); it != events_.end(); ++it) {
        if ((*it)["event"] == type && (topic.empty() || (*it)["topic"] == topic)) {
          json e = *it;
          events_.erase(it);
          return e;
        }
      }
      if (!read_some(end)) return std::nullopt;
    }
  }

  // Every message event received so far (kept for the caller to inspect).
  std::vector<std::string> message_topics() const {
    std::vector<std::string> topics;
    for (const auto& e : events_) {
      if (e["event"] == "message") topics.push_back(e["topic"]);
    }
    return topics;
  }

  std::string log() const { return testing::read_text_file(log_file_); }

 private:
  // Reads what the peer wrote until `end`; false when nothing more can come in time.
  bool read_some(std::chrono::steady_clock::time_point end) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0 || from_ < 0) return false;
    pollfd p{from_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    const ssize_t n = ::read(from_, buf, sizeof buf);
    if (n <= 0) return false;  // the peer exited
    pending_.append(buf, static_cast<std::size_t>(n));
    for (auto nl = pending_.find('\n'); nl != std::string::npos; nl = pending_.find('\n')) {
      json j = json::parse(pending_.substr(0, nl), nullptr, /*allow_exceptions=*/false);
      pending_.erase(0, nl + 1);
      if (j.is_discarded()) continue;
      (j.contains("event") ? events_ : answers_).push_back(std::move(j));
    }
    return true;
  }

  std::string log_file_;
  pid_t pid_ = -1;
  int to_ = -1;
  int from_ = -1;
  int last_id_ = 0;
  std::string pending_;
  std::deque<json> answers_;
  std::deque<json> events_;
};

// The fixture's broker and fleetd, with the SDK as device t1 speaking MQTT 3.1.1 (3) or 5 (5).
class SdkInterop : public SecuredBroker, public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    SecuredBroker::SetUp();
    if (HasFatalFailure()) return;
    sdk_ = std::make_unique<SdkPeer>((dir_ / "sdk_peer.log").string());
    // Loading node and aws-crt's native module takes about half a second; 30 s is a bound for a
    // loaded machine, not an expectation.
    ASSERT_TRUE(sdk_->wait_ready(30s))
        << "the AWS IoT Device SDK peer did not start (are testing/node's packages installed? "
           "scripts/install-deps node):\n"
        << sdk_->log();
  }

  void TearDown() override {
    if (HasFailure() && sdk_) std::cerr << "--- sdk peer log ---\n" << sdk_->log();
    sdk_.reset();
    SecuredBroker::TearDown();
  }

  int version() const { return GetParam(); }

  json connect(const char* cert, std::string_view client_id, std::string ca = {},
               int timeout_ms = 10000) {
    const auto& c = issued(cert);
    return connect_files(c.cert_file, c.key_file, client_id, std::move(ca), timeout_ms);
  }

  json connect_files(const std::string& cert_file, const std::string& key_file,
                     std::string_view client_id, std::string ca = {}, int timeout_ms = 10000) {
    // "localhost": the SDK verifies the broker's certificate against the CA and this name.
    return sdk_->call({{"op", "connect"},
                       {"version", version()},
                       {"host", "localhost"},
                       {"port", broker_->tls_port()},
                       {"ca", ca.empty() ? ca_->cert_file() : ca},
                       {"cert", cert_file},
                       {"key", key_file},
                       {"client_id", std::string(client_id)},
                       {"timeout_ms", timeout_ms}});
  }

  // What the SDK reported for one subscribe: the SUBACK code, the same way for both versions.
  int subscribe(std::string_view filter) {
    json r = sdk_->call({{"op", "subscribe"}, {"topic", std::string(filter)}, {"qos", 1}});
    EXPECT_TRUE(r["ok"].get<bool>()) << filter << ": " << r.dump();
    if (!r["ok"].get<bool>()) return -1;
    return version() == 5 ? r["reason_codes"][0].get<int>() : r["qos"].get<int>();
  }

  json publish(std::string_view topic, std::string_view payload) {
    json r = sdk_->call({{"op", "publish"},
                         {"topic", std::string(topic)},
                         {"payload", std::string(payload)},
                         {"qos", 1}});
    EXPECT_TRUE(r["ok"].get<bool>()) << topic << ": " << r.dump();
    return r;
  }

  std::unique_ptr<SdkPeer> sdk_;
};

TEST_P(SdkInterop, ConnectsOverMutualTlsWithMetricsInTheUserName) {
  json r = connect("t1", "t1");
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_FALSE(r["session_present"].get<bool>());
  // The SDK sent its metrics as the MQTT user name; with certificate authentication the broker
  // and fleetd ignore it, as AWS IoT does. Mosquitto logs the user name it was given.
  EXPECT_NE(broker_->log().find("u'?SDK="), std::string::npos) << broker_->log();
  EXPECT_TRUE(sdk_->call({{"op", "disconnect"}})["ok"].get<bool>());
  // The SDK did verify the broker: trusting another CA, it never completes the handshake with
  // the same broker. (This SDK version then neither closes the socket nor reports an error for
  // about 10 s, its TLS negotiation timeout: so the peer gives up after 2 s, and the broker's log
  // shows that no MQTT connection was made.)
  const auto connects = [&] {
    std::size_t n = 0;
    const std::string log = broker_->log();
    for (auto at = log.find(" as t1 ("); at != std::string::npos; at = log.find(" as t1 (", at + 1))
      ++n;
    return n;
  };
  ASSERT_EQ(connects(), 1u);
  json untrusted = connect("t1", "t1", foreign_->cert_file(), 2000);
  EXPECT_FALSE(untrusted["ok"].get<bool>()) << untrusted.dump();
  EXPECT_EQ(connects(), 1u) << broker_->log();
}

TEST_P(SdkInterop, PublishesAndSubscribesOnItsOwnThingsTopics) {
  ASSERT_TRUE(connect("t1", "t1")["ok"].get<bool>());
  EXPECT_EQ(subscribe("t1/#"), kGrantedQoS1);
  EXPECT_EQ(subscribe("$aws/things/t1/shadow/update"), kGrantedQoS1);
  Peer observer;
  trusted(observer, "observer");
  EXPECT_EQ(observer.subscribe("t1/telemetry"), ReasonCode::GrantedQoS1);

  json p = publish("t1/telemetry", "21.5");
  if (version() == 5) {
    EXPECT_EQ(p["reason_code"], kSuccess) << p.dump();
  }
  p = publish("$aws/things/t1/shadow/update", R"({"state":{"reported":{"on":true}}})");
  if (version() == 5) {
    EXPECT_EQ(p["reason_code"], kSuccess) << p.dump();
  }
  // Its own messages come back through its subscriptions...
  auto telemetry = sdk_->next_event("message", "t1/telemetry", 10s);
  ASSERT_TRUE(telemetry) << sdk_->log();
  EXPECT_EQ((*telemetry)["payload"], "21.5");
  auto shadow = sdk_->next_event("message", "$aws/things/t1/shadow/update", 10s);
  ASSERT_TRUE(shadow);
  EXPECT_EQ((*shadow)["payload"], R"({"state":{"reported":{"on":true}}})");
  // ...reach other subscribers...
  observer.pump(10s, 1);
  ASSERT_EQ(observer.received.size(), 1u);
  EXPECT_EQ(observer.received[0].payload, "21.5");
  // ...and what the cloud side sends to the thing reaches the SDK.
  EXPECT_EQ(observer.publish("t1/commands/reboot", "now"), ReasonCode::Success);
  auto command = sdk_->next_event("message", "t1/commands/reboot", 10s);
  ASSERT_TRUE(command);
  EXPECT_EQ((*command)["payload"], "now");
  EXPECT_TRUE(sdk_->call({{"op", "disconnect"}})["ok"].get<bool>());
}

TEST_P(SdkInterop, IsRefusedOnAnotherThingsTopics) {
  ASSERT_TRUE(connect("t1", "t1")["ok"].get<bool>());
  for (const char* filter : {"t2/#", "$aws/things/t2/shadow/update", "+/telemetry", "#",
                             "$aws/things/+/shadow/update", "$share/g/t2/#"}) {
    EXPECT_EQ(subscribe(filter), version() == 5 ? kNotAuthorized : kSubackFailure) << filter;
  }
  // A watcher of t2's topics (and of t1's sentinel, published last: one client's messages are
  // delivered in order, so once it is in, anything refused would have arrived before it).
  Peer observer;
  trusted(observer, "observer");
  for (const char* filter : {"t2/#", "$aws/things/t2/#", "t1/sentinel"}) {
    EXPECT_EQ(observer.subscribe(filter), ReasonCode::GrantedQoS1) << filter;
  }
  for (const char* topic : {"t2/telemetry", "$aws/things/t2/shadow/update"}) {
    json p = publish(topic, "forged");
    // MQTT 5 says so in the PUBACK; MQTT 3.1.1 has no way to, so the broker acknowledges and
    // drops it (as AWS IoT does for 3.1.1): the observer's view below is the proof.
    if (version() == 5) {
      EXPECT_EQ(p["reason_code"], kNotAuthorized) << topic << " " << p.dump();
    }
  }
  publish("t1/sentinel", "last");
  observer.pump(10s, 1);
  std::string seen;
  for (const auto& m : observer.received) seen += m.topic + " ";
  ASSERT_EQ(observer.received.size(), 1u) << "the watcher got: " << seen;
  EXPECT_EQ(observer.received[0].topic, "t1/sentinel") << "the watcher got: " << seen;
  // The connection is still good after the refusals (a refusal is not a disconnect).
  EXPECT_EQ(subscribe("t1/#"), kGrantedQoS1);
  EXPECT_FALSE(sdk_->next_event("disconnected", "", 0ms).has_value());
}

TEST_P(SdkInterop, CannotConnectWithAnotherThingsClientId) {
  json r = connect("t1", "t2");
  ASSERT_FALSE(r["ok"].get<bool>()) << r.dump();
  if (version() == 5) {
    EXPECT_EQ(r["reason_code"], kNotAuthorized) << r.dump();
  } else {
    // The SDK's 3.1.1 client closes the connection on a refusing CONNACK (return code 5) and
    // reports that as a protocol error; the broker's log below says it was the refusal.
    EXPECT_EQ(r["code"], "AWS_ERROR_MQTT_PROTOCOL_ERROR") << r.dump();
  }
  EXPECT_NE(broker_->log().find("not allowed to connect"), std::string::npos) << broker_->log();
  // With its own id the same certificate still gets in.
  json ok = connect("t1", "t1");
  EXPECT_TRUE(ok["ok"].get<bool>()) << ok.dump();
}

// AWS IoT Jobs through the SDK's own jobs client (IotJobsClientv2): it waits on
// NextJobExecutionChanged, starts the job, reports SUCCEEDED with the version it was given, and
// reads fleetd's rejection of a second report as AWS's document. Its request-response client
// subscribes to the reply topics, so each reply also matched its clientToken correlation.
TEST_P(SdkInterop, JobsClientRunsAJobFromNotifyNextToSucceeded) {
  ASSERT_TRUE(connect("t1", "t1")["ok"].get<bool>());
  auto jobs = [this](json cmd) {
    cmd["op"] = "jobs";
    cmd["thing"] = "t1";
    return sdk_->call(std::move(cmd));
  };
  json watching = jobs({{"call", "watch_next"}});
  ASSERT_TRUE(watching["ok"].get<bool>()) << watching.dump() << "\n" << sdk_->log();
  auto created = admin("POST", "/admin/v1/jobs",
                       json{{"jobId", "sdk-job"},
                            {"document", {{"operation", "install"}, {"version", "1.2"}}},
                            {"targets", {{"things", {"t1"}}}}}.dump());
  ASSERT_TRUE(created && created->status == 201) << (created ? created->body : "no answer");
  auto next = sdk_->next_event("next_job", "", 10s);
  ASSERT_TRUE(next) << sdk_->log();
  EXPECT_EQ((*next)["message"]["execution"]["jobId"], "sdk-job") << next->dump();
  EXPECT_EQ((*next)["message"]["execution"]["jobDocument"]["operation"], "install");
  EXPECT_EQ((*next)["message"]["execution"]["status"], "QUEUED");

  json pending = jobs({{"call", "get_pending"}});
  ASSERT_TRUE(pending["ok"].get<bool>()) << pending.dump();
  EXPECT_EQ(pending["response"]["queuedJobs"][0]["jobId"], "sdk-job") << pending.dump();
  json started = jobs({{"call", "start_next"}, {"status_details", {{"step", "download"}}}});
  ASSERT_TRUE(started["ok"].get<bool>()) << started.dump();
  const json& e = started["response"]["execution"];
  EXPECT_EQ(e["status"], "IN_PROGRESS") << started.dump();
  EXPECT_EQ(e["statusDetails"]["step"], "download");
  ASSERT_TRUE(e["versionNumber"].is_number()) << started.dump();
  json described = jobs({{"call", "describe"}, {"job_id", "sdk-job"}});
  ASSERT_TRUE(described["ok"].get<bool>()) << described.dump();
  EXPECT_EQ(described["response"]["execution"]["jobDocument"]["version"], "1.2");
  json done = jobs({{"call", "update"},
                    {"job_id", "sdk-job"},
                    {"status", "SUCCEEDED"},
                    {"expected_version", e["versionNumber"]}});
  ASSERT_TRUE(done["ok"].get<bool>()) << done.dump();
  EXPECT_EQ(done["response"]["executionState"]["status"], "SUCCEEDED") << done.dump();
  json again = jobs({{"call", "update"}, {"job_id", "sdk-job"}, {"status", "SUCCEEDED"}});
  ASSERT_FALSE(again["ok"].get<bool>()) << again.dump();
  EXPECT_EQ(again["modeled"]["code"], "InvalidStateTransition") << again.dump();
  // The queue emptied: the stream's last event has no execution.
  bool emptied = false;
  for (auto ev = sdk_->next_event("next_job", "", 10s); ev; ev = sdk_->next_event("next_job", "", 2s)) {
    if (!(*ev)["message"].contains("execution")) {
      emptied = true;
      break;
    }
  }
  EXPECT_TRUE(emptied) << sdk_->log();
  auto job = admin_get("/admin/v1/jobs/sdk-job");
  ASSERT_TRUE(job);
  EXPECT_EQ(json::parse(job->body)["status"], "COMPLETED");
}

// Fleet provisioning by claim through the SDK's own identity client (IotIdentityClientv2, JSON):
// the fixture's claim certificate, fleetd's CA, template "fleet"; then the device reconnects with
// what it got. Anything the SDK cannot read or match is a fleetd bug.
class SdkClaimInterop : public SdkInterop {
 protected:
  SdkClaimInterop() { own_ca_ = true; }

  void SetUp() override {
    SdkInterop::SetUp();
    if (HasFatalFailure()) return;
    const char* body = R"({"Parameters":{"SerialNumber":{"Type":"String"}},
      "Resources":{"thing":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":{"Fn::Join":["",["sdk-",{"Ref":"SerialNumber"}]]}}},
                   "certificate":{"Type":"AWS::IoT::Certificate","Properties":{"CertificateId":{"Ref":"AWS::IoT::Certificate::Id"},"Status":"ACTIVE"}}},
      "DeviceConfiguration":{"Mode":"sdk"}})";
    auto r = admin("POST", "/admin/v1/provisioning-templates",
                   json{{"templateName", "fleet"}, {"templateBody", body}, {"enabled", true}}.dump());
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
  }

  json identity(json cmd) {
    cmd["op"] = "identity";
    return sdk_->call(std::move(cmd));
  }

  // RegisterThing with the token, then a reconnect as the thing with `cert_pem` / `key_file`.
  void register_and_reconnect(const std::string& token, const std::string& cert_pem,
                              const std::string& key_file, const std::string& serial) {
    json reg = identity({{"call", "register_thing"},
                         {"template", "fleet"},
                         {"token", token},
                         {"parameters", {{"SerialNumber", serial}}}});
    ASSERT_TRUE(reg["ok"].get<bool>()) << reg.dump();
    EXPECT_EQ(reg["response"]["thingName"], "sdk-" + serial);
    EXPECT_EQ(reg["response"]["deviceConfiguration"], json({{"Mode", "sdk"}}));
    // A used token is refused, and the SDK reads the rejection as AWS's document.
    json again = identity({{"call", "register_thing"}, {"template", "fleet"}, {"token", token}});
    ASSERT_FALSE(again["ok"].get<bool>()) << again.dump();
    EXPECT_EQ(again["modeled"]["errorCode"], "InvalidCertificateOwnershipToken") << again.dump();
    EXPECT_EQ(again["modeled"]["statusCode"], 400) << again.dump();
    EXPECT_TRUE(sdk_->call({{"op", "disconnect"}})["ok"].get<bool>());

    const std::string cert_file = (dir_ / ("sdk-" + serial + ".crt")).string();
    std::ofstream(cert_file) << cert_pem;
    json r = connect_files(cert_file, key_file, "sdk-" + serial);
    ASSERT_TRUE(r["ok"].get<bool>()) << r.dump() << "\n" << broker_->log();
    EXPECT_EQ(subscribe("sdk-" + serial + "/#"), kGrantedQoS1);
    json p = publish("sdk-" + serial + "/telemetry", "1");
    if (version() == 5) {
      EXPECT_EQ(p["reason_code"], kSuccess) << p.dump();
    }
    auto echo = sdk_->next_event("message", "sdk-" + serial + "/telemetry", 10s);
    EXPECT_TRUE(echo) << sdk_->log();
    EXPECT_TRUE(sdk_->call({{"op", "disconnect"}})["ok"].get<bool>());
  }
};

TEST_P(SdkClaimInterop, CreatesKeysRegistersAThingAndReconnectsWithIt) {
  ASSERT_TRUE(connect("claim", "factory-sdk")["ok"].get<bool>());
  json created = identity({{"call", "create_keys"}});
  ASSERT_TRUE(created["ok"].get<bool>()) << created.dump() << "\n" << sdk_->log();
  const json& c = created["response"];
  for (const char* field : {"certificateId", "certificatePem", "privateKey", "certificateOwnershipToken"}) {
    EXPECT_TRUE(c.contains(field) && c[field].is_string()) << field << ": " << c.dump();
  }
  const std::string key_file = (dir_ / "sdk-keys.key").string();
  std::ofstream(key_file) << c.value("privateKey", "");
  ASSERT_NO_FATAL_FAILURE(register_and_reconnect(c.value("certificateOwnershipToken", ""),
                                                 c.value("certificatePem", ""), key_file,
                                                 "keys" + std::to_string(version())));
}

TEST_P(SdkClaimInterop, CreatesACertificateFromACsrRegistersAThingAndReconnectsWithIt) {
  ASSERT_TRUE(connect("claim", "factory-sdk")["ok"].get<bool>());
  auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
  ASSERT_TRUE(key);
  auto csr = pki::make_csr(*key, *pki::Name::parse("/CN=sdk-device"));
  ASSERT_TRUE(csr);
  json created = identity({{"call", "create_from_csr"}, {"csr", *csr}});
  ASSERT_TRUE(created["ok"].get<bool>()) << created.dump() << "\n" << sdk_->log();
  const json& c = created["response"];
  EXPECT_FALSE(c.contains("privateKey"));
  const std::string key_file = (dir_ / "sdk-csr.key").string();
  std::ofstream(key_file) << key->private_key_pem();
  ASSERT_NO_FATAL_FAILURE(register_and_reconnect(c.value("certificateOwnershipToken", ""),
                                                 c.value("certificatePem", ""), key_file,
                                                 "csr" + std::to_string(version())));
}

TEST_P(SdkClaimInterop, AnEmptyTokenIsRejectedAsAwsRejectsIt) {
  ASSERT_TRUE(connect("claim", "factory-sdk")["ok"].get<bool>());
  json r = identity({{"call", "register_thing"}, {"template", "fleet"}, {"token", ""}});
  ASSERT_FALSE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["modeled"]["statusCode"], 400) << r.dump();
  EXPECT_EQ(r["modeled"]["errorCode"], "InvalidCertificateOwnershipToken") << r.dump();
  EXPECT_EQ(r["modeled"]["errorMessage"], "Certificate ownership token cannot be empty.") << r.dump();
}

// Device Shadow through the SDK's own shadow client (IotShadowClientv2: it correlates replies by
// clientToken only, and reads every document with its own model), on a classic and a named
// shadow: get, update, the delta stream, a version conflict, delete. Anything the SDK cannot read
// or match is a fleetd bug.
TEST_P(SdkInterop, ShadowClientGetsUpdatesDeletesAndStreamsDeltas) {
  ASSERT_TRUE(fleetd_logged("broker.subscribed", 1, 10s));
  ASSERT_TRUE(connect("t1", "t1")["ok"].get<bool>());
  auto shadow = [this](json cmd, const char* name) {
    cmd["op"] = "shadow";
    cmd["thing"] = "t1";
    if (name != nullptr) cmd["shadow_name"] = name;
    return sdk_->call(std::move(cmd));
  };
  for (const char* name : {static_cast<const char*>(nullptr), "lamp"}) {
    SCOPED_TRACE(name ? name : "classic");
    json opened = shadow({{"call", "open_delta"}}, name);
    ASSERT_TRUE(opened["ok"].get<bool>()) << opened.dump();

    json missing = shadow({{"call", "get"}}, name);
    ASSERT_FALSE(missing["ok"].get<bool>()) << missing.dump();
    EXPECT_EQ(missing["modeled"]["code"], 404) << missing.dump();
    EXPECT_EQ(missing["modeled"]["message"],
              std::string("No shadow exists with name: '") + (name ? name : "t1") + "'");

    json up = shadow({{"call", "update"},
                      {"state", {{"desired", {{"on", true}}}, {"reported", {{"on", false}}}}}},
                     name);
    ASSERT_TRUE(up["ok"].get<bool>()) << up.dump();
    EXPECT_EQ(up["response"]["version"], 1);
    EXPECT_EQ(up["response"]["state"]["desired"]["on"], true);
    auto delta = sdk_->next_event("shadow_delta", "", 10s);
    ASSERT_TRUE(delta) << sdk_->log();
    EXPECT_EQ((*delta)["message"]["state"], json::parse(R"({"on":true})"));
    EXPECT_EQ((*delta)["message"]["version"], 1);

    json got = shadow({{"call", "get"}}, name);
    ASSERT_TRUE(got["ok"].get<bool>()) << got.dump();
    EXPECT_EQ(got["response"]["state"]["delta"], json::parse(R"({"on":true})"));
    EXPECT_EQ(got["response"]["state"]["reported"]["on"], false);
    EXPECT_EQ(got["response"]["version"], 1);

    json conflict = shadow({{"call", "update"},
                            {"state", {{"reported", {{"on", true}}}}},
                            {"version", 7}},
                           name);
    ASSERT_FALSE(conflict["ok"].get<bool>()) << conflict.dump();
    EXPECT_EQ(conflict["modeled"]["code"], 409);
    EXPECT_EQ(conflict["modeled"]["message"], "Version conflict");

    json caught_up = shadow({{"call", "update"}, {"state", {{"reported", {{"on", true}}}}},
                             {"version", 1}},
                            name);
    ASSERT_TRUE(caught_up["ok"].get<bool>()) << caught_up.dump();
    EXPECT_EQ(caught_up["response"]["version"], 2);

    json deleted = shadow({{"call", "delete"}}, name);
    ASSERT_TRUE(deleted["ok"].get<bool>()) << deleted.dump();
    EXPECT_EQ(deleted["response"]["version"], 2);
    json gone = shadow({{"call", "get"}}, name);
    EXPECT_FALSE(gone["ok"].get<bool>());
    EXPECT_EQ(gone["modeled"]["code"], 404);
  }
  EXPECT_FALSE(sdk_->next_event("shadow_delta_error", "", 0ms)) << sdk_->log();
}

INSTANTIATE_TEST_SUITE_P(Mqtt, SdkClaimInterop, ::testing::Values(3, 5),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return i.param == 5 ? std::string("V5") : std::string("V311");
                         });

INSTANTIATE_TEST_SUITE_P(Mqtt, SdkInterop, ::testing::Values(3, 5),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return i.param == 5 ? std::string("V5") : std::string("V311");
                         });

}  // namespace
}  // namespace edgekit::fleetd::test
