// The host tools' session storage (HostSession) against a scripted broker, in simulated time:
// what a broker may legally do to a host client must never end the connection.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "connection.hpp"
#include "edgekit/mqtt/client.hpp"
#include "edgekit/testing/manual_clock.hpp"
#include "edgekit/testing/memory_transport.hpp"
#include "edgekit/testing/scripted_broker.hpp"

namespace edgekit::tools {
namespace {

using namespace std::chrono_literals;

struct Received {
  std::vector<std::string> topics;
  std::vector<std::string> payloads;
  void operator()(mqtt::Client&, const mqtt::Event& e) {
    if (e.type != mqtt::EventType::MessageReceived || e.message == nullptr) return;
    topics.emplace_back(e.message->topic);
    payloads.emplace_back(reinterpret_cast<const char*>(e.message->payload.data()),
                          e.message->payload.size());
  }
};

class HostSessionTest : public ::testing::Test {
 protected:
  void start(mqtt::Version version, const mqtt::ConnAck& connack) {
    broker_ = std::make_unique<testing::ScriptedBroker>(net_, version);
    net_.attach_clock(&clock_);
    client_ = std::make_unique<mqtt::Client>(net_, clock_, host_.session(), rx_, tx_,
                                             mqtt::EventHandler::bind(received_));
    broker_->expect(mqtt::PacketType::Connect).reply_with(connack);
    mqtt::ConnectOptions o;
    o.version = version;
    o.client_id = "host";
    auto r = client_->connect(o, 5s);
    ASSERT_TRUE(r.has_value()) << mqtt::to_string(r.error());
  }
  // Runs the client until it has nothing more to read.
  void drain() {
    for (int i = 0; i < 100000 && net_.inbound_pending() > 0; ++i) {
      auto r = client_->process_loop(0ms);
      ASSERT_TRUE(r.has_value()) << mqtt::to_string(r.error());
    }
  }

  HostSession host_{kDefaultMaxPacketSize};
  testing::MemoryTransport net_;
  testing::ManualClock clock_;
  std::vector<std::byte> rx_ = std::vector<std::byte>(256 * 1024);
  std::vector<std::byte> tx_ = std::vector<std::byte>(256 * 1024);
  Received received_;
  std::unique_ptr<testing::ScriptedBroker> broker_;
  std::unique_ptr<mqtt::Client> client_;
};

// Point 6 of issue 11: the broker may assign an inbound alias to any topic (up to 65,535 bytes).
// With 128-byte alias slots the alias-only PUBLISH that follows ended the connection with
// TopicAliasInvalid (0x94) although the broker did nothing wrong.
TEST_F(HostSessionTest, KeepsEveryTopicTheBrokerAliases) {
  ASSERT_NO_FATAL_FAILURE(start(mqtt::Version::V5, mqtt::ConnAck{}));
  const std::string long_topic = "fleet/" + std::string(1000, 'x') + "/telemetry";
  const std::string longest_topic(65535, 't');
  for (const std::string* topic : {&long_topic, &longest_topic}) {
    mqtt::Publish assign;
    assign.topic = *topic;
    assign.payload = mqtt::as_bytes(std::string_view("first"));
    assign.properties.set_topic_alias(16);  // the highest alias the session announced
    broker_->send(assign);
    mqtt::Publish reuse;
    reuse.payload = mqtt::as_bytes(std::string_view("second"));
    reuse.properties.set_topic_alias(16);
    broker_->send(reuse);
  }
  ASSERT_NO_FATAL_FAILURE(drain());
  ASSERT_TRUE(client_->connected());
  ASSERT_EQ(received_.topics.size(), 4U);
  EXPECT_EQ(received_.topics[1], long_topic);
  EXPECT_EQ(received_.payloads[1], "second");
  EXPECT_EQ(received_.topics[3], longest_topic);
  EXPECT_EQ(host_.alias_slot_length(), 65535U);
}

// Point 7 of issue 11: MQTT 3.1.1 has no flow control, so a broker may keep any number of QoS 2
// messages in flight (Mosquitto: max_inflight_messages). With 64 fixed records the 65th ended
// the connection with SessionStateFull; the packet-id set never fills. Every id is used once,
// unreleased, then released: each message is delivered exactly once and PUBREC'd, and every
// PUBREL gets its PUBCOMP.
TEST_F(HostSessionTest, AcceptsEveryQoS2MessageInFlightWithoutFlowControl) {
  ASSERT_NO_FATAL_FAILURE(start(mqtt::Version::V311, mqtt::ConnAck{}));
  // Far beyond the 64 records a device-sized session keeps; every id would do (the set holds
  // all 65,535), 5,000 keeps the test quick under the sanitizers.
  constexpr int kMessages = 5000;
  broker_->expect(mqtt::PacketType::PubRec).times(kMessages + 1);
  broker_->expect(mqtt::PacketType::PubComp).times(kMessages);
  std::vector<std::string> payloads(kMessages);
  for (int i = 0; i < kMessages; ++i) {
    payloads[static_cast<std::size_t>(i)] = std::to_string(i);
    mqtt::Publish p;
    p.topic = "t";
    p.qos = mqtt::QoS::ExactlyOnce;
    p.packet_id = static_cast<std::uint16_t>(i + 1);
    p.payload = mqtt::as_bytes(payloads[static_cast<std::size_t>(i)]);
    broker_->send(p);
    if (i % 512 == 511) {
      ASSERT_NO_FATAL_FAILURE(drain());  // keeps the memory transport's queue short
    }
  }
  ASSERT_NO_FATAL_FAILURE(drain());
  // A resend of an unreleased one (DUP = 1) is acknowledged, not delivered again.
  mqtt::Publish dup;
  dup.topic = "t";
  dup.qos = mqtt::QoS::ExactlyOnce;
  dup.packet_id = 7;
  dup.dup = true;
  dup.payload = mqtt::as_bytes(std::string_view("6"));
  broker_->send(dup);
  ASSERT_NO_FATAL_FAILURE(drain());
  for (int i = 0; i < kMessages; ++i) {
    broker_->send(mqtt::PubRel{static_cast<std::uint16_t>(i + 1), mqtt::ReasonCode::Success, {}});
    if (i % 512 == 511) {
      ASSERT_NO_FATAL_FAILURE(drain());  // keeps the memory transport's queue short
    }
  }
  ASSERT_NO_FATAL_FAILURE(drain());
  ASSERT_TRUE(client_->connected());
  ASSERT_EQ(received_.payloads.size(), static_cast<std::size_t>(kMessages));
  EXPECT_EQ(received_.payloads, payloads);
  std::size_t pubrecs = 0;
  std::size_t pubcomps = 0;
  for (const auto& frame : broker_->received()) {
    const auto type = static_cast<std::uint8_t>(frame[0]) >> 4;
    pubrecs += type == 5;
    pubcomps += type == 7;
  }
  EXPECT_EQ(pubrecs, static_cast<std::size_t>(kMessages) + 1);
  EXPECT_EQ(pubcomps, static_cast<std::size_t>(kMessages));
}

}  // namespace
}  // namespace edgekit::tools
