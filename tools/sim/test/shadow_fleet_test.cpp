// The real device Shadow client (edgekit::shadow::Client), unchanged, in one fiber per simulated
// device — a few hundred devices on one io_context thread — against a real Mosquitto with
// edgekit's plugin and the real fleetd's shadow service (services/fleetd/test/secured_broker.hpp;
// the devices use the trusted plain listener, since this test is about the fibers and the
// channel, not about per-device TLS identities).
//
// Each device: connect, start (subscribe), update reported {"n": i}, get and check it; then the
// operator sets desired {"color": "c-<i>"} for every thing and each device must receive its
// delta and report the colour; then fleetd is stopped (SIGSTOP) and every device's get must end
// with Timeout no earlier than its timeout and not much later; fleetd continues, answers the
// stale gets late (those replies must not be taken for the next request), and a last get must
// show both reported values. Nothing may be lost: every device passes every step. fleetd's
// admin API then shows the reported colours.
//
// Scale: EDGEKIT_SIM_DEVICES (default 300). Prints memory and CPU per device.
#include <gtest/gtest.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <edgekit/shadow/client.hpp>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "edgekit/json/json.hpp"
#include "fiber.hpp"
#include "loop_channel.hpp"
#include "secured_broker.hpp"
#include "sync.hpp"

namespace edgekit::fleetd::test {
namespace {

using namespace std::chrono_literals;
using sim::Fibers;
using sim::Wake;
namespace sh = edgekit::shadow;

constexpr Duration kCall{15000};         // every shadow call but the one meant to time out
constexpr Duration kShortCall{1500};     // the get while fleetd is stopped
constexpr Duration kTimeoutSlack{5000};  // how much later than its timeout it may end

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback
                                    : static_cast<std::size_t>(std::strtoull(v, nullptr, 10));
}
std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// A member of the reported section, or -1 / "".
std::int64_t reported_int(const shadow::Accepted& a, std::string_view key) {
  if (!a.reported) return -1;
  auto v = a.reported->find(key);
  return v ? v->as_int64().value_or(-1) : -1;
}
std::string reported_string(const shadow::Accepted& a, std::string_view key) {
  if (!a.reported) return {};
  auto v = a.reported->find(key);
  return v ? std::string(v->as_string_view().value_or("")) : std::string();
}

struct SimDevice {
  SimDevice(Fibers& f, mqtt_asio::Driver& d) : link(f, d) {}
  sim::Device<2048, 2> link;
  std::array<char, 512> request{};
  std::array<char, 2048> reply{};
  std::string delta_color;  // what the last delta said
  Duration timeout_took{};
};

class ShadowFleet : public SecuredBroker {
 protected:
  // The steps every device passes; the test thread opens each gate when all have arrived.
  enum Step : int { Synced = 1, Reported = 2, TimedOut = 3, Done = 4 };

  // The fibers end (a failed ASSERT may leave some waiting) while the gate, the semaphore and
  // the devices they use still exist.
  void TearDown() override {
    fibers_.shutdown();
    SecuredBroker::TearDown();
  }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      io_.restart();
      io_.run_for(20ms);
    }
    return true;
  }
  // In a fiber: waits until the test opens `gate`; false at shutdown.
  bool pass(int gate) { return gate_.pass(gate); }
  void arrive(int step) { ++arrived_[static_cast<std::size_t>(step)]; }
  bool all_at(int step) const {
    return arrived_[static_cast<std::size_t>(step)] + failed_ >= devices_.size();
  }
  void failure(std::size_t i, const std::string& what) {
    ++failed_;
    if (errors_.size() < 10) errors_.push_back("sim-" + std::to_string(i) + ": " + what);
  }
  bool connect(sim::LoopChannel& channel, const std::string& id) {
    // Paced: the broker's listen backlog must not drop a SYN.
    if (!connecting_.acquire()) return false;
    mqtt::ConnectOptions o;
    o.version = mqtt::Version::V5;
    o.client_id = id;
    o.keep_alive_seconds = 60;
    o.username = std::string_view("fleetd");
    o.password = mqtt::as_bytes(std::string_view(token_));
    auto r = channel.connect(*endpoint_, o, Duration{20000});
    connecting_.release();
    return static_cast<bool>(r);
  }

  void device(std::size_t i);
  void operator_fiber();

  asio::io_context io_;
  mqtt_asio::Driver driver_{io_};
  Fibers fibers_{io_};
  std::unique_ptr<mqtt_asio::Endpoint> endpoint_;
  std::vector<std::unique_ptr<SimDevice>> devices_;
  std::unique_ptr<SimDevice> operator_;
  std::vector<std::string> desired_;  // the operator's QoS 0 payloads: valid until written
  std::array<std::size_t, 5> arrived_{};
  std::size_t failed_ = 0;
  sim::Semaphore connecting_{fibers_, 32};
  sim::Gate gate_{fibers_};
  std::vector<std::string> errors_;
  std::size_t max_stack_ = 0;
};

void ShadowFleet::device(std::size_t i) {
  SimDevice& d = *devices_[i];
  const std::string thing = "sim-" + std::to_string(i);
  if (!connect(d.link.channel(), thing)) return failure(i, "connect");
  sh::ClientConfig config;
  config.thing = thing;
  config.token_seed = static_cast<std::uint32_t>(i);
  sh::Client client(d.link.channel(), config, d.request, d.reply);
  client.set_delta_handler({[](void* c, const sh::Delta& delta) {
                              auto color = delta.state.find("color");
                              if (!color) return;
                              auto s = color->as_string_view();
                              if (s) static_cast<SimDevice*>(c)->delta_color = std::string(*s);
                            },
                            &d});
  if (auto s = client.start(kCall); !s)
    return failure(i, std::string("start: ") + sh::to_string(s.error()));
  const auto n = static_cast<std::int64_t>(i);
  auto up = client.update(
      [n](sh::UpdateWriter& u) { u.reported().begin_object().member("n", n).end_object(); },
      std::nullopt, kCall);
  if (!up) return failure(i, std::string("update n: ") + sh::to_string(up.error().errc));
  auto got = client.get(kCall);
  if (!got) return failure(i, std::string("get: ") + sh::to_string(got.error().errc));
  if (reported_int(*got, "n") != n) return failure(i, "get: wrong n");
  client.document_applied(got->version);
  arrive(Synced);

  // The operator's desired colour arrives as a delta while the device polls.
  if (!pass(Reported)) return failure(i, "shutdown");
  const std::string want = "c-" + std::to_string(i);
  const Instant delta_by = mqtt_asio::Driver::now() + Duration{60000};
  while (d.delta_color != want && mqtt_asio::Driver::now() < delta_by) {
    if (auto p = client.poll(Duration{1000}); !p) return failure(i, "poll: not connected");
  }
  if (d.delta_color != want) return failure(i, "no delta (saw '" + d.delta_color + "')");
  up = client.update(
      [&want](sh::UpdateWriter& u) {
        u.reported().begin_object().member("color", want).end_object();
      },
      std::nullopt, kCall);
  if (!up) return failure(i, std::string("update color: ") + sh::to_string(up.error().errc));
  arrive(Reported);

  // fleetd is stopped: the get must time out, at its timeout.
  if (!pass(TimedOut)) return failure(i, "shutdown");
  const Instant t0 = mqtt_asio::Driver::now();
  auto lost = client.get(kShortCall);
  d.timeout_took = mqtt_asio::Driver::now() - t0;
  if (lost || lost.error().errc != sh::Errc::Timeout)
    return failure(i, "get while fleetd stopped did not time out");
  if (d.timeout_took < kShortCall || d.timeout_took > kShortCall + kTimeoutSlack) {
    return failure(i, "get timed out after " + std::to_string(d.timeout_took.count()) + " ms");
  }
  arrive(TimedOut);

  // fleetd continues and answers the stale get late; the next get takes only its own reply.
  if (!pass(Done)) return failure(i, "shutdown");
  got = client.get(kCall);
  if (!got) return failure(i, std::string("last get: ") + sh::to_string(got.error().errc));
  if (reported_string(*got, "color") != want || reported_int(*got, "n") != n) {
    return failure(i, "last get: wrong document");
  }
  client.stop(kCall);
  d.link.channel().close(Duration{5000});
  arrive(Done);
}

void ShadowFleet::operator_fiber() {
  if (!connect(operator_->link.channel(), "sim-operator")) return failure(0, "operator connect");
  if (!pass(Reported)) return;
  auto& conn = operator_->link.connection();
  for (std::size_t i = 0; i < devices_.size(); ++i) {
    mqtt::Publish p;
    const std::string topic = "$aws/things/sim-" + std::to_string(i) + "/shadow/update";
    p.topic = topic;  // encoded into the send buffer at once
    p.payload = mqtt::as_bytes(desired_[i]);
    for (;;) {
      auto r = conn.publish(p);
      if (r) break;
      if (r.error() != mqtt::Errc::SendQueueFull) return failure(i, "operator publish");
      if (fibers_.yield() == Wake::Stopping) return;  // the queue drains as the loop writes
    }
  }
  if (!pass(Done)) return;
  operator_->link.channel().close(Duration{5000});
}

TEST_F(ShadowFleet, ShadowClientsRunUnchangedInFibersOnOneThread) {
  const std::size_t n = env_size("EDGEKIT_SIM_DEVICES", 300);
  endpoint_ = std::make_unique<mqtt_asio::Endpoint>(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), broker_->port()));
  fibers_.on_fiber_end = [this](std::size_t touched) {
    max_stack_ = std::max(max_stack_, touched);
  };
  const std::size_t rss0 = rss_bytes();
  for (std::size_t i = 0; i < n; ++i) {
    devices_.push_back(std::make_unique<SimDevice>(fibers_, driver_));
    desired_.push_back(R"({"state":{"desired":{"color":"c-)" + std::to_string(i) +
                       R"("}},"clientToken":"op-)" + std::to_string(i) + "\"}");
  }
  operator_ = std::make_unique<SimDevice>(fibers_, driver_);
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  fibers_.spawn([this] { operator_fiber(); });
  for (std::size_t i = 0; i < n; ++i) fibers_.spawn([this, i] { device(i); });

  auto errors = [this] {
    std::string s;
    for (const auto& e : errors_) s += e + "\n";
    return s;
  };
  ASSERT_TRUE(run_until([&] { return all_at(Synced); }, 180s)) << errors();
  const std::size_t rss_connected = rss_bytes();
  const double synced_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  gate_.open(Reported);
  ASSERT_TRUE(run_until([&] { return all_at(Reported); }, 120s)) << errors();
  ASSERT_EQ(::kill(fleetd_, SIGSTOP), 0);
  gate_.open(TimedOut);
  const bool timed_out = run_until([&] { return all_at(TimedOut); }, 60s);
  ASSERT_EQ(::kill(fleetd_, SIGCONT), 0);
  ASSERT_TRUE(timed_out) << errors();
  gate_.open(Done);
  ASSERT_TRUE(run_until([&] { return all_at(Done) && fibers_.live() == 0; }, 120s)) << errors();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;

  EXPECT_EQ(failed_, 0u) << errors();
  EXPECT_EQ(arrived_[Done], n);
  Duration slowest{0};
  for (const auto& d : devices_) slowest = std::max(slowest, d->timeout_took);
  std::printf(
      "%zu shadow devices on one thread: all synced in %.1f s, whole run %.1f s, CPU %.1f s "
      "(%.2f ms per device; fleetd and Mosquitto not counted); RSS +%.1f KiB per connected "
      "device (this build); sizeof(SimDevice) %zu B (of which sim::Device<2048,2> %zu B); max "
      "fiber stack touched %zu B; %llu context switches; slowest timed-out get %lld ms (timeout "
      "%lld ms)\n",
      n, synced_s, wall, cpu, cpu * 1000 / static_cast<double>(n),
      static_cast<double>(rss_connected - rss0) / 1024.0 / static_cast<double>(n),
      sizeof(SimDevice), sizeof(sim::Device<2048, 2>), max_stack_,
      static_cast<unsigned long long>(fibers_.switches()), static_cast<long long>(slowest.count()),
      static_cast<long long>(kShortCall.count()));

  // fleetd kept what the devices reported.
  for (std::size_t i : {std::size_t{0}, n / 2, n - 1}) {
    auto r = admin_get("/admin/v1/things/sim-" + std::to_string(i) + "/shadow");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const auto doc = nlohmann::json::parse(r->body, nullptr, false);
    EXPECT_EQ(doc["state"]["reported"]["color"], "c-" + std::to_string(i)) << r->body;
    EXPECT_EQ(doc["state"]["reported"]["n"], static_cast<std::int64_t>(i)) << r->body;
  }
}

}  // namespace
}  // namespace edgekit::fleetd::test
