// The JSON reader: one strict pass over the grammar of RFC 8259 (pass 1), a duplicate-key pass
// over the checked text (pass 2), and lookups that walk the checked text again.
#include <cstring>

#include "base64.hpp"
#include "edgekit/doc/json.hpp"
#include "utf8.hpp"
#include "value_base.hpp"

namespace edgekit::doc::json {

namespace {

// Value::flags_ bits.
constexpr std::uint8_t kHasEscapes = 1;     // a String with at least one '\'
constexpr std::uint8_t kIntegerSyntax = 2;  // a Number with no fraction and no exponent

// RFC 8259 §2: the only insignificant whitespace.
constexpr bool is_ws(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Four hex digits at `p` (all present); -1 if any is not a hex digit.
long hex4(const char* p) noexcept {
  long v = 0;
  for (int k = 0; k < 4; ++k) {
    const int d = hex_value(p[k]);
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

constexpr bool is_high_surrogate(long u) noexcept {
  return u >= 0xD800 && u <= 0xDBFF;
}
constexpr bool is_low_surrogate(long u) noexcept {
  return u >= 0xDC00 && u <= 0xDFFF;
}

// ---- Walking checked text (pass 2 and lookups). The text is known to be valid JSON, so these
// need no bounds: every container is closed and every scalar inside one is followed by a
// delimiter.

std::size_t skip_ws(const char* doc, std::size_t p) noexcept {
  while (is_ws(doc[p])) ++p;
  return p;
}

// One past the closing quote of the string that starts at `p`.
std::size_t skip_string(const char* doc, std::size_t p) noexcept {
  ++p;
  while (doc[p] != '"') p += doc[p] == '\\' ? 2 : 1;
  return p + 1;
}

// One past the end of the value that starts at `p` (inside a container).
std::size_t skip_value(const char* doc, std::size_t p) noexcept {
  const char c = doc[p];
  if (c == '"') return skip_string(doc, p);
  if (c == '{' || c == '[') {
    std::size_t depth = 0;
    while (true) {
      const char d = doc[p];
      if (d == '"') {
        p = skip_string(doc, p);
        continue;
      }
      if (d == '{' || d == '[') ++depth;
      if ((d == '}' || d == ']') && --depth == 0) return p + 1;
      ++p;
    }
  }
  while (doc[p] != ',' && doc[p] != ']' && doc[p] != '}' && !is_ws(doc[p])) ++p;
  return p;
}

}  // namespace

// Builds values over checked text (the one friend of Value in this file).
struct Access {
  static Value make(const char* doc, std::size_t begin, std::size_t end) noexcept {
    const char c = doc[begin];
    Type type = Type::Number;
    std::uint8_t flags = 0;
    if (c == '{')
      type = Type::Object;
    else if (c == '[')
      type = Type::Array;
    else if (c == '"')
      type = Type::String;
    else if (c == 't' || c == 'f')
      type = Type::Bool;
    else if (c == 'n')
      type = Type::Null;
    if (type == Type::String && std::memchr(doc + begin, '\\', end - begin) != nullptr) {
      flags = kHasEscapes;
    }
    if (type == Type::Number) {
      const std::string_view t(doc + begin, end - begin);
      if (t.find_first_of(".eE") == std::string_view::npos) flags = kIntegerSyntax;
    }
    return Value(doc, begin, end, type, flags);
  }
  static Value at(const char* doc, std::size_t begin) noexcept {
    return make(doc, begin, skip_value(doc, begin));
  }
  static std::uint8_t flags(const Value& v) noexcept { return v.flags_; }
  static std::string_view body(const Value& v) noexcept {  // a string without its quotes
    return {v.doc_ + v.begin_ + 1, v.end_ - v.begin_ - 2};
  }
  static std::size_t begin(const Value& v) noexcept { return v.begin_; }
  static std::size_t end(const Value& v) noexcept { return v.end_; }
  static const char* doc(const Value& v) noexcept { return v.doc_; }
};

namespace {

// The bytes of a checked string's content, unescaped, one at a time: what copy_string,
// string_length, equals and the duplicate-key check share.
class Unescaper {
 public:
  explicit Unescaper(std::string_view body) noexcept : body_(body) {}

  bool next(char& c) noexcept {
    if (ready_ < pending_) {
      c = buf_[ready_++];
      return true;
    }
    if (pos_ >= body_.size()) return false;
    const char ch = body_[pos_];
    if (ch != '\\') {
      c = ch;
      ++pos_;
      return true;
    }
    const char e = body_[pos_ + 1];
    pos_ += 2;
    switch (e) {
      case 'b':
        c = '\b';
        return true;
      case 'f':
        c = '\f';
        return true;
      case 'n':
        c = '\n';
        return true;
      case 'r':
        c = '\r';
        return true;
      case 't':
        c = '\t';
        return true;
      case 'u':
        break;
      default:
        c = e;
        return true;  // '"', '\\', '/'
    }
    unsigned long cp = static_cast<unsigned long>(hex4(body_.data() + pos_));
    pos_ += 4;
    if (is_high_surrogate(static_cast<long>(cp))) {  // checked: a low surrogate escape follows
      const unsigned long low = static_cast<unsigned long>(hex4(body_.data() + pos_ + 2));
      pos_ += 6;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    encode(cp);
    c = buf_[ready_++];
    return true;
  }

 private:
  void encode(unsigned long cp) noexcept {
    ready_ = 0;
    if (cp < 0x80) {
      buf_[0] = static_cast<char>(cp);
      pending_ = 1;
    } else if (cp < 0x800) {
      buf_[0] = static_cast<char>(0xC0 | (cp >> 6));
      buf_[1] = static_cast<char>(0x80 | (cp & 0x3F));
      pending_ = 2;
    } else if (cp < 0x10000) {
      buf_[0] = static_cast<char>(0xE0 | (cp >> 12));
      buf_[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      buf_[2] = static_cast<char>(0x80 | (cp & 0x3F));
      pending_ = 3;
    } else {
      buf_[0] = static_cast<char>(0xF0 | (cp >> 18));
      buf_[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      buf_[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      buf_[3] = static_cast<char>(0x80 | (cp & 0x3F));
      pending_ = 4;
    }
  }

  std::string_view body_;
  std::size_t pos_ = 0;
  char buf_[4]{};
  std::uint8_t pending_ = 0;
  std::uint8_t ready_ = 0;
};

// Two checked strings with equal content (escapes resolved).
bool same_content(const Value& a, const Value& b) noexcept {
  if (((Access::flags(a) | Access::flags(b)) & kHasEscapes) == 0) {
    return Access::body(a) == Access::body(b);
  }
  Unescaper x(Access::body(a)), y(Access::body(b));
  char cx = 0, cy = 0;
  while (true) {
    const bool more_x = x.next(cx), more_y = y.next(cy);
    if (more_x != more_y) return false;
    if (!more_x) return true;
    if (cx != cy) return false;
  }
}

// ---- Pass 1: the grammar of RFC 8259, one byte at a time, without recursion.
class Checker {
 public:
  Checker(std::string_view text, std::size_t max_depth) noexcept
      : s_(text.data()),
        n_(text.size()),
        max_depth_(max_depth < kMaxParseDepth ? max_depth : kMaxParseDepth) {}

  // Checks the whole text; on success `root_begin`/`root_end` delimit the top-level value.
  Result<void> run(std::size_t& root_begin, std::size_t& root_end) noexcept;

 private:
  enum class Due : std::uint8_t { Value, Key, AfterValue };

  [[nodiscard]] Unexpected<Error> error(Errc e, std::size_t at) const noexcept {
    return fail(Error{e, at});
  }
  void skip_ws() noexcept {
    while (i_ < n_ && is_ws(s_[i_])) ++i_;
  }
  bool at_end() const noexcept { return i_ >= n_; }
  Result<void> string() noexcept;
  Result<void> escape() noexcept;
  Result<void> number() noexcept;
  Result<void> literal(std::string_view word) noexcept;
  Result<void> digits() noexcept;
  long unicode_escape(std::size_t at) noexcept;

  Error error_at_escape_{};  // why unicode_escape() returned -1

  const char* s_;
  std::size_t n_;
  std::size_t max_depth_;
  std::size_t i_ = 0;
  std::size_t depth_ = 0;
  std::uint32_t objects_ = 0;  // bit d: the container at depth d+1 is an object
};

static_assert(kMaxParseDepth <= 32, "one bit per level in Checker::objects_");

Result<void> Checker::run(std::size_t& root_begin, std::size_t& root_end) noexcept {
  skip_ws();
  if (at_end() || (s_[i_] == '\0' && i_ + 1 == n_)) return error(Errc::Empty, i_);
  root_begin = i_;
  Due due = Due::Value;
  bool after_comma = false;
  while (true) {
    if (due == Due::AfterValue) {
      if (depth_ == 0) break;
      skip_ws();
      if (at_end()) return error(Errc::UnexpectedEnd, i_);
      const bool object = (objects_ >> (depth_ - 1)) & 1u;
      const char c = s_[i_];
      if (c == ',') {
        ++i_;
        skip_ws();
        due = object ? Due::Key : Due::Value;
        after_comma = true;
      } else if (c == (object ? '}' : ']')) {
        ++i_;
        --depth_;
      } else {
        return error(Errc::UnexpectedCharacter, i_);
      }
      continue;
    }
    if (at_end()) return error(Errc::UnexpectedEnd, i_);
    const char c = s_[i_];
    if (due == Due::Key) {
      if (c == '}' && after_comma) return error(Errc::TrailingComma, i_ - 1);
      if (c != '"') return error(Errc::UnexpectedCharacter, i_);
      EDGEKIT_TRY(string());
      skip_ws();
      if (at_end()) return error(Errc::UnexpectedEnd, i_);
      if (s_[i_] != ':') return error(Errc::UnexpectedCharacter, i_);
      ++i_;
      skip_ws();
      due = Due::Value;
      after_comma = false;
      continue;
    }
    // A value is due.
    if (c == '{' || c == '[') {
      if (depth_ >= max_depth_) return error(Errc::TooDeep, i_);
      const bool object = c == '{';
      objects_ = (objects_ & ~(1u << depth_)) | (static_cast<std::uint32_t>(object) << depth_);
      ++depth_;
      ++i_;
      skip_ws();
      if (!at_end() && s_[i_] == (object ? '}' : ']')) {  // empty
        ++i_;
        --depth_;
        due = Due::AfterValue;
      } else {
        due = object ? Due::Key : Due::Value;
      }
      after_comma = false;
      continue;
    }
    if (c == '"') {
      EDGEKIT_TRY(string());
    } else if (c == '-' || is_digit(c)) {
      EDGEKIT_TRY(number());
    } else if (c == 't') {
      EDGEKIT_TRY(literal("true"));
    } else if (c == 'f') {
      EDGEKIT_TRY(literal("false"));
    } else if (c == 'n') {
      EDGEKIT_TRY(literal("null"));
    } else if (c == ']' && after_comma) {
      return error(Errc::TrailingComma, i_ - 1);
    } else {
      return error(Errc::UnexpectedCharacter, i_);
    }
    due = Due::AfterValue;
  }
  root_end = i_;
  skip_ws();
  // AWS's C demos send the C string's terminator too: one NUL, and nothing after it.
  if (!at_end() && !(s_[i_] == '\0' && i_ + 1 == n_)) return error(Errc::TrailingData, i_);
  return {};
}

Result<void> Checker::string() noexcept {
  ++i_;  // the opening quote
  while (true) {
    if (at_end()) return error(Errc::UnexpectedEnd, i_);
    const auto c = static_cast<unsigned char>(s_[i_]);
    if (c == '"') {
      ++i_;
      return {};
    }
    if (c == '\\') {
      EDGEKIT_TRY(escape());
    } else if (c < 0x20) {
      return error(Errc::ControlCharacterInString, i_);  // RFC 8259 §7
    } else if (c < 0x80) {
      ++i_;
    } else {
      const std::size_t len =
          detail::utf8_sequence(reinterpret_cast<const unsigned char*>(s_) + i_, n_ - i_);
      if (len == 0) return error(Errc::InvalidUtf8, i_);  // RFC 8259 §8.1
      i_ += len;
    }
  }
}

// At a backslash inside a string: RFC 8259 §7's escapes, surrogates paired.
Result<void> Checker::escape() noexcept {
  const std::size_t at = i_;
  if (n_ - i_ < 2) return error(Errc::UnexpectedEnd, n_);
  switch (s_[i_ + 1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
      i_ += 2;
      return {};
    case 'u':
      break;
    default:
      return error(Errc::InvalidEscape, at);
  }
  const long unit = unicode_escape(i_);
  if (unit < 0) return fail(error_at_escape_);
  i_ += 6;
  if (is_low_surrogate(unit)) return error(Errc::UnpairedSurrogate, at);
  if (!is_high_surrogate(unit)) return {};
  // A high surrogate must be followed at once by an escaped low surrogate.
  if (n_ - i_ < 2 || s_[i_] != '\\' || s_[i_ + 1] != 'u') {
    if (n_ - i_ < 2 && (n_ == i_ || s_[i_] == '\\')) return error(Errc::UnexpectedEnd, n_);
    return error(Errc::UnpairedSurrogate, at);
  }
  const long low = unicode_escape(i_);
  if (low < 0) return fail(error_at_escape_);
  if (!is_low_surrogate(low)) return error(Errc::UnpairedSurrogate, at);
  i_ += 6;
  return {};
}

// The code unit of the `\uXXXX` escape at `at`, or -1 with error_at_escape_ set: UnexpectedEnd
// when the text stops within the four digits, InvalidUnicodeEscape at a byte that is no hex digit.
long Checker::unicode_escape(std::size_t at) noexcept {
  long v = 0;
  for (std::size_t k = at + 2; k < at + 6; ++k) {
    if (k >= n_) {
      error_at_escape_ = Error{Errc::UnexpectedEnd, n_};
      return -1;
    }
    const int d = hex_value(s_[k]);
    if (d < 0) {
      error_at_escape_ = Error{Errc::InvalidUnicodeEscape, at};
      return -1;
    }
    v = v * 16 + d;
  }
  return v;
}

// One or more digits (RFC 8259 §6: frac and exp need at least one).
Result<void> Checker::digits() noexcept {
  if (at_end()) return error(Errc::UnexpectedEnd, i_);
  if (!is_digit(s_[i_])) return error(Errc::InvalidNumber, i_);
  while (!at_end() && is_digit(s_[i_])) ++i_;
  return {};
}

// number = [ minus ] int [ frac ] [ exp ]   (RFC 8259 §6)
Result<void> Checker::number() noexcept {
  if (s_[i_] == '-') ++i_;
  if (!at_end() && s_[i_] == '0') {
    ++i_;
    if (!at_end() && is_digit(s_[i_])) return error(Errc::LeadingZero, i_ - 1);
  } else {
    EDGEKIT_TRY(digits());
  }
  if (!at_end() && s_[i_] == '.') {
    ++i_;
    EDGEKIT_TRY(digits());
  }
  if (!at_end() && (s_[i_] == 'e' || s_[i_] == 'E')) {
    ++i_;
    if (!at_end() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
    EDGEKIT_TRY(digits());
  }
  return {};
}

Result<void> Checker::literal(std::string_view word) noexcept {
  for (const char w : word) {
    if (at_end()) return error(Errc::UnexpectedEnd, i_);
    if (s_[i_] != w) return error(Errc::UnexpectedCharacter, i_);
    ++i_;
  }
  return {};
}

// ---- Pass 2: no object of the checked text repeats a key.
Result<void> check_unique_keys(const char* doc, std::size_t begin, std::size_t end) noexcept {
  // Offsets of keys: after a key its ':' and value, then ',' and the next key or the '}'.
  const auto next = [doc](std::size_t key) {
    const std::size_t colon = skip_ws(doc, skip_string(doc, key));
    const std::size_t p = skip_ws(doc, skip_value(doc, skip_ws(doc, colon + 1)));
    return doc[p] == ',' ? skip_ws(doc, p + 1) : detail::kNoKey;
  };
  const auto same = [doc](std::size_t a, std::size_t b) {
    return same_content(Access::make(doc, a, skip_string(doc, a)),
                        Access::make(doc, b, skip_string(doc, b)));
  };
  for (std::size_t p = begin; p < end;) {
    const char c = doc[p];
    if (c == '"') {
      p = skip_string(doc, p);
      continue;
    }
    if (c == '{') {
      const std::size_t first = skip_ws(doc, p + 1);
      if (doc[first] == '"') {
        const std::size_t at = detail::duplicate_key_offset(first, next, same);
        if (at != 0) return fail(Error{Errc::DuplicateKey, at});
      }
    }
    ++p;
  }
  return {};
}

}  // namespace

Result<Value> parse(std::string_view text, ParseOptions options) noexcept {
  Checker checker(text, options.max_depth);
  std::size_t begin = 0, end = 0;
  if (auto r = checker.run(begin, end); !r) return fail(r.error());
  if (auto r = check_unique_keys(text.data(), begin, end); !r) return fail(r.error());
  return Access::make(text.data(), begin, end);
}

// ---- Lookups over checked text.

MemberRange Value::members() const noexcept {
  if (type_ != Type::Object) return {};
  return {ChildCursor{doc_, skip_ws(doc_, begin_ + 1)}, ChildCursor{doc_, end_ - 1}};
}

ElementRange Value::elements() const noexcept {
  if (type_ != Type::Array) return {};
  return {ChildCursor{doc_, skip_ws(doc_, begin_ + 1)}, ChildCursor{doc_, end_ - 1}};
}

std::size_t Value::size() const noexcept {
  std::size_t n = 0;
  if (type_ == Type::Object) {
    for ([[maybe_unused]] const Member& m : members()) ++n;
  } else {
    for ([[maybe_unused]] const Value& e : elements()) ++n;
  }
  return n;
}

Result<bool> Value::as_bool() const noexcept {
  if (type_ != Type::Bool) return fail(error(Errc::WrongType));
  return doc_[begin_] == 't';
}

namespace {
// The magnitude of a checked integer's digits (`-` skipped); false when above 2^64-1.
bool magnitude(std::string_view text, bool& negative, std::uint64_t& value) noexcept {
  negative = text[0] == '-';
  value = 0;
  // Not substr(): it may throw, and a device build should not link the throwing path.
  for (const char c : std::string_view(text.data() + negative, text.size() - negative)) {
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - d) / 10) return false;
    value = value * 10 + d;
  }
  return true;
}
}  // namespace

Result<std::uint64_t> Value::as_uint64() const noexcept {
  if (type_ != Type::Number) return fail(error(Errc::WrongType));
  if ((flags_ & kIntegerSyntax) == 0) return fail(error(Errc::NotAnInteger));
  bool negative = false;
  std::uint64_t m = 0;
  if (!magnitude(text(), negative, m) || (negative && m != 0)) {
    return fail(error(Errc::IntegerOutOfRange));
  }
  return m;
}

Result<std::int64_t> Value::as_int64() const noexcept {
  if (type_ != Type::Number) return fail(error(Errc::WrongType));
  if ((flags_ & kIntegerSyntax) == 0) return fail(error(Errc::NotAnInteger));
  bool negative = false;
  std::uint64_t m = 0;
  constexpr std::uint64_t kMaxPositive = static_cast<std::uint64_t>(INT64_MAX);
  if (!magnitude(text(), negative, m) || m > kMaxPositive + (negative ? 1 : 0)) {
    return fail(error(Errc::IntegerOutOfRange));
  }
  // -2^63 has no positive counterpart: negate in unsigned arithmetic (well defined).
  return negative ? static_cast<std::int64_t>(0 - m) : static_cast<std::int64_t>(m);
}

Result<std::string_view> Value::number_text() const noexcept {
  if (type_ != Type::Number) return fail(error(Errc::WrongType));
  return text();
}

Result<std::string_view> Value::as_string_view() const noexcept {
  if (type_ != Type::String) return fail(error(Errc::WrongType));
  if ((flags_ & kHasEscapes) != 0) return fail(error(Errc::StringHasEscapes));
  return Access::body(*this);
}

Result<std::string_view> Value::copy_string(std::span<char> out) const noexcept {
  if (type_ != Type::String) return fail(error(Errc::WrongType));
  Unescaper u(Access::body(*this));
  std::size_t k = 0;
  char c = 0;
  while (u.next(c)) {
    if (k == out.size()) return fail(error(Errc::BufferTooSmall));
    out[k++] = c;
  }
  return std::string_view(out.data(), k);
}

Result<std::size_t> Value::string_length() const noexcept {
  if (type_ != Type::String) return fail(error(Errc::WrongType));
  Unescaper u(Access::body(*this));
  std::size_t k = 0;
  char c = 0;
  while (u.next(c)) ++k;
  return k;
}

bool Value::equals(std::string_view s) const noexcept {
  if (type_ != Type::String) return false;
  if ((flags_ & kHasEscapes) == 0) return Access::body(*this) == s;
  Unescaper u(Access::body(*this));
  std::size_t k = 0;
  char c = 0;
  while (u.next(c)) {
    if (k == s.size() || s[k++] != c) return false;
  }
  return k == s.size();
}

Result<std::span<const std::byte>> Value::copy_base64(std::span<std::byte> out) const noexcept {
  if (type_ != Type::String) return fail(error(Errc::WrongType));
  Unescaper u(Access::body(*this));
  std::size_t k = 0;
  char quad[4];
  std::size_t got = 0;
  bool ended = false;  // a padded quartet was read: it must be the last
  char c = 0;
  while (u.next(c)) {
    if (ended) return fail(error(Errc::InvalidBase64));
    quad[got++] = c;
    if (got < 4) continue;
    got = 0;
    int v[4];
    for (int q = 0; q < 4; ++q) v[q] = detail::base64_value(quad[q]);
    // Padding: "xx==" or "xxx=" only, and the bits it drops must be zero (RFC 4648 §3.5).
    std::size_t bytes = 3;
    if (quad[3] == '=') {
      bytes = quad[2] == '=' ? 1 : 2;
      ended = true;
    }
    if (v[0] < 0 || v[1] < 0 || (bytes >= 2 && v[2] < 0) || (bytes == 3 && v[3] < 0)) {
      return fail(error(Errc::InvalidBase64));
    }
    if ((bytes == 1 && (v[1] & 0x0F) != 0) || (bytes == 2 && (v[2] & 0x03) != 0)) {
      return fail(error(Errc::InvalidBase64));
    }
    if (out.size() - k < bytes) return fail(error(Errc::BufferTooSmall));
    const std::uint32_t triple = (static_cast<std::uint32_t>(v[0]) << 18) |
                                 (static_cast<std::uint32_t>(v[1]) << 12) |
                                 (static_cast<std::uint32_t>(bytes >= 2 ? v[2] : 0) << 6) |
                                 static_cast<std::uint32_t>(bytes == 3 ? v[3] : 0);
    out[k++] = static_cast<std::byte>(triple >> 16);
    if (bytes >= 2) out[k++] = static_cast<std::byte>(triple >> 8);
    if (bytes == 3) out[k++] = static_cast<std::byte>(triple);
  }
  if (got != 0) return fail(error(Errc::InvalidBase64));
  return std::span<const std::byte>(out.data(), k);
}

}  // namespace edgekit::doc::json

// Children of checked text: a member is a key, ':' and a value; children are separated by ','.
namespace edgekit::doc::detail {

template <>
template <>
void ChildCursor<char>::load(json::Member& m) const noexcept {
  if (doc[pos] == '}') return;
  m.key = json::Access::at(doc, pos);
  const std::size_t colon = json::skip_ws(doc, json::Access::end(m.key));
  m.value = json::Access::at(doc, json::skip_ws(doc, colon + 1));
}

template <>
template <>
void ChildCursor<char>::load(json::Value& v) const noexcept {
  if (doc[pos] == ']') return;
  v = json::Access::at(doc, pos);
}

namespace {
// The start of the child after the one that ends at `end`, or of the closing bracket.
std::size_t next_child(const char* doc, std::size_t end) noexcept {
  const std::size_t p = json::skip_ws(doc, end);
  return doc[p] == ',' ? json::skip_ws(doc, p + 1) : p;
}
}  // namespace

template <>
template <>
void ChildCursor<char>::advance(json::Member& m) noexcept {
  pos = next_child(doc, json::Access::end(m.value));
  load(m);
}

template <>
template <>
void ChildCursor<char>::advance(json::Value& v) noexcept {
  pos = next_child(doc, json::Access::end(v));
  load(v);
}

}  // namespace edgekit::doc::detail

// The shared lookups, for JSON values.
template class edgekit::doc::detail::ValueBase<edgekit::doc::json::Value>;
