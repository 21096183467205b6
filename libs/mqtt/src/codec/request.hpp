#pragma once
// The codec's entries for a driver that sends SUBSCRIBE / UNSUBSCRIBE / DISCONNECT from its
// caller's arguments (the connection engine): the packet as views, encoded without building a
// `Subscribe`, `Unsubscribe` or `Disconnect` first (each would copy the caller's `Properties`,
// about 160 bytes, onto the stack: code size and stack). Internal: not installed.
#include <cstddef>
#include <cstdint>

#include "edgekit/mqtt/codec.hpp"

namespace edgekit::mqtt::detail {

struct RequestView {
  PacketType type;  ///< Subscribe or Unsubscribe
  std::uint16_t packet_id;
  /// Subscribe: a `const Subscriptions*`; Unsubscribe: a `const TopicFilters*`.
  const void* list;
  const Properties* properties;
};

/// As `encoded_size` / `encode` of the packet the view describes; the same checks and errors.
[[nodiscard]] Result<std::size_t> request_size(const RequestView& request,
                                               Version version) noexcept;
[[nodiscard]] Result<std::size_t> encode_request(const RequestView& request, Version version,
                                                 MutableBytes out) noexcept;

struct DisconnectView {
  ReasonCode reason_code;
  const Properties* properties;
};

/// As `encoded_size` / `encode` of the DISCONNECT the view describes; the same checks and errors.
[[nodiscard]] Result<std::size_t> disconnect_size(const DisconnectView& disconnect,
                                                  Version version) noexcept;
[[nodiscard]] Result<std::size_t> encode_disconnect(const DisconnectView& disconnect,
                                                    Version version, MutableBytes out) noexcept;

}  // namespace edgekit::mqtt::detail
