#pragma once
/// \file
/// The fleet simulator's measurements: latency histograms, counters and gauges sampled into
/// per-second series, errors by cause, and the machine (CPU, memory, load) beside them.
///
/// Everything here is recorded on the simulator's one event-loop thread: no member is
/// synchronised, and a sample costs a few integer operations (no lookup, no allocation) once the
/// caller holds the `Counter&`, `Gauge&` or `LatencyHistogram&` that the registry handed out.
/// Other threads (the Prometheus endpoint) see only `Snapshot` copies published by the loop
/// thread (prometheus.hpp). Nothing here reads a clock: the loop passes `now` to `tick`.

#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgekit::sim {

/// The names the simulator records under, so that the reports, the progress line and the
/// Prometheus endpoint agree. Other names may be added freely: the reports show every one.
namespace metric {
// Latency histograms.
inline constexpr std::string_view kTcpConnect = "tcp_connect";
inline constexpr std::string_view kTlsHandshake = "tls_handshake";
inline constexpr std::string_view kConnack = "connack";
inline constexpr std::string_view kSuback = "suback";
inline constexpr std::string_view kProvisioning = "provisioning";
inline constexpr std::string_view kShadowDeltaRoundTrip = "shadow_delta_round_trip";
inline constexpr std::string_view kJobNotifyToSucceeded = "job_notify_to_succeeded";
inline constexpr std::string_view kOtaJobToSucceeded = "ota_job_to_succeeded";
// Counters (each also a per-second rate series).
inline constexpr std::string_view kConnects = "connects";
inline constexpr std::string_view kProvisioned = "provisioned";
inline constexpr std::string_view kMessages = "messages";
inline constexpr std::string_view kOtaBytes = "ota_bytes";
inline constexpr std::string_view kErrors = "errors";  ///< kept by `Metrics::error`
// Gauges.
inline constexpr std::string_view kDevicesConnected = "devices_connected";
// The machine's gauges, kept by `Metrics::tick` when machine sampling is on.
inline constexpr std::string_view kProcessCpuPercent = "process_cpu_percent";
inline constexpr std::string_view kProcessCpuSeconds = "process_cpu_seconds";
inline constexpr std::string_view kMachineCpuPercent = "machine_cpu_percent";
inline constexpr std::string_view kProcessRssBytes = "process_rss_bytes";
inline constexpr std::string_view kProcessRssPeakBytes = "process_rss_peak_bytes";
inline constexpr std::string_view kMachineLoad1 = "machine_load1";
}  // namespace metric

/// A latency histogram with log-linear buckets in the manner of HdrHistogram: each power of two
/// of nanoseconds is cut into 128 equal buckets, so a bucket is at most 1/128 of its lower bound
/// wide and a percentile read at a bucket's midpoint is within 0.4 % of the exact value (the
/// 1 % the reports promise, with room). Range: 1 µs to 100 s; a value outside is counted at the
/// nearest end (min, max, sum and mean stay exact). 3,584 buckets, 28 KiB, allocated once by
/// the constructor; `record` allocates nothing and costs about 11 ns (docs/benchmarks.md).
class LatencyHistogram {
 public:
  static constexpr std::uint64_t kLowestNs = 1'000;
  static constexpr std::uint64_t kHighestNs = 100'000'000'000;
  static constexpr unsigned kSubBits = 7;
  static constexpr unsigned kFirstOctave = 9;  // 2^9 ns = 512 ns <= 1 µs
  static constexpr unsigned kLastOctave = 36;  // 2^37 ns > 100 s
  static constexpr std::size_t kBucketCount = std::size_t{kLastOctave - kFirstOctave + 1}
                                              << kSubBits;
  /// The bounds (inclusive upper, in ns) of the coarse buckets that Prometheus gets: 1, 2, 5
  /// per decade from 1 µs to 100 s; a last coarse bucket holds what lies above 100 s (+Inf).
  static constexpr std::array<std::uint64_t, 25> kCoarseBoundsNs = {
      1'000,         2'000,          5'000,          10'000,         20'000,
      50'000,        100'000,        200'000,        500'000,        1'000'000,
      2'000'000,     5'000'000,      10'000'000,     20'000'000,     50'000'000,
      100'000'000,   200'000'000,    500'000'000,    1'000'000'000,  2'000'000'000,
      5'000'000'000, 10'000'000'000, 20'000'000'000, 50'000'000'000, 100'000'000'000};
  static constexpr std::size_t kCoarseCount = kCoarseBoundsNs.size() + 1;

  LatencyHistogram();

  /// Counts one duration (negative counts as 0).
  void record(std::chrono::nanoseconds d) {
    record_ns(d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count()));
  }
  void record_ns(std::uint64_t ns);
  /// Adds another histogram's counts (e.g. one per scenario phase into a run's total).
  void merge(const LatencyHistogram& other);

  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] std::uint64_t min_ns() const { return count_ ? min_ns_ : 0; }
  [[nodiscard]] std::uint64_t max_ns() const { return max_ns_; }
  /// The sum of every value; it saturates at 2^64-1 ns (584 years of summed latency).
  [[nodiscard]] std::uint64_t sum_ns() const { return sum_ns_; }
  [[nodiscard]] double mean_ns() const {
    return count_ ? static_cast<double>(sum_ns_) / static_cast<double>(count_) : 0.0;
  }
  /// The value at quantile `q` (0 < q <= 1, e.g. 0.999 for p99.9) by nearest rank: the
  /// smallest recorded value such that at least q of the samples are at or below it, read at
  /// its bucket's midpoint and kept within [min, max]; 0 when empty. q >= 1 gives the exact max.
  [[nodiscard]] std::uint64_t percentile_ns(double q) const;

  /// The fine bucket a value falls in, and a bucket's bounds [lower, upper) in ns.
  [[nodiscard]] static constexpr std::size_t bucket_index(std::uint64_t ns) {
    ns = ns < kLowestNs ? kLowestNs : (ns > kHighestNs ? kHighestNs : ns);
    unsigned octave = 63u - static_cast<unsigned>(std::countl_zero(ns));
    std::uint64_t sub = (ns >> (octave - kSubBits)) & ((std::uint64_t{1} << kSubBits) - 1);
    return (std::size_t{octave - kFirstOctave} << kSubBits) | static_cast<std::size_t>(sub);
  }
  [[nodiscard]] static constexpr std::uint64_t bucket_lower_ns(std::size_t index) {
    unsigned octave = static_cast<unsigned>(index >> kSubBits) + kFirstOctave;
    std::uint64_t sub = index & ((std::size_t{1} << kSubBits) - 1);
    return ((std::uint64_t{1} << kSubBits) | sub) << (octave - kSubBits);
  }
  [[nodiscard]] static constexpr std::uint64_t bucket_upper_ns(std::size_t index) {
    unsigned octave = static_cast<unsigned>(index >> kSubBits) + kFirstOctave;
    return bucket_lower_ns(index) + (std::uint64_t{1} << (octave - kSubBits));
  }
  [[nodiscard]] std::span<const std::uint64_t> buckets() const { return buckets_; }
  /// Counts per coarse bucket (not cumulative): [i] holds values in (bound[i-1], bound[i]],
  /// the last one values above 100 s. Exact, not derived from the fine buckets.
  [[nodiscard]] const std::array<std::uint64_t, kCoarseCount>& coarse() const { return coarse_; }

 private:
  std::vector<std::uint64_t> buckets_;
  std::array<std::uint64_t, kCoarseCount> coarse_{};
  std::uint64_t count_ = 0;
  std::uint64_t min_ns_ = 0;
  std::uint64_t max_ns_ = 0;
  std::uint64_t sum_ns_ = 0;
};

/// A monotonic count; its series is the rate per second between ticks.
class Counter {
 public:
  void add(std::uint64_t n = 1) { value_ += n; }
  [[nodiscard]] std::uint64_t value() const { return value_; }

 private:
  std::uint64_t value_ = 0;
};

/// A value that goes up and down; its series is the value at each tick.
class Gauge {
 public:
  void set(double v) { value_ = v; }
  void add(double d) { value_ += d; }
  [[nodiscard]] double value() const { return value_; }

 private:
  double value_ = 0;
};

/// One error cause: how often, and the text of the first one seen.
struct ErrorEntry {
  std::uint64_t count = 0;
  std::string first_example;
};

/// The numbers read from /proc at one moment; absent fields could not be read.
struct ProcSample {
  std::optional<double> process_cpu_seconds;         ///< user + system of this process
  std::optional<std::uint64_t> machine_busy_ticks;   ///< /proc/stat "cpu": all but idle, iowait
  std::optional<std::uint64_t> machine_total_ticks;  ///< /proc/stat "cpu": the sum
  std::optional<std::uint64_t> rss_bytes;            ///< VmRSS
  std::optional<std::uint64_t> rss_peak_bytes;       ///< VmHWM
  std::optional<double> load1;
};

/// What does not change during a run.
struct MachineInfo {
  unsigned cores = 0;  ///< online CPUs
  std::string model;   ///< /proc/cpuinfo "model name" (empty if not found)
  std::uint64_t mem_total_bytes = 0;
  std::string kernel;  ///< uname: sysname and release
};

// Parsers of /proc texts, pure so that tests feed them fixed texts. Each returns nothing when
// the text does not have the expected form.
/// /proc/stat's first "cpu " line: (busy, total) ticks; busy = total - idle - iowait.
[[nodiscard]] std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_proc_stat_cpu(
    std::string_view text);
/// A "Key:   123 kB" line of /proc/self/status, in bytes.
[[nodiscard]] std::optional<std::uint64_t> parse_status_kb(std::string_view text,
                                                           std::string_view key);
/// The first number of /proc/loadavg.
[[nodiscard]] std::optional<double> parse_loadavg(std::string_view text);
/// The first "model name" of /proc/cpuinfo.
[[nodiscard]] std::optional<std::string> parse_cpuinfo_model(std::string_view text);

/// Reads this process's and this machine's state from /proc and getrusage. Each call opens and
/// reads four small files (about 20 µs): meant for once a second.
[[nodiscard]] ProcSample read_proc_sample();
[[nodiscard]] MachineInfo read_machine_info();

/// A named series, one point per tick, aligned with `Metrics::tick_seconds()`.
struct Series {
  enum class Kind { Rate, Gauge };
  std::string name;
  Kind kind = Kind::Gauge;
  std::vector<double> values;
};

/// A copy of every current figure, small enough to hand to another thread once a second:
/// counters' totals, gauges' values, histograms' coarse buckets, errors by cause.
struct Snapshot {
  struct CounterValue {
    std::string name;
    std::string help;
    std::uint64_t value = 0;
  };
  struct GaugeValue {
    std::string name;
    std::string help;
    double value = 0;
  };
  struct HistogramValue {
    std::string name;
    std::string help;
    std::array<std::uint64_t, LatencyHistogram::kCoarseCount> coarse{};
    std::uint64_t count = 0;
    double sum_seconds = 0;
  };
  double elapsed_seconds = 0;
  std::vector<CounterValue> counters;
  std::vector<GaugeValue> gauges;
  std::vector<HistogramValue> histograms;
  std::vector<std::pair<std::string, std::uint64_t>> errors;  ///< by cause
};

/// The registry: counters, gauges and histograms by name, created on first use, with stable
/// addresses for the life of the `Metrics` (callers keep the references). Single-threaded: use
/// it on the loop thread only. Series grow by one double each per tick (about 8 bytes per
/// series per second: 0.7 MB a day for ten series).
class Metrics {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  /// `start` is the run's start; `sample_machine` turns on the /proc sampling in `tick`.
  explicit Metrics(TimePoint start, bool sample_machine = true);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  /// The entry under `name`, created (with `help` as its description) on first use. A name
  /// used for one kind must not be used for another (asserted).
  Counter& counter(std::string_view name, std::string_view help = {});
  Gauge& gauge(std::string_view name, std::string_view help = {});
  LatencyHistogram& histogram(std::string_view name, std::string_view help = {});

  /// Counts one error under `cause` (a short stable key, e.g. "tls: certificate expired") and
  /// keeps `example` (free text) if it is the first of its cause; also adds to the `errors`
  /// counter. Allocates only for a cause not seen before.
  void error(std::string_view cause, std::string_view example);

  /// Closes one sampling interval at `now`: appends each counter's rate since the last tick and
  /// each gauge's value to its series, after sampling the machine (when on). The loop calls it
  /// once a second; intervals may be uneven (rates divide by the real interval).
  void tick(TimePoint now);

  /// A copy of the current figures for another thread.
  [[nodiscard]] Snapshot snapshot(TimePoint now) const;

  // Read access for the reports.
  struct Entry {
    enum class Kind { Counter, Gauge, Histogram };
    std::string name;
    std::string help;
    Kind kind;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<LatencyHistogram> histogram;
    std::uint64_t last_counter_value = 0;
    Series series;
  };
  /// Every entry, in the order of first use.
  [[nodiscard]] const std::vector<std::unique_ptr<Entry>>& entries() const { return entries_; }
  [[nodiscard]] const std::map<std::string, ErrorEntry, std::less<>>& errors() const {
    return errors_;
  }
  /// The end of each tick's interval, in seconds since the start.
  [[nodiscard]] const std::vector<double>& tick_seconds() const { return tick_seconds_; }
  [[nodiscard]] double elapsed_seconds(TimePoint now) const;
  [[nodiscard]] const MachineInfo& machine() const { return machine_; }
  [[nodiscard]] bool samples_machine() const { return sample_machine_; }
  /// This process's resident memory when the `Metrics` was made (0: not sampled): the baseline
  /// that the memory per device is measured from.
  [[nodiscard]] std::uint64_t rss_at_start_bytes() const { return rss_at_start_bytes_; }

 private:
  Entry& find_or_add(std::string_view name, std::string_view help, Entry::Kind kind);
  void sample_machine(TimePoint now);

  TimePoint start_;
  TimePoint last_tick_;
  bool sample_machine_;
  MachineInfo machine_;
  std::optional<ProcSample> last_proc_;
  std::uint64_t rss_at_start_bytes_ = 0;
  std::vector<std::unique_ptr<Entry>> entries_;
  std::map<std::string, Entry*, std::less<>> by_name_;
  std::map<std::string, ErrorEntry, std::less<>> errors_;
  Counter* errors_counter_ = nullptr;
  std::vector<double> tick_seconds_;
};

}  // namespace edgekit::sim
