#pragma once
// Shared by fuzz_json and fuzz_cbor: oracles on an accepted document, written once over the
// common API of json::Value and cbor::Value.
#include <cstddef>
#include <cstdint>

#include "edgekit/doc/cbor.hpp"
#include "edgekit/doc/json.hpp"
#include "fuzz_support.hpp"
#include "support.hpp"  // libs/doc/test: copy_value

namespace edgekit::fuzz {

// Every lookup agrees with iteration: find(key) gives the member iteration gave (keys are unique),
// at(i) the i-th element, size() the count; strings read the same through every accessor;
// integers agree between int64 and uint64. Recursion is bounded by kMaxParseDepth.
template <class V>
void check_value(const V& v) {
  using doc::Type;
  char scratch[4096];
  switch (v.type()) {
    case Type::Object: {
      std::size_t count = 0;
      for (const auto& m : v.members()) {
        ++count;
        FUZZ_CHECK(m.key.is_string());
        const auto key = m.key.copy_string(scratch);
        if (key) {
          FUZZ_CHECK(m.key.equals(*key));
          const auto found = v.find(*key);
          FUZZ_CHECK(found.has_value());
          FUZZ_CHECK(found->offset() == m.value.offset());
        }
        check_value(m.value);
      }
      FUZZ_CHECK(count == v.size());
      FUZZ_CHECK(!v.find("\xff").has_value());  // never a key: not UTF-8
      break;
    }
    case Type::Array: {
      std::size_t count = 0;
      for (const auto& e : v.elements()) {
        const auto at = v.at(count);
        FUZZ_CHECK(at.has_value() && at->offset() == e.offset());
        ++count;
        check_value(e);
      }
      FUZZ_CHECK(count == v.size());
      FUZZ_CHECK(v.at(count).error().code == doc::Errc::NotFound);
      break;
    }
    case Type::String: {
      const auto copy = v.copy_string(scratch);
      if (copy) {
        FUZZ_CHECK(v.equals(*copy));
        if (const auto view = v.as_string_view()) FUZZ_CHECK(*view == *copy);
      }
      break;
    }
    case Type::Number: {
      const auto i = v.as_int64();
      const auto u = v.as_uint64();
      if (i && u) FUZZ_CHECK(*i >= 0 && static_cast<std::uint64_t>(*i) == *u);
      if (i && *i > 0) FUZZ_CHECK(u.has_value());
      break;
    }
    default:
      FUZZ_CHECK(v.size() == 0);
      break;
  }
}

}  // namespace edgekit::fuzz
