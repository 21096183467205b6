// A test-only device program for the provisioning crash tests (device_provisioning_test.cpp):
// one boot of provisioning_device.hpp's device against the real fleetd, which can kill itself
// with SIGKILL at a chosen point of the flow — a real process dying with its token, its state
// file and its TLS connection as they are at that moment, as a power loss leaves them.
//
//   fleetd_provisioning_device --module M --token-dir D --state F --work W --port P --ca C
//       [--factory --claim-key K --claim-cert C2] [--method csr|keys] [--format json|cbor]
//       [--template T] [--serial S] [--client-id I] [--agent] [--attempts N]
//       [--reply-timeout-ms N]
//       [--kill-before-save N | --kill-after-save N | --kill-after-request K | --kill-on-reply K]
//
// Saves of the provisioning state are counted from 1 (Started, CertificateReceived,
// Registered); requests from 1 (the certificate request, then RegisterThing; retries count).
// --kill-after-request K publishes request K and dies without waiting for its reply;
// --kill-on-reply K dies when reply K has arrived, before the provisioner reads it (the service
// did its work, the device never learns of it). Prints the boot's report (`key=value` lines) and
// exits 0 when the boot ended with the device connected as its thing, 1 otherwise, 2 on bad
// arguments.

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "edgekit/testing/token_env.hpp"
#include "provisioning_device.hpp"

namespace {

using edgekit::Duration;
using edgekit::Result;
namespace pv = edgekit::provisioning;

[[noreturn]] void die() {
  // No clean-up of any kind: what is on disk and on the wire stays as it is.
  ::kill(::getpid(), SIGKILL);
  std::abort();
}

// Dies before or after the N-th save.
class KillingStore final : public pv::StateStore {
 public:
  KillingStore(pv::StateStore& inner, int before, int after)
      : inner_(inner), before_(before), after_(after) {}
  Result<std::optional<pv::State>, pv::Errc> load() override { return inner_.load(); }
  Result<void, pv::Errc> save(const pv::State& s) override {
    ++saves_;
    if (saves_ == before_) die();
    auto r = inner_.save(s);
    if (r && saves_ == after_) die();
    return r;
  }
  Result<void, pv::Errc> clear() override { return inner_.clear(); }

 private:
  pv::StateStore& inner_;
  int before_, after_, saves_ = 0;
};

// Dies after publishing request K (without its reply), or when reply K has arrived.
class KillingChannel final : public pv::Channel {
 public:
  KillingChannel(pv::Channel& inner, int after_request, int on_reply)
      : inner_(inner), after_request_(after_request), on_reply_(on_reply) {}
  Result<void, pv::Errc> subscribe(pv::ReplyTopics t, Duration d) override {
    return inner_.subscribe(t, d);
  }
  void unsubscribe(pv::ReplyTopics t, Duration d) override { inner_.unsubscribe(t, d); }
  Result<pv::Reply, pv::Errc> request(std::string_view topic, std::span<const std::uint8_t> payload,
                                      pv::ReplyTopics topics, std::span<std::uint8_t> reply,
                                      Duration timeout) override {
    ++requests_;
    if (requests_ == after_request_) {
      // The publish is written to the socket before the wait; a 1 ms wait then gives up on the
      // reply, which the service sends to a device that is gone.
      (void)inner_.request(topic, payload, topics, reply, Duration{1});
      die();
    }
    auto r = inner_.request(topic, payload, topics, reply, timeout);
    if (r && requests_ == on_reply_) die();
    return r;
  }

 private:
  pv::Channel& inner_;
  int after_request_, on_reply_, requests_ = 0;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) return 2;
    k = k.substr(2);
    if (k == "factory" || k == "agent") {
      a[k] = "1";
    } else if (i + 1 < argc) {
      a[k] = argv[++i];
    } else {
      return 2;
    }
  }
  for (const char* required : {"module", "token-dir", "state", "work", "port", "ca"}) {
    if (!a.count(required)) {
      std::cerr << "missing --" << required << "\n";
      return 2;
    }
  }
  auto number = [&a](const char* k, int fallback) {
    return a.count(k) ? std::atoi(a[k].c_str()) : fallback;
  };
  edgekit::fleetd::test::DeviceSetup s;
  // The module reads the token folder from the environment when it is loaded.
  s.module_path = edgekit::testing::prepare_token_env(edgekit::testing::TokenKind::Edgekit,
                                                      a["token-dir"], a["module"], "");
  s.state_file = a["state"];
  s.work_dir = a["work"];
  s.port = static_cast<std::uint16_t>(number("port", 0));
  s.ca_file = a["ca"];
  if (a.count("client-id")) s.claim_client_id = a["client-id"];
  s.agent = a.count("agent") > 0;
  pv::Options& o = s.options;
  o.method = a["method"] == "keys" ? pv::Method::CreateKeysAndCertificate
                                   : pv::Method::CreateCertificateFromCsr;
  o.format = a["format"] == "cbor" ? pv::Format::Cbor : pv::Format::Json;
  o.template_name = a.count("template") ? a["template"] : "fleet";
  o.parameters = {{"SerialNumber", a.count("serial") ? a["serial"] : "0"}};
  o.attempts = static_cast<std::uint32_t>(number("attempts", 3));
  o.reply_timeout = Duration{number("reply-timeout-ms", 3000)};
  o.backoff = edgekit::backoff::Policy{Duration{100}, Duration{1000}};
  o.subscribe_timeout = Duration{3000};

  if (a.count("factory")) {
    const std::string e = edgekit::fleetd::test::install_claim(
        s, "87654321", read_file(a["claim-key"]), read_file(a["claim-cert"]));
    if (!e.empty()) {
      std::cout << "ok=0\nerror=factory: " << e << "\n";
      return 1;
    }
  }
  edgekit::fleetd::test::BootHooks hooks;
  const int before = number("kill-before-save", 0), after = number("kill-after-save", 0);
  if (before > 0 || after > 0) {
    hooks.store = [before, after](pv::StateStore& inner) {
      return std::make_unique<KillingStore>(inner, before, after);
    };
  }
  const int after_request = number("kill-after-request", 0), on_reply = number("kill-on-reply", 0);
  if (after_request > 0 || on_reply > 0) {
    hooks.channel = [after_request, on_reply](pv::Channel& inner) {
      return std::make_unique<KillingChannel>(inner, after_request, on_reply);
    };
  }
  const auto report = edgekit::fleetd::test::boot(s, hooks);
  std::cout << edgekit::fleetd::test::to_text(report) << std::flush;
  return report.ok ? 0 : 1;
}
