// fleetd's MQTT-based file delivery: its readers of a device's stream topics and GetStream /
// DescribeStream payloads in JSON and CBOR (untrusted bytes, ota/wire.hpp). The first byte picks
// the reader: bit 0 set reads the rest as a topic; else bit 1 picks CBOR over JSON and bit 2
// DescribeStream over GetStream. Oracles: no crash or hang; every rejection has a message and its
// document writes; an accepted GetStream keeps AWS's limits, and the blocks planned for it (for a
// file size taken from the input) are increasing, inside the file, at most n and at most 128 KB,
// and each one's data message writes in the request's format.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ota/wire.hpp"

namespace o = edgekit::fleetd::ota;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    auto t = o::read_topic(rest);
    if (!t) return 0;
    if (t->rejection) {
      if (t->rejection->code != o::ErrorCode::InvalidTopic || t->rejection->message.empty()) {
        std::abort();
      }
      return 0;
    }
    if (t->topic.thing.empty() || t->topic.thing.size() > 128 || t->topic.stream_id.empty()) {
      std::abort();
    }
    return 0;
  }
  const o::Format format = (data[0] & 2) ? o::Format::Cbor : o::Format::Json;
  if (data[0] & 4) {
    auto r = o::read_describe(format, rest);
    if (!r.request) {
      if (!r.rejection || r.rejection->message.empty()) std::abort();
      if (o::rejected_message(format, *r.rejection, r.client_token).empty()) std::abort();
      return 0;
    }
    if (r.request->client_token && r.request->client_token->size() > o::kMaxClientToken) {
      std::abort();
    }
    if (o::description_message(format, r.client_token, 1, "d", {{0, 1}}).empty()) std::abort();
    return 0;
  }
  auto r = o::read_get(format, rest);
  if (!r.request) {
    if (!r.rejection || r.rejection->message.empty()) std::abort();
    if (o::rejected_message(format, *r.rejection, r.client_token).empty()) std::abort();
    return 0;
  }
  const o::GetRequest& g = *r.request;
  if (g.client_token && g.client_token->size() > o::kMaxClientToken) std::abort();
  if (g.file_id < 0 || g.file_id > 255) std::abort();
  if (g.block_size < o::kMinBlockSize || g.block_size > o::kMaxBlockSize) std::abort();
  if (g.offset < 0 || g.offset > o::kMaxOffset) std::abort();
  if (g.count && (*g.count < 0 || *g.count > o::kMaxBlockCount)) std::abort();
  if (g.bitmap && (g.bitmap->empty() || g.bitmap->size() > o::kMaxBitmapBytes)) std::abort();
  // A file of up to 24 MB, its size from the request's own bytes.
  const std::int64_t file_size = 1 + static_cast<std::int64_t>(size * 7919) % (24 << 20);
  const o::BlockPlan plan = o::plan_blocks(g, file_size);
  if (plan.rejection) return plan.rejection->message.empty() ? (std::abort(), 0) : 0;
  if (plan.blocks.empty()) std::abort();
  const auto total = (file_size + g.block_size - 1) / g.block_size;
  std::int64_t previous = -1;
  for (std::int64_t b : plan.blocks) {
    if (b <= previous || b < g.offset || b >= total) std::abort();
    previous = b;
  }
  const auto n = static_cast<std::int64_t>(plan.blocks.size());
  if (g.count && *g.count > 0 && n > *g.count) std::abort();
  if (n * g.block_size > o::kMaxBytesPerRequest) std::abort();
  const std::string block(static_cast<std::size_t>(g.block_size), 'x');
  if (o::data_message(format, g.client_token, g.file_id, plan.blocks.back(), block).empty()) {
    std::abort();
  }
  return 0;
}
