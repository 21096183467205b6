// The client against a real Mosquitto 2 on a free loopback port, both protocol versions: publish
// to itself at QoS 0/1/2, retained messages, keep-alive, and session resume across a reconnect.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "edgekit/mqtt/client.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/testing/mosquitto.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::mqtt::test {
namespace {

using namespace std::chrono_literals;
using transport::TcpTransport;

struct Received {
  std::string topic;
  std::string payload;
  QoS qos = QoS::AtMostOnce;
  bool retain = false;
};

/// One device: a TCP connection, a session on static storage and a client.
struct Device {
  explicit Device(Version v) : version(v) {
    client.set_event_handler(EventHandler(&on_event, this));
  }

  static void on_event(void* ctx, Client&, const Event& e) {
    auto* self = static_cast<Device*>(ctx);
    switch (e.type) {
      case EventType::MessageReceived:
        self->received.push_back(Received{std::string(e.message->topic),
                                          std::string(as_string(e.message->payload)),
                                          e.message->qos, e.message->retain});
        break;
      case EventType::PublishCompleted:
        self->completed.push_back(e.packet_id);
        break;
      case EventType::MessageLost:
        ++self->lost;
        break;
      default:
        break;
    }
  }

  Result<ConnAck> connect(std::uint16_t port, std::string_view id, bool clean,
                          std::uint16_t keep_alive = 30) {
    auto t = TcpTransport::connect("127.0.0.1", port, edgekit::Duration{2000});
    EXPECT_TRUE(t.has_value());
    if (t) tcp = std::move(*t);
    ConnectOptions o;
    o.version = version;
    o.client_id = id;
    o.clean_start = clean;
    o.keep_alive_seconds = keep_alive;
    if (version == Version::V5 && !clean) o.properties.set_session_expiry_interval(300);
    return client.connect(o, 5s);
  }

  /// Runs the loop until `done()` or `timeout`.
  template <class Pred>
  bool run_until(Pred done, Duration timeout = 5s) {
    const Instant end = clock.now() + timeout;
    while (!done()) {
      if (clock.now() >= end) return false;
      if (!client.process_loop(100ms)) return false;
    }
    return true;
  }

  Version version;
  SteadyClock clock;
  TcpTransport tcp;
  std::array<OutgoingRecord, 16> records{};
  std::array<std::uint16_t, 32> qos2{};
  TopicAliasArena<4, 64> in_alias{};
  TopicAliasArena<4, 64> out_alias{};
  std::array<char, 64> cid{};
  Session session{SessionStorage{records, qos2, in_alias.storage(), out_alias.storage(), cid}};
  std::array<std::byte, 4096> rx{};
  std::array<std::byte, 512> tx{};
  Client client{tcp, clock, session, rx, tx};
  std::vector<Received> received;
  std::vector<std::uint16_t> completed;
  int lost = 0;
};

class ClientMosquitto : public testing::MosquittoFixture,
                        public ::testing::WithParamInterface<Version> {};

std::string version_name(const ::testing::TestParamInfo<Version>& p) {
  return p.param == Version::V5 ? "V5" : "V311";
}

TEST_P(ClientMosquitto, PublishesToItselfAtEveryQoS) {
  Device d(GetParam());
  auto ca = d.connect(broker().port(), "self", true);
  ASSERT_TRUE(ca.has_value()) << to_string(ca.error());
  const std::array<Subscription, 1> subs{Subscription{"edgekit/self/#", {QoS::ExactlyOnce}}};
  std::array<ReasonCode, 1> codes{};
  ASSERT_TRUE(d.client.subscribe(subs, codes, 5s).has_value());
  EXPECT_EQ(codes[0], ReasonCode::GrantedQoS2);

  const std::array<QoS, 3> levels{QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce};
  const std::array<std::string, 3> payloads{"zero", "one", "two"};
  for (std::size_t i = 0; i < levels.size(); ++i) {
    Publish p;
    p.topic = "edgekit/self/q";
    p.payload = as_bytes(payloads[i]);
    p.qos = levels[i];
    auto rc = d.client.publish_and_wait(p, 5s);
    ASSERT_TRUE(rc.has_value()) << to_string(rc.error());
    EXPECT_FALSE(is_error(*rc));
  }
  ASSERT_TRUE(d.run_until([&] { return d.received.size() >= 3; }));
  for (std::size_t i = 0; i < levels.size(); ++i) {
    EXPECT_EQ(d.received[i].payload, payloads[i]);
    EXPECT_EQ(d.received[i].qos, levels[i]);
  }
  EXPECT_TRUE(d.client.disconnect().has_value());
}

TEST_P(ClientMosquitto, RetainedMessageArrivesOnSubscribe) {
  Device pub(GetParam());
  ASSERT_TRUE(pub.connect(broker().port(), "retainer", true).has_value());
  Publish p;
  p.topic = "edgekit/retained";
  p.payload = as_bytes("kept");
  p.qos = QoS::AtLeastOnce;
  p.retain = true;
  ASSERT_TRUE(pub.client.publish_and_wait(p, 5s).has_value());
  ASSERT_TRUE(pub.client.disconnect().has_value());

  Device sub(GetParam());
  ASSERT_TRUE(sub.connect(broker().port(), "late", true).has_value());
  const std::array<Subscription, 1> subs{Subscription{"edgekit/retained", {QoS::AtLeastOnce}}};
  std::array<ReasonCode, 1> codes{};
  ASSERT_TRUE(sub.client.subscribe(subs, codes, 5s).has_value());
  ASSERT_TRUE(sub.run_until([&] { return !sub.received.empty(); }));
  EXPECT_EQ(sub.received[0].payload, "kept");
  EXPECT_TRUE(sub.received[0].retain);
}

TEST_P(ClientMosquitto, KeepAlivePingsKeepTheConnectionUp) {
  Device d(GetParam());
  ASSERT_TRUE(d.connect(broker().port(), "pinger", true, 1).has_value());
  // 2.5 s with keep-alive 1 s: pings must go out, or Mosquitto drops us after 1.5 s.
  const Instant end = d.clock.now() + 2500ms;
  while (d.clock.now() < end) ASSERT_TRUE(d.client.process_loop(200ms).has_value());
  EXPECT_TRUE(d.client.connected());
  EXPECT_TRUE(d.client.ping(2s).has_value());
}

TEST_P(ClientMosquitto, ResumedSessionDeliversQueuedMessagesOnce) {
  // A subscriber with a persistent session goes away; QoS 1 and 2 messages published meanwhile
  // arrive when it comes back, each exactly once.
  Device sub(GetParam());
  ASSERT_TRUE(sub.connect(broker().port(), "resumer", true).has_value());
  ASSERT_TRUE(sub.client.disconnect().has_value());
  auto first = sub.connect(broker().port(), "resumer", false);
  ASSERT_TRUE(first.has_value());
  const std::array<Subscription, 1> subs{Subscription{"edgekit/resume", {QoS::ExactlyOnce}}};
  std::array<ReasonCode, 1> codes{};
  ASSERT_TRUE(sub.client.subscribe(subs, codes, 5s).has_value());
  ASSERT_TRUE(sub.client.disconnect().has_value());

  Device pub(GetParam());
  ASSERT_TRUE(pub.connect(broker().port(), "feeder", true).has_value());
  for (QoS q : {QoS::AtLeastOnce, QoS::ExactlyOnce}) {
    Publish p;
    p.topic = "edgekit/resume";
    p.payload = as_bytes(q == QoS::AtLeastOnce ? "q1" : "q2");
    p.qos = q;
    ASSERT_TRUE(pub.client.publish_and_wait(p, 5s).has_value());
  }

  auto again = sub.connect(broker().port(), "resumer", false);
  ASSERT_TRUE(again.has_value()) << to_string(again.error());
  EXPECT_TRUE(again->session_present);
  ASSERT_TRUE(sub.run_until([&] { return sub.received.size() >= 2; }));
  // Nothing more arrives: no duplicates.
  (void)sub.run_until([] { return false; }, 500ms);
  ASSERT_EQ(sub.received.size(), 2u);
  EXPECT_EQ(sub.received[0].payload, "q1");
  EXPECT_EQ(sub.received[1].payload, "q2");
}

TEST_P(ClientMosquitto, UnackedPublishesAreResentAfterReconnectAndQoS2ArrivesOnce) {
  Device watcher(GetParam());
  ASSERT_TRUE(watcher.connect(broker().port(), "watcher", true).has_value());
  const std::array<Subscription, 1> subs{Subscription{"edgekit/resend/#", {QoS::ExactlyOnce}}};
  std::array<ReasonCode, 1> codes{};
  ASSERT_TRUE(watcher.client.subscribe(subs, codes, 5s).has_value());

  Device dev(GetParam());
  ASSERT_TRUE(dev.connect(broker().port(), "resender", true).has_value());
  ASSERT_TRUE(dev.client.disconnect().has_value());
  ASSERT_TRUE(dev.connect(broker().port(), "resender", false).has_value());
  Publish p1;
  p1.topic = "edgekit/resend/1";
  p1.payload = as_bytes("at-least-once");
  p1.qos = QoS::AtLeastOnce;
  Publish p2 = p1;
  p2.topic = "edgekit/resend/2";
  p2.payload = as_bytes("exactly-once");
  p2.qos = QoS::ExactlyOnce;
  ASSERT_TRUE(dev.client.publish(p1, 5s).has_value());
  ASSERT_TRUE(dev.client.publish(p2, 5s).has_value());
  // The link dies before the client reads any acknowledgement.
  dev.tcp.close();
  EXPECT_FALSE(dev.client.process_loop(100ms).has_value());
  EXPECT_EQ(dev.session.publishes_in_flight(), 2u);

  auto again = dev.connect(broker().port(), "resender", false);
  ASSERT_TRUE(again.has_value()) << to_string(again.error());
  EXPECT_TRUE(again->session_present);
  ASSERT_TRUE(dev.run_until([&] { return dev.completed.size() >= 2; }));
  EXPECT_EQ(dev.session.publishes_in_flight(), 0u);
  EXPECT_EQ(dev.lost, 0);

  ASSERT_TRUE(watcher.run_until([&] {
    return std::any_of(watcher.received.begin(), watcher.received.end(),
                       [](const Received& r) { return r.payload == "exactly-once"; });
  }));
  (void)watcher.run_until([] { return false; }, 500ms);
  const auto twice = std::count_if(watcher.received.begin(), watcher.received.end(),
                                   [](const Received& r) { return r.payload == "exactly-once"; });
  EXPECT_EQ(twice, 1);  // QoS 2: never twice
  const auto once = std::count_if(watcher.received.begin(), watcher.received.end(),
                                  [](const Received& r) { return r.payload == "at-least-once"; });
  EXPECT_GE(once, 1);  // QoS 1: at least once
}

TEST_P(ClientMosquitto, WillIsPublishedWhenTheLinkDies) {
  Device watcher(GetParam());
  ASSERT_TRUE(watcher.connect(broker().port(), "will-watcher", true).has_value());
  const std::array<Subscription, 1> subs{Subscription{"edgekit/will", {QoS::AtLeastOnce}}};
  std::array<ReasonCode, 1> codes{};
  ASSERT_TRUE(watcher.client.subscribe(subs, codes, 5s).has_value());

  Device dev(GetParam());
  auto t = TcpTransport::connect("127.0.0.1", broker().port(), edgekit::Duration{2000});
  ASSERT_TRUE(t.has_value());
  dev.tcp = std::move(*t);
  ConnectOptions o;
  o.version = GetParam();
  o.client_id = "mortal";
  Will w;
  w.topic = "edgekit/will";
  w.payload = as_bytes("gone");
  w.qos = QoS::AtLeastOnce;
  o.will = w;
  ASSERT_TRUE(dev.client.connect(o, 5s).has_value());
  dev.tcp.close();  // no DISCONNECT: the broker must publish the will

  ASSERT_TRUE(watcher.run_until([&] { return !watcher.received.empty(); }));
  EXPECT_EQ(watcher.received[0].topic, "edgekit/will");
  EXPECT_EQ(watcher.received[0].payload, "gone");
}

INSTANTIATE_TEST_SUITE_P(BothVersions, ClientMosquitto,
                         ::testing::Values(Version::V311, Version::V5), version_name);

}  // namespace
}  // namespace edgekit::mqtt::test
