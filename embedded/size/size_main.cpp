// The minimal device program of the size report: what a small MQTT device links. It connects,
// subscribes, publishes at QoS 1, runs process_loop until its PUBACK and an inbound QoS 1
// message have arrived, unsubscribes and disconnects, once per protocol version compiled in.
// The transport is an in-memory stand-in for a broker that answers each packet the client
// sends, so only the MQTT core's reachable code (and not a TCP/IP stack) ends up in the image;
// scripts/size-report reads the linker map to attribute every byte to its library.
//
// It is also a runnable check: under QEMU (mps2-an386) it returns 0 only when every step
// succeeded, and a step number otherwise.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "edgekit/mqtt/client.hpp"
#include "edgekit/mqtt/codec.hpp"
#include "tick_clock.hpp"

namespace {

using namespace edgekit;
using namespace edgekit::mqtt;
using transport::ConstBuffer;
using transport::Interest;
using transport::IoResult;
using transport::IoStatus;
using transport::WaitStatus;

using size_program::TickClock;

// Answers CONNECT, SUBSCRIBE, PUBLISH (QoS 1), UNSUBSCRIBE and PINGREQ as a broker would, and
// sends one QoS 1 PUBLISH to the client after the SUBACK.
class LoopbackBroker final : public transport::Transport {
 public:
  void set_version(Version v) {
    v5_ = v == Version::V5;
    out_len_ = out_pos_ = in_len_ = 0;
    closed_ = false;
  }

  IoResult send(ConstBuffer data) noexcept override {
    if (closed_) return {IoStatus::Closed, 0, 0};
    const std::size_t n = data.size() < in_.size() - in_len_ ? data.size() : in_.size() - in_len_;
    std::memcpy(in_.data() + in_len_, data.data(), n);
    in_len_ += n;
    answer();
    return {IoStatus::Ok, n, 0};
  }

  IoResult recv(std::span<std::byte> buffer) noexcept override {
    if (out_pos_ == out_len_) return {closed_ ? IoStatus::Closed : IoStatus::WouldBlock, 0, 0};
    std::size_t n = out_len_ - out_pos_;
    if (n > buffer.size()) n = buffer.size();
    std::memcpy(buffer.data(), out_.data() + out_pos_, n);
    out_pos_ += n;
    if (out_pos_ == out_len_) out_pos_ = out_len_ = 0;
    return {IoStatus::Ok, n, 0};
  }

  WaitStatus wait(Interest interest, std::uint32_t) noexcept override {
    if (interest != Interest::Read || out_pos_ != out_len_ || closed_) return WaitStatus::Ready;
    return WaitStatus::Timeout;
  }

  void close() noexcept override { closed_ = true; }

 private:
  void put(std::initializer_list<std::uint8_t> bytes) {
    for (std::uint8_t b : bytes) out_[out_len_++] = static_cast<std::byte>(b);
  }

  // Handles every complete packet the client has written so far.
  void answer() {
    for (;;) {
      auto f = read_frame(Bytes(in_.data(), in_len_));
      if (!f || !f->complete) return;
      const auto* p = reinterpret_cast<const std::uint8_t*>(in_.data()) + f->header.header_size;
      const std::uint8_t hi = p[0];
      const std::uint8_t lo = p[1];
      switch (f->header.type) {
        case PacketType::Connect:
          if (v5_) put({0x20, 0x03, 0x00, 0x00, 0x00});
          else put({0x20, 0x02, 0x00, 0x00});
          break;
        case PacketType::Subscribe:
          if (v5_) put({0x90, 0x04, hi, lo, 0x00, 0x01});
          else put({0x90, 0x03, hi, lo, 0x01});
          // A QoS 1 message on the new subscription, id 0x0101, payload "hi".
          if (v5_) put({0x32, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x01, 0x00, 'h', 'i'});
          else put({0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x01, 'h', 'i'});
          break;
        case PacketType::Publish:
          if ((f->header.flags & 0x06) != 0) {
            // Topic length, topic, then the packet id.
            const std::size_t t = (std::size_t{p[0]} << 8) | p[1];
            put({0x40, 0x02, p[2 + t], p[3 + t]});
          }
          break;
        case PacketType::Unsubscribe:
          if (v5_) put({0xB0, 0x04, hi, lo, 0x00, 0x00});
          else put({0xB0, 0x02, hi, lo});
          break;
        case PacketType::PingReq: put({0xD0, 0x00}); break;
        default: break;
      }
      const std::size_t used = f->header.packet_size();
      std::memmove(in_.data(), in_.data() + used, in_len_ - used);
      in_len_ -= used;
    }
  }

  std::array<std::byte, 256> in_{};
  std::size_t in_len_ = 0;
  std::array<std::byte, 256> out_{};
  std::size_t out_len_ = 0;
  std::size_t out_pos_ = 0;
  bool v5_ = true;
  bool closed_ = false;
};

struct App {
  int received = 0;
  int completed = 0;
  void operator()(Client&, const Event& e) {
    if (e.type == EventType::MessageReceived) ++received;
    if (e.type == EventType::PublishCompleted) ++completed;
  }
};

// A typical small-device configuration: 8 operations in flight, 8 inbound QoS 2 ids, no topic
// aliases, a 23-byte client id, a 1 KB receive buffer and a 256-byte send buffer (PUBLISH
// payloads are sent from the caller's memory, so the send buffer holds headers only).
std::array<OutgoingRecord, 8> g_records;
std::array<std::uint16_t, 8> g_incoming_qos2;
std::array<char, 23> g_client_id;
std::array<std::byte, 1024> g_rx;
std::array<std::byte, 256> g_tx;
LoopbackBroker g_broker;
TickClock g_clock;
App g_app;

int run(Version version) {
  Session session(SessionStorage{g_records, g_incoming_qos2, {}, {}, g_client_id});
  g_broker.set_version(version);
  g_app = App{};
  Client client(g_broker, g_clock, session, g_rx, g_tx, EventHandler::bind(g_app));

  ConnectOptions options;
  options.version = version;
  options.client_id = "size-report-device";
  if (!client.connect(options, Duration{1000})) return 1;

  const Subscription subs[] = {{"a/#", {QoS::AtLeastOnce}}};
  ReasonCode granted[1];
  if (!client.subscribe(subs, granted, Duration{1000})) return 2;

  const std::string_view payload = "21.5";
  Publish message;
  message.topic = "a/temperature";
  message.payload = as_bytes(payload);
  message.qos = QoS::AtLeastOnce;
  if (!client.publish(message, Duration{1000})) return 3;

  for (int i = 0; i < 10 && (g_app.completed == 0 || g_app.received == 0); ++i) {
    if (!client.process_loop(Duration{10})) return 4;
  }
  if (g_app.completed != 1 || g_app.received != 1) return 5;

  const std::string_view filters[] = {"a/#"};
  ReasonCode unsubscribed[1];
  if (!client.unsubscribe(filters, unsubscribed, Duration{1000})) return 6;
  if (!client.disconnect()) return 7;
  return 0;
}

}  // namespace

int main() {
  if constexpr (EDGEKIT_MQTT_ENABLE_V5 != 0) {
    if (int step = run(Version::V5); step != 0) return step;
  }
  if constexpr (EDGEKIT_MQTT_ENABLE_V311 != 0) {
    if (int step = run(Version::V311); step != 0) return 10 + step;
  }
  return 0;
}
