#pragma once
/// \file
/// Maps an application's own variables to paths of the shadow's state so that it never writes
/// or reads JSON by hand: a table of bindings, then `apply_state` for a delta (or get's
/// `desired`) and `write_fields` for the `reported` object.
///
///   struct Lamp { bool power = false; std::int32_t level = 0; char name[16] = ""; } lamp;
///   const shadow::Binding table[] = {
///       shadow::bind("power", lamp.power),
///       shadow::bind("led.level", lamp.level),   // nested: {"led":{"level":3}}
///       shadow::bind("name", lamp.name),         // a NUL-terminated string of at most 15 bytes
///   };
///   // In the delta handler:
///   auto changed = shadow::apply_state(delta.state, table);    // which fields changed
///   // Then report them:
///   client.update([&](shadow::UpdateWriter& u) {
///     (void)shadow::write_fields(u.reported(), table, *changed); }, {}, 5s);
///
/// Types: bool (JSON true/false), std::int32_t and std::int64_t (JSON integers: a fraction or an
/// exponent is FieldTypeMismatch, a value outside the type FieldOverflow), strings in a char
/// array (NUL-terminated; longer than the array minus one: FieldOverflow). JSON floats are not
/// bound (edgekit::doc parses no floating point): read `number_text()` yourself.
/// Paths are dotted (edgekit::doc's `at_path`: keys without '.'), at most 64 bindings per table;
/// entries that share a parent object must be next to each other in the table (e.g. all of
/// "led.*" together) so that `write_fields` writes each object once.
/// Pure: no heap, no I/O. Thread safety: none (the fields are the caller's).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/doc/json.hpp"
#include "edgekit/shadow/errc.hpp"

namespace edgekit::shadow {

/// The kind of variable a binding points at.
enum class FieldType : std::uint8_t { Bool, Int32, Int64, String };

/// One entry of a table: a dotted path and the variable it maps to. Make them with `bind`.
struct Binding {
  std::string_view path;
  FieldType type = FieldType::Bool;
  void* field = nullptr;
  std::size_t capacity = 0;  ///< String: the array's size, the NUL included
};

[[nodiscard]] constexpr Binding bind(std::string_view path, bool& field) noexcept {
  return Binding{path, FieldType::Bool, &field, sizeof(bool)};
}
[[nodiscard]] constexpr Binding bind(std::string_view path, std::int32_t& field) noexcept {
  return Binding{path, FieldType::Int32, &field, sizeof(std::int32_t)};
}
[[nodiscard]] constexpr Binding bind(std::string_view path, std::int64_t& field) noexcept {
  return Binding{path, FieldType::Int64, &field, sizeof(std::int64_t)};
}
template <std::size_t N>
[[nodiscard]] constexpr Binding bind(std::string_view path, char (&field)[N]) noexcept {
  static_assert(N >= 1, "room for the NUL");
  return Binding{path, FieldType::String, field, N};
}

/// A set of bindings by their index in the table (bit i: entry i).
using FieldSet = std::uint64_t;
inline constexpr FieldSet kAllFields = ~FieldSet{0};
inline constexpr std::size_t kMaxBindings = 64;

/// Why a table could not be applied or written, and which entry (its index) was the cause.
struct BindingError {
  Errc errc = Errc::Ok;
  std::size_t index = 0;
};

/// Applies `state` (an update/delta's state, or get/accepted's desired) to the fields: each
/// binding whose path is present is set; absent paths, and paths whose value is null (a key
/// deleted), are left alone. All or nothing: every present value is checked before any field
/// is written. Returns the set of fields whose value changed.
/// Errors: FieldTypeMismatch (a value of another JSON type, an integer with a fraction, an
/// object where a field's parent object is due), FieldOverflow (see the file comment),
/// InvalidArgument (`state` not an object, more than 64 bindings, an empty or malformed path,
/// a binding without a field).
[[nodiscard]] Result<FieldSet, BindingError> apply_state(const doc::json::Value& state,
                                                         std::span<const Binding> bindings) noexcept;

/// Writes one JSON object holding the fields in `which` at their paths (nested objects for
/// dotted paths), e.g. into `UpdateWriter::reported()`.
/// Errors: InvalidArgument (a path that repeats or contains another's, entries of one parent
/// not next to each other, more than 64 bindings, a malformed path, a string field without a
/// NUL), BufferTooSmall (the writer's buffer; the writer then holds no usable document).
[[nodiscard]] Result<void, BindingError> write_fields(doc::json::Writer& w,
                                                      std::span<const Binding> bindings,
                                                      FieldSet which = kAllFields) noexcept;

}  // namespace edgekit::shadow
