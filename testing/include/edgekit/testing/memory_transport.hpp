#pragma once
/// \file
/// An in-memory `Transport` for client tests: what the client writes is captured, what the test
/// (or a `ScriptedBroker`) pushes is what the client reads, and faults are scripted: inbound
/// delivered in chunks, WouldBlock, partial writes, end of stream, errors. It counts the
/// system-call-like operations so tests can assert batching ("one writev per publish").
///
/// `wait` never sleeps (unless `set_blocking_wait(true)`): it reports Ready when there is
/// something to read (or the stream ended / failed), else Timeout — and, when a `ManualClock` is
/// attached, advances it by the timeout, so a client's keep-alive and ping timeout run in
/// simulated time.
///
/// Thread safety: every member may be called from any thread (one mutex); hooks run with the
/// mutex released, on the thread that triggered them.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "edgekit/transport/transport.hpp"

namespace edgekit::testing {

class ManualClock;

/// Counts of the calls the client made, as a real transport would count system calls.
struct TransportStats {
  std::size_t send_calls = 0;
  std::size_t writev_calls = 0;
  std::size_t recv_calls = 0;
  std::size_t wait_calls = 0;
  std::size_t close_calls = 0;
  std::size_t bytes_sent = 0;
  std::size_t bytes_received = 0;
  /// send + writev calls: what a batching test usually asserts on.
  [[nodiscard]] std::size_t write_calls() const noexcept { return send_calls + writev_calls; }
};

/// The in-memory transport the client under test talks through.
class MemoryTransport final : public transport::Transport {
 public:
  using IoResult = transport::IoResult;
  using IoStatus = transport::IoStatus;

  MemoryTransport() = default;
  MemoryTransport(const MemoryTransport&) = delete;
  MemoryTransport& operator=(const MemoryTransport&) = delete;

  // --- The client's side (Transport) -----------------------------------------------------------
  /// Appends to the captured outbound bytes (capped by `set_send_cap`), or returns the next
  /// scripted send outcome. After a successful write the outbound hook runs.
  IoResult send(transport::ConstBuffer data) noexcept override;
  /// Real scatter/gather: one call, one count, all buffers (up to the cap) captured in order.
  IoResult writev(std::span<const transport::ConstBuffer> buffers) noexcept override;
  /// Delivers queued inbound bytes, at most `set_recv_chunk` at a time; WouldBlock when none are
  /// queued; Closed after `close_inbound` once the queue is drained (or at once after `close`);
  /// Error after `fail`.
  IoResult recv(std::span<std::byte> buffer) noexcept override;
  /// Runs the wait hook, then: Read → Ready if inbound bytes are queued or the stream ended or
  /// failed; Write → always Ready (scripted send outcomes are consumed by the sends). Otherwise
  /// Timeout, advancing the attached clock by `timeout_ms` (or, with blocking wait, sleeping up to
  /// `timeout_ms` of real time for `push_inbound` from another thread).
  transport::WaitStatus wait(transport::Interest interest,
                             std::uint32_t timeout_ms) noexcept override;
  /// Marks the transport closed by the client: later calls return Closed. Idempotent.
  void close() noexcept override;

  // --- The test's side -------------------------------------------------------------------------
  /// Queues bytes for the client to read.
  void push_inbound(std::span<const std::byte> bytes);
  void push_inbound(std::string_view bytes);
  /// The peer ends the stream in order: recv returns Closed once queued bytes are drained, and
  /// sends return Closed.
  void close_inbound();
  /// The transport fails: every later send/recv/writev returns Error with `system_error`.
  void fail(int system_error);

  /// Deliver inbound at most `n` bytes per recv (0 = unlimited, the default).
  void set_recv_chunk(std::size_t n);
  /// Accept at most `n` bytes per send/writev (0 = unlimited): forces partial writes.
  void set_send_cap(std::size_t n);
  /// The next recv calls return these statuses, in order, before normal behaviour resumes
  /// (WouldBlock to exercise retries, Closed / Error for one-off faults).
  void script_recv(std::initializer_list<IoStatus> outcomes);
  /// The same for send / writev calls.
  void script_send(std::initializer_list<IoStatus> outcomes);
  /// Attaches a clock that `wait` advances by its timeout when nothing is ready (nullptr detaches).
  void attach_clock(ManualClock* clock);
  /// With `true`, `wait` blocks up to `timeout_ms` of real time for inbound bytes instead of
  /// returning Timeout at once (for tests where another thread plays the peer).
  void set_blocking_wait(bool on);

  /// Called (without the lock) after each send/writev that moved bytes, with the bytes just
  /// written (also kept in `outbound()`). The scripted broker uses it to answer as soon as the
  /// client has written a whole packet. Must not be called from inside a hook.
  void on_outbound(std::function<void(std::span<const std::byte>)> hook);
  /// Called (without the lock) at the start of each `wait`, with its arguments.
  void on_wait(std::function<void(transport::Interest, std::uint32_t)> hook);

  /// Every byte the client has written so far, in order (a copy).
  [[nodiscard]] std::vector<std::byte> outbound() const;
  /// Removes and returns the bytes the client has written so far.
  [[nodiscard]] std::vector<std::byte> take_outbound();
  /// Bytes pushed but not yet read by the client.
  [[nodiscard]] std::size_t inbound_pending() const;
  [[nodiscard]] TransportStats stats() const;
  void reset_stats();
  /// True once the client called close().
  [[nodiscard]] bool closed_by_client() const;

 private:
  IoResult write_locked(std::span<const transport::ConstBuffer> buffers, bool is_writev,
                        std::unique_lock<std::mutex>& lock);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::byte> inbound_;
  std::vector<std::byte> outbound_;
  std::deque<IoStatus> recv_script_;
  std::deque<IoStatus> send_script_;
  std::size_t recv_chunk_ = 0;
  std::size_t send_cap_ = 0;
  bool peer_closed_ = false;
  bool client_closed_ = false;
  int failed_errno_ = 0;
  bool blocking_wait_ = false;
  ManualClock* clock_ = nullptr;
  std::function<void(std::span<const std::byte>)> on_outbound_;
  std::function<void(transport::Interest, std::uint32_t)> on_wait_;
  TransportStats stats_;
};

}  // namespace edgekit::testing
