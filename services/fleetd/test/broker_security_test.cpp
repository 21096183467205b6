// The secured broker end to end: a real Mosquitto with mutual TLS and edgekit's plugin, a real
// fleetd deciding, devices with real certificates. Every isolation rule is tried as an attacker
// would and the refusal asserted.

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/client.hpp"
#include "edgekit/testing/child_process.hpp"
#include "edgekit/testing/mosquitto.hpp"
#include "edgekit/testing/test_pki.hpp"
#include "edgekit/tls/tls.hpp"
#include "edgekit/transport/tcp.hpp"
#include "broker_link.hpp"
#include "hooks/server.hpp"
#include "revocation.hpp"
#include "plugin_logic.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mqtt::ReasonCode;

constexpr Duration kTimeout{5000};

struct CertFacts {
  std::string id;
  std::string pem;
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
};

std::int64_t epoch_of(const ASN1_TIME* t) {
  std::tm tm{};
  ASN1_TIME_to_tm(t, &tm);
  return static_cast<std::int64_t>(timegm(&tm));
}

CertFacts facts_of(const std::string& pem_file) {
  CertFacts f;
  std::ifstream in(pem_file);
  f.pem.assign(std::istreambuf_iterator<char>(in), {});
  BIO* bio = BIO_new_mem_buf(f.pem.data(), static_cast<int>(f.pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!x) return f;
  unsigned char* der = nullptr;
  int len = i2d_X509(x, &der);
  f.id = plugin::sha256_hex(der, static_cast<std::size_t>(len));
  OPENSSL_free(der);
  f.not_before = epoch_of(X509_get0_notBefore(x));
  f.not_after = epoch_of(X509_get0_notAfter(x));
  X509_free(x);
  return f;
}

// One MQTT client: a device over mutual TLS, or fleetd-like over TCP with the token.
class Peer {
 public:
  Peer() : rx_(64 * 1024), tx_(64 * 1024) {
    mqtt::SessionStorage storage;
    storage.outgoing = outgoing_;
    storage.incoming_qos2 = incoming_qos2_;
    storage.client_id = client_id_;
    session_ = std::make_unique<mqtt::Session>(storage, nullptr);
    client_ = std::make_unique<mqtt::Client>(clock_, *session_, rx_, tx_,
                                             mqtt::EventHandler::bind(*this));
  }

  // Mutual TLS with `cert` (PEM files). Returns the connect error, if any.
  mqtt::Result<mqtt::ConnAck> connect_tls(std::uint16_t port, const std::string& ca,
                                          const testing::Issued& cert, std::string_view id,
                                          mqtt::Version v = mqtt::Version::V5) {
    tls::Config c;
    c.ca_file = ca;
    c.certificate_file = cert.cert_file;
    c.private_key_file = cert.key_file;
    auto ctx = tls::TlsContext::create(c);
    if (!ctx) return edgekit::fail(mqtt::Errc::TransportError);
    ctx_ = std::make_unique<tls::TlsContext>(std::move(*ctx));
    auto t = tls::TlsTransport::connect(*ctx_, "localhost", port, kTimeout);
    if (!t) return edgekit::fail(mqtt::Errc::TransportError);
    tls_ = std::make_unique<tls::TlsTransport>(std::move(*t));
    if (auto s = client_->set_transport(*tls_); !s) return edgekit::fail(s.error());
    return mqtt_connect(id, v, {}, {});
  }

  mqtt::Result<mqtt::ConnAck> connect_tcp(std::uint16_t port, std::string_view id,
                                          std::string_view user, std::string_view password) {
    auto t = transport::TcpTransport::connect("127.0.0.1", port, kTimeout);
    if (!t) return edgekit::fail(mqtt::Errc::TransportError);
    tcp_ = std::make_unique<transport::TcpTransport>(std::move(*t));
    if (auto s = client_->set_transport(*tcp_); !s) return edgekit::fail(s.error());
    return mqtt_connect(id, mqtt::Version::V5, user, password);
  }

  ReasonCode subscribe(std::string_view filter) {
    mqtt::Subscription sub{filter, mqtt::SubscribeOptions{mqtt::QoS::AtLeastOnce}};
    std::array<ReasonCode, 1> codes{};
    auto r = client_->subscribe({&sub, 1}, codes, kTimeout);
    EXPECT_TRUE(r) << filter << ": " << (r ? "" : mqtt::to_string(r.error()));
    return codes[0];
  }

  // QoS 1 publish; the PUBACK's reason code (MQTT 5 says 0x87 when refused).
  ReasonCode publish(std::string_view topic, std::string_view payload, bool retain = false,
                     std::span<const mqtt::UserProperty> props = {}) {
    mqtt::Publish p;
    p.topic = topic;
    p.payload = mqtt::as_bytes(payload);
    p.qos = mqtt::QoS::AtLeastOnce;
    p.retain = retain;
    p.properties.user_properties = mqtt::UserProperties(props);
    auto r = client_->publish_and_wait(p, kTimeout);
    EXPECT_TRUE(r) << topic << ": " << (r ? "" : mqtt::to_string(r.error()));
    return r ? r.value() : ReasonCode::UnspecifiedError;
  }

  // Runs the loop for `d` (or until `n` messages are in).
  void pump(std::chrono::milliseconds d, std::size_t n = SIZE_MAX) {
    auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end && received.size() < n && client_->connected()) {
      (void)client_->process_loop(Duration{20});
    }
  }

  struct Message {
    std::string topic;
    std::string payload;
    std::vector<std::pair<std::string, std::string>> user_properties;
    std::string property(std::string_view key) const {
      std::string v;
      int n = 0;
      for (const auto& [k, val] : user_properties) {
        if (k == key) {
          v = val;
          ++n;
        }
      }
      return n > 1 ? "<duplicated>" : v;
    }
  };
  std::vector<Message> received;

  void operator()(mqtt::Client&, const mqtt::Event& e) {
    if (e.type == mqtt::EventType::MessageReceived) {
      Message m{std::string(e.message->topic), std::string(mqtt::as_string(e.message->payload)), {}};
      for (auto up : e.message->properties.user_properties) {
        m.user_properties.emplace_back(std::string(up.key), std::string(up.value));
      }
      received.push_back(std::move(m));
    }
  }
  mqtt::Client& client() { return *client_; }

 private:
  mqtt::Result<mqtt::ConnAck> mqtt_connect(std::string_view id, mqtt::Version v,
                                           std::string_view user, std::string_view password) {
    mqtt::ConnectOptions o;
    o.version = v;
    o.client_id = id;
    if (!user.empty()) {
      o.username = user;
      o.password = mqtt::as_bytes(password);
    }
    return client_->connect(o, kTimeout);
  }

  SteadyClock clock_;
  std::vector<std::byte> rx_, tx_;
  std::array<mqtt::OutgoingRecord, 16> outgoing_{};
  std::array<std::uint16_t, 16> incoming_qos2_{};
  std::array<char, 64> client_id_{};
  std::unique_ptr<mqtt::Session> session_;
  std::unique_ptr<mqtt::Client> client_;
  std::unique_ptr<tls::TlsContext> ctx_;
  std::unique_ptr<tls::TlsTransport> tls_;
  std::unique_ptr<transport::TcpTransport> tcp_;
};

class SecuredBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgekit-secured-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "state");
    pki_ = (dir_ / "pki").string();
    fs::create_directories(pki_);
    ca_ = std::make_unique<testing::TestCa>(pki_, "ca");
    foreign_ = std::make_unique<testing::TestCa>(pki_, "foreign");
    ASSERT_TRUE(ca_->ok() && foreign_->ok()) << ca_->error() << foreign_->error();
    testing::CertOptions server;
    server.server = true;
    server.common_name = "localhost";
    server.dns_names = {"localhost"};
    server.ip_addresses = {"127.0.0.1"};
    server_ = ca_->issue("server", server);
    for (const char* name : {"t1", "t2", "t3", "unregistered", "revoked"}) {
      testing::CertOptions o;
      o.common_name = name;
      devices_[name] = ca_->issue(name, o);
    }
    testing::CertOptions foreign;
    foreign.common_name = "t1";
    foreign_cert_ = foreign_->issue("foreign-t1", foreign);

    // The registry: t1, t2, t3 with their certificates; t3 may also use the shared reply topics.
    {
      auto db = open_sqlite({(dir_ / "state" / "fleetd.db").string()});
      ASSERT_TRUE(db) << db.error().message;
      auto store = Store::open(std::move(db.value()));
      ASSERT_TRUE(store) << store.error().message;
      auto ca = facts_of(ca_->cert_file());
      ASSERT_TRUE(store.value()->transact([&](Tx& t) -> Res<void> {
        if (auto r = t.register_ca({ca.id, ca.pem, CaStatus::Active, false, "", 0}); !r) {
          return fail(r.error());
        }
        if (auto r = t.create_policy({"replies", R"({"Statement":[
            {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
            {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":"arn:aws:iot:*:*:topicfilter/replies/*"},
            {"Effect":"Allow","Action":["iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/replies/*"},
            {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/*"},
            {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":"arn:aws:iot:*:*:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/*"}]})", 0, 0});
            !r) {
          return fail(r.error());
        }
        for (const char* name : {"t1", "t2", "t3", "revoked"}) {
          auto f = facts_of(devices_[name].cert_file);
          ids_[name] = f.id;
          Certificate c;
          c.id = f.id;
          c.pem = f.pem;
          c.ca_id = ca.id;
          c.status = std::string(name) == "revoked" ? CertificateStatus::Revoked
                                                    : CertificateStatus::Active;
          c.not_before = f.not_before;
          c.not_after = f.not_after;
          if (auto r = t.create_certificate(c); !r) return fail(r.error());
          if (auto r = t.create_thing({name, "", {}, 0, 0}); !r) return fail(r.error());
          if (auto r = t.attach_thing_principal(name, f.id); !r) return r;
        }
        if (auto r = t.attach_policy("replies", ids_["t3"]); !r) return r;
        if (auto r = t.attach_policy("replies", ids_["t2"]); !r) return r;
        return {};
      }));
    }
    auto token = load_or_create_token((dir_ / "state" / "hooks.token").string());
    ASSERT_TRUE(token);
    token_ = token.value();
    hooks_port_ = testing::free_loopback_port();
    admin_port_ = testing::free_loopback_port();

    testing::MosquittoOptions o;
    o.allow_anonymous = false;
    o.extra_lines = {
        std::string("plugin ") + EDGEKIT_MOSQUITTO_PLUGIN,
        "plugin_opt_hooks_url http://127.0.0.1:" + std::to_string(hooks_port_),
        "plugin_opt_hooks_token_file " + (dir_ / "state" / "hooks.token").string(),
        "plugin_opt_timeout_ms 2000",
    };
    testing::MosquittoOptions::TlsListener t;
    t.cafile = ca_->cert_file();
    t.certfile = server_.cert_file;
    t.keyfile = server_.key_file;
    t.require_certificate = true;
    o.tls = t;
    if (std::string(EDGEKIT_SANITIZER_PRELOAD).size() > 0) {
      // The plugin is built with the sanitizers of this build; the broker is not: preload them.
      o.environment = {std::string("LD_PRELOAD=") + EDGEKIT_SANITIZER_PRELOAD,
                       "ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0"};
    }
    broker_ = std::make_unique<testing::Mosquitto>(o);
    ASSERT_TRUE(broker_->start()) << broker_->error() << "\n" << broker_->log();
    start_fleetd();
  }

  void start_fleetd() {
    std::vector<std::string> args{FLEETD_BINARY, "--state-dir", (dir_ / "state").string(),
                                  "--broker-port", std::to_string(broker_->port()),
                                  "--hooks-port", std::to_string(hooks_port_),
                                  "--admin-port", std::to_string(admin_port_),
                                  "--broker-client-id", "fleetd-test", "--log-format", "text"};
    fleetd_log_ = (dir_ / "fleetd.log").string();
    fleetd_ = ::fork();
    ASSERT_GE(fleetd_, 0);
    if (fleetd_ == 0) {
      FILE* f = std::fopen(fleetd_log_.c_str(), "a");
      if (f) ::dup2(fileno(f), STDERR_FILENO);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    auto end = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < end &&
           testing::read_text_file(fleetd_log_).find("admin.listening") == std::string::npos) {
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_NE(testing::read_text_file(fleetd_log_).find("hooks.listening"), std::string::npos)
        << testing::read_text_file(fleetd_log_);
    ASSERT_NE(testing::read_text_file(fleetd_log_).find("admin.listening"), std::string::npos)
        << testing::read_text_file(fleetd_log_);
    // fleetd's own link is admitted by the plugin (user name + token, no certificate).
    end = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < end &&
           testing::read_text_file(fleetd_log_).find("broker.connected") == std::string::npos) {
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_NE(testing::read_text_file(fleetd_log_).find("broker.connected"), std::string::npos)
        << testing::read_text_file(fleetd_log_);
  }

  void TearDown() override {
    if (fleetd_ > 0) testing::stop_child(fleetd_, SIGTERM, 5s);
    if (HasFailure()) {
      std::cerr << "--- mosquitto log ---\n" << (broker_ ? broker_->log() : "") << "\n--- fleetd log ---\n"
                << testing::read_text_file(fleetd_log_);
    }
    broker_.reset();
    fs::remove_all(dir_);
  }

  mqtt::Result<mqtt::ConnAck> device(Peer& p, const char* cert, std::string_view id,
                                     mqtt::Version v = mqtt::Version::V5) {
    return p.connect_tls(broker_->tls_port(), ca_->cert_file(), devices_[cert], id, v);
  }

  // A call to fleetd's admin API with the token fleetd created in its state folder.
  httplib::Result admin_post(const std::string& path) {
    std::string token = testing::read_text_file((dir_ / "state" / "admin.token").string());
    while (!token.empty() && token.back() == '\n') token.pop_back();
    httplib::Client c("127.0.0.1", admin_port_);
    return c.Post(path.c_str(), {{"Authorization", "Bearer " + token}}, "", "application/json");
  }

  // Pumps `p` until the broker drops it or 5 s pass; returns how long that took.
  std::chrono::milliseconds until_disconnected(Peer& p, std::chrono::steady_clock::time_point start) {
    while (p.client().connected() && std::chrono::steady_clock::now() - start < 5s) {
      (void)p.client().process_loop(Duration{20});
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  }

  // fleetd's view, for the tests: a trusted client on the plain listener.
  void trusted(Peer& p, std::string_view id) {
    auto r = p.connect_tcp(broker_->port(), id, "fleetd", token_);
    ASSERT_TRUE(r) << mqtt::to_string(r.error());
  }

  fs::path dir_;
  std::string pki_;
  std::unique_ptr<testing::TestCa> ca_, foreign_;
  testing::Issued server_, foreign_cert_;
  std::map<std::string, testing::Issued> devices_;
  std::map<std::string, std::string> ids_;
  std::string token_;
  std::uint16_t hooks_port_ = 0;
  std::uint16_t admin_port_ = 0;
  std::unique_ptr<testing::Mosquitto> broker_;
  pid_t fleetd_ = -1;
  std::string fleetd_log_;
};

TEST_F(SecuredBroker, AThingWorksOnItsOwnTopicsOverBothVersions) {
  for (auto v : {mqtt::Version::V5, mqtt::Version::V311}) {
    Peer t1;
    auto c = device(t1, "t1", "t1", v);
    ASSERT_TRUE(c) << mqtt::to_string(c.error());
    EXPECT_EQ(t1.subscribe("$aws/things/t1/shadow/#"), ReasonCode::GrantedQoS1);
    EXPECT_EQ(t1.subscribe("t1/#"), ReasonCode::GrantedQoS1);
    EXPECT_EQ(t1.publish("t1/telemetry", "21.5"), ReasonCode::Success);
    EXPECT_EQ(t1.publish("$aws/things/t1/shadow/update", "{}"), ReasonCode::Success);
    t1.pump(2s, 2);
    ASSERT_EQ(t1.received.size(), 2u);
    ASSERT_TRUE(t1.client().disconnect());
  }
}

TEST_F(SecuredBroker, AThingIsRefusedOnAnotherThingsTopics) {
  Peer t1, t2;
  ASSERT_TRUE(device(t1, "t1", "t1"));
  ASSERT_TRUE(device(t2, "t2", "t2"));
  EXPECT_EQ(t2.subscribe("$aws/things/t2/#"), ReasonCode::GrantedQoS1);
  for (const char* filter : {"t2/#", "$aws/things/t2/shadow/update", "+/telemetry", "#",
                             "$aws/things/+/shadow/#", "$aws/#", "$share/g/t2/#",
                             "$share/g/#", "$aws/events/presence/#", "$CONTROL/edgekit/v1"}) {
    EXPECT_EQ(t1.subscribe(filter), ReasonCode::NotAuthorized) << filter;
  }
  for (const char* topic : {"t2/telemetry", "$aws/things/t2/shadow/update", "t1",
                            "$aws/events/presence/connected/t2", "$CONTROL/edgekit/v1"}) {
    EXPECT_EQ(t1.publish(topic, "x"), ReasonCode::NotAuthorized) << topic;
  }
  // A retained publish on $aws is refused even on the thing's own topic (AWS forbids it).
  EXPECT_EQ(t1.publish("$aws/things/t1/shadow/update", "{}", /*retain=*/true),
            ReasonCode::NotAuthorized);
  t2.pump(1s);
  EXPECT_TRUE(t2.received.empty()) << "t2 received " << t2.received.front().topic;
}

TEST_F(SecuredBroker, RefusesSpoofedIdsAndUnknownRevokedOrForeignCertificates) {
  {
    Peer p;
    auto r = device(p, "t1", "t2");  // t1's certificate, t2's client id
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), mqtt::Errc::ConnectionRefused);
    EXPECT_EQ(p.client().server_reason(), ReasonCode::NotAuthorized);
  }
  for (const char* cert : {"unregistered", "revoked"}) {
    Peer p;
    auto r = device(p, cert, cert);
    ASSERT_FALSE(r) << cert;
    EXPECT_EQ(r.error(), mqtt::Errc::ConnectionRefused) << cert;
  }
  {
    Peer p;  // signed by a CA the broker does not trust: the TLS handshake fails
    auto r = p.connect_tls(broker_->tls_port(), ca_->cert_file(), foreign_cert_, "t1");
    ASSERT_FALSE(r);
  }
  {
    Peer p;  // no certificate at all, on the plain listener
    auto r = p.connect_tcp(broker_->port(), "t1", "", "");
    ASSERT_FALSE(r);
    Peer q;  // fleetd's user name with a wrong token
    auto w = q.connect_tcp(broker_->port(), "x", "fleetd", std::string(token_.size(), '0'));
    ASSERT_FALSE(w);
  }
  const std::string log = broker_->log();
  EXPECT_NE(log.find("is not registered"), std::string::npos) << log;
  EXPECT_NE(log.find("is REVOKED"), std::string::npos) << log;
  EXPECT_NE(log.find("not allowed to connect"), std::string::npos) << log;
}

TEST_F(SecuredBroker, RequestsCarryMetadataADeviceCannotForge) {
  Peer observer;
  trusted(observer, "observer");
  EXPECT_EQ(observer.subscribe("$aws/things/+/shadow/update"), ReasonCode::GrantedQoS1);
  for (auto v : {mqtt::Version::V5, mqtt::Version::V311}) {
    Peer t1;
    ASSERT_TRUE(device(t1, "t1", "t1", v));
    const std::array<mqtt::UserProperty, 3> forged{
        mqtt::UserProperty{plugin::kClientIdProperty, "t2"},
        mqtt::UserProperty{plugin::kCertificateIdProperty, ids_["t2"]},
        mqtt::UserProperty{"app", "kept"}};
    EXPECT_EQ(t1.publish("$aws/things/t1/shadow/update", "{}", false,
                         v == mqtt::Version::V5 ? std::span<const mqtt::UserProperty>(forged)
                                                : std::span<const mqtt::UserProperty>()),
              ReasonCode::Success);
    ASSERT_TRUE(t1.client().disconnect());
  }
  observer.pump(3s, 2);
  ASSERT_EQ(observer.received.size(), 2u);
  for (const auto& m : observer.received) {
    EXPECT_EQ(m.property(plugin::kClientIdProperty), "t1");
    EXPECT_EQ(m.property(plugin::kCertificateIdProperty), ids_["t1"]);
    EXPECT_EQ(m.property(plugin::kThingNameProperty), "t1");
  }
  EXPECT_EQ(observer.received[0].property("app"), "kept");
}

TEST_F(SecuredBroker, APrivateReplyReachesItsAddresseeOnly) {
  // Two devices whose policy lets both subscribe to the shared reply topic, as every device may
  // subscribe to $aws/certificates/create/json/accepted; and fleetd's side watching everything.
  Peer t3, t2, observer;
  ASSERT_TRUE(device(t3, "t3", "t3"));
  ASSERT_TRUE(device(t2, "t2", "t2"));
  EXPECT_EQ(t3.subscribe("replies/create/accepted"), ReasonCode::GrantedQoS1);
  EXPECT_EQ(t2.subscribe("replies/create/accepted"), ReasonCode::GrantedQoS1);
  EXPECT_EQ(t2.subscribe("replies/#"), ReasonCode::GrantedQoS1);
  trusted(observer, "observer");
  EXPECT_EQ(observer.subscribe("replies/#"), ReasonCode::GrantedQoS1);
  Peer fleetd;
  trusted(fleetd, "fleetd-peer");
  const std::array<mqtt::UserProperty, 1> to_t3{mqtt::UserProperty{plugin::kReplyToProperty, "t3"}};
  EXPECT_EQ(fleetd.publish("replies/create/accepted", R"({"certificatePem":"secret"})", false, to_t3),
            ReasonCode::Success);
  t3.pump(2s, 1);
  ASSERT_EQ(t3.received.size(), 1u);
  EXPECT_EQ(t3.received[0].property(plugin::kReplyToProperty), "") << "the marker is removed";
  t2.pump(1s);
  EXPECT_TRUE(t2.received.empty()) << "a private reply reached another device";
  observer.pump(500ms);
  EXPECT_TRUE(observer.received.empty()) << "a private reply reached another subscriber";
  // An ordinary message on the same topic still reaches everyone.
  EXPECT_EQ(fleetd.publish("replies/create/accepted", "public"), ReasonCode::Success);
  t2.pump(2s, 2);
  EXPECT_EQ(t2.received.size(), 2u) << "one per matching subscription";
}

TEST_F(SecuredBroker, KickedCertificateIsDisconnectedWithinFiveSecondsAndLifecycleIsPublished) {
  Peer observer;
  trusted(observer, "observer");
  EXPECT_EQ(observer.subscribe("$aws/events/presence/#"), ReasonCode::GrantedQoS1);
  Peer t2;
  ASSERT_TRUE(device(t2, "t2", "t2"));
  observer.pump(2s, 1);
  ASSERT_EQ(observer.received.size(), 1u);
  auto connected = nlohmann::json::parse(observer.received[0].payload);
  EXPECT_EQ(observer.received[0].topic, "$aws/events/presence/connected/t2");
  EXPECT_EQ(connected["clientId"], "t2");
  EXPECT_EQ(connected["eventType"], "connected");
  EXPECT_EQ(connected["principalIdentifier"], ids_["t2"]);
  EXPECT_EQ(connected["ipAddress"], "127.0.0.1");
  EXPECT_TRUE(connected["timestamp"].is_number_integer());

  Peer fleetd;
  trusted(fleetd, "fleetd-peer");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(fleetd.publish("$CONTROL/edgekit/v1",
                           nlohmann::json{{"command", "kick"}, {"certificate_id", ids_["t2"]}}.dump()),
            ReasonCode::Success);
  while (t2.client().connected() && std::chrono::steady_clock::now() - start < 5s) {
    (void)t2.client().process_loop(Duration{20});
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(t2.client().connected());
  EXPECT_LT(took, 5s);
  std::cout << "[ measured ] kick to disconnect: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  observer.pump(3s, 2);
  ASSERT_EQ(observer.received.size(), 2u);
  auto gone = nlohmann::json::parse(observer.received[1].payload);
  EXPECT_EQ(observer.received[1].topic, "$aws/events/presence/disconnected/t2");
  EXPECT_EQ(gone["disconnectReason"], "API_INITIATED_DISCONNECT");
  EXPECT_EQ(gone["clientInitiatedDisconnect"], false);
  EXPECT_EQ(gone["sessionIdentifier"], connected["sessionIdentifier"]);
}

TEST_F(SecuredBroker, RevokedThroughTheAdminApiIsDisconnectedWithinFiveSecondsAndCannotReconnect) {
  Peer t1;
  ASSERT_TRUE(device(t1, "t1", "t1"));
  EXPECT_EQ(t1.publish("t1/telemetry", "before"), ReasonCode::NoMatchingSubscribers);
  const auto start = std::chrono::steady_clock::now();
  auto r = admin_post("/admin/v1/certificates/" + ids_["t1"] + "/revoke");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto took = until_disconnected(t1, start);
  EXPECT_FALSE(t1.client().connected()) << "still connected 5 s after the revoke";
  EXPECT_LT(took, 5s);
  std::cout << "[ measured ] admin revoke to disconnect: " << took.count() << " ms\n";
  Peer again;
  auto back = device(again, "t1", "t1");
  ASSERT_FALSE(back) << "a revoked certificate reconnected";
  EXPECT_EQ(back.error(), mqtt::Errc::ConnectionRefused);
  EXPECT_NE(broker_->log().find("is REVOKED"), std::string::npos);
}

TEST_F(SecuredBroker, DeactivatingACertificateOrItsCaDisconnectsWithinFiveSeconds) {
  {
    Peer t2;
    ASSERT_TRUE(device(t2, "t2", "t2"));
    const auto start = std::chrono::steady_clock::now();
    auto r = admin_post("/admin/v1/certificates/" + ids_["t2"] + "/deactivate");
    ASSERT_TRUE(r && r->status == 200);
    const auto took = until_disconnected(t2, start);
    EXPECT_FALSE(t2.client().connected());
    std::cout << "[ measured ] admin deactivate to disconnect: " << took.count() << " ms\n";
    Peer again;
    EXPECT_FALSE(device(again, "t2", "t2"));
  }
  {
    Peer t3;
    ASSERT_TRUE(device(t3, "t3", "t3"));
    const auto ca = facts_of(ca_->cert_file()).id;
    const auto start = std::chrono::steady_clock::now();
    auto r = admin_post("/admin/v1/cas/" + ca + "/deactivate");
    ASSERT_TRUE(r && r->status == 200);
    const auto took = until_disconnected(t3, start);
    EXPECT_FALSE(t3.client().connected());
    std::cout << "[ measured ] CA deactivate to disconnect: " << took.count() << " ms\n";
    Peer again;
    EXPECT_FALSE(device(again, "t3", "t3"));
  }
}

TEST_F(SecuredBroker, AKickMadeWhileTheLinkIsDownGoesOutWhenItComesUp) {
  Peer t2;
  ASSERT_TRUE(device(t2, "t2", "t2"));
  asio::io_context io;
  std::ostringstream logs;
  Logger log(logs, LogFormat::Text, LogLevel::Debug);
  BrokerLinkOptions lo;
  lo.port = broker_->port();
  lo.client_id = "revoker-test";
  lo.username = "fleetd";
  lo.password = token_;
  BrokerLink link(io, lo, log);
  Revoker revoker(io, link, log, [](const std::string&) { return true; });
  link.on_state([&](bool up) { revoker.on_link(up); });
  // The link has not started: down. More kicks than the link's session holds in flight (64),
  // as when a CA with many certificates is deactivated: they go out in turns.
  for (int i = 0; i < 200; ++i) revoker.kick(std::string(60, 'f') + std::to_string(1000 + i));
  revoker.kick(ids_["t2"]);
  EXPECT_EQ(revoker.pending(), 201u);
  const auto start = std::chrono::steady_clock::now();
  link.start();
  std::thread loop([&] { io.run_for(std::chrono::seconds(8)); });
  const auto took = until_disconnected(t2, start);
  EXPECT_FALSE(t2.client().connected()) << logs.str();
  std::cout << "[ measured ] link start to disconnect by a pending kick: " << took.count() << " ms\n";
  // Everything went out (checked on the loop's thread, which owns the revoker).
  std::size_t left = 1;
  for (int i = 0; i < 100 && left != 0; ++i) {
    std::promise<std::size_t> p;
    asio::post(io, [&] { p.set_value(revoker.pending()); });
    left = p.get_future().get();
    if (left != 0) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(left, 0u);
  asio::post(io, [&] { link.shutdown([&] { io.stop(); }); });
  loop.join();
  EXPECT_NE(logs.str().find("revocation.kick_sent"), std::string::npos) << logs.str();
}

TEST_F(SecuredBroker, WithFleetdDownNewConnectionsAreRefusedAndLiveOnesKeepWorking) {
  Peer t1;
  ASSERT_TRUE(device(t1, "t1", "t1"));
  testing::stop_child(fleetd_, SIGKILL, 1s);
  Peer t2;
  auto r = device(t2, "t2", "t2");
  ASSERT_FALSE(r) << "the broker failed open";
  EXPECT_EQ(r.error(), mqtt::Errc::ConnectionRefused);
  EXPECT_NE(broker_->log().find("fleetd unreachable"), std::string::npos);
  EXPECT_EQ(t1.publish("t1/telemetry", "still here"), ReasonCode::NoMatchingSubscribers);
}

}  // namespace
}  // namespace edgekit::fleetd
