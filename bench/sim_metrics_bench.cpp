// The fleet simulator's measurements (tools/sim), Google Benchmark: what one sample costs the
// loop thread (a latency into the log-linear histogram, a counter increment) beside the exact
// alternative (keep every sample, sort for percentiles); what the once-a-second work costs (a
// tick with machine sampling, a snapshot rendered for Prometheus); and drawing the report of an
// hour-long run. Items = samples (record benchmarks) or operations.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "metrics.hpp"
#include "prometheus.hpp"
#include "report.hpp"

namespace sim = edgekit::sim;

namespace {

// Latencies like a loopback TLS handshake: log-normal around 400 µs. 64 Ki values, cycled, so
// the input does not come from a predictable sequence.
const std::vector<std::uint64_t>& latencies() {
  static const std::vector<std::uint64_t> v = [] {
    std::mt19937_64 rng(16);
    std::lognormal_distribution<double> d(std::log(400'000.0), 0.8);
    std::vector<std::uint64_t> out(1 << 16);
    for (auto& x : out) x = static_cast<std::uint64_t>(d(rng));
    return out;
  }();
  return v;
}

void BM_HistogramRecord(benchmark::State& state) {
  sim::LatencyHistogram h;
  const auto& v = latencies();
  std::size_t i = 0;
  for (auto _ : state) {
    h.record_ns(v[i++ & (v.size() - 1)]);
  }
  benchmark::DoNotOptimize(h.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramRecord);

// The peer: keeping every sample (exact percentiles later), as a vector that grows.
void BM_ExactKeepEverySample(benchmark::State& state) {
  std::vector<std::uint64_t> kept;
  const auto& v = latencies();
  std::size_t i = 0;
  for (auto _ : state) {
    kept.push_back(v[i++ & (v.size() - 1)]);
    if (kept.size() == (1u << 22)) kept.clear();  // bounded memory: 32 MiB
  }
  benchmark::DoNotOptimize(kept.data());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExactKeepEverySample);

void BM_CounterAdd(benchmark::State& state) {
  sim::Metrics m(sim::Metrics::TimePoint{}, false);
  sim::Counter& c = m.counter(sim::metric::kMessages);
  for (auto _ : state) {
    c.add();
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterAdd);

// p50, p90, p99, p99.9 of 100,000 samples: from the histogram vs exact (nth_element on a copy).
void BM_HistogramPercentiles(benchmark::State& state) {
  sim::LatencyHistogram h;
  for (int k = 0; k < 100'000; ++k) h.record_ns(latencies()[static_cast<std::size_t>(k) & 0xffff]);
  for (auto _ : state) {
    for (double q : {0.5, 0.9, 0.99, 0.999}) benchmark::DoNotOptimize(h.percentile_ns(q));
  }
}
BENCHMARK(BM_HistogramPercentiles);

void BM_ExactPercentiles(benchmark::State& state) {
  std::vector<std::uint64_t> all(100'000);
  for (std::size_t k = 0; k < all.size(); ++k) all[k] = latencies()[k & 0xffff];
  for (auto _ : state) {
    auto copy = all;
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
      auto nth = copy.begin() + static_cast<std::ptrdiff_t>(q * static_cast<double>(copy.size()));
      std::nth_element(copy.begin(), nth, copy.end());
      benchmark::DoNotOptimize(*nth);
    }
  }
}
BENCHMARK(BM_ExactPercentiles);

// A registry like a run's: 6 counters, 2 gauges, 7 histograms with samples.
void fill(sim::Metrics& m) {
  for (auto name :
       {sim::metric::kConnects, sim::metric::kProvisioned, sim::metric::kMessages,
        sim::metric::kOtaBytes, std::string_view("subscribes"), std::string_view("reconnects")}) {
    m.counter(name).add(1000);
  }
  m.gauge(sim::metric::kDevicesConnected).set(10'000);
  m.gauge("shadows_in_sync").set(9'000);
  for (auto name : {sim::metric::kTcpConnect, sim::metric::kTlsHandshake, sim::metric::kConnack,
                    sim::metric::kSuback, sim::metric::kProvisioning,
                    sim::metric::kShadowDeltaRoundTrip, sim::metric::kJobNotifyToSucceeded}) {
    auto& h = m.histogram(name);
    for (int k = 0; k < 10'000; ++k) h.record_ns(latencies()[static_cast<std::size_t>(k)]);
  }
}

// The once-a-second tick, with the machine sampled from /proc (the real files).
void BM_TickWithMachineSampling(benchmark::State& state) {
  auto t0 = std::chrono::steady_clock::time_point{};
  sim::Metrics m(t0, true);
  fill(m);
  auto now = t0;
  for (auto _ : state) {
    now += std::chrono::seconds(1);
    m.tick(now);
  }
}
BENCHMARK(BM_TickWithMachineSampling);

void BM_SnapshotPublish(benchmark::State& state) {
  sim::Metrics m(sim::Metrics::TimePoint{}, false);
  fill(m);
  sim::SnapshotBoard board;
  for (auto _ : state) board.publish(m.snapshot(sim::Metrics::TimePoint{}));
}
BENCHMARK(BM_SnapshotPublish);

// On the HTTP thread, per scrape.
void BM_RenderPrometheus(benchmark::State& state) {
  sim::Metrics m(sim::Metrics::TimePoint{}, false);
  fill(m);
  auto s = m.snapshot(sim::Metrics::TimePoint{});
  for (auto _ : state) benchmark::DoNotOptimize(sim::render_prometheus(s));
}
BENCHMARK(BM_RenderPrometheus);

// The reports of a one-hour run (3,600 ticks of 8 fleet series and the machine's 6).
void BM_ReportsOfOneHour(benchmark::State& state) {
  auto t0 = std::chrono::steady_clock::time_point{};
  sim::Metrics m(t0, false);
  fill(m);
  for (auto name : {sim::metric::kProcessCpuPercent, sim::metric::kProcessCpuSeconds,
                    sim::metric::kMachineCpuPercent, sim::metric::kProcessRssBytes,
                    sim::metric::kProcessRssPeakBytes, sim::metric::kMachineLoad1}) {
    m.gauge(name).set(50);
  }
  for (int s = 1; s <= 3600; ++s) {
    m.counter(sim::metric::kConnects).add(static_cast<std::uint64_t>(s % 300));
    m.tick(t0 + std::chrono::seconds(s));
  }
  std::size_t html_bytes = 0, json_bytes = 0;
  for (auto _ : state) {
    auto r = sim::build_report(m, t0 + std::chrono::seconds(3600), "bench", "2026-12-03T00:00:00Z");
    std::string html = sim::to_html(r);
    std::string json = sim::to_json(r).dump();
    html_bytes = html.size();
    json_bytes = json.size();
  }
  state.counters["html_bytes"] = static_cast<double>(html_bytes);
  state.counters["json_bytes"] = static_cast<double>(json_bytes);
}
BENCHMARK(BM_ReportsOfOneHour)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
