// Seeds for fuzz_sim_report: reports written by the simulator's own code (an empty run, a run
// with every kind of figure and strings that need escaping), near misses, and /proc texts.
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "metrics.hpp"
#include "report.hpp"
#include "seeds.hpp"

namespace edgekit::fuzz {
namespace {

std::vector<std::uint8_t> bytes(std::string_view t) {
  return {t.begin(), t.end()};
}

}  // namespace

void sim_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&)) {
  using namespace edgekit::sim;
  using namespace std::chrono_literals;
  Metrics::TimePoint t0{};
  {
    Metrics m(t0, false);
    write("fuzz_sim_report",
          bytes(to_json(build_report(m, t0, "empty", "2026-12-03T00:00:00Z")).dump()));
  }
  Metrics m(t0, false);
  m.counter(metric::kConnects, "sessions").add(10);
  m.gauge(metric::kDevicesConnected).set(10);
  m.gauge(metric::kProcessCpuSeconds).set(1.5);
  m.gauge(metric::kProcessRssPeakBytes).set(1e8);
  m.histogram(metric::kConnack, "CONNECT to CONNACK").record(1500us);
  m.histogram(metric::kTlsHandshake).record(3ms);
  m.histogram(metric::kTlsHandshake).record(40s);
  m.error("<b>cause</b> & \"x\"", "first 'example'");
  m.tick(t0 + 1s);
  m.counter(metric::kMessages).add(1000);
  m.tick(t0 + 2s);
  const std::string full =
      to_json(build_report(m, t0 + 2s, "run <1>", "2026-12-03T00:00:00Z")).dump();
  write("fuzz_sim_report", bytes(full));
  // Near misses: another schema, a series one value short, a bucket count off by one.
  std::string other = full;
  other.replace(other.find("\"schema\":1"), 10, "\"schema\":2");
  write("fuzz_sim_report", bytes(other));
  std::string shortened = full;
  shortened.replace(shortened.find("\"values\":[0.0,"), 14, "\"values\":[");
  write("fuzz_sim_report", bytes(shortened));
  write("fuzz_sim_report",
        bytes("cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n"));
  write("fuzz_sim_report", bytes("Name:\tsim\nVmRSS:\t   10240 kB\n"));
  write("fuzz_sim_report", bytes("1.25 0.80 0.50 2/300 1234\n"));
}

}  // namespace edgekit::fuzz
