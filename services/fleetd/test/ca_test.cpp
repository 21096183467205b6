// fleetd's own CA, end to end with the fleetd binary: a device whose key was generated in its
// token gets a certificate from its CSR, connects over mutual TLS through the secured broker,
// publishes on its own topics, is revoked (disconnected, listed in the CRL and its file); a
// restart keeps the same CA; and fleetd refuses to start, with exit code 5 and a message naming
// the cause, when the configured CA is missing or cannot be used.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "edgekit/json/json.hpp"
#include "edgekit/pki/pki.hpp"
#include "edgekit/testing/child_process.hpp"
#include "edgekit/testing/token_env.hpp"
#include "secured_broker.hpp"

namespace edgekit::fleetd::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kCaRefused = 5;  // docs/fleetd.md, "Exit codes"

class SecuredBrokerOwnCa : public SecuredBroker {
 protected:
  SecuredBrokerOwnCa() { own_ca_ = true; }

  json get(const std::string& path) {
    auto r = admin_get(path);
    EXPECT_TRUE(r && r->status == 200) << path << ": " << (r ? r->body : "no answer");
    return r ? json::parse(r->body, nullptr, false) : json();
  }
};

TEST_F(SecuredBrokerOwnCa, ATokenKeyDeviceGetsACertificateFromItsCsrConnectsAndIsRevoked) {
  auto thing = admin_post_json("/admin/v1/things", R"({"thingName":"sensor-7"})");
  ASSERT_TRUE(thing && thing->status == 201) << (thing ? thing->body : "");

  // The device's key is generated in its own token and never leaves it; the CSR is signed there.
  const std::string module = testing::prepare_token_env(
      testing::TokenKind::Edgekit, (dir_ / "device").string(), EDGEKIT_TOKEN_MODULE, "");
  std::string csr;
  {
    auto m = pkcs11::Module::load(module);
    ASSERT_TRUE(m) << m.error().message();
    auto slot = testing::init_test_token(*m, "device", "87654321", "1234");
    ASSERT_TRUE(slot);
    auto s = m->open_session(*slot, true);
    ASSERT_TRUE(s && s->login(pkcs11::UserType::User, "1234"));
    auto kp = pki::generate_token_key(*s, pki::KeyAlgorithm::EcP256, "tls", pki::Bytes{7});
    ASSERT_TRUE(kp) << kp.error().message;
    auto signer = pki::TokenSigner::create(*s, kp->private_key);
    ASSERT_TRUE(signer) << signer.error().message;
    auto made = pki::make_csr(*signer, *pki::Name::parse("/CN=sensor-7"));
    ASSERT_TRUE(made) << made.error().message;
    csr = *made;
  }

  auto issued = admin_post_json(
      "/admin/v1/certificates/from-csr",
      json{{"certificateSigningRequest", csr}, {"setAsActive", true}, {"thingName", "sensor-7"}}
          .dump());
  ASSERT_TRUE(issued);
  ASSERT_EQ(issued->status, 201) << issued->body;
  const json answer = json::parse(issued->body);
  const std::string cert_file = (dir_ / "sensor-7.crt").string();
  std::ofstream(cert_file) << answer["certificatePem"].get<std::string>();
  // AWS's id, computed apart from fleetd.
  const std::string id = answer["certificateId"];
  EXPECT_EQ(facts_of(cert_file).id, id);

  // The chain fleetd serves verifies the certificate; every link is signed with SHA-256.
  const json own = get("/admin/v1/ca");
  auto leaf = pki::parse_certificate(answer["certificatePem"].get<std::string>());
  auto issuing = pki::parse_certificate(own["issuingCertificatePem"].get<std::string>());
  auto root = pki::parse_certificate(own["rootCertificatePem"].get<std::string>());
  ASSERT_TRUE(leaf && issuing && root);
  EXPECT_TRUE(pki::verify_chain(*leaf, {&*issuing, 1}, {&*root, 1}, ::time(nullptr)));
  EXPECT_EQ(leaf->signature_algorithm, pki::SignatureAlgorithm::EcdsaSha256);
  EXPECT_EQ(issuing->signature_algorithm, pki::SignatureAlgorithm::EcdsaSha256);
  EXPECT_EQ(issuing->key_algorithm, pki::KeyAlgorithm::EcP256);

  // Mutual TLS with the key in the token, through the broker and fleetd's plugin.
  tls::Config c;
  c.ca_file = ca_->cert_file();
  c.certificate_file = cert_file;
  c.token_key = tls::TokenKey{module, "device", "1234", "tls", {}};
  Peer dev;
  auto ack = dev.connect_tls(broker_->tls_port(), c, "sensor-7");
  ASSERT_TRUE(ack) << mqtt::to_string(ack.error()) << "\n" << broker_->log();
  EXPECT_EQ(dev.subscribe("sensor-7/#"), ReasonCode::GrantedQoS1);
  EXPECT_EQ(dev.publish("sensor-7/telemetry", "21.5"), ReasonCode::Success);
  dev.pump(5s, 1);
  ASSERT_EQ(dev.received.size(), 1u);
  EXPECT_EQ(dev.received[0].topic, "sensor-7/telemetry");
  // Its own topics only.
  EXPECT_EQ(dev.publish("t1/telemetry", "x"), ReasonCode::NotAuthorized);

  const auto start = std::chrono::steady_clock::now();
  auto r = admin_post("/admin/v1/certificates/" + id + "/revoke");
  ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "");
  EXPECT_LT(until_disconnected(dev, start), 5s);
  EXPECT_FALSE(dev.client().connected());

  // The CRL lists it, served and in the file for the broker's crlfile.
  const json crl = get("/admin/v1/ca/crl");
  EXPECT_EQ(crl["revokedSerials"], json::array({leaf->serial_hex})) << crl.dump();
  auto file = pki::parse_crl(testing::read_text_file((dir_ / "state" / "ca" / "crl.pem").string()));
  ASSERT_TRUE(file);
  EXPECT_TRUE(file->lists(leaf->serial_hex));
  EXPECT_TRUE(pki::verify_crl(*file, *issuing));

  Peer again;
  auto back = again.connect_tls(broker_->tls_port(), c, "sensor-7");
  EXPECT_FALSE(back) << "a revoked certificate reconnected";
}

TEST_F(SecuredBrokerOwnCa, ARestartKeepsTheSameCaAndItsCertificatesWork) {
  const json before = get("/admin/v1/ca");
  ASSERT_TRUE(before.is_object());
  // The issuing CA is an ACTIVE CA record of the registry.
  const json record = get("/admin/v1/cas/" + before["issuingCertificateId"].get<std::string>());
  EXPECT_EQ(record["status"], "ACTIVE");

  testing::stop_child(fleetd_, SIGTERM, 5s);
  // start_fleetd waits for lines of the new fleetd's log, not the old one's.
  fs::rename(fleetd_log_, fleetd_log_ + ".1");
  start_fleetd();
  const json after = get("/admin/v1/ca");
  EXPECT_EQ(after["rootCertificateId"], before["rootCertificateId"]);
  EXPECT_EQ(after["issuingCertificateId"], before["issuingCertificateId"]);
  EXPECT_EQ(after["issuingCertificatePem"], before["issuingCertificatePem"]);
  EXPECT_EQ(testing::read_text_file((dir_ / "state" / "ca" / "issuing.pem").string()),
            before["issuingCertificatePem"].get<std::string>());

  // And it still signs in the token after the restart.
  auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
  ASSERT_TRUE(key);
  auto csr = pki::make_csr(*key, *pki::Name::parse("/CN=t9"));
  ASSERT_TRUE(csr);
  auto issued =
      admin_post_json("/admin/v1/certificates/from-csr",
                      json{{"certificateSigningRequest", *csr}}.dump());
  ASSERT_TRUE(issued && issued->status == 201) << (issued ? issued->body : "");
  auto cert = pki::parse_certificate(json::parse(issued->body)["certificatePem"].get<std::string>());
  auto issuing = pki::parse_certificate(after["issuingCertificatePem"].get<std::string>());
  ASSERT_TRUE(cert && issuing);
  EXPECT_TRUE(pki::verify_issued_by(*cert, *issuing));
}

// Mosquitto itself reading fleetd's CRL (`crlfile`): a certificate fleetd revoked is refused in
// the TLS handshake once the broker has reloaded the file, before any registry decision.
class SecuredBrokerOwnCaCrlfile : public SecuredBrokerOwnCa {
 protected:
  SecuredBrokerOwnCaCrlfile() { own_crlfile_ = true; }

  // A device with a software key (PEM files) and a certificate from fleetd's CA.
  testing::Issued device_of(const std::string& name) {
    testing::Issued d;
    auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
    EXPECT_TRUE(key);
    d.key_file = (dir_ / (name + ".key")).string();
    std::ofstream(d.key_file) << key->private_key_pem();
    auto csr = pki::make_csr(*key, *pki::Name::parse("/CN=" + name));
    EXPECT_TRUE(admin_post_json("/admin/v1/things", json{{"thingName", name}}.dump()));
    auto r = admin_post_json(
        "/admin/v1/certificates/from-csr",
        json{{"certificateSigningRequest", *csr}, {"setAsActive", true}, {"thingName", name}}
            .dump());
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "");
    const json j = json::parse(r ? r->body : "{}", nullptr, false);
    d.cert_file = (dir_ / (name + ".crt")).string();
    std::ofstream(d.cert_file) << j.value("certificatePem", "");
    ids_[name] = j.value("certificateId", "");
    return d;
  }
};

TEST_F(SecuredBrokerOwnCaCrlfile, TheBrokerRefusesACertificateOnTheCrlFleetdWrote) {
  const testing::Issued a = device_of("crl-a");
  const testing::Issued b = device_of("crl-b");
  {
    // fleetd's CRL (empty) satisfies the broker's CRL check.
    Peer p;
    auto ack = p.connect_tls(broker_->tls_port(), ca_->cert_file(), a, "crl-a");
    ASSERT_TRUE(ack) << mqtt::to_string(ack.error()) << "\n" << broker_->log();
  }
  auto r = admin_post("/admin/v1/certificates/" + ids_["crl-a"] + "/revoke");
  ASSERT_TRUE(r && r->status == 200);
  // Mosquitto reads crlfile when the listener starts.
  ASSERT_TRUE(broker_->restart()) << broker_->error();
  Peer refused;
  auto no = refused.connect_tls(broker_->tls_port(), ca_->cert_file(), a, "crl-a");
  ASSERT_FALSE(no);
  // Refused in the TLS handshake (the broker's CRL check), not by a CONNACK from the registry.
  EXPECT_EQ(no.error(), mqtt::Errc::TransportError) << mqtt::to_string(no.error());
  Peer fine;
  auto yes = fine.connect_tls(broker_->tls_port(), ca_->cert_file(), b, "crl-b");
  EXPECT_TRUE(yes) << (yes ? "" : mqtt::to_string(yes.error())) << "\n" << broker_->log();
}

// ---- fleetd refuses to start without a usable CA ------------------------------------------

class FleetdProcessCa : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgekit-fleetd-ca-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "state");
    ASSERT_NO_FATAL_FAILURE(make_ca_token(dir_));
  }
  void TearDown() override { fs::remove_all(dir_); }

  // fleetd with the CA flags (and `more`), on ports nobody uses: it either refuses at once or,
  // with --init-ca, exits after creating the CA.
  int fleetd(std::vector<std::string> more, std::string& out,
             std::vector<std::string> flags = {}) {
    if (flags.empty()) flags = ca_flags(dir_);
    flags.insert(flags.end(), more.begin(), more.end());
    flags.insert(flags.end(), {"--hooks-port", "0", "--admin-port", "0", "--broker-port",
                               std::to_string(testing::free_loopback_port())});
    return run_fleetd(dir_, flags, &out);
  }
  // The CA flags with `flag` set to `value` (replaced, or added).
  std::vector<std::string> flags_with(const std::string& flag, const std::string& value) {
    auto f = ca_flags(dir_);
    for (std::size_t i = 0; i + 1 < f.size(); ++i) {
      if (f[i] == flag) {
        f[i + 1] = value;
        return f;
      }
    }
    f.insert(f.end(), {flag, value});
    return f;
  }
  void expect_refused(const std::vector<std::string>& flags, const std::string& says) {
    std::string out;
    EXPECT_EQ(fleetd({}, out, flags), kCaRefused) << out;
    EXPECT_NE(out.find("ca.refused"), std::string::npos) << out;
    EXPECT_NE(out.find(says), std::string::npos) << says << " not in:\n" << out;
  }

  fs::path dir_;
};

TEST_F(FleetdProcessCa, RefusesToStartWhenTheConfiguredCaIsMissing) {
  expect_refused(ca_flags(dir_), "no CA in");
}

TEST_F(FleetdProcessCa, InitCreatesTheCaOnceAndRefusesASecond) {
  std::string out;
  ASSERT_EQ(fleetd({"--init-ca"}, out), 0) << out;
  EXPECT_NE(out.find("ca.created"), std::string::npos) << out;
  for (const char* f : {"root.pem", "issuing.pem", "chain.pem", "crl.pem", "ca.json"}) {
    EXPECT_TRUE(fs::exists(dir_ / "state" / "ca" / f)) << f;
  }
  // Key custody: both private keys are in the token, sensitive and never extractable; their
  // value cannot be read out.
  {
    auto m = pkcs11::Module::load(EDGEKIT_TOKEN_MODULE);
    ASSERT_TRUE(m);
    auto slot = m->find_token("fleetd-ca");
    ASSERT_TRUE(slot);
    auto s = m->open_session(*slot, false);
    ASSERT_TRUE(s && s->login(pkcs11::UserType::User, "1234"));
    for (const char* label : {"fleetd root CA", "fleetd issuing CA"}) {
      auto key = s->find_one({CKO_PRIVATE_KEY, std::string(label), std::nullopt});
      ASSERT_TRUE(key) << label << ": " << key.error().message();
      EXPECT_EQ(s->attribute(*key, CKA_SENSITIVE).value(), pkcs11::Bytes{CK_TRUE}) << label;
      EXPECT_EQ(s->attribute(*key, CKA_EXTRACTABLE).value(), pkcs11::Bytes{CK_FALSE}) << label;
      EXPECT_FALSE(s->attribute(*key, CKA_VALUE)) << label;
    }
  }
  const std::string issuing = testing::read_text_file((dir_ / "state" / "ca" / "issuing.pem").string());
  EXPECT_EQ(fleetd({"--init-ca"}, out), kCaRefused) << out;
  EXPECT_NE(out.find("already holds a CA"), std::string::npos) << out;
  EXPECT_EQ(testing::read_text_file((dir_ / "state" / "ca" / "issuing.pem").string()), issuing);
}

TEST_F(FleetdProcessCa, RefusesAnUnusableTokenPinKeyOrCertificate) {
  std::string out;
  ASSERT_EQ(fleetd({"--init-ca"}, out), 0) << out;

  const std::string wrong_pin = (dir_ / "wrong.pin").string();
  std::ofstream(wrong_pin) << "9999";
  fs::permissions(wrong_pin, fs::perms::owner_read | fs::perms::owner_write,
                  fs::perm_options::replace);
  expect_refused(flags_with("--ca-pin-file", wrong_pin), "CKR_PIN_INCORRECT");

  const std::string open_pin = (dir_ / "open.pin").string();
  std::ofstream(open_pin) << "1234";
  fs::permissions(open_pin, fs::perms::owner_read | fs::perms::owner_write |
                                fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::replace);
  expect_refused(flags_with("--ca-pin-file", open_pin), "chmod 600");

  expect_refused(flags_with("--ca-module", (dir_ / "no-such-module.so").string()),
                 "cannot load the PKCS#11 module");
  expect_refused(flags_with("--ca-token-label", "other"), "names token 'other'");
  // Another token folder: the token labelled fleetd-ca is not there at all.
  expect_refused(flags_with("--ca-token-dir", (dir_ / "empty-tokens").string()),
                 "no token labelled 'fleetd-ca'");

  // A certificate that is not its key's (the two CA certificates swapped).
  const fs::path ca = dir_ / "state" / "ca";
  fs::rename(ca / "root.pem", ca / "x.pem");
  fs::rename(ca / "issuing.pem", ca / "root.pem");
  fs::rename(ca / "x.pem", ca / "issuing.pem");
  expect_refused(ca_flags(dir_), "does not hold the public key");
  fs::rename(ca / "root.pem", ca / "x.pem");
  fs::rename(ca / "issuing.pem", ca / "root.pem");
  fs::rename(ca / "x.pem", ca / "issuing.pem");

  // The keys gone from the token: re-initialising it erases its objects.
  {
    auto m = pkcs11::Module::load(EDGEKIT_TOKEN_MODULE);
    ASSERT_TRUE(m);
    auto slot = m->find_token("fleetd-ca");
    ASSERT_TRUE(slot);
    ASSERT_TRUE(m->init_token(*slot, "87654321", "fleetd-ca"));
    auto so = m->open_session(*slot, true);
    ASSERT_TRUE(so && so->login(pkcs11::UserType::SecurityOfficer, "87654321"));
    ASSERT_TRUE(so->init_pin("1234"));
  }
  expect_refused(ca_flags(dir_), "is not in the token");

  // A state folder with a CA, but fleetd started without one configured.
  out.clear();
  EXPECT_EQ(run_fleetd(dir_, {"--hooks-port", "0", "--admin-port", "0"}, &out), kCaRefused)
      << out;
  EXPECT_NE(out.find("no --ca-pin-file"), std::string::npos) << out;
}

}  // namespace
}  // namespace edgekit::fleetd::test
