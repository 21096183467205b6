#pragma once
/// \file
/// fleetd's Device Shadow service (aws-iot-protocols.md 1): it answers the request topics of
/// classic and named shadows
///   $aws/things/{thing}/shadow/{get|update|delete}
///   $aws/things/{thing}/shadow/name/{shadow}/{get|update|delete}
/// on …/accepted or …/rejected, and after an accepted update publishes …/update/documents and,
/// when the shadow then has a delta, …/update/delta. Every reply is an ordinary broker publish
/// (QoS 1): any client the broker lets subscribe sees it, as on AWS (section 0). Shadows live in
/// the store (store/shadows.hpp), so they survive a restart, and every request is one store
/// transaction (several fleetd instances on PostgreSQL serialise on it).
///
/// Who may touch a thing's shadow is the broker's decision at publish and subscribe time (the
/// plugin applies the device's policies; the default thing policy confines a device to its own
/// thing's topics), so every request that reaches fleetd is answered.
///
/// Throttling (1.7, 1.6): at most `requests_per_second` requests per thing in each one-second
/// window (AWS's default 20); more are rejected 429 "Too many requests". AWS's other 429, more
/// than 10 requests in flight on one connection, cannot arise here: fleetd answers each request
/// before it reads the next.
///
/// The admin API uses the same operations (`get`, `update`, `remove`): an update made there
/// publishes the same accepted, documents and delta messages as a device's.
///
/// Thread safety: none; everything runs on the io_context's thread, as the store and the broker
/// link.

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>

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
  /// timestamps is the store's (`Tx::now`).
  ShadowService(Store& store, Logger& log, Publisher publish, ShadowOptions options = {},
                MonotonicMs now_ms = {});

  /// Answers one message of a request topic (others are ignored, logged). `payload` may be
  /// empty (get, delete) and may end in one NUL byte.
  void handle(std::string_view topic, std::string_view payload);

  /// The operations, for the admin API; `shadow` empty is the classic shadow. They publish
  /// what a device's request would (replies on …/accepted or …/rejected, documents, delta), so
  /// that subscribed devices see an operator's change. Not throttled.
  Answer get(std::string_view thing, std::string_view shadow);
  Answer update(std::string_view thing, std::string_view shadow, std::string_view payload);
  Answer remove(std::string_view thing, std::string_view shadow);

 private:
  enum class Op { Get, Update, Delete };
  Answer run(Op op, std::string_view thing, std::string_view shadow, std::string_view payload);
  bool throttled(std::string_view thing);
  void send(std::string_view thing, std::string_view shadow, std::string_view op,
            std::string_view kind, const nlohmann::json& doc);

  Store& store_;
  Logger& log_;
  Publisher publish_;
  ShadowOptions options_;
  MonotonicMs now_ms_;
  struct Window {
    std::int64_t start_ms = 0;
    unsigned count = 0;
  };
  std::unordered_map<std::string, Window> windows_;
};

}  // namespace edgekit::fleetd::shadow
