#pragma once
// Shared pieces of the TLS tests: a temp dir, a token set up in our module or SoftHSM2 with an EC
// key generated inside it, and an MQTT round trip over any transport.

#include <edgekit/mqtt/client.hpp>
#include <edgekit/mqtt/session.hpp>
#include <edgekit/pkcs11/client.hpp>
#include <edgekit/pki/token.hpp>
#include <edgekit/testing/token_env.hpp>
#include <edgekit/tls/tls.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace edgekit::tls::test {

inline constexpr char kSoPin[] = "so-secret";
inline constexpr char kPin[] = "1234";
inline constexpr char kTokenLabel[] = "tls-test";

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/edgekit-tls-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

using edgekit::testing::name;
using edgekit::testing::TokenKind;

// Points the module at a fresh token folder under `dir` (environment, read at C_Initialize).
inline std::string prepare_token_env(TokenKind kind, const std::string& dir) {
  return edgekit::testing::prepare_token_env(kind, dir, EDGEKIT_TOKEN_MODULE,
                                             EDGEKIT_SOFTHSM2_MODULE);
}

// An EVP_PKEY holding only the public half of a token's key pair (edgekit::pki reads it).
inline EVP_PKEY* public_key_from_token(pkcs11::Session& s, CK_OBJECT_HANDLE private_key) {
  auto spki = pki::token_public_key(s, private_key);
  EXPECT_TRUE(spki) << spki.error().message;
  if (!spki) return nullptr;
  const unsigned char* p = spki->data();
  return d2i_PUBKEY(nullptr, &p, static_cast<long>(spki->size()));
}

// Initialises a token, sets the user PIN and generates an EC key pair labelled `key_label` in
// it. Returns the public key (for the CA to certify) or nullptr; the private key stays inside
// (checked: CKA_VALUE is sensitive). The module is finalised before returning, as a device that
// provisioned its token and rebooted.
inline EVP_PKEY* make_token_key(const std::string& module_path, const std::string& key_label,
                                pkcs11::Curve curve = pkcs11::Curve::P256) {
  auto m = pkcs11::Module::load(module_path);
  EXPECT_TRUE(m) << m.error().message();
  if (!m) return nullptr;
  std::optional<CK_SLOT_ID> slot;
  if (auto found = m->find_token(kTokenLabel)) {
    slot = *found;
  } else {
    slot = edgekit::testing::init_test_token(*m, kTokenLabel, kSoPin, kPin);
  }
  EXPECT_TRUE(slot);
  if (!slot) return nullptr;
  auto s = m->open_session(*slot, true);
  EXPECT_TRUE(s);
  if (!s) return nullptr;
  auto login = s->login(pkcs11::UserType::User, kPin);
  EXPECT_TRUE(login) << login.error().message();
  const pkcs11::Bytes id(key_label.begin(), key_label.end());
  auto kp = s->generate_ec_key_pair(curve, {key_label, id, true});
  EXPECT_TRUE(kp) << kp.error().message();
  if (!kp) return nullptr;
  auto secret = s->attribute(kp->private_key, CKA_VALUE);
  EXPECT_FALSE(secret) << "the token handed out the private key";
  return public_key_from_token(*s, kp->private_key);
}

// A client that connects MQTT over a given transport and does a QoS 1 round trip to itself.
class MqttOver {
 public:
  explicit MqttOver(transport::Transport& t) : rx_(16 * 1024), tx_(16 * 1024) {
    mqtt::SessionStorage storage;
    storage.outgoing = outgoing_;
    storage.incoming_qos2 = incoming_qos2_;
    storage.client_id = client_id_;
    session_ = std::make_unique<mqtt::Session>(storage, nullptr);
    client_ = std::make_unique<mqtt::Client>(t, clock_, *session_, rx_, tx_,
                                             mqtt::EventHandler::bind(*this));
  }

  mqtt::Result<mqtt::ConnAck> connect(std::string_view id,
                                      mqtt::Version v = mqtt::Version::V311) {
    mqtt::ConnectOptions o;
    o.version = v;
    o.client_id = id;
    return client_->connect(o, Duration{5000});
  }

  // Subscribes to `topic` at QoS 1, publishes to it at QoS 1 and waits for the message.
  ::testing::AssertionResult round_trip(std::string_view topic, std::string_view payload) {
    mqtt::Subscription sub{topic, mqtt::SubscribeOptions{mqtt::QoS::AtLeastOnce}};
    std::array<mqtt::ReasonCode, 1> codes{};
    auto r = client_->subscribe({&sub, 1}, codes, Duration{5000});
    if (!r) return ::testing::AssertionFailure() << "subscribe: " << mqtt::to_string(r.error());
    if (codes[0] != mqtt::ReasonCode::GrantedQoS1) {
      return ::testing::AssertionFailure() << "subscription not granted at QoS 1";
    }
    mqtt::Publish msg;
    msg.topic = topic;
    msg.payload = mqtt::as_bytes(payload);
    msg.qos = mqtt::QoS::AtLeastOnce;
    auto p = client_->publish_and_wait(msg, Duration{5000});
    if (!p) return ::testing::AssertionFailure() << "publish: " << mqtt::to_string(p.error());
    const Instant deadline = clock_.now() + Duration{5000};
    while (received_.empty() && clock_.now() < deadline) {
      auto l = client_->process_loop(Duration{50});
      if (!l) return ::testing::AssertionFailure() << "loop: " << mqtt::to_string(l.error());
    }
    if (received_.empty()) return ::testing::AssertionFailure() << "message not received";
    if (received_[0] != payload) return ::testing::AssertionFailure() << "wrong payload";
    if (received_qos_ != mqtt::QoS::AtLeastOnce) return ::testing::AssertionFailure() << "QoS";
    return ::testing::AssertionSuccess();
  }

  void operator()(mqtt::Client&, const mqtt::Event& e) {
    if (e.type == mqtt::EventType::MessageReceived) {
      received_.emplace_back(mqtt::as_string(e.message->payload));
      received_qos_ = e.message->qos;
    }
  }

  mqtt::Client& client() { return *client_; }

 private:
  SteadyClock clock_;
  std::vector<std::byte> rx_;
  std::vector<std::byte> tx_;
  std::array<mqtt::OutgoingRecord, 16> outgoing_{};
  std::array<std::uint16_t, 16> incoming_qos2_{};
  std::array<char, 64> client_id_{};
  std::unique_ptr<mqtt::Session> session_;
  std::unique_ptr<mqtt::Client> client_;
  std::vector<std::string> received_;
  mqtt::QoS received_qos_ = mqtt::QoS::AtMostOnce;
};

}  // namespace edgekit::tls::test
