// The device process of the SIGKILL test: an agent with a persisted session and outbox.
// Usage: agent_test_device <port> <state dir> <client id> <count>
// Prints "connected" once connected; with count > 0 it then reads a line from stdin, queues
// `count` publishes (topic kill/<i>, QoS 1 for even i, QoS 2 for odd i) and prints "queued".
// Then it runs until killed (or stdin closes).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "edgekit/agent/agent.hpp"
#include "edgekit/mqtt/file_store.hpp"

using namespace edgekit;

namespace {
std::atomic<bool> connected{false};
void on_status(void*, const agent::Status& s) {
  if (s.state == agent::ConnectionState::Connected) connected = true;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  const std::string dir = argv[2];
  const std::string id = argv[3];
  const int count = std::atoi(argv[4]);

  static std::byte session_buf[1 << 20];
  static std::byte outbox_buf[1 << 20];
  mqtt::FileSessionStore session_store(session_buf);
  mqtt::FileSessionStore outbox_store(outbox_buf);
  if (!session_store.open(dir + "/session") || !outbox_store.open(dir + "/outbox")) return 3;

  agent::TcpTransportFactory factory("127.0.0.1", port, edgekit::Duration{1000});
  mqtt::ConnectOptions o;
  o.version = mqtt::Version::V5;
  o.client_id = id;
  o.clean_start = false;
  o.properties.set_session_expiry_interval(3600);
  agent::Config c;
  c.command_slots = 512;
  c.offline_queue_limit = 512;
  c.reconnect_backoff = {Duration{50}, Duration{200}};
  SteadyClock clock;
  agent::Agent a(c, o, factory, clock, agent::Persistence{&session_store, &outbox_store});
  a.set_status_handler({&on_status, nullptr});
  if (!a.start()) return 4;
  while (!connected) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::printf("connected\n");
  std::fflush(stdout);
  std::string line;
  if (count > 0) {
    if (!std::getline(std::cin, line)) return 5;
    std::string topic, payload;
    for (int i = 0; i < count; ++i) {
      topic = "kill/" + std::to_string(i);
      payload = std::to_string(i);
      mqtt::Publish p;
      p.topic = topic;
      p.payload = mqtt::as_bytes(payload);
      p.qos = (i % 2) == 0 ? mqtt::QoS::AtLeastOnce : mqtt::QoS::ExactlyOnce;
      auto r = a.publish(p);
      if (!r) {
        std::printf("publish %d failed: %s\n", i, agent::to_string(r.error().code));
        return 6;
      }
    }
    std::printf("queued\n");
    std::fflush(stdout);
  }
  while (std::getline(std::cin, line)) {
  }
  a.stop();
  return 0;
}
