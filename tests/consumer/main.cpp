// Encodes and decodes a PUBLISH through the installed headers and library.
#include <array>
#include <cstdio>
#include <edgekit/mqtt/codec.hpp>

int main() {
  using namespace edgekit::mqtt;
  Publish p;
  p.topic = "consumer/check";
  p.payload = as_bytes("hello");
  p.qos = QoS::AtLeastOnce;
  p.packet_id = 7;
  std::array<std::byte, 64> buf{};
  auto n = encode(p, Version::V5, buf);
  if (!n) return 1;
  auto back = decode_publish(std::span<const std::byte>(buf.data(), *n), Version::V5);
  if (!back || back->topic != "consumer/check" || back->packet_id != 7) return 1;
  std::printf("consumer: edgekit package found, PUBLISH round trip ok (%zu bytes)\n", *n);
  return 0;
}
