// Session::restore: rebuilds a session from a SessionStore after a reboot.
//
// Nothing stored is dropped silently: a record that cannot be restored is kept aside in the store
// (so no later publish under its packet id overwrites it) and reported; a store holding more than
// this session has room for is refused as a whole, leaving the store untouched, rather than
// restored in part (which records would be left out is an arbitrary choice, and resending only
// some breaks the order of the rest).
#include <algorithm>

#include "edgekit/mqtt/codec.hpp"
#include "edgekit/mqtt/session.hpp"

namespace edgekit::mqtt {

// Receives the store's records and puts them into the session's caller-supplied arrays.
class SessionRestorer final : public SessionStoreVisitor {
 public:
  SessionRestorer(Session& s, RestoreObserver* observer) noexcept : s_(s), observer_(observer) {}

  Result<void> on_meta(const SessionMeta& meta) noexcept override {
    summary.meta = true;
    s_.version_ = meta.version;
    s_.session_expiry_ = meta.session_expiry_interval;
    s_.connect_session_expiry_ = meta.session_expiry_interval;
    // A client id too long for this build's storage cannot be used to resume; drop it rather
    // than fail the whole restore (the publishes are still worth having).
    if (!s_.set_client_id(meta.client_id)) s_.client_id_length_ = 0;
    return {};
  }

  Result<void> on_publish(const StoredPublish& stored) noexcept override {
    // The store verified its checksum; the codec still checks every rule, so a record written
    // by a buggy or foreign build is set aside rather than resent as garbage.
    auto decoded = decode_publish(stored.packet, stored.version);
    if (!decoded) return set_aside(stored.packet_id, decoded.error());
    const Publish& p = *decoded;
    if (p.qos == QoS::AtMostOnce || p.packet_id == 0 || p.packet_id != stored.packet_id ||
        (stored.state == StoredPublishState::AwaitPubComp && p.qos != QoS::ExactlyOnce)) {
      return set_aside(stored.packet_id, Errc::MalformedPacket);
    }
    // Stores keep one record per packet id; two mean a store that is not to be trusted.
    if (s_.find_record(p.packet_id) != nullptr) return fail(Errc::PersistenceCorrupted);
    OutgoingRecord* rec = s_.free_record();
    if (rec == nullptr) {
      // Counted to the end, then refused (see the file comment).
      ++over_capacity;
      return {};
    }
    *rec = OutgoingRecord{};
    if (stored.state == StoredPublishState::AwaitPubComp) {
      rec->state = OutgoingState::AwaitPubComp;
    } else {
      rec->state = p.qos == QoS::AtLeastOnce ? OutgoingState::AwaitPubAck
                                             : OutgoingState::AwaitPubRec;
    }
    rec->packet_id = p.packet_id;
    rec->sequence = stored.sequence;
    rec->publish = p;
    rec->publish.dup = false;
    s_.next_sequence_ = std::max(s_.next_sequence_, stored.sequence + 1);
    ++summary.publishes;
    return {};
  }

  Result<void> on_incoming_qos2(std::uint16_t packet_id) noexcept override {
    if (packet_id == 0) return fail(Errc::PacketIdZero);
    if (IncomingQoS2Set* set = s_.storage_.incoming_qos2_set) {
      const std::uint64_t bit = std::uint64_t{1} << (packet_id & 63U);
      if ((set->words[packet_id >> 6] & bit) == 0) ++summary.incoming_qos2;
      set->words[packet_id >> 6] |= bit;
      return {};
    }
    if (s_.find_incoming(packet_id) >= 0) return {};
    const std::ptrdiff_t slot = s_.find_incoming(0);
    if (slot < 0) {
      ++over_capacity;
      return {};
    }
    s_.storage_.incoming_qos2[static_cast<std::size_t>(slot)] = packet_id;
    ++summary.incoming_qos2;
    return {};
  }

  Result<void> on_corrupt(const CorruptRecord& record) noexcept override {
    ++summary.corrupt;
    if (record.kind == StoredRecordKind::Publish) ++summary.publishes_set_aside;
    UnrestorableRecord u;
    u.kind = record.kind;
    u.name = record.name;
    u.cause = record.error;
    if (observer_ != nullptr) observer_->on_unrestorable(u);
    return {};
  }

  RestoreSummary summary;
  std::size_t over_capacity = 0;

 private:
  // A publish with a valid checksum that cannot be resent: kept aside in the store, so that no
  // publish reusing its packet id replaces it, and reported.
  Result<void> set_aside(std::uint16_t packet_id, Errc cause) noexcept {
    EDGEKIT_TRY(s_.store_->set_aside_publish(packet_id));
    ++summary.publishes_set_aside;
    UnrestorableRecord u;
    u.kind = StoredRecordKind::Publish;
    u.packet_id = packet_id;
    u.cause = cause;
    if (observer_ != nullptr) observer_->on_unrestorable(u);
    return {};
  }

  Session& s_;
  RestoreObserver* observer_;
};

Result<RestoreSummary> Session::restore(RestoreObserver* observer) noexcept {
  if (phase_ != Phase::Disconnected) return fail(Errc::AlreadyConnected);
  if (store_ == nullptr) return fail(Errc::InvalidArgument);
  if (records_in_use() != 0) return fail(Errc::ProtocolError);
  for (std::uint16_t id : storage_.incoming_qos2) {
    if (id != 0) return fail(Errc::ProtocolError);
  }
  SessionRestorer restorer(*this, observer);
  auto loaded = store_->load(restorer);
  if (loaded && restorer.over_capacity != 0) loaded = fail(Errc::SessionStateFull);
  if (!loaded) {
    // Leave a clean session behind rather than half a restore, and one that will not connect:
    // its publishes would take the stored packet ids and replace the stored messages.
    for (OutgoingRecord& r : storage_.outgoing) r = OutgoingRecord{};
    std::fill(storage_.incoming_qos2.begin(), storage_.incoming_qos2.end(), std::uint16_t{0});
    restore_error_ = loaded.error();
    if (storage_.incoming_qos2_set != nullptr) *storage_.incoming_qos2_set = IncomingQoS2Set{};
    return fail(loaded.error());
  }
  restore_error_ = Errc::Ok;
  return restorer.summary;
}

}  // namespace edgekit::mqtt
