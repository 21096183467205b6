#pragma once
/// \file
/// The blocking MQTT client (3.1.1 and 5 in one build), in the coreMQTT model: the application
/// calls `process_loop(timeout)` from its task; the client waits on the transport, feeds the
/// pure connection engine (`Connection`, connection.hpp, over the pure `Session`), writes what
/// it queues (acks, pings, resends) and calls the application back through an `EventHandler`.
/// The client is a thin wait loop: every protocol rule is the engine's.
///
/// Memory: the client never allocates. Every buffer is the caller's:
/// - the *receive buffer* holds incoming bytes; it bounds the largest packet the client accepts
///   (its size is advertised to an MQTT 5 server as Maximum Packet Size);
/// - the *send buffer* holds every outgoing packet except PUBLISH payloads, which are sent
///   straight from the caller's memory with one writev per PUBLISH (no copy);
/// - the `Session` (see session.hpp) keeps packet ids and QoS 1/2 records in storage the caller
///   gave it, and stays valid across connections so that a reconnect can resume.
///
/// Thread safety: a Client, its Session, its transport and its buffers are used by one thread at
/// a time (the device task that owns them). For many threads use the agent, which owns a Client.
///
/// Errors: local failures are `Errc`; what the broker said is a `ReasonCode` (reported in the
/// results and events). A *fatal* error (transport closed or failed, malformed or unexpected
/// input, keep-alive timeout, server DISCONNECT, a send that could not complete in time) closes
/// the transport and poisons the connection: every later call except `connect` returns
/// `Errc::NotConnected`, and `fatal_error()` tells what happened, until the next `connect`.
///
/// Example:
/// \code
///   edgekit::mqtt::Client client(tcp, clock, session, rx, tx, EventHandler::bind(app));
///   ConnectOptions opts;
///   opts.version = Version::V5;                 // required when both versions are built in
///   opts.client_id = "device-1";
///   if (auto r = client.connect(opts, 5s); !r) { /* r.error(), client.server_reason() */ }
///   Publish msg{.topic = "t", .payload = as_bytes("hi"), .qos = QoS::AtLeastOnce};
///   auto id = client.publish(msg, 5s);          // PUBACK reported later through the handler
///   while (running) (void)client.process_loop(1s);
/// \endcode

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/connection.hpp"
#include "edgekit/mqtt/packets.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/mqtt/types.hpp"
#include "edgekit/transport/transport.hpp"

namespace edgekit::mqtt {

class Client;

/// The handler receives the events of connection.hpp (`EventType`) except Connected,
/// ConnectFailed and PingResponse, which the blocking calls (`connect`, `ping`) consume.
///
/// A non-owning, non-allocating reference to the application's event callback: a function
/// pointer and a context pointer. The callee must outlive the client (or be replaced with
/// `Client::set_event_handler`).
///
/// From inside the handler the application may call `publish`, `subscribe_async`,
/// `unsubscribe_async` (none of them waits) and `disconnect`; calls that run the receive loop
/// (`connect`, `process_loop`, `subscribe`, `unsubscribe`, `ping`, `publish_and_wait`) return
/// Errc::CalledFromHandler there. Events
/// caused by a call made from the handler (e.g. MessageLost after `disconnect`) are reported
/// by a nested handler call, never dropped.
class EventHandler {
 public:
  using Function = void (*)(void* context, Client& client, const Event& event);

  /// A handler that ignores every event.
  constexpr EventHandler() noexcept = default;
  constexpr EventHandler(Function function, void* context) noexcept
      : function_(function), context_(context) {}

  /// Refers to `callable` (a lambda or object with `operator()(Client&, const Event&)`), which
  /// must outlive the handler. Temporaries are refused at compile time.
  template <class F>
  [[nodiscard]] static EventHandler bind(F& callable) noexcept {
    return EventHandler([](void* ctx, Client& client,
                           const Event& event) { (*static_cast<F*>(ctx))(client, event); },
                        const_cast<void*>(static_cast<const void*>(&callable)));
  }
  template <class F>
  static EventHandler bind(const F&&) = delete;

  void operator()(Client& client, const Event& event) const {
    if (function_ != nullptr) function_(context_, client, event);
  }
  [[nodiscard]] constexpr explicit operator bool() const noexcept { return function_ != nullptr; }

 private:
  Function function_ = nullptr;
  void* context_ = nullptr;
};

/// A blocking MQTT client over a `transport::Transport`. See the file comment for memory,
/// threading and error rules. Not copyable; movable between calls.
class Client {
 public:
  /// `transport` must already be connected (TCP/TLS connect is the transport's business) when
  /// `connect` is called. `clock` times every timeout and keep-alive. `session` holds the MQTT
  /// session state and outlives connections. `receive_buffer` and `send_buffer` are the
  /// caller's and must outlive the client; each should be at least 128 bytes; the send buffer
  /// must hold the largest CONNECT/SUBSCRIBE/PUBLISH header the application sends (otherwise
  /// that call returns Errc::BufferTooSmall). Persistence (surviving a reboot) is the
  /// session's: give it a `SessionStore` and call `Session::restore` before the first connect.
  /// A failed restore (more stored than the session holds, a store that cannot be read) leaves
  /// a session that refuses to connect (`connect` returns the restore's error) rather than one
  /// whose new publishes would replace the stored messages; records it could not restore are
  /// reported to the restore's `RestoreObserver` and kept aside in the store.
  Client(transport::Transport& transport, const Clock& clock, Session& session,
         MutableBytes receive_buffer, MutableBytes send_buffer, EventHandler handler = {}) noexcept;
  /// A client without a transport yet (a member of a class whose connection is made later):
  /// give it one with `set_transport` before `connect` (which otherwise returns
  /// InvalidArgument). Everything else as the constructor above.
  Client(const Clock& clock, Session& session, MutableBytes receive_buffer,
         MutableBytes send_buffer, EventHandler handler = {}) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  /// Movable (into a container, out of a factory function), but not while one of its calls is
  /// running (from inside its handler). The state, and the references to the transport, clock,
  /// session and buffers, go along; the handler is called with the new object from then on.
  Client(Client&&) noexcept = default;
  Client& operator=(Client&&) noexcept = default;

  /// Replaces the event handler.
  void set_event_handler(EventHandler handler) noexcept { handler_ = handler; }

  /// Points the client at another transport, for the next `connect` (a new connection after
  /// the old one closed; the session, and so what can be resumed, stays). The transport must
  /// outlive its use by the client.
  /// Errors: AlreadyConnected (only while not connected); CalledFromHandler.
  [[nodiscard]] Result<void> set_transport(transport::Transport& transport) noexcept;

  /// Sends CONNECT and waits up to `timeout` for the CONNACK. Packets that arrive right behind
  /// the CONNACK stay in the receive buffer for the next `process_loop`.
  /// On success the client is connected; the returned CONNACK's views (properties such as
  /// Assigned Client Identifier, Reason String) point into the receive buffer and stay valid
  /// until the next call on the client. With session_present = 1 the session's unacknowledged
  /// publishes are resent (DUP set) and PUBRELs re-sent [MQTT-4.4.0-1]; with 0 the session is
  /// cleared and each lost record is reported as an EventType::MessageLost event before
  /// `connect` returns.
  /// Errors: AlreadyConnected; CalledFromHandler; ProtocolVersionNotChosen (`options.version`
  /// unset in a build with both versions); InvalidArgument and the codec's encode errors
  /// for bad options; BufferTooSmall (send buffer); ProtocolVersionDisabled;
  /// ConnectionRefused (CONNACK with an error reason code: see `server_reason()`);
  /// Timeout (no CONNACK in time); TransportClosed / TransportError; IncomingPacketTooLarge;
  /// the codec's decode errors for a malformed CONNACK; ProtocolError (first packet is not a
  /// CONNACK [MQTT-3.2.0-1], or session_present = 1 in reply to clean start, spec 3.2.2.1.1).
  /// Errors found before CONNECT was written (AlreadyConnected, CalledFromHandler, bad options,
  /// BufferTooSmall) leave the transport as it was; every later error closes it.
  [[nodiscard]] Result<ConnAck> connect(const ConnectOptions& options, Duration timeout) noexcept;

  /// Sends `message` (QoS 0, 1 or 2). For QoS 1/2 the session assigns the packet id (the
  /// message's own `packet_id` and `dup` are ignored) and records the message until it is
  /// acknowledged; completion arrives later through `process_loop` as
  /// EventType::PublishCompleted with the broker's reason code. The header is encoded into the
  /// send buffer and goes out with the payload in one writev, the payload not copied; only a
  /// QoS 0 message with nothing queued before it and a payload of at most
  /// `Connection::kDirectCopyMax` bytes is copied behind its header and goes out in one plain
  /// send, without passing through the send queue (builds not optimised for size; an -Os build
  /// keeps the one queued path). Partial writes are retried, waiting for writability, until
  /// `timeout`.
  /// Ownership: for QoS 0 the message's memory is not kept after the call. For QoS 1/2 the
  /// topic, payload and property views must stay valid until PublishCompleted or MessageLost
  /// is reported, because a resend on resume sends them again (records restored from a
  /// `SessionStore` point into the store's memory instead) — unless the session was given
  /// `SessionStorage::message_copies`: then topic and payload are copied and the caller's
  /// buffers are free again when this call returns. MQTT 5: a topic alias is assigned
  /// by the session when the server allows aliases.
  /// Returns the packet id (0 for QoS 0).
  /// Errors: NotConnected; the codec's encode errors (InvalidArgument, WildcardInTopicName,
  /// EmptyTopic, StringTooLong, InvalidUtf8, PropertyNotAllowed, QoS2Disabled, ...);
  /// BufferTooSmall (header does not fit the send buffer); PacketTooLarge (larger than the
  /// server's Maximum Packet Size); NoPacketIdAvailable / SessionStateFull (no free record);
  /// ReceiveMaximumExceeded (MQTT 5 flow control: run process_loop and retry); QoSNotSupported
  /// (above the server's Maximum QoS); RetainNotSupported; InvalidArgument (topic_alias set by
  /// the caller: the session manages aliases); PersistenceFailed (nothing recorded or sent);
  /// Timeout (a QoS 0 publish of which nothing was written is not fatal; anything else is);
  /// TransportClosed, TransportError (fatal; a QoS 1/2 record stays for resend on resume).
  [[nodiscard]] Result<std::uint16_t> publish(const Publish& message, Duration timeout) noexcept;

  /// `publish`, then runs the receive loop (delivering other events meanwhile) until the
  /// message is acknowledged or `timeout` passes. Returns the broker's reason code (Success for
  /// QoS 0 and 3.1.1 acks; an error code from PUBACK/PUBREC/PUBCOMP is a value, not an error).
  /// Errors: those of `publish` and `process_loop`; CalledFromHandler; Timeout (the record stays
  /// in the session, and the completion is reported later through the handler).
  [[nodiscard]] Result<ReasonCode> publish_and_wait(const Publish& message,
                                                    Duration timeout) noexcept;

  /// Sends SUBSCRIBE and runs the receive loop until the SUBACK or `timeout`; publishes that
  /// arrive meanwhile are delivered. Writes one reason code per subscription into
  /// `reason_codes` (granted QoS 0x00..0x02 or an error code; 3.1.1 failure 0x80 maps to
  /// UnspecifiedError). `properties` (MQTT 5: Subscription Identifier, User Properties) must be
  /// empty for 3.1.1.
  /// Errors: NotConnected; CalledFromHandler; InvalidArgument (`reason_codes` smaller than
  /// `subscriptions`, or no subscription); the codec's encode errors (InvalidTopicFilter,
  /// InvalidSubscriptionOptions, ...); BufferTooSmall; NoPacketIdAvailable; Timeout (the late
  /// SUBACK is reported as an EventType::SubscribeCompleted event); ProtocolError (SUBACK with a
  /// different number of codes); the errors of `process_loop`.
  [[nodiscard]] Result<void> subscribe(std::span<const Subscription> subscriptions,
                                       std::span<ReasonCode> reason_codes, Duration timeout,
                                       const Properties& properties = {}) noexcept;

  /// Sends UNSUBSCRIBE and runs the receive loop until the UNSUBACK or `timeout`. Writes one
  /// reason code per filter into `reason_codes` (MQTT 5; all Success for 3.1.1, whose UNSUBACK
  /// carries none). After an error the contents of `reason_codes` are unspecified. Errors: as
  /// `subscribe`.
  [[nodiscard]] Result<void> unsubscribe(std::span<const std::string_view> filters,
                                         std::span<ReasonCode> reason_codes, Duration timeout,
                                         const Properties& properties = {}) noexcept;

  /// Sends SUBSCRIBE and returns at once with its packet id; the outcome arrives later through
  /// the handler as EventType::SubscribeCompleted (from `process_loop` or any call that runs
  /// the receive loop): the SUBACK's reason codes, or an error when the connection ended first.
  /// The session records the request (one outgoing record until the SUBACK); it is not resent
  /// on a new connection. The packet is written at once (after any queued acks); a partial
  /// write is retried, waiting for writability, until `timeout`. `properties` (MQTT 5:
  /// Subscription Identifier, User Properties) must be empty for 3.1.1.
  /// Ownership: `subscriptions` and `properties` are encoded during the call and not kept.
  /// Thread safety: as every call (the owning thread); allowed inside the handler.
  /// Errors: NotConnected; InvalidArgument (no subscription); the codec's encode errors
  /// (InvalidTopicFilter, InvalidSubscriptionOptions, ...); BufferTooSmall (the packet does not
  /// fit the send buffer); PacketTooLarge (above the server's Maximum Packet Size);
  /// NoPacketIdAvailable / SessionStateFull (no free record: wait for a completion and retry);
  /// nothing is recorded or sent after any of these. Timeout / TransportClosed / TransportError:
  /// fatal (the connection is closed and ConnectionClosed reported; the request, recorded
  /// already, is also reported as a SubscribeCompleted event with NotConnected before this
  /// returns: an id the caller has not seen, which it may ignore).
  [[nodiscard]] Result<std::uint16_t> subscribe_async(std::span<const Subscription> subscriptions,
                                                      Duration timeout,
                                                      const Properties& properties = {}) noexcept;

  /// Sends UNSUBSCRIBE and returns at once with its packet id; the outcome arrives as
  /// EventType::UnsubscribeCompleted. Ownership, thread safety and errors: as
  /// `subscribe_async` (InvalidArgument: no filter; InvalidTopicFilter for a bad filter).
  [[nodiscard]] Result<std::uint16_t> unsubscribe_async(std::span<const std::string_view> filters,
                                                        Duration timeout,
                                                        const Properties& properties = {}) noexcept;

  /// Sends PINGREQ and runs the receive loop until the PINGRESP or `timeout` (which is then
  /// fatal, as a keep-alive timeout: Errc::KeepAliveTimeout). Keep-alive pings are sent by
  /// `process_loop` on its own; this call is for checking the link on demand.
  /// Errors: NotConnected; CalledFromHandler; KeepAliveTimeout; the errors of `process_loop`.
  [[nodiscard]] Result<void> ping(Duration timeout) noexcept;

  /// Sends DISCONNECT (MQTT 5: with `reason` and `properties`, e.g. DisconnectWithWillMessage or
  /// a Session Expiry Interval; 3.1.1: both must be default) and closes the transport. The
  /// session is kept for a later resume, unless it ends with the connection (MQTT 5 Session
  /// Expiry Interval 0, 3.1.1 Clean Session): then each unacknowledged publish is reported as
  /// MessageLost before this returns. Allowed inside the handler.
  /// Errors: NotConnected; InvalidArgument / PropertyNotAllowed (bad reason or properties);
  /// ProtocolError (MQTT 5: a non-zero Session Expiry Interval after CONNECT sent 0);
  /// BufferTooSmall;
  /// Timeout / TransportClosed / TransportError (the transport is closed anyway).
  [[nodiscard]] Result<void> disconnect(ReasonCode reason = ReasonCode::Success,
                                        const Properties& properties = {},
                                        Duration timeout = Duration{1000}) noexcept;

  /// Runs the client for at most `timeout` (0: only what is possible without waiting): sends a
  /// PINGREQ when the keep-alive interval is due, waits for data, reads once into the free part
  /// of the receive buffer and handles *every* complete packet that read made available
  /// (delivering publishes, reporting acks, queueing the acks it owes and sending them together
  /// in one write). Returns after the first read that yielded data has been handled, or when
  /// `timeout` passes with nothing to read (that is success, not Timeout). When the handler
  /// calls `disconnect`, the loop stops there and returns success (packets still in the
  /// buffer are left unhandled and unacknowledged; the server resends them on resume).
  /// Errors (all fatal: the connection is closed and ConnectionClosed reported):
  /// NotConnected; CalledFromHandler (not fatal); KeepAliveTimeout (no PINGRESP in time);
  /// TransportClosed / TransportError; IncomingPacketTooLarge (a packet longer than the receive
  /// buffer: MQTT 5 sends DISCONNECT 0x95 Packet Too Large first, 3.1.1 just closes);
  /// a malformed packet (the codec's decode error; MQTT 5 sends DISCONNECT 0x81 first);
  /// ProtocolError / TopicAliasInvalid / ReceiveMaximumExceeded / UnknownPacketId (a packet not
  /// allowed in this state; MQTT 5 sends DISCONNECT 0x82, or 0x94 / 0x93 as the spec names;
  /// 3.1.1 just closes); ServerDisconnected (see the ServerDisconnected event);
  /// PersistenceFailed (the session could not store an inbound QoS 2 id: MQTT 5 sends 0x83, the
  /// server resends after reconnect). Non-fatal persistence warnings of the session are not
  /// reported.
  [[nodiscard]] Result<void> process_loop(Duration timeout) noexcept;

  /// True between a successful `connect` and `disconnect` or a fatal error.
  [[nodiscard]] bool connected() const noexcept { return conn_.connected(); }
  /// The protocol version of the current (or last) connection.
  [[nodiscard]] Version version() const noexcept { return conn_.version(); }
  /// The fatal error that closed the last connection (Errc::Ok if none since `connect`).
  [[nodiscard]] Errc fatal_error() const noexcept { return conn_.error(); }
  /// The reason code of the last CONNACK refusal or server DISCONNECT (Success if none).
  [[nodiscard]] ReasonCode server_reason() const noexcept { return conn_.server_reason(); }
  /// The keep-alive in force (seconds): the requested one, or the server's Server Keep Alive.
  [[nodiscard]] std::uint16_t keep_alive_seconds() const noexcept {
    return conn_.keep_alive_seconds();
  }
  /// The session this client drives.
  [[nodiscard]] Session& session() noexcept { return conn_.session(); }
  /// The connection engine this client drives (state, queued output; for diagnostics).
  [[nodiscard]] const Connection& connection() const noexcept { return conn_; }
  /// Number of `recv` calls made on the transport (for tests and the size/perf report).
  [[nodiscard]] std::size_t recv_calls() const noexcept { return recv_calls_; }

 private:
  struct Waiter;   // what a blocking call waits for (defined in the sources)
  struct Command;  // a command for the connection and its arguments

  Result<void> check_usable(bool blocking) const noexcept;
  // Writes what the connection has queued until it is all out or `deadline` passes (Timeout,
  // with the connection left as it is: the caller decides whether that is fatal). `now` is the
  // caller's last clock reading (the clock is read again only after a wait).
  Result<void> flush(Instant deadline, Instant now) noexcept;
  // flush(), and a Timeout ends the connection.
  Result<void> flush_or_close(Instant deadline) noexcept;
  // After the connection ended: writes what it still has queued (a DISCONNECT) briefly, closes
  // the transport, reports the close and the losses; returns the connection's error.
  Errc finish() noexcept;
  // The transport failed (`status`: Closed, or anything else for an error, e.g. a failed wait):
  // ends the connection with TransportClosed / TransportError, then finish().
  Errc lost(transport::IoStatus status) noexcept;
  // Ends the connection with the local fatal `error`, then finish().
  Errc end(Errc error) noexcept;
  // Polls and reports the closes and losses the connection has to report.
  void report_notices() noexcept;
  void deliver(const Event& event) noexcept;
  // `timeout` from now (one clock read).
  Instant deadline_in(Duration timeout) const noexcept;
  // The one wait loop of every blocking call: until `waiter` is done or `deadline` (Timeout,
  // or what the waiter says a timeout means).
  Result<void> run_until(Waiter& waiter, Instant deadline) noexcept;
  // publish() past its direct QoS 0 write: queues the message (unless `queued`: the rest of a
  // direct write is queued already) and writes the queue out. `mark` is queued_total() from
  // before the message. Out of line, so that the direct write's path keeps a small frame.
  Result<std::uint16_t> publish_queued(const Publish& message, Duration timeout,
                                       std::uint64_t mark, bool queued) noexcept;
  // Queues `command` on the connection (its id into `command.id`), writing out the send queue
  // and retrying while it is full.
  Result<void> queue_command(Command& command, Instant deadline) noexcept;
  // SUBSCRIBE or UNSUBSCRIBE (`command`, filled in by the caller: op, list, properties),
  // blocking (the ack's codes into `reason_codes`) or not (null); the packet id into `id`.
  Result<void> request(Command& command, std::span<ReasonCode>* reason_codes, Duration timeout,
                       std::uint16_t& id) noexcept;
  void emit(const Event& event) noexcept;

  transport::Transport* transport_;
  const Clock* clock_;
  Connection conn_;
  EventHandler handler_;
  std::size_t recv_calls_ = 0;
  Waiter* waiter_ = nullptr;  // the blocking call in progress, if any
  bool transport_open_ = false;
  bool in_handler_ = false;
};

}  // namespace edgekit::mqtt
