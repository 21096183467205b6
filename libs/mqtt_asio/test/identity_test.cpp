// Per-connection client identities (Endpoint::identity): one TlsContext (the CA and the server
// checks) for every device, each device connecting with its own key and certificate, against a
// real Mosquitto that requires client certificates and takes the certificate's CN as the user
// name, with an ACL that lets each user touch only its own topic. So a device that gets its own
// message back and is refused a publish to its neighbour's topic proves the broker saw that
// device's CN. (Mosquitto 2.0 grants every SUBSCRIBE and applies read rules at delivery, so the
// refusal is tested on PUBLISH.)
//
// Scale from the environment: EDGEKIT_EVLOOP_ID_SCALE devices (default 300).

#include <edgekit/testing/mosquitto.hpp>
#include <edgekit/testing/test_pki.hpp>
#include <edgekit/pkcs11/client.hpp>
#include <edgekit/tls/tls.hpp>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <asio/io_context.hpp>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "evloop_test_support.hpp"
#include "identity_test_support.hpp"
#include "tls_test_support.hpp"

namespace edgekit::mqtt_asio::test {
namespace {

using namespace std::chrono_literals;
using mqtt::EventType;

class PerConnectionIdentity : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path.empty());
    pki_ = std::make_unique<TestPki>(dir_.path);
    ASSERT_TRUE(pki_->ca.ok()) << pki_->ca.error();
    broker_ = std::make_unique<testing::Mosquitto>(identity_broker(*pki_, dir_.path));
    ASSERT_TRUE(broker_->start()) << broker_->error() << "\n" << broker_->log();
    auto ctx = tls::TlsContext::create(shared_config(*pki_));
    ASSERT_TRUE(ctx) << ctx.error().message();
    context_.emplace(std::move(*ctx));
  }
  void TearDown() override {
    if (broker_ && HasFailure()) {
      const std::string log = broker_->log();
      std::cerr << "--- mosquitto log (tail) ---\n" << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
    }
  }

  // A device identity issued by `ca` with CN `cn`.
  tls::ClientIdentity issue(testing::TestCa& ca, const std::string& cn) {
    testing::CertOptions o;
    o.common_name = cn;
    const testing::Issued i = ca.issue(cn, o);
    auto id = tls::ClientIdentity::from_files(i.cert_file, i.key_file);
    EXPECT_TRUE(id) << cn << ": " << id.error().message();
    return id ? std::move(*id) : tls::ClientIdentity{};
  }

  // Connects one device with `identity` and waits until it is closed; returns it.
  std::unique_ptr<IdDevice> connect_one(tls::ClientIdentity identity, const std::string& cn) {
    auto d = std::make_unique<IdDevice>(driver_, cn, cn + "-other", std::move(identity));
    d->start(*context_, broker_->tls_port());
    EXPECT_TRUE(run_until(io_, [&] { return d->closed_; }, 15s)) << cn << " never closed";
    return d;
  }

  tls::test::TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<testing::Mosquitto> broker_;
  std::optional<tls::TlsContext> context_;
  asio::io_context io_{1};
  Driver driver_{io_};
};

TEST_F(PerConnectionIdentity, HundredsOfDevicesOnOneThreadEachAreTheirOwnCommonName) {
  const std::size_t n = env_size("EDGEKIT_EVLOOP_ID_SCALE", 300);
  std::vector<std::unique_ptr<IdDevice>> devices;
  devices.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string cn = "dev-" + std::to_string(i);
    devices.push_back(std::make_unique<IdDevice>(driver_, cn, "dev-" + std::to_string((i + 1) % n),
                                                 issue(pki_->ca, cn)));
    ASSERT_TRUE(devices.back()->identity_.valid());
    ASSERT_EQ(devices.back()->identity_.common_name(), cn);
  }
  // 32 handshakes in flight at once: the listen backlog never drops a SYN.
  const FleetOutcome r = run_devices(
      io_, devices, [&](IdDevice& d) { d.start(*context_, broker_->tls_port()); }, 32,
      std::chrono::seconds(60 + n / 10));
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.ok, n) << r.first_failure;
  EXPECT_TRUE(disconnect_all(io_, devices, 30s));
  for (const auto& d : devices) EXPECT_FALSE(d->close_error_) << d->cn_ << ": " << d->close_error_.message();
}

TEST_F(PerConnectionIdentity, AMismatchedKeyAndCertificateIsRefusedWhenTheIdentityIsMade) {
  testing::CertOptions o;
  o.common_name = "a";
  const testing::Issued a = pki_->ca.issue("a", o);
  o.common_name = "b";
  const testing::Issued b = pki_->ca.issue("b", o);
  auto id = tls::ClientIdentity::from_files(a.cert_file, b.key_file);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().cause, tls::Cause::KeyCertificateMismatch) << id.error().message();
}

TEST_F(PerConnectionIdentity, AnIdentityTheContextRefusesFailsTheConnectionWithItsOwnCause) {
  // Security level 4 asks for 192-bit keys: OpenSSL refuses a P-256 certificate on the SSL
  // ("ee key too small") before anything is sent.
  tls::Config c = shared_config(*pki_);
  c.cipher_list_tls12 = "DEFAULT:@SECLEVEL=4";
  auto strict = tls::TlsContext::create(c);
  ASSERT_TRUE(strict) << strict.error().message();
  context_.emplace(std::move(*strict));
  auto d = connect_one(issue(pki_->ca, "weak"), "weak");
  EXPECT_EQ(d->close_error_, make_error_code(Errc::TlsClientIdentityRejected))
      << d->close_error_.message();
  EXPECT_EQ(d->failure_.rfind("weak: event ", 0), 0u) << "a ConnectFailed event: " << d->failure_;
}

TEST_F(PerConnectionIdentity, ACertificateFromAForeignCaIsRefusedWithTheServersAlert) {
  tls::test::TempDir other_dir;
  testing::TestCa foreign(other_dir.path, "foreign");
  ASSERT_TRUE(foreign.ok()) << foreign.error();
  auto d = connect_one(issue(foreign, "intruder"), "intruder");
  EXPECT_EQ(d->close_error_, make_error_code(Errc::TlsServerAlert)) << d->close_error_.message();
  EXPECT_EQ(d->conn_.tls_alert(), 48);  // unknown_ca (RFC 8446 6.2)
  EXPECT_EQ(tls::alert_name(d->conn_.tls_alert()), "unknown CA");
  EXPECT_FALSE(d->done());
}

// The certificate of `file` (PEM) as DER.
pkcs11::Bytes der_of(const std::string& file) {
  pkcs11::Bytes out;
  FILE* f = std::fopen(file.c_str(), "r");
  if (f == nullptr) return out;
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  unsigned char* der = nullptr;
  const int n = x != nullptr ? i2d_X509(x, &der) : -1;
  if (n > 0) out.assign(der, der + n);
  OPENSSL_free(der);
  X509_free(x);
  return out;
}

// Keys in one token, one session for all (ClientIdentity::from_token): what a gateway or the
// fleet simulator does with devices provisioned into one token. Each key was generated in the
// token and its certificate stored beside it under the same label; every handshake signs there.
TEST_F(PerConnectionIdentity, DevicesWhoseKeysAreInOneTokenShareOneSession) {
  const std::string module_path =
      tls::test::prepare_token_env(testing::TokenKind::Edgekit, dir_.path + "/token");
  EVP_PKEY* first = tls::test::make_token_key(module_path, "token-dev-0");  // inits the token
  ASSERT_NE(first, nullptr);
  EVP_PKEY_free(first);
  auto module = pkcs11::Module::load(module_path);
  ASSERT_TRUE(module) << module.error().message();
  auto slot = module->find_token(tls::test::kTokenLabel);
  ASSERT_TRUE(slot);
  auto session = module->open_session(*slot, true);
  ASSERT_TRUE(session);
  ASSERT_TRUE(session->login(pkcs11::UserType::User, tls::test::kPin));

  constexpr int kDevices = 24;
  std::vector<std::unique_ptr<IdDevice>> devices;
  for (int i = 0; i < kDevices; ++i) {
    const std::string cn = "token-dev-" + std::to_string(i);
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    if (i == 0) {
      pkcs11::ObjectQuery q;
      q.object_class = CKO_PRIVATE_KEY;
      q.label = cn;
      auto found = session->find_one(q);
      ASSERT_TRUE(found) << found.error().message();
      key = *found;
    } else {
      auto pair = session->generate_ec_key_pair(pkcs11::Curve::P256,
                                                {cn, pkcs11::Bytes(cn.begin(), cn.end()), true});
      ASSERT_TRUE(pair) << pair.error().message();
      key = pair->private_key;
    }
    EVP_PKEY* pub = tls::test::public_key_from_token(*session, key);
    ASSERT_NE(pub, nullptr);
    testing::CertOptions o;
    o.common_name = cn;
    const testing::Issued cert = pki_->ca.issue_for_public_key(cn, pub, o);
    EVP_PKEY_free(pub);
    const pkcs11::Bytes der = der_of(cert.cert_file);
    ASSERT_FALSE(der.empty());
    if (i % 2 == 0) {
      // Even devices: the certificate from the token, under the key's label.
      ASSERT_TRUE(session->import_certificate(der, {cn, {}, true}));
      auto id = tls::ClientIdentity::from_token(*session, cn);
      ASSERT_TRUE(id) << cn << ": " << id.error().message();
      devices.push_back(std::make_unique<IdDevice>(driver_, cn, cn + "-other", std::move(*id)));
    } else {
      // Odd ones: the certificate given by the caller.
      auto id = tls::ClientIdentity::from_token(*session, cn, der);
      ASSERT_TRUE(id) << cn << ": " << id.error().message();
      devices.push_back(std::make_unique<IdDevice>(driver_, cn, cn + "-other", std::move(*id)));
    }
    ASSERT_EQ(devices.back()->identity_.common_name(), cn);
  }
  const FleetOutcome r = run_devices(
      io_, devices, [&](IdDevice& d) { d.start(*context_, broker_->tls_port()); }, 8, 60s);
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.ok, static_cast<std::size_t>(kDevices)) << r.first_failure;
  EXPECT_TRUE(disconnect_all(io_, devices, 30s));

  // What is missing is named: no such key; a key without a certificate; a certificate of
  // another key.
  auto none = tls::ClientIdentity::from_token(*session, "no-such-device");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().cause, tls::Cause::TokenKeyNotFound) << none.error().message();
  auto bare = session->generate_ec_key_pair(pkcs11::Curve::P256, {"bare", {}, true});
  ASSERT_TRUE(bare);
  auto no_cert = tls::ClientIdentity::from_token(*session, "bare");
  ASSERT_FALSE(no_cert);
  EXPECT_EQ(no_cert.error().cause, tls::Cause::TokenKeyNotFound);
  EXPECT_NE(no_cert.error().message().find("certificate"), std::string::npos)
      << no_cert.error().message();
  auto mismatch = tls::ClientIdentity::from_token(*session, "bare", der_of(pki_->ca.cert_file()));
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().cause, tls::Cause::KeyCertificateMismatch) << mismatch.error().message();
}

}  // namespace
}  // namespace edgekit::mqtt_asio::test
