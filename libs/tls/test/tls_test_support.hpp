#pragma once
// Shared pieces of the TLS tests: a temp dir, a token set up in our module or SoftHSM2 with an EC
// key generated inside it, and an MQTT round trip over any transport.

#include <edgekit/mqtt/client.hpp>
#include <edgekit/mqtt/session.hpp>
#include <edgekit/pkcs11/client.hpp>
#include <edgekit/tls/tls.hpp>
#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
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

enum class TokenKind { Edgekit, SoftHsm2 };
inline const char* name(TokenKind k) { return k == TokenKind::Edgekit ? "edgekit" : "softhsm2"; }

// Points the module at a fresh token folder under `dir` (environment, read at C_Initialize).
inline std::string prepare_token_env(TokenKind kind, const std::string& dir) {
  if (kind == TokenKind::SoftHsm2) {
    std::filesystem::create_directories(dir + "/softhsm");
    std::ofstream(dir + "/softhsm2.conf")
        << "directories.tokendir = " << dir << "/softhsm\nobjectstore.backend = file\n"
        << "log.level = ERROR\nslots.removable = false\n";
    ::setenv("SOFTHSM2_CONF", (dir + "/softhsm2.conf").c_str(), 1);
    return EDGEKIT_SOFTHSM2_MODULE;
  }
  ::setenv("EDGEKIT_TOKEN_DIR", (dir + "/token").c_str(), 1);
  ::setenv("EDGEKIT_TOKEN_PBKDF2_ITERATIONS", "2000", 1);  // fast logins in tests
  ::setenv("EDGEKIT_TOKEN_QUIET", "1", 1);
  return EDGEKIT_TOKEN_MODULE;
}

// An EVP_PKEY holding only the public half of a token's EC key (CKA_EC_PARAMS + CKA_EC_POINT).
inline EVP_PKEY* public_key_from_token(pkcs11::Session& s, CK_OBJECT_HANDLE pub) {
  auto params = s.attribute(pub, CKA_EC_PARAMS);
  auto point = s.attribute(pub, CKA_EC_POINT);
  if (!params || !point) return nullptr;
  const unsigned char* p = params->data();
  ASN1_OBJECT* oid = d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(params->size()));
  if (oid == nullptr) return nullptr;
  const char* group = OBJ_nid2sn(OBJ_obj2nid(oid));
  ASN1_OBJECT_free(oid);
  // CKA_EC_POINT: DER OCTET STRING around the X9.62 point (PKCS#11 v2.40 2.3.3).
  p = point->data();
  ASN1_OCTET_STRING* os = d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(point->size()));
  if (os == nullptr) return nullptr;
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, ASN1_STRING_get0_data(os),
                                   static_cast<std::size_t>(ASN1_STRING_length(os)));
  OSSL_PARAM* ps = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  if (ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1) {
    (void)EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, ps);
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(ps);
  OSSL_PARAM_BLD_free(bld);
  ASN1_OCTET_STRING_free(os);
  return key;
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
  auto slot = m->find_token(kTokenLabel);
  if (!slot) {
    auto slots = m->slots(false);
    if (!slots || slots->empty()) return nullptr;
    for (CK_SLOT_ID s : *slots) {
      auto info = m->token_info(s);
      if (info && (info->flags & CKF_TOKEN_INITIALIZED) == 0) {
        EXPECT_TRUE(m->init_token(s, kSoPin, kTokenLabel));
        break;
      }
    }
    slot = m->find_token(kTokenLabel);
    EXPECT_TRUE(slot);
    if (!slot) return nullptr;
    auto so = m->open_session(*slot, true);
    EXPECT_TRUE(so && so->login(pkcs11::UserType::SecurityOfficer, kSoPin) &&
                so->init_pin(kPin));
  }
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
  return public_key_from_token(*s, kp->public_key);
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
