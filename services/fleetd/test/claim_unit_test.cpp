// Fleet provisioning by claim without a broker: the request/reply documents, the ownership
// tokens, the pre-provisioning hook calls.

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "hook_server.hpp"
#include "provisioning/claim_wire.hpp"
#include "provisioning/hook.hpp"
#include "provisioning/ownership_token.hpp"

namespace edgekit::fleetd::provisioning {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const std::string kCertId(64, 'a');

std::string cbor(const json& j) {
  auto v = json::to_cbor(j);
  return std::string(v.begin(), v.end());
}

TEST(ClaimTopics, NameTheThreeApisInBothFormatsAndNothingElse) {
  auto c = parse_request_topic("$aws/certificates/create/json");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->api, Api::CreateKeysAndCertificate);
  EXPECT_EQ(c->format, Format::Json);
  auto csr = parse_request_topic("$aws/certificates/create-from-csr/cbor");
  ASSERT_TRUE(csr);
  EXPECT_EQ(csr->api, Api::CreateCertificateFromCsr);
  EXPECT_EQ(csr->format, Format::Cbor);
  auto reg = parse_request_topic("$aws/provisioning-templates/fleet-1/provision/json");
  ASSERT_TRUE(reg);
  EXPECT_EQ(reg->api, Api::RegisterThing);
  EXPECT_EQ(reg->template_name, "fleet-1");
  for (const char* no :
       {"$aws/certificates/create/json/accepted", "$aws/certificates/create/xml",
        "$aws/certificates/create", "$aws/certificates/delete/json",
        "$aws/provisioning-templates/a+b/provision/json",
        "$aws/provisioning-templates//provision/json",
        "$aws/provisioning-templates/fleet/provision/json/rejected",
        "$aws/provisioning-templates/abcdefghijabcdefghijabcdefghijabcdefg/provision/json",
        "$aws/things/t1/shadow/get"}) {
    EXPECT_FALSE(parse_request_topic(no)) << no;
  }
  EXPECT_EQ(reply_topic("$aws/certificates/create/json", true),
            "$aws/certificates/create/json/accepted");
  EXPECT_EQ(reply_topic("$aws/certificates/create/cbor", false),
            "$aws/certificates/create/cbor/rejected");
}

TEST(ClaimRequests, AcceptEmptyCreateAndOneTrailingNul) {
  EXPECT_TRUE(parse_create_keys("", Format::Json));
  EXPECT_TRUE(parse_create_keys("", Format::Cbor));
  EXPECT_TRUE(parse_create_keys("{}", Format::Json));
  EXPECT_TRUE(parse_create_keys(std::string("{}\0", 3), Format::Json));
  EXPECT_FALSE(parse_create_keys(std::string("{}\0\0", 4), Format::Json)) << "one NUL only";
  auto r = parse_register_thing(
      std::string(R"({"certificateOwnershipToken":"tok","parameters":{"SerialNumber":"42"}})") +
          '\0',
      Format::Json);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().certificate_ownership_token, "tok");
  EXPECT_EQ(r.value().parameters.at("SerialNumber"), "42");
  auto c = parse_register_thing(
      cbor({{"certificateOwnershipToken", "tok"}, {"parameters", {{"a", "b"}}}}), Format::Cbor);
  ASSERT_TRUE(c);
  EXPECT_EQ(c.value().parameters.at("a"), "b");
  auto csr = parse_create_from_csr(cbor({{"certificateSigningRequest", "PEM"}}), Format::Cbor);
  ASSERT_TRUE(csr);
  EXPECT_EQ(csr.value().certificate_signing_request, "PEM");
}

TEST(ClaimRequests, RejectGarbageOversizeAndWrongTypesAsInvalidPayload) {
  const std::string big(100 * 1024, '{');
  for (const auto& [payload, fmt] :
       std::vector<std::pair<std::string, Format>>{{"not json", Format::Json},
                                                   {"[1,2]", Format::Json},
                                                   {"\xff\xfe", Format::Cbor},
                                                   {cbor(json::array({1})), Format::Json},
                                                   {big, Format::Json},
                                                   {big, Format::Cbor}}) {
    auto r = parse_create_keys(payload, fmt);
    ASSERT_FALSE(r) << payload.substr(0, 20);
    EXPECT_EQ(r.error().status_code, 400);
    EXPECT_EQ(r.error().error_code, "InvalidPayload");
  }
  EXPECT_NE(parse_create_keys(big, Format::Json).error().error_message.find("exceeds"),
            std::string::npos);
  EXPECT_FALSE(parse_create_from_csr("{}", Format::Json));
  EXPECT_FALSE(parse_create_from_csr(R"({"certificateSigningRequest":5})", Format::Json));
  EXPECT_FALSE(parse_register_thing(R"({"certificateOwnershipToken":5})", Format::Json));
  EXPECT_FALSE(parse_register_thing(R"({"parameters":{"a":1}})", Format::Json));
  EXPECT_FALSE(parse_register_thing(R"({"parameters":[]})", Format::Json));
  auto empty = parse_register_thing("{}", Format::Json);
  ASSERT_TRUE(empty) << "an empty token is the caller's rejection (AWS's own message)";
  EXPECT_TRUE(empty.value().certificate_ownership_token.empty());
}

TEST(ClaimRequests, ACborLengthBeyondMemoryIsInvalidNotAThrow) {
  // Found by fuzz_fleetd_provisioning: nlohmann's CBOR reader throws for a declared length it
  // cannot allocate even when told not to throw. A map with an 8-byte array length follows.
  const std::string payload("\xa1\x61\x61\x9b\x91\x9c\x81\x6f\x6b\x6a\x70\x61", 12);
  auto r = parse_register_thing(payload, Format::Cbor);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().error_code, "InvalidPayload");
}

TEST(ClaimReplies, EncodeInTheRequestsFormatWithAwsRejectionFields) {
  const Rejection r = rejection(400, "InvalidCertificateOwnershipToken",
                                "Certificate ownership token cannot be empty.");
  auto j = json::parse(encode(rejection_document(r), Format::Json));
  EXPECT_EQ(j["statusCode"], 400);
  EXPECT_EQ(j["errorCode"], "InvalidCertificateOwnershipToken");
  EXPECT_EQ(j["errorMessage"], "Certificate ownership token cannot be empty.");
  const std::string c = encode(rejection_document(r), Format::Cbor);
  EXPECT_EQ(json::from_cbor(c), j);
  // Text that is not UTF-8 (from a CBOR request) does not make the JSON reply throw.
  EXPECT_NO_THROW((void)encode(json{{"errorMessage", std::string("\xff")}}, Format::Json));
}

TEST(OwnershipTokens, BindTheCertificateExpireAndRefuseForgeries) {
  TokenAuthority mine("secret-one"), other("secret-two");
  TokenClaims claims;
  const std::string token = mine.issue(kCertId, 1000 + kOwnershipTokenLifetime, claims);
  ASSERT_FALSE(token.empty());
  EXPECT_LE(token.size(), 128u) << "keeps the CSR flow's reply under 2 KB";
  EXPECT_EQ(claims.certificate_id, kCertId);
  EXPECT_EQ(claims.token_id.size(), 32u);

  auto ok = mine.verify(token, 1000);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok.value().certificate_id, kCertId);
  EXPECT_EQ(ok.value().token_id, claims.token_id);
  TokenClaims second;
  EXPECT_NE(mine.issue(kCertId, 5000, second), token) << "each token has its own random id";

  auto expect = [](const Outcome<TokenClaims>& r, const char* message) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().status_code, 400);
    EXPECT_EQ(r.error().error_code, "InvalidCertificateOwnershipToken");
    EXPECT_EQ(r.error().error_message, message);
  };
  expect(mine.verify("", 1000), "Certificate ownership token cannot be empty.");
  expect(mine.verify(token, 1000 + kOwnershipTokenLifetime),
         "Certificate ownership token has expired.");
  expect(other.verify(token, 1000), "Certificate ownership token is invalid.");
  // Altered to name another certificate: the MAC no longer matches.
  std::string altered = token;
  altered[5] = altered[5] == 'A' ? 'B' : 'A';
  expect(mine.verify(altered, 1000), "Certificate ownership token is invalid.");
  expect(mine.verify(token.substr(0, token.size() - 1), 1000),
         "Certificate ownership token is invalid.");
  expect(mine.verify(std::string(5000, 'A'), 1000), "Certificate ownership token is invalid.");
  expect(mine.verify("not base64!", 1000), "Certificate ownership token is invalid.");
  EXPECT_TRUE(mine.issue("xyz", 5000, second).empty());
}

TEST(PreProvisioningHook, AnswersAreReadAsAwsDefinesThem) {
  auto yes = read_hook_answer(R"({"allowProvisioning":true,"parameterOverrides":{"a":"b"}})");
  EXPECT_TRUE(yes.allow);
  EXPECT_EQ(yes.parameter_overrides.at("a"), "b");
  for (const char* no : {R"({"allowProvisioning":false})", R"({"allowProvisioning":"true"})", "{}",
                         "garbage", R"({"allowProvisioning":true,"parameterOverrides":1})",
                         R"({"allowProvisioning":true,"parameterOverrides":{"a":1}})"}) {
    EXPECT_FALSE(read_hook_answer(no).allow) << no;
  }
  const auto in =
      json::parse(hook_input_json({"claim", "cert", "PEM", "arn", "client", {{"k", "v"}}}));
  EXPECT_EQ(in["claimCertificateId"], "claim");
  EXPECT_EQ(in["certificateId"], "cert");
  EXPECT_EQ(in["certificatePem"], "PEM");
  EXPECT_EQ(in["templateArn"], "arn");
  EXPECT_EQ(in["clientId"], "client");
  EXPECT_EQ(in["parameters"]["k"], "v");
}

class HookScripts : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("edgekit-hook-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string script(const std::string& name, const std::string& body) {
    const auto path = dir_ / name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0700);
    return path.string();
  }
  std::filesystem::path dir_;
};

TEST_F(HookScripts, AnExecutableGetsTheInputAndItsAnswerCounts) {
  // The script answers with the clientId it read from stdin, so the input provably arrived.
  const auto hook = script(
      "allow.sh",
      "in=$(cat); id=$(echo \"$in\" | sed 's/.*\"clientId\":\"\\([^\"]*\\)\".*/\\1/');"
      " echo "
      "\"{\\\"allowProvisioning\\\":true,\\\"parameterOverrides\\\":{\\\"Seen\\\":\\\"$id\\\"}}\"");
  auto v = call_hook(hook, hook_input_json({"c", "d", "p", "arn", "dev-7", {}}));
  ASSERT_TRUE(v.allow) << v.problem;
  EXPECT_EQ(v.parameter_overrides.at("Seen"), "dev-7");
  EXPECT_FALSE(
      call_hook(script("deny.sh", "cat >/dev/null; echo '{\"allowProvisioning\":false}'"), "{}")
          .allow);
  EXPECT_FALSE(
      call_hook(script("fail.sh", "echo '{\"allowProvisioning\":true}'; exit 3"), "{}").allow);
  EXPECT_FALSE(call_hook((dir_ / "missing").string(), "{}").allow);
  EXPECT_FALSE(call_hook("relative/path", "{}").allow);
}

TEST_F(HookScripts, ASlowHookIsDeniedAtTheLimitAndKilled) {
  const auto slow = script("slow.sh", "sleep 30; echo '{\"allowProvisioning\":true}'");
  const auto start = std::chrono::steady_clock::now();
  auto v = call_hook(slow, "{}", 300ms);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(v.allow);
  EXPECT_NE(v.problem.find("within"), std::string::npos) << v.problem;
  EXPECT_LT(took, 2s);
}

TEST(PreProvisioningHookHttp, AUrlIsPostedToAndATimeoutDenies) {
  test::HookServer hook;
  hook.answer("/allow", R"({"allowProvisioning":true,"parameterOverrides":{"x":"y"}})");
  hook.server().Post("/slow", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(1500ms);
    res.set_content(R"({"allowProvisioning":true})", "application/json");
  });
  hook.server().Post("/500",
                     [](const httplib::Request&, httplib::Response& res) { res.status = 500; });
  const std::string base = hook.start();
  auto v = call_hook(base + "/allow", R"({"clientId":"c"})");
  EXPECT_TRUE(v.allow) << v.problem;
  EXPECT_EQ(v.parameter_overrides.at("x"), "y");
  EXPECT_EQ(hook.received(), R"({"clientId":"c"})");
  EXPECT_FALSE(call_hook(base + "/500", "{}").allow);
  auto slow = call_hook(base + "/slow", "{}", 500ms);
  EXPECT_FALSE(slow.allow);
  EXPECT_NE(slow.problem.find("did not answer"), std::string::npos) << slow.problem;
}

TEST_F(HookScripts, TheRunnerDeliversOnTheLoopWithoutBlockingIt) {
  asio::io_context io;
  HookRunner runner(io, 2s);
  const auto hook =
      script("sleepy.sh", "cat >/dev/null; sleep 0.3; echo '{\"allowProvisioning\":true}'");
  int delivered = 0;
  runner.run(hook, "{}", [&](HookVerdict v) {
    EXPECT_TRUE(v.allow) << v.problem;
    ++delivered;
  });
  runner.run(hook, "{}", [&](HookVerdict) { ++delivered; });
  EXPECT_EQ(delivered, 0) << "never inside run()";
  // Both calls run at once: the loop is free while they do.
  const auto start = std::chrono::steady_clock::now();
  while (delivered < 2 && std::chrono::steady_clock::now() - start < 5s) {
    io.run_for(10ms);
    io.restart();
  }
  EXPECT_EQ(delivered, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
}

}  // namespace
}  // namespace edgekit::fleetd::provisioning
