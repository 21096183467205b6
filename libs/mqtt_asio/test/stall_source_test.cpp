// The driver's network faults and local addresses against a real Mosquitto: a stall (the link
// silent both ways without closing) shorter than the keep-alive ends by itself with the queued
// bytes delivered; a longer one is found by the keep-alive and the session resumes on a new
// connection with the message resent; connections bound to two loopback source addresses reach
// the broker from those addresses; a source address that is not this host's fails the attempt.

#include <edgekit/testing/mosquitto.hpp>

#include <asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>

#include "evloop_test_support.hpp"

namespace edgekit::mqtt_asio::test {
namespace {

using namespace std::chrono_literals;
using mqtt::EventType;
using Clock = std::chrono::steady_clock;

constexpr Duration kTimeout{5000};


mqtt::ConnectOptions options(std::string_view id, std::uint16_t keep_alive, bool clean) {
  mqtt::ConnectOptions o;
  o.version = mqtt::Version::V5;
  o.client_id = id;
  o.keep_alive_seconds = keep_alive;
  o.clean_start = clean;
  o.properties.set_session_expiry_interval(300);  // the session outlives the connection
  return o;
}

mqtt::Publish qos1(std::string_view topic, std::string_view payload) {
  mqtt::Publish p;
  p.topic = topic;
  p.payload = mqtt::as_bytes(payload);
  p.qos = mqtt::QoS::AtLeastOnce;
  return p;
}

class DriverFaults : public testing::MosquittoFixture {
 protected:
  asio::io_context io;
  Driver driver{io};
};

TEST_F(DriverFaults, StallShorterThanTheKeepAliveEndsByItself) {
  Recorder rec;
  Device d(driver, rec);
  Clock::time_point stalled_at{};
  rec.on_event_fn = [&](Connection& c, const mqtt::Event& e) {
    if (e.type == EventType::Connected) {
      const std::array<mqtt::Subscription, 1> sub{
          mqtt::Subscription{"stall/short", mqtt::SubscribeOptions{mqtt::QoS::AtLeastOnce}}};
      ASSERT_TRUE(c.subscribe(sub));
    } else if (e.type == EventType::SubscribeCompleted) {
      c.stall(Duration{1000});
      stalled_at = Clock::now();
      ASSERT_TRUE(c.publish(qos1("stall/short", "held")));
    }
  };
  ASSERT_TRUE(d.conn.start({loopback(broker().port())}, options("stall-short", 2, true), kTimeout));
  ASSERT_TRUE(run_until(io, [&] { return stalled_at != Clock::time_point{}; }, 5s));
  // Inside the stall nothing moves: the PUBLISH waits in the engine, the connection stays up.
  run_until(io, [] { return false; }, 600ms);
  EXPECT_TRUE(d.conn.stalled());
  EXPECT_EQ(rec.count(EventType::PublishCompleted), 0);
  EXPECT_EQ(rec.count(EventType::MessageReceived), 0);
  EXPECT_TRUE(d.conn.engine().connected());
  // Then the queued bytes flow: the broker acknowledges and delivers the message back.
  ASSERT_TRUE(run_until(io, [&] {
    return rec.count(EventType::PublishCompleted) == 1 && rec.count(EventType::MessageReceived) == 1;
  }, 5s));
  EXPECT_GE(Clock::now() - stalled_at, 1000ms);
  EXPECT_FALSE(d.conn.stalled());
  EXPECT_EQ(rec.closed, 0);
  EXPECT_EQ(rec.count(EventType::ConnectionClosed), 0);
  d.conn.stop();
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 1; }, 5s));
}

TEST_F(DriverFaults, StallLongerThanTheKeepAliveIsFoundAndTheSessionResumes) {
  Recorder rec;
  Device d(driver, rec);
  Clock::time_point stalled_at{};
  rec.on_event_fn = [&](Connection& c, const mqtt::Event& e) {
    if (e.type == EventType::Connected && stalled_at == Clock::time_point{}) {
      c.stall(Duration{60000});  // far beyond keep-alive + ping timeout (1 s + 1.5 s)
      stalled_at = Clock::now();
      ASSERT_TRUE(c.publish(qos1("stall/long", "resent")));
    }
  };
  ASSERT_TRUE(d.conn.start({loopback(broker().port())}, options("stall-long", 1, true), kTimeout));
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 1; }, 10s));
  // The keep-alive found the dead link: not before one keep-alive interval, not as a hang.
  EXPECT_GE(Clock::now() - stalled_at, 1000ms);
  ASSERT_EQ(rec.count(EventType::ConnectionClosed), 1);
  for (const auto& s : rec.events) {
    if (s.type == EventType::ConnectionClosed) {
      EXPECT_EQ(s.error, mqtt::Errc::KeepAliveTimeout);
    }
  }
  EXPECT_EQ(rec.count(EventType::PublishCompleted), 0);
  EXPECT_FALSE(d.conn.stalled());  // a closed connection is not stalled any more
  // A new connection resumes the session: the unacknowledged PUBLISH is resent and completed.
  ASSERT_TRUE(d.conn.start({loopback(broker().port())}, options("stall-long", 1, false), kTimeout));
  ASSERT_TRUE(run_until(io, [&] { return rec.count(EventType::PublishCompleted) == 1; }, 5s));
  EXPECT_EQ(rec.count(EventType::MessageLost), 0);
  d.conn.stop();
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 2; }, 5s));
}

TEST_F(DriverFaults, ConnectionsFromTwoSourceAddressesReachTheBrokerFromThem) {
  const char* sources[] = {"127.0.0.1", "127.0.0.2"};
  Recorder rec;
  std::vector<std::unique_ptr<Device>> devices;
  for (int i = 0; i < 2; ++i) {
    devices.push_back(std::make_unique<Device>(driver, rec));
    Endpoint ep{loopback(broker().port())};
    ep.source_address = asio::ip::make_address(sources[i]);
    const std::string id = "src-" + std::to_string(i);
    ASSERT_TRUE(devices.back()->conn.start(ep, options(id, 60, true), kTimeout));
  }
  ASSERT_TRUE(run_until(io, [&] { return rec.count(EventType::Connected) == 2; }, 5s));
  const std::string log = broker().log();
  for (int i = 0; i < 2; ++i) {
    const auto local = devices[static_cast<std::size_t>(i)]->conn.local_endpoint();
    EXPECT_EQ(local.address().to_string(), sources[i]);
    EXPECT_NE(local.port(), 0);
    // The broker's side: Mosquitto logs the peer address of each new client.
    const std::string seen = std::string("New client connected from ") + sources[i] + ":" +
                             std::to_string(local.port()) + " as src-" + std::to_string(i);
    EXPECT_NE(log.find(seen), std::string::npos) << seen << "\n" << log;
  }
  for (auto& d : devices) d->conn.stop();
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 2; }, 5s));
  EXPECT_EQ(devices[0]->conn.local_endpoint(), asio::ip::tcp::endpoint{});  // idle: none
}

TEST_F(DriverFaults, SourceAddressNotOfThisHostFailsTheAttempt) {
  Recorder rec;
  Device d(driver, rec);
  Endpoint ep{loopback(broker().port())};
  ep.source_address = asio::ip::make_address("192.0.2.1");  // TEST-NET-1: no host has it
  ASSERT_TRUE(d.conn.start(ep, options("src-bad", 60, true), kTimeout));
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 1; }, 5s));
  EXPECT_EQ(rec.count(EventType::ConnectFailed), 1);
  EXPECT_EQ(rec.close_error.value(), EADDRNOTAVAIL) << rec.close_error.message();
}

}  // namespace
}  // namespace edgekit::mqtt_asio::test
