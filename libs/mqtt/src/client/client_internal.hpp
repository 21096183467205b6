#pragma once
// Private parts of the client shared by its source files.
#include <cstdint>
#include <span>

#include "edgekit/mqtt/client.hpp"

namespace edgekit::mqtt {

/// What a blocking call waits for. Lives on the caller's stack for the duration of the call.
struct Client::Waiter {
  enum class Kind : std::uint8_t { ConnAck, SubAck, UnsubAck, PingResp, PublishDone };
  Kind kind = Kind::ConnAck;
  std::uint16_t packet_id = 0;
  bool done = false;
  ReasonCode reason = ReasonCode::Success;
  std::span<ReasonCode> reason_codes{};  // SUBACK / UNSUBACK: where the codes go
  std::size_t expected_codes = 0;
  // ConnAck: the packet, held by the connection until its next event (views into the receive
  // buffer). A pointer: a waiter lives on the stack of every blocking call.
  const ConnAck* connack = nullptr;
};

namespace detail {
/// Milliseconds from `now` until `deadline` (0 when passed), clamped to what wait() takes.
std::uint32_t milliseconds_until(Instant now, Instant deadline) noexcept;
/// `now + timeout`, saturating instead of overflowing (a caller may pass Duration::max()).
Instant deadline_after(Instant now, Duration timeout) noexcept;
}  // namespace detail

}  // namespace edgekit::mqtt
