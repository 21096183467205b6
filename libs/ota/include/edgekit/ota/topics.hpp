#pragma once
/// \file
/// Topics of MQTT-based file delivery (aws-iot-protocols.md 3.1), built into the caller's buffer
/// and matched without copying. With S = `$aws/things/{thing}/streams/{streamId}`:
///
///   S/get/{fmt}           GetStream request (device → service)
///   S/data/{fmt}          one block per message (service → device)
///   S/describe/{fmt}      DescribeStream request (device → service)
///   S/description/{fmt}   DescribeStream reply (service → device)
///   S/rejected/{fmt}      error for either request (service → device)
///
/// `{fmt}` is `json` or `cbor`. Pure: no heap, no I/O. Returned views point into the caller's
/// buffer (builder) or into the topic given (matcher) and stay valid as long as that memory.
/// Thread safety: none needed (no state).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/ota/errc.hpp"

namespace edgekit::ota {

/// The payload encoding of a stream request and its replies (the `{fmt}` level).
enum class Format : std::uint8_t { Json, Cbor };

/// Which stream topic.
enum class StreamTopic : std::uint8_t { Get, Data, Describe, Description, Rejected };

/// The longest thing name (aws-iot-protocols.md 0) and stream id (AWS CreateStream: 1-128 bytes
/// of `[a-zA-Z0-9_-]`).
inline constexpr std::size_t kMaxThingNameLength = 128;
inline constexpr std::size_t kMaxStreamIdLength = 128;
/// Room enough for every stream topic: "$aws/things/" + 128 + "/streams/" + 128 +
/// "/description/" + "json" = 294 bytes.
inline constexpr std::size_t kMaxTopicLength = 294;

/// "json" or "cbor".
[[nodiscard]] std::string_view to_string(Format format) noexcept;

/// Whether `id` can be a stream id: 1-128 bytes of `[a-zA-Z0-9_-]` (never needs escaping in a
/// topic level or in JSON).
[[nodiscard]] bool valid_stream_id(std::string_view id) noexcept;
/// Whether `name` can be a thing name: 1-128 bytes of `[a-zA-Z0-9:_-]`.
[[nodiscard]] bool valid_thing_name(std::string_view name) noexcept;

/// Writes the `kind` topic of stream `stream_id` of `thing` in `format` into `buffer`; returns a
/// view of it. Errors: InvalidArgument (a thing name or stream id that is not valid),
/// BufferTooSmall (kMaxTopicLength always suffices).
[[nodiscard]] Result<std::string_view, Errc> stream_topic(std::string_view thing,
                                                          std::string_view stream_id,
                                                          StreamTopic kind, Format format,
                                                          std::span<char> buffer) noexcept;

/// What a stream topic names; `thing` and `stream_id` view into the matched topic.
struct StreamTopicMatch {
  std::string_view thing;
  std::string_view stream_id;
  StreamTopic kind = StreamTopic::Get;
  Format format = Format::Json;
};

/// Reads any stream topic (exact match: valid names, one of the five kinds, `json` or `cbor`,
/// nothing after). Errors: TopicMismatch.
[[nodiscard]] Result<StreamTopicMatch, Errc> match_stream_topic(std::string_view topic) noexcept;

}  // namespace edgekit::ota
