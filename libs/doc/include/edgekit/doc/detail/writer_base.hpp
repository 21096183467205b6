#pragma once
/// \file
/// The container calls and `member()` shortcuts of the JSON and CBOR writers, written once. Both writers have the
/// same calls (`begin_object`, `key`, `string`, `int64`, ...), so a client can write a message
/// in either format with one template over the writer type.

#include <concepts>
#include <cstdint>
#include <string_view>

#include "edgekit/doc/detail/writer_core.hpp"

namespace edgekit::doc::detail {

/// `W` derives from `WriterBase<W>`, provides key, string, boolean, int64 and uint64, and
/// (privately, befriending this class) `open(is_object)` and `close(is_object)`. The writer's
/// state (`core_`: the caller's buffer, the first error, the open containers) lives here.
template <class W>
class WriterBase {
 public:
  /// The first error so far (`Errc::Ok` when none).
  [[nodiscard]] Error error() const noexcept { return core_.error(); }
  /// Bytes written so far.
  [[nodiscard]] std::size_t size() const noexcept { return core_.size(); }

  /// Starts an object (a JSON object, a CBOR map): keys and values follow, then `end_object()`.
  W& begin_object() noexcept { return self().open(true); }
  W& end_object() noexcept { return self().close(true); }
  /// Starts an array: values follow, then `end_array()`.
  W& begin_array() noexcept { return self().open(false); }
  W& end_array() noexcept { return self().close(false); }

  /// `key(k)` then the value: the common case in one call.
  W& member(std::string_view k, std::string_view v) noexcept { return self().key(k).string(v); }
  /// Why this overload: without it a string literal would convert to `bool`, not to a view.
  W& member(std::string_view k, const char* v) noexcept {
    return self().key(k).string(std::string_view(v));
  }
  W& member(std::string_view k, bool v) noexcept { return self().key(k).boolean(v); }
  template <std::signed_integral I>
  W& member(std::string_view k, I v) noexcept {
    return self().key(k).int64(v);
  }
  template <std::unsigned_integral I>
    requires(!std::same_as<I, bool>)
  W& member(std::string_view k, I v) noexcept {
    return self().key(k).uint64(v);
  }

 protected:
  WriterBase(unsigned char* out, std::size_t capacity) noexcept : core_(out, capacity) {}
  WriterCore core_;

 private:
  W& self() noexcept { return static_cast<W&>(*this); }
};

}  // namespace edgekit::doc::detail
