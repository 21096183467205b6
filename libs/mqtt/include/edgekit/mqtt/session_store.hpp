#pragma once
/// \file
/// Persistence of an MQTT client session: the interface a `Session` writes through, and
/// `MemorySessionStore`, a fixed-capacity store in a caller-supplied byte arena (pure: no heap,
/// no I/O; usable on a microcontroller, e.g. in RAM retained across a warm reset, and as the
/// reference implementation in tests). `FileSessionStore` (file_store.hpp, hosted builds only)
/// keeps the same data in a directory and survives a crash mid-write.
///
/// What is stored, and when the `Session` writes it:
///  - an outgoing QoS 1/2 PUBLISH, before it is first sent (`save_publish`). The format is the
///    complete encoded PUBLISH packet of the session's protocol version, as it would first go on
///    the wire but with the full topic (never a topic alias) and DUP = 0, so a reloaded record can
///    be resent after a reboot exactly as the spec requires [MQTT-4.4.0-1];
///  - its move to "PUBREC received, awaiting PUBCOMP" (`mark_publish_released`);
///  - its removal when the flow completes or the session is discarded (`remove_publish`);
///  - an inbound QoS 2 packet id, before PUBREC is sent (`save_incoming_qos2`), and its removal
///    when PUBREL arrives (`remove_incoming_qos2`), so a duplicate is never delivered twice even
///    across a reboot;
///  - the session meta (protocol version, client identifier — also a server-assigned one —,
///    session expiry interval) after a successful CONNACK (`save_meta`).
/// Pending SUBSCRIBE / UNSUBSCRIBE are not stored: the spec does not resend them on resume.
///
/// Thread safety: a store is used by one session from one thread at a time; implementations
/// need no locking.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/core/crc32.hpp"
#include "edgekit/mqtt/packets.hpp"
#include "edgekit/mqtt/types.hpp"

namespace edgekit::mqtt {

/// Where a stored outgoing publish is in its flow.
enum class StoredPublishState : std::uint8_t {
  AwaitAck = 1,      ///< sent (or about to be), awaiting PUBACK (QoS 1) or PUBREC (QoS 2)
  AwaitPubComp = 2,  ///< QoS 2: PUBREC received, PUBREL sent, awaiting PUBCOMP
};

/// Session meta data kept across reboots.
struct SessionMeta {
  Version version = Version::V5;
  /// The client identifier the session belongs to (the one sent in CONNECT, or the one the
  /// server assigned). A view: valid for the duration of the call that receives it.
  std::string_view client_id;
  /// MQTT 5 Session Expiry Interval in seconds (0 in MQTT 3.1.1 with Clean Session = 1;
  /// 0xFFFFFFFF means never).
  std::uint32_t session_expiry_interval = 0;
};

/// One outgoing publish as a store hands it back from `load`.
struct StoredPublish {
  /// The packet id the store keeps the record under (what `save_publish` was given; the file
  /// store takes it from the file name). A record whose packet decodes to another id is damaged.
  std::uint16_t packet_id = 0;
  /// Send order assigned by the session; resends happen in increasing order [MQTT-4.6.0-1].
  std::uint32_t sequence = 0;
  StoredPublishState state = StoredPublishState::AwaitAck;
  /// The protocol version `packet` is encoded for.
  Version version = Version::V5;
  /// The complete encoded PUBLISH packet (see the file comment), in the store's memory. Valid
  /// until this record is removed from the store, or the store is loaded again or destroyed.
  Bytes packet;
};

/// What kind of record a store keeps (for reports about records it could not use).
enum class StoredRecordKind : std::uint8_t {
  Meta,          ///< the session meta data (version, client id, expiry): no message
  Publish,       ///< an outgoing QoS 1/2 publish: a message
  Released,      ///< the file store's release marker of a publish (PUBREC received): no message
  IncomingQoS2,  ///< an inbound QoS 2 packet id awaiting PUBREL: no message of ours
};

/// What a store found that it could not use. Reported through `SessionStoreVisitor`; the store
/// never hands such data to the session as if it were valid, and never throws its bytes away:
/// it keeps them aside (see `SessionStore::set_aside_publish`) for the application.
struct CorruptRecord {
  /// Identifies the record for a log line (a file name in the file store, "slot N" in the
  /// memory store). Valid for the duration of the call.
  std::string_view name;
  Errc error = Errc::PersistenceCorrupted;  ///< PersistenceCorrupted or MalformedPacket
  /// What the record was, as far as the store can tell (the file store: from its name; the
  /// memory store: slot 0 is the meta, every other slot a publish).
  StoredRecordKind kind = StoredRecordKind::Publish;
};

/// Receives what `SessionStore::load` finds. Returning an error stops the load, which returns
/// that error.
class SessionStoreVisitor {
 public:
  /// Called at most once, before any other call, when meta data is stored.
  [[nodiscard]] virtual Result<void> on_meta(const SessionMeta& meta) noexcept = 0;
  /// Called once per stored outgoing publish, in no particular order.
  [[nodiscard]] virtual Result<void> on_publish(const StoredPublish& publish) noexcept = 0;
  /// Called once per stored inbound QoS 2 packet id awaiting PUBREL.
  [[nodiscard]] virtual Result<void> on_incoming_qos2(std::uint16_t packet_id) noexcept = 0;
  /// Called for each record that failed its integrity check (CRC, length, format). The store
  /// has already set it aside so that it is not reported again. Default: ignore.
  [[nodiscard]] virtual Result<void> on_corrupt(const CorruptRecord& record) noexcept {
    (void)record;
    return {};
  }

 protected:
  // Not virtual, and protected: visitors are never deleted through this interface, and a
  // virtual destructor would pull operator delete into the pure library.
  ~SessionStoreVisitor() = default;
};

/// The persistence interface of a `Session`. Every call is synchronous; a call that returns
/// success has made its change durable to the degree the implementation promises (the file
/// store: on disk, fsync'ed). Errors: PersistenceFailed (could not write or read; the store's
/// content is what it was before the call), SessionStateFull (no room), and whatever a
/// specific implementation documents.
/// Stores are never deleted through this interface (its destructor is protected and not
/// virtual, so that the pure library references no operator delete).
class SessionStore {
 public:

  /// Stores an outgoing publish in state AwaitAck. `publish` has its packet id set, the full
  /// topic (no topic alias) and DUP = 0; the store encodes it for `version` (see the file
  /// comment) and copies everything it needs before returning. A record with the same packet
  /// id is replaced. Errors also: those of the codec's `encode` for a publish it cannot encode.
  [[nodiscard]] virtual Result<void> save_publish(std::uint32_t sequence, const Publish& publish,
                                                  Version version) noexcept = 0;
  /// Moves the publish with `packet_id` to AwaitPubComp and gives it a new `sequence` (PUBRELs
  /// are resent in the order their PUBRECs arrived [MQTT-4.6.0-3]). Errors also: UnknownPacketId.
  [[nodiscard]] virtual Result<void> mark_publish_released(std::uint16_t packet_id,
                                                           std::uint32_t sequence) noexcept = 0;
  /// Removes the publish with `packet_id`; removing one that is not stored succeeds.
  [[nodiscard]] virtual Result<void> remove_publish(std::uint16_t packet_id) noexcept = 0;
  /// Records an inbound QoS 2 packet id awaiting PUBREL (idempotent).
  [[nodiscard]] virtual Result<void> save_incoming_qos2(std::uint16_t packet_id) noexcept = 0;
  /// Removes an inbound QoS 2 packet id; removing one that is not stored succeeds.
  [[nodiscard]] virtual Result<void> remove_incoming_qos2(std::uint16_t packet_id) noexcept = 0;
  /// Replaces the stored meta data (the client id is copied).
  /// Errors also: StringTooLong when the client id does not fit the store's limit.
  [[nodiscard]] virtual Result<void> save_meta(const SessionMeta& meta) noexcept = 0;
  /// Removes every publish and inbound QoS 2 id (the session was discarded); keeps the meta.
  [[nodiscard]] virtual Result<void> clear_session() noexcept = 0;
  /// Hands everything stored to `visitor` (meta first). Views passed to the visitor point into
  /// the store's memory; see `StoredPublish::packet` for how long they stay valid.
  [[nodiscard]] virtual Result<void> load(SessionStoreVisitor& visitor) noexcept = 0;
  /// Keeps the stored publish with `packet_id` (and its release marker) aside: a record the
  /// session could not restore (its checksum is valid but its content is not a publish it can
  /// resend). From then on it is no record of the session: `load` does not hand it out again,
  /// and neither a `save_publish` of the same packet id nor `remove_publish` nor
  /// `clear_session` overwrites or removes it. Its bytes stay until the application removes
  /// them (each store says where they are). May be called from inside `load`, for the publish
  /// being visited. Errors: UnknownPacketId (no such publish); PersistenceFailed (it could not
  /// be moved; it is unchanged, and must not be written over: do not go on with the session).
  [[nodiscard]] virtual Result<void> set_aside_publish(std::uint16_t packet_id) noexcept = 0;

 protected:
  ~SessionStore() = default;
};

/// A `SessionStore` in a caller-supplied byte arena, divided into fixed-size slots: slot 0 holds
/// the meta data, every other slot one stored publish (slot_size must hold the largest encoded
/// PUBLISH plus kSlotHeaderSize bytes, and kSlotHeaderSize + 8 + the longest client id). Inbound QoS 2 ids live in a caller-supplied id array. Records never
/// move once written, so the views `load` hands out stay valid until their record is removed.
/// Each slot carries a CRC-32 so that memory that survived a reset in a bad state (e.g. a reset
/// during a write) is detected and reported, not loaded.
///
/// Pure: no heap, no I/O. Not thread-safe (one session, one thread).
class MemorySessionStore final : public SessionStore {
 public:
  /// Size of the record header inside each slot.
  static constexpr std::size_t kSlotHeaderSize = 20;
  /// `arena`: slots of `slot_size` bytes each (arena.size() / slot_size slots, the first for the
  /// meta data; the rest of the arena is unused). `incoming_ids`: capacity for inbound QoS 2 ids. When `adopt_existing` is true the
  /// arena is taken as it is (retained RAM after a warm reset: `load` verifies it); otherwise it
  /// is cleared. Both spans must outlive the store.
  MemorySessionStore(std::span<std::byte> arena, std::size_t slot_size,
                     std::span<std::uint16_t> incoming_ids, bool adopt_existing = false) noexcept;

  /// Errors: SessionStateFull (no free slot), BufferTooSmall (packet larger than a slot).
  [[nodiscard]] Result<void> save_publish(std::uint32_t sequence, const Publish& publish,
                                          Version version) noexcept override;
  [[nodiscard]] Result<void> mark_publish_released(std::uint16_t packet_id,
                                                   std::uint32_t sequence) noexcept override;
  [[nodiscard]] Result<void> remove_publish(std::uint16_t packet_id) noexcept override;
  /// Errors: SessionStateFull (the id array is full).
  [[nodiscard]] Result<void> save_incoming_qos2(std::uint16_t packet_id) noexcept override;
  [[nodiscard]] Result<void> remove_incoming_qos2(std::uint16_t packet_id) noexcept override;
  [[nodiscard]] Result<void> save_meta(const SessionMeta& meta) noexcept override;
  [[nodiscard]] Result<void> clear_session() noexcept override;
  /// Corrupt slots are reported through `SessionStoreVisitor::on_corrupt` and kept aside as
  /// `set_aside_publish` does (a corrupt meta slot is freed: it holds no message). Slots kept
  /// aside are skipped without a report.
  [[nodiscard]] Result<void> load(SessionStoreVisitor& visitor) noexcept override;
  /// Marks the publish's slot as kept aside: its bytes stay in the arena, it is never loaded,
  /// reused or cleared until `discard_set_aside`. Errors: UnknownPacketId.
  [[nodiscard]] Result<void> set_aside_publish(std::uint16_t packet_id) noexcept override;

  /// Number of slots kept aside (corrupt, or set aside by the session).
  [[nodiscard]] std::size_t set_aside_count() const noexcept;
  /// The application decided: frees every slot kept aside (their bytes are lost).
  void discard_set_aside() noexcept;

  /// Number of publishes stored.
  [[nodiscard]] std::size_t publish_count() const noexcept;
  /// Number of inbound QoS 2 ids stored.
  [[nodiscard]] std::size_t incoming_qos2_count() const noexcept;

  /// Test hook: the raw arena (to simulate memory corruption).
  [[nodiscard]] std::span<std::byte> raw_arena() noexcept { return arena_; }

 private:
  [[nodiscard]] std::size_t slot_count() const noexcept;
  [[nodiscard]] std::byte* slot(std::size_t i) noexcept;
  [[nodiscard]] std::ptrdiff_t find_publish(std::uint16_t packet_id) noexcept;

  std::span<std::byte> arena_;
  std::size_t slot_size_;
  std::span<std::uint16_t> incoming_;  // 0 = free
  std::size_t visiting_ = 0;           // the publish slot `load` is handing out (0: none)
};

/// CRC-32 (edgekit/core/crc32.hpp), which the stores put on each record to detect a corrupt one.
using edgekit::crc32;

}  // namespace edgekit::mqtt
