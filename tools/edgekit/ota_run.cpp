// edgekit ota run: a device updating itself from the command line, with edgekit::ota::Agent as
// the AFR_OTA job's handler in a jobs::Runner over the blocking client. It connects as its
// thing (mutual TLS, key in the token), keeps its download, its A/B slots and nothing else in
// --state-dir (download/ and slots/: FileDownloadStore and FileSlots; job.record: the jobs
// runner's FileRecordStore), verifies images with the
// code-signing certificate's public key in the token, and stands for the whole device:
//  - a "reboot" (into the new image, back to the old one, or the self-test's watchdog) is an
//    exit with kReboot (3), after which the caller starts it again (the next boot);
//  - a lost connection is reconnected (the download goes on from its bitmap);
//  - the self-test is --self-test: pass, fail, or never (never decides: the timeout resets).
// It prints one line per block stored ("block <i>") or received again ("duplicate <i>") and one
// per step of the agent ("ota: ...").
#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "edgekit/jobs/file_record_store.hpp"
#include "edgekit/jobs/runner.hpp"
#include "edgekit/ota/agent.hpp"
#include "edgekit/ota/file_ports.hpp"
#include "edgekit/ota/verifier.hpp"
#include "edgekit/reqres/channel.hpp"
#include "job_runner.hpp"
#include "token_tools.hpp"

namespace edgekit::tools {
// This file's helpers, in a namespace of their own: a unity build (EDGEKIT_UNITY_BUILD) compiles
// several command files as one translation unit.
namespace cmd_ota_run {
namespace {

namespace jb = edgekit::jobs;

enum Exit { kOk = 0, kFailed = 1, kUsage = 2, kReboot = 3, kUpdateFailed = 4 };

struct OtaRunOptions {
  BrokerOptions broker;
  std::string version_text = "5";
  std::string thing;
  std::string state_dir;
  std::string device_type;
  std::string code_signing_cert;
  std::string format = "cbor";
  std::string protocol = "mqtt";
  std::string http_ca_file;
  std::string self_test = "pass";
  std::uint32_t block_size = 1024;
  int self_test_timeout_ms = 16'000;
  int timeout_ms = 5000;
  int seconds = 0;
  int reconnect_seconds = 30;
  std::uint32_t exit_after_blocks = 0;
  bool once = false;
};

int fail(const std::string& why) {
  std::fprintf(stderr, "edgekit ota run: %s\n", why.c_str());
  return kFailed;
}

// The DER of the first certificate in a PEM file (empty on failure).
std::vector<std::uint8_t> certificate_der(const std::string& path) {
  std::vector<std::uint8_t> der;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return der;
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) return der;
  const int n = i2d_X509(cert, nullptr);
  if (n > 0) {
    der.resize(static_cast<std::size_t>(n));
    unsigned char* p = der.data();
    i2d_X509(cert, &p);
  }
  X509_free(cert);
  return der;
}

// HTTP ranges over cpp-httplib (OpenSSL), the server verified against a CA file; the presigned
// URL is the credential (no client certificate). One connection per range: a host tool.
struct HttpsFetcher final : ota::RangeFetcher {
  std::string ca_file;

  bool fetch(std::string_view url, std::uint64_t first, std::span<std::byte> out) override {
    constexpr std::string_view scheme = "https://";
    if (!url.starts_with(scheme) || out.empty()) return false;
    const std::string_view rest = url.substr(scheme.size());
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return false;
    const std::string_view authority = rest.substr(0, slash);
    const std::size_t colon = authority.rfind(':');
    const std::string host(authority.substr(0, colon));
    int port = 443;
    if (colon != std::string_view::npos) port = std::atoi(std::string(authority.substr(colon + 1)).c_str());
    httplib::SSLClient client(host, port);
    client.set_ca_cert_path(ca_file.c_str());
    client.enable_server_certificate_verification(true);
    client.set_connection_timeout(5);
    client.set_read_timeout(5);
    const std::string range = "bytes=" + std::to_string(first) + "-" +
                              std::to_string(first + out.size() - 1);
    auto r = client.Get(std::string(rest.substr(slash)), {{"Range", range}});
    if (!r || r->status != 206 || r->body.size() != out.size()) return false;
    std::memcpy(out.data(), r->body.data(), out.size());
    return true;
  }
};

struct Device {
  std::string self_test;
  std::uint32_t exit_after_blocks = 0;
  std::uint32_t stored = 0;
  int outcome = -1;  // kOk or kUpdateFailed once a job's outcome was reported

  static void on_block(void* self, std::uint32_t block, bool fresh) {
    std::printf(fresh ? "block %u\n" : "duplicate %u\n", block);
    std::fflush(stdout);
    auto* d = static_cast<Device*>(self);
    if (fresh && ++d->stored == d->exit_after_blocks) {
      // A power cut right after this block was stored (the demo's and the tests' reboot).
      std::printf("ota: power cut after %u blocks\n", d->stored);
      std::fflush(stdout);
      std::raise(SIGKILL);
    }
  }
  static void on_event(void* self, std::string_view what) {
    std::printf("ota: %.*s\n", static_cast<int>(what.size()), what.data());
    std::fflush(stdout);
    auto* d = static_cast<Device*>(self);
    if (what == "SUCCEEDED") d->outcome = kOk;
    if (what.starts_with("FAILED")) d->outcome = kUpdateFailed;
  }
  static ota::SelfTest self_test_of(void* self) {
    const std::string& t = static_cast<Device*>(self)->self_test;
    if (t == "fail") return ota::SelfTest::Fail;
    if (t == "never") return ota::SelfTest::Pending;
    return ota::SelfTest::Pass;
  }
  // The device resets: what was not made durable is gone (no flush of anything but stdout).
  static void reboot(void*) {
    std::fflush(stdout);
    std::_Exit(kReboot);
  }
  // Between self-test polls while disconnected: a thread's sleep (a device gives its delay).
  static void wait(void*, Duration d) { std::this_thread::sleep_for(d); }
};

int run_ota(OtaRunOptions& o) {
  if (!finish_broker_options("ota run", o.broker, o.version_text)) return kUsage;
  if (o.broker.client_id.empty()) o.broker.client_id = o.thing;
  if (!ota::valid_device_type(o.device_type)) return fail("--device-type: 1-32 of [A-Za-z0-9._-]");
  if (o.format != "json" && o.format != "cbor") return fail("--format: json or cbor");
  if (o.broker.pkcs11_module.empty()) {
    o.broker.pkcs11_module = token::default_module_path(executable_path());
  }

  // The code-signing key: a session object in the device's token, made from the certificate.
  auto module = token::load_module(o.broker.pkcs11_module);
  if (!module) return fail(module.error().message);
  std::optional<std::string> token_label;
  if (!o.broker.token_label.empty()) token_label = o.broker.token_label;
  auto slot = token::select_token(*module, token_label);
  if (!slot) return fail(slot.error().message);
  auto session = token::open_user_session(*module, *slot, std::nullopt, false);
  if (!session) return fail(session.error().message);
  const auto der = certificate_der(o.code_signing_cert);
  if (der.empty()) return fail("cannot read the code-signing certificate " + o.code_signing_cert);
  auto key = ota::import_code_signing_key(*session, der, "ota-code-signing", false);
  if (!key) return fail(std::string("code-signing key: ") + ota::to_string(key.error()));
  ota::Verifier verifier(*session, *key);

  ota::FileDownloadStore store(o.state_dir + "/download");
  ota::FileSlots slots(o.state_dir + "/slots");
  Device device{o.self_test, o.exit_after_blocks};
  ota::AgentConfig config;
  config.thing = o.thing;
  config.device_type = o.device_type;
  config.format = o.format == "json" ? ota::Format::Json : ota::Format::Cbor;
  config.block_size = o.block_size;
  config.request_timeout = Duration{o.timeout_ms};
  config.self_test_timeout = Duration{o.self_test_timeout_ms};
  HttpsFetcher https;
  https.ca_file = o.http_ca_file.empty() ? o.broker.ca_file : o.http_ca_file;
  config.http = &https;
  config.prefer_http = o.protocol == "http";
  const ota::AgentHooks hooks{&Device::self_test_of, &Device::reboot, &Device::on_block,
                              &Device::on_event,     &device,          &Device::wait};
  std::vector<std::uint8_t> request(512), reply(o.block_size * 2 + 512), bitmap(16 * 1024),
      window(16);
  // An HTTP range is whole blocks and must fit `chunk` (Download::next_range asks for at least
  // one): 4 KB, or one block when blocks are larger (else every range is BufferTooSmall).
  std::vector<std::byte> block(o.block_size),
      chunk(std::max<std::size_t>(4096, o.block_size));
  std::vector<char> strings(2048);
  const ota::AgentBuffers buffers{request, reply, block, bitmap, window, chunk, strings};

  jb::FileRecordStore records(o.state_dir + "/job.record");
  // The boot: the bootloader's step (Agent::boot is this), once per process.
  auto booted = slots.boot();
  if (!booted) return fail(std::string("slots: ") + ota::to_string(booted.error()));
  if (auto v = slots.active_version()) {
    std::array<char, 24> text{};
    auto t = ota::format_version(*v, text);
    std::printf("running v%.*s (slot %c)\n", t ? static_cast<int>(t->size()) : 0,
                t ? t->data() : "", booted->active == ota::Slot::A ? 'A' : 'B');
  } else {
    std::printf("running no image (%s)\n", ota::to_string(v.error()));
  }
  std::fflush(stdout);

  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(o.seconds);
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(o.reconnect_seconds);
  bool announced = false;
  for (;;) {
    // The receive buffer (the Maximum Packet Size announced) holds a data message of the
    // largest block asked for (base64 in JSON: 4/3 of it) with its topic and header.
    auto connection = std::make_unique<Connection>(
        mqtt::EventHandler{},
        static_cast<std::uint32_t>(std::max<std::size_t>(64 * 1024, reply.size() + 512)));
    if (!connection->open(o.broker)) {
      if (std::chrono::steady_clock::now() >= give_up) {
        return fail("cannot connect: " + connection->error());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    give_up = std::chrono::steady_clock::now() + std::chrono::seconds(o.reconnect_seconds);
    reqres::ClientChannel channel(connection->client(), connection->clock());
    ota::Agent agent(channel, store, slots, verifier, connection->clock(), config, buffers, hooks);
    const jb::JobHandler table[] = {agent.handler()};
    // The runner's record in --state-dir/job.record: after a reboot it describes the update it
    // ran and resumes the agent, whose own state is in the DownloadStore and the slots.
    CommandRunner command(channel, connection->clock(), o.thing, table, o.timeout_ms, &records);
    jb::Runner& runner = command.runner;
    auto s = runner.start(Duration{o.timeout_ms});
    if (s && o.once && device.outcome >= 0) return device.outcome;
    if (s && o.once && runner.state() == jb::ExecutorState::Idle) {
      std::printf("no pending update for %s\n", o.thing.c_str());
      return kOk;
    }
    if (!announced && s) {
      std::printf("waiting for updates for %s\n", o.thing.c_str());
      std::fflush(stdout);
      announced = true;
    }
    while (s) {
      if (o.seconds > 0 && std::chrono::steady_clock::now() >= end) return kOk;
      s = runner.run_for(Duration{200});
      if (o.once && device.outcome >= 0) return device.outcome;
      if (!s && s.error() != jb::Errc::NotConnected) {
        std::fprintf(stderr, "edgekit ota run: %s (trying again)\n", jb::to_string(s.error()));
        s = {};
      }
      if (s && !connection->client().connected()) break;
    }
    if (o.seconds > 0 && std::chrono::steady_clock::now() >= end) return kOk;
    std::printf("ota: connection lost, reconnecting\n");
    std::fflush(stdout);
  }
}

}  // namespace
}  // namespace cmd_ota_run

void add_ota_run_command(CLI::App& ota, int& exit_code) {
  using namespace cmd_ota_run;
  auto o = std::make_shared<OtaRunOptions>();
  CLI::App* c = ota.add_subcommand(
      "run",
      "connect as the thing and apply its OTA updates (AFR_OTA jobs): download the MQTT stream "
      "into --state-dir, verify with the code-signing certificate in the token, install into the "
      "inactive slot, exit 3 to be restarted (a reboot), self-test, confirm or roll back");
  c->set_help_flag("--help", "print this help and exit");
  add_broker_options(*c, o->broker, o->version_text);
  c->add_option("--thing", o->thing, "the thing name (also the client id unless -i)")->required();
  c->add_option("--state-dir", o->state_dir,
                "the device's storage: download/ (partial image, bitmap) and slots/ (slot-a.img, "
                "slot-b.img, boot.state)")
      ->required();
  c->add_option("--device-type", o->device_type, "this device's type (the image header's)")
      ->required();
  c->add_option("--code-signing-cert", o->code_signing_cert,
                "the code signer's certificate (PEM); its key is put in the token for the check")
      ->required();
  c->add_option("--format", o->format, "the stream's format: cbor or json")->capture_default_str();
  c->add_option("--protocol", o->protocol,
                "mqtt (the stream) or http (ranges of the presigned URL) when the job allows both")
      ->check(CLI::IsMember({"mqtt", "http"}))
      ->capture_default_str();
  c->add_option("--http-cafile", o->http_ca_file,
                "CA certificates to verify the HTTPS download server with (default: --cafile)");
  c->add_option("--block-size", o->block_size, "bytes per block (256-131072)")
      ->check(CLI::Range(256, 131072))
      ->capture_default_str();
  c->add_option("--self-test", o->self_test,
                "the application's self-test after a reboot into a new image: pass, fail, never")
      ->check(CLI::IsMember({"pass", "fail", "never"}))
      ->capture_default_str();
  c->add_option("--self-test-timeout", o->self_test_timeout_ms,
                "milliseconds before an undecided self-test resets the device (rolled back)")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  c->add_option("--exit-after-blocks", o->exit_after_blocks,
                "die (SIGKILL) right after storing this many blocks: a power cut mid-download, "
                "for demos and tests");
  c->add_flag("--once", o->once, "exit after the pending update's outcome (0 SUCCEEDED, 4 FAILED)");
  c->add_option("--for", o->seconds, "wait for updates this many seconds, then exit")
      ->check(CLI::Range(1, 86'400));
  c->add_option("--timeout", o->timeout_ms, "milliseconds to wait for each reply")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  c->add_option("--reconnect-for", o->reconnect_seconds,
                "seconds to keep trying to reconnect before giving up")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  c->callback([o, &exit_code] { exit_code = run_ota(*o); });
}

}  // namespace edgekit::tools
