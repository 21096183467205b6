#include "terminal.hpp"

#include <cstdint>
#include <cstdio>

namespace edgekit::tools {

std::string escape_for_terminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  char hex[5];
  const auto escape = [&](unsigned char c) {
    std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned>(c));
    out += hex;
  };
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      if (c == '\\') out += '\\';
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // A valid UTF-8 sequence of a code point from U+00A0 up is printable text.
    std::size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (c >= 0xF5) len = 0;
    bool valid = len > 0 && i + len <= text.size();
    std::uint32_t cp = len == 2 ? (c & 0x1FU) : len == 3 ? (c & 0x0FU) : (c & 0x07U);
    for (std::size_t k = 1; valid && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      valid = (cc & 0xC0U) == 0x80U;
      cp = (cp << 6) | (cc & 0x3FU);
    }
    valid = valid && cp >= 0xA0 && !(len == 3 && cp < 0x800) && !(len == 4 && cp < 0x10000) &&
            !(cp >= 0xD800 && cp <= 0xDFFF) && cp <= 0x10FFFF;
    if (valid) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      escape(c);
      ++i;
    }
  }
  return out;
}

}  // namespace edgekit::tools
