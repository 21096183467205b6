// Fleet provisioning by claim end to end (aws-iot-protocols.md 4): a real Mosquitto with
// edgekit's plugin, the fleetd binary with its own CA, and devices over mutual TLS holding the
// fixture's claim certificate (its policy allows the create topics and template "fleet" only).
// Each flow in JSON and CBOR, the device's reconnect with what it was given, and every refusal.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "edgekit/json/json.hpp"
#include "edgekit/pki/pki.hpp"
#include "edgekit/testing/child_process.hpp"
#include "edgekit/testing/mosquitto.hpp"
#include "hook_server.hpp"
#include "provisioning/claim_wire.hpp"
#include "provisioning/ownership_token.hpp"
#include "secured_broker.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

// Thing name from a parameter, a policy-free thing (the default thing policy then applies), a
// flat device configuration.
constexpr const char* kTemplate = R"({
  "Parameters": {"SerialNumber": {"Type": "String"}, "Site": {"Type": "String", "Default": "lab"}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing",
              "Properties": {"ThingName": {"Fn::Join": ["", ["dev-", {"Ref": "SerialNumber"}]]},
                             "AttributePayload": {"site": {"Ref": "Site"}}}},
    "certificate": {"Type": "AWS::IoT::Certificate",
                    "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                                   "Status": "ACTIVE"}}},
  "DeviceConfiguration": {"Site": {"Ref": "Site"}, "Interval": "30"}
})";

std::string format_name(provisioning::Format f) {
  return f == provisioning::Format::Json ? "json" : "cbor";
}

json decode(const std::string& payload, provisioning::Format f) {
  if (f == provisioning::Format::Json) return json::parse(payload, nullptr, false);
  return json::from_cbor(payload, true, false);
}

std::string csr_of(pki::Signer& key, const char* subject = "/CN=device") {
  auto csr = pki::make_csr(key, *pki::Name::parse(subject));
  return csr ? *csr : std::string();
}

// A CSR for a key fleetd's CA does not issue for (RSA 1024), made with OpenSSL directly.
std::string weak_csr() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024));
  X509_REQ* req = X509_REQ_new();
  X509_NAME* name = X509_REQ_get_subject_name(req);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("weak"), -1, -1, 0);
  X509_REQ_set_pubkey(req, key);
  X509_REQ_sign(req, key, EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(bio, req);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  return pem;
}

class ClaimProvisioning : public SecuredBroker,
                          public ::testing::WithParamInterface<provisioning::Format> {
 protected:
  ClaimProvisioning() { own_ca_ = true; }

  void SetUp() override {
    SecuredBroker::SetUp();
    if (HasFatalFailure()) return;
    add_template("fleet", true);
  }

  void add_template(const std::string& name, bool enabled) {
    auto r = admin(
        "POST", "/admin/v1/provisioning-templates",
        json{{"templateName", name}, {"templateBody", kTemplate}, {"enabled", enabled}}.dump());
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
  }

  provisioning::Format fmt() const { return GetParam(); }
  std::string f() const { return format_name(fmt()); }

  // Publishes a request after subscribing to both replies (as AWS asks) and returns the reply.
  Peer::Message request(Peer& p, const std::string& topic, const std::string& payload) {
    for (const char* outcome : {"/accepted", "/rejected"}) {
      EXPECT_EQ(p.subscribe(topic + outcome), ReasonCode::GrantedQoS1) << topic << outcome;
    }
    const std::size_t before = p.received.size();
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(p.publish(topic, payload), ReasonCode::Success) << topic;
    p.pump(5s, before + 1);
    last_round_trip_ = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (p.received.size() <= before) {
      ADD_FAILURE() << "no reply on " << topic;
      return {};
    }
    return p.received[before];
  }

  // From the request's publish to its reply's arrival, for the last `request`.
  std::chrono::milliseconds last_round_trip_{0};

  // A claim device (the fixture's claim certificate).
  void claim_device(Peer& p, std::string_view id = "factory-0042") {
    auto r = device(p, "claim", id);
    ASSERT_TRUE(r) << mqtt::to_string(r.error()) << "\n" << broker_->log();
  }

  json rejected(const Peer::Message& m, const std::string& topic) {
    EXPECT_EQ(m.topic, topic + "/rejected") << m.payload;
    return decode(m.payload, fmt());
  }

  // RegisterThing with `token`; returns the reply's document.
  Peer::Message register_thing(Peer& p, const std::string& token, const std::string& serial,
                               const std::string& tmpl = "fleet") {
    const std::string topic = "$aws/provisioning-templates/" + tmpl + "/provision/" + f();
    json doc{{"certificateOwnershipToken", token}, {"parameters", {{"SerialNumber", serial}}}};
    std::string payload = provisioning::encode(doc, fmt());
    if (fmt() == provisioning::Format::Json) payload += '\0';  // as AWS's C demos send it
    return request(p, topic, payload);
  }

  std::string cert_status(const std::string& id) {
    auto r = admin_get("/admin/v1/certificates/" + id);
    if (!r) return "no answer";
    if (r->status == 404) return "absent";
    return json::parse(r->body).value("status", "");
  }

  // Connects with a certificate and key given as PEM text.
  mqtt::Result<mqtt::ConnAck> connect_with(Peer& p, const std::string& cert_pem,
                                           const std::string& key_pem, std::string_view id) {
    static int n = 0;
    ++n;
    const std::string cert = (dir_ / ("issued-" + std::to_string(n) + ".crt")).string();
    const std::string key = (dir_ / ("issued-" + std::to_string(n) + ".key")).string();
    std::ofstream(cert) << cert_pem;
    std::ofstream(key) << key_pem;
    ::chmod(key.c_str(), 0600);
    tls::Config c;
    c.ca_file = ca_->cert_file();
    c.certificate_file = cert;
    c.private_key_file = key;
    return p.connect_tls(broker_->tls_port(), c, id);
  }

  // The device's whole life after a create call: RegisterThing, then a reconnect with its own
  // certificate as the thing, on its own topics only.
  void register_and_reconnect(Peer& claim, const json& created, const std::string& key_pem,
                              const std::string& serial) {
    const std::string id = created.value("certificateId", "");
    EXPECT_EQ(cert_status(id), "PENDING_ACTIVATION");
    Peer early;
    EXPECT_FALSE(connect_with(early, created.value("certificatePem", ""), key_pem, "dev-" + serial))
        << "a certificate is refused until RegisterThing activates it";

    auto reply = register_thing(claim, created.value("certificateOwnershipToken", ""), serial);
    RecordProperty("register_thing_ms", static_cast<int>(last_round_trip_.count()));
    ASSERT_EQ(reply.topic, "$aws/provisioning-templates/fleet/provision/" + f() + "/accepted")
        << decode(reply.payload, fmt()).dump();
    const json doc = decode(reply.payload, fmt());
    EXPECT_EQ(doc["thingName"], "dev-" + serial);
    EXPECT_EQ(doc["deviceConfiguration"], json({{"Site", "lab"}, {"Interval", "30"}}));
    EXPECT_EQ(cert_status(id), "ACTIVE");
    auto thing = admin_get("/admin/v1/things/dev-" + serial);
    ASSERT_TRUE(thing && thing->status == 200) << (thing ? thing->body : "");

    // AWS: disconnect, reconnect with the new certificate.
    Peer dev;
    auto ack = connect_with(dev, created.value("certificatePem", ""), key_pem, "dev-" + serial);
    ASSERT_TRUE(ack) << mqtt::to_string(ack.error()) << "\n" << broker_->log();
    EXPECT_EQ(dev.subscribe("dev-" + serial + "/#"), ReasonCode::GrantedQoS1);
    EXPECT_EQ(dev.publish("dev-" + serial + "/telemetry", "21.5"), ReasonCode::Success);
    dev.pump(3s, 1);
    EXPECT_EQ(dev.received.size(), 1u);
    EXPECT_EQ(dev.publish("t1/telemetry", "x"), ReasonCode::NotAuthorized) << "its own topics only";

    // The token was used. The same request again (a device that lost the reply) gets the same
    // answer, and nothing new is made; any other request with the token is refused.
    auto same = register_thing(claim, created.value("certificateOwnershipToken", ""), serial);
    ASSERT_EQ(same.topic, "$aws/provisioning-templates/fleet/provision/" + f() + "/accepted")
        << decode(same.payload, fmt()).dump();
    EXPECT_EQ(decode(same.payload, fmt()), doc);
    EXPECT_EQ(cert_status(id), "ACTIVE");
    auto again =
        register_thing(claim, created.value("certificateOwnershipToken", ""), serial + "1");
    const json r = rejected(again, "$aws/provisioning-templates/fleet/provision/" + f());
    EXPECT_EQ(r["statusCode"], 400);
    EXPECT_EQ(r["errorCode"], "InvalidCertificateOwnershipToken");
    EXPECT_EQ(r["errorMessage"], "Certificate ownership token has already been used.");

    // Once the certificate is revoked, not even the same request is answered any more.
    auto revoked = admin_post("/admin/v1/certificates/" + id + "/revoke");
    ASSERT_TRUE(revoked && revoked->status == 200) << (revoked ? revoked->body : "no answer");
    const json after =
        rejected(register_thing(claim, created.value("certificateOwnershipToken", ""), serial),
                 "$aws/provisioning-templates/fleet/provision/" + f());
    EXPECT_EQ(after.value("errorMessage", ""),
              "Certificate ownership token has already been used.");
  }
};

TEST_P(ClaimProvisioning, CreateKeysAndCertificateRegisterThingAndReconnect) {
  Peer claim;
  ASSERT_NO_FATAL_FAILURE(claim_device(claim));
  const std::string topic = "$aws/certificates/create/" + f();
  auto reply = request(claim, topic, "");  // an empty request, as AWS's demos send it
  ASSERT_EQ(reply.topic, topic + "/accepted") << decode(reply.payload, fmt()).dump();
  RecordProperty("reply_bytes", static_cast<int>(reply.payload.size()));
  RecordProperty("create_ms", static_cast<int>(last_round_trip_.count()));
  EXPECT_LT(reply.payload.size(), 4096u) << "AWS's C demos read this reply into 4 KB";
  const json doc = decode(reply.payload, fmt());
  for (const char* field :
       {"certificateId", "certificatePem", "privateKey", "certificateOwnershipToken"}) {
    EXPECT_TRUE(doc.contains(field) && doc[field].is_string()) << field;
  }
  const std::string key = doc.value("privateKey", "");
  auto signer = pki::SoftwareSigner::from_pem(key);
  ASSERT_TRUE(signer) << "the private key is a PEM key";
  EXPECT_EQ(signer->key_algorithm(), pki::KeyAlgorithm::EcP256);
  auto cert = pki::parse_certificate(doc.value("certificatePem", ""));
  ASSERT_TRUE(cert);
  EXPECT_EQ(cert->id, doc["certificateId"]);
  EXPECT_EQ(cert->public_key_der, signer->public_key_der()) << "the key is the certificate's";
  ASSERT_NO_FATAL_FAILURE(register_and_reconnect(claim, doc, key, "42" + f()));
}

TEST_P(ClaimProvisioning, CreateCertificateFromCsrRegisterThingAndReconnect) {
  Peer claim;
  ASSERT_NO_FATAL_FAILURE(claim_device(claim));
  auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
  ASSERT_TRUE(key);
  const std::string topic = "$aws/certificates/create-from-csr/" + f();
  auto reply = request(
      claim, topic, provisioning::encode(json{{"certificateSigningRequest", csr_of(*key)}}, fmt()));
  ASSERT_EQ(reply.topic, topic + "/accepted") << decode(reply.payload, fmt()).dump();
  RecordProperty("reply_bytes", static_cast<int>(reply.payload.size()));
  RecordProperty("create_ms", static_cast<int>(last_round_trip_.count()));
  EXPECT_LT(reply.payload.size(), 2048u) << "AWS's C demos read this reply into 2 KB";
  const json doc = decode(reply.payload, fmt());
  EXPECT_FALSE(doc.contains("privateKey"));
  ASSERT_NO_FATAL_FAILURE(register_and_reconnect(claim, doc, key->private_key_pem(), "7" + f()));
}

TEST_P(ClaimProvisioning, RepliesReachTheRequesterOnly) {
  Peer claim, other;
  ASSERT_NO_FATAL_FAILURE(claim_device(claim, "factory-1"));
  ASSERT_NO_FATAL_FAILURE(claim_device(other, "factory-2"));
  const std::string topic = "$aws/certificates/create/" + f();
  EXPECT_EQ(other.subscribe(topic + "/accepted"), ReasonCode::GrantedQoS1);
  Peer observer;
  trusted(observer, "observer");
  EXPECT_EQ(observer.subscribe("$aws/certificates/#"), ReasonCode::GrantedQoS1);
  auto reply = request(claim, topic, "");
  ASSERT_EQ(reply.topic, topic + "/accepted");
  other.pump(1s);
  observer.pump(500ms);
  EXPECT_TRUE(other.received.empty()) << "another device saw a private key";
  for (const auto& m : observer.received) {
    EXPECT_EQ(m.topic, topic) << "only the request itself, never the reply";
  }

  // Two requests on the same topic at once: each device gets its own reply, and only that.
  EXPECT_EQ(claim.subscribe(topic + "/accepted"), ReasonCode::GrantedQoS1);
  claim.received.clear();
  other.received.clear();
  EXPECT_EQ(claim.publish(topic, ""), ReasonCode::Success);
  EXPECT_EQ(other.publish(topic, ""), ReasonCode::Success);
  claim.pump(3s, 1);
  other.pump(3s, 1);
  claim.pump(500ms);
  other.pump(500ms);
  ASSERT_EQ(claim.received.size(), 1u);
  ASSERT_EQ(other.received.size(), 1u);
  EXPECT_NE(decode(claim.received[0].payload, fmt())["certificateId"],
            decode(other.received[0].payload, fmt())["certificateId"]);
}

TEST_P(ClaimProvisioning, OwnershipTokensEmptyForeignAlteredAndExpiredAreRejected) {
  Peer claim;
  ASSERT_NO_FATAL_FAILURE(claim_device(claim));
  const std::string topic = "$aws/provisioning-templates/fleet/provision/" + f();
  auto expect = [&](const std::string& token, const char* message) {
    const json r = rejected(register_thing(claim, token, "1"), topic);
    EXPECT_EQ(r["statusCode"], 400) << token;
    EXPECT_EQ(r["errorCode"], "InvalidCertificateOwnershipToken") << token;
    EXPECT_EQ(r["errorMessage"], message) << token;
  };
  expect("", "Certificate ownership token cannot be empty.");
  // A real certificate and a token for it, then forgeries of that token.
  auto created = request(claim, "$aws/certificates/create/" + f(), "");
  const json doc = decode(created.payload, fmt());
  const std::string id = doc.value("certificateId", "");
  const std::string token = doc.value("certificateOwnershipToken", "");
  ASSERT_FALSE(token.empty());
  provisioning::TokenAuthority foreign("another fleetd's secret");
  provisioning::TokenClaims claims;
  expect(foreign.issue(id, ::time(nullptr) + 600, claims),
         "Certificate ownership token is invalid.");
  std::string altered = token;
  altered[10] = altered[10] == 'A' ? 'B' : 'A';
  expect(altered, "Certificate ownership token is invalid.");
  expect("garbage", "Certificate ownership token is invalid.");
  // Signed with this fleetd's own secret but already expired.
  std::string secret;
  std::getline(std::ifstream(dir_ / "state" / "claim-token.key"), secret);
  provisioning::TokenAuthority mine(secret);
  expect(mine.issue(id, ::time(nullptr) - 1, claims), "Certificate ownership token has expired.");
  // A well-signed token fleetd never issued (no record): refused too.
  expect(mine.issue(id, ::time(nullptr) + 600, claims), "Certificate ownership token is invalid.");
  EXPECT_EQ(cert_status(id), "PENDING_ACTIVATION") << "nothing was provisioned";
}

TEST_P(ClaimProvisioning, GarbageHugePayloadsAndBadCsrsGetNamedRejections) {
  Peer claim(256 * 1024);
  ASSERT_NO_FATAL_FAILURE(claim_device(claim));
  const std::string create = "$aws/certificates/create/" + f();
  const std::string csr_topic = "$aws/certificates/create-from-csr/" + f();
  const std::string provision = "$aws/provisioning-templates/fleet/provision/" + f();
  auto code = [&](const std::string& topic, const std::string& payload) {
    const json r = rejected(request(claim, topic, payload), topic);
    return r.value("errorCode", "") + " " + std::to_string(r.value("statusCode", 0));
  };
  EXPECT_EQ(code(create, "\xff\x00garbage"), "InvalidPayload 400");
  EXPECT_EQ(code(provision, "[1,2,3]"), "InvalidPayload 400");
  EXPECT_EQ(code(csr_topic, std::string(100 * 1024, 'x')), "InvalidPayload 400");
  EXPECT_EQ(code(provision, std::string(100 * 1024, '{')), "InvalidPayload 400");
  EXPECT_EQ(code(csr_topic, provisioning::encode(json{{"certificateSigningRequest", 5}}, fmt())),
            "InvalidPayload 400");
  EXPECT_EQ(code(csr_topic,
                 provisioning::encode(json{{"certificateSigningRequest", "not a CSR"}}, fmt())),
            "InvalidCertificateSigningRequest 400");
  // A CSR whose signature does not verify: one bit of the signature flipped.
  auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
  ASSERT_TRUE(key);
  auto info = pki::parse_csr(csr_of(*key));
  ASSERT_TRUE(info);
  pki::Bytes der = info->der;
  der[der.size() - 3] ^= 0x01;
  std::string b64(4 * ((der.size() + 2) / 3) + 1, '\0');
  b64.resize(static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                                      der.data(), static_cast<int>(der.size()))));
  const std::string bad_sig =
      "-----BEGIN CERTIFICATE REQUEST-----\n" + b64 + "\n-----END CERTIFICATE REQUEST-----\n";
  ASSERT_EQ(pki::parse_csr(bad_sig).error().code, pki::Errc::BadSignature);
  EXPECT_EQ(
      code(csr_topic, provisioning::encode(json{{"certificateSigningRequest", bad_sig}}, fmt())),
      "InvalidCertificateSigningRequest 400");
  const json weak = rejected(
      request(claim, csr_topic,
              provisioning::encode(json{{"certificateSigningRequest", weak_csr()}}, fmt())),
      csr_topic);
  EXPECT_EQ(weak["errorCode"], "InvalidCertificateSigningRequest");
  EXPECT_NE(weak.value("errorMessage", "").find("RSA"), std::string::npos) << weak.dump();
  // fleetd is still there and answering.
  auto ok = request(claim, create, "");
  EXPECT_EQ(ok.topic, create + "/accepted");
}

// A claim certificate made by fleetd for template `name` (its key and certificate as PEM).
struct ClaimCredential {
  std::string cert_pem;
  std::string key_pem;
};

TEST_P(ClaimProvisioning, AClaimCertificateServesItsOwnTemplateOnly) {
  add_template("other", true);
  // The fixture's claim certificate is bound to "fleet": "other" is refused by the broker, as
  // AWS refuses a publish its policy does not allow.
  Peer fleet_claim;
  ASSERT_NO_FATAL_FAILURE(claim_device(fleet_claim));
  const std::string other = "$aws/provisioning-templates/other/provision/" + f();
  EXPECT_EQ(fleet_claim.publish(other, "{}"), ReasonCode::NotAuthorized);
  EXPECT_EQ(fleet_claim.subscribe(other + "/accepted"), ReasonCode::NotAuthorized);

  // fleetd makes a claim certificate for "other" (admin API, as `edgekit fleet claim create`).
  auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
  ASSERT_TRUE(key);
  auto made = admin("POST", "/admin/v1/provisioning-templates/other/claim-certificates",
                    json{{"certificateSigningRequest", csr_of(*key, "/CN=claim-other")}}.dump());
  ASSERT_TRUE(made && made->status == 201) << (made ? made->body : "no answer");
  const json cred = json::parse(made->body);
  EXPECT_EQ(cred["policyName"], "claim-other");
  EXPECT_EQ(cred["status"], "ACTIVE");
  Peer claim;
  auto ack = connect_with(claim, cred["certificatePem"], key->private_key_pem(), "factory-77");
  ASSERT_TRUE(ack) << mqtt::to_string(ack.error());
  EXPECT_EQ(claim.publish("$aws/provisioning-templates/fleet/provision/" + f(), "{}"),
            ReasonCode::NotAuthorized);
  EXPECT_EQ(claim.publish("$aws/things/t1/shadow/get", ""), ReasonCode::NotAuthorized);
  auto created = request(claim, "$aws/certificates/create/" + f(), "");
  const json doc = decode(created.payload, fmt());
  auto reply = register_thing(claim, doc.value("certificateOwnershipToken", ""), "88", "other");
  EXPECT_EQ(reply.topic, other + "/accepted") << decode(reply.payload, fmt()).dump();
  EXPECT_EQ(decode(reply.payload, fmt())["thingName"], "dev-88");

  // The results list names the claim certificate and the template.
  auto results = admin_get("/admin/v1/provisioning-results");
  ASSERT_TRUE(results && results->status == 200);
  const json items = json::parse(results->body)["items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["thingName"], "dev-88");
  EXPECT_EQ(items[0]["templateName"], "other");
  EXPECT_EQ(items[0]["claimCertificateId"], cred["certificateId"]);
  EXPECT_EQ(items[0]["clientId"], "factory-77");
}

TEST_P(ClaimProvisioning, AMissingOrDisabledTemplateIsRejected) {
  add_template("off", false);
  add_template("gone", true);
  auto credential = [&](const std::string& tmpl) {
    auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
    auto made = admin("POST", "/admin/v1/provisioning-templates/" + tmpl + "/claim-certificates",
                      json{{"certificateSigningRequest", csr_of(*key)}}.dump());
    EXPECT_TRUE(made && made->status == 201) << (made ? made->body : "no answer");
    return ClaimCredential{json::parse(made->body).value("certificatePem", ""),
                           key->private_key_pem()};
  };
  const ClaimCredential off = credential("off"), gone = credential("gone");
  auto deleted = admin("DELETE", "/admin/v1/provisioning-templates/gone");
  ASSERT_TRUE(deleted && deleted->status == 204) << (deleted ? deleted->body : "");

  for (const auto& [tmpl, cred] :
       {std::pair{std::string("off"), off}, std::pair{std::string("gone"), gone}}) {
    Peer claim;
    ASSERT_TRUE(connect_with(claim, cred.cert_pem, cred.key_pem, "factory-" + tmpl));
    auto created = request(claim, "$aws/certificates/create/" + f(), "");
    const json doc = decode(created.payload, fmt());
    const json r =
        rejected(register_thing(claim, doc.value("certificateOwnershipToken", ""), "5", tmpl),
                 "$aws/provisioning-templates/" + tmpl + "/provision/" + f());
    if (tmpl == "off") {
      EXPECT_EQ(r["statusCode"], 400);
      EXPECT_EQ(r["errorCode"], "InvalidRequest");
      EXPECT_EQ(r["errorMessage"], "Template off is disabled.");
    } else {
      EXPECT_EQ(r["statusCode"], 404);
      EXPECT_EQ(r["errorCode"], "ResourceNotFound");
      EXPECT_EQ(r["errorMessage"], "Template gone does not exist.");
    }
    EXPECT_EQ(cert_status(doc.value("certificateId", "")), "PENDING_ACTIVATION");
  }
}

TEST_P(ClaimProvisioning, APreProvisioningHookOverridesDeniesAndTimesOutWithoutBlockingFleetd) {
  const fs::path seen = dir_ / "hook-input.json";
  auto hook = [&](const std::string& name, const std::string& body) {
    const fs::path path = dir_ / name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0700);
    auto r = admin("PUT", "/admin/v1/provisioning-templates/fleet/pre-provisioning-hook",
                   json{{"targetArn", path.string()}, {"payloadVersion", "2020-04-01"}}.dump());
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
  };
  Peer claim;
  ASSERT_NO_FATAL_FAILURE(claim_device(claim));
  auto token = [&] {
    auto created = request(claim, "$aws/certificates/create/" + f(), "");
    return decode(created.payload, fmt());
  };
  const std::string topic = "$aws/provisioning-templates/fleet/provision/" + f();

  // Allows, and overrides the serial number (AWS merges parameterOverrides into parameters).
  ASSERT_NO_FATAL_FAILURE(
      hook("allow.sh", "cat > " + seen.string() +
                           "; echo '{\"allowProvisioning\":true,"
                           "\"parameterOverrides\":{\"SerialNumber\":\"from-hook\"}}'"));
  const json first = token();
  auto ok = register_thing(claim, first.value("certificateOwnershipToken", ""), "1");
  ASSERT_EQ(ok.topic, topic + "/accepted") << decode(ok.payload, fmt()).dump();
  EXPECT_EQ(decode(ok.payload, fmt())["thingName"], "dev-from-hook");
  const json in = json::parse(testing::read_text_file(seen.string()));
  EXPECT_EQ(in["certificateId"], first["certificateId"]);
  EXPECT_EQ(in["certificatePem"], first["certificatePem"]);
  EXPECT_EQ(in["claimCertificateId"], ids_["claim"]);
  EXPECT_EQ(in["clientId"], "factory-0042");
  EXPECT_EQ(in["templateArn"], "arn:aws:iot:local:000000000000:provisioningtemplate/fleet");
  EXPECT_EQ(in["parameters"], json({{"SerialNumber", "1"}}));

  auto denied = [&](const char* why) {
    const json doc = token();
    const json r =
        rejected(register_thing(claim, doc.value("certificateOwnershipToken", ""), "2"), topic);
    EXPECT_EQ(r["statusCode"], 403) << why;
    EXPECT_EQ(r["errorCode"], "ACCESS_DENIED") << why;
    EXPECT_EQ(cert_status(doc.value("certificateId", "")), "PENDING_ACTIVATION") << why;
  };
  ASSERT_NO_FATAL_FAILURE(hook("deny.sh", "cat >/dev/null; echo '{\"allowProvisioning\":false}'"));
  denied("allowProvisioning false");
  ASSERT_NO_FATAL_FAILURE(hook("crash.sh", "exit 1"));
  denied("a failing hook");

  // A hook slower than AWS's 5 s: denied at the limit, and fleetd keeps answering meanwhile.
  ASSERT_NO_FATAL_FAILURE(hook("slow.sh", "sleep 20; echo '{\"allowProvisioning\":true}'"));
  const json doc = token();
  const auto start = std::chrono::steady_clock::now();
  const std::size_t before = claim.received.size();
  EXPECT_EQ(claim.publish(topic, provisioning::encode(json{{"certificateOwnershipToken",
                                                            doc["certificateOwnershipToken"]},
                                                           {"parameters", {{"SerialNumber", "3"}}}},
                                                      fmt())),
            ReasonCode::Success);
  Peer other;
  ASSERT_NO_FATAL_FAILURE(claim_device(other, "factory-busy"));
  auto quick = request(other, "$aws/certificates/create/" + f(), "");
  EXPECT_EQ(quick.topic, "$aws/certificates/create/" + f() + "/accepted");
  const auto during = std::chrono::steady_clock::now() - start;
  RecordProperty(
      "answer_during_slow_hook_ms",
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(during).count()));
  EXPECT_LT(during, 3s) << "the event loop waited for the hook";
  claim.pump(10s, before + 1);
  ASSERT_GT(claim.received.size(), before);
  const auto took = std::chrono::steady_clock::now() - start;
  const json r = decode(claim.received[before].payload, fmt());
  EXPECT_EQ(claim.received[before].topic, topic + "/rejected");
  EXPECT_EQ(r["errorCode"], "ACCESS_DENIED");
  EXPECT_GE(took, 4900ms);
  EXPECT_LT(took, 8s);
}

TEST_P(ClaimProvisioning, AnHttpHookIsAskedToo) {
  HookServer hook;
  hook.answer("/hook", R"({"allowProvisioning":true,"parameterOverrides":{"Site":"http"}})");
  const std::string base = hook.start();
  // Set as AWS's UpdateProvisioningTemplate sets it: the template's preProvisioningHook member.
  auto set = admin("PATCH", "/admin/v1/provisioning-templates/fleet",
                   json{{"preProvisioningHook",
                         {{"targetArn", base + "/hook"}, {"payloadVersion", "2020-04-01"}}}}
                       .dump());
  ASSERT_TRUE(set && set->status == 200) << (set ? set->body : "");
  auto described = admin_get("/admin/v1/provisioning-templates/fleet");
  ASSERT_TRUE(described && described->status == 200);
  EXPECT_EQ(json::parse(described->body)["preProvisioningHook"]["targetArn"], base + "/hook");
  Peer claim;
  ASSERT_NO_FATAL_FAILURE(claim_device(claim));
  const json doc = decode(request(claim, "$aws/certificates/create/" + f(), "").payload, fmt());
  auto ok = register_thing(claim, doc.value("certificateOwnershipToken", ""), "9");
  EXPECT_EQ(decode(ok.payload, fmt())["deviceConfiguration"]["Site"], "http");
  EXPECT_EQ(json::parse(hook.received(), nullptr, false).value("clientId", ""), "factory-0042");
}

TEST_P(ClaimProvisioning, AnUnregisteredCertificateIsRemovedWhenItsTokenExpiresEvenAcrossARestart) {
  Peer claim;
  ASSERT_NO_FATAL_FAILURE(claim_device(claim));
  const json doc = decode(request(claim, "$aws/certificates/create/" + f(), "").payload, fmt());
  const std::string id = doc.value("certificateId", "");
  ASSERT_EQ(cert_status(id), "PENDING_ACTIVATION");
  // fleetd stops; an hour passes (the token's expiry is moved back instead); fleetd starts and
  // sweeps.
  testing::stop_child(fleetd_, SIGTERM, 5s);
  fleetd_ = -1;
  {
    auto db = open_sqlite({(dir_ / "state" / "fleetd.db").string()});
    ASSERT_TRUE(db);
    auto store = Store::open(std::move(db.value()));
    ASSERT_TRUE(store);
    ASSERT_TRUE(store.value()->transact([](Tx& tx) -> Res<void> {
      auto n = tx.db().exec("UPDATE ownership_tokens SET expires_at = expires_at - 3601");
      if (!n) return fail(n.error());
      return {};
    }));
  }
  ASSERT_NO_FATAL_FAILURE(start_fleetd());
  EXPECT_TRUE(fleetd_logged("claim.certificate_expired", 1, 5s));
  EXPECT_EQ(cert_status(id), "absent");
  Peer again;
  ASSERT_NO_FATAL_FAILURE(claim_device(again, "factory-later"));
  const json r = rejected(register_thing(again, doc.value("certificateOwnershipToken", ""), "1"),
                          "$aws/provisioning-templates/fleet/provision/" + f());
  // The token itself still names a later expiry (only the store's record was moved back): its
  // record is gone with the certificate, so it is no longer valid.
  EXPECT_EQ(r["errorMessage"], "Certificate ownership token is invalid.");
}

INSTANTIATE_TEST_SUITE_P(Formats, ClaimProvisioning,
                         ::testing::Values(provisioning::Format::Json, provisioning::Format::Cbor),
                         [](const auto& p) { return format_name(p.param); });

}  // namespace
}  // namespace edgekit::fleetd::test
