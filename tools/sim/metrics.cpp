#include "metrics.hpp"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <sstream>

namespace edgekit::sim {
namespace {

using H = LatencyHistogram;

// For each fine bucket, the coarse bucket of its lower bound. A fine bucket (at most 1/128 of
// its lower bound wide) is narrower than the gap between two coarse bounds (at least 2/5 of the
// lower one), so it straddles at most one bound, and `record_ns` needs one comparison to place
// a value exactly.
constexpr std::array<std::uint8_t, H::kBucketCount> make_coarse_of_fine() {
  std::array<std::uint8_t, H::kBucketCount> table{};
  for (std::size_t i = 0; i < H::kBucketCount; ++i) {
    std::uint64_t lower = H::bucket_lower_ns(i);
    std::size_t c = 0;
    while (c < H::kCoarseBoundsNs.size() && lower > H::kCoarseBoundsNs[c]) ++c;
    table[i] = static_cast<std::uint8_t>(c);
  }
  return table;
}

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string_view skip_spaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// Parses an unsigned number at the start of `s` (after blanks) and drops it from `s`.
std::optional<std::uint64_t> take_u64(std::string_view& s) {
  s = skip_spaces(s);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{}) return std::nullopt;
  s.remove_prefix(static_cast<std::size_t>(p - s.data()));
  return v;
}

}  // namespace

// ---- LatencyHistogram ----------------------------------------------------------------------

LatencyHistogram::LatencyHistogram() : buckets_(kBucketCount, 0) {}

void LatencyHistogram::record_ns(std::uint64_t ns) {
  static constexpr auto kCoarseOfFine = make_coarse_of_fine();
  std::size_t i = bucket_index(ns);
  ++buckets_[i];
  std::size_t c = kCoarseOfFine[i];
  if (c < kCoarseBoundsNs.size() && ns > kCoarseBoundsNs[c]) ++c;
  ++coarse_[c];
  if (count_ == 0 || ns < min_ns_) min_ns_ = ns;
  if (ns > max_ns_) max_ns_ = ns;
  ++count_;
  if (__builtin_add_overflow(sum_ns_, ns, &sum_ns_)) sum_ns_ = UINT64_MAX;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < kBucketCount; ++i) buckets_[i] += other.buckets_[i];
  for (std::size_t i = 0; i < kCoarseCount; ++i) coarse_[i] += other.coarse_[i];
  min_ns_ = count_ ? std::min(min_ns_, other.min_ns_) : other.min_ns_;
  max_ns_ = std::max(max_ns_, other.max_ns_);
  count_ += other.count_;
  if (__builtin_add_overflow(sum_ns_, other.sum_ns_, &sum_ns_)) sum_ns_ = UINT64_MAX;
}

std::uint64_t LatencyHistogram::percentile_ns(double q) const {
  if (count_ == 0) return 0;
  if (q >= 1.0) return max_ns_;
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      std::uint64_t mid = bucket_lower_ns(i) + (bucket_upper_ns(i) - bucket_lower_ns(i)) / 2;
      return std::clamp(mid, min_ns(), max_ns_);
    }
  }
  return max_ns_;
}

// ---- /proc -------------------------------------------------------------------------------

std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_proc_stat_cpu(std::string_view text) {
  if (!text.starts_with("cpu ")) return std::nullopt;
  std::string_view line = text.substr(
      4, text.find('\n') == std::string_view::npos ? std::string_view::npos : text.find('\n') - 4);
  // user nice system idle iowait irq softirq steal (guest and guest_nice are already in user
  // and nice, so they are not added again).
  std::array<std::uint64_t, 8> f{};
  std::size_t n = 0;
  for (; n < f.size(); ++n) {
    auto v = take_u64(line);
    if (!v) break;
    f[n] = *v;
  }
  if (n < 4) return std::nullopt;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < n; ++i) total += f[i];
  std::uint64_t idle = f[3] + (n > 4 ? f[4] : 0);
  return std::pair{total - idle, total};
}

std::optional<std::uint64_t> parse_status_kb(std::string_view text, std::string_view key) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ':') {
      line.remove_prefix(key.size() + 1);
      auto v = take_u64(line);
      if (!v) return std::nullopt;
      line = skip_spaces(line);
      if (line != "kB") return std::nullopt;
      return *v * 1024;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::optional<double> parse_loadavg(std::string_view text) {
  text = skip_spaces(text);
  std::size_t end = text.find(' ');
  std::string number(text.substr(0, end));
  if (number.empty()) return std::nullopt;
  char* stop = nullptr;
  double v = std::strtod(number.c_str(), &stop);
  if (stop != number.c_str() + number.size() || !std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

std::optional<std::string> parse_cpuinfo_model(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (line.starts_with("model name")) {
      std::size_t colon = line.find(':');
      if (colon != std::string_view::npos) return std::string(skip_spaces(line.substr(colon + 1)));
    }
    pos = end + 1;
  }
  return std::nullopt;
}

ProcSample read_proc_sample() {
  ProcSample s;
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    auto secs = [](const timeval& tv) {
      return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    };
    s.process_cpu_seconds = secs(ru.ru_utime) + secs(ru.ru_stime);
  }
  if (auto cpu = parse_proc_stat_cpu(read_file("/proc/stat"))) {
    s.machine_busy_ticks = cpu->first;
    s.machine_total_ticks = cpu->second;
  }
  std::string status = read_file("/proc/self/status");
  s.rss_bytes = parse_status_kb(status, "VmRSS");
  s.rss_peak_bytes = parse_status_kb(status, "VmHWM");
  s.load1 = parse_loadavg(read_file("/proc/loadavg"));
  return s;
}

MachineInfo read_machine_info() {
  MachineInfo m;
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  m.cores = n > 0 ? static_cast<unsigned>(n) : 0;
  m.model = parse_cpuinfo_model(read_file("/proc/cpuinfo")).value_or("");
  m.mem_total_bytes = parse_status_kb(read_file("/proc/meminfo"), "MemTotal").value_or(0);
  utsname u{};
  if (::uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release;
  return m;
}

// ---- Metrics -----------------------------------------------------------------------------

Metrics::Metrics(TimePoint start, bool sample_machine)
    : start_(start), last_tick_(start), sample_machine_(sample_machine) {
  errors_counter_ = &counter(metric::kErrors, "Errors of every cause");
  if (sample_machine_) {
    machine_ = read_machine_info();
    last_proc_ = read_proc_sample();
    rss_at_start_bytes_ = last_proc_->rss_bytes.value_or(0);
    gauge(metric::kProcessCpuPercent, "CPU of this process, user + system, % of one core");
    gauge(metric::kProcessCpuSeconds, "CPU time of this process so far, user + system");
    gauge(metric::kMachineCpuPercent, "CPU of the whole machine, % of all cores");
    gauge(metric::kProcessRssBytes, "Resident memory of this process (VmRSS)");
    gauge(metric::kProcessRssPeakBytes, "Peak resident memory of this process (VmHWM)");
    gauge(metric::kMachineLoad1, "Load average over one minute");
  }
}

Metrics::~Metrics() = default;

Metrics::Entry& Metrics::find_or_add(std::string_view name, std::string_view help,
                                     Entry::Kind kind) {
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    assert(it->second->kind == kind && "one name, one kind");
    return *it->second;
  }
  auto e = std::make_unique<Entry>();
  e->name = std::string(name);
  e->help = std::string(help);
  e->kind = kind;
  e->series.name = e->name;
  switch (kind) {
    case Entry::Kind::Counter:
      e->counter = std::make_unique<Counter>();
      e->series.kind = Series::Kind::Rate;
      break;
    case Entry::Kind::Gauge:
      e->gauge = std::make_unique<Gauge>();
      e->series.kind = Series::Kind::Gauge;
      break;
    case Entry::Kind::Histogram:
      e->histogram = std::make_unique<LatencyHistogram>();
      break;
  }
  // A series that starts late is padded with zeros so that every series lines up with the
  // tick times.
  if (kind != Entry::Kind::Histogram) e->series.values.assign(tick_seconds_.size(), 0.0);
  Entry& ref = *e;
  by_name_.emplace(ref.name, &ref);
  entries_.push_back(std::move(e));
  return ref;
}

Counter& Metrics::counter(std::string_view name, std::string_view help) {
  return *find_or_add(name, help, Entry::Kind::Counter).counter;
}

Gauge& Metrics::gauge(std::string_view name, std::string_view help) {
  return *find_or_add(name, help, Entry::Kind::Gauge).gauge;
}

LatencyHistogram& Metrics::histogram(std::string_view name, std::string_view help) {
  return *find_or_add(name, help, Entry::Kind::Histogram).histogram;
}

void Metrics::error(std::string_view cause, std::string_view example) {
  auto it = errors_.find(cause);
  if (it == errors_.end()) {
    it = errors_.emplace(std::string(cause), ErrorEntry{0, std::string(example)}).first;
  }
  ++it->second.count;
  errors_counter_->add();
}

double Metrics::elapsed_seconds(TimePoint now) const {
  return std::chrono::duration<double>(now - start_).count();
}

void Metrics::sample_machine(TimePoint now) {
  ProcSample s = read_proc_sample();
  double wall = std::chrono::duration<double>(now - last_tick_).count();
  if (last_proc_ && s.process_cpu_seconds && last_proc_->process_cpu_seconds && wall > 0) {
    gauge(metric::kProcessCpuPercent)
        .set(100.0 * (*s.process_cpu_seconds - *last_proc_->process_cpu_seconds) / wall);
  }
  if (s.process_cpu_seconds) gauge(metric::kProcessCpuSeconds).set(*s.process_cpu_seconds);
  if (last_proc_ && s.machine_total_ticks && last_proc_->machine_total_ticks &&
      *s.machine_total_ticks > *last_proc_->machine_total_ticks) {
    double busy = static_cast<double>(*s.machine_busy_ticks - *last_proc_->machine_busy_ticks);
    double total = static_cast<double>(*s.machine_total_ticks - *last_proc_->machine_total_ticks);
    gauge(metric::kMachineCpuPercent).set(100.0 * busy / total);
  }
  if (s.rss_bytes) gauge(metric::kProcessRssBytes).set(static_cast<double>(*s.rss_bytes));
  if (s.rss_peak_bytes) {
    gauge(metric::kProcessRssPeakBytes).set(static_cast<double>(*s.rss_peak_bytes));
  }
  if (s.load1) gauge(metric::kMachineLoad1).set(*s.load1);
  last_proc_ = s;
}

void Metrics::tick(TimePoint now) {
  if (sample_machine_) sample_machine(now);
  double interval = std::chrono::duration<double>(now - last_tick_).count();
  for (auto& e : entries_) {
    switch (e->kind) {
      case Entry::Kind::Counter: {
        std::uint64_t v = e->counter->value();
        double delta = static_cast<double>(v - e->last_counter_value);
        e->series.values.push_back(interval > 0 ? delta / interval : 0.0);
        e->last_counter_value = v;
        break;
      }
      case Entry::Kind::Gauge:
        e->series.values.push_back(e->gauge->value());
        break;
      case Entry::Kind::Histogram:
        break;
    }
  }
  tick_seconds_.push_back(elapsed_seconds(now));
  last_tick_ = now;
}

Snapshot Metrics::snapshot(TimePoint now) const {
  Snapshot s;
  s.elapsed_seconds = elapsed_seconds(now);
  for (const auto& e : entries_) {
    switch (e->kind) {
      case Entry::Kind::Counter:
        s.counters.push_back({e->name, e->help, e->counter->value()});
        break;
      case Entry::Kind::Gauge:
        s.gauges.push_back({e->name, e->help, e->gauge->value()});
        break;
      case Entry::Kind::Histogram: {
        const auto& h = *e->histogram;
        s.histograms.push_back(
            {e->name, e->help, h.coarse(), h.count(), static_cast<double>(h.sum_ns()) / 1e9});
        break;
      }
    }
  }
  for (const auto& [cause, entry] : errors_) s.errors.emplace_back(cause, entry.count);
  return s;
}

}  // namespace edgekit::sim
