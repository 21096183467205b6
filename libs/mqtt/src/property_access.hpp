#pragma once
// The library's own access to the private storage of `Properties` (properties.hpp): the codec
// locates the fields through its table and reads and sets the presence word; the session and
// the connection read a few values without building a `std::optional` (code size). Internal:
// not installed.
#include <cstdint>
#include <string_view>

#include "edgekit/mqtt/properties.hpp"

#if EDGEKIT_MQTT_ENABLE_V5
namespace edgekit::mqtt {
namespace wire {
struct Desc;
}  // namespace wire

struct detail::PropertyAccess {
  static std::uint32_t present(const Properties& p) noexcept { return p.storage_.present_; }
  static void mark(Properties& p, std::uint32_t bits) noexcept { p.storage_.present_ |= bits; }

  // A value as stored: the setters, `clear_*` and the constructor keep an unset one at zero, so
  // these read 0 (or an empty view) when the property is absent.
  static std::uint16_t topic_alias(const Properties& p) noexcept { return p.storage_.topic_alias_; }
  static std::uint32_t session_expiry_interval(const Properties& p) noexcept {
    return p.storage_.session_expiry_interval_;
  }
  static std::uint32_t maximum_packet_size(const Properties& p) noexcept {
    return p.storage_.maximum_packet_size_;
  }
  static std::string_view assigned_client_identifier(const Properties& p) noexcept {
    return p.storage_.assigned_client_identifier_;
  }

  // A list as the encoder sees it: the caller's array, or (decoded) the validated property
  // block it is a view of.
  template <class List>
  static bool decoded(const List& l) noexcept { return l.decoded_; }
  template <class List>
  static auto items(const List& l) noexcept { return l.items_; }
  template <class List>
  static const PropertyScanner& scanner(const List& l) noexcept { return l.scanner_; }
  /// Makes `l` the decoded view of `block` in place (read_properties): what `from_block` gives,
  /// without building a temporary list and copying it over (code size).
  template <class List>
  static void set_block(List& l, Bytes block, PropertyId id) noexcept {
    l.items_ = {};
    l.scanner_ = PropertyScanner(block, id);
    l.decoded_ = true;
  }

  /// The codec's property table (properties.cpp): one row per property, in identifier order.
  static const wire::Desc kTable[27];
};
}  // namespace edgekit::mqtt
#endif
