// Fixed header and framing (spec 2.1, 1.5.5), plus the small shared checks of wire.hpp.
#include "wire.hpp"

namespace edgekit::mqtt {
namespace wire {

std::uint32_t Reader::varint() noexcept {
  std::uint32_t v = 0;
  for (unsigned i = 0; i < 4; ++i) {
    const std::uint8_t* b = take(1);
    if (b == nullptr) return 0;
    v |= std::uint32_t{*b & 0x7Fu} << (7 * i);
    if ((*b & 0x80) == 0) {
      // [MQTT-1.5.5-1] The encoded value MUST use the minimum number of bytes: a last byte of 0
      // after a continuation byte is a longer form of a shorter encoding.
      if (i > 0 && *b == 0) break;
      return v;
    }
  }
  fail(Errc::MalformedPacket);
  return 0;
}

Errc check_version(Version v) noexcept {
  if (v == Version::V5) return kV5 ? Errc::Ok : Errc::ProtocolVersionDisabled;
  if (v == Version::V311) return kV311 ? Errc::Ok : Errc::ProtocolVersionDisabled;
  return Errc::InvalidArgument;
}

bool reason_allowed(ReasonCode rc, PacketType t) noexcept {
  // Which reason codes each MQTT 5 packet may carry (spec 2.4 table 2-6 and the reason code
  // lists of 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1).
  // One bit per group of packets that accept the same codes, so that a row is two bytes.
  constexpr std::uint8_t CA = 1, PA = 2, PR = 4, SA = 8, UA = 16, D = 32, A = 64;
  // The group of each packet type: PUBACK and PUBREC share one, PUBREL and PUBCOMP another.
  static constexpr std::uint8_t kGroup[16] = {0, 0, CA, 0, PA, PA, PR, PR, 0, SA, 0, UA, 0, 0, D, A};
  struct Row {
    std::uint8_t code;
    std::uint8_t mask;
  };
  static constexpr Row kRows[] = {
      {0x00, CA | PA | PR | SA | UA | D | A},
      {0x01, SA}, {0x02, SA}, {0x04, D}, {0x10, PA}, {0x11, UA}, {0x18, A}, {0x19, A},
      {0x80, CA | PA | SA | UA | D}, {0x81, CA | D}, {0x82, CA | D},
      {0x83, CA | PA | SA | UA | D}, {0x84, CA}, {0x85, CA}, {0x86, CA},
      {0x87, CA | PA | SA | UA | D}, {0x88, CA}, {0x89, CA | D}, {0x8A, CA}, {0x8B, D},
      {0x8C, CA}, {0x8D, D}, {0x8E, D}, {0x8F, SA | UA | D}, {0x90, CA | PA | D},
      {0x91, PA | SA | UA}, {0x92, PR}, {0x93, D}, {0x94, D}, {0x95, CA | D}, {0x96, D},
      {0x97, CA | PA | SA | D}, {0x98, D}, {0x99, CA | PA | D}, {0x9A, CA | D},
      {0x9B, CA | D}, {0x9C, CA | D}, {0x9D, CA | D}, {0x9E, SA | D}, {0x9F, CA | D},
      {0xA0, D}, {0xA1, SA | D}, {0xA2, SA | D},
  };
  const auto code = static_cast<std::uint8_t>(rc);
  for (const Row& r : kRows) {
    if (r.code == code) return (r.mask & kGroup[static_cast<std::uint8_t>(t) & 15]) != 0;
  }
  return false;
}

}  // namespace wire

Result<Frame> read_frame(Bytes received, std::uint32_t max_packet_size) noexcept {
  // One Result, built in place and returned on every path (code size).
  Result<Frame> out{std::in_place};
  Frame& f = *out;
  const auto* b = reinterpret_cast<const std::uint8_t*>(received.data());
  const std::size_t n = received.size();
  Errc error = Errc::Ok;
  if (n == 0) {
    f.bytes_needed = 2;  // a type byte and at least one length byte
    return out;
  }
  // [MQTT-2.1.2] Control packet type 0 is reserved (forbidden).
  if ((b[0] >> 4) == 0) {
    error = Errc::InvalidPacketType;
  } else {
    std::uint32_t len = 0;
    std::size_t i = 0;
    for (;;) {
      if (1 + i >= n) {
        f.bytes_needed = 1;
        return out;
      }
      const std::uint8_t c = b[1 + i];
      len |= std::uint32_t{c & 0x7Fu} << (7 * i);
      if ((c & 0x80) == 0) {
        // [MQTT-1.5.5-1] minimum number of bytes: 0x80 0x00 and the like are not allowed.
        if (i > 0 && c == 0) error = Errc::MalformedRemainingLength;
        break;
      }
      // A fourth byte with the continuation bit would announce a fifth: at most four bytes.
      if (++i == 4) {
        error = Errc::MalformedRemainingLength;
        break;
      }
    }
    if (error == Errc::Ok) {
      f.header.type = static_cast<PacketType>(b[0] >> 4);
      f.header.flags = b[0] & 0x0F;
      f.header.remaining_length = len;
      f.header.header_size = static_cast<std::uint8_t>(2 + i);
      const std::size_t total = f.header.packet_size();
      if (total > max_packet_size) {
        error = Errc::PacketTooLarge;
      } else if (n >= total) {
        f.complete = true;
      } else {
        f.bytes_needed = total - n;
      }
    }
  }
  if (error != Errc::Ok) out = fail(error);
  return out;
}

}  // namespace edgekit::mqtt
