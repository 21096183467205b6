// The decision interface over HTTP, with a real store: who may connect, with what rules, and
// how malformed or unauthenticated requests are answered.

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/executor_work_guard.hpp>
#include <filesystem>
#include <sstream>
#include <thread>

#include "edgekit/json/json.hpp"
#include "hooks/server.hpp"
#include "hooks/wire.hpp"

namespace edgekit::fleetd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string hex_id(int n) {
  char buf[65];
  std::snprintf(buf, sizeof buf, "%064x", n);
  return buf;
}

class HooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgekit-hooks-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto db = open_sqlite({(dir_ / "fleetd.db").string()});
    ASSERT_TRUE(db) << db.error().message;
    auto s = Store::open(std::move(db.value()), [this] { return now_; });
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(s.value());
    ASSERT_TRUE(store_->transact([](Tx& t) -> Res<void> {
      Certificate c;
      c.pem = "pem";
      c.not_before = 1000;
      c.not_after = 2'000'000'000;
      for (int i = 1; i <= 4; ++i) {
        c.id = hex_id(i);
        c.status = i == 3 ? CertificateStatus::Revoked : CertificateStatus::Active;
        if (auto r = t.create_certificate(c); !r) return fail(r.error());
      }
      for (const char* thing : {"t1", "t2"}) {
        if (auto r = t.create_thing({thing, "", {}, 0, 0}); !r) return fail(r.error());
      }
      if (auto r = t.attach_thing_principal("t1", hex_id(1)); !r) return r;
      if (auto r = t.attach_thing_principal("t2", hex_id(2)); !r) return r;
      if (auto r = t.attach_thing_principal("t1", hex_id(3)); !r) return r;
      // Certificate 4: a custom policy allowing only telemetry on its client id.
      if (auto r = t.create_policy({"telemetry-only", R"({"Statement":[
          {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:ClientId}"},
          {"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/telemetry/${iot:ClientId}"}]})", 0, 0});
          !r) {
        return fail(r.error());
      }
      return t.attach_policy("telemetry-only", hex_id(4));
    }));
    auto token = load_or_create_token((dir_ / "hooks.token").string());
    ASSERT_TRUE(token) << token.error().message;
    token_ = token.value();
    server_ = std::make_unique<HooksServer>(io_, *store_, log_, token_);
    auto port = server_->start("127.0.0.1", 0);
    ASSERT_TRUE(port) << port.error().message;
    port_ = port.value();
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    server_->stop();
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
    server_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  httplib::Result post(const std::string& path, const std::string& body,
                       const std::string& token) {
    httplib::Client c("127.0.0.1", port_);
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return c.Post(path.c_str(), h, body, "application/json");
  }

  json authenticate(const std::string& client, const std::string& cert) {
    auto r = post("/hooks/v1/authenticate",
                  json{{"clientid", client}, {"certificate_id", cert}, {"username", "?SDK=JS"}}.dump(),
                  token_);
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body);
  }

  std::int64_t now_ = 1'700'000'000;
  fs::path dir_;
  std::unique_ptr<Store> store_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread io_thread_;
  std::ostringstream log_text_;
  Logger log_{log_text_, LogFormat::Text, LogLevel::Debug};
  std::string token_;
  std::unique_ptr<HooksServer> server_;
  std::uint16_t port_ = 0;
};

TEST_F(HooksTest, AnActiveAttachedCertificateGetsItsThingsRules) {
  json d = authenticate("t1", hex_id(1));
  EXPECT_EQ(d["result"], "allow") << d.dump();
  EXPECT_EQ(d["client_attrs"]["thing_name"], "t1");
  EXPECT_EQ(d["client_attrs"]["certificate_id"], hex_id(1));
  auto rules = policy::rules_from_json(d["acl"].dump());
  ASSERT_TRUE(rules);
  EXPECT_TRUE(policy::allowed(rules.value(), policy::Action::Publish, "$aws/things/t1/shadow/update"));
  EXPECT_FALSE(policy::allowed(rules.value(), policy::Action::Publish, "$aws/things/t2/shadow/update"));
}

TEST_F(HooksTest, DeniesWithTheReason) {
  struct Case {
    std::string client, cert, reason;
  } cases[] = {
      {"t1", "", "a client certificate is required"},
      {"t1", hex_id(99), "is not registered"},
      {"t1", hex_id(3), "is REVOKED"},
      {"t2", hex_id(1), "not allowed to connect"},  // client-id spoofing with t1's certificate
      {"t1", hex_id(2), "not allowed to connect"},
  };
  for (const auto& c : cases) {
    json d = authenticate(c.client, c.cert);
    EXPECT_EQ(d["result"], "deny") << c.client << " " << c.cert;
    EXPECT_NE(d["reason"].get<std::string>().find(c.reason), std::string::npos) << d.dump();
    EXPECT_FALSE(d.contains("acl"));
  }
  EXPECT_NE(log_text_.str().find("auth.denied"), std::string::npos);
}

TEST_F(HooksTest, AnExpiredCertificateIsDenied) {
  now_ = 2'100'000'000;
  json d = authenticate("t1", hex_id(1));
  EXPECT_EQ(d["result"], "deny");
  EXPECT_NE(d["reason"].get<std::string>().find("expired"), std::string::npos);
}

TEST_F(HooksTest, AttachedPoliciesReplaceTheDefault) {
  json d = authenticate("sensor-9", hex_id(4));
  ASSERT_EQ(d["result"], "allow") << d.dump();
  EXPECT_EQ(d["client_attrs"]["thing_name"], "");
  auto authorize = [&](const char* action, const char* topic) {
    auto r = post("/hooks/v1/authorize",
                  json{{"clientid", "sensor-9"}, {"certificate_id", hex_id(4)}, {"action", action},
                       {"topic", topic}}
                      .dump(),
                  token_);
    EXPECT_TRUE(r);
    return r ? json::parse(r->body)["result"].get<std::string>() : std::string();
  };
  EXPECT_EQ(authorize("publish", "telemetry/sensor-9"), "allow");
  EXPECT_EQ(authorize("publish", "telemetry/sensor-8"), "deny");
  EXPECT_EQ(authorize("subscribe", "telemetry/sensor-9"), "deny");
}

TEST_F(HooksTest, RefusesUnauthenticatedAndMalformedRequests) {
  auto no_token = post("/hooks/v1/authenticate", R"({"clientid":"t1"})", "");
  ASSERT_TRUE(no_token);
  EXPECT_EQ(no_token->status, 401);
  auto wrong = post("/hooks/v1/authenticate", R"({"clientid":"t1"})", std::string(token_.size(), 'x'));
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_NE(log_text_.str().find("hooks.unauthorized"), std::string::npos);

  for (const char* bad : {"", "not json", "[]", R"({"username":"x"})", R"({"clientid":5})"}) {
    auto r = post("/hooks/v1/authenticate", bad, token_);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_TRUE(json::parse(r->body).contains("message")) << r->body;
  }
  auto huge = post("/hooks/v1/authenticate", std::string(64 * 1024, ' '), token_);
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);
  auto bad_action = post("/hooks/v1/authorize",
                         R"({"clientid":"t1","action":"fly","topic":"x"})", token_);
  ASSERT_TRUE(bad_action);
  EXPECT_EQ(bad_action->status, 400);
}

TEST(HooksWire, AuthenticateCarriesTheCertificatePemAndChainOptionally) {
  auto r = hooks::parse_auth_request(
      R"({"clientid":"d","certificate_id":"ab","certificate_pem":"P","certificate_chain":"C"})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->certificate_pem, "P");
  EXPECT_EQ(r->certificate_chain, "C");
  auto without = hooks::parse_auth_request(R"({"clientid":"d"})");
  ASSERT_TRUE(without);
  EXPECT_TRUE(without->certificate_pem.empty());
  EXPECT_FALSE(hooks::parse_auth_request(R"({"clientid":"d","certificate_pem":5})"));
}

TEST(HooksToken, IsCreatedPrivateAndRefusedWhenOthersCanReadIt) {
  auto dir = fs::temp_directory_path() / ("edgekit-token-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto path = (dir / "hooks.token").string();
  auto t = load_or_create_token(path);
  ASSERT_TRUE(t);
  EXPECT_EQ(t.value().size(), 64u);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  auto again = load_or_create_token(path);
  ASSERT_TRUE(again);
  EXPECT_EQ(again.value(), t.value());
  fs::permissions(path, fs::perms::group_read, fs::perm_options::add);
  auto refused = load_or_create_token(path);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("chmod 600"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace edgekit::fleetd
