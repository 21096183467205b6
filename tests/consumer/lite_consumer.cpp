// The minimal MQTT 3.1.1 client from the installed package: connect, a QoS 1 publish completed
// by its PUBACK, disconnect, over a transport in memory that answers as a broker would.
#include <array>
#include <cstdio>
#include <cstring>
#include <edgekit/mqtt/lite.hpp>

namespace {

using namespace edgekit;
namespace lite = edgekit::mqtt::lite;

class Loopback final : public transport::Transport {
 public:
  transport::IoResult send(transport::ConstBuffer data) noexcept override {
    const auto* b = reinterpret_cast<const unsigned char*>(data.data());
    if (!data.empty() && b[0] == 0x10) put({0x20, 2, 0, 0});  // CONNECT: CONNACK
    if (data.size() >= 4 && (b[0] & 0xF6) == 0x32) {           // PUBLISH QoS 1: PUBACK
      const std::size_t topic = (std::size_t{b[2]} << 8) | b[3];
      if (data.size() >= 6 + topic) put({0x40, 2, b[4 + topic], b[5 + topic]});
    }
    return {transport::IoStatus::Ok, data.size(), 0};
  }
  transport::IoResult writev(std::span<const transport::ConstBuffer> buffers) noexcept override {
    // Gathered, so that send() sees a whole packet.
    std::array<std::byte, 256> all{};
    std::size_t n = 0;
    for (auto b : buffers) {
      if (n + b.size() > all.size()) return {transport::IoStatus::Error, 0, 0};
      if (!b.empty()) std::memcpy(all.data() + n, b.data(), b.size());
      n += b.size();
    }
    return send(transport::ConstBuffer(all.data(), n));
  }
  transport::IoResult recv(std::span<std::byte> buffer) noexcept override {
    if (len_ == 0) return {transport::IoStatus::WouldBlock, 0, 0};
    const std::size_t n = len_ < buffer.size() ? len_ : buffer.size();
    std::memcpy(buffer.data(), out_.data(), n);
    std::memmove(out_.data(), out_.data() + n, len_ - n);
    len_ -= n;
    return {transport::IoStatus::Ok, n, 0};
  }
  transport::WaitStatus wait(transport::Interest, std::uint32_t) noexcept override {
    return transport::WaitStatus::Ready;
  }
  void close() noexcept override {}

 private:
  void put(std::initializer_list<unsigned char> bytes) {
    for (unsigned char c : bytes) out_[len_++] = static_cast<std::byte>(c);
  }
  std::array<std::byte, 64> out_{};
  std::size_t len_ = 0;
};

struct App {
  int completed = 0;
  void operator()(lite::Client&, const lite::Event& e) {
    if (e.type == lite::EventType::PublishCompleted) ++completed;
  }
};

}  // namespace

int main() {
  SteadyClock clock;
  Loopback net;
  App app;
  std::array<lite::Record, 2> records{};
  std::array<std::uint16_t, 2> qos2{};
  std::array<std::byte, 128> rx{};
  lite::Client client(clock, records, qos2, rx, lite::Handler::bind(app));
  lite::ConnectOptions o;
  o.client_id = "consumer";
  if (!client.connect(net, o, Duration{1000})) return 1;
  if (!client.publish("consumer/lite", mqtt::as_bytes("hello"), mqtt::QoS::AtLeastOnce, false,
                      Duration{1000}))
    return 2;
  for (int i = 0; i < 10 && app.completed == 0; ++i) {
    if (!client.process_loop(Duration{10})) return 3;
  }
  if (app.completed != 1 || !client.disconnect()) return 4;
  std::printf("lite_consumer: minimal client connected, published QoS 1 and disconnected\n");
  return 0;
}
