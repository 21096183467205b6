#pragma once
/// \file
/// A loopback TCP proxy that injects faults on command, for reconnect and resume tests: clients
/// connect to `port()`, the proxy connects each of them to the target port and copies bytes both
/// ways. On command it passes (normal), stalls (stops copying, keeps the connections open),
/// cuts (closes every connection at once, both sides), slows (copies at most `chunk` bytes per
/// `delay`), or refuses new connections. One background thread does the copying.
///
/// Thread safety: every member may be called from any thread.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>

namespace edgekit::testing {

class FaultProxy {
 public:
  /// Forwards to 127.0.0.1:`target_port`.
  explicit FaultProxy(std::uint16_t target_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  /// Listens on a free loopback port and starts the copying thread. False on failure.
  [[nodiscard]] bool start();
  /// Stops the thread and closes everything. Idempotent.
  void stop();

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

  /// Normal copying (also ends stall and slow).
  void pass();
  /// Stops copying in both directions; connections stay open, bytes wait in the kernel. Returns
  /// once the proxy thread has seen it (bytes written after the call are held back).
  void stall();
  /// Stops copying from the server to the clients only (e.g. to hold back an acknowledgement
  /// while the client's packets still reach the server). `pass` ends it. Returns once in force.
  void stall_to_client();
  /// Closes every current connection (both sides) at once. Returns at once; the cut is made by
  /// the proxy thread within a few milliseconds.
  void cut();
  /// Copies at most `chunk` bytes per connection and direction, then waits `delay`.
  void slow(std::chrono::milliseconds delay, std::size_t chunk);
  /// Accepts and immediately closes new connections while true (the broker seems down).
  void refuse(bool on);

  /// Connections accepted and forwarded so far.
  [[nodiscard]] std::size_t connections() const noexcept { return connections_.load(); }
  /// Cuts carried out so far.
  [[nodiscard]] std::size_t cuts() const noexcept { return cuts_done_.load(); }

 private:
  void run();
  void settle();

  std::uint16_t target_port_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stalled_{false};
  std::atomic<bool> stalled_to_client_{false};
  std::atomic<bool> refusing_{false};
  std::atomic<std::size_t> cut_requests_{0};
  std::atomic<std::size_t> cuts_done_{0};
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::size_t> rounds_{0};  // proxy loop iterations started
  std::atomic<std::int64_t> slow_delay_ms_{0};
  std::atomic<std::size_t> slow_chunk_{0};
};

}  // namespace edgekit::testing
