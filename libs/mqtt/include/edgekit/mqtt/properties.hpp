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
#include <cstring>
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
struct PropertyAccess;  // the codec's access to the storage and the lists (properties.cpp)

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
  /// Decode side: `block` is a property block the codec has validated. Encoding such a list
  /// copies its entries as they are: their values are not checked again (UTF-8, ranges), but
  /// a block that is not a property block (an unknown identifier, an entry cut short) makes
  /// the encode fail with Errc::InvalidArgument.
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
  // The encoder copies a decoded list's entries as they are, without iterating (code size).
  friend struct detail::PropertyAccess;
  std::span<const T> items_{};
  detail::PropertyScanner scanner_{};
  bool decoded_ = false;
};

using UserProperties =
    PropertyList<UserProperty, PropertyId::UserProperty, &detail::read_user_property>;
using SubscriptionIdentifiers = PropertyList<std::uint32_t, PropertyId::SubscriptionIdentifier,
                                             &detail::read_subscription_identifier>;

#if EDGEKIT_MQTT_ENABLE_V5
struct Properties;

namespace detail {
/// The values of the scalar properties of a `Properties` and which of them are set. Private
/// throughout: a value written past the setters would have no presence bit and would silently
/// not be sent, so only `Properties`' accessors and the codec reach it.
class PropertyStorage {
  friend struct edgekit::mqtt::Properties;
  friend struct PropertyAccess;

  // Widest first, so that the struct packs without holes.
  std::uint32_t present_;
  std::uint32_t message_expiry_interval_;
  std::uint32_t session_expiry_interval_;
  std::uint32_t will_delay_interval_;
  std::uint32_t maximum_packet_size_;
  std::string_view content_type_{};
  std::string_view response_topic_{};
  std::string_view assigned_client_identifier_{};
  std::string_view authentication_method_{};
  std::string_view response_information_{};
  std::string_view server_reference_{};
  std::string_view reason_string_{};
  Bytes correlation_data_{};
  Bytes authentication_data_{};
  std::uint16_t server_keep_alive_ = 0;
  std::uint16_t receive_maximum_ = 0;
  std::uint16_t topic_alias_maximum_ = 0;
  std::uint16_t topic_alias_ = 0;
  QoS maximum_qos_{};
  bool payload_format_utf8_ = false;
  bool request_problem_information_ = false;
  bool request_response_information_ = false;
  bool retain_available_ = false;
  bool wildcard_subscription_available_ = false;
  bool subscription_identifier_available_ = false;
  bool shared_subscription_available_ = false;
};
}  // namespace detail

/// Every MQTT 5 property, typed. See spec 3.x.2.2 for which packet may carry which.
///
/// A property is read with its name (`p.topic_alias()`: a `std::optional`, empty when unset),
/// set with `set_<name>(value)` and unset with `clear_<name>()`; the two lists
/// (`user_properties`, `subscription_identifiers`) are members. Presence is one bit per
/// property and the values are plain fields (`detail::PropertyStorage`, private), so that a
/// value-initialised `Properties` is all zero bytes and the codec finds what is set from one
/// word (code size, RAM).
struct Properties {
  /// Bit of each property in `present_`: the row of the codec's property table (identifier
  /// order). Rows 5 and 22 are the two lists, which are present when not empty.
  enum Bit : std::uint8_t {
    kPayloadFormatUtf8 = 0, kMessageExpiryInterval = 1, kContentType = 2, kResponseTopic = 3,
    kCorrelationData = 4, kSessionExpiryInterval = 6, kAssignedClientIdentifier = 7,
    kServerKeepAlive = 8, kAuthenticationMethod = 9, kAuthenticationData = 10,
    kRequestProblemInformation = 11, kWillDelayInterval = 12, kRequestResponseInformation = 13,
    kResponseInformation = 14, kServerReference = 15, kReasonString = 16, kReceiveMaximum = 17,
    kTopicAliasMaximum = 18, kTopicAlias = 19, kMaximumQoS = 20, kRetainAvailable = 21,
    kMaximumPacketSize = 23, kWildcardSubscriptionAvailable = 24,
    kSubscriptionIdentifierAvailable = 25, kSharedSubscriptionAvailable = 26,
  };
  /// Nothing set: every byte zero (one memset where a packet is value-initialised, instead of a
  /// store per field: code size).
  Properties() noexcept { std::memset(static_cast<void*>(this), 0, sizeof *this); }
  [[nodiscard]] constexpr bool has(Bit b) const noexcept { return (storage_.present_ >> b) & 1u; }

#define EDGEKIT_MQTT_PROPERTY(T, name, bit)                                                  \
  [[nodiscard]] constexpr std::optional<T> name() const noexcept {                          \
    return has(bit) ? std::optional<T>(storage_.name##_) : std::nullopt;                    \
  }                                                                                         \
  constexpr Properties& set_##name(T v) noexcept {                                          \
    storage_.name##_ = v;                                                                   \
    storage_.present_ |= std::uint32_t{1} << bit;                                           \
    return *this;                                                                           \
  }                                                                                         \
  constexpr Properties& clear_##name() noexcept {                                           \
    storage_.present_ &= ~(std::uint32_t{1} << bit);                                        \
    storage_.name##_ = T{};                                                                 \
    return *this;                                                                           \
  }
  EDGEKIT_MQTT_PROPERTY(bool, payload_format_utf8, kPayloadFormatUtf8)          ///< 0x01
  EDGEKIT_MQTT_PROPERTY(std::uint32_t, message_expiry_interval, kMessageExpiryInterval)  ///< s, 0x02
  EDGEKIT_MQTT_PROPERTY(std::string_view, content_type, kContentType)           ///< 0x03
  EDGEKIT_MQTT_PROPERTY(std::string_view, response_topic, kResponseTopic)       ///< topic name, 0x08
  EDGEKIT_MQTT_PROPERTY(Bytes, correlation_data, kCorrelationData)              ///< 0x09
  EDGEKIT_MQTT_PROPERTY(std::uint32_t, session_expiry_interval, kSessionExpiryInterval)  ///< s, 0x11
  EDGEKIT_MQTT_PROPERTY(std::string_view, assigned_client_identifier, kAssignedClientIdentifier)  ///< 0x12
  EDGEKIT_MQTT_PROPERTY(std::uint16_t, server_keep_alive, kServerKeepAlive)     ///< s, 0x13
  EDGEKIT_MQTT_PROPERTY(std::string_view, authentication_method, kAuthenticationMethod)  ///< 0x15
  EDGEKIT_MQTT_PROPERTY(Bytes, authentication_data, kAuthenticationData)        ///< 0x16
  EDGEKIT_MQTT_PROPERTY(bool, request_problem_information, kRequestProblemInformation)  ///< 0x17
  EDGEKIT_MQTT_PROPERTY(std::uint32_t, will_delay_interval, kWillDelayInterval)  ///< s, 0x18
  EDGEKIT_MQTT_PROPERTY(bool, request_response_information, kRequestResponseInformation)  ///< 0x19
  EDGEKIT_MQTT_PROPERTY(std::string_view, response_information, kResponseInformation)  ///< 0x1A
  EDGEKIT_MQTT_PROPERTY(std::string_view, server_reference, kServerReference)   ///< 0x1C
  EDGEKIT_MQTT_PROPERTY(std::string_view, reason_string, kReasonString)         ///< 0x1F
  EDGEKIT_MQTT_PROPERTY(std::uint16_t, receive_maximum, kReceiveMaximum)        ///< 1..65535, 0x21
  EDGEKIT_MQTT_PROPERTY(std::uint16_t, topic_alias_maximum, kTopicAliasMaximum)  ///< 0x22
  EDGEKIT_MQTT_PROPERTY(std::uint16_t, topic_alias, kTopicAlias)                ///< 1..maximum, 0x23
  EDGEKIT_MQTT_PROPERTY(QoS, maximum_qos, kMaximumQoS)                          ///< 0 or 1, 0x24
  EDGEKIT_MQTT_PROPERTY(bool, retain_available, kRetainAvailable)               ///< 0x25
  EDGEKIT_MQTT_PROPERTY(std::uint32_t, maximum_packet_size, kMaximumPacketSize)  ///< 0x27
  EDGEKIT_MQTT_PROPERTY(bool, wildcard_subscription_available, kWildcardSubscriptionAvailable)  ///< 0x28
  EDGEKIT_MQTT_PROPERTY(bool, subscription_identifier_available, kSubscriptionIdentifierAvailable)  ///< 0x29
  EDGEKIT_MQTT_PROPERTY(bool, shared_subscription_available, kSharedSubscriptionAvailable)  ///< 0x2A
#undef EDGEKIT_MQTT_PROPERTY

  SubscriptionIdentifiers subscription_identifiers;  ///< 1..kMaxVarInt each (0x0B)
  UserProperties user_properties;                    ///< (0x26)

  /// The values and their presence bits. A public member only so that `Properties` stays a
  /// standard-layout struct whose fields the codec locates; everything in it is private.
  detail::PropertyStorage storage_;
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
  return p.has(Properties::kTopicAlias);
#else
  (void)p;
  return false;
#endif
}
}  // namespace detail

}  // namespace edgekit::mqtt
