// MQTT-based file delivery (ota/streams.hpp): a request is read, checked against the store in
// one transaction, and answered with one message per block, each published privately.

#include "ota/streams.hpp"

#include <span>
#include <vector>

#include "edgekit/json/json.hpp"
#include "edgekit/pki/keys.hpp"
#include "store/jobs.hpp"
#include "store/ota.hpp"

namespace edgekit::fleetd::ota {
namespace {

using nlohmann::json;

Rejection not_found(std::string_view stream_id) {
  return {ErrorCode::ResourceNotFound, "stream '" + std::string(stream_id) + "' not found"};
}

}  // namespace

Res<bool> stream_targets(Tx& tx, std::string_view thing, std::string_view stream_id) {
  auto pending = pending_executions(tx, thing);
  if (!pending) return fail(pending.error());
  for (const JobExecution& e : pending.value()) {
    if (!e.job_id.starts_with(kOtaJobPrefix)) continue;
    auto job = get_job(tx, e.job_id);
    if (!job) return fail(job.error());
    const json doc = json::parse(job.value().document, nullptr, false);
    if (!doc.is_object() || !doc.contains("afr_ota") || !doc["afr_ota"].is_object()) continue;
    const json& ota = doc["afr_ota"];
    if (ota.contains("streamname") && ota["streamname"].is_string() &&
        ota["streamname"].get<std::string>() == stream_id) {
      return true;
    }
  }
  return false;
}

struct StreamsService::Answer {
  std::optional<Rejection> rejection;
  std::optional<std::string> client_token;
  std::string description;  // a describe's whole message
  // A get's blocks: the file's bytes and which blocks of what size.
  std::shared_ptr<const std::string> file;
  std::int64_t file_id = 0;
  std::int64_t block_size = 0;
  std::vector<std::int64_t> blocks;
};

StreamsService::StreamsService(Store& store, Logger& log, Publisher publish)
    : store_(store), log_(log), publish_(std::move(publish)) {}

std::shared_ptr<const std::string> StreamsService::bytes_of(const std::string& name,
                                                            const std::string& version,
                                                            const std::string& sha256,
                                                            Rejection& rejection) {
  if (auto it = cache_.find(sha256); it != cache_.end()) return it->second;
  auto image = store_.transact([&](Tx& tx) { return get_image(tx, name, version, true); });
  if (!image) {
    rejection = {ErrorCode::InternalError, "the image could not be read"};
    log_.error("ota.image_unreadable", {{"image", name}, {"version", version},
                                        {"error", image.error().message}});
    return nullptr;
  }
  const std::string& bytes = image.value().bytes;
  const std::string actual = pki::sha256_hex(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  if (actual != sha256) {
    rejection = {ErrorCode::ETagMismatch, "the image's bytes do not match its recorded SHA-256"};
    log_.error("ota.image_damaged", {{"image", name}, {"version", version}});
    return nullptr;
  }
  while (!cache_.empty() && cached_bytes_ + bytes.size() > kCacheBytes) {
    cached_bytes_ -= cache_.begin()->second->size();
    cache_.erase(cache_.begin());
  }
  auto shared = std::make_shared<const std::string>(std::move(image.value().bytes));
  cached_bytes_ += shared->size();
  cache_[sha256] = shared;
  return shared;
}

StreamsService::Answer StreamsService::answer(const StreamTopic& topic, std::string_view payload,
                                              std::string_view thing) {
  Answer a;
  std::optional<GetRequest> get;
  if (topic.operation == Operation::Get) {
    auto r = read_get(topic.format, payload);
    a.client_token = r.client_token;
    if (r.rejection) {
      a.rejection = std::move(r.rejection);
      return a;
    }
    get = std::move(r.request);
  } else {
    auto r = read_describe(topic.format, payload);
    a.client_token = r.client_token;
    if (r.rejection) {
      a.rejection = std::move(r.rejection);
      return a;
    }
  }
  if (thing != topic.thing) {
    a.rejection = Rejection{ErrorCode::Unauthorized,
                            "a thing may read streams on its own topics only"};
    return a;
  }
  // The stream, the caller's right to it and the file's image, in one transaction.
  std::optional<OtaImage> image;
  auto checked = store_.transact([&](Tx& tx) -> Res<OtaStream> {
    auto stream = get_stream(tx, topic.stream_id);
    if (!stream) return fail(stream.error());
    auto targeted = stream_targets(tx, topic.thing, topic.stream_id);
    if (!targeted) return fail(targeted.error());
    if (!targeted.value()) return fail(Errc::NotFound, "not targeted");
    if (!get) {
      std::vector<DescribedFile> files;
      for (const StreamFile& f : stream.value().files) {
        auto i = get_image(tx, f.image_name, f.image_version, false);
        if (!i) return fail(i.error());
        files.push_back({f.file_id, i.value().size});
      }
      a.description = description_message(topic.format, a.client_token, stream.value().version,
                                          stream.value().description, files);
      return stream;
    }
    for (const StreamFile& f : stream.value().files) {
      if (f.file_id != get->file_id) continue;
      auto i = get_image(tx, f.image_name, f.image_version, false);
      if (!i) return fail(i.error());
      image = std::move(i.value());
    }
    return stream;
  });
  if (!checked) {
    if (checked.error().code == Errc::NotFound) {
      a.rejection = not_found(topic.stream_id);
    } else {
      a.rejection = Rejection{ErrorCode::InternalError, "the stream could not be read"};
      log_.error("ota.store_failed", {{"stream", topic.stream_id}, {"error", checked.error().message}});
    }
    return a;
  }
  if (!get) return a;
  if (get->stream_version && *get->stream_version != checked.value().version) {
    a.rejection = Rejection{ErrorCode::VersionMismatch,
                            "the stream's version is " + std::to_string(checked.value().version)};
    return a;
  }
  if (!image) {
    a.rejection = Rejection{ErrorCode::ResourceNotFound,
                            "stream '" + std::string(topic.stream_id) + "' has no file " +
                                std::to_string(get->file_id)};
    return a;
  }
  BlockPlan plan = plan_blocks(*get, image->size);
  if (plan.rejection) {
    a.rejection = std::move(plan.rejection);
    return a;
  }
  Rejection why;
  a.file = bytes_of(image->name, image->version, image->sha256, why);
  if (!a.file) {
    a.rejection = std::move(why);
    return a;
  }
  a.file_id = get->file_id;
  a.block_size = get->block_size;
  a.blocks = std::move(plan.blocks);
  return a;
}

void StreamsService::handle(const StreamRequest& rq) {
  auto reading = read_topic(rq.topic);
  if (!reading) {
    log_.warn("ota.not_a_request", {{"topic", rq.topic}});
    return;
  }
  if (rq.client_id.empty()) {
    // Without the plugin's stamps the sender is unknown: a private reply has no addressee.
    log_.warn("ota.unstamped_request", {{"topic", rq.topic}});
    return;
  }
  const StreamTopic& t = reading->topic;
  // The reply's topic names the thing and stream of the request even when they are invalid:
  // it is the device's own topic, which is all it may read.
  if (reading->rejection) {
    publish_(reply_topic(t.thing, t.stream_id, "rejected", Format::Json),
             rejected_message(Format::Json, *reading->rejection, std::nullopt), rq.client_id);
    return;
  }
  Answer a = answer(t, rq.payload, rq.thing_name);
  if (a.rejection) {
    log_.info("ota.rejected", {{"thing", t.thing},
                               {"stream", t.stream_id},
                               {"code", to_string(a.rejection->code)},
                               {"message", a.rejection->message}});
    publish_(reply_topic(t.thing, t.stream_id, "rejected", t.format),
             rejected_message(t.format, *a.rejection, a.client_token), rq.client_id);
    return;
  }
  if (t.operation == Operation::Describe) {
    publish_(reply_topic(t.thing, t.stream_id, "description", t.format), a.description,
             rq.client_id);
    return;
  }
  const std::string topic = reply_topic(t.thing, t.stream_id, "data", t.format);
  for (std::int64_t block : a.blocks) {
    publish_(topic,
             data_message(t.format, a.client_token, a.file_id, block,
                          block_bytes(*a.file, a.block_size, block)),
             rq.client_id);
  }
}

}  // namespace edgekit::fleetd::ota
