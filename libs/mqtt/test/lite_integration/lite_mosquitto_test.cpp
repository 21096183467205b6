// The minimal MQTT 3.1.1 client (lite.hpp) against a real Mosquitto 2 on a free loopback port:
// messages to itself at QoS 0, 1 and 2 with nothing lost, a persistent session that receives
// what was published while it was away, and keep-alive.
#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>
#include <vector>

#include "edgekit/mqtt/lite.hpp"
#include "edgekit/testing/mosquitto.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::mqtt::lite {
namespace {

using namespace std::chrono_literals;
using transport::TcpTransport;

struct Device {
  Device() = default;
  void operator()(Client&, const Event& e) {
    switch (e.type) {
      case EventType::MessageReceived:
        received.push_back(std::string(as_string(e.payload)));
        qos.push_back(e.qos);
        break;
      case EventType::PublishCompleted: ++completed; break;
      case EventType::MessageLost: ++lost; break;
      case EventType::SubscribeCompleted:
        if (e.error == Errc::Ok && e.return_codes.size() == 1) {
          granted = static_cast<int>(e.return_codes[0]);
        }
        break;
      case EventType::UnsubscribeCompleted: break;
    }
  }

  // Runs the loop until `done` or 10 s pass.
  template <class F>
  bool run_until(F done) {
    const Instant end = clock.now() + 10s;
    while (!done()) {
      if (clock.now() > end) return false;
      if (auto r = client.process_loop(100ms); !r) {
        ADD_FAILURE() << "process_loop: " << to_string(r.error());
        return false;
      }
    }
    return true;
  }

  bool connect(std::uint16_t port, std::string_view id, bool clean, bool expect_present,
               std::uint16_t keep_alive = 60) {
    auto t = TcpTransport::connect("127.0.0.1", port, 5s);
    if (!t) return false;
    tcp = std::move(*t);
    ConnectOptions o;
    o.client_id = id;
    o.clean_session = clean;
    o.keep_alive_s = keep_alive;
    auto r = client.connect(tcp, o, 5s);
    if (!r) {
      ADD_FAILURE() << "connect: " << to_string(r.error());
      return false;
    }
    EXPECT_EQ(*r, expect_present);
    return true;
  }

  bool subscribe(std::string_view filter, QoS q) {
    granted = -1;
    const Filter f[] = {{filter, q}};
    if (!client.subscribe(f, 5s)) return false;
    return run_until([&] { return granted >= 0; });
  }

  // Publishes, running the loop while every record is in use.
  bool publish(std::string_view topic, const std::string& payload, QoS q) {
    for (int i = 0; i < 200; ++i) {
      auto r = client.publish(topic, as_bytes(payload), q, false, 5s);
      if (r) return true;
      if (r.error() != Errc::SessionStateFull) {
        ADD_FAILURE() << "publish: " << to_string(r.error());
        return false;
      }
      if (!client.process_loop(50ms)) return false;
    }
    return false;
  }

  SteadyClock clock;
  TcpTransport tcp;
  std::array<Record, 8> records{};
  std::array<std::uint16_t, 8> qos2{};
  std::array<std::byte, 1024> rx{};
  std::vector<std::string> received;
  std::vector<QoS> qos;
  int completed = 0;
  int lost = 0;
  int granted = -1;
  Client client{clock, records, qos2, rx, Handler::bind(*this)};
};

class LiteMosquitto : public testing::MosquittoFixture {};

TEST_F(LiteMosquitto, MessagesToItselfAtEveryQoSArriveOnceAndComplete) {
  Device d;
  ASSERT_TRUE(d.connect(broker().port(), "lite-self", true, false));
  ASSERT_TRUE(d.subscribe("lite/self/#", QoS::ExactlyOnce));
  EXPECT_EQ(d.granted, 2);
  // Payloads must stay valid until their completion: keep them all.
  std::vector<std::string> payloads;
  for (int i = 0; i < 300; ++i) payloads.push_back("m" + std::to_string(i));
  int acked = 0;
  for (int i = 0; i < 300; ++i) {
    const auto q = static_cast<QoS>(i % 3);
    if (q != QoS::AtMostOnce) ++acked;
    ASSERT_TRUE(d.publish("lite/self/t", payloads[static_cast<std::size_t>(i)], q));
  }
  ASSERT_TRUE(d.run_until([&] { return d.received.size() == 300 && d.completed == acked; }))
      << d.received.size() << " received, " << d.completed << " completed";
  const std::set<std::string> unique(d.received.begin(), d.received.end());
  EXPECT_EQ(unique.size(), 300u) << "each message once";
  EXPECT_EQ(d.lost, 0);
  EXPECT_EQ(d.client.outstanding(), 0u);
  ASSERT_TRUE(d.client.disconnect().has_value());
}

TEST_F(LiteMosquitto, APersistentSessionReceivesWhatWasPublishedWhileItWasAway) {
  Device a;
  ASSERT_TRUE(a.connect(broker().port(), "lite-away", false, false));
  ASSERT_TRUE(a.subscribe("lite/away", QoS::AtLeastOnce));
  ASSERT_TRUE(a.client.disconnect().has_value());

  Device b;
  ASSERT_TRUE(b.connect(broker().port(), "lite-sender", true, false));
  std::vector<std::string> payloads;
  for (int i = 0; i < 20; ++i) payloads.push_back("p" + std::to_string(i));
  for (const std::string& p : payloads) ASSERT_TRUE(b.publish("lite/away", p, QoS::AtLeastOnce));
  ASSERT_TRUE(b.run_until([&] { return b.completed == 20; }));
  ASSERT_TRUE(b.client.disconnect().has_value());

  ASSERT_TRUE(a.connect(broker().port(), "lite-away", false, true));
  ASSERT_TRUE(a.run_until([&] { return a.received.size() == 20; })) << a.received.size();
  EXPECT_EQ(a.received, payloads) << "in order, each once";
  ASSERT_TRUE(a.client.disconnect().has_value());
}

TEST_F(LiteMosquitto, KeepAlivePingsKeepAnIdleConnectionOpen) {
  Device d;
  ASSERT_TRUE(d.connect(broker().port(), "lite-idle", true, false, 1));
  const Instant end = d.clock.now() + 2500ms;
  while (d.clock.now() < end) ASSERT_TRUE(d.client.process_loop(100ms).has_value());
  EXPECT_TRUE(d.client.connected());
  ASSERT_TRUE(d.publish("lite/idle", "still here", QoS::AtLeastOnce));
  ASSERT_TRUE(d.run_until([&] { return d.completed == 1; }));
}

}  // namespace
}  // namespace edgekit::mqtt::lite
