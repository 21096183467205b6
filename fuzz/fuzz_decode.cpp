// Fuzz target: every packet decoder of one protocol version (EDGEKIT_FUZZ_VERSION: 4 = 3.1.1,
// 5 = 5.0; built twice as fuzz_decode_v311 and fuzz_decode_v5).
// Input: [mode][...]. Mode bit 0 clear: the rest is one frame as received. Set: [first byte]
// [body...] and the target writes the remaining length itself, so mutations of the body are not
// wasted on a wrong length.
// Oracles:
//  - decode() and the decode_<type> of the frame's type agree (same error, or equal packets);
//    every other decode_<type> refuses the frame; decode_from_server() agrees with decode() on
//    what a server sends and refuses what only a client sends;
//  - decoded views lie inside the frame;
//  - a decoded packet re-encodes (encoded_size == encode's count), the encoding decodes to an
//    equal packet, and encoding that again gives the same bytes (a stable round trip).
#include <array>

#include "fuzz_support.hpp"

#ifndef EDGEKIT_FUZZ_VERSION
#error "EDGEKIT_FUZZ_VERSION must be 4 or 5"
#endif

namespace {

using namespace edgekit::fuzz;

constexpr Version kVersion = static_cast<Version>(EDGEKIT_FUZZ_VERSION);

std::array<std::byte, 70'000> g_frame;
std::array<std::byte, 140'000> g_out1;
std::array<std::byte, 140'000> g_out2;

bool inside(Bytes frame, const void* p, std::size_t n) {
  if (n == 0) return true;
  const auto* b = static_cast<const std::byte*>(p);
  return b >= frame.data() && b + n <= frame.data() + frame.size();
}
bool inside(Bytes frame, std::string_view s) {
  return inside(frame, s.data(), s.size());
}
bool inside(Bytes frame, Bytes b) {
  return inside(frame, b.data(), b.size());
}

void check_views(Bytes frame, const Packet& p) {
  if (const auto* x = std::get_if<Publish>(&p)) {
    FUZZ_CHECK(inside(frame, x->topic));
    FUZZ_CHECK(inside(frame, x->payload));
    if (x->qos != QoS::AtMostOnce) FUZZ_CHECK(x->packet_id != 0);
    if (x->qos == QoS::AtMostOnce) FUZZ_CHECK(x->packet_id == 0);
  } else if (const auto* c = std::get_if<Connect>(&p)) {
    FUZZ_CHECK(inside(frame, c->client_id));
    if (c->will) FUZZ_CHECK(inside(frame, c->will->topic) && inside(frame, c->will->payload));
    if (c->username) FUZZ_CHECK(inside(frame, *c->username));
    if (c->password) FUZZ_CHECK(inside(frame, *c->password));
  } else if (const auto* s = std::get_if<Subscribe>(&p)) {
    FUZZ_CHECK(!s->subscriptions.empty());
    for (Subscription sub : s->subscriptions) {
      FUZZ_CHECK(inside(frame, sub.filter));
      FUZZ_CHECK(validate_topic_filter(sub.filter).has_value());
    }
  } else if (const auto* u = std::get_if<Unsubscribe>(&p)) {
    FUZZ_CHECK(!u->filters.empty());
    for (std::string_view f : u->filters) FUZZ_CHECK(inside(frame, f));
  } else if (const auto* a = std::get_if<SubAck>(&p)) {
    FUZZ_CHECK(inside(frame, a->reason_codes.data(), a->reason_codes.size()));
  }
}

Version version_for(const Packet& p) {
  // CONNECT announces its own version and is encoded in it.
  if (const auto* c = std::get_if<Connect>(&p)) return c->version;
  return kVersion;
}

// Calls the decoder of alternative I and compares it with what decode() said.
template <std::size_t I>
void check_specific(Bytes frame, const Result<Packet>& whole) {
  using T = std::variant_alternative_t<I, Packet>;
  Result<T> r = [&] {
    if constexpr (I == 0)
      return decode_connect(frame);
    else if constexpr (I == 1)
      return decode_connack(frame, kVersion);
    else if constexpr (I == 2)
      return decode_publish(frame, kVersion);
    else if constexpr (I == 3)
      return decode_puback(frame, kVersion);
    else if constexpr (I == 4)
      return decode_pubrec(frame, kVersion);
    else if constexpr (I == 5)
      return decode_pubrel(frame, kVersion);
    else if constexpr (I == 6)
      return decode_pubcomp(frame, kVersion);
    else if constexpr (I == 7)
      return decode_subscribe(frame, kVersion);
    else if constexpr (I == 8)
      return decode_suback(frame, kVersion);
    else if constexpr (I == 9)
      return decode_unsubscribe(frame, kVersion);
    else if constexpr (I == 10)
      return decode_unsuback(frame, kVersion);
    else if constexpr (I == 11)
      return decode_pingreq(frame, kVersion);
    else if constexpr (I == 12)
      return decode_pingresp(frame, kVersion);
    else if constexpr (I == 13)
      return decode_disconnect(frame, kVersion);
    else
      return decode_auth(frame, kVersion);
  }();
  const std::size_t type = frame.empty() ? 0 : static_cast<std::uint8_t>(frame[0]) >> 4;
  if (type == I + 1) {
    FUZZ_CHECK(r.has_value() == whole.has_value());
    if (r) {
      FUZZ_CHECK(whole->index() == I);
      FUZZ_CHECK(same(Packet(std::in_place_index<I>, *r), *whole));
    } else {
      FUZZ_CHECK(r.error() == whole.error());
    }
  } else {
    // A frame of another type is never accepted by this decoder.
    FUZZ_CHECK(!r.has_value());
  }
}

template <std::size_t... I>
void check_all_specific(Bytes frame, const Result<Packet>& whole, std::index_sequence<I...>) {
  (check_specific<I>(frame, whole), ...);
}

// Packets a receiver must decode but a sender must never produce: the one case where decoding
// succeeds and encoding refuses, on purpose.
bool must_decode_but_not_send(const Packet& p) {
  // 3.1.1: a zero-byte ClientId with CleanSession = 0 is well formed, and the Server must see
  // it to answer CONNACK 0x02 [MQTT-3.1.3-8]; a client must never send it [MQTT-3.1.3-7].
  if (const auto* c = std::get_if<Connect>(&p))
    return c->version == Version::V311 && c->client_id.empty() && !c->clean_start;
  return false;
}

void round_trip(Bytes frame, const Packet& p) {
  const Version v = version_for(p);
  auto size = encoded_size(p, v);
  if (must_decode_but_not_send(p)) {
    FUZZ_CHECK(!size.has_value() && size.error() == Errc::InvalidArgument);
    return;
  }
  // Otherwise whatever decodes also encodes: the decoder accepts nothing a conforming sender
  // could not have produced.
  FUZZ_CHECK(size.has_value());
  FUZZ_CHECK(*size <= g_out1.size());
  auto n1 = encode(p, v, g_out1);
  FUZZ_CHECK(n1.has_value() && *n1 == *size);
  const Bytes first(g_out1.data(), *n1);
  // A packet re-encoded from a decoded one is no longer than the frame it came from, except
  // that a non-minimal encoding cannot exist (read_frame rejects it), so sizes match unless
  // the peer used a different but equivalent encoding (property order, duplicate-free lists).
  (void)frame;

  auto fr = read_frame(first);
  FUZZ_CHECK(fr.has_value() && fr->complete && fr->header.packet_size() == first.size());
  auto again = decode(first, kVersion);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(same(*again, p));
  auto n2 = encode(*again, version_for(*again), g_out2);
  FUZZ_CHECK(n2.has_value() && *n2 == *n1);
  FUZZ_CHECK(same_bytes(first, Bytes(g_out2.data(), *n2)));
}

// The client's decode_from_server() agrees with decode() on every packet a server may send and
// refuses the four a client sends (ProtocolError, whether well-formed or not).
void check_client_side(Bytes frame, const Result<Packet>& whole) {
  Packet mine;
  const Result<void> r = decode_from_server(frame, kVersion, mine);
  const unsigned type = frame.empty() ? 0 : static_cast<unsigned>(frame[0]) >> 4;
  const bool client_only = type == 1 || type == 8 || type == 10 || type == 12;
  if (client_only) {
    FUZZ_CHECK(!r.has_value() && r.error() == Errc::ProtocolError);
    return;
  }
  FUZZ_CHECK(r.has_value() == whole.has_value());
  if (!whole) {
    FUZZ_CHECK(r.error() == whole.error());
    return;
  }
  FUZZ_CHECK(same(mine, *whole));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  Bytes frame;
  if ((data[0] & 1) == 0) {
    frame = Bytes(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  } else {
    if (size < 2) return 0;
    const Bytes body(reinterpret_cast<const std::byte*>(data + 2), size - 2);
    const std::size_t n = make_frame(data[1], body, g_frame);
    if (n == 0) return 0;
    frame = Bytes(g_frame.data(), n);
  }
  const Result<Packet> whole = decode(frame, kVersion);
  check_all_specific(frame, whole, std::make_index_sequence<std::variant_size_v<Packet>>{});
  check_client_side(frame, whole);
  if (!whole) return 0;
  check_views(frame, *whole);
  round_trip(frame, *whole);
  return 0;
}
