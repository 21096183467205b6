#pragma once
/// \file
/// Local errors of the MQTT library (codec, session, client). What the broker said is a
/// `ReasonCode` (types.hpp) and is kept apart from these.

#include <cstdint>
#include <system_error>

#include "edgekit/core/result.hpp"

namespace edgekit::mqtt {

/// Every error an edgekit MQTT call can return. The comment of each value names the spec rule
/// it enforces where there is one. Values are stable; new ones are added at the end of a group.
enum class Errc : std::uint8_t {
  Ok = 0,

  // --- Malformed input (codec). A peer that sends these has broken the protocol. ---------------
  MalformedRemainingLength = 1,  ///< more than 4 bytes, or a non-minimal encoding [MQTT-1.5.5-1]
  MalformedPacket,               ///< truncated field, length mismatch, or other structural error
  InvalidPacketType,             ///< control packet type 0, or 15 (AUTH) in MQTT 3.1.1
  ReservedFlagsSet,              ///< fixed-header flags differ from the ones the spec reserves [MQTT-2.2.2-1]
  InvalidUtf8,                   ///< a string is not well-formed UTF-8 [MQTT-1.5.4-1]
  NullCharacterInString,         ///< a string contains U+0000 [MQTT-1.5.4-2]
  WildcardInTopicName,           ///< '+' or '#' in a PUBLISH topic name [MQTT-3.3.2-2]
  EmptyTopic,                    ///< zero-length topic name or filter [MQTT-4.7.3-1]
  InvalidTopicFilter,            ///< misplaced '#' or '+' in a filter [MQTT-4.7.1-1], [MQTT-4.7.1-2]
  PacketIdZero,                  ///< packet identifier 0 where one is required [MQTT-2.2.1-3]
  InvalidQoS,                    ///< QoS 3 [MQTT-3.3.1-4]
  DuplicateProperty,             ///< a property other than User Property given twice [MQTT-2.2.2]
  PropertyNotAllowed,            ///< a property that this packet may not carry
  UnknownProperty,               ///< a property identifier the spec does not define
  InvalidPropertyValue,          ///< e.g. Receive Maximum 0, Maximum QoS > 1, Topic Alias 0
  InvalidProtocolName,           ///< CONNECT protocol name is not "MQTT" [MQTT-3.1.2-1]
  UnsupportedProtocolVersion,    ///< CONNECT protocol level is neither 4 nor 5
  InvalidConnectFlags,           ///< reserved bit set, will flags inconsistent, password without user name (3.1.1)
  InvalidReasonCode,             ///< a reason code not allowed in this packet
  InvalidSubscriptionOptions,    ///< reserved bits in subscription options, or retain handling 3
  EmptySubscriptionList,         ///< SUBSCRIBE / UNSUBSCRIBE with no filter [MQTT-3.8.3-3]
  PacketTooLarge,                ///< larger than the agreed maximum packet size
  TrailingBytes,                 ///< bytes left over after every field of the packet was read
  ProtocolVersionDisabled,       ///< this build was compiled without that protocol version
  QoS2Disabled,                  ///< this build was compiled without QoS 2

  // --- Caller errors (codec encode side) --------------------------------------------------------
  BufferTooSmall = 40,           ///< the caller's buffer cannot hold the encoded packet
  StringTooLong,                 ///< a string or binary field longer than 65,535 bytes
  InvalidArgument,               ///< a field the caller set is outside what the spec allows

  // --- Session and protocol state ---------------------------------------------------------------
  NoPacketIdAvailable = 60,      ///< every packet identifier (or record slot) is in use
  ReceiveMaximumExceeded,        ///< the peer's Receive Maximum would be exceeded
  UnknownPacketId,               ///< an acknowledgement for a packet id that is not outstanding
  ProtocolError,                 ///< a packet that is valid alone but not in this state
  TopicAliasInvalid,             ///< an inbound alias that is 0, above the maximum, or unknown
  KeepAliveTimeout,              ///< no PINGRESP (or other packet) within the allowed time
  NotConnected,                  ///< the operation needs a connection
  AlreadyConnected,              ///< connect() on a connected client
  ConnectionRefused,             ///< CONNACK with a failure reason code (see the reason code)
  ServerDisconnected,            ///< the server sent DISCONNECT (see the reason code)
  SessionStateFull,              ///< no free record for another outgoing QoS 1/2 publish
  PersistenceFailed,             ///< the session store could not read or write
  QoSNotSupported,               ///< a publish above the server's Maximum QoS (MQTT 5 CONNACK)
  RetainNotSupported,            ///< a retained publish while the server's Retain Available is 0
  PersistenceCorrupted,          ///< a stored record failed its integrity check (CRC, length)

  // --- Transport and client ---------------------------------------------------------------------
  // How the client and the agent report a transport failure in MQTT's terms. The transport's own
  // errors have their own enums and categories (transport::TcpErrc / tcp_category(),
  // tls::Cause / tls_category()); they map here as: IoStatus::Closed → TransportClosed,
  // IoStatus::Error → TransportError, name resolution → HostNotFound, connect timeout → Timeout,
  // any other connect failure → ConnectFailed. Kept for API compatibility; new transport
  // failures get a value in the transport's enum, not here.
  TransportClosed = 80,          ///< the peer closed the connection
  TransportError,                ///< the transport failed (see the transport's own error)
  Timeout,                       ///< the operation did not complete in the time allowed
  IncomingPacketTooLarge,        ///< an inbound packet does not fit the caller's network buffer
  HostNotFound,                  ///< the host name did not resolve
  ConnectFailed,                 ///< TCP connect failed or was refused
  CalledFromHandler,             ///< a blocking client call made from inside its event handler
  SendQueueFull,                 ///< the connection's send queue has no room now: write, then retry
  ProtocolVersionNotChosen,      ///< ConnectOptions::version unset in a build with both versions
};

/// True when `e` is in the codec's "malformed input" group above (MalformedRemainingLength to
/// QoS2Disabled): the peer's bytes broke the protocol, which MQTT 5 answers with DISCONNECT
/// 0x81 Malformed Packet (spec 4.13). The one place that defines the group: callers ask this
/// instead of comparing numeric values. Every value is listed (no `default`), so a new `Errc`
/// fails to compile with -Wswitch until someone decides which group it belongs to.
[[nodiscard]] constexpr bool is_malformed(Errc e) noexcept {
  switch (e) {
    case Errc::MalformedRemainingLength:
    case Errc::MalformedPacket:
    case Errc::InvalidPacketType:
    case Errc::ReservedFlagsSet:
    case Errc::InvalidUtf8:
    case Errc::NullCharacterInString:
    case Errc::WildcardInTopicName:
    case Errc::EmptyTopic:
    case Errc::InvalidTopicFilter:
    case Errc::PacketIdZero:
    case Errc::InvalidQoS:
    case Errc::DuplicateProperty:
    case Errc::PropertyNotAllowed:
    case Errc::UnknownProperty:
    case Errc::InvalidPropertyValue:
    case Errc::InvalidProtocolName:
    case Errc::UnsupportedProtocolVersion:
    case Errc::InvalidConnectFlags:
    case Errc::InvalidReasonCode:
    case Errc::InvalidSubscriptionOptions:
    case Errc::EmptySubscriptionList:
    case Errc::PacketTooLarge:
    case Errc::TrailingBytes:
    case Errc::ProtocolVersionDisabled:
    case Errc::QoS2Disabled:
      return true;
    case Errc::Ok:
    case Errc::BufferTooSmall:
    case Errc::StringTooLong:
    case Errc::InvalidArgument:
    case Errc::NoPacketIdAvailable:
    case Errc::ReceiveMaximumExceeded:
    case Errc::UnknownPacketId:
    case Errc::ProtocolError:
    case Errc::TopicAliasInvalid:
    case Errc::KeepAliveTimeout:
    case Errc::NotConnected:
    case Errc::AlreadyConnected:
    case Errc::ConnectionRefused:
    case Errc::ServerDisconnected:
    case Errc::SessionStateFull:
    case Errc::PersistenceFailed:
    case Errc::QoSNotSupported:
    case Errc::RetainNotSupported:
    case Errc::PersistenceCorrupted:
    case Errc::TransportClosed:
    case Errc::TransportError:
    case Errc::Timeout:
    case Errc::IncomingPacketTooLarge:
    case Errc::HostNotFound:
    case Errc::ConnectFailed:
    case Errc::CalledFromHandler:
    case Errc::SendQueueFull:
    case Errc::ProtocolVersionNotChosen:
      return false;
  }
  return false;  // a value outside the enumerators (never produced by edgekit)
}

/// A short, static, human-readable description of `e` (never allocates).
[[nodiscard]] const char* to_string(Errc e) noexcept;

/// The `std::error_category` of `Errc`, for code that wants `std::error_code`.
[[nodiscard]] const std::error_category& mqtt_category() noexcept;

/// Wires `Errc` into `std::error_code`.
[[nodiscard]] inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), mqtt_category()};
}

}  // namespace edgekit::mqtt

template <>
struct std::is_error_code_enum<edgekit::mqtt::Errc> : std::true_type {};

/// `Errc::Ok` is zero: a `Result<void, Errc>` is the error alone (result.hpp; code size).
template <>
inline constexpr bool edgekit::kZeroErrorMeansSuccess<edgekit::mqtt::Errc> = true;
