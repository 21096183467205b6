// The CBOR reader: one strict pass over the items (pass 1), a duplicate-key pass over the
// checked bytes (pass 2), and lookups that walk the checked bytes again.
#include <cstring>

#include "cbor_head.hpp"
#include "edgekit/doc/cbor.hpp"
#include "utf8.hpp"
#include "value_base.hpp"

namespace edgekit::doc::cbor {

using wire::Head;
using wire::read_head;

namespace {

const unsigned char* bytes_of(const std::byte* p) noexcept {
  return reinterpret_cast<const unsigned char*>(p);
}

// The head at `p` of checked bytes (no errors possible).
Head head_at(const std::byte* doc, std::size_t p) noexcept {
  Head h;
  (void)read_head(bytes_of(doc) + p, 9, h);  // checked: the whole head is there
  return h;
}

// One past the end of the checked item at `p`, nested items included, without recursion: count
// the items still owed.
std::size_t skip_item(const std::byte* doc, std::size_t p) noexcept {
  std::uint64_t owed = 1;
  while (owed > 0) {
    const Head h = head_at(doc, p);
    --owed;
    p += h.size;
    if (h.major == wire::kBytes || h.major == wire::kText) p += h.arg;
    if (h.major == wire::kArray) owed += h.arg;
    if (h.major == wire::kMap) owed += 2 * h.arg;
  }
  return p;
}

}  // namespace

// Builds values over checked bytes (the one friend of Value in this file).
struct Access {
  static Value at(const std::byte* doc, std::size_t begin) noexcept {
    const Head h = head_at(doc, begin);
    Type type = Type::Null;
    switch (h.major) {
      case wire::kUnsigned:
      case wire::kNegative:
        type = Type::Number;
        break;
      case wire::kBytes:
        type = Type::Bytes;
        break;
      case wire::kText:
        type = Type::String;
        break;
      case wire::kArray:
        type = Type::Array;
        break;
      case wire::kMap:
        type = Type::Object;
        break;
      default:
        type = h.info == 22 ? Type::Null : Type::Bool;
        break;  // checked: 20, 21 or 22
    }
    const auto initial = static_cast<std::uint8_t>(doc[begin]);
    return Value(doc, begin, skip_item(doc, begin), type, initial, h.arg);
  }
  static std::size_t end(const Value& v) noexcept { return v.end_; }
  // A string's content.
  static std::string_view text(const Value& v) noexcept {
    const std::size_t start = v.begin_ + wire::head_size(v.arg_);
    return {reinterpret_cast<const char*>(v.doc_) + start, static_cast<std::size_t>(v.arg_)};
  }
};

namespace {

// ---- Pass 1: every item well-formed, valid and in the subset, without recursion: per open
// container, the items it still owes (in a map, keys and values both count, so a key is due
// when the count is even) and whether it is a map.
Result<void> check(const unsigned char* s, std::size_t n, std::size_t max_depth) noexcept {
  if (max_depth > kMaxParseDepth) max_depth = kMaxParseDepth;
  std::uint32_t owed[kMaxParseDepth];
  std::uint32_t maps = 0;  // bit d: the container at depth d+1 is a map
  std::size_t depth = 0;
  std::size_t p = 0;
  static_assert(kMaxParseDepth <= 32, "one bit per level in `maps`");
  const auto error = [](Errc e, std::size_t at) { return fail(Error{e, at}); };
  while (true) {
    if (p >= n) return error(Errc::UnexpectedEnd, p);
    Head h;
    if (const Errc e = read_head(s + p, n - p, h); e != Errc::Ok) {
      return error(e, e == Errc::UnexpectedEnd ? n : p);
    }
    const bool key_due = depth > 0 && ((maps >> (depth - 1)) & 1u) && owed[depth - 1] % 2 == 0;
    if (key_due && h.major != wire::kText) return error(Errc::NonTextKey, p);
    const std::size_t rest = n - p - h.size;  // bytes after the head
    switch (h.major) {
      case wire::kUnsigned:
      case wire::kNegative:
        break;
      case wire::kBytes:
      case wire::kText:
        if (h.arg > rest) return error(Errc::UnexpectedEnd, n);
        if (h.major == wire::kText) {
          const std::size_t bad = detail::utf8_invalid_at(s + p + h.size, h.arg);
          if (bad != h.arg) return error(Errc::InvalidUtf8, p + h.size + bad);  // §3.1
        }
        p += h.arg;
        break;
      case wire::kArray:
      case wire::kMap: {
        if (depth >= max_depth) return error(Errc::TooDeep, p);
        const bool map = h.major == wire::kMap;
        // Every item takes a byte at least: a count the rest cannot hold is a cut-off document
        // (and the check keeps the counts below 2^32, the size of the document).
        if (h.arg > rest / (map ? 2 : 1)) return error(Errc::UnexpectedEnd, n);
        if (h.arg > 0) {
          maps = (maps & ~(1u << depth)) | (static_cast<std::uint32_t>(map) << depth);
          owed[depth++] = static_cast<std::uint32_t>(map ? 2 * h.arg : h.arg);
          p += h.size;
          continue;  // the container is complete when its last item is
        }
        break;
      }
      case wire::kTag:
        return error(Errc::UnsupportedTag, p);
      default:  // major type 7
        if (h.info >= 25 && h.info <= 27) return error(Errc::UnsupportedFloat, p);
        if (h.info < 20 || h.info > 22) return error(Errc::UnsupportedSimpleValue, p);
        break;
    }
    p += h.size;
    // An item is complete: it settles one item owed by its container, which may complete it.
    while (depth > 0 && --owed[depth - 1] == 0) --depth;
    if (depth == 0) break;
  }
  if (p != n) return error(Errc::TrailingData, p);
  return {};
}

// ---- Pass 2: no map of the checked item repeats a key. Visits every head in order.
Result<void> check_unique_keys(const std::byte* doc, std::size_t n) noexcept {
  for (std::size_t p = 0; p < n;) {
    const Head h = head_at(doc, p);
    if (h.major == wire::kMap && h.arg > 1) {
      const std::size_t map_end = skip_item(doc, p);
      // Offsets of keys: each key is followed by its value, then the next key or the map's end.
      const auto next = [doc, map_end](std::size_t key) {
        const std::size_t q = skip_item(doc, skip_item(doc, key));
        return q == map_end ? detail::kNoKey : q;
      };
      const auto same = [doc](std::size_t a, std::size_t b) {
        const Head ha = head_at(doc, a), hb = head_at(doc, b);  // text keys (checked)
        return ha.arg == hb.arg && std::memcmp(doc + a + ha.size, doc + b + hb.size,
                                               static_cast<std::size_t>(ha.arg)) == 0;
      };
      const std::size_t at = detail::duplicate_key_offset(p + h.size, next, same);
      if (at != 0) return fail(Error{Errc::DuplicateKey, at});
    }
    p += h.size;
    if (h.major == wire::kBytes || h.major == wire::kText) p += h.arg;
  }
  return {};
}

}  // namespace

Result<Value> parse(std::span<const std::byte> data, ParseOptions options) noexcept {
  if (data.empty()) return fail(Error{Errc::Empty, 0});
  // The reader keeps counts in 32 bits; no device document comes near.
  if (data.size() > UINT32_MAX) return fail(Error{Errc::DocumentTooLarge, 0});
  if (auto r = check(bytes_of(data.data()), data.size(), options.max_depth); !r) {
    return fail(r.error());
  }
  if (auto r = check_unique_keys(data.data(), data.size()); !r) return fail(r.error());
  return Access::at(data.data(), 0);
}

// ---- Lookups over checked bytes.

MemberRange Value::members() const noexcept {
  if (type_ != Type::Object || arg_ == 0) return {};
  return {ChildCursor{doc_, begin_ + wire::head_size(arg_), arg_}, ChildCursor{}};
}

ElementRange Value::elements() const noexcept {
  if (type_ != Type::Array || arg_ == 0) return {};
  return {ChildCursor{doc_, begin_ + wire::head_size(arg_), arg_}, ChildCursor{}};
}

std::size_t Value::size() const noexcept {
  return type_ == Type::Object || type_ == Type::Array ? static_cast<std::size_t>(arg_) : 0;
}

Result<bool> Value::as_bool() const noexcept {
  if (type_ != Type::Bool) return fail(error(Errc::WrongType));
  return head_ == 0xF5;
}

Result<std::int64_t> Value::as_int64() const noexcept {
  if (type_ != Type::Number) return fail(error(Errc::WrongType));
  if (arg_ > static_cast<std::uint64_t>(INT64_MAX)) return fail(error(Errc::IntegerOutOfRange));
  const auto a = static_cast<std::int64_t>(arg_);
  return (head_ >> 5) == wire::kNegative ? -1 - a : a;  // major type 1 means -1 - argument
}

Result<std::uint64_t> Value::as_uint64() const noexcept {
  if (type_ != Type::Number) return fail(error(Errc::WrongType));
  if ((head_ >> 5) == wire::kNegative) return fail(error(Errc::IntegerOutOfRange));
  return arg_;
}

Result<std::string_view> Value::as_string_view() const noexcept {
  if (type_ != Type::String) return fail(error(Errc::WrongType));
  return Access::text(*this);
}

Result<std::string_view> Value::copy_string(std::span<char> out) const noexcept {
  if (type_ != Type::String) return fail(error(Errc::WrongType));
  const std::string_view t = Access::text(*this);
  if (t.size() > out.size()) return fail(error(Errc::BufferTooSmall));
  if (!t.empty()) std::memcpy(out.data(), t.data(), t.size());
  return std::string_view(out.data(), t.size());
}

Result<std::span<const std::byte>> Value::as_bytes() const noexcept {
  if (type_ != Type::Bytes) return fail(error(Errc::WrongType));
  const std::string_view t = Access::text(*this);
  return std::span<const std::byte>(reinterpret_cast<const std::byte*>(t.data()), t.size());
}

bool Value::equals(std::string_view s) const noexcept {
  return type_ == Type::String && Access::text(*this) == s;
}

}  // namespace edgekit::doc::cbor

// Children of checked bytes: a member is a key item and a value item; `left` counts down, and a
// cursor past the last child becomes the default (end) cursor.
namespace edgekit::doc::detail {

template <>
template <>
void ChildCursor<std::byte>::load(cbor::Member& m) const noexcept {
  if (left == 0) return;
  m.key = cbor::Access::at(doc, pos);
  m.value = cbor::Access::at(doc, cbor::Access::end(m.key));
}

template <>
template <>
void ChildCursor<std::byte>::load(cbor::Value& v) const noexcept {
  if (left == 0) return;
  v = cbor::Access::at(doc, pos);
}

template <>
template <>
void ChildCursor<std::byte>::advance(cbor::Member& m) noexcept {
  if (--left == 0) {
    *this = {};
    return;
  }
  pos = cbor::Access::end(m.value);
  load(m);
}

template <>
template <>
void ChildCursor<std::byte>::advance(cbor::Value& v) noexcept {
  if (--left == 0) {
    *this = {};
    return;
  }
  pos = cbor::Access::end(v);
  load(v);
}

}  // namespace edgekit::doc::detail

// The shared lookups, for CBOR values.
template class edgekit::doc::detail::ValueBase<edgekit::doc::cbor::Value>;
