// fleetd's Device Shadow service: requests in, one store transaction each, replies out.

#include "shadow/service.hpp"

#include <utility>

#include "edgekit/shadow/topics.hpp"
#include "store/shadows.hpp"

namespace edgekit::fleetd::shadow {
namespace {

using nlohmann::json;

std::int64_t wall_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string_view op_name(int op) {
  return op == 0 ? "get" : op == 1 ? "update" : "delete";
}

// A stored record as the document model's shadow. The store holds only what this service wrote;
// text that does not read as objects is a damaged row and answered as an internal failure.
std::optional<Shadow> shadow_of(const ShadowRecord& r) {
  Shadow s;
  s.state = json::parse(r.state, nullptr, false);
  s.metadata = json::parse(r.metadata, nullptr, false);
  s.version = r.version;
  if (!s.state.is_object() || !s.metadata.is_object()) return std::nullopt;
  return s;
}

Answer rejection(const Rejection& r, std::int64_t now) {
  return Answer{false, r.code, rejected(r, now)};
}

}  // namespace

ShadowService::ShadowService(Store& store, Logger& log, Publisher publish, ShadowOptions options,
                             MonotonicMs now_ms)
    : store_(store),
      log_(log),
      publish_(std::move(publish)),
      options_(options),
      now_ms_(now_ms ? std::move(now_ms) : MonotonicMs(&steady_ms)) {}

void ShadowService::handle(std::string_view topic, std::string_view payload) {
  auto m = ::edgekit::shadow::match_topic(topic);
  if (!m || m.value().kind != ::edgekit::shadow::TopicKind::Request) {
    log_.warn("shadow.unexpected_topic", {{"topic", topic}});
    return;
  }
  const auto& t = m.value();
  const Op op = t.op == ::edgekit::shadow::Operation::Get      ? Op::Get
                : t.op == ::edgekit::shadow::Operation::Update ? Op::Update
                                                               : Op::Delete;
  if (throttled(t.thing)) {
    // The token is still echoed when it can be read, so that the SDKs' correlation sees it.
    std::optional<std::string> token;
    if (op == Op::Update) {
      if (auto u = parse_update(payload)) token = u.value().client_token;
    } else if (auto g = parse_token_request(payload)) {
      token = g.value().client_token;
    }
    log_.warn("shadow.throttled", {{"thing", t.thing}, {"shadow", t.shadow}});
    send(t.thing, t.shadow, op_name(static_cast<int>(op)), "rejected",
         rejected(Rejection{429, std::string(msg::kTooManyRequests), token}, wall_now()));
    return;
  }
  (void)run(op, t.thing, t.shadow, payload);
}

Answer ShadowService::get(std::string_view thing, std::string_view shadow) {
  return run(Op::Get, thing, shadow, {});
}
Answer ShadowService::update(std::string_view thing, std::string_view shadow,
                             std::string_view payload) {
  return run(Op::Update, thing, shadow, payload);
}
Answer ShadowService::remove(std::string_view thing, std::string_view shadow) {
  return run(Op::Delete, thing, shadow, {});
}

Answer ShadowService::run(Op op, std::string_view thing, std::string_view shadow,
                          std::string_view payload) {
  const std::string_view name = op_name(static_cast<int>(op));
  if (!::edgekit::shadow::valid_thing_name(thing) ||
      (!shadow.empty() && !::edgekit::shadow::valid_shadow_name(shadow))) {
    // Only the admin API can ask this (the broker's topics carry valid names): no topic to
    // answer on, so nothing is published.
    return rejection(Rejection{400, "invalid thing or shadow name", std::nullopt}, wall_now());
  }
  Answer answer;
  std::optional<json> delta;
  std::optional<json> documents;
  std::optional<std::string> token;
  std::optional<UpdateRequest> update;
  if (op == Op::Update) {
    auto u = parse_update(payload);
    if (!u)
      answer = rejection(u.error(), wall_now());
    else
      update = std::move(u.value());
  } else if (auto g = parse_token_request(payload); !g) {
    answer = rejection(g.error(), wall_now());
  } else {
    token = g.value().client_token;
  }
  if (answer.document.is_null()) {
    if (update) token = update->client_token;
    auto done = store_.transact([&](Tx& tx) -> Res<void> {
      // A rerun (Busy) starts from nothing: whatever an earlier attempt decided is dropped.
      delta.reset();
      documents.reset();
      auto rec = get_shadow(tx, thing, shadow);
      if (!rec) return fail(rec.error());
      std::optional<Shadow> existing;
      const bool live = rec.value() && !rec.value()->deleted;
      if (live) {
        existing = shadow_of(*rec.value());
        if (!existing) return fail(Errc::StoreCorrupt, "shadow record unreadable");
      }
      if (op == Op::Get || op == Op::Delete) {
        if (!existing) {
          answer = rejection(not_found(thing, shadow, token), tx.now());
          return {};
        }
        if (op == Op::Get) {
          answer = Answer{true, 200, get_accepted(*existing, tx.now(), token)};
          return {};
        }
        ShadowRecord gone{
            std::string(thing), std::string(shadow), "{}", "{}", existing->version, true, 0};
        if (auto p = put_shadow(tx, gone); !p) return p;
        answer = Answer{true, 200, delete_accepted(existing->version, tx.now(), token)};
        return {};
      }
      const std::int64_t last = rec.value() ? rec.value()->version : 0;
      auto applied = apply_update(existing, last, *update, tx.now());
      if (!applied) {
        answer = rejection(applied.error(), tx.now());
        return {};
      }
      Applied& a = applied.value();
      ShadowRecord r{std::string(thing),
                     std::string(shadow),
                     to_payload(a.current.state),
                     to_payload(a.current.metadata),
                     a.current.version,
                     false,
                     0};
      if (auto p = put_shadow(tx, r); !p) return p;
      answer = Answer{true, 200, std::move(a.accepted)};
      documents = std::move(a.documents);
      delta = std::move(a.delta);
      return {};
    });
    if (!done) {
      log_.error(
          "shadow.store_failed",
          {{"thing", thing}, {"shadow", shadow}, {"op", name}, {"error", done.error().message}});
      answer = rejection(Rejection{500, std::string(msg::kInternal), token}, wall_now());
      delta.reset();
      documents.reset();
    }
  }
  send(thing, shadow, name, answer.accepted ? "accepted" : "rejected", answer.document);
  if (delta) send(thing, shadow, name, "delta", *delta);
  if (documents) send(thing, shadow, name, "documents", *documents);
  log_.log(answer.accepted ? LogLevel::Info : LogLevel::Warn,
           answer.accepted ? "shadow.accepted" : "shadow.rejected",
           {{"thing", thing},
            {"shadow", shadow},
            {"op", name},
            {"code", answer.status},
            {"version", answer.document.value("version", std::int64_t{0})}});
  return answer;
}

bool ShadowService::throttled(std::string_view thing) {
  const std::int64_t now = now_ms_();
  if (windows_.size() > 10'000) {
    // Forget the windows that ended: the map stays as large as the things active this second.
    std::erase_if(windows_, [now](const auto& w) { return now - w.second.start_ms >= 1000; });
  }
  Window& w = windows_[std::string(thing)];
  if (now - w.start_ms >= 1000) w = Window{now, 0};
  return ++w.count > options_.requests_per_second;
}

void ShadowService::send(std::string_view thing, std::string_view shadow, std::string_view op,
                         std::string_view kind, const json& doc) {
  std::string topic = "$aws/things/" + std::string(thing) + "/shadow/";
  if (!shadow.empty()) topic += "name/" + std::string(shadow) + "/";
  topic += std::string(op) + "/" + std::string(kind);
  publish_(topic, to_payload(doc));
}

}  // namespace edgekit::fleetd::shadow
