// edgekit: command-line tools of the edgekit SDK.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "commands.hpp"
#include "token_tools.hpp"

namespace edgekit::tools {

void add_broker_options(CLI::App& app, BrokerOptions& o, std::string& version_text) {
  app.add_option("-h,--host", o.host, "broker host name or address")->capture_default_str();
  app.add_option("-p,--port", o.port, "broker port")->check(CLI::Range(1, 65535))->capture_default_str();
  app.add_option("-V,--protocol-version", version_text, "5 or 311 (3.1.1)")->capture_default_str();
  app.add_option("-i,--id", o.client_id, "client identifier (empty: the broker assigns one)");
  app.add_option("-u,--username", o.username, "user name");
  app.add_option("-P,--pw", o.password, "password");
  app.add_option("-k,--keepalive", o.keep_alive, "keep-alive in seconds")->capture_default_str();
  app.add_option("--connect-timeout", o.connect_timeout_ms, "connect timeout in milliseconds (1 ms to a day)")
      ->check(CLI::Range(1, 86400 * 1000))
      ->capture_default_str();
  app.add_option("--cafile", o.ca_file, "TLS: CA certificates (PEM) to verify the broker with");
  app.add_option("--cert", o.cert_file, "TLS: client certificate (PEM) for mutual TLS");
  app.add_option("--key", o.key_file, "TLS: the client's private key in a PEM file");
  app.add_option("--key-label", o.key_label,
                 "TLS: the label of the client's private key in a PKCS#11 token (instead of --key)");
  app.add_option("--pkcs11-module", o.pkcs11_module,
                 "PKCS#11 module of --key-label (default: edgekit's libedgekit-pkcs11.so)");
  app.add_option("--token", o.token_label, "label of the token holding --key-label");
  app.add_option("--pin", o.pin, "the token's user PIN (else $EDGEKIT_TOKEN_PIN)");
}

// This file's helpers, in a namespace of their own: a unity build (EDGEKIT_UNITY_BUILD) compiles
// several command files as one translation unit.
namespace cmd_main {
namespace {
bool fail_no_tls(const char* command) {
  std::fprintf(stderr, "edgekit %s: --key / --key-label need --cert and --cafile (TLS)\n", command);
  return false;
}
}  // namespace
}  // namespace cmd_main

bool finish_broker_options(const char* command, BrokerOptions& o, const std::string& version_text) {
  using namespace cmd_main;
  if (!parse_version(version_text, o.version)) {
    std::fprintf(stderr, "edgekit %s: unknown protocol version '%s' (use 5 or 311)\n", command,
                 version_text.c_str());
    return false;
  }
  if (o.tls()) {
    auto fail = [command](const char* why) {
      std::fprintf(stderr, "edgekit %s: %s\n", command, why);
      return false;
    };
    if (o.ca_file.empty()) return fail("TLS needs --cafile (the CA that signed the broker's certificate)");
    if (!o.key_file.empty() && !o.key_label.empty()) return fail("give --key or --key-label, not both");
    if (o.cert_file.empty() != (o.key_file.empty() && o.key_label.empty())) {
      return fail("mutual TLS needs both --cert and a key (--key or --key-label)");
    }
    if (!o.key_label.empty()) {
      if (o.pkcs11_module.empty()) o.pkcs11_module = token::default_module_path(executable_path());
      if (o.pin.empty()) {
        const char* pin = std::getenv("EDGEKIT_TOKEN_PIN");
        if (pin == nullptr || *pin == '\0') return fail("--key-label needs --pin or $EDGEKIT_TOKEN_PIN");
        o.pin = pin;
      }
    }
  } else if (!o.key_label.empty() || !o.key_file.empty()) {
    return fail_no_tls(command);
  }
  o.have_username = !o.username.empty();
  o.have_password = !o.password.empty();
  if (o.have_password && !o.have_username && o.version == mqtt::Version::V311) {
    // [MQTT-3.1.2-22]: in 3.1.1 a password needs a user name (MQTT 5 lifted this).
    std::fprintf(stderr, "edgekit %s: a password (-P) needs a user name (-u) in MQTT 3.1.1\n", command);
    return false;
  }
  if (o.client_id.size() > 65535) {
    std::fprintf(stderr, "edgekit %s: a client id is at most 65535 bytes\n", command);
    return false;
  }
  if (o.client_id.empty() && o.version == mqtt::Version::V311) {
    o.client_id = std::string("edgekit-") + command + "-" + std::to_string(::getpid());
  }
  return true;
}

void report_assigned_id(const char* command, Connection& c, const BrokerOptions& o, bool debug) {
  const std::string& assigned = c.assigned_client_id();
  if (assigned.empty()) return;
  if (c.session().client_id() != assigned) {
    std::fprintf(stderr,
                 "edgekit %s: the broker assigned client id '%s' (%zu bytes), which could not be "
                 "kept: this session cannot be resumed\n",
                 command, assigned.c_str(), assigned.size());
  } else if (!o.clean_start) {
    std::fprintf(stderr, "edgekit %s: the broker assigned client id '%s'; -i %s resumes this session\n",
                 command, assigned.c_str(), assigned.c_str());
  } else if (debug) {
    std::fprintf(stderr, "edgekit %s: the broker assigned client id '%s'\n", command, assigned.c_str());
  }
}

}  // namespace edgekit::tools

int main(int argc, char** argv) {
  CLI::App app{"edgekit: tools for MQTT devices and fleets"};
  app.set_help_flag("--help", "print this help and exit");
  app.require_subcommand(1);
  int exit_code = 0;
  edgekit::tools::add_pub_command(app, exit_code);
  edgekit::tools::add_sub_command(app, exit_code);
  edgekit::tools::add_token_command(app, exit_code);
  edgekit::tools::add_provision_command(app, exit_code);
  edgekit::tools::add_shadow_command(app, exit_code);
  edgekit::tools::add_jobs_command(app, exit_code);
  edgekit::tools::add_fleet_command(app, exit_code);
  edgekit::tools::add_ota_command(app, exit_code);
  edgekit::tools::add_sim_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
