#pragma once
/// \file
/// What JSON and CBOR values share: the kind of value, where it is, and the lookups (`find`,
/// `at_path`, `at`), written once over each format's `members()`, `elements()` and key
/// comparison (`key.equals`). Why one API for both formats: AWS Fleet Provisioning, Jobs and OTA
/// speak JSON or CBOR on the same topics, so a device client can read (and write) its messages
/// with one template over the format. The lookups are defined in the library (src/), for
/// `json::Value` and `cbor::Value` only.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "edgekit/doc/errc.hpp"

namespace edgekit::doc {

/// The kinds of value. JSON has no Bytes; a CBOR Number is always an integer (major type 0 or
/// 1) and a CBOR Object is a map with text keys.
enum class Type : std::uint8_t { Null, Bool, Number, String, Bytes, Array, Object };

/// The deepest nesting the readers can check. Why a hard limit: they use no recursion, and keep
/// their per-level state (one bit for JSON, five bytes for CBOR) in a fixed array on the stack,
/// so their stack use is small and known on a device with a 1-2 KB task stack.
inline constexpr std::size_t kMaxParseDepth = 32;

/// Limits for `json::parse()` and `cbor::parse()`.
struct ParseOptions {
  /// The deepest nesting of arrays/objects accepted (`[]` is depth 1, `[[]]` depth 2); deeper
  /// input fails with Errc::TooDeep. Why a limit the caller sets: it bounds what a hostile
  /// message can make a device do. 0 accepts scalars only; values above kMaxParseDepth act as
  /// kMaxParseDepth.
  std::size_t max_depth = 16;
};

namespace detail {

/// The common part of `json::Value` and `cbor::Value` (`V`, which derives from it). All lookups
/// walk the already checked document, so they fail only with the errors listed; the offset of
/// an error is the start of the value where the lookup stopped.
/// Thread safety: a value type; const, safe to call concurrently.
template <class V>
class ValueBase {
 public:
  [[nodiscard]] Type type() const noexcept { return type_; }
  [[nodiscard]] bool is_null() const noexcept { return type_ == Type::Null; }
  [[nodiscard]] bool is_bool() const noexcept { return type_ == Type::Bool; }
  [[nodiscard]] bool is_number() const noexcept { return type_ == Type::Number; }
  [[nodiscard]] bool is_string() const noexcept { return type_ == Type::String; }
  [[nodiscard]] bool is_bytes() const noexcept { return type_ == Type::Bytes; }
  [[nodiscard]] bool is_array() const noexcept { return type_ == Type::Array; }
  [[nodiscard]] bool is_object() const noexcept { return type_ == Type::Object; }
  /// Where the value starts, in bytes from the start of the document.
  [[nodiscard]] std::size_t offset() const noexcept { return begin_; }

  /// The value of the member of this object/map whose key equals `key` byte for byte (JSON:
  /// the key unescaped). Keys are unique: `parse()` refuses duplicates. Linear in the size of
  /// the object. Errors: WrongType (not an object/map), NotFound.
  [[nodiscard]] Result<V> find(std::string_view key) const noexcept;
  /// Follows a dotted path of keys from this value: `"state.desired.color"`. A segment of
  /// decimal digits applied to an array selects an element (`"execution.jobs.0"`). A key that
  /// itself contains '.' cannot be reached this way: use `find()`. Errors: InvalidPath (empty
  /// path or empty segment), WrongType (a segment applied to a scalar, or a segment that is not
  /// an index applied to an array), NotFound.
  [[nodiscard]] Result<V> at_path(std::string_view dotted_path) const noexcept;
  /// Element `index` of this array (linear in `index`). Errors: WrongType, NotFound.
  [[nodiscard]] Result<V> at(std::size_t index) const noexcept;

 protected:
  ValueBase() = default;
  constexpr ValueBase(std::size_t begin, std::size_t end, Type type) noexcept
      : begin_(begin), end_(end), type_(type) {}
  [[nodiscard]] Error error(Errc e) const noexcept { return Error{e, begin_}; }

  std::size_t begin_ = 0;  // the value's first byte, from the start of the document
  std::size_t end_ = 0;    // one past its last byte
  Type type_ = Type::Null;
};

}  // namespace detail
}  // namespace edgekit::doc
