// Fuzzes the OTA job document reader (edgekit::ota, pure): the input is a job document's text,
// read for its first and second file, as text and as an already parsed value.
// Oracles: no read outside the text, the scratch or the signature buffer (ASan); every string
// view lies inside the text or the scratch buffer and the signature inside its buffer; a job
// read has at least one protocol, a valid stream name when MQTT is allowed, a URL when HTTP is,
// a file size above 0 and a file index below the file count; both entry points agree.
#include <array>
#include <edgekit/ota/job_document.hpp>
#include <edgekit/ota/topics.hpp>
#include <string_view>

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
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
    FUZZ_CHECK(f.signature.empty() ||
               (f.signature.data() >= signature.data() &&
                f.signature.data() + f.signature.size() <= signature.data() + signature.size()));
  }
  return 0;
}
