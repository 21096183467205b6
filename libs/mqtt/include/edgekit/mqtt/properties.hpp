#pragma once
/// \file
/// Typed MQTT 5 properties. One `Properties` value serves every packet; the codec rejects a
/// property that the packet at hand may not carry (Errc::PropertyNotAllowed), both when encoding
/// what the caller set and when decoding what a peer sent. In MQTT 3.1.1 every property must be
/// unset when encoding (Errc::InvalidArgument) and none is ever decoded.
///
/// In a build without MQTT 5 (EDGEKIT_MQTT_ENABLE_V5=0, see config.hpp) `Properties` is an
/// empty struct: 3.1.1 has no properties, so packets, records and options carry none (every
/// packet struct declares it `[[no_unique_address]]`, so it takes no room), and the property
/// code compiles out of the codec and the session. Setting a property in such a build is a
/// compile error (no such member) instead of a run-time InvalidArgument.
///
/// Ownership: strings and byte fields are views. When encoding they point at the caller's data;
/// after decoding they point into the frame that was decoded and stay valid only while that
/// buffer is unchanged.

#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string_view>

#include "edgekit/mqtt/types.hpp"

namespace edgekit::mqtt {

struct UserProperty {
  std::string_view key;
  std::string_view value;
  friend constexpr bool operator==(const UserProperty&, const UserProperty&) = default;
};

namespace detail {
/// Walks the properties of one kind inside an already validated property block. Used by the
/// decoded forms of `UserProperties` and `SubscriptionIdentifiers`.
class PropertyScanner {
 public:
  constexpr PropertyScanner() = default;
  constexpr PropertyScanner(Bytes block, PropertyId id) : block_(block), id_(id) {}
  /// Position of the next property with id_ at or after `pos` (block_.size() when none).
  [[nodiscard]] std::size_t next(std::size_t pos) const noexcept;
  [[nodiscard]] Bytes block() const noexcept { return block_; }
  [[nodiscard]] PropertyId id() const noexcept { return id_; }

 private:
  Bytes block_{};
  // Zero by default (set by the list that builds the scanner), so that every packet struct and
  // an array of OutgoingRecord are zero-initialised: static arrays land in .bss, not .data.
  PropertyId id_{};
};
UserProperty read_user_property(Bytes block, std::size_t pos) noexcept;
std::uint32_t read_subscription_identifier(Bytes block, std::size_t pos) noexcept;
}  // namespace detail

/// A sequence of values that is either the caller's array (to encode) or a view of the
/// decoded property block (after decode). Iterates in wire order; duplicates are allowed, as
/// the spec allows them for User Property and Subscription Identifier.
template <class T, PropertyId Id, T (*Read)(Bytes, std::size_t)>
class PropertyList {
 public:
  constexpr PropertyList() = default;
  /// Encode side: the caller's array, which must outlive the encode call.
  constexpr PropertyList(std::span<const T> items) : items_(items) {}
  /// Encode side, from a C array that must outlive the encode call.
  template <std::size_t N>
  constexpr PropertyList(const T (&items)[N]) : items_(items) {}
  /// Decode side: `block` is a property block the codec has validated.
  [[nodiscard]] static PropertyList from_block(Bytes block) {
    PropertyList l;
    l.scanner_ = detail::PropertyScanner(block, Id);
    l.decoded_ = true;
    return l;
  }

  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = T;
    iterator() = default;
    T operator*() const {
      return list_->decoded_ ? Read(list_->scanner_.block(), pos_) : list_->items_[pos_];
    }
    iterator& operator++() {
      pos_ = list_->decoded_ ? list_->scanner_.next(pos_ + 1) : pos_ + 1;
      return *this;
    }
    iterator operator++(int) {
      iterator t = *this;
      ++*this;
      return t;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.pos_ == b.pos_; }

   private:
    friend class PropertyList;
    iterator(const PropertyList* l, std::size_t p) : list_(l), pos_(p) {}
    const PropertyList* list_ = nullptr;
    std::size_t pos_ = 0;
  };

  [[nodiscard]] iterator begin() const {
    return iterator(this, decoded_ ? scanner_.next(0) : 0);
  }
  [[nodiscard]] iterator end() const {
    return iterator(this, decoded_ ? scanner_.block().size() : items_.size());
  }
  [[nodiscard]] bool empty() const { return begin() == end(); }
  [[nodiscard]] std::size_t size() const {
    if (!decoded_) return items_.size();
    std::size_t n = 0;
    for (auto it = begin(); it != end(); ++it) ++n;
    return n;
  }

 private:
  std::span<const T> items_{};
  detail::PropertyScanner scanner_{};
  bool decoded_ = false;
};

using UserProperties =
    PropertyList<UserProperty, PropertyId::UserProperty, &detail::read_user_property>;
using SubscriptionIdentifiers = PropertyList<std::uint32_t, PropertyId::SubscriptionIdentifier,
                                             &detail::read_subscription_identifier>;

#if EDGEKIT_MQTT_ENABLE_V5
/// Every MQTT 5 property, typed. Unset optionals are not sent. See spec 3.x.2.2 for which packet
/// may carry which.
struct Properties {
  std::optional<bool> payload_format_utf8;                 ///< Payload Format Indicator (0x01)
  std::optional<std::uint32_t> message_expiry_interval;    ///< seconds (0x02)
  std::optional<std::string_view> content_type;           ///< (0x03)
  std::optional<std::string_view> response_topic;         ///< a topic name, no wildcards (0x08)
  std::optional<Bytes> correlation_data;                   ///< (0x09)
  SubscriptionIdentifiers subscription_identifiers;        ///< 1..kMaxVarInt each (0x0B)
  std::optional<std::uint32_t> session_expiry_interval;    ///< seconds (0x11)
  std::optional<std::string_view> assigned_client_identifier;  ///< (0x12)
  std::optional<std::uint16_t> server_keep_alive;          ///< seconds (0x13)
  std::optional<std::string_view> authentication_method;  ///< (0x15)
  std::optional<Bytes> authentication_data;                ///< (0x16)
  std::optional<bool> request_problem_information;         ///< (0x17)
  std::optional<std::uint32_t> will_delay_interval;        ///< seconds (0x18)
  std::optional<bool> request_response_information;        ///< (0x19)
  std::optional<std::string_view> response_information;   ///< (0x1A)
  std::optional<std::string_view> server_reference;       ///< (0x1C)
  std::optional<std::string_view> reason_string;          ///< (0x1F)
  std::optional<std::uint16_t> receive_maximum;            ///< 1..65535 (0x21)
  std::optional<std::uint16_t> topic_alias_maximum;        ///< (0x22)
  std::optional<std::uint16_t> topic_alias;                ///< 1..maximum (0x23)
  std::optional<QoS> maximum_qos;                          ///< 0 or 1 when present (0x24)
  std::optional<bool> retain_available;                    ///< (0x25)
  UserProperties user_properties;                          ///< (0x26)
  std::optional<std::uint32_t> maximum_packet_size;        ///< 1..kMaxPacketSize (0x27)
  std::optional<bool> wildcard_subscription_available;     ///< (0x28)
  std::optional<bool> subscription_identifier_available;   ///< (0x29)
  std::optional<bool> shared_subscription_available;       ///< (0x2A)
};
#else
/// A build without MQTT 5: no properties at all (see the file comment). The struct stays so
/// that code written for both versions (`Properties{}` arguments, `packet.properties` passed
/// along) compiles unchanged; only naming a property does not.
struct Properties {};
#endif

namespace detail {
/// True when `p` holds a Topic Alias; always false without MQTT 5. For the library's code that
/// runs in both kinds of build (codec and session), so that it needs no `#if` of its own.
[[nodiscard]] constexpr bool has_topic_alias(const Properties& p) noexcept {
#if EDGEKIT_MQTT_ENABLE_V5
  return p.topic_alias.has_value();
#else
  (void)p;
  return false;
#endif
}
}  // namespace detail

}  // namespace edgekit::mqtt
