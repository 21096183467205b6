#pragma once
// Test and fuzz support: how gtest prints an Error, and `copy_value`, which copies a parsed value
// into a writer of either format through the public reading API only (one template for JSON and
// CBOR, as a device client would write it). Recursion is fine here: depth is bounded by the
// parser's kMaxParseDepth.
#include <cstddef>
#include <ostream>
#include <string_view>

#include "edgekit/doc/detail/value_base.hpp"

namespace edgekit::doc {

// "DuplicateKey at 7" in gtest's messages instead of the object's bytes.
inline std::ostream& operator<<(std::ostream& os, const Error& e) {
  return os << to_string(e.code) << " at " << e.offset;
}

}  // namespace edgekit::doc

namespace edgekit::doc::test {

// A document a reader must refuse (JSON text, or CBOR as hex digits), with the error it names.
struct Reject {
  std::string_view input;
  Errc code;
  std::size_t offset;
};

// False when the value holds something the writer cannot express (a JSON number with a fraction
// or outside the 64-bit integers, a string longer than the scratch buffer, bytes into JSON from
// JSON): the caller then skips the round trip for this input.
template <class V, class W>
bool copy_value(const V& v, W& w) {
  char scratch[512];
  switch (v.type()) {
    case Type::Null:
      w.null();
      return true;
    case Type::Bool:
      w.boolean(*v.as_bool());
      return true;
    case Type::Number: {
      if (auto i = v.as_int64()) {
        w.int64(*i);
        return true;
      }
      if (auto u = v.as_uint64()) {
        w.uint64(*u);
        return true;
      }
      return false;
    }
    case Type::String: {
      if (auto view = v.as_string_view()) {  // zero-copy where the format allows it
        w.string(*view);
        return true;
      }
      auto s = v.copy_string(scratch);
      if (!s) return false;
      w.string(*s);
      return true;
    }
    case Type::Bytes:
      if constexpr (requires { v.as_bytes(); }) {
        w.bytes(*v.as_bytes());
        return true;
      } else {
        return false;
      }
    case Type::Array:
      w.begin_array();
      for (const auto& e : v.elements()) {
        if (!copy_value(e, w)) return false;
      }
      w.end_array();
      return true;
    case Type::Object:
      w.begin_object();
      for (const auto& m : v.members()) {
        auto k = m.key.as_string_view();
        if (!k) k = m.key.copy_string(scratch);
        if (!k) return false;
        w.key(*k);
        if (!copy_value(m.value, w)) return false;
      }
      w.end_object();
      return true;
  }
  return false;
}

}  // namespace edgekit::doc::test
