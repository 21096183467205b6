// Seeds for fuzz_ota_job_document (job documents as AWS and fleetd write them, and near misses)
// and fuzz_ota_stream (data, description and rejected messages in JSON, first byte 0, and CBOR,
// first byte 1, written with edgekit::doc's CBOR writer; the first byte's other bits pick the
// download's shape, 0x0e: 8 blocks of 256 bytes).
#include <array>
#include <cstdint>
#include <edgekit/doc/cbor.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "seeds.hpp"

namespace edgekit::fuzz {
namespace {

using Seed = std::vector<std::uint8_t>;

Seed text(std::string_view t) {
  return Seed(t.begin(), t.end());
}

Seed json(std::uint8_t first, std::string_view t) {
  Seed s{first};
  s.insert(s.end(), t.begin(), t.end());
  return s;
}

template <class F>
Seed cbor(std::uint8_t first, F&& fill) {
  static std::array<std::byte, 4096> buf;
  doc::cbor::Writer w(buf);
  fill(w);
  Seed s{first};
  if (auto done = w.finish()) {
    for (std::byte b : *done) s.push_back(static_cast<std::uint8_t>(b));
  }
  return s;
}

}  // namespace

// Declared in seeds.hpp; seeds.cpp calls it.
void ota_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&)) {
  const char* j = "fuzz_ota_job_document";
  write(
      j,
      text(
          R"({"afr_ota":{"protocols":["MQTT"],"streamname":"AFR_OTA-1b2c3d","files":[)"
          R"({"filepath":"/fw","filesize":181,"fileid":0,"certfile":"codesign.crt",)"
          R"("sig-sha256-ecdsa":"MEUCIQDxRKbd1Hp5fL2sKd2y5AUmJ8WvZL9ZKk6bKb7V0QH4BwIgPDRz3kM0TQmKdlgx0bL+6bP6u6j3hXb6m3S8o0cH0p8=",)"
          R"("attr":0,"fileType":0}]}})"));
  write(
      j,
      text(
          R"({"afr_ota":{"protocols":["MQTT","HTTP"],"streamname":"s-1","files":[)"
          R"({"filepath":"\/a\/b","filesize":4096,"fileid":1,"update_data_url":"https:\/\/h\/f?x=1",)"
          R"("auth_scheme":"aws.s3.presigned"},{"filesize":10,"fileid":2,"update_data_url":"u"}]}})"));
  // A DER signature alone (the reader's other input): r with a leading zero, s short.
  {
    Seed der{0x30, 38, 0x02, 33, 0x00, 0x80};
    der.insert(der.end(), 31, 0x11);
    der.insert(der.end(), {0x02, 1, 0x05});
    write(j, der);
  }
  write(
      j,
      text(
          R"({"afr_ota":{"protocols":["HTTP"],"files":[{"filesize":1,"fileid":255,"update_data_url":"u"}]}})"));
  write(j, text(R"({"operation":"install","afr_ota":{"protocols":["FTP"],"files":[]}})"));
  write(
      j,
      text(
          R"({"afr_ota":{"protocols":["MQTT"],"streamname":"a/b","files":[{"filesize":0,"fileid":256}]}})"));

  const char* s = "fuzz_ota_stream";
  const std::string block = std::string(340, 'A') + "AA==";  // base64 of 256 zero bytes
  write(s, json(0x0e, std::string(R"({"c":"rdy","f":0,"l":256,"i":3,"p":")") + block + R"("})"));
  write(s, json(0x0e, R"({"f":0,"l":241,"i":7,"p":")" + std::string(320, 'A') + R"(AAA="})"));
  write(s, json(0x00, R"({"c":"d","s":2,"d":"fw","r":[{"f":0,"z":181},{"f":1,"z":9}]})"));
  write(s, json(0x00, R"({"o":"ResourceNotFound","m":"no stream","c":"rdy"})"));
  write(s, json(0x00, R"({"code":"InvalidRequest","clientToken":"x"})"));
  write(s, text("$aws/things/lamp-1/streams/AFR_OTA-42/data/cbor"));
  write(s, cbor(0x0f, [](auto& w) {
          static const std::array<std::byte, 256> payload{};
          w.begin_object()
              .member("f", 0)
              .member("l", 256)
              .member("i", 5)
              .member("p", payload)
              .end_object();
        }));
  write(s, cbor(0x01, [](auto& w) {
          w.begin_object().member("c", "d").member("s", 1).key("r").begin_array();
          w.begin_object().member("f", 0).member("z", 1000).end_object();
          w.end_array().end_object();
        }));
  write(s, cbor(0x01, [](auto& w) {
          w.begin_object().member("o", "BlockSizeOutOfBounds").member("m", "l").end_object();
        }));
}

}  // namespace edgekit::fuzz
