// Encoding (spec 3.x): each packet has one emitter that both counts/validates (Writer without a
// buffer) and writes (Writer with a buffer), so size and bytes can never disagree. `run` does the
// two passes and the fixed header.
#include <cstddef>

#include "request.hpp"
#include "wire.hpp"

namespace edgekit::mqtt {
namespace {

using wire::Writer;

// The member of type M at `offset` in the packet at `packet` (the offsetof of that very member,
// so alignment holds): emitters that serve several packet structs laid out alike read their
// fields this way (code size).
template <class M>
const M& field(const void* packet, std::size_t offset) noexcept {
  const void* m = static_cast<const char*>(packet) + offset;
  return *static_cast<const M*>(m);
}

// The fields shared by SUBACK and UNSUBACK.
struct SubAckFields {
  PacketType type;
  std::uint16_t packet_id;
  ReasonCodes reason_codes;
  const Properties* properties;
};

constexpr unsigned bit(PacketType t) { return static_cast<unsigned>(t); }

Errc check_qos(QoS q) noexcept {
  const auto v = static_cast<std::uint8_t>(q);
  if (v > 2) return Errc::InvalidQoS;
  if (!wire::kQoS2 && v == 2) return Errc::QoS2Disabled;
  return Errc::Ok;
}

// 3.1.1 has no properties: refuse to drop what the caller set. Without MQTT 5 in the build
// `Properties` is empty, so there is nothing to check.
Errc check_v311_properties(bool v5, const Properties& p) noexcept {
#if EDGEKIT_MQTT_ENABLE_V5
  return v5 ? Errc::Ok : wire::check_no_properties(p);
#else
  (void)v5;
  (void)p;
  return Errc::Ok;
#endif
}

Errc emit_connect(const Connect& c, bool v5, Writer& w, std::uint8_t& first) noexcept {
  first = 0x10;
  if (w.validate) {
    if (c.version != (v5 ? Version::V5 : Version::V311)) return Errc::InvalidArgument;
    if (Errc e = wire::check_string(c.client_id); e != Errc::Ok) return e;
    // [MQTT-3.1.3-7] (3.1.1) A zero-byte ClientId requires CleanSession set to 1.
    if (!v5 && c.client_id.empty() && !c.clean_start) return Errc::InvalidArgument;
    if (c.username) {
      if (Errc e = wire::check_string(*c.username); e != Errc::Ok) return e;
    }
    if (c.password && c.password->size() > 65535) return Errc::StringTooLong;
    // [MQTT-3.1.2-22] (3.1.1) If the User Name Flag is 0, the Password Flag MUST be 0.
    if (!v5 && c.password && !c.username) return Errc::InvalidArgument;
    if (c.will) {
      if (Errc e = wire::check_topic_name(c.will->topic); e != Errc::Ok) return e;
      if (c.will->payload.size() > 65535) return Errc::StringTooLong;
      if (Errc e = check_qos(c.will->qos); e != Errc::Ok) return e;
      if (Errc e = check_v311_properties(v5, c.will->properties); e != Errc::Ok) return e;
    }
    if (Errc e = check_v311_properties(v5, c.properties); e != Errc::Ok) return e;
  }
  w.bin("MQTT", 4);
  w.u8(v5 ? 5 : 4);
  std::uint8_t flags = c.clean_start ? 0x02 : 0x00;
  if (c.will) {
    flags |= 0x04 | static_cast<std::uint8_t>(static_cast<std::uint8_t>(c.will->qos) << 3);
    if (c.will->retain) flags |= 0x20;
  }
  if (c.password) flags |= 0x40;
  if (c.username) flags |= 0x80;
  w.u8(flags);
  w.u16(c.keep_alive);
  if (v5) {
    if (Errc e = wire::put_properties(w, c.properties, bit(PacketType::Connect)); e != Errc::Ok)
      return e;
  }
  w.str(c.client_id);
  if (c.will) {
    if (v5) {
      if (Errc e = wire::put_properties(w, c.will->properties, wire::kWillBit); e != Errc::Ok)
        return e;
    }
    w.str(c.will->topic);
    w.bin(c.will->payload.data(), c.will->payload.size());
  }
  if (c.username) w.str(*c.username);
  if (c.password) w.bin(c.password->data(), c.password->size());
  return Errc::Ok;
}

Errc emit_connack(const ConnAck& a, bool v5, Writer& w, std::uint8_t& first) noexcept {
  first = 0x20;
  auto code = static_cast<std::uint8_t>(a.reason_code);
  if (!v5) {
    std::uint8_t i = 0;
    while (i < 6 && wire::kV311ConnAck[i] != a.reason_code) ++i;
    if (i == 6) return Errc::InvalidReasonCode;
    code = i;
  }
  if (w.validate) {
    if (v5 && !wire::reason_allowed(a.reason_code, PacketType::ConnAck))
      return Errc::InvalidReasonCode;
    // [MQTT-3.2.2-6] (5.0) / [MQTT-3.2.2-4] (3.1.1) Session Present MUST be 0 on a failure.
    if (a.session_present && is_error(a.reason_code)) return Errc::InvalidArgument;
    if (Errc e = check_v311_properties(v5, a.properties); e != Errc::Ok) return e;
  }
  w.u8(a.session_present ? 1 : 0);
  w.u8(code);
  if (v5) return wire::put_properties(w, a.properties, bit(PacketType::ConnAck));
  return Errc::Ok;
}

Errc emit_publish(const Publish& p, bool v5, Writer& w, std::uint8_t& first) noexcept {
  const auto q = static_cast<std::uint8_t>(p.qos);
  if (w.validate) {
    if (Errc e = check_qos(p.qos); e != Errc::Ok) return e;
    // [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
    if (p.dup && q == 0) return Errc::InvalidArgument;
    // [MQTT-2.2.1-3] A PUBLISH with QoS > 0 MUST contain a non-zero Packet Identifier.
    if (q != 0 && p.packet_id == 0) return Errc::PacketIdZero;
    // MQTT 5 lets an empty topic stand for the one a Topic Alias names (3.3.2.3.4).
    if (!(v5 && p.topic.empty() && detail::has_topic_alias(p.properties))) {
      if (Errc e = wire::check_topic_name(p.topic); e != Errc::Ok) return e;
    }
    if (Errc e = check_v311_properties(v5, p.properties); e != Errc::Ok) return e;
  }
  first = static_cast<std::uint8_t>(0x30 | (p.dup ? 0x08 : 0) | (q << 1) | (p.retain ? 1 : 0));
  w.str(p.topic);
  if (q != 0) w.u16(p.packet_id);
  if (v5) {
    if (Errc e = wire::put_properties(w, p.properties, bit(PacketType::Publish)); e != Errc::Ok)
      return e;
  }
  w.payload = p.payload.size();
  if (!w.header_only) w.raw(p.payload.data(), p.payload.size());
  return Errc::Ok;
}

// PUBACK..PUBCOMP (with a packet id) and DISCONNECT / AUTH (without): one emitter for the six
// (code size), which reads the packet by its layout: the acks are {packet id, reason code,
// properties}, DISCONNECT and AUTH {reason code, properties}, the properties at one offset. The
// reason code and the properties are left out when they say nothing (3.4.2.1, 3.14.2.1,
// 3.15.2.1).
static_assert(offsetof(PubAck, properties) == offsetof(Disconnect, properties) &&
              offsetof(PubAck, properties) == offsetof(Auth, properties) &&
              offsetof(Disconnect, reason_code) == offsetof(Auth, reason_code));

[[gnu::always_inline]] inline Errc emit_ack_fields(PacketType t, std::uint16_t id, ReasonCode rc,
                                                   const Properties& props, bool v5, Writer& w,
                                                   std::uint8_t& first) noexcept {
  const bool has_id = t <= PacketType::PubComp;
  first = static_cast<std::uint8_t>((bit(t) << 4) | (t == PacketType::PubRel ? 0x02 : 0x00));
  if (w.validate) {
    if constexpr (!wire::kQoS2) {
      if (t == PacketType::PubRec || t == PacketType::PubRel || t == PacketType::PubComp)
        return Errc::QoS2Disabled;
    }
    if (t == PacketType::Auth && !v5) return Errc::InvalidArgument;  // AUTH is MQTT 5 only
    if (has_id && id == 0) return Errc::PacketIdZero;  // [MQTT-2.2.1-3]
    if (v5 && !wire::reason_allowed(rc, t)) return Errc::InvalidReasonCode;
    if (Errc e = check_v311_properties(v5, props); e != Errc::Ok) return e;
  }
  if (has_id) w.u16(id);
  if (!v5) return Errc::Ok;
  std::size_t n = 0;
  if (Errc e = wire::properties_size(w, props, bit(t), n); e != Errc::Ok) return e;
  if (n == 0 && rc == ReasonCode::Success) return Errc::Ok;
  w.u8(static_cast<std::uint8_t>(rc));
  if (n != 0) wire::put_properties(w, props, bit(t), n);
  return Errc::Ok;
}

[[gnu::always_inline]] inline Errc emit_ack(const void* packet, PacketType t, bool v5, Writer& w,
                                            std::uint8_t& first) noexcept {
  const bool has_id = t <= PacketType::PubComp;
  const std::uint16_t id = has_id ? field<std::uint16_t>(packet, offsetof(PubAck, packet_id)) : 0;
  const ReasonCode rc = field<ReasonCode>(
      packet, has_id ? offsetof(PubAck, reason_code) : offsetof(Disconnect, reason_code));
  return emit_ack_fields(t, id, rc, field<Properties>(packet, offsetof(PubAck, properties)), v5,
                         w, first);
}

// DISCONNECT from a view of the caller's reason code and properties (the engine's, which then
// builds no Disconnect: code size, stack).
Errc emit_disconnect_view(const void* pkt, bool v5, Writer& w, std::uint8_t& first) noexcept {
  const auto& d = *static_cast<const detail::DisconnectView*>(pkt);
  const bool folded = wire::kV5 && (!wire::kV311 || v5);  // as in `erased`
  return emit_ack_fields(PacketType::Disconnect, 0, d.reason_code, *d.properties, folded, w,
                         first);
}

}  // namespace

// Entry `i` of a list, `pos` its offset in a decoded payload (advanced past it): the caller's
// array entry, or read from the payload. One plain function per list instead of the list's
// iterator, which the encoder would keep across calls (code size).
struct detail::WireListAccess {
  static Subscription subscription(const void* list, std::size_t i, std::size_t& pos) noexcept {
    const auto& l = *static_cast<const Subscriptions*>(list);
    return l.read_ != nullptr ? l.read_(l.raw_, pos) : l.items_[i];
  }
  static std::string_view filter(const void* list, std::size_t i, std::size_t& pos) noexcept {
    const auto& l = *static_cast<const TopicFilters*>(list);
    return l.read_ != nullptr ? l.read_(l.raw_, pos) : l.items_[i];
  }
};

namespace {

// SUBSCRIBE and UNSUBSCRIBE share one emitter (code size), over a view of either: their lists
// differ only in the options byte a SUBSCRIBE writes after each filter.
using detail::RequestView;

Errc emit_request(const RequestView& r, bool v5, Writer& w, std::uint8_t& first) noexcept {
  const PacketType type = r.type;
  const bool sub = type == PacketType::Subscribe;
  const void* list = r.list;
  const Properties& props = *r.properties;
  const std::size_t count = sub ? static_cast<const Subscriptions*>(list)->size()
                                : static_cast<const TopicFilters*>(list)->size();
  // [MQTT-3.8.1-1] [MQTT-3.10.1-1] reserved flags 0b0010.
  first = static_cast<std::uint8_t>((bit(type) << 4) | 0x02);
  if (w.validate) {
    if (r.packet_id == 0) return Errc::PacketIdZero;
    // [MQTT-3.8.3-3] [MQTT-3.10.3-2] The payload MUST contain at least one Topic Filter.
    if (count == 0) return Errc::EmptySubscriptionList;
    if (Errc e = check_v311_properties(v5, props); e != Errc::Ok) return e;
  }
  w.u16(r.packet_id);
  if (v5) {
    if (Errc e = wire::put_properties(w, props, bit(type)); e != Errc::Ok) return e;
  }
  std::size_t pos = 0;
  for (std::size_t i = 0; i < count; ++i) {
    Subscription e;
    if (sub) {
      e = detail::WireListAccess::subscription(list, i, pos);
    } else {
      e.filter = detail::WireListAccess::filter(list, i, pos);
    }
    const SubscribeOptions& o = e.options;
    if (w.validate) {
      if (Errc err = wire::check_topic_filter(e.filter); err != Errc::Ok) return err;
      if (sub) {
        if (Errc err = check_qos(o.qos); err != Errc::Ok) return err;
        if (static_cast<std::uint8_t>(o.retain_handling) > 2)
          return Errc::InvalidSubscriptionOptions;
        // [MQTT-3.8.3-4] No Local MUST NOT be 1 on a Shared Subscription.
        if (v5 && o.no_local && wire::is_shared(e.filter)) return Errc::InvalidSubscriptionOptions;
      }
    }
    w.str(e.filter);
    if (!sub) continue;
    auto b = static_cast<std::uint8_t>(o.qos);
    if (v5) {
      b |= static_cast<std::uint8_t>((o.no_local ? 0x04 : 0) | (o.retain_as_published ? 0x08 : 0) |
                                     (static_cast<std::uint8_t>(o.retain_handling) << 4));
    }
    w.u8(b);
  }
  return Errc::Ok;
}

Errc emit_subscribe(const Subscribe& s, bool v5, Writer& w, std::uint8_t& first) noexcept {
  const RequestView r{PacketType::Subscribe, s.packet_id, &s.subscriptions, &s.properties};
  return emit_request(r, v5, w, first);
}

Errc emit_unsubscribe(const Unsubscribe& u, bool v5, Writer& w, std::uint8_t& first) noexcept {
  const RequestView r{PacketType::Unsubscribe, u.packet_id, &u.filters, &u.properties};
  return emit_request(r, v5, w, first);
}

bool v311_suback_code(ReasonCode rc) noexcept {
  return rc == ReasonCode::Success || rc == ReasonCode::GrantedQoS1 ||
         rc == ReasonCode::GrantedQoS2 || rc == ReasonCode::UnspecifiedError;
}

// SUBACK and UNSUBACK: packet id, properties, one reason code per filter (UNSUBACK: 5.0 only).
Errc emit_suback(const SubAckFields& s, bool v5, Writer& w, std::uint8_t& first) noexcept {
  const PacketType t = s.type;
  const std::uint16_t id = s.packet_id;
  const ReasonCodes codes = s.reason_codes;
  const Properties& props = *s.properties;
  first = static_cast<std::uint8_t>(bit(t) << 4);
  const bool with_codes = v5 || t == PacketType::SubAck;
  if (w.validate) {
    if (id == 0) return Errc::PacketIdZero;
    if (with_codes && codes.empty()) return Errc::InvalidArgument;
    for (ReasonCode rc : codes) {
      if (v5 ? !wire::reason_allowed(rc, t) : (with_codes && !v311_suback_code(rc)))
        return Errc::InvalidReasonCode;
    }
    if (Errc e = check_v311_properties(v5, props); e != Errc::Ok) return e;
  }
  w.u16(id);
  if (v5) {
    if (Errc e = wire::put_properties(w, props, bit(t)); e != Errc::Ok) return e;
  }
  if (with_codes) w.raw(codes.data(), codes.size());
  return Errc::Ok;
}

Errc emit_empty(const PacketType& t, bool, Writer&, std::uint8_t& first) noexcept {
  first = static_cast<std::uint8_t>(bit(t) << 4);
  return Errc::Ok;
}

// One emitter per packet shape. `run` is handed the emitter rather than a packet type, so that a
// program links only the emitters of the packets it encodes (a client has no SUBACK emitter).
using Emit = Errc (*)(const void* pkt, bool v5, Writer& w, std::uint8_t& first) noexcept;

// `v5` is folded again here: the emitter is reached through a pointer, so the constant that
// wire::is_v5 gives a one-version build would not reach it, and the other version's code (the
// whole property encoder, in a 3.1.1-only build) would stay in the image.
template <class T, Errc (*E)(const T&, bool, Writer&, std::uint8_t&) noexcept>
Errc erased(const void* pkt, bool v5, Writer& w, std::uint8_t& first) noexcept {
  const bool folded = wire::kV5 && (!wire::kV311 || v5);
  return E(*static_cast<const T*>(pkt), folded, w, first);
}

// Flags set on the version by the entry points (an extra parameter would cost every `encode`
// two instructions): count only (`encoded_size`), or PUBLISH without its payload
// (`encode_publish_header`).
constexpr std::uint8_t kSizeOnly = 0x40;
constexpr std::uint8_t kHeaderOnly = 0x80;
constexpr std::uint8_t kValidated = 0x20;  // the caller's encoded_size already checked it

constexpr Version with(Version v, std::uint8_t flag) noexcept {
  return static_cast<Version>(static_cast<std::uint8_t>(v) | flag);
}

// The two-pass driver: counts (and validates), then writes. The parameters come in the order of
// the public entry points with the emitter last, so that the dozen wrappers a client links stay
// a few instructions each.
Result<std::size_t> run(const void* pkt, Version v, MutableBytes out, Emit emit) noexcept {
  const std::uint8_t flags = static_cast<std::uint8_t>(v);
  v = static_cast<Version>(flags & ~(kSizeOnly | kHeaderOnly | kValidated));
  if (Errc e = wire::check_version(v); e != Errc::Ok) return fail(e);
  const bool v5 = wire::is_v5(v);
  Writer c;
  c.validate = (flags & kValidated) == 0;
  std::uint8_t first = 0;
  if (Errc e = emit(pkt, v5, c, first); e != Errc::Ok) return fail(e);
  if (c.n > kMaxVarInt) return fail(Errc::PacketTooLarge);
  const auto rl = static_cast<std::uint32_t>(c.n);
  std::size_t need = 1 + wire::varint_size(rl) + rl;
  if ((flags & kSizeOnly) != 0) return need;
  const bool header_only = (flags & kHeaderOnly) != 0;
  if (header_only) need -= c.payload;
  if (out.size() < need) return fail(Errc::BufferTooSmall);
  Writer w{reinterpret_cast<std::uint8_t*>(out.data()), 0, false, header_only,
           {c.prop_sizes[0], c.prop_sizes[1]}, {c.prop_masks[0], c.prop_masks[1]}, 0, 0};
  w.u8(first);
  w.varint(rl);
  (void)emit(pkt, v5, w, first);
  return w.n;
}

Result<std::size_t> run_size(const void* pkt, Version v, Emit emit) noexcept {
  return run(pkt, with(v, kSizeOnly), {}, emit);
}

constexpr Emit kEmitConnect = &erased<Connect, emit_connect>;
constexpr Emit kEmitConnAck = &erased<ConnAck, emit_connack>;
constexpr Emit kEmitPublish = &erased<Publish, emit_publish>;
constexpr Emit kEmitSubscribe = &erased<Subscribe, emit_subscribe>;
constexpr Emit kEmitUnsubscribe = &erased<Unsubscribe, emit_unsubscribe>;
constexpr Emit kEmitRequest = &erased<RequestView, emit_request>;
// The ack emitter for packet type T; `v5` folded as in `erased`.
template <PacketType T>
Errc erased_ack(const void* pkt, bool v5, Writer& w, std::uint8_t& first) noexcept {
  const bool folded = wire::kV5 && (!wire::kV311 || v5);
  return emit_ack(pkt, T, folded, w, first);
}
constexpr Emit kEmitSubAck = &erased<SubAckFields, emit_suback>;
constexpr Emit kEmitEmpty = &erased<PacketType, emit_empty>;

constexpr PacketType kPingReq = PacketType::PingReq;
constexpr PacketType kPingResp = PacketType::PingResp;

}  // namespace

#define EDGEKIT_MQTT_DEFINE_ENCODE(T, EMIT, ARG)                                             \
  Result<std::size_t> encoded_size(const T& packet, Version version) noexcept {            \
    return run_size(ARG, version, EMIT);                                        \
  }                                                                                          \
  Result<std::size_t> encode(const T& packet, Version version, MutableBytes out) noexcept { \
    return run(ARG, version, out, EMIT);                                       \
  }
EDGEKIT_MQTT_DEFINE_ENCODE(Connect, kEmitConnect, &packet)
EDGEKIT_MQTT_DEFINE_ENCODE(ConnAck, kEmitConnAck, &packet)
EDGEKIT_MQTT_DEFINE_ENCODE(Publish, kEmitPublish, &packet)
EDGEKIT_MQTT_DEFINE_ENCODE(Subscribe, kEmitSubscribe, &packet)
EDGEKIT_MQTT_DEFINE_ENCODE(Unsubscribe, kEmitUnsubscribe, &packet)
EDGEKIT_MQTT_DEFINE_ENCODE(PubAck, &erased_ack<PacketType::PubAck>, &packet)
EDGEKIT_MQTT_DEFINE_ENCODE(PubRec, &erased_ack<PacketType::PubRec>, &packet)
EDGEKIT_MQTT_DEFINE_ENCODE(PubRel, &erased_ack<PacketType::PubRel>, &packet)
EDGEKIT_MQTT_DEFINE_ENCODE(PubComp, &erased_ack<PacketType::PubComp>, &packet)
EDGEKIT_MQTT_DEFINE_ENCODE(Disconnect, &erased_ack<PacketType::Disconnect>, &packet)
EDGEKIT_MQTT_DEFINE_ENCODE(Auth, &erased_ack<PacketType::Auth>, &packet)
#undef EDGEKIT_MQTT_DEFINE_ENCODE

#define EDGEKIT_MQTT_DEFINE_ENCODE_FIELDS(T, EMIT, FIELDS, TYPE, ID, CODES)                  \
  Result<std::size_t> encoded_size(const T& packet, Version version) noexcept {             \
    const FIELDS f{PacketType::TYPE, ID, CODES, &packet.properties};                         \
    return run_size(&f, version, EMIT);                                            \
  }                                                                                           \
  Result<std::size_t> encode(const T& packet, Version version, MutableBytes out) noexcept {  \
    const FIELDS f{PacketType::TYPE, ID, CODES, &packet.properties};                         \
    return run(&f, version, out, EMIT);                                           \
  }
EDGEKIT_MQTT_DEFINE_ENCODE_FIELDS(SubAck, kEmitSubAck, SubAckFields, SubAck, packet.packet_id,
                                  packet.reason_codes)
EDGEKIT_MQTT_DEFINE_ENCODE_FIELDS(UnsubAck, kEmitSubAck, SubAckFields, UnsubAck,
                                  packet.packet_id, packet.reason_codes)
#undef EDGEKIT_MQTT_DEFINE_ENCODE_FIELDS

Result<std::size_t> encoded_size(const PingReq&, Version version) noexcept {
  return run_size(&kPingReq, version, kEmitEmpty);
}
Result<std::size_t> encode(const PingReq&, Version version, MutableBytes out) noexcept {
  return run(&kPingReq, version, out, kEmitEmpty);
}
Result<std::size_t> encoded_size(const PingResp&, Version version) noexcept {
  return run_size(&kPingResp, version, kEmitEmpty);
}
Result<std::size_t> encode(const PingResp&, Version version, MutableBytes out) noexcept {
  return run(&kPingResp, version, out, kEmitEmpty);
}

Result<std::size_t> detail::disconnect_size(const DisconnectView& d, Version version) noexcept {
  return run_size(&d, version, &emit_disconnect_view);
}
Result<std::size_t> detail::encode_disconnect(const DisconnectView& d, Version version,
                                              MutableBytes out) noexcept {
  return run(&d, version, out, &emit_disconnect_view);
}

Result<std::size_t> detail::request_size(const RequestView& request, Version version) noexcept {
  return run_size(&request, version, kEmitRequest);
}
Result<std::size_t> detail::encode_request(const RequestView& request, Version version,
                                           MutableBytes out) noexcept {
  return run(&request, version, out, kEmitRequest);
}

Result<std::size_t> encode_publish_header(const Publish& packet, Version version,
                                          MutableBytes out) noexcept {
  return run(&packet, with(version, kHeaderOnly), out, kEmitPublish);
}

Result<std::size_t> encode_publish_header_validated(const Publish& packet, Version version,
                                                    MutableBytes out) noexcept {
  return run(&packet, with(version, kHeaderOnly | kValidated), out, kEmitPublish);
}

Result<std::size_t> encode_ack(PacketType type, std::uint16_t packet_id, ReasonCode reason_code,
                               Version version, MutableBytes out) noexcept {
  if (type < PacketType::PubAck || type > PacketType::PubComp) return fail(Errc::InvalidArgument);
  // The four acks share one layout: a PUBACK stands for each, the emitter says which it is.
  static constexpr Emit kEmit[4] = {
      &erased_ack<PacketType::PubAck>, &erased_ack<PacketType::PubRec>,
      &erased_ack<PacketType::PubRel>, &erased_ack<PacketType::PubComp>};
  const PubAck a{packet_id, reason_code, {}};
  return run(&a, version, out, kEmit[static_cast<unsigned>(type) - 4]);
}

namespace {
// One switch for both entry points on `Packet`; `out` empty with size_only for encoded_size.
Result<std::size_t> encode_any(const Packet& p, Version v, MutableBytes out, bool size_only) {
  auto go = [&](const auto& pkt) -> Result<std::size_t> {
    return size_only ? encoded_size(pkt, v) : encode(pkt, v, out);
  };
  switch (p.index()) {
    case 0: return go(*std::get_if<0>(&p));
    case 1: return go(*std::get_if<1>(&p));
    case 2: return go(*std::get_if<2>(&p));
    case 3: return go(*std::get_if<3>(&p));
    case 4: return go(*std::get_if<4>(&p));
    case 5: return go(*std::get_if<5>(&p));
    case 6: return go(*std::get_if<6>(&p));
    case 7: return go(*std::get_if<7>(&p));
    case 8: return go(*std::get_if<8>(&p));
    case 9: return go(*std::get_if<9>(&p));
    case 10: return go(*std::get_if<10>(&p));
    case 11: return go(*std::get_if<11>(&p));
    case 12: return go(*std::get_if<12>(&p));
    case 13: return go(*std::get_if<13>(&p));
    case 14: return go(*std::get_if<14>(&p));
    default: return fail(Errc::InvalidArgument);  // valueless variant
  }
}
}  // namespace

Result<std::size_t> encoded_size(const Packet& packet, Version version) noexcept {
  return encode_any(packet, version, {}, true);
}
Result<std::size_t> encode(const Packet& packet, Version version, MutableBytes out) noexcept {
  return encode_any(packet, version, out, false);
}

}  // namespace edgekit::mqtt
