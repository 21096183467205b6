// Just-in-time registration and provisioning end to end: a real Mosquitto whose device listener
// trusts fleetd's broker CA folder (capath), edgekit's plugin sending the client certificate,
// fleetd registering (JITR) or provisioning (JITP) a certificate of a registered CA with
// auto-registration at its first connection, and the registration events on the broker.

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "edgekit/json/json.hpp"
#include "edgekit/testing/child_process.hpp"
#include "secured_broker.hpp"

namespace edgekit::fleetd::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// A JITP template as AWS's documentation shapes them: the thing is named after the subject's
// CN, carries its C (country), and gets a policy made from a document (one per distinct document).
const char* kJitpTemplate = R"({
  "Parameters": {
    "AWS::IoT::Certificate::CommonName": {"Type": "String"},
    "AWS::IoT::Certificate::Country": {"Type": "String"},
    "AWS::IoT::Certificate::Id": {"Type": "String"}
  },
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing", "Properties": {
      "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"},
      "AttributePayload": {"country": {"Ref": "AWS::IoT::Certificate::Country"}}}},
    "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
      "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}},
    "policy": {"Type": "AWS::IoT::Policy", "Properties": {
      "PolicyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}\"},{\"Effect\":\"Allow\",\"Action\":[\"iot:Publish\",\"iot:Receive\"],\"Resource\":\"arn:aws:iot:*:*:topic/${iot:Connection.Thing.ThingName}/*\"},{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\",\"Resource\":\"arn:aws:iot:*:*:topicfilter/${iot:Connection.Thing.ThingName}/*\"}]}"}}
  }
})";

class Jit : public SecuredBroker {
 protected:
  Jit() { broker_capath_ = true; }

  // An external CA (the customer's own), registered ACTIVE with auto-registration and, when
  // `template_name` is given, that JITP template; waits until fleetd has written it into the
  // broker's CA folder.
  void register_jit_ca(const std::string& name, bool auto_registration,
                       const std::string& template_name = "") {
    jit_ca_ = std::make_unique<testing::TestCa>(pki_, name);
    ASSERT_TRUE(jit_ca_->ok()) << jit_ca_->error();
    const CertFacts ca = facts_of(jit_ca_->cert_file());
    jit_ca_id_ = ca.id;
    if (!template_name.empty()) {
      json t{{"templateName", template_name},
             {"templateBody", kJitpTemplate},
             {"type", "JITP"},
             {"enabled", true}};
      auto r = admin("POST", "/admin/v1/provisioning-templates", t.dump());
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 201) << r->body;
    }
    const std::size_t written = fleetd_log_count("ca.broker_trust_written");
    json body{{"caCertificatePem", ca.pem},
              {"status", "ACTIVE"},
              {"autoRegistration", auto_registration}};
    if (!template_name.empty()) body["registrationTemplate"] = template_name;
    auto r = admin("POST", "/admin/v1/cas", body.dump());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
    ASSERT_TRUE(fleetd_logged("ca.broker_trust_written", written + 1, 5s));
  }

  testing::Issued jit_device(const std::string& cn, const std::string& country = "") {
    testing::CertOptions o;
    o.common_name = cn;
    if (!country.empty()) o.subject_fields = {{"C", country}};
    return jit_ca_->issue("jit-" + cn, o);
  }

  mqtt::Result<mqtt::ConnAck> connect(Peer& p, const testing::Issued& cert, const std::string& id) {
    return p.connect_tls(broker_->tls_port(), ca_->cert_file(), cert, id);
  }

  // A trusted watcher of the registration events.
  void watch(Peer& w) {
    ASSERT_NO_FATAL_FAILURE(trusted(w, "jit-watcher"));
    EXPECT_EQ(w.subscribe("$aws/events/certificates/registered/#"), ReasonCode::GrantedQoS1);
  }

  void expect_event(const Peer::Message& m, const std::string& cert_id, const char* status) {
    EXPECT_EQ(m.topic, "$aws/events/certificates/registered/" + jit_ca_id_);
    auto j = json::parse(m.payload, nullptr, false);
    ASSERT_TRUE(j.is_object()) << m.payload;
    EXPECT_EQ(j.value("certificateId", ""), cert_id);
    EXPECT_EQ(j.value("caCertificateId", ""), jit_ca_id_);
    EXPECT_EQ(j.value("certificateStatus", ""), status);
    EXPECT_EQ(j.value("awsAccountId", ""), "000000000000");
    ASSERT_TRUE(j.contains("timestamp") && j["timestamp"].is_number_integer()) << m.payload;
    ASSERT_TRUE(j.contains("certificateRegistrationTimestamp") &&
                j["certificateRegistrationTimestamp"].is_number_integer())
        << m.payload;
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    EXPECT_LE(std::abs(j["timestamp"].get<std::int64_t>() - now_ms), 60'000);
    EXPECT_LE(j["certificateRegistrationTimestamp"].get<std::int64_t>(),
              j["timestamp"].get<std::int64_t>());
  }

  int status_of(const std::string& path) {
    auto r = admin("GET", path);
    return r ? r->status : -1;
  }

  std::unique_ptr<testing::TestCa> jit_ca_;
  std::string jit_ca_id_;
};

TEST_F(Jit, JitpAdmitsTheFirstConnectionAndTheDeviceWorksOnItsThingsTopics) {
  ASSERT_NO_FATAL_FAILURE(register_jit_ca("acme-ca", true, "jitp"));
  Peer watcher;
  ASSERT_NO_FATAL_FAILURE(watch(watcher));
  const testing::Issued cert = jit_device("jdev-1", "DE");
  const std::string id = facts_of(cert.cert_file).id;

  Peer device;
  const auto start = std::chrono::steady_clock::now();
  auto c = connect(device, cert, "jdev-1");
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  ASSERT_TRUE(c) << mqtt::to_string(c.error());
  std::cout << "[ measured ] JITP first connect (TLS + register + provision + decide): "
            << took.count() << " ms\n";
  EXPECT_EQ(device.subscribe("jdev-1/#"), ReasonCode::GrantedQoS1);
  EXPECT_EQ(device.publish("jdev-1/telemetry", "21.5"), ReasonCode::Success);
  device.pump(2s, 1);
  ASSERT_EQ(device.received.size(), 1u);
  EXPECT_EQ(device.received[0].topic, "jdev-1/telemetry");
  // Its policy is the template's: nothing of another thing.
  EXPECT_EQ(device.subscribe("t1/#"), ReasonCode::NotAuthorized);

  watcher.pump(3s, 1);
  ASSERT_EQ(watcher.received.size(), 1u);
  expect_event(watcher.received[0], id, "ACTIVE");

  // The registry: the thing with its attribute, the certificate ACTIVE under the CA, attached.
  auto thing = admin("GET", "/admin/v1/things/jdev-1");
  ASSERT_TRUE(thing);
  ASSERT_EQ(thing->status, 200) << thing->body;
  EXPECT_NE(thing->body.find("\"country\":\"DE\""), std::string::npos) << thing->body;
  auto certificate = admin("GET", "/admin/v1/certificates/" + id);
  ASSERT_TRUE(certificate);
  EXPECT_NE(certificate->body.find("ACTIVE"), std::string::npos) << certificate->body;
  EXPECT_NE(certificate->body.find(jit_ca_id_), std::string::npos) << certificate->body;
  EXPECT_TRUE(fleetd_logged("provisioned just in time", 1, 1s));

  // The next connection is an ordinary one: no new registration, no event.
  ASSERT_TRUE(device.client().disconnect());
  Peer again;
  const auto again_start = std::chrono::steady_clock::now();
  ASSERT_TRUE(connect(again, cert, "jdev-1"));
  std::cout << "[ measured ] the same device's next connect (registered): "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - again_start)
                   .count()
            << " ms\n";
  watcher.pump(500ms, 2);
  EXPECT_EQ(watcher.received.size(), 1u);
}

TEST_F(Jit, JitpRefusesASubjectLackingATemplateParameterAndKeepsNothing) {
  ASSERT_NO_FATAL_FAILURE(register_jit_ca("acme-ca", true, "jitp"));
  const testing::Issued cert = jit_device("jdev-2");  // no C in the subject
  const std::string id = facts_of(cert.cert_file).id;
  Peer device;
  auto c = connect(device, cert, "jdev-2");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), mqtt::Errc::ConnectionRefused);
  EXPECT_EQ(device.client().server_reason(), ReasonCode::NotAuthorized);
  EXPECT_TRUE(
      fleetd_logged("Cannot resolve reference value: AWS::IoT::Certificate::Country", 1, 2s));
  // Rolled back whole: neither the certificate nor the thing exists.
  EXPECT_EQ(status_of("/admin/v1/certificates/" + id), 404);
  EXPECT_EQ(status_of("/admin/v1/things/jdev-2"), 404);
}

TEST_F(Jit, CertificatesOfUnregisteredOrNonAutoRegisteringCasAreRefused) {
  {
    // A CA the broker does not trust: the handshake itself fails.
    testing::TestCa stranger(pki_, "stranger");
    ASSERT_TRUE(stranger.ok());
    testing::CertOptions o;
    o.common_name = "jdev-3";
    o.subject_fields = {{"C", "DE"}};
    const testing::Issued cert = stranger.issue("stranger-dev", o);
    Peer p;
    EXPECT_FALSE(connect(p, cert, "jdev-3"));
  }
  // A registered CA without auto-registration: trusted for TLS, refused by fleetd.
  ASSERT_NO_FATAL_FAILURE(register_jit_ca("manual-ca", false));
  const testing::Issued cert = jit_device("jdev-4", "DE");
  Peer p;
  auto c = connect(p, cert, "jdev-4");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), mqtt::Errc::ConnectionRefused);
  EXPECT_TRUE(fleetd_logged("no ACTIVE registered CA with auto-registration issued it", 1, 2s));
  EXPECT_EQ(status_of("/admin/v1/certificates/" + facts_of(cert.cert_file).id), 404);
}

TEST_F(Jit, JitrRegistersPendingPublishesRefusesAndAdmitsOnceActivated) {
  ASSERT_NO_FATAL_FAILURE(register_jit_ca("jitr-ca", true));
  Peer watcher;
  ASSERT_NO_FATAL_FAILURE(watch(watcher));
  const testing::Issued cert = jit_device("jdev-5");
  const std::string id = facts_of(cert.cert_file).id;
  for (int attempt = 1; attempt <= 2; ++attempt) {
    Peer p;
    auto c = connect(p, cert, "jdev-5");
    ASSERT_FALSE(c) << attempt;
    EXPECT_EQ(c.error(), mqtt::Errc::ConnectionRefused);
    // The event at registration, and again when the still-pending certificate comes back.
    watcher.pump(3s, static_cast<std::size_t>(attempt));
    ASSERT_EQ(watcher.received.size(), static_cast<std::size_t>(attempt));
    expect_event(watcher.received.back(), id, "PENDING_ACTIVATION");
  }
  auto described = admin("GET", "/admin/v1/certificates/" + id);
  ASSERT_TRUE(described);
  EXPECT_NE(described->body.find("PENDING_ACTIVATION"), std::string::npos) << described->body;

  // The operator (AWS: the customer's rule + Lambda) activates it and gives it a thing.
  auto a = admin("POST", "/admin/v1/certificates/" + id + "/activate");
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, 200) << a->body;
  auto t = admin("POST", "/admin/v1/things", R"({"thingName":"jdev-5"})");
  ASSERT_TRUE(t);
  ASSERT_EQ(t->status, 201) << t->body;
  auto at = admin("PUT", "/admin/v1/things/jdev-5/certificates/" + id);
  ASSERT_TRUE(at);
  ASSERT_LT(at->status, 300) << at->body;

  Peer p;
  auto c = connect(p, cert, "jdev-5");
  ASSERT_TRUE(c) << mqtt::to_string(c.error());
  EXPECT_EQ(p.subscribe("jdev-5/#"), ReasonCode::GrantedQoS1);
  EXPECT_EQ(p.publish("jdev-5/telemetry", "1"), ReasonCode::Success);
  // An ACTIVE certificate brings no event.
  watcher.pump(500ms, 3);
  EXPECT_EQ(watcher.received.size(), 2u);
}

// The whole operator flow with the command line: a CA of one's own (`edgekit fleet external-ca`),
// a JITP template and the CA registered with auto-registration (`edgekit fleet templates` /
// `cas`), a device certificate issued by that CA — and the device's first connection provisions
// it.
TEST_F(Jit, JitpWithTheCommandLinesExternalCa) {
  const std::string cli = "EDGEKIT_FLEET_TOKEN_FILE=" + (dir_ / "state" / "admin.token").string() +
                          " " + EDGEKIT_CLI +
                          " fleet --url http://127.0.0.1:" + std::to_string(admin_port_) + " ";
  const std::string ca_dir = (dir_ / "acme").string();
  auto created = testing::run_command(cli + "external-ca create --dir " + ca_dir +
                                      " --subject '/CN=Acme devices/O=Acme'");
  ASSERT_EQ(created.code, 0) << created.out;
  std::ofstream(dir_ / "jitp.json") << kJitpTemplate;
  auto tmpl = testing::run_command(cli + "templates create jitp --type JITP --enabled --body " +
                                   (dir_ / "jitp.json").string());
  ASSERT_EQ(tmpl.code, 0) << tmpl.out;
  const std::size_t written = fleetd_log_count("ca.broker_trust_written");
  auto reg = testing::run_command(cli +
                                  "cas register --active --auto-registration --template jitp"
                                  " --pem " +
                                  ca_dir + "/ca.crt");
  ASSERT_EQ(reg.code, 0) << reg.out;
  ASSERT_TRUE(fleetd_logged("ca.broker_trust_written", written + 1, 5s));
  testing::Issued cert{(dir_ / "s9.crt").string(), (dir_ / "s9.key").string(), 0};
  auto issued =
      testing::run_command(cli + "external-ca issue --dir " + ca_dir + " --new-key " +
                           cert.key_file + " --subject /CN=sensor-9/C=DE --out " + cert.cert_file);
  ASSERT_EQ(issued.code, 0) << issued.out;

  Peer device;
  auto c = connect(device, cert, "sensor-9");
  ASSERT_TRUE(c) << mqtt::to_string(c.error());
  EXPECT_EQ(device.subscribe("sensor-9/#"), ReasonCode::GrantedQoS1);
  EXPECT_EQ(device.publish("sensor-9/telemetry", "7"), ReasonCode::Success);
  auto thing = admin("GET", "/admin/v1/things/sensor-9");
  ASSERT_TRUE(thing);
  EXPECT_NE(thing->body.find("\"country\":\"DE\""), std::string::npos) << thing->body;
}

// What fleetd's broker-cas folder relies on, pinned against the installed Mosquitto (2.0.11
// here): a CA added to `capath` is trusted at the next handshake without a reload; a CA appended
// to `cafile` is not, even after SIGHUP; a CA removed from `capath` stays trusted until restart.
// If a Mosquitto upgrade changes one of these, this test says which, and docs/fleetd.md's
// "Mosquitto 2.0.11 and CA trust" must change with it.
class MosquittoCaTrust : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("edgekit-catrust-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "capath");
    for (const char* n : {"server-ca", "ca2", "ca3"}) {
      cas_[n] = std::make_unique<testing::TestCa>(dir_.string(), n);
      ASSERT_TRUE(cas_[n]->ok()) << cas_[n]->error();
    }
    testing::CertOptions server;
    server.server = true;
    server.common_name = "localhost";
    server.dns_names = {"localhost"};
    server_ = cas_["server-ca"]->issue("server", server);
    for (const char* n : {"ca2", "ca3"}) {
      testing::CertOptions o;
      o.common_name = std::string("dev-") + n;
      devices_[n] = cas_[n]->issue(o.common_name, o);
    }
    cafile_ = (dir_ / "cafile.pem").string();
    std::filesystem::copy_file(cas_["server-ca"]->cert_file(), cafile_);
    testing::MosquittoOptions o;
    o.allow_anonymous = true;
    testing::MosquittoOptions::TlsListener t;
    t.cafile = cafile_;
    t.capath = (dir_ / "capath").string();
    t.certfile = server_.cert_file;
    t.keyfile = server_.key_file;
    t.require_certificate = true;
    o.tls = t;
    broker_ = std::make_unique<testing::Mosquitto>(o);
    ASSERT_TRUE(broker_->start()) << broker_->error();
  }
  void TearDown() override {
    broker_.reset();
    std::filesystem::remove_all(dir_);
  }
  bool admitted(const char* ca) {
    Peer p;
    return static_cast<bool>(p.connect_tls(broker_->tls_port(), cas_["server-ca"]->cert_file(),
                                           devices_[ca], std::string("dev-") + ca));
  }
  std::string hashed_name(const char* ca) {
    FILE* f = std::fopen(cas_[ca]->cert_file().c_str(), "r");
    X509* x = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
    if (f) std::fclose(f);
    char buf[16] = {};
    if (x) std::snprintf(buf, sizeof buf, "%08lx.0", X509_subject_name_hash(x));
    X509_free(x);
    return buf;
  }

  std::filesystem::path dir_;
  std::map<std::string, std::unique_ptr<testing::TestCa>> cas_;
  std::map<std::string, testing::Issued> devices_;
  testing::Issued server_;
  std::string cafile_;
  std::unique_ptr<testing::Mosquitto> broker_;
};

TEST_F(MosquittoCaTrust, CapathIsReadAtEachHandshakeCafileOnlyAtStart) {
  EXPECT_FALSE(admitted("ca2"));
  EXPECT_FALSE(admitted("ca3"));
  // Added to the folder: trusted from the next handshake, no reload (and the failed lookup
  // just before was not remembered).
  const auto in_folder = dir_ / "capath" / hashed_name("ca2");
  std::filesystem::copy_file(cas_["ca2"]->cert_file(), in_folder);
  EXPECT_TRUE(admitted("ca2")) << "a CA added to capath was not trusted without a reload";
  // Appended to the cafile, then SIGHUP: still refused.
  std::ofstream(cafile_, std::ios::app) << testing::read_text_file(cas_["ca3"]->cert_file());
  ASSERT_EQ(::kill(broker_->pid(), SIGHUP), 0);
  for (int i = 0; i < 100 && broker_->log().find("Reloading config") == std::string::npos; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(broker_->log().find("Reloading config"), std::string::npos) << broker_->log();
  EXPECT_FALSE(admitted("ca3")) << "this Mosquitto reloads cafile on SIGHUP: docs/fleetd.md's "
                                   "limit can be relaxed";
  // Removed from the folder: still trusted (OpenSSL's store keeps what it loaded).
  std::filesystem::remove(in_folder);
  EXPECT_TRUE(admitted("ca2")) << "a CA removed from capath is no longer trusted without restart";
  // A restart reads both afresh.
  ASSERT_TRUE(broker_->restart()) << broker_->error();
  EXPECT_FALSE(admitted("ca2"));
  EXPECT_TRUE(admitted("ca3"));
}

// With fleetd's own CA the broker folder holds its root and issuing CA too (they are registered
// CA records), so `capath` alone serves fleetd's devices and the registered external CAs.
class JitOwnCa : public Jit {
 protected:
  JitOwnCa() { own_ca_ = true; }
};

TEST_F(JitOwnCa, TheBrokerFolderHoldsFleetdsOwnChainAndTheRegisteredCas) {
  ASSERT_TRUE(fleetd_logged("ca.broker_trust_written", 1, 5s));
  std::set<std::string> in_folder;
  for (const auto& e : std::filesystem::directory_iterator(dir_ / "state" / "broker-cas")) {
    in_folder.insert(testing::read_text_file(e.path().string()));
  }
  const std::string ca_dir = (dir_ / "state" / "ca").string();
  EXPECT_EQ(in_folder.size(), 3u);  // the test CA, fleetd's root and issuing CA
  EXPECT_EQ(in_folder.count(facts_of(ca_dir + "/root.pem").pem), 1u);
  EXPECT_EQ(in_folder.count(facts_of(ca_dir + "/issuing.pem").pem), 1u);
  EXPECT_EQ(in_folder.count(facts_of(ca_->cert_file()).pem), 1u);
  // A CA registered later is added; deactivated, it is removed from the folder.
  ASSERT_NO_FATAL_FAILURE(register_jit_ca("later-ca", true));
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator(dir_ / "state" / "broker-cas")) {
    ++files;
  }
  EXPECT_EQ(files, 4u);
  const std::size_t written = fleetd_log_count("ca.broker_trust_written");
  auto d = admin("POST", "/admin/v1/cas/" + jit_ca_id_ + "/deactivate");
  ASSERT_TRUE(d);
  ASSERT_EQ(d->status, 200) << d->body;
  ASSERT_TRUE(fleetd_logged("ca.broker_trust_written", written + 1, 5s));
  EXPECT_TRUE(fleetd_logged("cas=3", 2, 1s));
}

}  // namespace
}  // namespace edgekit::fleetd::test
