#pragma once
// Private parts of the client shared by its source files.
#include <cstdint>
#include <optional>
#include <type_traits>

#include "edgekit/mqtt/client.hpp"
#include "edgekit/mqtt/codec.hpp"
#include "../switches.hpp"

namespace edgekit::mqtt {

/// What a blocking call waits for. Lives on the caller's stack for the duration of the call.
struct Client::Waiter {
  enum class Kind : std::uint8_t { ConnAck, SubAck, UnsubAck, PingResp, PublishDone };
  Kind kind = Kind::ConnAck;
  std::uint16_t packet_id = 0;
  bool done = false;
  Errc error = Errc::Ok;  // a failure found while handling the awaited packet
  ReasonCode reason = ReasonCode::Success;
  std::span<ReasonCode> reason_codes{};  // SUBACK / UNSUBACK: where the codes go
  std::size_t expected_codes = 0;
  ConnAck connack{};  // ConnAck: the packet (views into the receive buffer)
  ConnAckOutcome outcome{};
};

template <class P>
Client::Outgoing::Outgoing(const P& p) noexcept
    : encode([](const void* q, Version v, MutableBytes out) noexcept -> Result<std::size_t> {
        const P& pkt = *static_cast<const P*>(q);
        if constexpr (std::is_same_v<P, Reply>) {
          return encode_ack(pkt.type, pkt.packet_id, pkt.reason_code, v, out);
        } else {
          return mqtt::encode(pkt, v, out);
        }
      }),
      packet(&p) {}

namespace detail {
/// Milliseconds from `now` until `deadline` (0 when passed), clamped to what wait() takes.
std::uint32_t milliseconds_until(Instant now, Instant deadline) noexcept;
/// `now + timeout`, saturating instead of overflowing (a caller may pass Duration::max()).
Instant deadline_after(Instant now, Duration timeout) noexcept;
/// The DISCONNECT reason code (MQTT 5) that goes with a fatal local error, if any.
std::optional<ReasonCode> disconnect_reason_for(Errc error) noexcept;
}  // namespace detail

}  // namespace edgekit::mqtt
