#pragma once
// Helpers for the codec tests: guarded buffers, byte literals, property builders and
// comparisons. Everything lives on the stack: the tests run under the allocation guard.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <gtest/gtest.h>

#include "edgekit/mqtt/codec.hpp"
#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::mqtt::test {

/// Byte array from integer literals: B(0x10, 0x00).
template <class... T>
constexpr std::array<std::byte, sizeof...(T)> B(T... v) {
  return {static_cast<std::byte>(v)...};
}

inline Bytes sv_bytes(std::string_view s) { return as_bytes(s); }

/// A buffer with guard bytes before and after the region handed to the encoder.
struct Guarded {
  static constexpr std::size_t kGuard = 16;
  static constexpr std::byte kFill{0xA5};
  std::array<std::byte, 4096 + 2 * kGuard> raw{};
  Guarded() { raw.fill(kFill); }
  void reset() { raw.fill(kFill); }
  MutableBytes region(std::size_t n) { return {raw.data() + kGuard, n}; }
  /// True when nothing outside [kGuard, kGuard + n) changed.
  [[nodiscard]] bool intact(std::size_t n) const {
    for (std::size_t i = 0; i < kGuard; ++i)
      if (raw[i] != kFill) return false;
    for (std::size_t i = kGuard + n; i < raw.size(); ++i)
      if (raw[i] != kFill) return false;
    return true;
  }
};

/// Encodes `p` into `g` and checks: encoded_size == encode's result, guards untouched, and every
/// shorter buffer gives BufferTooSmall without writing outside it. Returns the encoded bytes.
template <class T>
Bytes encode_guarded(const T& p, Version v, Guarded& g) {
  auto size = encoded_size(p, v);
  EXPECT_TRUE(size.has_value()) << (size ? "" : to_string(size.error()));
  if (!size) return {};
  EXPECT_LE(*size, g.raw.size() - 2 * Guarded::kGuard);
  for (std::size_t k = 0; k < *size; ++k) {
    g.reset();
    auto r = encode(p, v, g.region(k));
    EXPECT_FALSE(r.has_value()) << "buffer of " << k << " accepted";
    if (!r) {
      EXPECT_EQ(r.error(), Errc::BufferTooSmall);
    }
    EXPECT_TRUE(g.intact(k)) << "wrote past a buffer of " << k;
  }
  g.reset();
  auto n = encode(p, v, g.region(*size + 7));
  EXPECT_TRUE(n.has_value());
  if (!n) return {};
  EXPECT_EQ(*n, *size);
  EXPECT_TRUE(g.intact(*n));
  return {g.raw.data() + Guarded::kGuard, *n};
}

inline constexpr UserProperty kUsers[] = {{"k1", "v1"}, {"k\xC3\xA9", ""}, {"k1", "again"}};
inline constexpr std::uint32_t kOneSubId[] = {7};
inline constexpr std::uint32_t kTwoSubIds[] = {1, 268'435'455};
inline constexpr std::array<std::byte, 3> kCorr = {std::byte{1}, std::byte{0}, std::byte{2}};
inline constexpr std::array<std::byte, 2> kAuthData = {std::byte{0xFF}, std::byte{0x00}};

/// Which packet kinds may carry each property: the spec's table 2.2.2.2, written out here
/// independently of the codec's own table. Bit n = packet type n; bit 0 = Will properties.
struct PropRule {
  PropertyId id;
  std::uint16_t mask;
};
constexpr std::uint16_t M(std::initializer_list<int> kinds) {
  std::uint16_t m = 0;
  for (int k : kinds) m = static_cast<std::uint16_t>(m | (1u << k));
  return m;
}
inline constexpr PropRule kRules[] = {
    {PropertyId::PayloadFormatIndicator, M({3, 0})},
    {PropertyId::MessageExpiryInterval, M({3, 0})},
    {PropertyId::ContentType, M({3, 0})},
    {PropertyId::ResponseTopic, M({3, 0})},
    {PropertyId::CorrelationData, M({3, 0})},
    {PropertyId::SubscriptionIdentifier, M({3, 8})},
    {PropertyId::SessionExpiryInterval, M({1, 2, 14})},
    {PropertyId::AssignedClientIdentifier, M({2})},
    {PropertyId::ServerKeepAlive, M({2})},
    {PropertyId::AuthenticationMethod, M({1, 2, 15})},
    {PropertyId::AuthenticationData, M({1, 2, 15})},
    {PropertyId::RequestProblemInformation, M({1})},
    {PropertyId::WillDelayInterval, M({0})},
    {PropertyId::RequestResponseInformation, M({1})},
    {PropertyId::ResponseInformation, M({2})},
    {PropertyId::ServerReference, M({2, 14})},
    {PropertyId::ReasonString, M({2, 4, 5, 6, 7, 9, 11, 14, 15})},
    {PropertyId::ReceiveMaximum, M({1, 2})},
    {PropertyId::TopicAliasMaximum, M({1, 2})},
    {PropertyId::TopicAlias, M({3})},
    {PropertyId::MaximumQoS, M({2})},
    {PropertyId::RetainAvailable, M({2})},
    {PropertyId::UserProperty, M({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15})},
    {PropertyId::MaximumPacketSize, M({1, 2})},
    {PropertyId::WildcardSubscriptionAvailable, M({2})},
    {PropertyId::SubscriptionIdentifierAvailable, M({2})},
    {PropertyId::SharedSubscriptionAvailable, M({2})},
};

/// Sets property `id` in `p` to a valid, recognisable value.
inline void set_property(Properties& p, PropertyId id, unsigned kind) {
  switch (id) {
    case PropertyId::PayloadFormatIndicator: p.set_payload_format_utf8(true); break;
    case PropertyId::MessageExpiryInterval: p.set_message_expiry_interval(0x01020304); break;
    case PropertyId::ContentType: p.set_content_type("text/plain"); break;
    case PropertyId::ResponseTopic: p.set_response_topic("reply/to"); break;
    case PropertyId::CorrelationData: p.set_correlation_data(Bytes(kCorr)); break;
    case PropertyId::SubscriptionIdentifier:
      p.subscription_identifiers = kind == 3 ? std::span<const std::uint32_t>(kTwoSubIds)
                                             : std::span<const std::uint32_t>(kOneSubId);
      break;
    case PropertyId::SessionExpiryInterval: p.set_session_expiry_interval(3600); break;
    case PropertyId::AssignedClientIdentifier: p.set_assigned_client_identifier("auto-1"); break;
    case PropertyId::ServerKeepAlive: p.set_server_keep_alive(30); break;
    case PropertyId::AuthenticationMethod: p.set_authentication_method("SCRAM"); break;
    case PropertyId::AuthenticationData: p.set_authentication_data(Bytes(kAuthData)); break;
    case PropertyId::RequestProblemInformation: p.set_request_problem_information(false); break;
    case PropertyId::WillDelayInterval: p.set_will_delay_interval(5); break;
    case PropertyId::RequestResponseInformation: p.set_request_response_information(true); break;
    case PropertyId::ResponseInformation: p.set_response_information("resp/"); break;
    case PropertyId::ServerReference: p.set_server_reference("other:1883"); break;
    case PropertyId::ReasonString: p.set_reason_string("because"); break;
    case PropertyId::ReceiveMaximum: p.set_receive_maximum(20); break;
    case PropertyId::TopicAliasMaximum: p.set_topic_alias_maximum(10); break;
    case PropertyId::TopicAlias: p.set_topic_alias(3); break;
    case PropertyId::MaximumQoS: p.set_maximum_qos(QoS::AtLeastOnce); break;
    case PropertyId::RetainAvailable: p.set_retain_available(false); break;
    case PropertyId::UserProperty: p.user_properties = kUsers; break;
    case PropertyId::MaximumPacketSize: p.set_maximum_packet_size(1024); break;
    case PropertyId::WildcardSubscriptionAvailable: p.set_wildcard_subscription_available(true); break;
    case PropertyId::SubscriptionIdentifierAvailable:
      p.set_subscription_identifier_available(false);
      break;
    case PropertyId::SharedSubscriptionAvailable: p.set_shared_subscription_available(true); break;
  }
}

/// Every property that packet kind `kind` may carry, set.
inline Properties all_allowed(unsigned kind) {
  Properties p;
  for (const PropRule& r : kRules)
    if (r.mask & (1u << kind)) set_property(p, r.id, kind);
  return p;
}

template <class L>
void expect_lists_eq(const L& a, const L& b) {
  EXPECT_EQ(a.size(), b.size());
  auto ia = a.begin();
  auto ib = b.begin();
  for (; ia != a.end() && ib != b.end(); ++ia, ++ib) EXPECT_TRUE(*ia == *ib);
}

inline void expect_props_eq(const Properties& a, const Properties& b) {
  EXPECT_EQ(a.payload_format_utf8(), b.payload_format_utf8());
  EXPECT_EQ(a.message_expiry_interval(), b.message_expiry_interval());
  EXPECT_EQ(a.content_type(), b.content_type());
  EXPECT_EQ(a.response_topic(), b.response_topic());
  EXPECT_EQ(a.correlation_data().has_value(), b.correlation_data().has_value());
  if (a.correlation_data() && b.correlation_data()) {
    EXPECT_EQ(as_string(*a.correlation_data()), as_string(*b.correlation_data()));
  }
  expect_lists_eq(a.subscription_identifiers, b.subscription_identifiers);
  EXPECT_EQ(a.session_expiry_interval(), b.session_expiry_interval());
  EXPECT_EQ(a.assigned_client_identifier(), b.assigned_client_identifier());
  EXPECT_EQ(a.server_keep_alive(), b.server_keep_alive());
  EXPECT_EQ(a.authentication_method(), b.authentication_method());
  EXPECT_EQ(a.authentication_data().has_value(), b.authentication_data().has_value());
  if (a.authentication_data() && b.authentication_data()) {
    EXPECT_EQ(as_string(*a.authentication_data()), as_string(*b.authentication_data()));
  }
  EXPECT_EQ(a.request_problem_information(), b.request_problem_information());
  EXPECT_EQ(a.will_delay_interval(), b.will_delay_interval());
  EXPECT_EQ(a.request_response_information(), b.request_response_information());
  EXPECT_EQ(a.response_information(), b.response_information());
  EXPECT_EQ(a.server_reference(), b.server_reference());
  EXPECT_EQ(a.reason_string(), b.reason_string());
  EXPECT_EQ(a.receive_maximum(), b.receive_maximum());
  EXPECT_EQ(a.topic_alias_maximum(), b.topic_alias_maximum());
  EXPECT_EQ(a.topic_alias(), b.topic_alias());
  EXPECT_EQ(a.maximum_qos(), b.maximum_qos());
  EXPECT_EQ(a.retain_available(), b.retain_available());
  expect_lists_eq(a.user_properties, b.user_properties);
  EXPECT_EQ(a.maximum_packet_size(), b.maximum_packet_size());
  EXPECT_EQ(a.wildcard_subscription_available(), b.wildcard_subscription_available());
  EXPECT_EQ(a.subscription_identifier_available(), b.subscription_identifier_available());
  EXPECT_EQ(a.shared_subscription_available(), b.shared_subscription_available());
}

inline bool same_bytes(Bytes a, Bytes b) {
  return a.size() == b.size() && as_string(a) == as_string(b);
}

}  // namespace edgekit::mqtt::test
