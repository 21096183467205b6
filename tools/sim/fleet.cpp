#include "fleet.hpp"

#include <edgekit/core/clock.hpp>
#include <edgekit/jobs/executor.hpp>
#include <edgekit/jobs/runner.hpp>
#include <edgekit/mqtt_asio/connection.hpp>
#include <edgekit/shadow/client.hpp>
#include <httplib.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <asio/post.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "claim.hpp"
#include "command.hpp"
#include "edgekit/json/json.hpp"
#include "fiber.hpp"
#include "loop_channel.hpp"
#include "ota_phase.hpp"

namespace edgekit::sim {
namespace {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

// A device's buffers: 2 KB each way holds every packet of the simulated flows (a shadow
// document with metadata, a job execution with its small document); 8 QoS 1 records bound the
// telemetry a device has in flight.
constexpr std::size_t kBuffer = 2048;
constexpr std::size_t kRecords = 8;
using Link = Device<kBuffer, kRecords>;

constexpr Duration kCall{30000};     // one SDK request (fleetd may be busy with 10,000 others)
constexpr Duration kClose{5000};
constexpr std::string_view kJobOperation = "sim-noop";
constexpr int kOperatorConnections = 16;  // the operator's admin API connections at once

// This process's CPU time (user + system) in seconds.
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

std::int64_t ns_since_epoch(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

struct SimDevice {
  SimDevice(Fibers& fibers, mqtt_asio::Driver& driver, std::uint32_t i, std::string name)
      : link(fibers, driver), index(i), thing(std::move(name)), topic(thing + "/telemetry"),
        commands(thing + "/commands") {}

  enum class State : std::uint8_t { Waiting, Connecting, Connected, Down, Failed, Done };

  Link link;
  std::uint32_t index;
  std::string thing;
  std::string topic;     // <thing>/telemetry: the default thing policy allows <thing>/*
  std::string commands;  // <thing>/commands: what a device subscribes to after connecting
  // By claim: the client id of the claim connection, and the identity provisioning gave.
  std::string claim_client;
  tls::ClientIdentity own;
  Fiber* fiber = nullptr;
  State state = State::Waiting;
  bool reboot = false;         // the next connect starts clean (a reboot lost the session)
  TimePoint stall_end{};       // when the last stall of its link ends (or ended)
  SteadyClock::duration stall_length{};
  bool cut = false;            // the scenario closed its socket (a cut or a reboot)
  std::uint32_t phase_seen = 0;
  TimePoint connect_started{};
  std::array<std::pair<std::uint16_t, TimePoint>, kRecords> inflight{};
  std::uint8_t inflight_count = 0;
  // Shadow: the desired colour of the last delta, and when the operator asked for it.
  std::string delta_color;
  std::atomic<std::int64_t> desired_sent_ns{0};
  // Jobs: when notify-next came, and whether this device's job succeeded.
  std::optional<TimePoint> notified;
  bool job_done = false;
};

}  // namespace

struct Fleet::Impl {
  Impl(asio::io_context& io_context, Metrics& m, FleetOptions opts)
      : io(io_context), metrics(m), o(std::move(opts)), driver(io), fibers(io),
        tcp(m.histogram(metric::kTcpConnect, "TCP connect: SYN to established")),
        tls_hs(m.histogram(metric::kTlsHandshake, "TLS handshake, mutual authentication")),
        connack(m.histogram(metric::kConnack, "CONNECT written to CONNACK received")),
        suback(m.histogram(metric::kSuback, "SUBSCRIBE to SUBACK")),
        puback(m.histogram("puback", "QoS 1 PUBLISH to PUBACK (telemetry)")),
        shadow_rt(m.histogram(metric::kShadowDeltaRoundTrip,
                              "operator's desired update sent to the device's report accepted")),
        job_notify(m.histogram(metric::kJobNotifyToSucceeded,
                               "notify-next received to SUCCEEDED accepted")),
        job_created(m.histogram("job_created_to_succeeded",
                                "the job created (admin API) to the device's SUCCEEDED accepted")),
        provisioning_h(m.histogram(metric::kProvisioning,
                                   "by claim: claim connect started to RegisterThing accepted")),
        provisioned(m.counter(metric::kProvisioned, "devices provisioned by claim")),
        ota_notify(m.histogram(metric::kOtaJobToSucceeded,
                               "OTA job notify-next received to SUCCEEDED accepted (download, "
                               "verification, reboot, self-test)")),
        ota_bytes(m.counter(metric::kOtaBytes, "OTA image bytes stored by the devices")),
        connects(m.counter(metric::kConnects, "successful MQTT connects (reconnects included)")),
        messages(m.counter(metric::kMessages, "telemetry messages published")),
        acked(m.counter("messages_acknowledged", "QoS 1 telemetry acknowledged by the broker")),
        connected_gauge(m.gauge(metric::kDevicesConnected, "devices connected now")) {}

  void start();
  void run();  // the orchestrator fiber
  void device_main(SimDevice& d);
  // Connects `d` (`attempts` times, or until the run ends when `keep_trying`).
  bool connect(SimDevice& d, bool clean, bool keep_trying);
  // By claim: connects with the claim identity, provisions, closes; false when it failed.
  bool provision(SimDevice& d);
  void on_event(SimDevice& d, const mqtt::Event& e);
  void on_closed(SimDevice& d, std::error_code ec);
  // The device's connection is gone (cause empty: one the scenario cut); it reconnects.
  // `keep_alive`: the engine closed it for want of a PINGRESP (KeepAliveTimeout).
  void mark_down(SimDevice& d, const std::string& cause, bool keep_alive = false);
  bool phase_shadow(SimDevice& d, const ShadowSpec& spec);
  bool phase_jobs(SimDevice& d, const JobsSpec& spec);
  // The OTA phase (ota_phase.hpp): the operator's image and update, and one device's part.
  void prepare_ota(const OtaSpec& spec);
  void start_ota_update(const OtaSpec& spec);
  bool phase_ota(SimDevice& d, const OtaSpec& spec);
  void run_telemetry(const TelemetrySpec& spec, const FaultSpec* faults);
  // Publishes one telemetry message from `d`; false when it could not (counted by cause).
  bool publish_one(SimDevice& d);
  void run_device_phase(const Phase& p);
  // Waits for the PUBACKs of the phase that ended at `phase_end` (see FleetOptions::drain).
  void drain(TimePoint phase_end);
  // Links silent or gone: a device whose messages cannot be acknowledged until it is back.
  static bool offline(SimDevice& d) {
    return d.state != SimDevice::State::Connected || d.link.connection().stalled();
  }
  bool sleep(Duration d) { return fibers.sleep_for(d) != Wake::Stopping && !stopping; }
  void log(const std::string& line) {
    if (o.log) o.log(line);
  }
  void fail(SimDevice& d, const std::string& cause, const std::string& detail) {
    metrics.error(cause, d.thing + ": " + detail);
  }
  // Runs `work` on a thread of its own; `orchestrator` is woken when it has finished.
  void background(std::function<void()> work);
  void wake_all();
  std::uint32_t count(SimDevice::State s) const {
    std::uint32_t n = 0;
    for (const auto& d : devices) n += d->state == s ? 1u : 0u;
    return n;
  }

  asio::io_context& io;
  Metrics& metrics;
  FleetOptions o;
  mqtt_asio::Driver driver;
  Fibers fibers;
  LatencyHistogram& tcp;
  LatencyHistogram& tls_hs;
  LatencyHistogram& connack;
  LatencyHistogram& suback;
  LatencyHistogram& puback;
  LatencyHistogram& shadow_rt;
  LatencyHistogram& job_notify;
  LatencyHistogram& job_created;
  LatencyHistogram& provisioning_h;
  Counter& provisioned;
  LatencyHistogram& ota_notify;
  Counter& ota_bytes;
  Counter& connects;
  Counter& messages;
  Counter& acked;
  Gauge& connected_gauge;
  std::vector<std::unique_ptr<SimDevice>> devices;
  FleetSummary summary;
  Fiber* orchestrator = nullptr;
  std::uint32_t connecting = 0;  // device fibers in their first connect
  std::uint32_t settled = 0;     // devices whose first connect ended (either way)
  std::uint32_t phase_seq = 0;   // phases handed to the devices so far
  const Phase* phase = nullptr;  // the one running
  std::uint32_t phase_ready = 0, phase_done = 0;
  std::uint32_t shadow_round = 0;  // the operator has asked for round n's colour
  bool phase_abort = false;        // the operator failed: the phase cannot succeed, end it
  std::optional<TimePoint> job_created_at;
  std::shared_ptr<const OtaRelease> ota_release;  // the OTA phase's image, signed (else null)
  std::atomic<bool> stopping{false};  // also read by the operator's thread
  bool finished = false;
  std::vector<std::uint8_t> payload;
  // The telemetry phase running: its QoS, and in closed loop (rate 0) the messages still to send.
  bool telemetry_open = false;
  bool closed_loop = false;
  mqtt::QoS telemetry_qos = mqtt::QoS::AtLeastOnce;
  std::uint64_t budget = 0;
  std::vector<std::thread> threads;
  std::atomic<int> background_running{0};
  std::mt19937 random{12345};
};

void Fleet::Impl::start() {
  const Scenario& s = o.scenario;
  summary.devices = s.devices;
  devices.reserve(s.devices);
  for (std::uint32_t i = 0; i < s.devices; ++i) {
    auto d = std::make_unique<SimDevice>(fibers, driver, i, s.prefix + "-" + std::to_string(i));
    SimDevice* raw = d.get();
    d->link.observer = [this, raw](const mqtt::Event& e) { on_event(*raw, e); };
    d->link.closed_observer = [this, raw](std::error_code ec) { on_closed(*raw, ec); };
    devices.push_back(std::move(d));
  }
  orchestrator = fibers.spawn([this] {
    run();
    finished = true;
  });
}

void Fleet::Impl::wake_all() {
  for (auto& d : devices) {
    if (d->fiber != nullptr && d->state != SimDevice::State::Done &&
        d->state != SimDevice::State::Failed) {
      fibers.wake(d->fiber);
    }
  }
}

void Fleet::Impl::background(std::function<void()> work) {
  ++background_running;
  threads.emplace_back([this, work = std::move(work)] {
    work();
    asio::post(io, [this] {
      --background_running;
      if (orchestrator != nullptr) fibers.wake(orchestrator);
    });
  });
}

// --- one device ------------------------------------------------------------------------------

bool Fleet::Impl::connect(SimDevice& d, bool clean, bool keep_trying) {
  const ConnectSpec& spec = o.scenario.connect;
  for (std::uint32_t attempt = 1; (keep_trying || attempt <= spec.attempts) && !stopping;
       ++attempt) {
    mqtt::ConnectOptions options;
    options.version = o.mqtt5 ? mqtt::Version::V5 : mqtt::Version::V311;
    // By claim, until provisioned: the claim identity, under a client id of its own.
    const bool claiming = o.claim != nullptr && !d.own.valid();
    options.client_id = claiming ? d.claim_client : d.thing;
    options.keep_alive_seconds = spec.keep_alive_s;
    options.clean_start = clean;
    // A session that outlives a cut: the device resumes it and resends what was unacknowledged.
    if (o.mqtt5) options.properties.set_session_expiry_interval(3600);
    const tls::ClientIdentity* identity =
        claiming                ? &o.claim->claim_identity()
        : d.own.valid()         ? &d.own
        : o.tls != nullptr && d.index < o.identities.size() ? &o.identities[d.index].tls
                                                            : nullptr;
    mqtt_asio::Endpoint endpoint(o.broker, o.tls, o.server_name, identity);
    if (!o.source_addresses.empty()) {
      endpoint.source_address = o.source_addresses[d.index % o.source_addresses.size()];
    }
    d.state = SimDevice::State::Connecting;
    d.connect_started = SteadyClock::now();
    auto r = d.link.channel().connect(endpoint, options, Duration{spec.timeout_ms});
    if (r) {
      const auto& st = d.link.connection().stats();
      if (st.tcp_connected != TimePoint{}) tcp.record(st.tcp_connected - d.connect_started);
      if (st.tls_established != TimePoint{} && st.tcp_connected != TimePoint{}) {
        tls_hs.record(st.tls_established - st.tcp_connected);
      }
      connects.add();
      d.state = SimDevice::State::Connected;
      return true;
    }
    std::string cause = std::string("connect: ") + mqtt::to_string(r.error());
    if (auto te = d.link.connection().transport_error()) cause += " (" + te.message() + ")";
    fail(d, cause, "attempt " + std::to_string(attempt));
    // Backoff with jitter, so that a fleet refused at once does not come back at once; a
    // device that was connected keeps trying (capped at 30 s), as a real one does.
    std::uniform_int_distribution<int> jitter(0, 1000);
    const int base = 1000 * static_cast<int>(std::min<std::uint32_t>(attempt, 30));
    if ((keep_trying || attempt < spec.attempts) && !sleep(Duration{base + jitter(random)})) break;
  }
  d.state = SimDevice::State::Down;
  return false;
}

void Fleet::Impl::on_event(SimDevice& d, const mqtt::Event& e) {
  using mqtt::EventType;
  switch (e.type) {
    case EventType::Connected: {
      const auto& st = d.link.connection().stats();
      const TimePoint sent = st.tls_established != TimePoint{} ? st.tls_established
                             : st.tcp_connected != TimePoint{}  ? st.tcp_connected
                                                                : d.connect_started;
      connack.record(SteadyClock::now() - sent);
      break;
    }
    case EventType::PublishCompleted:
    case EventType::MessageLost: {
      auto* end = d.inflight.begin() + d.inflight_count;
      auto it = std::find_if(d.inflight.begin(), end,
                             [&](const auto& p) { return p.first == e.packet_id; });
      if (it == end) break;  // not telemetry (the SDK clients publish at QoS 0)
      const TimePoint sent = it->second;
      *it = *(end - 1);
      --d.inflight_count;
      if (e.type == EventType::MessageLost) {
        // A reboot loses the session by design (the scenario asked for it); anything else
        // losing one is a failure of the run. Both are reported, by cause.
        ++(d.reboot ? summary.lost_to_reboots : summary.lost_session);
        fail(d, d.reboot ? "lost: the device rebooted (clean session) before the PUBACK"
                         : "lost: the broker did not keep the session",
             "packet " + std::to_string(e.packet_id));
      } else if (static_cast<int>(e.reason_code) >= 0x80) {
        ++summary.refused;
        fail(d, std::string("PUBACK refused: ") + mqtt::to_string(e.reason_code),
             "packet " + std::to_string(e.packet_id));
      } else {
        ++summary.acknowledged;
        acked.add();
        puback.record(SteadyClock::now() - sent);
      }
      // Closed loop: the next message as soon as the last one is acknowledged.
      if (closed_loop && telemetry_open && budget > 0 && d.state == SimDevice::State::Connected) {
        publish_one(d);
      }
      break;
    }
    case EventType::ConnectionClosed:
    case EventType::ServerDisconnected:
      // The engine knows before the socket is gone (on_closed): no more publishes from now.
      mark_down(d,
                std::string("connection closed: ") + mqtt::to_string(e.error) +
                    (e.type == EventType::ServerDisconnected
                         ? std::string(" (") + mqtt::to_string(e.reason_code) + ")"
                         : std::string()),
                e.error == mqtt::Errc::KeepAliveTimeout);
      break;
    case EventType::MessageReceived:
      if (e.message != nullptr && e.message->topic.ends_with("/jobs/notify-next") &&
          !d.notified) {
        d.notified = SteadyClock::now();
      }
      break;
    default:
      break;
  }
}

void Fleet::Impl::mark_down(SimDevice& d, const std::string& cause, bool keep_alive) {
  if (d.state != SimDevice::State::Connected) return;  // a connect attempt or a close of ours
  d.state = SimDevice::State::Down;
  const bool cut = std::exchange(d.cut, false);
  connected_gauge.add(-1);
  // A stall of ours ended the connection when the keep-alive found it during the stall, or
  // when the stall outlasted the broker's keep-alive (1.5 intervals of silence): the broker
  // closed its side and the device reads that as the stall ends. Any other close during or
  // after a stall (a broker restart meanwhile) is counted as what it is.
  const TimePoint now = SteadyClock::now();
  const auto broker_grace = std::chrono::milliseconds(o.scenario.connect.keep_alive_s * 1500);
  const bool stall =
      d.stall_end != TimePoint{} &&
      ((keep_alive && now < d.stall_end) ||
       (d.stall_length >= broker_grace && now < d.stall_end + std::chrono::seconds(2)));
  if (stall) {
    ++summary.stalls_reconnected;
    metrics.counter("stalls_reconnected", "stalls that ended the connection; the device reconnected")
        .add();
    d.stall_end = TimePoint{};
  } else if (cut) {
    // Closed by the scenario: the engine reports it (ConnectionClosed) before on_closed's
    // Errc::Stopped, so the cause alone does not tell.
  } else if (!stopping && !cause.empty()) {
    fail(d, cause, "while connected");
  }
  if (d.fiber != nullptr) fibers.wake(d.fiber);
}

void Fleet::Impl::on_closed(SimDevice& d, std::error_code ec) {
  // A cut of ours (Errc::Stopped) is the scenario's, not a failure.
  const bool cut = !ec || ec == make_error_code(mqtt_asio::Errc::Stopped);
  mark_down(d, cut ? std::string() : "connection closed: " + ec.message());
}

bool Fleet::Impl::provision(SimDevice& d) {
  const TimePoint t0 = SteadyClock::now();
  d.claim_client = d.thing + "-claim";
  if (!connect(d, true, false)) return false;
  auto r = o.claim->provision(d.link.channel(), fibers, d.thing);
  // The claim connection ends here, as on a device; not a drop (mark_down ignores it).
  d.state = SimDevice::State::Connecting;
  d.link.channel().close(kClose);
  if (!r) {
    const std::string& e = r.error();
    const auto colon = e.find(": ");
    fail(d, "provisioning: " + e.substr(0, colon), colon == std::string::npos ? e : e.substr(colon + 2));
    return false;
  }
  d.own = std::move(r->identity);
  d.thing = r->thing_name;
  d.topic = d.thing + "/telemetry";
  d.commands = d.thing + "/commands";
  provisioning_h.record(SteadyClock::now() - t0);
  provisioned.add();
  ++summary.provisioned;
  return true;
}

void Fleet::Impl::device_main(SimDevice& d) {
  bool ok = (o.claim == nullptr || provision(d)) &&
            connect(d, o.scenario.connect.clean_start, false);
  if (ok) {
    // What a device does after connecting: subscribe to its commands.
    const std::string_view filters[] = {d.commands};
    const TimePoint t0 = SteadyClock::now();
    auto s = d.link.channel().subscribe(filters, kCall);
    if (s) {
      suback.record(SteadyClock::now() - t0);
    } else {
      fail(d, std::string("subscribe: ") + reqres::to_string(s.error()), d.commands);
      ok = false;
    }
  }
  --connecting;
  ++settled;
  if (!ok) {
    if (d.link.connection().active()) d.link.channel().close(kClose);
    d.state = SimDevice::State::Failed;
    ++summary.connect_failed;
    if (orchestrator != nullptr) fibers.wake(orchestrator);
    return;
  }
  connected_gauge.add(1);
  if (orchestrator != nullptr) fibers.wake(orchestrator);
  while (!stopping) {
    if (d.state == SimDevice::State::Down) {
      // Cut, reboot or broker restart: back on as a device would, resuming the session unless
      // it rebooted.
      if (d.link.connection().active()) d.link.channel().close(kClose);
      if (!connect(d, d.reboot, true)) {
        if (stopping) break;
        fail(d, "reconnect failed", "gave up after the attempts");
        d.state = SimDevice::State::Failed;
        return;
      }
      d.reboot = false;
      connected_gauge.add(1);
      continue;
    }
    if (d.phase_seen < phase_seq && phase != nullptr) {
      d.phase_seen = phase_seq;
      // Each failure is counted where it happens: the outcome is not needed here.
      if (phase->kind == Phase::Kind::Shadow) phase_shadow(d, phase->shadow);
      if (phase->kind == Phase::Kind::Jobs) phase_jobs(d, phase->jobs);
      if (phase->kind == Phase::Kind::Ota) phase_ota(d, phase->ota);
      ++phase_done;
      if (orchestrator != nullptr) fibers.wake(orchestrator);
      continue;
    }
    if (fibers.wait() == Wake::Stopping) break;
  }
  if (d.link.connection().active()) {
    if (d.state == SimDevice::State::Connected) connected_gauge.add(-1);
    d.state = SimDevice::State::Done;
    d.link.channel().close(kClose);
  }
  d.state = SimDevice::State::Done;
}

bool Fleet::Impl::phase_shadow(SimDevice& d, const ShadowSpec& spec) {
  std::array<char, 512> request{};
  std::array<char, kBuffer> reply{};
  shadow::ClientConfig config;
  config.thing = d.thing;
  config.token_seed = d.index;
  shadow::Client client(d.link.channel(), config, request, reply);
  client.set_delta_handler({[](void* c, const shadow::Delta& delta) {
                              auto color = delta.state.find("color");
                              if (!color) return;
                              if (auto s = color->as_string_view()) {
                                static_cast<SimDevice*>(c)->delta_color = std::string(*s);
                              }
                            },
                            &d});
  if (auto s = client.start(kCall); !s) {
    fail(d, std::string("shadow start: ") + shadow::to_string(s.error()), "subscribe");
    ++phase_ready;
    return false;
  }
  auto up = client.update(
      [](shadow::UpdateWriter& u) { u.reported().begin_object().member("color", "none").end_object(); },
      std::nullopt, kCall);
  ++phase_ready;
  if (orchestrator != nullptr) fibers.wake(orchestrator);
  if (!up) {
    fail(d, std::string("shadow update: ") + shadow::to_string(up.error().errc), "first report");
    client.stop(kCall);
    return false;
  }
  const TimePoint end = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                                 std::chrono::duration<double>(spec.timeout_s));
  bool ok = true;
  for (std::uint32_t round = 1; round <= spec.rounds && ok && !stopping; ++round) {
    // (Appended, not "r" + to_string: GCC 12's -O3 warns falsely on that form, -Wrestrict.)
    std::string want = "r";
    want += std::to_string(round);
    while (d.delta_color != want && SteadyClock::now() < end && !stopping) {
      if (auto p = client.poll(Duration{500}); !p) {
        fail(d, std::string("shadow poll: ") + shadow::to_string(p.error()), want);
        ok = false;
        break;
      }
    }
    if (!ok || stopping) break;
    if (d.delta_color != want) {
      fail(d, "shadow: no delta before the phase's timeout", "waited for " + want);
      ok = false;
      break;
    }
    up = client.update(
        [&want](shadow::UpdateWriter& u) { u.reported().begin_object().member("color", want).end_object(); },
        std::nullopt, kCall);
    if (!up) {
      fail(d, std::string("shadow update: ") + shadow::to_string(up.error().errc), want);
      ok = false;
      break;
    }
    const std::int64_t sent = d.desired_sent_ns.load();
    if (sent != 0) {
      shadow_rt.record(std::chrono::nanoseconds(ns_since_epoch(SteadyClock::now()) - sent));
    }
    ++summary.shadow_synced;
    ++phase_ready;  // this round done: the operator starts the next one when all are
    if (orchestrator != nullptr) fibers.wake(orchestrator);
    // The next round's delta is asked for only when every device has reported this one.
    while (round < spec.rounds && shadow_round <= round && SteadyClock::now() < end && !stopping) {
      if (auto p = client.poll(Duration{500}); !p) {
        ok = false;
        break;
      }
    }
  }
  client.stop(kCall);
  return ok;
}

namespace {
struct JobContext {
  SimDevice* device;
  bool succeeded = false;
  std::string failure;
};
}  // namespace

bool Fleet::Impl::phase_jobs(SimDevice& d, const JobsSpec& spec) {
  std::array<char, 1024> request{};
  std::array<char, 4096> reply{};
  std::array<char, 1024> document{};
  jobs::RamRecordSlot slot{};
  jobs::RamRecordStore store(slot);
  edgekit::SteadyClock clock;
  JobContext context{&d, false, {}};
  const jobs::JobHandler handlers[] = {
      {kJobOperation, jobs::RebootPolicy::FailJob,
       [](void* c, jobs::Runner& runner, const jobs::Job&) {
         auto* ctx = static_cast<JobContext*>(c);
         if (auto r = runner.finish(jobs::JobStatus::Succeeded); r) {
           ctx->succeeded = true;
         } else {
           ctx->failure = std::string("finish: ") + jobs::to_string(r.error());
         }
       },
       &context}};
  jobs::RunnerConfig config;
  config.thing = d.thing;
  config.handlers = handlers;
  config.token_prefix = "sim";
  config.token_seed = d.index;
  config.request_timeout = kCall;
  jobs::Runner runner(d.link.channel(), store, clock, config, {request, reply, document});
  d.notified.reset();
  auto started = runner.start(kCall);
  ++phase_ready;
  if (orchestrator != nullptr) fibers.wake(orchestrator);
  if (!started) {
    fail(d, std::string("jobs start: ") + jobs::to_string(started.error()), "subscribe");
    return false;
  }
  const TimePoint end = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                                 std::chrono::duration<double>(spec.timeout_s));
  while (!context.succeeded && context.failure.empty() && SteadyClock::now() < end && !stopping &&
         !phase_abort) {
    if (auto r = runner.run_for(Duration{500}); !r && r.error() != jobs::Errc::Timeout) {
      context.failure = std::string("run: ") + jobs::to_string(r.error());
    }
  }
  const TimePoint now = SteadyClock::now();
  if (context.succeeded) {
    ++summary.jobs_succeeded;
    if (d.notified) job_notify.record(now - *d.notified);
    if (job_created_at) job_created.record(now - *job_created_at);
    return true;
  }
  if (!stopping && !phase_abort) {
    fail(d, context.failure.empty() ? std::string("jobs: no job before the phase's timeout")
                                    : "jobs " + context.failure.substr(0, context.failure.find(':')),
         context.failure);
  }
  return false;
}

// --- the OTA phase (ota_phase.hpp) -----------------------------------------------------------

void Fleet::Impl::prepare_ota(const OtaSpec& spec) {
  auto release = std::make_shared<OtaRelease>(make_ota_images(spec));
  auto error = std::make_shared<std::string>();
  background([this, release, error] {
    *error = prepare_ota_release(o.admin_url, o.admin_token, o.scenario.prefix, *release);
  });
  while (background_running > 0) fibers.sleep_for(Duration{50});
  if (!error->empty()) {
    metrics.error("operator: OTA image refused", *error);
    phase_abort = true;  // no update will come: the devices do not wait for one
    return;
  }
  ota_release = release;
}

void Fleet::Impl::start_ota_update(const OtaSpec& spec) {
  auto things = std::make_shared<std::vector<std::string>>();
  if (spec.group.empty()) {
    for (auto& d : devices) {
      if (d->state == SimDevice::State::Connected) things->push_back(d->thing);
    }
  }
  job_created_at = SteadyClock::now();
  background([this, spec, things, release = ota_release] {
    const std::string error = create_ota_update(o.admin_url, o.admin_token, spec, *release, *things);
    if (!error.empty()) {
      asio::post(io, [this, error] {
        metrics.error("operator: OTA update refused", error);
        phase_abort = true;
      });
    }
  });
}

bool Fleet::Impl::phase_ota(SimDevice& d, const OtaSpec& spec) {
  if (!ota_release) return false;  // the operator failed (counted once, as its error)
  d.notified.reset();
  const std::shared_ptr<const OtaRelease> release = ota_release;
  OtaDeviceHooks hooks;
  hooks.ready = [this] {
    ++phase_ready;
    if (orchestrator != nullptr) fibers.wake(orchestrator);
  };
  hooks.reboot = [this, &d] {
    // A device resets into its new image: its connection drops, and the new image connects
    // as a device's first connect does (`connect.clean_start`).
    if (d.link.connection().active()) d.link.channel().close(kClose);
    if (d.state == SimDevice::State::Connected) {
      d.state = SimDevice::State::Down;
      connected_gauge.add(-1);
    }
    if (!connect(d, o.scenario.connect.clean_start, false)) return false;
    connected_gauge.add(1);
    return true;
  };
  hooks.keep_going = [this] { return !stopping && !phase_abort; };
  hooks.sleep = [this](Duration t) { sleep(t); };
  const TimePoint end = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                                 std::chrono::duration<double>(spec.timeout_s));
  const OtaDeviceOutcome r = run_ota_device(d.link.channel(), d.thing, d.index, spec, *release,
                                            ota_bytes, end, hooks);
  if (r.succeeded && r.image_matches) {
    ++summary.ota_succeeded;
    if (d.notified) ota_notify.record(SteadyClock::now() - *d.notified);
    return true;
  }
  if (r.succeeded) {
    fail(d, "ota: SUCCEEDED but the active slot is not the uploaded image", "slot B differs");
  } else if (!stopping && !phase_abort && !r.cause.empty()) {
    fail(d, r.cause, r.detail);
  }
  return false;
}

// --- the orchestrator ------------------------------------------------------------------------

void Fleet::Impl::drain(TimePoint phase_end) {
  // Connected devices' messages get `drain` for their PUBACK; a device holding messages while
  // offline (reconnecting) or stalled resends them when it is back, so the drain waits for it
  // too, up to `drain_offline` after the phase.
  const TimePoint acks_by = SteadyClock::now() + o.drain;
  const TimePoint offline_by = std::max(acks_by, phase_end + o.drain_offline);
  auto waiting = [this, acks_by] {
    const bool acks_time = SteadyClock::now() < acks_by;
    for (const auto& d : devices) {
      if (d->inflight_count > 0 && (acks_time || offline(*d))) return true;
    }
    return false;
  };
  while (waiting() && SteadyClock::now() < offline_by && sleep(Duration{50})) {
  }
  char no_ack[64];
  std::snprintf(no_ack, sizeof no_ack, "lost: no PUBACK within %g s after the phase",
                static_cast<double>(o.drain.count()) / 1000.0);
  for (auto& d : devices) {
    for (std::uint8_t k = 0; k < d->inflight_count; ++k) {
      const std::string packet = "packet " + std::to_string(d->inflight[k].first);
      if (stopping) {
        ++summary.unacknowledged;
        fail(*d, "lost: the run was stopped before the PUBACK", packet);
      } else if (offline(*d)) {
        // Not lost: its session holds it and resends it on reconnect, after this count.
        ++summary.pending_offline;
        fail(*d, d->state == SimDevice::State::Connected
                     ? "pending: the device's link was stalled at the end of the drain"
                     : "pending: the device was offline at the end of the drain",
             packet);
      } else {
        ++summary.unacknowledged;
        fail(*d, no_ack, packet);
      }
    }
    d->inflight_count = 0;
  }
}

bool Fleet::Impl::publish_one(SimDevice& d) {
  mqtt::Publish p;
  p.topic = d.topic;
  p.payload = {reinterpret_cast<const std::byte*>(payload.data()), payload.size()};
  p.qos = telemetry_qos;
  auto r = d.link.connection().publish(p);
  if (!r) {
    // SendQueueFull: the socket is behind, this device's turn passes (open loop) or comes back
    // at the next tick (closed loop); anything else is counted.
    if (r.error() != mqtt::Errc::SendQueueFull) {
      fail(d, std::string("publish: ") + mqtt::to_string(r.error()), "telemetry");
    }
    return false;
  }
  ++summary.published;
  messages.add();
  if (budget > 0) --budget;
  if (telemetry_qos == mqtt::QoS::AtLeastOnce) d.inflight[d.inflight_count++] = {*r, SteadyClock::now()};
  return true;
}

void Fleet::Impl::run_telemetry(const TelemetrySpec& spec, const FaultSpec* faults) {
  payload.assign(spec.bytes, 'x');
  const double rate = spec.rate;
  telemetry_qos = spec.qos == 1 ? mqtt::QoS::AtLeastOnce : mqtt::QoS::AtMostOnce;
  closed_loop = rate <= 0;
  budget = spec.messages > 0 ? spec.messages : ~std::uint64_t{0};
  telemetry_open = true;
  const std::uint64_t published_before = summary.published;
  const double cpu0 = cpu_seconds();
  const TimePoint t0 = SteadyClock::now();
  const auto length = std::chrono::duration<double>(spec.seconds);
  std::uint64_t due_sent = 0, sent = 0, skipped = 0;
  std::size_t next = 0;
  double next_cut = faults != nullptr && faults->cuts_per_s > 0 ? 1.0 / faults->cuts_per_s : -1;
  double next_reboot =
      faults != nullptr && faults->reboots_per_s > 0 ? 1.0 / faults->reboots_per_s : -1;
  double next_stall = faults != nullptr && faults->stalls_per_s > 0 ? 1.0 / faults->stalls_per_s : -1;
  bool restarted = false;
  std::uniform_int_distribution<std::size_t> pick(0, devices.size() - 1);
  auto random_connected = [&]() -> SimDevice* {
    for (int tries = 0; tries < 32; ++tries) {
      SimDevice& d = *devices[pick(random)];
      if (d.state == SimDevice::State::Connected && !d.link.connection().stalled()) return &d;
    }
    return nullptr;
  };
  while (!stopping && budget > 0) {
    const double elapsed = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    if (elapsed >= length.count()) break;
    if (closed_loop) {
      // Devices with nothing in flight (at the start, after a reconnect) get their first one;
      // the acknowledgements keep the rest going (on_event).
      for (auto& dev : devices) {
        if (budget == 0) break;
        if (dev->state == SimDevice::State::Connected && dev->inflight_count == 0) publish_one(*dev);
      }
    }
    due_sent = closed_loop ? 0 : static_cast<std::uint64_t>(elapsed * rate) + 1;
    std::size_t scanned = 0;
    while (sent + skipped < due_sent && scanned < devices.size() && budget > 0) {
      SimDevice& d = *devices[next];
      next = (next + 1) % devices.size();
      ++scanned;
      if (d.state != SimDevice::State::Connected) continue;  // offline: the next one takes it
      if (telemetry_qos == mqtt::QoS::AtLeastOnce && d.inflight_count == kRecords) {
        if (d.link.connection().stalled()) continue;  // as offline: its link is silent
        ++skipped;  // this device has 8 unacknowledged: the broker is behind (counted)
        continue;
      }
      if (publish_one(d)) ++sent;
    }
    if (faults != nullptr) {
      if (next_cut >= 0 && elapsed >= next_cut) {
        next_cut += 1.0 / faults->cuts_per_s;
        if (SimDevice* d = random_connected()) {
          ++summary.cuts;
          d->cut = true;
          d->link.connection().stop();  // the socket closes under it; it resumes its session
        }
      }
      if (next_reboot >= 0 && elapsed >= next_reboot) {
        next_reboot += 1.0 / faults->reboots_per_s;
        if (SimDevice* d = random_connected()) {
          ++summary.reboots;
          d->reboot = true;  // its session is gone: unacknowledged messages are lost, counted
          d->cut = true;
          d->link.connection().stop();
        }
      }
      if (next_stall >= 0 && elapsed >= next_stall) {
        next_stall += 1.0 / faults->stalls_per_s;
        if (SimDevice* d = random_connected()) {
          ++summary.stalls;
          // Made at the first stall, so that runs without stalls show no such series.
          metrics.counter("stalls", "device links stalled (faults phase)").add();
          std::uniform_real_distribution<double> stall_s(faults->stall_min_s, faults->stall_max_s);
          const auto ms = static_cast<std::int64_t>(stall_s(random) * 1000);
          d->stall_length = std::chrono::milliseconds(ms);
          d->stall_end = SteadyClock::now() + d->stall_length;
          d->link.connection().stall(Duration{ms});  // the keep-alive may find it: it reconnects
        }
      }
      if (!restarted && faults->broker_restart_at_s && elapsed >= *faults->broker_restart_at_s) {
        restarted = true;
        if (o.broker_restart_command.empty()) {
          metrics.error("broker restart: no --broker-restart-command", "the fault was not run");
        } else {
          ++summary.broker_restarts;
          const std::string command = o.broker_restart_command;
          background([this, command] {
            if (run_command(command) != 0) {
              asio::post(io, [this, command] {
                metrics.error("broker restart command failed", command);
              });
            }
          });
        }
      }
    }
    if (!sleep(Duration{closed_loop ? 10 : 2})) break;
  }
  telemetry_open = false;
  sent = summary.published - published_before;
  if (skipped > 0) {
    metrics.error("telemetry: not sent, the device had 8 messages unacknowledged",
                  std::to_string(skipped) + " messages in this phase");
  }
  const TimePoint phase_end = SteadyClock::now();
  if (faults != nullptr) {
    // Every device back, and no link stalled, before the acks are counted and the next phase
    // starts: a cut device resends on resume.
    const TimePoint limit = phase_end + o.drain_offline;
    auto flowing = [this] {
      std::uint32_t n = 0;
      for (auto& d : devices) n += offline(*d) ? 0u : 1u;
      return n;
    };
    while (!stopping && SteadyClock::now() < limit &&
           flowing() < summary.connected - count(SimDevice::State::Failed) &&
           sleep(Duration{100})) {
    }
    while (background_running > 0 && sleep(Duration{100})) {
    }
  }
  drain(phase_end);
  char line[256];
  const double wall = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  // The simulator's whole CPU over the phase (acks, keep-alives and, in the faults phase,
  // reconnects included) per message sent.
  const double cpu_us = sent > 0 ? (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(sent) : 0;
  if (closed_loop) {
    std::snprintf(line, sizeof line,
                  "%s: %llu messages in %.1f s (%.0f/s, closed loop), simulator CPU %.1f us/message",
                  faults != nullptr ? "faults" : "telemetry",
                  static_cast<unsigned long long>(sent), wall, wall > 0 ? sent / wall : 0.0, cpu_us);
  } else {
    std::snprintf(line, sizeof line,
                  "%s: %llu messages in %.1f s (%.0f/s offered), simulator CPU %.1f us/message",
                  faults != nullptr ? "faults" : "telemetry",
                  static_cast<unsigned long long>(sent), wall, rate, cpu_us);
  }
  summary.phases.push_back(line);
  log(line);
}

void Fleet::Impl::run_device_phase(const Phase& p) {
  const TimePoint t0 = SteadyClock::now();
  const std::uint32_t online = count(SimDevice::State::Connected);
  const std::uint32_t synced_before = summary.shadow_synced;
  const std::uint32_t jobs_before = summary.jobs_succeeded;
  const std::uint32_t ota_before = summary.ota_succeeded;
  phase = &p;
  phase_ready = phase_done = 0;
  phase_abort = false;
  shadow_round = 0;
  job_created_at.reset();
  if (p.kind == Phase::Kind::Ota) prepare_ota(p.ota);  // the image uploaded and signed first
  ++phase_seq;
  wake_all();
  const double timeout_s = p.kind == Phase::Kind::Shadow ? p.shadow.timeout_s
                           : p.kind == Phase::Kind::Ota  ? p.ota.timeout_s
                                                         : p.jobs.timeout_s;
  const TimePoint limit = t0 + std::chrono::duration_cast<SteadyClock::duration>(
                                   std::chrono::duration<double>(timeout_s));
  auto wait_until = [&](const std::function<bool()>& done) {
    while (!done() && SteadyClock::now() < limit && !stopping && !phase_abort) {
      fibers.wait(mqtt_asio::Driver::now() + Duration{200});
    }
  };
  // Every device has subscribed and reported (shadow) or started its runner (jobs).
  wait_until([&] { return phase_ready + phase_done >= online; });
  if (p.kind == Phase::Kind::Ota) {
    if (!phase_abort) start_ota_update(p.ota);
  } else if (p.kind == Phase::Kind::Shadow) {
    for (std::uint32_t round = 1; round <= p.shadow.rounds && !stopping; ++round) {
      phase_ready = 0;
      shadow_round = round;
      // The operator: one admin request per thing, each stamped when sent, on
      // kOperatorConnections keep-alive connections at once (each request is a store commit in
      // fleetd; one connection at a time leaves the fleet waiting on fsync, 28 ms per request
      // measured at 10,000 things).
      auto targets = std::make_shared<std::vector<SimDevice*>>();
      for (auto& d : devices) targets->push_back(d.get());
      auto next_target = std::make_shared<std::atomic<std::size_t>>(0);
      for (int c = 0; c < kOperatorConnections; ++c) {
        background([this, targets, next_target, round] {
          httplib::Client admin(o.admin_url);
          admin.set_keep_alive(true);
          admin.set_read_timeout(60, 0);
          const httplib::Headers headers{{"Authorization", "Bearer " + o.admin_token}};
          std::string body = R"({"state":{"desired":{"color":"r)";
          body += std::to_string(round);
          body += R"("}}})";
          for (std::size_t i = (*next_target)++; i < targets->size() && !stopping;
               i = (*next_target)++) {
            SimDevice* d = (*targets)[i];
            d->desired_sent_ns.store(ns_since_epoch(SteadyClock::now()));
            // As an operator's tool would: a failed connection, a 5xx or a 429 is tried again
            // (three times, 250 ms apart) before it counts as refused — a device whose update
            // was never made waits for its delta until the phase's timeout.
            auto r = admin.Post("/admin/v1/things/" + d->thing + "/shadow", headers, body,
                                "application/json");
            for (int retry = 0; retry < 3 && !stopping &&
                                (!r || r->status / 100 == 5 || r->status == 429);
                 ++retry) {
              std::this_thread::sleep_for(std::chrono::milliseconds(250));
              r = admin.Post("/admin/v1/things/" + d->thing + "/shadow", headers, body,
                             "application/json");
            }
            if (!r || r->status / 100 != 2) {
              const std::string why = r ? std::to_string(r->status) + " " + r->body
                                        : httplib::to_string(r.error());
              asio::post(io, [this, why] { metrics.error("operator: shadow update refused", why); });
            }
          }
        });
      }
      // This round is over when every device has reported it or left the phase.
      wait_until([&] { return phase_ready + phase_done >= online; });
      while (background_running > 0 && sleep(Duration{50})) {
      }
    }
  } else {
    // The operator creates one job for every thing.
    std::vector<std::string> things;
    for (auto& d : devices) {
      if (d->state == SimDevice::State::Connected) things.push_back(d->thing);
    }
    const std::string job_id = "sim-" + std::to_string(std::time(nullptr));
    nlohmann::json body = {{"jobId", job_id}, {"document", {{"operation", kJobOperation}}}};
    if (p.jobs.group.empty()) {
      body["targets"] = {{"things", things}};
    } else {
      body["targets"] = {{"thingGroups", {p.jobs.group}}};
    }
    if (p.jobs.rollout_per_minute > 0) {
      body["jobExecutionsRolloutConfig"] = {
          {"maximumPerMinute", static_cast<std::int64_t>(p.jobs.rollout_per_minute)}};
    }
    job_created_at = SteadyClock::now();
    const std::string text = body.dump();
    background([this, text] {
      httplib::Client admin(o.admin_url);
      admin.set_read_timeout(120, 0);
      const httplib::Headers headers{{"Authorization", "Bearer " + o.admin_token}};
      auto r = admin.Post("/admin/v1/jobs", headers, text, "application/json");
      if (!r || r->status / 100 != 2) {
        const std::string why =
            r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error());
        asio::post(io, [this, why] {
          metrics.error("operator: job creation refused", why);
          phase_abort = true;  // no job will come: the devices stop waiting for one
        });
      }
    });
  }
  wait_until([&] { return phase_done >= online; });
  while (background_running > 0 && sleep(Duration{50})) {
  }
  // After an abort the devices leave the phase within their current wait (at most 0.5 s).
  while (phase_abort && phase_done < online && !stopping && sleep(Duration{50})) {
  }
  // Devices still inside the phase at its timeout end it now.
  if (phase_done < online && !stopping) {
    metrics.error(std::string(to_string(p.kind)) + ": phase timed out",
                  std::to_string(online - phase_done) + " devices had not finished");
  }
  const std::uint32_t wanted = p.kind == Phase::Kind::Shadow ? online * p.shadow.rounds : online;
  const std::uint32_t got = p.kind == Phase::Kind::Shadow ? summary.shadow_synced - synced_before
                            : p.kind == Phase::Kind::Ota  ? summary.ota_succeeded - ota_before
                                                          : summary.jobs_succeeded - jobs_before;
  if (got < wanted) summary.phase_incomplete += wanted - got;
  char line[256];
  if (p.kind == Phase::Kind::Shadow) {
    std::snprintf(line, sizeof line, "shadow: %u of %u device-rounds synced in %.1f s",
                  got, wanted,
                  std::chrono::duration<double>(SteadyClock::now() - t0).count());
  } else if (p.kind == Phase::Kind::Ota) {
    const double wall = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    std::snprintf(line, sizeof line,
                  "ota: %u of %u devices SUCCEEDED (image of %u B in blocks of %u B, verified, "
                  "rebooted) in %.1f s, %.0f KB/s stored fleet-wide",
                  got, wanted, p.ota.image_bytes, p.ota.block_bytes, wall,
                  wall > 0 ? static_cast<double>(got) * p.ota.image_bytes / 1024.0 / wall : 0.0);
    ota_release.reset();
  } else {
    std::snprintf(line, sizeof line, "jobs: %u of %u devices SUCCEEDED in %.1f s", got, wanted,
                  std::chrono::duration<double>(SteadyClock::now() - t0).count());
  }
  summary.phases.push_back(line);
  log(line);
  phase = nullptr;
}

void Fleet::Impl::run() {
  const Scenario& s = o.scenario;
  const TimePoint t0 = SteadyClock::now();
  log("connect storm: " + std::to_string(s.devices) + " devices");
  for (std::uint32_t i = 0; i < s.devices && !stopping; ++i) {
    for (;;) {
      const double elapsed = std::chrono::duration<double>(SteadyClock::now() - t0).count();
      const bool rate_ok = s.connect.rate <= 0 || static_cast<double>(i) < elapsed * s.connect.rate + 1;
      if (connecting < s.connect.in_flight && rate_ok) break;
      if (!sleep(Duration{2})) break;
    }
    if (stopping) break;
    SimDevice* d = devices[i].get();
    ++connecting;
    d->fiber = fibers.spawn([this, d] { device_main(*d); });
  }
  while (settled < s.devices && !stopping) {
    fibers.wait(mqtt_asio::Driver::now() + Duration{200});
  }
  summary.connected = s.devices - summary.connect_failed;
  {
    const double wall = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    char line[256];
    std::snprintf(line, sizeof line, "connect: %u of %u connected in %.1f s (%.0f/s)",
                  summary.connected, s.devices, wall,
                  wall > 0 ? summary.connected / wall : 0.0);
    summary.phases.push_back(line);
    log(line);
    if (o.claim != nullptr) {
      // End to end by claim: the claim connect, CreateCertificateFromCsr, RegisterThing and
      // the reconnect as the thing, over the whole storm.
      std::snprintf(line, sizeof line,
                    "provisioning by claim: %u of %u provisioned in %.1f s (%.0f/s end to end)",
                    summary.provisioned, s.devices, wall, wall > 0 ? summary.provisioned / wall : 0.0);
      summary.phases.push_back(line);
      log(line);
    }
  }
  for (const Phase& p : s.phases) {
    if (stopping) break;
    switch (p.kind) {
      case Phase::Kind::Telemetry:
        run_telemetry(p.telemetry, nullptr);
        break;
      case Phase::Kind::Faults: {
        TelemetrySpec t;
        t.seconds = p.faults.seconds;
        t.rate = p.faults.rate;
        run_telemetry(t, &p.faults);
        break;
      }
      case Phase::Kind::Shadow:
      case Phase::Kind::Jobs:
      case Phase::Kind::Ota:
        run_device_phase(p);
        break;
    }
  }
  if (!stopping && s.hold_s > 0) {
    log("holding the connections for " + std::to_string(static_cast<int>(s.hold_s)) + " s");
    sleep(Duration{static_cast<std::int64_t>(s.hold_s * 1000)});
  }
  summary.stopped = stopping;
  stopping = true;
  wake_all();
  while (background_running > 0) fibers.sleep_for(Duration{50});
}

// --- Fleet -----------------------------------------------------------------------------------

Fleet::Fleet(asio::io_context& io, Metrics& metrics, FleetOptions options)
    : impl_(std::make_unique<Impl>(io, metrics, std::move(options))) {}

Fleet::~Fleet() {
  impl_->stopping = true;
  impl_->fibers.shutdown();
  for (auto& t : impl_->threads) t.join();
}

void Fleet::start() { impl_->start(); }

void Fleet::request_stop() {
  if (impl_->stopping) return;
  impl_->stopping = true;
  impl_->log("stopping: the current phase ends, devices disconnect");
  impl_->wake_all();
  if (impl_->orchestrator != nullptr) impl_->fibers.wake(impl_->orchestrator);
}

bool Fleet::finished() const noexcept {
  return impl_->finished && impl_->fibers.live() == 0;
}

const FleetSummary& Fleet::summary() const noexcept { return impl_->summary; }

std::uint32_t Fleet::connected_now() const noexcept {
  return impl_->count(SimDevice::State::Connected);
}

std::size_t Fleet::device_bytes() noexcept { return sizeof(SimDevice); }

}  // namespace edgekit::sim
