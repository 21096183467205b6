#pragma once
/// \file
/// AWS IoT MQTT-based file delivery on the wire (aws-iot-protocols.md 3): the stream topics,
/// reading GetStream and DescribeStream requests in JSON and CBOR (untrusted bytes: fuzzed by
/// fuzz_fleetd_ota), choosing the blocks a GetStream returns under AWS's limits, and writing the
/// data, description and rejected documents with AWS's single-letter keys. No store, no clock.
///
/// Keys (3.2) are the same in both formats; CBOR is a map with text keys, and the bitmap `b` and
/// the block payload `p` are byte strings there (hex and base64 strings in JSON).
///
/// Thread safety: stateless functions; safe from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgekit::fleetd::ota {

/// The filters fleetd subscribes to (the replies' topics are the devices').
inline constexpr std::string_view kGetFilter = "$aws/things/+/streams/+/get/+";
inline constexpr std::string_view kDescribeFilter = "$aws/things/+/streams/+/describe/+";

enum class Format { Json, Cbor };
enum class Operation { Get, Describe };

/// AWS's stream error codes (3.4), the `o` of a …/rejected document.
enum class ErrorCode {
  InvalidTopic,
  InvalidJson,
  InvalidCbor,
  InvalidRequest,
  Unauthorized,
  BlockSizeOutOfBounds,
  OffsetOutOfBounds,
  BlockCountLimitExceeded,
  BlockBitmapLimitExceeded,
  ResourceNotFound,
  VersionMismatch,
  ETagMismatch,
  InternalError,
};
/// AWS's spelling ("BlockSizeOutOfBounds", ...).
[[nodiscard]] const char* to_string(ErrorCode c) noexcept;

struct Rejection {
  ErrorCode code = ErrorCode::InvalidRequest;
  std::string message;
};

/// A stream topic taken apart; views into the topic.
struct StreamTopic {
  std::string_view thing;
  std::string_view stream_id;
  Operation operation = Operation::Get;
  Format format = Format::Json;
};
/// Reads `$aws/things/{thing}/streams/{streamId}/{get|describe}/{json|cbor}`. nullopt when the
/// topic is not of that shape at all (not answered); a topic of that shape with another format
/// than json or cbor, or a thing or stream id outside AWS's characters, comes back with
/// `rejection` InvalidTopic (answered on …/rejected/json).
struct TopicReading {
  StreamTopic topic;
  std::optional<Rejection> rejection;
};
[[nodiscard]] std::optional<TopicReading> read_topic(std::string_view topic);

/// AWS's limits (3.2-3.4).
inline constexpr std::int64_t kMinBlockSize = 256;
inline constexpr std::int64_t kMaxBlockSize = 131072;
inline constexpr std::int64_t kMaxOffset = 98304;
inline constexpr std::int64_t kMaxBlockCount = 98304;
inline constexpr std::size_t kMaxBitmapBytes = 12287;  ///< "less than 12,288 bytes"
inline constexpr std::int64_t kMaxBytesPerRequest = 131072;
inline constexpr std::size_t kMaxClientToken = 64;

/// A GetStream request (3.2). Only what the request said: defaults are applied by plan_blocks.
struct GetRequest {
  std::optional<std::string> client_token;
  std::optional<std::int64_t> stream_version;  ///< `s`
  std::int64_t file_id = 0;                     ///< `f`, required
  std::int64_t block_size = 0;                  ///< `l`, required
  std::int64_t offset = 0;                      ///< `o`
  std::optional<std::int64_t> count;            ///< `n`
  std::optional<std::string> bitmap;            ///< `b` as bytes
};
struct DescribeRequest {
  std::optional<std::string> client_token;
};

/// What reading a request gave: the request, or the rejection to answer with the client token
/// when the request had a valid one (AWS leaves it out of errors when it is malformed).
template <class T>
struct Reading {
  std::optional<T> request;
  std::optional<Rejection> rejection;
  std::optional<std::string> client_token;
};

/// Reads a GetStream payload. Rejections: InvalidJson / InvalidCbor (not a document of the
/// format), InvalidRequest (not a map; a member of the wrong type; `f` or `l` missing; a client
/// token over 64 bytes; `f` outside 0-255; a JSON bitmap that is not hex), BlockSizeOutOfBounds
/// (`l` outside 256-131072), OffsetOutOfBounds (`o` outside 0-98304), BlockCountLimitExceeded
/// (`n` outside 0-98304), BlockBitmapLimitExceeded (`b` of 12,288 bytes or more).
[[nodiscard]] Reading<GetRequest> read_get(Format format, std::string_view payload);
/// Reads a DescribeStream payload (an empty payload is a request without client token).
/// Rejections: InvalidJson / InvalidCbor, InvalidRequest (not a map, a bad client token).
[[nodiscard]] Reading<DescribeRequest> read_describe(Format format, std::string_view payload);

/// The blocks a GetStream returns from a file of `file_size` bytes, in increasing order: the
/// bitmap's set bits (relative to `o`), else `n` blocks from `o` (`n` 0 or absent: as many as
/// 128 KB holds, AWS's default of 131072 / l); at most `n` and at most 128 KB of block data
/// (the rest is the device's to ask for again), none past the file's end.
/// Rejections: OffsetOutOfBounds (`o` at or past the file's last block), ResourceNotFound (the
/// bitmap names no block of the file).
struct BlockPlan {
  std::vector<std::int64_t> blocks;
  std::optional<Rejection> rejection;
};
[[nodiscard]] BlockPlan plan_blocks(const GetRequest& request, std::int64_t file_size);

/// The bytes of block `block` of `block_size` from `file`; the last block may be shorter.
[[nodiscard]] std::string_view block_bytes(std::string_view file, std::int64_t block_size,
                                           std::int64_t block);

/// One `data` message: {c?, f, l, i, p} (`l` the payload's length).
[[nodiscard]] std::string data_message(Format format, const std::optional<std::string>& client_token,
                                       std::int64_t file_id, std::int64_t block,
                                       std::string_view bytes);
struct DescribedFile {
  std::int64_t file_id = 0;
  std::int64_t size = 0;
};
/// The `description` message: {c?, s, d, r: [{f, z}]}.
[[nodiscard]] std::string description_message(Format format,
                                              const std::optional<std::string>& client_token,
                                              std::int64_t version, std::string_view description,
                                              const std::vector<DescribedFile>& files);
/// The `rejected` message: {o, m, c?}.
[[nodiscard]] std::string rejected_message(Format format, const Rejection& rejection,
                                           const std::optional<std::string>& client_token);

/// `$aws/things/{thing}/streams/{streamId}/{data|description|rejected}/{json|cbor}`.
[[nodiscard]] std::string reply_topic(std::string_view thing, std::string_view stream_id,
                                      std::string_view kind, Format format);

}  // namespace edgekit::fleetd::ota
