// The device program of the minimal MQTT 3.1.1 client (edgekit/mqtt/lite.hpp) for the size
// report: the same steps as size_main.cpp's 3.1.1 run — connect, subscribe, publish at QoS 1,
// process_loop until its PUBACK and an inbound QoS 1 message have arrived, unsubscribe,
// disconnect — over the same in-memory broker, with 8 records and 8 inbound QoS 2 ids (the
// configuration of the coreMQTT comparison in docs/sizes.md).
//
// It is also a runnable check: under QEMU (mps2-an386) it returns 0 only when every step
// succeeded, and a step number otherwise.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/mqtt/lite.hpp"
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
  int subscribed = 0;
  int unsubscribed = 0;
  void operator()(lite::Client&, const lite::Event& e) {
    if (e.type == lite::EventType::MessageReceived) ++received;
    if (e.type == lite::EventType::PublishCompleted) ++completed;
    if (e.type == lite::EventType::SubscribeCompleted && e.error == Errc::Ok) ++subscribed;
    if (e.type == lite::EventType::UnsubscribeCompleted && e.error == Errc::Ok) ++unsubscribed;
  }
};

std::array<lite::Record, 8> g_records;
std::array<std::uint16_t, 8> g_incoming_qos2;
std::array<std::byte, 1024> g_rx;
LoopbackBroker g_broker;
TickClock g_clock;
App g_app;

int run() {
  g_broker.set_version(Version::V311);
  lite::Client client(g_clock, g_records, g_incoming_qos2, g_rx, lite::Handler::bind(g_app));

  lite::ConnectOptions options;
  options.client_id = "size-report-device";
  if (!client.connect(g_broker, options, Duration{1000})) return 1;

  const lite::Filter subs[] = {{"a/#", QoS::AtLeastOnce}};
  if (!client.subscribe(subs, Duration{1000})) return 2;
  for (int i = 0; i < 10 && g_app.subscribed == 0; ++i) {
    if (!client.process_loop(Duration{10})) return 2;
  }

  const std::string_view payload = "21.5";
  if (!client.publish("a/temperature", as_bytes(payload), QoS::AtLeastOnce, false, Duration{1000}))
    return 3;

  for (int i = 0; i < 10 && (g_app.completed == 0 || g_app.received == 0); ++i) {
    if (!client.process_loop(Duration{10})) return 4;
  }
  if (g_app.completed != 1 || g_app.received != 1) return 5;

  const std::string_view filters[] = {"a/#"};
  if (!client.unsubscribe(filters, Duration{1000})) return 6;
  for (int i = 0; i < 10 && g_app.unsubscribed == 0; ++i) {
    if (!client.process_loop(Duration{10})) return 6;
  }
  if (g_app.unsubscribed != 1) return 6;
  if (!client.disconnect()) return 7;
  return 0;
}

}  // namespace

int main() { return run(); }
