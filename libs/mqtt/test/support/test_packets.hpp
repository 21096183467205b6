#pragma once
// Packets the MQTT tests build again and again (client, connection): a publish from strings and
// an ack with an id and a reason code.
#include <cstdint>
#include <string_view>

#include "edgekit/mqtt/packets.hpp"

namespace edgekit::mqtt::test {

inline Publish make_publish(std::string_view topic, std::string_view payload, QoS qos,
                            std::uint16_t id = 0) {
  Publish p;
  p.topic = topic;
  p.payload = as_bytes(payload);
  p.qos = qos;
  p.packet_id = id;
  return p;
}

template <class T>
T ack(std::uint16_t id, ReasonCode rc = ReasonCode::Success) {
  T a;
  a.packet_id = id;
  a.reason_code = rc;
  return a;
}

}  // namespace edgekit::mqtt::test
