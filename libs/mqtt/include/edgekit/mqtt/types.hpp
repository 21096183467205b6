#pragma once
/// \file
/// Basic MQTT vocabulary shared by codec, session and client.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/core/result.hpp"
#include "edgekit/mqtt/config.hpp"
#include "edgekit/mqtt/errc.hpp"

namespace edgekit::mqtt {

/// `Result` with the MQTT library's error type.
template <class T>
using Result = edgekit::Result<T, Errc>;

/// Read-only bytes owned by someone else (the caller's buffer, usually).
using Bytes = std::span<const std::byte>;
/// Writable bytes owned by the caller.
using MutableBytes = std::span<std::byte>;

/// Views `s` as bytes (no copy).
[[nodiscard]] inline Bytes as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
/// Views bytes as characters (no copy, no validation).
[[nodiscard]] inline std::string_view as_string(Bytes b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

/// Protocol level as it appears in CONNECT.
enum class Version : std::uint8_t { V311 = 4, V5 = 5 };

enum class QoS : std::uint8_t { AtMostOnce = 0, AtLeastOnce = 1, ExactlyOnce = 2 };

enum class PacketType : std::uint8_t {
  Connect = 1,
  ConnAck = 2,
  Publish = 3,
  PubAck = 4,
  PubRec = 5,
  PubRel = 6,
  PubComp = 7,
  Subscribe = 8,
  SubAck = 9,
  Unsubscribe = 10,
  UnsubAck = 11,
  PingReq = 12,
  PingResp = 13,
  Disconnect = 14,
  Auth = 15,
};

/// MQTT 5 reason codes (spec 2.4). MQTT 3.1.1 CONNACK return codes and SUBACK codes are mapped
/// onto these by the codec, so the application sees one vocabulary for both versions:
/// 3.1.1 CONNACK 1→UnsupportedProtocolVersion, 2→ClientIdentifierNotValid, 3→ServerUnavailable,
/// 4→BadUserNameOrPassword, 5→NotAuthorized; SUBACK 0x80→UnspecifiedError.
enum class ReasonCode : std::uint8_t {
  Success = 0x00,  ///< also Normal disconnection and Granted QoS 0
  GrantedQoS1 = 0x01,
  GrantedQoS2 = 0x02,
  DisconnectWithWillMessage = 0x04,
  NoMatchingSubscribers = 0x10,
  NoSubscriptionExisted = 0x11,
  ContinueAuthentication = 0x18,
  ReAuthenticate = 0x19,
  UnspecifiedError = 0x80,
  MalformedPacket = 0x81,
  ProtocolError = 0x82,
  ImplementationSpecificError = 0x83,
  UnsupportedProtocolVersion = 0x84,
  ClientIdentifierNotValid = 0x85,
  BadUserNameOrPassword = 0x86,
  NotAuthorized = 0x87,
  ServerUnavailable = 0x88,
  ServerBusy = 0x89,
  Banned = 0x8A,
  ServerShuttingDown = 0x8B,
  BadAuthenticationMethod = 0x8C,
  KeepAliveTimeout = 0x8D,
  SessionTakenOver = 0x8E,
  TopicFilterInvalid = 0x8F,
  TopicNameInvalid = 0x90,
  PacketIdentifierInUse = 0x91,
  PacketIdentifierNotFound = 0x92,
  ReceiveMaximumExceeded = 0x93,
  TopicAliasInvalid = 0x94,
  PacketTooLarge = 0x95,
  MessageRateTooHigh = 0x96,
  QuotaExceeded = 0x97,
  AdministrativeAction = 0x98,
  PayloadFormatInvalid = 0x99,
  RetainNotSupported = 0x9A,
  QoSNotSupported = 0x9B,
  UseAnotherServer = 0x9C,
  ServerMoved = 0x9D,
  SharedSubscriptionsNotSupported = 0x9E,
  ConnectionRateExceeded = 0x9F,
  MaximumConnectTime = 0xA0,
  SubscriptionIdentifiersNotSupported = 0xA1,
  WildcardSubscriptionsNotSupported = 0xA2,
};

/// True for reason codes that mean failure (0x80 and above) [MQTT-2.4].
[[nodiscard]] constexpr bool is_error(ReasonCode rc) noexcept {
  return static_cast<std::uint8_t>(rc) >= 0x80;
}
/// A short static name of `rc`, e.g. "NotAuthorized" (never allocates).
[[nodiscard]] const char* to_string(ReasonCode rc) noexcept;
[[nodiscard]] const char* to_string(PacketType t) noexcept;

/// MQTT 5 property identifiers (spec 2.2.2.2).
enum class PropertyId : std::uint8_t {
  PayloadFormatIndicator = 0x01,
  MessageExpiryInterval = 0x02,
  ContentType = 0x03,
  ResponseTopic = 0x08,
  CorrelationData = 0x09,
  SubscriptionIdentifier = 0x0B,
  SessionExpiryInterval = 0x11,
  AssignedClientIdentifier = 0x12,
  ServerKeepAlive = 0x13,
  AuthenticationMethod = 0x15,
  AuthenticationData = 0x16,
  RequestProblemInformation = 0x17,
  WillDelayInterval = 0x18,
  RequestResponseInformation = 0x19,
  ResponseInformation = 0x1A,
  ServerReference = 0x1C,
  ReasonString = 0x1F,
  ReceiveMaximum = 0x21,
  TopicAliasMaximum = 0x22,
  TopicAlias = 0x23,
  MaximumQoS = 0x24,
  RetainAvailable = 0x25,
  UserProperty = 0x26,
  MaximumPacketSize = 0x27,
  WildcardSubscriptionAvailable = 0x28,
  SubscriptionIdentifierAvailable = 0x29,
  SharedSubscriptionAvailable = 0x2A,
};

/// Largest value of a Variable Byte Integer (spec 1.5.5): 268,435,455.
inline constexpr std::uint32_t kMaxVarInt = 268'435'455;
/// Largest packet the protocol can express: 1 byte type + 4 bytes length + kMaxVarInt.
inline constexpr std::uint32_t kMaxPacketSize = kMaxVarInt + 5;

}  // namespace edgekit::mqtt
