// The minimal MQTT 3.1.1 client (edgekit/mqtt/lite.hpp) as a benchmark client: the same
// arguments, modes and output as edgekit_bench (common/bench_common.h), so that scripts and
// tables can set it beside the full client and the raw-send floor. MQTT 3.1.1 only.
#include <array>
#include <cstddef>
#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

#include "bench_common.h"
#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/lite.hpp"
#include "edgekit/transport/tcp.hpp"

namespace mqtt = edgekit::mqtt;
namespace lite = edgekit::mqtt::lite;
using edgekit::Duration;

namespace {

constexpr std::size_t kRxSize = 64 * 1024;  // one read takes up to this much: many packets
constexpr std::size_t kRecords = 64;        // bounds the QoS 1 window

struct Bench {
  long completed = 0;
  long received = 0;
  bool subscribed = false;
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
  void operator()(lite::Client&, const lite::Event& e) {
    if (e.type == lite::EventType::PublishCompleted) {
      ++completed;
    } else if (e.type == lite::EventType::MessageReceived) {
      last_ns = bench_now_ns();
      if (received++ == 0) first_ns = last_ns;
    } else if (e.type == lite::EventType::SubscribeCompleted) {
      subscribed = e.error == mqtt::Errc::Ok;
    }
  }
};

std::array<std::byte, kRxSize> g_rx;
std::array<lite::Record, kRecords> g_records;
std::array<std::uint16_t, kRecords> g_incoming_qos2;

int die(const char* what, mqtt::Errc e) {
  std::fprintf(stderr, "lite_bench: %s: %s\n", what, mqtt::to_string(e));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  bench_args a{};
  if (!bench_parse(argc, argv, &a) || a.version != 311) {
    if (a.version == 5) std::fprintf(stderr, "lite_bench: MQTT 3.1.1 only\n");
    return 2;
  }
  if (a.window > static_cast<long>(kRecords)) a.window = kRecords;

  edgekit::SteadyClock clock;
  auto tcp = edgekit::transport::TcpTransport::connect(
      a.host, static_cast<std::uint16_t>(a.port), Duration{5000});
  if (!tcp) {
    std::fprintf(stderr, "lite_bench: cannot connect\n");
    return 1;
  }
  Bench bench;
  lite::Client client(clock, g_records, g_incoming_qos2, g_rx, lite::Handler::bind(bench));
  lite::ConnectOptions opts;
  const std::string id = "lite-" + std::string(argv[1]) + "-" + std::to_string(getpid());
  opts.client_id = id;
  if (auto r = client.connect(*tcp, opts, Duration{5000}); !r) return die("connect", r.error());

  std::vector<std::byte> payload(static_cast<std::size_t>(a.payload), std::byte{'x'});
  const mqtt::Bytes body(payload.data(), payload.size());
  const std::string_view topic = a.topic;
  const mqtt::QoS qos = a.qos == 1 ? mqtt::QoS::AtLeastOnce : mqtt::QoS::AtMostOnce;

  bench_result res{};
  res.client = "edgekit-lite";
  res.args = &a;
  std::vector<std::int64_t> rtts;

  switch (a.mode) {
    case BENCH_SUB: {
      const lite::Filter f[] = {{topic, qos}};
      if (auto r = client.subscribe(f, Duration{5000}); !r) return die("subscribe", r.error());
      while (!bench.subscribed) {
        if (auto r = client.process_loop(Duration{5000}); !r) return die("process_loop", r.error());
      }
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
        if (qos != mqtt::QoS::AtMostOnce) {
          while (static_cast<long>(client.outstanding()) >= a.window) {
            if (auto r = client.process_loop(Duration{5000}); !r) return die("process_loop", r.error());
          }
        }
        if (auto r = client.publish(topic, body, qos, false, Duration{5000}); !r)
          return die("publish", r.error());
      }
      while (client.outstanding() > 0) {
        if (auto r = client.process_loop(Duration{5000}); !r) return die("process_loop", r.error());
      }
      res.t_end_ns = bench_now_ns();
      res.cpu_us = bench_cpu_us() - cpu0;
      res.messages = a.count;
      break;
    }
    case BENCH_RTT: {
      rtts.resize(static_cast<std::size_t>(a.count));
      const std::int64_t cpu0 = bench_cpu_us();
      res.t_start_ns = bench_now_ns();
      for (long i = 0; i < a.count; ++i) {
        const std::int64_t t0 = bench_now_ns();
        const long done = bench.completed;
        if (auto r = client.publish(topic, body, mqtt::QoS::AtLeastOnce, false, Duration{5000}); !r)
          return die("publish", r.error());
        while (bench.completed == done) {
          if (auto r = client.process_loop(Duration{5000}); !r) return die("process_loop", r.error());
        }
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
