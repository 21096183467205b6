#include "report.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <edgekit/core/durable_file.hpp>
#include <set>
#include <span>
#include <sstream>

namespace edgekit::sim {
namespace {

using json = nlohmann::json;

constexpr std::string_view kind_name(Series::Kind k) {
  return k == Series::Kind::Rate ? "rate" : "gauge";
}

bool is_machine_series(std::string_view name) {
  return name == metric::kProcessCpuPercent || name == metric::kMachineCpuPercent ||
         name == metric::kProcessCpuSeconds || name == metric::kProcessRssBytes ||
         name == metric::kProcessRssPeakBytes || name == metric::kMachineLoad1;
}

std::string printf_string(const char* fmt, double v) {
  std::array<char, 64> buf{};
  int n = std::snprintf(buf.data(), buf.size(), fmt, v);
  // A huge value (from a report file) may not fit: snprintf then returns the length it wanted.
  return std::string(buf.data(), std::min(n > 0 ? static_cast<std::size_t>(n) : 0, buf.size() - 1));
}

// A number in at most three significant digits with a k/M/G suffix: axis labels and tables.
std::string format_number(double v) {
  double a = std::fabs(v);
  if (a >= 1e9) return printf_string("%.3g G", v / 1e9);
  if (a >= 1e6) return printf_string("%.3g M", v / 1e6);
  if (a >= 1e4) return printf_string("%.3g k", v / 1e3);
  if (a >= 100 || v == std::floor(v)) return printf_string("%.0f", v);
  return printf_string("%.3g", v);
}

std::string format_bytes(double b) {
  if (b >= 1024.0 * 1024 * 1024) return printf_string("%.2f GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return printf_string("%.1f MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return printf_string("%.1f KiB", b / 1024.0);
  return printf_string("%.0f B", b);
}

// A readable id fragment from a metric name (ids must not need escaping).
std::string id_of(std::string_view name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out += ok ? c : '-';
  }
  return out;
}

// The smallest "nice" number (1, 2, 2.5 or 5 times a power of ten) at or above v.
double nice_ceiling(double v) {
  if (!(v > 0) || !std::isfinite(v)) return 1;
  double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * p >= v * (1 - 1e-12)) return m * p;
  }
  return 10 * p;
}

constexpr std::array<const char*, 6> kPalette = {"#1f77b4", "#d62728", "#2ca02c",
                                                 "#9467bd", "#ff7f0e", "#17becf"};

struct Line {
  std::string label;
  const std::vector<double>* values;
  double scale = 1;  // each value is multiplied by it before plotting (bytes to MiB)
};

constexpr double kW = 760, kH = 260, kLeft = 72, kRight = 16, kTop = 28, kBottom = 40;

// A line chart over the run's time: y from 0 to a nice maximum, x in seconds.
std::string line_chart(std::string_view id, std::string_view title, std::string_view y_unit,
                       const std::vector<double>& t, const std::vector<Line>& lines) {
  std::ostringstream o;
  o << "<figure id=\"" << id << "\"><figcaption>" << html_escape(title) << "</figcaption>\n";
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
    << "\" viewBox=\"0 0 " << kW << ' ' << kH << "\" role=\"img\"><title>" << html_escape(title)
    << "</title>\n";
  double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  double x_max = t.empty() ? 1 : std::max(1.0, t.back());
  double y_max = 0;
  for (const auto& l : lines) {
    for (double v : *l.values) {
      if (std::isfinite(v)) y_max = std::max(y_max, v * l.scale);
    }
  }
  y_max = nice_ceiling(y_max);
  auto X = [&](double x) { return kLeft + pw * x / x_max; };
  auto Y = [&](double y) { return kTop + ph * (1 - y / y_max); };
  // Grid and axes: five steps on y, about eight nice steps on x.
  for (int i = 0; i <= 5; ++i) {
    double y = y_max * i / 5;
    o << "<line class=\"grid\" x1=\"" << kLeft << "\" x2=\"" << kLeft + pw << "\" y1=\"" << Y(y)
      << "\" y2=\"" << Y(y) << "\"/><text class=\"yl\" x=\"" << kLeft - 6 << "\" y=\"" << Y(y) + 4
      << "\">" << html_escape(format_number(y)) << "</text>\n";
  }
  double x_step = nice_ceiling(x_max / 8);
  // Counted, not stepped by adding: with a huge or odd time axis (a report file's) x += step
  // might never pass x_max.
  for (int k = 0; k <= 16 && x_step * k <= x_max * (1 + 1e-9); ++k) {
    double x = x_step * k;
    o << "<line class=\"tick\" x1=\"" << X(x) << "\" x2=\"" << X(x) << "\" y1=\"" << kTop + ph
      << "\" y2=\"" << kTop + ph + 4 << "\"/><text class=\"xl\" x=\"" << X(x) << "\" y=\""
      << kTop + ph + 16 << "\">" << format_number(x) << "</text>\n";
  }
  o << "<line class=\"axis\" x1=\"" << kLeft << "\" x2=\"" << kLeft << "\" y1=\"" << kTop
    << "\" y2=\"" << kTop + ph << "\"/><line class=\"axis\" x1=\"" << kLeft << "\" x2=\""
    << kLeft + pw << "\" y1=\"" << kTop + ph << "\" y2=\"" << kTop + ph << "\"/>\n";
  o << "<text class=\"unit\" x=\"" << kLeft + pw / 2 << "\" y=\"" << kH - 6
    << "\">time since start (s)</text><text class=\"unit\" x=\"14\" y=\"" << kTop + ph / 2
    << "\" transform=\"rotate(-90 14 " << kTop + ph / 2 << ")\">" << html_escape(y_unit)
    << "</text>\n";
  if (t.empty()) {
    o << "<text class=\"empty\" x=\"" << kLeft + pw / 2 << "\" y=\"" << kTop + ph / 2
      << "\">no samples</text>\n";
  }
  for (std::size_t li = 0; li < lines.size(); ++li) {
    const auto& l = lines[li];
    const char* color = kPalette[li % kPalette.size()];
    o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
    std::size_t n = std::min(t.size(), l.values->size());
    for (std::size_t i = 0; i < n; ++i) {
      double v = (*l.values)[i] * l.scale;
      if (!std::isfinite(v)) continue;
      o << X(t[i]) << ',' << Y(v) << ' ';
    }
    o << "\"/>\n";
    if (lines.size() > 1) {
      double ly = kTop + 4 + 14 * static_cast<double>(li);
      o << "<rect x=\"" << kLeft + pw - 190 << "\" y=\"" << ly << "\" width=\"10\" height=\"10\""
        << " fill=\"" << color << "\"/><text class=\"legend\" x=\"" << kLeft + pw - 175 << "\" y=\""
        << ly + 9 << "\">" << html_escape(l.label) << "</text>\n";
    }
  }
  o << "</svg></figure>\n";
  return o.str();
}

// A latency histogram on a log time axis (ten bins per decade), p50/p90/p99/p99.9 marked.
std::string histogram_chart(const ReportData::HistogramData& h) {
  std::ostringstream o;
  std::string title = h.name + " latency (" + std::to_string(h.count) + " samples)";
  o << "<figure id=\"plot-hist-" << id_of(h.name) << "\"><figcaption>" << html_escape(title)
    << "</figcaption>\n";
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
    << "\" viewBox=\"0 0 " << kW << ' ' << kH << "\" role=\"img\"><title>" << html_escape(title)
    << "</title>\n";
  double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  constexpr int kBinsPerDecade = 10;
  double lo_dec = 0, hi_dec = 1;  // log10 of µs
  if (!h.buckets.empty()) {
    lo_dec = std::floor(std::log10(static_cast<double>(h.buckets.front().lower_ns) / 1e3));
    hi_dec = std::ceil(std::log10(static_cast<double>(h.buckets.back().upper_ns) / 1e3));
    if (hi_dec <= lo_dec) hi_dec = lo_dec + 1;
  }
  int bins = static_cast<int>(hi_dec - lo_dec) * kBinsPerDecade;
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(bins), 0);
  for (const auto& b : h.buckets) {
    double mid_us = (static_cast<double>(b.lower_ns) + static_cast<double>(b.upper_ns)) / 2e3;
    int i = static_cast<int>(std::floor((std::log10(mid_us) - lo_dec) * kBinsPerDecade));
    counts[static_cast<std::size_t>(std::clamp(i, 0, bins - 1))] += b.count;
  }
  std::uint64_t top = counts.empty() ? 1 : *std::max_element(counts.begin(), counts.end());
  double y_max = nice_ceiling(static_cast<double>(std::max<std::uint64_t>(top, 1)));
  auto X = [&](double us) { return kLeft + pw * (std::log10(us) - lo_dec) / (hi_dec - lo_dec); };
  auto Y = [&](double y) { return kTop + ph * (1 - y / y_max); };
  for (int i = 0; i <= 5; ++i) {
    double y = y_max * i / 5;
    o << "<line class=\"grid\" x1=\"" << kLeft << "\" x2=\"" << kLeft + pw << "\" y1=\"" << Y(y)
      << "\" y2=\"" << Y(y) << "\"/><text class=\"yl\" x=\"" << kLeft - 6 << "\" y=\"" << Y(y) + 4
      << "\">" << format_number(y) << "</text>\n";
  }
  for (double d = lo_dec; d <= hi_dec + 1e-9; d += 1) {
    double us = std::pow(10.0, d);
    o << "<line class=\"tick\" x1=\"" << X(us) << "\" x2=\"" << X(us) << "\" y1=\"" << kTop + ph
      << "\" y2=\"" << kTop + ph + 4 << "\"/><text class=\"xl\" x=\"" << X(us) << "\" y=\""
      << kTop + ph + 16 << "\">" << html_escape(format_duration_us(us)) << "</text>\n";
  }
  double bar_w = pw / bins;
  for (int i = 0; i < bins; ++i) {
    auto c = counts[static_cast<std::size_t>(i)];
    if (c == 0) continue;
    double from_us = std::pow(10.0, lo_dec + static_cast<double>(i) / kBinsPerDecade);
    double to_us = std::pow(10.0, lo_dec + static_cast<double>(i + 1) / kBinsPerDecade);
    o << "<rect class=\"bar\" x=\"" << kLeft + bar_w * i << "\" y=\"" << Y(static_cast<double>(c))
      << "\" width=\"" << std::max(1.0, bar_w - 1) << "\" height=\""
      << kTop + ph - Y(static_cast<double>(c)) << "\"><title>"
      << html_escape(format_duration_us(from_us) + " to " + format_duration_us(to_us) + ": " +
                     std::to_string(c))
      << "</title></rect>\n";
  }
  o << "<line class=\"axis\" x1=\"" << kLeft << "\" x2=\"" << kLeft << "\" y1=\"" << kTop
    << "\" y2=\"" << kTop + ph << "\"/><line class=\"axis\" x1=\"" << kLeft << "\" x2=\""
    << kLeft + pw << "\" y1=\"" << kTop + ph << "\" y2=\"" << kTop + ph << "\"/>\n";
  o << "<text class=\"unit\" x=\"" << kLeft + pw / 2 << "\" y=\"" << kH - 6
    << "\">latency (log scale)</text><text class=\"unit\" x=\"14\" y=\"" << kTop + ph / 2
    << "\" transform=\"rotate(-90 14 " << kTop + ph / 2 << ")\">samples per bin</text>\n";
  const std::array<std::pair<const char*, double>, 4> marks = {
      {{"p50", h.p50_us}, {"p90", h.p90_us}, {"p99", h.p99_us}, {"p99.9", h.p999_us}}};
  for (std::size_t i = 0; i < marks.size(); ++i) {
    double us = std::max(marks[i].second, 1e-3);
    double x = std::clamp(X(us), kLeft, kLeft + pw);
    o << "<line class=\"pct\" x1=\"" << x << "\" x2=\"" << x << "\" y1=\"" << kTop << "\" y2=\""
      << kTop + ph << "\"/><text class=\"pctl\" x=\"" << x + 3 << "\" y=\""
      << kTop + 10 + 12 * static_cast<double>(i) << "\">"
      << html_escape(std::string(marks[i].first) + " " + format_duration_us(marks[i].second))
      << "</text>\n";
  }
  o << "</svg></figure>\n";
  return o.str();
}

// Reading order of the fleet's figures: connects and provisioning first (what a storm is
// about), then the other well-known ones, then the rest as recorded, errors last.
int reading_rank(std::string_view name) {
  constexpr std::array<std::string_view, 5> kFirst = {metric::kConnects, metric::kProvisioned,
                                                      metric::kDevicesConnected, metric::kMessages,
                                                      metric::kOtaBytes};
  auto it = std::find(kFirst.begin(), kFirst.end(), name);
  if (it != kFirst.end()) return static_cast<int>(it - kFirst.begin());
  return name == metric::kErrors ? 100 : 50;
}

template <class T>
std::vector<const T*> in_reading_order(const std::vector<T>& items) {
  std::vector<const T*> out;
  for (const auto& i : items) {
    if (!is_machine_series(i.name)) out.push_back(&i);
  }
  std::stable_sort(out.begin(), out.end(), [](const T* a, const T* b) {
    return reading_rank(a->name) < reading_rank(b->name);
  });
  return out;
}

const std::vector<double>* find_series(const ReportData& r, std::string_view name) {
  for (const auto& s : r.series) {
    if (s.name == name) return &s.values;
  }
  return nullptr;
}

std::uint64_t counter_total(const ReportData& r, std::string_view name) {
  for (const auto& c : r.counters) {
    if (c.name == name) return c.total;
  }
  return 0;
}

double max_of(const std::vector<double>* v) {
  double m = 0;
  if (v) {
    for (double x : *v) {
      if (std::isfinite(x)) m = std::max(m, x);
    }
  }
  return m;
}

double mean_of(const std::vector<double>* v) {
  if (!v || v->empty()) return 0;
  double sum = 0;
  for (double x : *v) sum += std::isfinite(x) ? x : 0;
  return sum / static_cast<double>(v->size());
}

// The simulator's own cost: what the issue asks to state (memory per device, CPU per message).
std::string cost_table(const ReportData& r) {
  std::ostringstream o;
  const auto* cpu_s = find_series(r, metric::kProcessCpuSeconds);
  if (!cpu_s || cpu_s->empty()) return {};
  double cpu_seconds = cpu_s->back();
  double peak_rss = max_of(find_series(r, metric::kProcessRssPeakBytes));
  double peak_devices = max_of(find_series(r, metric::kDevicesConnected));
  auto row = [&](std::string_view what, const std::string& value) {
    o << "<tr><td>" << html_escape(what) << "</td><td>" << html_escape(value) << "</td></tr>\n";
  };
  o << "<table id=\"summary-cost\"><tr><th>the simulator itself</th><th></th></tr>\n";
  row("CPU time (user + system, until the last sample)", printf_string("%.1f s", cpu_seconds));
  row("CPU, mean (100 % = one core)",
      printf_string("%.0f %%", mean_of(find_series(r, metric::kProcessCpuPercent))));
  row("whole machine CPU, mean (100 % = all cores)",
      printf_string("%.0f %%", mean_of(find_series(r, metric::kMachineCpuPercent))));
  row("peak resident memory (VmHWM)", format_bytes(peak_rss));
  if (peak_devices > 0) {
    row("peak memory per device at the most devices connected (" + format_number(peak_devices) +
            ")",
        format_bytes(peak_rss / peak_devices));
    if (r.rss_at_start_bytes > 0 && peak_rss > static_cast<double>(r.rss_at_start_bytes)) {
      row("memory growth per device (peak minus the " +
              format_bytes(static_cast<double>(r.rss_at_start_bytes)) + " at start)",
          format_bytes((peak_rss - static_cast<double>(r.rss_at_start_bytes)) / peak_devices));
    }
  }
  if (auto messages = counter_total(r, metric::kMessages)) {
    row("CPU per message (all CPU time / messages)",
        format_duration_us(cpu_seconds * 1e6 / static_cast<double>(messages)));
  }
  if (auto connects = counter_total(r, metric::kConnects)) {
    row("CPU per connect (all CPU time / connects)",
        format_duration_us(cpu_seconds * 1e6 / static_cast<double>(connects)));
  }
  o << "</table>\n";
  return o.str();
}

const char* const kCss = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:800px;
color:#222;background:#fff}
h1{font-size:1.5em;margin-bottom:4px}h2{font-size:1.2em;border-bottom:1px solid #ccc;
padding-bottom:3px;margin-top:32px}
.meta{color:#555;margin-top:0}
table{border-collapse:collapse;margin:8px 0;font-size:0.9em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
td.text{text-align:left;font-family:monospace;word-break:break-all;max-width:420px}
th{background:#f3f3f3}
figure{margin:16px 0}figcaption{font-weight:600;margin-bottom:4px}
svg{background:#fcfcfc;border:1px solid #eee}
svg text{font-size:11px;fill:#333}
.yl{text-anchor:end}.xl{text-anchor:middle}.unit{text-anchor:middle;fill:#666}
.empty{text-anchor:middle;fill:#999;font-size:14px}
.grid{stroke:#e6e6e6}.axis{stroke:#888}.tick{stroke:#888}
.bar{fill:#1f77b4}.pct{stroke:#d62728;stroke-dasharray:4 3}
.pctl{fill:#d62728;paint-order:stroke;stroke:#fcfcfc;stroke-width:3px}
.ok{color:#2a7d2a}.bad{color:#c62828;font-weight:600}
)";

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // C0 controls other than tab and newline are not allowed in XML (nor sensible in a
        // page): shown as U+FFFD.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') {
          out += "\xEF\xBF\xBD";
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string format_duration_us(double us) {
  if (!std::isfinite(us)) return "-";
  if (us < 1) return printf_string("%.0f ns", us * 1e3);
  if (us < 1e3) return printf_string("%.3g \xC2\xB5s", us);
  if (us < 1e6) return printf_string("%.3g ms", us / 1e3);
  return printf_string("%.3g s", us / 1e6);
}

bool ReportData::operator==(const ReportData& o) const {
  return schema == o.schema && title == o.title && started_utc == o.started_utc &&
         duration_s == o.duration_s && machine.cores == o.machine.cores &&
         machine.model == o.machine.model && machine.mem_total_bytes == o.machine.mem_total_bytes &&
         machine.kernel == o.machine.kernel && rss_at_start_bytes == o.rss_at_start_bytes &&
         t_s == o.t_s && counters == o.counters && series == o.series &&
         histograms == o.histograms && errors == o.errors;
}

ReportData build_report(const Metrics& metrics, Metrics::TimePoint now, std::string title,
                        std::string started_utc) {
  ReportData r;
  r.title = std::move(title);
  r.started_utc = std::move(started_utc);
  r.duration_s = metrics.elapsed_seconds(now);
  r.machine = metrics.machine();
  r.rss_at_start_bytes = metrics.rss_at_start_bytes();
  r.t_s = metrics.tick_seconds();
  for (const auto& e : metrics.entries()) {
    switch (e->kind) {
      case Metrics::Entry::Kind::Counter:
        r.counters.push_back({e->name, e->help, e->counter->value()});
        r.series.push_back({e->name, e->help, e->series.kind, e->series.values});
        break;
      case Metrics::Entry::Kind::Gauge:
        r.series.push_back({e->name, e->help, e->series.kind, e->series.values});
        break;
      case Metrics::Entry::Kind::Histogram: {
        const LatencyHistogram& h = *e->histogram;
        if (h.count() == 0) break;
        ReportData::HistogramData d;
        d.name = e->name;
        d.help = e->help;
        d.count = h.count();
        d.min_us = static_cast<double>(h.min_ns()) / 1e3;
        d.mean_us = h.mean_ns() / 1e3;
        d.p50_us = static_cast<double>(h.percentile_ns(0.50)) / 1e3;
        d.p90_us = static_cast<double>(h.percentile_ns(0.90)) / 1e3;
        d.p99_us = static_cast<double>(h.percentile_ns(0.99)) / 1e3;
        d.p999_us = static_cast<double>(h.percentile_ns(0.999)) / 1e3;
        d.max_us = static_cast<double>(h.max_ns()) / 1e3;
        d.sum_us = static_cast<double>(h.sum_ns()) / 1e3;
        auto b = h.buckets();
        for (std::size_t i = 0; i < b.size(); ++i) {
          if (b[i] != 0) {
            d.buckets.push_back(
                {LatencyHistogram::bucket_lower_ns(i), LatencyHistogram::bucket_upper_ns(i), b[i]});
          }
        }
        r.histograms.push_back(std::move(d));
        break;
      }
    }
  }
  for (const auto& [cause, entry] : metrics.errors()) {
    r.errors.push_back({cause, entry.count, entry.first_example});
  }
  std::stable_sort(r.errors.begin(), r.errors.end(),
                   [](const auto& a, const auto& b) { return a.count > b.count; });
  return r;
}

json to_json(const ReportData& r) {
  json j;
  j["schema"] = r.schema;
  j["title"] = r.title;
  j["started_utc"] = r.started_utc;
  j["duration_s"] = r.duration_s;
  j["machine"] = {{"cores", r.machine.cores},
                  {"model", r.machine.model},
                  {"mem_total_bytes", r.machine.mem_total_bytes},
                  {"kernel", r.machine.kernel}};
  j["rss_at_start_bytes"] = r.rss_at_start_bytes;
  j["t_s"] = r.t_s;
  j["counters"] = json::array();
  for (const auto& c : r.counters) {
    j["counters"].push_back({{"name", c.name}, {"help", c.help}, {"total", c.total}});
  }
  j["series"] = json::array();
  for (const auto& s : r.series) {
    j["series"].push_back(
        {{"name", s.name}, {"help", s.help}, {"kind", kind_name(s.kind)}, {"values", s.values}});
  }
  j["histograms"] = json::array();
  for (const auto& h : r.histograms) {
    json buckets = json::array();
    for (const auto& b : h.buckets) buckets.push_back({b.lower_ns, b.upper_ns, b.count});
    j["histograms"].push_back({{"name", h.name},
                               {"help", h.help},
                               {"count", h.count},
                               {"min_us", h.min_us},
                               {"mean_us", h.mean_us},
                               {"p50_us", h.p50_us},
                               {"p90_us", h.p90_us},
                               {"p99_us", h.p99_us},
                               {"p999_us", h.p999_us},
                               {"max_us", h.max_us},
                               {"sum_us", h.sum_us},
                               {"buckets", std::move(buckets)}});
  }
  j["errors"] = json::array();
  for (const auto& e : r.errors) {
    j["errors"].push_back({{"cause", e.cause}, {"count", e.count}, {"example", e.example}});
  }
  return j;
}

namespace {

// A count: an unsigned integer in the JSON (nlohmann's get<std::uint64_t> would turn -1 into
// 2^64-1 and 2.5 into 2 without a word).
bool is_count(const json& v) {
  // A document built in code holds small numbers as signed; parsed text holds them unsigned.
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0);
}

std::uint64_t get_count(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!is_count(v)) {
    throw json::type_error::create(302, std::string(key) + " is not an unsigned integer", &v);
  }
  return v.get<std::uint64_t>();
}

}  // namespace

std::optional<ReportData> report_from_json(const json& j, std::string* error) {
  auto failed = [&](std::string what) -> std::optional<ReportData> {
    if (error) *error = std::move(what);
    return std::nullopt;
  };
  // nlohmann's typed getters throw on a wrong type; they are caught here so that a bad file
  // gives an error, never an exception out of this function.
  try {
    if (!j.is_object()) return failed("not a JSON object");
    if (!j.contains("schema") || !j["schema"].is_number_integer()) {
      return failed("no integer \"schema\"");
    }
    ReportData r;
    r.schema = j["schema"].get<int>();
    if (r.schema != kReportSchema) {
      return failed("schema " + std::to_string(r.schema) + " is not one this reader knows (" +
                    std::to_string(kReportSchema) + ")");
    }
    r.title = j.at("title").get<std::string>();
    r.started_utc = j.at("started_utc").get<std::string>();
    r.duration_s = j.at("duration_s").get<double>();
    const json& m = j.at("machine");
    std::uint64_t cores = get_count(m, "cores");
    if (cores > 1'000'000) return failed("machine.cores out of range");
    r.machine.cores = static_cast<unsigned>(cores);
    r.machine.model = m.at("model").get<std::string>();
    r.machine.mem_total_bytes = get_count(m, "mem_total_bytes");
    r.machine.kernel = m.at("kernel").get<std::string>();
    // Added within schema 1: a report written before it has none.
    if (j.contains("rss_at_start_bytes")) r.rss_at_start_bytes = get_count(j, "rss_at_start_bytes");
    r.t_s = j.at("t_s").get<std::vector<double>>();
    for (const auto& c : j.at("counters")) {
      r.counters.push_back({c.at("name").get<std::string>(), c.at("help").get<std::string>(),
                            get_count(c, "total")});
    }
    for (const auto& s : j.at("series")) {
      ReportData::SeriesData d;
      d.name = s.at("name").get<std::string>();
      d.help = s.at("help").get<std::string>();
      std::string kind = s.at("kind").get<std::string>();
      if (kind != "rate" && kind != "gauge") return failed("series " + d.name + ": bad kind");
      d.kind = kind == "rate" ? Series::Kind::Rate : Series::Kind::Gauge;
      d.values = s.at("values").get<std::vector<double>>();
      if (d.values.size() != r.t_s.size()) {
        return failed("series " + d.name + " has " + std::to_string(d.values.size()) +
                      " values for " + std::to_string(r.t_s.size()) + " times");
      }
      r.series.push_back(std::move(d));
    }
    for (const auto& h : j.at("histograms")) {
      ReportData::HistogramData d;
      d.name = h.at("name").get<std::string>();
      d.help = h.at("help").get<std::string>();
      d.count = get_count(h, "count");
      d.min_us = h.at("min_us").get<double>();
      d.mean_us = h.at("mean_us").get<double>();
      d.p50_us = h.at("p50_us").get<double>();
      d.p90_us = h.at("p90_us").get<double>();
      d.p99_us = h.at("p99_us").get<double>();
      d.p999_us = h.at("p999_us").get<double>();
      d.max_us = h.at("max_us").get<double>();
      d.sum_us = h.at("sum_us").get<double>();
      std::uint64_t total = 0;
      for (const auto& b : h.at("buckets")) {
        if (!b.is_array() || b.size() != 3) return failed("histogram " + d.name + ": bad bucket");
        if (!is_count(b[0]) || !is_count(b[1]) || !is_count(b[2])) {
          return failed("histogram " + d.name + ": a bucket holds other than unsigned integers");
        }
        ReportData::Bucket bucket{b[0].get<std::uint64_t>(), b[1].get<std::uint64_t>(),
                                  b[2].get<std::uint64_t>()};
        if (bucket.upper_ns <= bucket.lower_ns || bucket.lower_ns == 0 ||
            (!d.buckets.empty() && bucket.lower_ns < d.buckets.back().upper_ns)) {
          return failed("histogram " + d.name + ": buckets out of order");
        }
        if (__builtin_add_overflow(total, bucket.count, &total)) {
          return failed("histogram " + d.name + ": bucket counts overflow");
        }
        d.buckets.push_back(bucket);
      }
      if (total != d.count) return failed("histogram " + d.name + ": buckets do not add up");
      r.histograms.push_back(std::move(d));
    }
    for (const auto& e : j.at("errors")) {
      r.errors.push_back({e.at("cause").get<std::string>(), get_count(e, "count"),
                          e.at("example").get<std::string>()});
    }
    return r;
  } catch (const json::exception& e) {
    return failed(std::string("malformed report: ") + e.what());
  }
}

std::string to_html(const ReportData& r) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>"
    << "<meta name=\"edgekit-report-schema\" content=\"" << r.schema << "\"/>"
    << "<title>" << html_escape(r.title) << "</title><style>" << kCss
    << "</style></head>\n<body>\n";
  o << "<h1>" << html_escape(r.title) << "</h1>\n<p class=\"meta\">Started "
    << html_escape(r.started_utc) << ", ran " << html_escape(printf_string("%.1f", r.duration_s))
    << " s on " << r.machine.cores << " cores (" << html_escape(r.machine.model) << "), "
    << html_escape(format_bytes(static_cast<double>(r.machine.mem_total_bytes))) << " memory, "
    << html_escape(r.machine.kernel) << ".</p>\n";

  // Summary: totals and rates, then latencies, then errors in one line.
  o << "<h2 id=\"summary\">Summary</h2>\n<table id=\"summary-counters\"><tr><th>counter</th>"
    << "<th>total</th><th>mean /s</th><th>peak /s</th></tr>\n";
  for (const ReportData::CounterData* cp : in_reading_order(r.counters)) {
    const auto& c = *cp;
    double peak = 0;
    for (const auto& s : r.series) {
      if (s.name == c.name) {
        for (double v : s.values) peak = std::max(peak, v);
      }
    }
    double mean = r.duration_s > 0 ? static_cast<double>(c.total) / r.duration_s : 0;
    o << "<tr><td title=\"" << html_escape(c.help) << "\">" << html_escape(c.name) << "</td><td>"
      << c.total << "</td><td>" << html_escape(format_number(mean)) << "</td><td>"
      << html_escape(format_number(peak)) << "</td></tr>\n";
  }
  o << "</table>\n";
  o << "<table id=\"summary-latency\"><tr><th>latency</th><th>count</th><th>mean</th>"
    << "<th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n";
  for (const auto& h : r.histograms) {
    o << "<tr><td title=\"" << html_escape(h.help) << "\">" << html_escape(h.name) << "</td><td>"
      << h.count << "</td>";
    for (double v : {h.mean_us, h.p50_us, h.p90_us, h.p99_us, h.p999_us, h.max_us}) {
      o << "<td>" << html_escape(format_duration_us(v)) << "</td>";
    }
    o << "</tr>\n";
  }
  if (r.histograms.empty()) o << "<tr><td colspan=\"8\">no latency was recorded</td></tr>\n";
  o << "</table>\n";
  o << cost_table(r);
  std::uint64_t errors = 0;
  for (const auto& e : r.errors) errors += e.count;
  o << "<p>Errors: <span class=\"" << (errors ? "bad" : "ok") << "\">" << errors << "</span> in "
    << r.errors.size() << (r.errors.size() == 1 ? " cause" : " causes") << ".</p>\n";

  o << "<h2 id=\"over-time\">Rates and gauges over time</h2>\n";
  for (const ReportData::SeriesData* sp : in_reading_order(r.series)) {
    const auto& s = *sp;
    std::string title = s.name + (s.kind == Series::Kind::Rate ? " per second" : "");
    if (!s.help.empty()) title += ": " + s.help;
    o << line_chart("plot-series-" + id_of(s.name), title,
                    s.kind == Series::Kind::Rate ? s.name + "/s" : s.name, r.t_s,
                    {Line{s.name, &s.values}});
  }

  o << "<h2 id=\"latency\">Latency</h2>\n";
  if (r.histograms.empty()) o << "<p>No latency was recorded.</p>\n";
  for (const auto& h : r.histograms) o << histogram_chart(h);

  o << "<h2 id=\"errors\">Errors by cause</h2>\n";
  if (r.errors.empty()) {
    o << "<p class=\"ok\">No errors.</p>\n";
  } else {
    o << "<table id=\"errors-table\"><tr><th>cause</th><th>count</th><th>first seen</th></tr>\n";
    for (const auto& e : r.errors) {
      o << "<tr><td class=\"text\">" << html_escape(e.cause) << "</td><td>" << e.count
        << "</td><td class=\"text\">" << html_escape(e.example) << "</td></tr>\n";
    }
    o << "</table>\n";
  }

  o << "<h2 id=\"machine\">Machine</h2>\n";
  auto find = [&](std::string_view name) { return find_series(r, name); };
  std::vector<Line> cpu, mem, load;
  // Both CPU lines in percent of one core (as top shows a process), so that they share an
  // axis: the machine's share of all cores is multiplied by the number of cores.
  double cores = std::max(1u, r.machine.cores);
  if (auto* v = find(metric::kProcessCpuPercent)) cpu.push_back({"this process", v});
  if (auto* v = find(metric::kMachineCpuPercent)) cpu.push_back({"whole machine", v, cores});
  if (auto* v = find(metric::kProcessRssBytes))
    mem.push_back({"resident (VmRSS)", v, 1.0 / (1 << 20)});
  if (auto* v = find(metric::kProcessRssPeakBytes))
    mem.push_back({"peak (VmHWM)", v, 1.0 / (1 << 20)});
  if (auto* v = find(metric::kMachineLoad1)) load.push_back({"load average, 1 min", v});
  if (cpu.empty() && mem.empty() && load.empty()) {
    o << "<p>The machine was not sampled in this run.</p>\n";
  }
  if (!cpu.empty()) {
    o << line_chart(
        "plot-machine-cpu",
        "CPU (100 % = one core; the machine has " + std::to_string(r.machine.cores) + ")",
        "% of one core", r.t_s, cpu);
  }
  if (!mem.empty())
    o << line_chart("plot-machine-memory", "Memory of this process", "MiB", r.t_s, mem);
  if (!load.empty()) {
    o << line_chart("plot-machine-load",
                    "Load average (runnable tasks; " + std::to_string(r.machine.cores) + " cores)",
                    "load", r.t_s, load);
  }
  o << "<p class=\"meta\">edgekit sim report, schema " << r.schema
    << ". docs/simulator.md, &#8220;Reading the report&#8221;, explains every figure.</p>\n";
  o << "</body></html>\n";
  return o.str();
}

std::string write_report_files(const ReportData& report, std::string_view json_path,
                               std::string_view html_path) {
  std::string errors;
  auto write = [&](std::string_view path, const std::string& text) {
    if (path.empty()) return;
    auto bytes = std::as_bytes(std::span(text.data(), text.size()));
    file::Status st = file::write_atomically(path, bytes, 0644);
    if (st != file::Status::Ok) {
      if (!errors.empty()) errors += "; ";
      errors += "cannot write " + std::string(path) + ": " + file::to_string(st);
      if (st == file::Status::Failed) errors += std::string(" (") + std::strerror(errno) + ")";
    }
  };
  write(json_path, to_json(report).dump(1) + "\n");
  write(html_path, to_html(report));
  return errors;
}

}  // namespace edgekit::sim
