// The minimal MQTT 3.1.1 client (lite.hpp). Written for size first: packets are built as a few
// pieces (header bytes on the stack, the caller's strings) and written at once; parsing is done
// in place on the receive buffer with the rules a 3.1.1 client must check, and the framing,
// UTF-8 and topic checks are the codec's (read_frame, validate_*), shared with the full client.
#include "edgekit/mqtt/lite.hpp"

#include <cstring>

#include "edgekit/mqtt/codec.hpp"

namespace edgekit::mqtt::lite {
namespace {

using transport::ConstBuffer;
using transport::Interest;
using transport::IoStatus;
using transport::WaitStatus;

// Record states.
constexpr std::uint8_t kAwaitPubAck = 1;   // QoS 1 publish sent
constexpr std::uint8_t kAwaitPubRec = 2;   // QoS 2 publish sent
constexpr std::uint8_t kAwaitPubComp = 3;  // QoS 2: PUBREC received, PUBREL sent
constexpr std::uint8_t kAwaitSubAck = 4;
constexpr std::uint8_t kAwaitUnsubAck = 5;

// Control packet types (spec 2.2.1).
constexpr std::uint8_t kConnAck = 2;
constexpr std::uint8_t kPublish = 3;
constexpr std::uint8_t kPubAck = 4;
constexpr std::uint8_t kPubRec = 5;
constexpr std::uint8_t kPubRel = 6;
constexpr std::uint8_t kPubComp = 7;
constexpr std::uint8_t kSubAck = 9;
constexpr std::uint8_t kUnsubAck = 11;
constexpr std::uint8_t kPingResp = 13;

constexpr std::uint32_t kMaxRemaining = 268'435'455;  // spec 2.2.3

// Wrap-safe "t is at or after d" on the 32-bit millisecond clock.
bool reached(std::uint32_t t, std::uint32_t d) noexcept {
  return static_cast<std::int32_t>(t - d) >= 0;
}

// Out of line: every public call converts its timeout, and inlined copies cost more flash than
// the call.
[[gnu::noinline]] std::uint32_t to_ms(Duration d) noexcept {
  const auto ms = d.count();
  if (ms <= 0) return 0;
  return ms > 0x3FFF'FFFF ? 0x3FFF'FFFFu : static_cast<std::uint32_t>(ms);
}

std::uint8_t* put16(std::uint8_t* p, std::size_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
  return p + 2;
}

std::uint16_t get16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

// The fixed header: type byte and remaining length (spec 2.2.3).
std::uint8_t* put_header(std::uint8_t* p, std::uint8_t first, std::uint32_t remaining) noexcept {
  *p++ = first;
  do {
    std::uint8_t b = remaining & 0x7F;
    remaining >>= 7;
    if (remaining != 0) b |= 0x80;
    *p++ = b;
  } while (remaining != 0);
  return p;
}

}  // namespace

// A packet as pieces for one writev. Pieces refer to the caller's memory or to bytes on the
// caller's stack; they are consumed as they are written.
struct Client::Pieces {
  static constexpr std::size_t kMax = 12;
  ConstBuffer v[kMax];
  std::size_t n = 0;
  void add(const void* p, std::size_t len) noexcept {
    v[n++] = ConstBuffer(static_cast<const std::byte*>(p), len);
  }
  void add(const std::uint8_t* from, const std::uint8_t* to) noexcept {
    add(from, static_cast<std::size_t>(to - from));
  }
};

Client::Client(const Clock& clock, std::span<Record> records,
               std::span<std::uint16_t> incoming_qos2, std::span<std::byte> rx,
               Handler handler) noexcept
    : clock_(clock), records_(records), incoming_qos2_(incoming_qos2), rx_(rx),
      handler_(handler) {}

std::uint32_t Client::now() const noexcept {
  return static_cast<std::uint32_t>(clock_.now().since_origin.count());
}

std::uint32_t Client::deadline(Duration timeout) const noexcept { return now() + to_ms(timeout); }

Errc Client::write(Pieces& p, std::uint32_t timeout_ms) noexcept {
  ConstBuffer* v = p.v;
  std::size_t n = p.n;
  // The deadline is read from the clock only when the transport makes us wait: a write that goes
  // out at once (the usual case) costs no clock reading for it.
  bool waiting = false;
  std::uint32_t until = 0;
  for (;;) {
    while (n != 0 && v->empty()) {
      ++v;
      --n;
    }
    if (n == 0) break;
    const transport::IoResult r = transport_->writev(std::span<const ConstBuffer>(v, n));
    if (r.status == IoStatus::Ok && r.bytes != 0) {
      for (std::size_t k = r.bytes; k != 0;) {
        const std::size_t s = k < v->size() ? k : v->size();
        *v = v->subspan(s);
        k -= s;
        if (v->empty()) {
          ++v;
          --n;
        }
      }
      continue;
    }
    if (r.status == IoStatus::Closed) return Errc::TransportClosed;
    if (r.status == IoStatus::Error) return Errc::TransportError;
    const std::uint32_t t = now();
    if (!waiting) {
      waiting = true;
      until = t + timeout_ms;
    }
    if (reached(t, until)) return Errc::Timeout;
    if (transport_->wait(Interest::Write, until - t) == WaitStatus::Error)
      return Errc::TransportError;
  }
  // For the keep-alive only: the coarse reading (never later than now(), at most a tick behind)
  // can only make a PINGREQ come a tick early.
  last_sent_ = static_cast<std::uint32_t>(clock_.now_coarse().since_origin.count());
  return Errc::Ok;
}

Errc Client::write_small(const std::uint8_t* bytes, std::size_t n,
                         std::uint32_t timeout_ms) noexcept {
  Pieces p;
  p.add(bytes, n);
  return write(p, timeout_ms);
}

Errc Client::send_publish(const Record& r, bool dup, std::uint32_t timeout_ms) noexcept {
  const unsigned qos = r.flags_ & 3u;
  const std::size_t remaining = 2 + r.topic_.size() + (qos != 0 ? 2 : 0) + r.payload_.size();
  std::uint8_t head[7];
  std::uint8_t id[2];
  const auto first = static_cast<std::uint8_t>(0x30 | (dup ? 8 : 0) | (qos << 1) | (r.flags_ >> 2));
  std::uint8_t* e = put16(put_header(head, first, static_cast<std::uint32_t>(remaining)),
                          r.topic_.size());
  Pieces p;
  p.add(head, e);
  p.add(r.topic_.data(), r.topic_.size());
  if (qos != 0) p.add(id, put16(id, r.packet_id_));
  p.add(r.payload_.data(), r.payload_.size());
  return write(p, timeout_ms);
}

Record* Client::find(std::uint16_t id) noexcept {
  for (std::size_t i = 0; i < used_; ++i) {
    if (records_[i].packet_id_ == id) return &records_[i];
  }
  return nullptr;
}

Errc Client::take_record(Record*& out) noexcept {
  if (used_ == records_.size()) return Errc::SessionStateFull;
  // The next id not held by a record; there are fewer records than ids, so this ends.
  do {
    next_id_ = static_cast<std::uint16_t>(next_id_ == 0xFFFF ? 1 : next_id_ + 1);
  } while (find(next_id_) != nullptr);
  out = &records_[used_++];
  *out = Record{};
  out->packet_id_ = next_id_;
  return Errc::Ok;
}

void Client::remove(Record& r) noexcept {
  // Records stay in the order they were taken, so that a resume resends oldest first.
  Record* end = records_.data() + used_;
  std::memmove(static_cast<void*>(&r), &r + 1, static_cast<std::size_t>(end - (&r + 1)) * sizeof(Record));
  --used_;
}

void Client::report(Event& e) noexcept {
  const bool outer = in_handler_;
  in_handler_ = true;
  handler_(*this, e);
  in_handler_ = outer;
}

void Client::report_record(Record& r, EventType type, Errc error) noexcept {
  Event e;
  e.type = type;
  e.error = error;
  e.packet_id = r.packet_id_;
  if (r.state_ <= kAwaitPubComp) {
    e.qos = static_cast<QoS>(r.flags_ & 3u);
    e.retain = (r.flags_ & 4u) != 0;
    e.pubrec_received = r.state_ == kAwaitPubComp;
    e.topic = r.topic_;
    e.payload = r.payload_;
  }
  remove(r);  // first: the handler may take a record
  report(e);
}

void Client::forget(bool publishes) noexcept {
  // Only the records present now: the handler may add new ones at the end, or end the
  // connection (and forget the rest itself).
  std::size_t i = 0;
  for (std::size_t left = used_; left != 0 && i < used_; --left) {
    Record& r = records_[i];
    if (r.state_ == kAwaitSubAck) {
      report_record(r, EventType::SubscribeCompleted, Errc::NotConnected);
    } else if (r.state_ == kAwaitUnsubAck) {
      report_record(r, EventType::UnsubscribeCompleted, Errc::NotConnected);
    } else if (publishes) {
      report_record(r, EventType::MessageLost, Errc::NotConnected);
    } else {
      ++i;
    }
  }
}

Errc Client::close_with(Errc e) noexcept {
  if (transport_ != nullptr) {
    transport_->close();
    transport_ = nullptr;
  }
  closed_by_ = e;
  // A request's ack can no longer come; a clean session ends with its connection (3.1.2.4).
  forget(clean_session_);
  return e;
}

Result<bool> Client::connect(transport::Transport& transport, const ConnectOptions& o,
                             Duration timeout) noexcept {
  if (in_handler_) return edgekit::fail(Errc::CalledFromHandler);
  if (transport_ != nullptr) return edgekit::fail(Errc::AlreadyConnected);
  const Will* w = o.will;
  // [MQTT-3.1.3-7] an empty client id needs clean session; [MQTT-3.1.2-22] no password
  // without a user name.
  if ((o.client_id.empty() && !o.clean_session) || (o.password && !o.username) ||
      (w != nullptr && static_cast<unsigned>(w->qos) > 2))
    return edgekit::fail(Errc::InvalidArgument);
  EDGEKIT_TRY(validate_utf8(o.client_id));
  if (o.username) EDGEKIT_TRY(validate_utf8(*o.username));
  std::size_t remaining = 12 + o.client_id.size();
  std::uint8_t flags = o.clean_session ? 0x02 : 0x00;
  if (w != nullptr) {
    EDGEKIT_TRY(validate_topic_name(w->topic));
    if (w->payload.size() > 0xFFFF) return edgekit::fail(Errc::StringTooLong);
    remaining += 4 + w->topic.size() + w->payload.size();
    flags |= static_cast<std::uint8_t>(0x04 | (static_cast<unsigned>(w->qos) << 3) |
                                       (w->retain ? 0x20 : 0));
  }
  if (o.username) {
    remaining += 2 + o.username->size();
    flags |= 0x80;
  }
  if (o.password) {
    if (o.password->size() > 0xFFFF) return edgekit::fail(Errc::StringTooLong);
    remaining += 2 + o.password->size();
    flags |= 0x40;
  }

  transport_ = &transport;
  rx_len_ = 0;
  connack_seen_ = false;
  ping_outstanding_ = false;
  clean_session_ = o.clean_session;
  keep_alive_ms_ = std::uint32_t{o.keep_alive_s} * 1000u;
  // Zero: 1.5 × the keep-alive, as the full client's SessionConfig.
  ping_timeout_ms_ = o.ping_timeout.count() > 0 ? to_ms(o.ping_timeout)
                                                : keep_alive_ms_ + keep_alive_ms_ / 2;
  write_timeout_ms_ = to_ms(o.write_timeout);

  const std::uint32_t until = deadline(timeout);
  // Fixed header, variable header (protocol name "MQTT", level 4, flags, keep-alive) and the
  // client id's length; then each field's length before the field.
  std::uint8_t head[5 + 12];
  std::uint8_t* e = put_header(head, 0x10, static_cast<std::uint32_t>(remaining));
  static constexpr std::uint8_t kName[] = {0, 4, 'M', 'Q', 'T', 'T', 4};
  std::memcpy(e, kName, sizeof kName);
  e += sizeof kName;
  *e++ = flags;
  e = put16(put16(e, o.keep_alive_s), o.client_id.size());
  std::uint8_t lens[8];
  std::uint8_t* l = lens;
  Pieces p;
  p.add(head, e);
  p.add(o.client_id.data(), o.client_id.size());
  auto field = [&](const void* data, std::size_t size) {
    p.add(l, put16(l, size));
    l += 2;
    p.add(data, size);
  };
  if (w != nullptr) {
    field(w->topic.data(), w->topic.size());
    field(w->payload.data(), w->payload.size());
  }
  if (o.username) field(o.username->data(), o.username->size());
  if (o.password) field(o.password->data(), o.password->size());
  if (Errc err = write(p, to_ms(timeout)); err != Errc::Ok) return edgekit::fail(close_with(err));
  if (Errc err = run(until, true); err != Errc::Ok) return edgekit::fail(err);
  return session_present_;
}

Errc Client::on_connack(const std::uint8_t* body, std::size_t len) noexcept {
  // Spec 3.2.2: flags byte (bits 7..1 reserved) and a return code 0..5; a refusal carries
  // session present 0 [MQTT-3.2.2-4].
  if (len != 2 || (body[0] & 0xFE) != 0 || body[1] > 5 || (body[1] != 0 && body[0] != 0))
    return Errc::MalformedPacket;
  connack_code_ = body[1];
  if (connack_code_ != 0) return Errc::ConnectionRefused;
  session_present_ = body[0] != 0;
  // [MQTT-3.2.2-1] a clean session is never resumed.
  if (clean_session_ && session_present_) return Errc::ProtocolError;
  connack_seen_ = true;
  if (!session_present_) {
    for (std::uint16_t& id : incoming_qos2_) id = 0;
    forget(true);
    return Errc::Ok;
  }
  // Resume: every unacknowledged publish again (DUP), and the PUBREL of each QoS 2 publish the
  // broker had accepted, in the order they were first sent [MQTT-4.4.0-1].
  for (std::size_t i = 0; i < used_; ++i) {
    const Record& r = records_[i];
    Errc e;
    if (r.state_ == kAwaitPubComp) {
      std::uint8_t rel[4] = {0x62, 2};
      put16(rel + 2, r.packet_id_);
      e = write_small(rel, 4, write_timeout_ms_);
    } else {
      e = send_publish(r, true, write_timeout_ms_);
    }
    if (e != Errc::Ok) return e;
  }
  return Errc::Ok;
}

Errc Client::on_publish(std::uint8_t flags, const std::uint8_t* body, std::size_t len) noexcept {
  Event e;
  const unsigned qos = (flags >> 1) & 3u;
  if (qos == 3) return Errc::InvalidQoS;  // [MQTT-3.3.1-4]
  if (qos == 0 && (flags & 8) != 0) return Errc::MalformedPacket;  // [MQTT-3.3.1-2]
  if (len < 2) return Errc::MalformedPacket;
  const std::size_t tl = get16(body);
  std::size_t pos = 2 + tl + (qos != 0 ? 2 : 0);
  if (pos > len) return Errc::MalformedPacket;
  e.topic = std::string_view(reinterpret_cast<const char*>(body) + 2, tl);
  if (Result<void> r = validate_topic_name(e.topic); !r) return r.error();
  e.qos = static_cast<QoS>(qos);
  e.retain = (flags & 1) != 0;
  e.dup = (flags & 8) != 0;
  e.payload = Bytes(reinterpret_cast<const std::byte*>(body) + pos, len - pos);
  bool deliver = true;
  if (qos != 0) {
    e.packet_id = get16(body + 2 + tl);
    if (e.packet_id == 0) return Errc::PacketIdZero;  // [MQTT-2.3.1-1]
  }
  if (qos == 2) {
    // Delivered once: an id still awaiting PUBREL is a resend of a message already delivered.
    std::uint16_t* slot = nullptr;
    for (std::uint16_t& id : incoming_qos2_) {
      if (id == e.packet_id) {
        deliver = false;
        break;
      }
      if (id == 0 && slot == nullptr) slot = &id;
    }
    if (deliver) {
      if (slot == nullptr) return Errc::SessionStateFull;
      *slot = e.packet_id;
    }
  }
  if (deliver) {
    report(e);
    if (transport_ == nullptr) return closed_by_;  // the handler ended the connection
  }
  if (qos == 0) return Errc::Ok;
  std::uint8_t ack[4] = {static_cast<std::uint8_t>(qos == 1 ? 0x40 : 0x50), 2};
  put16(ack + 2, e.packet_id);
  return write_small(ack, 4, write_timeout_ms_);
}

Errc Client::on_ack(std::uint8_t type, std::uint16_t id, const std::uint8_t* codes,
                    std::size_t n) noexcept {
  std::uint8_t reply[4] = {0, 2};
  put16(reply + 2, id);
  if (type == kPubRel) {
    // Release the inbound id; PUBCOMP even for an id we do not hold (spec 4.3.3: the sender
    // may resend PUBREL after we answered it).
    for (std::uint16_t& slot : incoming_qos2_) {
      if (slot == id) slot = 0;
    }
    reply[0] = 0x70;
    return write_small(reply, 4, write_timeout_ms_);
  }
  Record* r = find(id);
  if (r == nullptr) return Errc::UnknownPacketId;
  const std::uint8_t s = r->state_;
  switch (type) {
    case kPubAck:
      if (s != kAwaitPubAck) return Errc::ProtocolError;
      report_record(*r, EventType::PublishCompleted, Errc::Ok);
      return Errc::Ok;
    case kPubRec:
      // A PUBREC again (after a resend of the PUBLISH) is answered again.
      if (s != kAwaitPubRec && s != kAwaitPubComp) return Errc::ProtocolError;
      r->state_ = kAwaitPubComp;
      reply[0] = 0x62;
      return write_small(reply, 4, write_timeout_ms_);
    case kPubComp:
      if (s != kAwaitPubComp) return Errc::ProtocolError;
      report_record(*r, EventType::PublishCompleted, Errc::Ok);
      return Errc::Ok;
    case kSubAck: {
      // One return code per filter: 0..2 granted, 0x80 failure [MQTT-3.9.3-2].
      if (s != kAwaitSubAck) return Errc::ProtocolError;
      if (n != r->flags_) return Errc::MalformedPacket;
      for (std::size_t i = 0; i < n; ++i) {
        if (codes[i] > 2 && codes[i] != 0x80) return Errc::MalformedPacket;
      }
      Event e;
      e.type = EventType::SubscribeCompleted;
      e.packet_id = id;
      e.return_codes = Bytes(reinterpret_cast<const std::byte*>(codes), n);
      remove(*r);
      report(e);
      return Errc::Ok;
    }
    default:  // kUnsubAck
      if (s != kAwaitUnsubAck) return Errc::ProtocolError;
      report_record(*r, EventType::UnsubscribeCompleted, Errc::Ok);
      return Errc::Ok;
  }
}

Errc Client::handle(std::uint8_t first, const std::uint8_t* body, std::size_t len) noexcept {
  const std::uint8_t type = first >> 4;
  const std::uint8_t flags = first & 15;
  // [MQTT-3.2.0-1] the first packet from the server is CONNACK, and only the first.
  if ((type == kConnAck) == connack_seen_) return Errc::ProtocolError;
  // Only these types go from server to client; CONNECT, SUBSCRIBE, PINGREQ, DISCONNECT, ... do
  // not (spec 2.2.1).
  constexpr unsigned kToClient = 1u << kConnAck | 1u << kPublish | 1u << kPubAck | 1u << kPubRec |
                                 1u << kPubRel | 1u << kPubComp | 1u << kSubAck |
                                 1u << kUnsubAck | 1u << kPingResp;
  if (((1u << type) & kToClient) == 0) return Errc::ProtocolError;
  if (type == kPublish) return on_publish(flags, body, len);
  // Every other packet a client receives has fixed flags: 2 for PUBREL, else 0 [MQTT-2.2.2-2].
  if (flags != (type == kPubRel ? 2 : 0)) return Errc::ReservedFlagsSet;
  switch (type) {
    case kConnAck: return on_connack(body, len);
    case kPingResp:
      if (len != 0) return Errc::MalformedPacket;
      ping_outstanding_ = false;
      return Errc::Ok;
    case kSubAck:
      if (len < 3) return Errc::MalformedPacket;
      return on_ack(type, get16(body), body + 2, len - 2);
    default:  // PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: a packet id only
      if (len != 2) return Errc::MalformedPacket;
      if (get16(body) == 0) return Errc::PacketIdZero;
      return on_ack(type, get16(body), nullptr, 0);
  }
}

Errc Client::run(std::uint32_t until, bool connecting) noexcept {
  bool handled = false;
  for (;;) {
    // Every complete packet in the buffer, in order.
    for (;;) {
      const auto* b = reinterpret_cast<const std::uint8_t*>(rx_.data());
      const Result<Frame> f =
          read_frame(Bytes(rx_.data(), rx_len_), static_cast<std::uint32_t>(rx_.size()));
      if (!f) {
        return close_with(f.error() == Errc::PacketTooLarge ? Errc::IncomingPacketTooLarge
                                                            : f.error());
      }
      if (!f->complete) break;
      const std::size_t size = f->header.packet_size();
      const Errc e = handle(b[0], b + f->header.header_size, f->header.remaining_length);
      if (transport_ == nullptr) return closed_by_;  // the handler ended the connection
      if (e != Errc::Ok) return close_with(e);
      rx_len_ -= size;
      std::memmove(rx_.data(), rx_.data() + size, rx_len_);
      if (connecting) return Errc::Ok;  // the CONNACK; what follows waits for process_loop
      handled = true;
    }
    if (handled) return Errc::Ok;
    const std::uint32_t t = now();
    std::uint32_t wake = until;
    if (!connecting && keep_alive_ms_ != 0) {
      // [MQTT-3.1.2-23] a packet at least every keep-alive interval; a PINGREQ if nothing else.
      std::uint32_t due = ping_outstanding_ ? ping_sent_ + ping_timeout_ms_
                                            : last_sent_ + keep_alive_ms_;
      if (reached(t, due)) {
        if (ping_outstanding_) return close_with(Errc::KeepAliveTimeout);
        static constexpr std::uint8_t kPingReq[] = {0xC0, 0};
        if (Errc e = write_small(kPingReq, 2, write_timeout_ms_); e != Errc::Ok)
          return close_with(e);
        ping_outstanding_ = true;
        ping_sent_ = t;
        due = t + ping_timeout_ms_;
      }
      if (static_cast<std::int32_t>(due - wake) < 0) wake = due;
    }
    // One read without waiting first, so that a zero timeout still takes what has arrived.
    if (rx_len_ == rx_.size()) return close_with(Errc::IncomingPacketTooLarge);
    const transport::IoResult r = transport_->recv(rx_.subspan(rx_len_));
    if (r.status == IoStatus::Ok) {
      rx_len_ += r.bytes;
      continue;
    }
    if (r.status == IoStatus::Closed) return close_with(Errc::TransportClosed);
    if (r.status == IoStatus::Error) return close_with(Errc::TransportError);
    if (reached(t, until)) return connecting ? close_with(Errc::Timeout) : Errc::Ok;
    if (!reached(t, wake) && transport_->wait(Interest::Read, wake - t) == WaitStatus::Error)
      return close_with(Errc::TransportError);
  }
}

Result<void> Client::process_loop(Duration timeout) noexcept {
  if (in_handler_) return edgekit::fail(Errc::CalledFromHandler);
  if (transport_ == nullptr) return edgekit::fail(Errc::NotConnected);
  if (Errc e = run(deadline(timeout), false); e != Errc::Ok) return edgekit::fail(e);
  return {};
}

Result<std::uint16_t> Client::publish(std::string_view topic, Bytes payload, QoS qos,
                                      bool retain, Duration timeout) noexcept {
  if (transport_ == nullptr) return edgekit::fail(Errc::NotConnected);
  const auto q = static_cast<unsigned>(qos);
  if (q > 2) return edgekit::fail(Errc::InvalidQoS);
  EDGEKIT_TRY(validate_topic_name(topic));
  if (payload.size() > kMaxRemaining - 4 - topic.size()) return edgekit::fail(Errc::PacketTooLarge);
  Record local;
  Record* r = &local;
  if (q != 0) {
    if (Errc e = take_record(r); e != Errc::Ok) return edgekit::fail(e);
    r->state_ = q == 1 ? kAwaitPubAck : kAwaitPubRec;
  }
  r->topic_ = topic;
  r->payload_ = payload;
  r->flags_ = static_cast<std::uint8_t>(q | (retain ? 4u : 0u));
  const std::uint16_t id = r->packet_id_;
  if (Errc e = send_publish(*r, false, to_ms(timeout)); e != Errc::Ok) {
    // The call reports the failure; the record is not reported again as lost.
    if (q != 0) remove(*r);
    return edgekit::fail(close_with(e));
  }
  return id;
}

Errc Client::request(std::uint8_t state, const void* filters, std::size_t count,
                     std::uint16_t& id, std::uint32_t timeout_ms) noexcept {
  const bool sub = state == kAwaitSubAck;
  if (count == 0) return Errc::EmptySubscriptionList;
  if (count > 255) return Errc::InvalidArgument;
  const auto* fs = static_cast<const Filter*>(filters);
  const auto* us = static_cast<const std::string_view*>(filters);
  std::size_t remaining = 2;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string_view f = sub ? fs[i].filter : us[i];
    if (Result<void> r = validate_topic_filter(f); !r) return r.error();
    if (sub && static_cast<unsigned>(fs[i].qos) > 2) return Errc::InvalidQoS;
    remaining += 2 + f.size() + (sub ? 1 : 0);
  }
  Record* r = nullptr;
  if (Errc e = take_record(r); e != Errc::Ok) return e;
  r->state_ = state;
  r->flags_ = static_cast<std::uint8_t>(count);
  id = r->packet_id_;
  // Written in batches of pieces: [header, id, length 0] filter 0 [QoS 0, length 1] filter 1
  // ... [QoS n-1]. The batches follow each other on the wire as one packet.
  std::uint8_t bytes[9 + 3 * (Pieces::kMax / 2)];
  std::uint8_t* start = bytes;
  std::uint8_t* e = put16(put_header(bytes, sub ? 0x82 : 0xA2, static_cast<std::uint32_t>(remaining)),
                          id);
  Pieces p;
  Errc err = Errc::Ok;
  for (std::size_t i = 0; i < count && err == Errc::Ok; ++i) {
    const std::string_view f = sub ? fs[i].filter : us[i];
    e = put16(e, f.size());
    p.add(start, e);
    p.add(f.data(), f.size());
    start = e;
    if (sub) *e++ = static_cast<std::uint8_t>(fs[i].qos);
    if (p.n + 2 >= Pieces::kMax || i + 1 == count) {
      p.add(start, e);
      err = write(p, timeout_ms);  // each batch of pieces within the call's timeout
      p.n = 0;
      start = e = bytes;
    }
  }
  if (err != Errc::Ok) {
    remove(*r);
    return close_with(err);
  }
  return Errc::Ok;
}

Result<std::uint16_t> Client::subscribe(std::span<const Filter> filters,
                                        Duration timeout) noexcept {
  if (transport_ == nullptr) return edgekit::fail(Errc::NotConnected);
  std::uint16_t id = 0;
  if (Errc e = request(kAwaitSubAck, filters.data(), filters.size(), id, to_ms(timeout));
      e != Errc::Ok)
    return edgekit::fail(e);
  return id;
}

Result<std::uint16_t> Client::unsubscribe(std::span<const std::string_view> filters,
                                          Duration timeout) noexcept {
  if (transport_ == nullptr) return edgekit::fail(Errc::NotConnected);
  std::uint16_t id = 0;
  if (Errc e = request(kAwaitUnsubAck, filters.data(), filters.size(), id, to_ms(timeout));
      e != Errc::Ok)
    return edgekit::fail(e);
  return id;
}

Result<void> Client::disconnect(Duration timeout) noexcept {
  if (transport_ == nullptr) return edgekit::fail(Errc::NotConnected);
  static constexpr std::uint8_t kDisconnect[] = {0xE0, 0};
  const Errc e = write_small(kDisconnect, 2, to_ms(timeout));
  close_with(Errc::Ok);
  if (e != Errc::Ok) return edgekit::fail(e);
  return {};
}

}  // namespace edgekit::mqtt::lite
