// UTF-8 strings and topics (spec 1.5.4, 4.7, 4.8.2): validation and matching.
#include <cstring>

#include "wire.hpp"

namespace edgekit::mqtt {
namespace wire {

namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHighs = 0x8080808080808080ull;
// True when some byte of `v` is zero (the classic bit trick: exact, no false positives).
constexpr bool has_zero_byte(std::uint64_t v) { return ((v - kOnes) & ~v & kHighs) != 0; }

// Validates UTF-8 [MQTT-1.5.4-1], U+0000 [MQTT-1.5.4-2] and, for topic names, wildcards
// [MQTT-3.3.2-2] in one pass. Runs of plain ASCII are checked eight bytes at a time; a wildcard
// can never hide inside a multi-byte sequence, whose bytes are all >= 0x80.
// True when the eight bytes of `v` are plain ASCII, not NUL and (for a topic name) no wildcard.
constexpr bool plain_ascii(std::uint64_t v, bool topic_name) noexcept {
  return (v & kHighs) == 0 && !has_zero_byte(v) &&
         !(topic_name && (has_zero_byte(v ^ (kOnes * '+')) || has_zero_byte(v ^ (kOnes * '#'))));
}

Errc check_text(const std::uint8_t* s, std::size_t n, bool topic_name) noexcept {
#if !defined(__OPTIMIZE_SIZE__)
  // Speed builds: a plain ASCII string of four bytes or more is accepted with word loads only,
  // the last word overlapping the one before (bytes checked twice are checked alike). Anything
  // else falls through to the byte loop below, which decides alone.
  if (n >= 8) {
    std::size_t k = 0;
    std::uint64_t v;
    bool ok = true;
    for (; ok && k + 8 <= n; k += 8) {
      std::memcpy(&v, s + k, 8);
      ok = plain_ascii(v, topic_name);
    }
    if (ok) {
      std::memcpy(&v, s + n - 8, 8);
      if (plain_ascii(v, topic_name)) return Errc::Ok;
    }
  } else if (n >= 4) {
    std::uint32_t lo;
    std::uint32_t hi;
    std::memcpy(&lo, s, 4);
    std::memcpy(&hi, s + n - 4, 4);
    if (plain_ascii(lo | (std::uint64_t{hi} << 32), topic_name)) return Errc::Ok;
  }
#endif
  std::size_t i = 0;
  while (i < n) {
#if !defined(__OPTIMIZE_SIZE__)
    if (n - i >= 8) {
      std::uint64_t v;
      std::memcpy(&v, s + i, 8);
      if (plain_ascii(v, topic_name)) {
        i += 8;
        continue;
      }
    }
#endif
    const std::uint8_t c = s[i];
    if (c < 0x80) {
      // [MQTT-1.5.4-2] A UTF-8 Encoded String MUST NOT include an encoding of the null
      // character U+0000.
      if (c == 0) return Errc::NullCharacterInString;
      // [MQTT-3.3.2-2] The Topic Name in the PUBLISH packet MUST NOT contain wildcard
      // characters.
      if (topic_name && (c == '+' || c == '#')) return Errc::WildcardInTopicName;
      ++i;
      continue;
    }
    // [MQTT-1.5.4-1] The character data MUST be well-formed UTF-8 as defined by RFC 3629: no
    // stray continuation bytes, no overlong forms (C0, C1 leads; checked below for 3 and 4
    // bytes), no surrogates U+D800..U+DFFF, nothing above U+10FFFF.
    std::size_t len;
    std::uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return Errc::InvalidUtf8;
    }
    if (n - i < len) return Errc::InvalidUtf8;
    for (std::size_t k = 1; k < len; ++k) {
      const std::uint8_t b = s[i + k];
      if ((b & 0xC0) != 0x80) return Errc::InvalidUtf8;
      cp = (cp << 6) | (b & 0x3Fu);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return Errc::InvalidUtf8;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return Errc::InvalidUtf8;
    i += len;
  }
  return Errc::Ok;
}

}  // namespace

Errc check_utf8(const std::uint8_t* s, std::size_t n) noexcept { return check_text(s, n, false); }

Errc check_string(std::string_view s) noexcept {
  if (s.size() > 65535) return Errc::StringTooLong;
  return check_utf8(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

Errc check_topic_name(std::string_view t) noexcept {
  // [MQTT-4.7.3-1] All Topic Names and Topic Filters MUST be at least one character long.
  if (t.empty()) return Errc::EmptyTopic;
  if (t.size() > 65535) return Errc::StringTooLong;
  return check_text(reinterpret_cast<const std::uint8_t*>(t.data()), t.size(), true);
}

// Plain loops instead of string_view's find / starts_with / substr: those call strlen, memchr
// and memcmp (and substr a throwing path ending in abort), which a device image then links from
// libc for a few short scans (code size).
namespace {
constexpr std::size_t kSharePrefix = 7;  // "$share/"

// Position of the first '/' in `s` at or after `from`, or s.size().
std::size_t find_slash(std::string_view s, std::size_t from) noexcept {
  while (from < s.size() && s[from] != '/') ++from;
  return from;
}
}  // namespace

bool is_shared(std::string_view f) noexcept {
  constexpr char kShare[] = "$share/";
  if (f.size() < kSharePrefix) return false;
  for (std::size_t i = 0; i < kSharePrefix; ++i) {
    if (f[i] != kShare[i]) return false;
  }
  return true;
}

Errc check_topic_filter(std::string_view f) noexcept {
  if (f.empty()) return Errc::EmptyTopic;  // [MQTT-4.7.3-1]
  if (Errc e = check_string(f); e != Errc::Ok) return e;
  if (is_shared(f)) {
    // [MQTT-4.8.2-1] A Shared Subscription's Topic Filter MUST start with $share/ and MUST
    // contain a ShareName that is at least one character long.
    // [MQTT-4.8.2-2] The ShareName MUST NOT contain '/', '+' or '#', and MUST be followed by a
    // '/' and a Topic Filter.
    f.remove_prefix(kSharePrefix);
    const std::size_t slash = find_slash(f, 0);
    if (slash == 0 || slash == f.size()) return Errc::InvalidTopicFilter;
    for (std::size_t i = 0; i < slash; ++i) {
      if (f[i] == '+' || f[i] == '#') return Errc::InvalidTopicFilter;
    }
    f.remove_prefix(slash + 1);
    if (f.empty()) return Errc::InvalidTopicFilter;
  }
  const std::size_t n = f.size();
  for (std::size_t i = 0; i < n; ++i) {
    const bool level_start = i == 0 || f[i - 1] == '/';
    if (f[i] == '#') {
      // [MQTT-4.7.1-2] The multi-level wildcard character MUST be specified either on its own
      // or following a topic level separator, and MUST be the last character of the filter.
      if (!level_start || i + 1 != n) return Errc::InvalidTopicFilter;
    } else if (f[i] == '+') {
      // [MQTT-4.7.1-3] The single-level wildcard MUST occupy an entire level of the filter.
      if (!level_start || (i + 1 != n && f[i + 1] != '/')) return Errc::InvalidTopicFilter;
    }
  }
  return Errc::Ok;
}

}  // namespace wire

Result<void> validate_utf8(std::string_view s) noexcept {
  if (Errc e = wire::check_string(s); e != Errc::Ok) return fail(e);
  return {};
}

Result<void> validate_topic_name(std::string_view topic) noexcept {
  if (Errc e = wire::check_topic_name(topic); e != Errc::Ok) return fail(e);
  return {};
}

Result<void> validate_topic_filter(std::string_view filter) noexcept {
  if (Errc e = wire::check_topic_filter(filter); e != Errc::Ok) return fail(e);
  return {};
}

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
  if (wire::is_shared(filter)) {
    // A shared subscription matches like the filter after "$share/{ShareName}/" (spec 4.8.2).
    filter.remove_prefix(wire::kSharePrefix);
    const std::size_t slash = wire::find_slash(filter, 0);
    if (slash == filter.size()) return false;
    filter.remove_prefix(slash + 1);
  }
  // [MQTT-4.7.2-1] The Server MUST NOT match Topic Filters starting with a wildcard character
  // with Topic Names beginning with a $ character.
  if (!topic.empty() && topic[0] == '$' && !filter.empty() &&
      (filter[0] == '+' || filter[0] == '#'))
    return false;
  const std::size_t fn = filter.size();
  const std::size_t tn = topic.size();
  std::size_t f = 0;
  std::size_t t = 0;
  for (;;) {
    // '#' matches the rest, including the parent level (handled when the topic ends below).
    if (f < fn && filter[f] == '#') return true;
    if (f < fn && filter[f] == '+') {
      ++f;
      while (t < tn && topic[t] != '/') ++t;
    } else {
      while (f < fn && t < tn && filter[f] != '/' && filter[f] == topic[t]) {
        ++f;
        ++t;
      }
      if ((f < fn && filter[f] != '/') || (t < tn && topic[t] != '/')) return false;
    }
    const bool f_end = f == fn;
    const bool t_end = t == tn;
    if (f_end && t_end) return true;
    // "sport/#" also matches "sport" (spec 4.7.1.2).
    if (t_end) return fn - f == 2 && filter[f] == '/' && filter[f + 1] == '#';
    if (f_end) return false;
    ++f;
    ++t;
  }
}

}  // namespace edgekit::mqtt
