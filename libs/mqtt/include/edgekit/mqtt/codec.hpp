#pragma once
/// \file
/// The MQTT 3.1.1 / 5.0 codec. Pure: no heap, no I/O, no clock, no global state. Every function
/// is reentrant and thread-safe as long as callers do not share buffers.
///
/// Encoding is two-step: `encoded_size` tells how many bytes a packet needs, `encode` writes it
/// into the caller's buffer. For PUBLISH, `encode_publish_header` writes everything but the
/// payload, so a transport can send header and payload with one writev and no copy.
///
/// Decoding never copies: `read_frame` finds one complete packet at the front of the bytes
/// received so far (or says how many more bytes are needed), and `decode` turns that frame into
/// a packet struct whose views point into the frame.

#include <cstddef>
#include <cstdint>

#include "edgekit/mqtt/packets.hpp"
#include "edgekit/mqtt/types.hpp"

namespace edgekit::mqtt {

// ---------------------------------------------------------------------------------------------
// Frame reader

/// The fixed header of a packet.
struct FixedHeader {
  PacketType type{};
  std::uint8_t flags = 0;              ///< low nibble of the first byte
  std::uint32_t remaining_length = 0;
  std::uint8_t header_size = 0;        ///< 2..5: type byte + length bytes
  [[nodiscard]] constexpr std::size_t packet_size() const noexcept {
    return std::size_t{header_size} + remaining_length;
  }
};

/// What `read_frame` found at the front of the received bytes.
struct Frame {
  /// True when a whole packet is present: `header` is set and the packet is the first
  /// `header.packet_size()` bytes of the input.
  bool complete = false;
  /// When incomplete: the least number of further bytes needed before calling again (1 while the
  /// remaining length itself is still incomplete; exact once it is known).
  std::size_t bytes_needed = 0;
  /// Valid when complete, and also when incomplete but the fixed header was complete
  /// (header_size != 0) — then a caller can tell early that a packet will not fit its buffer.
  FixedHeader header{};
};

/// Looks for one packet at the front of `received`.
/// Errors: MalformedRemainingLength (5th length byte, or a non-minimal encoding such as 0x80 0x00),
/// InvalidPacketType (type 0), PacketTooLarge (packet_size() > max_packet_size; reported as soon
/// as the length is known, before the body has arrived).
/// Fixed-header flags are checked by `decode`, not here.
[[nodiscard]] Result<Frame> read_frame(Bytes received,
                                       std::uint32_t max_packet_size = kMaxPacketSize) noexcept;

// ---------------------------------------------------------------------------------------------
// Decoding. `frame` is exactly one packet (header included), as delimited by read_frame.
// `version` is the protocol of the connection (CONNECT announces its own and ignores it).
// Errors: any of Errc's "malformed input" group, each naming the broken rule; for a disabled
// protocol version, ProtocolVersionDisabled; for QoS 2 in a build without it, QoS2Disabled.

[[nodiscard]] Result<Packet> decode(Bytes frame, Version version) noexcept;

/// The client side of `decode`: decodes a packet a server may send to a client into `out`, in
/// place (no Packet-sized temporary). On failure `out` holds an unspecified alternative.
/// It dispatches only the packet types a client can receive, so a client image does not carry
/// the decoders of CONNECT, SUBSCRIBE and UNSUBSCRIBE (servers, tools and fuzzers use `decode`).
/// Errors: those of `decode`; ProtocolError for CONNECT, SUBSCRIBE, UNSUBSCRIBE and PINGREQ,
/// which a server never sends (spec 2.1.2), whether well-formed or not.
/// Thread safety and views: as `decode`; `out`'s views point into `frame`.
[[nodiscard]] Result<void> decode_from_server(Bytes frame, Version version, Packet& out) noexcept;

[[nodiscard]] Result<Connect> decode_connect(Bytes frame) noexcept;
[[nodiscard]] Result<ConnAck> decode_connack(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<Publish> decode_publish(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<PubAck> decode_puback(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<PubRec> decode_pubrec(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<PubRel> decode_pubrel(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<PubComp> decode_pubcomp(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<Subscribe> decode_subscribe(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<SubAck> decode_suback(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<Unsubscribe> decode_unsubscribe(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<UnsubAck> decode_unsuback(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<PingReq> decode_pingreq(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<PingResp> decode_pingresp(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<Disconnect> decode_disconnect(Bytes frame, Version version) noexcept;
[[nodiscard]] Result<Auth> decode_auth(Bytes frame, Version version) noexcept;

/// Decodes a property block (the length prefix included) as found in a packet of `type`:
/// checks identifiers, types, duplicates, placement and values. Exposed for the fuzzers and for
/// code that carries property blocks around. Returns the number of bytes consumed via `consumed`.
[[nodiscard]] Result<Properties> decode_properties(Bytes block, PacketType type,
                                                   std::size_t& consumed) noexcept;

// ---------------------------------------------------------------------------------------------
// Encoding. Each packet type has `encoded_size` and `encode`; `encode` returns the number of
// bytes written. Errors: BufferTooSmall; InvalidArgument / StringTooLong / InvalidUtf8 /
// NullCharacterInString / WildcardInTopicName / InvalidTopicFilter / EmptyTopic / PacketIdZero /
// InvalidQoS / PropertyNotAllowed / InvalidPropertyValue for fields that break a spec rule (the
// codec never puts a packet on the wire that a conforming peer would reject);
// ProtocolVersionDisabled / QoS2Disabled in trimmed builds.

#define EDGEKIT_MQTT_DECLARE_ENCODE(T)                                                        \
  [[nodiscard]] Result<std::size_t> encoded_size(const T& packet, Version version) noexcept; \
  [[nodiscard]] Result<std::size_t> encode(const T& packet, Version version, MutableBytes out) noexcept;

EDGEKIT_MQTT_DECLARE_ENCODE(Connect)
EDGEKIT_MQTT_DECLARE_ENCODE(ConnAck)
EDGEKIT_MQTT_DECLARE_ENCODE(Publish)
EDGEKIT_MQTT_DECLARE_ENCODE(PubAck)
EDGEKIT_MQTT_DECLARE_ENCODE(PubRec)
EDGEKIT_MQTT_DECLARE_ENCODE(PubRel)
EDGEKIT_MQTT_DECLARE_ENCODE(PubComp)
EDGEKIT_MQTT_DECLARE_ENCODE(Subscribe)
EDGEKIT_MQTT_DECLARE_ENCODE(SubAck)
EDGEKIT_MQTT_DECLARE_ENCODE(Unsubscribe)
EDGEKIT_MQTT_DECLARE_ENCODE(UnsubAck)
EDGEKIT_MQTT_DECLARE_ENCODE(PingReq)
EDGEKIT_MQTT_DECLARE_ENCODE(PingResp)
EDGEKIT_MQTT_DECLARE_ENCODE(Disconnect)
EDGEKIT_MQTT_DECLARE_ENCODE(Auth)
EDGEKIT_MQTT_DECLARE_ENCODE(Packet)
#undef EDGEKIT_MQTT_DECLARE_ENCODE

/// Writes the fixed header, variable header and properties of `packet` — everything but the
/// payload — into `out`, so header and payload can go out in one writev without copying the
/// payload. Returns the header's size; the full packet is that plus `packet.payload.size()`.
[[nodiscard]] Result<std::size_t> encode_publish_header(const Publish& packet, Version version,
                                                        MutableBytes out) noexcept;

/// `encode_publish_header` without the validation pass, for a publish that `encoded_size`
/// accepted for this `version` and that has changed since only in what a session sets (packet
/// id, DUP, a topic alias replacing the topic): validating every message three times was a
/// third of a client's CPU per message. Anything else gives unspecified bytes (never a write
/// past `out`: BufferTooSmall as usual).
[[nodiscard]] Result<std::size_t> encode_publish_header_validated(const Publish& packet,
                                                                  Version version,
                                                                  MutableBytes out) noexcept;

/// Encodes a PUBACK, PUBREC, PUBREL or PUBCOMP (`type`) without properties: the replies a
/// session asks for (`Reply`), without building a `Packet`. Returns the bytes written.
/// Errors: InvalidArgument (`type` is not one of the four); otherwise those of
/// `encode(const PubAck&, ...)`: BufferTooSmall, PacketIdZero, InvalidReasonCode,
/// ProtocolVersionDisabled, QoS2Disabled.
[[nodiscard]] Result<std::size_t> encode_ack(PacketType type, std::uint16_t packet_id,
                                             ReasonCode reason_code, Version version,
                                             MutableBytes out) noexcept;

// ---------------------------------------------------------------------------------------------
// Validation of strings and topics, shared with session, client and agent.

/// Well-formed UTF-8, no U+0000, no surrogates, length ≤ 65,535 [MQTT-1.5.4-1..3].
/// Errors: InvalidUtf8, NullCharacterInString, StringTooLong.
[[nodiscard]] Result<void> validate_utf8(std::string_view s) noexcept;
/// A PUBLISH topic name: valid UTF-8, not empty, no '+' or '#'.
/// Errors: those of validate_utf8, EmptyTopic, WildcardInTopicName.
[[nodiscard]] Result<void> validate_topic_name(std::string_view topic) noexcept;
/// A subscription filter: valid UTF-8, not empty, '#' only last and alone in its level, '+'
/// alone in its level; "$share/{group}/{filter}" checked as a shared subscription.
/// Errors: those of validate_utf8, EmptyTopic, InvalidTopicFilter.
[[nodiscard]] Result<void> validate_topic_filter(std::string_view filter) noexcept;
/// True when `topic` matches `filter` per spec 4.7 (including: wildcards at the first level do not
/// match topics starting with '$'). A "$share/{group}/" prefix on the filter is ignored.
/// Both arguments are assumed valid.
[[nodiscard]] bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

}  // namespace edgekit::mqtt
