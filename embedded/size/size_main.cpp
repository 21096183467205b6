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
#include "loopback_broker.hpp"
#include "tick_clock.hpp"

namespace {

using namespace edgekit;
using namespace edgekit::mqtt;
using size_program::LoopbackBroker;
using size_program::TickClock;

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
