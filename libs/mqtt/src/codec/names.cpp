// Static names for errors, reason codes and packet types. Kept apart from the codec proper so a
// size-conscious image that never prints them loses them to --gc-sections.
#include "edgekit/mqtt/errc.hpp"
#include "edgekit/mqtt/types.hpp"

namespace edgekit::mqtt {

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::Ok: return "ok";
    case Errc::MalformedRemainingLength: return "malformed remaining length";
    case Errc::MalformedPacket: return "malformed packet";
    case Errc::InvalidPacketType: return "invalid packet type";
    case Errc::ReservedFlagsSet: return "reserved fixed-header flags set";
    case Errc::InvalidUtf8: return "string is not well-formed UTF-8";
    case Errc::NullCharacterInString: return "string contains U+0000";
    case Errc::WildcardInTopicName: return "wildcard in topic name";
    case Errc::EmptyTopic: return "empty topic";
    case Errc::InvalidTopicFilter: return "invalid topic filter";
    case Errc::PacketIdZero: return "packet identifier 0";
    case Errc::InvalidQoS: return "invalid QoS";
    case Errc::DuplicateProperty: return "duplicate property";
    case Errc::PropertyNotAllowed: return "property not allowed in this packet";
    case Errc::UnknownProperty: return "unknown property identifier";
    case Errc::InvalidPropertyValue: return "invalid property value";
    case Errc::InvalidProtocolName: return "invalid protocol name";
    case Errc::UnsupportedProtocolVersion: return "unsupported protocol version";
    case Errc::InvalidConnectFlags: return "invalid CONNECT flags";
    case Errc::InvalidReasonCode: return "reason code not allowed in this packet";
    case Errc::InvalidSubscriptionOptions: return "invalid subscription options";
    case Errc::EmptySubscriptionList: return "no topic filter in SUBSCRIBE/UNSUBSCRIBE";
    case Errc::PacketTooLarge: return "packet larger than the maximum packet size";
    case Errc::TrailingBytes: return "unexpected bytes after the last field";
    case Errc::ProtocolVersionDisabled: return "protocol version disabled in this build";
    case Errc::QoS2Disabled: return "QoS 2 disabled in this build";
    case Errc::BufferTooSmall: return "buffer too small";
    case Errc::StringTooLong: return "string longer than 65535 bytes";
    case Errc::InvalidArgument: return "invalid argument";
    case Errc::NoPacketIdAvailable: return "no packet identifier available";
    case Errc::ReceiveMaximumExceeded: return "receive maximum exceeded";
    case Errc::UnknownPacketId: return "unknown packet identifier";
    case Errc::ProtocolError: return "protocol error";
    case Errc::TopicAliasInvalid: return "invalid topic alias";
    case Errc::KeepAliveTimeout: return "keep-alive timeout";
    case Errc::NotConnected: return "not connected";
    case Errc::AlreadyConnected: return "already connected";
    case Errc::ConnectionRefused: return "connection refused by the server";
    case Errc::ServerDisconnected: return "server sent DISCONNECT";
    case Errc::SessionStateFull: return "session state full";
    case Errc::PersistenceFailed: return "session persistence failed";
    case Errc::QoSNotSupported: return "QoS above the server's maximum";
    case Errc::RetainNotSupported: return "server does not support retained messages";
    case Errc::PersistenceCorrupted: return "stored session record is corrupt";
    case Errc::TransportClosed: return "connection closed by peer";
    case Errc::TransportError: return "transport error";
    case Errc::Timeout: return "timed out";
    case Errc::IncomingPacketTooLarge: return "incoming packet larger than the network buffer";
    case Errc::HostNotFound: return "host not found";
    case Errc::ConnectFailed: return "connect failed";
    case Errc::CalledFromHandler: return "blocking call made from inside the event handler";
    case Errc::SendQueueFull: return "send queue full: write queued bytes, then retry";
    case Errc::ProtocolVersionNotChosen:
      return "no protocol version chosen: set ConnectOptions::version (V311 or V5)";
  }
  return "unknown error";
}

const char* to_string(PacketType t) noexcept {
  switch (t) {
    case PacketType::Connect: return "CONNECT";
    case PacketType::ConnAck: return "CONNACK";
    case PacketType::Publish: return "PUBLISH";
    case PacketType::PubAck: return "PUBACK";
    case PacketType::PubRec: return "PUBREC";
    case PacketType::PubRel: return "PUBREL";
    case PacketType::PubComp: return "PUBCOMP";
    case PacketType::Subscribe: return "SUBSCRIBE";
    case PacketType::SubAck: return "SUBACK";
    case PacketType::Unsubscribe: return "UNSUBSCRIBE";
    case PacketType::UnsubAck: return "UNSUBACK";
    case PacketType::PingReq: return "PINGREQ";
    case PacketType::PingResp: return "PINGRESP";
    case PacketType::Disconnect: return "DISCONNECT";
    case PacketType::Auth: return "AUTH";
  }
  return "RESERVED";
}

const char* to_string(ReasonCode rc) noexcept {
  switch (rc) {
    case ReasonCode::Success: return "Success";
    case ReasonCode::GrantedQoS1: return "GrantedQoS1";
    case ReasonCode::GrantedQoS2: return "GrantedQoS2";
    case ReasonCode::DisconnectWithWillMessage: return "DisconnectWithWillMessage";
    case ReasonCode::NoMatchingSubscribers: return "NoMatchingSubscribers";
    case ReasonCode::NoSubscriptionExisted: return "NoSubscriptionExisted";
    case ReasonCode::ContinueAuthentication: return "ContinueAuthentication";
    case ReasonCode::ReAuthenticate: return "ReAuthenticate";
    case ReasonCode::UnspecifiedError: return "UnspecifiedError";
    case ReasonCode::MalformedPacket: return "MalformedPacket";
    case ReasonCode::ProtocolError: return "ProtocolError";
    case ReasonCode::ImplementationSpecificError: return "ImplementationSpecificError";
    case ReasonCode::UnsupportedProtocolVersion: return "UnsupportedProtocolVersion";
    case ReasonCode::ClientIdentifierNotValid: return "ClientIdentifierNotValid";
    case ReasonCode::BadUserNameOrPassword: return "BadUserNameOrPassword";
    case ReasonCode::NotAuthorized: return "NotAuthorized";
    case ReasonCode::ServerUnavailable: return "ServerUnavailable";
    case ReasonCode::ServerBusy: return "ServerBusy";
    case ReasonCode::Banned: return "Banned";
    case ReasonCode::ServerShuttingDown: return "ServerShuttingDown";
    case ReasonCode::BadAuthenticationMethod: return "BadAuthenticationMethod";
    case ReasonCode::KeepAliveTimeout: return "KeepAliveTimeout";
    case ReasonCode::SessionTakenOver: return "SessionTakenOver";
    case ReasonCode::TopicFilterInvalid: return "TopicFilterInvalid";
    case ReasonCode::TopicNameInvalid: return "TopicNameInvalid";
    case ReasonCode::PacketIdentifierInUse: return "PacketIdentifierInUse";
    case ReasonCode::PacketIdentifierNotFound: return "PacketIdentifierNotFound";
    case ReasonCode::ReceiveMaximumExceeded: return "ReceiveMaximumExceeded";
    case ReasonCode::TopicAliasInvalid: return "TopicAliasInvalid";
    case ReasonCode::PacketTooLarge: return "PacketTooLarge";
    case ReasonCode::MessageRateTooHigh: return "MessageRateTooHigh";
    case ReasonCode::QuotaExceeded: return "QuotaExceeded";
    case ReasonCode::AdministrativeAction: return "AdministrativeAction";
    case ReasonCode::PayloadFormatInvalid: return "PayloadFormatInvalid";
    case ReasonCode::RetainNotSupported: return "RetainNotSupported";
    case ReasonCode::QoSNotSupported: return "QoSNotSupported";
    case ReasonCode::UseAnotherServer: return "UseAnotherServer";
    case ReasonCode::ServerMoved: return "ServerMoved";
    case ReasonCode::SharedSubscriptionsNotSupported: return "SharedSubscriptionsNotSupported";
    case ReasonCode::ConnectionRateExceeded: return "ConnectionRateExceeded";
    case ReasonCode::MaximumConnectTime: return "MaximumConnectTime";
    case ReasonCode::SubscriptionIdentifiersNotSupported: return "SubscriptionIdentifiersNotSupported";
    case ReasonCode::WildcardSubscriptionsNotSupported: return "WildcardSubscriptionsNotSupported";
  }
  return "UnknownReasonCode";
}

}  // namespace edgekit::mqtt
