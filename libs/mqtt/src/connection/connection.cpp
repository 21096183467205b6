// The sans-I/O connection engine: the connection rules between the codec, the session and a
// driver that moves bytes and time. Nothing here blocks, allocates or reads a clock.
#include "edgekit/mqtt/connection.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <type_traits>

#include "edgekit/mqtt/codec.hpp"
#include "../codec/request.hpp"
#include "../property_access.hpp"
#include "../switches.hpp"

namespace edgekit::mqtt {

namespace {

// Room kept for the ack an incoming packet may need (PUBACK/PUBREC/PUBREL/PUBCOMP with a reason
// code and no properties: 5 bytes).
constexpr std::size_t kAckRoom = 5;

// PINGREQ (spec 3.12): two fixed bytes.
constexpr std::byte kPingReq[2] = {std::byte{0xC0}, std::byte{0x00}};

// The properties of the decoded packets an event reports them for (the acks that complete an
// operation, and a server DISCONNECT): a few index tests, not a visit over every alternative
// (whose jump table and invokers cost more code than the tests).
const Properties* properties_of(const Packet& p) noexcept {
  if (const auto* a = std::get_if<PubAck>(&p)) return &a->properties;
  if (const auto* a = std::get_if<PubRec>(&p)) return &a->properties;
  if (const auto* a = std::get_if<PubComp>(&p)) return &a->properties;
  if (const auto* a = std::get_if<SubAck>(&p)) return &a->properties;
  if (const auto* a = std::get_if<UnsubAck>(&p)) return &a->properties;
  if (const auto* a = std::get_if<Disconnect>(&p)) return &a->properties;
  return nullptr;
}
ReasonCodes reason_codes_of(const Packet& p) noexcept {
  if (const auto* a = std::get_if<SubAck>(&p)) return a->reason_codes;
  if (const auto* a = std::get_if<UnsubAck>(&p)) return a->reason_codes;
  return {};
}

// The DISCONNECT reason code (MQTT 5) that goes with a fatal local error, if any.
std::optional<ReasonCode> disconnect_reason_for(Errc error) noexcept {
  // Only an MQTT 5 DISCONNECT carries a reason: a 3.1.1-only build has none to look up.
  if constexpr (!switches::kV5) {
    (void)error;
    return std::nullopt;
  }
  // A table scanned in order rather than a switch (code size).
  struct Row {
    Errc error;
    ReasonCode reason;
  };
  static constexpr Row kRows[] = {
      {Errc::PacketTooLarge, ReasonCode::PacketTooLarge},
      {Errc::IncomingPacketTooLarge, ReasonCode::PacketTooLarge},
      {Errc::TopicAliasInvalid, ReasonCode::TopicAliasInvalid},
      {Errc::ReceiveMaximumExceeded, ReasonCode::ReceiveMaximumExceeded},
      {Errc::ProtocolError, ReasonCode::ProtocolError},
      {Errc::UnknownPacketId, ReasonCode::ProtocolError},
      {Errc::ProtocolVersionDisabled, ReasonCode::ProtocolError},
      {Errc::QoS2Disabled, ReasonCode::ProtocolError},
      {Errc::SessionStateFull, ReasonCode::ProtocolError},
      {Errc::NotConnected, ReasonCode::ProtocolError},
      {Errc::PersistenceFailed, ReasonCode::ImplementationSpecificError},
  };
  for (const Row& row : kRows) {
    if (row.error == error) return row.reason;
  }
  // The codec's "malformed input" group (MQTT 5 spec 4.13).
  if (is_malformed(error)) return ReasonCode::MalformedPacket;
  return std::nullopt;
}

}  // namespace

// lost_ and resend_ share storage (see the header): assignment starts the other member's
// lifetime only for trivially copyable types.
static_assert(std::is_trivially_copyable_v<LostOperation> && std::is_trivially_copyable_v<Resend> &&
              std::is_trivially_destructible_v<LostOperation> &&
              std::is_trivially_destructible_v<Resend>);

// Not delegating to the constructor below: a device links only this one, without the branch on
// the caller's queue and the empty span passed through the stack (code size).
Connection::Connection(Session& session, MutableBytes receive_buffer,
                       MutableBytes send_buffer) noexcept
    : session_(&session), rx_(receive_buffer), tx_(send_buffer), unset_() {}

Connection::Connection(Session& session, MutableBytes receive_buffer, MutableBytes send_buffer,
                       std::span<SendSlot> send_queue) noexcept
    : session_(&session),
      rx_(receive_buffer),
      tx_(send_buffer),
      slots_(send_queue.empty() ? nullptr : send_queue.data()),
      unset_(),
      slot_capacity_(send_queue.empty()
                         ? static_cast<std::uint16_t>(kSendQueuePackets)
                         : static_cast<std::uint16_t>(std::min<std::size_t>(send_queue.size(),
                                                                            0xffff))) {}

std::uint16_t Connection::keep_alive_seconds() const noexcept { return keep_alive_s_; }

// --- Send queue ----------------------------------------------------------------------------------

void Connection::clear_output() noexcept {
  acks_last_ = false;
  slot_count_ = 0;
  tx_head_ = tx_tail_ = head_begin_ = 0;
  payload_sent_ = 0;
  queued_ = 0;
}

bool Connection::make_room(std::size_t bytes) noexcept {
  if (slot_count_ == slot_capacity_) return false;
  if (head_begin_ > 0) {
    // Move the queued bytes to the front. Only offsets are kept, so nothing dangles.
    const std::uint32_t shift = head_begin_;
    std::memmove(tx_.data(), tx_.data() + shift, tx_tail_ - shift);
    SendSlot* const slot = slots();
    for (std::size_t i = 0; i < slot_count_; ++i) slot[i].end_ -= shift;
    tx_head_ -= shift;
    tx_tail_ -= shift;
    head_begin_ = 0;
  }
  return tx_.size() - tx_tail_ >= bytes;
}

void Connection::queue_bytes(std::size_t size, Bytes payload) noexcept {
  acks_last_ = false;
  tx_tail_ += static_cast<std::uint32_t>(size);
  SendSlot& slot = slots()[slot_count_++];
  slot.end_ = tx_tail_;
  slot.payload_size_ = static_cast<std::uint32_t>(payload.size());
  slot.payload_ = payload.data();
  const std::size_t total = size + payload.size();
  queued_ += static_cast<std::uint32_t>(total);
  queued_total_ += total;
}

Result<void> Connection::reserve(std::size_t bytes) noexcept {
  if (bytes > tx_.size()) return fail(Errc::BufferTooSmall);
  if (!room_for(bytes)) return fail(Errc::SendQueueFull);
  return {};
}

void Connection::queue_copy(const std::byte* bytes, std::size_t size) noexcept {
  std::memcpy(tx_.data() + tx_tail_, bytes, size);
  queue_bytes(size, {});
}

bool Connection::queue_ack(const Reply& reply) noexcept {
  if (!room_for(kAckRoom)) return false;
  // PUBACK / PUBREC / PUBREL / PUBCOMP as the session asks for it (a valid type, id and reason
  // for this version): written here, not through the codec. No properties; the reason code
  // only in MQTT 5 and only when it is not Success (spec 3.4.2.1 - 3.7.2.1).
  std::byte* const out = tx_.data() + tx_tail_;
  const bool code = switches::is_v5(version_) && reply.reason_code != ReasonCode::Success;
  out[0] = static_cast<std::byte>((static_cast<unsigned>(reply.type) << 4) |
                                  (reply.type == PacketType::PubRel ? 0x02u : 0x00u));
  out[1] = static_cast<std::byte>(code ? 3 : 2);
  out[2] = static_cast<std::byte>(reply.packet_id >> 8);
  out[3] = static_cast<std::byte>(reply.packet_id & 0xff);
  out[4] = static_cast<std::byte>(reply.reason_code);  // counted only with `code`
  const std::uint32_t n = code ? 5u : 4u;
  if (acks_last_) {
    // Acks of a batch share one slot: one view, however many messages a read brought. (Only
    // acks are merged, so a slot still ends on a packet boundary and a publish is still alone
    // in its slot.)
    tx_tail_ += n;
    slots()[slot_count_ - 1u].end_ = tx_tail_;
    queued_ += n;
    queued_total_ += n;
  } else {
    queue_bytes(n, {});
    acks_last_ = true;
  }
  return true;
}

std::size_t Connection::output(std::span<Bytes> out) const noexcept {
  std::size_t n = 0;
  std::uint32_t pos = tx_head_;
  const SendSlot* const slot = slots();
  for (std::size_t i = 0; i < slot_count_ && n < out.size(); ++i) {
    const SendSlot& s = slot[i];
    if (s.end_ > pos) {
      const std::byte* start = tx_.data() + pos;
      // Consecutive packets without a payload are one region of the send buffer: one view.
      if (n > 0 && out[n - 1].data() + out[n - 1].size() == start) {
        out[n - 1] = Bytes(out[n - 1].data(), out[n - 1].size() + (s.end_ - pos));
      } else {
        out[n++] = Bytes(start, s.end_ - pos);
      }
    }
    pos = s.end_;
    const std::uint32_t skip = i == 0 ? payload_sent_ : 0;
    if (s.payload_size_ > skip && n < out.size()) {
      out[n++] = Bytes(s.payload_ + skip, s.payload_size_ - skip);
    }
  }
  return n;
}

std::size_t Connection::output_size() const noexcept { return queued_; }

void Connection::on_written(std::size_t n, Instant now) noexcept {
  if (n == 0) return;
  n = std::min<std::size_t>(n, queued_);
  written_total_ += n;
  if (n == queued_) {
    // Everything queued is out (the usual case: one writev took it all): no slot to walk.
    clear_output();
  } else {
    queued_ -= static_cast<std::uint32_t>(n);
    SendSlot* const slot = slots();
    std::size_t done = 0;  // slots written out completely
    for (;;) {
      const SendSlot& s = slot[done];
      const std::size_t own = std::min<std::size_t>(n, s.end_ - tx_head_);
      tx_head_ += static_cast<std::uint32_t>(own);
      n -= own;
      if (tx_head_ < s.end_) break;
      const std::size_t pay = std::min<std::size_t>(n, s.payload_size_ - payload_sent_);
      payload_sent_ += static_cast<std::uint32_t>(pay);
      n -= pay;
      if (payload_sent_ < s.payload_size_) break;
      head_begin_ = s.end_;
      payload_sent_ = 0;
      ++done;
    }
    // Not all of it was written, so a slot is left: move the rest to the front.
    std::memmove(slot, slot + done, (slot_count_ - done) * sizeof(SendSlot));
    slot_count_ = static_cast<std::uint16_t>(slot_count_ - done);
  }
  // Any control packet restarts the keep-alive interval (spec 3.1.2.10), CONNECT included: the
  // first PINGREQ is due a keep-alive after CONNECT, not after the previous connection's last
  // packet.
  if (open()) {
    session_->on_sent(now);
    // Only a PINGREQ or resends can be waiting for room (a per-write call otherwise); both are
    // due only while connected (pump checks).
    if (ping_due_ || resends_due_) pump(now);
  }
}

bool Connection::unqueue_last(std::uint64_t mark) noexcept {
  if (slot_count_ == 0) return false;
  const std::size_t i = slot_count_ - 1u;
  const SendSlot* const slot = slots();
  const std::uint32_t begin = i == 0 ? head_begin_ : slot[i - 1].end_;
  const std::uint32_t size = (slot[i].end_ - begin) + slot[i].payload_size_;
  // Not that packet, or part of it is on the wire.
  if (queued_total_ - size != mark || queued_ < size || (i == 0 && queued_ != size)) return false;
  --slot_count_;
  acks_last_ = false;
  tx_tail_ = begin;
  queued_ -= size;
  queued_total_ = mark;
  if (slot_count_ == 0) clear_output();
  return true;
}

void Connection::drop_unwritten() noexcept {
  // A packet partly on the wire must be finished, or the stream is cut mid-packet: keep it;
  // drop every packet not yet started.
  if (slot_count_ == 0) return;
  acks_last_ = false;
  if (tx_head_ > head_begin_ || payload_sent_ > 0) {
    const std::uint32_t before = queued_;
    slot_count_ = 1;
    const SendSlot& first = slots()[0];
    tx_tail_ = first.end_;
    queued_ = (first.end_ - tx_head_) + (first.payload_size_ - payload_sent_);
    queued_total_ -= before - queued_;
  } else {
    discard_output();
  }
}

void Connection::discard_output() noexcept {
  // Bytes that will never be written are not counted as queued: queued_total() stays
  // written_total() + output_size().
  queued_total_ -= queued_;
  clear_output();
}

void Connection::pump(Instant now) noexcept {
  // A PINGREQ that found no room when it fell due goes first.
  if (ping_due_ && room_for(sizeof kPingReq)) {
    ping_due_ = false;
    queue_copy(kPingReq, sizeof kPingReq);
  }
  // Resends after a resumed CONNACK, and those held back by Receive Maximum that an
  // acknowledgement released, in order, as far as the send queue has room. A resend leaves the
  // session's queue only once it has a place in ours.
  // Resends fall due only after a resumed CONNACK and after a completion freed quota: scanning
  // the records on every write would cost every message (the session has one record per
  // operation in flight).
  while (state_ == ConnectionState::Connected && resends_due_) {
    Resend* resend = &resend_;
    if (!session_->next_resend(*resend, false)) {
      resends_due_ = false;
      return;
    }
    const bool publish = resend->type == PacketType::Publish;
    Result<void> room{};
    if (publish) {
      const auto total = encoded_size(resend->publish, version_);
      room = total ? reserve(*total - resend->publish.payload.size()) : fail(total.error());
    } else {
      room = reserve(kAckRoom);
    }
    if (!room) {
      // SendQueueFull: later. Otherwise it was sendable when first sent, and a smaller send
      // buffer now cannot carry it.
      if (room.error() != Errc::SendQueueFull) close(room.error(), std::nullopt, now);
      return;
    }
    (void)session_->next_resend(*resend, true);
    --resends_left_;
    if (!publish) {
      (void)queue_ack(
          Reply{PacketType::PubRel, resend->pubrel.packet_id, resend->pubrel.reason_code});
    } else if (auto r = queue_publish(resend->publish); !r) {
      close(r.error(), std::nullopt, now);
      return;
    }
  }
}

Result<void> Connection::queue_publish(const Publish& p) noexcept {
  // Validated already (encoded_size), room reserved.
  const auto h = encode_publish_header_validated(p, version_, tx_.subspan(tx_tail_));
  if (!h) return fail(h.error());
  queue_bytes(*h, p.payload);
  return {};
}

// --- Commands ------------------------------------------------------------------------------------

Result<void> Connection::connect(const ConnectOptions& options, Instant now,
                                 Duration connack_timeout) noexcept {
  if (state_ == ConnectionState::Connecting || state_ == ConnectionState::Connected) {
    return fail(Errc::AlreadyConnected);
  }
  // A build with both versions has no default version: the application must choose one.
  if (options.version == static_cast<Version>(0)) return fail(Errc::ProtocolVersionNotChosen);
  // Member-wise copy-construction (the two structs have the same members).
  Connect c{options.version,  options.client_id, options.clean_start, options.keep_alive_seconds,
            options.username, options.password,  options.will,        options.properties};
#if EDGEKIT_MQTT_ENABLE_V5  // without MQTT 5, Properties is empty
  if (switches::is_v5(c.version)) {
    // Tell the server the largest packet we can take, so a conforming one never sends a bigger
    // one [MQTT-3.1.2-24].
    const auto cap =
        static_cast<std::uint32_t>(std::min<std::size_t>(rx_.size(), std::size_t{kMaxPacketSize}));
    if (!c.properties.has(Properties::kMaximumPacketSize) ||
        detail::PropertyAccess::maximum_packet_size(c.properties) > cap) {
      c.properties.set_maximum_packet_size(cap);
    }
  }
#endif
  EDGEKIT_TRY(session_->prepare_connect(c));
  discard_output();  // what an ended connection left unwritten
  const auto n = encode(c, c.version, tx_);
  if (!n) {
    session_->on_connection_lost();
    return fail(n.error());
  }
  version_ = c.version;
  queue_bytes(*n, {});
  rx_pos_ = rx_len_ = 0;
  state_ = ConnectionState::Connecting;
  notice_ = Notice::None;
  error_ = Errc::Ok;
  server_reason_ = ReasonCode::Success;
  keep_alive_s_ = c.keep_alive;
  reply_due_ = false;
  ping_due_ = false;
  connack_deadline_ = deadline_after(now, connack_timeout);
  return {};
}

// The QoS 0 checks run for every message a device publishes: speed builds make them part of
// each caller (no call, no Result through memory); size builds keep the one copy.
#if defined(__OPTIMIZE_SIZE__)
#define EDGEKIT_MQTT_HOT_INLINE
#else
#define EDGEKIT_MQTT_HOT_INLINE [[gnu::always_inline]] inline
#endif

EDGEKIT_MQTT_HOT_INLINE Result<std::size_t> Connection::encode_plain_qos0(
    const Publish& message) noexcept {
  // QoS 0 without topic aliases (the session would change nothing in the header, and records
  // nothing): one validating encode of the caller's message straight into the free tail, no
  // sizing pass and no copy of the message. A header that does not fit takes the general path
  // (0), which tells SendQueueFull from BufferTooSmall.
  if (message.qos != QoS::AtMostOnce || message.dup || slot_count_ >= slot_capacity_ ||
      (switches::is_v5(version_) && session_->server_topic_alias_maximum() != 0)) {
    return std::size_t{0};
  }
  const auto h = encode_publish_header(message, version_, tx_.subspan(tx_tail_));
  if (!h) {
    if (h.error() != Errc::BufferTooSmall) return fail(h.error());
    return std::size_t{0};
  }
  // Session::begin_publish's checks that can fail for such a publish (the encoder has refused
  // an empty topic without an alias, and bad QoS), on the const message.
#if EDGEKIT_MQTT_ENABLE_V5
  if (switches::is_v5(version_) && message.properties.has(Properties::kTopicAlias)) {
    return fail(Errc::InvalidArgument);  // the session manages aliases
  }
#endif
  if (message.retain && !session_->server_retain_available()) {
    return fail(Errc::RetainNotSupported);  // [MQTT-3.2.2-14]
  }
  if (*h + message.payload.size() > session_->server_maximum_packet_size()) {
    return fail(Errc::PacketTooLarge);  // [MQTT-3.1.2-24]
  }
  return *h;
}

Result<Connection::DirectPacket> Connection::direct_publish(const Publish& message) noexcept {
  if (state_ != ConnectionState::Connected) return fail(Errc::NotConnected);
  DirectPacket out{};
  // Only with nothing queued: the packet must not overtake queued bytes.
  if (slot_count_ != 0) return out;
  const auto h = encode_plain_qos0(message);
  if (!h) return fail(h.error());
  if (*h == 0) return out;
  std::byte* const head = tx_.data() + tx_tail_;
  std::size_t size = *h;
  const std::size_t n = message.payload.size();
  if (n <= kDirectCopyMax && n <= tx_.size() - tx_tail_ - size) {
    // A small payload is copied behind the header: one contiguous buffer is one plain send for
    // the driver (a gather write costs the kernel more than the copy; docs/benchmarks.md), and
    // one record on TLS.
    if (n > 0) std::memcpy(head + size, message.payload.data(), n);
    size += n;
  } else {
    out.payload = message.payload;
  }
  out.head = Bytes(head, size);
  return out;
}

void Connection::queue_direct_rest(const DirectPacket& packet, std::size_t n,
                                   Instant now) noexcept {
  // Queued as publish would have queued it (the head is where direct_publish put it), then
  // counted as written: the rest leaves through the queue.
  queue_bytes(packet.head.size(), packet.payload);
  on_written(n, now);
}

Result<std::uint16_t> Connection::publish(const Publish& message,
                                          [[maybe_unused]] Instant now) noexcept {
  if (state_ != ConnectionState::Connected) return fail(Errc::NotConnected);
#if !defined(__OPTIMIZE_SIZE__)
  // A plain QoS 0 message skips the sizing pass and the copy below. Size builds take the
  // general path for it too: the same bytes and errors (the checks are the session's), less
  // code.
  const auto h = encode_plain_qos0(message);
  if (!h) return fail(h.error());
  if (*h != 0) {
    queue_bytes(*h, message.payload);
    return std::uint16_t{0};
  }
#endif
  Publish p = message;
  p.packet_id = 0;
  p.dup = false;
  // The header must fit before the session records anything. An alias the session may add
  // costs its property (3 bytes) and up to two length bytes. The size does not depend on the
  // id's value: a stand-in id is enough (the session assigns it).
  if (p.qos != QoS::AtMostOnce) p.packet_id = 1;
  const auto total = encoded_size(p, version_);
  p.packet_id = 0;
  if (!total) return fail(total.error());
  const std::size_t margin =
      (switches::is_v5(version_) && session_->server_topic_alias_maximum() > 0) ? 5 : 0;
  EDGEKIT_TRY(reserve(*total - p.payload.size() + margin));
  EDGEKIT_TRY(session_->begin_publish(p, *total));
  // Validated by encoded_size above; since then the session set only the id and an alias.
  EDGEKIT_TRY(queue_publish(p));
  return p.packet_id;
}

Result<std::uint16_t> Connection::request(std::span<const Subscription> subscriptions,
                                          std::span<const std::string_view> filters,
                                          [[maybe_unused]] Instant now,
                                          const Properties& properties) noexcept {
  if (subscriptions.empty() && filters.empty()) return fail(Errc::InvalidArgument);
  if (state_ != ConnectionState::Connected) return fail(Errc::NotConnected);
  // One path for both requests: they differ only in their list. The codec reads them as a view
  // of the caller's arrays and properties (a Subscribe or Unsubscribe built here would copy
  // the properties onto the stack).
  const bool sub = !subscriptions.empty();
  union Lists {
    Lists() noexcept {}
    Subscriptions subscriptions;
    TopicFilters filters;
  } lists;
  static_assert(std::is_trivially_destructible_v<Subscriptions> &&
                std::is_trivially_destructible_v<TopicFilters>);
  if (sub) {
    new (&lists.subscriptions) Subscriptions(subscriptions);
  } else {
    new (&lists.filters) TopicFilters(filters);
  }
  // A stand-in id for the size (the session assigns the real one; the size does not depend on
  // its value).
  detail::RequestView r{sub ? PacketType::Subscribe : PacketType::Unsubscribe, 1, &lists,
                        &properties};
  const auto size = detail::request_size(r, version_);
  if (!size) return fail(size.error());
  EDGEKIT_TRY(reserve(*size));
  // Measured (and validated) above: the session need not do it again.
  EDGEKIT_TRY(session_->begin_request(
      sub ? OutgoingState::AwaitSubAck : OutgoingState::AwaitUnsubAck, r.packet_id, nullptr,
      nullptr, *size));
  const auto n = detail::encode_request(r, version_, tx_.subspan(tx_tail_));
  if (!n) return fail(n.error());
  queue_bytes(*n, {});
  return r.packet_id;
}

Result<void> Connection::ping(Instant now) noexcept {
  (void)now;
  if (state_ != ConnectionState::Connected) return fail(Errc::NotConnected);
  EDGEKIT_TRY(reserve(sizeof kPingReq));
  queue_copy(kPingReq, sizeof kPingReq);
  return {};
}

Result<void> Connection::disconnect(ReasonCode reason, const Properties& properties,
                                    [[maybe_unused]] Instant now) noexcept {
  if (state_ != ConnectionState::Connected) return fail(Errc::NotConnected);
  // A view of the caller's properties: a Disconnect built here would copy them.
  const detail::DisconnectView d{reason, &properties};
  if (!switches::is_v5(version_) && reason != ReasonCode::Success) {
    return fail(Errc::InvalidArgument);
  }
  const auto size = detail::disconnect_size(d, version_);
  if (!size) return fail(size.error());
  EDGEKIT_TRY(reserve(*size));
  EDGEKIT_TRY(session_->end_with_disconnect(properties));
  losses_due_ = true;  // a session that ends with the connection gives up its records
  const auto n = detail::encode_disconnect(d, version_, tx_.subspan(tx_tail_));
  if (!n) return fail(n.error());
  queue_bytes(*n, {});
  // The ack of a message the application has not finished with is not sent: the server
  // resends the message on resume.
  reply_due_ = false;
  state_ = ConnectionState::Closed;
  error_ = Errc::Ok;
  notice_ = Notice::None;
  return {};
}

void Connection::close(Errc error, std::optional<ReasonCode> reason,
                       [[maybe_unused]] Instant now) noexcept {
  if (state_ != ConnectionState::Connecting && state_ != ConnectionState::Connected) return;
  const bool was_connected = state_ == ConnectionState::Connected;
  state_ = ConnectionState::Closed;
  error_ = error;
  reply_due_ = false;
  ping_due_ = false;
  drop_unwritten();
  // MQTT 5: tell the server why, in a DISCONNECT with a reason code and no properties
  // (spec 3.14): 3 bytes, best effort.
  if (reason && switches::is_v5(version_) && room_for(3)) {
    const std::byte bytes[3] = {std::byte{0xE0}, std::byte{0x01}, static_cast<std::byte>(*reason)};
    queue_copy(bytes, sizeof bytes);
  }
  session_->on_connection_lost();
  losses_due_ = true;  // pending SUBSCRIBE / UNSUBSCRIBE are lost with the link
  // ServerDisconnected has been reported by its own event.
  if (error == Errc::ServerDisconnected) {
    notice_ = Notice::None;
  } else {
    notice_ = was_connected ? Notice::Closed : Notice::ConnectFailed;
  }
}

void Connection::on_transport_closed(Errc error, Instant now) noexcept {
  close(error, std::nullopt, now);
  // Nothing more can be written, whatever the state was.
  discard_output();
}

// --- Input ---------------------------------------------------------------------------------------

MutableBytes Connection::read_buffer() noexcept {
  if (rx_pos_ > 0) {
    const std::uint32_t rest = rx_len_ - rx_pos_;
    if (rest > 0) std::memmove(rx_.data(), rx_.data() + rx_pos_, rest);
    rx_len_ = rest;
    rx_pos_ = 0;
  }
  return rx_.subspan(rx_len_);
}

void Connection::on_read(std::size_t n, Instant now) noexcept {
  if (n > rx_.size() - rx_len_) {
    // More than read_buffer() offered: a driver bug. Clamping would lose bytes of the stream
    // without a word; the connection ends instead, with the cause.
    close(Errc::InvalidArgument, std::nullopt, now);
    return;
  }
  rx_len_ += static_cast<std::uint32_t>(n);
}

std::size_t Connection::on_received(Bytes data, Instant now) noexcept {
  const MutableBytes free = read_buffer();
  const std::size_t n = std::min(free.size(), data.size());
  if (n > 0) std::memcpy(free.data(), data.data(), n);
  on_read(n, now);
  return n;
}

bool Connection::packet_pending() const noexcept {
  if (rx_pos_ == rx_len_) return false;
  const auto f = read_frame(Bytes(rx_.data() + rx_pos_, rx_len_ - rx_pos_),
                            static_cast<std::uint32_t>(rx_.size()));
  return !f || f->complete;  // an error is "pending" too: polling reports it
}

// --- Events --------------------------------------------------------------------------------------

bool Connection::notices_pending() const noexcept {
  return notice_ != Notice::None || losses_due_;
}

std::optional<Event> Connection::poll_notice() noexcept {
  std::optional<Event> out{std::in_place};
  if (!next_notice(*out)) out.reset();
  return out;
}

bool Connection::next_notice(Event& e) noexcept {
  if (notice_ != Notice::None) {
    e.type = notice_ == Notice::Closed ? EventType::ConnectionClosed : EventType::ConnectFailed;
    e.error = error_;
    if (error_ == Errc::ConnectionRefused) {
      e.reason_code = server_reason_;
      e.connack = std::get_if<ConnAck>(&packet_);
    }
    notice_ = Notice::None;
    return true;
  }
  // Losses are queued by a few transitions only (CONNACK without the session, the end of a
  // connection): no scan of the records on every poll.
  if (!losses_due_) return false;
  if (!session_->next_lost(lost_)) {
    losses_due_ = false;
    return false;
  }
  e.packet_id = lost_.packet_id;
  if (lost_.kind == OperationKind::Publish) {
    e.type = EventType::MessageLost;
    e.message = &lost_.publish;
    e.pubrec_received = lost_.pubrec_received;
  } else {
    // A pending SUBSCRIBE / UNSUBSCRIBE (never resent): its asker hears the connection ended.
    e.type = lost_.kind == OperationKind::Subscribe ? EventType::SubscribeCompleted
                                                    : EventType::UnsubscribeCompleted;
    e.error = Errc::NotConnected;
  }
  return true;
}

std::optional<Event> Connection::poll_event(Instant now) noexcept {
  // One event object, filled in place and returned by every path (no copies of it).
  std::optional<Event> out{std::in_place};
  if (notice_ != Notice::None || losses_due_) {
    if (next_notice(*out)) return out;
  }
  if (state_ == ConnectionState::Connecting || state_ == ConnectionState::Connected) {
    // The ack of the message reported last leaves after the application has seen it.
    if (!reply_due_ || queue_ack(reply_)) {
      reply_due_ = false;
      // A packet that needed no event (PUBREC, PUBREL, a QoS 2 duplicate) was handled: go on.
      do {
        if (handle_frame(*out, now)) return out;
      } while (handled_quietly_);
    }
  }
  out.reset();
  return out;
}

bool Connection::handle_frame(Event& e, Instant now) noexcept {
  handled_quietly_ = false;
  if (rx_pos_ == rx_len_) return false;
  const Bytes held(rx_.data() + rx_pos_, rx_len_ - rx_pos_);
  // Every fatal path below ends the same way: close with `error` (and, to an MQTT 5 server,
  // `reason`), then report it (one exit: code size).
  Errc error = Errc::Ok;
  std::optional<ReasonCode> reason;
  // The receive buffer is the largest packet we accept; MQTT 5 servers were told so in CONNECT.
  const auto frame = read_frame(held, static_cast<std::uint32_t>(rx_.size()));
  if (!frame) {
    error = frame.error();
    reason = ReasonCode::MalformedPacket;
    if (error == Errc::PacketTooLarge) {
      // Never dropped silently: the application hears IncomingPacketTooLarge, an MQTT 5 server
      // hears 0x95 (MQTT 5 spec 3.1.2.11.4, 4.13), a 3.1.1 connection can only be closed.
      error = Errc::IncomingPacketTooLarge;
      reason = ReasonCode::PacketTooLarge;
    }
    goto fatal;
  }
  if (!frame->complete) return false;
  // No room for the ack this packet may need: it waits in the receive buffer until the driver
  // has written (a slow socket slows the connection down, it does not fail it).
  if (!room_for(kAckRoom)) return false;
  {
    const std::size_t size = frame->header.packet_size();
    rx_pos_ += static_cast<std::uint32_t>(size);
    ++packets_received_;
    // decode_from_server builds the alternative it decodes anew (on failure packet_ holds an
    // unspecified one, which nothing reads: the connection closes).
    if (auto decoded = decode_from_server(held.first(size), version_, packet_); !decoded) {
      error = decoded.error();
      reason = disconnect_reason_for(error);
      goto fatal;
    }
  }
  // The first packet from the server must be CONNACK [MQTT-3.2.0-1].
  if (state_ == ConnectionState::Connecting && type_of(packet_) != PacketType::ConnAck) {
    error = Errc::ProtocolError;
    reason = ReasonCode::ProtocolError;
    goto fatal;
  }
  {
    auto in = session_->on_packet(packet_);
    if (!in) {
      error = in.error();
      if (type_of(packet_) == PacketType::ConnAck && error == Errc::ConnectionRefused) {
        // The server closes the connection after a refusal (spec 3.2.2.2); nothing to send.
        server_reason_ = std::get_if<ConnAck>(&packet_)->reason_code;
      } else {
        reason = disconnect_reason_for(error);
      }
      goto fatal;
    }
    const PacketType type = type_of(packet_);
    if (in->connack) {
      state_ = ConnectionState::Connected;
      keep_alive_s_ = session_->keep_alive();
      resends_left_ = static_cast<std::uint32_t>(in->connack->resend_count);
      resends_due_ = resends_left_ > 0;
      losses_due_ = in->connack->lost_count > 0;
      // session_present = 1: resend in the original order [MQTT-4.4.0-1], as far as the server's
      // Receive Maximum lets through; the rest follow as acknowledgements arrive.
      pump(now);
      e.type = EventType::Connected;
      e.connack = std::get_if<ConnAck>(&packet_);
      e.session_present = in->connack->session_present;
      return true;
    }

    if (in->deliver) {
      // Acked at the next poll: after the application has seen the message, and never when the
      // application disconnects in between (the server then resends it on resume).
      if (in->reply) {
        reply_ = *in->reply;
        reply_due_ = true;
      }
      e.type = EventType::MessageReceived;
      e.message = std::get_if<Publish>(&packet_);
      e.packet_id = e.message->packet_id;
      return true;
    }
    if (in->reply) {
      (void)queue_ack(*in->reply);  // room was checked above
    }

    if (in->completion) {
      const Completion& c = *in->completion;
      e.type = EventType::PublishCompleted;
      e.packet_id = c.packet_id;
      e.reason_code = c.reason_code;
      e.properties = properties_of(packet_);
      if (c.kind != OperationKind::Publish) {
        // SUBACK or UNSUBACK whose id the session matched to a pending request.
        e.type = c.kind == OperationKind::Subscribe ? EventType::SubscribeCompleted
                                                    : EventType::UnsubscribeCompleted;
        e.reason_codes = reason_codes_of(packet_);
      }
      // A completion frees Receive Maximum quota: resends held back by it go now, before any new
      // publish (the session refuses those while resends wait).
      resends_due_ = resends_left_ > 0;
      pump(now);
      return true;
    }
    if (type == PacketType::PingResp) {
      e.type = EventType::PingResponse;
      return true;
    }
    if (in->server_disconnect) {
      server_reason_ = *in->server_disconnect;
      e.type = EventType::ServerDisconnected;
      e.reason_code = *in->server_disconnect;
      e.error = Errc::ServerDisconnected;
      e.properties = properties_of(packet_);
      close(Errc::ServerDisconnected, std::nullopt, now);
      return true;
    }
    handled_quietly_ = true;
    return false;
  }

fatal:
  close(error, reason, now);
  return next_notice(e);
}

// --- Time ----------------------------------------------------------------------------------------

std::optional<Instant> Connection::next_deadline() const noexcept {
  if (state_ == ConnectionState::Connecting) return connack_deadline_;
  if (state_ == ConnectionState::Connected) return session_->next_deadline();
  return std::nullopt;
}

void Connection::on_timer(Instant now) noexcept {
  if (state_ == ConnectionState::Connecting) {
    if (now >= connack_deadline_) close(Errc::Timeout, std::nullopt, now);
    return;
  }
  if (state_ != ConnectionState::Connected) return;
  // on_timer does nothing before the session's next deadline.
  const auto action = session_->on_timer(now);
  // No PINGRESP in time: the link is dead; close it (spec 3.1.2.10).
  if (!action) {
    close(action.error(), std::nullopt, now);
    return;
  }
  if (*action == TimerAction::SendPingReq) {
    ping_due_ = true;
    pump(now);
  }
}

}  // namespace edgekit::mqtt
