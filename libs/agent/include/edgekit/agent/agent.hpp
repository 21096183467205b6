#pragma once
/// \file
/// `edgekit::agent::Agent`: one MQTT connection (3.1.1 or 5) shared by many threads.
///
/// One thread (the agent's, started by `start`) steps an `AgentCore` (core.hpp), which owns the
/// sans-I/O `mqtt::Connection`, its `Session` and the transport. Any thread may call `publish`,
/// `subscribe`, `unsubscribe` and `disconnect`; each call copies what it needs into a command
/// slot, queues it and returns at once. The outcome (the broker's reason code, or why it failed)
/// arrives as a `CompletionHandler` call on the agent thread, or the caller waits for it with a
/// timeout (`*_and_wait`).
///
/// Memory: everything is allocated once, in the constructor (command slots of `slot_size` bytes
/// each, the connection's buffers, the router's table, the session's records; docs/agent.md
/// states the figures). Steady-state operation never touches the heap. A full pool is an error
/// the caller sees (`Errc::QueueFull`), never a block — unless the caller asks `publish` to wait
/// for room (`PublishWait`).
///
/// Ordering: commands are carried out in the order they were queued (a publish waiting for the
/// server's Receive Maximum holds back the ones behind it), so the messages of one publishing
/// thread leave in the order it queued them, also across reconnects and restarts.
///
/// Connection keeping: the agent connects through the `TransportFactory`, reconnects with
/// exponential backoff and full jitter (`edgekit::backoff`), resumes the session (the engine
/// resends unacknowledged QoS 1/2 with DUP), and when the broker lost the session
/// (session_present = 0) subscribes every filter again and puts the publishes the broker forgot
/// back at the head of the queue; the status handler is told so. One exception, see
/// `UncertainQoS2Policy`: a QoS 2 publish the broker had already accepted (PUBREC) may have been
/// delivered before the broker lost it, so by default it is not resent but completes with
/// `Errc::DeliveryUncertain`. Permanent failures (bad user
/// name or password, not authorized, client id rejected, banned, unreachable on the very first
/// connection, protocol errors) stop the retrying unless `Config::retry_permanent_failures`.
///
/// Batching: the agent thread takes every queued command (up to `Config::max_batch`) and the
/// packets they produce leave together (one writev of the connection's send queue, up to 16
/// packets); every complete packet of one read is handled and the acknowledgements they need
/// leave in one write as well.
///
/// Connecting: the TCP / TLS connect is the factory's (blocking) call on the agent thread; the
/// MQTT CONNECT / CONNACK exchange is event-driven, so commands are taken (queued, dropped by
/// the offline policy, a `disconnect` abandons the attempt) while the CONNACK is awaited.
///
/// Thread safety: every public member may be called from any thread, including from inside a
/// `MessageHandler` or `CompletionHandler` (which run on the agent thread) — except the
/// `*_and_wait` calls, which return `Errc::WouldDeadlock` there.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <system_error>

#include "edgekit/core/backoff.hpp"
#include "edgekit/core/clock.hpp"
#include "edgekit/core/result.hpp"
#include "edgekit/mqtt/connection.hpp"
#include "edgekit/mqtt/session_store.hpp"
#include "edgekit/transport/transport.hpp"

namespace edgekit::agent {

/// Errors of the agent (what the MQTT layer said, if anything, is in `mqtt` / `Outcome`).
enum class Errc : std::uint8_t {
  Ok = 0,
  QueueFull,          ///< every command slot is taken (queued or in flight); try again later
  OfflineQueueFull,   ///< disconnected and the offline queue is at `Config::offline_queue_limit`
  Dropped,            ///< completion: a queued QoS 0 publish dropped while offline to make room
  MessageTooLarge,    ///< the encoded command does not fit `Config::slot_size`
  Rejected,           ///< the MQTT layer refused the command; `mqtt` says why
  Stopped,            ///< the agent is stopped (or stopping): the command was not carried out
  PermanentFailure,   ///< the connection failed permanently (see the status); not retrying
  Timeout,            ///< `*_and_wait` timed out (the command goes on, its outcome is dropped);
                      ///< a waiting `publish` found no room in time (nothing queued); a
                      ///< response expectation (`expect_response`) got no response in time
  WouldDeadlock,      ///< a waiting call made on the agent thread (from a handler)
  NotSubscribed,      ///< unsubscribe of a filter that has no subscription
  RouterFull,         ///< `Config::max_subscriptions` filters are subscribed already
  InvalidArgument,    ///< e.g. a filter longer than `Config::max_filter_length`
  PersistenceFailed,  ///< the outbox could not store the message (nothing queued)
  Lost,               ///< the broker forgot the session and the message could not be requeued
  NotStarted,         ///< `start` has not been called or failed
  /// Completion of a QoS 2 publish: the broker had accepted it (PUBREC) and then lost the session
  /// before PUBCOMP; it may or may not have been delivered, and it was not resent (see
  /// `UncertainQoS2Policy::ReportUncertain`). `Outcome::packet_id` is the id it had.
  DeliveryUncertain,
};

/// A short static name of `e`.
[[nodiscard]] const char* to_string(Errc e) noexcept;

/// The `std::error_category` of the agent's `Errc` (name "edgekit.agent", messages from
/// `to_string`). Thread safe. The MQTT layer's reason (`Error::mqtt`, `Outcome::mqtt`) has its
/// own category, `mqtt::mqtt_category()`.
[[nodiscard]] const std::error_category& agent_category() noexcept;

/// Wires the agent's `Errc` into `std::error_code`: `std::error_code ec = outcome.error;`.
[[nodiscard]] inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), agent_category()};
}

/// An error returned at once by a call (nothing was queued).
struct Error {
  Errc code = Errc::Ok;
  mqtt::Errc mqtt = mqtt::Errc::Ok;  ///< with Rejected: the MQTT layer's reason
};

template <class T>
using Result = edgekit::Result<T, Error>;

/// How a command ended.
struct Outcome {
  Errc error = Errc::Ok;
  mqtt::Errc mqtt = mqtt::Errc::Ok;
  /// The broker's reason code: PUBACK / PUBREC (when it failed) / PUBCOMP for publishes (Success
  /// for QoS 0, and always in 3.1.1), the SUBACK code (granted QoS or failure), the UNSUBACK code
  /// (Success in 3.1.1).
  mqtt::ReasonCode reason_code = mqtt::ReasonCode::Success;
  /// Publishes: the packet id used (0 for QoS 0).
  std::uint16_t packet_id = 0;
  /// True when the command was carried out and the broker did not refuse it.
  [[nodiscard]] bool ok() const noexcept {
    return error == Errc::Ok && !mqtt::is_error(reason_code);
  }
};

/// Called once, on the agent thread, when a command ends. A function pointer and a context (no
/// allocation); the context must stay valid until the call.
struct CompletionHandler {
  void (*function)(void* context, const Outcome& outcome) = nullptr;
  void* context = nullptr;
};

/// Receives the messages of one subscription, on the agent thread. The message and its views are
/// valid during the call only. May call the agent (not its `*_and_wait` members).
struct MessageHandler {
  void (*function)(void* context, const mqtt::Publish& message) = nullptr;
  void* context = nullptr;
};

/// Receives the outcome of an `expect_response`: once, on the agent thread, with the response
/// (`response` non-null, valid during the call only, `outcome.ok()`) or without one
/// (`outcome.error` Timeout, or Stopped).
struct ResponseHandler {
  void (*function)(void* context, const Outcome& outcome, const mqtt::Publish* response) = nullptr;
  void* context = nullptr;
};

/// A new connection made by a `TransportFactory`.
struct TransportConnection {
  /// Connected, owned by the factory, valid until its next `connect` or its destruction.
  transport::Transport* transport = nullptr;
  /// A pollable descriptor of the connection (the socket) so the agent can wait on it and on its
  /// wake-up at once; -1 when there is none (the agent then waits in short slices).
  int poll_handle = -1;
};

/// Why a `TransportFactory` could not connect. The transport's own error (`transport::TcpErrc`,
/// `tls::Cause`) is mapped into MQTT's "transport and client" group, which the agent reports in
/// `Status::error`: name resolution → HostNotFound, connect or handshake timeout → Timeout,
/// anything else → ConnectFailed (with `permanent` where a retry cannot help). The factories
/// document their mapping (`TcpTransportFactory::connect`, `tls::TlsTransportFactory::connect`).
struct TransportFailure {
  mqtt::Errc error = mqtt::Errc::ConnectFailed;  ///< ConnectFailed, HostNotFound, Timeout
  int system_error = 0;                          ///< errno, when there is one
  const char* detail = "";                       ///< static text
  /// True when retrying cannot help (e.g. an invalid address).
  bool permanent = false;
  /// The transport's own error, which `error` maps into MQTT's terms: a `transport::TcpErrc`,
  /// a `tls::Cause`, ... (compare with `==`, print with `message()`); empty when there is none.
  std::error_code transport_error{};
};

/// Makes a new connected transport for each connection attempt: TCP today, TLS later.
/// Called on the agent thread only.
class TransportFactory {
 public:
  [[nodiscard]] virtual edgekit::Result<TransportConnection, TransportFailure> connect() noexcept = 0;

 protected:
  ~TransportFactory() = default;
};

/// The TCP `TransportFactory`. Keeps one `TcpTransport` (the current connection).
class TcpTransportFactory final : public TransportFactory {
 public:
  /// `host` is copied (at most 253 characters). `timeout` bounds each connect.
  TcpTransportFactory(std::string_view host, std::uint16_t port,
                      Duration timeout = Duration{5000}) noexcept;
  ~TcpTransportFactory();
  /// Errors: HostNotFound (permanent), ConnectFailed (refused, unreachable), Timeout.
  [[nodiscard]] edgekit::Result<TransportConnection, TransportFailure> connect() noexcept override;
  /// Changes the port of later connections (tests move a client between proxy and broker).
  void set_port(std::uint16_t port) noexcept { port_.store(port); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<std::uint16_t> port_;
};

/// What the connection is doing.
enum class ConnectionState : std::uint8_t {
  Idle,          ///< not started
  Connecting,    ///< a connection attempt is in progress
  Connected,     ///< connected; commands flow
  Disconnected,  ///< the connection is down; a retry is scheduled (`Status::retry_in`)
  Failed,        ///< a permanent failure: no more retries until `reconnect`
  Closed,        ///< `disconnect` was carried out (or `stop`): no retries until `reconnect`
};

/// Why the state changed.
enum class StatusReason : std::uint8_t {
  Connecting,          ///< an attempt starts
  SessionResumed,      ///< connected, the broker had the session (unacked messages resent)
  SessionStarted,      ///< connected with a new session (first connect, or clean start)
  SessionLost,         ///< connected, but the broker had lost the session: subscriptions were
                       ///< made again (`resubscribed`), forgotten publishes requeued (`requeued`)
                       ///< or not resent (`uncertain`, `lost`). Also on the first connect after
                       ///< a restart when the broker had lost the persisted session's publishes.
                       ///< The report of a connect (SessionResumed / SessionStarted /
                       ///< SessionLost) is sent once every resubscription has been answered
                       ///< (commands are carried out meanwhile); should the link drop first, it is
                       ///< still sent, right before the ConnectionLost report, with the
                       ///< unanswered ones in `resubscribe_pending`
  Unreachable,         ///< the transport could not connect (`error`, `system_error`, `detail`)
  Refused,             ///< CONNACK refused the connection (`broker_reason`)
  ConnectionLost,      ///< an established connection ended (`error`; `broker_reason` when the
                       ///< server sent DISCONNECT)
  ProtocolViolation,   ///< the broker broke the protocol (`error`)
  Disconnected,        ///< `disconnect` was carried out
  Stopped,             ///< `stop`
  /// During `start`, once per persisted record that could not be restored (its store kept it
  /// aside, where nothing overwrites it: `FileSessionStore` as `<name>.bad`, see there).
  /// `detail` says which store ("session store" or "outbox"); `error` why: PersistenceCorrupted
  /// (failed the store's integrity check: a flipped byte, a truncated file), or for a record
  /// whose checksum was valid the decode error of its packet (MalformedPacket, ...),
  /// MalformedPacket for a packet that cannot be a stored QoS 1/2 publish, or
  /// UnsupportedProtocolVersion (an outbox message stored for the other protocol version).
  /// `lost` is 1 when the record was a message (its delivery is up to the application now), 0
  /// for the meta data, a release marker or an inbound QoS 2 id. `record` names it when the
  /// store found it corrupt ("p-12"), else `packet_id` (the store's key) does. The rest of the
  /// persisted state is restored and the agent starts.
  StoredRecordUnusable,
  /// `start` refused: the persisted state does not fit this configuration, or could not be
  /// read, and restoring part of it would leave messages behind. Nothing was changed in the
  /// stores (apart from records reported StoredRecordUnusable, which were set aside); start an
  /// agent whose configuration holds them. `error`: SessionStateFull (more stored publishes
  /// than `Config::inflight_records`, inbound QoS 2 ids than `incoming_qos2`, or outbox
  /// messages than `command_slots`), BufferTooSmall (a store's load buffer is too small for its
  /// records, or an outbox message is larger than `slot_size`), PersistenceFailed (a read
  /// failed, or a damaged record could not be set aside), PersistenceCorrupted (two records
  /// under one packet id); `detail` says which. State Failed, `permanent`.
  RestoreRefused,
};

/// A connection state change, given to the status handler (on the agent thread).
struct Status {
  ConnectionState state = ConnectionState::Idle;
  StatusReason reason = StatusReason::Connecting;
  mqtt::Errc error = mqtt::Errc::Ok;
  mqtt::ReasonCode broker_reason = mqtt::ReasonCode::Success;
  /// True when the agent stops retrying because of this (state Failed).
  bool permanent = false;
  /// Consecutive failed attempts so far.
  std::uint32_t attempts = 0;
  /// Disconnected: when the next attempt is made.
  Duration retry_in{0};
  /// SessionLost (or SessionResumed after a connection that dropped during its
  /// resubscriptions): subscriptions the broker granted again.
  std::size_t resubscribed = 0;
  /// Subscriptions to be made again whose SUBACK did not arrive: the link dropped (or
  /// `operation_timeout` passed) during the resubscriptions. They are made again on the next
  /// connection, even when the broker resumes the session then.
  std::size_t resubscribe_pending = 0;
  std::size_t requeued = 0;      ///< SessionLost: publishes put back in the queue
  /// SessionLost: publishes that could not be requeued. StoredRecordUnusable: 1 when the record
  /// was a message.
  std::size_t lost = 0;
  /// SessionLost: QoS 2 publishes the broker had accepted (PUBREC) before it lost them, not
  /// resent (`UncertainQoS2Policy::ReportUncertain`); those of a running caller completed with
  /// DeliveryUncertain, those restored after a restart (no caller any more) only counted here.
  std::size_t uncertain = 0;
  int system_error = 0;
  const char* detail = "";  ///< static text
  /// Unreachable: the transport's own error (`TransportFailure::transport_error`), e.g.
  /// tls::Cause::UnknownCa behind `error` ConnectFailed.
  std::error_code transport_error{};
  /// StoredRecordUnusable: the store's name of a record it found corrupt (valid during the
  /// call), else empty.
  std::string_view record{};
  /// StoredRecordUnusable: the packet id (the store's key) of a record set aside for its
  /// content, else 0.
  std::uint16_t packet_id = 0;
};

/// Receives `Status` reports on the agent thread. May call the agent.
struct StatusHandler {
  void (*function)(void* context, const Status& status) = nullptr;
  void* context = nullptr;
};

/// What to do with a new publish while disconnected and `offline_queue_limit` are queued.
enum class OfflinePolicy : std::uint8_t {
  RejectNew,        ///< the new publish fails with OfflineQueueFull
  DropOldestQoS0,   ///< the oldest queued QoS 0 publish completes with Dropped and the new one
                    ///< is queued; with no QoS 0 queued, as RejectNew
};

/// What to do with a QoS 2 publish when the broker lost the session (CONNACK session_present =
/// 0) after it had acknowledged receipt with PUBREC (we had sent PUBREL, PUBCOMP had not
/// arrived). The broker owned the message then and may have released it to subscribers already
/// (Mosquitto does so when it gets PUBREL); or it may have lost it first. Neither side can know:
/// resending may deliver it twice, not resending may lose it.
///
/// Publishes for which this question does not arise are always requeued and sent again under a
/// new packet id: QoS 1 (duplicates are part of its contract), and QoS 2 without PUBREC (the
/// broker had not accepted it, so it never delivered it). Residual case: a PUBREC the broker sent
/// but that was lost in the cut before it reached us: the broker may then have delivered the
/// message (Mosquitto releases QoS 2 only on PUBREL, which we had not sent, so with Mosquitto it
/// has not; a broker that delivers on receipt may have), and the requeued copy can be a
/// duplicate — the agent cannot see that case.
enum class UncertainQoS2Policy : std::uint8_t {
  /// Do not resend: complete the caller's publish with `Errc::DeliveryUncertain` and count it
  /// (`Status::uncertain`, `Stats::uncertain`). At most once, and the application knows.
  ReportUncertain,
  /// Requeue and send it again under a new packet id like every other lost publish: at least
  /// once (the subscriber may receive it twice).
  Republish,
};

/// Sizes and timings, fixed at construction.
struct Config {
  /// Command slots: queued plus in-flight commands (QoS 1/2 publishes stay until acknowledged).
  std::size_t command_slots = 64;
  /// Bytes per slot: the largest encoded PUBLISH (header, topic, properties, payload) or filter.
  std::size_t slot_size = 1024;
  /// Publishes held while disconnected (at most command_slots), and what happens beyond.
  std::size_t offline_queue_limit = 32;
  OfflinePolicy offline_policy = OfflinePolicy::RejectNew;
  /// Subscriptions (router entries) and the longest filter. The default length holds every AWS IoT
  /// reserved filter at AWS's name limits (a named shadow's `…/shadow/name/<64>/update/+` for a
  /// 128-byte thing name is 226 bytes), so that the Shadow and Jobs clients work out of the box.
  std::size_t max_subscriptions = 16;
  std::size_t max_filter_length = 256;
  /// The connection's buffers: the receive buffer bounds the largest inbound packet; the send
  /// buffer holds the queued packets except PUBLISH payloads, which are written from the slots.
  std::size_t receive_buffer_size = 16 * 1024;
  std::size_t send_buffer_size = 4 * 1024;
  /// Session records: outgoing QoS 1/2 in flight, inbound QoS 2 awaiting PUBREL.
  std::size_t inflight_records = 64;
  std::size_t incoming_qos2 = 64;
  /// Commands taken per batch.
  std::size_t max_batch = 64;
  /// Acknowledgement coalescing: while many QoS 1/2 publishes await their ack, the agent thread
  /// sleeps until a quarter of them, at most this many, have arrived instead of waking for
  /// each one (`SO_RCVLOWAT`, only over bytes that are sure to come: see
  /// `AgentCore::read_low_water`). A broker acknowledges each PUBLISH with its own segment, so
  /// without it the thread wakes once or twice per message at high rates, and each wake-up
  /// also costs the broker (it wakes the thread and is often preempted by it). Completions are
  /// delayed by at most the time the broker takes to acknowledge the batch; there is no timer.
  /// Other input (messages, SUBACKs) waits with them; a broker that stops acknowledging but
  /// keeps the connection open delays it by up to the thread's longest sleep (1 s). Over TLS
  /// the count is met sooner (records are larger than the acks they carry). 0 or 1: wake for
  /// every arrival.
  std::size_t ack_coalescing = 16;
  backoff::Policy reconnect_backoff{Duration{200}, Duration{10'000}};
  /// Seed of the jitter (make it differ per device).
  std::uint64_t jitter_seed = 0x5eed;
  Duration connect_timeout{5000};
  /// SUBSCRIBE / UNSUBSCRIBE acknowledgement timeout; a write that cannot finish (a stalled
  /// link) within `send_timeout` ends the connection.
  Duration operation_timeout{10'000};
  Duration send_timeout{5000};
  /// The very first connection (since start or reconnect()): after this many failed transport
  /// connects the failure is permanent (wrong host or port is a configuration error). Once
  /// connected, a lost broker is retried without limit.
  std::uint32_t initial_connect_attempts = 3;
  /// Retry even permanent failures (with backoff), e.g. for a broker whose ACL may be fixed.
  bool retry_permanent_failures = false;
  /// QoS 2 publishes accepted by a broker (PUBREC) that then lost the session. See the enum.
  UncertainQoS2Policy uncertain_qos2 = UncertainQoS2Policy::ReportUncertain;
  /// The longest correlation token of `expect_response` (each expectation takes a command slot).
  std::size_t max_correlation_length = 64;
};

/// Lets `publish` wait instead of failing at once when there is no room, and optionally until
/// the agent is connected — instead of a sleep-and-retry loop around `publish` in the caller.
struct PublishWait {
  /// How long `publish` may block its caller: for a free command slot (else QueueFull), for
  /// room in the offline queue (else OfflineQueueFull), and with `until_connected` for the
  /// connection. Zero (the default): never wait. When the time is up: `Errc::Timeout`, nothing
  /// queued.
  Duration timeout{0};
  /// Queue only once the agent is connected (state Connected), waiting up to `timeout`; a
  /// message that would otherwise wait in the offline queue waits in the caller instead.
  bool until_connected = false;
};

/// Persistence of the session (unacknowledged QoS 1/2, inbound QoS 2 ids) and of the outbox
/// (QoS 1/2 publishes queued but not yet handed to the session), so a restarted device process
/// delivers all of them. Two stores (e.g. two `FileSessionStore`s in different directories),
/// opened, outliving the agent. What `start` does with records it cannot restore, and with
/// more than the configuration holds: `StatusReason::StoredRecordUnusable`, `RestoreRefused`.
struct Persistence {
  mqtt::SessionStore* session = nullptr;
  mqtt::SessionStore* outbox = nullptr;
};

/// Counters, for tests and benchmarks.
struct Stats {
  std::uint64_t writes = 0;          ///< transport writes (system calls) made
  std::uint64_t reads = 0;           ///< transport reads
  std::uint64_t published = 0;       ///< publishes handed to the connection
  std::uint64_t batches = 0;         ///< batches of commands taken
  std::uint64_t connects = 0;        ///< successful connects
  std::uint64_t requeued = 0;        ///< publishes requeued after the broker lost the session
  /// QoS 2 publishes not resent because their delivery is uncertain (`UncertainQoS2Policy`).
  std::uint64_t uncertain = 0;
};

/// See the file comment.
class Agent {
 public:
  /// Allocates every buffer. `connect` is used for every connection attempt: its views (client
  /// id, credentials, will, properties) must outlive the agent. Later attempts set clean_start =
  /// false so the session resumes. `factory`, `clock` and the stores must outlive the agent.
  Agent(const Config& config, const mqtt::ConnectOptions& connect, TransportFactory& factory,
        const Clock& clock, Persistence persistence = {}) noexcept;
  /// Stops the agent thread (see `stop`).
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  /// Sets the status handler; call before `start`.
  void set_status_handler(StatusHandler handler) noexcept;

  /// Restores persisted state (outbox and session) and starts the agent thread, which connects.
  /// Records that cannot be restored are reported (StoredRecordUnusable, on the calling thread)
  /// and kept aside in their store. Returns false when the thread or the wake-up could not be
  /// created, when it was started already, or when the persisted state was refused
  /// (RestoreRefused reported on the calling thread; see there: nothing is lost, start an agent
  /// with room for it).
  [[nodiscard]] bool start() noexcept;

  /// Queues a publish (any QoS). Copies the message (topic, payload, properties) into a slot;
  /// the caller's memory is free again on return. QoS 1/2 publishes are written to the outbox
  /// first when persistence is configured. `done` (may be empty) is called once, on the agent
  /// thread, with the broker's reason code: for QoS 0 when the message was handed to the
  /// transport, for QoS 1/2 on PUBACK / PUBCOMP (or a failing PUBREC), or with
  /// DeliveryUncertain (QoS 2 accepted by a broker that then lost the session; see
  /// `UncertainQoS2Policy`).
  /// Errors: NotStarted; Stopped; PermanentFailure; QueueFull; OfflineQueueFull;
  /// MessageTooLarge; Rejected (the codec refused the message: `mqtt` says why, e.g.
  /// WildcardInTopicName, InvalidArgument for properties in 3.1.1); PersistenceFailed.
  [[nodiscard]] Result<void> publish(const mqtt::Publish& message,
                                     CompletionHandler done = {}) noexcept;
  /// `publish`, but waiting as `wait` says for room (a free slot, room in the offline queue) and
  /// optionally for the connection, up to `wait.timeout`, before it queues the message.
  /// Errors: those of `publish`; Timeout (no room, or not connected, in time: nothing queued);
  /// WouldDeadlock (a non-zero wait on the agent thread, which is the one that makes room).
  [[nodiscard]] Result<void> publish(const mqtt::Publish& message, CompletionHandler done,
                                     PublishWait wait) noexcept;
  /// `publish`, then waits up to `timeout` for the outcome.
  /// Errors: those of `publish`; WouldDeadlock (on the agent thread); Timeout.
  [[nodiscard]] Result<Outcome> publish_and_wait(const mqtt::Publish& message,
                                                 Duration timeout) noexcept;

  /// Queues a subscription: `handler` receives every message that matches `filter` (and only
  /// those: MQTT 5 subscription identifiers route exactly; otherwise the filter is matched,
  /// `$share/{group}/` ignored). Subscribing a filter again replaces its options and handler.
  /// Subscriptions are made again automatically when the broker lost the session.
  /// The agent thread does not wait for the SUBACK: commands queued behind this one (e.g. other
  /// threads' publishes) are carried out meanwhile; a later subscribe or unsubscribe of the same
  /// filter waits for it. `handler` is installed before the SUBSCRIBE is sent (retained messages
  /// may arrive right behind the SUBACK) and removed again if the broker refuses it. If the
  /// connection drops before the SUBACK, the command is queued again, ahead of the commands
  /// queued after it, and sent on the next connection. While every session record is taken
  /// (QoS 1/2 publishes in flight), the SUBSCRIBE waits, like a publish, for an acknowledgement
  /// to free one.
  /// Errors: NotStarted; Stopped; PermanentFailure; QueueFull; InvalidArgument (filter longer
  /// than max_filter_length); Rejected (invalid filter). Outcome errors: RouterFull; a SUBACK
  /// failure code in `reason_code`; Rejected with `mqtt` Timeout (no SUBACK within
  /// `Config::operation_timeout`), ProtocolError (a SUBACK with more than one code) or the
  /// connection's error (e.g. PacketTooLarge).
  [[nodiscard]] Result<void> subscribe(std::string_view filter, mqtt::SubscribeOptions options,
                                       MessageHandler handler,
                                       CompletionHandler done = {}) noexcept;
  [[nodiscard]] Result<Outcome> subscribe_and_wait(std::string_view filter,
                                                   mqtt::SubscribeOptions options,
                                                   MessageHandler handler,
                                                   Duration timeout) noexcept;

  /// Queues an unsubscription of `filter` (exactly as subscribed). Its handler gets no more
  /// messages once the UNSUBACK arrived; like `subscribe`, the agent thread does not wait for
  /// it. Errors: as `subscribe`; outcome NotSubscribed.
  [[nodiscard]] Result<void> unsubscribe(std::string_view filter,
                                         CompletionHandler done = {}) noexcept;
  [[nodiscard]] Result<Outcome> unsubscribe_and_wait(std::string_view filter,
                                                     Duration timeout) noexcept;

  /// Queues a DISCONNECT behind every command queued before it (and the SUBACK / UNSUBACK of
  /// those in flight, up to `Config::operation_timeout`), then closes the connection and
  /// stops reconnecting (state Closed). Unacknowledged QoS 1/2 stay in the session for a later
  /// `reconnect` (or restart with persistence).
  [[nodiscard]] Result<void> disconnect(CompletionHandler done = {}) noexcept;
  [[nodiscard]] Result<Outcome> disconnect_and_wait(Duration timeout) noexcept;

  /// After a permanent failure or `disconnect`: connect again (backoff reset).
  void reconnect() noexcept;

  /// Request/response correlation for clients built on the agent (Shadow, Jobs, provisioning):
  /// expects a response carrying `correlation` (e.g. the request's clientToken; copied, at most
  /// `Config::max_correlation_length` bytes) within `timeout`. Call it before publishing the
  /// request; the response topic's message handler hands the response in with
  /// `deliver_response`. `handler` is called once on the agent thread: with the response, or
  /// with Timeout (or Stopped) and none. Takes a command slot until then.
  /// Errors: NotStarted; Stopped; QueueFull; InvalidArgument (empty or too long).
  [[nodiscard]] Result<void> expect_response(std::string_view correlation, Duration timeout,
                                             ResponseHandler handler) noexcept;
  /// Agent thread (a message handler): completes the expectation of `correlation` with
  /// `response`. False when none is registered (unknown, answered, or timed out).
  bool deliver_response(std::string_view correlation, const mqtt::Publish& response) noexcept;

  /// Ends the agent thread without DISCONNECT (the session stays resumable), completing every
  /// command not carried out with Stopped. Idempotent; not from the agent thread.
  void stop() noexcept;

  /// The current state (may change right after).
  [[nodiscard]] ConnectionState state() const noexcept;
  /// Counters (read from any thread; approximate while running).
  [[nodiscard]] Stats stats() const noexcept;

  struct Impl;  // the core and its thread (sources)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgekit::agent

template <>
struct std::is_error_code_enum<edgekit::agent::Errc> : std::true_type {};
