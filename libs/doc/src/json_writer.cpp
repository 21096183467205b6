// The JSON writer: compact output into the caller's buffer, strings escaped per RFC 8259 §7.
#include <charconv>

#include "base64.hpp"
#include "edgekit/doc/json.hpp"
#include "utf8.hpp"

namespace edgekit::doc::json {

// The separator a value or key needs: ',' between items, ':' between a key and its value.
bool Writer::prefix(bool is_key) noexcept {
  std::uint32_t prev = 0;
  if (!core_.next(is_key, prev)) return false;
  if (core_.in_map() && !is_key) return core_.put(':');
  if (prev > 0) return core_.put(',');
  return true;
}

Writer& Writer::open(bool is_object) noexcept {
  if (core_.start() && prefix(false) && core_.push(is_object)) {
    (void)core_.put(is_object ? '{' : '[');
  }
  return *this;
}

Writer& Writer::close(bool is_object) noexcept {
  detail::Frame closed;
  if (core_.start() && core_.pop(is_object, closed)) (void)core_.put(is_object ? '}' : ']');
  return *this;
}

Writer& Writer::begin_object() noexcept {
  return open(true);
}
Writer& Writer::end_object() noexcept {
  return close(true);
}
Writer& Writer::begin_array() noexcept {
  return open(false);
}
Writer& Writer::end_array() noexcept {
  return close(false);
}

bool Writer::put_string(std::string_view s) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(s.data());
  // Checked first, so that a refused string leaves nothing half-written behind.
  if (detail::utf8_invalid_at(bytes, s.size()) != s.size()) {
    core_.fail(Errc::InvalidArgument);
    return false;
  }
  if (!core_.put('"')) return false;
  std::size_t run = 0;  // start of the bytes not yet written that need no escape
  for (std::size_t k = 0; k < s.size(); ++k) {
    const unsigned char c = bytes[k];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    if (!core_.put(bytes + run, k - run)) return false;
    run = k + 1;
    char esc[6] = {'\\', 0, '0', '0', 0, 0};
    std::size_t len = 2;
    switch (c) {
      case '"':
        esc[1] = '"';
        break;
      case '\\':
        esc[1] = '\\';
        break;
      case '\b':
        esc[1] = 'b';
        break;
      case '\f':
        esc[1] = 'f';
        break;
      case '\n':
        esc[1] = 'n';
        break;
      case '\r':
        esc[1] = 'r';
        break;
      case '\t':
        esc[1] = 't';
        break;
      default:  // other control characters: \u00XX
        esc[1] = 'u';
        esc[4] = "0123456789abcdef"[c >> 4];
        esc[5] = "0123456789abcdef"[c & 0x0F];
        len = 6;
    }
    if (!core_.put(esc, len)) return false;
  }
  return core_.put(bytes + run, s.size() - run) && core_.put('"');
}

Writer& Writer::key(std::string_view k) noexcept {
  if (core_.start() && prefix(true)) (void)put_string(k);
  return *this;
}

Writer& Writer::string(std::string_view s) noexcept {
  if (core_.start() && prefix(false)) (void)put_string(s);
  return *this;
}

Writer& Writer::int64(std::int64_t v) noexcept {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, v);
  if (core_.start() && prefix(false))
    (void)core_.put(digits, static_cast<std::size_t>(r.ptr - digits));
  return *this;
}

Writer& Writer::uint64(std::uint64_t v) noexcept {
  char digits[24];
  const auto r = std::to_chars(digits, digits + sizeof digits, v);
  if (core_.start() && prefix(false))
    (void)core_.put(digits, static_cast<std::size_t>(r.ptr - digits));
  return *this;
}

Writer& Writer::boolean(bool v) noexcept {
  const std::string_view word = v ? "true" : "false";
  if (core_.start() && prefix(false)) (void)core_.put(word.data(), word.size());
  return *this;
}

Writer& Writer::null() noexcept {
  if (core_.start() && prefix(false)) (void)core_.put("null", 4);
  return *this;
}

Writer& Writer::bytes(std::span<const std::byte> b) noexcept {
  if (!core_.start() || !prefix(false) || !core_.put('"')) return *this;
  for (std::size_t k = 0; k < b.size(); k += 3) {
    const std::size_t n = b.size() - k < 3 ? b.size() - k : 3;
    std::uint32_t triple = static_cast<std::uint32_t>(b[k]) << 16;
    if (n > 1) triple |= static_cast<std::uint32_t>(b[k + 1]) << 8;
    if (n > 2) triple |= static_cast<std::uint32_t>(b[k + 2]);
    const char quad[4] = {detail::kBase64Alphabet[(triple >> 18) & 0x3F],
                          detail::kBase64Alphabet[(triple >> 12) & 0x3F],
                          n > 1 ? detail::kBase64Alphabet[(triple >> 6) & 0x3F] : '=',
                          n > 2 ? detail::kBase64Alphabet[triple & 0x3F] : '='};
    if (!core_.put(quad, 4)) return *this;
  }
  (void)core_.put('"');
  return *this;
}

Writer& Writer::value(const Value& v) noexcept {
  const std::string_view t = v.text();
  if (core_.start() && prefix(false)) (void)core_.put(t.data(), t.size());
  return *this;
}

Result<std::string_view> Writer::finish() const noexcept {
  const auto n = core_.finish();
  if (!n) return fail(n.error());
  return std::string_view(reinterpret_cast<const char*>(core_.data()), *n);
}

}  // namespace edgekit::doc::json
