// `edgekit fleet` driving a running fleetd over its admin API: tables for people, --json for
// scripts, the API's errors passed on with their exit codes, and the token taken from the
// environment or a file (never from a flag).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "edgekit/json/json.hpp"
#include "edgekit/testing/child_process.hpp"
#include "edgekit/testing/test_pki.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
namespace testing_ = edgekit::testing;

using CliRun = testing_::CommandRun;

class FleetCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgekit-fleet-cli-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "state");
    fs::create_directories(dir_ / "pki");
    const std::string log = (dir_ / "fleetd.log").string();
    // fleetd's own CA, as an operator makes it: a token initialised with `edgekit token init`
    // (edgekit's module, the copy beside each binary), the PIN in a 0600 file, and fleetd
    // creating the CA at its first start.
    ::setenv("EDGEKIT_TOKEN_DIR", (dir_ / "ca-token").string().c_str(), 1);
    ::setenv("EDGEKIT_TOKEN_PBKDF2_ITERATIONS", "2000", 1);  // fast logins in tests
    auto init = edgekit("token init --label fleetd-ca --so-pin 87654321 --pin 1234");
    ASSERT_EQ(init.code, 0) << init.out;
    const std::string pin = write("ca.pin", "1234\n");
    fs::permissions(pin, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    // No broker: fleetd keeps retrying its link in the background; the admin API works anyway.
    const std::string broker_port = std::to_string(testing_::free_loopback_port());
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      if (!testing_::die_with_parent(parent)) ::_exit(126);  // a crashed test takes fleetd along
      FILE* f = std::fopen(log.c_str(), "a");
      if (f) ::dup2(fileno(f), STDERR_FILENO);
      const std::string state = (dir_ / "state").string();
      ::execl(FLEETD_BINARY, FLEETD_BINARY, "--state-dir", state.c_str(), "--broker-port",
              broker_port.c_str(), "--hooks-port", "0", "--admin-port", "0", "--log-format",
              "text", "--reconnect-base-ms", "1000", "--ca-pin-file", pin.c_str(),
              "--ca-create-if-missing", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < end &&
           testing_::read_text_file(log).find("admin.listening") == std::string::npos) {
      std::this_thread::sleep_for(20ms);
    }
    const std::string port = testing_::read_text_file((dir_ / "state" / "admin.port").string());
    ASSERT_FALSE(port.empty()) << testing_::read_text_file(log);
    url_ = "http://127.0.0.1:" + port.substr(0, port.find('\n'));
    token_file_ = (dir_ / "state" / "admin.token").string();
    EXPECT_EQ(fs::status(token_file_).permissions() & fs::perms::group_all, fs::perms::none);
    EXPECT_EQ(fs::status(token_file_).permissions() & fs::perms::others_all, fs::perms::none);
    ::setenv("EDGEKIT_FLEET_URL", url_.c_str(), 1);
    ::setenv("EDGEKIT_FLEET_TOKEN_FILE", token_file_.c_str(), 1);
    ::unsetenv("EDGEKIT_FLEET_TOKEN");
  }

  void TearDown() override {
    testing_::stop_child(pid_, SIGTERM, 5s);
    if (HasFailure()) std::cerr << testing_::read_text_file((dir_ / "fleetd.log").string());
    fs::remove_all(dir_);
  }

  CliRun edgekit(const std::string& args) {
    return testing_::run_command(std::string(EDGEKIT_CLI) + " " + args);
  }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  fs::path dir_;
  pid_t pid_ = -1;
  std::string url_;
  std::string token_file_;
};

// fleetd's own CA from the command line: a device key made in its token with `edgekit token`,
// its CSR turned into a certificate attached to its thing, checked by openssl against the chain
// `ca show` prints, then revoked and refused by openssl with the CRL `ca crl` prints.
TEST_F(FleetCli, IssuesFromADeviceCsrAndPrintsTheCaAndItsCrl) {
  ::setenv("EDGEKIT_TOKEN_DIR", (dir_ / "device-token").string().c_str(), 1);
  ASSERT_EQ(edgekit("token init --label device --so-pin 87654321 --pin 1234").code, 0);
  ASSERT_EQ(edgekit("token keygen --label device --key-label tls --pin 1234").code, 0);
  const std::string csr = (dir_ / "device.csr").string();
  const std::string crt = (dir_ / "device.crt").string();
  auto made = edgekit("token csr --label device --key-label tls --subject /CN=sensor-1 --pin 1234 "
                      "--out " + csr);
  ASSERT_EQ(made.code, 0) << made.out;
  ASSERT_EQ(edgekit("fleet things create sensor-1").code, 0);

  auto issued = edgekit("fleet certificates create-from-csr --csr " + csr +
                        " --active --thing sensor-1 --days 30 --out " + crt);
  ASSERT_EQ(issued.code, 0) << issued.out;
  EXPECT_NE(issued.out.find("ACTIVE"), std::string::npos) << issued.out;
  EXPECT_EQ(issued.out.find("BEGIN CERTIFICATE"), std::string::npos) << "the PEM went to --out";
  EXPECT_NE(testing_::read_text_file(crt).find("BEGIN CERTIFICATE"), std::string::npos);
  const auto at = issued.out.find("certificateId:");
  ASSERT_NE(at, std::string::npos) << issued.out;
  const std::string id = issued.out.substr(issued.out.find_first_not_of(' ', at + 14), 64);
  ASSERT_EQ(id.size(), 64u) << issued.out;
  auto thing = edgekit("fleet --json things describe sensor-1");
  EXPECT_EQ(json::parse(thing.out, nullptr, false)["certificates"], json::array({id})) << thing.out;

  auto show = edgekit("fleet ca show");
  ASSERT_EQ(show.code, 0) << show.out;
  const std::string cas = write("cas.pem", show.out);
  auto verify = [&](const std::string& more) {
    const std::string cmd = "openssl verify " + more + " -CAfile " + cas + " " + crt + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[512];
    while (p && std::fgets(buf, sizeof buf, p)) out += buf;
    const int status = p ? ::pclose(p) : -1;
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
  };
  auto ok = verify("-purpose sslclient");
  EXPECT_EQ(ok.first, 0) << ok.second;

  ASSERT_EQ(edgekit("fleet certificates revoke " + id).code, 0);
  auto crl = edgekit("fleet ca crl");
  ASSERT_EQ(crl.code, 0) << crl.out;
  EXPECT_EQ(crl.out.rfind("-----BEGIN X509 CRL-----", 0), 0u) << crl.out;
  auto refused = verify("-crl_check -CRLfile " + write("crl.pem", crl.out));
  EXPECT_NE(refused.first, 0) << refused.second;
  EXPECT_NE(refused.second.find("revoked"), std::string::npos) << refused.second;
  auto js = edgekit("fleet --json ca crl");
  EXPECT_EQ(json::parse(js.out, nullptr, false)["revokedSerials"].size(), 1u) << js.out;

  auto bad = edgekit("fleet certificates create-from-csr --csr " + write("junk.csr", "junk"));
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find("certificateSigningRequest"), std::string::npos) << bad.out;
  EXPECT_EQ(edgekit("fleet certificates create-from-csr --csr /no/such/file").code, 2);
}

TEST_F(FleetCli, ManagesThingsWithTablesAndJson) {
  auto c = edgekit("fleet things create sensor-1 --type sensor --attr site=lab --attr floor=2");
  ASSERT_EQ(c.code, 0) << c.out;
  EXPECT_NE(c.out.find("thingName:"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("sensor-1"), std::string::npos);
  ASSERT_EQ(edgekit("fleet things create sensor-2").code, 0);
  auto table = edgekit("fleet things list");
  ASSERT_EQ(table.code, 0) << table.out;
  EXPECT_EQ(table.out.rfind("NAME", 0), 0u) << table.out;
  EXPECT_NE(table.out.find("sensor-1  sensor"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("floor=2,site=lab"), std::string::npos) << table.out;
  auto js = edgekit("fleet --json things list");
  ASSERT_EQ(js.code, 0) << js.out;
  auto j = json::parse(js.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << js.out;
  ASSERT_EQ(j["items"].size(), 2u);
  EXPECT_EQ(j["items"][0]["thingName"], "sensor-1");
  auto d = edgekit("fleet things describe sensor-1 --json");
  EXPECT_EQ(json::parse(d.out, nullptr, false)["attributes"]["site"], "lab") << d.out;

  auto dup = edgekit("fleet things create sensor-1");
  EXPECT_EQ(dup.code, 1);
  EXPECT_NE(dup.out.find("already_exists"), std::string::npos) << dup.out;
  EXPECT_NE(dup.out.find("HTTP 409"), std::string::npos) << dup.out;
  EXPECT_EQ(edgekit("fleet things create x --attr novalue").code, 2);
  EXPECT_EQ(edgekit("fleet things delete sensor-2").code, 0);
  EXPECT_EQ(edgekit("fleet things describe sensor-2").code, 1);
}

TEST_F(FleetCli, CreatesDescribesListsPausesAndCancelsJobs) {
  ASSERT_EQ(edgekit("fleet things create d1").code, 0);
  ASSERT_EQ(edgekit("fleet things create d2").code, 0);
  const std::string doc = write("job.json", R"({"operation":"reboot"})");
  const std::string extra =
      write("job-config.json", R"({"description":"nightly","abortConfig":{"criteriaList":[]}})");
  auto c = edgekit("fleet jobs create reboot-1 --document " + doc + " --thing d1 --thing d2 "
                   "--timeout-minutes 30 --config " + extra + " --json");
  ASSERT_EQ(c.code, 0) << c.out;
  auto created = json::parse(c.out, nullptr, false);
  EXPECT_EQ(created["document"]["operation"], "reboot") << c.out;
  EXPECT_EQ(created["description"], "nightly");
  EXPECT_EQ(created["timeoutConfig"]["inProgressTimeoutInMinutes"], 30);
  EXPECT_EQ(created["targetSelection"], "SNAPSHOT");

  auto d = edgekit("fleet jobs describe reboot-1 --json");
  ASSERT_EQ(d.code, 0) << d.out;
  EXPECT_EQ(json::parse(d.out, nullptr, false)["jobProcessDetails"]["numberOfQueuedThings"], 2)
      << d.out;
  auto table = edgekit("fleet jobs list-executions reboot-1");
  ASSERT_EQ(table.code, 0) << table.out;
  EXPECT_EQ(table.out.rfind("THING", 0), 0u) << table.out;
  EXPECT_NE(table.out.find("d2     QUEUED  1"), std::string::npos) << table.out;

  auto paused = edgekit("fleet jobs pause reboot-1 --json");
  ASSERT_EQ(paused.code, 0) << paused.out;
  EXPECT_EQ(json::parse(paused.out, nullptr, false)["paused"], true) << paused.out;
  auto resumed = edgekit("fleet jobs resume reboot-1 --json");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_EQ(json::parse(resumed.out, nullptr, false)["paused"], false) << resumed.out;
  auto x = edgekit("fleet jobs cancel reboot-1 --force --reason maintenance --json");
  ASSERT_EQ(x.code, 0) << x.out;
  auto canceled = json::parse(x.out, nullptr, false);
  EXPECT_EQ(canceled["status"], "CANCELED") << x.out;
  EXPECT_EQ(canceled["forceCanceled"], true);
  EXPECT_EQ(canceled["reasonCode"], "maintenance");
  auto filtered = edgekit("fleet jobs list-executions reboot-1 --status CANCELED --json");
  ASSERT_EQ(filtered.code, 0) << filtered.out;
  EXPECT_EQ(json::parse(filtered.out, nullptr, false)["items"].size(), 2u) << filtered.out;
  EXPECT_EQ(edgekit("fleet jobs cancel reboot-1 --force").code, 1) << "already force-canceled";
  EXPECT_EQ(edgekit("fleet jobs describe nosuch").code, 1);
  EXPECT_EQ(edgekit("fleet jobs create bad --document " + doc + " --thing ghost").code, 1);
}

TEST_F(FleetCli, RegistersCasAndCertificatesAndChangesTheirStatus) {
  testing_::TestCa ca((dir_ / "pki").string(), "ca");
  ASSERT_TRUE(ca.ok()) << ca.error();
  testing_::CertOptions o;
  o.common_name = "sensor-1";
  auto dev = ca.issue("sensor-1", o);
  auto reg_ca = edgekit("fleet cas register --pem " + ca.cert_file() + " --active");
  ASSERT_EQ(reg_ca.code, 0) << reg_ca.out;
  auto cas = edgekit("fleet cas list");
  EXPECT_NE(cas.out.find("ACTIVE"), std::string::npos) << cas.out;

  auto reg = edgekit("fleet --json certificates register --pem " + dev.cert_file + " --status ACTIVE");
  ASSERT_EQ(reg.code, 0) << reg.out;
  const std::string id = json::parse(reg.out)["certificateId"];
  ASSERT_EQ(id.size(), 64u);
  auto list = edgekit("fleet certificates list");
  EXPECT_NE(list.out.find(id + "  ACTIVE"), std::string::npos) << list.out;
  auto desc = edgekit("fleet certificates describe " + id);
  EXPECT_NE(desc.out.find("-----BEGIN CERTIFICATE-----"), std::string::npos) << desc.out;
  EXPECT_NE(edgekit("fleet certificates deactivate " + id).out.find("INACTIVE"), std::string::npos);
  EXPECT_EQ(edgekit("fleet certificates activate " + id).code, 0);
  auto revoked = edgekit("fleet certificates revoke " + id);
  EXPECT_EQ(revoked.code, 0);
  EXPECT_NE(revoked.out.find("REVOKED"), std::string::npos) << revoked.out;
  auto again = edgekit("fleet certificates activate " + id);
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.out.find("conflict"), std::string::npos) << again.out;

  ASSERT_EQ(edgekit("fleet things create sensor-1").code, 0);
  EXPECT_EQ(edgekit("fleet things attach sensor-1 " + id).code, 0);
  const std::string doc = write("policy.json", R"({"Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]})");
  EXPECT_EQ(edgekit("fleet policies create connect --document " + doc).code, 0);
  EXPECT_EQ(edgekit("fleet policies attach connect " + id).code, 0);
  EXPECT_NE(edgekit("fleet policies list").out.find("connect"), std::string::npos);
  const std::string bad = write("bad.json", R"({"Statement":[{"Effect":"Perhaps"}]})");
  auto refused = edgekit("fleet policies create bad --document " + bad);
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.out.find("invalid policy document"), std::string::npos) << refused.out;
}

TEST_F(FleetCli, ValidatesAndCreatesTemplates) {
  const std::string good = write("t.json", R"({"Parameters":{"SerialNumber":{"Type":"String"}},
    "Resources":{"thing":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":{"Ref":"SerialNumber"}}},
                 "cert":{"Type":"AWS::IoT::Certificate","Properties":{"CertificateId":{"Ref":"AWS::IoT::Certificate::Id"}}}}})");
  const std::string bad = write("bad.json", R"({"Resources":{"thing":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":{"Ref":"Nope"}}}}})");
  auto v = edgekit("fleet templates validate --body " + good);
  EXPECT_EQ(v.code, 0) << v.out;
  EXPECT_EQ(v.out, "valid\n");
  auto nv = edgekit("fleet templates validate --body " + bad);
  EXPECT_EQ(nv.code, 1);
  EXPECT_NE(nv.out.find("not a declared parameter"), std::string::npos) << nv.out;
  const std::string notjson = write("x.json", "{nope");
  EXPECT_NE(edgekit("fleet templates validate --body " + notjson).out.find("not valid JSON"),
            std::string::npos);
  auto c = edgekit("fleet templates create sensors --body " + good + " --type JITP --enabled");
  ASSERT_EQ(c.code, 0) << c.out;
  auto l = edgekit("fleet templates list");
  EXPECT_NE(l.out.find("sensors  JITP"), std::string::npos) << l.out;
}

TEST_F(FleetCli, MakesClaimCredentialsBoundToOneTemplateAndSetsItsHook) {
  const std::string body = write("fleet.json", R"({"Parameters":{"SerialNumber":{"Type":"String"}},
    "Resources":{"thing":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":{"Ref":"SerialNumber"}}},
                 "cert":{"Type":"AWS::IoT::Certificate","Properties":{"CertificateId":{"Ref":"AWS::IoT::Certificate::Id"}}}}})");
  ASSERT_EQ(edgekit("fleet templates create fleet --body " + body + " --enabled").code, 0);
  const std::string out = (dir_ / "claim").string();
  auto c = edgekit("fleet claims create fleet --out-dir " + out + " --json");
  ASSERT_EQ(c.code, 0) << c.out;
  const json made = json::parse(c.out);
  EXPECT_EQ(made["policyName"], "claim-fleet");
  EXPECT_EQ(made["status"], "ACTIVE");
  EXPECT_NE(testing_::read_text_file(out + "/claim.crt").find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(testing_::read_text_file(out + "/claim.key").find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(fs::status(out + "/claim.key").permissions() & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);
  // The policy allows the create calls and this template's topics, nothing else.
  auto p = edgekit("fleet --json policies list");
  ASSERT_EQ(p.code, 0) << p.out;
  EXPECT_NE(p.out.find("provisioning-templates/fleet/provision/*"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("create-from-csr/*"), std::string::npos) << p.out;
  EXPECT_EQ(p.out.find("$aws/things"), std::string::npos) << p.out;
  // A template that does not exist: the API's 404, no files.
  auto missing = edgekit("fleet claims create nope --out-dir " + (dir_ / "nope").string());
  EXPECT_NE(missing.code, 0);
  EXPECT_FALSE(fs::exists(dir_ / "nope" / "claim.key"));

  auto h = edgekit("fleet templates hook fleet --target /usr/local/bin/fleet-hook");
  EXPECT_EQ(h.code, 0) << h.out;
  auto bad = edgekit("fleet templates hook fleet --target relative-hook");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("absolute path"), std::string::npos) << bad.out;
  EXPECT_EQ(edgekit("fleet templates hook fleet --remove").code, 0);
  auto r = edgekit("fleet claims results");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("THING"), std::string::npos) << r.out;
}

TEST_F(FleetCli, NeedsATokenAndSaysWhenFleetdCannotBeReached) {
  ::unsetenv("EDGEKIT_FLEET_TOKEN_FILE");
  auto none = edgekit("fleet things list");
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.out.find("no admin token"), std::string::npos) << none.out;
  ::setenv("EDGEKIT_FLEET_TOKEN", "wrong", 1);
  auto wrong = edgekit("fleet things list");
  EXPECT_EQ(wrong.code, 1);
  EXPECT_NE(wrong.out.find("unauthorized"), std::string::npos) << wrong.out;
  ::unsetenv("EDGEKIT_FLEET_TOKEN");
  auto flag = edgekit("fleet --token-file " + token_file_ + " things list");
  EXPECT_EQ(flag.code, 0) << flag.out;
  const auto port = testing_::free_loopback_port();
  auto down = edgekit("fleet --token-file " + token_file_ + " --url http://127.0.0.1:" +
                      std::to_string(port) + " things list");
  EXPECT_EQ(down.code, 3);
  EXPECT_NE(down.out.find("cannot reach fleetd"), std::string::npos) << down.out;
}

}  // namespace
