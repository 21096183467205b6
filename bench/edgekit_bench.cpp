// edgekit end-to-end benchmark client: one process, one blocking Client over TCP, fixed buffers
// (no heap use by the client). Arguments and output: see common/bench_common.h.
#include <array>
#include <cstddef>
#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

#include "bench_common.h"
#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/client.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/transport/tcp.hpp"

namespace mqtt = edgekit::mqtt;
using edgekit::Duration;

namespace {

constexpr std::size_t kRxSize = 64 * 1024;  // one read takes up to this much: many packets
constexpr std::size_t kTxSize = 4 * 1024;
constexpr std::size_t kRecords = 64;        // session records: bounds the QoS 1 window

struct Bench {
  long outstanding = 0;   // QoS 1 publishes not yet acknowledged
  long completed = 0;
  long received = 0;
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
  void operator()(mqtt::Client&, const mqtt::Event& e) {
    if (e.type == mqtt::EventType::PublishCompleted) {
      --outstanding;
      ++completed;
    } else if (e.type == mqtt::EventType::MessageReceived) {
      last_ns = bench_now_ns();
      if (received++ == 0) first_ns = last_ns;
    }
  }
};

std::array<std::byte, kRxSize> g_rx;
std::array<std::byte, kTxSize> g_tx;
std::array<mqtt::OutgoingRecord, kRecords> g_outgoing;
std::array<std::uint16_t, kRecords> g_incoming_qos2;
mqtt::TopicAliasArena<1, 64> g_in_aliases;
mqtt::TopicAliasArena<1, 64> g_out_aliases;
std::array<char, 64> g_client_id;

int die(const char* what, mqtt::Errc e) {
  std::fprintf(stderr, "edgekit_bench: %s: %s\n", what, mqtt::to_string(e));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  bench_args a{};
  if (!bench_parse(argc, argv, &a)) return 2;
  if (a.window > static_cast<long>(kRecords)) a.window = kRecords;

  edgekit::SteadyClock clock;
  auto tcp = edgekit::transport::TcpTransport::connect(a.host, static_cast<std::uint16_t>(a.port), edgekit::Duration{5000});
  if (!tcp) {
    std::fprintf(stderr, "edgekit_bench: cannot connect\n");
    return 1;
  }
  mqtt::SessionStorage storage;
  storage.outgoing = g_outgoing;
  storage.incoming_qos2 = g_incoming_qos2;
  storage.inbound_aliases = g_in_aliases.storage();
  storage.outbound_aliases = g_out_aliases.storage();
  storage.client_id = g_client_id;
  mqtt::Session session(storage);
  Bench bench;
  mqtt::Client client(*tcp, clock, session, g_rx, g_tx, mqtt::EventHandler::bind(bench));

  mqtt::ConnectOptions opts;
  opts.version = a.version == 5 ? mqtt::Version::V5 : mqtt::Version::V311;
  std::string id = "edgekit-" + std::string(argv[1]) + "-" + std::to_string(getpid());
  opts.client_id = id;
  opts.keep_alive_seconds = 60;
  if (auto r = client.connect(opts, Duration{5000}); !r) return die("connect", r.error());

  std::vector<std::byte> payload(static_cast<std::size_t>(a.payload), std::byte{'x'});
  mqtt::Publish msg;
  msg.topic = a.topic;
  msg.payload = mqtt::Bytes(payload.data(), payload.size());
  msg.qos = a.qos == 1 ? mqtt::QoS::AtLeastOnce : mqtt::QoS::AtMostOnce;

  bench_result res{};
  res.client = a.version == 5 ? "edgekit-v5" : "edgekit";
  res.args = &a;
  std::vector<std::int64_t> rtts;

  switch (a.mode) {
    case BENCH_SUB: {
      mqtt::Subscription sub{a.topic, {}};
      sub.options.qos = msg.qos;
      std::array<mqtt::ReasonCode, 1> codes{};
      if (auto r = client.subscribe(std::span(&sub, 1), codes, Duration{5000}); !r)
        return die("subscribe", r.error());
      bench_ready();
      const std::int64_t cpu0 = bench_cpu_us();
      res.t_start_ns = bench_now_ns();
      while (bench.received < a.count) {
        const long before = bench.received;
        if (auto r = client.process_loop(Duration{5000}); !r) return die("process_loop", r.error());
        if (bench.received == before) break;  // 5 s without a message: the rest was lost
      }
      res.cpu_us = bench_cpu_us() - cpu0;
      res.messages = bench.received;
      res.t_first_ns = bench.first_ns;
      res.t_end_ns = bench.last_ns;
      break;
    }
    case BENCH_PUB: {
      const std::int64_t cpu0 = bench_cpu_us();
      res.t_start_ns = bench_now_ns();
      for (long i = 0; i < a.count; ++i) {
        if (msg.qos != mqtt::QoS::AtMostOnce) {
          while (bench.outstanding >= a.window) {
            if (auto r = client.process_loop(Duration{5000}); !r) return die("process_loop", r.error());
          }
        }
        auto r = client.publish(msg, Duration{5000});
        if (!r) return die("publish", r.error());
        if (msg.qos != mqtt::QoS::AtMostOnce) ++bench.outstanding;
      }
      while (bench.outstanding > 0) {
        if (auto r = client.process_loop(Duration{5000}); !r) return die("process_loop", r.error());
      }
      res.t_end_ns = bench_now_ns();
      res.cpu_us = bench_cpu_us() - cpu0;
      res.messages = a.count;
      break;
    }
    case BENCH_RTT: {
      msg.qos = mqtt::QoS::AtLeastOnce;
      rtts.resize(static_cast<std::size_t>(a.count));
      const std::int64_t cpu0 = bench_cpu_us();
      res.t_start_ns = bench_now_ns();
      for (long i = 0; i < a.count; ++i) {
        const std::int64_t t0 = bench_now_ns();
        auto r = client.publish_and_wait(msg, Duration{5000});
        if (!r) return die("publish_and_wait", r.error());
        rtts[static_cast<std::size_t>(i)] = bench_now_ns() - t0;
      }
      res.t_end_ns = bench_now_ns();
      res.cpu_us = bench_cpu_us() - cpu0;
      res.messages = a.count;
      res.p50_us = bench_percentile_us(rtts.data(), a.count, 50);
      res.p99_us = bench_percentile_us(rtts.data(), a.count, 99);
      break;
    }
  }
  (void)client.disconnect();
  bench_print(&res);
  return res.messages == a.count ? 0 : 3;
}
