#pragma once
/// \file
/// `Session`: the pure (sans-I/O) state of one MQTT client session, for MQTT 3.1.1 and 5 in one
/// build. It works on packet structs, never on bytes or sockets: the driver (client, agent,
/// event loop) decodes inbound frames and hands the packets to `on_*`; the session says what to
/// send back (`Inbound::reply`), what to deliver to the application (`Inbound::deliver`), which
/// operation completed (`Inbound::completion`), and when to wake up (`next_deadline`). The
/// session never reads a clock, never allocates, never does I/O. Only the keep-alive depends on
/// time, so only `on_sent` and `on_timer` take the current `Instant`.
///
/// What it keeps:
///  - packet-id allocation (never 0, skips ids in use, wraps after 65535) [MQTT-2.2.1-3];
///  - outgoing QoS 1/2 PUBLISH records (AwaitPubAck / AwaitPubRec / AwaitPubComp) and pending
///    SUBSCRIBE / UNSUBSCRIBE, in a caller-supplied record array; resend on resume in original
///    order, PUBLISH with DUP = 1 and PUBREL as needed [MQTT-4.4.0-1];
///  - inbound QoS 2 ids between PUBREC and PUBREL, so a duplicate is not delivered twice [4.3.3];
///  - keep-alive: PINGREQ due when the keep-alive elapsed since the last packet sent
///    [MQTT-3.1.2-23 (5.0) / MQTT-3.1.2-24 (3.1.1)], and a ping timeout;
///  - MQTT 5: the server's Receive Maximum (flow control), Maximum Packet Size, Topic Alias
///    Maximum (outbound aliases assigned automatically), Maximum QoS, Retain Available, Server
///    Keep Alive, Assigned Client Identifier, Session Expiry Interval; inbound topic aliases.
///
/// Buffer ownership (as in coreMQTT): the session keeps *views* of what the caller passes to
/// `begin_publish` (topic, payload, property strings and arrays). They must stay valid and
/// unchanged until the publish is reported complete (`Inbound::completion`) or lost
/// (`next_lost`) — unless `SessionStorage::message_copies` is given, in which case the session
/// keeps its own copy of topic and payload. Records restored from a `SessionStore` point into the store's memory instead.
/// Every other view the session hands out says how long it is valid.
///
/// Thread safety: none. One thread drives a session at a time (the agent serialises access).
///
/// Typical driver loop:
///   session.prepare_connect(connect) → send CONNECT → on_connack(connack)
///   → while (auto r = session.next_resend()) send *r → ... begin_publish(p) → send p
///   → for each inbound packet: on_packet(pkt) → send reply, deliver, report completion
///   → on_sent(now) after every packet written; on_timer(now) at next_deadline().

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/packets.hpp"
#include "edgekit/mqtt/session_store.hpp"
#include "edgekit/mqtt/types.hpp"

namespace edgekit::mqtt {

/// Caller-supplied storage for a topic alias table: `lengths.size()` aliases (alias N uses
/// slot N-1), each holding a topic of at most `slot_length()` bytes copied into `chars`.
/// A length of 0 means the alias is unset (a topic is never empty). Both spans must outlive the
/// session. Use `TopicAliasArena` to get one with static sizes.
///
/// Inbound aliases and topic length: the session announces `slots()` aliases (Topic Alias
/// Maximum), and MQTT 5 gives the client no way to tell the server how long an aliased topic may
/// be: a server may legally assign an alias to any topic (up to 65,535 bytes). A topic longer
/// than `slot_length()` is delivered, but its alias cannot be kept, so the next PUBLISH that
/// uses the alias alone fails with TopicAliasInvalid and ends the connection (0x94) through no
/// fault of the server. Slots shorter than 65,535 bytes (or the receive buffer, if smaller) are
/// therefore only safe with a server known to alias short topics only; otherwise announce no
/// inbound aliases (empty `lengths`) or size the slots that long (the host tools do: 16 aliases
/// of 64 KB, allocated but untouched until used).
struct TopicAliasStorage {
  std::span<char> chars;
  std::span<std::uint16_t> lengths;
  /// Number of aliases this storage holds.
  [[nodiscard]] constexpr std::size_t slots() const noexcept { return lengths.size(); }
  /// Longest topic one alias can hold (at most 65535).
  [[nodiscard]] constexpr std::size_t slot_length() const noexcept {
    if (lengths.empty()) return 0;
    const std::size_t l = chars.size() / lengths.size();
    return l > 65535 ? 65535 : l;
  }
};

/// Static storage for `Aliases` topic aliases of up to `MaxTopicLength` bytes each.
template <std::size_t Aliases, std::size_t MaxTopicLength>
struct TopicAliasArena {
  static_assert(Aliases <= 65535, "a topic alias is a 16-bit number");
  std::array<char, Aliases * MaxTopicLength> chars{};
  std::array<std::uint16_t, Aliases> lengths{};
  [[nodiscard]] TopicAliasStorage storage() noexcept { return {chars, lengths}; }
};

/// Exactly-once bookkeeping for inbound QoS 2 that can never fill: one bit per packet id
/// (65,536 bits, 8 KB). The fixed `SessionStorage::incoming_qos2` array suits a microcontroller
/// that sizes it for its broker; a host cannot know how many messages a broker keeps in flight
/// (MQTT 3.1.1 has no flow control; Mosquitto's `max_inflight_messages` may be anything), and
/// a full array ends the connection with SessionStateFull. With this set the session keeps every
/// id the server may have outstanding, so that cannot happen. Put it where 8 KB is cheap (heap
/// or a static); the session only reads and writes it, and it must outlive the session.
struct IncomingQoS2Set {
  std::array<std::uint64_t, 1024> words{};
};

/// State of an outgoing record.
enum class OutgoingState : std::uint8_t {
  Free = 0,
  AwaitPubAck,    ///< QoS 1 PUBLISH sent
  AwaitPubRec,    ///< QoS 2 PUBLISH sent
  AwaitPubComp,   ///< QoS 2 PUBREC received, PUBREL sent
  AwaitSubAck,    ///< SUBSCRIBE sent
  AwaitUnsubAck,  ///< UNSUBSCRIBE sent
};

/// One outgoing operation in flight. The caller supplies an array of these (its size is the
/// most operations in flight at once) and must not modify them; reading is fine (diagnostics).
struct OutgoingRecord {
  OutgoingState state = OutgoingState::Free;
  bool resend = false;  ///< queued for `next_resend` after a resumed session
  bool lost = false;    ///< queued for `next_lost` after the session was discarded
  std::uint16_t packet_id = 0;
  std::uint32_t sequence = 0;  ///< send order
  /// Publish records: the publish as the caller gave it (full topic, no alias; views, see the
  /// file comment). Unused for SUBSCRIBE / UNSUBSCRIBE.
  Publish publish;
};

/// Caller-supplied storage of a session. Every span must outlive the session.
struct SessionStorage {
  /// Outgoing QoS 1/2 publishes and pending SUBSCRIBE / UNSUBSCRIBE. Its size bounds the
  /// operations in flight (SessionStateFull beyond it).
  std::span<OutgoingRecord> outgoing;
  /// Inbound QoS 2 packet ids awaiting PUBREL. In MQTT 5 the session announces Receive Maximum
  /// = min(requested, size) in CONNECT; in 3.1.1 size it for the broker's in-flight limit
  /// (Mosquitto: 20). May be empty when no QoS 2 subscription is made, and is unused when
  /// `incoming_qos2_set` is given.
  std::span<std::uint16_t> incoming_qos2;
  /// Inbound topic aliases (MQTT 5). The session announces Topic Alias Maximum = slots(); see
  /// `TopicAliasStorage` for how long a slot must be to hold every alias a server may assign.
  TopicAliasStorage inbound_aliases;
  /// Outbound topic aliases (MQTT 5), assigned automatically up to the server's maximum.
  TopicAliasStorage outbound_aliases;
  /// Holds the client identifier of the session (the one sent, or the one the server assigned
  /// [MQTT-3.2.2-16]) so that the next CONNECT uses it. 23 bytes is what every server must
  /// accept; servers may assign longer ones.
  std::span<char> client_id;
  /// Optional: room for the session's own copy of each QoS 1/2 message (split evenly, one slot
  /// per `outgoing` record). When set, `begin_publish` copies the topic and payload into the
  /// record's slot and points the publish at the copy, so the caller's buffers are free again
  /// as soon as the publish call returns (a buffer reused for the next message cannot corrupt
  /// a resend). A message whose topic and payload do not fit a slot is refused with
  /// BufferTooSmall. Property views (Response Topic, Correlation Data, User Properties, ...) are
  /// not copied: they must stay valid until completion, as without copies. Empty: no copies;
  /// the caller keeps topic and payload valid until completion (see the file comment).
  std::span<std::byte> message_copies{};
  /// Optional (hosts): keep inbound QoS 2 ids in this set instead of `incoming_qos2`, so that no
  /// number of messages in flight can fill it (see `IncomingQoS2Set`). In MQTT 5 the session
  /// then announces the Receive Maximum the caller requested (default 65535). Null: the fixed
  /// array, as on a microcontroller.
  IncomingQoS2Set* incoming_qos2_set = nullptr;
};

/// Settings of a session.
struct SessionConfig {
  /// How long to wait for PINGRESP after sending PINGREQ before `on_timer` reports
  /// KeepAliveTimeout. Zero: 1.5 × the effective keep-alive.
  Duration ping_timeout{0};
};

/// Which kind of operation a completion or loss refers to.
enum class OperationKind : std::uint8_t { Publish, Subscribe, Unsubscribe };

/// An outgoing operation that finished: the broker acknowledged it (or refused it).
struct Completion {
  OperationKind kind = OperationKind::Publish;
  std::uint16_t packet_id = 0;
  QoS qos = QoS::AtMostOnce;  ///< publishes: the QoS it was sent with
  /// Publishes: the reason code of PUBACK, of a failing PUBREC (>= 0x80 ends the QoS 2 flow
  /// [MQTT-4.3.3]), or of PUBCOMP. SUBACK / UNSUBACK: the first failing code, else Success (the
  /// full list is in the packet the driver holds). Always Success in 3.1.1 except SUBACK 0x80.
  ReasonCode reason_code = ReasonCode::Success;
};

/// An acknowledgement the driver must send now.
struct Reply {
  PacketType type = PacketType::PubAck;  ///< PubAck, PubRec, PubRel or PubComp
  std::uint16_t packet_id = 0;
  ReasonCode reason_code = ReasonCode::Success;  ///< MQTT 5 only
  /// The reply as a packet struct, ready for the codec.
  [[nodiscard]] Packet to_packet() const noexcept;
};

/// Result of a successful CONNACK.
struct ConnAckOutcome {
  bool session_present = false;
  /// Records queued for `next_resend` (resumed session).
  std::size_t resend_count = 0;
  /// Records queued for `next_lost` (session_present = 0 while records were outstanding: the
  /// server has forgotten them; never dropped silently).
  std::size_t lost_count = 0;
  /// A non-fatal problem: Ok, PersistenceFailed (meta could not be stored), BufferTooSmall (the
  /// assigned client id did not fit `SessionStorage::client_id`; the next connect cannot resume).
  Errc warning = Errc::Ok;
};

/// What the driver must do after an inbound packet. Several fields may be set at once.
struct Inbound {
  /// An acknowledgement to send now (PUBACK / PUBREC for a PUBLISH, PUBREL after PUBREC,
  /// PUBCOMP after PUBREL).
  std::optional<Reply> reply;
  /// `on_publish`: hand the publish to the application. Its topic is resolved (alias → topic;
  /// then a view into the inbound alias storage, valid until the next `on_publish` or connect).
  /// False for a QoS 2 duplicate.
  bool deliver = false;
  /// An outgoing operation finished; its record is free again.
  std::optional<Completion> completion;
  /// Set by `on_packet` for a CONNACK.
  std::optional<ConnAckOutcome> connack;
  /// The server sent DISCONNECT with this reason code; the connection is over (close it).
  std::optional<ReasonCode> server_disconnect;
  /// A non-fatal problem: Ok, or PersistenceFailed when the store could not record a completed
  /// step (the protocol state advanced anyway; after a reboot a completed publish may be resent).
  Errc warning = Errc::Ok;
};

/// A record to send again after a resumed session, in original order [MQTT-4.6.0-1].
struct Resend {
  PacketType type = PacketType::Publish;  ///< Publish (DUP = 1, full topic) or PubRel
  Publish publish;                        ///< when type == Publish; views as in the record
  PubRel pubrel;                          ///< when type == PubRel
};

/// An operation the server no longer knows about (session discarded, or a pending
/// SUBSCRIBE / UNSUBSCRIBE when the connection dropped). The driver reports or requeues it.
struct LostOperation {
  OperationKind kind = OperationKind::Publish;
  /// QoS 2 publishes: the server had acknowledged receipt (PUBREC received, PUBREL sent; the
  /// record was AwaitPubComp). The server then owned the message [MQTT-4.3.3] and may already
  /// have delivered it before it lost the session, so sending it again may deliver it twice;
  /// not sending it may lose it. Which one is unknowable here: the driver must decide (or ask
  /// the application). False for QoS 1, for QoS 2 still awaiting PUBREC, and for SUBSCRIBE /
  /// UNSUBSCRIBE.
  bool pubrec_received = false;
  std::uint16_t packet_id = 0;
  /// Publishes: the publish as given to `begin_publish` (its views are the caller's again).
  Publish publish;
};

/// What happened at a timer wake-up.
enum class TimerAction : std::uint8_t { None, SendPingReq };

/// What `restore` found in the store.
struct RestoreSummary {
  bool meta = false;                 ///< meta data found (version, client id, expiry)
  std::size_t publishes = 0;         ///< outgoing publishes restored
  std::size_t incoming_qos2 = 0;     ///< inbound QoS 2 ids restored
  std::size_t corrupt = 0;           ///< records the store found corrupt (reported, not loaded)
  /// Stored publishes (messages) that were not restored: corrupt ones, and those whose checksum
  /// was valid but whose content the session cannot resend. Each was kept aside in the store
  /// and reported to the `RestoreObserver`; unless the application recovers it from there, the
  /// message is lost.
  std::size_t publishes_set_aside = 0;
};

/// A stored record that `Session::restore` did not restore. It is kept aside in the store
/// (never overwritten; see `SessionStore::set_aside_publish`).
struct UnrestorableRecord {
  StoredRecordKind kind = StoredRecordKind::Publish;  ///< Publish: a message is lost
  /// The store's name of the record when the store found it corrupt ("p-12", "slot 3"; valid
  /// during the call); empty when the session set it aside (then `packet_id` names it).
  std::string_view name;
  /// The packet id of a publish the session set aside; 0 when the store found it corrupt.
  std::uint16_t packet_id = 0;
  /// Why: PersistenceCorrupted (failed the store's integrity check: checksum, length, format);
  /// for a publish with a valid checksum, the decode error of its packet (MalformedPacket, ...)
  /// or MalformedPacket for a packet that decodes but cannot be a stored QoS 1/2 publish (QoS 0,
  /// packet id 0 or not the one it is stored under, released but not QoS 2).
  Errc cause = Errc::PersistenceCorrupted;
};

/// Told about each record `Session::restore` could not restore, as it is found.
class RestoreObserver {
 public:
  virtual void on_unrestorable(const UnrestorableRecord& record) noexcept = 0;

 protected:
  ~RestoreObserver() = default;
};

/// The state of one MQTT client session. See the file comment.
class Session {
 public:
  /// `store` may be null (nothing persisted). Storage and store must outlive the session.
  explicit Session(SessionStorage storage, SessionStore* store = nullptr,
                   SessionConfig config = {}) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // --- Persistence ----------------------------------------------------------------------------

  /// Loads the session from the store (after a reboot), before the first connect: outgoing
  /// publishes (queued for resend once a CONNACK with session_present = 1 arrives), inbound QoS 2
  /// ids, client id, protocol version, session expiry.
  /// Records that cannot be restored are never dropped silently and never overwritten later:
  /// corrupt ones (the store's integrity check) and publishes whose checksum is valid but whose
  /// content cannot be resent are kept aside in the store, counted (`RestoreSummary`) and
  /// reported one by one to `observer` (may be null); the rest of the session is restored.
  /// A capacity mismatch is refused, not half restored: more stored publishes than
  /// `storage.outgoing` holds, or more inbound QoS 2 ids than `incoming_qos2`, fail with
  /// SessionStateFull, and a store that cannot load its records (e.g. BufferTooSmall) fails with
  /// its error. Then the store is left as it was (except records already set aside) and the
  /// session stays empty and refuses to connect (`prepare_connect` returns the same error), so
  /// that no new publish reuses a stored packet id and replaces a stored message: restore again
  /// with more room, or, to give the stored session up, clear the store (`clear_session`) and
  /// restore again.
  /// Errors: AlreadyConnected; InvalidArgument (no store); ProtocolError (records already in
  /// use: restore only a fresh session); SessionStateFull (see above); PersistenceFailed (a read
  /// failed, or a record could not be set aside); PersistenceCorrupted (two stored publishes
  /// under one packet id); and the store's own load errors (FileSessionStore: BufferTooSmall).
  [[nodiscard]] Result<RestoreSummary> restore(RestoreObserver* observer = nullptr) noexcept;

  // --- Connection -----------------------------------------------------------------------------

  /// Prepares `connect` and starts a connection attempt. Sets the client id from the session's
  /// when `connect.client_id` is empty and one is known (assigned or restored; the view points
  /// into `SessionStorage::client_id`); in MQTT 5 sets Receive Maximum and Topic Alias Maximum to
  /// what the storage can hold (lowering, never raising, what the caller set). Resets per-
  /// connection state (topic aliases, keep-alive, flow control).
  /// Errors: AlreadyConnected; ProtocolVersionDisabled; BufferTooSmall (the client id does not
  /// fit `SessionStorage::client_id`); the error of the last `restore` when it failed (see
  /// there: connecting would overwrite the stored session).
  [[nodiscard]] Result<void> prepare_connect(Connect& connect) noexcept;

  /// Handles CONNACK. On success the session is connected: server limits are taken from the
  /// properties; with session_present = 1 outstanding records are queued for `next_resend`, with
  /// session_present = 0 they are queued for `next_lost` and the store is cleared.
  /// Errors: ProtocolError (no connect in progress); ConnectionRefused (failure reason code;
  /// the session is not connected, its records are kept for a later attempt).
  [[nodiscard]] Result<ConnAckOutcome> on_connack(const ConnAck& connack) noexcept;

  /// The next record to send again after a resumed session, oldest first; nullopt when none
  /// is due. Resent publishes carry DUP = 1 and the full topic (aliases do not survive a
  /// connection). PUBLISH resends keep their original order, PUBREL resends theirs
  /// [MQTT-4.6.0-1]. PUBLISH resends respect the new connection's Receive Maximum
  /// [MQTT-4.9.0-2] (QoS 2 messages awaiting PUBCOMP count against it): the ones that do not fit
  /// stay queued (`pending_resends`) and become due as acknowledgements arrive, so call this
  /// again after every completion. PUBRELs are always due. Not held back by Maximum Packet Size:
  /// they were within the limits they were sent under.
  [[nodiscard]] std::optional<Resend> next_resend() noexcept;
  /// As `next_resend`, into `out` (no copy on the caller's stack). With `take` false it only
  /// looks: the record stays queued (a driver checks that it has room to send it first).
  /// Returns false when none is due.
  [[nodiscard]] bool next_resend(Resend& out, bool take) noexcept;

  /// The next lost operation; its record is freed (and removed from the store). nullopt when
  /// none.
  [[nodiscard]] std::optional<LostOperation> next_lost() noexcept;
  /// As `next_lost`, into `out`. Returns false when none.
  [[nodiscard]] bool next_lost(LostOperation& out) noexcept;

  /// Client-initiated DISCONNECT: in MQTT 5 validates a changed Session Expiry Interval (setting
  /// it non-zero when CONNECT sent 0 is a ProtocolError [MQTT-3.14.2-2]). Ends the connection;
  /// when the session ends with it (MQTT 5 expiry 0, 3.1.1 Clean Session) records are queued for
  /// `next_lost`. Errors: NotConnected, ProtocolError.
  [[nodiscard]] Result<void> prepare_disconnect(const Disconnect& disconnect) noexcept {
    return end_with_disconnect(disconnect.properties);
  }

  /// The network connection closed without DISCONNECT. Keeps the session state for a resume;
  /// pending SUBSCRIBE / UNSUBSCRIBE are queued for `next_lost` (never resent).
  void on_connection_lost() noexcept;

  // --- Outgoing -------------------------------------------------------------------------------

  /// Prepares `publish` for sending and, for QoS 1/2, records it (and saves it to the store).
  /// Sets packet_id (QoS 1/2) and dup = false; with outbound aliases in use rewrites the topic
  /// alias (first use: topic + alias; later uses: empty topic + alias). Send `publish` as it is
  /// on return. Views: see the file comment.
  /// Errors: NotConnected; InvalidArgument (topic_alias set by the caller — the session manages
  /// aliases; or an empty topic); QoSNotSupported (above the server's Maximum QoS);
  /// RetainNotSupported (server's Retain Available = 0); QoS2Disabled; PacketTooLarge (above the
  /// server's Maximum Packet Size); ReceiveMaximumExceeded (the server's Receive Maximum is
  /// reached, or resends held back by it are still queued — a new publish never overtakes them:
  /// wait for an acknowledgement and try again); SessionStateFull (no free record);
  /// NoPacketIdAvailable; PersistenceFailed or the store's own error, e.g. BufferTooSmall (could
  /// not be stored; nothing recorded, nothing to send); and the
  /// codec's encode errors for a publish it would not put on the wire.
  [[nodiscard]] Result<void> begin_publish(Publish& publish) noexcept;
  /// As above, for a driver that has just called `encoded_size(publish, version())` (with any
  /// packet id) and passes its result as `encoded`: the session does not validate and measure
  /// the message a second time.
  [[nodiscard]] Result<void> begin_publish(Publish& publish, std::size_t encoded) noexcept;

  /// Assigns a packet id to `subscribe` and records it until SUBACK.
  /// Errors: NotConnected, SessionStateFull, NoPacketIdAvailable, PacketTooLarge, and the codec's
  /// encode errors.
  [[nodiscard]] Result<void> begin_subscribe(Subscribe& subscribe) noexcept;
  /// Assigns a packet id to `unsubscribe` and records it until UNSUBACK. Errors: as
  /// `begin_subscribe`.
  [[nodiscard]] Result<void> begin_unsubscribe(Unsubscribe& unsubscribe) noexcept;
  /// As the two above, for a driver that has just called `encoded_size(request, version())`
  /// (with any packet id) and passes its result as `encoded`: the session does not validate and
  /// measure the request a second time. Errors: as `begin_subscribe`, but no encode errors.
  /// (Inline, so that a driver choosing between the two makes one call: code size.)
  [[nodiscard]] Result<void> begin_subscribe(Subscribe& subscribe, std::size_t encoded) noexcept {
    return begin_request(OutgoingState::AwaitSubAck, subscribe.packet_id, nullptr, nullptr,
                         encoded);
  }
  [[nodiscard]] Result<void> begin_unsubscribe(Unsubscribe& unsubscribe,
                                               std::size_t encoded) noexcept {
    return begin_request(OutgoingState::AwaitUnsubAck, unsubscribe.packet_id, nullptr, nullptr,
                         encoded);
  }

  /// The driver wrote a packet (any packet) at `now`: restarts the keep-alive interval.
  void on_sent(Instant now) noexcept;

  // --- Incoming -------------------------------------------------------------------------------

  /// Dispatches any packet a server may send to the handler below (CONNACK fills
  /// `Inbound::connack`). Errors: those of the handler; ProtocolError for packets a server
  /// never sends (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ) and for AUTH (not supported).
  [[nodiscard]] Result<Inbound> on_packet(Packet& packet) noexcept;

  /// An inbound PUBLISH. QoS 0: deliver. QoS 1: deliver, reply PUBACK. QoS 2: first time deliver
  /// and reply PUBREC (id recorded, and stored before the reply); duplicate (id still awaiting
  /// PUBREL): reply PUBREC, do not deliver. Resolves topic aliases (rewrites `publish.topic`).
  /// With `SessionStorage::incoming_qos2_set` there is always room; an id still held there that
  /// arrives again with DUP = 0 is a new message (a resend carries DUP = 1 [MQTT-3.3.1-1], so the
  /// server has finished or forgotten the earlier one) and is delivered.
  /// When `incoming_qos2` is full but holds ids carried over from an earlier connection whose
  /// PUBREL has not come, one of those is forgotten to make room: a conforming server resends
  /// every PUBREL before new messages, so such an id is one the server no longer holds.
  /// Errors: NotConnected; TopicAliasInvalid (alias 0, above the maximum, or unknown — disconnect
  /// with 0x94); ReceiveMaximumExceeded (MQTT 5: more QoS 2 in flight than announced — disconnect
  /// with 0x93); SessionStateFull (3.1.1, or MQTT 5 with empty `incoming_qos2`: no room); PersistenceFailed (the id
  /// could not be stored: nothing was delivered or acknowledged; disconnect, the server resends).
  [[nodiscard]] Result<Inbound> on_publish(Publish& publish) noexcept;
  /// PUBACK: completes a QoS 1 publish. Errors: UnknownPacketId; ProtocolError (the id belongs to
  /// a record in another state).
  [[nodiscard]] Result<Inbound> on_puback(const PubAck& ack) noexcept;
  /// PUBREC: replies PUBREL and awaits PUBCOMP, or completes the publish when the reason code is
  /// a failure. An unknown id is answered with PUBREL 0x92 (Packet Identifier not found) in
  /// MQTT 5 and a plain PUBREL in 3.1.1, and returns no error. Errors: ProtocolError.
  [[nodiscard]] Result<Inbound> on_pubrec(const PubRec& ack) noexcept;
  /// PUBREL: replies PUBCOMP and forgets the inbound id. An unknown id is answered with PUBCOMP
  /// 0x92 (MQTT 5) or a plain PUBCOMP (3.1.1) and returns no error.
  [[nodiscard]] Result<Inbound> on_pubrel(const PubRel& rel) noexcept;
  /// PUBCOMP: completes a QoS 2 publish. Errors: UnknownPacketId, ProtocolError.
  [[nodiscard]] Result<Inbound> on_pubcomp(const PubComp& ack) noexcept;
  /// SUBACK: completes a SUBSCRIBE. Errors: UnknownPacketId, ProtocolError.
  [[nodiscard]] Result<Inbound> on_suback(const SubAck& ack) noexcept;
  /// UNSUBACK: completes an UNSUBSCRIBE. Errors: UnknownPacketId, ProtocolError.
  [[nodiscard]] Result<Inbound> on_unsuback(const UnsubAck& ack) noexcept;
  /// PINGRESP: the ping is answered. Errors: NotConnected.
  [[nodiscard]] Result<Inbound> on_pingresp() noexcept;
  /// Server DISCONNECT (MQTT 5): fills `Inbound::server_disconnect`; the session is no longer
  /// connected (as `on_connection_lost`). Errors: NotConnected.
  [[nodiscard]] Result<Inbound> on_disconnect(const Disconnect& disconnect) noexcept;

  // --- Time -----------------------------------------------------------------------------------

  /// When `on_timer` must be called next (PINGREQ due or ping timeout); nullopt when nothing is
  /// scheduled (not connected, or keep-alive 0).
  [[nodiscard]] std::optional<Instant> next_deadline() const noexcept;
  /// Timer wake-up: SendPingReq when a PINGREQ is due (the driver sends it, then `on_sent`).
  /// Only runs while connected; waiting for CONNACK is timed by the driver.
  /// Errors: KeepAliveTimeout (no PINGRESP within the ping timeout; close the connection, then
  /// `on_connection_lost`).
  [[nodiscard]] Result<TimerAction> on_timer(Instant now) noexcept;

  // --- Observers ------------------------------------------------------------------------------

  [[nodiscard]] bool connected() const noexcept { return phase_ == Phase::Connected; }
  [[nodiscard]] Version version() const noexcept { return version_; }
  /// The session's client id (view into `SessionStorage::client_id`; valid until the next
  /// CONNACK or restore). Empty when not known yet.
  [[nodiscard]] std::string_view client_id() const noexcept;
  /// Session Expiry Interval in seconds (as sent, or as the server set it in CONNACK).
  [[nodiscard]] std::uint32_t session_expiry_interval() const noexcept { return session_expiry_; }
  /// Effective keep-alive in seconds (the server's Server Keep Alive overrides the client's).
  [[nodiscard]] std::uint16_t keep_alive() const noexcept { return keep_alive_; }
  /// Outgoing QoS 1/2 publishes awaiting PUBACK / PUBCOMP (what Receive Maximum counts).
  [[nodiscard]] std::size_t publishes_in_flight() const noexcept;
  /// Records in use (publishes, pending SUBSCRIBE / UNSUBSCRIBE, lost ones not yet drained).
  [[nodiscard]] std::size_t records_in_use() const noexcept;
  [[nodiscard]] std::uint16_t server_receive_maximum() const noexcept { return server_receive_max_; }
  [[nodiscard]] std::uint32_t server_maximum_packet_size() const noexcept { return server_max_packet_; }
  [[nodiscard]] std::uint16_t server_topic_alias_maximum() const noexcept { return server_alias_max_; }
  [[nodiscard]] QoS server_maximum_qos() const noexcept { return server_max_qos_; }
  [[nodiscard]] bool server_retain_available() const noexcept { return retain_available_; }
  /// Records queued for `next_resend` / `next_lost`.
  [[nodiscard]] std::size_t pending_resends() const noexcept;
  [[nodiscard]] std::size_t pending_lost() const noexcept;

 private:
  enum class Phase : std::uint8_t { Disconnected, Connecting, Connected };
  friend class SessionRestorer;
  // The engine records a SUBSCRIBE / UNSUBSCRIBE it measured from its caller's arrays, without
  // building the packet (begin_request).
  friend class Connection;

  [[nodiscard]] Result<std::uint16_t> allocate_packet_id() noexcept;
  [[nodiscard]] OutgoingRecord* find_record(std::uint16_t packet_id) noexcept;
  [[nodiscard]] OutgoingRecord* free_record() noexcept;
  [[nodiscard]] OutgoingRecord* find_resend() noexcept;
  void resend_of(const OutgoingRecord& record, Resend& out) const noexcept;
  [[nodiscard]] std::ptrdiff_t find_incoming(std::uint16_t packet_id) const noexcept;
  [[nodiscard]] std::ptrdiff_t free_incoming_slot() noexcept;
  [[nodiscard]] Result<void> set_client_id(std::string_view id) noexcept;
  [[nodiscard]] Result<void> begin_request(
      OutgoingState state, std::uint16_t& packet_id,
      Result<std::size_t> (*size)(const void* packet, Version version) noexcept,
      const void* packet, std::size_t encoded = 0) noexcept;
  // Frees the record of a finished operation and puts its completion into `in`.
  void complete(OutgoingRecord& r, ReasonCode rc, Inbound& in) noexcept;
  // prepare_disconnect with the DISCONNECT's properties alone (the engine has no Disconnect).
  [[nodiscard]] Result<void> end_with_disconnect(const Properties& properties) noexcept;
  // PUBACK, PUBCOMP, SUBACK, UNSUBACK: the record of `id` must be waiting in `expected`; it
  // completes with `rc`.
  [[nodiscard]] Result<Inbound> on_final_ack(std::uint16_t id, OutgoingState expected,
                                             ReasonCode rc) noexcept;
  void reset_connection_state() noexcept;
  void end_connection(bool session_ends) noexcept;
  std::size_t discard_session() noexcept;
  void apply_outbound_alias(Publish& publish, std::size_t encoded) noexcept;
  [[nodiscard]] Result<void> resolve_inbound_alias(Publish& publish) noexcept;
  [[nodiscard]] Errc persist_meta() noexcept;

  SessionStorage storage_;
  SessionStore* store_;
  SessionConfig config_;

  Phase phase_ = Phase::Disconnected;
  Version version_ = Version::V5;
  bool clean_start_ = true;
  std::uint16_t client_id_length_ = 0;
  std::uint16_t next_packet_id_ = 1;
  std::uint32_t next_sequence_ = 1;
  std::uint32_t session_expiry_ = 0;
  std::uint32_t connect_session_expiry_ = 0;
  /// The error of a failed `restore`: the store holds a session this one does not have.
  Errc restore_error_ = Errc::Ok;

  // Per connection.
  std::uint16_t requested_keep_alive_ = 0;
  std::uint16_t keep_alive_ = 0;
  Instant last_sent_{};
  // This and the server's limits below (not the alias maximum) are set by
  // reset_connection_state(), which the constructor calls: no initialisers, which would store
  // each value twice (code size).
  bool ping_outstanding_;
  Instant ping_sent_at_{};
  std::uint16_t server_receive_max_;
  std::uint32_t server_max_packet_;
  std::uint16_t server_alias_max_;
  std::uint16_t inbound_alias_max_ = 0;
  /// Inbound QoS 2 ids at the front of `incoming_qos2` carried over from an earlier connection.
  std::size_t incoming_carried_ = 0;
  QoS server_max_qos_;
  bool retain_available_;
};

}  // namespace edgekit::mqtt
