#pragma once
/// \file
/// `Connection`: the whole behaviour of one MQTT client connection (3.1.1 and 5) as a sans-I/O
/// state machine over the pure `Session` and the codec, in the manner of ngtcp2 and coreMQTT v2's
/// non-blocking loop: bytes and time go in; bytes to send, events and the next deadline come out.
/// It never allocates, never blocks, never reads a clock and never touches a socket, so the same
/// engine runs under the blocking `Client`, the agent's thread and an event loop carrying
/// thousands of connections, and tests step it in simulated time.
///
/// What it owns (the connection rules, written once): CONNACK first [MQTT-3.2.0-1] and its
/// deadline; fatal errors mapped to DISCONNECT reason codes (MQTT 5) and a poisoned connection;
/// acks queued behind the events that caused them and written together; resends after CONNACK
/// and after each completion frees Receive Maximum quota; keep-alive PINGREQ and the ping
/// timeout; lost operations reported one by one, never dropped.
///
/// The driver's loop:
///   conn.connect(options, now, timeout)        // CONNECT is queued
///   loop:
///     write conn.output(...) to the socket; conn.on_written(n, now)
///     read into conn.read_buffer(); conn.on_read(n, now)   (or conn.on_received(bytes, now))
///     while (auto e = conn.poll_event(now)) handle *e      // messages, completions, closes
///     if now >= conn.next_deadline(): conn.on_timer(now)
///     if conn.state() == Closed and nothing left to write: close the socket
///   socket closed or failed: conn.on_transport_closed(error, now)
///
/// Memory: every buffer is the caller's. The *receive buffer* holds incoming bytes and bounds
/// the largest packet accepted (advertised to an MQTT 5 server as Maximum Packet Size). The
/// *send buffer* holds every outgoing packet except PUBLISH payloads, which are queued as views
/// of the caller's memory and written from there (one writev, no copy); only `direct_publish`
/// copies a small QoS 0 payload behind its header, for one plain write. The send queue holds at
/// most `kSendQueuePackets` (16) packets, or as many as the caller's `SendSlot` array (the second
/// constructor: a driver that batches more writes per writev, like the agent, sizes its own
/// queue; no heap either way). When it or the send buffer is full, commands return
/// `Errc::SendQueueFull` (nothing recorded, nothing queued: write and retry) and incoming packets
/// wait in the receive buffer until there is room for their acks, so a slow socket only slows
/// the connection down, it never fails it. The engine object itself is about 2 KB on a 64-bit
/// host (the send-queue slots, the last decoded packet its events point into, and one scratch
/// record for resends and losses), less on a 32-bit MCU; the buffers are the caller's.
///
/// Payload views: a QoS 0 payload must stay valid until it has been written (`output_empty()`
/// or the bytes counted by `on_written`); a QoS 1/2 message's topic, payload and property views
/// until PublishCompleted or MessageLost (a resume resends them), as in `Session`.
///
/// Events come out of `poll_event`, one at a time; the views inside an event (messages, ack
/// properties, CONNACK) point into the receive buffer or the session and stay valid until the
/// next call on the connection. Persistence is the `Session`'s `SessionStore`; a store whose
/// writes must not block the engine defers them (the store interface returns at once).
///
/// Thread safety: none; one thread drives a connection at a time.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/packets.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/mqtt/types.hpp"

namespace edgekit::mqtt {

/// What an `Event` reports.
enum class EventType : std::uint8_t {
  /// An incoming PUBLISH for the application: `message` is set. QoS 2 messages are delivered
  /// once, on PUBLISH, and a duplicate (DUP resend of an id still awaiting PUBREL) is not
  /// delivered again (spec 4.3.3). Its PUBACK/PUBREC is queued when the event is polled and
  /// leaves with the next write, after the application has seen the message.
  MessageReceived,
  /// An outgoing QoS 1 or 2 PUBLISH finished: PUBACK (QoS 1), PUBCOMP (QoS 2), or a PUBREC with an
  /// error reason code, which ends the QoS 2 flow (MQTT 5 spec 4.3.3). `packet_id` is the id
  /// `publish` returned; `reason_code` is the broker's (Success in 3.1.1); `properties` are the
  /// ack's.
  PublishCompleted,
  /// An unacknowledged outgoing QoS 1/2 publish will never be completed: CONNACK said
  /// session_present = 0 (the server has forgotten the session), or `disconnect` ended a
  /// session that does not outlive the connection (MQTT 5 Session Expiry Interval 0, 3.1.1
  /// Clean Session). One event per record; `packet_id` and `message` (the publish as given to
  /// `publish`, whose memory is the caller's again after this event) are set, and
  /// `pubrec_received` says whether a QoS 2 message had been accepted by the server (its
  /// delivery is then uncertain, not merely failed).
  MessageLost,
  /// The server sent DISCONNECT (MQTT 5): `reason_code` and `properties` (Reason String, Server
  /// Reference, User Properties) are the server's. The connection is closed; `error` is
  /// Errc::ServerDisconnected.
  ServerDisconnected,
  /// An established connection was closed because of a fatal error (`error` says which).
  /// Reported once per connection. Not reported for `disconnect`, nor for a failed connect
  /// (ConnectFailed says it), nor after ServerDisconnected (which says it already).
  ConnectionClosed,
  /// A SUBSCRIBE finished. `packet_id` is the id `subscribe` returned.
  /// - `error == Errc::Ok`: the SUBACK arrived. `reason_codes` are its codes as the server sent
  ///   them (granted QoS 0x00..0x02 or an error code per filter, in order; 3.1.1 failure 0x80
  ///   reads UnspecifiedError). `reason_code` is the first failing code, else Success.
  ///   `properties` are the SUBACK's (Reason String, User Properties; empty in 3.1.1).
  /// - `error == Errc::NotConnected`: the connection ended before the SUBACK; `reason_codes` is
  ///   empty and `properties` null. The server may or may not have applied it; it is never
  ///   resent.
  SubscribeCompleted,
  /// An UNSUBSCRIBE finished: as SubscribeCompleted. With the UNSUBACK, `reason_codes` holds one
  /// code per filter (MQTT 5) or is empty (3.1.1: its UNSUBACK carries none; every filter
  /// succeeded).
  UnsubscribeCompleted,
  /// The CONNACK accepted the connection: `connack` points at it (views into the receive
  /// buffer), `session_present` is its flag. Lost operations (session_present = 0) follow as
  /// MessageLost / Subscribe- / UnsubscribeCompleted events before any incoming packet.
  Connected,
  /// A connection attempt ended without a connection: `error` is ConnectionRefused (the
  /// CONNACK's failure code is in `reason_code` and `connack`), Timeout (no CONNACK in time),
  /// ProtocolError (first packet not a CONNACK), a decode error, TransportClosed or
  /// TransportError.
  ConnectFailed,
  /// A PINGRESP arrived (after `ping` or a keep-alive PINGREQ).
  PingResponse,
};

/// One event. Pointers and the views inside them point into the receive buffer or the session
/// and are valid only until the next call on the connection (for `Client`: during the handler
/// call). Copy what you need to keep.
struct Event {
  EventType type = EventType::MessageReceived;
  std::uint16_t packet_id = 0;
  ReasonCode reason_code = ReasonCode::Success;
  Errc error = Errc::Ok;
  /// MessageLost of a QoS 2 publish: the server had sent PUBREC (we sent PUBREL) before it lost
  /// the session, so it may already have delivered the message: sending it again may deliver
  /// it twice (see `LostOperation::pubrec_received`). False otherwise.
  bool pubrec_received = false;
  /// Connected: the CONNACK's Session Present flag.
  bool session_present = false;
  const Publish* message = nullptr;  ///< MessageReceived and MessageLost
  /// PublishCompleted, ServerDisconnected (MQTT 5), Subscribe/UnsubscribeCompleted with an ack.
  const Properties* properties = nullptr;
  /// SubscribeCompleted / UnsubscribeCompleted: the ack's reason codes (into the receive buffer).
  ReasonCodes reason_codes{};
  /// Connected, and ConnectFailed with a CONNACK refusal: the CONNACK.
  const ConnAck* connack = nullptr;
};

/// The protocol version a `ConnectOptions` starts with. A build with one version compiled in
/// starts with that one. A build with both has no default (this value, which is no version): the
/// application says which it speaks, else `connect` fails with Errc::ProtocolVersionNotChosen
/// before anything is sent. (Earlier releases defaulted to MQTT 5 silently, so that a device
/// written for 3.1.1 connected as MQTT 5 when the option was forgotten.)
inline constexpr Version kDefaultConnectVersion =
    (EDGEKIT_MQTT_ENABLE_V5 != 0 && EDGEKIT_MQTT_ENABLE_V311 != 0) ? static_cast<Version>(0)
    : EDGEKIT_MQTT_ENABLE_V5 != 0                                  ? Version::V5
                                                                    : Version::V311;

/// What `connect` sends. Views point at the caller's data and need to stay valid only during
/// the `connect` call.
struct ConnectOptions {
  /// Version::V311 or Version::V5: required in a build with both (see kDefaultConnectVersion).
  Version version = kDefaultConnectVersion;
  /// May be empty: the session's own id is used when it has one (assigned by the server on an
  /// earlier connect, or restored), else the server assigns one (MQTT 5: Assigned Client
  /// Identifier in the CONNACK properties; 3.1.1: needs clean_start) [MQTT-3.1.3-6].
  std::string_view client_id;
  /// Clean Start (MQTT 5) / Clean Session (3.1.1). With false, the server resumes the session
  /// if it has one and the client resends the session's unacknowledged publishes.
  bool clean_start = true;
  /// Seconds; 0 disables keep-alive. An MQTT 5 Server Keep Alive in the CONNACK replaces it.
  std::uint16_t keep_alive_seconds = 60;
  std::optional<std::string_view> username;
  std::optional<Bytes> password;
  std::optional<Will> will;
  /// MQTT 5 CONNECT properties (Session Expiry Interval, Receive Maximum, Topic Alias Maximum,
  /// User Properties, ...). Must be empty for 3.1.1. Maximum Packet Size is set to the receive
  /// buffer's size when unset or larger, so that a conforming server never sends a packet that
  /// does not fit [MQTT-3.1.2-24].
  Properties properties;
};

/// Where a connection is in its life.
enum class ConnectionState : std::uint8_t {
  Idle,        ///< never connected, or closed and reset by the next `connect`
  Connecting,  ///< CONNECT queued or sent, waiting for the CONNACK
  Connected,   ///< CONNACK accepted
  Closed,      ///< ended (`disconnect`, a fatal error, the server); `error()` says why
};

/// `now + timeout`, saturating instead of overflowing (a caller may pass Duration::max()); `now`
/// for a timeout of zero or less: `edgekit::deadline_after` (clock.hpp), named here too for the
/// code written against this header.
using edgekit::deadline_after;

/// The sans-I/O MQTT connection engine. See the file comment.
class Connection {
 public:
  /// The default size of the send queue: most packets waiting at once (a PUBLISH with its
  /// payload is one; the acks of one batch share one).
  static constexpr std::size_t kSendQueuePackets = 16;

  /// One packet of the send queue. Opaque: a caller that sizes the queue itself only provides
  /// an array of them (`std::array<Connection::SendSlot, 64> slots;`).
  class SendSlot {
    friend class Connection;
    // No initialisers: a slot is written before it is read, and a queue of them costs no
    // start-up code.
    std::uint32_t end_;  // send-buffer offset where this packet's own bytes end
    std::uint32_t payload_size_;
    const std::byte* payload_;  // written after the send-buffer bytes
  };

  /// `session` holds the MQTT session state and outlives connections (a later `connect`
  /// resumes it). `receive_buffer` and `send_buffer` are the caller's and must outlive the
  /// connection; each should be at least 128 bytes; the send buffer must hold the largest
  /// CONNECT / SUBSCRIBE / PUBLISH header the application sends (else BufferTooSmall).
  /// The send queue is `kSendQueuePackets` slots inside the object.
  Connection(Session& session, MutableBytes receive_buffer, MutableBytes send_buffer) noexcept;
  /// As above, with the send queue in the caller's `send_queue` (at least one slot, at most
  /// 65,535; empty: the `kSendQueuePackets` slots inside the object), which must outlive the
  /// connection and is used by it alone. More slots let more packets wait for one writev (a
  /// batching driver); the send buffer bounds the bytes either way.
  Connection(Session& session, MutableBytes receive_buffer, MutableBytes send_buffer,
             std::span<SendSlot> send_queue) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  /// Movable (into a container, out of a factory): the state and the views of the caller's
  /// buffers and session go along; the buffers themselves do not move.
  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;
  ~Connection() = default;

  // --- Commands -------------------------------------------------------------------------------

  /// Starts a connection attempt: resets the buffers and queues CONNECT. The CONNACK must arrive
  /// within `connack_timeout` (else ConnectFailed with Timeout at `on_timer`). The outcome is a
  /// Connected or ConnectFailed event. With session_present = 1 the session's unacknowledged
  /// publishes are queued for resend (DUP set) and PUBRELs again [MQTT-4.4.0-1], as many PUBLISH
  /// as the server's Receive Maximum lets through, the rest as acknowledgements arrive.
  /// Errors (nothing queued, state unchanged): AlreadyConnected (Connecting or Connected);
  /// ProtocolVersionNotChosen (`options.version` left unset in a build with both versions);
  /// InvalidArgument and the codec's encode errors for bad options; BufferTooSmall (CONNECT does
  /// not fit the send buffer); ProtocolVersionDisabled.
  [[nodiscard]] Result<void> connect(const ConnectOptions& options, Instant now,
                                     Duration connack_timeout) noexcept;

  /// Queues `message` (QoS 0, 1 or 2). For QoS 1/2 the session assigns the packet id (the
  /// message's own `packet_id` and `dup` are ignored) and records the message until it is
  /// acknowledged (PublishCompleted). Returns the packet id (0 for QoS 0). Views: see the file
  /// comment. Errors (nothing recorded or queued): NotConnected; SendQueueFull (write, then
  /// retry); BufferTooSmall (the header can never fit the send buffer); the errors of
  /// `Session::begin_publish` (ReceiveMaximumExceeded, SessionStateFull, QoSNotSupported,
  /// PacketTooLarge, PersistenceFailed, the codec's encode errors, ...).
  [[nodiscard]] Result<std::uint16_t> publish(const Publish& message, Instant now) noexcept;

  /// A QoS 0 publish prepared by `direct_publish`: `head` is in the send buffer (the header,
  /// and behind it the payload when that was small enough to copy); `payload` is the part
  /// still to be written from the caller's memory after `head` (empty when copied).
  struct DirectPacket {
    Bytes head;
    Bytes payload;
  };
  /// Largest payload `direct_publish` copies behind the header (when the send buffer has room):
  /// a typical telemetry message. Measured on Linux loopback (docs/benchmarks.md), one copied
  /// buffer and a plain send beat a two-part gather up to a few KB; the limit stays low so that
  /// a large payload still leaves from the caller's memory, as every queued payload does.
  static constexpr std::size_t kDirectCopyMax = 256;

  /// A QoS 0 publish written straight to the socket, past the send queue: for a driver whose
  /// queue is usually empty when it publishes (a device publisher), so that the message costs
  /// one encode and one write, with no queue slot to fill, walk and clear. Encodes `message`
  /// as `publish` would, into the send buffer without queuing it; a payload of at most
  /// `kDirectCopyMax` bytes is copied behind the header, so that the packet is one buffer.
  /// The driver writes `head` then `payload` (one gather write, or one plain write when
  /// `payload` is empty) and reports at once with `on_direct_written`. The views stay valid
  /// until the next call on the connection. Returns an empty `head` when this path does not
  /// apply — something is queued (the message must not overtake it), QoS 1/2, DUP, MQTT 5
  /// topic aliases in use, or the header does not fit the free send buffer: then call
  /// `publish`. Errors (nothing queued or counted): those of `publish` for a QoS 0 message.
  [[nodiscard]] Result<DirectPacket> direct_publish(const Publish& message) noexcept;
  /// `n` bytes of `packet` (as `direct_publish` just returned it: `head`, then `payload`) were
  /// written, 0 when none (WouldBlock). Counts them as `publish` and `on_written` would
  /// (`queued_total()`, `written_total()`, the keep-alive restart); whatever the write left is
  /// queued, to be written from `output()` like any other packet. Must follow `direct_publish`
  /// with no other call on the connection in between.
  void on_direct_written(const DirectPacket& packet, std::size_t n, Instant now) noexcept {
#if !defined(__OPTIMIZE_SIZE__)
    // A packet written whole with nothing waiting for room (the usual case, inline: it runs
    // for every message): what publish + on_written would do, without filling and clearing a
    // slot. Any control packet restarts the keep-alive interval (spec 3.1.2.10).
    const std::size_t total = packet.head.size() + packet.payload.size();
    if (n >= total && !ping_due_ && !resends_due_) {
      queued_total_ += total;
      written_total_ += total;
      session_->on_sent(now);
      return;
    }
#endif
    queue_direct_rest(packet, n, now);
  }

  /// Queues SUBSCRIBE and returns its packet id; the outcome is a SubscribeCompleted event.
  /// `subscriptions` and `properties` are encoded during the call and not kept. Errors (nothing
  /// recorded or queued): NotConnected; InvalidArgument (no subscription); SendQueueFull;
  /// BufferTooSmall; PacketTooLarge; NoPacketIdAvailable / SessionStateFull; the codec's encode
  /// errors (InvalidTopicFilter, InvalidSubscriptionOptions, PropertyNotAllowed, ...).
  [[nodiscard]] Result<std::uint16_t> subscribe(std::span<const Subscription> subscriptions,
                                                Instant now,
                                                const Properties& properties = {}) noexcept {
    return request(subscriptions, {}, now, properties);
  }

  /// Queues UNSUBSCRIBE and returns its packet id; the outcome is an UnsubscribeCompleted event.
  /// Errors: as `subscribe`.
  [[nodiscard]] Result<std::uint16_t> unsubscribe(std::span<const std::string_view> filters,
                                                  Instant now,
                                                  const Properties& properties = {}) noexcept {
    return request({}, filters, now, properties);
  }

  /// `subscribe` when `subscriptions` is not empty, else `unsubscribe` of `filters` (one path
  /// for both requests; a driver that forwards either calls this). Errors: as `subscribe`
  /// (InvalidArgument when both are empty).
  [[nodiscard]] Result<std::uint16_t> request(std::span<const Subscription> subscriptions,
                                              std::span<const std::string_view> filters,
                                              Instant now,
                                              const Properties& properties = {}) noexcept;

  /// Queues PINGREQ; a PingResponse event follows when the PINGRESP arrives. How long to wait
  /// for it is the caller's choice (keep-alive PINGREQs, sent by `on_timer`, are timed by the
  /// session). Errors: NotConnected; SendQueueFull.
  [[nodiscard]] Result<void> ping(Instant now) noexcept;

  /// Queues DISCONNECT (MQTT 5: with `reason` and `properties`; 3.1.1: both must be default)
  /// and ends the connection: the state is Closed at once (the driver writes what is queued,
  /// then closes the socket). The session is kept for a resume unless it ends with the
  /// connection, in which case each unacknowledged publish is reported as MessageLost; pending
  /// SUBSCRIBE / UNSUBSCRIBE are reported with NotConnected.
  /// Errors: NotConnected; InvalidArgument / PropertyNotAllowed; ProtocolError (MQTT 5: a
  /// non-zero Session Expiry Interval after CONNECT sent 0); BufferTooSmall; SendQueueFull.
  [[nodiscard]] Result<void> disconnect(ReasonCode reason, const Properties& properties,
                                        Instant now) noexcept;

  /// Ends the connection because of a local fatal `error` (e.g. a driver's write deadline, or a
  /// reply the application found wrong): MQTT 5 queues DISCONNECT with `reason` when given,
  /// then the state is Closed and ConnectionClosed / ConnectFailed and the losses are reported.
  /// Nothing happens when the connection is not Connecting / Connected.
  void close(Errc error, std::optional<ReasonCode> reason, Instant now) noexcept;

  /// The socket was closed by the peer or failed (`error`: TransportClosed, TransportError):
  /// as `close` without DISCONNECT, and the unwritten output is dropped.
  void on_transport_closed(Errc error, Instant now) noexcept;

  // --- Input ----------------------------------------------------------------------------------

  /// The free part of the receive buffer, for the driver to read into (zero copy); then call
  /// `on_read` with the number of bytes read. Empty while the buffer holds a complete packet
  /// not yet polled.
  [[nodiscard]] MutableBytes read_buffer() noexcept;
  /// `n` bytes were read into `read_buffer()`. More than it offered is a driver bug: the
  /// connection ends (ConnectionClosed / ConnectFailed with InvalidArgument), no byte is dropped
  /// quietly.
  void on_read(std::size_t n, Instant now) noexcept;
  /// Copies as much of `data` as fits into the receive buffer; returns how many bytes it took
  /// (the driver keeps the rest and offers it again after polling events).
  std::size_t on_received(Bytes data, Instant now) noexcept;

  // --- Events ---------------------------------------------------------------------------------

  /// The next event, or nullopt when there is none now. Handles at most one incoming packet per
  /// call; reports pending closes and losses before any packet. Returns nullopt while the send
  /// queue has no room for the ack an incoming packet may need (write, then poll again).
  [[nodiscard]] std::optional<Event> poll_event(Instant now) noexcept;
  /// True when `poll_event` has a close or loss to report (which needs no incoming packet).
  [[nodiscard]] bool notices_pending() const noexcept;
  /// The next close or loss to report (what `notices_pending()` announces), or nullopt; never
  /// handles an incoming packet, so the views of the last event (a CONNACK) stay valid.
  [[nodiscard]] std::optional<Event> poll_notice() noexcept;
  /// True when the receive buffer holds a complete (or invalid) packet not yet polled.
  [[nodiscard]] bool packet_pending() const noexcept;

  // --- Output ---------------------------------------------------------------------------------

  /// Fills `out` with the views of the bytes to write next, in order (send-buffer regions and
  /// payloads); returns how many it filled. Empty when nothing is queued. The views stay valid
  /// until the next call that changes the queue.
  std::size_t output(std::span<Bytes> out) const noexcept;
  /// True when nothing is waiting to be written.
  [[nodiscard]] bool output_empty() const noexcept { return queued_ == 0; }
  /// Bytes waiting to be written.
  [[nodiscard]] std::size_t output_size() const noexcept;
  /// `n` bytes of `output()` were written. Restarts the keep-alive interval.
  void on_written(std::size_t n, Instant now) noexcept;
  /// Total bytes queued / written on this object (a driver compares them to tell whether a
  /// packet it queued has left: `written_total() >= mark` after `mark = queued_total()` taken
  /// right after queuing it). Output dropped unwritten (a dead socket, a fatal error, a new
  /// connect) is taken off `queued_total()`, so `queued_total() == written_total() +
  /// output_size()` always holds; a mark taken before such a drop is never reached (the packet
  /// was not written).
  [[nodiscard]] std::uint64_t queued_total() const noexcept { return queued_total_; }
  [[nodiscard]] std::uint64_t written_total() const noexcept { return written_total_; }
  /// Drops the last packet queued if it was queued at `mark` (the `queued_total()` taken right
  /// before queuing it) and none of its bytes has been written; returns false (and drops
  /// nothing) otherwise. For a driver that gives up on a QoS 0 publish it could not write in
  /// time.
  bool unqueue_last(std::uint64_t mark) noexcept;

  // --- Flow control by the application ----------------------------------------------------------

  /// Keeps back the PUBACK of the QoS 1 message just reported (call it while handling its
  /// MessageReceived event, before the next `poll_event`), so that the application decides when
  /// the server may count the message as delivered: a server honouring the Receive Maximum
  /// this client sent in CONNECT sends no more than that many messages unacknowledged, and keeps
  /// the rest queued on its side. Returns the packet id to pass to `ack` later, or 0 when there
  /// is no ack to hold (QoS 0 or 2, or not during such an event). A held ack whose connection
  /// ends is void: the server sends the message again on a resumed session, not on a new one.
  /// Inline, so that a client that never holds acks carries no code for it.
  [[nodiscard]] std::uint16_t hold_ack() noexcept {
    if (!reply_due_ || reply_.type != PacketType::PubAck) return 0;
    reply_due_ = false;
    return reply_.packet_id;
  }
  /// Queues the PUBACK `hold_ack` kept back. Errors: NotConnected; SendQueueFull (write, then
  /// call again).
  [[nodiscard]] Result<void> ack(std::uint16_t packet_id) noexcept {
    if (state_ != ConnectionState::Connected) return fail(Errc::NotConnected);
    if (!queue_ack(Reply{PacketType::PubAck, packet_id, ReasonCode::Success})) {
      return fail(Errc::SendQueueFull);
    }
    return {};
  }

  // --- Time -----------------------------------------------------------------------------------

  /// When `on_timer` must run next (CONNACK deadline, PINGREQ due, PINGRESP overdue); nullopt
  /// when no timer is armed.
  [[nodiscard]] std::optional<Instant> next_deadline() const noexcept;
  /// Runs what is due at `now`: queues PINGREQ, or ends the connection (KeepAliveTimeout, or
  /// ConnectFailed with Timeout). Does nothing before `next_deadline()`.
  void on_timer(Instant now) noexcept;

  // --- State ----------------------------------------------------------------------------------

  [[nodiscard]] ConnectionState state() const noexcept { return state_; }
  [[nodiscard]] bool connected() const noexcept { return state_ == ConnectionState::Connected; }
  /// Connecting or Connected: a connection attempt or a connection is in progress.
  [[nodiscard]] bool open() const noexcept {
    return state_ == ConnectionState::Connecting || state_ == ConnectionState::Connected;
  }
  /// The error that ended the last connection attempt or connection (Ok after `disconnect`).
  [[nodiscard]] Errc error() const noexcept { return error_; }
  /// The reason code of the last CONNACK refusal or server DISCONNECT (Success if none).
  [[nodiscard]] ReasonCode server_reason() const noexcept { return server_reason_; }
  /// The protocol version of the current (or last) connection.
  [[nodiscard]] Version version() const noexcept { return version_; }
  /// The keep-alive in force (seconds): the requested one, or the server's Server Keep Alive.
  [[nodiscard]] std::uint16_t keep_alive_seconds() const noexcept;
  /// Number of complete packets taken from the receive buffer so far, modulo 2^32: a counter
  /// to compare with an earlier reading (`!=`: a packet was handled since), not a statistic
  /// (32 bits: one add on a 32-bit device).
  [[nodiscard]] std::uint32_t packets_received() const noexcept { return packets_received_; }
  [[nodiscard]] Session& session() noexcept { return *session_; }
  [[nodiscard]] const Session& session() const noexcept { return *session_; }

 private:
  enum class Notice : std::uint8_t { None, Closed, ConnectFailed };

  void clear_output() noexcept;
  void discard_output() noexcept;
  // Room for one more packet of `bytes` in the send queue (compacting the send buffer if that
  // makes it); the common case inline: it runs for every packet.
  [[nodiscard]] bool room_for(std::size_t bytes) noexcept {
    if (slot_count_ < slot_capacity_ && tx_.size() - tx_tail_ >= bytes) return true;
    return make_room(bytes);
  }
  [[nodiscard]] bool make_room(std::size_t bytes) noexcept;
  // Room for a packet of `bytes` send-buffer bytes: BufferTooSmall when it can never fit,
  // SendQueueFull when it will after a write.
  [[nodiscard]] Result<void> reserve(std::size_t bytes) noexcept;
  // Queues `size` fixed bytes (PINGREQ, a reason-only DISCONNECT); room was checked.
  void queue_copy(const std::byte* bytes, std::size_t size) noexcept;
  // A QoS 0 publish the session would not touch (no DUP, no aliases), encoded and checked
  // into the free tail of the send buffer, not queued: its header size, or 0 for the general
  // path (another QoS, aliases, a full queue, a header that does not fit).
  [[nodiscard]] Result<std::size_t> encode_plain_qos0(const Publish& message) noexcept;
  // on_direct_written's general case: queues the packet, then counts `n` bytes written.
  void queue_direct_rest(const DirectPacket& packet, std::size_t n, Instant now) noexcept;
  // Encodes the header of a validated publish into the reserved room and queues it with its
  // payload.
  [[nodiscard]] Result<void> queue_publish(const Publish& p) noexcept;
  bool queue_ack(const Reply& reply) noexcept;
  void queue_bytes(std::size_t size, Bytes payload) noexcept;
  void drop_unwritten() noexcept;
  void pump(Instant now) noexcept;
  // The send-queue slots: the caller's, or the object's own.
  [[nodiscard]] SendSlot* slots() noexcept {
    return slots_ != nullptr ? slots_ : own_slots_.data();
  }
  [[nodiscard]] const SendSlot* slots() const noexcept {
    return slots_ != nullptr ? slots_ : own_slots_.data();
  }
  // Handles the next complete packet; true when `e` holds an event to report. `e` comes in
  // value-initialised (poll_event builds it so) and is written only on the paths that return
  // true, so that a quiet packet leaves it as it was (no zeroing per packet: code size).
  [[nodiscard]] bool handle_frame(Event& e, Instant now) noexcept;
  // The next close or loss into `e`; false when none. `e` as for handle_frame.
  [[nodiscard]] bool next_notice(Event& e) noexcept;

  Session* session_;
  MutableBytes rx_;
  MutableBytes tx_;
  // The caller's send queue, or null for own_slots_ (a pointer that stays right when the
  // object moves).
  SendSlot* slots_ = nullptr;
  std::array<SendSlot, kSendQueuePackets> own_slots_;
  Packet packet_{std::in_place_type<PingResp>};  // the packet the last event points into
  // The loss the last event points at, and the resend being queued: never in use at once
  // (a resend is queued inside a call, and every call ends the views of the last event).
  union {
    char unset_;  // the member the constructor starts with: nothing to zero-fill
    LostOperation lost_;
    Resend resend_;
  };
  std::uint64_t queued_total_ = 0;
  std::uint64_t written_total_ = 0;
  std::uint32_t packets_received_ = 0;
  Instant connack_deadline_{};
  std::uint32_t rx_pos_ = 0;        // first unpolled byte in rx_
  std::uint32_t rx_len_ = 0;        // end of the bytes held in rx_
  std::uint32_t head_begin_ = 0;    // send-buffer offset where packet 0 begins
  std::uint32_t tx_head_ = 0;       // next unwritten send-buffer byte
  std::uint32_t tx_tail_ = 0;       // end of the queued send-buffer bytes
  std::uint32_t payload_sent_ = 0;  // bytes of packet 0's payload written
  std::uint32_t queued_ = 0;        // bytes waiting to be written
  std::uint32_t resends_left_ = 0;  // resends the last CONNACK queued, not yet taken
  Reply reply_{};                   // the ack of the last MessageReceived, queued at next poll
  std::uint16_t slot_count_ = 0;
  std::uint16_t slot_capacity_ = kSendQueuePackets;
  ConnectionState state_ = ConnectionState::Idle;
  Notice notice_ = Notice::None;
  Version version_ = Version::V5;
  Errc error_ = Errc::Ok;
  ReasonCode server_reason_ = ReasonCode::Success;
  std::uint16_t keep_alive_s_ = 0;
  bool reply_due_ = false;
  bool ping_due_ = false;        // a keep-alive PINGREQ fell due while the queue was full
  bool resends_due_ = false;     // the session may have resends due (after CONNACK, completions)
  bool losses_due_ = false;      // the session may have lost operations to report
  bool acks_last_ = false;       // the last slot holds acks only (the next ack joins it)
  bool handled_quietly_ = false;  // the last packet handled needed no event
};

}  // namespace edgekit::mqtt
