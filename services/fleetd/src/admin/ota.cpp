// The admin API's OTA routes (fleetd's JSON, after AWS's CreateStream, CreateOTAUpdate and
// GetOTAUpdate): images are uploaded (base64 in JSON, optionally pre-signed with the signer's
// certificate, checked against fleetd's code-signing trust anchors), signed with fleetd's
// code-signing key in its CA's token, put in streams, and rolled out as an update: a job
// `AFR_OTA-<otaUpdateId>` whose document is AWS's `afr_ota` document, through the Jobs service
// (its targets, rollout groups, thresholds and abort criteria are the update's).

#include <asio/post.hpp>
#include <httplib.h>

#include <chrono>

#include "admin/jobs.hpp"
#include "admin/server.hpp"
#include "admin/wire.hpp"
#include "ca/authority.hpp"
#include "http/common.hpp"
#include "jobs/service.hpp"
#include "jobs/wire.hpp"
#include "ota/base64.hpp"
#include "ota/http.hpp"
#include "ota/image.hpp"
#include "ota/signing.hpp"
#include "ota/streams.hpp"
#include "store/ota.hpp"

namespace edgekit::fleetd {
namespace {

using nlohmann::json;
using Req = httplib::Request;
using Resp = httplib::Response;

constexpr std::chrono::milliseconds kTimeout{5000};
/// What the AFR_OTA document names as the signer certificate's path on the device when the
/// update does not say (the FreeRTOS agent reads the key from there or from its own store).
constexpr const char* kDefaultCertFile = "fleetd-code-signing.pem";
/// Default and largest validity of an update's download URLs (see ota/http.hpp).
constexpr std::int64_t kDefaultUrlSeconds = 7 * 86'400;
constexpr std::int64_t kMaxUrlSeconds = 30 * 86'400;

Unexpected<Error> bad(std::string message) {
  return fail(Errc::InvalidArgument, std::move(message));
}

std::string param(const Req& req, std::size_t i) {
  return i < req.matches.size() ? req.matches[i].str() : std::string();
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json image_json(const OtaImage& i) {
  json j{{"name", i.name},         {"version", i.version},   {"deviceType", i.device_type},
         {"size", i.size},         {"sha256", i.sha256},     {"signed", !i.signature.empty()},
         {"createdAt", i.created_at}};
  if (!i.signature.empty()) {
    j["signature"] = i.signature;
    j["certificate"] = i.signer_certificate;
  }
  return j;
}

json stream_json(const OtaStream& s) {
  json files = json::array();
  for (const auto& f : s.files) {
    files.push_back({{"fileId", f.file_id}, {"imageName", f.image_name},
                     {"imageVersion", f.image_version}});
  }
  return {{"streamId", s.stream_id}, {"version", s.version}, {"description", s.description},
          {"blockSize", s.block_size}, {"files", files}, {"createdAt", s.created_at}};
}

Res<std::string> text(const json& j, const char* key, bool required) {
  if (!j.contains(key)) {
    if (required) return bad(std::string(key) + " is required");
    return std::string();
  }
  if (!j[key].is_string()) return bad(std::string(key) + " must be a string");
  return j[key].get<std::string>();
}

// Reads an upload: the image and, when pre-signed, its signature (base64 DER) and certificate.
Res<OtaImage> parse_upload(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return bad("the body must be a JSON object");
  OtaImage image;
  for (auto [out, key, required] :
       {std::tuple{&image.name, "name", true}, {&image.version, "version", true},
        {&image.device_type, "deviceType", false}, {&image.signature, "signature", false},
        {&image.signer_certificate, "certificate", false}}) {
    auto v = text(j, key, required);
    if (!v) return fail(v.error());
    *out = std::move(v.value());
  }
  auto encoded = text(j, "image", true);
  if (!encoded) return fail(encoded.error());
  auto bytes = ota::base64_decode(encoded.value());
  if (!bytes) return bad("image must be the image's bytes in base64");
  image.bytes = std::move(*bytes);
  // An edgekit image says its own version and device type (docs/ota.md), which devices check:
  // the upload must say the same (a device type left out is taken from the header).
  auto header = ota::read_image_header(image.bytes);
  if (!header) return fail(header.error());
  if (header.value()) {
    const ota::ImageHeader& h = *header.value();
    if (image.version != h.version()) {
      return bad("the image's edgekit header says version " + h.version() + ", not " + image.version);
    }
    if (image.device_type.empty()) image.device_type = h.device_type;
    if (image.device_type != h.device_type) {
      return bad("the image's edgekit header says device type " + h.device_type + ", not " +
                 image.device_type);
    }
  }
  image.size = static_cast<std::int64_t>(image.bytes.size());
  image.sha256 = ota::sha256_hex(image.bytes);
  return image;
}

}  // namespace

void AdminServer::upload_image(const Req& req, Resp& res) {
  auto image = parse_upload(req.body);
  if (!image) return answer(res, 400, Res<json>(fail(image.error())));
  if (!image.value().signature.empty() || !image.value().signer_certificate.empty()) {
    // A pre-signed image is accepted only with a signature that verifies, by a code signer
    // that chains to a configured anchor: what devices would refuse, fleetd refuses first.
    const OtaImage& i = image.value();
    if (i.signature.empty() || i.signer_certificate.empty()) {
      return answer(res, 400, Res<json>(bad("a pre-signed image needs signature and certificate")));
    }
    auto der = ota::base64_decode(i.signature);
    if (!der) return answer(res, 400, Res<json>(bad("signature must be base64 (DER)")));
    static const ota::Settings kNone;
    const ota::Settings& s = ota_ ? *ota_ : kNone;
    if (auto v = ota::verify_image_signature(i.bytes, *der, i.signer_certificate, s.anchors,
                                             now_seconds());
        !v) {
      return answer(res, 400, Res<json>(fail(v.error())));
    }
  }
  answer(res, 201, admin::in_store(io_, store_, [image = std::move(image.value())](Tx& tx) -> Res<json> {
    auto r = create_image(tx, image);
    if (!r) return fail(r.error());
    return image_json(r.value());
  }));
}

void AdminServer::list_images(const Req& req, Resp& res) {
  auto p = admin::parse_page(req.get_param_value("limit"), req.get_param_value("next"));
  if (!p) return answer(res, 400, Res<json>(fail(p.error())));
  answer(res, 200, admin::in_store(io_, store_, [p = p.value()](Tx& tx) -> Res<json> {
    auto r = fleetd::list_images(tx, p);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(), [](const OtaImage& i) { return image_json(i); });
  }));
}

void AdminServer::describe_image(const Req& req, Resp& res) {
  answer(res, 200, admin::in_store(io_, store_, [n = param(req, 1), v = param(req, 2)](Tx& tx) -> Res<json> {
    auto r = get_image(tx, n, v, false);
    if (!r) return fail(r.error());
    return image_json(r.value());
  }));
}

void AdminServer::sign_image(const Req& req, Resp& res) {
  if (!ca_) {
    return http::reply_error(res, 404, "not_found",
                             "fleetd has no CA of its own, so no code-signing key");
  }
  // The token and the store are the io thread's: read, sign and record there.
  answer(res, 200, http::run_on(io_, [ca = ca_, store = &store_, n = param(req, 1),
                                      v = param(req, 2)]() -> Res<json> {
    auto image = store->transact([&](Tx& tx) { return get_image(tx, n, v, true); });
    if (!image) return fail(image.error());
    pki::CertificateInfo certificate;
    const std::string& bytes = image.value().bytes;
    auto sig = ca->sign_code(std::span<const std::uint8_t>(
                                 reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
                             now_seconds(), certificate);
    if (!sig) return fail(sig.error());
    const std::string der(reinterpret_cast<const char*>(sig->value.data()), sig->value.size());
    auto r = store->transact([&](Tx& tx) {
      // The signer's certificate with the issuing CA's: a bundle that chains to fleetd's root.
      return set_image_signature(tx, n, v, ota::base64_encode(der),
                                 certificate.pem() + ca->issuing().pem());
    });
    if (!r) return fail(r.error());
    return image_json(r.value());
  }, kTimeout));
}

namespace {

Res<OtaStream> parse_stream(const json& j) {
  if (!j.is_object()) return bad("the body must be a JSON object");
  OtaStream s;
  auto id = text(j, "streamId", true);
  if (!id) return fail(id.error());
  s.stream_id = std::move(id.value());
  auto d = text(j, "description", false);
  if (!d) return fail(d.error());
  s.description = std::move(d.value());
  if (j.contains("blockSize")) {
    if (!j["blockSize"].is_number_integer()) return bad("blockSize must be an integer");
    s.block_size = j["blockSize"].get<std::int64_t>();
  }
  if (!j.contains("files") || !j["files"].is_array()) {
    return bad("files is required: [{\"fileId\":0,\"imageName\":...,\"imageVersion\":...}]");
  }
  for (const json& f : j["files"]) {
    if (!f.is_object() || !f.contains("fileId") || !f["fileId"].is_number_integer()) {
      return bad("each file needs an integer fileId");
    }
    StreamFile file;
    file.file_id = f["fileId"].get<std::int64_t>();
    auto n = text(f, "imageName", true);
    if (!n) return fail(n.error());
    auto v = text(f, "imageVersion", true);
    if (!v) return fail(v.error());
    file.image_name = std::move(n.value());
    file.image_version = std::move(v.value());
    s.files.push_back(std::move(file));
  }
  return s;
}

}  // namespace

void AdminServer::create_stream(const Req& req, Resp& res) {
  auto s = parse_stream(json::parse(req.body, nullptr, false));
  if (!s) return answer(res, 400, Res<json>(fail(s.error())));
  answer(res, 201, admin::in_store(io_, store_, [s = std::move(s.value())](Tx& tx) -> Res<json> {
    auto r = fleetd::create_stream(tx, s);
    if (!r) return fail(r.error());
    return stream_json(r.value());
  }));
}

void AdminServer::list_streams(const Req& req, Resp& res) {
  auto p = admin::parse_page(req.get_param_value("limit"), req.get_param_value("next"));
  if (!p) return answer(res, 400, Res<json>(fail(p.error())));
  answer(res, 200, admin::in_store(io_, store_, [p = p.value()](Tx& tx) -> Res<json> {
    auto r = fleetd::list_streams(tx, p);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(), [](const OtaStream& s) { return stream_json(s); });
  }));
}

void AdminServer::describe_stream(const Req& req, Resp& res) {
  answer(res, 200, admin::in_store(io_, store_, [id = param(req, 1)](Tx& tx) -> Res<json> {
    auto r = get_stream(tx, id);
    if (!r) return fail(r.error());
    return stream_json(r.value());
  }));
}

namespace {

// An update as asked: the image, how devices fetch it, the file's entry in the document, and
// the members of the job (targets, rollout) passed on to the Jobs service as they are.
struct UpdateRequest {
  std::string update_id;
  std::string image_name;
  std::string image_version;
  bool mqtt = true;
  bool http = false;
  std::string stream_id;  ///< empty: a stream of its own, named after the update
  std::int64_t block_size = 4096;
  std::int64_t file_id = 0;
  std::string file_path;
  std::string cert_file = kDefaultCertFile;
  std::int64_t file_type = 0;
  std::int64_t url_seconds = kDefaultUrlSeconds;
  json job;  ///< the CreateJob body, its document still to be written
};

Res<UpdateRequest> parse_update(const json& j) {
  if (!j.is_object()) return bad("the body must be a JSON object");
  UpdateRequest u;
  for (auto [out, key, required] :
       {std::tuple{&u.update_id, "otaUpdateId", true}, {&u.image_name, "imageName", true},
        {&u.image_version, "imageVersion", true}, {&u.stream_id, "streamId", false},
        {&u.file_path, "filePath", false}}) {
    auto v = text(j, key, required);
    if (!v) return fail(v.error());
    *out = std::move(v.value());
  }
  if (j.contains("certFile")) {
    auto c = text(j, "certFile", true);
    if (!c) return fail(c.error());
    u.cert_file = std::move(c.value());
  }
  // The update id becomes part of a job id (1-64 of [a-zA-Z0-9_-]) after "AFR_OTA-".
  if (u.update_id.empty() || u.update_id.size() > 64 - ota::kOtaJobPrefix.size()) {
    return bad("otaUpdateId must be 1-56 characters");
  }
  if (j.contains("protocols")) {
    if (!j["protocols"].is_array() || j["protocols"].empty()) {
      return bad("protocols must be a list of \"MQTT\" and \"HTTP\"");
    }
    u.mqtt = u.http = false;
    for (const json& p : j["protocols"]) {
      if (p == "MQTT") u.mqtt = true;
      else if (p == "HTTP") u.http = true;
      else return bad("protocols must be a list of \"MQTT\" and \"HTTP\"");
    }
  }
  for (auto [out, key, lo, hi] : {std::tuple{&u.block_size, "blockSize", kMinBlockSize, kMaxBlockSize},
                                  {&u.file_id, "fileId", std::int64_t{0}, std::int64_t{255}},
                                  {&u.file_type, "fileType", std::int64_t{0}, std::int64_t{255}},
                                  {&u.url_seconds, "urlExpiresInSeconds", std::int64_t{60}, kMaxUrlSeconds}}) {
    if (!j.contains(key)) continue;
    if (!j[key].is_number_integer() || j[key].get<std::int64_t>() < lo ||
        j[key].get<std::int64_t>() > hi) {
      return bad(std::string(key) + " must be an integer " + std::to_string(lo) + "-" +
                 std::to_string(hi));
    }
    *out = j[key].get<std::int64_t>();
  }
  u.job = json::object();
  for (const char* key : {"targets", "targetSelection", "description", "timeoutConfig",
                          "jobExecutionsRetryConfig", "abortConfig", "jobExecutionsRolloutConfig",
                          "rolloutGroups"}) {
    if (j.contains(key)) u.job[key] = j[key];
  }
  u.job["jobId"] = std::string(ota::kOtaJobPrefix) + u.update_id;
  return u;
}

}  // namespace

void AdminServer::create_update(const Req& req, Resp& res) {
  auto u = parse_update(json::parse(req.body, nullptr, false));
  if (!u) return answer(res, 400, Res<json>(fail(u.error())));
  if (!jobs_) return http::reply_error(res, 404, "not_found", "fleetd runs no jobs service");
  if (u.value().http && (!ota_ || ota_->http_base_url.empty())) {
    return answer(res, 400, Res<json>(bad("HTTP needs fleetd's OTA download endpoint "
                                          "(--ota-http-tls-cert); offer MQTT only")));
  }
  const std::string base_url = ota_ ? ota_->http_base_url : std::string();
  const std::string secret = ota_ ? ota_->url_secret : std::string();
  answer(res, 201, http::run_on(io_, [store = &store_, jobs = jobs_, u = std::move(u.value()),
                                      base_url, secret]() mutable -> Res<json> {
    // The image (signed), and the stream the devices read it from: the one named, or a new one
    // of the update's own.
    auto image = store->transact([&](Tx& tx) { return get_image(tx, u.image_name, u.image_version, false); });
    if (!image) return fail(image.error());
    if (image.value().signature.empty()) {
      return fail(Errc::Conflict, "image '" + u.image_name + "' version '" + u.image_version +
                                      "' is not signed; sign it or upload it pre-signed");
    }
    bool made_stream = false;
    if (u.mqtt) {
      if (u.stream_id.empty()) {
        u.stream_id = u.update_id;
        OtaStream s;
        s.stream_id = u.stream_id;
        s.description = "OTA update " + u.update_id;
        s.block_size = u.block_size;
        s.files = {{u.file_id, u.image_name, u.image_version}};
        auto made = store->transact([&](Tx& tx) { return fleetd::create_stream(tx, s); });
        if (!made) return fail(made.error());
        made_stream = true;
      } else {
        auto s = store->transact([&](Tx& tx) { return get_stream(tx, u.stream_id); });
        if (!s) return fail(s.error());
        bool found = false;
        for (const auto& f : s.value().files) {
          found = found || (f.file_id == u.file_id && f.image_name == u.image_name &&
                            f.image_version == u.image_version);
        }
        if (!found) {
          return bad("stream '" + u.stream_id + "' has no file " + std::to_string(u.file_id) +
                     " of that image");
        }
      }
    }
    // AWS's afr_ota document (aws-iot-protocols.md 2.6).
    json file{{"filesize", image.value().size},
              {"fileid", u.file_id},
              {"certfile", u.cert_file},
              {"fileType", u.file_type},
              {"sig-sha256-ecdsa", image.value().signature}};
    if (!u.file_path.empty()) file["filepath"] = u.file_path;
    if (u.http) {
      file["update_data_url"] = ota::presigned_url(base_url, secret, u.image_name, u.image_version,
                                                   now_seconds() + u.url_seconds);
      file["auth_scheme"] = "aws.s3.presigned";
    }
    json protocols = json::array();
    if (u.mqtt) protocols.push_back("MQTT");
    if (u.http) protocols.push_back("HTTP");
    json afr{{"protocols", protocols}, {"files", json::array({file})}};
    if (u.mqtt) afr["streamname"] = u.stream_id;
    u.job["document"] = json{{"afr_ota", afr}};
    auto job = admin::parse_job(u.job);
    Res<Job> created = job ? jobs->create(job.value()) : Res<Job>(fail(job.error()));
    if (!created) {
      if (made_stream) {
        // The stream was the update's own: it goes with the update that failed.
        (void)store->transact([&](Tx& tx) { return fleetd::delete_stream(tx, u.stream_id); });
      }
      return fail(created.error());
    }
    json out{{"otaUpdateId", u.update_id}, {"jobId", created.value().job_id},
             {"document", json::parse(created.value().document, nullptr, false)}};
    if (u.mqtt) out["streamId"] = u.stream_id;
    return out;
  }, kTimeout));
}

void AdminServer::describe_update(const Req& req, Resp& res) {
  answer(res, 200, admin::in_store(io_, store_, [id = param(req, 1)](Tx& tx) -> Res<json> {
    const std::string job_id = std::string(ota::kOtaJobPrefix) + id;
    auto job = admin::describe_job(tx, job_id);
    if (!job) {
      if (job.error().code == Errc::NotFound) {
        return fail(Errc::NotFound, "OTA update '" + id + "' not found");
      }
      return fail(job.error());
    }
    // Every thing's latest execution, as the device reported it (status and statusDetails:
    // the agent's progress "receive", "self_test", "reason").
    json executions = json::array();
    PageRequest page{"", 1000};
    for (;;) {
      auto r = job_executions(tx, job_id, page, std::nullopt);
      if (!r) return fail(r.error());
      for (const JobExecution& e : r.value().items) executions.push_back(jobs::execution_json(e, nullptr));
      if (r.value().next.empty()) break;
      page.after = r.value().next;
    }
    return json{{"otaUpdateId", id}, {"job", job.value()}, {"executions", executions}};
  }));
}

}  // namespace edgekit::fleetd
