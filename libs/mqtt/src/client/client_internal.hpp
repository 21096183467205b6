#pragma once
// Private parts of the client shared by its source files.
#include <cstdint>
#include <span>

#include "edgekit/mqtt/client.hpp"

namespace edgekit::mqtt {

/// What a blocking call waits for: one event of the connection, matched by type and packet id
/// (ids are unique among pending operations and never 0, so a match is the call in progress).
/// Lives on the caller's stack for the duration of the call.
struct Client::Waiter {
  /// process_loop waits for no event but for the next packet handled (`packets`).
  static constexpr auto kAnyPacket = static_cast<EventType>(0xff);

  EventType type = kAnyPacket;
  std::uint16_t packet_id = 0;
  bool done = false;
  /// SUBACK / UNSUBACK: where the codes go, one per filter (its size is the number expected).
  std::span<ReasonCode> reason_codes{};
  /// kAnyPacket: `Connection::packets_received()` when the wait began.
  std::uint32_t packets = 0;
  /// From the matched event: Connected's CONNACK (valid until the next call on the client) and
  /// PublishCompleted's reason code. Not the whole event: a waiter is on every call's stack.
  const ConnAck* connack = nullptr;
  ReasonCode reason = ReasonCode::Success;
  /// What the deadline passing means: Ok, Timeout for the call (the connection stays); else the
  /// error that ends the connection (connect: Timeout, ping: KeepAliveTimeout). process_loop
  /// (kAnyPacket): success.
  Errc timeout_error = Errc::Ok;
};

namespace detail {
/// Milliseconds from `now` until `deadline` (0 when passed), clamped to what wait() takes.
std::uint32_t milliseconds_until(Instant now, Instant deadline) noexcept;
}  // namespace detail

}  // namespace edgekit::mqtt
