// `edgekit provision` against the secured broker and the fleetd binary with its own CA: a device
// token holding only a claim identity (its key made in the token, its certificate from fleetd's
// `claim-certificates` call) provisions itself by claim, reconnects and publishes as its thing;
// a second run sends nothing; a rejection is one line with AWS's status code, error code and
// message, and a non-zero exit.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "edgekit/json/json.hpp"
#include "edgekit/testing/child_process.hpp"
#include "edgekit/testing/mosquitto.hpp"
#include "secured_broker.hpp"

namespace edgekit::fleetd::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kTemplate = R"({
  "Parameters": {"SerialNumber": {"Type": "String"}, "Site": {"Type": "String", "Default": "lab"}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing",
              "Properties": {"ThingName": {"Fn::Join": ["", ["dev-", {"Ref": "SerialNumber"}]]}}},
    "certificate": {"Type": "AWS::IoT::Certificate",
                    "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                                   "Status": "ACTIVE"}}},
  "DeviceConfiguration": {"Site": {"Ref": "Site"}, "Interval": "30"}
})";

std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

class ProvisionCli : public SecuredBroker {
 protected:
  ProvisionCli() { own_ca_ = true; }

  void SetUp() override {
    SecuredBroker::SetUp();
    if (HasFatalFailure()) return;
    auto r = admin(
        "POST", "/admin/v1/provisioning-templates",
        json{{"templateName", "fleet"}, {"templateBody", kTemplate}, {"enabled", true}}.dump());
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
    fs::create_directories(dir_ / "token");
    auto init = edgekit("token init --label dev-token");
    ASSERT_EQ(init.code, 0) << init.out;
  }

  // The edgekit command line with this test's token folder and PINs in its environment.
  std::string command(const std::string& args) {
    return "EDGEKIT_TOKEN_DIR=" + (dir_ / "token").string() +
           " EDGEKIT_TOKEN_PIN=1234-user EDGEKIT_TOKEN_SO_PIN=5678-so EDGEKIT_TOKEN_QUIET=1"
           " EDGEKIT_TOKEN_PBKDF2_ITERATIONS=2000 " +  // fast logins in tests
           std::string(EDGEKIT_CLI) +
           " " + args;
  }
  testing::CommandRun edgekit(const std::string& args) {
    return testing::run_command(command(args));
  }

  // The factory's step: a claim key made in the device's token, certified by fleetd for
  // template "fleet" (admin API), the certificate stored beside the key.
  void make_claim_identity() {
    ASSERT_EQ(edgekit("token keygen --key-label claim --out /dev/null").code, 0);
    const std::string csr = (dir_ / "claim.csr").string();
    auto made = edgekit("token csr --key-label claim --subject /CN=claim --out " + csr);
    ASSERT_EQ(made.code, 0) << made.out;
    auto r = admin("POST", "/admin/v1/provisioning-templates/fleet/claim-certificates",
                   json{{"certificateSigningRequest", testing::read_text_file(csr)}}.dump());
    ASSERT_TRUE(r && r->status / 100 == 2) << (r ? r->body : "no answer");
    const std::string crt = (dir_ / "claim.crt").string();
    std::ofstream(crt) << json::parse(r->body).value("certificatePem", "");
    auto imported = edgekit("token import-cert --label claim --cert " + crt);
    ASSERT_EQ(imported.code, 0) << imported.out;
  }

  std::string connection(std::uint16_t port) {
    return "-h 127.0.0.1 -p " + std::to_string(port) + " --cafile " + ca_->cert_file() +
           " --token dev-token";
  }

  // `edgekit provision` for template "fleet" with `extra` options; its standard error is kept
  // apart (in `err`) so that --json output parses.
  testing::CommandRun provision(const std::string& extra, std::string& err,
                                std::uint16_t port = 0) {
    const std::string err_file = (dir_ / "provision.err").string();
    // A subshell: run_command sends standard error into its pipe after our redirection.
    auto r = testing::run_command(
        "(" +
        command("provision " + connection(port != 0 ? port : broker_->tls_port()) +
                " --template fleet --state " + (dir_ / "device.state").string() + " --cert-out " +
                (dir_ / "device.crt").string() + " " + extra) +
        " 2>" + err_file + ")");
    err = testing::read_text_file(err_file);
    return r;
  }
};

TEST_F(ProvisionCli, ProvisionsByClaimThenPublishesAsItsThingAndASecondRunSendsNothing) {
  make_claim_identity();
  ASSERT_FALSE(HasFatalFailure());
  std::string err;
  auto first = provision("--param SerialNumber=0042 --json", err);
  ASSERT_EQ(first.code, 0) << first.out << err << broker_->log();
  const json out = json::parse(first.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << first.out;
  EXPECT_EQ(out["thingName"], "dev-0042");
  EXPECT_EQ(out["certificateId"].get<std::string>().size(), 64u);
  EXPECT_EQ(out["deviceConfiguration"], (json{{"Interval", "30"}, {"Site", "lab"}}));
  EXPECT_EQ(out["deviceLabel"], "device");
  EXPECT_EQ(out["alreadyProvisioned"], false);
  EXPECT_EQ(out["connected"], true);  // it reconnected as its thing with the new identity
  auto thing = admin("GET", "/admin/v1/things/dev-0042");
  ASSERT_TRUE(thing && thing->status == 200) << (thing ? thing->body : "no answer");
  EXPECT_NE(thing->body.find(out["certificateId"].get<std::string>()), std::string::npos)
      << thing->body;

  // Second run: nothing is requested — not even a connection (nothing listens on this port).
  auto again = provision("--param SerialNumber=0042", err, testing::free_loopback_port());
  EXPECT_EQ(again.code, 0) << again.out << err;
  EXPECT_NE(again.out.find("already provisioned: thing dev-0042, certificate " +
                           out["certificateId"].get<std::string>()),
            std::string::npos)
      << again.out;

  // The device identity serves `edgekit pub` with the label; the claim identity is untouched.
  auto pub = edgekit("pub " + connection(broker_->tls_port()) + " -V 5 -i dev-0042 --cert " +
                     (dir_ / "device.crt").string() +
                     " --key-label device -t dev-0042/telemetry -m 21.5 -q 1 -d");
  EXPECT_EQ(pub.code, 0) << pub.out;
  auto list = edgekit("token list --label dev-token");
  ASSERT_EQ(list.code, 0) << list.out;
  // Each: a private key, a public key, a certificate.
  EXPECT_EQ(occurrences(list.out, "label=\"device\""), 3u) << list.out;
  EXPECT_EQ(occurrences(list.out, "label=\"claim\""), 3u) << list.out;
}

TEST_F(ProvisionCli, ProvisionsWithCreateKeysAndCertificateInCbor) {
  make_claim_identity();
  ASSERT_FALSE(HasFatalFailure());
  std::string err;
  auto r = provision("--keys --cbor --param SerialNumber=7 --param Site=roof", err);
  ASSERT_EQ(r.code, 0) << r.out << err;
  EXPECT_NE(r.out.find("provisioned thing dev-7\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(CreateKeysAndCertificate, CBOR)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  Site = roof\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("connected as dev-7 with the new identity"), std::string::npos) << r.out;
}

TEST_F(ProvisionCli, ARejectionIsOneLineWithAwsCodesAndExitsNonZero) {
  make_claim_identity();
  ASSERT_FALSE(HasFatalFailure());
  std::string err;
  // The template needs SerialNumber and none is given: RegisterThing is rejected.
  auto r = provision("", err);
  EXPECT_EQ(r.code, 1) << r.out << err;
  EXPECT_EQ(err,
            "edgekit provision: RegisterThing rejected: 400 InvalidParameters: Cannot resolve "
            "reference value: SerialNumber\n");
  EXPECT_EQ(admin("GET", "/admin/v1/things/dev-")->status, 404);
}

TEST_F(ProvisionCli, SaysWhenTheTokenHasNoClaimIdentity) {
  std::string err;
  auto r = provision("--param SerialNumber=1", err);
  EXPECT_EQ(r.code, 1) << r.out << err;
  EXPECT_NE(err.find("edgekit provision: no claim identity under label \"claim\""),
            std::string::npos)
      << err;
}

}  // namespace
}  // namespace edgekit::fleetd::test
