// fleetd's Device Shadow service: requests in, one store transaction per batch, replies out.

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

// One request on its way through a batch: what arrived, what parsing found before the store
// was asked, and the outcome (replies are made from it after the commit).
struct ShadowService::Request {
  Op op = Op::Get;
  std::string thing;
  std::string shadow;
  std::optional<UpdateRequest> update;  // op Update, parsed
  std::optional<std::string> token;
  // Decided: before the transaction (a rejection of the request itself, throttling), or by it.
  bool decided = false;
  Answer answer;
  std::optional<json> delta;
  std::optional<json> documents;
  std::string failure;  // an internal failure's cause, for the log (answer: 500)

  // Parses the payload; a request that cannot be valid is decided here, without the store.
  void prepare(std::string_view payload) {
    if (op == Op::Update) {
      auto u = parse_update(payload);
      if (!u) {
        settle(rejection(u.error(), wall_now()));
        return;
      }
      update = std::move(u.value());
      token = update->client_token;
    } else if (auto g = parse_token_request(payload); !g) {
      settle(rejection(g.error(), wall_now()));
    } else {
      token = g.value().client_token;
    }
  }
  void settle(Answer a) {
    answer = std::move(a);
    decided = true;
  }
  // Starts over: a rerun of the transaction (Busy) decides from nothing.
  void reset() {
    answer = Answer{};
    delta.reset();
    documents.reset();
    failure.clear();
  }
  void fail_internally(std::string why, std::int64_t now) {
    reset();
    answer = rejection(Rejection{500, std::string(msg::kInternal), token}, now);
    failure = std::move(why);
  }
};

// One request decided inside the batch's transaction, as it would be alone. A record this
// service cannot read fails this request only (nothing was written for it), not the batch.
Res<void> ShadowService::decide(Tx& tx, Request& q) {
  q.reset();
  auto rec = get_shadow(tx, q.thing, q.shadow);
  if (!rec) return fail(rec.error());
  std::optional<Shadow> existing;
  const bool live = rec.value() && !rec.value()->deleted;
  if (live) {
    existing = shadow_of(*rec.value());
    if (!existing) {
      q.fail_internally("shadow record unreadable", tx.now());
      return {};
    }
  }
  if (q.op == Op::Get || q.op == Op::Delete) {
    if (!existing) {
      q.answer = rejection(not_found(q.thing, q.shadow, q.token), tx.now());
      return {};
    }
    if (q.op == Op::Get) {
      q.answer = Answer{true, 200, get_accepted(*existing, tx.now(), q.token)};
      return {};
    }
    ShadowRecord gone{q.thing, q.shadow, "{}", "{}", existing->version, true, 0};
    if (auto p = put_shadow(tx, gone); !p) return p;
    q.answer = Answer{true, 200, delete_accepted(existing->version, tx.now(), q.token)};
    return {};
  }
  const std::int64_t last = rec.value() ? rec.value()->version : 0;
  auto applied = apply_update(existing, last, *q.update, tx.now());
  if (!applied) {
    q.answer = rejection(applied.error(), tx.now());
    return {};
  }
  Applied& a = applied.value();
  ShadowRecord r{q.thing,
                 q.shadow,
                 to_payload(a.current.state),
                 to_payload(a.current.metadata),
                 a.current.version,
                 false,
                 0};
  if (auto p = put_shadow(tx, r); !p) return p;
  q.answer = Answer{true, 200, std::move(a.accepted)};
  q.documents = std::move(a.documents);
  q.delta = std::move(a.delta);
  return {};
}

ShadowService::ShadowService(Store& store, Logger& log, Publisher publish, ShadowOptions options,
                             MonotonicMs now_ms, Defer defer)
    : store_(store),
      log_(log),
      publish_(std::move(publish)),
      options_(options),
      now_ms_(now_ms ? std::move(now_ms) : MonotonicMs(&steady_ms)),
      defer_(std::move(defer)) {}

ShadowService::~ShadowService() { *alive_ = false; }

void ShadowService::handle(std::string_view topic, std::string_view payload) {
  auto m = ::edgekit::shadow::match_topic(topic);
  if (!m || m.value().kind != ::edgekit::shadow::TopicKind::Request) {
    log_.warn("shadow.unexpected_topic", {{"topic", topic}});
    return;
  }
  const auto& t = m.value();
  Request q;
  q.op = t.op == ::edgekit::shadow::Operation::Get      ? Op::Get
         : t.op == ::edgekit::shadow::Operation::Update ? Op::Update
                                                        : Op::Delete;
  q.thing = std::string(t.thing);
  q.shadow = std::string(t.shadow);
  q.prepare(payload);
  if (throttled(t.thing)) {
    // The token is still echoed when it could be read, so that the SDKs' correlation sees it.
    log_.warn("shadow.throttled", {{"thing", t.thing}, {"shadow", t.shadow}});
    q.settle(rejection(Rejection{429, std::string(msg::kTooManyRequests), q.token}, wall_now()));
  }
  queue_.push_back(std::move(q));
  if (!defer_) {
    flush();
    return;
  }
  if (flush_due_) return;
  flush_due_ = true;
  defer_([this, alive = alive_] {
    if (*alive) flush();
  });
}

std::size_t ShadowService::queued() const noexcept { return queue_.size(); }

void ShadowService::flush() {
  flush_due_ = false;
  if (queue_.empty()) return;
  std::vector<Request> batch;
  batch.swap(queue_);
  decide_all(batch);
  for (Request& q : batch) answer(q);
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
  if (!::edgekit::shadow::valid_thing_name(thing) ||
      (!shadow.empty() && !::edgekit::shadow::valid_shadow_name(shadow))) {
    // Only the admin API can ask this (the broker's topics carry valid names): no topic to
    // answer on, so nothing is published.
    return rejection(Rejection{400, "invalid thing or shadow name", std::nullopt}, wall_now());
  }
  // The device requests that arrived before this one go first.
  flush();
  std::vector<Request> one(1);
  one[0].op = op;
  one[0].thing = std::string(thing);
  one[0].shadow = std::string(shadow);
  one[0].prepare(payload);
  decide_all(one);
  answer(one[0]);
  return std::move(one[0].answer);
}

void ShadowService::decide_all(std::vector<Request>& batch) {
  std::vector<Request*> open;
  for (Request& q : batch) {
    if (!q.decided) open.push_back(&q);
  }
  if (open.empty()) return;
  if (commit(open) || open.size() == 1) return;
  // The batch failed as a whole (rolled back): decide each alone, so that only the request
  // that cannot be stored is answered 500.
  log_.warn("shadow.batch_failed", {{"requests", static_cast<std::int64_t>(open.size())}});
  for (Request* q : open) (void)commit(std::span<Request*>(&q, 1));
}

Res<void> ShadowService::commit(std::span<Request*> requests) {
  auto done = store_.transact([&](Tx& tx) -> Res<void> {
    for (Request* q : requests) {
      if (auto r = decide(tx, *q); !r) return r;
    }
    return {};
  });
  if (!done && requests.size() == 1) {
    requests[0]->fail_internally(done.error().message, wall_now());
  }
  return done;
}

void ShadowService::answer(Request& q) {
  const std::string_view name = op_name(static_cast<int>(q.op));
  if (!q.failure.empty()) {
    log_.error("shadow.store_failed",
               {{"thing", q.thing}, {"shadow", q.shadow}, {"op", name}, {"error", q.failure}});
  }
  const Answer& a = q.answer;
  send(q.thing, q.shadow, name, a.accepted ? "accepted" : "rejected", a.document);
  if (q.delta) send(q.thing, q.shadow, name, "delta", *q.delta);
  if (q.documents) send(q.thing, q.shadow, name, "documents", *q.documents);
  log_.log(a.accepted ? LogLevel::Info : LogLevel::Warn,
           a.accepted ? "shadow.accepted" : "shadow.rejected",
           {{"thing", q.thing},
            {"shadow", q.shadow},
            {"op", name},
            {"code", a.status},
            {"version", a.document.value("version", std::int64_t{0})}});
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
