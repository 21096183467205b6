// edgekit::agent under load: THREADS threads call Agent::publish concurrently through the agent's
// one connection. The window (bench_mt.h) is taken before each publish and given back by the
// publish's CompletionHandler (QoS 0: handed to the transport; QoS 1: PUBACK). The agent is sized
// so that the window, not the agent, is the bound: command_slots = inflight_records = WINDOW.
// Besides bench_mt.h's fields it prints the agent's own counters: transport writes and reads
// (each one system call), batches of commands taken, and publishes rejected with QueueFull
// (retried; 0 expected).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "bench_mt.h"
#include "edgekit/agent/agent.hpp"
#include "edgekit/core/clock.hpp"

namespace agent = edgekit::agent;
namespace mqtt = edgekit::mqtt;

namespace {

struct Ctx {
  agent::Agent* agent = nullptr;
  mqtt::Publish message;
  bench_mt* mt = nullptr;
  std::atomic<long> queue_full{0};
  std::atomic<long> failures{0};
};

void on_done(void* context, const agent::Outcome& o) {
  auto* c = static_cast<Ctx*>(context);
  if (!o.ok()) c->failures.fetch_add(1, std::memory_order_relaxed);
  bench_mt_complete(c->mt);
}

int publish_one(void* user, long, long) {
  auto* c = static_cast<Ctx*>(user);
  for (;;) {
    auto r = c->agent->publish(c->message, agent::CompletionHandler{&on_done, c});
    if (r) return 0;
    if (r.error().code != agent::Errc::QueueFull) {
      std::fprintf(stderr, "agent_mt_bench: publish: %s\n", agent::to_string(r.error().code));
      return 1;
    }
    c->queue_full.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::yield();
  }
}

}  // namespace

int main(int argc, char** argv) {
  bench_args a{};
  long threads = 0;
  if (!bench_mt_parse(argc, argv, &a, &threads)) return 2;

  edgekit::SteadyClock clock;
  agent::TcpTransportFactory factory(a.host, static_cast<std::uint16_t>(a.port));
  agent::Config cfg;
  cfg.command_slots = static_cast<std::size_t>(a.window);
  cfg.inflight_records = static_cast<std::size_t>(a.window);
  cfg.slot_size = 256;
  std::string id = "agent-mt-" + std::to_string(getpid());
  mqtt::ConnectOptions opts;
  opts.version = a.version == 5 ? mqtt::Version::V5 : mqtt::Version::V311;
  opts.client_id = id;
  opts.keep_alive_seconds = 60;
  agent::Agent ag(cfg, opts, factory, clock);
  if (!ag.start()) {
    std::fprintf(stderr, "agent_mt_bench: start failed\n");
    return 1;
  }
  for (int i = 0; i < 500 && ag.state() != agent::ConnectionState::Connected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (ag.state() != agent::ConnectionState::Connected) {
    std::fprintf(stderr, "agent_mt_bench: not connected\n");
    return 1;
  }

  std::vector<std::byte> payload(static_cast<std::size_t>(a.payload), std::byte{'x'});
  Ctx ctx;
  ctx.agent = &ag;
  ctx.message.topic = a.topic;
  ctx.message.payload = mqtt::Bytes(payload.data(), payload.size());
  ctx.message.qos = a.qos == 1 ? mqtt::QoS::AtLeastOnce : mqtt::QoS::AtMostOnce;

  bench_mt mt{};
  mt.args = &a;
  mt.threads = threads;
  mt.publish = &publish_one;
  mt.user = &ctx;
  ctx.mt = &mt;
  bench_result res{};
  res.client = "edgekit-agent";
  res.args = &a;
  const agent::Stats s0 = ag.stats();
  const int rc = bench_mt_run(&mt, &res);
  const agent::Stats s1 = ag.stats();
  (void)ag.disconnect_and_wait(edgekit::Duration{2000});
  ag.stop();

  char extra[256];
  std::snprintf(extra, sizeof extra,
                "\"transport_writes\":%llu,\"transport_reads\":%llu,\"batches\":%llu,"
                "\"queue_full\":%ld,\"failed_outcomes\":%ld",
                static_cast<unsigned long long>(s1.writes - s0.writes),
                static_cast<unsigned long long>(s1.reads - s0.reads),
                static_cast<unsigned long long>(s1.batches - s0.batches), ctx.queue_full.load(),
                ctx.failures.load());
  bench_mt_print(&res, threads, extra);
  return rc == 0 && ctx.failures.load() == 0 ? 0 : 3;
}
