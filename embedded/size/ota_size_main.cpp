// The device program of the OTA size measurement: what a device links of edgekit::ota_pure to
// take an OTA job and download its file over an MQTT stream (aws-iot-protocols.md 2.6, 3). It
// reads the afr_ota job document (with its signature), builds the stream topics and tells which
// topic a message came in on, keeps the block bitmap and asks for windows of missing blocks
// (GetStream in CBOR, the FreeRTOS agent's format, and in JSON), reads data blocks in both
// formats into the download, the description and a rejection, reports progress, and reads and
// checks the image header of the downloaded file; and the HTTP range of the same download; and
// turns the job's DER signature into the raw r || s the token's CKM_ECDSA takes.
//
// Messages arrive in a receive buffer copied byte by byte from a volatile source, so nothing is
// known to the compiler at build time: the image links what a device that gets them from the
// network links. CBOR inputs come from the tests' hand builder (in flash).
//
// It is also a runnable check: under QEMU (mps2-an386) it returns 0 only when every result is
// the expected one, and a step number otherwise.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "edgekit/ota/download.hpp"
#include "edgekit/ota/errc.hpp"
#include "edgekit/ota/image.hpp"
#include "edgekit/ota/job_document.hpp"
#include "edgekit/ota/signature.hpp"
#include "edgekit/ota/stream.hpp"
#include "edgekit/ota/topics.hpp"
#include "edgekit/testing/cbor_builder.hpp"

namespace {

using namespace edgekit::ota;
using namespace std::string_view_literals;
using edgekit::testing::CborBuilder;

// --- Buffers a device keeps (static RAM) ---------------------------------------------------------
std::uint8_t g_message[1024];  // the payload as received
std::uint8_t g_request[256];
char g_topic[kMaxTopicLength];
char g_scratch[256];
std::byte g_signature[kMaxSignatureSize];
std::byte g_block[512];
std::uint8_t g_bitmap[8];  // 64 blocks of 256 bytes at most
std::uint8_t g_window[16];
std::byte g_file[600];  // the "flash" the blocks go to
char g_progress[24];

// Bytes "from the network": read through a volatile pointer, so they are not constants.
std::span<const std::uint8_t> receive(const void* data, std::size_t n) {
  const volatile std::uint8_t* in = static_cast<const std::uint8_t*>(data);
  for (std::size_t i = 0; i < n; ++i) g_message[i] = in[i];
  return {g_message, n};
}
std::span<const std::uint8_t> receive(std::string_view s) {
  return receive(s.data(), s.size());
}
std::string_view receive_text(std::string_view s) {
  auto b = receive(s);
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A job for a 600-byte file: a 64-byte header and 536 bytes of payload (3 blocks of 256). Its
// signature is DER: SEQUENCE { INTEGER 0x80 0x01 (with DER's leading zero), INTEGER 0x05 }.
constexpr std::string_view kJob =
    R"({"afr_ota":{"protocols":["MQTT"],"streamname":"AFR_OTA-42","files":[{"filepath":"fw",)"
    R"("filesize":600,"fileid":0,"certfile":"cs.crt","sig-sha256-ecdsa":"MAgCAwCAAQIBBQ=="}]}})";

int job(OtaJob& out) {
  auto j = read_ota_job(receive_text(kJob), 0, g_scratch, g_signature);
  if (!j || j->stream_name != "AFR_OTA-42"sv || j->file.size != 600 ||
      j->file.signature.size() != 10)
    return 1;
  std::byte raw[kRawSignatureSize];
  if (!raw_p256_signature(j->file.signature, raw) || raw[30] != std::byte{0x80} ||
      raw[31] != std::byte{0x01} || raw[63] != std::byte{0x05})
    return 3;
  out = *j;
  if (read_ota_job(receive_text(R"({"afr_ota":{"protocols":[]}})"), 0, g_scratch, g_signature)
          .error() != Errc::InvalidProtocols)
    return 2;
  return 0;
}

int topics(const OtaJob& j) {
  auto t = stream_topic("lamp-1"sv, j.stream_name, StreamTopic::Get, Format::Cbor, g_topic);
  if (!t || *t != "$aws/things/lamp-1/streams/AFR_OTA-42/get/cbor"sv) return 10;
  auto m = match_stream_topic(receive_text("$aws/things/lamp-1/streams/AFR_OTA-42/data/cbor"sv));
  if (!m || m->kind != StreamTopic::Data || m->format != Format::Cbor) return 11;
  return 0;
}

// One data message in `format` for block `i` of the file image `file` (256-byte blocks).
std::span<const std::uint8_t> data_message(Format format, std::uint32_t i, std::uint32_t len) {
  if (format == Format::Cbor) {
    CborBuilder<300> b;
    b.map(4).text("f").uint(0).text("i").uint(i).text("l").uint(len).text("p").head(2, len);
    for (std::uint32_t k = 0; k < len; ++k) b.raw(static_cast<std::uint8_t>(i + k));
    return receive(b.view().data(), b.size);
  }
  // JSON: base64 of zero bytes ("AAAA" per 3 bytes), for the JSON path's code.
  static char text[512];
  std::size_t n = 0;
  for (char c : R"({"f":0,"i":)"sv) text[n++] = c;
  text[n++] = static_cast<char>('0' + i);
  for (char c : R"(,"l":)"sv) text[n++] = c;
  for (char c : "256"sv) text[n++] = c;
  for (char c : R"(,"p":")"sv) text[n++] = c;
  for (std::size_t k = 0; k < 85; ++k) {
    for (char c : "AAAA"sv) text[n++] = c;
  }
  for (char c : R"(AA=="})"sv) text[n++] = c;
  return receive(text, n);
}

int download(const OtaJob& j) {
  auto d = Download::start(j.file.size, 256, g_bitmap);
  if (!d || d->block_count() != 3) return 20;
  while (!d->complete()) {
    auto w = d->next_stream_request(2, g_window);
    if (!w) return 21;
    GetStreamRequest r;
    r.client_token = "rdy";
    r.file_id = j.file.id;
    r.block_size = 256;
    r.offset = w->offset;
    r.block_count = w->block_count;
    r.bitmap = w->bitmap;
    if (!write_get_stream_request(Format::Cbor, r, g_request)) return 22;
    if (!write_get_stream_request(Format::Json, r, g_request)) return 23;
    for (std::uint32_t k = 0; k < w->block_count; ++k) {
      const std::uint32_t i = w->offset + k;
      const Format f = i == 1 ? Format::Json : Format::Cbor;
      auto block = read_data(f, data_message(f, i, d->block_length(i)), g_block, g_scratch);
      if (!block) return 24;
      auto outcome = d->accept(*block, j.file.id);
      if (!outcome || *outcome != BlockOutcome::New) return 25;
      std::memcpy(g_file + d->block_offset(i), block->payload.data(), block->payload.size());
    }
    if (!d->progress(g_progress)) return 26;
  }
  if (std::string_view(g_progress, 3) != "3/3"sv) return 27;
  // The same bitmap drives HTTP ranges: forget one block and ask for it by range.
  d->forget_block(2);
  auto range = d->next_range(4096);
  if (!range || range->first_byte != 512 || range->byte_count != 88) return 28;
  return 0;
}

int replies() {
  StreamFile files[2];
  CborBuilder<64> desc;
  desc.map(2).text("s").uint(1).text("r").head(4, 1).map(2).text("f").uint(0).text("z").uint(600);
  auto d = read_description(Format::Cbor, receive(desc.view().data(), desc.size), files, g_scratch);
  if (!d || d->file_count != 1 || files[0].size != 600) return 30;
  auto r = read_stream_rejected(
      Format::Json, receive(R"({"o":"ResourceNotFound","m":"no such stream"})"sv), g_scratch);
  if (!r || r->errc != Errc::ResourceNotFound) return 31;
  return 0;
}

int image() {
  ImageHeader h;
  h.version = {2, 0, 1};
  h.device_type = "sensor-v1"sv;
  h.payload_size = 536;
  if (!write_image_header(h, g_file)) return 40;
  auto read = read_image_header(std::span<const std::byte>(g_file));
  if (!read || read->version.packed() != 0x02000001u) return 41;
  if (!check_image(*read, 600, "sensor-v1"sv, {1, 0, 0})) return 42;
  if (check_image(*read, 600, "sensor-v1"sv, {2, 0, 1}).error() != Errc::Downgrade) return 43;
  return 0;
}

}  // namespace

int main() {
  OtaJob j;
  if (int s = job(j)) return s;
  if (int s = topics(j)) return s;
  if (int s = download(j)) return s;
  if (int s = replies()) return s;
  if (int s = image()) return s;
  return 0;
}
