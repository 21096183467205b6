#pragma once
/// \file
/// fleetd's Device Shadow service (aws-iot-protocols.md 1): it answers the request topics of
/// classic and named shadows
///   $aws/things/{thing}/shadow/{get|update|delete}
///   $aws/things/{thing}/shadow/name/{shadow}/{get|update|delete}
/// on …/accepted or …/rejected, and after an accepted update publishes …/update/documents and,
/// when the shadow then has a delta, …/update/delta. Every reply is an ordinary broker publish
/// (QoS 1): any client the broker lets subscribe sees it, as on AWS (section 0). Shadows live in
/// the store (store/shadows.hpp), so they survive a restart.
///
/// Group commit. fleetd passes no `Defer`: each request is decided as it arrives, inside the
/// broker link's batch (broker_link.hpp), which holds the replies and the request's PUBACK until
/// the batch's one commit. For a caller without such a batch: with a `Defer`, `handle` only
/// queues a request; the queue is worked once the current turn of the loop is over, and every
/// request queued by then (all those the broker link read in one go: in particular those that
/// arrived while the previous commit waited for the disk) is decided in ONE store transaction,
/// one after the other in arrival order, as if alone: each sees the shadows as the requests
/// before it left them, so versions, 409s and deltas are what one request per transaction would
/// give. Their replies are published only after the commit returned: an accepted reply always
/// means the change is stored (one fsync per batch instead of one per update). A batch whose
/// transaction fails is decided again one request per transaction, so a failure answers 500 to
/// the request that caused it only. Without a `Defer` each request is its own transaction,
/// answered before `handle` returns (the unit tests' mode).
///
/// Thread safety: none; everything runs on the io_context's thread, as the store and the broker
/// link.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "edgekit/json/json.hpp"
#include "log.hpp"
#include "shadow/document.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::shadow {

/// The filters fleetd subscribes to: the request topics exactly (a `#` would bring fleetd's own
/// replies back to it).
inline constexpr std::string_view kRequestFilters[] = {
    "$aws/things/+/shadow/get",           "$aws/things/+/shadow/update",
    "$aws/things/+/shadow/delete",        "$aws/things/+/shadow/name/+/get",
    "$aws/things/+/shadow/name/+/update", "$aws/things/+/shadow/name/+/delete"};

/// Publishes `payload` on `topic` through the broker (QoS 1, not private).
using Publisher = std::function<void(const std::string& topic, const std::string& payload)>;
/// Milliseconds of a monotonic clock (the throttle's windows).
using MonotonicMs = std::function<std::int64_t()>;
/// Runs the given function later on the service's thread, after the current event (fleetd:
/// `asio::post` to its io_context). Never calls it from inside `Defer` itself.
using Defer = std::function<void(std::function<void()>)>;

struct ShadowOptions {
  unsigned requests_per_second = 20;  ///< per thing; AWS's default (1.7)
};

/// The answer of one operation: `accepted` says which reply topic, `document` its payload;
/// `status` is the HTTP status of the admin API (200, or the rejection's code).
struct Answer {
  bool accepted = false;
  int status = 200;
  nlohmann::json document;
};

class ShadowService {
 public:
  /// `now_ms` defaults to std::chrono::steady_clock; the wall clock of the documents'
  /// timestamps is the store's (`Tx::now`). `defer` empty: no group commit (see the file
  /// comment). Requests still queued when the service is destroyed are dropped unanswered (as
  /// if fleetd had stopped before reading them: the device retries).
  ShadowService(Store& store, Logger& log, Publisher publish, ShadowOptions options = {},
                MonotonicMs now_ms = {}, Defer defer = {});
  ShadowService(const ShadowService&) = delete;
  ShadowService& operator=(const ShadowService&) = delete;
  ~ShadowService();

  /// Answers one message of a request topic (others are ignored, logged). `payload` may be
  /// empty (get, delete) and may end in one NUL byte; it is copied when the request is queued.
  void handle(std::string_view topic, std::string_view payload);
  /// Decides the queued requests now, in one transaction, and publishes their replies (what the
  /// deferred call does; for tests and the admin operations).
  void flush();
  /// Requests queued, not yet decided.
  [[nodiscard]] std::size_t queued() const noexcept;

  /// The operations, for the admin API; `shadow` empty is the classic shadow. They publish
  /// what a device's request would (replies on …/accepted or …/rejected, documents, delta), so
  /// that subscribed devices see an operator's change. Not throttled.
  Answer get(std::string_view thing, std::string_view shadow);
  Answer update(std::string_view thing, std::string_view shadow, std::string_view payload);
  Answer remove(std::string_view thing, std::string_view shadow);

 private:
  enum class Op { Get, Update, Delete };
  struct Request;
  Answer run(Op op, std::string_view thing, std::string_view shadow, std::string_view payload);
  void decide_all(std::vector<Request>& batch);
  [[nodiscard]] Res<void> commit(std::span<Request*> requests);
  [[nodiscard]] static Res<void> decide(Tx& tx, Request& q);
  void answer(Request& r);
  bool throttled(std::string_view thing);
  void send(std::string_view thing, std::string_view shadow, std::string_view op,
            std::string_view kind, const nlohmann::json& doc);

  Store& store_;
  Logger& log_;
  Publisher publish_;
  ShadowOptions options_;
  MonotonicMs now_ms_;
  Defer defer_;
  std::vector<Request> queue_;
  bool flush_due_ = false;
  // Tells a deferred flush whether its service still exists (it may run after destruction
  // only if the owner's loop outlives the service; fleetd's does not, tests' might).
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  struct Window {
    std::int64_t start_ms = 0;
    unsigned count = 0;
  };
  std::unordered_map<std::string, Window> windows_;
};

}  // namespace edgekit::fleetd::shadow
