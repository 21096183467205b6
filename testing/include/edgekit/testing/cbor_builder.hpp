#pragma once
/// \file
/// A CBOR item built by hand (RFC 8949 3.1: the major type in the top three bits, definite
/// lengths in the shortest head: below 24 in the head itself, one extra byte below 256, two
/// below 65536), so that CBOR readers are tested against bytes that do not come from the writer
/// they are paired with, and a writer's output is compared with bytes it did not make.
/// constexpr, header-only, no heap and no GoogleTest: the hosted tests, the Cortex-M tests and
/// the size-report device programs (whose inputs then sit in flash) use the same builder.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace edgekit::testing {

template <std::size_t Capacity>
struct CborBuilder {
  std::array<std::uint8_t, Capacity> bytes{};
  std::size_t size = 0;

  constexpr CborBuilder& head(std::uint8_t major, std::size_t n) {
    if (n < 24) {
      bytes[size++] = static_cast<std::uint8_t>(major << 5 | n);
    } else if (n < 256) {
      bytes[size++] = static_cast<std::uint8_t>(major << 5 | 24);
      bytes[size++] = static_cast<std::uint8_t>(n);
    } else {
      bytes[size++] = static_cast<std::uint8_t>(major << 5 | 25);
      bytes[size++] = static_cast<std::uint8_t>(n >> 8);
      bytes[size++] = static_cast<std::uint8_t>(n);
    }
    return *this;
  }
  constexpr CborBuilder& map(std::size_t pairs) { return head(5, pairs); }
  constexpr CborBuilder& uint(std::size_t v) { return head(0, v); }
  constexpr CborBuilder& text(std::string_view s) {
    head(3, s.size());
    for (char c : s) bytes[size++] = static_cast<std::uint8_t>(c);
    return *this;
  }
  constexpr CborBuilder& boolean(bool b) { return raw(b ? 0xf5 : 0xf4); }
  constexpr CborBuilder& raw(std::uint8_t b) {
    bytes[size++] = b;
    return *this;
  }
  [[nodiscard]] constexpr std::span<const std::uint8_t> view() const { return {bytes.data(), size}; }
};

}  // namespace edgekit::testing
