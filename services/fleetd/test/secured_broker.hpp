#pragma once
/// \file
/// The secured broker of fleetd's end-to-end tests, shared by every test that needs it (the
/// isolation attacks, the AWS SDK interoperability test, the small-TLS-stack test): a test PKI
/// (CA, a server certificate for localhost / 127.0.0.1, device certificates for things t1, t2, t3,
/// t4 (RSA-2048; the others are P-256), for an unregistered, a revoked, an expired and a
/// foreign-CA device, and a claim certificate with the claim policy of template "fleet"), a registry holding
/// t1..t4, `expired` and `claim`, a real
/// Mosquitto whose device listener requires mutual TLS and loads edgekit's plugin, and a real
/// fleetd (the binary) deciding. Each test gets its own; all of it lives in a temp folder that is
/// removed afterwards. Thread safety: none; use from the test's thread.

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/client.hpp"
#include "edgekit/testing/mosquitto.hpp"
#include "edgekit/testing/test_pki.hpp"
#include "edgekit/tls/tls.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::fleetd::test {

using mqtt::ReasonCode;

inline constexpr Duration kTimeout{5000};

/// The device listener's TLS settings, as docs/fleetd.md recommends them: TLS 1.2 as the minimum
/// (1.3 preferred when both sides have it), and for TLS 1.2 only forward-secret ECDHE suites —
/// AES-GCM and ChaCha20 first, then AES-CBC with SHA-256 for small stacks built without GCM.
inline constexpr const char* kDeviceTlsVersion = "tlsv1.2";
inline constexpr const char* kDeviceCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256";

/// fleetd's own CA in tests: a token labelled "fleetd-ca" (user PIN 1234) of edgekit's module
/// in <dir>/ca-token, and the PIN in <dir>/ca.pin (mode 0600). Sets EDGEKIT_TOKEN_DIR.
void make_ca_token(const std::filesystem::path& dir);
/// The fleetd flags of that CA.
std::vector<std::string> ca_flags(const std::filesystem::path& dir);
/// Runs the fleetd binary with `--state-dir <dir>/state` and `args` to its end and returns its
/// exit code (-1 when it did not exit); its log in `output`.
int run_fleetd(const std::filesystem::path& dir, const std::vector<std::string>& args,
               std::string* output = nullptr);

/// Starts `args` (the program first) with its standard error (or the descriptor `fd`) written to
/// `log` (fopen `mode`); the child's pid (-1 when fork failed). The caller reaps it.
pid_t spawn(std::vector<std::string> args, const std::string& log, const char* mode,
            int fd = STDERR_FILENO);

/// A certificate's AWS id (SHA-256 of the DER, hex), its PEM and validity.
struct CertFacts {
  std::string id;
  std::string pem;
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
};
/// Reads a PEM certificate file (an empty `id` when it cannot be read).
CertFacts facts_of(const std::string& pem_file);

// One MQTT client: a device over mutual TLS, or fleetd-like over TCP with the token.
class Peer {
 public:
  /// `buffer`: the size of each of its receive and send buffers (the largest packet it handles).
  explicit Peer(std::size_t buffer = 64 * 1024) : rx_(buffer), tx_(buffer) {
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
    return connect_tls(port, c, id, v);
  }

  // Mutual TLS as `c` says (e.g. a key held in a PKCS#11 token).
  mqtt::Result<mqtt::ConnAck> connect_tls(std::uint16_t port, const tls::Config& c,
                                          std::string_view id,
                                          mqtt::Version v = mqtt::Version::V5) {
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
  /// The clock the client runs on (for a `reqres::ClientChannel` over it).
  const Clock& clock() const { return clock_; }
  /// What the TLS handshake of `connect_tls` negotiated (defaults before it).
  tls::ConnectionInfo tls_info() const { return tls_ ? tls_->info() : tls::ConnectionInfo{}; }

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

/// The fixture: everything is up when the test body runs (SetUp asserts it).
class SecuredBroker : public ::testing::Test {
 protected:
  void SetUp() override;
  void start_fleetd();
  void TearDown() override;
  /// A device over mutual TLS with the certificate issued for `cert` and client id `id`.
  mqtt::Result<mqtt::ConnAck> device(Peer& p, const char* cert, std::string_view id,
                                     mqtt::Version v = mqtt::Version::V5);
  /// fleetd's view, for the tests: a trusted client on the plain listener.
  void trusted(Peer& p, std::string_view id);
  /// A POST to fleetd's admin API with the token fleetd created in its state folder.
  httplib::Result admin_post(const std::string& path);
  /// Any request to fleetd's admin API ("GET", "POST", "PUT", "PATCH", "DELETE") with a JSON body.
  httplib::Result admin(const std::string& method, const std::string& path,
                        const std::string& body = "");
  /// Waits (up to `limit`) until fleetd's log holds `text` at least `times` times.
  bool fleetd_logged(std::string_view text, std::size_t times, std::chrono::milliseconds limit);
  /// How many times fleetd's log (all its runs in this test) holds `text`.
  std::size_t fleetd_log_count(std::string_view text) const;
  /// Pumps `p` until the broker drops it or 5 s pass; returns how long that took.
  std::chrono::milliseconds until_disconnected(Peer& p, std::chrono::steady_clock::time_point start);
  /// A GET to fleetd's admin API.
  httplib::Result admin_get(const std::string& path);
  /// A POST with a JSON body to fleetd's admin API.
  httplib::Result admin_post_json(const std::string& path, const std::string& body);
  /// The certificate and key files issued for a device name ("t1", "t2", ...).
  const testing::Issued& issued(const std::string& name) { return devices_[name]; }

  /// Set before SetUp (in a derived fixture's constructor): fleetd runs its own CA, created with
  /// `fleetd --init-ca` in a token of edgekit's module before the broker starts, and the device
  /// listener trusts its chain as well as the test CA.
  bool own_ca_ = false;
  /// With own_ca_: the device listener also checks client certificates against the CRL fleetd
  /// writes (`crlfile <state>/ca/crl.pem`; only fleetd's own devices can then connect).
  bool own_crlfile_ = false;
  /// Set before SetUp: the device listener also trusts the CAs in fleetd's broker trust folder
  /// (`capath <state>/broker-cas`, ca/broker_trust.hpp), so that a CA registered through the
  /// admin API is trusted in the handshake without a broker restart.
  bool broker_capath_ = false;
  /// Set before SetUp: more flags for fleetd (e.g. `--jobs-minute-seconds 2`).
  std::vector<std::string> fleetd_flags_;
  /// Set before SetUp: more lines for the broker's configuration (e.g. `max_inflight_messages 1`).
  std::vector<std::string> broker_lines_;

  std::filesystem::path dir_;
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

}  // namespace edgekit::fleetd::test
