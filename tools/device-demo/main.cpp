// A small device program written the way firmware uses edgekit: every buffer is static, the
// client runs in this one thread, and the program reads like the steps of a device's life:
// connect, subscribe, publish at each QoS, receive its own messages, disconnect — once with
// MQTT 3.1.1 and once with MQTT 5 (with message properties).
//
// Usage: device-demo <host> <port>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/client.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/transport/tcp.hpp"

using namespace edgekit;
using namespace edgekit::mqtt;
using namespace std::chrono_literals;

namespace {

// What the device remembers of the messages it receives (static, no heap).
struct Inbox {
  struct Entry {
    char topic[64];
    char payload[64];
    QoS qos;
    bool user_property_seen;
  };
  std::array<Entry, 8> entries{};
  int count = 0;
  int completed = 0;
  const char* tag = "";

  void operator()(Client&, const Event& e) {
    if (e.type == EventType::PublishCompleted) {
      ++completed;
      return;
    }
    if (e.type != EventType::MessageReceived || count >= static_cast<int>(entries.size())) return;
    Entry& x = entries[static_cast<std::size_t>(count++)];
    std::snprintf(x.topic, sizeof x.topic, "%.*s", static_cast<int>(e.message->topic.size()),
                  e.message->topic.data());
    std::snprintf(x.payload, sizeof x.payload, "%.*s", static_cast<int>(e.message->payload.size()),
                  reinterpret_cast<const char*>(e.message->payload.data()));
    x.qos = e.message->qos;
    x.user_property_seen = false;
#if EDGEKIT_MQTT_ENABLE_V5  // without MQTT 5, Properties is empty
    for (UserProperty up : e.message->properties.user_properties) {
      if (up.key == "sensor") x.user_property_seen = true;
    }
#endif
    std::printf("  [%s] received  '%s' on %s at QoS %d%s\n", tag, x.payload, x.topic,
                static_cast<int>(x.qos), x.user_property_seen ? " (user property sensor=... intact)" : "");
  }
};

// Static memory of the device: network buffers, session records, topic-alias tables.
std::array<std::byte, 2048> g_rx;
std::array<std::byte, 512> g_tx;
std::array<OutgoingRecord, 8> g_outgoing;
std::array<std::uint16_t, 8> g_incoming_qos2;
TopicAliasArena<4, 48> g_in_aliases;
TopicAliasArena<4, 48> g_out_aliases;
std::array<char, 64> g_client_id;

// The SDK's clock counts milliseconds; the demo shows finer timings with its own.
using Stopwatch = std::chrono::steady_clock;
double ms_since(Stopwatch::time_point t0) {
  return std::chrono::duration<double, std::milli>(Stopwatch::now() - t0).count();
}

bool run(const char* host, std::uint16_t port, Version version) {
  const char* tag = version == Version::V5 ? "MQTT 5" : "MQTT 3.1.1";
  const std::string base = std::string("edgekit/demo/") + (version == Version::V5 ? "v5" : "v311");
  SteadyClock clock;

  auto tcp = transport::TcpTransport::connect(host, port, edgekit::Duration{3000});
  if (!tcp) {
    std::printf("  [%s] cannot reach %s:%u: %s %s\n", tag, host, port, transport::to_string(tcp.error().code),
                tcp.error().detail);
    return false;
  }

  SessionStorage storage{g_outgoing, g_incoming_qos2, g_in_aliases.storage(), g_out_aliases.storage(),
                         g_client_id};
  Session session(storage);
  Inbox inbox;
  inbox.tag = tag;
  Client client(*tcp, clock, session, g_rx, g_tx, EventHandler::bind(inbox));

  ConnectOptions options;
  options.version = version;
  options.client_id = version == Version::V5 ? "edgekit-demo-v5" : "edgekit-demo-v311";
  options.keep_alive_seconds = 30;
  auto t0 = Stopwatch::now();
  auto connack = client.connect(options, 5s);
  if (!connack) {
    std::printf("  [%s] connect failed: %s (broker said %s)\n", tag, to_string(connack.error()),
                to_string(client.server_reason()));
    return false;
  }
  std::printf("  [%s] connected as %.*s in %.3f ms (session present: %s)\n", tag,
              static_cast<int>(session.client_id().size()), session.client_id().data(), ms_since(t0),
              connack->session_present ? "yes" : "no");

  const std::string filter = base + "/#";
  Subscription sub{filter, SubscribeOptions{QoS::ExactlyOnce}};
  std::array<ReasonCode, 1> granted{};
  t0 = Stopwatch::now();
  if (auto r = client.subscribe({&sub, 1}, granted, 5s); !r) {
    std::printf("  [%s] subscribe failed: %s\n", tag, to_string(r.error()));
    return false;
  }
  std::printf("  [%s] subscribed to %s, granted %s in %.3f ms\n", tag, filter.c_str(), to_string(granted[0]),
              ms_since(t0));

  std::array<std::string, 3> topics;
  std::array<std::string, 3> payloads;
  const UserProperty props[] = {{"sensor", "temperature"}, {"unit", "celsius"}};
  for (int q = 0; q <= 2; ++q) {
    auto i = static_cast<std::size_t>(q);
    topics[i] = base + "/qos" + std::to_string(q);
    payloads[i] = "hello at QoS " + std::to_string(q);
    Publish msg;
    msg.topic = topics[i];
    msg.payload = as_bytes(payloads[i]);
    msg.qos = static_cast<QoS>(q);
#if EDGEKIT_MQTT_ENABLE_V5  // without MQTT 5, Properties is empty
    if (version == Version::V5) {
      msg.properties.user_properties = UserProperties(props);
      msg.properties.set_content_type("text/plain");
    }
#else
    (void)props;
#endif
    t0 = Stopwatch::now();
    auto r = client.publish_and_wait(msg, 5s);
    if (!r) {
      std::printf("  [%s] publish at QoS %d failed: %s\n", tag, q, to_string(r.error()));
      return false;
    }
    const char* ack = q == 0 ? "sent (no ack at QoS 0)" : q == 1 ? "PUBACK" : "PUBREC/PUBREL/PUBCOMP";
    std::printf("  [%s] published '%s' at QoS %d: %s%s%s in %.3f ms\n", tag, payloads[i].c_str(), q, ack,
                q == 0 ? "" : " ", q == 0 ? "" : to_string(*r), ms_since(t0));
  }

  // Receive what we sent ourselves.
  const Instant deadline = clock.now() + 5s;
  while (inbox.count < 3 && clock.now() < deadline) {
    if (auto r = client.process_loop(100ms); !r) {
      std::printf("  [%s] connection lost: %s\n", tag, to_string(r.error()));
      return false;
    }
  }
  bool ok = inbox.count == 3;
  for (int q = 0; q <= 2 && ok; ++q) {
    bool found = false;
    for (int k = 0; k < inbox.count; ++k) {
      const auto& e = inbox.entries[static_cast<std::size_t>(k)];
      if (topics[static_cast<std::size_t>(q)] == e.topic && payloads[static_cast<std::size_t>(q)] == e.payload &&
          static_cast<int>(e.qos) == q && (version == Version::V311 || e.user_property_seen)) {
        found = true;
      }
    }
    ok = found;
  }
  (void)client.disconnect();
  std::printf("  [%s] %s: %d of 3 messages came back intact; disconnected\n", tag, ok ? "OK" : "FAILED",
              inbox.count);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <host> <port>\n", argv[0]);
    return 2;
  }
  const char* host = argv[1];
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[2]));
  std::printf("edgekit device demo against %s:%u\n", host, port);
  bool ok = true;
  for (Version v : {Version::V311, Version::V5}) ok = run(host, port, v) && ok;
  std::printf("%s\n", ok ? "demo finished: every message arrived at every QoS over both protocol versions"
                         : "demo FAILED");
  return ok ? 0 : 1;
}
