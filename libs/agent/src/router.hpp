#pragma once
// The subscription router: one route per subscribed filter (a fixed table, its filter characters
// in one block taken at construction), matched by MQTT 5 subscription identifier (index + 1)
// when the server supports them, else by filter. Core thread only.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "edgekit/agent/agent.hpp"
#include "edgekit/mqtt/codec.hpp"

namespace edgekit::agent::detail {

inline constexpr std::uint32_t kNone = 0xFFFF'FFFFu;

/// What a route is doing.
enum class RouteState : std::uint8_t {
  Free,
  Pending,      ///< installed, its first SUBACK not yet granted
  Active,       ///< granted by the broker
  Resubscribe,  ///< granted once, but the broker lost the session and has not granted it again
                ///< yet: made again on the next connection, whatever its session_present
};

struct Route {
  RouteState state = RouteState::Free;
  std::uint32_t id = 0;  // subscription identifier (MQTT 5): index + 1
  std::uint16_t filter_length = 0;
  // The SUBSCRIBE / UNSUBSCRIBE outstanding for this filter (at most one), its command's slot
  // (kNone: a resubscription of the agent's own) and when it is given up.
  std::uint16_t request_id = 0;
  std::uint32_t request_slot = kNone;
  Instant request_deadline{};
  mqtt::SubscribeOptions options{};
  MessageHandler handler{};
  [[nodiscard]] bool used() const noexcept { return state != RouteState::Free; }
  /// Granted at some point (made again after a lost session).
  [[nodiscard]] bool granted() const noexcept {
    return state == RouteState::Active || state == RouteState::Resubscribe;
  }
};

class Router {
 public:
  Router(std::size_t capacity, std::size_t max_filter_length)
      : routes_(new Route[capacity == 0 ? 1 : capacity]),
        chars_(new char[(capacity == 0 ? 1 : capacity) * max_filter_length]),
        capacity_(capacity),
        max_filter_(max_filter_length) {
    for (std::size_t i = 0; i < capacity_; ++i) routes_[i].id = static_cast<std::uint32_t>(i + 1);
  }

  [[nodiscard]] std::size_t size() const noexcept { return capacity_; }
  Route& operator[](std::size_t i) noexcept { return routes_[i]; }
  const Route& operator[](std::size_t i) const noexcept { return routes_[i]; }

  [[nodiscard]] std::string_view filter(const Route& r) const noexcept {
    return {chars_.get() + (r.id - 1) * max_filter_, r.filter_length};
  }

  Route* find(std::string_view filter) noexcept {
    for (std::size_t i = 0; i < capacity_; ++i) {
      if (routes_[i].used() && this->filter(routes_[i]) == filter) return &routes_[i];
    }
    return nullptr;
  }

  /// A free route holding `filter` (state Pending), or nullptr when the table is full.
  Route* add(std::string_view filter) noexcept {
    for (std::size_t i = 0; i < capacity_; ++i) {
      Route& r = routes_[i];
      if (r.used()) continue;
      std::memcpy(chars_.get() + i * max_filter_, filter.data(), filter.size());
      r.filter_length = static_cast<std::uint16_t>(filter.size());
      r.state = RouteState::Pending;
      return &r;
    }
    return nullptr;
  }

  static void remove(Route& r) noexcept {
    r.state = RouteState::Free;
    r.handler = {};
  }

  /// Hands `m` to the handlers it is for: by subscription identifier when `use_ids` and the
  /// message carries them, else by filter. The table changes during a handler call only through
  /// the command queue, never directly, so iterating is safe.
  void route(const mqtt::Publish& m, bool use_ids) noexcept {
    bool delivered = false;
#if EDGEKIT_MQTT_ENABLE_V5  // without MQTT 5, Properties is empty
    if (use_ids) {
      for (std::uint32_t id : m.properties.subscription_identifiers) {
        if (id == 0 || id > capacity_) continue;
        Route& r = routes_[id - 1];
        if (r.used() && r.handler.function != nullptr) {
          r.handler.function(r.handler.context, m);
          delivered = true;
        }
      }
    }
#else
    (void)use_ids;
#endif
    if (delivered) return;
    // No identifier (3.1.1, or a server without them): match the filters.
    for (std::size_t i = 0; i < capacity_; ++i) {
      Route& r = routes_[i];
      if (r.used() && r.handler.function != nullptr && mqtt::topic_matches(filter(r), m.topic)) {
        r.handler.function(r.handler.context, m);
      }
    }
  }

 private:
  std::unique_ptr<Route[]> routes_;
  std::unique_ptr<char[]> chars_;
  std::size_t capacity_;
  std::size_t max_filter_;
};

}  // namespace edgekit::agent::detail
