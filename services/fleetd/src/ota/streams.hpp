#pragma once
/// \file
/// fleetd's MQTT-based file delivery (aws-iot-protocols.md 3): answers a device's
///   $aws/things/{thing}/streams/{streamId}/describe/{json|cbor}   DescribeStream
///   $aws/things/{thing}/streams/{streamId}/get/{json|cbor}        GetStream
/// on `…/description/…`, `…/data/…` (one message per block) or `…/rejected/…` in the request's
/// format, PRIVATELY to the requesting client through the plugin's reply-to marker, as the Jobs
/// service answers: a stream's blocks reach the device that asked and no one else, even a device
/// whose policy lets it read the same topics.
///
/// Who may read a stream (fleetd's decision; AWS leaves it to the stream's IAM role):
/// - the thing the plugin stamped on the request must be the topic's thing, else Unauthorized
///   (a policy may grant a device another thing's topics; it still gets no other thing's data);
/// - the thing must have a QUEUED or IN_PROGRESS execution of an OTA job (`AFR_OTA-…`) whose
///   document names the stream (`afr_ota.streamname`), else ResourceNotFound — the same answer
///   as for a stream that does not exist, so that a device learns nothing of other streams.
///
/// Image bytes are read from the store once and kept in memory (up to kCacheBytes, keyed by the
/// image's SHA-256), their SHA-256 checked at that read: bytes that do not match what the
/// upload recorded are refused with ETagMismatch (AWS's code for a changed S3 object).
///
/// Thread safety: everything runs on the io_context's thread, as the store and the broker link.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "log.hpp"
#include "ota/wire.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::ota {

/// One request as the broker link delivered it (views valid during `handle`).
struct StreamRequest {
  std::string_view topic;
  std::string_view payload;
  std::string_view client_id;   ///< x-edgekit-client-id; empty: not stamped, not answered
  std::string_view thing_name;  ///< x-edgekit-thing-name
};

/// Publishes privately to `client_id` (QoS 1).
using Publisher = std::function<void(const std::string& topic, const std::string& payload,
                                     std::string_view client_id)>;

/// The prefix of OTA job ids (aws-iot-protocols.md 2.6).
inline constexpr std::string_view kOtaJobPrefix = "AFR_OTA-";

/// Whether `thing` has a pending (QUEUED or IN_PROGRESS) OTA job whose document names
/// `stream_id`. Errors: the store's.
[[nodiscard]] Res<bool> stream_targets(Tx& tx, std::string_view thing, std::string_view stream_id);

class StreamsService {
 public:
  /// Decoded images kept in memory at most (the oldest read is dropped first).
  static constexpr std::size_t kCacheBytes = 64 * 1024 * 1024;

  StreamsService(Store& store, Logger& log, Publisher publish);
  StreamsService(const StreamsService&) = delete;
  StreamsService& operator=(const StreamsService&) = delete;

  /// Answers one device request (or logs and ignores a message that is none).
  void handle(const StreamRequest& request);

 private:
  struct Answer;
  Answer answer(const StreamTopic& topic, std::string_view payload, std::string_view thing);
  /// The image's bytes (cached); nullptr with `rejection` set when they cannot be had.
  std::shared_ptr<const std::string> bytes_of(const std::string& name, const std::string& version,
                                              const std::string& sha256, Rejection& rejection);

  Store& store_;
  Logger& log_;
  Publisher publish_;
  std::map<std::string, std::shared_ptr<const std::string>> cache_;  // by SHA-256
  std::size_t cached_bytes_ = 0;
};

}  // namespace edgekit::fleetd::ota
