#pragma once
/// \file
/// Readable descriptions of MQTT packets for test failure messages: a packet becomes a list of
/// (field, value) pairs, so two packets can be compared field by field.

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "edgekit/mqtt/packets.hpp"

namespace edgekit::testing {

/// (field name, printed value) pairs; the first is ("type", "PUBLISH" or similar).
using Fields = std::vector<std::pair<std::string, std::string>>;

/// Every field of `packet` that is set (unset MQTT 5 properties are left out).
Fields packet_fields(const mqtt::Packet& packet);
/// Decodes `frame` (one whole packet) and lists its fields; undecodable bytes give
/// type = "undecodable", the codec's error and the bytes in hex. Never fails.
Fields frame_fields(std::span<const std::byte> frame, mqtt::Version version);

/// "PUBLISH\n    topic = \"a/b\"\n    qos = 1 ..." (the type, then one field per line).
std::string format_fields(const Fields& fields);
std::string describe_packet(const mqtt::Packet& packet);
std::string describe_frame(std::span<const std::byte> frame, mqtt::Version version);

/// One line per field that differs, is missing, or is extra in `actual`; empty when equal.
std::string diff_fields(const Fields& expected, const Fields& actual);

/// Bytes as "10 0c 00 04 ..." (the first 64, then the total length).
std::string hex(std::span<const std::byte> bytes);

}  // namespace edgekit::testing
