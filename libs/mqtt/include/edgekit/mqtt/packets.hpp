#pragma once
/// \file
/// The MQTT control packets of 3.1.1 and 5.0 as plain values. The same structs are used to
/// encode (fields point at the caller's data) and as the result of decoding (fields point into
/// the decoded frame; valid while that buffer is unchanged). Fields that exist only in MQTT 5
/// (reason codes of acks, properties) are ignored/left default for 3.1.1 where the spec says so.

#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

#include "edgekit/mqtt/properties.hpp"
#include "edgekit/mqtt/types.hpp"

namespace edgekit::mqtt {

struct Will {
  std::string_view topic;  ///< a topic name: no wildcards, not empty
  Bytes payload;
  QoS qos = QoS::AtMostOnce;
  bool retain = false;
  [[no_unique_address]] Properties properties;  ///< MQTT 5 will properties
};

struct Connect {
  Version version = Version::V5;
  std::string_view client_id;  ///< may be empty (server assigns one; 3.1.1 needs clean_start)
  bool clean_start = true;     ///< "Clean Session" in 3.1.1
  std::uint16_t keep_alive = 60;  ///< seconds; 0 disables keep-alive
  std::optional<std::string_view> username;
  std::optional<Bytes> password;
  std::optional<Will> will;
  [[no_unique_address]] Properties properties;
};

struct ConnAck {
  bool session_present = false;
  ReasonCode reason_code = ReasonCode::Success;  ///< 3.1.1 return codes mapped, see types.hpp
  [[no_unique_address]] Properties properties;
};

struct Publish {
  std::string_view topic;  ///< may be empty in MQTT 5 when properties.topic_alias is set
  Bytes payload;
  QoS qos = QoS::AtMostOnce;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;  ///< 0 for QoS 0 (and must be non-zero otherwise)
  [[no_unique_address]] Properties properties;
};

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
template <PacketType Type>
struct Ack {
  static constexpr PacketType kType = Type;
  std::uint16_t packet_id = 0;
  ReasonCode reason_code = ReasonCode::Success;
  [[no_unique_address]] Properties properties;
};
using PubAck = Ack<PacketType::PubAck>;
using PubRec = Ack<PacketType::PubRec>;
using PubRel = Ack<PacketType::PubRel>;
using PubComp = Ack<PacketType::PubComp>;

enum class RetainHandling : std::uint8_t { SendOnSubscribe = 0, SendIfNotSubscribed = 1, DoNotSend = 2 };

struct SubscribeOptions {
  QoS qos = QoS::AtMostOnce;
  bool no_local = false;             ///< MQTT 5
  bool retain_as_published = false;  ///< MQTT 5
  RetainHandling retain_handling = RetainHandling::SendOnSubscribe;  ///< MQTT 5
  friend constexpr bool operator==(const SubscribeOptions&, const SubscribeOptions&) = default;
};

struct Subscription {
  std::string_view filter;
  SubscribeOptions options;
};

namespace detail {
struct WireListAccess;  // the encoder's access to a list's entries (encode.cpp)
}  // namespace detail

/// A sequence that is either the caller's array (encode) or a view of a decoded payload.
/// `T` is what iteration yields; decoded views are parsed lazily from already validated bytes.
template <class T>
class WireList {
 public:
  using Reader = T (*)(Bytes raw, std::size_t& pos);  ///< reads one item, advances pos
  constexpr WireList() = default;
  constexpr WireList(std::span<const T> items) : items_(items) {}
  /// Encode side, from a C array: `Subscription subs[] = {...}; s.subscriptions = subs;`
  template <std::size_t N>
  constexpr WireList(const T (&items)[N]) : items_(items) {}
  [[nodiscard]] static WireList from_wire(Bytes raw, std::size_t count, Reader read) {
    WireList l;
    l.raw_ = raw;
    l.count_ = count;
    l.read_ = read;
    return l;
  }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    T operator*() const {
      if (!list_->read_) return list_->items_[index_];
      std::size_t p = pos_;
      return list_->read_(list_->raw_, p);
    }
    iterator& operator++() {
      if (list_->read_) {
        std::size_t p = pos_;
        (void)list_->read_(list_->raw_, p);
        pos_ = p;
      }
      ++index_;
      return *this;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.index_ == b.index_; }

   private:
    friend class WireList;
    iterator(const WireList* l, std::size_t i) : list_(l), index_(i) {}
    const WireList* list_ = nullptr;
    std::size_t index_ = 0;
    std::size_t pos_ = 0;
  };
  [[nodiscard]] iterator begin() const { return iterator(this, 0); }
  [[nodiscard]] iterator end() const { return iterator(this, size()); }
  [[nodiscard]] std::size_t size() const { return read_ ? count_ : items_.size(); }
  [[nodiscard]] bool empty() const { return size() == 0; }

 private:
  friend struct detail::WireListAccess;
  std::span<const T> items_{};
  Bytes raw_{};
  std::size_t count_ = 0;
  Reader read_ = nullptr;
};

using Subscriptions = WireList<Subscription>;
using TopicFilters = WireList<std::string_view>;

/// Reason codes of SUBACK / UNSUBACK: one byte each, so a decoded list is a plain view.
using ReasonCodes = std::span<const ReasonCode>;

struct Subscribe {
  std::uint16_t packet_id = 0;
  Subscriptions subscriptions;  ///< at least one [MQTT-3.8.3-3]
  [[no_unique_address]] Properties properties;        ///< Subscription Identifier, User Property
};

struct SubAck {
  std::uint16_t packet_id = 0;
  ReasonCodes reason_codes;  ///< one per filter, in order
  [[no_unique_address]] Properties properties;
};

struct Unsubscribe {
  std::uint16_t packet_id = 0;
  TopicFilters filters;  ///< at least one [MQTT-3.10.3-2]
  [[no_unique_address]] Properties properties;
};

struct UnsubAck {
  std::uint16_t packet_id = 0;
  ReasonCodes reason_codes;  ///< MQTT 5 only; empty in 3.1.1
  [[no_unique_address]] Properties properties;
};

struct PingReq {};
struct PingResp {};

struct Disconnect {
  ReasonCode reason_code = ReasonCode::Success;  ///< MQTT 5 only
  [[no_unique_address]] Properties properties;
};

/// MQTT 5 only.
struct Auth {
  ReasonCode reason_code = ReasonCode::Success;
  [[no_unique_address]] Properties properties;
};

/// Any control packet. Alternative index + 1 == PacketType value.
using Packet = std::variant<Connect, ConnAck, Publish, PubAck, PubRec, PubRel, PubComp, Subscribe,
                            SubAck, Unsubscribe, UnsubAck, PingReq, PingResp, Disconnect, Auth>;

[[nodiscard]] constexpr PacketType type_of(const Packet& p) noexcept {
  return static_cast<PacketType>(p.index() + 1);
}

}  // namespace edgekit::mqtt
