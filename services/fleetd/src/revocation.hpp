#pragma once
/// \file
/// Revocation on live connections. When a certificate becomes REVOKED or INACTIVE (or its CA
/// INACTIVE), the broker must drop the connections that use it within seconds: fleetd publishes
/// {"command":"kick","certificate_id":...} on `$CONTROL/edgekit/v1` (QoS 1) through its broker
/// link, and the plugin disconnects every connection presenting that certificate. A reconnect is
/// refused because the plugin asks fleetd again at every connect.
///
/// When the link is down the kick waits and goes out as soon as the link is up again. Kicks sent
/// shortly before the link dropped are sent again too (with a clean session fleetd cannot know
/// whether the broker got them), but only when the certificate is still refused at that moment
/// (`still_refused`), so that a certificate re-activated meanwhile is not disconnected.
///
/// Thread safety: none; runs on the io_context thread that runs the broker link.

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "broker_link.hpp"
#include "log.hpp"

namespace edgekit::fleetd {

class Revoker {
 public:
  /// The control topic the plugin listens to.
  static constexpr const char* kControlTopic = "$CONTROL/edgekit/v1";
  /// How long after sending a kick it is sent again if the link drops.
  static constexpr std::chrono::seconds kResendWindow{30};

  using StillRefused = std::function<bool(const std::string& certificate_id)>;

  /// How soon a kick refused by a full session (many at once: a CA's certificates) is retried.
  static constexpr std::chrono::milliseconds kRetry{50};

  /// `io` is the loop that runs `link`.
  Revoker(asio::io_context& io, BrokerLink& link, Logger& log, StillRefused still_refused);

  /// Disconnects every connection using `certificate_id`: now when the link is up, else when it
  /// comes up.
  void kick(const std::string& certificate_id);
  /// Queues a kick for each of `certificate_ids` (unique, none pending yet: the registry's refused
  /// certificates read at start), sent once the link is up. fleetd keeps no record of the kicks it
  /// has not sent yet, so after a crash it cannot know which revocations never reached the
  /// broker; asserting every refusal again at start closes that gap. A kick for a certificate
  /// that nobody uses costs the plugin one lookup.
  void kick_at_start(std::vector<std::string> certificate_ids);
  /// Call when the link's state changes (BrokerLink::on_state).
  void on_link(bool up);

  /// Kicks waiting for the link.
  [[nodiscard]] std::size_t pending() const noexcept { return pending_.size(); }

 private:
  struct Sent {
    std::string certificate_id;
    std::chrono::steady_clock::time_point at;
  };
  bool send(const std::string& certificate_id);
  void flush();

  BrokerLink& link_;
  Logger& log_;
  asio::steady_timer retry_;
  bool retry_armed_ = false;
  StillRefused still_refused_;
  std::deque<std::string> pending_;
  std::deque<Sent> recent_;
};

}  // namespace edgekit::fleetd
