// Fuzzes the OTA stream readers (edgekit::ota, pure): what a device reads from a stream's
// data, description and rejected topics, in JSON and CBOR, and the topic matcher; the data
// blocks read drive a Download. The first byte picks the format (bit 0) and the download's
// shape (bits 1-3); the rest is the message.
// Oracles: no reader reads outside the message or the caller's buffers (ASan); views lie inside
// the message or those buffers; a data block's payload is as long as its `l`; a rejection's
// errc is the mapping of its code; a description lists no more files than the caller's array;
// a matched topic is rebuilt byte for byte; the Download takes a block once (New, then
// Duplicate), keeps received + missing = block count, and every stream window it asks for lies
// within the service limits and asks only for missing blocks; a GetStream request written with
// the input as its bitmap parses back in its format with the same values.
#include <algorithm>
#include <array>
#include <cstring>
#include <edgekit/doc/either.hpp>
#include <edgekit/ota/download.hpp>
#include <edgekit/ota/stream.hpp>
#include <edgekit/ota/topics.hpp>
#include <string_view>

#include "fuzz_support.hpp"

namespace ota = edgekit::ota;

namespace {

template <class T>
bool inside(std::span<const T> v, const void* base, std::size_t n) {
  if (v.empty()) return true;
  const auto* p = reinterpret_cast<const std::uint8_t*>(v.data());
  const auto* b = static_cast<const std::uint8_t*>(base);
  return p >= b && p + v.size_bytes() <= b + n;
}

bool inside_any(std::string_view v, std::span<const std::uint8_t> message,
                std::span<const char> scratch) {
  const std::span<const char> s(v.data(), v.size());
  return inside(s, message.data(), message.size()) || inside(s, scratch.data(), scratch.size());
}

void check_topic(std::string_view t) {
  auto m = ota::match_stream_topic(t);
  if (!m) return;
  std::array<char, ota::kMaxTopicLength> buf{};
  auto again = ota::stream_topic(m->thing, m->stream_id, m->kind, m->format, buf);
  FUZZ_CHECK(again.has_value() && *again == t);
}

// Writes a GetStream request with `bitmap` and reads it back.
void check_get_stream(ota::Format format, std::span<const std::uint8_t> bitmap) {
  ota::GetStreamRequest r;
  r.client_token = "rdy";
  r.file_id = 3;
  r.block_size = 1024;
  r.offset = 7;
  r.block_count =
      static_cast<std::uint32_t>(std::min<std::size_t>(bitmap.size(), ota::kMaxBlockOffset));
  r.bitmap = bitmap.first(std::min(bitmap.size(), ota::kMaxBitmapBytes));
  static std::array<std::uint8_t, 2 * ota::kMaxBitmapBytes + 128> out;
  auto n = ota::write_get_stream_request(format, r, out);
  FUZZ_CHECK(n.has_value());
  auto ok = edgekit::doc::read_object(
      format == ota::Format::Cbor, std::span<const std::uint8_t>(out).first(*n),
      ota::Errc::MalformedMessage, [&](const auto& root) -> edgekit::Result<bool, ota::Errc> {
        FUZZ_CHECK(root.find("c")->equals("rdy"));
        FUZZ_CHECK(*root.find("f")->as_uint64() == 3 && *root.find("l")->as_uint64() == 1024);
        FUZZ_CHECK(*root.find("o")->as_uint64() == 7);
        FUZZ_CHECK(*root.find("n")->as_uint64() == r.block_count);
        FUZZ_CHECK(root.find("b").has_value() == !r.bitmap.empty());
        return true;
      });
  FUZZ_CHECK(ok.has_value());
}

void check_download(ota::Download& d, const ota::DataBlock& block) {
  const std::uint32_t before = d.received_blocks();
  auto first = d.accept(block, 0);
  if (first) {
    FUZZ_CHECK(d.received_blocks() == before + (*first == ota::BlockOutcome::New ? 1 : 0));
    auto second = d.accept(block, 0);
    FUZZ_CHECK(second && *second == ota::BlockOutcome::Duplicate);
  } else {
    FUZZ_CHECK(d.received_blocks() == before);
  }
  std::uint32_t missing = 0;
  for (std::uint32_t i = 0; i < d.block_count(); ++i) missing += d.missing(i) ? 1 : 0;
  FUZZ_CHECK(missing + d.received_blocks() == d.block_count());
  if (d.complete()) return;
  std::array<std::uint8_t, 64> window{};
  auto w = d.next_stream_request(1 + block.block_id % 300, window);
  FUZZ_CHECK(w.has_value());
  FUZZ_CHECK(w->offset <= ota::kMaxBlockOffset && w->block_count >= 1);
  FUZZ_CHECK(w->block_count * d.block_size() <= ota::kMaxBytesPerRequest);
  std::uint32_t asked = 0;
  for (std::uint32_t k = 0; k < w->bitmap.size() * 8; ++k) {
    if ((w->bitmap[k / 8] & (1u << (k % 8))) == 0) continue;
    FUZZ_CHECK(d.missing(w->offset + k));
    ++asked;
  }
  FUZZ_CHECK(asked == w->block_count);
  auto r = d.next_range(block.block_id);
  FUZZ_CHECK(r.has_value() && r->block_count >= 1 && d.missing(r->first_block));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  check_topic(std::string_view(reinterpret_cast<const char*>(data), size));
  const ota::Format format = (data[0] & 1) != 0 ? ota::Format::Cbor : ota::Format::Json;
  const std::span<const std::uint8_t> message(data + 1, size - 1);
  static std::array<char, 16 * 1024> scratch;
  static std::array<std::byte, 128 * 1024> block;

  // A small download whose shape the first byte picks: 1-8 blocks of 256 bytes, the last short.
  const std::uint32_t blocks = 1 + ((data[0] >> 1) & 7);
  std::array<std::uint8_t, 1> bitmap{};
  auto download = ota::Download::start(blocks * 256 - (data[0] >> 4), 256, bitmap);
  FUZZ_CHECK(download.has_value());

  if (auto d = ota::read_data(format, message, block, scratch)) {
    FUZZ_CHECK(inside_any(d->client_token, message, scratch));
    FUZZ_CHECK(inside(d->payload, message.data(), message.size()) ||
               inside(d->payload, block.data(), block.size()));
    check_download(*download, *d);
  }
  std::array<ota::StreamFile, 8> files{};
  if (auto d = ota::read_description(format, message, files, scratch)) {
    FUZZ_CHECK(d->file_count <= files.size());
    FUZZ_CHECK(inside_any(d->client_token, message, scratch));
    FUZZ_CHECK(inside_any(d->description, message, scratch));
    for (std::size_t i = 0; i < d->file_count; ++i) FUZZ_CHECK(files[i].file_id <= 255);
  }
  if (auto r = ota::read_stream_rejected(format, message, scratch)) {
    FUZZ_CHECK(r->errc == ota::stream_errc(r->code) && ota::is_rejection(r->errc));
    FUZZ_CHECK(!r->code.empty());
    for (std::string_view v : {r->code, r->message, r->client_token}) {
      FUZZ_CHECK(inside_any(v, message, scratch));
    }
  }
  check_get_stream(format, message);
  return 0;
}
