// One boot of a device against the real fleetd (provisioning_device.hpp).

#include "provisioning_device.hpp"

#include <unistd.h>

#include <array>
#include <cstdlib>
#include <chrono>
#include <edgekit/agent/agent.hpp>
#include <edgekit/mqtt/client.hpp>
#include <edgekit/mqtt/session.hpp>
#include <edgekit/pki/certificate.hpp>
#include <edgekit/pki/token.hpp>
#include <edgekit/provisioning/identity.hpp>
#include <edgekit/testing/token_env.hpp>
#include <edgekit/tls/agent_factory.hpp>
#include <edgekit/tls/tls.hpp>
#include <optional>
#include <sstream>

namespace edgekit::fleetd::test {
namespace {

constexpr Duration kConnectTimeout{5000};

// The blocking client over mutual TLS, on static storage as a small device has it.
struct TlsDevice {
  SteadyClock clock;
  std::optional<tls::TlsContext> context;
  std::optional<tls::TlsTransport> transport;
  std::array<mqtt::OutgoingRecord, 8> records{};
  std::array<std::uint16_t, 8> qos2{};
  std::array<char, 64> client_id{};
  mqtt::Session session{storage()};
  std::array<std::byte, 16 * 1024> rx{};
  std::array<std::byte, 4 * 1024> tx{};
  mqtt::Client client{clock, session, rx, tx};

  mqtt::SessionStorage storage() {
    mqtt::SessionStorage st;
    st.outgoing = records;
    st.incoming_qos2 = qos2;
    st.client_id = client_id;
    return st;
  }

  // Returns "" or what failed.
  std::string connect(const tls::Config& config, std::uint16_t port, const std::string& id) {
    auto ctx = tls::TlsContext::create(config);
    if (!ctx) return "TLS context: " + ctx.error().message();
    context.emplace(std::move(*ctx));
    auto t = tls::TlsTransport::connect(*context, "localhost", port, kConnectTimeout);
    if (!t) return "TLS connect: " + t.error().message();
    transport.emplace(std::move(*t));
    if (auto s = client.set_transport(*transport); !s) return "set_transport";
    mqtt::ConnectOptions o;
    o.version = mqtt::Version::V5;
    o.client_id = id;
    auto ack = client.connect(o, kConnectTimeout);
    if (!ack) return std::string("MQTT connect as ") + id + ": " + mqtt::to_string(ack.error());
    return {};
  }

  int publish(const std::string& topic, std::string_view payload) {
    mqtt::Publish p;
    p.topic = topic;
    p.payload = mqtt::as_bytes(payload);
    p.qos = mqtt::QoS::AtLeastOnce;
    auto r = client.publish_and_wait(p, kConnectTimeout);
    return r ? static_cast<int>(r.value()) : -2;
  }
};

provisioning::TokenLocation location(const DeviceSetup& s) {
  return {s.module_path, s.token_label, s.pin};
}

// The provisioning run over the claim connection (either driver). Returns the identity or fails
// with the report's error filled in.
std::optional<provisioning::Identity> run_over_claim(const DeviceSetup& s, const BootHooks& hooks,
                                                     pkcs11::Session& session,
                                                     provisioning::Provisioner& p,
                                                     BootReport& report) {
  auto claim = provisioning::tls_config_for(session, location(s), s.options.claim_label, s.ca_file,
                                            s.work_dir + "/claim.crt");
  if (!claim) {
    report.error = std::string("claim identity: ") + provisioning::to_string(claim.error());
    return std::nullopt;
  }
  report.used_claim = true;
  auto run = [&](provisioning::Channel& inner) {
    std::unique_ptr<provisioning::Channel> wrapped;
    if (hooks.channel) wrapped = hooks.channel(inner);
    auto r = p.run(wrapped ? *wrapped : inner);
    if (!r) {
      report.error = std::string("run: ") + provisioning::to_string(r.error()) + ": " + p.detail();
      return std::optional<provisioning::Identity>();
    }
    return std::optional<provisioning::Identity>(std::move(*r));
  };
  if (!s.agent) {
    TlsDevice device;
    if (auto e = device.connect(*claim, s.port, s.claim_client_id); !e.empty()) {
      report.error = "claim connection: " + e;
      return std::nullopt;
    }
    std::optional<provisioning::Identity> id;
    {
      provisioning::ClientChannel channel(device.client, device.clock);
      id = run(channel);
    }
    // After RegisterThing the device disconnects from the claim connection (aws-iot-protocols.md
    // 4.2) and comes back with its own certificate.
    (void)device.client.disconnect();
    return id;
  }
  auto ctx = tls::TlsContext::create(*claim);
  if (!ctx) {
    report.error = "claim TLS context: " + ctx.error().message();
    return std::nullopt;
  }
  tls::TlsTransportFactory factory(std::move(*ctx), "localhost", s.port, kConnectTimeout);
  SteadyClock clock;
  mqtt::ConnectOptions connect;
  connect.version = mqtt::Version::V5;
  connect.client_id = s.claim_client_id;
  agent::Config config;
  config.slot_size = 4096;  // a CSR request (about 1 KB in JSON) fits
  agent::Agent agent(config, connect, factory, clock);
  if (!agent.start()) {
    report.error = "agent did not start";
    return std::nullopt;
  }
  std::optional<provisioning::Identity> id;
  {
    provisioning::AgentChannel channel(agent);
    id = run(channel);
  }
  agent.stop();
  return id;
}

}  // namespace

std::string install_claim(const DeviceSetup& s, const char* so_pin, const std::string& key_pem,
                          const std::string& cert_pem) {
  auto module = pkcs11::Module::load(s.module_path);
  if (!module) return "module: " + module.error().message();
  auto slot = testing::init_test_token(*module, s.token_label, so_pin, s.pin.c_str());
  if (!slot) return "the token could not be initialised";
  auto session = module->open_session(*slot, true);
  if (!session) return "session: " + session.error().message();
  if (auto l = session->login(pkcs11::UserType::User, s.pin); !l) return "login";
  const pki::Bytes id{'c', 'l', 'a', 'i', 'm'};
  auto pair = pki::import_private_key(*session, key_pem, s.options.claim_label, id);
  if (!pair) return "import claim key: " + pair.error().message;
  auto cert = pki::parse_certificate(cert_pem);
  if (!cert) return "claim certificate: " + cert.error().message;
  if (auto c = pki::store_certificate(*session, *cert, s.options.claim_label, id); !c) {
    return "store claim certificate: " + c.error().message;
  }
  return {};
}

BootReport boot(const DeviceSetup& s, const BootHooks& hooks) {
  BootReport report;
  auto module = pkcs11::Module::load(s.module_path);
  if (!module) {
    report.error = "module: " + module.error().message();
    return report;
  }
  auto slot = module->find_token(s.token_label);
  if (!slot) {
    report.error = "no token " + s.token_label;
    return report;
  }
  auto session = module->open_session(*slot, true);
  if (!session) {
    report.error = "session: " + session.error().message();
    return report;
  }
  // Sessions share the login state of the token: another session of this process may have
  // logged in already, which is fine; any other refusal (a wrong PIN) is the device's error.
  if (auto st = session->login(pkcs11::UserType::User, s.pin);
      !st && st.error().rv != CKR_USER_ALREADY_LOGGED_IN) {
    report.error = "login: " + st.error().message();
    return report;
  }

  provisioning::FileStateStore file(s.state_file);
  std::unique_ptr<provisioning::StateStore> wrapped_store;
  if (hooks.store) wrapped_store = hooks.store(file);
  provisioning::StateStore& store = wrapped_store ? *wrapped_store : file;
  provisioning::SystemWallClock wall;
  provisioning::ThreadSleeper sleeper;
  backoff::SplitMix64 random(
      static_cast<std::uint64_t>(::getpid()) * 7919u +
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  provisioning::Provisioner p(*session, store, wall, sleeper, random, s.options);

  auto already = p.provisioned();
  if (!already) {
    report.error = std::string("provisioned(): ") + provisioning::to_string(already.error());
    return report;
  }
  if (*already) {
    report.identity = std::move(**already);
  } else {
    auto id = run_over_claim(s, hooks, *session, p, report);
    if (!id) return report;
    report.identity = std::move(*id);
  }
  if (auto n = p.device_object_count(); n) report.device_objects = *n;

  // The device identity from the token, as its thing; the claim identity is not touched again.
  auto config = provisioning::tls_config_for(*session, location(s), report.identity.device_label,
                                             s.ca_file, s.work_dir + "/device.crt");
  if (!config) {
    report.error = std::string("device identity: ") + provisioning::to_string(config.error());
    return report;
  }
  TlsDevice device;
  if (auto e = device.connect(*config, s.port, report.identity.thing_name); !e.empty()) {
    report.error = "device connection: " + e;
    return report;
  }
  report.own_publish = device.publish(report.identity.thing_name + "/telemetry", "21.5");
  report.foreign_publish = device.publish("t1/telemetry", "not mine");
  (void)device.client.disconnect();
  report.ok = true;
  return report;
}

std::string to_text(const BootReport& r) {
  std::ostringstream out;
  out << "ok=" << (r.ok ? 1 : 0) << "\n"
      << "thing=" << r.identity.thing_name << "\n"
      << "certificate=" << r.identity.certificate_id << "\n"
      << "already=" << (r.identity.already_provisioned ? 1 : 0) << "\n"
      << "resumed=" << (r.identity.resumed ? 1 : 0) << "\n"
      << "objects=" << r.device_objects << "\n"
      << "used_claim=" << (r.used_claim ? 1 : 0) << "\n"
      << "own_publish=" << r.own_publish << "\n"
      << "foreign_publish=" << r.foreign_publish << "\n"
      << "error=" << r.error << "\n";
  return out.str();
}

BootReport from_text(const std::string& text) {
  BootReport r;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    // strtol: a report cut short by a kill reads as zeros, never as an exception.
    auto num = [&v] { return std::strtol(v.c_str(), nullptr, 10); };
    if (k == "ok") r.ok = num() == 1;
    if (k == "thing") r.identity.thing_name = v;
    if (k == "certificate") r.identity.certificate_id = v;
    if (k == "already") r.identity.already_provisioned = num() == 1;
    if (k == "resumed") r.identity.resumed = num() == 1;
    if (k == "objects") r.device_objects = static_cast<std::size_t>(num());
    if (k == "used_claim") r.used_claim = num() == 1;
    if (k == "own_publish") r.own_publish = static_cast<int>(num());
    if (k == "foreign_publish") r.foreign_publish = static_cast<int>(num());
    if (k == "error") r.error = v;
  }
  return r;
}

}  // namespace edgekit::fleetd::test
