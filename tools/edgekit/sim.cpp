// `edgekit sim`: the fleet simulator (docs/simulator.md). N devices in this process, each with
// its own identity and session, running the SDK's flows on one event-loop thread (tools/sim).
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "claim.hpp"
#include "commands.hpp"
#include "edgekit/tls/tls.hpp"
#include "fleet.hpp"
#include "identity.hpp"
#include "metrics.hpp"
#include "progress.hpp"
#include "prometheus.hpp"
#include "report.hpp"
#include "scenario.hpp"
#include "source_addresses.hpp"
#include "token_tools.hpp"

namespace edgekit::tools {
// This file's helpers, in a namespace of their own: a unity build (EDGEKIT_UNITY_BUILD) compiles
// several command files as one translation unit.
namespace cmd_sim {
namespace {

struct SimOptions {
  std::string scenario_file;
  std::string host = "127.0.0.1";
  int port = 8883;
  std::string ca_file;        // broker CA: TLS when set
  std::string server_name = "localhost";
  std::string identities_dir;
  std::string prefix;
  std::uint32_t devices = 0;       // 0: the scenario's
  double connect_rate = -1;        // <0: the scenario's
  std::string admin_url;
  std::string admin_token_file;
  std::string restart_command;
  std::string report_dir;
  int prometheus_port = 0;
  std::string mqtt_version = "5";
  std::string source_addresses;  // empty: the system's choice
  bool quiet = false;
  // By claim.
  std::string claim_dir;
  std::string template_name;
  std::string pkcs11_module;
  std::string token_dir;
  // `edgekit sim identities`
  std::uint32_t count = 0;
  std::string ca_out;
  std::size_t measure_rounds = 0;
};

std::string read_file(const std::string& path, bool& ok) {
  std::ifstream f(path, std::ios::binary);
  ok = static_cast<bool>(f);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string utc_now() {
  char text[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

int fail(const std::string& why) {
  std::fprintf(stderr, "edgekit sim: %s\n", why.c_str());
  return 2;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// Makes (or loads) the identities, the CA written for fleetd's JITP registration.
int run_identities(const SimOptions& o) {
  sim::IdentityOptions io;
  io.prefix = o.prefix.empty() ? "sim" : o.prefix;
  io.cache_dir = o.identities_dir;
  auto factory = sim::IdentityFactory::create(io);
  if (!factory) return fail("identities: " + factory.error());
  if (!o.ca_out.empty()) {
    if (auto w = factory->write_ca_certificate(o.ca_out); !w) return fail(w.error());
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint32_t i = 0; i < o.count; ++i) {
    if (auto id = factory->identity(i); !id) return fail("identity " + std::to_string(i) + ": " + id.error());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"identities\":%u,\"made\":%zu,\"loaded\":%zu,\"seconds\":%.2f", o.count,
              factory->counters().made, factory->counters().loaded, s);
  if (o.measure_rounds > 0) {
    auto cost = sim::measure_device_crypto(o.measure_rounds);
    if (!cost) return fail("measure: " + cost.error());
    std::printf(",\"crypto_us\":{\"keygen\":%.1f,\"cert_sign\":%.1f,\"handshake_client\":%.1f,"
                "\"handshake_server\":%.1f,\"rounds\":%zu}",
                cost->keygen_us, cost->cert_sign_us, cost->handshake_client_us,
                cost->handshake_server_us, cost->rounds);
  }
  std::printf("}\n");
  return 0;
}

int run_sim(const SimOptions& o) {
  // The scenario: the file's, or the default (connect and hold), then the command line's
  // overrides.
  sim::Scenario scenario;
  if (!o.scenario_file.empty()) {
    bool ok = false;
    const std::string text = read_file(o.scenario_file, ok);
    if (!ok) return fail("cannot read " + o.scenario_file);
    std::string error;
    auto s = sim::parse_scenario(text, error);
    if (!s) return fail(o.scenario_file + ": " + error);
    scenario = *s;
  }
  if (o.devices > 0) scenario.devices = o.devices;
  if (o.connect_rate >= 0) scenario.connect.rate = o.connect_rate;
  if (!o.prefix.empty()) scenario.prefix = o.prefix;
  const bool by_claim = scenario.identity == sim::IdentityMode::Claim;
  if (by_claim && (o.ca_file.empty() || o.claim_dir.empty() || o.template_name.empty())) {
    return fail("\"identity\": \"claim\" needs --cafile (mutual TLS), --claim-dir (claim.crt and "
                "claim.key, as `edgekit fleet claims create --out-dir` writes them) and --template");
  }
  bool needs_admin = false;
  for (const auto& p : scenario.phases) {
    needs_admin = needs_admin || p.kind == sim::Phase::Kind::Shadow || p.kind == sim::Phase::Kind::Jobs;
    needs_admin = needs_admin || p.kind == sim::Phase::Kind::Ota;
  }
  sim::FleetOptions fo;
  fo.scenario = scenario;
  fo.mqtt5 = o.mqtt_version == "5";
  if (!fo.mqtt5 && o.mqtt_version != "311") return fail("--mqtt is 5 or 311");
  std::error_code ec;
  const auto address = asio::ip::make_address(o.host, ec);
  if (ec) return fail("--host must be an IP address (" + o.host + ")");
  fo.broker = {address, static_cast<std::uint16_t>(o.port)};
  if (!o.source_addresses.empty()) {
    std::string error;
    auto sources = sim::parse_source_addresses(o.source_addresses, error);
    if (!sources) return fail("--source-addresses " + error);
    fo.source_addresses = std::move(*sources);
  }
  fo.server_name = o.server_name;
  fo.broker_restart_command = o.restart_command;
  fo.admin_url = o.admin_url.empty() ? env("EDGEKIT_FLEET_URL") : o.admin_url;
  const std::string token_file =
      o.admin_token_file.empty() ? env("EDGEKIT_FLEET_TOKEN_FILE") : o.admin_token_file;
  if (!token_file.empty()) {
    bool ok = false;
    std::string token = read_file(token_file, ok);
    if (!ok) return fail("cannot read the admin token file " + token_file);
    while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
    fo.admin_token = token;
  }
  if (needs_admin && (fo.admin_url.empty() || fo.admin_token.empty())) {
    return fail("the shadow, jobs and ota phases need fleetd's admin API: --admin-url and "
                "--admin-token-file (or $EDGEKIT_FLEET_URL and $EDGEKIT_FLEET_TOKEN_FILE)");
  }

  // Identities and TLS.
  nlohmann::json claim_limit;  // by claim: the physical limit measured in this run
  std::optional<tls::TlsContext> tls;
  std::vector<sim::DeviceIdentity> identities;
  if (!o.ca_file.empty()) {
    tls::Config config;
    config.ca_file = o.ca_file;
    auto context = tls::TlsContext::create(config);
    if (!context) return fail("TLS: " + context.error().message());
    tls.emplace(std::move(*context));
    fo.tls = &*tls;
  } else if (!o.identities_dir.empty()) {
    return fail("--identities needs TLS (--cafile)");
  }
  // By claim: the token every device provisions its key into, and the physical limit of one
  // device by claim measured before the storm, in the same run.
  std::unique_ptr<sim::ClaimProvisioning> claim;
  if (by_claim) {
    sim::ClaimOptions co;
    co.claim_certificate_file = o.claim_dir + "/claim.crt";
    co.claim_key_file = o.claim_dir + "/claim.key";
    co.template_name = o.template_name;
    co.module_path =
        o.pkcs11_module.empty() ? tools::token::default_module_path(executable_path()) : o.pkcs11_module;
    co.token_dir = o.token_dir;
    auto opened = sim::ClaimProvisioning::open(co);
    if (!opened) return fail(opened.error());
    claim = std::move(*opened);
    fo.claim = claim.get();
    constexpr std::size_t kRounds = 20;
    auto token_cost = claim->measure(kRounds);
    if (!token_cost) return fail(token_cost.error());
    auto tls_cost = sim::measure_device_crypto(kRounds);
    if (!tls_cost) return fail("measure: " + tls_cost.error());
    // One device by claim: its key pair and CSR in the token, fleetd's check of the CSR and its
    // certificate, and two full mutual-TLS handshakes (claim, then as the thing), both sides.
    const double per_device = token_cost->token_keygen_us + token_cost->csr_make_us +
                              token_cost->csr_verify_us + tls_cost->cert_sign_us +
                              2 * (tls_cost->handshake_client_us + tls_cost->handshake_server_us);
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    claim_limit = {{"token_keygen_us", token_cost->token_keygen_us},
                   {"csr_make_us", token_cost->csr_make_us},
                   {"csr_verify_us", token_cost->csr_verify_us},
                   {"cert_sign_us", tls_cost->cert_sign_us},
                   {"handshake_client_us", tls_cost->handshake_client_us},
                   {"handshake_server_us", tls_cost->handshake_server_us},
                   {"device_us", per_device},
                   {"cores", cores},
                   {"devices_per_s", per_device > 0 ? cores * 1e6 / per_device : 0.0},
                   {"rounds", kRounds}};
    if (!o.quiet) {
      std::fprintf(stderr,
                   "physical limit by claim: %.0f us of CPU per device (token key pair %.0f, CSR %.0f, "
                   "CSR check %.0f, certificate %.0f, 2 handshakes %.0f) -> %.0f devices/s on %u "
                   "cores with nothing else running; token in %s\n",
                   per_device, token_cost->token_keygen_us, token_cost->csr_make_us,
                   token_cost->csr_verify_us, tls_cost->cert_sign_us,
                   2 * (tls_cost->handshake_client_us + tls_cost->handshake_server_us),
                   cores * 1e6 / per_device, cores, claim->token_dir().c_str());
    }
  }
  if (!o.ca_file.empty() && !by_claim) {
    sim::IdentityOptions io;
    io.prefix = scenario.prefix;
    io.cache_dir = o.identities_dir;
    auto factory = sim::IdentityFactory::create(io);
    if (!factory) return fail("identities: " + factory.error());
    const auto t0 = std::chrono::steady_clock::now();
    auto made = factory->identities(scenario.devices);
    if (!made) return fail("identities: " + made.error());
    identities = std::move(*made);
    if (!o.quiet) {
      std::fprintf(stderr, "identities: %u (%zu made, %zu from %s) in %.1f s\n", scenario.devices,
                   factory->counters().made, factory->counters().loaded,
                   o.identities_dir.empty() ? "memory" : o.identities_dir.c_str(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    fo.identities = identities;
  }

  asio::io_context io;
  const auto start = std::chrono::steady_clock::now();
  const std::string started_utc = utc_now();
  sim::Metrics metrics(start, true);
  sim::SnapshotBoard board;
  sim::PrometheusServer prometheus(board);
  if (o.prometheus_port > 0) {
    std::string error;
    if (prometheus.start(std::string(sim::kDefaultPrometheusHost),
                         static_cast<std::uint16_t>(o.prometheus_port), &error) == 0) {
      return fail("Prometheus endpoint: " + error);
    }
  }
  sim::ProgressWriter progress(stderr, ::isatty(STDERR_FILENO) == 1);
  fo.log = [&](const std::string& line) {
    if (o.quiet) return;
    progress.finish();
    std::fprintf(stderr, "%s\n", line.c_str());
  };
  auto fleet = std::make_unique<sim::Fleet>(io, metrics, fo);

  // Ctrl-C: the run stops cleanly and the report is still written; a second one ends at once.
  int interrupts = 0;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::function<void(const std::error_code&, int)> on_signal = [&](const std::error_code& e, int) {
    if (e) return;
    if (++interrupts > 1) std::_Exit(130);
    fleet->request_stop();
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  asio::steady_timer ticker(io);
  std::function<void(const std::error_code&)> on_tick = [&](const std::error_code& e) {
    if (e) return;
    const auto now = std::chrono::steady_clock::now();
    metrics.tick(now);
    board.publish(metrics.snapshot(now));
    if (!o.quiet) progress.update(sim::progress_figures(metrics, now));
    if (fleet->finished()) {
      signals.cancel();
      return;  // nothing left: run() returns
    }
    ticker.expires_after(std::chrono::seconds(1));
    ticker.async_wait(on_tick);
  };
  ticker.expires_after(std::chrono::seconds(1));
  ticker.async_wait(on_tick);

  fleet->start();
  io.run();
  const auto end = std::chrono::steady_clock::now();
  metrics.tick(end);
  progress.finish();
  const sim::FleetSummary summary = fleet->summary();
  fleet.reset();  // after the loop: devices are idle

  // The report.
  sim::ReportData report = sim::build_report(metrics, end, "edgekit sim: " +
                                                 std::to_string(scenario.devices) + " devices",
                                             started_utc);
  bool report_failed = false;
  if (!o.report_dir.empty()) {
    std::filesystem::create_directories(o.report_dir, ec);
    const std::string json_path = o.report_dir + "/report.json";
    const std::string html_path = o.report_dir + "/report.html";
    nlohmann::json j = sim::to_json(report);
    j["summary"] = {{"devices", summary.devices},
                    {"connected", summary.connected},
                    {"connect_failed", summary.connect_failed},
                    {"published", summary.published},
                    {"acknowledged", summary.acknowledged},
                    {"unacknowledged", summary.unacknowledged},
                    {"lost_session", summary.lost_session},
                    {"lost_to_reboots", summary.lost_to_reboots},
                    {"refused", summary.refused},
                    {"pending_offline", summary.pending_offline},
                    {"shadow_synced", summary.shadow_synced},
                    {"jobs_succeeded", summary.jobs_succeeded},
                    {"ota_succeeded", summary.ota_succeeded},
                    {"phase_incomplete", summary.phase_incomplete},
                    {"cuts", summary.cuts},
                    {"reboots", summary.reboots},
                    {"broker_restarts", summary.broker_restarts},
                    {"stalls", summary.stalls},
                    {"stalls_reconnected", summary.stalls_reconnected},
                    {"stopped", summary.stopped},
                    {"phases", summary.phases},
                    {"device_state_bytes", sim::Fleet::device_bytes()},
                    {"provisioned", summary.provisioned}};
    if (!claim_limit.is_null()) j["summary"]["claim_physical_limit"] = claim_limit;
    // The HTML page replaced atomically; the JSON (the report with the run's summary added)
    // likewise, through a temporary file renamed over it.
    if (const std::string e = sim::write_report_files(report, {}, html_path); !e.empty()) {
      std::fprintf(stderr, "edgekit sim: %s\n", e.c_str());
      report_failed = true;
    }
    {
      const std::string tmp = json_path + ".tmp";
      std::ofstream f(tmp, std::ios::trunc);
      f << j.dump(1) << "\n";
      f.close();
      std::filesystem::rename(tmp, json_path, ec);
      if (!f || ec) {
        std::fprintf(stderr, "edgekit sim: cannot write %s\n", json_path.c_str());
        report_failed = true;
      }
    }
    if (!o.quiet && !report_failed) {
      std::fprintf(stderr, "report: %s, %s\n", json_path.c_str(), html_path.c_str());
    }
  }
  for (const auto& line : summary.phases) std::printf("%s\n", line.c_str());
  // What the simulator itself needed: its peak memory over the fleet, and its CPU.
  {
    const sim::ProcSample proc = sim::read_proc_sample();
    const double peak = static_cast<double>(proc.rss_peak_bytes.value_or(0));
    std::printf("simulator: peak RSS %.0f MB (%.1f KB per device, identities included), CPU %.1f s "
                "over %.1f s\n",
                peak / 1048576.0, scenario.devices > 0 ? peak / 1024.0 / scenario.devices : 0.0,
                proc.process_cpu_seconds.value_or(0),
                std::chrono::duration<double>(end - start).count());
  }
  std::printf("published %llu, acknowledged %llu, unacknowledged %llu, lost with the broker's "
              "session %llu, lost to reboots %llu, refused %llu, pending on devices offline at "
              "the end of a drain %llu (every one of them is an error below, by cause)\n",
              static_cast<unsigned long long>(summary.published),
              static_cast<unsigned long long>(summary.acknowledged),
              static_cast<unsigned long long>(summary.unacknowledged),
              static_cast<unsigned long long>(summary.lost_session),
              static_cast<unsigned long long>(summary.lost_to_reboots),
              static_cast<unsigned long long>(summary.refused),
              static_cast<unsigned long long>(summary.pending_offline));
  if (summary.stalls > 0) {
    // Both outcomes are normal: a stall shorter than the keep-alive's notice ends with the
    // connection intact, a longer one is found and the device reconnects (and resends).
    std::printf("stalls %u: %u outlasted the keep-alive and the device reconnected, %u ended "
                "first and the connection carried on\n",
                summary.stalls, summary.stalls_reconnected,
                summary.stalls - summary.stalls_reconnected);
  }
  for (const auto& e : report.errors) {
    std::printf("error x%llu: %s (first: %s)\n", static_cast<unsigned long long>(e.count),
                e.cause.c_str(), e.example.c_str());
  }
  if (summary.stopped) return 130;
  if (report_failed) return 1;
  // Exit 1 for what no scenario asks for: a device that never connected, a message dropped
  // silently, a refusal, a device that did not finish a phase. Losses the engine reported with
  // their cause (a reboot, a broker that forgot sessions) are in the report, not failures.
  const bool clean = summary.connect_failed == 0 && summary.unacknowledged == 0 &&
                     summary.refused == 0 && summary.phase_incomplete == 0;
  return clean ? 0 : 1;
}

}  // namespace
}  // namespace cmd_sim

void add_sim_command(CLI::App& app, int& exit_code) {
  using namespace cmd_sim;
  auto o = std::make_shared<SimOptions>();
  CLI::App* sim = app.add_subcommand(
      "sim", "the fleet simulator: N devices with their own identities in this process, running "
             "a scenario (connect storm, telemetry, shadow, jobs, ota, faults) against a broker and "
             "fleetd; writes a JSON and an HTML report (docs/simulator.md)");
  sim->add_option("--scenario", o->scenario_file, "scenario file (JSON; default: connect only)");
  sim->add_option("-h,--host", o->host, "broker address")->capture_default_str();
  sim->add_option("-p,--port", o->port, "broker port")->check(CLI::Range(1, 65535))->capture_default_str();
  sim->add_option("--cafile", o->ca_file,
                  "the broker's CA (PEM): mutual TLS, each device with its own key and certificate; "
                  "without: plain TCP");
  sim->add_option("--server-name", o->server_name, "name checked in the broker's certificate")
      ->capture_default_str();
  sim->add_option("--identities", o->identities_dir,
                  "folder caching the device CA and identities between runs (default: in memory)");
  sim->add_option("--prefix", o->prefix, "thing names are <prefix>-<i> (overrides the scenario)");
  sim->add_option("--devices", o->devices, "number of devices (overrides the scenario)");
  sim->add_option("--connect-rate", o->connect_rate, "connects started per second (overrides)");
  sim->add_option("--admin-url", o->admin_url, "fleetd's admin API (else $EDGEKIT_FLEET_URL)");
  sim->add_option("--admin-token-file", o->admin_token_file,
                  "its bearer token (else $EDGEKIT_FLEET_TOKEN_FILE)");
  sim->add_option("--broker-restart-command", o->restart_command,
                  "shell command the faults phase runs to restart the broker");
  sim->add_option("--report", o->report_dir, "folder for report.json and report.html");
  sim->add_option("--prometheus", o->prometheus_port,
                  "serve /metrics on 127.0.0.1:PORT while running (0: off)")
      ->check(CLI::Range(0, 65535));
  sim->add_option("--mqtt", o->mqtt_version, "5 or 311")->capture_default_str();
  sim->add_option("--source-addresses", o->source_addresses,
                  "local addresses devices connect from, round robin: a count N (127.0.0.1 to "
                  "127.0.0.N), a range 127.0.0.1-127.0.0.16 or a list A,B; each has its own "
                  "ephemeral ports (docs/simulator.md)");
  sim->add_flag("-q,--quiet", o->quiet, "no progress line");
  sim->add_option("--claim-dir", o->claim_dir,
                  "identity \"claim\": folder with claim.crt and claim.key (edgekit fleet claims "
                  "create --out-dir)");
  sim->add_option("--template", o->template_name,
                  "identity \"claim\": the fleet provisioning template the claim is bound to");
  sim->add_option("--pkcs11-module", o->pkcs11_module,
                  "identity \"claim\": edgekit's token module (default: libedgekit-pkcs11.so "
                  "beside the executable)");
  sim->add_option("--token-dir", o->token_dir,
                  "identity \"claim\": an empty folder for the devices' token (default: a new "
                  "one in /dev/shm, removed at the end)");

  CLI::App* ids = sim->add_subcommand(
      "identities", "make (or load) the device CA and N identities; write the CA for fleetd's "
                    "JITP registration; --measure: the CPU one device's cryptography needs");
  ids->add_option("--dir", o->identities_dir, "cache folder")->required();
  ids->add_option("--count", o->count, "identities")->required();
  ids->add_option("--prefix", o->prefix, "thing names are <prefix>-<i>");
  ids->add_option("--ca-out", o->ca_out, "write the CA certificate (PEM) here");
  ids->add_option("--measure", o->measure_rounds, "rounds of the crypto measurement (0: none)");
  ids->callback([o, &exit_code] { exit_code = run_identities(*o); });
  sim->require_subcommand(0, 1);
  // CLI11 runs the parent's callback after a subcommand's: the simulation only without one.
  sim->callback([o, ids, &exit_code] {
    if (!ids->parsed()) exit_code = run_sim(*o);
  });
}

}  // namespace edgekit::tools
