// MQTT 5 properties (spec 2.2.2): one table says, for each identifier, its wire type, where it
// lives in `Properties` and which packets may carry it. Encoding, decoding, validation and the
// lazy list views all walk that table, so adding a rule means editing one row.
#include <bit>
#include <cstring>
#include <cstddef>
#include <type_traits>
#include <optional>
#include <tuple>
#include <utility>

#include "wire.hpp"
#include "../property_access.hpp"

namespace edgekit::mqtt {
#if EDGEKIT_MQTT_ENABLE_V5
namespace wire {

enum Kind : std::uint8_t { kBool, kQoS, kU16, kU32, kStr, kBin, kSubId, kUser };

struct Desc {
  std::uint8_t id;
  Kind kind;
  std::uint16_t offset;  // of the member in Properties (a standard-layout struct)
  std::uint16_t mask;
};

namespace {
// Packet masks: bit n is packet type n; bit 0 is the Will properties of CONNECT.
constexpr std::uint16_t W = 1u << kWillBit;
constexpr std::uint16_t C = bit_of(PacketType::Connect);
constexpr std::uint16_t CA = bit_of(PacketType::ConnAck);
constexpr std::uint16_t P = bit_of(PacketType::Publish);
constexpr std::uint16_t ACKS = bit_of(PacketType::PubAck) | bit_of(PacketType::PubRec) |
                               bit_of(PacketType::PubRel) | bit_of(PacketType::PubComp);
constexpr std::uint16_t S = bit_of(PacketType::Subscribe);
constexpr std::uint16_t SA = bit_of(PacketType::SubAck);
constexpr std::uint16_t U = bit_of(PacketType::Unsubscribe);
constexpr std::uint16_t UA = bit_of(PacketType::UnsubAck);
constexpr std::uint16_t D = bit_of(PacketType::Disconnect);
constexpr std::uint16_t A = bit_of(PacketType::Auth);
}  // namespace
}  // namespace wire

static_assert(std::is_standard_layout_v<Properties> &&
                  std::is_standard_layout_v<detail::PropertyStorage>,
              "rows locate members by offsetof");
static_assert(sizeof(Properties) < 65536, "offsets are two bytes");
#define EDGEKIT_ROW(id, kind, member, mask)                                                   \
  wire::Desc {                                                                              \
    id, wire::kind,                                                                         \
        static_cast<std::uint16_t>(offsetof(Properties, storage_) +                         \
                                   offsetof(PropertyStorage, member##_)),                   \
        [] {                                                                                \
          using namespace wire;                                                             \
          return static_cast<std::uint16_t>(mask);                                          \
        }()                                                                                 \
  }
// The lists are members of `Properties` itself.
#define EDGEKIT_LIST_ROW(id, kind, member, mask)                                              \
  wire::Desc {                                                                              \
    id, wire::kind, static_cast<std::uint16_t>(offsetof(Properties, member)), [] {          \
      using namespace wire;                                                                 \
      return static_cast<std::uint16_t>(mask);                                              \
    }()                                                                                     \
  }

// In identifier order; encoding emits properties in this order. Defined in the scope of
// PropertyAccess, a friend of the storage, so that offsetof may name its private fields.
const wire::Desc detail::PropertyAccess::kTable[27] = {
      EDGEKIT_ROW(0x01, kBool, payload_format_utf8, P | W),
      EDGEKIT_ROW(0x02, kU32, message_expiry_interval, P | W),
      EDGEKIT_ROW(0x03, kStr, content_type, P | W),
      EDGEKIT_ROW(0x08, kStr, response_topic, P | W),
      EDGEKIT_ROW(0x09, kBin, correlation_data, P | W),
      EDGEKIT_LIST_ROW(0x0B, kSubId, subscription_identifiers, P | S),
      EDGEKIT_ROW(0x11, kU32, session_expiry_interval, C | CA | D),
      EDGEKIT_ROW(0x12, kStr, assigned_client_identifier, CA),
      EDGEKIT_ROW(0x13, kU16, server_keep_alive, CA),
      EDGEKIT_ROW(0x15, kStr, authentication_method, C | CA | A),
      EDGEKIT_ROW(0x16, kBin, authentication_data, C | CA | A),
      EDGEKIT_ROW(0x17, kBool, request_problem_information, C),
      EDGEKIT_ROW(0x18, kU32, will_delay_interval, W),
      EDGEKIT_ROW(0x19, kBool, request_response_information, C),
      EDGEKIT_ROW(0x1A, kStr, response_information, CA),
      EDGEKIT_ROW(0x1C, kStr, server_reference, CA | D),
      EDGEKIT_ROW(0x1F, kStr, reason_string, CA | ACKS | SA | UA | D | A),
      EDGEKIT_ROW(0x21, kU16, receive_maximum, C | CA),
      EDGEKIT_ROW(0x22, kU16, topic_alias_maximum, C | CA),
      EDGEKIT_ROW(0x23, kU16, topic_alias, P),
      EDGEKIT_ROW(0x24, kQoS, maximum_qos, CA),
      EDGEKIT_ROW(0x25, kBool, retain_available, CA),
      EDGEKIT_LIST_ROW(0x26, kUser, user_properties,
                       W | C | CA | P | ACKS | S | SA | U | UA | D | A),
      EDGEKIT_ROW(0x27, kU32, maximum_packet_size, C | CA),
      EDGEKIT_ROW(0x28, kBool, wildcard_subscription_available, CA),
      EDGEKIT_ROW(0x29, kBool, subscription_identifier_available, CA),
      EDGEKIT_ROW(0x2A, kBool, shared_subscription_available, CA),
  };
#undef EDGEKIT_ROW
#undef EDGEKIT_LIST_ROW

namespace wire {
namespace {

constexpr const auto& kTable = detail::PropertyAccess::kTable;
static_assert(sizeof(detail::PropertyAccess::kTable) / sizeof(Desc) == 27);

// The value field of row `d`, typed by its kind (kBool: bool, kQoS: QoS, kU16, kU32, kStr:
// string_view, kBin: Bytes). One table of offsets serves every kind, so the encoder and decoder
// need no per-kind member tables (code size).
template <class T>
const T& member(const Properties& p, const Desc& d) noexcept {
  // Offsets come from offsetof of fields of these very types, so alignment holds.
  const void* m = reinterpret_cast<const char*>(&p) + d.offset;
  return *static_cast<const T*>(m);
}
template <class T>
T& member(Properties& p, const Desc& d) noexcept {
  void* m = reinterpret_cast<char*>(&p) + d.offset;
  return *static_cast<T*>(m);
}

constexpr std::size_t kCount = sizeof(kTable) / sizeof(kTable[0]);
static_assert(kCount <= 32, "presence is a 32-bit mask");

static_assert(Properties::kTopicAlias == 19 && Properties::kSharedSubscriptionAvailable == 26,
              "a property's bit is its row in kTable");
constexpr unsigned kSubIdRow = 5;
constexpr unsigned kUserRow = 22;
constexpr std::uint32_t kScalarRows = ~((std::uint32_t{1} << kSubIdRow) | (std::uint32_t{1} << kUserRow));

// Bit i set when the property of kTable[i] is set in `p`: the scalars' bits as kept, the lists'
// when they are not empty.
// A list counts as set when it has items or, decoded, a block to walk: put_list then copies its
// entries, or refuses a block that is not a property block (a walk for `empty()` would stop at
// the first bad entry and drop the list silently).
template <class List>
bool listed(const List& l) noexcept {
  using Access = detail::PropertyAccess;
  return Access::decoded(l) ? !Access::scanner(l).block().empty() : !Access::items(l).empty();
}

std::uint32_t present(const Properties& p) noexcept {
  return detail::PropertyAccess::present(p) |
         (std::uint32_t{listed(p.subscription_identifiers)} << kSubIdRow) |
         (std::uint32_t{listed(p.user_properties)} << kUserRow);
}

const Desc* find(std::uint8_t id) noexcept {
  for (const Desc& d : kTable) {
    if (d.id == id) return &d;
    if (d.id > id) break;
  }
  return nullptr;
}

// Numeric value rules: booleans and Maximum QoS are 0 or 1; Receive Maximum, Maximum Packet
// Size, Topic Alias and Subscription Identifier may not be 0 (spec 3.1.2.11, 3.2.2.3, 3.3.2.3.4,
// 3.3.2.3.8).
Errc check_number(const Desc& d, std::uint32_t v) noexcept {
  if ((d.kind == kBool || d.kind == kQoS) && v > 1) return Errc::InvalidPropertyValue;
  if (v == 0 && (d.id == 0x21 || d.id == 0x23 || d.id == 0x27 || d.id == 0x0B))
    return Errc::InvalidPropertyValue;
  if (d.kind == kSubId && v > kMaxVarInt) return Errc::InvalidPropertyValue;
  return Errc::Ok;
}

Errc check_str_prop(const Desc& d, std::string_view s) noexcept {
  // [MQTT-3.3.2-13] The Response Topic MUST be a UTF-8 Encoded String; it is a Topic Name,
  // so it may not carry wildcards [MQTT-3.3.2-14].
  if (d.id == 0x08) {
    if (s.size() > 65535) return Errc::StringTooLong;
    return check_topic_name(s);
  }
  return check_string(s);
}

// The end of the property that starts at `q` in the block `b` of `n` bytes; `kBadEntry` (past
// any block) when it is unknown or cut short: the scanners then stop, the encoder refuses the
// list. Plain index arithmetic rather than a Reader: a block the codec decoded was validated,
// this only has to stay inside it (code size).
constexpr std::size_t kBadEntry = ~std::size_t{0};
std::size_t entry_end(const std::uint8_t* b, std::size_t n, std::size_t q) noexcept {
  const Desc* d = find(b[q]);
  if (d == nullptr) return kBadEntry;
  ++q;
  unsigned strings = 0;  // two-byte-length fields that follow
  switch (d->kind) {
    case kBool:
    case kQoS: q += 1; break;
    case kU16: q += 2; break;
    case kU32: q += 4; break;
    case kSubId:
      // A Variable Byte Integer: at most four bytes, the last without the continuation bit.
      for (unsigned i = 0; i < 4 && q < n;) {
        ++i;
        if ((b[q++] & 0x80) == 0) break;
      }
      break;
    case kUser: strings = 2; break;
    case kStr:
    case kBin: strings = 1; break;
  }
  for (; strings != 0; --strings) {
    if (q > n || n - q < 2) return kBadEntry;
    q += 2 + ((std::size_t{b[q]} << 8) | b[q + 1]);
  }
  return q > n ? kBadEntry : q;
}

// Emits one of the two lists of row `d` (kSubId or kUser). A decoded list is a view of a
// property block its decode validated: its entries are copied as they are, without reading
// them into values first (one walker for both lists: code size). A list made with `from_block`
// over bytes that are not a property block (an unknown identifier, a cut-short entry) is
// refused with InvalidArgument, never sent cut short or as garbage.
Errc put_list(Writer& w, const Properties& p, const Desc& d, unsigned bit) noexcept {
  using Access = detail::PropertyAccess;
  const bool ids = d.kind == kSubId;
  std::size_t count = 0;
  if (ids ? Access::decoded(p.subscription_identifiers) : Access::decoded(p.user_properties)) {
    const detail::PropertyScanner& scan = ids ? Access::scanner(p.subscription_identifiers)
                                              : Access::scanner(p.user_properties);
    const auto* b = reinterpret_cast<const std::uint8_t*>(scan.block().data());
    const std::size_t n = scan.block().size();
    // One linear walk over every entry of the block, so that a bad one is seen wherever it is.
    for (std::size_t q = 0; q < n;) {
      const std::size_t end = entry_end(b, n, q);
      if (end == kBadEntry) return Errc::InvalidArgument;
      if (b[q] == d.id) {
        ++count;
        w.raw(b + q, end - q);
      }
      q = end;
    }
  } else if (ids) {
    for (std::uint32_t id : Access::items(p.subscription_identifiers)) {
      if (w.validate) {
        if (Errc e = check_number(d, id); e != Errc::Ok) return e;
      }
      ++count;
      w.u8(d.id);
      w.varint(id);
    }
  } else {
    for (const UserProperty& up : Access::items(p.user_properties)) {
      if (w.validate) {
        if (Errc e = check_string(up.key); e != Errc::Ok) return e;
        if (Errc e = check_string(up.value); e != Errc::Ok) return e;
      }
      w.u8(d.id);
      w.str(up.key);
      w.str(up.value);
    }
  }
  // Only PUBLISH may carry several Subscription Identifiers [MQTT-3.8.2.1.2]: one per
  // SUBSCRIBE. A decoded PUBLISH's list passed on in another packet is caught here too.
  if (w.validate && ids && count > 1 && bit != static_cast<unsigned>(PacketType::Publish))
    return Errc::DuplicateProperty;
  return Errc::Ok;
}

// Emits (or counts, or validates) the body of the properties; no length prefix. Visits only the
// rows of kTable whose bit is set in `mask` (from present()).
Errc put_body(Writer& w, const Properties& p, unsigned bit, std::uint32_t mask) noexcept {
  const std::uint16_t kind = static_cast<std::uint16_t>(1u << bit);
  for (; mask != 0; mask &= mask - 1) {
    const Desc& d = kTable[std::countr_zero(mask)];
    if (w.validate && (d.mask & kind) == 0) return Errc::PropertyNotAllowed;
    if (d.kind >= kSubId) {
      if (Errc e = put_list(w, p, d, bit); e != Errc::Ok) return e;
      continue;
    }
    if (d.kind <= kU32) {
      // kBool and kQoS are one byte (a bool is stored as 0 or 1), kU16 two, kU32 four: one
      // load and one big-endian loop for the four kinds (code size).
      const unsigned width = d.kind == kU32 ? 4 : d.kind == kU16 ? 2 : 1;
      const std::uint32_t num = width == 4   ? member<std::uint32_t>(p, d)
                                : width == 2 ? member<std::uint16_t>(p, d)
                                             : member<std::uint8_t>(p, d);
      if (w.validate) {
        if (Errc e = check_number(d, num); e != Errc::Ok) return e;
      }
      w.u8(d.id);
      for (unsigned i = width; i-- > 0;) w.u8(static_cast<std::uint8_t>(num >> (8 * i)));
    } else {
      // kStr, and kBin viewed as characters.
      const std::string_view text =
          d.kind == kStr ? member<std::string_view>(p, d) : as_string(member<Bytes>(p, d));
      if (w.validate) {
        if (d.kind == kBin) {
          if (text.size() > 65535) return Errc::StringTooLong;
        } else if (Errc e = check_str_prop(d, text); e != Errc::Ok) {
          return e;
        }
      }
      w.u8(d.id);
      w.str(text);
    }
  }
  return Errc::Ok;
}

}  // namespace

Errc properties_size(Writer& w, const Properties& p, unsigned bit, std::size_t& size) noexcept {
  const std::uint8_t i = w.prop_index++;
  if (w.p != nullptr && i < 2) {
    size = w.prop_sizes[i];
    w.prop_mask = w.prop_masks[i];
    return Errc::Ok;
  }
  size = 0;
  const std::uint32_t mask = present(p);
  w.prop_mask = mask;
  if (i < 2) w.prop_masks[i] = mask;
  if (mask == 0) return Errc::Ok;  // the recorded size is already 0
  Writer c{nullptr, 0, w.validate};
  const Errc e = put_body(c, p, bit, mask);
  if (e != Errc::Ok) return e;
  if (c.n > kMaxVarInt) return Errc::PacketTooLarge;
  size = c.n;
  if (i < 2) w.prop_sizes[i] = static_cast<std::uint32_t>(c.n);
  return Errc::Ok;
}

void put_properties(Writer& w, const Properties& p, unsigned bit, std::size_t size) noexcept {
  w.varint(static_cast<std::uint32_t>(size));
  if (w.p == nullptr) {
    w.n += size;
  } else if (size != 0) {
    (void)put_body(w, p, bit, w.prop_mask);
  }
}

Errc put_properties(Writer& w, const Properties& p, unsigned bit) noexcept {
  std::size_t n = 0;
  if (Errc e = properties_size(w, p, bit, n); e != Errc::Ok) return e;
  put_properties(w, p, bit, n);
  return Errc::Ok;
}

Errc check_no_properties(const Properties& p) noexcept {
  return present(p) != 0 ? Errc::InvalidArgument : Errc::Ok;
}

void read_properties(Reader& r, unsigned bit, Properties& out) noexcept {
  const std::uint32_t len = r.varint();
  const std::uint8_t* b = r.take(len);
  if (b == nullptr) return;
  Reader pr(b, len);
  std::uint64_t seen = 0;
  const std::uint16_t kind = static_cast<std::uint16_t>(1u << bit);
  while (pr.ok() && pr.left() != 0) {
    // Identifiers are Variable Byte Integers, but every defined one is below 0x80, so a single
    // byte decides; a multi-byte identifier is unknown.
    const std::uint8_t id = pr.u8();
    const Desc* d = find(id);
    if (d == nullptr) {
      pr.fail(Errc::UnknownProperty);
      break;
    }
    // Each packet section of the spec (3.x.2.2) lists the properties it may carry.
    if ((d->mask & kind) == 0) {
      pr.fail(Errc::PropertyNotAllowed);
      break;
    }
    // [MQTT-2.2.2] It is a Protocol Error to include a property more than once, except User
    // Property, and Subscription Identifier in PUBLISH (one per matching subscription).
    const std::uint64_t me = std::uint64_t{1} << id;
    if ((seen & me) != 0 && d->kind != kUser &&
        !(d->kind == kSubId && bit == static_cast<unsigned>(PacketType::Publish))) {
      pr.fail(Errc::DuplicateProperty);
      break;
    }
    seen |= me;
    // The scalars' bits; the lists are present when not empty (present()).
    detail::PropertyAccess::mark(out, (std::uint32_t{1} << (d - kTable)) & kScalarRows);
    // Numbers are stored as read and checked after: on a failure the whole decode fails, so
    // what was stored does not matter (one switch instead of two: code size).
    std::uint32_t num = 0;
    switch (d->kind) {
      case kBool:
        num = pr.u8();
        member<bool>(out, *d) = num != 0;
        break;
      case kQoS:
        num = pr.u8();
        member<QoS>(out, *d) = static_cast<QoS>(num);
        break;
      case kU16:
        num = pr.u16();
        member<std::uint16_t>(out, *d) = static_cast<std::uint16_t>(num);
        break;
      case kU32:
        num = pr.u32();
        member<std::uint32_t>(out, *d) = num;
        break;
      case kSubId: num = pr.varint(); break;
      case kStr: {
        std::string_view s = pr.str();
        if (pr.ok() && d->id == 0x08) {
          // [MQTT-3.3.2-14] Response Topic is a Topic Name: no wildcards.
          if (Errc e = check_topic_name(s); e != Errc::Ok) pr.fail(e);
        }
        member<std::string_view>(out, *d) = s;
        continue;
      }
      case kBin: member<Bytes>(out, *d) = pr.bin(); continue;
      case kUser:
        (void)pr.str();
        (void)pr.str();
        continue;
    }
    if (!pr.ok()) break;
    if (Errc e = check_number(*d, num); e != Errc::Ok) {
      pr.fail(e);
      break;
    }
  }
  if (!pr.ok()) {
    r.fail(pr.error());
    return;
  }
  const Bytes block(reinterpret_cast<const std::byte*>(b), len);
  using Access = detail::PropertyAccess;
  if (seen & (std::uint64_t{1} << 0x26))
    Access::set_block(out.user_properties, block, PropertyId::UserProperty);
  if (seen & (std::uint64_t{1} << 0x0B))
    Access::set_block(out.subscription_identifiers, block, PropertyId::SubscriptionIdentifier);
}

}  // namespace wire

namespace detail {

std::size_t PropertyScanner::next(std::size_t pos) const noexcept {
  // Walks from the start each time: blocks are short and the views are rarely iterated more
  // than once, so no state beyond the position is kept. Bounds-checked even though the block
  // was validated, because a caller may build a view over any bytes.
  const auto* b = reinterpret_cast<const std::uint8_t*>(block_.data());
  const std::size_t n = block_.size();
  std::size_t q = 0;
  while (q < n) {
    if (q >= pos && b[q] == static_cast<std::uint8_t>(id_)) return q;
    q = wire::entry_end(b, n, q);
  }
  return n;
}

UserProperty read_user_property(Bytes block, std::size_t pos) noexcept {
  if (pos >= block.size()) return {};
  wire::Reader r(reinterpret_cast<const std::uint8_t*>(block.data()) + pos + 1,
                 block.size() - pos - 1);
  UserProperty up;
  up.key = as_string(r.bin());
  up.value = as_string(r.bin());
  return up;
}

std::uint32_t read_subscription_identifier(Bytes block, std::size_t pos) noexcept {
  if (pos >= block.size()) return 0;
  wire::Reader r(reinterpret_cast<const std::uint8_t*>(block.data()) + pos + 1,
                 block.size() - pos - 1);
  return r.varint();
}

}  // namespace detail

Result<Properties> decode_properties(Bytes block, PacketType type, std::size_t& consumed) noexcept {
  consumed = 0;
  if (static_cast<unsigned>(type) > 15) return fail(Errc::InvalidArgument);
  wire::Reader r(reinterpret_cast<const std::uint8_t*>(block.data()), block.size());
  Properties p;
  wire::read_properties(r, static_cast<unsigned>(type), p);
  if (!r.ok()) return fail(r.error());
  consumed = block.size() - r.left();
  return p;
}

#else
// A build without MQTT 5: `Properties` is empty and nothing calls these with a property set
// (the emitters and decoders fold their MQTT 5 branches away); they exist so that the
// version-independent code around those branches links in unoptimised builds too.
namespace wire {
Errc properties_size(Writer&, const Properties&, unsigned, std::size_t& size) noexcept {
  size = 0;
  return Errc::Ok;
}
void put_properties(Writer& w, const Properties&, unsigned, std::size_t) noexcept { w.u8(0); }
Errc put_properties(Writer& w, const Properties&, unsigned) noexcept {
  w.u8(0);
  return Errc::Ok;
}
void read_properties(Reader& r, unsigned, Properties&) noexcept {
  r.fail(Errc::ProtocolVersionDisabled);
}
Errc check_no_properties(const Properties&) noexcept { return Errc::Ok; }
}  // namespace wire

namespace detail {
std::size_t PropertyScanner::next(std::size_t) const noexcept { return block_.size(); }
UserProperty read_user_property(Bytes, std::size_t) noexcept { return {}; }
std::uint32_t read_subscription_identifier(Bytes, std::size_t) noexcept { return 0; }
}  // namespace detail

Result<Properties> decode_properties(Bytes, PacketType, std::size_t& consumed) noexcept {
  // No property block exists in MQTT 3.1.1.
  consumed = 0;
  return fail(Errc::ProtocolVersionDisabled);
}
#endif

}  // namespace edgekit::mqtt
