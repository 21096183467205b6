#include "progress.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace edgekit::sim {
namespace {

// 1234567 -> "1,234,567": counts of ten thousand devices read faster with separators.
std::string grouped(double v) {
  if (!std::isfinite(v) || v < 0) v = 0;
  v = std::min(v, 1e18);  // llround's range; no fleet counts beyond it
  std::string digits = std::to_string(static_cast<std::uint64_t>(std::llround(v)));
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

double last_point(const Metrics& m, std::string_view name) {
  for (const auto& e : m.entries()) {
    if (e->name == name) return e->series.values.empty() ? 0.0 : e->series.values.back();
  }
  return 0.0;
}

}  // namespace

ProgressFigures progress_figures(const Metrics& m, Metrics::TimePoint now) {
  ProgressFigures f;
  f.elapsed_s = m.elapsed_seconds(now);
  for (const auto& e : m.entries()) {
    if (e->name == metric::kDevicesConnected && e->gauge) f.connected = e->gauge->value();
    if (e->name == metric::kProvisioned && e->counter) f.provisioned = e->counter->value();
    if (e->name == metric::kErrors && e->counter) f.errors = e->counter->value();
    if (e->name == metric::kOtaBytes && e->counter) f.ota_bytes = e->counter->value();
  }
  f.connects_per_s = last_point(m, metric::kConnects);
  f.provisioned_per_s = last_point(m, metric::kProvisioned);
  f.messages_per_s = last_point(m, metric::kMessages);
  f.ota_bytes_per_s = last_point(m, metric::kOtaBytes);
  return f;
}

std::string format_progress(const ProgressFigures& f) {
  std::array<char, 32> t{};
  std::snprintf(t.data(), t.size(), "[%5.0f s]", std::floor(std::max(0.0, f.elapsed_s)));
  std::string line = std::string(t.data()) + " connected " + grouped(f.connected) + "  provisioned " +
         grouped(static_cast<double>(f.provisioned)) + "  errors " +
         grouped(static_cast<double>(f.errors)) + "  |  " + grouped(f.connects_per_s) +
         " conn/s  " + grouped(f.provisioned_per_s) + " prov/s  " + grouped(f.messages_per_s) +
         " msg/s";
  // Only in runs with an OTA phase: the rollout's volume and its rate over the fleet.
  if (f.ota_bytes != 0) {
    line += "  |  OTA " + grouped(static_cast<double>(f.ota_bytes) / 1024) + " KB at " +
            grouped(f.ota_bytes_per_s / 1024) + " KB/s";
  }
  return line;
}

void ProgressWriter::update(const ProgressFigures& f) {
  std::string line = format_progress(f);
  if (tty_) {
    // \r to the line's start, then the text, then ESC [K to erase what a longer previous line
    // left behind.
    std::fprintf(out_, "\r%s\x1b[K", line.c_str());
    open_line_ = true;
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

void ProgressWriter::finish() {
  if (open_line_) {
    std::fputc('\n', out_);
    std::fflush(out_);
    open_line_ = false;
  }
}

}  // namespace edgekit::sim
