#pragma once
/// \file
/// The simulator's Prometheus endpoint: `GET /metrics` in the text exposition format 0.0.4,
/// served by cpp-httplib on threads of its own. The loop thread publishes a `Snapshot` once a
/// second into a `SnapshotBoard`; the HTTP threads read only the board, never live metrics.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "metrics.hpp"

namespace edgekit::sim {

/// The exposition text of `s`. Every metric gets HELP and TYPE lines and the prefix
/// `edgekit_sim_`; counters end in `_total`; gauges keep their names; each latency histogram
/// becomes `<name>_seconds` with cumulative `_bucket{le="..."}` lines (1-2-5 from 1e-06 to 100,
/// then +Inf), `_sum` (seconds) and `_count`; errors by cause are
/// `edgekit_sim_error_causes_total{cause="..."}`. Names are reduced to [a-zA-Z0-9_:] (others
/// become `_`); label values and HELP texts are escaped as the format requires. Pure.
[[nodiscard]] std::string render_prometheus(const Snapshot& s);

/// The latest snapshot, handed from the loop thread to the HTTP threads. Thread safety: every
/// member may be called from any thread; `publish` and `latest` copy under one mutex (a copy of
/// a few kB once a second, so neither side waits noticeably).
class SnapshotBoard {
 public:
  void publish(Snapshot s);
  [[nodiscard]] Snapshot latest() const;
  /// How many snapshots have been published (0: none yet; the endpoint then answers 503).
  [[nodiscard]] std::uint64_t generation() const;

 private:
  mutable std::mutex mutex_;
  Snapshot snapshot_;             // guarded by mutex_
  std::uint64_t generation_ = 0;  // guarded by mutex_
};

/// The HTTP server of the endpoint. `start` binds and starts serving; `stop` (or the
/// destructor) stops and joins. `board` must outlive the server. Not thread-safe itself: start
/// and stop it from one thread. `GET /metrics` answers 200 with the exposition text of the
/// latest snapshot, or 503 before the first; other paths 404.
class PrometheusServer {
 public:
  explicit PrometheusServer(const SnapshotBoard& board);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  /// Listens on `host:port` (port 0: a free port the system picks; tests use it — the
  /// simulator's option takes 0 to mean "no endpoint" and does not call this). The default host
  /// is loopback: the figures say how the machine and the fleet are doing, which is not for
  /// every network. Returns the bound port, or 0 and sets `error` when the address cannot be
  /// bound or the listener stops at once.
  [[nodiscard]] std::uint16_t start(const std::string& host, std::uint16_t port,
                                    std::string* error = nullptr);
  void stop();
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  struct Impl;
  const SnapshotBoard& board_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

/// The default listen address of the endpoint.
inline constexpr std::string_view kDefaultPrometheusHost = "127.0.0.1";

}  // namespace edgekit::sim
