// The scripted broker, driven by hand: the "client" here writes encoded packets straight into the
// MemoryTransport, as the real client will.
#include "edgekit/testing/scripted_broker.hpp"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <variant>

namespace edgekit::testing {
namespace {

using mqtt::PacketType;
using mqtt::QoS;
using mqtt::Version;
using transport::IoStatus;

// Writes `packet` as a client would (looping over partial writes).
void client_writes(MemoryTransport& t, const mqtt::Packet& packet, Version v) {
  ByteVector bytes = encode_packet(packet, v);
  std::size_t off = 0;
  while (off < bytes.size()) {
    auto r = t.send(std::span<const std::byte>(bytes).subspan(off));
    ASSERT_EQ(r.status, IoStatus::Ok);
    off += r.bytes;
  }
}

// Reads every queued inbound byte and decodes the packets in it.
std::vector<std::string> client_reads(MemoryTransport& t, Version v) {
  ByteVector all;
  std::array<std::byte, 256> buf{};
  for (;;) {
    auto r = t.recv(buf);
    if (r.status != IoStatus::Ok) break;
    all.insert(all.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.bytes));
  }
  std::vector<std::string> out;
  std::size_t off = 0;
  while (off < all.size()) {
    auto f = mqtt::read_frame(std::span<const std::byte>(all).subspan(off));
    if (!f || !f->complete) {
      out.emplace_back("<garbage>");
      break;
    }
    out.push_back(
        describe_frame(std::span<const std::byte>(all).subspan(off, f->header.packet_size()), v));
    off += f->header.packet_size();
  }
  return out;
}

mqtt::PubAck puback(std::uint16_t id) {
  mqtt::PubAck a;
  a.packet_id = id;
  return a;
}

mqtt::Connect make_connect(std::string_view id) {
  mqtt::Connect c;
  c.version = Version::V5;
  c.client_id = id;
  c.keep_alive = 30;
  return c;
}

mqtt::Publish make_publish(std::string_view topic, QoS qos, std::uint16_t id) {
  mqtt::Publish p;
  p.topic = topic;
  p.qos = qos;
  p.packet_id = id;
  p.payload = mqtt::as_bytes("payload");
  return p;
}

// Collects the gtest failures raised inside `body` instead of failing this test.
template <class F>
std::vector<std::string> failures_of(F&& body) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    body();
  }
  std::vector<std::string> out;
  for (int i = 0; i < results.size(); ++i) out.emplace_back(results.GetTestPartResult(i).message());
  return out;
}

TEST(ScriptedBrokerTest, RepliesWhenTheExpectedPacketArrives) {
  MemoryTransport net;
  ScriptedBroker broker(net, Version::V5);
  mqtt::ConnAck ack;
  ack.session_present = true;
  broker.expect(make_connect("dev-1")).reply_with(ack);
  EXPECT_FALSE(broker.done());
  EXPECT_EQ(net.inbound_pending(), 0u);
  client_writes(net, make_connect("dev-1"), Version::V5);
  EXPECT_TRUE(broker.done());
  auto got = client_reads(net, Version::V5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].find("CONNACK"), std::string::npos) << got[0];
  EXPECT_NE(got[0].find("session_present = true"), std::string::npos) << got[0];
  EXPECT_EQ(broker.received().size(), 1u);
}

TEST(ScriptedBrokerTest, ReassemblesAPacketWrittenInPieces) {
  MemoryTransport net;
  net.set_send_cap(3);
  ScriptedBroker broker(net, Version::V311);
  broker.expect(make_publish("a/b", QoS::AtLeastOnce, 7)).reply_with(puback(7));
  client_writes(net, make_publish("a/b", QoS::AtLeastOnce, 7), Version::V311);
  EXPECT_TRUE(broker.done());
  EXPECT_GT(net.stats().send_calls, 3u);
  auto got = client_reads(net, Version::V311);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].find("PUBACK"), std::string::npos) << got[0];
}

TEST(ScriptedBrokerTest, ReportsAMismatchFieldByField) {
  MemoryTransport net;
  auto failures = failures_of([&] {
    ScriptedBroker broker(net, Version::V5);
    broker.expect(make_publish("a/b", QoS::AtLeastOnce, 7)).reply_with(puback(7));
    client_writes(net, make_publish("a/c", QoS::AtLeastOnce, 7), Version::V5);
    EXPECT_EQ(broker.mismatches(), 1u);
    EXPECT_FALSE(broker.done());
    (void)broker.verify();
  });
  ASSERT_EQ(failures.size(), 2u);  // the mismatch, then the unmet expectation
  EXPECT_NE(failures[0].find("topic: expected \"a/b\", got \"a/c\""), std::string::npos)
      << failures[0];
  EXPECT_EQ(failures[0].find("qos:"), std::string::npos) << failures[0];  // equal fields not listed
  EXPECT_NE(failures[1].find("never met"), std::string::npos) << failures[1];
  EXPECT_EQ(net.inbound_pending(), 0u);  // no reply to a wrong packet
}

TEST(ScriptedBrokerTest, ReportsAWrongPacketType) {
  MemoryTransport net;
  auto failures = failures_of([&] {
    ScriptedBroker broker(net, Version::V5);
    broker.expect(PacketType::Subscribe);
    client_writes(net, mqtt::PingReq{}, Version::V5);
    (void)broker.verify();
  });
  ASSERT_GE(failures.size(), 1u);
  EXPECT_NE(failures[0].find("any SUBSCRIBE"), std::string::npos) << failures[0];
  EXPECT_NE(failures[0].find("PINGREQ"), std::string::npos) << failures[0];
}

TEST(ScriptedBrokerTest, ReportsPacketsAfterTheScriptEnded) {
  MemoryTransport net;
  auto failures = failures_of([&] {
    ScriptedBroker broker(net, Version::V5);
    client_writes(net, make_publish("x", QoS::AtMostOnce, 0), Version::V5);
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_NE(failures[0].find("after the script ended"), std::string::npos) << failures[0];
  EXPECT_NE(failures[0].find("topic = \"x\""), std::string::npos) << failures[0];
}

TEST(ScriptedBrokerTest, DestructorReportsUnmetExpectations) {
  MemoryTransport net;
  auto failures = failures_of([&] {
    ScriptedBroker broker(net, Version::V5);
    broker.expect(PacketType::Disconnect);
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_NE(failures[0].find("DISCONNECT"), std::string::npos) << failures[0];
}

TEST(ScriptedBrokerTest, ResponderAnswersWithTheReceivedPacketId) {
  MemoryTransport net;
  ScriptedBroker broker(net, Version::V5);
  static constexpr std::array<mqtt::ReasonCode, 1> kGranted{mqtt::ReasonCode::GrantedQoS1};
  broker.expect(PacketType::Subscribe).reply_with([](const mqtt::Packet& p) {
    mqtt::SubAck ack;
    ack.packet_id = std::get<mqtt::Subscribe>(p).packet_id;
    ack.reason_codes = kGranted;
    return std::vector<mqtt::Packet>{ack};
  });
  const std::array<mqtt::Subscription, 1> subs{mqtt::Subscription{"t/#", {QoS::AtLeastOnce}}};
  mqtt::Subscribe sub;
  sub.packet_id = 42;
  sub.subscriptions = mqtt::Subscriptions(std::span<const mqtt::Subscription>(subs));
  client_writes(net, sub, Version::V5);
  auto got = client_reads(net, Version::V5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].find("SUBACK"), std::string::npos) << got[0];
  EXPECT_NE(got[0].find("packet_id = 42"), std::string::npos) << got[0];
  EXPECT_NE(got[0].find("GrantedQoS1"), std::string::npos) << got[0];
}

TEST(ScriptedBrokerTest, TimesRepeatsAnExpectationAndThenCloseEndsTheStream) {
  MemoryTransport net;
  ScriptedBroker broker(net, Version::V5);
  broker.expect(mqtt::PingReq{}).reply_with(mqtt::PingResp{}).times(2);
  broker.expect(mqtt::Disconnect{}).then_close();
  client_writes(net, mqtt::PingReq{}, Version::V5);
  client_writes(net, mqtt::PingReq{}, Version::V5);
  EXPECT_FALSE(broker.done());
  client_writes(net, mqtt::Disconnect{}, Version::V5);
  EXPECT_TRUE(broker.done());
  EXPECT_EQ(client_reads(net, Version::V5).size(), 2u);
  std::array<std::byte, 4> buf{};
  EXPECT_EQ(net.recv(buf).status, IoStatus::Closed);
}

TEST(ScriptedBrokerTest, AutoPingRepliesWithoutScriptAndSendQueuesAtOnce) {
  MemoryTransport net;
  ScriptedBroker broker(net, Version::V311);
  broker.auto_reply_to_pings(true);
  broker.send(make_publish("news", QoS::AtMostOnce, 0));
  client_writes(net, mqtt::PingReq{}, Version::V311);
  auto got = client_reads(net, Version::V311);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NE(got[0].find("PUBLISH"), std::string::npos) << got[0];
  EXPECT_NE(got[1].find("PINGRESP"), std::string::npos) << got[1];
  EXPECT_TRUE(broker.done());
  EXPECT_EQ(broker.mismatches(), 0u);
}

TEST(ScriptedBrokerTest, ExpectMatchingUsesThePredicate) {
  MemoryTransport net;
  ScriptedBroker broker(net, Version::V5);
  broker
      .expect_matching("a QoS 1 PUBLISH with DUP set",
                       [](const mqtt::Packet& p) {
                         const auto* pub = std::get_if<mqtt::Publish>(&p);
                         return pub != nullptr && pub->qos == QoS::AtLeastOnce && pub->dup;
                       })
      .reply_with(puback(3));
  auto pub = make_publish("r", QoS::AtLeastOnce, 3);
  pub.dup = true;
  client_writes(net, pub, Version::V5);
  EXPECT_TRUE(broker.done());
  EXPECT_EQ(client_reads(net, Version::V5).size(), 1u);
}

TEST(ScriptedBrokerTest, TimedSendsArriveAtTheirSimulatedTime) {
  using namespace std::chrono_literals;
  ManualClock clock;
  MemoryTransport net;
  net.attach_clock(&clock);
  ScriptedBroker broker(net, Version::V5);
  broker.attach_clock(clock);
  mqtt::Disconnect bye;
  bye.reason_code = mqtt::ReasonCode::ServerShuttingDown;
  broker.send_after(7s, bye);
  // The first wait ends at its timeout with nothing to read ...
  EXPECT_EQ(net.wait(transport::Interest::Read, 5000), transport::WaitStatus::Timeout);
  EXPECT_EQ(clock.now().since_origin, 5000ms);
  // ... the second is woken when the DISCONNECT falls due, at 7 s, not at its own timeout.
  EXPECT_EQ(net.wait(transport::Interest::Read, 5000), transport::WaitStatus::Ready);
  EXPECT_EQ(clock.now().since_origin, 7000ms);
  auto got = client_reads(net, Version::V5);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].find("ServerShuttingDown"), std::string::npos) << got[0];
}

TEST(DescribeTest, ListsTheFieldsThatAreSet) {
  auto p = make_publish("a/b", QoS::ExactlyOnce, 9);
  p.properties.set_message_expiry_interval(60);
  std::string d = describe_packet(p);
  EXPECT_NE(d.find("PUBLISH"), std::string::npos) << d;
  EXPECT_NE(d.find("qos = 2"), std::string::npos) << d;
  EXPECT_NE(d.find("packet_id = 9"), std::string::npos) << d;
  EXPECT_NE(d.find("payload = \"payload\""), std::string::npos) << d;
  EXPECT_NE(d.find("message_expiry_interval = 60"), std::string::npos) << d;
  EXPECT_EQ(d.find("content_type"), std::string::npos) << d;
  std::array<std::byte, 3> junk{std::byte{0x00}, std::byte{0x01}, std::byte{0xff}};
  EXPECT_NE(describe_frame(junk, Version::V5).find("undecodable"), std::string::npos);
}

}  // namespace
}  // namespace edgekit::testing
