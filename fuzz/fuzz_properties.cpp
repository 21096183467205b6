// Fuzz target: the MQTT 5 property decoder (decode_properties) for every packet type and for
// Will properties (type 0).
// Input: [type selector][property block: length prefix + properties...].
// Oracles:
//  - `consumed` is the length prefix plus the announced length and never exceeds the input;
//  - the repeated properties (User Property, Subscription Identifier) iterate within the block;
//  - PINGREQ / PINGRESP carry none;
//  - properties that decoded for a type re-encode inside a packet of that type, and that packet
//    decodes to the same properties (the block seen through a whole packet agrees with the block
//    decoded alone).
#include <array>

#include "fuzz_support.hpp"

namespace {

using namespace edgekit::fuzz;

std::array<std::byte, 140'000> g_out;
std::array<std::byte, 140'000> g_out2;

// Number of bytes of the Variable Byte Integer at the front of `b`, 0 if malformed/short.
std::size_t varint_prefix(Bytes b, std::uint32_t& value) {
  value = 0;
  std::uint32_t mult = 1;
  for (std::size_t i = 0; i < 4 && i < b.size(); ++i) {
    const auto c = static_cast<std::uint8_t>(b[i]);
    value += (c & 0x7Fu) * mult;
    mult *= 128;
    if ((c & 0x80) == 0) return i + 1;
  }
  return 0;
}

// Encodes `packet` (MQTT 5), decodes it and returns the decoded packet's properties through
// `get`, compared with `props`. Encoding twice must give the same bytes.
template <class T, class Get>
void round_trip(const T& packet, const Properties& props, Get get) {
  auto n = encode(packet, Version::V5, g_out);
  FUZZ_CHECK(n.has_value());
  const Bytes wire(g_out.data(), *n);
  auto d = decode(wire, Version::V5);
  FUZZ_CHECK(d.has_value());
  const T* t = std::get_if<T>(&*d);
  FUZZ_CHECK(t != nullptr);
  FUZZ_CHECK(same(get(*t), props));
  auto n2 = encode(*t, Version::V5, g_out2);
  FUZZ_CHECK(n2.has_value() && same_bytes(wire, Bytes(g_out2.data(), *n2)));
}

constexpr auto props_of = [](const auto& p) -> const Properties& { return p.properties; };

void packet_round_trip(unsigned kind, const Properties& p) {
  if (kind == 0) {
    Connect c;
    c.version = Version::V5;
    Will w;
    w.topic = "will";
    w.properties = p;
    c.will = w;
    round_trip(c, p, [](const Connect& x) -> const Properties& { return x.will->properties; });
    return;
  }
  switch (static_cast<PacketType>(kind)) {
    case PacketType::Connect: {
      Connect c;
      c.version = Version::V5;
      c.properties = p;
      round_trip(c, p, props_of);
      break;
    }
    case PacketType::ConnAck: {
      ConnAck a;
      a.properties = p;
      round_trip(a, p, props_of);
      break;
    }
    case PacketType::Publish: {
      Publish x;
      x.topic = "t";
      x.properties = p;
      round_trip(x, p, props_of);
      break;
    }
    case PacketType::PubAck:
      round_trip(PubAck{1, ReasonCode::Success, p}, p, props_of);
      break;
    case PacketType::PubRec:
      round_trip(PubRec{1, ReasonCode::Success, p}, p, props_of);
      break;
    case PacketType::PubRel:
      round_trip(PubRel{1, ReasonCode::Success, p}, p, props_of);
      break;
    case PacketType::PubComp:
      round_trip(PubComp{1, ReasonCode::Success, p}, p, props_of);
      break;
    case PacketType::Subscribe: {
      static constexpr Subscription kSubs[] = {{"a/+", {}}};
      Subscribe s;
      s.packet_id = 1;
      s.subscriptions = kSubs;
      s.properties = p;
      round_trip(s, p, props_of);
      break;
    }
    case PacketType::SubAck: {
      static constexpr ReasonCode kCodes[] = {ReasonCode::GrantedQoS1};
      SubAck s;
      s.packet_id = 1;
      s.reason_codes = kCodes;
      s.properties = p;
      round_trip(s, p, props_of);
      break;
    }
    case PacketType::Unsubscribe: {
      static constexpr std::string_view kFilters[] = {"a/#"};
      Unsubscribe u;
      u.packet_id = 1;
      u.filters = kFilters;
      u.properties = p;
      round_trip(u, p, props_of);
      break;
    }
    case PacketType::UnsubAck: {
      static constexpr ReasonCode kCodes[] = {ReasonCode::Success};
      UnsubAck u;
      u.packet_id = 1;
      u.reason_codes = kCodes;
      u.properties = p;
      round_trip(u, p, props_of);
      break;
    }
    case PacketType::Disconnect: {
      Disconnect d;
      d.properties = p;
      round_trip(d, p, props_of);
      break;
    }
    case PacketType::Auth: {
      Auth a;
      a.reason_code = ReasonCode::ContinueAuthentication;
      a.properties = p;
      round_trip(a, p, props_of);
      break;
    }
    case PacketType::PingReq:
    case PacketType::PingResp:
      FUZZ_CHECK(same(p, Properties{}));
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto type = static_cast<PacketType>(data[0] % 16);
  const Bytes block(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  std::size_t consumed = 12345;
  auto r = decode_properties(block, type, consumed);
  if (!r) {
    FUZZ_CHECK(consumed == 0);
    return 0;
  }
  std::uint32_t len = 0;
  const std::size_t prefix = varint_prefix(block, len);
  FUZZ_CHECK(prefix != 0);
  FUZZ_CHECK(consumed == prefix + len && consumed <= block.size());
  const Bytes inner = block.subspan(prefix, len);
  for (UserProperty up : r->user_properties) {
    FUZZ_CHECK(up.key.data() >= reinterpret_cast<const char*>(inner.data()));
    FUZZ_CHECK(up.value.data() + up.value.size() <=
               reinterpret_cast<const char*>(inner.data() + inner.size()));
    FUZZ_CHECK(validate_utf8(up.key).has_value() && validate_utf8(up.value).has_value());
  }
  for (std::uint32_t id : r->subscription_identifiers) FUZZ_CHECK(id >= 1 && id <= kMaxVarInt);
  packet_round_trip(data[0] % 16u, *r);
  return 0;
}
