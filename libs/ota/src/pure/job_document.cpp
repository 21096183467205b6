// The afr_ota job document (aws-iot-protocols.md 2.6), keys exactly as the FreeRTOS OTA agent
// reads them.
#include "edgekit/ota/job_document.hpp"

#include "edgekit/ota/topics.hpp"

namespace edgekit::ota {
namespace {

using doc::json::Value;

// A string member read in place or unescaped into the front of `scratch` (which then shrinks).
// Absent: empty, unless `required`. `error` for a wrong type, no room, or a missing required one.
Result<std::string_view, Errc> string_member(const Value& object, std::string_view key,
                                             bool required, Errc error,
                                             std::span<char>& scratch) noexcept {
  auto v = object.find(key);
  if (!v) {
    if (required) return fail(error);
    return std::string_view{};
  }
  if (!v->is_string()) return fail(error);
  if (auto view = v->as_string_view()) return *view;
  auto copied = v->copy_string(scratch);
  if (!copied) return fail(error);
  scratch = scratch.subspan(copied->size());
  return *copied;
}

// An unsigned integer member in [min, max]; absent: `fallback`, unless `required`.
Result<std::uint32_t, Errc> uint_member(const Value& object, std::string_view key, bool required,
                                        std::uint32_t min, std::uint32_t max, Errc error,
                                        std::uint32_t fallback = 0) noexcept {
  auto v = object.find(key);
  if (!v) {
    if (required) return fail(error);
    return fallback;
  }
  auto n = v->as_uint64();
  if (!n || *n < min || *n > max) return fail(error);
  return static_cast<std::uint32_t>(*n);
}

Result<std::uint8_t, Errc> read_protocols(const Value& ota) noexcept {
  auto list = ota.find("protocols");
  if (!list || !list->is_array()) return fail(Errc::InvalidProtocols);
  std::uint8_t bits = 0;
  for (const Value& p : list->elements()) {
    if (p.equals("MQTT")) {
      bits |= kProtocolMqtt;
    } else if (p.equals("HTTP")) {
      bits |= kProtocolHttp;
    } else {
      return fail(Errc::InvalidProtocols);
    }
  }
  if (bits == 0) return fail(Errc::InvalidProtocols);
  return bits;
}

Result<OtaFile, Errc> read_file(const Value& f, std::uint8_t protocols, std::span<char>& scratch,
                                std::span<std::byte> signature) noexcept {
  if (!f.is_object()) return fail(Errc::InvalidFiles);
  OtaFile out;
  auto path = string_member(f, "filepath", false, Errc::InvalidFilePath, scratch);
  if (!path) return fail(path.error());
  out.path = *path;
  auto size = uint_member(f, "filesize", true, 1, 0xFFFFFFFFu, Errc::InvalidFileSize);
  if (!size) return fail(size.error());
  out.size = *size;
  auto id = uint_member(f, "fileid", true, 0, 255, Errc::InvalidFileId);
  if (!id) return fail(id.error());
  out.id = static_cast<std::uint8_t>(*id);
  auto cert = string_member(f, "certfile", false, Errc::InvalidCertFile, scratch);
  if (!cert) return fail(cert.error());
  out.cert_file = *cert;
  if (auto sig = f.find("sig-sha256-ecdsa")) {
    auto bytes = sig->copy_base64(signature);
    if (!bytes) return fail(Errc::InvalidSignature);
    out.signature = *bytes;
  }
  auto attr = uint_member(f, "attr", false, 0, 0xFFFFFFFFu, Errc::InvalidAttr);
  if (!attr) return fail(attr.error());
  out.attr = *attr;
  auto type = uint_member(f, "fileType", false, 0, 255, Errc::InvalidFileType);
  if (!type) return fail(type.error());
  out.file_type = static_cast<std::uint8_t>(*type);
  auto url = string_member(f, "update_data_url", (protocols & kProtocolHttp) != 0,
                           Errc::InvalidUpdateDataUrl, scratch);
  if (!url) return fail(url.error());
  if ((protocols & kProtocolHttp) != 0 && url->empty()) return fail(Errc::InvalidUpdateDataUrl);
  out.update_data_url = *url;
  auto scheme = string_member(f, "auth_scheme", false, Errc::InvalidAuthScheme, scratch);
  if (!scheme) return fail(scheme.error());
  out.auth_scheme = *scheme;
  return out;
}

}  // namespace

Result<OtaJob, Errc> read_ota_job(const Value& job_document, std::size_t file_index,
                                  std::span<char> scratch,
                                  std::span<std::byte> signature) noexcept {
  if (!job_document.is_object()) return fail(Errc::MalformedJobDocument);
  auto ota = job_document.find("afr_ota");
  if (!ota) return fail(Errc::NotOtaJob);
  if (!ota->is_object()) return fail(Errc::MalformedJobDocument);
  OtaJob job;
  auto protocols = read_protocols(*ota);
  if (!protocols) return fail(protocols.error());
  job.protocols = *protocols;
  auto stream = string_member(*ota, "streamname", (job.protocols & kProtocolMqtt) != 0,
                              Errc::InvalidStreamName, scratch);
  if (!stream) return fail(stream.error());
  // Present, the name must be usable as a topic level (it goes into every stream topic).
  if (!stream->empty() || (job.protocols & kProtocolMqtt) != 0) {
    if (!valid_stream_id(*stream)) return fail(Errc::InvalidStreamName);
  }
  job.stream_name = *stream;
  auto files = ota->find("files");
  if (!files || !files->is_array()) return fail(Errc::InvalidFiles);
  bool found = false;
  for (const Value& f : files->elements()) {
    // Every entry is an object, whichever one is read: a document of the agent's shape.
    if (!f.is_object()) return fail(Errc::InvalidFiles);
    if (job.file_count == file_index) {
      auto file = read_file(f, job.protocols, scratch, signature);
      if (!file) return fail(file.error());
      job.file = *file;
      found = true;
    }
    ++job.file_count;
  }
  if (!found) return fail(Errc::InvalidFiles);
  return job;
}

Result<OtaJob, Errc> read_ota_job(std::string_view text, std::size_t file_index,
                                  std::span<char> scratch,
                                  std::span<std::byte> signature) noexcept {
  auto root = doc::json::parse(text);
  if (!root) return fail(Errc::MalformedJobDocument);
  return read_ota_job(*root, file_index, scratch, signature);
}

}  // namespace edgekit::ota
