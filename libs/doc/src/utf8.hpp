#pragma once
// Private: UTF-8 well-formedness (RFC 3629 §4, the table of Unicode 15 §3.9 D92), shared by the
// JSON reader and writer and the CBOR reader and writer.
#include <cstddef>
#include <cstdint>

namespace edgekit::doc::detail {

// The length (1-4) of the well-formed UTF-8 sequence at `p`, of which `n` bytes are available;
// 0 when it is ill-formed or cut short. Refuses overlong forms, surrogates (U+D800-DFFF) and
// code points above U+10FFFF, as RFC 3629 requires.
[[nodiscard]] inline std::size_t utf8_sequence(const unsigned char* p, std::size_t n) noexcept {
  const unsigned b0 = p[0];
  if (b0 < 0x80) return 1;
  std::size_t len = 0;
  unsigned lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong below U+0800
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong below U+10000
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // 0x80-0xC1 (continuation or overlong lead), 0xF5-0xFF
  }
  if (n < len || p[1] < lo || p[1] > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
  }
  return len;
}

// The offset of the first byte of `n` at `p` that starts no well-formed sequence, or `n`.
[[nodiscard]] inline std::size_t utf8_invalid_at(const unsigned char* p, std::size_t n) noexcept {
  std::size_t i = 0;
  while (i < n) {
    const std::size_t len = utf8_sequence(p + i, n - i);
    if (len == 0) return i;
    i += len;
  }
  return n;
}

}  // namespace edgekit::doc::detail
