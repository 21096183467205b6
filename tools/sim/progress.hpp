#pragma once
/// \file
/// The progress line of a long simulation: devices connected, provisioned, errors, and the
/// rates of the last second, written once a second. On a terminal one line is rewritten in
/// place (carriage return, erase to end of line); to a file or pipe each update is a line.

#include <cstdio>
#include <string>

#include "metrics.hpp"

namespace edgekit::sim {

/// What the line shows, read from `Metrics` under the names of `metric::`.
struct ProgressFigures {
  double elapsed_s = 0;
  double connected = 0;  ///< gauge devices_connected
  std::uint64_t provisioned = 0;
  std::uint64_t errors = 0;
  double connects_per_s = 0;  ///< rates: the last tick's series point
  double provisioned_per_s = 0;
  double messages_per_s = 0;
  std::uint64_t ota_bytes = 0;  ///< counter ota_bytes: image bytes the devices stored
  double ota_bytes_per_s = 0;
};

/// The figures of `metrics` at `now` (rates from its last tick; 0 before the first).
[[nodiscard]] ProgressFigures progress_figures(const Metrics& metrics, Metrics::TimePoint now);

/// "[  12 s] connected 9,812  provisioned 10,000  errors 3  |  1,204 conn/s  980 prov/s
/// 5,000 msg/s", then "  |  OTA 1,024 KB at 256 KB/s" once OTA bytes were stored — no newline
/// or control characters. Pure.
[[nodiscard]] std::string format_progress(const ProgressFigures& f);

/// Writes the line to `out`. `tty` chooses in-place updates (use `isatty(fileno(out))`).
/// Not thread-safe: call from the loop thread. Write errors are ignored (progress is a
/// courtesy; a closed pipe must not stop the simulation).
class ProgressWriter {
 public:
  ProgressWriter(std::FILE* out, bool tty) : out_(out), tty_(tty) {}
  ~ProgressWriter() { finish(); }
  ProgressWriter(const ProgressWriter&) = delete;
  ProgressWriter& operator=(const ProgressWriter&) = delete;

  void update(const ProgressFigures& f);
  /// Ends an in-place line with a newline so that what follows starts on a fresh line.
  /// Idempotent.
  void finish();

 private:
  std::FILE* out_;
  bool tty_;
  bool open_line_ = false;
};

}  // namespace edgekit::sim
