#pragma once
/// \file
/// `edgekit::agent::AgentCore`: everything the agent does — command pool, subscription router,
/// connection keeper with backoff, offline queue, outbox, request/response timers — as one object
/// that a driver *steps*. It owns no thread, never sleeps and never reads a clock: the driver
/// passes the time to `step(now)` and asks `next_deadline()` when to step again. It drives the
/// sans-I/O `mqtt::Connection` directly over a `Transport` from the `TransportFactory`, using only
/// the transport's non-blocking calls (`recv`, `writev`); the CONNECT / CONNACK exchange is
/// event-driven like every other packet, so commands are handled while a connection is being set
/// up. The only call that may block is the factory's `connect` (a TCP / TLS connect), made from
/// `step` when a (re)connection attempt is due.
///
/// Drivers: `Agent` (agent.hpp) runs a core on its own thread and lets other threads post
/// commands; a test steps one in simulated time against a scripted broker
/// (libs/agent/test/agent_core_test.cpp); an event loop could step many.
///
///   AgentCore core(config, options, factory);
///   core.start();
///   core.publish(message, done);                 // any thread
///   loop: core.step(clock.now());                // the driver's thread
///         wait for core.poll_handle() readable (or writable when core.wants_write()),
///         a command (the wake hook), or core.next_deadline()
///
/// Every guarantee of docs/agent.md (order, nothing silently lost, QoS 2 uncertainty, clear
/// failures, non-blocking subscribe, resubscription report, routing) is the core's.
///
/// Thread safety: the command calls (`publish`, `subscribe`, `unsubscribe`, `disconnect`,
/// `expect_response`, `reconnect`, the `post_*` / `wait_outcome` calls) and `state` / `stats`
/// may be called from any thread. Everything else belongs to the driving thread ("core thread"),
/// which is also where every handler runs (completion, message, status, response).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "edgekit/agent/agent.hpp"
#include "edgekit/core/clock.hpp"

namespace edgekit::agent {

/// How a posting call may block its caller before the command is queued (see
/// `Agent::publish` with a `PublishWait`). A stepped core's own thread never waits.
struct Admission {
  /// Null: never wait (full pool → QueueFull, full offline queue → OfflineQueueFull).
  const Clock* clock = nullptr;
  /// When to give up (with `Errc::Timeout`).
  Instant deadline{};
  /// Wait until the agent is connected before queuing.
  bool until_connected = false;
};

/// See the file comment.
class AgentCore {
 public:
  /// Takes every byte it will ever use (command slots, router, session records, the
  /// connection's buffers). `options`' views, `factory` and the stores must outlive the core.
  AgentCore(const Config& config, const mqtt::ConnectOptions& options, TransportFactory& factory,
            Persistence persistence = {}) noexcept;
  ~AgentCore();
  AgentCore(const AgentCore&) = delete;
  AgentCore& operator=(const AgentCore&) = delete;

  // --- Set-up (before `start`) ------------------------------------------------------------------

  /// Receives the status reports (core thread).
  void set_status_handler(StatusHandler handler) noexcept;
  /// Called on the posting thread right after a command is queued, so that a driver waiting
  /// for input can be woken (the thread driver's `Wakeup::wake`). Optional.
  void set_wake(void (*function)(void* context), void* context) noexcept;
  /// Restores the persisted outbox and session and opens the intake: commands are accepted and
  /// the next `step` connects. Returns false when started already, or when the persisted state
  /// was refused (reported RestoreRefused; the intake stays closed: commands get NotStarted).
  /// Records that cannot be restored are reported (StoredRecordUnusable) from inside this call.
  [[nodiscard]] bool start() noexcept;

  // --- Commands (any thread; as the `Agent` calls of the same names) ----------------------------

  [[nodiscard]] Result<void> publish(const mqtt::Publish& message,
                                     CompletionHandler done = {}) noexcept;
  [[nodiscard]] Result<void> subscribe(std::string_view filter, mqtt::SubscribeOptions options,
                                       MessageHandler handler,
                                       CompletionHandler done = {}) noexcept;
  [[nodiscard]] Result<void> unsubscribe(std::string_view filter,
                                         CompletionHandler done = {}) noexcept;
  [[nodiscard]] Result<void> disconnect(CompletionHandler done = {}) noexcept;
  /// Request/response correlation (for the Shadow, Jobs and provisioning clients): registers
  /// that a response carrying `correlation` (a client token, at most
  /// `Config::max_correlation_length` bytes, copied) is expected within `timeout`, counted from
  /// the `step` that takes the command. The response is handed in by `deliver_response`, usually
  /// from the message handler of the response topic's subscription. Register before publishing
  /// the request, so that a fast response cannot arrive first.
  /// Errors: NotStarted; Stopped; QueueFull; InvalidArgument (empty or too long).
  [[nodiscard]] Result<void> expect_response(std::string_view correlation, Duration timeout,
                                             ResponseHandler handler) noexcept;
  /// Core thread: completes the expectation registered for `correlation` with `response`.
  /// Returns false when there is none (never registered, timed out already, or answered).
  bool deliver_response(std::string_view correlation, const mqtt::Publish& response) noexcept;
  /// After a permanent failure or `disconnect`: connect again (backoff reset) at the next step.
  void reconnect() noexcept;

  // --- Driver (core thread) ---------------------------------------------------------------------

  /// Does everything due at `now` without waiting: takes the queued commands, connects when an
  /// attempt is due (the factory's `connect` is the one call that may block), writes what the
  /// connection queued, reads what the transport has, handles the events (routing messages,
  /// completing commands, resubscribing, reporting), and runs the timers (CONNACK, keep-alive,
  /// SUBACK / UNSUBACK and response timeouts, a stalled write).
  void step(Instant now) noexcept;
  /// When `step` must run next at the latest, without new input; nullopt: only on input.
  [[nodiscard]] std::optional<Instant> next_deadline() const noexcept;
  /// True when `step` has work it could do at once (commands queued, a batch cut short).
  [[nodiscard]] bool has_work() const noexcept;
  /// The transport of the current connection (nullptr: none), and its pollable descriptor
  /// (-1: none). A driver waits for it to become readable, or writable while `wants_write`.
  [[nodiscard]] transport::Transport* transport() noexcept;
  [[nodiscard]] int poll_handle() const noexcept;
  /// True when output is waiting for the transport to take it (it returned WouldBlock).
  [[nodiscard]] bool wants_write() const noexcept;
  /// How many bytes the driver may let gather on `poll_handle()` before it steps again for
  /// input (1: step for any byte). Above 1 only while everything written is on the wire and
  /// many QoS 1/2 publishes await their acks: then it is a quarter of those acks (at most
  /// `Config::ack_coalescing`) at their smallest size, bytes that are sure to come without any
  /// further write, so a wait for them cannot hang; the other acks keep the pipeline full.
  /// Incoming messages wait with them (no longer than those acks take). A driver that cannot
  /// wait for a count may ignore it.
  [[nodiscard]] std::size_t read_low_water() const noexcept;
  /// Ends the core without DISCONNECT (the session stays resumable): closes the transport,
  /// completes every command not carried out with Stopped, reports Stopped. The intake stays
  /// closed (later commands: Stopped). Idempotent.
  void stop() noexcept;
  /// True while called from inside a handler the core runs.
  [[nodiscard]] bool in_handler() const noexcept;

  // --- Callers that block (the thread driver's `*_and_wait` and waiting publish) ----------------

  /// Identifies a command posted with a waiting caller.
  using Ticket = std::uint32_t;
  /// Queues a publish whose caller will collect the outcome with `wait_outcome` (`waiter`), or
  /// which completes through `done`. `admission` may make the caller wait for a free slot or for
  /// the connection first (never on the core thread).
  [[nodiscard]] Result<Ticket> post_publish(const mqtt::Publish& message, CompletionHandler done,
                                            bool waiter, const Admission& admission) noexcept;
  [[nodiscard]] Result<Ticket> post_subscribe(std::string_view filter,
                                              mqtt::SubscribeOptions options,
                                              MessageHandler handler, CompletionHandler done,
                                              bool waiter) noexcept;
  [[nodiscard]] Result<Ticket> post_unsubscribe(std::string_view filter, CompletionHandler done,
                                                bool waiter) noexcept;
  [[nodiscard]] Result<Ticket> post_disconnect(CompletionHandler done, bool waiter) noexcept;
  /// Blocks the calling thread until the command of `ticket` (posted with `waiter`) completes or
  /// `deadline` (on `clock`) passes: then Timeout, and the command goes on, its outcome dropped.
  [[nodiscard]] Result<Outcome> wait_outcome(Ticket ticket, const Clock& clock,
                                             Instant deadline) noexcept;

  // --- State (any thread) -----------------------------------------------------------------------

  [[nodiscard]] ConnectionState state() const noexcept;
  [[nodiscard]] Stats stats() const noexcept;

  struct Impl;  // sources

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgekit::agent
