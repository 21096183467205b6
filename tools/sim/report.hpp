#pragma once
/// \file
/// The simulator's reports: a JSON document with a stable, versioned schema (docs/simulator.md,
/// "Reading the report"), and a self-contained HTML page drawn from it (inline CSS and SVG, no
/// script, nothing fetched), so that a JSON report kept from any run can be drawn again.
///
/// JSON schema 1 (times in microseconds unless the key says otherwise):
///   { "schema": 1, "title": str, "started_utc": str, "duration_s": num,
///     "machine": { "cores": int, "model": str, "mem_total_bytes": int, "kernel": str },
///     "rss_at_start_bytes": int,                // optional (0): RSS when measuring began
///     "t_s": [num...],                          // end of each one-second interval
///     "counters": [ { "name", "help", "total": int } ],
///     "series": [ { "name", "help", "kind": "rate"|"gauge", "values": [num...] } ],
///     "histograms": [ { "name", "help", "count", "min_us", "mean_us", "p50_us", "p90_us",
///                       "p99_us", "p999_us", "max_us", "sum_us",
///                       "buckets": [[lower_ns, upper_ns, count]...] } ],  // non-empty only
///     "errors": [ { "cause", "count", "example" } ] }           // most frequent first
/// A reader must ignore keys it does not know; a change that breaks a reader raises "schema".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgekit/json/json.hpp"
#include "metrics.hpp"

namespace edgekit::sim {

inline constexpr int kReportSchema = 1;

/// A report's content, independent of `Metrics` (it is also what a JSON report reads back into).
struct ReportData {
  struct CounterData {
    std::string name;
    std::string help;
    std::uint64_t total = 0;
    bool operator==(const CounterData&) const = default;
  };
  struct SeriesData {
    std::string name;
    std::string help;
    Series::Kind kind = Series::Kind::Gauge;
    std::vector<double> values;
    bool operator==(const SeriesData&) const = default;
  };
  struct Bucket {
    std::uint64_t lower_ns = 0;
    std::uint64_t upper_ns = 0;
    std::uint64_t count = 0;
    bool operator==(const Bucket&) const = default;
  };
  struct HistogramData {
    std::string name;
    std::string help;
    std::uint64_t count = 0;
    double min_us = 0, mean_us = 0, p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
    double sum_us = 0;
    std::vector<Bucket> buckets;  ///< the non-empty fine buckets, in order
    bool operator==(const HistogramData&) const = default;
  };
  struct ErrorData {
    std::string cause;
    std::uint64_t count = 0;
    std::string example;
    bool operator==(const ErrorData&) const = default;
  };

  int schema = kReportSchema;
  std::string title;
  std::string started_utc;  ///< ISO 8601, e.g. 2026-12-03T20:30:00Z
  double duration_s = 0;
  MachineInfo machine;
  std::uint64_t rss_at_start_bytes = 0;  ///< the process's RSS when measuring began (0: unknown)
  std::vector<double> t_s;
  std::vector<CounterData> counters;
  std::vector<SeriesData> series;
  std::vector<HistogramData> histograms;
  std::vector<ErrorData> errors;

  bool operator==(const ReportData& o) const;
};

/// The report of `metrics` at `now` (the series hold the ticks so far; counters' totals are
/// read at `now`). Histograms that never got a sample are left out.
[[nodiscard]] ReportData build_report(const Metrics& metrics, Metrics::TimePoint now,
                                      std::string title, std::string started_utc);

/// The JSON document (schema above).
[[nodiscard]] nlohmann::json to_json(const ReportData& report);

/// Reads a JSON report back. Returns nothing and sets `error` (if given) to what is wrong when
/// `j` is not a report of a schema this code reads (a missing or mistyped key, a series whose
/// length differs from t_s, a schema number other than 1). Never throws.
[[nodiscard]] std::optional<ReportData> report_from_json(const nlohmann::json& j,
                                                         std::string* error = nullptr);

/// The HTML page: summary table, one plot per series (the fleet's rates and gauges, then the
/// machine's CPU and memory), one histogram per latency with p50, p90, p99 and p99.9 marked,
/// the errors by cause. Self-contained: no script, no external resource. Every string from the
/// report is escaped. The page is also well-formed XML (tests check it with an XML parser).
[[nodiscard]] std::string to_html(const ReportData& report);

/// Writes the JSON report (indented) to `json_path` and the HTML page to `html_path`; an empty
/// path skips that file. Each file is replaced atomically (edgekit/core/durable_file.hpp, mode
/// 0644), so that a run stopped while writing leaves the previous file or the new one, never a
/// part. Returns an empty string, or which file failed and why (its directory missing, no
/// permission, a path longer than 1,024 bytes); a failed JSON write does not stop the HTML one.
[[nodiscard]] std::string write_report_files(const ReportData& report, std::string_view json_path,
                                             std::string_view html_path);

/// `s` with & < > " ' replaced by character references: safe in text and in quoted attributes.
[[nodiscard]] std::string html_escape(std::string_view s);

/// A duration in µs as people read it: "850 ns", "12.3 µs", "4.56 ms", "2.1 s".
[[nodiscard]] std::string format_duration_us(double us);

}  // namespace edgekit::sim
