// The pure MQTT client session. See session.hpp for the contract.
#include "edgekit/mqtt/session.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "edgekit/mqtt/codec.hpp"
#include "../property_access.hpp"
#include "../switches.hpp"

namespace edgekit::mqtt {

namespace {

constexpr std::uint32_t kSessionNeverExpires = 0xFFFFFFFF;

bool is_publish_state(OutgoingState s) noexcept {
  return s == OutgoingState::AwaitPubAck || s == OutgoingState::AwaitPubRec ||
         s == OutgoingState::AwaitPubComp;
}

bool version_enabled(Version v) noexcept {
  switch (v) {
    case Version::V311: return EDGEKIT_MQTT_ENABLE_V311 != 0;
    case Version::V5: return EDGEKIT_MQTT_ENABLE_V5 != 0;
  }
  return false;
}

// Every place that frees a record calls this one function: a record holds a whole Publish, and
// building the empty record inline at each place costs more flash than the call (code size).
// Resets a trivially copyable value whose default state is all zero bytes (records, packets,
// properties: every default is 0, false, empty or a 0-valued enumerator) in place: assigning a
// value-initialised temporary instead puts a whole Publish on the stack and copies it.
template <class T>
void zero(T& v) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  std::memset(static_cast<void*>(&v), 0, sizeof v);
}

[[gnu::noinline]] void clear_record(OutgoingRecord& r) noexcept { zero(r); }

// Every element of `s` zero, in one memset (the records and id arrays are plain bytes).
template <class T>
void zero_all(std::span<T> s) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  if (!s.empty()) std::memset(static_cast<void*>(s.data()), 0, s.size_bytes());
}

// The optional packet-id set of inbound QoS 2 (hosts): one bit per id. Sets the id's bit to
// `on` and returns what it was (a pure test writes back what it read). One out-of-line function
// for every use: device images that never use the set pay the least flash for it.
[[gnu::noinline]] bool set_update(IncomingQoS2Set& set, std::uint16_t id, bool on) noexcept {
  std::uint64_t& word = set.words[id >> 6];
  const std::uint64_t bit = std::uint64_t{1} << (id & 63U);
  const bool was = (word & bit) != 0;
  word = on ? (word | bit) : (word & ~bit);
  return was;
}

// Empties the set, when there is one (constructor, session discarded).
[[gnu::noinline]] void clear_set(IncomingQoS2Set* set) noexcept {
  if (switches::kQoS2 && set != nullptr) *set = IncomingQoS2Set{};
}

// A byte loop rather than memcmp, which would be the only reason for a device image to link
// it from libc (topics are short).
[[maybe_unused]] bool same_chars(const char* a, std::string_view b) noexcept {
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

ReasonCode first_failure(ReasonCodes codes) noexcept {
  for (ReasonCode rc : codes) {
    if (is_error(rc)) return rc;
  }
  return ReasonCode::Success;
}

}  // namespace

Packet Reply::to_packet() const noexcept {
  switch (type) {
    case PacketType::PubRec: return PubRec{packet_id, reason_code, {}};
    case PacketType::PubRel: return PubRel{packet_id, reason_code, {}};
    case PacketType::PubComp: return PubComp{packet_id, reason_code, {}};
    default: return PubAck{packet_id, reason_code, {}};
  }
}

Session::Session(SessionStorage storage, SessionStore* store, SessionConfig config) noexcept
    : storage_(storage), store_(store), config_(config) {
  // All records free, then what discarding a session and ending a connection clear (the rest
  // of those two is a no-op on free records and initialised members): one copy of the code.
  zero_all(storage_.outgoing);
  (void)discard_session();
  reset_connection_state();
}

// --- Helpers -------------------------------------------------------------------------------------

std::string_view Session::client_id() const noexcept {
  return {storage_.client_id.data(), client_id_length_};
}

Result<void> Session::set_client_id(std::string_view id) noexcept {
  if (storage_.client_id.empty()) {
    // The caller chose not to keep a client id: nothing to remember.
    client_id_length_ = 0;
    return {};
  }
  if (id.size() > storage_.client_id.size() || id.size() > 65535) return fail(Errc::BufferTooSmall);
  if (id.data() != storage_.client_id.data()) {
    std::memmove(storage_.client_id.data(), id.data(), id.size());
  }
  client_id_length_ = static_cast<std::uint16_t>(id.size());
  return {};
}

OutgoingRecord* Session::find_record(std::uint16_t packet_id) noexcept {
  for (OutgoingRecord& r : storage_.outgoing) {
    if (r.state != OutgoingState::Free && r.packet_id == packet_id) return &r;
  }
  return nullptr;
}

OutgoingRecord* Session::free_record() noexcept {
  for (OutgoingRecord& r : storage_.outgoing) {
    if (r.state == OutgoingState::Free) return &r;
  }
  return nullptr;
}

std::ptrdiff_t Session::free_incoming_slot() noexcept {
  auto& ids = storage_.incoming_qos2;
  for (std::size_t i = incoming_carried_; i < ids.size(); ++i) {
    if (ids[i] == 0) return static_cast<std::ptrdiff_t>(i);
  }
  // Only released carried-over slots are free: shrink the carried-over region by one so that
  // [0, incoming_carried_) keeps holding carried-over ids only.
  for (std::size_t i = 0; i < incoming_carried_; ++i) {
    if (ids[i] != 0) continue;
    const std::size_t last = --incoming_carried_;
    ids[i] = ids[last];
    ids[last] = 0;
    return static_cast<std::ptrdiff_t>(last);
  }
  return -1;
}

std::ptrdiff_t Session::find_incoming(std::uint16_t packet_id) const noexcept {
  for (std::size_t i = 0; i < storage_.incoming_qos2.size(); ++i) {
    if (storage_.incoming_qos2[i] == packet_id) return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

Result<std::uint16_t> Session::allocate_packet_id() noexcept {
  // Ids in use are those of outgoing records; inbound ids are the server's own number space.
  // At most records + 1 candidates are tried, so this terminates quickly.
  for (std::uint32_t tries = 0; tries < 65535; ++tries) {
    const std::uint16_t id = next_packet_id_;
    next_packet_id_ = next_packet_id_ == 65535 ? 1 : static_cast<std::uint16_t>(next_packet_id_ + 1);
    if (find_record(id) == nullptr) return id;  // never 0 [MQTT-2.2.1-3]
  }
  return fail(Errc::NoPacketIdAvailable);
}

std::size_t Session::publishes_in_flight() const noexcept {
  std::size_t n = 0;
  for (const OutgoingRecord& r : storage_.outgoing) {
    if (is_publish_state(r.state) && !r.lost) ++n;
  }
  return n;
}

std::size_t Session::records_in_use() const noexcept {
  std::size_t n = 0;
  for (const OutgoingRecord& r : storage_.outgoing) n += r.state != OutgoingState::Free;
  return n;
}

std::size_t Session::pending_resends() const noexcept {
  std::size_t n = 0;
  for (const OutgoingRecord& r : storage_.outgoing) n += r.state != OutgoingState::Free && r.resend;
  return n;
}

std::size_t Session::pending_lost() const noexcept {
  std::size_t n = 0;
  for (const OutgoingRecord& r : storage_.outgoing) n += r.state != OutgoingState::Free && r.lost;
  return n;
}

Errc Session::persist_meta() noexcept {
  if (store_ == nullptr) return Errc::Ok;
  SessionMeta meta;
  meta.version = version_;
  meta.client_id = client_id();
  meta.session_expiry_interval = session_expiry_;
  auto r = store_->save_meta(meta);
  return r ? Errc::Ok : Errc::PersistenceFailed;
}

void Session::reset_connection_state() noexcept {
  // Topic aliases, flow-control quotas and keep-alive belong to one network connection
  // [MQTT-3.3.2-7].
  zero_all(storage_.inbound_aliases.lengths);
  zero_all(storage_.outbound_aliases.lengths);
  ping_outstanding_ = false;
  server_receive_max_ = 65535;
  server_max_packet_ = kMaxPacketSize;
  server_alias_max_ = 0;
  server_max_qos_ = QoS::ExactlyOnce;
  retain_available_ = true;
}

std::size_t Session::discard_session() noexcept {
  std::size_t lost = 0;
  for (OutgoingRecord& r : storage_.outgoing) {
    if (r.state == OutgoingState::Free) continue;
    r.resend = false;
    if (!r.lost) {
      r.lost = true;
      ++lost;
    }
  }
  zero_all(storage_.incoming_qos2);
  clear_set(storage_.incoming_qos2_set);
  incoming_carried_ = 0;
  return lost;
}

void Session::end_connection(bool session_ends) noexcept {
  phase_ = Phase::Disconnected;
  ping_outstanding_ = false;
  // SUBSCRIBE / UNSUBSCRIBE are not resent on a new connection: whoever asked must hear that
  // they never completed.
  for (OutgoingRecord& r : storage_.outgoing) {
    if (r.state == OutgoingState::AwaitSubAck || r.state == OutgoingState::AwaitUnsubAck) {
      r.lost = true;
    }
  }
  if (session_ends) {
    (void)discard_session();
    if (store_ != nullptr) (void)store_->clear_session();
  }
}

// --- Connection ----------------------------------------------------------------------------------

Result<void> Session::prepare_connect(Connect& connect) noexcept {
  if (phase_ != Phase::Disconnected) return fail(Errc::AlreadyConnected);
  // A store whose session could not be restored must not be written over by this one.
  if (restore_error_ != Errc::Ok) return fail(restore_error_);
  if (!version_enabled(connect.version)) return fail(Errc::ProtocolVersionDisabled);

  if (connect.client_id.empty()) {
    if (client_id_length_ > 0) connect.client_id = client_id();
  } else {
    EDGEKIT_TRY(set_client_id(connect.client_id));
  }

  version_ = connect.version;
  clean_start_ = connect.clean_start;
  requested_keep_alive_ = connect.keep_alive;
  if (switches::is_v5(version_)) {
#if EDGEKIT_MQTT_ENABLE_V5
    const std::size_t incoming_capacity =
        switches::kQoS2 && storage_.incoming_qos2_set != nullptr ? 65535
                                                                 : storage_.incoming_qos2.size();
    connect_session_expiry_ = connect.properties.session_expiry_interval().value_or(0);
    // Announce only what the storage can hold, so a conforming server never overruns it
    // [MQTT-3.3.4-9].
    if (incoming_capacity > 0) {
      const std::size_t cap = std::min<std::size_t>(incoming_capacity, 65535);
      const std::uint16_t rm = static_cast<std::uint16_t>(
          std::min<std::size_t>(connect.properties.receive_maximum().value_or(65535), cap));
      connect.properties.set_receive_maximum(rm);
    }
    const std::size_t slots = std::min<std::size_t>(storage_.inbound_aliases.slots(), 65535);
    const std::uint16_t tam = static_cast<std::uint16_t>(
        std::min<std::size_t>(connect.properties.topic_alias_maximum().value_or(slots), slots));
    if (tam > 0) {
      connect.properties.set_topic_alias_maximum(tam);
    } else {
      connect.properties.clear_topic_alias_maximum();  // 0 is the default: no inbound aliases
    }
    inbound_alias_max_ = tam;
#endif
  } else {
    // 3.1.1: a clean session lasts as long as the connection; otherwise it never expires.
    connect_session_expiry_ = connect.clean_start ? 0 : kSessionNeverExpires;
    inbound_alias_max_ = 0;
  }
  session_expiry_ = connect_session_expiry_;
  keep_alive_ = requested_keep_alive_;
  reset_connection_state();
  phase_ = Phase::Connecting;
  return {};
}

Result<ConnAckOutcome> Session::on_connack(const ConnAck& connack) noexcept {
  // One Result, built in place and returned on every path (code size).
  Result<ConnAckOutcome> result{std::in_place};
  Errc error = Errc::Ok;
  if (phase_ != Phase::Connecting) {
    error = Errc::ProtocolError;
  } else if (is_error(connack.reason_code)) {
    error = Errc::ConnectionRefused;
  } else if (clean_start_ && connack.session_present) {
    // A server must not report a session after Clean Start [MQTT-3.2.2-2].
    error = Errc::ProtocolError;
  }
  if (error != Errc::Ok) {
    if (phase_ == Phase::Connecting) phase_ = Phase::Disconnected;
    result = fail(error);
    return result;
  }
  ConnAckOutcome& out = *result;
  out.session_present = connack.session_present;
#if EDGEKIT_MQTT_ENABLE_V5
  if (switches::is_v5(version_)) {
    const Properties& p = connack.properties;
    server_receive_max_ = p.receive_maximum().value_or(65535);
    if (server_receive_max_ == 0) server_receive_max_ = 65535;  // 0 is malformed; codec rejects
    server_max_packet_ = p.maximum_packet_size().value_or(kMaxPacketSize);
    server_alias_max_ = p.topic_alias_maximum().value_or(0);
    server_max_qos_ = p.maximum_qos().value_or(QoS::ExactlyOnce);
    retain_available_ = p.retain_available().value_or(true);
    // Server Keep Alive replaces the client's value [MQTT-3.2.2-21].
    keep_alive_ = p.server_keep_alive().value_or(requested_keep_alive_);
    session_expiry_ = p.session_expiry_interval().value_or(connect_session_expiry_);
    if (p.has(Properties::kAssignedClientIdentifier)) {
      const auto id = detail::PropertyAccess::assigned_client_identifier(p);
      if (!set_client_id(id)) out.warning = Errc::BufferTooSmall;
    }
  }
#endif
  phase_ = Phase::Connected;
  ping_outstanding_ = false;

  if (connack.session_present) {
    // Inbound QoS 2 ids still awaiting PUBREL come from earlier connections: move them to the
    // front and remember how many, so that they can be told apart from this connection's.
    std::size_t carried = 0;
    for (std::uint16_t& id : storage_.incoming_qos2) {
      if (id != 0) std::swap(id, storage_.incoming_qos2[carried++]);
    }
    incoming_carried_ = carried;
    // Resume: every unacknowledged PUBLISH / PUBREL goes again [MQTT-4.4.0-1].
    for (OutgoingRecord& r : storage_.outgoing) {
      if (is_publish_state(r.state) && !r.lost) {
        r.resend = true;
        ++out.resend_count;
      }
    }
  } else {
    // The server has no session: what was in flight is gone. Report it, never drop it silently.
    out.lost_count = discard_session();
    if (store_ != nullptr && !store_->clear_session()) out.warning = Errc::PersistenceFailed;
  }
  if (const Errc e = persist_meta(); e != Errc::Ok) out.warning = e;
  return result;
}

OutgoingRecord* Session::find_resend() noexcept {
  // PUBLISH and PUBREL resends each keep their original order [MQTT-4.6.0-1] [MQTT-4.6.0-3];
  // between the two kinds the spec sets no order, and the oldest goes first.
  //
  // Flow control holds for resends too: never more than the server's Receive Maximum QoS 1/2
  // PUBLISH packets unacknowledged on this connection [MQTT-4.9.0-2]. A QoS 2 message whose
  // PUBREC came already counts (the server holds it until PUBCOMP) whether its PUBREL has been
  // resent or not, so a PUBREL never waits for quota: waiting for it could block the very
  // PUBCOMP that frees the quota. A PUBLISH resend waits until an acknowledgement frees a slot;
  // the driver asks again after every completion.
  OutgoingRecord* publish = nullptr;
  OutgoingRecord* pubrel = nullptr;
  std::size_t counted = 0;
  for (OutgoingRecord& r : storage_.outgoing) {
    if (!is_publish_state(r.state) || r.lost) continue;
    const bool is_pubrel = r.state == OutgoingState::AwaitPubComp;
    if (!r.resend || is_pubrel) ++counted;
    if (!r.resend) continue;
    OutgoingRecord*& best = is_pubrel ? pubrel : publish;
    if (best == nullptr || r.sequence < best->sequence) best = &r;
  }
  if (publish != nullptr && counted >= server_receive_max_) publish = nullptr;
  OutgoingRecord* best = publish;
  if (best == nullptr || (pubrel != nullptr && pubrel->sequence < best->sequence)) best = pubrel;
  return best;
}

void Session::resend_of(const OutgoingRecord& record, Resend& out) const noexcept {
  const OutgoingRecord* best = &record;
  if (best->state == OutgoingState::AwaitPubComp) {
    out.type = PacketType::PubRel;
    zero(out.pubrel);
    out.pubrel.packet_id = best->packet_id;
  } else {
    out.type = PacketType::Publish;
    out.publish = best->publish;
    out.publish.dup = true;  // [MQTT-3.3.1-1]
#if EDGEKIT_MQTT_ENABLE_V5
    out.publish.properties.clear_topic_alias();
    // The record may come from another protocol version than this connection's: a session
    // resumed over 3.1.1 after MQTT 5 (a broker may keep it), or a stored record whose version
    // differs from the stored meta. 3.1.1 has no properties, so they cannot go along; without
    // this the resend would be a packet the codec refuses (found by fuzz_store).
    if (version_ == Version::V311) zero(out.publish.properties);
#endif
  }
}

std::optional<Resend> Session::next_resend() noexcept {
  Resend out;
  if (!next_resend(out, true)) return std::nullopt;
  return out;
}

bool Session::next_resend(Resend& out, bool take) noexcept {
  OutgoingRecord* best = find_resend();
  if (best == nullptr) return false;
  if (take) best->resend = false;
  resend_of(*best, out);  // sets `type` and the member it names
  return true;
}

std::optional<LostOperation> Session::next_lost() noexcept {
  LostOperation out;
  if (!next_lost(out)) return std::nullopt;
  return out;
}

bool Session::next_lost(LostOperation& out) noexcept {
  OutgoingRecord* best = nullptr;
  for (OutgoingRecord& r : storage_.outgoing) {
    if (r.state == OutgoingState::Free || !r.lost) continue;
    if (best == nullptr || r.sequence < best->sequence) best = &r;
  }
  if (best == nullptr) return false;
  zero(out);
  out.packet_id = best->packet_id;
  switch (best->state) {
    case OutgoingState::AwaitSubAck: out.kind = OperationKind::Subscribe; break;
    case OutgoingState::AwaitUnsubAck: out.kind = OperationKind::Unsubscribe; break;
    default:
      out.kind = OperationKind::Publish;
      out.publish = best->publish;
      out.pubrec_received = best->state == OutgoingState::AwaitPubComp;
      if (store_ != nullptr) (void)store_->remove_publish(best->packet_id);
      break;
  }
  clear_record(*best);
  return true;
}

Result<void> Session::end_with_disconnect(const Properties& properties) noexcept {
  if (phase_ != Phase::Connected) return fail(Errc::NotConnected);
#if EDGEKIT_MQTT_ENABLE_V5
  if (switches::is_v5(version_) && properties.has(Properties::kSessionExpiryInterval)) {
    const std::uint32_t expiry = detail::PropertyAccess::session_expiry_interval(properties);
    // A session that was to end with the connection cannot be revived here [MQTT-3.14.2-2].
    if (connect_session_expiry_ == 0 && expiry != 0) return fail(Errc::ProtocolError);
    session_expiry_ = expiry;
  }
#else
  (void)properties;
#endif
  const bool session_ends = switches::is_v5(version_) ? session_expiry_ == 0 : clean_start_;
  end_connection(session_ends);
  if (!session_ends) (void)persist_meta();
  return {};
}

void Session::on_connection_lost() noexcept {
  // The session outlives the connection (unless its expiry is 0, in which case the next
  // CONNACK says session_present = 0 and the records are reported lost then).
  end_connection(false);
}

// --- Outgoing ------------------------------------------------------------------------------------

void Session::apply_outbound_alias(Publish& publish, std::size_t encoded) noexcept {
#if EDGEKIT_MQTT_ENABLE_V5
  if (!switches::is_v5(version_)) return;
  TopicAliasStorage& t = storage_.outbound_aliases;
  const std::size_t limit = std::min<std::size_t>(t.slots(), server_alias_max_);
  if (limit == 0) return;
  const std::size_t slot_len = t.slot_length();
  std::size_t free_slot = limit;
  for (std::size_t i = 0; i < limit; ++i) {
    const std::uint16_t len = t.lengths[i];
    if (len == 0) {
      if (free_slot == limit) free_slot = i;
      continue;
    }
    if (len == publish.topic.size() && same_chars(&t.chars[i * slot_len], publish.topic)) {
      // Known mapping: the topic may be left out [MQTT-3.3.2-12 / 3.3.2.3.4].
      publish.topic = {};
      publish.properties.set_topic_alias(static_cast<std::uint16_t>(i + 1));
      return;
    }
  }
  // A new mapping costs 3 bytes (property id + 2) on this send; only take it if it still fits
  // the server's Maximum Packet Size. The property length prefix may grow by one byte too.
  if (free_slot == limit || publish.topic.size() > slot_len || encoded + 4 > server_max_packet_) {
    return;
  }
  std::memcpy(&t.chars[free_slot * slot_len], publish.topic.data(), publish.topic.size());
  t.lengths[free_slot] = static_cast<std::uint16_t>(publish.topic.size());
  publish.properties.set_topic_alias(static_cast<std::uint16_t>(free_slot + 1));
#else
  (void)publish;
  (void)encoded;
#endif
}

Result<void> Session::begin_publish(Publish& publish) noexcept {
  return begin_publish(publish, 0);
}

Result<void> Session::begin_publish(Publish& publish, std::size_t encoded) noexcept {
  if (phase_ != Phase::Connected) return fail(Errc::NotConnected);
  if (detail::has_topic_alias(publish.properties) || publish.topic.empty()) {
    return fail(Errc::InvalidArgument);
  }
  if (publish.qos == QoS::ExactlyOnce && !EDGEKIT_MQTT_ENABLE_QOS2) return fail(Errc::QoS2Disabled);
  if (static_cast<std::uint8_t>(publish.qos) > static_cast<std::uint8_t>(server_max_qos_)) {
    return fail(Errc::QoSNotSupported);  // [MQTT-3.2.2-11]
  }
  if (publish.retain && !retain_available_) return fail(Errc::RetainNotSupported);  // [MQTT-3.2.2-14]
  publish.dup = false;

  OutgoingRecord* rec = nullptr;
  if (publish.qos != QoS::AtMostOnce) {
    // One pass over the records (not one per question: records are large, and this runs for
    // every publish): publishes in flight, the first free record, and whether the next packet id
    // is still in use.
    std::size_t in_flight = 0;
    bool candidate_used = false;
    bool resend_pending = false;
    const std::uint16_t candidate = next_packet_id_;
    for (OutgoingRecord& r : storage_.outgoing) {
      if (r.state == OutgoingState::Free) {
        if (rec == nullptr) rec = &r;
        continue;
      }
      if (is_publish_state(r.state) && !r.lost) {
        ++in_flight;
        resend_pending = resend_pending || r.resend;
      }
      if (r.packet_id == candidate) candidate_used = true;
    }
    // Flow control: at most Receive Maximum QoS 1/2 publishes unacknowledged [MQTT-4.9.0-2].
    // Resends held back by it go first: a new message never overtakes an older one.
    if (in_flight >= server_receive_max_ || resend_pending) {
      return fail(Errc::ReceiveMaximumExceeded);
    }
    if (rec == nullptr) return fail(Errc::SessionStateFull);
    if (!candidate_used) {
      next_packet_id_ = candidate == 65535 ? 1 : static_cast<std::uint16_t>(candidate + 1);
      publish.packet_id = candidate;  // never 0 [MQTT-2.2.1-3]
    } else {
      auto id = allocate_packet_id();
      if (!id) return fail(id.error());
      publish.packet_id = *id;
    }
  } else {
    publish.packet_id = 0;
  }

  // 0: not measured by the caller (the size does not depend on the packet id's value).
  Result<std::size_t> size = encoded;
  if (encoded == 0) size = encoded_size(publish, version_);
  if (!size) return fail(size.error());
  // [MQTT-3.1.2-24]: never send a packet larger than the server's Maximum Packet Size.
  if (*size > server_max_packet_) return fail(Errc::PacketTooLarge);

  if (rec != nullptr && !storage_.message_copies.empty()) {
    // The session's own copy: [topic][payload] in the record's slot; the publish (and so the
    // first send, the record and every resend) points at it.
    const std::size_t slot = storage_.message_copies.size() / storage_.outgoing.size();
    const std::size_t topic = publish.topic.size();
    const std::size_t payload = publish.payload.size();
    if (topic + payload > slot) return fail(Errc::BufferTooSmall);
    std::byte* area = storage_.message_copies.data() +
                      static_cast<std::size_t>(rec - storage_.outgoing.data()) * slot;
    std::memcpy(area, publish.topic.data(), topic);
    if (payload > 0) std::memcpy(area + topic, publish.payload.data(), payload);
    publish.topic = std::string_view(reinterpret_cast<const char*>(area), topic);
    publish.payload = Bytes(area + topic, payload);
  }
  if (rec != nullptr) {
    const std::uint32_t seq = next_sequence_++;
    if (store_ != nullptr) {
      auto saved = store_->save_publish(seq, publish, version_);
      if (!saved) return fail(saved.error());
    }
    rec->state = publish.qos == QoS::AtLeastOnce ? OutgoingState::AwaitPubAck
                                                 : OutgoingState::AwaitPubRec;
    rec->resend = false;
    rec->lost = false;
    rec->packet_id = publish.packet_id;
    rec->sequence = seq;
    rec->publish = publish;  // full topic, no alias: what a resend needs
  }
  apply_outbound_alias(publish, *size);
  return {};
}

// SUBSCRIBE and UNSUBSCRIBE: one non-template path for both (code size); `size` is the typed
// encoded_size of `packet`, called once the id is assigned, or null when the driver measured
// the request already (`encoded`).
Result<void> Session::begin_request(OutgoingState state, std::uint16_t& packet_id,
                                    Result<std::size_t> (*size)(const void*, Version) noexcept,
                                    const void* packet, std::size_t encoded) noexcept {
  if (phase_ != Phase::Connected) return fail(Errc::NotConnected);
  OutgoingRecord* rec = free_record();
  if (rec == nullptr) return fail(Errc::SessionStateFull);
  auto id = allocate_packet_id();
  if (!id) return fail(id.error());
  packet_id = *id;
  if (size != nullptr) {
    auto n = size(packet, version_);
    if (!n) return fail(n.error());
    encoded = *n;
  }
  if (encoded > server_max_packet_) return fail(Errc::PacketTooLarge);
  clear_record(*rec);
  rec->state = state;
  rec->packet_id = packet_id;
  rec->sequence = next_sequence_++;
  return {};
}

Result<void> Session::begin_subscribe(Subscribe& subscribe) noexcept {
  return begin_request(
      OutgoingState::AwaitSubAck, subscribe.packet_id,
      [](const void* p, Version v) noexcept {
        return encoded_size(*static_cast<const Subscribe*>(p), v);
      },
      &subscribe);
}

Result<void> Session::begin_unsubscribe(Unsubscribe& unsubscribe) noexcept {
  return begin_request(
      OutgoingState::AwaitUnsubAck, unsubscribe.packet_id,
      [](const void* p, Version v) noexcept {
        return encoded_size(*static_cast<const Unsubscribe*>(p), v);
      },
      &unsubscribe);
}

void Session::on_sent(Instant now) noexcept {
  last_sent_ = now;
}

// --- Incoming ------------------------------------------------------------------------------------

void Session::complete(OutgoingRecord& r, ReasonCode rc, Inbound& in) noexcept {
  Completion c;
  c.packet_id = r.packet_id;
  c.reason_code = rc;
  switch (r.state) {
    case OutgoingState::AwaitSubAck: c.kind = OperationKind::Subscribe; break;
    case OutgoingState::AwaitUnsubAck: c.kind = OperationKind::Unsubscribe; break;
    default:
      c.kind = OperationKind::Publish;
      c.qos = r.publish.qos;
      if (store_ != nullptr && !store_->remove_publish(r.packet_id)) {
        in.warning = Errc::PersistenceFailed;
      }
      break;
  }
  clear_record(r);
  in.completion = c;
}

Result<void> Session::resolve_inbound_alias(Publish& publish) noexcept {
#if !EDGEKIT_MQTT_ENABLE_V5
  (void)publish;
  return {};  // only called for MQTT 5
#else
  if (!publish.properties.has(Properties::kTopicAlias)) {
    // A zero-length topic needs an alias [MQTT-3.3.2-1 / 3.3.4].
    if (publish.topic.empty()) return fail(Errc::ProtocolError);
    return {};
  }
  const std::uint16_t alias = detail::PropertyAccess::topic_alias(publish.properties);
  // [MQTT-3.3.2-8], [MQTT-3.3.2-9]: 0 and values above what we announced are errors.
  if (alias == 0 || alias > inbound_alias_max_) return fail(Errc::TopicAliasInvalid);
  TopicAliasStorage& t = storage_.inbound_aliases;
  const std::size_t slot_len = t.slot_length();
  char* slot = &t.chars[(alias - 1) * slot_len];
  if (!publish.topic.empty()) {
    // New or replaced mapping. The frame is reused after this call, so the topic is copied.
    if (publish.topic.size() <= slot_len) {
      std::memcpy(slot, publish.topic.data(), publish.topic.size());
      t.lengths[alias - 1] = static_cast<std::uint16_t>(publish.topic.size());
    } else {
      // Longer than our slots: deliverable now, but the mapping cannot be kept; a later use of
      // this alias alone is reported as TopicAliasInvalid.
      t.lengths[alias - 1] = 0;
    }
    return {};
  }
  if (t.lengths[alias - 1] == 0) return fail(Errc::TopicAliasInvalid);  // unknown alias
  publish.topic = std::string_view(slot, t.lengths[alias - 1]);
  return {};
#endif
}

namespace {
// Sets the reply of a fresh Inbound (none yet): the optional engaged and its fields stored, one
// copy of it for the five replies, without the optional's assignment from a temporary (code
// size).
[[gnu::noinline]] void set_reply(Inbound& in, PacketType type, std::uint16_t id,
                                 ReasonCode rc) noexcept {
  Reply& r = in.reply.emplace();
  r.type = type;
  r.packet_id = id;
  r.reason_code = rc;
}
}  // namespace

Result<Inbound> Session::on_publish(Publish& publish) noexcept {
  // One Result, built in place and returned on every path (code size).
  Result<Inbound> out{std::in_place};
  Inbound& in = *out;
  Errc error = Errc::Ok;
  if (phase_ != Phase::Connected) {
    error = Errc::NotConnected;
  } else if (switches::is_v5(version_)) {
    if (auto r = resolve_inbound_alias(publish); !r) error = r.error();
  } else if (publish.topic.empty()) {
    error = Errc::ProtocolError;
  }
  if (error != Errc::Ok) {
    out = fail(error);
    return out;
  }
  switch (publish.qos) {
    case QoS::AtMostOnce:
      in.deliver = true;
      break;
    case QoS::AtLeastOnce:
      in.deliver = true;
      set_reply(in, PacketType::PubAck, publish.packet_id, ReasonCode::Success);
      break;
    case QoS::ExactlyOnce: {
      set_reply(in, PacketType::PubRec, publish.packet_id, ReasonCode::Success);
      // A build without QoS 2 leaves this out (the set is for QoS 2 only).
      if (IncomingQoS2Set* set = switches::kQoS2 ? storage_.incoming_qos2_set : nullptr) {
        // Still awaiting PUBREL and marked as a resend: do not deliver twice [MQTT-4.3.3-9].
        // Held but DUP = 0 is no resend [MQTT-3.3.1-1]: the server reused the id, so it has
        // finished or forgotten the earlier flow (e.g. lost across its restart) and this is a
        // new message; treating it as a duplicate would lose it silently.
        const bool held = set_update(*set, publish.packet_id, true);
        if (held && publish.dup) break;
        // Stored before PUBREC goes out, so that a reboot cannot lead to a second delivery.
        if (!held && store_ != nullptr && !store_->save_incoming_qos2(publish.packet_id)) {
          (void)set_update(*set, publish.packet_id, false);
          out = fail(Errc::PersistenceFailed);
          return out;
        }
        in.deliver = true;
        break;
      }
      if (find_incoming(publish.packet_id) >= 0) {
        // Still awaiting PUBREL: the server resent it; do not deliver twice [MQTT-4.3.3-9].
        break;
      }
      // Ids still awaiting PUBREL from an earlier connection do not count against the Receive
      // Maximum of this one: the server's send quota starts afresh on each connection (MQTT 5
      // spec 4.9), and brokers (Mosquitto 2) send that many new QoS 2 messages right after a
      // resume, before the PUBRELs. So only a full storage is refused. (Announcing a Receive
      // Maximum below the storage size leaves room for the carried-over ids.)
      std::ptrdiff_t slot = free_incoming_slot();
      if (slot < 0 && incoming_carried_ > 0) {
        // Full, with ids carried over from an earlier connection. The server resends PUBLISH
        // and PUBREL packets in their original order before anything new [MQTT-4.4.0-1]
        // [MQTT-4.6.0-1], so a carried-over id whose PUBREL has not come by the time a new
        // message needs its slot is one the server no longer holds (Mosquitto, for one, can
        // lose them across its own restart). Keeping it would refuse every new QoS 2 message
        // forever; forgetting it costs nothing but an unknown-id PUBCOMP if the PUBREL ever comes.
        slot = static_cast<std::ptrdiff_t>(--incoming_carried_);
        const std::uint16_t stale = storage_.incoming_qos2[static_cast<std::size_t>(slot)];
        storage_.incoming_qos2[static_cast<std::size_t>(slot)] = 0;
        if (store_ != nullptr && !store_->remove_incoming_qos2(stale)) {
          out = fail(Errc::PersistenceFailed);
          return out;
        }
      }
      if (slot < 0) {
        // In MQTT 5 with storage, the server was told our Receive Maximum and broke it; otherwise
        // the caller's storage is simply too small for what the server may send.
        const bool announced = switches::is_v5(version_) && !storage_.incoming_qos2.empty();
        out = fail(announced ? Errc::ReceiveMaximumExceeded : Errc::SessionStateFull);
        return out;
      }
      // Stored before PUBREC goes out, so that a reboot cannot lead to a second delivery.
      if (store_ != nullptr && !store_->save_incoming_qos2(publish.packet_id)) {
        out = fail(Errc::PersistenceFailed);
        return out;
      }
      storage_.incoming_qos2[static_cast<std::size_t>(slot)] = publish.packet_id;
      in.deliver = true;
      break;
    }
  }
  return out;
}

// One path for the four acks that end an operation (code size).
Result<Inbound> Session::on_final_ack(std::uint16_t id, OutgoingState expected,
                                      ReasonCode rc) noexcept {
  // One Result, built in place and returned on every path (code size).
  Result<Inbound> out{std::in_place};
  OutgoingRecord* r = find_record(id);
  if (r == nullptr || r->lost) {
    out = fail(Errc::UnknownPacketId);
  } else if (r->state != expected) {
    out = fail(Errc::ProtocolError);
  } else {
    complete(*r, rc, *out);
  }
  return out;
}

Result<Inbound> Session::on_puback(const PubAck& ack) noexcept {
  return on_final_ack(ack.packet_id, OutgoingState::AwaitPubAck,
                      switches::is_v5(version_) ? ack.reason_code : ReasonCode::Success);
}

Result<Inbound> Session::on_pubrec(const PubRec& ack) noexcept {
  const bool v5 = switches::is_v5(version_);
  OutgoingRecord* r = find_record(ack.packet_id);
  // One Result, returned on every path (built in place: code size).
  Result<Inbound> out{std::in_place};
  Inbound& in = *out;
  ReasonCode reply = ReasonCode::Success;
  if (r == nullptr || r->lost) {
    // Answer anyway so that the server can finish its side of the flow.
    if (v5) reply = ReasonCode::PacketIdentifierNotFound;
  } else if (r->state == OutgoingState::AwaitPubComp) {
    // A repeated PUBREC: our PUBREL may have been lost; send it again.
  } else if (r->state != OutgoingState::AwaitPubRec) {
    out = fail(Errc::ProtocolError);
    return out;
  } else if (v5 && is_error(ack.reason_code)) {
    // A failing PUBREC ends the QoS 2 flow; no PUBREL [MQTT-4.3.3].
    complete(*r, ack.reason_code, in);
    return out;
  } else {
    r->state = OutgoingState::AwaitPubComp;
    // PUBRELs are resent in the order their PUBRECs arrived [MQTT-4.6.0-3].
    r->sequence = next_sequence_++;
    if (store_ != nullptr && !store_->mark_publish_released(r->packet_id, r->sequence)) {
      in.warning = Errc::PersistenceFailed;
    }
  }
  set_reply(in, PacketType::PubRel, ack.packet_id, reply);
  return out;
}

Result<Inbound> Session::on_pubrel(const PubRel& rel) noexcept {
  Result<Inbound> out{std::in_place};
  Inbound& in = *out;
  IncomingQoS2Set* set = switches::kQoS2 ? storage_.incoming_qos2_set : nullptr;
  // With the set, the test also releases the id.
  const std::ptrdiff_t i = set != nullptr ? (set_update(*set, rel.packet_id, false) ? 0 : -1)
                                          : find_incoming(rel.packet_id);
  if (i < 0) {
    set_reply(in, PacketType::PubComp, rel.packet_id,
              switches::is_v5(version_) ? ReasonCode::PacketIdentifierNotFound
                                        : ReasonCode::Success);
    return out;
  }
  if (set == nullptr) storage_.incoming_qos2[static_cast<std::size_t>(i)] = 0;
  if (store_ != nullptr && !store_->remove_incoming_qos2(rel.packet_id)) {
    in.warning = Errc::PersistenceFailed;
  }
  set_reply(in, PacketType::PubComp, rel.packet_id, ReasonCode::Success);
  return out;
}

Result<Inbound> Session::on_pubcomp(const PubComp& ack) noexcept {
  return on_final_ack(ack.packet_id, OutgoingState::AwaitPubComp,
                      switches::is_v5(version_) ? ack.reason_code : ReasonCode::Success);
}

Result<Inbound> Session::on_suback(const SubAck& ack) noexcept {
  return on_final_ack(ack.packet_id, OutgoingState::AwaitSubAck, first_failure(ack.reason_codes));
}

Result<Inbound> Session::on_unsuback(const UnsubAck& ack) noexcept {
  return on_final_ack(ack.packet_id, OutgoingState::AwaitUnsubAck,
                      first_failure(ack.reason_codes));
}

Result<Inbound> Session::on_pingresp() noexcept {
  Result<Inbound> out{std::in_place};
  if (phase_ != Phase::Connected) {
    out = fail(Errc::NotConnected);
  } else {
    ping_outstanding_ = false;
  }
  return out;
}

Result<Inbound> Session::on_disconnect(const Disconnect& disconnect) noexcept {
  Result<Inbound> out{std::in_place};
  if (phase_ != Phase::Connected) {
    out = fail(Errc::NotConnected);
  } else {
    out->server_disconnect = disconnect.reason_code;
    end_connection(false);
  }
  return out;
}

namespace {
// on_packet's CONNACK: the outcome built in the returned Result, one return (code size).
Result<Inbound> connack_inbound(Session& session, const ConnAck& connack) noexcept {
  Result<Inbound> out{std::in_place};
  if (auto r = session.on_connack(connack)) {
    out->connack = *r;
  } else {
    out = fail(r.error());
  }
  return out;
}
}  // namespace

Result<Inbound> Session::on_packet(Packet& packet) noexcept {
  if (auto* p = std::get_if<Publish>(&packet)) return on_publish(*p);
  if (auto* p = std::get_if<PubAck>(&packet)) return on_puback(*p);
  // Without QoS 2 the codec refuses PUBREC/PUBREL/PUBCOMP (QoS2Disabled), so their handlers
  // are left out of the image.
  if constexpr (switches::kQoS2) {
    if (auto* p = std::get_if<PubRec>(&packet)) return on_pubrec(*p);
    if (auto* p = std::get_if<PubRel>(&packet)) return on_pubrel(*p);
    if (auto* p = std::get_if<PubComp>(&packet)) return on_pubcomp(*p);
  }
  if (auto* p = std::get_if<SubAck>(&packet)) return on_suback(*p);
  if (auto* p = std::get_if<UnsubAck>(&packet)) return on_unsuback(*p);
  if (std::get_if<PingResp>(&packet) != nullptr) return on_pingresp();
  if (auto* p = std::get_if<Disconnect>(&packet)) return on_disconnect(*p);
  if (auto* p = std::get_if<ConnAck>(&packet)) return connack_inbound(*this, *p);
  return fail(Errc::ProtocolError);
}

// --- Time ----------------------------------------------------------------------------------------

namespace {
Duration ping_timeout_for(Duration configured, std::uint16_t keep_alive) noexcept {
  if (configured.count() > 0) return configured;
  return Duration{std::int64_t{keep_alive} * 1500};
}
}  // namespace

std::optional<Instant> Session::next_deadline() const noexcept {
  if (phase_ != Phase::Connected || keep_alive_ == 0) return std::nullopt;
  if (ping_outstanding_) return ping_sent_at_ + ping_timeout_for(config_.ping_timeout, keep_alive_);
  return last_sent_ + Duration{std::int64_t{keep_alive_} * 1000};
}

Result<TimerAction> Session::on_timer(Instant now) noexcept {
  // The keep-alive counts from the last packet the client sent [MQTT-3.1.2-23]; next_deadline()
  // says when it or the outstanding ping's timeout runs out.
  const auto due = next_deadline();
  if (!due || now < *due) return TimerAction::None;
  // No PINGRESP in a reasonable time: the connection is dead [MQTT-3.1.2-24 note / 3.12.4].
  if (ping_outstanding_) return fail(Errc::KeepAliveTimeout);
  ping_outstanding_ = true;
  ping_sent_at_ = now;
  return TimerAction::SendPingReq;
}

}  // namespace edgekit::mqtt
