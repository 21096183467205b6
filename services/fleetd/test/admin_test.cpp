// The admin API over HTTP with a real store: every resource's calls, authentication, the error
// shapes and statuses, pagination, validation of untrusted bodies, the kicks that revocation
// triggers, HTTPS, and the OpenAPI document kept equal to the routes the server registers.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "admin/server.hpp"
#include "admin/templates.hpp"
#include "ca/authority.hpp"
#include "edgekit/json/json.hpp"
#include "edgekit/pki/pki.hpp"
#include "edgekit/testing/token_env.hpp"
#include "edgekit/testing/test_pki.hpp"
#include "http/common.hpp"

namespace edgekit::fleetd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

// AWS's certificate id computed independently of fleetd: SHA-256 of the DER, hex.
std::string aws_id(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  unsigned char* der = nullptr;
  int len = i2d_X509(x, &der);
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(der, static_cast<std::size_t>(len), md, &n, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  X509_free(x);
  std::string out;
  char b[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", md[i]);
    out += b;
  }
  return out;
}

const char* kGoodTemplate = R"({
  "Parameters": {"SerialNumber": {"Type": "String"}, "Site": {"Type": "String", "Default": "lab"}},
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing",
              "Properties": {"ThingName": {"Fn::Join": ["", ["sensor-", {"Ref": "SerialNumber"}]]},
                             "AttributePayload": {"site": {"Ref": "Site"}}},
              "OverrideSettings": {"AttributePayload": "MERGE"}},
    "certificate": {"Type": "AWS::IoT::Certificate",
                    "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                                   "Status": "ACTIVE"}},
    "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "sensor"}}
  },
  "DeviceConfiguration": {"interval": "60"}
})";

const char* kPolicy = R"({"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"}]})";

class AdminApi : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgekit-admin-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto db = open_sqlite({(dir_ / "fleetd.db").string()});
    ASSERT_TRUE(db) << db.error().message;
    auto s = Store::open(std::move(db.value()));
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(s.value());
    io_thread_ = std::thread([this] { io_.run(); });
    auto token = load_or_create_token((dir_ / "admin.token").string());
    ASSERT_TRUE(token);
    token_ = token.value();
    start_server({});
  }

  void start_server(AdminOptions o) {
    server_ = std::make_unique<AdminServer>(io_, *store_, log_, [this](const std::string& id) {
      std::lock_guard lock(mu_);
      kicks_.push_back(id);
    });
    server_->set_ca(own_ca_.get());
    o.token = token_;
    auto port = server_->start(o);
    ASSERT_TRUE(port) << port.error().message;
    port_ = port.value();
  }

  void TearDown() override {
    server_.reset();
    guard_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
    store_.reset();
    fs::remove_all(dir_);
  }

  struct Answer {
    int status = 0;
    json body;
    std::string text;
  };

  Answer call(const std::string& method, const std::string& path, const std::string& body = "",
              std::string token = "") {
    httplib::Client c("127.0.0.1", port_);
    httplib::Headers h{{"Authorization", "Bearer " + (token.empty() ? token_ : token)}};
    auto r = [&] {
      if (method == "GET") return c.Get(path.c_str(), h);
      if (method == "POST") return c.Post(path.c_str(), h, body, "application/json");
      if (method == "PUT") return c.Put(path.c_str(), h, body, "application/json");
      if (method == "PATCH") return c.Patch(path.c_str(), h, body, "application/json");
      return c.Delete(path.c_str(), h);
    }();
    Answer a;
    if (!r) return a;
    a.status = r->status;
    a.text = r->body;
    a.body = json::parse(r->body, nullptr, false);
    return a;
  }

  std::vector<std::string> kicks() {
    std::lock_guard lock(mu_);
    return kicks_;
  }

  fs::path dir_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  std::thread io_thread_;
  std::ostringstream log_text_;
  Logger log_{log_text_, LogFormat::Text, LogLevel::Debug};
  std::unique_ptr<Store> store_;
  std::unique_ptr<ca::Authority> own_ca_;  // fleetd's own CA, when a test makes one
  std::unique_ptr<AdminServer> server_;
  std::string token_;
  std::uint16_t port_ = 0;
  std::mutex mu_;
  std::vector<std::string> kicks_;
};

TEST_F(AdminApi, RefusesCallersWithoutTheTokenBeforeRevealingAnything) {
  for (const char* path : {"/admin/v1/things", "/admin/v1/no-such-route"}) {
    httplib::Client c("127.0.0.1", port_);
    auto none = c.Get(path);
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, 401) << path;
    EXPECT_EQ(json::parse(none->body)["code"], "unauthorized");
    auto basic = c.Get(path, {{"Authorization", "Basic " + token_}});
    EXPECT_EQ(basic->status, 401);
    std::string wrong = token_;
    wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
    EXPECT_EQ(call("GET", path, "", wrong).status, 401);
    EXPECT_EQ(call("GET", path, "", token_ + "0").status, 401);
  }
  EXPECT_EQ(log_text_.str().find(token_), std::string::npos) << "the token reached the log";
  auto unknown = call("GET", "/admin/v1/no-such-route");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body["code"], "not_found");
}

TEST_F(AdminApi, ThingsAreCreatedDescribedUpdatedWithVersionsAndDeleted) {
  auto created = call("POST", "/admin/v1/things",
                      R"({"thingName":"sensor-1","thingTypeName":"sensor","attributes":{"site":"lab"}})");
  ASSERT_EQ(created.status, 201) << created.text;
  EXPECT_EQ(created.body["version"], 1);
  EXPECT_EQ(created.body["attributes"]["site"], "lab");
  auto again = call("POST", "/admin/v1/things", R"({"thingName":"sensor-1"})");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body["code"], "already_exists");
  EXPECT_NE(again.body["message"].get<std::string>().find("sensor-1"), std::string::npos);

  auto updated = call("PATCH", "/admin/v1/things/sensor-1",
                      R"({"attributes":{"floor":"2"},"merge":true,"expectedVersion":"1"})");
  ASSERT_EQ(updated.status, 200) << updated.text;
  EXPECT_EQ(updated.body["version"], 2);
  EXPECT_EQ(updated.body["attributes"], (json{{"site", "lab"}, {"floor", "2"}}));
  auto stale = call("PATCH", "/admin/v1/things/sensor-1", R"({"attributes":{},"expectedVersion":1})");
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(stale.body["code"], "conflict");
  auto replaced = call("PATCH", "/admin/v1/things/sensor-1", R"({"attributes":{"a":"b"}})");
  EXPECT_EQ(replaced.body["attributes"], (json{{"a", "b"}}));

  auto described = call("GET", "/admin/v1/things/sensor-1");
  ASSERT_EQ(described.status, 200);
  EXPECT_EQ(described.body["thingTypeName"], "sensor");
  EXPECT_EQ(described.body["certificates"], json::array());
  EXPECT_EQ(call("DELETE", "/admin/v1/things/sensor-1?expectedVersion=1").status, 409);
  EXPECT_EQ(call("DELETE", "/admin/v1/things/sensor-1?expectedVersion=x").status, 400);
  EXPECT_EQ(call("DELETE", "/admin/v1/things/sensor-1?expectedVersion=3").status, 204);
  auto gone = call("GET", "/admin/v1/things/sensor-1");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.body["code"], "not_found");
  EXPECT_EQ(call("POST", "/admin/v1/things", R"({"thingName":"bad name"})").status, 400);
}

TEST_F(AdminApi, ListsPaginateWithLimitAndNext) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(call("POST", "/admin/v1/things",
                   json{{"thingName", "t" + std::to_string(i)}}.dump()).status, 201);
  }
  std::vector<std::string> seen;
  std::string next;
  int pages = 0;
  do {
    auto page = call("GET", "/admin/v1/things?limit=2" + (next.empty() ? "" : "&next=" + next));
    ASSERT_EQ(page.status, 200) << page.text;
    for (const auto& t : page.body["items"]) seen.push_back(t["thingName"]);
    next = page.body.value("next", "");
    ++pages;
  } while (!next.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"t0", "t1", "t2", "t3", "t4"}));
  for (const char* q : {"limit=0", "limit=1001", "limit=abc", "limit=-1"}) {
    auto bad = call("GET", std::string("/admin/v1/things?") + q);
    EXPECT_EQ(bad.status, 400) << q;
    EXPECT_EQ(bad.body["code"], "invalid_argument") << q;
  }
  EXPECT_EQ(call("GET", "/admin/v1/things?next=" + std::string(300, 'x')).status, 400);
}

TEST_F(AdminApi, MalformedAndOversizedBodiesGetClearErrorsAndChangeNothing) {
  struct Case {
    const char* body;
    const char* says;
  };
  for (const Case& c : {Case{"", "not valid JSON"}, Case{"{", "not valid JSON"},
                        Case{"[]", "not a JSON object"}, Case{"{}", "missing member 'thingName'"},
                        Case{R"({"thingName":7})", "'thingName' is not a string"},
                        Case{R"({"thingName":"a","colour":"red"})", "unknown member 'colour'"},
                        Case{R"({"thingName":"a","attributes":{"k":1}})", "not a string"},
                        Case{R"({"thingName":"a","attributes":[]})", "not an object"}}) {
    auto a = call("POST", "/admin/v1/things", c.body);
    EXPECT_EQ(a.status, 400) << c.body;
    EXPECT_EQ(a.body["code"], "invalid_argument") << c.body;
    EXPECT_NE(a.body.value("message", "").find(c.says), std::string::npos) << a.text;
  }
  auto big = call("POST", "/admin/v1/things",
                  R"({"thingName":"a","attributes":{"k":")" + std::string(70 * 1024, 'x') + "\"}}");
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.body["code"], "payload_too_large") << big.text;
  // Image uploads may be large, so httplib's own limit is theirs: the other routes refuse a
  // chunked body (no length to check before reading it). Sent whole on a raw socket: the answer
  // comes before the body is read.
  const std::string request = "POST /admin/v1/things HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Authorization: Bearer " + token_ + "\r\n"
                              "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                              "Connection: close\r\n\r\n"
                              "17\r\n{\"thingName\":\"chunked\"}\r\n0\r\n\r\n";
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 411", 0), 0u) << answer;
  EXPECT_EQ(call("GET", "/admin/v1/things/chunked").status, 404);
  EXPECT_EQ(call("GET", "/admin/v1/things").body["items"], json::array());
}

class AdminApiPki : public AdminApi {
 protected:
  void SetUp() override {
    AdminApi::SetUp();
    ca_ = std::make_unique<testing::TestCa>((dir_ / "ca").string(), "ca");
    fs::create_directories(dir_ / "ca");
    ca_ = std::make_unique<testing::TestCa>((dir_ / "ca").string(), "ca");
    ASSERT_TRUE(ca_->ok()) << ca_->error();
    testing::CertOptions o;
    o.common_name = "sensor-1";
    device_ = read_file(ca_->issue("sensor-1", o).cert_file);
    ca_pem_ = read_file(ca_->cert_file());
  }

  std::string register_ca(const char* status = "ACTIVE") {
    auto a = call("POST", "/admin/v1/cas",
                  json{{"caCertificatePem", ca_pem_}, {"status", status}}.dump());
    EXPECT_EQ(a.status, 201) << a.text;
    return a.body.value("caCertificateId", "");
  }
  std::string register_device(const char* status = "ACTIVE") {
    auto a = call("POST", "/admin/v1/certificates",
                  json{{"certificatePem", device_}, {"status", status}}.dump());
    EXPECT_EQ(a.status, 201) << a.text;
    return a.body.value("certificateId", "");
  }

  std::unique_ptr<testing::TestCa> ca_;
  std::string device_;
  std::string ca_pem_;
};

TEST_F(AdminApiPki, CertificatesRegisterUnderAwsIdsAndFindTheirCa) {
  // A device certificate is not a CA.
  auto not_ca = call("POST", "/admin/v1/cas", json{{"caCertificatePem", device_}}.dump());
  EXPECT_EQ(not_ca.status, 400);
  EXPECT_NE(not_ca.text.find("not a CA certificate"), std::string::npos);
  const std::string ca_id = register_ca();
  EXPECT_EQ(ca_id, aws_id(ca_pem_));
  auto listed = call("GET", "/admin/v1/cas");
  ASSERT_EQ(listed.body["items"].size(), 1u);
  EXPECT_EQ(listed.body["items"][0]["status"], "ACTIVE");

  auto reg = call("POST", "/admin/v1/certificates", json{{"certificatePem", device_}}.dump());
  ASSERT_EQ(reg.status, 201) << reg.text;
  EXPECT_EQ(reg.body["certificateId"], aws_id(device_));
  EXPECT_EQ(reg.body["status"], "INACTIVE") << "AWS's default";
  EXPECT_EQ(reg.body["caCertificateId"], ca_id) << "the issuer is found among registered CAs";
  EXPECT_EQ(call("POST", "/admin/v1/certificates", json{{"certificatePem", device_}}.dump()).status,
            409);

  auto d = call("GET", "/admin/v1/certificates/" + aws_id(device_));
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(d.body["certificatePem"], device_);
  EXPECT_FALSE(d.body["serialNumber"].get<std::string>().empty());
  EXPECT_LT(d.body["notBefore"].get<std::int64_t>(), d.body["notAfter"].get<std::int64_t>());
  EXPECT_EQ(call("GET", "/admin/v1/certificates").body["items"].size(), 1u);

  for (const std::string& pem :
       {std::string("hello"), std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        device_ + ca_pem_}) {
    auto bad = call("POST", "/admin/v1/certificates", json{{"certificatePem", pem}}.dump());
    EXPECT_EQ(bad.status, 400) << pem;
  }
  EXPECT_EQ(call("POST", "/admin/v1/certificates",
                 json{{"certificatePem", device_}, {"status", "REVOKED"}}.dump()).status, 400);
  EXPECT_EQ(call("POST", "/admin/v1/certificates",
                 json{{"certificatePem", device_}, {"caCertificateId", std::string(64, 'a')}}.dump())
                .status, 400);
}

TEST_F(AdminApiPki, RevokingOrDeactivatingKicksLiveConnectionsAndRevokedIsFinal) {
  const std::string ca_id = register_ca();
  const std::string id = register_device();
  const std::string base = "/admin/v1/certificates/" + id;
  EXPECT_EQ(call("POST", base + "/activate").status, 200);
  EXPECT_TRUE(kicks().empty()) << "activating drops nobody";
  auto off = call("POST", base + "/deactivate");
  EXPECT_EQ(off.body["status"], "INACTIVE");
  EXPECT_EQ(kicks(), std::vector<std::string>{id});
  EXPECT_EQ(call("POST", base + "/activate").status, 200);
  auto revoked = call("POST", base + "/revoke");
  EXPECT_EQ(revoked.body["status"], "REVOKED");
  EXPECT_EQ(kicks().size(), 2u);
  auto back = call("POST", base + "/activate");
  EXPECT_EQ(back.status, 409) << "REVOKED is final";
  EXPECT_EQ(back.body["code"], "conflict");
  EXPECT_EQ(call("POST", "/admin/v1/certificates/" + std::string(64, '0') + "/revoke").status, 404);

  // A CA taken out of service takes its certificates' connections with it.
  auto ca_off = call("POST", "/admin/v1/cas/" + ca_id + "/deactivate");
  EXPECT_EQ(ca_off.body["status"], "INACTIVE");
  EXPECT_EQ(kicks().size(), 3u);
  EXPECT_EQ(kicks().back(), id);
  EXPECT_EQ(call("POST", "/admin/v1/cas/" + ca_id + "/activate").body["status"], "ACTIVE");
  auto flag = call("PATCH", "/admin/v1/cas/" + ca_id, R"({"autoRegistration":true})");
  EXPECT_EQ(flag.body["autoRegistration"], true) << flag.text;
  EXPECT_EQ(call("PATCH", "/admin/v1/cas/" + ca_id, R"({"registrationTemplate":"none"})").status,
            400);
  EXPECT_EQ(call("PATCH", "/admin/v1/cas/" + ca_id, "{}").status, 400);
}

TEST_F(AdminApiPki, ThingsAndPoliciesAttachToCertificates) {
  const std::string id = register_device();
  ASSERT_EQ(call("POST", "/admin/v1/things", R"({"thingName":"sensor-1"})").status, 201);
  EXPECT_EQ(call("PUT", "/admin/v1/things/sensor-1/certificates/" + id).status, 204);
  EXPECT_EQ(call("PUT", "/admin/v1/things/nope/certificates/" + id).status, 404);
  EXPECT_EQ(call("GET", "/admin/v1/things/sensor-1").body["certificates"], json::array({id}));
  EXPECT_EQ(call("DELETE", "/admin/v1/things/sensor-1").status, 409) << "attached: detach first";

  auto bad = call("POST", "/admin/v1/policies",
                  R"({"policyName":"p","policyDocument":{"Statement":[{"Effect":"Maybe"}]}})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.text.find("invalid policy document"), std::string::npos) << bad.text;
  auto p = call("POST", "/admin/v1/policies",
                json{{"policyName", "sensor"}, {"policyDocument", kPolicy}}.dump());
  ASSERT_EQ(p.status, 201) << p.text;
  EXPECT_EQ(call("GET", "/admin/v1/policies/sensor").body["policyDocument"], kPolicy);
  EXPECT_EQ(call("GET", "/admin/v1/policies").body["items"].size(), 1u);
  const auto before = kicks().size();
  EXPECT_EQ(call("PUT", "/admin/v1/policies/sensor/certificates/" + id).status, 204);
  EXPECT_EQ(kicks().size(), before + 1) << "a connection's rules change: it reconnects";
  EXPECT_EQ(call("GET", "/admin/v1/certificates/" + id).body["policies"], json::array({"sensor"}));
  EXPECT_EQ(call("DELETE", "/admin/v1/policies/sensor").status, 409);
  EXPECT_EQ(call("DELETE", "/admin/v1/policies/sensor/certificates/" + id).status, 204);
  EXPECT_EQ(call("DELETE", "/admin/v1/policies/sensor").status, 204);
  EXPECT_EQ(call("GET", "/admin/v1/policies/sensor").status, 404);

  EXPECT_EQ(call("DELETE", "/admin/v1/things/sensor-1/certificates/" + id).status, 204);
  EXPECT_EQ(call("DELETE", "/admin/v1/things/sensor-1/certificates/" + id).status, 404);
  EXPECT_EQ(call("DELETE", "/admin/v1/certificates/" + id).status, 409) << "ACTIVE";
  EXPECT_EQ(call("POST", "/admin/v1/certificates/" + id + "/deactivate").status, 200);
  EXPECT_EQ(call("DELETE", "/admin/v1/certificates/" + id).status, 204);
}

TEST_F(AdminApi, ThingGroupsHoldThings) {
  ASSERT_EQ(call("POST", "/admin/v1/thing-groups", R"({"groupName":"floor-2","description":"d"})").status,
            201);
  EXPECT_EQ(call("POST", "/admin/v1/thing-groups", R"({"groupName":"floor-2"})").status, 409);
  ASSERT_EQ(call("POST", "/admin/v1/things", R"({"thingName":"s1"})").status, 201);
  EXPECT_EQ(call("PUT", "/admin/v1/thing-groups/floor-2/things/s1").status, 204);
  EXPECT_EQ(call("PUT", "/admin/v1/thing-groups/floor-2/things/ghost").status, 404);
  EXPECT_EQ(call("GET", "/admin/v1/thing-groups/floor-2/things").body["items"], json::array({"s1"}));
  EXPECT_EQ(call("GET", "/admin/v1/things/s1").body["groups"], json::array({"floor-2"}));
  EXPECT_EQ(call("GET", "/admin/v1/thing-groups").body["items"][0]["groupName"], "floor-2");
  EXPECT_EQ(call("GET", "/admin/v1/thing-groups/floor-2").body["description"], "d");
  EXPECT_EQ(call("DELETE", "/admin/v1/thing-groups/floor-2/things/s1").status, 204);
  EXPECT_EQ(call("GET", "/admin/v1/thing-groups/floor-2/things").body["items"], json::array());
}

TEST_F(AdminApi, ProvisioningTemplatesAreValidatedStoredAndUpdated) {
  auto ok = call("POST", "/admin/v1/provisioning-templates/validate",
                 json{{"templateBody", kGoodTemplate}}.dump());
  EXPECT_EQ(ok.status, 200) << ok.text;
  EXPECT_EQ(call("GET", "/admin/v1/provisioning-templates").body["items"], json::array())
      << "validate stores nothing";
  auto jitp = call("POST", "/admin/v1/provisioning-templates/validate",
                   json{{"templateBody", kGoodTemplate}, {"type", "JITP"}}.dump());
  EXPECT_EQ(jitp.status, 400) << "DeviceConfiguration is for fleet provisioning";

  auto created = call("POST", "/admin/v1/provisioning-templates",
                      json{{"templateName", "sensors"}, {"templateBody", json::parse(kGoodTemplate)},
                           {"description", "factory"}}.dump());
  ASSERT_EQ(created.status, 201) << created.text;
  EXPECT_EQ(created.body["type"], "FLEET_PROVISIONING");
  EXPECT_EQ(created.body["enabled"], false);
  auto bad = call("POST", "/admin/v1/provisioning-templates",
                  json{{"templateName", "x"}, {"templateBody", R"({"Resources":{}})"}}.dump());
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.text.find("Resources is missing or empty"), std::string::npos);
  auto enabled = call("PATCH", "/admin/v1/provisioning-templates/sensors", R"({"enabled":true})");
  EXPECT_EQ(enabled.body["enabled"], true);
  EXPECT_EQ(enabled.body["version"], 2);
  EXPECT_EQ(call("PATCH", "/admin/v1/provisioning-templates/sensors",
                 R"({"templateBody":"{\"Resources\":{}}"})").status, 400);
  EXPECT_EQ(call("GET", "/admin/v1/provisioning-templates/sensors").body["description"], "factory");
  EXPECT_EQ(call("GET", "/admin/v1/provisioning-templates").body["items"].size(), 1u);
  EXPECT_EQ(call("DELETE", "/admin/v1/provisioning-templates/sensors").status, 204);
  EXPECT_EQ(call("GET", "/admin/v1/provisioning-templates/sensors").status, 404);
  EXPECT_EQ(call("POST", "/admin/v1/provisioning-templates",
                 json{{"templateName", std::string(37, 'a')}, {"templateBody", kGoodTemplate}}.dump())
                .status, 400);
}

TEST(TemplateValidation, RefusesTemplatesThatCannotWork) {
  EXPECT_TRUE(admin::validate_template(kGoodTemplate, "FLEET_PROVISIONING"));
  const std::string thing = R"("t":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":"x"}})";
  const std::string cert =
      R"("c":{"Type":"AWS::IoT::Certificate","Properties":{"CertificateId":{"Ref":"AWS::IoT::Certificate::Id"}}})";
  auto with = [&](const std::string& resources, const std::string& extra = "") {
    return "{" + extra + R"("Resources":{)" + resources + "}}";
  };
  EXPECT_TRUE(admin::validate_template(with(thing + "," + cert), "JITP"));
  struct Case {
    std::string body;
    const char* type;
    const char* says;
  };
  const std::vector<Case> cases{
      {"[]", "FLEET_PROVISIONING", "not a JSON object"},
      {with(thing), "FLEET_PROVISIONING", "exactly one AWS::IoT::Certificate"},
      {with(cert), "FLEET_PROVISIONING", "exactly one AWS::IoT::Thing"},
      {with(thing + "," + cert, R"("Outputs":{},)"), "FLEET_PROVISIONING", "unknown section"},
      {with(R"("t":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":{"Ref":"Nope"}}},)" + cert),
       "FLEET_PROVISIONING", "not a declared parameter"},
      {with(thing + R"(,"c":{"Type":"AWS::IoT::Certificate","Properties":{"CertificateSigningRequest":"x"}})"),
       "JITP", "must use CertificateId"},
      {with(thing + R"(,"c":{"Type":"AWS::IoT::Certificate","Properties":{"CertificateId":"a","CertificatePem":"b"}})"),
       "FLEET_PROVISIONING", "exactly one of"},
      {with(thing + "," + cert + R"(,"p":{"Type":"AWS::IoT::Policy","Properties":{"PolicyDocument":"{}"}})"),
       "FLEET_PROVISIONING", "PolicyDocument"},
      {with(thing + "," + cert + R"(,"q":{"Type":"AWS::S3::Bucket","Properties":{}})"),
       "FLEET_PROVISIONING", "unsupported Type"},
      {with(thing + "," + cert, R"("DeviceConfiguration":{"a":{"b":"c"}},)"), "FLEET_PROVISIONING",
       "flat"},
      {with(R"("t":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":"x"},"OverrideSettings":{"ThingName":"MERGE"}},)" + cert),
       "FLEET_PROVISIONING", "MERGE applies"},
      {with(R"("t":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":{"Fn::Eval":["x"]}}},)" + cert),
       "FLEET_PROVISIONING", "unknown function"},
      {with(thing + "," + cert), "SOMETHING", "FLEET_PROVISIONING or JITP"},
      {std::string(20000, ' '), "FLEET_PROVISIONING", "larger than"},
      {with(R"("t":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":)" + std::string(100, '[') +
                std::string(100, ']') + "}}," + cert),
       "FLEET_PROVISIONING", "nests too deeply"},
  };
  for (const auto& c : cases) {
    auto r = admin::validate_template(c.body, c.type);
    ASSERT_FALSE(r) << c.body;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos)
        << c.body << " -> " << r.error().message;
  }
}

// The key of a YAML line "<indent spaces>key:" with nothing after the colon but blanks
// ("  /things:" at indent 2 gives "/things"), or nothing. Not std::regex: its template code was
// about a tenth of this file's compile time.
std::optional<std::string> yaml_key(const std::string& line, std::size_t indent) {
  if (line.size() <= indent || line.find_first_not_of(' ') != indent) return std::nullopt;
  const auto colon = line.find(':', indent);
  if (colon == std::string::npos || colon == indent) return std::nullopt;
  if (line.find_first_not_of(" \t\r\f\v", colon + 1) != std::string::npos) return std::nullopt;
  return line.substr(indent, colon - indent);
}

TEST(AdminOpenApi, DocumentsExactlyTheRoutesTheServerRegisters) {
  // The document's paths (two-space indented keys under `paths:`) and their operations
  // (four-space indented get/post/put/patch/delete).
  std::ifstream in(EDGEKIT_FLEETD_OPENAPI);
  ASSERT_TRUE(in) << EDGEKIT_FLEETD_OPENAPI;
  std::set<std::pair<std::string, std::string>> documented;
  std::string line, path;
  bool in_paths = false;
  const std::set<std::string> operations = {"get", "post", "put", "patch", "delete"};
  while (std::getline(in, line)) {
    if (line.rfind("paths:", 0) == 0) {
      in_paths = true;
      continue;
    }
    if (in_paths && !line.empty() && line[0] != ' ' && line[0] != '#') in_paths = false;
    if (!in_paths) continue;
    if (auto key = yaml_key(line, 2); key && key->front() == '/') path = *key;
    else if (key = yaml_key(line, 4); key && operations.count(*key)) documented.insert({*key, path});
  }
  std::set<std::pair<std::string, std::string>> served;
  for (const auto& r : AdminServer::routes()) served.insert({std::string(r.method), std::string(r.path)});
  for (const auto& s : served) {
    EXPECT_TRUE(documented.count(s)) << s.first << " " << s.second << " is not in openapi.yaml";
  }
  for (const auto& d : documented) {
    EXPECT_TRUE(served.count(d)) << d.first << " " << d.second << " is documented but not served";
  }
  EXPECT_GE(served.size(), 38u);
}

TEST_F(AdminApiPki, ServesHttpsWithTheGivenCertificate) {
  testing::CertOptions o;
  o.server = true;
  o.common_name = "localhost";
  o.dns_names = {"localhost"};
  o.ip_addresses = {"127.0.0.1"};
  auto issued = ca_->issue("admin-server", o);
  server_.reset();
  AdminOptions tls;
  tls.tls_cert = issued.cert_file;
  tls.tls_key = issued.key_file;
  start_server(tls);
  httplib::SSLClient c("127.0.0.1", port_);
  c.set_ca_cert_path(ca_->cert_file().c_str());
  c.enable_server_certificate_verification(true);
  auto r = c.Get("/admin/v1/things", {{"Authorization", "Bearer " + token_}});
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  httplib::Client plain("127.0.0.1", port_);
  auto p = plain.Get("/admin/v1/things", {{"Authorization", "Bearer " + token_}});
  EXPECT_TRUE(!p || p->status != 200) << "plain HTTP on the TLS port";

  AdminServer broken(io_, *store_, log_, {});
  AdminOptions missing;
  missing.token = token_;
  missing.tls_cert = (dir_ / "nope.crt").string();
  missing.tls_key = (dir_ / "nope.key").string();
  auto r2 = broken.start(missing);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, Errc::InvalidArgument);
}

// ---- fleetd's own CA ----------------------------------------------------------------------

// A token labelled fleetd-ca (user PIN 1234) of `kind` under `dir`, the PIN in <dir>/ca.pin
// (mode 0600); `module` is the module to load.
void ca_token(edgekit::testing::TokenKind kind, const fs::path& dir, std::string& module) {
  module = edgekit::testing::prepare_token_env(kind, (dir / "tokens").string(),
                                               EDGEKIT_TOKEN_MODULE, EDGEKIT_SOFTHSM2_MODULE);
  {
    auto m = pkcs11::Module::load(module);
    ASSERT_TRUE(m) << m.error().message();
    ASSERT_TRUE(edgekit::testing::init_test_token(*m, "fleetd-ca", "87654321", "1234"));
  }
  const std::string pin = (dir / "ca.pin").string();
  std::ofstream(pin) << "1234\n";
  fs::permissions(pin, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
}

// The admin API with fleetd's own CA, its keys generated in a real token (edgekit's module).
class AdminOwnCa : public AdminApi {
 protected:
  void SetUp() override {
    AdminApi::SetUp();
    std::string module;
    ASSERT_NO_FATAL_FAILURE(ca_token(edgekit::testing::TokenKind::Edgekit, dir_, module));
    const std::string pin = (dir_ / "ca.pin").string();
    auto made = ca::Authority::create({module, "fleetd-ca", pin, ""}, dir_.string(), ::time(nullptr));
    ASSERT_TRUE(made) << made.error().message;
    own_ca_ = std::move(made.value());
    ASSERT_TRUE(store_->transact([&](Tx& tx) { return own_ca_->register_in(tx); }));
    restart_server();
  }
  void TearDown() override {
    // The CA's token session is used on the io thread: stop that before closing the token.
    server_.reset();
    guard_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
    own_ca_.reset();
    AdminApi::TearDown();
  }

  // A from-csr body with the request and `more` members (JSON text without braces).
  static std::string request(const std::string& csr, const std::string& more = "") {
    std::string body = json{{"certificateSigningRequest", csr}}.dump();
    if (!more.empty()) body.insert(body.size() - 1, "," + more);
    return body;
  }
  // A server stopped before its listening thread got going never notices the stop (httplib):
  // answer one request first, then replace it with one that has the current own_ca_.
  void restart_server() {
    ASSERT_EQ(call("GET", "/admin/v1/things").status, 200);
    server_.reset();
    start_server({});
  }
  static std::string csr_of(pki::KeyAlgorithm a, const char* subject = "/CN=sensor-1") {
    auto key = pki::SoftwareSigner::generate(a);
    EXPECT_TRUE(key);
    auto csr = pki::make_csr(*key, *pki::Name::parse(subject));
    EXPECT_TRUE(csr);
    return *csr;
  }
};

TEST_F(AdminOwnCa, IssuesFromRequestsOfEachAcceptedKeyTypeWithUniqueSerials) {
  ASSERT_EQ(call("POST", "/admin/v1/things", R"({"thingName":"sensor-1"})").status, 201);
  std::set<std::string> serials;
  const std::int64_t now = ::time(nullptr);
  for (auto a : {pki::KeyAlgorithm::EcP256, pki::KeyAlgorithm::EcP384, pki::KeyAlgorithm::Rsa2048}) {
    auto r = call("POST", "/admin/v1/certificates/from-csr",
                  request(csr_of(a), R"("setAsActive":true,"thingName":"sensor-1")"));
    ASSERT_EQ(r.status, 201) << pki::to_string(a) << ": " << r.text;
    const std::string pem = r.body["certificatePem"];
    // AWS's id, computed apart from fleetd and edgekit::pki.
    EXPECT_EQ(r.body["certificateId"], aws_id(pem));
    EXPECT_EQ(r.body["status"], "ACTIVE");
    EXPECT_EQ(r.body["caCertificateId"], own_ca_->issuing().id);
    auto cert = pki::parse_certificate(pem);
    ASSERT_TRUE(cert);
    EXPECT_EQ(cert->key_algorithm, a);
    // Small TLS stacks: every certificate of the chain signed with SHA-256 by a P-256 key.
    EXPECT_EQ(cert->signature_algorithm, pki::SignatureAlgorithm::EcdsaSha256);
    EXPECT_EQ(own_ca_->issuing().signature_algorithm, pki::SignatureAlgorithm::EcdsaSha256);
    EXPECT_EQ(own_ca_->issuing().key_algorithm, pki::KeyAlgorithm::EcP256);
    EXPECT_EQ(cert->subject.to_string(), "CN=sensor-1");
    EXPECT_FALSE(cert->is_ca);
    EXPECT_TRUE(pki::verify_chain(*cert, {&own_ca_->issuing(), 1}, {&own_ca_->root(), 1}, now));
    // Positive, at most 20 bytes; 365 days by default.
    EXPECT_LE(cert->serial_hex.size(), 40u);
    EXPECT_LT(std::stoi(cert->serial_hex.substr(0, 2), nullptr, 16), 0x80);
    EXPECT_TRUE(serials.insert(cert->serial_hex).second);
    EXPECT_NEAR(static_cast<double>(cert->not_after - now), 365.0 * 86400, 600);
  }
  auto thing = call("GET", "/admin/v1/things/sensor-1");
  EXPECT_EQ(thing.body["certificates"].size(), 3u) << thing.text;
  for (int i = 0; i < 20; ++i) {
    auto r = call("POST", "/admin/v1/certificates/from-csr",
                  request(csr_of(pki::KeyAlgorithm::EcP256), R"("validityDays":10)"));
    ASSERT_EQ(r.status, 201) << r.text;
    EXPECT_EQ(r.body["status"], "INACTIVE");  // AWS's default
    EXPECT_TRUE(serials.insert(pki::parse_certificate(r.body["certificatePem"].get<std::string>())
                                   ->serial_hex)
                    .second);
    EXPECT_NEAR(static_cast<double>(r.body["notAfter"].get<std::int64_t>() - now), 10.0 * 86400,
                600);
  }
}

// What a request asks for beyond its subject and key is not granted: a device cannot obtain a
// CA certificate or a server name by putting extensions in its CSR.
TEST_F(AdminOwnCa, IgnoresTheExtensionsARequestAsksFor) {
  const std::string cmd =
      "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null "
      "-subj /CN=sneaky -addext basicConstraints=critical,CA:TRUE,pathlen:3 "
      "-addext keyUsage=critical,keyCertSign,cRLSign -addext subjectAltName=DNS:broker.example "
      "2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string csr;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) csr += buf;
  ASSERT_EQ(::pclose(p), 0);
  auto r = call("POST", "/admin/v1/certificates/from-csr", request(csr));
  ASSERT_EQ(r.status, 201) << r.text;
  auto cert = pki::parse_certificate(r.body["certificatePem"].get<std::string>());
  ASSERT_TRUE(cert);
  EXPECT_FALSE(cert->is_ca);
  EXPECT_FALSE(cert->can_sign_certificates);
  EXPECT_TRUE(cert->dns_names.empty());
  EXPECT_EQ(cert->subject.to_string(), "CN=sneaky");
}

// Reopening checks validity at the time given: the same CA opens now and is refused, naming the
// expiry, once its issuing certificate (10 years) has run out.
TEST_F(AdminOwnCa, ReopensTheSameCaAndRefusesItOnceExpired) {
  const std::string issuing = own_ca_->issuing().id;
  const std::int64_t not_after = own_ca_->issuing().not_after;
  own_ca_.reset();
  restart_server();  // now without a CA: the token is this test's alone
  const ca::TokenConfig token{EDGEKIT_TOKEN_MODULE, "fleetd-ca", (dir_ / "ca.pin").string(), ""};
  auto again = ca::Authority::open(token, dir_.string(), ::time(nullptr));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again.value()->issuing().id, issuing);
  again.value().reset();
  auto late = ca::Authority::open(token, dir_.string(), not_after + 1);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().problem, ca::Problem::Unusable);
  EXPECT_NE(late.error().message.find("expired"), std::string::npos) << late.error().message;
  auto none = ca::Authority::open(token, (dir_ / "elsewhere").string(), ::time(nullptr));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().problem, ca::Problem::Missing);
}

TEST_F(AdminOwnCa, RefusesBadRequestsNamingTheCause) {
  const std::string good = csr_of(pki::KeyAlgorithm::EcP256);
  // A request whose signature does not verify: a byte of its signature changed.
  auto der = pki::parse_csr(good)->der;
  der[der.size() - 5] ^= 0x01;
  BIO* mem = BIO_new(BIO_s_mem());
  PEM_write_bio(mem, "CERTIFICATE REQUEST", "", der.data(), static_cast<long>(der.size()));
  char* p = nullptr;
  const long n = BIO_get_mem_data(mem, &p);
  const std::string tampered(p, static_cast<std::size_t>(n));
  BIO_free(mem);
  struct Case {
    std::string body;
    int status;
    const char* says;
  };
  const std::vector<Case> cases{
      {request(tampered), 400, "signature"},
      {request(csr_of(pki::KeyAlgorithm::Rsa3072)), 400, "RSA 3072"},
      {request("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"),
       400, "certificateSigningRequest"},
      {request("garbage"), 400, "certificateSigningRequest"},
      {request(std::string(20000, 'A')), 400, "longer than 16384"},
      {request(good, R"("validityDays":0)"), 400, "validityDays"},
      {request(good, R"("validityDays":3651)"), 400, "validityDays"},
      {request(good, R"("setAsActive":"yes")"), 400, "setAsActive"},
      {request(good, R"("status":"ACTIVE")"), 400, "status"},
      {R"({"setAsActive":true})", 400, "certificateSigningRequest"},
      {"not json", 400, ""},
      {request(csr_of(pki::KeyAlgorithm::EcP256, "/CN=x"), R"("thingName":"nobody")"), 404,
       "nobody"},
      {std::string(70 * 1024, ' '), 413, ""},
  };
  for (const auto& c : cases) {
    auto r = call("POST", "/admin/v1/certificates/from-csr", c.body);
    EXPECT_EQ(r.status, c.status) << c.body.substr(0, 200) << " -> " << r.text;
    EXPECT_NE(r.body.value("message", "").find(c.says), std::string::npos)
        << c.says << " not in " << r.text;
  }
  // Nothing was issued for any of them.
  EXPECT_EQ(call("GET", "/admin/v1/certificates").body["items"].size(), 0u);
}

TEST_F(AdminOwnCa, RevokedCertificatesAreListedInTheCrlAndItsFile) {
  auto first = call("GET", "/admin/v1/ca/crl");
  ASSERT_EQ(first.status, 200) << first.text;
  EXPECT_TRUE(first.body["revokedSerials"].empty());
  std::vector<std::string> ids, serials;
  for (int i = 0; i < 2; ++i) {
    auto r = call("POST", "/admin/v1/certificates/from-csr",
                  request(csr_of(pki::KeyAlgorithm::EcP256), R"("setAsActive":true)"));
    ASSERT_EQ(r.status, 201) << r.text;
    ids.push_back(r.body["certificateId"]);
    serials.push_back(pki::parse_certificate(r.body["certificatePem"].get<std::string>())->serial_hex);
  }
  ASSERT_EQ(call("POST", "/admin/v1/certificates/" + ids[0] + "/revoke").status, 200);
  auto crl = call("GET", "/admin/v1/ca/crl");
  ASSERT_EQ(crl.status, 200);
  EXPECT_EQ(crl.body["revokedSerials"], json::array({serials[0]})) << crl.text;
  EXPECT_GT(crl.body["crlNumber"].get<std::uint64_t>(), first.body["crlNumber"].get<std::uint64_t>());
  // The file Mosquitto's crlfile reads holds the same list, signed by the issuing CA.
  auto file = pki::parse_crl(read_file((dir_ / "ca" / "crl.pem").string()));
  ASSERT_TRUE(file);
  EXPECT_TRUE(pki::verify_crl(*file, own_ca_->issuing()));
  EXPECT_TRUE(file->lists(serials[0]));
  EXPECT_FALSE(file->lists(serials[1]));
  // The chain check refuses the revoked one with the CRL and accepts the other.
  auto revoked = pki::parse_certificate(call("GET", "/admin/v1/certificates/" + ids[0])
                                            .body["certificatePem"].get<std::string>());
  auto v = pki::verify_chain(*revoked, {&own_ca_->issuing(), 1}, {&own_ca_->root(), 1},
                             ::time(nullptr), {&*file, 1});
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, pki::Errc::Revoked);
  // The PEM itself for relying parties that ask for it.
  httplib::Client c("127.0.0.1", port_);
  auto raw = c.Get("/admin/v1/ca/crl", {{"Authorization", "Bearer " + token_},
                                        {"Accept", "application/x-pem-file"}});
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->body, read_file((dir_ / "ca" / "crl.pem").string()));
  auto own = call("GET", "/admin/v1/ca");
  EXPECT_EQ(own.body["issuingCertificateId"], own_ca_->issuing().id);
  EXPECT_EQ(own.body["rootCertificatePem"], own_ca_->root().pem());
}

// Any PKCS#11 module holds the CA's keys: SoftHSM2 (which lacks CKM_ECDSA_SHA256, so the token
// signs a hash computed outside it) creates, reopens, issues and signs the CRL.
TEST(OwnCaOnAnyModule, SoftHsm2HoldsTheKeysReopensAndIssues) {
  if (std::string(EDGEKIT_SOFTHSM2_MODULE).empty()) GTEST_SKIP() << "SoftHSM2 is not installed";
  const fs::path dir = fs::temp_directory_path() / ("edgekit-ca-softhsm-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string module;
  ASSERT_NO_FATAL_FAILURE(ca_token(edgekit::testing::TokenKind::SoftHsm2, dir, module));
  const std::string pin = (dir / "ca.pin").string();
  const ca::TokenConfig token{module, "fleetd-ca", pin, ""};
  const std::int64_t now = ::time(nullptr);
  std::string issuing_id;
  {
    auto made = ca::Authority::create(token, dir.string(), now);
    ASSERT_TRUE(made) << made.error().message;
    issuing_id = made.value()->issuing().id;
  }
  auto opened = ca::Authority::open(token, dir.string(), now);
  ASSERT_TRUE(opened) << opened.error().message;
  ca::Authority& authority = *opened.value();
  EXPECT_EQ(authority.issuing().id, issuing_id);
  auto db = open_sqlite({(dir / "fleetd.db").string()});
  ASSERT_TRUE(db);
  auto store = Store::open(std::move(db.value()));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store.value()->transact([&](Tx& tx) { return authority.register_in(tx); }));
  auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP384);
  auto csr = pki::parse_csr(*pki::make_csr(*key, *pki::Name::parse("/CN=softhsm-device")));
  ASSERT_TRUE(csr);
  auto cert = store.value()->transact([&](Tx& tx) { return authority.issue(*csr, 30, now, tx); });
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_EQ(cert.value().signature_algorithm, pki::SignatureAlgorithm::EcdsaSha256);
  EXPECT_TRUE(pki::verify_chain(cert.value(), {&authority.issuing(), 1}, {&authority.root(), 1}, now));
  auto crl = authority.publish_crl({{cert.value().serial_hex, now}}, now);
  ASSERT_TRUE(crl) << crl.error().message;
  EXPECT_TRUE(crl.value().lists(cert.value().serial_hex));
  EXPECT_TRUE(pki::verify_crl(crl.value(), authority.issuing()));
  opened.value().reset();
  store.value().reset();
  fs::remove_all(dir);
}

TEST_F(AdminApi, OwnCaRoutesAnswer404WithoutACa) {
  for (const char* path : {"/admin/v1/ca", "/admin/v1/ca/crl"}) {
    auto r = call("GET", path);
    EXPECT_EQ(r.status, 404);
    EXPECT_NE(r.body.value("message", "").find("no CA of its own"), std::string::npos) << r.text;
  }
  auto r = call("POST", "/admin/v1/certificates/from-csr", R"({"certificateSigningRequest":"x"})");
  EXPECT_EQ(r.status, 404) << r.text;
}

}  // namespace
}  // namespace edgekit::fleetd
