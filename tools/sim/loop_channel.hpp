#pragma once
/// \file
/// `sim::LoopChannel`: a `reqres::Channel` over one `mqtt_asio::Connection` of the event-loop
/// driver, for code running in a `sim::Fibers` fiber — the Shadow, Jobs, OTA and provisioning
/// clients run on it unchanged. A waiting call (subscribe, request, poll, and `connect` /
/// `close` of the connection itself) suspends the calling fiber until the connection's events
/// decide it or its timeout passes; the io_context thread meanwhile drives every other device.
/// `sim::Device` bundles one connection with its session, buffers and channel.
///
/// Semantics, as `reqres::ClientChannel` (channel.hpp):
///   - subscribe: SUBSCRIBE (QoS 1) and wait for the SUBACK: SubscribeFailed when a filter is
///     refused or no SUBACK came within the timeout, NotConnected when the connection ended;
///   - request: publish at QoS 0 (a QoS 1 record would keep pointing at the caller's buffer
///     after a timeout), then wait until the matcher accepts a message on a subscribed filter
///     (copied into the caller's buffer, and wiped where it was received if `wipe_reply`), or
///     Timeout. Every other message goes to the message handler meanwhile. Should the request's
///     bytes still be unwritten when the request returns (a socket full for the whole timeout),
///     the connection is stopped: its engine must not keep a view of the caller's payload;
///   - poll: waits until one unsolicited message was handed to the handler, or the timeout
///     (then Ok, as AgentChannel);
///   - NotConnected at once when the connection is not open, and a waiting call is woken with
///     NotConnected as soon as the connection closes (ConnectionClosed, ServerDisconnected,
///     `on_closed`), not at its timeout; during `Fibers::shutdown` every wait ends with
///     NotConnected too;
///   - one waiting call at a time (Busy otherwise); WouldDeadlock when a waiting call is made
///     outside a fiber of the channel's scheduler — from an Asio handler, or from the message
///     handler, which runs on the io_context's own stack (ClientChannel says Busy there,
///     AgentChannel WouldDeadlock: either way the call is refused, nothing waits).
/// Messages that arrive while no fiber waits (between a device's calls) still reach the
/// message handler, from the connection's handler: nothing is held back.
///
/// Memory: sizeof(LoopChannel) is 120 bytes on x86-64; it allocates nothing. Thread safety: the
/// io_context's thread only (the fibers and the connection's handler run there).
#include <array>
#include <cstddef>
#include <cstdint>
#include <edgekit/mqtt_asio/connection.hpp>
#include <edgekit/reqres/channel.hpp>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>

#include "fiber.hpp"

namespace edgekit::sim {

class LoopChannel final : public reqres::Channel {
 public:
  /// Borrows both; they must outlive the channel. The connection's `Handler` must forward its
  /// events and `on_closed` to `on_event` / `on_closed` (see `Device`).
  LoopChannel(Fibers& fibers, mqtt_asio::Connection& connection) noexcept;
  ~LoopChannel() override = default;
  LoopChannel(const LoopChannel&) = delete;
  LoopChannel& operator=(const LoopChannel&) = delete;

  /// In a fiber: starts the connection (`mqtt_asio::Connection::start`) and waits for the
  /// CONNACK. Errors: the engine's `start` errors, ConnectFailed's (`mqtt::Errc::Timeout`,
  /// ConnectionRefused, TransportError, ...), `mqtt::Errc::NotConnected` when shut down, and
  /// `mqtt::Errc::InvalidArgument` outside a fiber.
  [[nodiscard]] mqtt::Result<void> connect(const mqtt_asio::Endpoint& endpoint,
                                           const mqtt::ConnectOptions& options,
                                           Duration timeout) noexcept;
  /// In a fiber: sends DISCONNECT (or stops the connection after `timeout`) and waits until the
  /// connection is idle again (`on_closed`), so that it may be restarted or destroyed.
  void close(Duration timeout) noexcept;

  /// The connection handler's events and close, forwarded.
  void on_event(const mqtt::Event& event) noexcept;
  void on_closed(std::error_code error) noexcept;

  void set_message_handler(reqres::MessageHandler handler) noexcept override;
  [[nodiscard]] edgekit::Result<void, reqres::Errc> subscribe(std::span<const std::string_view> filters,
                                                     Duration timeout) noexcept override;
  void unsubscribe(std::span<const std::string_view> filters, Duration timeout) noexcept override;
  [[nodiscard]] edgekit::Result<reqres::Reply, reqres::Errc> request(std::string_view topic,
                                                            std::span<const std::uint8_t> payload,
                                                            reqres::Matcher matcher,
                                                            std::span<std::uint8_t> reply,
                                                            Duration timeout) noexcept override;
  [[nodiscard]] edgekit::Result<void, reqres::Errc> poll(Duration timeout) noexcept override;

  [[nodiscard]] mqtt_asio::Connection& connection() noexcept { return *connection_; }

 private:
  enum class Waiting : std::uint8_t { None, Connect, Close, Subscribe, Unsubscribe, Request, Poll };
  enum class Outcome : std::uint8_t { Pending, Done, Failed, Closed };

  // Suspends the calling fiber until outcome_ is decided, `deadline`, or shutdown.
  Outcome wait_until(std::optional<Instant> deadline) noexcept;
  // Ok, or why the call cannot wait: Busy, WouldDeadlock (not in a fiber of `fibers_`).
  reqres::Errc begin(Waiting what) noexcept;
  void end() noexcept;
  void decide(Outcome o) noexcept;
  void closed() noexcept;

  Fibers* fibers_;
  mqtt_asio::Connection* connection_;
  reqres::MessageHandler handler_;
  Fiber* waiter_ = nullptr;
  // The request in flight.
  reqres::Matcher matcher_;
  std::span<std::uint8_t> reply_;
  reqres::Reply result_;
  std::uint64_t unsolicited_ = 0;  // messages handed to the handler (for poll)
  mqtt::Errc connect_error_ = mqtt::Errc::Ok;
  reqres::Errc error_ = reqres::Errc::Ok;
  std::uint16_t packet_id_ = 0;  // the SUBSCRIBE / UNSUBSCRIBE waited for
  Waiting waiting_ = Waiting::None;
  Outcome outcome_ = Outcome::Pending;
  bool in_handler_ = false;  // the message handler runs (its calls are Busy)
};

/// One simulated device's connection: session (with `Records` QoS 1/2 records), receive and
/// send buffers of `Buffer` bytes each (the largest packet either way; PUBLISH payloads are sent
/// from the caller's memory and need no room in the send buffer), the Connection and its
/// LoopChannel. `observer`, when set, sees every event after the channel did (e.g. counters).
/// Memory: sizeof(Device<B, R>) = 2 * B + 448 * R + about 3 KB on x86-64 (Device<1024, 2> is
/// 6,008 B: the Connection 2,560 B with its 2,152 B engine, the Session 240 B, the LoopChannel
/// 120 B, two outgoing records of 448 B, the client id, the two observers; the fleet's
/// Device<2048, 8> is 10,752 B), plus Asio's and the kernel's per-socket state
/// (docs/simulator.md has the measured totals). Lifetime: as a Connection's — destroy it idle
/// (after `close`, or never connected) or after the io_context stopped for good.
template <std::size_t Buffer = 1024, std::size_t Records = 2>
class Device final : public mqtt_asio::Handler {
 public:
  Device(Fibers& fibers, mqtt_asio::Driver& driver) noexcept
      : session_(storage()),
        connection_(driver, session_, rx_, tx_, *this),
        channel_(fibers, connection_) {}
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  [[nodiscard]] LoopChannel& channel() noexcept { return channel_; }
  [[nodiscard]] mqtt_asio::Connection& connection() noexcept { return connection_; }
  [[nodiscard]] mqtt::Session& session() noexcept { return session_; }
  /// Sees each event after the channel (set before connecting).
  std::function<void(const mqtt::Event&)> observer;
  /// Told each `on_closed` after the channel was (e.g. to reconnect); set before connecting.
  std::function<void(std::error_code)> closed_observer;

  void on_event(mqtt_asio::Connection&, const mqtt::Event& event) override {
    channel_.on_event(event);
    if (observer) observer(event);
  }
  void on_closed(mqtt_asio::Connection&, std::error_code error) override {
    channel_.on_closed(error);
    if (closed_observer) closed_observer(error);
  }

 private:
  mqtt::SessionStorage storage() noexcept {
    mqtt::SessionStorage s;
    s.outgoing = outgoing_;
    s.incoming_qos2 = incoming_qos2_;
    s.client_id = client_id_;
    return s;
  }

  std::array<mqtt::OutgoingRecord, Records> outgoing_{};
  std::array<std::uint16_t, Records> incoming_qos2_{};
  std::array<char, 64> client_id_{};
  std::array<std::byte, Buffer> rx_{};
  std::array<std::byte, Buffer> tx_{};
  mqtt::Session session_;
  mqtt_asio::Connection connection_;
  LoopChannel channel_;
};

}  // namespace edgekit::sim
