// Binding tables: a delta applied to the application's fields, its fields written as JSON.
#include "edgekit/shadow/bindings.hpp"

#include <limits>

namespace edgekit::shadow {
namespace {

using doc::json::Value;

Unexpected<BindingError> error(Errc e, std::size_t index) {
  return fail(BindingError{e, index});
}

bool valid_path(std::string_view p) {
  if (p.empty() || p.front() == '.' || p.back() == '.') return false;
  return p.find("..") == std::string_view::npos;
}

// `a` is `b` or one of its ancestors, segment-wise ("led" of "led.level", not of "leds.x"). The
// empty path is everybody's ancestor.
bool is_ancestor_or_self(std::string_view a, std::string_view b) {
  if (a.empty()) return true;
  return b.starts_with(a) && (b.size() == a.size() || b[a.size()] == '.');
}

std::string_view parent_of(std::string_view p) {
  const auto dot = p.rfind('.');
  return dot == std::string_view::npos ? std::string_view{} : p.substr(0, dot);
}

std::string_view leaf_of(std::string_view p) {
  const auto dot = p.rfind('.');
  return dot == std::string_view::npos ? p : p.substr(dot + 1);
}

std::size_t depth(std::string_view p) {
  if (p.empty()) return 0;
  std::size_t n = 1;
  for (char c : p) n += c == '.' ? 1 : 0;
  return n;
}

// The longest common ancestor-or-self of two parent paths.
std::string_view common_ancestor(std::string_view a, std::string_view b) {
  std::size_t end = 0;  // the end of the last common segment
  for (std::size_t i = 0;; ++i) {
    const bool a_end = i == a.size() || a[i] == '.';
    const bool b_end = i == b.size() || b[i] == '.';
    if (a_end && b_end) end = i;
    if (a_end != b_end || i == a.size() || i == b.size() || a[i] != b[i]) break;
  }
  return a.substr(0, end);
}

// The length of the NUL-terminated string in `f`, at most `capacity` (no NUL: capacity).
std::size_t bounded_length(const char* f, std::size_t capacity) {
  std::size_t n = 0;
  while (n < capacity && f[n] != '\0') ++n;
  return n;
}

bool included(FieldSet which, std::size_t i) {
  return ((which >> i) & 1U) != 0;
}

// Pass 1 of apply_state: the value at `b.path` fits `b`'s field (or is absent / null).
Errc check(const Binding& b, const Value& v) {
  switch (b.type) {
    case FieldType::Bool:
      return v.is_bool() ? Errc::Ok : Errc::FieldTypeMismatch;
    case FieldType::Int32:
    case FieldType::Int64: {
      if (!v.is_number()) return Errc::FieldTypeMismatch;
      auto n = v.as_int64();
      if (!n) {
        return n.error().code == doc::Errc::IntegerOutOfRange ? Errc::FieldOverflow
                                                              : Errc::FieldTypeMismatch;
      }
      if (b.type == FieldType::Int32 && (*n < std::numeric_limits<std::int32_t>::min() ||
                                         *n > std::numeric_limits<std::int32_t>::max())) {
        return Errc::FieldOverflow;
      }
      return Errc::Ok;
    }
    case FieldType::String: {
      if (!v.is_string()) return Errc::FieldTypeMismatch;
      auto n = v.string_length();
      return n && *n < b.capacity ? Errc::Ok : Errc::FieldOverflow;
    }
  }
  return Errc::InvalidArgument;
}

// Pass 2: sets the field (checked by `check`); true when its value changed.
bool set(const Binding& b, const Value& v) {
  switch (b.type) {
    case FieldType::Bool: {
      const bool n = *v.as_bool();
      auto* f = static_cast<bool*>(b.field);
      const bool changed = *f != n;
      *f = n;
      return changed;
    }
    case FieldType::Int32: {
      const auto n = static_cast<std::int32_t>(*v.as_int64());
      auto* f = static_cast<std::int32_t*>(b.field);
      const bool changed = *f != n;
      *f = n;
      return changed;
    }
    case FieldType::Int64: {
      const std::int64_t n = *v.as_int64();
      auto* f = static_cast<std::int64_t*>(b.field);
      const bool changed = *f != n;
      *f = n;
      return changed;
    }
    case FieldType::String: {
      auto* f = static_cast<char*>(b.field);
      if (v.equals(std::string_view(f, bounded_length(f, b.capacity)))) return false;
      auto s = v.copy_string(std::span<char>(f, b.capacity - 1));
      f[s ? s->size() : 0] = '\0';
      return true;
    }
  }
  return false;
}

void write_value(doc::json::Writer& w, const Binding& b) {
  switch (b.type) {
    case FieldType::Bool:
      w.boolean(*static_cast<const bool*>(b.field));
      return;
    case FieldType::Int32:
      w.int64(*static_cast<const std::int32_t*>(b.field));
      return;
    case FieldType::Int64:
      w.int64(*static_cast<const std::int64_t*>(b.field));
      return;
    case FieldType::String: {
      const auto* f = static_cast<const char*>(b.field);
      w.string(std::string_view(f, bounded_length(f, b.capacity)));
      return;
    }
  }
}

}  // namespace

Result<FieldSet, BindingError> apply_state(const Value& state,
                                           std::span<const Binding> bindings) noexcept {
  if (!state.is_object() || bindings.size() > kMaxBindings) return error(Errc::InvalidArgument, 0);
  for (std::size_t i = 0; i < bindings.size(); ++i) {
    const Binding& b = bindings[i];
    if (b.field == nullptr || !valid_path(b.path) ||
        (b.type == FieldType::String && b.capacity == 0)) {
      return error(Errc::InvalidArgument, i);
    }
    auto v = state.at_path(b.path);
    if (!v) {
      if (v.error().code == doc::Errc::NotFound) continue;
      // A scalar where the path needs an object on the way: the delta does not fit the table.
      return error(v.error().code == doc::Errc::WrongType ? Errc::FieldTypeMismatch
                                                          : Errc::InvalidArgument,
                   i);
    }
    if (v->is_null()) continue;
    if (const Errc e = check(b, *v); e != Errc::Ok) return error(e, i);
  }
  FieldSet changed = 0;
  for (std::size_t i = 0; i < bindings.size(); ++i) {
    auto v = state.at_path(bindings[i].path);
    if (!v || v->is_null()) continue;
    if (set(bindings[i], *v)) changed |= FieldSet{1} << i;
  }
  return changed;
}

Result<void, BindingError> write_fields(doc::json::Writer& w, std::span<const Binding> bindings,
                                        FieldSet which) noexcept {
  if (bindings.size() > kMaxBindings) return error(Errc::InvalidArgument, 0);
  for (std::size_t i = 0; i < bindings.size(); ++i) {
    if (!included(which, i)) continue;
    const Binding& b = bindings[i];
    if (b.field == nullptr || !valid_path(b.path)) return error(Errc::InvalidArgument, i);
    if (b.type == FieldType::String &&
        bounded_length(static_cast<const char*>(b.field), b.capacity) == b.capacity) {
      return error(Errc::InvalidArgument, i);
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (included(which, j) && (is_ancestor_or_self(bindings[j].path, b.path) ||
                                 is_ancestor_or_self(b.path, bindings[j].path))) {
        return error(Errc::InvalidArgument, i);
      }
    }
  }
  w.begin_object();
  std::string_view open;  // the parent object being written ("" the top one)
  for (std::size_t i = 0; i < bindings.size(); ++i) {
    if (!included(which, i)) continue;
    const std::string_view path = bindings[i].path;
    const std::string_view parent = parent_of(path);
    const std::string_view common = common_ancestor(open, parent);
    for (std::size_t d = depth(open); d > depth(common); --d) w.end_object();
    // Open the objects from `common` down to `parent`, each of which must be new: an earlier
    // entry under it means it was written and closed already (the table is not grouped).
    std::size_t at = common.empty() ? 0 : common.size() + 1;
    while (at < parent.size() + 1 && !parent.empty()) {
      std::size_t end = parent.find('.', at);
      if (end == std::string_view::npos) end = parent.size();
      const std::string_view object = parent.substr(0, end);
      for (std::size_t j = 0; j < i; ++j) {
        if (included(which, j) && is_ancestor_or_self(object, bindings[j].path)) {
          return error(Errc::InvalidArgument, i);
        }
      }
      w.key(parent.substr(at, end - at)).begin_object();
      at = end + 1;
    }
    open = parent;
    w.key(leaf_of(path));
    write_value(w, bindings[i]);
  }
  for (std::size_t d = depth(open); d > 0; --d) w.end_object();
  w.end_object();
  switch (w.error().code) {
    case doc::Errc::Ok:
      return {};
    case doc::Errc::BufferTooSmall:
      return error(Errc::BufferTooSmall, 0);
    default:
      return error(Errc::InvalidArgument, 0);
  }
}

}  // namespace edgekit::shadow
