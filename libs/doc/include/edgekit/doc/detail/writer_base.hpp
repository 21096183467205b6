#pragma once
/// \file
/// The `member()` shortcuts of the JSON and CBOR writers, written once. Both writers have the
/// same calls (`begin_object`, `key`, `string`, `int64`, ...), so a client can write a message
/// in either format with one template over the writer type.

#include <concepts>
#include <cstdint>
#include <string_view>

namespace edgekit::doc::detail {

/// `W` derives from `WriterBase<W>` and provides key, string, boolean, int64 and uint64.
template <class W>
class WriterBase {
 public:
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

 private:
  W& self() noexcept { return static_cast<W&>(*this); }
};

}  // namespace edgekit::doc::detail
