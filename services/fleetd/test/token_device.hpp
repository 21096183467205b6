#pragma once
/// \file
/// The secured broker plus a device whose private key lives in edgekit's token: the key pair is
/// generated inside the token by `edgekit token keygen`, the test CA issues a certificate for
/// its public key, and the certificate is registered ACTIVE in fleetd and attached to the thing.
/// Shared by the tests of the edgekit command over mutual TLS and of the shadow client end to
/// end. Header-only: the test target defines EDGEKIT_CLI (the edgekit binary) and, to load the
/// token in-process, EDGEKIT_TOKEN_MODULE. Thread safety: the test's thread only.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "edgekit/json/json.hpp"
#include "edgekit/testing/child_process.hpp"
#include "edgekit/tls/tls.hpp"
#include "secured_broker.hpp"

namespace edgekit::fleetd::test {

class TokenDeviceBroker : public SecuredBroker {
 protected:
  static constexpr const char* kTokenLabel = "dev-token";
  static constexpr const char* kUserPin = "1234-user";

  /// The folder of the device token (EDGEKIT_TOKEN_DIR).
  std::string token_dir() const { return (dir_ / "token").string(); }

  /// The environment the edgekit command runs with: this test's token folder and PINs.
  std::string token_env() const {
    return "EDGEKIT_TOKEN_DIR=" + token_dir() + " EDGEKIT_TOKEN_PIN=" + kUserPin +
           " EDGEKIT_TOKEN_SO_PIN=5678-so EDGEKIT_TOKEN_QUIET=1 ";
  }

  /// Runs the edgekit command with that environment.
  testing::CommandRun edgekit(const std::string& args) {
    return testing::run_command(token_env() + std::string(EDGEKIT_CLI) + " " + args);
  }

  /// Makes the token (once) and a device `thing` whose key is labelled `thing` in it; sets
  /// `token_cert_` to its certificate file. Fails the test (fatally) when a step fails.
  void make_token_device(const std::string& thing = "t9") {
    if (!std::filesystem::exists(dir_ / "token")) {
      std::filesystem::create_directories(dir_ / "token");
      auto init = edgekit(std::string("token init --label ") + kTokenLabel);
      ASSERT_EQ(init.code, 0) << init.out;
    }
    const std::string pub = (dir_ / (thing + ".pub.pem")).string();
    auto keygen = edgekit("token keygen --key-label " + thing + " --type ec-p256 --out " + pub);
    ASSERT_EQ(keygen.code, 0) << keygen.out;
    FILE* f = std::fopen(pub.c_str(), "r");
    ASSERT_NE(f, nullptr);
    EVP_PKEY* key = PEM_read_PUBKEY(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    ASSERT_NE(key, nullptr);
    testing::CertOptions o;
    o.common_name = thing;
    token_cert_ = ca_->issue_for_public_key(thing, key, o).cert_file;
    EVP_PKEY_free(key);
    ASSERT_FALSE(token_cert_.empty());
    register_device(thing, token_cert_);
  }

  /// Registers `thing` in fleetd with the certificate in `cert_file` (the test CA's) ACTIVE and
  /// attached to it. Fails the test (fatally) when a step fails.
  void register_device(const std::string& thing, const std::string& cert_file) {
    using nlohmann::json;
    const auto facts = facts_of(cert_file);
    auto c = admin("POST", "/admin/v1/certificates",
                   json{{"certificatePem", facts.pem}, {"status", "ACTIVE"}}.dump());
    ASSERT_TRUE(c && c->status == 201) << (c ? c->body : "no answer");
    auto t = admin("POST", "/admin/v1/things", json{{"thingName", thing}}.dump());
    ASSERT_TRUE(t && t->status == 201) << (t ? t->body : "no answer");
    auto a = admin("PUT", "/admin/v1/things/" + thing + "/certificates/" + facts.id);
    ASSERT_TRUE(a && a->status / 100 == 2) << (a ? a->body : "no answer");
  }

#ifdef EDGEKIT_TOKEN_MODULE
  /// The TLS settings of device `thing` made by `make_token_device`, its key used in the token
  /// through edgekit's module loaded in this process (which reads EDGEKIT_TOKEN_DIR: set here).
  tls::Config token_tls(const std::string& thing) const {
    ::setenv("EDGEKIT_TOKEN_DIR", token_dir().c_str(), 1);
    tls::Config c;
    c.ca_file = ca_->cert_file();
    c.certificate_file = token_cert_;
    c.token_key = tls::TokenKey{EDGEKIT_TOKEN_MODULE, kTokenLabel, kUserPin, thing, {}};
    return c;
  }
#endif

  /// fleetd's record of `thing`'s execution of job `job_id` (null if none), from the admin API.
  nlohmann::json job_execution(const std::string& job_id, const std::string& thing) {
    auto r = admin("GET", "/admin/v1/jobs/" + job_id + "/executions");
    if (!r || r->status != 200) return {};
    const nlohmann::json page = nlohmann::json::parse(r->body, nullptr, false);
    if (!page.is_object() || !page["items"].is_array()) return {};
    for (const auto& e : page["items"]) {
      if (e["thingName"] == thing) return e;
    }
    return {};
  }

  std::string token_cert_;
};

}  // namespace edgekit::fleetd::test
