// One rejection test per rule the spec places on received bytes, each citing the rule.
#include "codec_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using DecodeRejects = edgekit::testing::PureTest;

Errc decode_error(Bytes frame, Version v) {
  auto r = decode(frame, v);
  return r ? Errc::Ok : r.error();
}

// CONNECT 3.1.1 with the given protocol name byte 4, level and flags; empty client id.
std::array<std::byte, 14> connect311(std::uint8_t level, std::uint8_t flags, char last = 'T') {
  return B(0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', last, level, flags, 0x00, 0x3C, 0x00, 0x00);
}

TEST_F(DecodeRejects, TruncatedField) {
  // 2.1.4 / 1.5.4: a string whose length runs past the end of the packet is malformed.
  EXPECT_EQ(decode_error(B(0x30, 0x04, 0x00, 0x05, 'a', 'b'), Version::V311),
            Errc::MalformedPacket);
  // A property block longer than the packet.
  EXPECT_EQ(decode_error(B(0x30, 0x05, 0x00, 0x01, 'a', 0x09, 0x01), Version::V5),
            Errc::MalformedPacket);
  // A property value cut short (Message Expiry Interval needs four bytes).
  EXPECT_EQ(decode_error(B(0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x02, 0x00), Version::V5),
            Errc::MalformedPacket);
  // A SUBSCRIBE entry without its options byte.
  EXPECT_EQ(decode_error(B(0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'), Version::V311),
            Errc::MalformedPacket);
}

TEST_F(DecodeRejects, FrameLengthMismatch) {
  // The frame must be exactly the packet its remaining length announces (2.1.4).
  EXPECT_EQ(decode_error(B(0xC0, 0x00, 0x00), Version::V5), Errc::MalformedPacket);
  EXPECT_EQ(decode_error(B(0x30, 0x05, 0x00), Version::V5), Errc::MalformedPacket);
  EXPECT_EQ(decode_error(Bytes(), Version::V5), Errc::MalformedPacket);
}

TEST_F(DecodeRejects, IllFormedUtf8InTopic) {
  // [MQTT-1.5.4-1] The character data in a UTF-8 Encoded String MUST be well-formed UTF-8 as
  // defined by the Unicode specification and restated in RFC 3629; in particular it MUST NOT
  // include encodings of code points between U+D800 and U+DFFF.
  EXPECT_EQ(decode_error(B(0x30, 0x04, 0x00, 0x02, 0xC0, 0xAF), Version::V311),
            Errc::InvalidUtf8);  // overlong '/'
  EXPECT_EQ(decode_error(B(0x30, 0x04, 0x00, 0x02, 0xC0, 0x80), Version::V311),
            Errc::InvalidUtf8);  // overlong U+0000
  EXPECT_EQ(decode_error(B(0x30, 0x05, 0x00, 0x03, 0xE0, 0x80, 0xAF), Version::V311),
            Errc::InvalidUtf8);  // overlong 3-byte
  EXPECT_EQ(decode_error(B(0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80), Version::V311),
            Errc::InvalidUtf8);  // U+D800 surrogate
  EXPECT_EQ(decode_error(B(0x30, 0x06, 0x00, 0x04, 0xF4, 0x90, 0x80, 0x80), Version::V311),
            Errc::InvalidUtf8);  // U+110000
  EXPECT_EQ(decode_error(B(0x30, 0x03, 0x00, 0x01, 0x80), Version::V311),
            Errc::InvalidUtf8);  // stray continuation byte
  EXPECT_EQ(decode_error(B(0x30, 0x04, 0x00, 0x02, 0xE2, 0x82), Version::V311),
            Errc::InvalidUtf8);  // truncated sequence
}

TEST_F(DecodeRejects, NullCharacterInString) {
  // [MQTT-1.5.4-2] A UTF-8 Encoded String MUST NOT include an encoding of the null character
  // U+0000.
  EXPECT_EQ(decode_error(B(0x30, 0x05, 0x00, 0x03, 'a', 0x00, 'b'), Version::V311),
            Errc::NullCharacterInString);
}

TEST_F(DecodeRejects, WildcardInTopicName) {
  // [MQTT-3.3.2-2] The Topic Name in the PUBLISH packet MUST NOT contain wildcard characters.
  EXPECT_EQ(decode_error(B(0x30, 0x05, 0x00, 0x03, 'a', '/', '+'), Version::V311),
            Errc::WildcardInTopicName);
  EXPECT_EQ(decode_error(B(0x30, 0x03, 0x00, 0x01, '#'), Version::V311),
            Errc::WildcardInTopicName);
}

TEST_F(DecodeRejects, WildcardInWillTopicAndResponseTopic) {
  // [MQTT-3.1.3-11] The Will Topic is a Topic Name; [MQTT-3.3.2-14] so is the Response Topic.
  constexpr auto will = B(0x10, 0x13, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3C,
                          0x00, 0x00, 0x00, 0x03, 'a', '/', '#', 0x00, 0x00);
  EXPECT_EQ(decode_error(will, Version::V311), Errc::WildcardInTopicName);
  constexpr auto resp = B(0x30, 0x08, 0x00, 0x01, 'a', 0x04, 0x08, 0x00, 0x01, '#');
  EXPECT_EQ(decode_error(resp, Version::V5), Errc::WildcardInTopicName);
}

TEST_F(DecodeRejects, EmptyTopicName) {
  // [MQTT-4.7.3-1] All Topic Names and Topic Filters MUST be at least one character long.
  EXPECT_EQ(decode_error(B(0x30, 0x02, 0x00, 0x00), Version::V311), Errc::EmptyTopic);
  // 3.3.2.3.4: in MQTT 5 an empty Topic Name is a Protocol Error unless a Topic Alias is set.
  EXPECT_EQ(decode_error(B(0x30, 0x03, 0x00, 0x00, 0x00), Version::V5), Errc::EmptyTopic);
  EXPECT_EQ(decode_error(B(0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, 'x'), Version::V5),
            Errc::Ok);
}

TEST_F(DecodeRejects, MalformedTopicFilters) {
  // [MQTT-4.7.1-2] '#' MUST be last and alone in its level.
  EXPECT_EQ(decode_error(B(0x82, 0x0A, 0x00, 0x01, 0x00, 0x05, 'a', '/', '#', '/', 'b', 0x00),
                         Version::V311),
            Errc::InvalidTopicFilter);
  // [MQTT-4.7.1-3] '+' MUST occupy an entire level.
  EXPECT_EQ(decode_error(B(0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, 'a', '+'), Version::V311),
            Errc::InvalidTopicFilter);
  // [MQTT-4.8.2-2] The ShareName MUST NOT contain '+' and MUST be followed by '/' and a filter.
  EXPECT_EQ(decode_error(B(0x82, 0x0F, 0x00, 0x01, 0x00, 0x00, 0x09, '$', 's', 'h', 'a', 'r', 'e',
                           '/', 'g', '+', 0x00),
                         Version::V5),
            Errc::InvalidTopicFilter);
  EXPECT_EQ(decode_error(B(0x82, 0x0E, 0x00, 0x01, 0x00, 0x00, 0x08, '$', 's', 'h', 'a', 'r', 'e',
                           '/', 'g', 0x00),
                         Version::V5),
            Errc::InvalidTopicFilter);
  // [MQTT-4.7.3-1] Filters are at least one character long.
  EXPECT_EQ(decode_error(B(0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00), Version::V311),
            Errc::EmptyTopic);
}

TEST_F(DecodeRejects, PacketIdZero) {
  // [MQTT-2.2.1-3] SUBSCRIBE, UNSUBSCRIBE and PUBLISH (QoS > 0) MUST contain a non-zero Packet
  // Identifier; the acknowledgements echo it.
  EXPECT_EQ(decode_error(B(0x32, 0x05, 0x00, 0x01, 'a', 0x00, 0x00), Version::V311),
            Errc::PacketIdZero);
  EXPECT_EQ(decode_error(B(0x40, 0x02, 0x00, 0x00), Version::V311), Errc::PacketIdZero);
  EXPECT_EQ(decode_error(B(0x50, 0x02, 0x00, 0x00), Version::V5), Errc::PacketIdZero);
  EXPECT_EQ(decode_error(B(0x62, 0x02, 0x00, 0x00), Version::V5), Errc::PacketIdZero);
  EXPECT_EQ(decode_error(B(0x70, 0x02, 0x00, 0x00), Version::V5), Errc::PacketIdZero);
  EXPECT_EQ(decode_error(B(0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00), Version::V311),
            Errc::PacketIdZero);
  EXPECT_EQ(decode_error(B(0x90, 0x03, 0x00, 0x00, 0x00), Version::V311), Errc::PacketIdZero);
  EXPECT_EQ(decode_error(B(0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a'), Version::V311),
            Errc::PacketIdZero);
  EXPECT_EQ(decode_error(B(0xB0, 0x02, 0x00, 0x00), Version::V311), Errc::PacketIdZero);
}

TEST_F(DecodeRejects, DuplicateProperty) {
  // [MQTT-2.2.2] It is a Protocol Error to include a property more than once (here Message
  // Expiry Interval), except User Property and, in PUBLISH, Subscription Identifier.
  EXPECT_EQ(decode_error(B(0x30, 0x0E, 0x00, 0x01, 'a', 0x0A, 0x02, 0x00, 0x00, 0x00, 0x01,
                           0x02, 0x00, 0x00, 0x00, 0x02),
                         Version::V5),
            Errc::DuplicateProperty);
  // 3.8.2.1.2: SUBSCRIBE carries at most one Subscription Identifier.
  EXPECT_EQ(decode_error(B(0x82, 0x0B, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, 'a',
                           0x00),
                         Version::V5),
            Errc::DuplicateProperty);
}

TEST_F(DecodeRejects, PropertyNotAllowedInPacket) {
  // 3.4.2.2: PUBACK may carry only Reason String and User Property (here Session Expiry).
  EXPECT_EQ(decode_error(B(0x40, 0x09, 0x00, 0x01, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x01),
                         Version::V5),
            Errc::PropertyNotAllowed);
  // 3.1.2.11: Will Delay Interval belongs to the Will Properties, not to CONNECT's.
  EXPECT_EQ(decode_error(B(0x10, 0x12, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x00,
                           0x05, 0x18, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00),
                         Version::V5),
            Errc::PropertyNotAllowed);
}

TEST_F(DecodeRejects, UnknownProperty) {
  // 2.2.2.2: only the identifiers of table 2-4 exist; 0x05 does not, nor any multi-byte one.
  EXPECT_EQ(decode_error(B(0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x05, 0x00), Version::V5),
            Errc::UnknownProperty);
  EXPECT_EQ(decode_error(B(0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x81, 0x01), Version::V5),
            Errc::UnknownProperty);
}

TEST_F(DecodeRejects, InvalidPropertyValues) {
  // 3.1.2.11.3 / 3.2.2.3.3: Receive Maximum of 0 is a Protocol Error.
  EXPECT_EQ(decode_error(B(0x20, 0x06, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00), Version::V5),
            Errc::InvalidPropertyValue);
  // 3.2.2.3.6: Maximum Packet Size of 0 is a Protocol Error.
  EXPECT_EQ(decode_error(B(0x20, 0x08, 0x00, 0x00, 0x05, 0x27, 0x00, 0x00, 0x00, 0x00),
                         Version::V5),
            Errc::InvalidPropertyValue);
  // 3.2.2.3.4: Maximum QoS other than 0 or 1 is a Protocol Error.
  EXPECT_EQ(decode_error(B(0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02), Version::V5),
            Errc::InvalidPropertyValue);
  // 3.2.2.3.5: Retain Available other than 0 or 1 is a Protocol Error (likewise every boolean).
  EXPECT_EQ(decode_error(B(0x20, 0x05, 0x00, 0x00, 0x02, 0x25, 0x02), Version::V5),
            Errc::InvalidPropertyValue);
  // 3.3.2.3.2: Payload Format Indicator is 0 or 1.
  EXPECT_EQ(decode_error(B(0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x01, 0x02), Version::V5),
            Errc::InvalidPropertyValue);
  // [MQTT-3.3.2-8] A Topic Alias of 0 is a Protocol Error.
  EXPECT_EQ(decode_error(B(0x30, 0x07, 0x00, 0x01, 'a', 0x03, 0x23, 0x00, 0x00), Version::V5),
            Errc::InvalidPropertyValue);
  // 3.3.2.3.8: a Subscription Identifier of 0 is a Protocol Error.
  EXPECT_EQ(decode_error(B(0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x0B, 0x00), Version::V5),
            Errc::InvalidPropertyValue);
}

TEST_F(DecodeRejects, ReservedFixedHeaderFlags) {
  // [MQTT-2.2.2-1] Reserved flag bits MUST be set to the values listed in table 2-2.
  // [MQTT-3.6.1-1] PUBREL, [MQTT-3.8.1-1] SUBSCRIBE, [MQTT-3.10.1-1] UNSUBSCRIBE use 0b0010.
  EXPECT_EQ(decode_error(B(0x60, 0x02, 0x00, 0x01), Version::V311), Errc::ReservedFlagsSet);
  EXPECT_EQ(decode_error(B(0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00), Version::V311),
            Errc::ReservedFlagsSet);
  EXPECT_EQ(decode_error(B(0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'), Version::V311),
            Errc::ReservedFlagsSet);
  EXPECT_EQ(decode_error(B(0x41, 0x02, 0x00, 0x01), Version::V5), Errc::ReservedFlagsSet);
  EXPECT_EQ(decode_error(B(0xC1, 0x00), Version::V5), Errc::ReservedFlagsSet);
  EXPECT_EQ(decode_error(B(0xE8, 0x00), Version::V5), Errc::ReservedFlagsSet);
  auto c = connect311(4, 0x02);
  c[0] = std::byte{0x11};
  EXPECT_EQ(decode_error(c, Version::V311), Errc::ReservedFlagsSet);
}

TEST_F(DecodeRejects, PublishQoS3) {
  // [MQTT-3.3.1-4] A PUBLISH packet MUST NOT have both QoS bits set to 1.
  EXPECT_EQ(decode_error(B(0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01), Version::V311),
            Errc::InvalidQoS);
}

TEST_F(DecodeRejects, DupWithQoS0) {
  // [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
  EXPECT_EQ(decode_error(B(0x38, 0x03, 0x00, 0x01, 'a'), Version::V311), Errc::ReservedFlagsSet);
}

TEST_F(DecodeRejects, ConnectProtocolName) {
  // [MQTT-3.1.2-1] The protocol name MUST be the UTF-8 String "MQTT".
  EXPECT_EQ(decode_error(connect311(4, 0x02, 'S'), Version::V311), Errc::InvalidProtocolName);
}

TEST_F(DecodeRejects, ConnectProtocolLevel) {
  // [MQTT-3.1.2-2] The Server MUST respond 0x01 / 0x84 to an unsupported protocol level.
  EXPECT_EQ(decode_error(connect311(3, 0x02), Version::V311), Errc::UnsupportedProtocolVersion);
  EXPECT_EQ(decode_error(connect311(6, 0x02), Version::V311), Errc::UnsupportedProtocolVersion);
  EXPECT_EQ(decode_error(connect311(4, 0x02), Version::V311), Errc::Ok);
}

TEST_F(DecodeRejects, ConnectReservedFlag) {
  // [MQTT-3.1.2-3] The Server MUST validate that the reserved flag in the CONNECT packet is set
  // to 0.
  EXPECT_EQ(decode_error(connect311(4, 0x03), Version::V311), Errc::InvalidConnectFlags);
}

TEST_F(DecodeRejects, ConnectWillFlagsInconsistent) {
  // [MQTT-3.1.2-11] / [MQTT-3.1.2-13] Without the Will Flag, Will QoS MUST be 0.
  EXPECT_EQ(decode_error(connect311(4, 0x0A), Version::V311), Errc::InvalidConnectFlags);
  // [MQTT-3.1.2-15] Without the Will Flag, Will Retain MUST be 0.
  EXPECT_EQ(decode_error(connect311(4, 0x22), Version::V311), Errc::InvalidConnectFlags);
  // [MQTT-3.1.2-14] With the Will Flag, Will QoS MUST NOT be 3.
  EXPECT_EQ(decode_error(connect311(4, 0x1E), Version::V311), Errc::InvalidConnectFlags);
}

TEST_F(DecodeRejects, V311PasswordWithoutUserName) {
  // [MQTT-3.1.2-22] (3.1.1) If the User Name Flag is set to 0, the Password Flag MUST be 0.
  EXPECT_EQ(decode_error(connect311(4, 0x42), Version::V311), Errc::InvalidConnectFlags);
  // MQTT 5 allows a password without a user name (3.1.2.9).
  constexpr auto v5 = B(0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x42, 0x00, 0x3C, 0x00,
                        0x00, 0x00, 0x00, 0x01, 'p');
  auto c = decode_connect(v5);
  ASSERT_TRUE(c.has_value()) << to_string(c.error());
  EXPECT_FALSE(c->username.has_value());
  EXPECT_EQ(as_string(*c->password), "p");
}

TEST_F(DecodeRejects, SubscriptionOptionsReservedBits) {
  // [MQTT-3-8.3-4] (3.1.1) The upper 6 bits of the Requested QoS byte MUST be 0.
  EXPECT_EQ(decode_error(B(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x04), Version::V311),
            Errc::InvalidSubscriptionOptions);
  // [MQTT-3.8.3-5] (5.0) Bits 6 and 7 of the Subscription Options MUST be 0.
  EXPECT_EQ(decode_error(B(0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x40), Version::V5),
            Errc::InvalidSubscriptionOptions);
}

TEST_F(DecodeRejects, RetainHandling3) {
  // 3.8.3.1: It is a Protocol Error to send a Retain Handling value of 3.
  EXPECT_EQ(decode_error(B(0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x30), Version::V5),
            Errc::InvalidSubscriptionOptions);
}

TEST_F(DecodeRejects, SubscriptionQoS3) {
  // 3.8.3.1: It is a Protocol Error if the Maximum QoS field has the value 3.
  EXPECT_EQ(decode_error(B(0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x03), Version::V5),
            Errc::InvalidQoS);
  EXPECT_EQ(decode_error(B(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03), Version::V311),
            Errc::InvalidQoS);
}

TEST_F(DecodeRejects, NoLocalOnSharedSubscription) {
  // [MQTT-3.8.3-4] It is a Protocol Error to set the No Local bit to 1 on a Shared Subscription.
  EXPECT_EQ(decode_error(B(0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0A, '$', 's', 'h', 'a', 'r', 'e',
                           '/', 'g', '/', 'a', 0x04),
                         Version::V5),
            Errc::InvalidSubscriptionOptions);
}

TEST_F(DecodeRejects, EmptySubscribeAndUnsubscribe) {
  // [MQTT-3.8.3-3] The payload of a SUBSCRIBE packet MUST contain at least one Topic Filter.
  EXPECT_EQ(decode_error(B(0x82, 0x02, 0x00, 0x01), Version::V311), Errc::EmptySubscriptionList);
  EXPECT_EQ(decode_error(B(0x82, 0x03, 0x00, 0x01, 0x00), Version::V5),
            Errc::EmptySubscriptionList);
  // [MQTT-3.10.3-2] The payload of an UNSUBSCRIBE packet MUST contain at least one Topic Filter.
  EXPECT_EQ(decode_error(B(0xA2, 0x02, 0x00, 0x01), Version::V311), Errc::EmptySubscriptionList);
}

TEST_F(DecodeRejects, SubAckReturnCodes) {
  // 3.9.3 (3.1.1): SUBACK return codes other than 0x00, 0x01, 0x02, 0x80 are reserved and MUST
  // NOT be used [MQTT-3.9.3-2].
  EXPECT_EQ(decode_error(B(0x90, 0x03, 0x00, 0x01, 0x03), Version::V311), Errc::InvalidReasonCode);
  EXPECT_EQ(decode_error(B(0x90, 0x03, 0x00, 0x01, 0x87), Version::V311), Errc::InvalidReasonCode);
  // 3.9.3 (5.0): table 3-8 lists the SUBACK reason codes; 0x87 is one, 0x10 is not.
  EXPECT_EQ(decode_error(B(0x90, 0x04, 0x00, 0x01, 0x00, 0x87), Version::V5), Errc::Ok);
  EXPECT_EQ(decode_error(B(0x90, 0x04, 0x00, 0x01, 0x00, 0x10), Version::V5),
            Errc::InvalidReasonCode);
  // A SUBACK answers at least one filter.
  EXPECT_EQ(decode_error(B(0x90, 0x02, 0x00, 0x01), Version::V311), Errc::MalformedPacket);
  // 3.11.3: UNSUBACK reason codes (table 3-9).
  EXPECT_EQ(decode_error(B(0xB0, 0x04, 0x00, 0x01, 0x00, 0x01), Version::V5),
            Errc::InvalidReasonCode);
}

TEST_F(DecodeRejects, ReasonCodeNotAllowedInPacket) {
  // 3.4.2.1: PUBACK reason codes (0x92 belongs to PUBREL/PUBCOMP).
  EXPECT_EQ(decode_error(B(0x40, 0x03, 0x00, 0x01, 0x92), Version::V5), Errc::InvalidReasonCode);
  // 3.6.2.1: PUBREL reason codes are 0x00 and 0x92 only.
  EXPECT_EQ(decode_error(B(0x62, 0x03, 0x00, 0x01, 0x10), Version::V5), Errc::InvalidReasonCode);
  // 3.14.2.1: DISCONNECT reason codes (0x01 is not one).
  EXPECT_EQ(decode_error(B(0xE0, 0x01, 0x01), Version::V5), Errc::InvalidReasonCode);
  // 3.15.2.1: AUTH reason codes are 0x00, 0x18 and 0x19.
  EXPECT_EQ(decode_error(B(0xF0, 0x01, 0x80), Version::V5), Errc::InvalidReasonCode);
  // 3.2.2.2: CONNACK reason codes (0x04 is not one).
  EXPECT_EQ(decode_error(B(0x20, 0x03, 0x00, 0x04, 0x00), Version::V5), Errc::InvalidReasonCode);
  // 3.2.2.3 (3.1.1): CONNACK return codes 6-255 are reserved.
  EXPECT_EQ(decode_error(B(0x20, 0x02, 0x00, 0x06), Version::V311), Errc::InvalidReasonCode);
}

TEST_F(DecodeRejects, ConnAckFlags) {
  // [MQTT-3.2.2-1] Bits 7-1 of the Connect Acknowledge Flags are reserved and MUST be 0.
  EXPECT_EQ(decode_error(B(0x20, 0x02, 0x02, 0x00), Version::V311), Errc::MalformedPacket);
  // [MQTT-3.2.2-4] (3.1.1) / [MQTT-3.2.2-6] (5.0) A refusal MUST have Session Present 0.
  EXPECT_EQ(decode_error(B(0x20, 0x02, 0x01, 0x05), Version::V311), Errc::MalformedPacket);
}

TEST_F(DecodeRejects, TrailingBytes) {
  // 3.12: PINGREQ has no variable header and no payload.
  EXPECT_EQ(decode_error(B(0xC0, 0x01, 0x00), Version::V5), Errc::TrailingBytes);
  // 3.4 (3.1.1): PUBACK has a remaining length of exactly 2.
  EXPECT_EQ(decode_error(B(0x40, 0x03, 0x00, 0x01, 0x00), Version::V311), Errc::TrailingBytes);
  // 3.2 (3.1.1): CONNACK has a remaining length of exactly 2.
  EXPECT_EQ(decode_error(B(0x20, 0x03, 0x00, 0x00, 0x00), Version::V311), Errc::TrailingBytes);
  // 3.11 (3.1.1): UNSUBACK has a remaining length of exactly 2.
  EXPECT_EQ(decode_error(B(0xB0, 0x03, 0x00, 0x01, 0x00), Version::V311), Errc::TrailingBytes);
  // 3.14 (3.1.1): DISCONNECT has no variable header.
  EXPECT_EQ(decode_error(B(0xE0, 0x01, 0x00), Version::V311), Errc::TrailingBytes);
  // CONNECT with a byte after the last field its flags announce.
  constexpr auto c = B(0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00,
                       0x00, 0x00);
  EXPECT_EQ(decode_error(c, Version::V311), Errc::TrailingBytes);
}

TEST_F(DecodeRejects, AuthInV311AndTypeMismatch) {
  // 2.1.2 (3.1.1): packet type 15 is reserved.
  EXPECT_EQ(decode_error(B(0xF0, 0x00), Version::V311), Errc::InvalidPacketType);
  // A per-type decoder refuses a frame of another type.
  EXPECT_EQ(decode_puback(B(0x50, 0x02, 0x00, 0x01), Version::V5).error(),
            Errc::InvalidPacketType);
}

TEST_F(DecodeRejects, InvalidVersionArgument) {
  EXPECT_EQ(decode_error(B(0xC0, 0x00), static_cast<Version>(3)), Errc::InvalidArgument);
}

TEST_F(DecodeRejects, NeverReadsOutOfBoundsOnAnyPrefixOrBitFlip) {
  // Every prefix of a rich packet, and every single-bit corruption of it, decodes to a value or
  // an error — under ASan, any out-of-bounds read fails the test.
  Guarded g;
  Connect c;
  c.client_id = "id";
  c.username = "u";
  c.password = as_bytes("pw");
  Will w;
  w.topic = "w/t";
  w.payload = as_bytes("bye");
  w.properties = all_allowed(0);
  c.will = w;
  c.properties = all_allowed(1);
  Bytes wire = encode_guarded(c, Version::V5, g);
  std::array<std::byte, 512> copy{};
  ASSERT_LE(wire.size(), copy.size());
  for (std::size_t k = 0; k <= wire.size(); ++k) {
    // Copied to a buffer exactly k long-lived bytes at the end, so ASan sees overreads.
    std::byte* end = copy.data() + copy.size();
    std::copy(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(k), end - k);
    (void)decode(Bytes(end - k, k), Version::V5);
  }
  std::byte* start = copy.data() + copy.size() - wire.size();
  for (std::size_t i = 0; i < wire.size() * 8; ++i) {
    std::copy(wire.begin(), wire.end(), start);
    start[i / 8] ^= std::byte(1u << (i % 8));
    auto r = decode(Bytes(start, wire.size()), Version::V5);
    if (r) {
      // Whatever decoded must be iterable without going out of bounds.
      const auto* cc = std::get_if<Connect>(&*r);
      if (cc) {
        for (const UserProperty& up : cc->properties.user_properties) (void)up;
      }
    }
  }
}

}  // namespace
}  // namespace edgekit::mqtt::test
