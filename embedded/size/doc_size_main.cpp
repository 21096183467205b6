// The device program of the document codecs' size report: what a Shadow, Jobs, OTA and Fleet
// Provisioning device links of edgekit::doc. It reads a shadow delta and writes the reported
// state (JSON), reads a job document (JSON), decodes a base64 OTA block (JSON stream), writes a
// RegisterThing request and reads a CreateKeysAndCertificate response and an OTA stream block
// (CBOR). scripts/size-report reads the linker map to attribute every byte to its part.
//
// It is also a runnable check: under QEMU (mps2-an386) it returns 0 only when every step
// succeeded, and a step number otherwise.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "edgekit/doc/cbor.hpp"
#include "edgekit/doc/json.hpp"

namespace {

using namespace edgekit::doc;

// What the broker sends (the trailing NUL as AWS's C demos send it).
const char kDelta[] =
    R"({"version":12,"timestamp":1700000000,"state":{"color":"r\u00e9d","level":7,)"
    R"("power":true},"metadata":{"color":{"timestamp":1700000000}},"clientToken":"tok-1"})";
const char kJob[] =
    R"({"execution":{"jobId":"job-1","status":"QUEUED","versionNumber":1,"executionNumber":2,)"
    R"("jobDocument":{"operation":"reboot","delays":[1,2,3]}},"timestamp":5})";
const char kOtaJsonBlock[] = R"({"c":"cl","f":0,"l":4,"i":3,"p":"3q2+7w=="})";

int shadow() {
  const auto doc = json::parse(std::string_view(kDelta, sizeof kDelta));  // with its NUL
  if (!doc) return 1;
  const auto version = doc->find("version");
  if (!version || version->as_uint64().value_or(0) != 12) return 2;
  char color[16];
  const auto c = doc->at_path("state.color");
  if (!c || !c->copy_string(color) ||
      !c->equals("r\xc3\xa9"
                 "d"))
    return 3;
  const auto level = doc->at_path("state.level");
  if (!level || level->as_int64().value_or(-1) != 7) return 4;
  // Report back every desired field that is a scalar, and the version it answers.
  char out[256];
  json::Writer w(out);
  w.begin_object().key("state").begin_object().key("reported").begin_object();
  for (const json::Member& m : doc->find("state")->members()) {
    char key[32];
    const auto k = m.key.copy_string(key);
    if (!k) return 5;
    w.key(*k).value(m.value);
  }
  w.end_object().end_object();
  const auto token = doc->find("clientToken");
  if (token && token->as_string_view()) w.member("clientToken", *token->as_string_view());
  w.end_object();
  const auto report = w.finish();
  if (!report || !json::parse(*report)) return 6;
  return 0;
}

int job() {
  const auto doc = json::parse(kJob);
  if (!doc) return 10;
  const auto op = doc->at_path("execution.jobDocument.operation");
  if (!op || op->as_string_view().value_or("") != "reboot") return 11;
  std::int64_t sum = 0;
  for (const json::Value& d : doc->at_path("execution.jobDocument.delays")->elements()) {
    sum += d.as_int64().value_or(0);
  }
  if (sum != 6) return 12;
  const auto block = json::parse(kOtaJsonBlock);
  std::byte data[8];
  if (!block || !block->find("p") || block->find("p")->copy_base64(data)->size() != 4) return 13;
  return 0;
}

int provisioning() {
  // RegisterThing request.
  std::byte request[128];
  cbor::Writer w(request);
  w.begin_object().member("certificateOwnershipToken", "tok").key("parameters").begin_object();
  w.member("SerialNumber", "SN-1").member("Count", 3u).end_object().end_object();
  const auto item = w.finish();
  if (!item) return 20;
  // CreateKeysAndCertificate response (here: written by the device itself, then read).
  std::byte response[256];
  cbor::Writer r(response);
  r.begin_object()
      .member("certificateId", "abc")
      .member("certificatePem", "PEM")
      .member("privateKey", "key")
      .member("certificateOwnershipToken", "tok")
      .end_object();
  const auto bytes = r.finish();
  if (!bytes) return 21;
  const auto doc = cbor::parse(*bytes);
  if (!doc) return 22;
  const auto token = doc->find("certificateOwnershipToken");
  if (!token || token->as_string_view().value_or("") != "tok") return 23;
  const auto again = cbor::parse(*item);
  if (!again || again->at_path("parameters.Count")->as_uint64().value_or(0) != 3) return 24;
  // An OTA stream data block: {"f":0,"i":3,"l":4,"p":h'deadbeef'}.
  static const std::uint8_t kBlock[] = {0xa4, 0x61, 0x66, 0x00, 0x61, 0x69, 0x03, 0x61, 0x6c,
                                        0x04, 0x61, 0x70, 0x44, 0xde, 0xad, 0xbe, 0xef};
  const auto block = cbor::parse(std::as_bytes(std::span(kBlock)));
  if (!block) return 25;
  const auto payload = block->find("p");
  if (!payload || !payload->as_bytes() || payload->as_bytes()->size() != 4) return 26;
  for (const cbor::Member& m : block->members()) {
    if (m.key.equals("i") && m.value.as_int64().value_or(0) != 3) return 27;
  }
  return 0;
}

}  // namespace

int main() {
  if (int step = shadow(); step != 0) return step;
  if (int step = job(); step != 0) return step;
  return provisioning();
}
