// Jobs at scale, end to end (issue 14's benchmark; scripts/bench-jobs runs it against a real
// fleetd and a real Mosquitto with edgekit's plugin). Not part of the test suite.
//
//   jobs_bench --admin URL --admin-token-file FILE --port P --ca FILE --cert FILE --key FILE
//              --cert-id ID --devices D --things M [--rate R] [--in-flight K]
//              [--fleetd-pid PID] [--broker-pid PID] [--run TAG]
//
// 1. Setup (admin API, one keep-alive HTTP connection): M things `jt-<run>-<i>` in the thing
//    group `jobs-bench-<run>`; every (M/D)-th of them is a device, and the device certificate
//    (registered by the script, one certificate for all devices: AWS lets a certificate be
//    attached to several things, and the client id picks the thing) is attached to it.
// 2. D devices connect on one standalone-Asio thread (edgekit::mqtt_asio), each over mutual TLS
//    as its thing (MQTT 5, client id = thing name), K handshakes in flight, and subscribe to
//    `…/jobs/notify-next` only (the replies to their own requests reach them privately).
//    A device that gets notify-next with a QUEUED execution sends start-next, then an update to
//    SUCCEEDED with the expectedVersion start-next returned (the edgekit::jobs writers and
//    readers).
// 3. Latency: one job for the D devices (targets.things). Per device: job create sent →
//    notify-next received, and notify-next → update/accepted.
// 4. Rollout: one job for the group (M executions) with maximumPerMinute R. A second thread
//    reads the job's status counts (admin describe) once a second: the executions recorded over
//    time; the devices answer as in 3. Ends when all M executions exist and every device
//    succeeded.
// fleetd's and Mosquitto's CPU: utime + stime from /proc/<pid>/stat around each phase.
// After the rollout: fleetd's CPU over 10 quiet seconds with the job's other executions queued.
// Prints one JSON line per phase (setup, latency, rollout).

#include <edgekit/jobs/documents.hpp>
#include <edgekit/jobs/topics.hpp>
#include <edgekit/tls/tls.hpp>

#include <atomic>
#include <thread>

#include "admin_client.hpp"
#include "edgekit/json/json.hpp"
#include "fleet_bench.hpp"

namespace {

using namespace edgekit;
using namespace edgekit::bench;
// edgekit has a Clock of its own (core/clock.hpp): the benchmarks measure with the steady one.
using Clock = bench::Clock;
using json = nlohmann::json;

// --- the devices -----------------------------------------------------------------------------

class Fleet;

class Device final : public mqtt_asio::Handler {
 public:
  Device(Fleet& fleet, mqtt_asio::Driver& driver, std::string thing);
  void start();
  void on_event(mqtt_asio::Connection& c, const mqtt::Event& e) override;
  void on_closed(mqtt_asio::Connection& c, std::error_code ec) override;
  const std::string& thing() const { return thing_; }

 private:
  void on_message(const mqtt::Publish& m);
  void send(std::string_view topic, std::string_view payload);
  void fail(const std::string& why);

  Fleet& fleet_;
  Link<> link_;
  std::string thing_;
  std::array<char, jobs::kMaxTopicLength> topic_{};
  std::array<char, 512> payload_{};  // the request in flight (its view must live until written)
  std::string job_;                  // the job being worked on, or the last one finished
  bool working_ = false;
  bool failed_ = false;
  Clock::time_point notified_;
};

class Fleet {
 public:
  Fleet(asio::io_context& io, const tls::TlsContext& tls, std::uint16_t port, std::size_t in_flight)
      : driver_(io),
        endpoint_({asio::ip::make_address_v4("127.0.0.1"), port}, &tls, "localhost"),
        in_flight_(in_flight) {}

  void add(std::string thing) {
    devices_.push_back(std::make_unique<Device>(*this, driver_, std::move(thing)));
  }
  void connect_more() {
    while (next_ < devices_.size() && next_ - subscribed_ - failures_ < in_flight_) {
      devices_[next_++]->start();
    }
  }
  void subscribed() {
    ++subscribed_;
    connect_more();
  }
  void failed(std::string why) {
    ++failures_;
    if (first_failure_.empty()) first_failure_ = std::move(why);
    connect_more();
  }
  void notified(const std::string& job) {
    const std::int64_t created = created_ns_.load();
    if (job == job_ && created != 0) {
      notify_ms_.push_back(static_cast<double>(Clock::now().time_since_epoch().count() - created) / 1e6);
    }
  }
  void succeeded(const std::string& job, double ms) {
    if (job != job_) return;
    succeeded_ms_.push_back(ms);
  }
  // A new phase: the job the devices' figures count for.
  void expect(const std::string& job) {
    job_ = job;
    notify_ms_.clear();
    succeeded_ms_.clear();
    created_ns_ = 0;
  }
  void created_now() { created_ns_ = Clock::now().time_since_epoch().count(); }

  mqtt_asio::Driver driver_;
  mqtt_asio::Endpoint endpoint_;
  std::size_t in_flight_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::size_t next_ = 0, subscribed_ = 0, failures_ = 0;
  std::string first_failure_;
  std::string job_;
  std::atomic<std::int64_t> created_ns_{0};  // set by the admin thread just before the create
  std::vector<double> notify_ms_, succeeded_ms_;
};

Device::Device(Fleet& fleet, mqtt_asio::Driver& driver, std::string thing)
    : fleet_(fleet), link_(driver, *this), thing_(std::move(thing)) {}

void Device::start() {
  mqtt::ConnectOptions o;
  o.version = mqtt::Version::V5;
  o.client_id = thing_;
  o.keep_alive_seconds = 300;
  if (auto r = link_.conn.start(fleet_.endpoint_, o, Duration{60000}); !r) {
    fail(std::string("start: ") + mqtt::to_string(r.error()));
  }
}

void Device::fail(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  fleet_.failed(thing_ + ": " + why);
  link_.conn.stop();
}

void Device::send(std::string_view topic, std::string_view payload) {
  mqtt::Publish p;
  p.topic = topic;
  p.payload = mqtt::as_bytes(payload);
  p.qos = mqtt::QoS::AtLeastOnce;
  if (auto r = link_.conn.publish(p); !r) fail(std::string("publish: ") + mqtt::to_string(r.error()));
}

void Device::on_event(mqtt_asio::Connection& c, const mqtt::Event& e) {
  using mqtt::EventType;
  if (failed_) return;
  switch (e.type) {
    case EventType::Connected: {
      auto t = jobs::topic(thing_, jobs::Operation::NotifyNext, jobs::TopicKind::Request, {}, topic_);
      if (!t) return fail("notify-next topic");
      const mqtt::Subscription sub{*t, mqtt::SubscribeOptions{mqtt::QoS::AtLeastOnce}};
      if (auto r = c.subscribe(std::span(&sub, 1)); !r) fail("subscribe");
      break;
    }
    case EventType::SubscribeCompleted:
      if (e.reason_codes.empty() || static_cast<int>(e.reason_codes[0]) >= 0x80) {
        return fail("SUBACK refused");
      }
      fleet_.subscribed();
      break;
    case EventType::MessageReceived:
      if (e.message != nullptr) on_message(*e.message);
      break;
    case EventType::PublishCompleted:
      if (static_cast<int>(e.reason_code) >= 0x80) {
        fail(std::string("PUBACK ") + mqtt::to_string(e.reason_code));
      }
      break;
    default:
      fail(std::string("event ") + std::to_string(static_cast<int>(e.type)) + " " +
           mqtt::to_string(e.error) + " " + mqtt::to_string(e.reason_code));
      break;
  }
}

void Device::on_message(const mqtt::Publish& m) {
  const std::string_view payload(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
  auto where = jobs::match_topic(m.topic);
  if (!where) return fail("message on " + std::string(m.topic));
  if (where->kind == jobs::TopicKind::Rejected) {
    return fail("rejected on " + std::string(m.topic) + ": " + std::string(payload));
  }
  switch (where->op) {
    case jobs::Operation::NotifyNext: {
      auto next = jobs::read_execution_reply(payload);
      if (!next) return fail("notify-next unreadable");
      // Only a newly queued job starts work: notify-next also follows the device's own changes.
      if (!next->execution || next->execution->status != jobs::JobStatus::Queued || working_) return;
      working_ = true;
      job_ = std::string(next->execution->job_id);
      notified_ = Clock::now();
      fleet_.notified(job_);
      auto t = jobs::topic(thing_, jobs::Operation::StartNext, jobs::TopicKind::Request, {}, topic_);
      auto body = jobs::write_start_next_request({}, payload_);
      if (!t || !body) return fail("start-next request");
      return send(*t, *body);
    }
    case jobs::Operation::StartNext: {
      auto r = jobs::read_execution_reply(payload);
      if (!r || !r->execution) return fail("start-next/accepted without an execution");
      if (r->execution->job_id != job_) return fail("start-next gave " + std::string(r->execution->job_id));
      jobs::UpdateRequest u;
      u.status = jobs::JobStatus::Succeeded;
      u.expected_version = r->execution->version_number;
      auto t = jobs::topic(thing_, jobs::Operation::Update, jobs::TopicKind::Request, job_, topic_);
      auto body = jobs::write_update_request(u, payload_);
      if (!t || !body) return fail("update request");
      return send(*t, *body);
    }
    case jobs::Operation::Update:
      if (where->job_id != job_) return fail("update/accepted of " + std::string(where->job_id));
      working_ = false;
      fleet_.succeeded(job_, seconds_between(notified_, Clock::now()) * 1e3);
      return;
    default:
      return fail("unexpected " + std::string(m.topic));
  }
}

void Device::on_closed(mqtt_asio::Connection&, std::error_code ec) {
  if (!failed_) fail("closed: " + ec.message());
}

// --- the phases ------------------------------------------------------------------------------

struct Cpu {
  long fleetd = 0, broker = 0;
  double f0 = 0, b0 = 0, f1 = 0, b1 = 0;
  void begin() { f0 = other_cpu_seconds(fleetd), b0 = other_cpu_seconds(broker); }
  void end() { f1 = other_cpu_seconds(fleetd), b1 = other_cpu_seconds(broker); }
  void print(double per) const {
    const double n = per > 0 ? per : 1;
    std::printf("\"fleetd_cpu_s\":%.2f,\"broker_cpu_s\":%.2f,\"fleetd_cpu_ms_per_execution\":%.3f,"
                "\"broker_cpu_ms_per_execution\":%.3f,",
                f1 - f0, b1 - b0, (f1 - f0) * 1e3 / n, (b1 - b0) * 1e3 / n);
  }
};

// The sum of a describe's jobProcessDetails: the executions recorded (-1: no answer).
long executions_recorded(Admin& admin, const std::string& job) {
  auto [status, body] = admin.call("GET", "/admin/v1/jobs/" + job);
  if (status != 200) return -1;
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.contains("jobProcessDetails")) return -1;
  long n = 0;
  for (const auto& [k, v] : j["jobProcessDetails"].items()) {
    if (v.is_number_integer()) n += v.get<long>();
  }
  return n;
}

int run(const Args& a) {
  const std::string tag = a.get("run", "b");
  const std::size_t things = static_cast<std::size_t>(a.number("things", 1000));
  const std::size_t devices = std::min(things, static_cast<std::size_t>(a.number("devices", 100)));
  const long rate = a.number("rate", 10000);
  const std::string cert_id = a.get("cert-id");
  const std::string url = a.get("admin");
  const std::string token = read_word(a.get("admin-token-file"));
  Cpu cpu;
  cpu.fleetd = a.number("fleetd-pid", 0);
  cpu.broker = a.number("broker-pid", 0);

  // 1. Setup.
  Admin admin(url, token);
  const std::string group = "jobs-bench-" + tag;
  std::string failure;
  const auto s0 = Clock::now();
  cpu.begin();
  admin.ok("POST", "/admin/v1/thing-groups", json{{"groupName", group}}.dump(), failure);
  const std::size_t stride = things / devices;
  std::vector<std::string> device_things;
  for (std::size_t i = 0; i < things && failure.empty(); ++i) {
    char name[48];
    std::snprintf(name, sizeof name, "jt-%s-%05zu", tag.c_str(), i);
    admin.ok("POST", "/admin/v1/things", json{{"thingName", name}}.dump(), failure);
    admin.ok("PUT", "/admin/v1/thing-groups/" + group + "/things/" + name, "", failure);
    if (i % stride == 0 && device_things.size() < devices) {
      admin.ok("PUT", std::string("/admin/v1/things/") + name + "/certificates/" + cert_id, "", failure);
      device_things.emplace_back(name);
    }
  }
  cpu.end();
  const double setup_s = seconds_between(s0, Clock::now());
  std::printf("{\"mode\":\"setup\",\"things\":%zu,\"devices\":%zu,\"wall_s\":%.2f,"
              "\"requests_per_s\":%.0f,", things, device_things.size(), setup_s,
              static_cast<double>(2 * things + device_things.size()) / setup_s);
  cpu.print(static_cast<double>(things));
  std::printf("\"failure\":\"");
  print_json_text(failure);
  std::printf("\"}\n");
  std::fflush(stdout);
  if (!failure.empty()) return 1;

  // 2. The devices connect and subscribe.
  tls::Config c;
  c.ca_file = a.get("ca");
  c.certificate_file = a.get("cert");
  c.private_key_file = a.get("key");
  auto tls = tls::TlsContext::create(c);
  if (!tls) {
    std::fprintf(stderr, "jobs_bench: TLS: %s\n", tls.error().message().c_str());
    return 1;
  }
  asio::io_context io(1);
  Fleet fleet(io, *tls, static_cast<std::uint16_t>(a.number("port", 0)),
              static_cast<std::size_t>(a.number("in-flight", 32)));
  for (auto& t : device_things) fleet.add(t);
  const auto c0 = Clock::now();
  fleet.connect_more();
  const bool connected = run_io_until(
      io, [&] { return fleet.subscribed_ + fleet.failures_ >= devices; },
      60.0 + static_cast<double>(devices) / 20.0);
  const double connect_s = seconds_between(c0, Clock::now());
  if (!connected || fleet.failures_ > 0) {
    std::fprintf(stderr, "jobs_bench: %zu of %zu devices subscribed in %.1f s; first failure: %s\n",
                 fleet.subscribed_, devices, connect_s, fleet.first_failure_.c_str());
    return 1;
  }

  // Runs the admin work of a phase on its own thread while this thread carries the devices.
  std::atomic<bool> admin_done{false};
  std::string admin_failure;
  const auto phase = [&](const std::function<void(Admin&)>& work, const std::function<bool()>& done,
                         double limit_s) {
    admin_done = false;
    std::thread t([&] {
      Admin own(url, token);
      work(own);
      admin_done = true;
    });
    const bool finished = run_io_until(io, [&] { return admin_done && done(); }, limit_s);
    // The admin thread's requests are bounded by its HTTP timeouts and the phase's own bound.
    t.join();
    return finished;
  };

  // 3. Latency: one job for the devices.
  const std::string lat_job = "latency-" + tag;
  fleet.expect(lat_job);
  json targets = json::array();
  for (auto& t : device_things) targets.push_back(t);
  const std::string lat_body =
      json{{"jobId", lat_job}, {"document", {{"operation", "bench"}}}, {"targets", {{"things", targets}}}}.dump();
  double create_ms = 0;
  cpu.begin();
  const auto l0 = Clock::now();
  bool finished = phase(
      [&](Admin& own) {
        fleet.created_now();
        const auto t0 = Clock::now();
        own.ok("POST", "/admin/v1/jobs", lat_body, admin_failure);
        create_ms = seconds_between(t0, Clock::now()) * 1e3;
      },
      [&] { return !admin_failure.empty() || fleet.succeeded_ms_.size() + fleet.failures_ >= devices; },
      60.0 + static_cast<double>(devices) / 20.0);
  const double lat_wall = seconds_between(l0, Clock::now());
  cpu.end();
  std::printf("{\"mode\":\"latency\",\"devices\":%zu,\"succeeded\":%zu,\"failures\":%zu,"
              "\"connect_s\":%.2f,\"create_request_ms\":%.1f,\"wall_s\":%.2f,",
              devices, fleet.succeeded_ms_.size(), fleet.failures_, connect_s, create_ms, lat_wall);
  cpu.print(static_cast<double>(devices));
  print_ms("notify_ms", fleet.notify_ms_);
  print_ms("succeeded_ms", fleet.succeeded_ms_);
  std::printf("\"load\":\"%s\",\"finished\":%s,\"first_failure\":\"", load_average().c_str(),
              finished ? "true" : "false");
  print_json_text(!admin_failure.empty() ? admin_failure : fleet.first_failure_);
  std::printf("\"}\n");
  std::fflush(stdout);
  if (!finished || fleet.failures_ > 0 || !admin_failure.empty()) return 1;

  // 4. The rollout: every thing of the group, at `rate` per minute.
  const std::string roll_job = "rollout-" + tag;
  fleet.expect(roll_job);
  const std::string roll_body =
      json{{"jobId", roll_job},
           {"document", {{"operation", "bench"}}},
           {"targets", {{"thingGroups", {group}}}},
           {"jobExecutionsRolloutConfig", {{"maximumPerMinute", rate}}}}
          .dump();
  std::vector<std::pair<double, long>> timeline;  // seconds since create, executions recorded
  std::atomic<long> recorded{0};
  // The rate bounds the time: M executions at R per minute, plus a minute of slack.
  const double limit = 60.0 + 60.0 * static_cast<double>(things) / static_cast<double>(rate) * 1.5;
  cpu.begin();
  const auto r0 = Clock::now();
  finished = phase(
      [&](Admin& own) {
        fleet.created_now();
        if (!own.ok("POST", "/admin/v1/jobs", roll_body, admin_failure)) return;
        const auto end = r0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limit));
        // Once a second (each describe is one counting query in fleetd: its CPU is in the
        // figure, and small against the rollout's).
        for (auto next = r0 + std::chrono::seconds(1); Clock::now() < end; next += std::chrono::seconds(1)) {
          std::this_thread::sleep_until(next);
          const long n = executions_recorded(own, roll_job);
          if (n < 0) continue;
          timeline.emplace_back(seconds_between(r0, Clock::now()), n);
          recorded = n;
          if (n >= static_cast<long>(things)) return;
        }
      },
      [&] { return !admin_failure.empty() || fleet.succeeded_ms_.size() + fleet.failures_ >= devices; },
      limit + 10);
  const double roll_wall = seconds_between(r0, Clock::now());
  cpu.end();
  // The steady rate: between the first sample past 10 % and the first past 90 %.
  double t10 = -1, t90 = -1, t_all = -1;
  long n10 = 0, n90 = 0, max_in_60 = 0;
  for (const auto& [t, n] : timeline) {
    if (t10 < 0 && n >= static_cast<long>(things) / 10) t10 = t, n10 = n;
    if (t90 < 0 && n >= static_cast<long>(things) * 9 / 10) t90 = t, n90 = n;
    if (t_all < 0 && n >= static_cast<long>(things)) t_all = t;
  }
  for (std::size_t i = 0; i < timeline.size(); ++i) {
    for (std::size_t j = i; j < timeline.size() && timeline[j].first - timeline[i].first <= 60.0; ++j) {
      max_in_60 = std::max(max_in_60, timeline[j].second - (i == 0 ? 0 : timeline[i - 1].second));
    }
  }
  // After the rollout: the job stays IN_PROGRESS with its M - D executions QUEUED (those things
  // have no device), as in a fleet where most devices are offline. fleetd's timer still walks the
  // job every 0.5 s: its CPU over 10 quiet seconds is what that costs.
  const double idle0 = other_cpu_seconds(cpu.fleetd);
  std::this_thread::sleep_for(std::chrono::seconds(10));
  const double idle_percent = (other_cpu_seconds(cpu.fleetd) - idle0) / 10.0 * 100.0;
  const double steady = t90 > t10 && t10 >= 0 ? static_cast<double>(n90 - n10) / (t90 - t10) * 60 : 0;
  std::printf("{\"mode\":\"rollout\",\"executions\":%ld,\"target\":%zu,\"rate_per_minute\":%ld,"
              "\"devices\":%zu,\"devices_succeeded\":%zu,\"failures\":%zu,\"wall_s\":%.2f,"
              "\"all_recorded_s\":%.2f,\"steady_per_minute\":%.0f,\"max_in_60s\":%ld,"
              "\"fleetd_idle_cpu_percent\":%.1f,",
              recorded.load(), things, rate, devices, fleet.succeeded_ms_.size(), fleet.failures_,
              roll_wall, t_all, steady, max_in_60, idle_percent);
  cpu.print(static_cast<double>(recorded.load()));
  print_ms("notify_to_succeeded_ms", fleet.succeeded_ms_);
  std::printf("\"timeline\":[");
  for (std::size_t i = 0; i < timeline.size(); ++i) {
    std::printf("%s[%.2f,%ld]", i ? "," : "", timeline[i].first, timeline[i].second);
  }
  std::printf("],\"load\":\"%s\",\"finished\":%s,\"first_failure\":\"", load_average().c_str(),
              finished ? "true" : "false");
  print_json_text(!admin_failure.empty() ? admin_failure : fleet.first_failure_);
  std::printf("\"}\n");
  return finished && fleet.failures_ == 0 && admin_failure.empty() &&
                 recorded.load() >= static_cast<long>(things)
             ? 0
             : 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto a = parse_args("jobs_bench", argc, argv, 1);
  if (!a) return 2;
  return run(*a);
}
