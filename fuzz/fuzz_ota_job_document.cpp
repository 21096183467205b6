// Fuzzes the OTA job document reader (edgekit::ota, pure): the input is a job document's text,
// read for its first and second file, as text and as an already parsed value.
// Oracles: no read outside the text, the scratch or the signature buffer (ASan); every string
// view lies inside the text or the scratch buffer and the signature inside its buffer; a job
// read has at least one protocol, a valid stream name when MQTT is allowed, a URL when HTTP is,
// a file size above 0 and a file index below the file count; both entry points agree. The
// decoded signature (and the input itself, as bytes) goes through the DER/raw signature reader:
// what it accepts is 64 bytes of raw signature or strict DER that re-encodes to the same bytes.
#include <array>
#include <cstring>
#include <edgekit/ota/job_document.hpp>
#include <edgekit/ota/signature.hpp>
#include <edgekit/ota/topics.hpp>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"

namespace ota = edgekit::ota;

namespace {

bool inside(std::string_view v, std::string_view text, std::span<const char> scratch) {
  if (v.empty()) return true;
  const bool in_text = v.data() >= text.data() && v.data() + v.size() <= text.data() + text.size();
  const bool in_scratch =
      v.data() >= scratch.data() && v.data() + v.size() <= scratch.data() + scratch.size();
  return in_text || in_scratch;
}

// Re-encodes raw r || s as minimal DER, for the round-trip oracle.
std::vector<std::byte> der_of(std::span<const std::byte, ota::kRawSignatureSize> raw) {
  std::vector<std::byte> out{std::byte{0x30}, std::byte{0}};
  for (std::size_t half = 0; half < 2; ++half) {
    auto v = raw.subspan(half * 32, 32);
    std::size_t skip = 0;
    while (skip < 31 && v[skip] == std::byte{0}) ++skip;
    v = v.subspan(skip);
    const bool pad = (static_cast<std::uint8_t>(v[0]) & 0x80) != 0;
    out.push_back(std::byte{0x02});
    out.push_back(static_cast<std::byte>(v.size() + (pad ? 1 : 0)));
    if (pad) out.push_back(std::byte{0});
    out.insert(out.end(), v.begin(), v.end());
  }
  out[1] = static_cast<std::byte>(out.size() - 2);
  return out;
}

void check_signature(std::span<const std::byte> sig) {
  std::array<std::byte, ota::kRawSignatureSize> raw{};
  if (!ota::raw_p256_signature(sig, raw)) return;
  if (sig.size() == ota::kRawSignatureSize && std::memcmp(sig.data(), raw.data(), 64) == 0) return;
  const auto der = der_of(raw);
  FUZZ_CHECK(der.size() == sig.size() && std::memcmp(der.data(), sig.data(), sig.size()) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_signature(std::as_bytes(std::span(data, size)));
  static std::array<char, 16 * 1024> scratch;
  static std::array<std::byte, ota::kMaxSignatureSize> signature;
  for (std::size_t index : {std::size_t{0}, std::size_t{1}}) {
    auto job = ota::read_ota_job(text, index, scratch, signature);
    if (auto root = edgekit::doc::json::parse(text)) {
      auto again = ota::read_ota_job(*root, index, scratch, signature);
      FUZZ_CHECK(again.has_value() == job.has_value());
      FUZZ_CHECK(again.has_value() || again.error() == job.error());
    }
    if (!job) {
      FUZZ_CHECK(job.error() != ota::Errc::Ok);
      continue;
    }
    FUZZ_CHECK((job->protocols & (ota::kProtocolMqtt | ota::kProtocolHttp)) != 0);
    FUZZ_CHECK((job->protocols & ~(ota::kProtocolMqtt | ota::kProtocolHttp)) == 0);
    if ((job->protocols & ota::kProtocolMqtt) != 0) {
      FUZZ_CHECK(ota::valid_stream_id(job->stream_name));
    }
    if ((job->protocols & ota::kProtocolHttp) != 0) FUZZ_CHECK(!job->file.update_data_url.empty());
    FUZZ_CHECK(index < job->file_count);
    FUZZ_CHECK(job->file.size > 0);
    const ota::OtaFile& f = job->file;
    for (std::string_view v :
         {job->stream_name, f.path, f.cert_file, f.update_data_url, f.auth_scheme}) {
      FUZZ_CHECK(inside(v, text, scratch));
    }
    check_signature(f.signature);
    FUZZ_CHECK(f.signature.empty() ||
               (f.signature.data() >= signature.data() &&
                f.signature.data() + f.signature.size() <= signature.data() + signature.size()));
  }
  return 0;
}
