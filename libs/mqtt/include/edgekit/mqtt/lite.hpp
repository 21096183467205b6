#pragma once
/// \file
/// `edgekit::mqtt::lite::Client`: the minimal MQTT 3.1.1 client, for devices whose flash budget
/// is a few kilobytes (coreMQTT v2's niche). It is a second, smaller client beside the full one
/// (client.hpp), not a configuration of it; docs/sizes.md compares the two.
///
/// What it keeps of the full client's promises:
/// - QoS 0, 1 and 2 both ways; inbound QoS 2 delivered once (the ids awaiting PUBREL are kept).
/// - Nothing lost silently: an unacknowledged QoS 1/2 publish is resent (DUP) after a reconnect
///   that resumes the session, and reported as `MessageLost` when the session is gone; a
///   SUBSCRIBE or UNSUBSCRIBE whose ack never came is reported with `Errc::NotConnected`.
/// - Clear errors: a malformed or out-of-state packet, a packet larger than the receive buffer,
///   a missing PINGRESP, a broken transport each end the connection with their own `Errc`.
/// - Heap-free, no exceptions, no RTTI; the caller places every buffer (static RAM).
///
/// What it leaves out, and so why it is small: MQTT 5; a send queue (each call writes its packet
/// at once, zero-copy from the caller's memory, and a write that cannot finish by the call's
/// deadline closes the connection, as in coreMQTT); a session store (records live in RAM only,
/// so a reboot loses them); the engine's events object, timers and back-pressure. Devices that
/// need those use the full client.
///
/// Memory (32-bit MCU): the client object is 80 bytes and a `Record` 20; with 8 records, 8
/// inbound QoS 2 ids and a 1 KB receive buffer that is 1,280 bytes of RAM in all.
/// Nothing is copied on the send side: a packet goes out as a list of pieces (fixed header
/// bytes on the stack, then the caller's strings) through `Transport::writev`.
///
/// Buffer ownership: a QoS 1/2 publish's topic and payload stay the caller's and must stay
/// valid and unchanged until its `PublishCompleted` or `MessageLost` event (a resend reads them
/// again). Views inside an event point into the receive buffer and are valid only during the
/// handler call.
///
/// Thread safety: none; one thread owns the client and its transport.
///
/// Example:
/// \code
///   std::array<lite::Record, 8> records;
///   std::array<std::uint16_t, 8> qos2_ids;
///   std::array<std::byte, 1024> rx;
///   lite::Client client(clock, records, qos2_ids, rx, lite::Handler::bind(app));
///   lite::ConnectOptions o;
///   o.client_id = "device-1";
///   if (auto r = client.connect(tcp, o, 5s); !r) { /* r.error(), client.connack_code() */ }
///   (void)client.subscribe(std::array{lite::Filter{"cmd/#", QoS::AtLeastOnce}}, 5s);
///   (void)client.publish("telemetry", payload, QoS::AtLeastOnce, false, 5s);
///   while (running) (void)client.process_loop(1s);
/// \endcode

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "edgekit/core/clock.hpp"
#include "edgekit/core/result.hpp"
#include "edgekit/mqtt/errc.hpp"
#include "edgekit/mqtt/types.hpp"
#include "edgekit/transport/transport.hpp"

namespace edgekit::mqtt::lite {

/// One outstanding operation (a QoS 1/2 publish until its PUBACK/PUBCOMP, a SUBSCRIBE or
/// UNSUBSCRIBE until its ack). The application provides the array; its size is how many
/// operations may be in flight at once. Opaque: the client owns the contents.
class Record {
 private:
  friend class Client;
  std::string_view topic_{};
  Bytes payload_{};
  std::uint16_t packet_id_ = 0;
  std::uint8_t state_ = 0;
  std::uint8_t flags_ = 0;  // publish: QoS | retain << 2; subscribe: its filter count
};

/// A subscription request: a topic filter and the maximum QoS wanted.
struct Filter {
  std::string_view filter;
  QoS qos = QoS::AtMostOnce;
};

/// The Last Will, sent by the broker when the connection ends without DISCONNECT.
struct Will {
  std::string_view topic;
  Bytes payload;
  QoS qos = QoS::AtMostOnce;
  bool retain = false;
};

/// CONNECT's fields (MQTT 3.1.1, spec 3.1). Views must stay valid during `connect`.
struct ConnectOptions {
  std::string_view client_id;                ///< 0..65,535 bytes; empty needs clean_session
  std::uint16_t keep_alive_s = 60;           ///< 0 turns keep-alive off
  bool clean_session = true;
  std::optional<std::string_view> username;  ///< absent: no user name flag
  std::optional<Bytes> password;             ///< needs a user name in 3.1.1 [MQTT-3.1.2-22]
  const Will* will = nullptr;
  /// How long a PINGREQ may wait for its PINGRESP before the connection counts as dead.
  /// Zero: 1.5 × the keep-alive (as the full client's `SessionConfig::ping_timeout`).
  Duration ping_timeout{5000};
  /// How long a packet the client writes on its own (an ack, a PINGREQ, a resend after the
  /// CONNACK) may take to leave; past it the connection is closed with Timeout.
  Duration write_timeout{5000};
};

enum class EventType : std::uint8_t {
  /// A PUBLISH arrived: `topic`, `payload`, `qos`, `retain`, `dup`, `packet_id`. Its PUBACK /
  /// PUBREC is sent after the handler returns. A QoS 2 message whose id still awaits PUBREL
  /// (a DUP resend) is not delivered again.
  MessageReceived,
  /// An outgoing QoS 1/2 publish finished (PUBACK, or PUBCOMP): `packet_id`.
  PublishCompleted,
  /// An outgoing QoS 1/2 publish will never finish: the broker resumed no session (CONNACK
  /// session present 0), or a clean session's connection ended. `packet_id`, `topic`,
  /// `payload`, `qos`, `retain` are the publish as given (the caller's memory again);
  /// `pubrec_received` says the broker had accepted a QoS 2 message (it may have been
  /// delivered, so sending it again may deliver it twice).
  MessageLost,
  /// A SUBSCRIBE finished: `packet_id`; with `error == Ok` the SUBACK's return codes
  /// (`return_codes`, one per filter: granted QoS 0..2, or 0x80 failure); with
  /// `Errc::NotConnected` the connection ended before the SUBACK (never resent).
  SubscribeCompleted,
  /// An UNSUBSCRIBE finished: as SubscribeCompleted, without return codes.
  UnsubscribeCompleted,
};

/// One event. Views point into the receive buffer (MessageReceived, SubscribeCompleted) or at
/// the caller's publish (MessageLost) and are valid during the handler call only.
struct Event {
  EventType type = EventType::MessageReceived;
  Errc error = Errc::Ok;
  QoS qos = QoS::AtMostOnce;
  bool retain = false;
  bool dup = false;
  bool pubrec_received = false;
  std::uint16_t packet_id = 0;
  std::string_view topic;
  Bytes payload;
  Bytes return_codes;
};

class Client;

/// A non-owning reference to the application's event callback (a function and a context
/// pointer); the callee must outlive the client. From inside the handler the application may
/// call `publish`, `subscribe`, `unsubscribe` and `disconnect`; `connect` and `process_loop`
/// return CalledFromHandler there.
class Handler {
 public:
  using Function = void (*)(void* context, Client& client, const Event& event);
  constexpr Handler() noexcept = default;
  constexpr Handler(Function function, void* context) noexcept
      : function_(function), context_(context) {}
  /// Refers to `callable` (an object with `operator()(Client&, const Event&)`), which must
  /// outlive the handler.
  template <class F>
  [[nodiscard]] static Handler bind(F& callable) noexcept {
    return Handler([](void* ctx, Client& c, const Event& e) { (*static_cast<F*>(ctx))(c, e); },
                   static_cast<void*>(&callable));
  }
  template <class F>
  static Handler bind(const F&&) = delete;
  void operator()(Client& client, const Event& event) const {
    if (function_ != nullptr) function_(context_, client, event);
  }

 private:
  Function function_ = nullptr;
  void* context_ = nullptr;
};

/// The minimal MQTT 3.1.1 client. Every call that writes finishes its packet before it returns
/// (or closes the connection when it cannot by its deadline); every call that can close the
/// connection may report events (lost operations) to the handler before it returns.
///
/// Errors common to the calls (each closes the connection, except where noted):
/// TransportClosed / TransportError (the transport failed), Timeout (a packet could not be
/// written in time), NotConnected (not fatal: no connection), CalledFromHandler (not fatal).
class Client {
 public:
  /// `records`: the operations that may be in flight (QoS 1/2 publishes, (un)subscribes);
  /// `incoming_qos2`: inbound QoS 2 packet ids awaiting PUBREL (size = how many the broker may
  /// have open at once); `rx`: the receive buffer, which bounds the largest inbound packet.
  /// All three are the caller's and must outlive the client. `clock` is read for deadlines and
  /// keep-alive (its low 32 bits of milliseconds: wrap-safe over 24 days).
  Client(const Clock& clock, std::span<Record> records, std::span<std::uint16_t> incoming_qos2,
         std::span<std::byte> rx, Handler handler = {}) noexcept;

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends CONNECT over `transport` (already open; the client keeps a reference until the
  /// connection ends) and waits up to `timeout` for the CONNACK. Returns its session-present
  /// flag. When it is 1, unacknowledged publishes are resent (DUP) and PUBRELs of QoS 2
  /// publishes the broker had accepted are sent again, oldest first; when it is 0, each is
  /// reported as MessageLost and the inbound QoS 2 ids are forgotten. Packets that follow
  /// the CONNACK stay in the receive buffer for `process_loop`.
  /// Errors: AlreadyConnected, CalledFromHandler, InvalidArgument (an empty client id without
  /// clean_session [MQTT-3.1.3-7], a password without a user name, a will QoS above 2),
  /// StringTooLong, the UTF-8 and topic errors of validate_utf8 / validate_topic_name (client
  /// id, user name, will topic) — these leave the transport untouched; then, closing it:
  /// ConnectionRefused (`connack_code()` says why), Timeout (no CONNACK in time),
  /// ProtocolError (first packet not a CONNACK, or session present with clean session),
  /// MalformedPacket and the frame errors of read_frame, IncomingPacketTooLarge,
  /// TransportClosed / TransportError.
  [[nodiscard]] Result<bool> connect(transport::Transport& transport,
                                     const ConnectOptions& options, Duration timeout) noexcept;

  /// Sends a PUBLISH and returns its packet id (0 for QoS 0). A QoS 1/2 publish takes a record
  /// until PublishCompleted or MessageLost; its views must stay valid until then.
  /// Errors: NotConnected; InvalidQoS; SessionStateFull (every record in use: not fatal);
  /// the errors of validate_topic_name (not fatal); PacketTooLarge (over 268,435,455 bytes);
  /// Timeout / TransportClosed / TransportError (fatal).
  [[nodiscard]] Result<std::uint16_t> publish(std::string_view topic, Bytes payload, QoS qos,
                                              bool retain, Duration timeout) noexcept;

  /// Sends a SUBSCRIBE (1..255 filters) and returns its packet id; the SUBACK comes later
  /// as SubscribeCompleted. Errors: NotConnected; EmptySubscriptionList, InvalidArgument (more
  /// than 255 filters), InvalidQoS, the errors of validate_topic_filter; SessionStateFull;
  /// Timeout / TransportClosed / TransportError (fatal). Only the first failure is fatal.
  [[nodiscard]] Result<std::uint16_t> subscribe(std::span<const Filter> filters,
                                                Duration timeout) noexcept;

  /// Sends an UNSUBSCRIBE; as `subscribe` (UnsubscribeCompleted).
  [[nodiscard]] Result<std::uint16_t> unsubscribe(std::span<const std::string_view> filters,
                                                  Duration timeout) noexcept;

  /// Waits up to `timeout` for data, reads once and handles every complete packet (events to
  /// the handler, acks sent back); sends a PINGREQ when the keep-alive interval is due. Returns
  /// after the first read that brought data, or when `timeout` passes (success).
  /// Errors (fatal): NotConnected (not fatal); CalledFromHandler (not fatal); KeepAliveTimeout;
  /// IncomingPacketTooLarge; MalformedPacket, ReservedFlagsSet, InvalidQoS, PacketIdZero and
  /// the topic errors of a malformed packet; ProtocolError (a packet a client may not receive,
  /// or an ack for an id that is not outstanding); SessionStateFull (an inbound QoS 2 message
  /// with every id slot taken: the broker resends it after a reconnect); TransportClosed /
  /// TransportError / Timeout.
  [[nodiscard]] Result<void> process_loop(Duration timeout) noexcept;

  /// Sends DISCONNECT and closes the transport. Records stay for a later `connect` without
  /// clean session (with clean session they are reported lost). Errors: NotConnected;
  /// Timeout / TransportClosed / TransportError (the transport is closed anyway).
  [[nodiscard]] Result<void> disconnect(Duration timeout = Duration{1000}) noexcept;

  [[nodiscard]] bool connected() const noexcept { return transport_ != nullptr; }
  /// The last CONNACK's return code (0 accepted; 1..5 refused, spec 3.2.2.3).
  [[nodiscard]] std::uint8_t connack_code() const noexcept { return connack_code_; }
  /// Records in use (publishes and requests awaiting their acks).
  [[nodiscard]] std::size_t outstanding() const noexcept { return used_; }

 private:
  struct Pieces;
  [[nodiscard]] std::uint32_t now() const noexcept;
  [[nodiscard]] std::uint32_t deadline(Duration timeout) const noexcept;
  Errc write(Pieces& p, std::uint32_t timeout_ms) noexcept;
  Errc write_small(const std::uint8_t* bytes, std::size_t n, std::uint32_t timeout_ms) noexcept;
  Errc send_publish(const Record& r, bool dup, std::uint32_t timeout_ms) noexcept;
  Errc request(std::uint8_t state, const void* filters, std::size_t count,
               std::uint16_t& id, std::uint32_t timeout_ms) noexcept;
  Errc run(std::uint32_t deadline, bool connecting) noexcept;
  Errc handle(std::uint8_t first, const std::uint8_t* body, std::size_t len) noexcept;
  Errc on_connack(const std::uint8_t* body, std::size_t len) noexcept;
  Errc on_publish(std::uint8_t flags, const std::uint8_t* body, std::size_t len) noexcept;
  Errc on_ack(std::uint8_t type, std::uint16_t id, const std::uint8_t* body,
              std::size_t len) noexcept;
  Record* find(std::uint16_t id) noexcept;
  Errc take_record(Record*& out) noexcept;
  void remove(Record& r) noexcept;
  void report(Event& e) noexcept;
  void report_record(Record& r, EventType type, Errc error) noexcept;
  void forget(bool publishes) noexcept;
  Errc close_with(Errc e) noexcept;

  const Clock& clock_;
  std::span<Record> records_;
  std::span<std::uint16_t> incoming_qos2_;
  std::span<std::byte> rx_;
  Handler handler_;
  transport::Transport* transport_ = nullptr;
  std::size_t rx_len_ = 0;
  std::size_t used_ = 0;  // records_[0, used_) are in use, oldest first
  std::uint32_t last_sent_ = 0;
  std::uint32_t ping_sent_ = 0;
  std::uint32_t keep_alive_ms_ = 0;
  std::uint32_t ping_timeout_ms_ = 0;
  std::uint16_t next_id_ = 0;
  std::uint8_t connack_code_ = 0;
  bool clean_session_ = true;
  bool ping_outstanding_ = false;
  bool in_handler_ = false;
  bool connack_seen_ = false;
  bool session_present_ = false;
  Errc closed_by_ = Errc::Ok;
  std::uint32_t write_timeout_ms_ = 0;
};

}  // namespace edgekit::mqtt::lite
