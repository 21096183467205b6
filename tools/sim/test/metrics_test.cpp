// The simulator's measurements: histogram accuracy against exact percentiles, the exact coarse
// buckets Prometheus gets, series over simulated time, errors by cause, the /proc parsers.

#include "metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace edgekit::sim {
namespace {

using namespace std::chrono_literals;

// The exact nearest-rank percentile: the smallest value with at least q of the samples at or
// below it.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double q) {
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_percentiles_within_one_percent(std::vector<std::uint64_t> values, const char* what) {
  LatencyHistogram h;
  for (auto v : values) h.record_ns(v);
  std::sort(values.begin(), values.end());
  ASSERT_EQ(h.count(), values.size());
  EXPECT_EQ(h.min_ns(), values.front()) << what;
  EXPECT_EQ(h.max_ns(), values.back()) << what;
  long double sum = 0;
  for (auto v : values) sum += static_cast<long double>(v);
  EXPECT_NEAR(h.mean_ns(), static_cast<double>(sum / values.size()), 1e-6 * h.mean_ns()) << what;
  for (double q : {0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0}) {
    double exact = static_cast<double>(exact_percentile(values, q));
    double got = static_cast<double>(h.percentile_ns(q));
    // The promise is 1 %; the midpoint of a 1/128-wide bucket is within 1/256.
    EXPECT_LE(std::fabs(got - exact) / exact, 1.0 / 256 + 1e-12)
        << what << " q=" << q << " exact=" << exact << " got=" << got;
  }
}

TEST(LatencyHistogram, PercentilesOfRandomDataAreWithinOnePercentOfExact) {
  std::mt19937_64 rng(16);
  const std::size_t n = 200'000;
  {
    // Log-uniform over the whole range, 1 µs to 100 s.
    std::uniform_real_distribution<double> exp10(3.0, 11.0);
    std::vector<std::uint64_t> v(n);
    for (auto& x : v) x = static_cast<std::uint64_t>(std::pow(10.0, exp10(rng)));
    expect_percentiles_within_one_percent(v, "log-uniform 1 us..100 s");
  }
  {
    // Log-normal around 300 µs: a loopback handshake.
    std::lognormal_distribution<double> d(std::log(300'000.0), 0.6);
    std::vector<std::uint64_t> v(n);
    for (auto& x : v) x = static_cast<std::uint64_t>(std::clamp(d(rng), 1e3, 1e11));
    expect_percentiles_within_one_percent(v, "log-normal 300 us");
  }
  {
    // Two modes, with a 1 % tail a thousand times slower: p99.9 sits in the tail.
    std::normal_distribution<double> fast(50'000, 5'000), slow(50'000'000, 10'000'000);
    std::bernoulli_distribution tail(0.01);
    std::vector<std::uint64_t> v(n);
    for (auto& x : v) {
      x = static_cast<std::uint64_t>(std::max(1e3, tail(rng) ? slow(rng) : fast(rng)));
    }
    expect_percentiles_within_one_percent(v, "bimodal 50 us / 50 ms");
  }
  {
    // Few samples: ranks fall on single values.
    std::vector<std::uint64_t> v = {1'000, 7'777, 123'456, 9'999'999, 42'000'000'000};
    expect_percentiles_within_one_percent(v, "five values");
  }
}

TEST(LatencyHistogram, BucketsTileTheRangeAndAreAtMostOneHundredTwentyEighthWide) {
  EXPECT_LE(LatencyHistogram::bucket_lower_ns(0), LatencyHistogram::kLowestNs);
  EXPECT_GE(LatencyHistogram::bucket_upper_ns(LatencyHistogram::kBucketCount - 1),
            LatencyHistogram::kHighestNs);
  for (std::size_t i = 0; i < LatencyHistogram::kBucketCount; ++i) {
    auto lo = LatencyHistogram::bucket_lower_ns(i), hi = LatencyHistogram::bucket_upper_ns(i);
    ASSERT_LT(lo, hi);
    ASSERT_LE(static_cast<double>(hi - lo) / static_cast<double>(lo), 1.0 / 128) << i;
    if (i + 1 < LatencyHistogram::kBucketCount) {
      ASSERT_EQ(hi, LatencyHistogram::bucket_lower_ns(i + 1)) << i;
    }
    if (lo >= LatencyHistogram::kLowestNs && hi - 1 <= LatencyHistogram::kHighestNs) {
      ASSERT_EQ(LatencyHistogram::bucket_index(lo), i);
      ASSERT_EQ(LatencyHistogram::bucket_index(hi - 1), i);
    }
  }
}

TEST(LatencyHistogram, CoarseBucketsCountExactlyAtAndAroundTheirBounds) {
  LatencyHistogram h;
  std::vector<std::uint64_t> values = {0, 999, 1'000, 1'001, 200'000'000'000};
  for (auto b : LatencyHistogram::kCoarseBoundsNs) {
    values.insert(values.end(), {b - 1, b, b + 1});
  }
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> exp10(2.0, 11.5);
  for (int i = 0; i < 50'000; ++i) {
    values.push_back(static_cast<std::uint64_t>(std::pow(10.0, exp10(rng))));
  }
  for (auto v : values) h.record_ns(v);
  std::uint64_t cumulative = 0;
  for (std::size_t c = 0; c < LatencyHistogram::kCoarseBoundsNs.size(); ++c) {
    cumulative += h.coarse()[c];
    auto expected = static_cast<std::uint64_t>(
        std::count_if(values.begin(), values.end(),
                      [&](std::uint64_t v) { return v <= LatencyHistogram::kCoarseBoundsNs[c]; }));
    EXPECT_EQ(cumulative, expected) << "le " << LatencyHistogram::kCoarseBoundsNs[c];
  }
  EXPECT_EQ(cumulative + h.coarse().back(), values.size());
}

TEST(LatencyHistogram, ValuesOutsideTheRangeKeepExactMinMaxAndMean) {
  LatencyHistogram h;
  EXPECT_EQ(h.percentile_ns(0.5), 0u);
  EXPECT_EQ(h.mean_ns(), 0.0);
  h.record(-5ns);
  h.record(10ns);
  h.record(std::chrono::seconds(250));
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.min_ns(), 0u);
  EXPECT_EQ(h.max_ns(), 250'000'000'000u);
  EXPECT_DOUBLE_EQ(h.mean_ns(), (10.0 + 250e9) / 3);
  // Clamped into the end buckets, but a percentile stays within the recorded [min, max].
  EXPECT_EQ(h.percentile_ns(1.0), 250'000'000'000u);
  EXPECT_LE(h.percentile_ns(0.5), 1'010u);
}

TEST(LatencyHistogram, MergeAddsCounts) {
  LatencyHistogram a, b;
  a.record_ns(5'000);
  b.record_ns(9'000'000);
  b.record_ns(3'000);
  a.merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.min_ns(), 3'000u);
  EXPECT_EQ(a.max_ns(), 9'000'000u);
}

TEST(Metrics, TickTurnsCountersIntoRatesAndGaugesIntoValuesOverSimulatedTime) {
  Metrics::TimePoint t0{};
  Metrics m(t0, /*sample_machine=*/false);
  Counter& connects = m.counter(metric::kConnects, "connections");
  Gauge& connected = m.gauge(metric::kDevicesConnected);
  EXPECT_EQ(&connects, &m.counter(metric::kConnects));  // one entry per name, stable address
  connects.add(100);
  connected.set(100);
  m.tick(t0 + 1s);
  connects.add(50);
  connected.add(-20);
  m.tick(t0 + 1500ms);                // an uneven interval: the rate divides by it
  Counter& late = m.counter("late");  // created after two ticks: padded with zeros
  late.add(3);
  m.tick(t0 + 2500ms);

  ASSERT_EQ(m.tick_seconds(), (std::vector<double>{1.0, 1.5, 2.5}));
  auto series = [&](std::string_view name) {
    for (const auto& e : m.entries()) {
      if (e->name == name) return e->series;
    }
    ADD_FAILURE() << "no " << name;
    return Series{};
  };
  EXPECT_EQ(series(metric::kConnects).kind, Series::Kind::Rate);
  EXPECT_EQ(series(metric::kConnects).values, (std::vector<double>{100, 100, 0}));
  EXPECT_EQ(series(metric::kDevicesConnected).values, (std::vector<double>{100, 80, 80}));
  EXPECT_EQ(series("late").values, (std::vector<double>{0, 0, 3}));
  EXPECT_EQ(series(metric::kErrors).values, (std::vector<double>{0, 0, 0}));
}

TEST(Metrics, ErrorsAreCountedByCauseWithTheFirstExample) {
  Metrics m(Metrics::TimePoint{}, false);
  m.error("tls: handshake timeout", "device 17 after 10 s");
  m.error("tls: handshake timeout", "device 99 after 10 s");
  m.error("connack: not authorized", "device 4: reason 0x87");
  ASSERT_EQ(m.errors().size(), 2u);
  EXPECT_EQ(m.errors().at("tls: handshake timeout").count, 2u);
  EXPECT_EQ(m.errors().at("tls: handshake timeout").first_example, "device 17 after 10 s");
  EXPECT_EQ(m.counter(metric::kErrors).value(), 3u);
  Snapshot s = m.snapshot(Metrics::TimePoint{} + 2s);
  EXPECT_DOUBLE_EQ(s.elapsed_seconds, 2.0);
  ASSERT_EQ(s.errors.size(), 2u);
  EXPECT_EQ(s.errors[0], (std::pair<std::string, std::uint64_t>{"connack: not authorized", 1}));
}

TEST(Metrics, SnapshotCopiesEveryFigure) {
  Metrics m(Metrics::TimePoint{}, false);
  m.counter(metric::kMessages).add(7);
  m.gauge(metric::kDevicesConnected).set(3);
  m.histogram(metric::kConnack, "CONNECT to CONNACK").record(1500us);
  Snapshot s = m.snapshot(Metrics::TimePoint{});
  ASSERT_EQ(s.histograms.size(), 1u);
  EXPECT_EQ(s.histograms[0].help, "CONNECT to CONNACK");
  EXPECT_EQ(s.histograms[0].count, 1u);
  EXPECT_DOUBLE_EQ(s.histograms[0].sum_seconds, 0.0015);
  bool found = false;
  for (const auto& c : s.counters) found |= c.name == metric::kMessages && c.value == 7;
  EXPECT_TRUE(found);
  ASSERT_EQ(s.gauges.size(), 1u);
  EXPECT_EQ(s.gauges[0].value, 3);
}

TEST(Metrics, SamplesThisMachine) {
  auto t0 = std::chrono::steady_clock::now();
  Metrics m(t0, /*sample_machine=*/true);
  EXPECT_GT(m.machine().cores, 0u);
  EXPECT_GT(m.machine().mem_total_bytes, 0u);
  // Burn some CPU so that the process's share is measurable.
  volatile double x = 0;
  auto until = std::chrono::steady_clock::now() + 200ms;
  while (std::chrono::steady_clock::now() < until) x = x + std::sqrt(x + 1);
  m.tick(std::chrono::steady_clock::now());
  auto value = [&](std::string_view name) {
    for (const auto& e : m.entries()) {
      if (e->name == name) return e->series.values.at(0);
    }
    return -1.0;
  };
  EXPECT_GT(value(metric::kProcessCpuPercent), 5.0);  // busy for most of the interval
  EXPECT_LT(value(metric::kProcessCpuPercent), 100.0 * m.machine().cores + 50);
  EXPECT_GE(value(metric::kMachineCpuPercent), 0.0);
  EXPECT_LE(value(metric::kMachineCpuPercent), 100.0);
  EXPECT_GT(value(metric::kProcessRssBytes), 1e6);
  EXPECT_GE(value(metric::kProcessRssPeakBytes), value(metric::kProcessRssBytes));
  EXPECT_GE(value(metric::kMachineLoad1), 0.0);
}

TEST(ProcParsers, ReadTheKernelsFormats) {
  auto cpu = parse_proc_stat_cpu(
      "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\nintr 1\n");
  ASSERT_TRUE(cpu);
  EXPECT_EQ(cpu->second, 100u + 5 + 50 + 1000 + 20 + 3 + 2 + 1);
  EXPECT_EQ(cpu->first, cpu->second - 1000 - 20);
  EXPECT_FALSE(parse_proc_stat_cpu("cpu0 1 2 3 4\n"));
  EXPECT_FALSE(parse_proc_stat_cpu("cpu  1 2 x\n"));
  EXPECT_FALSE(parse_proc_stat_cpu(""));

  const char* status = "Name:\tsim\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\nThreads:\t1\n";
  EXPECT_EQ(parse_status_kb(status, "VmRSS"), 10240u * 1024);
  EXPECT_EQ(parse_status_kb(status, "VmHWM"), 20480u * 1024);
  EXPECT_FALSE(parse_status_kb(status, "VmSwap"));
  EXPECT_FALSE(parse_status_kb("VmRSS:\t12 MB\n", "VmRSS"));
  EXPECT_FALSE(parse_status_kb("VmRSSX:\t12 kB\n", "VmRSS"));

  EXPECT_EQ(parse_loadavg("1.25 0.80 0.50 2/300 1234\n"), 1.25);
  EXPECT_FALSE(parse_loadavg("abc 1 2"));
  EXPECT_FALSE(parse_loadavg(""));

  EXPECT_EQ(parse_cpuinfo_model("processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nflags\t: x\n"),
            "Example CPU @ 2.0GHz");
  EXPECT_FALSE(parse_cpuinfo_model("processor\t: 0\n"));
}

}  // namespace
}  // namespace edgekit::sim
