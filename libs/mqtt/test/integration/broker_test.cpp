// Integration tests against a real Mosquitto 2 started by the fixture on a free loopback port.
#include <signal.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "broker_client.hpp"
#include "edgekit/testing/mosquitto.hpp"

namespace edgekit::mqtt::integration {
namespace {

using namespace std::chrono_literals;
using edgekit::testing::MosquittoFixture;

class VersionedBroker : public MosquittoFixture, public ::testing::WithParamInterface<Version> {
 protected:
  Version v() const { return GetParam(); }
  std::string id(const char* role) const { return std::string(role) + "-" + name(v()); }
};

std::string version_name(const ::testing::TestParamInfo<Version>& info) { return name(info.param); }

// --- QoS 0 / 1 / 2 ---------------------------------------------------------------------------

class QoSDelivery : public VersionedBroker {};

TEST_P(QoSDelivery, EveryMessageArrivesInOrderAtEachQoS) {
  BrokerClient sub(broker().port()), pub(broker().port());
  ASSERT_TRUE(sub.connect(v(), id("sub")));
  ASSERT_TRUE(pub.connect(v(), id("pub")));
  ASSERT_EQ(sub.subscribe("it/qos/#", QoS::ExactlyOnce), ReasonCode::GrantedQoS2);

  constexpr int kPerQoS = 50;
  std::vector<std::string> payloads;
  for (int q = 0; q <= 2; ++q) {
    for (int i = 0; i < kPerQoS; ++i) payloads.push_back("q" + std::to_string(q) + "-" + std::to_string(i));
  }
  std::size_t k = 0;
  for (int q = 0; q <= 2; ++q) {
    const std::string topic = "it/qos/" + std::to_string(q);
    for (int i = 0; i < kPerQoS; ++i, ++k) {
      Publish m;
      m.topic = topic;
      m.payload = as_bytes(payloads[k]);
      m.qos = static_cast<QoS>(q);
      auto r = pub.client().publish_and_wait(m, Duration{5000});
      ASSERT_TRUE(r) << to_string(r.error());
      EXPECT_EQ(*r, ReasonCode::Success);
    }
  }
  ASSERT_TRUE(sub.wait_for_messages(payloads.size())) << "got " << sub.received.size();
  // Mosquitto keeps order per topic and QoS; our subscriber must not reorder either.
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    EXPECT_EQ(sub.received[i].payload, payloads[i]);
    EXPECT_EQ(static_cast<int>(sub.received[i].qos), static_cast<int>(i / kPerQoS));
  }
  EXPECT_EQ(pub.completed.size(), 2u * kPerQoS);  // QoS 1 and 2 completions
  EXPECT_TRUE(pub.client().disconnect());
  EXPECT_TRUE(sub.client().disconnect());
}

TEST_P(QoSDelivery, GrantedQoSDowngradesDelivery) {
  BrokerClient sub(broker().port()), pub(broker().port());
  ASSERT_TRUE(sub.connect(v(), id("sub")));
  ASSERT_TRUE(pub.connect(v(), id("pub")));
  ASSERT_EQ(sub.subscribe("it/down", QoS::AtLeastOnce), ReasonCode::GrantedQoS1);
  Publish m;
  m.topic = "it/down";
  m.payload = as_bytes("two");
  m.qos = QoS::ExactlyOnce;
  ASSERT_TRUE(pub.client().publish_and_wait(m, Duration{5000}));
  ASSERT_TRUE(sub.wait_for_messages(1));
  EXPECT_EQ(sub.received[0].qos, QoS::AtLeastOnce);
}

INSTANTIATE_TEST_SUITE_P(Mosquitto, QoSDelivery, ::testing::Values(Version::V311, Version::V5), version_name);

// --- Retained messages -------------------------------------------------------------------------

class Retained : public VersionedBroker {};

TEST_P(Retained, NewSubscriberGetsRetainedMessageAndEmptyPayloadClearsIt) {
  BrokerClient pub(broker().port());
  ASSERT_TRUE(pub.connect(v(), id("pub")));
  Publish m;
  m.topic = "it/retained";
  m.payload = as_bytes("last known state");
  m.qos = QoS::AtLeastOnce;
  m.retain = true;
  ASSERT_TRUE(pub.client().publish_and_wait(m, Duration{5000}));

  BrokerClient late(broker().port());
  ASSERT_TRUE(late.connect(v(), id("late")));
  late.subscribe("it/retained", QoS::AtLeastOnce);
  ASSERT_TRUE(late.wait_for_messages(1));
  EXPECT_EQ(late.received[0].payload, "last known state");
  EXPECT_TRUE(late.received[0].retain);

  m.payload = {};
  ASSERT_TRUE(pub.client().publish_and_wait(m, Duration{5000}));
  BrokerClient later(broker().port());
  ASSERT_TRUE(later.connect(v(), id("later")));
  later.subscribe("it/retained", QoS::AtLeastOnce);
  EXPECT_FALSE(later.wait_for_messages(1, Duration{300}));
}

INSTANTIATE_TEST_SUITE_P(Mosquitto, Retained, ::testing::Values(Version::V311, Version::V5), version_name);

// --- Will message --------------------------------------------------------------------------------

class WillMessage : public VersionedBroker {};

TEST_P(WillMessage, PublishedWhenTheConnectionDropsWithoutDisconnect) {
  BrokerClient watcher(broker().port());
  ASSERT_TRUE(watcher.connect(v(), id("watcher")));
  watcher.subscribe("it/will/#", QoS::AtLeastOnce);

  BrokerClient device(broker().port());
  ConnectOptions o;
  o.version = v();
  const std::string client_id = id("device");
  o.client_id = client_id;
  Will will;
  will.topic = "it/will/device";
  will.payload = as_bytes("device went offline");
  will.qos = QoS::AtLeastOnce;
  if (v() == Version::V5) will.properties.set_content_type("text/plain");
  o.will = will;
  ASSERT_TRUE(device.connect(o));
  device.tcp().close();  // the device vanishes: no DISCONNECT

  ASSERT_TRUE(watcher.wait_for_messages(1));
  EXPECT_EQ(watcher.received[0].topic, "it/will/device");
  EXPECT_EQ(watcher.received[0].payload, "device went offline");
  if (v() == Version::V5) {
    EXPECT_EQ(watcher.received[0].content_type, "text/plain");
  }
}

TEST_P(WillMessage, NotPublishedAfterNormalDisconnect) {
  BrokerClient watcher(broker().port());
  ASSERT_TRUE(watcher.connect(v(), id("watcher")));
  watcher.subscribe("it/will/#", QoS::AtLeastOnce);
  BrokerClient device(broker().port());
  ConnectOptions o;
  o.version = v();
  const std::string client_id = id("device");
  o.client_id = client_id;
  Will will;
  will.topic = "it/will/device";
  will.payload = as_bytes("offline");
  o.will = will;
  ASSERT_TRUE(device.connect(o));
  ASSERT_TRUE(device.client().disconnect());
  EXPECT_FALSE(watcher.wait_for_messages(1, Duration{500}));
}

INSTANTIATE_TEST_SUITE_P(Mosquitto, WillMessage, ::testing::Values(Version::V311, Version::V5), version_name);

TEST_F(MosquittoFixture, WillSentOnDisconnectWithWillMessageReason) {
  BrokerClient watcher(broker().port());
  ASSERT_TRUE(watcher.connect(Version::V5, "watcher"));
  watcher.subscribe("it/will/#", QoS::AtLeastOnce);
  BrokerClient device(broker().port());
  ConnectOptions o;
  o.version = Version::V5;  // Disconnect with Will Message is MQTT 5
  o.client_id = "device";
  Will will;
  will.topic = "it/will/device";
  will.payload = as_bytes("asked for it");
  o.will = will;
  ASSERT_TRUE(device.connect(o));
  ASSERT_TRUE(device.client().disconnect(ReasonCode::DisconnectWithWillMessage));
  ASSERT_TRUE(watcher.wait_for_messages(1));
  EXPECT_EQ(watcher.received[0].payload, "asked for it");
}

// --- Keep-alive ------------------------------------------------------------------------------------

class KeepAlive : public VersionedBroker {};

TEST_P(KeepAlive, IdleClientStaysConnectedByPinging) {
  BrokerClient c(broker().port());
  ConnectOptions o;
  o.version = v();
  const std::string client_id = id("idle");
  o.client_id = client_id;
  o.keep_alive_seconds = 1;
  ASSERT_TRUE(c.connect(o));
  // Mosquitto drops a client silent for 1.5 × keep-alive; 3.5 s of idling needs pings.
  auto r = c.run_for(Duration{3500});
  EXPECT_TRUE(r) << to_string(r.error());
  EXPECT_TRUE(c.client().connected());
  EXPECT_TRUE(c.client().ping(Duration{2000}));
}

TEST_P(KeepAlive, UnansweredPingTimesOutWithKeepAliveTimeout) {
  BrokerClient c(broker().port());
  ConnectOptions o;
  o.version = v();
  const std::string client_id = id("stalled");
  o.client_id = client_id;
  o.keep_alive_seconds = 1;
  ASSERT_TRUE(c.connect(o));
  // Freeze the broker: the TCP connection stays up but nothing answers the PINGREQ.
  ASSERT_EQ(::kill(broker().pid(), SIGSTOP), 0);
  auto r = c.run_for(Duration{6000});
  ::kill(broker().pid(), SIGCONT);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::KeepAliveTimeout);
  EXPECT_FALSE(c.client().connected());
  EXPECT_EQ(c.client().fatal_error(), Errc::KeepAliveTimeout);
}

INSTANTIATE_TEST_SUITE_P(Mosquitto, KeepAlive, ::testing::Values(Version::V311, Version::V5), version_name);

// --- MQTT 5 properties through the broker -----------------------------------------------------------

TEST_F(MosquittoFixture, Mqtt5MessagePropertiesRoundTripThroughTheBroker) {
  BrokerClient sub(broker().port()), pub(broker().port());
  ASSERT_TRUE(sub.connect(Version::V5, "props-sub"));
  ASSERT_TRUE(pub.connect(Version::V5, "props-pub"));
  Properties sp;
  const std::uint32_t sub_id[] = {42};
  sp.subscription_identifiers = SubscriptionIdentifiers(sub_id);
  ASSERT_EQ(sub.subscribe("it/props/+", QoS::AtLeastOnce, sp), ReasonCode::GrantedQoS1);

  const UserProperty ups[] = {{"sensor", "temp"}, {"unit", "C"}, {"sensor", "again"}};
  Publish m;
  m.topic = "it/props/a";
  m.payload = as_bytes("21.5");
  m.qos = QoS::AtLeastOnce;
  m.properties.user_properties = UserProperties(ups);
  m.properties.set_content_type("text/plain");
  m.properties.set_response_topic("it/reply/a");
  m.properties.set_correlation_data(as_bytes("corr-7"));
  m.properties.set_message_expiry_interval(120);
  m.properties.set_payload_format_utf8(true);
  ASSERT_TRUE(pub.client().publish_and_wait(m, Duration{5000}));
  ASSERT_TRUE(sub.wait_for_messages(1));
  const Received& r = sub.received[0];
  EXPECT_EQ(r.payload, "21.5");
  ASSERT_EQ(r.user_properties.size(), 3u);  // order and duplicates kept [MQTT-3.3.2-18]
  EXPECT_EQ(r.user_properties[0], (std::pair<std::string, std::string>{"sensor", "temp"}));
  EXPECT_EQ(r.user_properties[1], (std::pair<std::string, std::string>{"unit", "C"}));
  EXPECT_EQ(r.user_properties[2], (std::pair<std::string, std::string>{"sensor", "again"}));
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_EQ(r.response_topic, "it/reply/a");
  EXPECT_EQ(r.correlation_data, "corr-7");
  ASSERT_TRUE(r.message_expiry.has_value());
  EXPECT_LE(*r.message_expiry, 120u);
  EXPECT_GE(*r.message_expiry, 118u);
  EXPECT_EQ(r.payload_format_utf8, true);
  EXPECT_EQ(r.subscription_ids, std::vector<std::uint32_t>{42});
}

TEST_F(MosquittoFixture, Mqtt5ServerAssignsClientIdentifier) {
  BrokerClient c(broker().port());
  auto r = c.connect(Version::V5, "");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->properties.assigned_client_identifier().has_value());
  EXPECT_FALSE(c.session().client_id().empty());
  EXPECT_EQ(c.session().client_id(), *r->properties.assigned_client_identifier());
}

TEST_F(MosquittoFixture, Mqtt5TopicAliasesAreUsedAndResolved) {
  BrokerClient sub(broker().port()), pub(broker().port());
  ASSERT_TRUE(sub.connect(Version::V5, "alias-sub"));
  ASSERT_TRUE(pub.connect(Version::V5, "alias-pub"));
  sub.subscribe("it/alias/#", QoS::AtLeastOnce);
  for (int i = 0; i < 5; ++i) {
    Publish m;
    m.topic = "it/alias/a-rather-long-topic-name-worth-an-alias";
    std::string p = "n" + std::to_string(i);
    m.payload = as_bytes(p);
    m.qos = QoS::AtLeastOnce;
    ASSERT_TRUE(pub.client().publish_and_wait(m, Duration{5000}));
  }
  ASSERT_TRUE(sub.wait_for_messages(5));
  for (const auto& r : sub.received) EXPECT_EQ(r.topic, "it/alias/a-rather-long-topic-name-worth-an-alias");
}

// --- Refusals and limits ---------------------------------------------------------------------------

class Refusal : public MosquittoFixture, public ::testing::WithParamInterface<Version> {
 protected:
  edgekit::testing::MosquittoOptions broker_options() const override {
    edgekit::testing::MosquittoOptions o;
    o.allow_anonymous = false;
    o.users.push_back({"device", "correct horse"});
    return o;
  }
};

TEST_P(Refusal, WrongPasswordIsReportedWithTheBrokersReason) {
  BrokerClient c(broker().port());
  ConnectOptions o;
  o.version = GetParam();
  o.client_id = "refused";
  o.username = "device";
  o.password = as_bytes("wrong");
  auto r = c.connect(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::ConnectionRefused);
  // 3.1.1 return code 4 and MQTT 5 0x86 both read as BadUserNameOrPassword; Mosquitto answers
  // a wrong password with NotAuthorized (0x87 / 5) in some versions, so accept either.
  EXPECT_TRUE(c.client().server_reason() == ReasonCode::BadUserNameOrPassword ||
              c.client().server_reason() == ReasonCode::NotAuthorized)
      << to_string(c.client().server_reason());
  o.password = as_bytes("correct horse");
  EXPECT_TRUE(c.connect(o));
}

INSTANTIATE_TEST_SUITE_P(Mosquitto, Refusal, ::testing::Values(Version::V311, Version::V5), version_name);

TEST_F(MosquittoFixture, Mqtt311PacketLargerThanReceiveBufferIsReportedNotDropped) {
  BrokerClient small(broker().port(), /*rx_size=*/512);
  BrokerClient pub(broker().port());
  ASSERT_TRUE(small.connect(Version::V311, "small"));
  ASSERT_TRUE(pub.connect(Version::V311, "big-pub"));
  small.subscribe("it/big", QoS::AtLeastOnce);
  std::string big(4096, 'x');
  Publish m;
  m.topic = "it/big";
  m.payload = as_bytes(big);
  m.qos = QoS::AtLeastOnce;
  ASSERT_TRUE(pub.client().publish_and_wait(m, Duration{5000}));
  EXPECT_FALSE(small.wait_for_messages(1, Duration{2000}));
  EXPECT_EQ(small.last_error, Errc::IncomingPacketTooLarge);
  EXPECT_FALSE(small.client().connected());
}

TEST_F(MosquittoFixture, Mqtt5BrokerHonoursAdvertisedMaximumPacketSize) {
  // The client advertises its 512-byte buffer as Maximum Packet Size; Mosquitto then drops the
  // oversized message for this subscriber [MQTT-3.1.2-25] and the connection stays healthy.
  BrokerClient small(broker().port(), 512);
  BrokerClient pub(broker().port());
  ASSERT_TRUE(small.connect(Version::V5, "small5"));
  ASSERT_TRUE(pub.connect(Version::V5, "big-pub5"));
  small.subscribe("it/big", QoS::AtLeastOnce);
  std::string big(4096, 'x');
  Publish m;
  m.topic = "it/big";
  m.payload = as_bytes(big);
  m.qos = QoS::AtLeastOnce;
  ASSERT_TRUE(pub.client().publish_and_wait(m, Duration{5000}));
  m.payload = as_bytes("small one");
  ASSERT_TRUE(pub.client().publish_and_wait(m, Duration{5000}));
  ASSERT_TRUE(small.wait_for_messages(1));
  EXPECT_EQ(small.received[0].payload, "small one");
  EXPECT_TRUE(small.client().connected());
}

}  // namespace
}  // namespace edgekit::mqtt::integration
