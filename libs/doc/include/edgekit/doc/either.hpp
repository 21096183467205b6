#pragma once
/// \file
/// For clients of AWS topics that carry JSON or CBOR (fleet provisioning, OTA streams): parses a
/// message in the format its topic names and hands its root object to one generic reader, so
/// that the reader is written once as a template over `json::Value` / `cbor::Value`.
/// Header-only, pure: no heap, no I/O. Thread safety: none needed (no state).

#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/doc/cbor.hpp"
#include "edgekit/doc/json.hpp"

namespace edgekit::doc {

/// Parses `message` as CBOR when `cbor`, else as JSON, and returns `read(root)` for a root that
/// is an object (a CBOR map); otherwise `fail(malformed)`. `read` takes `const json::Value&` and
/// `const cbor::Value&` (a generic lambda) and returns the same `Result` type for both; the
/// values it sees point into `message`.
template <class F, class E>
auto read_object(bool cbor, std::span<const std::uint8_t> message, E malformed, F&& read) noexcept
    -> decltype(read(json::Value{})) {
  if (!cbor) {
    auto root = json::parse(
        std::string_view(reinterpret_cast<const char*>(message.data()), message.size()));
    if (!root || !root->is_object()) return fail(malformed);
    return read(*root);
  }
  auto root = cbor::parse(std::as_bytes(message));
  if (!root || !root->is_object()) return fail(malformed);
  return read(*root);
}

}  // namespace edgekit::doc
