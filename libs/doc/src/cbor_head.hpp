#pragma once
// Private: the head of a CBOR data item (RFC 8949 §3): major type, additional information and
// argument, shared by the reader and the writer.
#include <cstddef>
#include <cstdint>

#include "edgekit/doc/errc.hpp"

namespace edgekit::doc::cbor::wire {

inline constexpr std::uint8_t kUnsigned = 0, kNegative = 1, kBytes = 2, kText = 3, kArray = 4,
                              kMap = 5, kTag = 6, kSimple = 7;

struct Head {
  std::uint8_t major = 0;
  std::uint8_t info = 0;  // additional information
  std::uint64_t arg = 0;  // the argument (0-23 inline, else the following 1, 2, 4 or 8 bytes)
  std::size_t size = 1;   // bytes of the head
};

// The number of bytes the shortest head with argument `arg` takes (RFC 8949 §4.2.1).
[[nodiscard]] constexpr std::size_t head_size(std::uint64_t arg) noexcept {
  return arg < 24 ? 1 : arg <= 0xFF ? 2 : arg <= 0xFFFF ? 3 : arg <= 0xFFFFFFFF ? 5 : 9;
}

// Reads the head at `p` (`n` > 0 bytes available) and checks what a head alone can break:
// UnexpectedEnd, ReservedAdditionalInfo (28-30; 31 on major types 0, 1 and 6, malformed per
// §3), IndefiniteLength (31 on 2-5, and the break byte 0xff), NonPreferredEncoding (major types
// 0-5 only: 7 with info 24-27 is a simple value or a float, refused by the caller).
[[nodiscard]] inline Errc read_head(const unsigned char* p, std::size_t n, Head& h) noexcept {
  h.major = static_cast<std::uint8_t>(p[0] >> 5);
  h.info = static_cast<std::uint8_t>(p[0] & 0x1F);
  if (h.info < 24) {
    h.arg = h.info;
    h.size = 1;
    return Errc::Ok;
  }
  if (h.info >= 28) {
    if (h.info == 31 && h.major != kUnsigned && h.major != kNegative && h.major != kTag) {
      return Errc::IndefiniteLength;
    }
    return Errc::ReservedAdditionalInfo;
  }
  const std::size_t len = std::size_t{1} << (h.info - 24);
  if (n - 1 < len) return Errc::UnexpectedEnd;
  h.arg = 0;
  for (std::size_t k = 1; k <= len; ++k) h.arg = (h.arg << 8) | p[k];
  h.size = 1 + len;
  if (h.major <= kMap && head_size(h.arg) != h.size) return Errc::NonPreferredEncoding;
  return Errc::Ok;
}

// Writes the shortest head for (`major`, `arg`) into `out` (9 bytes); returns its size.
inline std::size_t write_head(std::uint8_t major, std::uint64_t arg, unsigned char* out) noexcept {
  const std::size_t size = head_size(arg);
  const auto mt = static_cast<unsigned char>(major << 5);
  if (size == 1) {
    out[0] = static_cast<unsigned char>(mt | arg);
    return 1;
  }
  const std::size_t len = size - 1;  // 1, 2, 4 or 8
  out[0] = static_cast<unsigned char>(mt | (len == 1 ? 24 : len == 2 ? 25 : len == 4 ? 26 : 27));
  for (std::size_t k = 0; k < len; ++k) {
    out[size - 1 - k] = static_cast<unsigned char>(arg >> (8 * k));
  }
  return size;
}

}  // namespace edgekit::doc::cbor::wire
