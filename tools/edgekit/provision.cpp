// edgekit provision: the device side of fleet provisioning by claim from the command line. A
// device whose PKCS#11 token holds a claim identity (key and certificate under one label)
// connects over mutual TLS with it, runs edgekit::provisioning::Provisioner (CSR flow by
// default, CreateKeysAndCertificate with --keys) and leaves its own identity under the device
// label; then it connects once as its thing with that identity, to show it works. The work is
// the library's; this file reads options, opens the token and the connection, and prints.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "edgekit/json/json.hpp"
#include "edgekit/provisioning/client.hpp"
#include "edgekit/provisioning/identity.hpp"
#include "token_tools.hpp"

namespace edgekit::tools {
// This file's helpers, in a namespace of their own: a unity build (EDGEKIT_UNITY_BUILD) compiles
// several command files as one translation unit.
namespace cmd_provision {
namespace {

enum Exit { kOk = 0, kFailed = 1, kUsage = 2 };

struct ProvisionOptions {
  BrokerOptions broker;
  std::string version_text = "5";
  std::string template_name;
  std::vector<std::string> params;
  std::string claim_label = "claim";
  std::string device_label = "device";
  std::string state_file;
  std::string cert_out;
  std::string subject;
  std::string key_type = "ec-p256";
  bool keys = false;
  bool cbor = false;
  bool json = false;
  bool no_connect = false;
  int timeout_ms = 10'000;
  int attempts = 3;

  ~ProvisionOptions() { token::wipe(broker.pin); }
};

int usage(const std::string& why) {
  std::fprintf(stderr, "edgekit provision: %s\n", why.c_str());
  return kUsage;
}

int failed(const std::string& why) {
  std::fprintf(stderr, "edgekit provision: %s\n", why.c_str());
  return kFailed;
}

std::optional<pki::KeyAlgorithm> key_algorithm(const std::string& text) {
  const auto type = token::parse_key_type(text);
  if (!type) return std::nullopt;
  switch (*type) {
    case token::KeyType::EcP256:
      return pki::KeyAlgorithm::EcP256;
    case token::KeyType::EcP384:
      return pki::KeyAlgorithm::EcP384;
    case token::KeyType::Rsa2048:
      return pki::KeyAlgorithm::Rsa2048;
    case token::KeyType::Rsa3072:
      return pki::KeyAlgorithm::Rsa3072;
  }
  return std::nullopt;
}

// One line naming why provisioning failed: a rejection with AWS's status code, error code and
// message as the service sent them; anything else with the library's words and its detail.
std::string describe_failure(provisioning::Errc e, const provisioning::Provisioner& p) {
  if (provisioning::is_rejection(e)) {
    const auto& r = p.last_rejection();
    return std::string(provisioning::to_string(r.api)) +
           " rejected: " + std::to_string(r.status_code) + " " + r.error_code + ": " +
           r.error_message;
  }
  std::string s = provisioning::to_string(e);
  if (!p.detail().empty() && p.detail() != s) s += " (" + p.detail() + ")";
  return s;
}

// Writes the certificate stored under `label` as PEM to `path`, for the TLS layer, which loads
// certificates from files (tls_config_for; it also checks that the label's private key is
// there). Connection makes its own TLS settings from BrokerOptions, so the PIN copied into the
// returned settings is wiped at once.
provisioning::Errc write_certificate(pkcs11::Session& session,
                                     const provisioning::TokenLocation& where,
                                     const std::string& label, const std::string& ca_file,
                                     const std::string& path) {
  auto config = provisioning::tls_config_for(session, where, label, ca_file, path);
  if (!config) return config.error();
  if (config->token_key) token::wipe(config->token_key->pin);
  return provisioning::Errc::Ok;
}

// Wipes a copy of the PIN on every way out.
struct WipeOnExit {
  std::string& secret;
  ~WipeOnExit() { token::wipe(secret); }
};

std::string default_client_id() {
  return "edgekit-provision-" + std::to_string(::getpid());
}

int run_provision(ProvisionOptions& o) {
  if (o.template_name.empty()) return usage("--template is required");
  if (o.state_file.empty()) return usage("--state is required (it lets a second run resume)");
  if (o.broker.ca_file.empty()) {
    return usage("--cafile is required (the CA that signed the broker's certificate)");
  }
  if (o.claim_label == o.device_label) return usage("--claim-label and --label must differ");
  const auto algorithm = key_algorithm(o.key_type);
  if (!algorithm) {
    return usage("--key-type " + o.key_type + ": want ec-p256, ec-p384, rsa-2048 or rsa-3072");
  }
  provisioning::Options options;
  options.method = o.keys ? provisioning::Method::CreateKeysAndCertificate
                          : provisioning::Method::CreateCertificateFromCsr;
  options.format = o.cbor ? provisioning::Format::Cbor : provisioning::Format::Json;
  options.template_name = o.template_name;
  options.device_label = o.device_label;
  options.claim_label = o.claim_label;
  options.key_algorithm = *algorithm;
  if (!o.subject.empty()) options.csr_subject = o.subject;
  options.reply_timeout = Duration{o.timeout_ms};
  options.subscribe_timeout = Duration{o.timeout_ms};
  options.attempts = static_cast<std::uint32_t>(o.attempts);
  for (const auto& kv : o.params) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return usage("--param wants name=value, got '" + kv + "'");
    options.parameters.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  if (o.cert_out.empty()) o.cert_out = o.state_file + ".crt";
  // The claim certificate goes to a file only for the TLS layer, which loads PEM files; it is
  // public, and removed once the claim connection is set up.
  const std::string claim_cert = o.state_file + ".claim.crt";

  // The TLS layer needs --token, --pin and the module like pub/sub with --key-label; borrow
  // their checks by naming the claim key for them.
  o.broker.key_label = o.claim_label;
  o.broker.cert_file = claim_cert;
  if (!finish_broker_options("provision", o.broker, o.version_text)) return kUsage;
  if (o.broker.client_id.empty()) o.broker.client_id = default_client_id();

  auto module = token::load_module(o.broker.pkcs11_module);
  if (!module) return failed(module.error().message);
  std::optional<std::string> token_label;
  if (!o.broker.token_label.empty()) token_label = o.broker.token_label;
  auto slot = token::select_token(*module, token_label);
  if (!slot) return failed(slot.error().message);
  auto session = token::open_user_session(*module, *slot, o.broker.pin);
  if (!session) return failed(session.error().message);
  // The TLS layer opens sessions of its own by the token's label: give it the one chosen here.
  if (o.broker.token_label.empty()) {
    if (auto info = module->token_info(*slot)) {
      std::string label(reinterpret_cast<const char*>(info->label), sizeof info->label);
      while (!label.empty() && label.back() == ' ') label.pop_back();
      o.broker.token_label = label;
    }
  }

  provisioning::FileStateStore store(o.state_file);
  provisioning::SystemWallClock wall;
  provisioning::ThreadSleeper sleeper;
  backoff::SplitMix64 random(
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
      static_cast<std::uint64_t>(::getpid()));
  provisioning::Provisioner provisioner(*session, store, wall, sleeper, random, options);
  provisioning::TokenLocation where{o.broker.pkcs11_module, o.broker.token_label, o.broker.pin};
  const WipeOnExit wipe_where{where.pin};

  std::optional<provisioning::Identity> identity;
  {
    auto done = provisioner.provisioned();
    if (!done) return failed(describe_failure(done.error(), provisioner));
    if (*done) identity = std::move(**done);
  }
  if (!identity) {
    // Connect with the claim identity; tls_config_for checks that the token holds both its key
    // and its certificate, and writes the certificate where the TLS layer reads it.
    const auto claim =
        write_certificate(*session, where, o.claim_label, o.broker.ca_file, claim_cert);
    if (claim != provisioning::Errc::Ok) {
      return failed("no claim identity under label \"" + o.claim_label +
                    "\" in the token (a private key and a certificate are needed: edgekit token "
                    "keygen/csr and import-cert): " +
                    provisioning::to_string(claim));
    }
    auto connection = std::make_unique<Connection>(mqtt::EventHandler{}, 64 * 1024);
    const bool open = connection->open(o.broker);
    std::error_code ignored;
    std::filesystem::remove(claim_cert, ignored);
    if (!open) return failed("cannot connect with the claim identity: " + connection->error());
    provisioning::ClientChannel channel(connection->client(), connection->clock());
    auto r = provisioner.run(channel);
    if (!r) return failed(describe_failure(r.error(), provisioner));
    identity = std::move(*r);
    // The claim connection ends here (DISCONNECT): the claim identity is not used again.
  }

  // The device identity as a PEM file for the TLS layer (and for `edgekit pub --cert`).
  const auto device =
      write_certificate(*session, where, o.device_label, o.broker.ca_file, o.cert_out);
  if (device != provisioning::Errc::Ok) {
    return failed("the device identity under label \"" + o.device_label +
                  "\" cannot be read from the token: " + provisioning::to_string(device));
  }

  bool connected = false;
  if (!o.no_connect && !identity->already_provisioned) {
    // Reconnect as the thing: proves the broker admits the new identity (RegisterThing has
    // activated it) before the device relies on it.
    BrokerOptions as_thing = o.broker;
    const WipeOnExit wipe_copy{as_thing.pin};
    as_thing.client_id = identity->thing_name;
    as_thing.key_label = o.device_label;
    as_thing.cert_file = o.cert_out;
    Connection thing(mqtt::EventHandler{}, 64 * 1024);
    if (!thing.open(as_thing)) {
      return failed("provisioned as thing " + identity->thing_name +
                    ", but connecting with the new identity failed: " + thing.error());
    }
    connected = true;
  }
  token::wipe(o.broker.pin);

  if (o.json) {
    nlohmann::json config = nlohmann::json::object();
    for (const auto& [k, v] : identity->device_configuration) config[k] = v;
    nlohmann::json out{
        {"thingName", identity->thing_name}, {"certificateId", identity->certificate_id},
        {"deviceConfiguration", config},     {"deviceLabel", identity->device_label},
        {"certificateFile", o.cert_out},     {"alreadyProvisioned", identity->already_provisioned},
        {"resumed", identity->resumed},      {"connected", connected}};
    std::printf("%s\n", out.dump(2).c_str());
    return kOk;
  }
  if (identity->already_provisioned) {
    std::printf("already provisioned: thing %s, certificate %s (no request sent)\n",
                identity->thing_name.c_str(), identity->certificate_id.c_str());
  } else {
    std::printf(
        "provisioned thing %s%s\ncertificate %s (%s, %s)\n", identity->thing_name.c_str(),
        identity->resumed ? " (resumed an interrupted run)" : "", identity->certificate_id.c_str(),
        o.keys ? "CreateKeysAndCertificate" : "CreateCertificateFromCsr", o.cbor ? "CBOR" : "JSON");
  }
  std::printf("device identity: label \"%s\" in token \"%s\"; certificate in %s\n",
              identity->device_label.c_str(), o.broker.token_label.c_str(), o.cert_out.c_str());
  if (!identity->device_configuration.empty()) {
    std::printf("device configuration:\n");
    for (const auto& [k, v] : identity->device_configuration) {
      std::printf("  %s = %s\n", k.c_str(), v.c_str());
    }
  }
  if (connected) {
    std::printf("connected as %s with the new identity\n", identity->thing_name.c_str());
  }
  return kOk;
}

}  // namespace
}  // namespace cmd_provision

void add_provision_command(CLI::App& app, int& exit_code) {
  using namespace cmd_provision;
  auto o = std::make_shared<ProvisionOptions>();
  CLI::App* c = app.add_subcommand(
      "provision",
      "fleet provisioning by claim: get this device's own certificate and thing with "
      "the claim identity in its token");
  c->set_help_flag("--help", "print this help and exit");
  add_broker_options(*c, o->broker, o->version_text);
  // Both identities come from the token, by label (--claim-label, --label), never from files.
  for (const char* name : {"--cert", "--key", "--key-label"}) c->remove_option(c->get_option(name));
  c->add_option("--template", o->template_name, "the fleet provisioning template")->required();
  c->add_option("--param", o->params, "RegisterThing parameter name=value (repeatable)");
  c->add_option("--claim-label", o->claim_label,
                "token label of the claim identity (key and certificate)")
      ->capture_default_str();
  c->add_option("--label", o->device_label, "token label the device identity is created under")
      ->capture_default_str();
  c->add_option("--state", o->state_file,
                "provisioning state file (a second run resumes or reports the identity); holds "
                "the ownership token for an hour, mode 0600")
      ->required();
  c->add_option("--cert-out", o->cert_out,
                "write the device certificate (PEM) here, for --cert of pub/sub "
                "(default: <state>.crt)");
  c->add_flag("--keys", o->keys,
              "CreateKeysAndCertificate (the service makes the key; it is imported into the "
              "token) instead of a CSR from a key made in the token");
  c->add_flag("--cbor", o->cbor, "CBOR documents instead of JSON");
  c->add_option("--subject", o->subject, "the CSR's subject (default /CN=edgekit-device)");
  c->add_option("--key-type", o->key_type,
                "key made in the token: ec-p256, ec-p384, rsa-2048, "
                "rsa-3072")
      ->capture_default_str();
  c->add_option("--timeout", o->timeout_ms, "milliseconds to wait for each reply (1 ms to 10 min)")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  c->add_option("--attempts", o->attempts,
                "how many times to send a request that times out or is throttled")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  c->add_flag("--no-connect", o->no_connect,
              "do not connect as the thing afterwards to check the new identity");
  c->add_flag("--json", o->json, "print the result as JSON");
  c->callback([o, &exit_code] { exit_code = run_provision(*o); });
}

}  // namespace edgekit::tools
