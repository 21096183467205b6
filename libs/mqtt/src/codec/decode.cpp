// Decoding of untrusted bytes (spec 3.x). Every read is bounds-checked by wire::Reader; every
// rule the spec places on a received packet is checked here and reported as a precise Errc.
// Decoded packets hold views into the frame.
#include <cstddef>
#include <memory>
#include <type_traits>

#include "wire.hpp"

namespace edgekit::mqtt {
namespace {

using wire::Reader;

const std::uint8_t* bytes_of(Bytes b) noexcept {
  return reinterpret_cast<const std::uint8_t*>(b.data());
}

constexpr unsigned bit(PacketType t) { return static_cast<unsigned>(t); }

// The decoders below take the frame by reference: it is handed down through dec_*, open_v and
// open, and by value each level would copy its two words through the stack (about 130 B of a
// client image).

// Delimits the body of a frame of type `t` and checks the fixed-header flags (a PUBLISH's are
// its own: its callers hand publish_body the frame's low four bits).
Errc open(const Bytes& frame, PacketType t, Reader& r) noexcept {
  auto fr = read_frame(frame);
  if (!fr) return fr.error();
  // The frame must be exactly one packet: as long as its remaining length says.
  if (!fr->complete || fr->header.packet_size() != frame.size()) return Errc::MalformedPacket;
  if (fr->header.type != t) return Errc::InvalidPacketType;
  const std::uint8_t flags = fr->header.flags;
  // [MQTT-2.2.2-1] Where a flag bit is marked as "Reserved", it is reserved for future use and
  // MUST be set to the value listed: 0b0010 for PUBREL [MQTT-3.6.1-1], SUBSCRIBE [MQTT-3.8.1-1]
  // and UNSUBSCRIBE [MQTT-3.10.1-1], 0 for every other packet but PUBLISH.
  if (t != PacketType::Publish) {
    const bool two =
        t == PacketType::PubRel || t == PacketType::Subscribe || t == PacketType::Unsubscribe;
    if (flags != (two ? 0x02 : 0x00)) return Errc::ReservedFlagsSet;
  }
  r = Reader(bytes_of(frame) + fr->header.header_size, fr->header.remaining_length);
  return Errc::Ok;
}

// Version check plus open(). Callers compute `v5` themselves (wire::is_v5), so that it stays a
// compile-time constant in a one-version build and the other version's code drops out.
Errc open_v(const Bytes& frame, PacketType t, Version v, Reader& r) noexcept {
  if (Errc e = wire::check_version(v); e != Errc::Ok) return e;
  // AUTH (type 15) is reserved in MQTT 3.1.1.
  if (t == PacketType::Auth && !wire::is_v5(v)) return Errc::InvalidPacketType;
  return open(frame, t, r);
}

// The error of the reader, or TrailingBytes when every field was read and bytes remain.
Errc finish(const Reader& r) noexcept {
  if (!r.ok()) return r.error();
  return r.left() != 0 ? Errc::TrailingBytes : Errc::Ok;
}

// [MQTT-2.2.1-3] Packet identifiers are non-zero.
std::uint16_t packet_id(Reader& r) noexcept {
  const std::uint16_t id = r.u16();
  if (r.ok() && id == 0) r.fail(Errc::PacketIdZero);
  return id;
}

Errc dec_connect(const Bytes& frame, Connect& c) noexcept {
  Reader r;
  if (Errc e = open(frame, PacketType::Connect, r); e != Errc::Ok) return e;
  // [MQTT-3.1.2-1] The protocol name MUST be the UTF-8 String "MQTT".
  const Bytes name = r.bin();
  // Compared byte by byte: string_view's operator== would link memcmp from libc for four bytes.
  const auto* n = bytes_of(name);
  if (r.ok() && !(name.size() == 4 && n[0] == 'M' && n[1] == 'Q' && n[2] == 'T' && n[3] == 'T'))
    return Errc::InvalidProtocolName;
  const std::uint8_t level = r.u8();
  const std::uint8_t flags = r.u8();
  c.keep_alive = r.u16();
  if (!r.ok()) return r.error();
  // [MQTT-3.1.2-2] The protocol level is 4 (3.1.1) or 5 (5.0).
  if (level != 4 && level != 5) return Errc::UnsupportedProtocolVersion;
  c.version = static_cast<Version>(level);
  if (Errc e = wire::check_version(c.version); e != Errc::Ok) return e;
  const bool v5 = wire::is_v5(c.version);
  // [MQTT-3.1.2-3] The Server MUST validate that the reserved flag in the CONNECT packet is set
  // to 0.
  if (flags & 0x01) return Errc::InvalidConnectFlags;
  const bool will = flags & 0x04;
  const auto will_qos = static_cast<std::uint8_t>((flags >> 3) & 0x03);
  const bool will_retain = flags & 0x20;
  // [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15] Without the Will Flag, Will QoS and Will
  // Retain MUST be 0. [MQTT-3.1.2-14] With it, Will QoS MUST NOT be 3.
  if (!will && (will_qos != 0 || will_retain)) return Errc::InvalidConnectFlags;
  if (will_qos == 3) return Errc::InvalidConnectFlags;
  // [MQTT-3.1.2-22] (3.1.1) If the User Name Flag is set to 0, the Password Flag MUST be 0.
  if (!v5 && (flags & 0x40) && !(flags & 0x80)) return Errc::InvalidConnectFlags;
  c.clean_start = flags & 0x02;
  if (v5) wire::read_properties(r, bit(PacketType::Connect), c.properties);
  // [MQTT-3.1.3-4] The ClientId MUST be a UTF-8 Encoded String.
  c.client_id = r.str();
  if (will) {
    Will& w = c.will.emplace();
    if (v5) wire::read_properties(r, wire::kWillBit, w.properties);
    // [MQTT-3.1.3-11] The Will Topic MUST be a UTF-8 Encoded String; it is a Topic Name.
    w.topic = r.str();
    if (r.ok()) {
      if (Errc e = wire::check_topic_name(w.topic); e != Errc::Ok) r.fail(e);
    }
    w.payload = r.bin();
    w.qos = static_cast<QoS>(will_qos);
    w.retain = will_retain;
  }
  // [MQTT-3.1.3-12] The User Name MUST be a UTF-8 Encoded String.
  if (flags & 0x80) c.username = r.str();
  if (flags & 0x40) c.password = r.bin();
  return finish(r);
}

// The bodies of the packets a server sends a client, read from `r` as open_v left it:
// decode_from_server opens the frame once for all of them (code size); the dec_* wrappers below
// open it for decode().
Errc connack_body(Reader& r, Version v, ConnAck& a) noexcept {
  const bool v5 = wire::is_v5(v);
  const std::uint8_t ack_flags = r.u8();
  const std::uint8_t code = r.u8();
  if (!r.ok()) return r.error();
  // [MQTT-3.2.2-1] Bits 7-1 of the Connect Acknowledge Flags are reserved and MUST be 0.
  if (ack_flags & 0xFE) return Errc::MalformedPacket;
  a.session_present = ack_flags & 0x01;
  if (v5) {
    a.reason_code = static_cast<ReasonCode>(code);
    if (!wire::reason_allowed(a.reason_code, PacketType::ConnAck)) return Errc::InvalidReasonCode;
  } else {
    // 3.1.1 return codes 0..5; 6..255 are reserved (3.2.2.3).
    if (code > 5) return Errc::InvalidReasonCode;
    a.reason_code = wire::kV311ConnAck[code];
  }
  // [MQTT-3.2.2-6] (5.0) / [MQTT-3.2.2-4] (3.1.1) A refusing CONNACK has Session Present 0.
  if (a.session_present && is_error(a.reason_code)) return Errc::MalformedPacket;
  if (v5) wire::read_properties(r, bit(PacketType::ConnAck), a.properties);
  return finish(r);
}

// `flags`: the fixed header's low four bits.
Errc publish_body(Reader& r, std::uint8_t flags, Version v, Publish& p) noexcept {
  const bool v5 = wire::is_v5(v);
  const auto q = static_cast<std::uint8_t>((flags >> 1) & 0x03);
  // [MQTT-3.3.1-4] A PUBLISH packet MUST NOT have both QoS bits set to 1.
  if (q == 3) return Errc::InvalidQoS;
  if (!wire::kQoS2 && q == 2) return Errc::QoS2Disabled;
  // [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
  if (q == 0 && (flags & 0x08)) return Errc::ReservedFlagsSet;
  p.qos = static_cast<QoS>(q);
  p.dup = flags & 0x08;
  p.retain = flags & 0x01;
  // [MQTT-3.3.2-1] The Topic Name MUST be a UTF-8 Encoded String.
  p.topic = r.str();
  if (q != 0) p.packet_id = packet_id(r);
  if (v5) wire::read_properties(r, bit(PacketType::Publish), p.properties);
  if (!r.ok()) return r.error();
  if (p.topic.empty()) {
    // A zero-length Topic Name is allowed only with a Topic Alias (5.0, 3.3.2.3.4).
    if (!(v5 && detail::has_topic_alias(p.properties))) return Errc::EmptyTopic;
  } else {
    // [MQTT-3.3.2-2] The Topic Name in the PUBLISH packet MUST NOT contain wildcard characters.
    if (Errc e = wire::check_topic_name(p.topic); e != Errc::Ok) return e;
  }
  p.payload = r.rest();
  return Errc::Ok;
}

// PUBACK, PUBREC, PUBREL, PUBCOMP (id != nullptr), DISCONNECT and AUTH (id == nullptr): in MQTT 5
// the reason code and the property length may be left out, meaning Success and no properties.
Errc ack_body(Reader& r, Version v, PacketType t, std::uint16_t* id, ReasonCode& rc,
              Properties& props) noexcept {
  const bool v5 = wire::is_v5(v);
  if (id != nullptr) *id = packet_id(r);
  if (v5 && r.ok() && r.left() != 0) {
    rc = static_cast<ReasonCode>(r.u8());
    if (!wire::reason_allowed(rc, t)) return Errc::InvalidReasonCode;
    if (r.left() != 0) wire::read_properties(r, bit(t), props);
  }
  return finish(r);
}

Subscription read_subscription(Bytes raw, std::size_t& pos) {
  Reader r(bytes_of(raw) + pos, raw.size() - pos);
  Subscription s;
  s.filter = as_string(r.bin());
  const std::uint8_t o = r.u8();
  s.options.qos = static_cast<QoS>(o & 0x03);
  s.options.no_local = o & 0x04;
  s.options.retain_as_published = o & 0x08;
  s.options.retain_handling = static_cast<RetainHandling>((o >> 4) & 0x03);
  pos = static_cast<std::size_t>(r.pos() - bytes_of(raw));
  return s;
}

std::string_view read_filter(Bytes raw, std::size_t& pos) {
  Reader r(bytes_of(raw) + pos, raw.size() - pos);
  const std::string_view f = as_string(r.bin());
  pos = static_cast<std::size_t>(r.pos() - bytes_of(raw));
  return f;
}

// SUBSCRIBE (with options) and UNSUBSCRIBE: packet id, properties, a non-empty list of filters.
Errc dec_sub(const Bytes& frame, Version v, PacketType t, std::uint16_t& id, Properties& props,
             Bytes& raw, std::size_t& count) noexcept {
  Reader r;
  if (Errc e = open_v(frame, t, v, r); e != Errc::Ok) return e;
  const bool v5 = wire::is_v5(v);
  id = packet_id(r);
  if (v5) wire::read_properties(r, bit(t), props);
  if (!r.ok()) return r.error();
  // [MQTT-3.8.3-3] / [MQTT-3.10.3-2] The payload MUST contain at least one topic filter.
  if (r.left() == 0) return Errc::EmptySubscriptionList;
  raw = Bytes(reinterpret_cast<const std::byte*>(r.pos()), r.left());
  const bool with_options = t == PacketType::Subscribe;
  count = 0;
  while (r.ok() && r.left() != 0) {
    const std::string_view f = r.str();
    const std::uint8_t o = with_options ? r.u8() : 0;
    if (!r.ok()) break;
    if (Errc e = wire::check_topic_filter(f); e != Errc::Ok) return e;
    if (with_options) {
      // [MQTT-3-8.3-4] (3.1.1) The upper 6 bits of the options byte are reserved and MUST be 0.
      // [MQTT-3.8.3-5] (5.0) Bits 6 and 7 are reserved and MUST be 0.
      if (o & (v5 ? 0xC0 : 0xFC)) return Errc::InvalidSubscriptionOptions;
      // Retain Handling 3 is a Protocol Error (3.8.3.1).
      if (((o >> 4) & 0x03) == 3) return Errc::InvalidSubscriptionOptions;
      // QoS 3 is a Protocol Error (3.8.3.1).
      if ((o & 0x03) == 3) return Errc::InvalidQoS;
      // [MQTT-3.8.3-4] (5.0) No Local MUST NOT be set on a Shared Subscription.
      if ((o & 0x04) && wire::is_shared(f)) return Errc::InvalidSubscriptionOptions;
    }
    ++count;
  }
  return r.error();
}

// SUBACK and UNSUBACK: packet id, properties (5.0), reason codes (SUBACK always, UNSUBACK 5.0).
Errc suback_body(Reader& r, Version v, PacketType t, std::uint16_t& id, ReasonCodes& codes,
                 Properties& props) noexcept {
  const bool v5 = wire::is_v5(v);
  id = packet_id(r);
  if (!v5 && t == PacketType::UnsubAck) return finish(r);
  if (v5) wire::read_properties(r, bit(t), props);
  if (!r.ok()) return r.error();
  // One reason code per filter of the SUBSCRIBE / UNSUBSCRIBE, which had at least one.
  if (r.left() == 0) return Errc::MalformedPacket;
  const std::size_t n = r.left();
  const std::uint8_t* b = r.take(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto rc = static_cast<ReasonCode>(b[i]);
    // 3.1.1 SUBACK return codes are 0x00, 0x01, 0x02 and 0x80 (3.9.3) [MQTT-3.9.3-2].
    const bool ok = v5 ? wire::reason_allowed(rc, t) : (b[i] <= 2 || b[i] == 0x80);
    if (!ok) return Errc::InvalidReasonCode;
  }
  // ReasonCode is a one-byte enum: the codes are viewed in place.
  codes = ReasonCodes(reinterpret_cast<const ReasonCode*>(b), n);
  return Errc::Ok;
}

// Only PUBLISH has flags of its own; a build without QoS 2 refuses its three acks first.
constexpr bool qos2_refused(PacketType t) noexcept {
  return !wire::kQoS2 &&
         (t == PacketType::PubRec || t == PacketType::PubRel || t == PacketType::PubComp);
}

Errc dec_connack(const Bytes& frame, Version v, ConnAck& a) noexcept {
  Reader r;
  if (Errc e = open_v(frame, PacketType::ConnAck, v, r); e != Errc::Ok) return e;
  return connack_body(r, v, a);
}

Errc dec_publish(const Bytes& frame, Version v, Publish& p) noexcept {
  Reader r;
  if (Errc e = open_v(frame, PacketType::Publish, v, r); e != Errc::Ok) return e;
  return publish_body(r, static_cast<std::uint8_t>(frame[0]) & 0x0F, v, p);
}

// PUBACK, PUBREC, PUBREL, PUBCOMP (id != nullptr), DISCONNECT and AUTH (id == nullptr).
Errc dec_ack(const Bytes& frame, Version v, PacketType t, std::uint16_t* id, ReasonCode& rc,
             Properties& props) noexcept {
  if (qos2_refused(t)) return Errc::QoS2Disabled;
  Reader r;
  if (Errc e = open_v(frame, t, v, r); e != Errc::Ok) return e;
  return ack_body(r, v, t, id, rc, props);
}

Errc dec_suback(const Bytes& frame, Version v, PacketType t, std::uint16_t& id, ReasonCodes& codes,
                Properties& props) noexcept {
  Reader r;
  if (Errc e = open_v(frame, t, v, r); e != Errc::Ok) return e;
  return suback_body(r, v, t, id, codes, props);
}

Errc dec_empty(const Bytes& frame, Version v, PacketType t) noexcept {
  Reader r;
  if (Errc e = open_v(frame, t, v, r); e != Errc::Ok) return e;
  return finish(r);
}

// Per-type entry points over the internal decoders, shared by decode() and decode_x().
Errc dec(const Bytes& f, Version, Connect& p) noexcept { return dec_connect(f, p); }
Errc dec(const Bytes& f, Version v, ConnAck& p) noexcept { return dec_connack(f, v, p); }
Errc dec(const Bytes& f, Version v, Publish& p) noexcept { return dec_publish(f, v, p); }
template <PacketType T>
Errc dec(const Bytes& f, Version v, Ack<T>& p) noexcept {
  return dec_ack(f, v, T, &p.packet_id, p.reason_code, p.properties);
}
Errc dec(const Bytes& f, Version v, Subscribe& p) noexcept {
  Bytes raw;
  std::size_t n = 0;
  Errc e = dec_sub(f, v, PacketType::Subscribe, p.packet_id, p.properties, raw, n);
  p.subscriptions = Subscriptions::from_wire(raw, n, &read_subscription);
  return e;
}
Errc dec(const Bytes& f, Version v, SubAck& p) noexcept {
  return dec_suback(f, v, PacketType::SubAck, p.packet_id, p.reason_codes, p.properties);
}
Errc dec(const Bytes& f, Version v, Unsubscribe& p) noexcept {
  Bytes raw;
  std::size_t n = 0;
  Errc e = dec_sub(f, v, PacketType::Unsubscribe, p.packet_id, p.properties, raw, n);
  p.filters = TopicFilters::from_wire(raw, n, &read_filter);
  return e;
}
Errc dec(const Bytes& f, Version v, UnsubAck& p) noexcept {
  return dec_suback(f, v, PacketType::UnsubAck, p.packet_id, p.reason_codes, p.properties);
}
Errc dec(const Bytes& f, Version v, PingReq&) noexcept {
  return dec_empty(f, v, PacketType::PingReq);
}
Errc dec(const Bytes& f, Version v, PingResp&) noexcept {
  return dec_empty(f, v, PacketType::PingResp);
}
Errc dec(const Bytes& f, Version v, Disconnect& p) noexcept {
  return dec_ack(f, v, PacketType::Disconnect, nullptr, p.reason_code, p.properties);
}
Errc dec(const Bytes& f, Version v, Auth& p) noexcept {
  return dec_ack(f, v, PacketType::Auth, nullptr, p.reason_code, p.properties);
}

// Both decode the packet straight into the returned Result: one named object returned on every
// path (so the return is elided) and built in place, because a Packet is ~900 bytes and a copy of
// it per received packet was the largest user-space cost of receiving a PUBLISH.
template <class T>
Result<T> decode_as(Bytes frame, Version v) noexcept {
  Result<T> out{std::in_place};
  if (Errc e = dec(frame, v, *out); e != Errc::Ok) out = Result<T>(fail(e));
  return out;
}

template <std::size_t I>
Result<Packet> decode_into(Bytes frame, Version v) noexcept {
  Result<Packet> out{std::in_place, std::in_place_index<I>};
  if (Errc e = dec(frame, v, *std::get_if<I>(&*out)); e != Errc::Ok) out = Result<Packet>(fail(e));
  return out;
}

}  // namespace

Result<Packet> decode(Bytes frame, Version version) noexcept {
  if (frame.empty()) return fail(Errc::MalformedPacket);
  switch (static_cast<std::uint8_t>(frame[0]) >> 4) {
    case 1: return decode_into<0>(frame, version);
    case 2: return decode_into<1>(frame, version);
    case 3: return decode_into<2>(frame, version);
    case 4: return decode_into<3>(frame, version);
    case 5: return decode_into<4>(frame, version);
    case 6: return decode_into<5>(frame, version);
    case 7: return decode_into<6>(frame, version);
    case 8: return decode_into<7>(frame, version);
    case 9: return decode_into<8>(frame, version);
    case 10: return decode_into<9>(frame, version);
    case 11: return decode_into<10>(frame, version);
    case 12: return decode_into<11>(frame, version);
    case 13: return decode_into<12>(frame, version);
    case 14: return decode_into<13>(frame, version);
    case 15: return decode_into<14>(frame, version);
    default: return fail(Errc::InvalidPacketType);  // [MQTT-2.1.2] type 0 is reserved
  }
}

namespace {
// The value of the first member of packet struct T, as its default: a packet built from it
// (`T(first)`, aggregate initialisation) gets every other member from its initialiser and its
// `Properties` from their constructor, while `T()` (value-initialisation) would zero-fill the
// whole struct first and then run that constructor, which zero-fills the properties again.
template <class T>
constexpr auto first_member_default() noexcept {
  if constexpr (std::is_same_v<T, ConnAck>) {
    static_assert(offsetof(ConnAck, session_present) == 0);
    return false;
  } else if constexpr (std::is_same_v<T, Publish>) {
    static_assert(offsetof(Publish, topic) == 0);
    return std::string_view{};
  } else if constexpr (std::is_same_v<T, Disconnect> || std::is_same_v<T, Auth>) {
    static_assert(offsetof(T, reason_code) == 0);
    return ReasonCode::Success;
  } else {
    // PUBACK..PUBCOMP, SUBACK, UNSUBACK.
    static_assert(offsetof(T, packet_id) == 0);
    return std::uint16_t{0};
  }
}

// Makes `out` a fresh alternative I, built anew in place: every alternative is trivially
// destructible, so nothing needs ending first, and `emplace` would also mark the variant
// valueless before building it (a store per site that only matters when construction can throw:
// code size).
static_assert(std::is_trivially_destructible_v<Packet>);
template <std::size_t I>
auto& fresh(Packet& out) noexcept {
#if defined(__cpp_aggregate_paren_init) && __cpp_aggregate_paren_init >= 201902L
  using T = std::variant_alternative_t<I, Packet>;
  if constexpr (std::is_empty_v<T>) {
    std::construct_at(&out, std::in_place_index<I>);
  } else {
    std::construct_at(&out, std::in_place_index<I>, first_member_default<T>());
  }
#else
  // A compiler without parenthesised aggregate initialisation (clang before 16, the fuzz
  // builds): value-initialisation, the same packet after one more zero-fill.
  std::construct_at(&out, std::in_place_index<I>);
#endif
  return *std::get_if<I>(&out);
}

// Makes alternative I of `out` (PUBACK..PUBCOMP, DISCONNECT or AUTH) and points at its fields,
// for the one call of dec_ack that decodes all six shapes.
template <std::size_t I>
Properties* ack_fields(Packet& out, std::uint16_t*& id, ReasonCode*& rc) noexcept {
  auto& a = fresh<I>(out);
  if constexpr (requires { a.packet_id; }) id = &a.packet_id;
  rc = &a.reason_code;
  return &a.properties;
}

// The same for SUBACK and UNSUBACK and their one call of dec_suback.
template <std::size_t I>
Properties* suback_fields(Packet& out, std::uint16_t*& id, ReasonCodes*& codes) noexcept {
  auto& a = fresh<I>(out);
  id = &a.packet_id;
  codes = &a.reason_codes;
  return &a.properties;
}
}  // namespace

Result<void> decode_from_server(Bytes frame, Version version, Packet& out) noexcept {
  if (frame.empty()) return fail(Errc::MalformedPacket);
  const std::uint8_t type = static_cast<std::uint8_t>(frame[0]) >> 4;
  const auto t = static_cast<PacketType>(type);
  // [MQTT-2.1.2] Type 0 is reserved. Only what a server may send a client is decoded: CONNECT,
  // SUBSCRIBE, UNSUBSCRIBE and PINGREQ go from client to server only (spec 2.1.2), so their
  // decoders stay out of a client image. (Bit n: type n comes from servers.)
  constexpr std::uint16_t kFromServer = 0xEAFC;  // 2-7, 9, 11, 13-15
  if (type == 0) return fail(Errc::InvalidPacketType);
  if (((kFromServer >> type) & 1u) == 0) return fail(Errc::ProtocolError);
  if (qos2_refused(t)) return fail(Errc::QoS2Disabled);
  // One opening of the frame for every type, then the body of the type (code size); the checks
  // and errors are decode()'s, in the same order.
  Reader r;
  Errc e = open_v(frame, t, version, r);
  if (e != Errc::Ok) return fail(e);
  // The acks, DISCONNECT and AUTH share one body, and so do SUBACK and UNSUBACK: only making
  // the typed alternative differs per type, and one call of ack_body (or suback_body, when
  // `codes` is set) below serves them all.
  Properties* ack = nullptr;
  std::uint16_t* id = nullptr;
  ReasonCode* rc = nullptr;
  ReasonCodes* codes = nullptr;
  switch (type) {
    case 2: e = connack_body(r, version, fresh<1>(out)); break;
    case 3:
      e = publish_body(r, static_cast<std::uint8_t>(frame[0]) & 0x0F, version, fresh<2>(out));
      break;
    case 4: ack = ack_fields<3>(out, id, rc); break;
    case 5: ack = ack_fields<4>(out, id, rc); break;
    case 6: ack = ack_fields<5>(out, id, rc); break;
    case 7: ack = ack_fields<6>(out, id, rc); break;
    case 9: ack = suback_fields<8>(out, id, codes); break;
    case 11: ack = suback_fields<10>(out, id, codes); break;
    case 13:
      (void)fresh<12>(out);
      e = finish(r);
      break;
    case 14: ack = ack_fields<13>(out, id, rc); break;
    default: ack = ack_fields<14>(out, id, rc); break;  // 15, AUTH
  }
  if (ack != nullptr) {
    e = codes != nullptr ? suback_body(r, version, t, *id, *codes, *ack)
                         : ack_body(r, version, t, id, *rc, *ack);
  }
  if (e != Errc::Ok) return fail(e);
  return {};
}

Result<Connect> decode_connect(Bytes frame) noexcept {
  return decode_as<Connect>(frame, Version::V5);
}
#define EDGEKIT_MQTT_DEFINE_DECODE(name, T) \
  Result<T> name(Bytes frame, Version version) noexcept { return decode_as<T>(frame, version); }
EDGEKIT_MQTT_DEFINE_DECODE(decode_connack, ConnAck)
EDGEKIT_MQTT_DEFINE_DECODE(decode_publish, Publish)
EDGEKIT_MQTT_DEFINE_DECODE(decode_puback, PubAck)
EDGEKIT_MQTT_DEFINE_DECODE(decode_pubrec, PubRec)
EDGEKIT_MQTT_DEFINE_DECODE(decode_pubrel, PubRel)
EDGEKIT_MQTT_DEFINE_DECODE(decode_pubcomp, PubComp)
EDGEKIT_MQTT_DEFINE_DECODE(decode_subscribe, Subscribe)
EDGEKIT_MQTT_DEFINE_DECODE(decode_suback, SubAck)
EDGEKIT_MQTT_DEFINE_DECODE(decode_unsubscribe, Unsubscribe)
EDGEKIT_MQTT_DEFINE_DECODE(decode_unsuback, UnsubAck)
EDGEKIT_MQTT_DEFINE_DECODE(decode_pingreq, PingReq)
EDGEKIT_MQTT_DEFINE_DECODE(decode_pingresp, PingResp)
EDGEKIT_MQTT_DEFINE_DECODE(decode_disconnect, Disconnect)
EDGEKIT_MQTT_DEFINE_DECODE(decode_auth, Auth)
#undef EDGEKIT_MQTT_DEFINE_DECODE

}  // namespace edgekit::mqtt
