#pragma once
/// \file
/// The one `std::error_category` shape every edgekit library uses for its error enum: a static
/// name ("edgekit.<library>") and the messages of the enum's `to_string`. Each library defines
/// its category function in a translation unit of its own, so that a bare-metal image that never
/// builds a `std::error_code` does not link it (`message` returns a `std::string`):
///
///   const std::error_category& tcp_category() noexcept {
///     static const EnumErrorCategory<TcpErrc, to_string> category("edgekit.tcp");
///     return category;
///   }
///
/// and wires the enum into `std::error_code` in its public header with `make_error_code` and a
/// `std::is_error_code_enum` specialisation. Value 0 of every such enum is "no error" (`Ok`) or
/// unused, because a `std::error_code` of 0 tests false.

#include <string>
#include <system_error>

namespace edgekit {

/// A `std::error_category` for `Enum` whose messages are `ToString`'s static names.
/// Thread safety: immutable after construction; safe to share.
template <class Enum, const char* (*ToString)(Enum) noexcept>
class EnumErrorCategory final : public std::error_category {
 public:
  /// `name` must have static storage duration (a string literal).
  constexpr explicit EnumErrorCategory(const char* name) noexcept : name_(name) {}
  [[nodiscard]] const char* name() const noexcept override { return name_; }
  [[nodiscard]] std::string message(int value) const override {
    return ToString(static_cast<Enum>(value));
  }

 private:
  const char* name_;
};

}  // namespace edgekit
