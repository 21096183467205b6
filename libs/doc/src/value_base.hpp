#pragma once
// Private: the lookups both formats share (declared in detail/value_base.hpp), written over the
// format's members(), elements() and key comparison, and the duplicate-key check of both parsers.
// Included by json_reader.cpp and cbor_reader.cpp, which instantiate them for their Value.

#include "edgekit/doc/detail/value_base.hpp"

namespace edgekit::doc::detail {

template <class V>
Result<V> ValueBase<V>::find(std::string_view key) const noexcept {
  const V& self = static_cast<const V&>(*this);
  if (type_ != Type::Object) return fail(error(Errc::WrongType));
  for (const auto& m : self.members()) {
    if (m.key.equals(key)) return m.value;
  }
  return fail(error(Errc::NotFound));
}

template <class V>
Result<V> ValueBase<V>::at(std::size_t index) const noexcept {
  const V& self = static_cast<const V&>(*this);
  if (type_ != Type::Array) return fail(error(Errc::WrongType));
  for (const V& e : self.elements()) {
    if (index-- == 0) return e;
  }
  return fail(error(Errc::NotFound));
}

template <class V>
Result<V> ValueBase<V>::at_path(std::string_view path) const noexcept {
  // The whole path is checked first, so that a bad path is reported as such whatever the
  // document holds.
  if (path.empty() || path.front() == '.' || path.back() == '.' ||
      path.find("..") != std::string_view::npos) {
    return fail(error(Errc::InvalidPath));
  }
  V current = static_cast<const V&>(*this);
  while (true) {
    const std::size_t dot = path.find('.');
    // Not substr(): it may throw, and a device build should not link the throwing path.
    const std::string_view segment(path.data(), dot == std::string_view::npos ? path.size() : dot);
    Result<V> next = fail(current.error(Errc::WrongType));
    if (current.type_ == Type::Object) {
      next = current.find(segment);
    } else if (current.type_ == Type::Array) {
      // An index: decimal digits only. One too large to be an element is simply not there.
      std::size_t index = 0;
      bool digits = true, huge = false;
      for (const char c : segment) {
        if (c < '0' || c > '9') {
          digits = false;
          break;
        }
        if (index > (static_cast<std::size_t>(-1) - 9) / 10) huge = true;
        index = index * 10 + static_cast<std::size_t>(c - '0');
      }
      if (digits) next = huge ? fail(current.error(Errc::NotFound)) : current.at(index);
    }
    if (!next) return next;
    current = *next;
    if (dot == std::string_view::npos) return current;
    path.remove_prefix(dot + 1);
  }
}

// The offset of the first key of an object that repeats an earlier one, or 0 when none repeats
// (a key is never at offset 0: it is inside the object). The object is given by the offset of
// its first key (`kNoKey` for an empty object), `next(key)` (the offset of the following key, or
// kNoKey) and `same(a, b)` (two keys equal as the format defines it). Quadratic in the number of
// keys, no memory and little stack: only offsets are kept. RFC 8949 §5.6 makes such a map
// invalid; for JSON see json.hpp on why it is refused.
inline constexpr std::size_t kNoKey = static_cast<std::size_t>(-1);

template <class Next, class Same>
std::size_t duplicate_key_offset(std::size_t first, Next next, Same same) noexcept {
  for (std::size_t a = first; a != kNoKey; a = next(a)) {
    for (std::size_t b = next(a); b != kNoKey; b = next(b)) {
      if (same(a, b)) return b;
    }
  }
  return 0;
}

}  // namespace edgekit::doc::detail
