// Device Shadow at scale, end to end (issue 14's benchmark; scripts/bench-shadow runs it against
// a real fleetd and a real Mosquitto with edgekit's plugin). Not part of the test suite.
// Many things at once on one standalone-Asio thread (edgekit::mqtt_asio), each over mutual TLS
// with its own certificate.
//
//   shadow_bench certs --dir DIR --count N [--prefix P]
//       A throw-away CA (DIR/ca.crt, .key) and N device certificates DIR/thing-<i>.crt/.key with
//       CN <P>-<i> (default P: "shadow"): registered in fleetd with a JITP template, the CN
//       becomes the thing name at the first connect.
//   shadow_bench run --port P --ca FILE --certs DIR --count N [--prefix P]
//                    [--connect-in-flight K] [--rates R1,R2,...] [--seconds S]
//                    [--closed-seconds S] [--drain-seconds S] [--fleetd-pid PID]
//                    [--broker-pid PID]
//       Connects the N things (K connecting at once: each a JITP registration at first), each
//       SUBSCRIBEs (QoS 1) to its classic shadow's update/accepted and update/rejected and makes
//       one update that creates its shadow. Then, per rate R: open loop for S seconds, update
//       number k due at t0 + k/R and sent by thing k mod N (round robin, so each thing sends
//       R/N per second); an update is a QoS 1 PUBLISH of
//       {"state":{"reported":{"seq":k,"temperature":...}},"clientToken":"k"} to
//       $aws/things/<thing>/shadow/update, and its round trip ends when the update/accepted
//       with its clientToken arrives. The latency counts from the time the update was due, not
//       from when it went out, so that a sender falling behind is measured rather than hidden
//       (no coordinated omission). Last, closed loop for S seconds: every thing keeps one update
//       in flight (N in flight in all): the sustained maximum. After each phase its answers are
//       awaited until all came or none came for 2 s (at most --drain-seconds, default 30).
//
// One JSON line per phase: latency percentiles (ms), offered and achieved updates/s, rejections
// by code, unanswered updates, and the CPU per update of fleetd, Mosquitto and this process
// (utime + stime from /proc/<pid>/stat and getrusage, before and after the phase).

#include <array>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <edgekit/shadow/documents.hpp>
#include <edgekit/shadow/topics.hpp>
#include <edgekit/testing/test_pki.hpp>
#include <edgekit/tls/tls.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgekit/mqtt_asio/connection.hpp"
#include "fleet_bench.hpp"

namespace {

using namespace edgekit;
using namespace edgekit::bench;
using Clock = bench::Clock;  // not edgekit::Clock (the engines' clock)
namespace fs = std::filesystem;

// QoS 1 updates a thing may have unacknowledged at once (each holds a payload slot until its
// PUBACK): far above what a thing sends at 5 per second with round trips of milliseconds, so
// that only an overloaded service makes a publish fail for want of a record.
constexpr std::size_t kSlots = 16;
// After a phase's last send, its answers are awaited until all came, or none came for
// kQuietSeconds (the broker dropped the rest: see "unanswered"), or --drain-seconds passed; so
// that a backlog does not spill into the next phase's figures.
constexpr double kQuietSeconds = 2.0;

// What one measured phase collected.
struct Phase {
  std::string name;
  double offered_per_s = 0;  // 0: closed loop
  std::uint64_t first_seq = 0;
  std::size_t sent = 0, accepted = 0, send_failed = 0;
  std::map<std::int64_t, std::size_t> rejected;  // by code
  std::vector<double> latency_ms;
  Clock::time_point last_answer{};
  std::size_t answered() const {
    std::size_t r = accepted;
    for (const auto& [code, n] : rejected) r += n;
    return r;
  }
};

class ShadowRun;

class Thing final : public mqtt_asio::Handler {
 public:
  Thing(ShadowRun& run, mqtt_asio::Driver& driver, std::size_t index);
  void begin();
  // Sends update `seq` (ShadowRun::new_seq recorded when it was due). False when it could not
  // be handed to the connection.
  bool send(std::uint64_t seq);
  void on_event(mqtt_asio::Connection& c, const mqtt::Event& e) override;
  void on_closed(mqtt_asio::Connection& c, std::error_code ec) override;
  bool ready() const { return ready_; }

 private:
  void fail(const std::string& why);
  void on_message(const mqtt::Publish& m);

  ShadowRun& run_;
  Link<kSlots> link_;
  std::size_t index_;
  std::string name_;
  std::optional<tls::TlsContext> tls_;
  std::array<char, shadow::kMaxTopicLength> request_{}, accepted_{}, rejected_{};
  std::string_view request_topic_, accepted_topic_, rejected_topic_;
  // A payload must stay alive until the connection wrote it: one slot per possible record.
  std::array<std::array<char, 160>, kSlots> payloads_{};
  std::size_t next_payload_ = 0;
  bool active_ = false, ready_ = false;
};

class ShadowRun {
 public:
  ShadowRun(asio::io_context& io, const Args& a)
      : io_(io),
        driver_(io),
        port_(static_cast<std::uint16_t>(a.number("port", 0))),
        ca_(a.get("ca")),
        certs_(a.get("certs")),
        prefix_(a.get("prefix", "shadow")),
        count_(static_cast<std::size_t>(a.number("count", 1000))),
        connect_in_flight_(static_cast<std::size_t>(a.number("connect-in-flight", 32))),
        drain_seconds_(static_cast<double>(a.number("drain-seconds", 30))) {
    things_.reserve(count_);
    for (std::size_t i = 0; i < count_; ++i) {
      things_.push_back(std::make_unique<Thing>(*this, driver_, i));
    }
  }

  // --- connecting ---
  void connect_next() {
    if (next_connect_ < count_) things_[next_connect_++]->begin();
  }
  void thing_ready() {
    ++ready_;
    connect_next();
  }
  void thing_failed(std::string why) {
    ++failed_;
    if (first_failure_.empty()) first_failure_ = std::move(why);
    connect_next();
  }

  // --- the updates ---
  std::uint64_t new_seq(Clock::time_point due) {
    due_.push_back(due);
    return due_.size() - 1;
  }
  // An answer to update `seq` (accepted, or rejected with `code`).
  void answered(std::uint64_t seq, std::optional<std::int64_t> rejected_code, Thing& thing) {
    const auto now = Clock::now();
    if (seq >= due_.size()) return note_failure("answer to an update never sent");
    if (phase_ == nullptr || seq < phase_->first_seq) {
      if (warming_) ++warmed_;
      if (rejected_code && first_failure_.empty()) {
        first_failure_ = "warm-up update rejected " + std::to_string(*rejected_code);
      }
      return;
    }
    if (rejected_code) {
      ++phase_->rejected[*rejected_code];
    } else {
      ++phase_->accepted;
      phase_->latency_ms.push_back(seconds_between(due_[seq], now) * 1e3);
    }
    phase_->last_answer = now;
    if (closed_ && now < closed_end_) send_closed(thing);
  }
  void send_closed(Thing& thing) {
    const auto now = Clock::now();
    ++phase_->sent;
    if (!thing.send(new_seq(now))) ++phase_->send_failed;
  }
  void note_failure(std::string why) {
    if (first_failure_.empty()) first_failure_ = std::move(why);
  }

  asio::io_context& io_;
  mqtt_asio::Driver driver_;
  std::uint16_t port_;
  std::string ca_, certs_, prefix_;
  std::size_t count_, connect_in_flight_;
  double drain_seconds_;
  std::vector<std::unique_ptr<Thing>> things_;
  std::size_t next_connect_ = 0, ready_ = 0, failed_ = 0, warmed_ = 0;
  bool warming_ = false;
  std::vector<Clock::time_point> due_;  // by update number
  Phase* phase_ = nullptr;
  bool closed_ = false;
  Clock::time_point closed_end_{};
  std::string first_failure_;
};

Thing::Thing(ShadowRun& run, mqtt_asio::Driver& driver, std::size_t index)
    : run_(run),
      link_(driver, *this),
      index_(index),
      name_(run.prefix_ + "-" + std::to_string(index)) {
  using shadow::Operation;
  using shadow::TopicKind;
  auto r = shadow::topic(name_, {}, Operation::Update, TopicKind::Request, request_);
  auto a = shadow::topic(name_, {}, Operation::Update, TopicKind::Accepted, accepted_);
  auto j = shadow::topic(name_, {}, Operation::Update, TopicKind::Rejected, rejected_);
  if (!r || !a || !j) {
    std::fprintf(stderr, "shadow_bench: \"%s\" is no thing name\n", name_.c_str());
    std::exit(2);
  }
  request_topic_ = *r;
  accepted_topic_ = *a;
  rejected_topic_ = *j;
}

void Thing::begin() {
  const std::string stem = run_.certs_ + "/thing-" + std::to_string(index_);
  tls::Config c;
  c.ca_file = run_.ca_;
  c.certificate_file = stem + ".crt";
  c.private_key_file = stem + ".key";
  auto ctx = tls::TlsContext::create(c);
  if (!ctx) return run_.thing_failed(name_ + ": TLS context: " + ctx.error().message());
  tls_.emplace(std::move(*ctx));
  active_ = true;
  mqtt::ConnectOptions o;
  o.version = mqtt::Version::V5;
  o.client_id = name_;
  o.keep_alive_seconds = 300;
  if (auto r = link_.conn.start(
          {{asio::ip::make_address_v4("127.0.0.1"), run_.port_}, &*tls_, "localhost"}, o,
          Duration{60000});
      !r) {
    fail(std::string("start: ") + mqtt::to_string(r.error()));
  }
}

bool Thing::send(std::uint64_t seq) {
  if (!ready_) return false;
  auto& buf = payloads_[next_payload_];
  next_payload_ = (next_payload_ + 1) % kSlots;
  std::array<char, 24> token{};
  auto [end, ec] = std::to_chars(token.data(), token.data() + token.size(), seq);
  if (ec != std::errc{}) return false;
  shadow::UpdateWriter u(buf);
  // A sensor's report: a counter and a value that changes, so every update changes the state.
  u.reported()
      .begin_object()
      .member("seq", static_cast<std::int64_t>(seq))
      .member("temperature", static_cast<std::int64_t>(200 + seq % 50))
      .end_object();
  auto doc = u.finish(std::string_view(token.data(), static_cast<std::size_t>(end - token.data())));
  if (!doc) return false;
  mqtt::Publish p;
  p.topic = request_topic_;
  p.payload = mqtt::as_bytes(*doc);
  p.qos = mqtt::QoS::AtLeastOnce;
  return link_.conn.publish(p).has_value();
}

void Thing::fail(const std::string& why) {
  if (!active_) return;
  active_ = false;
  const bool was_ready = ready_;
  ready_ = false;
  link_.conn.stop();
  if (was_ready) {
    run_.note_failure(name_ + ": " + why);
  } else {
    run_.thing_failed(name_ + ": " + why);
  }
}

void Thing::on_message(const mqtt::Publish& m) {
  const std::string_view body(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
  std::optional<std::int64_t> code;
  doc::json::Value token;
  if (m.topic == accepted_topic_) {
    auto acc = shadow::read_accepted(body);
    if (!acc) return run_.note_failure(name_ + ": update/accepted unreadable");
    token = acc->client_token;
  } else if (m.topic == rejected_topic_) {
    auto rej = shadow::read_rejected(body);
    if (!rej) return run_.note_failure(name_ + ": update/rejected unreadable");
    code = rej->code;
    token = rej->client_token;
  } else {
    return run_.note_failure(name_ + ": unexpected message on " + std::string(m.topic));
  }
  auto text = token.as_string_view();
  std::uint64_t seq = 0;
  if (!text || std::from_chars(text->data(), text->data() + text->size(), seq).ec != std::errc{}) {
    return run_.note_failure(name_ + ": an answer without our clientToken");
  }
  run_.answered(seq, code, *this);
}

void Thing::on_event(mqtt_asio::Connection& c, const mqtt::Event& e) {
  using mqtt::EventType;
  if (!active_) return;
  switch (e.type) {
    case EventType::Connected: {
      std::array<mqtt::Subscription, 2> subs{
          mqtt::Subscription{accepted_topic_, mqtt::SubscribeOptions{mqtt::QoS::AtLeastOnce}},
          mqtt::Subscription{rejected_topic_, mqtt::SubscribeOptions{mqtt::QoS::AtLeastOnce}}};
      if (auto r = c.subscribe(subs); !r) fail("subscribe");
      break;
    }
    case EventType::SubscribeCompleted:
      if (e.reason_codes.size() != 2) return fail("subscription refused");
      for (auto rc : e.reason_codes) {
        if (static_cast<int>(rc) >= 0x80) return fail("subscription refused");
      }
      ready_ = true;
      // The update that creates the shadow, outside any measured phase.
      if (!send(run_.new_seq(Clock::now()))) return fail("first update");
      run_.thing_ready();
      break;
    case EventType::PublishCompleted:
      if (static_cast<int>(e.reason_code) >= 0x80) {
        run_.note_failure(name_ + ": PUBACK " + mqtt::to_string(e.reason_code));
      }
      break;
    case EventType::MessageReceived:
      if (e.message != nullptr) on_message(*e.message);
      break;
    case EventType::PingResponse:
      break;
    default:
      fail(std::string("event ") + std::to_string(static_cast<int>(e.type)) + " " +
           mqtt::to_string(e.error) + " " + mqtt::to_string(e.reason_code));
      break;
  }
}

void Thing::on_closed(mqtt_asio::Connection&, std::error_code ec) {
  if (active_) fail("closed: " + ec.message());
}

struct Cpu {
  double fleetd = 0, broker = 0, self = 0;
  static Cpu now(long fleetd_pid, long broker_pid) {
    return {other_cpu_seconds(fleetd_pid), other_cpu_seconds(broker_pid), process_cpu_seconds()};
  }
};

void print_phase(const Phase& p, double wall_s, const Cpu& c0, const Cpu& c1, std::size_t things,
                 const std::string& load0, const std::string& first_failure) {
  const std::size_t ok = p.accepted;
  const double n = ok == 0 ? 1.0 : static_cast<double>(ok);
  std::printf("{\"mode\":\"%s\",\"things\":%zu,\"offered_per_s\":%.0f,\"seconds\":%.2f,",
              p.name.c_str(), things, p.offered_per_s, wall_s);
  std::printf("\"sent\":%zu,\"accepted\":%zu,\"send_failed\":%zu,\"unanswered\":%zu,", p.sent,
              p.accepted, p.send_failed, p.sent - std::min(p.sent, p.answered() + p.send_failed));
  std::printf("\"rejected\":{");
  bool first = true;
  for (const auto& [code, count] : p.rejected) {
    std::printf("%s\"%lld\":%zu", first ? "" : ",", static_cast<long long>(code), count);
    first = false;
  }
  std::printf("},\"accepted_per_s\":%.1f,", static_cast<double>(ok) / wall_s);
  const auto& v = p.latency_ms;
  std::printf("\"latency_ms\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f},",
              percentile(v, 50), percentile(v, 90), percentile(v, 99), percentile(v, 99.9),
              percentile(v, 100));
  std::printf(
      "\"fleetd_cpu_us_per_update\":%.1f,\"broker_cpu_us_per_update\":%.1f,"
      "\"bench_cpu_us_per_update\":%.1f,",
      (c1.fleetd - c0.fleetd) * 1e6 / n, (c1.broker - c0.broker) * 1e6 / n,
      (c1.self - c0.self) * 1e6 / n);
  std::printf("\"fleetd_cpu_share\":%.2f,\"broker_cpu_share\":%.2f,\"bench_cpu_share\":%.2f,",
              (c1.fleetd - c0.fleetd) / wall_s, (c1.broker - c0.broker) / wall_s,
              (c1.self - c0.self) / wall_s);
  std::printf("\"load_before\":\"%s\",\"load_after\":\"%s\",\"first_failure\":\"", load0.c_str(),
              load_average().c_str());
  print_json_text(first_failure);
  std::printf("\"}\n");
  std::fflush(stdout);
}

void drain(ShadowRun& run, const Phase& phase) {
  run_io_until(
      run.io_,
      [&] {
        const auto quiet =
            phase.last_answer == Clock::time_point{} ? Clock::now() : phase.last_answer;
        return phase.answered() + phase.send_failed >= phase.sent ||
               seconds_between(quiet, Clock::now()) > kQuietSeconds;
      },
      run.drain_seconds_);
}

// Open loop: update k of the phase due at t0 + k/rate, for `seconds`; then the answers drain.
void open_loop(ShadowRun& run, Phase& phase, double rate, double seconds) {
  phase.offered_per_s = rate;
  phase.first_seq = run.due_.size();
  run.phase_ = &phase;
  const auto total = static_cast<std::size_t>(rate * seconds);
  const auto t0 = Clock::now();
  asio::steady_timer timer(run.io_);
  std::function<void()> tick = [&] {
    const double elapsed = seconds_between(t0, Clock::now());
    const std::size_t due = std::min(total, static_cast<std::size_t>(elapsed * rate) + 1);
    while (phase.sent < due) {
      const std::size_t k = phase.sent++;
      const auto at = t0 + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(static_cast<double>(k) / rate));
      Thing& thing = *run.things_[k % run.things_.size()];
      if (!thing.send(run.new_seq(at))) ++phase.send_failed;
    }
    if (phase.sent < total) {
      timer.expires_after(std::chrono::milliseconds(1));
      timer.async_wait([&](std::error_code ec) {
        if (!ec) tick();
      });
    }
  };
  tick();
  run_io_until(
      run.io_, [&] { return phase.sent >= total; }, seconds + 10);
  drain(run, phase);
  timer.cancel();
  run.phase_ = nullptr;
}

// Closed loop: every ready thing keeps one update in flight for `seconds`.
void closed_loop(ShadowRun& run, Phase& phase, double seconds) {
  phase.first_seq = run.due_.size();
  run.phase_ = &phase;
  run.closed_ = true;
  run.closed_end_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(seconds));
  for (auto& t : run.things_) {
    if (t->ready()) run.send_closed(*t);
  }
  run_io_until(
      run.io_, [&] { return Clock::now() >= run.closed_end_; }, seconds + 1);
  run.closed_ = false;
  drain(run, phase);
  run.phase_ = nullptr;
}

std::vector<double> parse_rates(const std::string& s) {
  std::vector<double> r;
  std::size_t at = 0;
  while (at < s.size()) {
    const auto comma = s.find(',', at);
    const std::string part =
        s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (!part.empty()) r.push_back(std::strtod(part.c_str(), nullptr));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return r;
}

int run_updates(const Args& a) {
  asio::io_context io(1);
  ShadowRun run(io, a);
  const long fleetd = a.number("fleetd-pid", 0), broker = a.number("broker-pid", 0);
  const double seconds = static_cast<double>(a.number("seconds", 10));
  const double closed_seconds = static_cast<double>(a.number("closed-seconds", 10));
  const auto rates = parse_rates(a.get("rates", "500,1000,2000,5000"));

  // Connect (a JITP registration per thing) and create every shadow.
  {
    const std::string load0 = load_average();
    const Cpu c0 = Cpu::now(fleetd, broker);
    const auto t0 = Clock::now();
    run.warming_ = true;
    for (std::size_t i = 0; i < run.connect_in_flight_; ++i) run.connect_next();
    const bool done = run_io_until(
        io, [&] { return run.ready_ + run.failed_ >= run.count_ && run.warmed_ >= run.ready_; },
        60.0 + static_cast<double>(run.count_) / 10.0);
    run.warming_ = false;
    const double wall = seconds_between(t0, Clock::now());
    const Cpu c1 = Cpu::now(fleetd, broker);
    const double n = run.ready_ == 0 ? 1.0 : static_cast<double>(run.ready_);
    std::printf(
        "{\"mode\":\"connect\",\"things\":%zu,\"ready\":%zu,\"failed\":%zu,"
        "\"shadows_created\":%zu,\"seconds\":%.2f,\"things_per_s\":%.1f,"
        "\"fleetd_cpu_ms_per_thing\":%.2f,\"broker_cpu_ms_per_thing\":%.2f,"
        "\"load_before\":\"%s\",\"first_failure\":\"",
        run.count_, run.ready_, run.failed_, run.warmed_, wall,
        static_cast<double>(run.ready_) / wall, (c1.fleetd - c0.fleetd) * 1e3 / n,
        (c1.broker - c0.broker) * 1e3 / n, load0.c_str());
    print_json_text(run.first_failure_);
    std::printf("\"}\n");
    std::fflush(stdout);
    if (!done || run.ready_ != run.count_) return 1;
  }

  // One measured phase: its CPU, its figures over at least `floor_s` seconds (the sending
  // window; no answer at all leaves last_answer unset); true when every update was answered.
  const auto measure = [&](const char* name, double floor_s,
                           const std::function<void(Phase&)>& body) {
    Phase p;
    p.name = name;
    run.first_failure_.clear();
    const std::string load0 = load_average();
    const Cpu c0 = Cpu::now(fleetd, broker);
    const auto t0 = Clock::now();
    body(p);
    const Cpu c1 = Cpu::now(fleetd, broker);
    print_phase(p, std::max(floor_s, seconds_between(t0, p.last_answer)), c0, c1, run.count_, load0,
                run.first_failure_);
    return p.answered() == p.sent && p.send_failed == 0;
  };
  bool ok = true;
  for (double rate : rates) {
    ok = measure("open", seconds, [&](Phase& p) { open_loop(run, p, rate, seconds); }) && ok;
  }
  if (closed_seconds > 0) {
    ok =
        measure("closed", closed_seconds, [&](Phase& p) { closed_loop(run, p, closed_seconds); }) &&
        ok;
  }
  return ok ? 0 : 1;
}

int make_certs(const Args& a) {
  const std::string dir = a.get("dir");
  const auto count = a.number("count", 1000);
  const std::string prefix = a.get("prefix", "shadow");
  fs::create_directories(dir);
  testing::TestCa ca(dir, "ca");
  for (long i = 0; i < count && ca.ok(); ++i) {
    testing::CertOptions o;
    o.common_name = prefix + "-" + std::to_string(i);
    (void)ca.issue("thing-" + std::to_string(i), o);
  }
  if (!ca.ok()) {
    std::fprintf(stderr, "shadow_bench: test CA: %s\n", ca.error().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: shadow_bench certs|run --option value ...\n");
    return 2;
  }
  auto a = parse_args("shadow_bench", argc, argv, 2);
  if (!a) return 2;
  const std::string mode = argv[1];
  if (mode == "certs") return make_certs(*a);
  if (mode == "run") return run_updates(*a);
  std::fprintf(stderr, "shadow_bench: unknown mode '%s'\n", mode.c_str());
  return 2;
}
