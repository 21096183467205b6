// Seeds for fuzz_json and fuzz_cbor, written by fuzz_seeds: AWS IoT documents (shadow, jobs,
// fleet provisioning, an OTA stream block) and the edge cases of the unit tests, the CBOR ones
// encoded by edgekit::doc's own writer.
#include <cstdint>
#include <string_view>
#include <vector>

#include "edgekit/doc/cbor.hpp"
#include "edgekit/doc/json.hpp"
#include "support.hpp"  // libs/doc/test: copy_value

#include "seeds.hpp"

namespace edgekit::fuzz {
namespace {

using namespace std::string_view_literals;
using Seed = std::vector<std::uint8_t>;
using WriteSeed = void (*)(const char*, const Seed&);

Seed bytes(std::string_view s) {
  return Seed(s.begin(), s.end());
}

constexpr std::string_view kJson[] = {
    R"({"state":{"desired":{"color":"red","power":true,"level":7}},"version":42,"clientToken":"t1"})",
    R"({"state":{"reported":{"temp":21}},"metadata":{"reported":{"temp":{"timestamp":1700000000}}},"version":3,"timestamp":1700000001})",
    R"({"code":400,"message":"Invalid JSON","clientToken":"c"})",
    R"({"execution":{"jobId":"job-1","status":"QUEUED","queuedAt":1,"versionNumber":1,"executionNumber":2,"jobDocument":{"operation":"reboot","steps":[1,2,3]}},"timestamp":5})",
    R"({"jobs":{"QUEUED":[{"jobId":"a","queuedAt":1},{"jobId":"b","queuedAt":2}]},"timestamp":9})",
    R"({"certificateId":"abc","certificatePem":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n","privateKey":"k","certificateOwnershipToken":"tok"})",
    R"({"certificateOwnershipToken":"tok","parameters":{"SerialNumber":"SN-1","Count":"3"}})",
    R"({"deviceConfiguration":{},"thingName":"thing-1"})",
    R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s1","files":[{"filepath":"/f","filesize":1024,"fileid":0,"certfile":"c","sig-sha256-ecdsa":"MEUCIQ=="}]}})",
    R"(["\"\\\/\b\f\n\r\t","\u00e9\ud83d\ude00","\u0000"])",
    R"([0,-0,1.5e+10,-1E-2,9223372036854775807,-9223372036854775808,18446744073709551615,18446744073709551616])",
    R"({"a":{"b":{"c":{"d":{"e":[[[[[]]]]]}}}}})",
    "{\"a\":1}\0"sv,  // with the NUL AWS's C demos send
    "[1,]",
    "01",
    R"("\ud800")",
    R"({"a":1,"a":2})",
    "\"\xc0\xaf\"",
    "[1 2]",
    "1\0\0"sv,
};

void json_seeds(WriteSeed write) {
  for (const std::string_view s : kJson) write("fuzz_json", bytes(s));
}

Seed item(const doc::cbor::Writer& w) {  // the finished item's bytes
  const auto out = w.finish();
  if (!out) return {};
  Seed s;
  for (const std::byte b : *out) s.push_back(static_cast<std::uint8_t>(b));
  return s;
}

void cbor_seeds(WriteSeed write) {
  // Every JSON seed the reader accepts, as CBOR.
  for (const std::string_view s : kJson) {
    const auto doc = doc::json::parse(s, {.max_depth = doc::kMaxParseDepth});
    if (!doc) continue;
    std::byte buf[4096];
    doc::cbor::Writer w(buf);
    if (doc::test::copy_value(*doc, w)) write("fuzz_cbor", item(w));
  }
  // An OTA stream data block (the response to a GetStream request) and a request.
  const std::byte block[] = {std::byte{0xde}, std::byte{0xad}, std::byte{0xbe}, std::byte{0xef}};
  std::byte buf[512];
  doc::cbor::Writer ota(buf);
  ota.begin_object()
      .member("f", 0)
      .member("i", 3)
      .member("l", 4)
      .member("p", std::span<const std::byte>(block))
      .end_object();
  write("fuzz_cbor", item(ota));
  doc::cbor::Writer req(buf);
  req.begin_object()
      .member("c", "client")
      .member("f", 0)
      .member("l", 1024)
      .member("o", 0)
      .member("n", 1)
      .key("b")
      .bytes(block)
      .end_object();
  write("fuzz_cbor", item(req));
  doc::cbor::Writer keys(buf);
  keys.begin_object()
      .member("certificateId", "abc")
      .member("certificatePem", "PEM")
      .member("privateKey", "key")
      .member("certificateOwnershipToken", "tok")
      .end_object();
  write("fuzz_cbor", item(keys));
  doc::cbor::Writer misc(buf);
  misc.begin_array()
      .int64(INT64_MIN)
      .uint64(UINT64_MAX)
      .int64(-25)
      .uint64(24)
      .boolean(true)
      .boolean(false)
      .null()
      .string("\xc3\xbc")
      .bytes({})
      .begin_object()
      .end_object();
  for (int k = 0; k < 25; ++k) misc.int64(k);
  misc.end_array();
  write("fuzz_cbor", item(misc));
  // Refused forms: non-preferred, indefinite, tag, float, duplicate key, non-text key.
  for (const Seed& s :
       {Seed{0x18, 0x17}, Seed{0x9f, 0xff}, Seed{0xc2, 0x41, 0x01}, Seed{0xf9, 0x3c, 0x00},
        Seed{0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02}, Seed{0xa1, 0x01, 0x02},
        Seed{0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}) {
    write("fuzz_cbor", s);
  }
}

}  // namespace

void doc_seeds(WriteSeed write) {
  json_seeds(write);
  cbor_seeds(write);
}

}  // namespace edgekit::fuzz
