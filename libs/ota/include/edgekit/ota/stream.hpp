#pragma once
/// \file
/// Messages of MQTT-based file delivery (aws-iot-protocols.md 3.2), in JSON or CBOR with the same
/// single-letter keys: GetStream and DescribeStream requests (writers), and the data,
/// description and rejected replies (readers).
///
/// The CBOR GetStream request is a map in the order c, f, l, o, b, n (then s when given), with
/// `b` a byte string: given the same values, byte for byte what the FreeRTOS OTA agent sends
/// (its tinycbor encoder also writes shortest heads). In JSON `b` is "0x" followed by the bitmap
/// bytes in lower-case hex (the service documentation's example: `"0x130080"`).
///
/// Pure: no heap, no I/O. Writers fill the caller's buffer and return the size used. Readers
/// take the message bytes (untrusted) and return views: into the message itself where the value
/// can be read in place (CBOR text and byte strings, JSON strings without escapes) or into the
/// caller's buffers (a JSON block's base64 `p` decoded into `block`, escaped strings into
/// `scratch`). Views stay valid while those are unchanged. Unknown keys are ignored; a known key
/// of the wrong type is MalformedMessage. Thread safety: none needed (no state).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "edgekit/ota/errc.hpp"
#include "edgekit/ota/topics.hpp"

namespace edgekit::ota {

/// Service limits (aws-iot-protocols.md 3.2, 3.3).
inline constexpr std::uint32_t kMinBlockSize = 256;
inline constexpr std::uint32_t kMaxBlockSize = 131072;
/// The most block data one GetStream request returns (128 KB).
inline constexpr std::uint32_t kMaxBytesPerRequest = 131072;
/// The highest `o` (first block) a request may carry.
inline constexpr std::uint32_t kMaxBlockOffset = 98304;
/// `b` must be smaller than 12,288 bytes.
inline constexpr std::size_t kMaxBitmapBytes = 12287;
/// A client token is at most 64 bytes.
inline constexpr std::size_t kMaxClientTokenLength = 64;

/// A GetStream request.
struct GetStreamRequest {
  std::string_view client_token;         ///< `c` (1-64 bytes)
  std::uint8_t file_id = 0;              ///< `f`
  std::uint32_t block_size = 4096;       ///< `l` (256-131072)
  std::uint32_t offset = 0;              ///< `o` (0-98304)
  std::uint32_t block_count = 1;         ///< `n` (0-98304)
  std::span<const std::uint8_t> bitmap;  ///< `b` relative to `o` (< 12,288 bytes); empty: left out
  std::optional<std::uint32_t> stream_version;  ///< `s`, last when given
};

/// Writes a GetStream request. Errors: InvalidArgument (a token empty, longer than 64 bytes or
/// not UTF-8; a block size, offset, count or bitmap out of the ranges above), BufferTooSmall.
[[nodiscard]] Result<std::size_t, Errc> write_get_stream_request(
    Format format, const GetStreamRequest& request, std::span<std::uint8_t> out) noexcept;

/// Writes a DescribeStream request: {"c": client_token}.
/// Errors: InvalidArgument (token as above), BufferTooSmall.
[[nodiscard]] Result<std::size_t, Errc> write_describe_stream_request(
    Format format, std::string_view client_token, std::span<std::uint8_t> out) noexcept;

/// A data message: one block.
struct DataBlock {
  std::string_view client_token;       ///< `c` (empty when absent)
  std::uint32_t file_id = 0;           ///< `f`
  std::uint32_t block_id = 0;          ///< `i` (absolute)
  std::span<const std::byte> payload;  ///< `p`; its length equals `l`
};

/// Reads a data message. Required: `f`, `i`, `l` (non-negative integers up to 2^32-1) and `p`
/// (JSON: a padded base64 string, decoded into `block`; CBOR: a byte string, viewed in place);
/// `l` must equal the payload's length. `c` optional (a string).
/// Errors: MalformedMessage, BlockLengthMismatch (`l` is not the payload's length),
/// BufferTooSmall (`block` cannot hold the decoded JSON payload; `scratch` an escaped token).
[[nodiscard]] Result<DataBlock, Errc> read_data(Format format,
                                                std::span<const std::uint8_t> message,
                                                std::span<std::byte> block,
                                                std::span<char> scratch) noexcept;

/// One entry of a description's `r`.
struct StreamFile {
  std::uint32_t file_id = 0;  ///< `f`
  std::uint32_t size = 0;     ///< `z`, bytes
};

/// A DescribeStream reply.
struct StreamDescription {
  std::string_view client_token;               ///< `c` (empty when absent)
  std::optional<std::int64_t> stream_version;  ///< `s`
  std::string_view description;                ///< `d` (empty when absent)
  std::size_t file_count = 0;  ///< entries of `r`: the first `file_count` of the caller's array
};

/// Reads a description. `r` required (an array of objects with integer `f` 0-255 and `z`
/// 0-2^32-1); `c`, `s`, `d` optional with their types.
/// Errors: MalformedMessage (also more entries than `files` holds), BufferTooSmall (`scratch`).
[[nodiscard]] Result<StreamDescription, Errc> read_description(
    Format format, std::span<const std::uint8_t> message, std::span<StreamFile> files,
    std::span<char> scratch) noexcept;

/// A rejected message.
struct StreamRejected {
  std::string_view code;            ///< `o` (legacy `code`)
  std::string_view message;         ///< `m` (legacy `message`); empty when absent
  std::string_view client_token;    ///< `c` (legacy `clientToken`); empty when absent
  Errc errc = Errc::RejectedOther;  ///< `stream_errc(code)`
};

/// Reads a rejected message. `o` (or `code`) required, a string; the others optional strings.
/// Errors: MalformedMessage, BufferTooSmall (`scratch`).
[[nodiscard]] Result<StreamRejected, Errc> read_stream_rejected(
    Format format, std::span<const std::uint8_t> message, std::span<char> scratch) noexcept;

}  // namespace edgekit::ota
