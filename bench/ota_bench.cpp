// OTA throughput, end to end (issue 15's benchmark; scripts/bench-ota runs it against a real
// fleetd and a real Mosquitto with edgekit's plugin). Not part of the test suite.
//
//   ota_bench --admin URL --admin-token-file FILE --port P --ca FILE --certs DIR --devices N
//             --state-root DIR [--prefix P] [--image-size BYTES] [--fleet-image-size BYTES]
//             [--block-sizes B1,B2,..] [--http-block-sizes B1,..] [--modes json,cbor,http]
//             [--round-limit S] [--fleetd-pid PID] [--broker-pid PID]
//
// The devices are in this process: device i is thing <P>-i (default P "ota"), a mutual-TLS
// identity of its own (DIR/thing-<i>.crt/.key, registered by JITP at its first connect), one
// thread each, running what `edgekit ota run` runs: an `ota::Agent` as the AFR_OTA handler of a
// `jobs::Runner` over the blocking client (tools' Connection, a ClientChannel), its download and
// A/B slots in files (FileDownloadStore, FileSlots under --state-root/<i>), the code-signing key
// in a session of edgekit's token (EDGEKIT_TOKEN_DIR, user PIN in EDGEKIT_TOKEN_PIN). Process
// start-up, TLS connects and JITP happen before the rounds and are not timed.
//
// A round: one OTA update (image 2.0.0 of `image-size` bytes for one device, `fleet-image-size`
// for the fleet; uploaded and signed by fleetd once each) created for D things (1, then all N)
// with the round's block size; each of the D devices starts from a fresh state (1.0.0 in slot A),
// runs start-next, downloads over the round's transport (MQTT stream JSON or CBOR, one GetStream
// per block as the agent does; or HTTP ranges of one block each over one keep-alive HTTPS
// client per device), verifies, installs, "reboots" (the hook returns), boots into 2.0.0, passes its
// self-test and reports SUCCEEDED. A round counts only if every device SUCCEEDED with every
// block stored once.
//
// What is timed, per device: from its first GetStream published (or its first range requested)
// to its last block stored (written and its bitmap saved). A device that has its last block
// waits there until every device of the round has its own, so that no device's verification or
// install falls in another's download: the round's window is from the first device's first
// request to the last device's last block. bytes/s per device = file size / its time; for the
// round = D × file size / the window. CPU (utime + stime) of fleetd, Mosquitto and this process
// (the devices; its idle main thread costs nothing) over the window.
//
// The limit (mode "https-get"): the same file from the same HTTPS endpoint with the same TLS
// settings and client, in one GET of the whole file (200) on a new connection per device:
// the raw transfer rate of those bytes without OTA's blocks. Timed from the request to the
// last byte, handshake included (as a download's first range includes it). And the MQTT
// link's (mode "mqtt-echo"): the file in one QoS 0 PUBLISH to the device's own topic, which it
// is subscribed to, until Mosquitto's copy is back: each byte crosses the device's TLS link to
// Mosquitto twice (up, then down once the broker has all of it), so its bytes/s is about half
// the one-way rate.
//
// One JSON line per round.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "admin_client.hpp"
#include "connection.hpp"
#include "edgekit/jobs/runner.hpp"
#include "edgekit/json/json.hpp"
#include "edgekit/ota/agent.hpp"
#include "edgekit/ota/file_ports.hpp"
#include "edgekit/ota/image.hpp"
#include "edgekit/ota/verifier.hpp"
#include "fleet_bench.hpp"
#include "job_runner.hpp"
#include "token_tools.hpp"

namespace {

using namespace edgekit;
using namespace edgekit::bench;
using Clock = bench::Clock;
using json = nlohmann::json;
namespace fs = std::filesystem;

// --- a round's shared state ---------------------------------------------------------------------

struct Cpu {
  double fleetd = 0, broker = 0, devices = 0;
  static Cpu now(long fleetd_pid, long broker_pid) {
    return {other_cpu_seconds(fleetd_pid), other_cpu_seconds(broker_pid), process_cpu_seconds()};
  }
};

class Round {
 public:
  Round(std::size_t devices, long fleetd, long broker)
      : devices_(devices), fleetd_(fleetd), broker_(broker) {}

  // A device sent its first request: the first one opens the window.
  void started() {
    std::lock_guard lock(mu_);
    if (started_++ == 0) {
      t0_ = Clock::now();
      cpu0_ = Cpu::now(fleetd_, broker_);
    }
  }
  // A device stored its last block (or gave up): waits until every device did (at most
  // `limit_s`); the last one closes the window.
  void finished(double limit_s) {
    std::unique_lock lock(mu_);
    if (++finished_ == devices_) {
      t1_ = Clock::now();
      cpu1_ = Cpu::now(fleetd_, broker_);
      all_.notify_all();
      return;
    }
    all_.wait_for(lock, std::chrono::duration<double>(limit_s),
                  [&] { return finished_ >= devices_; });
  }
  double window_s() const { return seconds_between(t0_, t1_); }
  Cpu cpu() const {
    return {cpu1_.fleetd - cpu0_.fleetd, cpu1_.broker - cpu0_.broker, cpu1_.devices - cpu0_.devices};
  }

 private:
  std::mutex mu_;
  std::condition_variable all_;
  std::size_t devices_, started_ = 0, finished_ = 0;
  long fleetd_, broker_;
  Clock::time_point t0_{}, t1_{};
  Cpu cpu0_{}, cpu1_{};
};

// --- a device ----------------------------------------------------------------------------------

struct Device;

// HTTP ranges over one keep-alive cpp-httplib client (OpenSSL), the server verified against the
// CA; the presigned URL is the credential. (`edgekit ota run` opens a connection per range: a
// host tool; a device keeps its connection.)
struct HttpsFetcher final : ota::RangeFetcher {
  Device* device = nullptr;
  std::string ca_file;
  std::string authority;
  std::unique_ptr<httplib::SSLClient> client;
  std::uint64_t failures = 0;

  bool fetch(std::string_view url, std::uint64_t first, std::span<std::byte> out) override;
};

// Splits "https://host:port/path" into the client for its authority and the path.
bool split_url(std::string_view url, std::string& authority, std::string& host, int& port,
               std::string& path) {
  constexpr std::string_view scheme = "https://";
  if (!url.starts_with(scheme)) return false;
  const std::string_view rest = url.substr(scheme.size());
  const std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return false;
  authority = std::string(rest.substr(0, slash));
  const std::size_t colon = authority.rfind(':');
  host = authority.substr(0, colon);
  port = colon == std::string::npos ? 443 : std::atoi(authority.substr(colon + 1).c_str());
  path = std::string(rest.substr(slash));
  return true;
}

std::unique_ptr<httplib::SSLClient> https_client(const std::string& host, int port,
                                                 const std::string& ca_file) {
  auto c = std::make_unique<httplib::SSLClient>(host, port);
  c->set_ca_cert_path(ca_file.c_str());
  c->enable_server_certificate_verification(true);
  c->set_keep_alive(true);
  c->set_connection_timeout(10);
  c->set_read_timeout(60);
  return c;
}

struct Device {
  std::size_t index = 0;
  std::string thing;
  std::string state;
  tools::BrokerOptions broker;
  std::unique_ptr<tools::Connection> connection;
  std::uint32_t max_packet = 0;
  pkcs11::Session session;
  CK_OBJECT_HANDLE signer = 0;
  jobs::RamRecordSlot record_slot{};
  jobs::RamRecordStore records{record_slot};
  HttpsFetcher http;

  // The round in progress.
  Round* round = nullptr;
  double limit_s = 600;
  std::uint32_t blocks = 0;  // of the file
  std::uint32_t stored = 0, duplicates = 0;
  bool started = false, done = false, rebooted = false;
  int outcome = -1;  // 0 SUCCEEDED, 1 FAILED
  std::string failure;
  Clock::time_point t_start{}, t_end{};

  explicit Device(pkcs11::Session s) : session(std::move(s)) { http.device = this; }

  void mark_start() {
    if (started) return;
    started = true;
    t_start = Clock::now();
    round->started();
  }
  // Counts this device as finished in its round (once).
  void mark_done() {
    if (done) return;
    done = true;
    round->finished(limit_s);
  }

  static void on_block(void* self, std::uint32_t, bool fresh) {
    auto* d = static_cast<Device*>(self);
    if (!fresh) {
      ++d->duplicates;
      return;
    }
    if (++d->stored == d->blocks) {
      d->t_end = Clock::now();
      // Done with the server: a connection left open would hold one of its worker threads
      // until its keep-alive timeout (5 s) while the others wait.
      d->http.client.reset();
      d->mark_done();
    }
  }
  static void on_event(void* self, std::string_view what) {
    auto* d = static_cast<Device*>(self);
    if (what == "SUCCEEDED") d->outcome = 0;
    if (what.starts_with("FAILED")) {
      d->outcome = 1;
      d->failure = std::string(what);
    }
  }
  static void reboot(void* self) { static_cast<Device*>(self)->rebooted = true; }

  // The agent's handler, and whether it returned without an outcome or a reboot: the agent
  // stopped ("continue later": no reply after its attempts, a cut), which a round counts as a
  // failure at once rather than waiting out its limit.
  jobs::JobHandler agent_handler{};
  bool stopped = false;
  static void run_agent(void* self, jobs::Runner& runner, const jobs::Job& job) {
    auto* d = static_cast<Device*>(self);
    d->agent_handler.run(d->agent_handler.context, runner, job);
    if (d->outcome < 0 && !d->rebooted) d->stopped = true;
  }

  bool connect() {
    if (connection && connection->client().connected()) return true;
    const auto end = Clock::now() + std::chrono::seconds(60);
    for (;;) {
      connection = std::make_unique<tools::Connection>(mqtt::EventHandler{}, max_packet);
      if (connection->open(broker)) return true;
      if (Clock::now() > end) {
        failure = "connect: " + connection->error();
        connection.reset();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
};

bool HttpsFetcher::fetch(std::string_view url, std::uint64_t first, std::span<std::byte> out) {
  device->mark_start();
  std::string auth, host, path;
  int port = 0;
  if (out.empty() || !split_url(url, auth, host, port, path)) return false;
  if (!client || auth != authority) {
    client = https_client(host, port, ca_file);
    authority = auth;
  }
  const std::string range =
      "bytes=" + std::to_string(first) + "-" + std::to_string(first + out.size() - 1);
  auto r = client->Get(path, {{"Range", range}});
  if (!r || r->status != 206 || r->body.size() != out.size()) {
    ++failures;
    return false;
  }
  std::memcpy(out.data(), r->body.data(), out.size());
  return true;
}

// The runner's channel, timing the device's first GetStream.
class TimingChannel final : public reqres::Channel {
 public:
  TimingChannel(reqres::Channel& inner, Device& device) : inner_(inner), device_(device) {}
  void set_message_handler(reqres::MessageHandler h) noexcept override {
    inner_.set_message_handler(h);
  }
  Result<void, reqres::Errc> subscribe(std::span<const std::string_view> f,
                                       Duration t) noexcept override {
    return inner_.subscribe(f, t);
  }
  void unsubscribe(std::span<const std::string_view> f, Duration t) noexcept override {
    inner_.unsubscribe(f, t);
  }
  Result<reqres::Reply, reqres::Errc> request(std::string_view topic,
                                              std::span<const std::uint8_t> payload,
                                              reqres::Matcher m, std::span<std::uint8_t> reply,
                                              Duration t) noexcept override {
    if (!device_.started && topic.find("/streams/") != std::string_view::npos &&
        topic.find("/get/") != std::string_view::npos) {
      device_.mark_start();
    }
    return inner_.request(topic, payload, m, reply, t);
  }
  Result<void, reqres::Errc> poll(Duration t) noexcept override { return inner_.poll(t); }

 private:
  reqres::Channel& inner_;
  Device& device_;
};

struct RoundSpec {
  std::string mode;  // json, cbor, http, https-get
  std::uint32_t block_size = 0;
  std::size_t devices = 0;
  std::string image;  // the image's name
  std::string update_id;
  std::string url;  // the presigned URL (https-get)
  std::uint64_t file_size = 0;
};

// The factory image every round starts from: 1.0.0 in slot A.
std::string make_image(int major, std::uint32_t payload_size, std::uint32_t seed) {
  std::string bytes(ota::kImageHeaderSize + payload_size, '\0');
  ota::ImageHeader h;
  h.version = {static_cast<std::uint8_t>(major), 0, 0};
  h.device_type = "bench";
  h.payload_size = payload_size;
  (void)ota::write_image_header(
      h, std::span(reinterpret_cast<std::byte*>(bytes.data()), ota::kImageHeaderSize));
  std::mt19937 random(seed);  // incompressible bytes (TLS does not compress; nothing else should)
  for (std::size_t i = ota::kImageHeaderSize; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>(random() & 0xff);
  }
  return bytes;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// One device's part of an OTA round: fresh state, download, install, reboot, self-test,
// SUCCEEDED. False (with `failure`) when it did not get there.
bool run_update(Device& d, const RoundSpec& spec, const std::string& factory) {
  // A new device: 1.0.0 in slot A, nothing downloaded, no job record (the RAM the runner's
  // record lives in survives only the round's own reboot).
  fs::remove_all(d.state);
  write_bytes(fs::path(d.state) / "slots" / "slot-a.img", factory);
  d.record_slot = {};
  if (!d.connect()) return false;
  ota::FileDownloadStore store(d.state + "/download");
  ota::FileSlots slots(d.state + "/slots");
  ota::Verifier verifier(d.session, d.signer);
  ota::AgentConfig config;
  config.thing = d.thing;
  config.device_type = "bench";
  config.format = spec.mode == "json" ? ota::Format::Json : ota::Format::Cbor;
  config.block_size = spec.block_size;
  config.request_timeout = Duration{10000};
  config.http = &d.http;
  config.prefer_http = spec.mode == "http";
  const ota::AgentHooks hooks{nullptr, &Device::reboot, &Device::on_block, &Device::on_event, &d};
  std::vector<std::uint8_t> request(512), reply(spec.block_size * 2 + 512), bitmap(16 * 1024),
      window(16);
  // `chunk` bounds an HTTP range (whole blocks, at least one: Download::next_range) and is the
  // unit of the copy into the slot. Over HTTP it is the block, so that each range is one block
  // and the block size is the request size, as over MQTT; a device whose chunk holds k blocks
  // asks for k at a time (the row of the block size k × block).
  std::vector<std::byte> block(spec.block_size),
      chunk(spec.mode == "http" ? spec.block_size : std::max<std::uint32_t>(4096, spec.block_size));
  std::vector<char> strings(2048);
  const ota::AgentBuffers buffers{request, reply, block, bitmap, window, chunk, strings};
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(d.limit_s));
  // Two boots: the one that downloads and installs, and the one into the new image.
  for (int boot = 0; boot < 2 && d.outcome < 0; ++boot) {
    if (auto b = slots.boot(); !b) {
      d.failure = std::string("slots: ") + ota::to_string(b.error());
      return false;
    }
    if (!d.connect()) return false;
    reqres::ClientChannel client(d.connection->client(), d.connection->clock());
    TimingChannel channel(client, d);
    ota::Agent agent(channel, store, slots, verifier, d.connection->clock(), config, buffers, hooks);
    d.agent_handler = agent.handler();
    d.stopped = false;
    const jobs::JobHandler table[] = {
        {d.agent_handler.operation, d.agent_handler.on_reboot, &Device::run_agent, &d}};
    tools::CommandRunner command(channel, d.connection->clock(), d.thing, table, 10000, &d.records);
    d.rebooted = false;
    auto s = command.runner.start(Duration{10000});
    while (d.outcome < 0 && !d.rebooted && !d.stopped && Clock::now() < end) {
      if (!s && s.error() == jobs::Errc::NotConnected) break;
      s = command.runner.run_for(Duration{100});
    }
    if (!d.rebooted) break;
  }
  if (d.outcome != 0) {
    if (d.failure.empty()) {
      d.failure = d.stopped    ? "the agent stopped without an outcome (no reply to a request)"
                  : d.outcome < 0 ? "no outcome before the round's limit"
                                  : "FAILED";
    }
    return false;
  }
  return true;
}

// The limit: one GET of the whole file on a new connection.
bool run_get(Device& d, const RoundSpec& spec) {
  std::string auth, host, path;
  int port = 0;
  if (!split_url(spec.url, auth, host, port, path)) {
    d.failure = "bad URL " + spec.url;
    return false;
  }
  auto client = https_client(host, port, d.http.ca_file);
  d.mark_start();
  auto r = client->Get(path);
  d.t_end = Clock::now();
  client.reset();  // as above: not holding a server thread while the others download
  d.stored = 1;
  d.mark_done();
  if (!r || r->status != 200 || r->body.size() != spec.file_size) {
    d.failure = r ? "GET: " + std::to_string(r->status) + ", " + std::to_string(r->body.size()) +
                        " bytes"
                  : "GET: " + httplib::to_string(r.error());
    return false;
  }
  return true;
}

// The MQTT link's limit: the file in one QoS 0 PUBLISH to the device's own topic <thing>/raw,
// which it is subscribed to, until the broker's copy has arrived back (each byte crosses the
// device's TLS link twice: up, then down after Mosquitto received all of it).
std::uint8_t match_raw(void* topic, const reqres::Message& m) noexcept {
  return m.topic == *static_cast<const std::string*>(topic) ? 1 : 0;
}

bool run_echo(Device& d, const RoundSpec& spec, const std::string& file) {
  if (!d.connect()) return false;
  reqres::ClientChannel channel(d.connection->client(), d.connection->clock());
  const std::string topic = d.thing + "/raw";
  const std::string_view filter = topic;
  if (auto s = channel.subscribe(std::span(&filter, 1), Duration{10000}); !s) {
    d.failure = "subscribe " + topic;
    return false;
  }
  std::vector<std::uint8_t> reply(file.size() + 1);
  d.mark_start();
  auto r = channel.request(topic,
                           std::span(reinterpret_cast<const std::uint8_t*>(file.data()), file.size()),
                           reqres::Matcher{&match_raw, const_cast<std::string*>(&topic)}, reply,
                           Duration{120000});
  d.t_end = Clock::now();
  d.stored = 1;
  d.mark_done();
  channel.unsubscribe(std::span(&filter, 1), Duration{10000});
  if (!r || r->size != spec.file_size ||
      std::memcmp(reply.data(), file.data(), file.size()) != 0) {
    d.failure = r ? "echo: " + std::to_string(r->size) + " bytes, not the file" : "echo: no copy back";
    return false;
  }
  return true;
}

std::vector<std::uint32_t> parse_sizes(const std::string& s) {
  std::vector<std::uint32_t> r;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) r.push_back(static_cast<std::uint32_t>(std::stoul(part)));
  }
  return r;
}

std::vector<std::string> parse_words(const std::string& s) {
  std::vector<std::string> r;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) r.push_back(part);
  }
  return r;
}

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::vector<std::uint8_t> pem_to_der(const std::string& pem) {
  std::vector<std::uint8_t> der;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = bio ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr;
  if (cert != nullptr) {
    const int n = i2d_X509(cert, nullptr);
    if (n > 0) {
      der.resize(static_cast<std::size_t>(n));
      unsigned char* p = der.data();
      i2d_X509(cert, &p);
    }
    X509_free(cert);
  }
  BIO_free(bio);
  return der;
}

int run(const Args& a) {
  const std::string url = a.get("admin");
  const std::string token = read_word(a.get("admin-token-file"));
  const auto n = static_cast<std::size_t>(a.number("devices", 100));
  const auto image_size = static_cast<std::uint32_t>(a.number("image-size", 4 << 20));
  const auto fleet_image_size = static_cast<std::uint32_t>(a.number("fleet-image-size", 1 << 20));
  const auto block_sizes = parse_sizes(a.get("block-sizes", "256,1024,4096"));
  const auto http_sizes = parse_sizes(a.get("http-block-sizes", "256,1024,4096,16384,65536,131072"));
  const auto modes = parse_words(a.get("modes", "json,cbor,http"));
  const double limit_s = static_cast<double>(a.number("round-limit", 600));
  const long fleetd = a.number("fleetd-pid", 0), broker = a.number("broker-pid", 0);
  const std::string prefix = a.get("prefix", "ota");
  Admin admin(url, token);
  std::string failure;

  // The two images (one device's, the fleet's), uploaded and signed by fleetd.
  std::string signer_pem;
  std::map<std::string, std::string> file_of;  // image name → its bytes
  const auto upload = [&](const std::string& name, std::uint32_t size) {
    const std::string& bytes = file_of[name] =
        make_image(2, size - static_cast<std::uint32_t>(ota::kImageHeaderSize), size);
    if (!admin.ok("POST", "/admin/v1/ota/images",
                  json{{"name", name}, {"version", "2.0.0"}, {"image", base64(bytes)}}.dump(),
                  failure)) {
      return false;
    }
    auto [status, body] = admin.call("POST", "/admin/v1/ota/images/" + name + "/2.0.0/sign");
    if (status != 200) {
      failure = "sign: " + std::to_string(status) + " " + body;
      return false;
    }
    signer_pem = json::parse(body, nullptr, false).value("certificate", "");
    return true;
  };
  if (!upload("one", image_size) || !upload("fleet", fleet_image_size)) {
    std::fprintf(stderr, "ota_bench: %s\n", failure.c_str());
    return 1;
  }
  const auto signer_der = pem_to_der(signer_pem);
  const std::string factory = make_image(1, 3000, 1);

  // The token: one session per device, each with the code-signing key as a session object.
  auto module = tools::token::load_module(EDGEKIT_TOKEN_MODULE);
  if (!module) {
    std::fprintf(stderr, "ota_bench: %s\n", module.error().message.c_str());
    return 1;
  }
  auto slot = tools::token::select_token(*module, std::nullopt);
  const char* pin = std::getenv("EDGEKIT_TOKEN_PIN");
  if (!slot || pin == nullptr) {
    std::fprintf(stderr, "ota_bench: no token (EDGEKIT_TOKEN_DIR, EDGEKIT_TOKEN_PIN)\n");
    return 1;
  }
  std::vector<std::unique_ptr<Device>> devices;
  const std::uint32_t largest = std::max(
      block_sizes.empty() ? 0U : *std::max_element(block_sizes.begin(), block_sizes.end()), 4096U);
  for (std::size_t i = 0; i < n; ++i) {
    auto s = tools::token::open_user_session(*module, *slot, std::string_view(pin), false);
    if (!s) {
      std::fprintf(stderr, "ota_bench: token session: %s\n", s.error().message.c_str());
      return 1;
    }
    auto d = std::make_unique<Device>(std::move(*s));
    auto key = ota::import_code_signing_key(d->session, signer_der, "ota-bench-signer", false);
    if (!key) {
      std::fprintf(stderr, "ota_bench: code-signing key: %s\n", ota::to_string(key.error()));
      return 1;
    }
    d->signer = *key;
    d->index = i;
    d->thing = prefix + "-" + std::to_string(i);
    d->state = a.get("state-root") + "/" + std::to_string(i);
    d->broker.host = "127.0.0.1";
    d->broker.port = static_cast<std::uint16_t>(a.number("port", 0));
    d->broker.client_id = d->thing;
    d->broker.keep_alive = 0;  // idle between rounds, waiting in a hook during one
    d->broker.ca_file = a.get("ca");
    d->broker.cert_file = a.get("certs") + "/thing-" + std::to_string(i) + ".crt";
    d->broker.key_file = a.get("certs") + "/thing-" + std::to_string(i) + ".key";
    // Room for a data message of the largest block, and for the whole file (mqtt-echo).
    d->max_packet = std::max({64U * 1024, 2 * largest + 4096, image_size + 4096,
                              fleet_image_size + 4096});
    d->http.ca_file = a.get("ca");
    d->limit_s = limit_s;
    devices.push_back(std::move(d));
  }

  // Every device connects once (a JITP registration each): not timed.
  {
    const auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (auto& d : devices) threads.emplace_back([&d] { (void)d->connect(); });
    for (auto& t : threads) t.join();
    std::size_t connected = 0;
    for (auto& d : devices) connected += d->connection ? 1 : 0;
    std::printf("{\"mode\":\"connect\",\"devices\":%zu,\"connected\":%zu,\"seconds\":%.2f}\n", n,
                connected, seconds_between(t0, Clock::now()));
    std::fflush(stdout);
    if (connected != n) {
      for (auto& d : devices) {
        if (!d->connection) std::fprintf(stderr, "ota_bench: %s: %s\n", d->thing.c_str(), d->failure.c_str());
      }
      return 1;
    }
  }

  std::vector<RoundSpec> rounds;
  std::map<std::string, std::string> url_of;  // image name → presigned URL
  for (const auto& mode : modes) {
    for (auto bs : mode == "http" ? http_sizes : block_sizes) {
      for (std::size_t count : {std::size_t{1}, n}) {
        RoundSpec r;
        r.mode = mode;
        r.block_size = bs;
        r.devices = count;
        r.image = count == 1 ? "one" : "fleet";
        r.file_size = count == 1 ? image_size : fleet_image_size;
        rounds.push_back(r);
        if (n == 1) break;
      }
    }
  }
  for (const char* limit : {"https-get", "mqtt-echo"}) {  // the limits, last
    for (std::size_t count : {std::size_t{1}, n}) {
      RoundSpec r;
      r.mode = limit;
      r.devices = count;
      r.image = count == 1 ? "one" : "fleet";
      r.file_size = count == 1 ? image_size : fleet_image_size;
      rounds.push_back(r);
      if (n == 1) break;
    }
  }

  bool all_ok = true;
  std::size_t k = 0;
  for (RoundSpec& spec : rounds) {
    ++k;
    const bool update = spec.mode != "https-get" && spec.mode != "mqtt-echo";
    if (update) {
      spec.update_id = "r" + std::to_string(k) + "-" + spec.mode + "-" + std::to_string(spec.block_size) +
                       "-" + std::to_string(spec.devices);
      json things = json::array();
      for (std::size_t i = 0; i < spec.devices; ++i) things.push_back(devices[i]->thing);
      auto [status, body] = admin.call(
          "POST", "/admin/v1/ota/updates",
          json{{"otaUpdateId", spec.update_id},
               {"imageName", spec.image},
               {"imageVersion", "2.0.0"},
               {"protocols", {"MQTT", "HTTP"}},
               {"blockSize", spec.block_size},
               {"targets", {{"things", things}}}}
              .dump());
      if (status != 201) {
        std::fprintf(stderr, "ota_bench: create update: %d %s\n", status, body.c_str());
        return 1;
      }
      const json doc = json::parse(body, nullptr, false);
      url_of[spec.image] = doc["document"]["afr_ota"]["files"][0].value("update_data_url", "");
    } else if (spec.mode == "https-get") {
      spec.url = url_of[spec.image];
      if (spec.url.empty()) {
        std::fprintf(stderr, "ota_bench: https-get skipped: no update of image '%s' was created\n",
                     spec.image.c_str());
        continue;
      }
    }
    Round round(spec.devices, fleetd, broker);
    const std::string load = load_average();
    const std::uint32_t blocks =
        spec.block_size == 0 ? 1 : static_cast<std::uint32_t>((spec.file_size + spec.block_size - 1) / spec.block_size);
    std::vector<std::thread> threads;
    std::vector<char> ok(spec.devices, 0);
    for (std::size_t i = 0; i < spec.devices; ++i) {
      Device& d = *devices[i];
      d.round = &round;
      d.blocks = blocks;
      d.stored = d.duplicates = 0;
      d.started = d.done = d.rebooted = false;
      d.outcome = -1;
      d.failure.clear();
      d.http.failures = 0;
      threads.emplace_back([&, i] {
        Device& dev = *devices[i];
        ok[i] = spec.mode == "https-get"   ? run_get(dev, spec)
                : spec.mode == "mqtt-echo" ? run_echo(dev, spec, file_of[spec.image])
                                           : run_update(dev, spec, factory);
        if (!dev.started) dev.mark_start();  // a device that never started still ends the round
        dev.mark_done();
      });
    }
    for (auto& t : threads) t.join();
    // Figures.
    std::vector<double> rates;
    std::size_t succeeded = 0;
    std::uint64_t duplicates = 0, http_failures = 0;
    std::string first_failure;
    for (std::size_t i = 0; i < spec.devices; ++i) {
      const Device& d = *devices[i];
      duplicates += d.duplicates;
      http_failures += d.http.failures;
      if (ok[i] && d.stored == blocks) {
        ++succeeded;
        rates.push_back(static_cast<double>(spec.file_size) / seconds_between(d.t_start, d.t_end));
      } else if (first_failure.empty()) {
        first_failure = d.thing + ": " + (d.failure.empty() ? "blocks missing" : d.failure);
      }
    }
    const double window = round.window_s();
    const Cpu cpu = round.cpu();
    const double bytes = static_cast<double>(spec.file_size) * static_cast<double>(spec.devices);
    const double mb = bytes / 1e6;
    std::printf(
        "{\"mode\":\"%s\",\"block_size\":%u,\"devices\":%zu,\"file_size\":%llu,\"blocks\":%u,"
        "\"succeeded\":%zu,\"duplicates\":%llu,\"http_failures\":%llu,\"window_s\":%.3f,"
        "\"bytes_per_s\":%.0f,\"device_bytes_per_s\":{\"min\":%.0f,\"p50\":%.0f,\"max\":%.0f},"
        "\"cpu_s\":{\"fleetd\":%.3f,\"broker\":%.3f,\"devices\":%.3f},"
        "\"cpu_ms_per_mb\":{\"fleetd\":%.2f,\"broker\":%.2f,\"devices\":%.2f},"
        "\"load_before\":\"%s\",\"first_failure\":\"",
        spec.mode.c_str(), spec.block_size, spec.devices,
        static_cast<unsigned long long>(spec.file_size), blocks, succeeded,
        static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(http_failures),
        window, bytes / window, percentile(rates, 0), percentile(rates, 50), percentile(rates, 100),
        cpu.fleetd, cpu.broker, cpu.devices, cpu.fleetd * 1e3 / mb, cpu.broker * 1e3 / mb,
        cpu.devices * 1e3 / mb, load.c_str());
    print_json_text(first_failure);
    std::printf("\"}\n");
    std::fflush(stdout);
    if (succeeded != spec.devices || duplicates != 0) {
      all_ok = false;
      // Executions left IN_PROGRESS would be what start-next gives these devices next round.
      if (update) {
        (void)admin.call("POST", "/admin/v1/jobs/AFR_OTA-" + spec.update_id + "/cancel",
                         json{{"force", true}}.dump());
      }
    }
  }
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // cpp-httplib writes a TLS close_notify on a keep-alive connection the server already closed
  // (fleetd's HTTPS server ends one after 5 requests): an EPIPE to handle, not a signal to die of.
  std::signal(SIGPIPE, SIG_IGN);
  auto a = parse_args("ota_bench", argc, argv, 1);
  if (!a) return 2;
  return run(*a);
}
