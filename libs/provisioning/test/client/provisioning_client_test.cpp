// The provisioning client against a real Mosquitto and a scripted service on the real topics:
// both certificate flows, RegisterThing, both formats, both MQTT drivers (blocking client and
// agent), timeouts, rejections, malformed replies, and power loss at every step followed by a
// clean resume or restart with exactly one device identity in the token.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <edgekit/agent/agent.hpp>
#include <edgekit/mqtt/client.hpp>
#include <edgekit/mqtt/session.hpp>
#include <edgekit/pki/token.hpp>
#include <edgekit/provisioning/client.hpp>
#include <edgekit/provisioning/identity.hpp>
#include <edgekit/testing/blocking_device.hpp>
#include <edgekit/testing/mosquitto.hpp>
#include <edgekit/testing/test_pki.hpp>
#include <edgekit/testing/token_env.hpp>
#include <edgekit/tls/tls.hpp>
#include <edgekit/transport/tcp.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "fake_service.hpp"

namespace edgekit::provisioning::test {
namespace {

using namespace std::chrono_literals;

constexpr char kSoPin[] = "87654321";
constexpr char kPin[] = "1234";
constexpr char kTemplate[] = "FleetTemplate";

struct FakeWallClock final : WallClock {
  std::atomic<std::int64_t> now{1'800'000'000};
  [[nodiscard]] std::int64_t epoch_seconds() const noexcept override { return now.load(); }
};

struct RecordingSleeper final : Sleeper {
  std::vector<Duration> slept;
  void sleep(Duration d) noexcept override { slept.push_back(d); }
};

// A state store that loses power (fails, writing nothing) at its `fail_at`-th save.
struct PowerCutStore final : StateStore {
  PowerCutStore(StateStore& store, int cut) : inner(store), fail_at(cut) {}
  Result<std::optional<State>, Errc> load() override { return inner.load(); }
  Result<void, Errc> save(const State& s) override {
    if (++saves == fail_at) return fail(Errc::StateStoreFailed);
    return inner.save(s);
  }
  Result<void, Errc> clear() override { return inner.clear(); }
  StateStore& inner;
  int fail_at;
  int saves = 0;
};

/// The device's MQTT side over the blocking client (shared test support).
using BlockingDevice = edgekit::testing::BlockingDevice;

class Provisioning : public edgekit::testing::MosquittoFixture {
 protected:
  void SetUp() override {
    MosquittoFixture::SetUp();
    if (HasFatalFailure()) return;
    char tmpl[] = "/tmp/edgekit-provisioning-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string path = edgekit::testing::prepare_token_env(
        edgekit::testing::TokenKind::Edgekit, dir_, EDGEKIT_TOKEN_MODULE, "");
    auto m = pkcs11::Module::load(path);
    ASSERT_TRUE(m) << m.error().message();
    module_.emplace(std::move(*m));
    auto slot = edgekit::testing::init_test_token(*module_, "device-token", kSoPin, kPin);
    ASSERT_TRUE(slot);
    slot_ = *slot;
    open_session();
    // The claim identity the device connects with (here over plain TCP: the label is what
    // matters, it must survive provisioning untouched).
    const pki::Bytes claim_id{'c', 'l', 'a', 'i', 'm'};
    ASSERT_TRUE(pki::generate_token_key(*session_, pki::KeyAlgorithm::EcP256, "claim", claim_id));
    service_ = std::make_unique<FakeService>(broker().port());
    ASSERT_TRUE(service_->start());
    file_store_.emplace(dir_ + "/provisioning.state");
  }
  void TearDown() override {
    service_.reset();
    session_.reset();
    module_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    MosquittoFixture::TearDown();
  }

  // A token session as a device gets it at boot (logged in).
  void open_session() {
    session_.reset();
    auto s = module_->open_session(slot_, true);
    ASSERT_TRUE(s) << s.error().message();
    auto login = s->login(pkcs11::UserType::User, kPin);
    (void)login;  // CKR_USER_ALREADY_LOGGED_IN after a reboot of the same process is fine
    session_.emplace(std::move(*s));
  }

  Options options(Method method = Method::CreateCertificateFromCsr, Format f = Format::Json) {
    Options o;
    o.method = method;
    o.format = f;
    o.template_name = kTemplate;
    o.parameters = {{"SerialNumber", "SN-0042"}, {"Model", "edge-1"}};
    o.reply_timeout = Duration{1500};
    o.attempts = 1;
    return o;
  }

  std::size_t objects_labelled(const std::string& label) {
    pkcs11::ObjectQuery q;
    q.label = label;
    auto found = session_->find(q);
    return found ? found->size() : 0;
  }

  // One boot of the device over `device` (connected here): a fresh channel and provisioner;
  // runs to the end. The device stays the caller's, for a look at its receive buffer.
  Result<Identity, Errc> run_on(BlockingDevice& device, const Options& o,
                                std::string* detail = nullptr) {
    open_session();
    if (!device.connect(broker().port(), "claim-device")) return fail(Errc::NotConnected);
    ClientChannel channel(device.client, device.clock);
    // Every boot reads the state anew: a store object of its own over the same file.
    FileStateStore boot_store(file_store_->path());
    StateStore& store = store_for_run_ == nullptr || store_for_run_ == &*file_store_
                            ? static_cast<StateStore&>(boot_store)
                            : *store_for_run_;
    Provisioner p(*session_, store, wall_, sleeper_, random_, o);
    auto r = p.run(channel);
    if (detail != nullptr) *detail = p.detail();
    last_rejection_ = p.last_rejection();
    return r;
  }

  // One boot with a device of its own.
  Result<Identity, Errc> boot_and_run(const Options& o, StateStore& store,
                                      std::string* detail = nullptr) {
    BlockingDevice device;
    store_for_run_ = &store;
    auto r = run_on(device, o, detail);
    store_for_run_ = nullptr;
    return r;
  }

  // The device's private key is in the token, sensitive and not extractable.
  void expect_device_key_stays_in_token() {
    pkcs11::ObjectQuery q;
    q.object_class = CKO_PRIVATE_KEY;
    q.label = "device";
    auto key = session_->find_one(q);
    ASSERT_TRUE(key);
    EXPECT_FALSE(session_->attribute(*key, CKA_VALUE));
    auto extractable = session_->attribute(*key, CKA_EXTRACTABLE);
    ASSERT_TRUE(extractable);
    EXPECT_EQ(extractable->at(0), CK_FALSE);
  }

  // One boot that must fail with `expected` (the device stops there: a power loss, or an
  // error the application gives up on).
  void expect_boot_fails(Errc expected, const Options& o) {
    auto r = boot_and_run(o, *file_store_);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), expected) << to_string(r.error());
  }

  // One boot over the agent (the thread-safe driver) instead of the blocking client.
  Result<Identity, Errc> run_over_agent(mqtt::Version version, const Options& o) {
    open_session();
    agent::TcpTransportFactory factory("127.0.0.1", broker().port());
    SteadyClock clock;
    mqtt::ConnectOptions connect;
    connect.version = version;
    connect.client_id = "claim-device-agent";
    agent::Config config;
    config.slot_size = 4096;
    agent::Agent agent(config, connect, factory, clock);
    if (!agent.start()) return fail(Errc::NotConnected);
    AgentChannel channel(agent);
    Provisioner p(*session_, *file_store_, wall_, sleeper_, random_, o);
    auto r = p.run(channel);
    if (!r) ADD_FAILURE() << p.detail();
    agent.stop();
    return r;
  }

  std::string dir_;
  std::optional<pkcs11::Module> module_;
  CK_SLOT_ID slot_ = 0;
  std::optional<pkcs11::Session> session_;
  std::unique_ptr<FakeService> service_;
  std::optional<FileStateStore> file_store_;
  FakeWallClock wall_;
  RecordingSleeper sleeper_;
  backoff::SplitMix64 random_{42};
  Rejection last_rejection_;
  StateStore* store_for_run_ = nullptr;
};

TEST_F(Provisioning, CsrFlowRegistersTheThingOverTheBlockingClient) {
  std::string detail;
  auto r = boot_and_run(options(), *file_store_, &detail);
  ASSERT_TRUE(r) << to_string(r.error()) << ": " << detail;
  EXPECT_EQ(r->thing_name, "thing-SN-0042");
  EXPECT_EQ(r->device_label, "device");
  EXPECT_EQ(r->certificate_id.size(), 64u);
  EXPECT_FALSE(r->resumed);
  EXPECT_FALSE(r->already_provisioned);
  ASSERT_EQ(r->device_configuration.size(), 2u);
  EXPECT_EQ(r->device_configuration[0], (std::pair<std::string, std::string>{"Fleet", "blue"}));
  EXPECT_EQ(r->device_configuration[1], (std::pair<std::string, std::string>{"Interval", "30"}));
  EXPECT_EQ(service_->last_parameters().at("Model"), "edge-1");
  EXPECT_EQ(service_->registered_certificates().count(r->certificate_id), 1u);
  // One key pair and one certificate under the device label; the claim key untouched.
  EXPECT_EQ(objects_labelled("device"), 3u);
  EXPECT_EQ(objects_labelled("claim"), 2u);
  // The key was generated in the token: never extractable.
  expect_device_key_stays_in_token();
  auto state = file_store_->load();
  ASSERT_TRUE(state && *state);
  EXPECT_EQ((*state)->step, Step::Registered);
  EXPECT_TRUE((*state)->ownership_token.empty());
}

TEST_F(Provisioning, KeysFlowImportsTheKeyAndWipesEveryCopyItCanReach) {
  BlockingDevice device;
  std::string detail;
  auto r = run_on(device, options(Method::CreateKeysAndCertificate), &detail);
  ASSERT_TRUE(r) << to_string(r.error()) << ": " << detail;
  EXPECT_EQ(service_->requests(Api::CreateKeysAndCertificate), 1);
  EXPECT_EQ(objects_labelled("device"), 3u);
  expect_device_key_stays_in_token();  // imported as sensitive, not extractable
  // The MQTT receive buffer held the reply with the key: nothing of it is left there.
  const std::string_view rx(reinterpret_cast<const char*>(device.rx.data()), device.rx.size());
  EXPECT_EQ(rx.find("PRIVATE KEY"), std::string_view::npos);
  EXPECT_EQ(rx.find("privateKey"), std::string_view::npos);
}

// Fleet provisioning replies carry no clientToken: a reply that comes after its request timed
// out is taken by the next attempt (each reply is whole in itself: a certificate with its own
// key and token). The reply to that attempt finds the subscription gone.
TEST_F(Provisioning, LateReplyServesTheRetry) {
  service_->script(Api::CreateKeysAndCertificate, {Script::Late, Script::Late});
  Options o = options(Method::CreateKeysAndCertificate);
  o.attempts = 2;
  o.reply_timeout = Duration{400};
  auto r = boot_and_run(o, *file_store_);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(service_->requests(Api::CreateKeysAndCertificate), 2);
  EXPECT_EQ(objects_labelled("device"), 3u);
}

// A reply nobody waits for (here a duplicate delivery, which arrives while the channel
// unsubscribes) is dropped — and wiped in the receive buffer, since it holds a private key.
TEST_F(Provisioning, DuplicateReplyIsDroppedAndWiped) {
  service_->script(Api::CreateKeysAndCertificate, {Script::Twice});
  BlockingDevice device;
  auto r = run_on(device, options(Method::CreateKeysAndCertificate));
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(objects_labelled("device"), 3u);
  const std::string_view rx(reinterpret_cast<const char*>(device.rx.data()), device.rx.size());
  EXPECT_EQ(rx.find("PRIVATE KEY"), std::string_view::npos);
}

TEST_F(Provisioning, KeysFlowInCborOverTheAgent) {
  auto r =
      run_over_agent(mqtt::Version::V311, options(Method::CreateKeysAndCertificate, Format::Cbor));
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(r->thing_name, "thing-SN-0042");
  EXPECT_EQ(r->device_configuration.size(), 2u);
  EXPECT_EQ(objects_labelled("device"), 3u);
}

TEST_F(Provisioning, CsrFlowInJsonOverTheAgent) {
  auto r = run_over_agent(mqtt::Version::V5, options());
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(objects_labelled("device"), 3u);
}

TEST_F(Provisioning, SilentServiceIsATimeoutAfterEveryAttemptWithBackoff) {
  service_->script(Api::CreateCertificateFromCsr, {Script::Drop, Script::Drop, Script::Drop});
  Options o = options();
  o.attempts = 3;
  o.reply_timeout = Duration{300};
  auto r = boot_and_run(o, *file_store_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::Timeout);
  EXPECT_EQ(service_->requests(Api::CreateCertificateFromCsr), 3);
  EXPECT_EQ(sleeper_.slept.size(), 2u);  // a backoff between attempts, none after the last
}

TEST_F(Provisioning, ThrottledRequestIsRetriedAndSucceeds) {
  service_->script(Api::RegisterThing, {Script::Throttle});
  Options o = options();
  o.attempts = 2;
  auto r = boot_and_run(o, *file_store_);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(service_->requests(Api::RegisterThing), 2);
  EXPECT_EQ(sleeper_.slept.size(), 1u);
}

TEST_F(Provisioning, RejectionIsNamedWithTheAwsDocument) {
  service_->script(Api::RegisterThing, {Script::Reject});
  auto r = boot_and_run(options(), *file_store_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::InvalidParameters);
  EXPECT_EQ(last_rejection_.api, Api::RegisterThing);
  EXPECT_EQ(last_rejection_.status_code, 400);
  EXPECT_EQ(last_rejection_.error_code, "InvalidParameters");
  EXPECT_EQ(last_rejection_.error_message, "Cannot resolve reference value: SerialNumber");
  EXPECT_EQ(service_->requests(Api::RegisterThing), 1);  // not retried
}

TEST_F(Provisioning, AccessDeniedCertificateRequestLeavesNoDeviceObjects) {
  service_->set_rejection(403, "ACCESS_DENIED", "hook refused");
  service_->script(Api::CreateCertificateFromCsr, {Script::Reject});
  expect_boot_fails(Errc::AccessDenied, options());
  // The key generated for the CSR stays until the next run destroys it (a power loss could
  // leave it just the same); the next run completes with exactly one identity.
  auto again = boot_and_run(options(), *file_store_);
  ASSERT_TRUE(again) << to_string(again.error());
  EXPECT_EQ(objects_labelled("device"), 3u);
}

TEST_F(Provisioning, MalformedReplyIsNamed) {
  service_->script(Api::CreateCertificateFromCsr, {Script::Malformed});
  expect_boot_fails(Errc::MalformedReply, options());
}

TEST_F(Provisioning, ProvisionedDeviceUsesItsIdentityWithoutAnyRequest) {
  ASSERT_TRUE(boot_and_run(options(), *file_store_));
  const int before =
      service_->requests(Api::CreateCertificateFromCsr) + service_->requests(Api::RegisterThing);
  open_session();
  Provisioner p(*session_, *file_store_, wall_, sleeper_, random_, options());
  auto id = p.provisioned();
  ASSERT_TRUE(id && *id);
  EXPECT_EQ((*id)->thing_name, "thing-SN-0042");
  auto r = boot_and_run(options(), *file_store_);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->already_provisioned);
  EXPECT_EQ(
      service_->requests(Api::CreateCertificateFromCsr) + service_->requests(Api::RegisterThing),
      before);
  EXPECT_EQ(objects_labelled("device"), 3u);
}

// Power loss after the certificate arrived, before RegisterThing answered: the next boot
// registers with the stored ownership token and the same certificate.
TEST_F(Provisioning, ResumesRegistrationWithTheStoredTokenAfterPowerLoss) {
  service_->script(Api::RegisterThing, {Script::Drop});
  expect_boot_fails(Errc::Timeout, options());
  auto state = file_store_->load();
  ASSERT_TRUE(state && *state);
  EXPECT_EQ((*state)->step, Step::CertificateReceived);
  const std::string certificate_id = (*state)->certificate_id;
  auto r = boot_and_run(options(), *file_store_);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_TRUE(r->resumed);
  EXPECT_EQ(r->certificate_id, certificate_id);
  EXPECT_EQ(service_->certificates_issued(), 1);
  EXPECT_EQ(objects_labelled("device"), 3u);
}

TEST_F(Provisioning, ExpiredOwnershipTokenStartsOverWithANewCertificate) {
  service_->script(Api::RegisterThing, {Script::Drop});
  expect_boot_fails(Errc::Timeout, options());
  wall_.now += 2 * 3600;  // the device was off for two hours
  auto r = boot_and_run(options(), *file_store_);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_FALSE(r->resumed);
  EXPECT_EQ(service_->certificates_issued(), 2);
  EXPECT_EQ(objects_labelled("device"), 3u);
}

TEST_F(Provisioning, RefusedStoredTokenStartsOverOnce) {
  service_->script(Api::RegisterThing, {Script::Drop, Script::ForgetTokens});
  expect_boot_fails(Errc::Timeout, options());
  auto r = boot_and_run(options(), *file_store_);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(service_->certificates_issued(), 2);
  EXPECT_EQ(objects_labelled("device"), 3u);
}

// Power loss after the key was generated, before the certificate came: the key is destroyed
// and the flow starts over.
TEST_F(Provisioning, KeyWithoutCertificateIsDestroyedAndTheFlowStartsOver) {
  service_->script(Api::CreateCertificateFromCsr, {Script::Drop});
  expect_boot_fails(Errc::Timeout, options());
  EXPECT_EQ(objects_labelled("device"), 2u);  // the key pair of the lost attempt
  auto r = boot_and_run(options(), *file_store_);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(objects_labelled("device"), 3u);
}

// Power loss at each write of the state (before Started is written; after the certificate was
// stored in the token but before CertificateReceived was written; after RegisterThing was
// accepted but before Registered was written), for both flows: the next boot completes and
// the token holds exactly one device identity.
class PowerLoss : public Provisioning,
                  public ::testing::WithParamInterface<std::tuple<int, Method>> {};

TEST_P(PowerLoss, AtEveryStateWriteTheNextBootEndsWithOneIdentity) {
  const auto [cut, method] = GetParam();
  {
    PowerCutStore store(*file_store_, cut);
    auto r = boot_and_run(options(method), store);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), Errc::StateStoreFailed);
  }
  auto r = boot_and_run(options(method), *file_store_);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(objects_labelled("device"), 3u);
  EXPECT_EQ(objects_labelled("claim"), 2u);
  auto state = file_store_->load();
  ASSERT_TRUE(state && *state);
  EXPECT_EQ((*state)->step, Step::Registered);
  EXPECT_EQ((*state)->certificate_id, r->certificate_id);
}

std::string power_loss_name(const ::testing::TestParamInfo<std::tuple<int, Method>>& info) {
  static const char* const kSteps[] = {"", "BeforeStarted", "BeforeCertificateReceived",
                                       "BeforeRegistered"};
  const bool csr = std::get<1>(info.param) == Method::CreateCertificateFromCsr;
  return std::string(kSteps[std::get<0>(info.param)]) + (csr ? "Csr" : "Keys");
}

INSTANTIATE_TEST_SUITE_P(Steps, PowerLoss,
                         ::testing::Combine(::testing::Values(1, 2, 3),
                                            ::testing::Values(Method::CreateCertificateFromCsr,
                                                              Method::CreateKeysAndCertificate)),
                         power_loss_name);

TEST_F(Provisioning, CorruptedStateStartsOver) {
  ASSERT_TRUE(boot_and_run(options(), *file_store_));
  { std::ofstream(file_store_->path(), std::ios::app) << "x"; }
  auto state = file_store_->load();
  ASSERT_FALSE(state);
  EXPECT_EQ(state.error(), Errc::StateCorrupted);
  auto r = boot_and_run(options(), *file_store_);
  ASSERT_TRUE(r) << to_string(r.error());
  EXPECT_EQ(objects_labelled("device"), 3u);
  EXPECT_EQ(service_->certificates_issued(), 2);
}

// The end of the flow: the device reconnects over mutual TLS with its new identity, the key
// signing in the token, to a broker that trusts only the provisioning CA for clients.
TEST_F(Provisioning, ReconnectsOverMutualTlsWithTheNewIdentity) {
  auto r = boot_and_run(options(), *file_store_);
  ASSERT_TRUE(r) << to_string(r.error());
  edgekit::testing::TestCa server_ca(dir_, "server-ca");
  ASSERT_TRUE(server_ca.ok()) << server_ca.error();
  edgekit::testing::CertOptions server;
  server.common_name = "localhost";
  server.ip_addresses = {"127.0.0.1"};
  server.server = true;
  const auto issued = server_ca.issue("broker", server);
  const std::string device_ca = dir_ + "/device-ca.pem";
  std::ofstream(device_ca) << service_->ca_pem();
  edgekit::testing::MosquittoOptions mo;
  mo.tls = edgekit::testing::MosquittoOptions::TlsListener{};
  mo.tls->cafile = device_ca;
  mo.tls->certfile = issued.cert_file;
  mo.tls->keyfile = issued.key_file;
  mo.tls->require_certificate = true;
  edgekit::testing::Mosquitto tls_broker(mo);
  ASSERT_TRUE(tls_broker.start()) << tls_broker.error();

  open_session();
  auto config = tls_config_for(*session_, TokenLocation{EDGEKIT_TOKEN_MODULE, "device-token", kPin},
                               r->device_label, server_ca.cert_file(), dir_ + "/device.crt");
  ASSERT_TRUE(config) << to_string(config.error());
  auto context = tls::TlsContext::create(*config);
  ASSERT_TRUE(context) << context.error().message();
  auto transport =
      tls::TlsTransport::connect(*context, "127.0.0.1", tls_broker.tls_port(), Duration{5000});
  ASSERT_TRUE(transport) << transport.error().message();
  BlockingDevice device;
  device.client.set_event_handler({});
  ASSERT_TRUE(device.client.set_transport(*transport));
  mqtt::ConnectOptions o;
  o.version = mqtt::Version::V5;
  o.client_id = r->thing_name;
  auto connack = device.client.connect(o, Duration{5000});
  ASSERT_TRUE(connack) << mqtt::to_string(connack.error());
  EXPECT_TRUE(device.client.disconnect());
  // The claim identity cannot be used for it: it has no certificate in the token.
  EXPECT_FALSE(tls_config_for(*session_, TokenLocation{EDGEKIT_TOKEN_MODULE, "device-token", kPin},
                              "claim", server_ca.cert_file(), dir_ + "/claim.crt"));
}

TEST_F(Provisioning, RefusesEqualClaimAndDeviceLabels) {
  Options o = options();
  o.device_label = "claim";
  auto r = boot_and_run(o, *file_store_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::InvalidArgument);
  EXPECT_EQ(objects_labelled("claim"), 2u);
}

}  // namespace
}  // namespace edgekit::provisioning::test
