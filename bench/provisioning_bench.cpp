// Provisioning at scale, end to end (issue 13's benchmark; scripts/bench-provisioning runs it
// against a real fleetd and a real Mosquitto with edgekit's plugin). Not part of the test suite.
// Many devices at once on one standalone-Asio thread (edgekit::mqtt_asio), each over mutual TLS.
//
//   provisioning_bench claim  --port P --ca FILE --claim-cert FILE --claim-key FILE
//                             --template NAME --module FILE --count N --in-flight K
//                             [--run TAG] [--fleetd-pid PID] [--broker-pid PID] [--work DIR]
//       Fleet provisioning by claim, the CSR flow, per device: claim connection (mutual TLS with
//       the claim certificate, MQTT 5), SUBSCRIBE to the accepted/rejected replies, a P-256 key
//       pair generated in the PKCS#11 token (edgekit's module, a session of its own per device:
//       session objects, gone with the session when the device is done), a CSR signed in the
//       token, CreateCertificateFromCsr, the certificate stored in the token, RegisterThing with
//       the parameter SerialNumber, DISCONNECT; then a new mutual-TLS connection as the thing
//       whose key signs in the token, one QoS 1 PUBLISH to `<thing>/hello` and its PUBACK as the
//       proof. K devices in flight; a device that finishes frees its place for the next.
//   provisioning_bench jitp   --port P --ca FILE --certs DIR --count N --in-flight K
//                             [--fleetd-pid PID] [--broker-pid PID]
//       Just-in-time provisioning: devices DIR/jitp-<i>.crt/.key (CN jitp-<run>-<i>, issued by a
//       registered CA with a JITP template) connect for the first time as their CN and publish one
//       QoS 1 message to `<CN>/hello`. Latency of the first CONNACK and of the PUBACK.
//   provisioning_bench limits --module FILE [--rounds N]
//       The physical limit, measured in the same run: the CPU time of each piece of cryptography
//       one device's provisioning needs (P-256 key generation and ECDSA signature in the token, a
//       CSR's signature check, a full mutual-TLS 1.3 handshake with both sides in this thread over
//       memory BIOs) and what they add up to per device.
//
// Each mode prints one JSON line. CPU of the other processes: utime + stime from
// /proc/<pid>/stat before and after the measured phase.

#include <edgekit/pkcs11/client.hpp>
#include <edgekit/pki/csr.hpp>
#include <edgekit/pki/certificate.hpp>
#include <edgekit/pki/keys.hpp>
#include <edgekit/pki/name.hpp>
#include <edgekit/pki/token.hpp>
#include <edgekit/provisioning/documents.hpp>
#include <edgekit/provisioning/topics.hpp>
#include <edgekit/testing/test_pki.hpp>
#include <edgekit/tls/tls.hpp>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "edgekit/mqtt_asio/connection.hpp"
#include "fleet_bench.hpp"

namespace {

using namespace edgekit;
using namespace edgekit::bench;
using Clock = bench::Clock;  // not edgekit::Clock (the engines' clock)
namespace fs = std::filesystem;

constexpr const char* kTokenLabel = "provisioning-bench";
constexpr const char* kPin = "bench-pin-1234";

// --- the token -------------------------------------------------------------------------------

// Initialises the first slot of `module` (token directory from EDGEKIT_TOKEN_DIR) and logs the
// user in once for the process (PKCS#11 login state is per application: every later session,
// the TLS contexts' included, is logged in).
struct Token {
  std::optional<pkcs11::Module> module;
  std::optional<pkcs11::Session> login;  // kept open: keeps the user logged in
  CK_SLOT_ID slot = 0;
  std::string error;

  explicit Token(const std::string& path) {
    auto m = pkcs11::Module::load(path);
    if (!m) {
      error = m.error().message();
      return;
    }
    module.emplace(std::move(*m));
    auto slots = module->slots(false);
    if (!slots || slots->empty()) {
      error = "no slot";
      return;
    }
    if (auto r = module->init_token((*slots)[0], "bench-so-pin", kTokenLabel); !r) {
      error = r.error().message();
      return;
    }
    auto s = module->find_token(kTokenLabel);
    if (!s) {
      error = s.error().message();
      return;
    }
    slot = *s;
    {
      auto so = module->open_session(slot, true);
      if (!so || !so->login(pkcs11::UserType::SecurityOfficer, "bench-so-pin") ||
          !so->init_pin(kPin)) {
        error = "token: SO login or C_InitPIN failed";
        return;
      }
    }
    auto u = module->open_session(slot, true);
    if (!u || !u->login(pkcs11::UserType::User, kPin)) {
      error = "token: user login failed";
      return;
    }
    login.emplace(std::move(*u));
  }
};

// A P-256 key pair generated in the token as session objects (they die with `session`), with
// the attributes of pki::generate_token_key: the private key sensitive, not extractable, sign
// only.
pkcs11::Result<pkcs11::KeyPair> generate_session_key(pkcs11::Session& session,
                                                     const std::string& label) {
  static const std::uint8_t kP256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  auto* label_ptr = const_cast<char*>(label.data());
  std::uint8_t id[] = {0x01};
  std::vector<CK_ATTRIBUTE> pub{
      {CKA_TOKEN, &no, 1},        {CKA_PRIVATE, &no, 1},
      {CKA_VERIFY, &yes, 1},      {CKA_LABEL, label_ptr, label.size()},
      {CKA_ID, id, sizeof id},    {CKA_EC_PARAMS, const_cast<std::uint8_t*>(kP256), sizeof kP256},
  };
  std::vector<CK_ATTRIBUTE> priv{
      {CKA_TOKEN, &no, 1},       {CKA_PRIVATE, &yes, 1},
      {CKA_SIGN, &yes, 1},       {CKA_SENSITIVE, &yes, 1},
      {CKA_EXTRACTABLE, &no, 1}, {CKA_LABEL, label_ptr, label.size()},
      {CKA_ID, id, sizeof id},
  };
  CK_MECHANISM mech{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  pkcs11::KeyPair kp;
  const CK_RV rv = session.functions().C_GenerateKeyPair(
      session.handle(), &mech, pub.data(), static_cast<CK_ULONG>(pub.size()), priv.data(),
      static_cast<CK_ULONG>(priv.size()), &kp.public_key, &kp.private_key);
  if (rv != CKR_OK) {
    pkcs11::Error e;
    e.cause = pkcs11::Cause::Module;
    e.function = "C_GenerateKeyPair";
    e.rv = rv;
    return fail(e);
  }
  return kp;
}

// --- claim -----------------------------------------------------------------------------------

struct Timing {
  double total_ms = 0;        // claim connect started .. proof PUBACK
  double claim_connect_ms = 0;  // start .. CONNACK (TCP, TLS, plugin's decision)
  double keygen_csr_ms = 0;     // key pair + CSR in the token (device CPU)
  double csr_reply_ms = 0;      // CreateCertificateFromCsr published .. accepted
  double register_reply_ms = 0;  // RegisterThing published .. accepted
  double reconnect_ms = 0;      // new connection started .. CONNACK
  double proof_ms = 0;          // PUBLISH .. PUBACK
};

using Link = bench::Link<>;

class ClaimRun;

// One place for a device in flight; runs devices one after another.
class Slot final : public mqtt_asio::Handler {
 public:
  Slot(ClaimRun& run, mqtt_asio::Driver& driver);
  void begin(std::size_t index);
  void on_event(mqtt_asio::Connection& c, const mqtt::Event& e) override;
  void on_closed(mqtt_asio::Connection& c, std::error_code ec) override;

 private:
  enum class Phase : std::uint8_t { Idle, Claim, Registered, Device, Done };
  void fail(const std::string& why);
  void claim_subscribed();
  void on_message(const mqtt::Publish& m);
  void start_device();
  void finish();

  ClaimRun& run_;
  Link claim_;
  Link device_;
  Phase phase_ = Phase::Idle;
  std::size_t index_ = 0;
  std::string client_id_;
  std::string label_;
  std::string thing_;
  std::string payload_;  // the request in flight (its view must live until written)
  std::string proof_topic_;
  std::optional<pkcs11::Session> session_;  // the device's token session (its objects)
  std::optional<tls::TlsContext> device_tls_;
  std::array<char, provisioning::kMaxTopicLength> topics_[4]{};
  std::vector<char> scratch_ = std::vector<char>(8192);
  Clock::time_point t0_, t_mark_;
  Timing timing_;
};

class ClaimRun {
 public:
  ClaimRun(asio::io_context& io, Token& token, const Args& a, const tls::TlsContext& claim_tls)
      : io_(io),
        driver_(io),
        token_(token),
        claim_tls_(claim_tls),
        endpoint_({asio::ip::make_address_v4("127.0.0.1"),
                   static_cast<std::uint16_t>(a.number("port", 0))},
                  &claim_tls, "localhost"),
        template_(a.get("template", "fleet")),
        run_tag_(a.get("run", "b")),
        ca_file_(a.get("ca")),
        module_(a.get("module")),
        work_(a.get("work", "/tmp")),
        count_(static_cast<std::size_t>(a.number("count", 100))) {
    const auto k = static_cast<std::size_t>(a.number("in-flight", 64));
    for (std::size_t i = 0; i < k; ++i) slots_.push_back(std::make_unique<Slot>(*this, driver_));
  }

  void start() {
    for (auto& s : slots_) next(*s);
  }
  // Gives `slot` the next device, if any.
  void next(Slot& slot) {
    if (next_ < count_) slot.begin(next_++);
  }
  void done(const Timing& t) {
    timings_.push_back(t);
    finished_at_.push_back(Clock::now());
  }
  void failed(std::string why) {
    ++failures_;
    if (first_failure_.empty()) first_failure_ = std::move(why);
  }
  bool complete() const { return timings_.size() + failures_ >= count_; }

  asio::io_context& io_;
  mqtt_asio::Driver driver_;
  Token& token_;
  const tls::TlsContext& claim_tls_;
  mqtt_asio::Endpoint endpoint_;
  std::string template_;
  std::string run_tag_;
  std::string ca_file_;
  std::string module_;
  std::string work_;
  std::size_t count_;
  std::size_t next_ = 0;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Timing> timings_;
  std::vector<Clock::time_point> finished_at_;
  std::size_t failures_ = 0;
  std::string first_failure_;
  double device_cpu_s_ = 0;  // keygen + CSR + certificate store in the token (this thread)
};

Slot::Slot(ClaimRun& run, mqtt_asio::Driver& driver)
    : run_(run), claim_(driver, *this), device_(driver, *this) {
  using provisioning::Api;
  using provisioning::Format;
  using provisioning::TopicKind;
  // The buffers hold any topic; only a template name AWS would refuse fails here, and a bench
  // that went on with an empty topic would wait for replies that never come.
  const auto make = [&](Api api, TopicKind kind, std::size_t i, std::string_view tmpl) {
    auto t = provisioning::topic(api, Format::Json, kind, topics_[i], tmpl);
    if (!t) {
      std::fprintf(stderr, "provisioning_bench: no topic for template \"%.*s\"\n",
                   static_cast<int>(run_.template_.size()), run_.template_.data());
      std::exit(2);
    }
  };
  make(Api::CreateCertificateFromCsr, TopicKind::Accepted, 0, {});
  make(Api::CreateCertificateFromCsr, TopicKind::Rejected, 1, {});
  make(Api::RegisterThing, TopicKind::Accepted, 2, run_.template_);
  make(Api::RegisterThing, TopicKind::Rejected, 3, run_.template_);
}

void Slot::begin(std::size_t index) {
  index_ = index;
  phase_ = Phase::Claim;
  timing_ = {};
  client_id_ = "claim-" + run_.run_tag_ + "-" + std::to_string(index);
  label_ = "device-" + std::to_string(index);
  thing_.clear();
  t0_ = Clock::now();
  mqtt::ConnectOptions o;
  o.version = mqtt::Version::V5;
  o.client_id = client_id_;
  o.keep_alive_seconds = 120;
  if (auto r = claim_.conn.start(run_.endpoint_, o, Duration{60000}); !r) {
    fail(std::string("claim start: ") + mqtt::to_string(r.error()));
  }
}

void Slot::fail(const std::string& why) {
  if (phase_ == Phase::Done || phase_ == Phase::Idle) return;
  phase_ = Phase::Done;
  run_.failed("device " + std::to_string(index_) + ": " + why);
  claim_.conn.stop();
  device_.conn.stop();
  // The next device starts from on_closed of whichever connection was open; if none was,
  // start it now.
  if (!claim_.conn.active() && !device_.conn.active()) finish();
}

void Slot::finish() {
  session_.reset();  // the device's key pair and certificate (session objects) go with it
  device_tls_.reset();
  phase_ = Phase::Idle;
  run_.next(*this);
}

void Slot::claim_subscribed() {
  // The device's key pair and CSR, in the token.
  const double c0 = thread_cpu_seconds();
  const auto t = Clock::now();
  auto s = run_.token_.module->open_session(run_.token_.slot, true);
  if (!s) return fail("C_OpenSession: " + s.error().message());
  session_.emplace(std::move(*s));
  auto kp = generate_session_key(*session_, label_);
  if (!kp) return fail(kp.error().message());
  auto signer = pki::TokenSigner::create(*session_, kp->private_key);
  if (!signer) return fail("TokenSigner: " + signer.error().message);
  auto subject = pki::Name::parse("/CN=" + label_);
  if (!subject) return fail(subject.error().message);
  auto csr = pki::make_csr(*signer, *subject);
  if (!csr) return fail("CSR: " + csr.error().message);
  run_.device_cpu_s_ += thread_cpu_seconds() - c0;
  timing_.keygen_csr_ms = seconds_between(t, Clock::now()) * 1e3;

  payload_.resize(csr->size() + 256);
  auto n = provisioning::write_create_from_csr_request(
      provisioning::Format::Json, *csr,
      {reinterpret_cast<std::uint8_t*>(payload_.data()), payload_.size()});
  if (!n) return fail("CSR request");
  payload_.resize(*n);
  std::array<char, provisioning::kMaxTopicLength> topic{};
  auto tp = provisioning::topic(provisioning::Api::CreateCertificateFromCsr,
                                provisioning::Format::Json, provisioning::TopicKind::Request,
                                topic);
  mqtt::Publish p;
  p.topic = *tp;
  p.payload = mqtt::as_bytes(payload_);
  p.qos = mqtt::QoS::AtLeastOnce;
  if (auto r = claim_.conn.publish(p); !r) return fail(std::string("publish CSR: ") + mqtt::to_string(r.error()));
  t_mark_ = Clock::now();
}

void Slot::on_message(const mqtt::Publish& m) {
  const std::span<const std::uint8_t> body{reinterpret_cast<const std::uint8_t*>(m.payload.data()),
                                           m.payload.size()};
  if (m.topic == std::string_view(topics_[0].data())) {
    timing_.csr_reply_ms = seconds_between(t_mark_, Clock::now()) * 1e3;
    auto acc = provisioning::read_certificate_accepted(
        provisioning::Format::Json, provisioning::Api::CreateCertificateFromCsr, body, scratch_);
    if (!acc) return fail("CreateCertificateFromCsr reply unreadable");
    // The certificate goes into the token beside its key, as the device client does.
    const double c0 = thread_cpu_seconds();
    auto info = pki::parse_certificate(acc->certificate_pem);
    if (!info) return fail("certificate: " + info.error().message);
    const std::uint8_t id[] = {0x01};
    if (auto st = pki::store_certificate(*session_, *info, label_, id); !st) {
      return fail("store certificate: " + st.error().message);
    }
    // The TLS layer loads the client certificate from a file (the key stays in the token).
    const std::string cert_file = run_.work_ + "/" + label_ + ".crt";
    std::ofstream(cert_file) << acc->certificate_pem;
    run_.device_cpu_s_ += thread_cpu_seconds() - c0;
    const std::string serial = run_.run_tag_ + "-" + std::to_string(index_);
    const provisioning::KeyValue params[] = {{"SerialNumber", serial}};
    payload_.resize(acc->ownership_token.size() + 256);
    auto n = provisioning::write_register_thing_request(
        provisioning::Format::Json, acc->ownership_token, params,
        {reinterpret_cast<std::uint8_t*>(payload_.data()), payload_.size()});
    if (!n) return fail("RegisterThing request");
    payload_.resize(*n);
    std::array<char, provisioning::kMaxTopicLength> topic{};
    auto tp = provisioning::topic(provisioning::Api::RegisterThing, provisioning::Format::Json,
                                  provisioning::TopicKind::Request, topic, run_.template_);
    mqtt::Publish p;
    p.topic = *tp;
    p.payload = mqtt::as_bytes(payload_);
    p.qos = mqtt::QoS::AtLeastOnce;
    if (auto r = claim_.conn.publish(p); !r) return fail("publish RegisterThing");
    t_mark_ = Clock::now();
    return;
  }
  if (m.topic == std::string_view(topics_[2].data())) {
    timing_.register_reply_ms = seconds_between(t_mark_, Clock::now()) * 1e3;
    std::array<provisioning::KeyValue, provisioning::kMaxParameters> config{};
    auto acc = provisioning::read_register_thing_accepted(provisioning::Format::Json, body, config,
                                                          scratch_);
    if (!acc) return fail("RegisterThing reply unreadable");
    thing_ = std::string(acc->thing_name);
    phase_ = Phase::Registered;
    // The claim credential is done with: DISCONNECT, then the device's own connection.
    if (auto r = claim_.conn.disconnect(); !r) return fail("claim disconnect");
    return;
  }
  auto rej = provisioning::read_rejected(provisioning::Format::Json, body, scratch_);
  fail(std::string("rejected on ") + std::string(m.topic) + ": " +
       (rej ? std::string(rej->error_code) + " " + std::string(rej->error_message) : "?"));
}

void Slot::start_device() {
  const auto t = Clock::now();
  tls::Config c;
  c.ca_file = run_.ca_file_;
  c.certificate_file = run_.work_ + "/" + label_ + ".crt";
  tls::TokenKey k;
  k.module_path = run_.module_;
  k.token_label = kTokenLabel;
  k.pin = kPin;
  k.key_label = label_;
  c.token_key = k;
  auto ctx = tls::TlsContext::create(c);
  if (!ctx) return fail("device TLS context: " + ctx.error().message());
  device_tls_.emplace(std::move(*ctx));
  fs::remove(c.certificate_file);
  const mqtt_asio::Endpoint ep{run_.endpoint_.address, &*device_tls_, "localhost"};
  mqtt::ConnectOptions o;
  o.version = mqtt::Version::V5;
  o.client_id = thing_;
  o.keep_alive_seconds = 120;
  t_mark_ = t;
  phase_ = Phase::Device;
  if (auto r = device_.conn.start(ep, o, Duration{60000}); !r) {
    fail(std::string("device start: ") + mqtt::to_string(r.error()));
  }
}

void Slot::on_event(mqtt_asio::Connection& c, const mqtt::Event& e) {
  using mqtt::EventType;
  if (phase_ == Phase::Done || phase_ == Phase::Idle) return;
  const bool claim = &c == &claim_.conn;
  switch (e.type) {
    case EventType::Connected:
      if (claim) {
        timing_.claim_connect_ms = seconds_between(t0_, Clock::now()) * 1e3;
        std::array<mqtt::Subscription, 4> subs;
        for (std::size_t i = 0; i < 4; ++i) {
          subs[i] = mqtt::Subscription{topics_[i].data(),
                                       mqtt::SubscribeOptions{mqtt::QoS::AtLeastOnce}};
        }
        if (auto r = c.subscribe(subs); !r) fail("subscribe");
      } else {
        timing_.reconnect_ms = seconds_between(t_mark_, Clock::now()) * 1e3;
        proof_topic_ = thing_ + "/hello";
        mqtt::Publish p;
        p.topic = proof_topic_;
        p.payload = mqtt::as_bytes(std::string_view("provisioned"));
        p.qos = mqtt::QoS::AtLeastOnce;
        if (auto r = c.publish(p); !r) return fail("proof publish");
        t_mark_ = Clock::now();
      }
      break;
    case EventType::SubscribeCompleted:
      for (auto rc : e.reason_codes) {
        if (static_cast<int>(rc) >= 0x80) return fail("subscription refused");
      }
      if (e.reason_codes.size() != 4) return fail("subscription refused");
      claim_subscribed();
      break;
    case EventType::PublishCompleted:
      // Below 0x80 is success (MQTT 5 3.4.2.1): No matching subscribers (0x10) is what the
      // broker says to the proof publish, which nobody listens to.
      if (static_cast<int>(e.reason_code) >= 0x80) {
        return fail(std::string("PUBACK ") + mqtt::to_string(e.reason_code));
      }
      if (!claim) {
        timing_.proof_ms = seconds_between(t_mark_, Clock::now()) * 1e3;
        timing_.total_ms = seconds_between(t0_, Clock::now()) * 1e3;
        run_.done(timing_);
        phase_ = Phase::Done;
        (void)c.disconnect();
      }
      break;
    case EventType::MessageReceived:
      if (claim && e.message != nullptr) on_message(*e.message);
      break;
    case EventType::PingResponse:
      break;
    case EventType::ConnectionClosed:
      if (claim && phase_ == Phase::Registered) break;  // our own DISCONNECT
      [[fallthrough]];
    default:
      fail(std::string(claim ? "claim" : "device") + " connection: event " +
           std::to_string(static_cast<int>(e.type)) + " " + mqtt::to_string(e.error) + " " +
           mqtt::to_string(e.reason_code));
      break;
  }
}

void Slot::on_closed(mqtt_asio::Connection& c, std::error_code ec) {
  const bool claim = &c == &claim_.conn;
  if (claim && phase_ == Phase::Registered) return start_device();
  if (phase_ == Phase::Done && !claim_.conn.active() && !device_.conn.active()) return finish();
  if (phase_ != Phase::Done && phase_ != Phase::Idle) {
    fail(std::string(claim ? "claim" : "device") + " connection closed: " + ec.message());
  }
}

int run_claim(const Args& a) {
  Token token(a.get("module"));
  if (!token.error.empty()) {
    std::fprintf(stderr, "provisioning_bench: token: %s\n", token.error.c_str());
    return 1;
  }
  tls::Config c;
  c.ca_file = a.get("ca");
  c.certificate_file = a.get("claim-cert");
  c.private_key_file = a.get("claim-key");
  auto claim_tls = tls::TlsContext::create(c);
  if (!claim_tls) {
    std::fprintf(stderr, "provisioning_bench: claim TLS: %s\n", claim_tls.error().message().c_str());
    return 1;
  }
  asio::io_context io(1);
  ClaimRun run(io, token, a, *claim_tls);
  const long fleetd = a.number("fleetd-pid", 0), broker = a.number("broker-pid", 0);
  const std::string load0 = load_average();
  const double f0 = other_cpu_seconds(fleetd), b0 = other_cpu_seconds(broker);
  const double c0 = process_cpu_seconds();
  const auto t0 = Clock::now();
  run.start();
  const bool finished = run_io_until(io, [&] { return run.complete(); },
                                     60.0 + static_cast<double>(run.count_) / 10.0);
  const auto t1 = Clock::now();
  const double c1 = process_cpu_seconds();
  const double f1 = other_cpu_seconds(fleetd), b1 = other_cpu_seconds(broker);
  const std::string load1 = load_average();
  // Let the last DISCONNECTs go out.
  run_io_until(io, [] { return false; }, 0.3);

  const std::size_t ok = run.timings_.size();
  const double wall = seconds_between(t0, t1);
  // Steady state: from the 10th to the 90th percentile of completions.
  double steady = 0;
  if (ok >= 20) {
    auto& f = run.finished_at_;
    const std::size_t lo = ok / 10, hi = ok - ok / 10 - 1;
    const double span = seconds_between(f[lo], f[hi]);
    if (span > 0) steady = static_cast<double>(hi - lo) / span;
  }
  auto col = [&](double Timing::*m) {
    std::vector<double> v;
    v.reserve(ok);
    for (const auto& t : run.timings_) v.push_back(t.*m);
    return v;
  };
  const double n = ok == 0 ? 1.0 : static_cast<double>(ok);
  std::printf("{\"mode\":\"claim\",\"devices\":%zu,\"failures\":%zu,\"in_flight\":%zu,", ok,
              run.failures_, run.slots_.size());
  std::printf("\"wall_s\":%.3f,\"devices_per_s\":%.1f,\"steady_devices_per_s\":%.1f,", wall,
              static_cast<double>(ok) / wall, steady);
  std::printf("\"bench_cpu_ms_per_device\":%.3f,\"device_token_cpu_ms_per_device\":%.3f,",
              (c1 - c0) * 1e3 / n, run.device_cpu_s_ * 1e3 / n);
  std::printf("\"fleetd_cpu_ms_per_device\":%.3f,\"broker_cpu_ms_per_device\":%.3f,",
              fleetd > 0 ? (f1 - f0) * 1e3 / n : -1.0, broker > 0 ? (b1 - b0) * 1e3 / n : -1.0);
  std::printf("\"fleetd_cpu_s\":%.2f,\"broker_cpu_s\":%.2f,\"bench_cpu_s\":%.2f,", f1 - f0,
              b1 - b0, c1 - c0);
  print_ms("total_ms", col(&Timing::total_ms));
  print_ms("claim_connect_ms", col(&Timing::claim_connect_ms));
  print_ms("keygen_csr_ms", col(&Timing::keygen_csr_ms));
  print_ms("csr_reply_ms", col(&Timing::csr_reply_ms));
  print_ms("register_reply_ms", col(&Timing::register_reply_ms));
  print_ms("reconnect_ms", col(&Timing::reconnect_ms));
  print_ms("proof_ms", col(&Timing::proof_ms));
  std::printf("\"load_before\":\"%s\",\"load_after\":\"%s\",\"finished\":%s,\"first_failure\":\"",
              load0.c_str(), load1.c_str(), finished ? "true" : "false");
  print_json_text(run.first_failure_);
  std::printf("\"}\n");
  return finished && run.failures_ == 0 ? 0 : 1;
}

// --- JITP ------------------------------------------------------------------------------------

class JitpRun;

class JitpSlot final : public mqtt_asio::Handler {
 public:
  JitpSlot(JitpRun& run, mqtt_asio::Driver& driver)
      : run_(run), link_(driver, *this) {}
  void begin(std::size_t index);
  void on_event(mqtt_asio::Connection& c, const mqtt::Event& e) override;
  void on_closed(mqtt_asio::Connection& c, std::error_code ec) override;

 private:
  void fail(const std::string& why);
  JitpRun& run_;
  Link link_;
  mqtt_asio::Connection& conn_ = link_.conn;
  std::optional<tls::TlsContext> tls_;
  std::string id_, topic_;
  bool active_ = false;
  Clock::time_point t0_;
  double connack_ms_ = 0;
};

class JitpRun {
 public:
  JitpRun(asio::io_context& io, const Args& a)
      : driver_(io),
        port_(static_cast<std::uint16_t>(a.number("port", 0))),
        ca_(a.get("ca")),
        certs_(a.get("certs")),
        prefix_(a.get("prefix", "jitp")),
        count_(static_cast<std::size_t>(a.number("count", 100))) {
    const auto k = static_cast<std::size_t>(a.number("in-flight", 16));
    for (std::size_t i = 0; i < k; ++i) slots_.push_back(std::make_unique<JitpSlot>(*this, driver_));
  }
  void start() {
    for (auto& s : slots_) next(*s);
  }
  void next(JitpSlot& s) {
    if (next_ < count_) s.begin(next_++);
  }

  mqtt_asio::Driver driver_;
  std::uint16_t port_;
  std::string ca_, certs_, prefix_;
  std::size_t count_;
  std::size_t next_ = 0;
  std::vector<std::unique_ptr<JitpSlot>> slots_;
  std::vector<double> connack_ms_, puback_ms_;
  std::size_t finished_ = 0;
  std::size_t failures_ = 0;
  std::string first_failure_;
};

void JitpSlot::begin(std::size_t index) {
  const std::string stem = run_.certs_ + "/" + run_.prefix_ + "-" + std::to_string(index);
  tls::Config c;
  c.ca_file = run_.ca_;
  c.certificate_file = stem + ".crt";
  c.private_key_file = stem + ".key";
  auto ctx = tls::TlsContext::create(c);
  if (!ctx) {
    ++run_.failures_;
    if (run_.first_failure_.empty()) run_.first_failure_ = ctx.error().message();
    return run_.next(*this);
  }
  tls_.emplace(std::move(*ctx));
  // The thing name is the certificate's CN (the JITP template's ThingName), which the script
  // wrote beside the certificate.
  std::ifstream(stem + ".cn") >> id_;
  topic_ = id_ + "/hello";
  active_ = true;
  mqtt::ConnectOptions o;
  o.version = mqtt::Version::V5;
  o.client_id = id_;
  o.keep_alive_seconds = 120;
  t0_ = Clock::now();
  if (auto r = conn_.start({{asio::ip::make_address_v4("127.0.0.1"), run_.port_}, &*tls_, "localhost"},
                           o, Duration{60000});
      !r) {
    fail("start");
  }
}

void JitpSlot::fail(const std::string& why) {
  if (!active_) return;
  active_ = false;
  ++run_.failures_;
  if (run_.first_failure_.empty()) run_.first_failure_ = id_ + ": " + why;
  conn_.stop();
}

void JitpSlot::on_event(mqtt_asio::Connection& c, const mqtt::Event& e) {
  if (!active_) return;
  switch (e.type) {
    case mqtt::EventType::Connected: {
      connack_ms_ = seconds_between(t0_, Clock::now()) * 1e3;
      mqtt::Publish p;
      p.topic = topic_;
      p.payload = mqtt::as_bytes(std::string_view("first"));
      p.qos = mqtt::QoS::AtLeastOnce;
      if (auto r = c.publish(p); !r) fail("publish");
      break;
    }
    case mqtt::EventType::PublishCompleted:
      if (static_cast<int>(e.reason_code) >= 0x80) {
        return fail(std::string("PUBACK ") + mqtt::to_string(e.reason_code));
      }
      run_.connack_ms_.push_back(connack_ms_);
      run_.puback_ms_.push_back(seconds_between(t0_, Clock::now()) * 1e3);
      active_ = false;
      (void)c.disconnect();
      break;
    default:
      fail(std::string("event ") + std::to_string(static_cast<int>(e.type)) + " " +
           mqtt::to_string(e.error) + " " + mqtt::to_string(e.reason_code));
      break;
  }
}

void JitpSlot::on_closed(mqtt_asio::Connection&, std::error_code ec) {
  if (active_) fail("closed: " + ec.message());
  ++run_.finished_;
  tls_.reset();
  run_.next(*this);
}

int run_jitp(const Args& a) {
  asio::io_context io(1);
  JitpRun run(io, a);
  const long fleetd = a.number("fleetd-pid", 0), broker = a.number("broker-pid", 0);
  const std::string load0 = load_average();
  const double f0 = other_cpu_seconds(fleetd), b0 = other_cpu_seconds(broker);
  const auto t0 = Clock::now();
  run.start();
  const bool finished =
      run_io_until(io, [&] { return run.finished_ >= run.count_ || (run.next_ >= run.count_ &&
                                 run.connack_ms_.size() + run.failures_ >= run.count_); },
                   60.0 + static_cast<double>(run.count_) / 5.0);
  const auto t1 = Clock::now();
  const double f1 = other_cpu_seconds(fleetd), b1 = other_cpu_seconds(broker);
  run_io_until(io, [] { return false; }, 0.3);
  const std::size_t ok = run.connack_ms_.size();
  const double n = ok == 0 ? 1.0 : static_cast<double>(ok);
  std::printf("{\"mode\":\"jitp\",\"devices\":%zu,\"failures\":%zu,\"in_flight\":%zu,", ok,
              run.failures_, run.slots_.size());
  const double wall = seconds_between(t0, t1);
  std::printf("\"wall_s\":%.3f,\"devices_per_s\":%.1f,", wall, static_cast<double>(ok) / wall);
  std::printf("\"fleetd_cpu_ms_per_device\":%.3f,\"broker_cpu_ms_per_device\":%.3f,",
              fleetd > 0 ? (f1 - f0) * 1e3 / n : -1.0, broker > 0 ? (b1 - b0) * 1e3 / n : -1.0);
  print_ms("connack_ms", run.connack_ms_);
  print_ms("puback_ms", run.puback_ms_);
  std::printf("\"load_before\":\"%s\",\"load_after\":\"%s\",\"finished\":%s,\"first_failure\":\"",
              load0.c_str(), load_average().c_str(), finished ? "true" : "false");
  print_json_text(run.first_failure_);
  std::printf("\"}\n");
  return finished && run.failures_ == 0 ? 0 : 1;
}

// --- the physical limit ----------------------------------------------------------------------

// CPU µs per call of `f`, the median of `rounds` rounds of `per_round` calls.
template <class F>
double cpu_us(int rounds, int per_round, F&& f) {
  std::vector<double> r;
  for (int i = 0; i < rounds; ++i) {
    const double c0 = thread_cpu_seconds();
    for (int j = 0; j < per_round; ++j) {
      if (!f()) return -1;
    }
    r.push_back((thread_cpu_seconds() - c0) * 1e6 / per_round);
  }
  return percentile(r, 50);
}

// One full mutual-TLS handshake, client and server in this thread over a pair of memory BIOs.
bool handshake(SSL_CTX* client_ctx, SSL_CTX* server_ctx) {
  SSL* c = SSL_new(client_ctx);
  SSL* s = SSL_new(server_ctx);
  BIO *cb = nullptr, *sb = nullptr;
  BIO_new_bio_pair(&cb, 0, &sb, 0);
  SSL_set_bio(c, cb, cb);
  SSL_set_bio(s, sb, sb);
  SSL_set_connect_state(c);
  SSL_set_accept_state(s);
  SSL_set_tlsext_host_name(c, "localhost");
  SSL_set1_host(c, "localhost");
  bool cdone = false, sdone = false;
  for (int i = 0; i < 20 && !(cdone && sdone); ++i) {
    if (!cdone) {
      const int r = SSL_do_handshake(c);
      if (r == 1) cdone = true;
      else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ) break;
    }
    if (!sdone) {
      const int r = SSL_do_handshake(s);
      if (r == 1) sdone = true;
      else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ) break;
    }
  }
  // TLS 1.3: the server judges the client's certificate after its Finished; a read settles it.
  char b[1];
  (void)SSL_read(s, b, 0);
  const bool ok = cdone && sdone && SSL_get_verify_result(s) == X509_V_OK &&
                  SSL_get_verify_result(c) == X509_V_OK && SSL_get0_peer_certificate(s) != nullptr;
  SSL_free(c);
  SSL_free(s);
  return ok;
}

int run_limits(const Args& a) {
  const int rounds = static_cast<int>(a.number("rounds", 5));
  Token token(a.get("module"));
  if (!token.error.empty()) {
    std::fprintf(stderr, "provisioning_bench: token: %s\n", token.error.c_str());
    return 1;
  }
  auto session = token.module->open_session(token.slot, true);
  if (!session) return 1;
  // P-256 key pair in the token (then destroyed, so the token does not grow).
  const double keygen = cpu_us(rounds, 200, [&] {
    auto kp = generate_session_key(*session, "limit");
    if (!kp) return false;
    // A key left behind would grow the token under the measurement: count it as a failure.
    const CK_FUNCTION_LIST& f = session->functions();
    const CK_RV rv_private = f.C_DestroyObject(session->handle(), kp->private_key);
    const CK_RV rv_public = f.C_DestroyObject(session->handle(), kp->public_key);
    return rv_private == CKR_OK && rv_public == CKR_OK;
  });
  auto kp = generate_session_key(*session, "limit-signer");
  if (!kp) return 1;
  auto signer = pki::TokenSigner::create(*session, kp->private_key);
  if (!signer) return 1;
  std::vector<std::uint8_t> tbs(300, 0x5a);
  const double sign = cpu_us(rounds, 500, [&] { return signer->sign(tbs).has_value(); });
  auto subject = pki::Name::parse("/CN=limit");
  auto csr = pki::make_csr(*signer, *subject);
  if (!csr) return 1;
  const double csr_make = cpu_us(rounds, 200, [&] { return pki::make_csr(*signer, *subject).has_value(); });
  // What fleetd does with a CSR first: parse it and check its signature (one ECDSA verify).
  const double csr_check = cpu_us(rounds, 500, [&] { return pki::parse_csr(*csr).has_value(); });

  // An ECDSA P-256 verify (SHA-256 over the same bytes), OpenSSL: what checking the CSR's
  // signature costs without the X.509 parsing around it.
  EVP_PKEY* vkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  std::vector<unsigned char> sig(128);
  std::size_t sig_len = sig.size();
  {
    EVP_MD_CTX* m = EVP_MD_CTX_new();
    if (vkey == nullptr || EVP_DigestSignInit(m, nullptr, EVP_sha256(), nullptr, vkey) != 1 ||
        EVP_DigestSign(m, sig.data(), &sig_len, tbs.data(), tbs.size()) != 1) {
      EVP_MD_CTX_free(m);
      return 1;
    }
    EVP_MD_CTX_free(m);
  }
  const double verify = cpu_us(rounds, 500, [&] {
    EVP_MD_CTX* m = EVP_MD_CTX_new();
    const bool ok = EVP_DigestVerifyInit(m, nullptr, EVP_sha256(), nullptr, vkey) == 1 &&
                    EVP_DigestVerify(m, sig.data(), sig_len, tbs.data(), tbs.size()) == 1;
    EVP_MD_CTX_free(m);
    return ok;
  });
  EVP_PKEY_free(vkey);

  // The handshake: a throw-away CA, a server certificate for localhost, a client certificate.
  const std::string dir = a.get("work", "/tmp") + "/limits-pki";
  fs::create_directories(dir);
  testing::TestCa ca(dir, "ca");
  testing::CertOptions so;
  so.common_name = "localhost";
  so.dns_names = {"localhost"};
  so.server = true;
  const auto server = ca.issue("server", so);
  testing::CertOptions co;
  co.common_name = "device";
  const auto client = ca.issue("client", co);
  if (!ca.ok()) {
    std::fprintf(stderr, "provisioning_bench: test CA: %s\n", ca.error().c_str());
    return 1;
  }
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate_chain_file(sctx, server.cert_file.c_str());
  SSL_CTX_use_PrivateKey_file(sctx, server.key_file.c_str(), SSL_FILETYPE_PEM);
  SSL_CTX_load_verify_file(sctx, ca.cert_file().c_str());
  SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_options(sctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(sctx, 0);
  SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_use_certificate_chain_file(cctx, client.cert_file.c_str());
  SSL_CTX_use_PrivateKey_file(cctx, client.key_file.c_str(), SSL_FILETYPE_PEM);
  SSL_CTX_load_verify_file(cctx, ca.cert_file().c_str());
  SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
  const double hs13 = cpu_us(rounds, 200, [&] { return handshake(cctx, sctx); });
  SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
  const double hs12 = cpu_us(rounds, 200, [&] { return handshake(cctx, sctx); });
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  fs::remove_all(dir);
  if (keygen < 0 || sign < 0 || verify < 0 || csr_make < 0 || csr_check < 0 || hs13 < 0 ||
      hs12 < 0) {
    std::fprintf(stderr, "provisioning_bench: a limits measurement failed\n");
    return 1;
  }
  // One device by claim, cryptography only: its key pair and the CSR's signature (device), the
  // CSR's signature check and the certificate's signature by the CA (fleetd's CA signs in a
  // token too), two full mutual-TLS handshakes with both sides' work (the claim connection and
  // the reconnect). "With X.509" puts the device's CSR making and fleetd's CSR parsing (DER,
  // PEM, names, the check) in place of the bare signature and verify.
  const double crypto = keygen + 2 * sign + verify + 2 * hs13;
  const double with_x509 = keygen + csr_make + csr_check + sign + 2 * hs13;
  std::printf("{\"mode\":\"limits\",\"rounds\":%d,\"keygen_token_us\":%.1f,\"sign_token_us\":%.1f,"
              "\"verify_us\":%.1f,\"csr_make_token_us\":%.1f,\"csr_parse_verify_us\":%.1f,"
              "\"handshake_tls13_both_sides_us\":%.1f,\"handshake_tls12_both_sides_us\":%.1f,"
              "\"claim_device_crypto_us\":%.1f,\"claim_devices_per_s_per_core\":%.0f,"
              "\"claim_device_crypto_x509_us\":%.1f,\"claim_devices_x509_per_s_per_core\":%.0f,"
              "\"jitp_device_crypto_us\":%.1f,\"jitp_devices_per_s_per_core\":%.0f,"
              "\"load\":\"%s\"}\n",
              rounds, keygen, sign, verify, csr_make, csr_check, hs13, hs12, crypto, 1e6 / crypto,
              with_x509, 1e6 / with_x509, hs13, 1e6 / hs13, load_average().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: provisioning_bench claim|jitp|limits --option value ...\n");
    return 2;
  }
  auto a = parse_args("provisioning_bench", argc, argv, 2);
  if (!a) return 2;
  const std::string mode = argv[1];
  if (mode == "claim") return run_claim(*a);
  if (mode == "jitp") return run_jitp(*a);
  if (mode == "limits") return run_limits(*a);
  std::fprintf(stderr, "provisioning_bench: unknown mode '%s'\n", mode.c_str());
  return 2;
}
