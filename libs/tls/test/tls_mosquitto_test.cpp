// The TLS transport against a real Mosquitto 2 with a TLS listener (`require_certificate true`,
// `use_identity_as_username true`, a CRL): the MQTT client connects over mutual TLS 1.2 and 1.3
// with the client key in a PEM file, generated inside our token, or inside SoftHSM2, and every
// failure the issue lists is reported with its specific cause.

#include <edgekit/testing/mosquitto.hpp>
#include <edgekit/testing/test_pki.hpp>
#include <edgekit/mqtt/lite.hpp>
#include <edgekit/tls/agent_factory.hpp>

#include <array>
#include <chrono>
#include <filesystem>
#include <thread>

#include "tls_test_support.hpp"

namespace edgekit::tls::test {
namespace {

using testing::CertOptions;
using testing::Issued;
using testing::Mosquitto;
using testing::MosquittoOptions;
using testing::TestCa;

constexpr Duration kTimeout{5000};

// A CA, the server's certificate (localhost and 127.0.0.1), client certificates good, expired,
// revoked and from another CA, and a CRL; and a Mosquitto that trusts the CA.
class TlsBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path.empty());
    ca_ = std::make_unique<TestCa>(dir_.path, "ca");
    other_ca_ = std::make_unique<TestCa>(dir_.path, "other-ca");
    ASSERT_TRUE(ca_->ok()) << ca_->error();
    ASSERT_TRUE(other_ca_->ok()) << other_ca_->error();
    CertOptions server;
    server.common_name = "localhost";
    server.dns_names = {"localhost"};
    server.ip_addresses = {"127.0.0.1"};
    server.server = true;
    server_ = ca_->issue("server", server);
    CertOptions c;
    c.common_name = "device-1";
    client_ = ca_->issue("device-1", c);
    c.common_name = "device-expired";
    c.not_before = std::chrono::hours(-48);
    c.not_after = std::chrono::hours(-24);
    expired_ = ca_->issue("device-expired", c);
    c = CertOptions{};
    c.common_name = "device-revoked";
    revoked_ = ca_->issue("device-revoked", c);
    ca_->revoke(revoked_.serial);
    crl_ = ca_->write_crl("ca");
    c.common_name = "device-stranger";
    stranger_ = other_ca_->issue("device-stranger", c);
    ASSERT_TRUE(ca_->ok()) << ca_->error();
    ASSERT_TRUE(other_ca_->ok()) << other_ca_->error();
  }

  void TearDown() override {
    if (broker_ && HasFailure()) std::cerr << "--- mosquitto log ---\n" << broker_->log();
  }

  // Starts the broker; `min_version` is the listener's tls_version.
  void start_broker(const char* min_version = "tlsv1.2") {
    MosquittoOptions o;
    MosquittoOptions::TlsListener t;
    t.cafile = ca_->cert_file();
    t.certfile = server_.cert_file;
    t.keyfile = server_.key_file;
    t.crlfile = crl_;
    t.tls_version = min_version;
    t.require_certificate = true;
    t.use_identity_as_username = true;
    o.tls = t;
    broker_ = std::make_unique<Mosquitto>(o);
    ASSERT_TRUE(broker_->start()) << broker_->error() << "\n" << broker_->log();
  }

  Config pem_config(const Issued& cert, Version v) const {
    Config c;
    c.ca_file = ca_->cert_file();
    c.certificate_file = cert.cert_file;
    c.private_key_file = cert.key_file;
    c.min_version = c.max_version = v;
    return c;
  }

  Result<TlsTransport> connect(const Config& config, const char* host = "localhost") {
    auto ctx = TlsContext::create(config);
    if (!ctx) return fail(ctx.error());
    return TlsTransport::connect(*ctx, host, broker_->tls_port(), kTimeout);
  }

  // The error a client sees, whether the handshake fails (TLS 1.2) or the server's verdict on the
  // client certificate arrives with the first read (TLS 1.3): connect, then MQTT CONNECT.
  std::optional<Error> failure_of(const Config& config) {
    auto t = connect(config);
    if (!t) return t.error();
    MqttOver mqtt(*t);
    auto r = mqtt.connect("would-be");
    if (r) return std::nullopt;
    EXPECT_EQ(r.error(), mqtt::Errc::TransportError) << mqtt::to_string(r.error());
    return t->last_error();
  }

  // The broker saw the certificate's CN as the user name.
  void expect_identity(const std::string& cn) {
    bool seen = false;
    for (int i = 0; i < 50 && !seen; ++i) {
      seen = broker_->log().find("u'" + cn + "'") != std::string::npos;
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(seen) << "broker log does not show user " << cn;
  }

  TempDir dir_;
  std::unique_ptr<TestCa> ca_;
  std::unique_ptr<TestCa> other_ca_;
  Issued server_, client_, expired_, revoked_, stranger_;
  std::string crl_;
  std::unique_ptr<Mosquitto> broker_;
};

const char* version_name(Version v) { return v == Version::Tls12 ? "Tls12" : "Tls13"; }

// --- mutual TLS, key in a PEM file ----------------------------------------------------------------

class PemKey : public TlsBroker, public ::testing::WithParamInterface<Version> {};

TEST_P(PemKey, MqttRoundTripOverMutualTls) {
  start_broker();
  auto t = connect(pem_config(client_, GetParam()));
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->info().version, GetParam());
  EXPECT_FALSE(t->info().cipher.empty());
  MqttOver mqtt(*t);
  auto c = mqtt.connect("pem-client");
  ASSERT_TRUE(c) << mqtt::to_string(c.error());
  EXPECT_TRUE(mqtt.round_trip("tls/pem", "over mutual TLS"));
  expect_identity("device-1");
  EXPECT_TRUE(mqtt.client().disconnect());
}

TEST_P(PemKey, MqttFiveAndAnIpAddressAsTheServerName) {
  start_broker();
  auto t = connect(pem_config(client_, GetParam()), "127.0.0.1");
  ASSERT_TRUE(t) << t.error().message();
  MqttOver mqtt(*t);
  auto c = mqtt.connect("pem-v5", mqtt::Version::V5);
  ASSERT_TRUE(c) << mqtt::to_string(c.error());
  EXPECT_TRUE(mqtt.round_trip("tls/v5", "five"));
}

INSTANTIATE_TEST_SUITE_P(Versions, PemKey, ::testing::Values(Version::Tls12, Version::Tls13),
                         [](const auto& p) { return version_name(p.param); });

TEST_F(TlsBroker, RsaClientKeyInAPemFile) {
  CertOptions c;
  c.common_name = "device-rsa";
  c.key_type = testing::KeyType::Rsa2048;
  Issued rsa = ca_->issue("device-rsa", c);
  ASSERT_TRUE(ca_->ok()) << ca_->error();
  start_broker();
  for (Version v : {Version::Tls12, Version::Tls13}) {
    auto t = connect(pem_config(rsa, v));
    ASSERT_TRUE(t) << t.error().message();
    MqttOver mqtt(*t);
    ASSERT_TRUE(mqtt.connect("rsa-client"));
    EXPECT_TRUE(mqtt.round_trip("tls/rsa", "rsa"));
  }
}

TEST_F(TlsBroker, AgentConnectsThroughTheTlsFactory) {
  start_broker();
  auto ctx = TlsContext::create(pem_config(client_, Version::Tls13));
  ASSERT_TRUE(ctx) << ctx.error().message();
  TlsTransportFactory factory(std::move(*ctx), "localhost", broker_->tls_port());
  auto c = factory.connect();
  ASSERT_TRUE(c) << factory.last_error().message();
  ASSERT_NE(c->transport, nullptr);
  EXPECT_GE(c->poll_handle, 0);
  MqttOver mqtt(*c->transport);
  ASSERT_TRUE(mqtt.connect("factory-client"));
  EXPECT_TRUE(mqtt.round_trip("tls/factory", "agent"));

  // A server certificate the client cannot trust is a permanent failure (no retry loop).
  Config wrong = pem_config(client_, Version::Tls13);
  wrong.ca_file = other_ca_->cert_file();
  auto ctx2 = TlsContext::create(wrong);
  ASSERT_TRUE(ctx2);
  TlsTransportFactory bad(std::move(*ctx2), "localhost", broker_->tls_port());
  auto f = bad.connect();
  ASSERT_FALSE(f);
  EXPECT_TRUE(f.error().permanent);
  EXPECT_EQ(bad.last_error().cause, Cause::UnknownCa);
  // The agent's failure keeps the TLS cause behind its MQTT-level ConnectFailed.
  EXPECT_EQ(f.error().error, mqtt::Errc::ConnectFailed);
  EXPECT_EQ(f.error().transport_error, Cause::UnknownCa);
}

// --- mutual TLS, key generated inside a PKCS#11 token ---------------------------------------------

struct TokenCase {
  TokenKind kind;
  Version version;
};

class TokenKeyTls : public TlsBroker, public ::testing::WithParamInterface<TokenCase> {
 protected:
  void SetUp() override {
    TlsBroker::SetUp();
    if (GetParam().kind == TokenKind::SoftHsm2 && std::string(EDGEKIT_SOFTHSM2_MODULE).empty()) {
      GTEST_SKIP() << "SoftHSM2 not installed (scripts/install-deps pkcs11)";
    }
    module_ = prepare_token_env(GetParam().kind, dir_.path);
  }

  Config token_config(const std::string& cert_file) const {
    Config c;
    c.ca_file = ca_->cert_file();
    c.certificate_file = cert_file;
    c.token_key = TokenKey{module_, kTokenLabel, kPin, "tls-key", {}};
    c.min_version = c.max_version = GetParam().version;
    return c;
  }

  std::string module_;
};

TEST_P(TokenKeyTls, MqttRoundTripWithTheKeyInTheToken) {
  for (auto curve : {pkcs11::Curve::P256, pkcs11::Curve::P384}) {
    const std::string label = curve == pkcs11::Curve::P256 ? "tls-key" : "tls-key-384";
    EVP_PKEY* pub = make_token_key(module_, label, curve);
    ASSERT_NE(pub, nullptr);
    CertOptions c;
    c.common_name = std::string("token-device-") + name(GetParam().kind);
    Issued cert = ca_->issue_for_public_key(label, pub, c);
    EVP_PKEY_free(pub);
    ASSERT_TRUE(ca_->ok()) << ca_->error();
    if (!broker_) start_broker();

    Config config = token_config(cert.cert_file);
    config.token_key->key_label = label;
    auto t = connect(config);
    ASSERT_TRUE(t) << t.error().message();
    EXPECT_EQ(t->info().version, GetParam().version);
    MqttOver mqtt(*t);
    auto r = mqtt.connect("token-client");
    ASSERT_TRUE(r) << mqtt::to_string(r.error()) << " / " << t->last_error().message();
    EXPECT_TRUE(mqtt.round_trip("tls/token", "key never left the token"));
    expect_identity(c.common_name);
  }
}

// The minimal 3.1.1 client (lite.hpp) over the same mutual TLS: the transport is the client's
// only dependency, so the smallest client gets keys that never leave the token too.
TEST_P(TokenKeyTls, TheMinimalClientRoundTripsWithTheKeyInTheToken) {
  EVP_PKEY* pub = make_token_key(module_, "tls-key");
  ASSERT_NE(pub, nullptr);
  CertOptions c;
  c.common_name = std::string("lite-device-") + name(GetParam().kind);
  Issued cert = ca_->issue_for_public_key("lite", pub, c);
  EVP_PKEY_free(pub);
  ASSERT_TRUE(ca_->ok()) << ca_->error();
  start_broker();
  auto t = connect(token_config(cert.cert_file));
  ASSERT_TRUE(t) << t.error().message();

  struct App {
    std::vector<std::string> received;
    int completed = 0;
    bool subscribed = false;
    void operator()(mqtt::lite::Client&, const mqtt::lite::Event& e) {
      if (e.type == mqtt::lite::EventType::MessageReceived) {
        received.emplace_back(mqtt::as_string(e.payload));
      }
      if (e.type == mqtt::lite::EventType::PublishCompleted) ++completed;
      if (e.type == mqtt::lite::EventType::SubscribeCompleted) subscribed = e.error == mqtt::Errc::Ok;
    }
  } app;
  SteadyClock clock;
  std::array<mqtt::lite::Record, 4> records{};
  std::array<std::uint16_t, 4> qos2{};
  std::array<std::byte, 512> rx{};
  mqtt::lite::Client client(clock, records, qos2, rx, mqtt::lite::Handler::bind(app));
  mqtt::lite::ConnectOptions o;
  o.client_id = "lite-token";
  auto r = client.connect(*t, o, kTimeout);
  ASSERT_TRUE(r) << mqtt::to_string(r.error()) << " / " << t->last_error().message();
  const mqtt::lite::Filter f[] = {{"tls/lite", mqtt::QoS::ExactlyOnce}};
  ASSERT_TRUE(client.subscribe(f, kTimeout));
  const std::string payload = "key never left the token";
  ASSERT_TRUE(client.publish("tls/lite", mqtt::as_bytes(payload), mqtt::QoS::ExactlyOnce, false,
                             kTimeout));
  for (int i = 0; i < 100 && (app.received.empty() || app.completed == 0); ++i) {
    ASSERT_TRUE(client.process_loop(Duration{50})) << t->last_error().message();
  }
  EXPECT_TRUE(app.subscribed);
  EXPECT_EQ(app.completed, 1);
  ASSERT_EQ(app.received.size(), 1u);
  EXPECT_EQ(app.received[0], payload);
  expect_identity(c.common_name);
  EXPECT_TRUE(client.disconnect());
}

TEST_P(TokenKeyTls, WrongPinNamesTheCkrCodeAndTheLockoutFollows) {
  EVP_PKEY* pub = make_token_key(module_, "tls-key");
  ASSERT_NE(pub, nullptr);
  Issued cert = ca_->issue_for_public_key("token", pub, CertOptions{});
  EVP_PKEY_free(pub);
  Config config = token_config(cert.cert_file);
  config.token_key->pin = "0000";
  auto ctx = TlsContext::create(config);
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().cause, Cause::TokenLoginFailed);
  EXPECT_EQ(ctx.error().ck_rv, CKR_PIN_INCORRECT);
  EXPECT_NE(ctx.error().message().find("CKR_PIN_INCORRECT"), std::string::npos)
      << ctx.error().message();
  if (GetParam().kind != TokenKind::Edgekit) return;  // SoftHSM2 has no retry limit
  // Our token locks after five wrong PINs (the lockout itself is tested in libs/pkcs11's
  // TokenClient.WrongPinLocksAfterFiveTriesAndTheLockSurvivesARestart); TLS then says so.
  for (int i = 0; i < 4; ++i) ASSERT_FALSE(TlsContext::create(config));
  config.token_key->pin = kPin;
  auto locked = TlsContext::create(config);
  ASSERT_FALSE(locked);
  EXPECT_EQ(locked.error().cause, Cause::TokenLoginFailed);
  EXPECT_EQ(locked.error().ck_rv, CKR_PIN_LOCKED);
  EXPECT_NE(locked.error().message().find("CKR_PIN_LOCKED"), std::string::npos);
}

TEST_P(TokenKeyTls, KeyRemovedFromTheTokenIsAClearError) {
  EVP_PKEY* pub = make_token_key(module_, "tls-key");
  ASSERT_NE(pub, nullptr);
  Issued cert = ca_->issue_for_public_key("token", pub, CertOptions{});
  EVP_PKEY_free(pub);
  start_broker();
  auto ctx = TlsContext::create(token_config(cert.cert_file));
  ASSERT_TRUE(ctx) << ctx.error().message();

  // Removed while the device runs: the next handshake's C_Sign fails and is named.
  {
    auto m = pkcs11::Module::load(module_);  // shares the context's initialised module
    ASSERT_TRUE(m);
    auto slot = m->find_token(kTokenLabel);
    ASSERT_TRUE(slot);
    auto s = m->open_session(*slot, true);
    ASSERT_TRUE(s);
    auto key = s->find_one({CKO_PRIVATE_KEY, "tls-key", std::nullopt});
    ASSERT_TRUE(key) << key.error().message();
    ASSERT_TRUE(s->destroy(*key));
  }
  auto t = TlsTransport::connect(*ctx, "localhost", broker_->tls_port(), kTimeout);
  std::optional<Error> e;
  if (!t) {
    e = t.error();
  } else {
    // Not expected: the handshake should have needed the signature.
    MqttOver mqtt(*t);
    EXPECT_FALSE(mqtt.connect("x"));
    e = t->last_error();
  }
  EXPECT_EQ(e->cause, Cause::TokenError) << e->message();
  EXPECT_NE(e->message().find("C_Sign"), std::string::npos) << e->message();

  // And at the next start: no key to find.
  ctx = TlsContext::create(token_config(cert.cert_file));
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().cause, Cause::TokenKeyNotFound) << ctx.error().message();
  EXPECT_NE(ctx.error().message().find("tls-key"), std::string::npos) << ctx.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Tokens, TokenKeyTls,
    ::testing::Values(TokenCase{TokenKind::Edgekit, Version::Tls13},
                      TokenCase{TokenKind::Edgekit, Version::Tls12},
                      TokenCase{TokenKind::SoftHsm2, Version::Tls13},
                      TokenCase{TokenKind::SoftHsm2, Version::Tls12}),
    [](const auto& p) {
      return std::string(name(p.param.kind)) + "_" + version_name(p.param.version);
    });

TEST_F(TlsBroker, TamperedTokenFileIsAClearError) {
  const std::string module = prepare_token_env(TokenKind::Edgekit, dir_.path);
  EVP_PKEY* pub = make_token_key(module, "tls-key");
  ASSERT_NE(pub, nullptr);
  Issued cert = ca_->issue_for_public_key("token", pub, CertOptions{});
  EVP_PKEY_free(pub);
  Config config;
  config.ca_file = ca_->cert_file();
  config.certificate_file = cert.cert_file;
  config.token_key = TokenKey{module, kTokenLabel, kPin, "tls-key", {}};
  ASSERT_TRUE(TlsContext::create(config));  // intact: fine

  // One bit of the token file flipped (its integrity check must catch it).
  const std::string path = dir_.path + "/token/token.ekt";
  ASSERT_TRUE(std::filesystem::exists(path));
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-40, std::ios::end);
    char ch = 0;
    f.read(&ch, 1);
    ch = static_cast<char>(ch ^ 0x01);
    f.seekp(-40, std::ios::end);
    f.write(&ch, 1);
  }
  auto ctx = TlsContext::create(config);
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error().cause, Cause::TokenUnavailable);
  EXPECT_EQ(ctx.error().ck_rv, CKR_TOKEN_NOT_RECOGNIZED) << ctx.error().message();
  EXPECT_NE(ctx.error().message().find("CKR_TOKEN_NOT_RECOGNIZED"), std::string::npos)
      << ctx.error().message();
}

// --- the server's certificate ---------------------------------------------------------------------

TEST_F(TlsBroker, ServerCertificateFromAnUnknownCa) {
  start_broker();
  Config c = pem_config(client_, Version::Tls13);
  c.ca_file = other_ca_->cert_file();
  auto t = connect(c);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().cause, Cause::UnknownCa) << t.error().message();
  // Mosquitto sends its CA along with its certificate: the chain ends in a root we do not trust.
  EXPECT_TRUE(t.error().verify_result == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
              t.error().verify_result == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN)
      << t.error().verify_result;
  EXPECT_EQ(t.error().message().rfind("unknown CA: ", 0), 0u) << t.error().message();

  // A server certificate issued straight by an untrusted CA, without the root in the chain.
  TestCa rogue(dir_.path, "rogue-ca");
  CertOptions s;
  s.common_name = "localhost";
  s.dns_names = {"localhost"};
  s.server = true;
  Issued rogue_server = rogue.issue("rogue-server", s);
  ASSERT_TRUE(rogue.ok()) << rogue.error();
  MosquittoOptions o;
  MosquittoOptions::TlsListener t2;
  t2.certfile = rogue_server.cert_file;
  t2.keyfile = rogue_server.key_file;
  o.tls = t2;
  Mosquitto rogue_broker(o);
  ASSERT_TRUE(rogue_broker.start()) << rogue_broker.error() << rogue_broker.log();
  auto ctx = TlsContext::create(pem_config(client_, Version::Tls12));
  ASSERT_TRUE(ctx);
  auto r = TlsTransport::connect(*ctx, "localhost", rogue_broker.tls_port(), kTimeout);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().cause, Cause::UnknownCa) << r.error().message();
  EXPECT_EQ(r.error().verify_result, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(r.error().message(), "unknown CA: unable to get local issuer certificate");
}

TEST_F(TlsBroker, HostNameMismatch) {
  start_broker();
  for (Version v : {Version::Tls12, Version::Tls13}) {
    Config c = pem_config(client_, v);
    c.server_name = "broker.example.com";
    auto t = connect(c);
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().cause, Cause::HostNameMismatch) << t.error().message();
    EXPECT_EQ(t.error().verify_result, X509_V_ERR_HOSTNAME_MISMATCH);
  }
  // An IP address the certificate does not list.
  Config c = pem_config(client_, Version::Tls13);
  c.server_name = "127.0.0.2";
  auto t = connect(c, "127.0.0.1");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().cause, Cause::HostNameMismatch) << t.error().message();
  EXPECT_EQ(t.error().verify_result, X509_V_ERR_IP_ADDRESS_MISMATCH);
}

// --- the server's verdict on the client certificate ------------------------------------------------

class ClientVerdict : public TlsBroker, public ::testing::WithParamInterface<Version> {};

TEST_P(ClientVerdict, ExpiredClientCertificateIsRefusedWithAnAlert) {
  start_broker();
  auto e = failure_of(pem_config(expired_, GetParam()));
  ASSERT_TRUE(e.has_value()) << "the broker accepted an expired certificate";
  EXPECT_EQ(e->cause, Cause::ServerAlert) << e->message();
  EXPECT_EQ(e->alert, SSL_AD_CERTIFICATE_EXPIRED);
  EXPECT_EQ(e->message(), "server alert: certificate expired");
}

TEST_P(ClientVerdict, RevokedClientCertificateIsRefusedThroughTheCrl) {
  start_broker();
  auto e = failure_of(pem_config(revoked_, GetParam()));
  ASSERT_TRUE(e.has_value()) << "the broker accepted a revoked certificate";
  EXPECT_EQ(e->cause, Cause::ServerAlert) << e->message();
  EXPECT_EQ(e->alert, SSL_AD_CERTIFICATE_REVOKED);
  EXPECT_EQ(e->message(), "server alert: certificate revoked");
}

TEST_P(ClientVerdict, ClientCertificateFromAnotherCaIsRefused) {
  start_broker();
  auto e = failure_of(pem_config(stranger_, GetParam()));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->cause, Cause::ServerAlert) << e->message();
  EXPECT_EQ(e->alert, SSL_AD_UNKNOWN_CA);
  EXPECT_EQ(e->message(), "server alert: unknown CA");
}

TEST_P(ClientVerdict, NoClientCertificateIsRefused) {
  start_broker();
  Config c;
  c.ca_file = ca_->cert_file();
  c.min_version = c.max_version = GetParam();
  auto e = failure_of(c);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->cause, Cause::ServerAlert) << e->message();
  if (GetParam() == Version::Tls13) {
    EXPECT_EQ(e->message(), "server alert: certificate required");  // RFC 8446 4.4.2.4
  } else {
    EXPECT_EQ(e->message(), "server alert: handshake failure");
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, ClientVerdict,
                         ::testing::Values(Version::Tls12, Version::Tls13),
                         [](const auto& p) { return version_name(p.param); });

TEST_F(TlsBroker, TlsTwelveClientAgainstATlsThirteenOnlyListener) {
  start_broker("tlsv1.3");
  auto t = connect(pem_config(client_, Version::Tls12));
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().cause, Cause::ServerAlert) << t.error().message();
  EXPECT_EQ(t.error().message(), "server alert: protocol version");
}

// --- configuration and TCP ------------------------------------------------------------------------

TEST_F(TlsBroker, ConfigurationErrorsNameTheCause) {
  Config none;
  auto r = TlsContext::create(none);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().cause, Cause::InvalidConfig);
  EXPECT_NE(r.error().message().find("dangerously_disable_server_verification"), std::string::npos);

  Config c = pem_config(client_, Version::Tls13);
  c.min_version = Version::Tls13;
  c.max_version = Version::Tls12;
  EXPECT_EQ(TlsContext::create(c).error().cause, Cause::InvalidConfig);

  c = pem_config(client_, Version::Tls13);
  c.private_key_file = expired_.key_file;
  EXPECT_EQ(TlsContext::create(c).error().cause, Cause::KeyCertificateMismatch);

  c = pem_config(client_, Version::Tls13);
  c.ca_file = dir_.path + "/missing.pem";
  EXPECT_EQ(TlsContext::create(c).error().cause, Cause::CaLoadFailed);

  c = pem_config(client_, Version::Tls13);
  c.certificate_file = client_.key_file;
  EXPECT_EQ(TlsContext::create(c).error().cause, Cause::CertificateLoadFailed);

  c = pem_config(client_, Version::Tls13);
  c.private_key_file = client_.cert_file;
  EXPECT_EQ(TlsContext::create(c).error().cause, Cause::PrivateKeyLoadFailed);

  c = pem_config(client_, Version::Tls13);
  c.token_key = TokenKey{"/nonexistent/module.so", "t", "1", "k", {}};
  EXPECT_EQ(TlsContext::create(c).error().cause, Cause::InvalidConfig);  // both keys set
  c.private_key_file.clear();
  auto m = TlsContext::create(c);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().cause, Cause::TokenUnavailable);

  c = pem_config(client_, Version::Tls13);
  c.alpn = {std::string(256, 'a')};
  EXPECT_EQ(TlsContext::create(c).error().cause, Cause::InvalidConfig);
}

TEST_F(TlsBroker, TcpFailuresAndTimeout) {
  Config c = pem_config(client_, Version::Tls13);
  auto ctx = TlsContext::create(c);
  ASSERT_TRUE(ctx);
  // Nobody listens: refused.
  std::uint16_t closed_port = 0;
  {
    auto l = transport::TcpListener::bind("127.0.0.1", 0);
    ASSERT_TRUE(l);
    closed_port = l->port();
  }
  auto r = TlsTransport::connect(*ctx, "127.0.0.1", closed_port, edgekit::Duration{1000});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().cause, Cause::ConnectionRefused) << r.error().message();

  // A listener that never answers the ClientHello: the handshake times out.
  auto l = transport::TcpListener::bind("127.0.0.1", 0);
  ASSERT_TRUE(l);
  const auto start = std::chrono::steady_clock::now();
  r = TlsTransport::connect(*ctx, "127.0.0.1", l->port(), edgekit::Duration{300});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().cause, Cause::Timeout) << r.error().message();
  EXPECT_LT(took, std::chrono::seconds(3));

  r = TlsTransport::connect(*ctx, "no-such-host.invalid", 8883, edgekit::Duration{1000});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().cause, Cause::HostNotFound) << r.error().message();
}

}  // namespace
}  // namespace edgekit::tls::test
