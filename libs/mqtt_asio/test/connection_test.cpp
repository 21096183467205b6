// The event-loop driver against a real Mosquitto: connect, subscribe, QoS 0/1/2 round trips,
// keep-alive, the broker killed under many connections, refused connects, and mutual TLS with
// the client key in a PEM file or in a PKCS#11 token.

#include <edgekit/testing/mosquitto.hpp>
#include <edgekit/testing/test_pki.hpp>
#include <edgekit/tls/tls.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <asio/io_context.hpp>
#include <asio/write.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "evloop_test_support.hpp"
#include "tls_test_support.hpp"

namespace edgekit::mqtt_asio::test {
namespace {

using namespace std::chrono_literals;
using mqtt::EventType;

constexpr Duration kTimeout{5000};


mqtt::ConnectOptions options(std::string_view id, mqtt::Version v = mqtt::Version::V5,
                             std::uint16_t keep_alive = 60) {
  mqtt::ConnectOptions o;
  o.version = v;
  o.client_id = id;
  o.keep_alive_seconds = keep_alive;
  return o;
}

// On Connected: subscribes to `topic` at `qos`; when the SUBACK is in: `then(connection)`.
void subscribe_then(Recorder& rec, const std::string& topic, mqtt::QoS qos,
                    std::function<void(Connection&)> then) {
  rec.on_event_fn = [topic, qos, then = std::move(then)](Connection& c,
                                                                const mqtt::Event& e) {
    if (e.type == EventType::Connected) {
      const std::array<mqtt::Subscription, 1> sub{
          mqtt::Subscription{topic, mqtt::SubscribeOptions{qos}}};
      ASSERT_TRUE(c.subscribe(sub));
    } else if (e.type == EventType::SubscribeCompleted) {
      ASSERT_EQ(e.error, mqtt::Errc::Ok);
      then(c);
    }
  };
}

class EventLoop : public testing::MosquittoFixture,
                  public ::testing::WithParamInterface<mqtt::Version> {
 protected:
  asio::io_context io;
  Driver driver{io};
};

TEST_P(EventLoop, RoundTripsAtQoS012ThenDisconnectsCleanly) {
  Recorder rec;
  Device d(driver, rec);
  const std::string topic = "evloop/rt";
  const std::array<std::string, 3> payloads{"qos0", "qos1", "qos2"};
  subscribe_then(rec, topic, mqtt::QoS::ExactlyOnce, [&](Connection& c) {
    for (int q = 0; q < 3; ++q) {
      mqtt::Publish p;
      p.topic = topic;
      p.payload = mqtt::as_bytes(payloads[static_cast<std::size_t>(q)]);
      p.qos = static_cast<mqtt::QoS>(q);
      ASSERT_TRUE(c.publish(p));
    }
  });
  ASSERT_TRUE(d.conn.start({loopback(broker().port())}, options("rt", GetParam()), kTimeout));
  ASSERT_TRUE(run_until(
      io,
      [&] {
        return rec.count(EventType::MessageReceived) == 3 &&
               rec.count(EventType::PublishCompleted) == 2;
      },
      5s));
  // Each message arrives once, with the QoS it was published at (the subscription grants 2).
  std::vector<std::pair<std::string, mqtt::QoS>> got;
  for (const auto& s : rec.events) {
    if (s.type == EventType::MessageReceived) got.emplace_back(s.payload, s.qos);
  }
  ASSERT_EQ(got.size(), 3u);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got[0], std::make_pair(std::string("qos0"), mqtt::QoS::AtMostOnce));
  EXPECT_EQ(got[1], std::make_pair(std::string("qos1"), mqtt::QoS::AtLeastOnce));
  EXPECT_EQ(got[2], std::make_pair(std::string("qos2"), mqtt::QoS::ExactlyOnce));

  ASSERT_TRUE(d.conn.disconnect());
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 1; }, 5s));
  EXPECT_FALSE(rec.close_error) << rec.close_error.message();
  EXPECT_FALSE(d.conn.active());
  EXPECT_EQ(rec.count(EventType::ConnectionClosed), 0);  // a disconnect is not a failure
}

// on_events_done closes every group of events a read (or timer) produced: called after the
// group's last on_event, never without a new event, and, for a burst, for several events at once
// (fleetd commits the requests of one group together, before their acks are written).
TEST_P(EventLoop, EventsDoneFollowsEveryGroupOfEvents) {
  Recorder rec;
  Device d(driver, rec);
  const std::string topic = "evloop/groups";
  // QoS 0 out (no session records to run out of), QoS 1 back (each delivery acked); within the
  // engine's send queue (16 packets, the SUBSCRIBE's slot given back by then).
  constexpr int kBurst = 12;
  std::vector<std::string> payloads;  // written from this memory: it outlives the writes
  for (int i = 0; i < kBurst; ++i) payloads.push_back(std::to_string(i));
  subscribe_then(rec, topic, mqtt::QoS::AtLeastOnce, [&](Connection& c) {
    for (const std::string& payload : payloads) {
      mqtt::Publish p;
      p.topic = topic;
      p.payload = mqtt::as_bytes(payload);
      ASSERT_TRUE(c.publish(p));
    }
  });
  // The handler of the first message takes its time, as a busy application's would: the rest of
  // the burst is in the socket by the next read. Without it, whether any read brings more than
  // one message depended on timing (a quiet machine delivered one message per read: a flaky
  // test in a fresh-clone CI run of 2026-12-04).
  auto subscribe_and_publish = std::move(rec.on_event_fn);
  bool slowed = false;
  rec.on_event_fn = [&](Connection& c, const mqtt::Event& e) {
    subscribe_and_publish(c, e);
    if (e.type == EventType::MessageReceived && !slowed) {
      slowed = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  };
  ASSERT_TRUE(d.conn.start({loopback(broker().port())}, options("groups", GetParam()), kTimeout));
  ASSERT_TRUE(run_until(
      io,
      [&] {
        return rec.count(EventType::MessageReceived) == kBurst && !rec.done_at.empty() &&
               rec.done_at.back() == rec.events.size();
      },
      5s))
      << rec.events.size() << " events, " << rec.done_at.size() << " groups";
  for (std::size_t i = 1; i < rec.done_at.size(); ++i) {
    EXPECT_GT(rec.done_at[i], rec.done_at[i - 1]) << "on_events_done without a new event";
  }
  EXPECT_LT(rec.done_at.size(), rec.events.size()) << "no read brought more than one event";
  ASSERT_TRUE(d.conn.disconnect());
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 1; }, 5s));
}

TEST_P(EventLoop, KeepAlivePingsAnIdleConnection) {
  Recorder rec;
  Device d(driver, rec);
  ASSERT_TRUE(d.conn.start({loopback(broker().port())}, options("ka", GetParam(), 1), kTimeout));
  ASSERT_TRUE(run_until(io, [&] { return rec.count(EventType::Connected) == 1; }, 5s));
  // Idle for 2.6 keep-alive intervals: the timer sends PINGREQ, PINGRESP comes back, the broker
  // (which closes after 1.5 intervals of silence) keeps us.
  run_until(io, [] { return false; }, 2600ms);
  EXPECT_GE(rec.count(EventType::PingResponse), 2);
  EXPECT_TRUE(d.conn.engine().connected());
  EXPECT_EQ(rec.closed, 0);
  d.conn.stop();
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 1; }, 5s));
  EXPECT_EQ(rec.close_error, make_error_code(Errc::Stopped));
}

TEST_P(EventLoop, BrokerKilledEveryConnectionGetsItsCloseEvent) {
  constexpr int kDevices = 50;
  Recorder rec;
  std::vector<std::unique_ptr<Device>> devices;
  std::vector<std::string> ids;
  for (int i = 0; i < kDevices; ++i) {
    devices.push_back(std::make_unique<Device>(driver, rec));
    ids.push_back("kill-" + std::to_string(i));
  }
  for (int i = 0; i < kDevices; ++i) {
    ASSERT_TRUE(devices[static_cast<std::size_t>(i)]->conn.start(
        {loopback(broker().port())}, options(ids[static_cast<std::size_t>(i)], GetParam()),
        kTimeout));
  }
  ASSERT_TRUE(run_until(io, [&] { return rec.count(EventType::Connected) == kDevices; }, 10s));
  broker().kill();
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == kDevices; }, 10s));
  EXPECT_EQ(rec.count(EventType::ConnectionClosed), kDevices);
  for (const auto& s : rec.events) {
    if (s.type == EventType::ConnectionClosed) {
      EXPECT_TRUE(s.error == mqtt::Errc::TransportClosed || s.error == mqtt::Errc::TransportError);
    }
  }
  for (auto& d : devices) {
    EXPECT_FALSE(d->conn.active());
    EXPECT_TRUE(d->conn.transport_error());
  }
}

TEST_P(EventLoop, RefusedConnectIsAConnectFailedEvent) {
  Recorder rec;
  Device d(driver, rec);
  const std::uint16_t port = broker().port();
  broker().stop();
  ASSERT_TRUE(d.conn.start({loopback(port)}, options("refused", GetParam()), kTimeout));
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 1; }, 5s));
  ASSERT_EQ(rec.count(EventType::ConnectFailed), 1);
  EXPECT_EQ(rec.events.back().error, mqtt::Errc::TransportError);
  EXPECT_EQ(rec.close_error, asio::error::connection_refused) << rec.close_error.message();
  // Restartable: the same Connection and Session connect once the broker is back.
  ASSERT_TRUE(broker().restart());
  ASSERT_TRUE(d.conn.start({loopback(port)}, options("refused", GetParam()), kTimeout));
  ASSERT_TRUE(run_until(io, [&] { return rec.count(EventType::Connected) == 1; }, 5s));
  d.conn.stop();
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 2; }, 5s));
}

TEST_P(EventLoop, OnClosedMayRestartOrDestroyTheConnection) {
  // Restart from inside on_closed until the broker is back, then stop from inside a handler and
  // destroy the connection from inside on_closed (ASan checks that nothing touches it after).
  const std::uint16_t port = broker().port();
  broker().stop();
  Recorder rec;
  auto d = std::make_unique<Device>(driver, rec);
  int attempts = 0;
  rec.on_closed_fn = [&](Connection& c, std::error_code) {
    if (rec.count(EventType::Connected) == 0) {
      ++attempts;
      if (attempts == 3) {
        ASSERT_TRUE(broker().restart());
      }
      ASSERT_TRUE(c.start({loopback(port)}, options("restart", GetParam()), kTimeout));
    } else {
      d.reset();  // the last call for this start: the Connection may go
    }
  };
  rec.on_event_fn = [&](Connection& c, const mqtt::Event& e) {
    if (e.type == EventType::Connected) c.stop();
  };
  ASSERT_TRUE(d->conn.start({loopback(port)}, options("restart", GetParam()), kTimeout));
  ASSERT_TRUE(run_until(io, [&] { return d == nullptr; }, 10s));
  EXPECT_GE(attempts, 3);
  EXPECT_EQ(rec.count(EventType::Connected), 1);
  EXPECT_EQ(rec.count(EventType::ConnectFailed), attempts);
  EXPECT_EQ(rec.close_error, make_error_code(Errc::Stopped));
}

// Payloads far larger than the socket buffers: writes stop half way (would block) and resume
// from the engine's views when the socket drains, while the same loop reads the messages back.
// Checks every byte.
void big_payload_round_trip(asio::io_context& io, Driver& driver, const Endpoint& ep,
                            mqtt::Version version) {
  constexpr std::size_t kSize = 200 * 1024;
  constexpr int kMessages = 6;
  struct BigDevice {
    BigDevice(Driver& d, Recorder& r)
        : rx(kSize + 1024), session(state.storage()),
          conn(d, session, rx, state.tx, r) {}
    DeviceState<8, 2048> state;
    std::vector<std::byte> rx;
    mqtt::Session session;
    Connection conn;
  };
  std::vector<std::string> payloads;
  for (int i = 0; i < kMessages; ++i) {
    std::string p(kSize, '\0');
    for (std::size_t j = 0; j < kSize; ++j) p[j] = static_cast<char>('a' + (j * 7 + i) % 26);
    payloads.push_back(std::move(p));
  }
  Recorder rec;
  BigDevice d(driver, rec);
  subscribe_then(rec, "evloop/big", mqtt::QoS::AtLeastOnce, [&](Connection& c) {
    for (int i = 0; i < kMessages; ++i) {
      mqtt::Publish p;
      p.topic = "evloop/big";
      p.payload = mqtt::as_bytes(payloads[static_cast<std::size_t>(i)]);
      p.qos = i % 2 == 0 ? mqtt::QoS::AtLeastOnce : mqtt::QoS::AtMostOnce;
      auto r = c.publish(p);
      ASSERT_TRUE(r) << mqtt::to_string(r.error());
    }
  });
  ASSERT_TRUE(d.conn.start(ep, options("big", version), kTimeout));
  ASSERT_TRUE(run_until(
      io,
      [&] {
        return rec.count(EventType::MessageReceived) == kMessages &&
               rec.count(EventType::PublishCompleted) == kMessages / 2;
      },
      20s))
      << "received " << rec.count(EventType::MessageReceived) << ", completed "
      << rec.count(EventType::PublishCompleted) << ", closed " << rec.closed << " "
      << rec.close_error.message();
  std::vector<std::string> got;
  for (const auto& s : rec.events) {
    if (s.type == EventType::MessageReceived) got.push_back(s.payload);
  }
  std::sort(got.begin(), got.end());
  std::sort(payloads.begin(), payloads.end());
  EXPECT_TRUE(got == payloads) << "payload bytes differ";
  // The small socket buffers made writes stop half way and wait.
  EXPECT_GT(d.conn.stats().write_blocks, 0u);
  ASSERT_TRUE(d.conn.disconnect());
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 1; }, 5s));
  EXPECT_FALSE(rec.close_error) << rec.close_error.message();
}

TEST_P(EventLoop, PayloadsLargerThanTheSocketBuffersArriveIntact) {
  Endpoint ep{loopback(broker().port())};
  ep.socket_buffer_size = 16 * 1024;
  big_payload_round_trip(io, driver, ep, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Versions, EventLoop,
                         ::testing::Values(mqtt::Version::V311, mqtt::Version::V5),
                         [](const auto& p) {
                           return p.param == mqtt::Version::V5 ? "V5" : "V311";
                         });

// A server that accepts CONNECT, answers CONNACK and then never reads again: a disconnect whose
// DISCONNECT cannot leave (the socket is full of an unread payload) gives up after the linger
// time and closes with timed_out, instead of waiting forever.
TEST(EventLoopStuckPeer, DisconnectThatCannotBeWrittenGivesUpAfterTheLinger) {
  asio::io_context io;
  Driver driver{io};
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address_v4("127.0.0.1"), 0});
  asio::ip::tcp::socket peer(io);
  std::array<std::uint8_t, 64> connect_bytes{};
  acceptor.async_accept(peer, [&](std::error_code ec) {
    ASSERT_FALSE(ec);
    peer.set_option(asio::socket_base::receive_buffer_size(4096));
    // CONNECT is small: one read takes it; then CONNACK (3.1.1, accepted) and silence.
    peer.async_read_some(asio::buffer(connect_bytes), [&](std::error_code e, std::size_t) {
      ASSERT_FALSE(e);
      static const std::array<std::uint8_t, 4> connack{0x20, 0x02, 0x00, 0x00};
      std::error_code ignored;
      asio::write(peer, asio::buffer(connack), ignored);
    });
  });
  Recorder rec;
  Device d(driver, rec);
  const std::string big(4 * 1024 * 1024, 'x');
  bool disconnected = false;
  rec.on_event_fn = [&](Connection& c, const mqtt::Event& e) {
    if (e.type != EventType::Connected) return;
    mqtt::Publish p;
    p.topic = "evloop/stuck";
    p.payload = mqtt::as_bytes(big);
    ASSERT_TRUE(c.publish(p));  // QoS 0: written from `big`, which outlives the connection
    disconnected = static_cast<bool>(c.disconnect());
  };
  Endpoint ep{acceptor.local_endpoint()};
  ep.socket_buffer_size = 16 * 1024;
  ASSERT_TRUE(d.conn.start(ep, options("stuck", mqtt::Version::V311), kTimeout));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until(io, [&] { return rec.closed == 1; }, 10s));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(disconnected);
  EXPECT_GT(d.conn.stats().write_blocks, 0u);
  EXPECT_EQ(rec.close_error, std::make_error_code(std::errc::timed_out))
      << rec.close_error.message();
  EXPECT_GE(waited, 1900ms);  // the linger (2 s) after the disconnect
  EXPECT_LT(waited, 8s);
}

// --- TLS -----------------------------------------------------------------------------------------

class EventLoopTls : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path.empty());
    pki_ = std::make_unique<TestPki>(dir_.path);
    ASSERT_TRUE(pki_->ca.ok()) << pki_->ca.error();
    testing::MosquittoOptions o;
    o.tls = pki_->listener();
    broker_ = std::make_unique<testing::Mosquitto>(o);
    ASSERT_TRUE(broker_->start()) << broker_->error() << "\n" << broker_->log();
  }
  void TearDown() override {
    if (broker_ && HasFailure()) std::cerr << "--- mosquitto log ---\n" << broker_->log();
  }

  tls::Config pem_config() const {
    tls::Config c;
    c.ca_file = pki_->ca.cert_file();
    c.certificate_file = pki_->client.cert_file;
    c.private_key_file = pki_->client.key_file;
    return c;
  }

  // Connects, subscribes at QoS 1, publishes to itself at QoS 1, waits for the message and the
  // PUBACK, disconnects.
  void round_trip(const tls::TlsContext& context, std::string_view server_name) {
    Recorder rec;
    Device d(driver_, rec);
    subscribe_then(rec, "evloop/tls", mqtt::QoS::AtLeastOnce, [](Connection& c) {
      mqtt::Publish p;
      p.topic = "evloop/tls";
      p.payload = mqtt::as_bytes("over TLS");
      p.qos = mqtt::QoS::AtLeastOnce;
      ASSERT_TRUE(c.publish(p));
    });
    const Endpoint ep{loopback(broker_->tls_port()), &context, server_name};
    ASSERT_TRUE(d.conn.start(ep, options("tls-rt"), kTimeout));
    ASSERT_TRUE(run_until(
        io_,
        [&] {
          return (rec.count(EventType::MessageReceived) == 1 &&
                  rec.count(EventType::PublishCompleted) == 1) ||
                 rec.closed > 0;
        },
        10s));
    ASSERT_EQ(rec.closed, 0) << rec.close_error.message();
    ASSERT_TRUE(d.conn.disconnect());
    ASSERT_TRUE(run_until(io_, [&] { return rec.closed == 1; }, 5s));
    EXPECT_FALSE(rec.close_error) << rec.close_error.message();
  }

  tls::test::TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<testing::Mosquitto> broker_;
  asio::io_context io_;
  Driver driver_{io_};
};

TEST_F(EventLoopTls, MutualTlsWithPemKeyRoundTrip) {
  auto ctx = tls::TlsContext::create(pem_config());
  ASSERT_TRUE(ctx) << ctx.error().message();
  round_trip(*ctx, "localhost");
}

TEST_F(EventLoopTls, PayloadsLargerThanTheSocketBuffersArriveIntact) {
  auto ctx = tls::TlsContext::create(pem_config());
  ASSERT_TRUE(ctx) << ctx.error().message();
  Endpoint ep{loopback(broker_->tls_port()), &*ctx, "localhost"};
  ep.socket_buffer_size = 16 * 1024;
  big_payload_round_trip(io_, driver_, ep, mqtt::Version::V5);
}

TEST_F(EventLoopTls, ServerCertificateFromAnUnknownCaIsRejected) {
  testing::TestCa other(dir_.path, "other");
  ASSERT_TRUE(other.ok());
  tls::Config c = pem_config();
  c.ca_file = other.cert_file();
  auto ctx = tls::TlsContext::create(c);
  ASSERT_TRUE(ctx) << ctx.error().message();
  Recorder rec;
  Device d(driver_, rec);
  ASSERT_TRUE(d.conn.start({loopback(broker_->tls_port()), &*ctx, "localhost"}, options("x"),
                           kTimeout));
  ASSERT_TRUE(run_until(io_, [&] { return rec.closed == 1; }, 5s));
  EXPECT_EQ(rec.count(EventType::ConnectFailed), 1);
  EXPECT_EQ(rec.close_error, make_error_code(Errc::TlsCertificateRejected));
  EXPECT_NE(d.conn.tls_verify_result(), 0);
}

TEST_F(EventLoopTls, HostNameMismatchIsRejected) {
  auto ctx = tls::TlsContext::create(pem_config());
  ASSERT_TRUE(ctx) << ctx.error().message();
  Recorder rec;
  Device d(driver_, rec);
  ASSERT_TRUE(d.conn.start({loopback(broker_->tls_port()), &*ctx, "broker.example"},
                           options("x"), kTimeout));
  ASSERT_TRUE(run_until(io_, [&] { return rec.closed == 1; }, 5s));
  EXPECT_EQ(rec.count(EventType::ConnectFailed), 1);
  EXPECT_EQ(rec.close_error, make_error_code(Errc::TlsCertificateRejected));
}

TEST_F(EventLoopTls, MutualTlsWithTheKeyInAPkcs11Token) {
  const std::string module = tls::test::prepare_token_env(tls::test::TokenKind::Edgekit, dir_.path);
  EVP_PKEY* pub = tls::test::make_token_key(module, "evloop-key");
  ASSERT_NE(pub, nullptr);
  testing::CertOptions co;
  co.common_name = "evloop-token-device";
  testing::Issued cert = pki_->ca.issue_for_public_key("token-device", pub, co);
  EVP_PKEY_free(pub);
  ASSERT_TRUE(pki_->ca.ok()) << pki_->ca.error();
  tls::Config c;
  c.ca_file = pki_->ca.cert_file();
  c.certificate_file = cert.cert_file;
  c.token_key = tls::TokenKey{module, tls::test::kTokenLabel, tls::test::kPin, "evloop-key", {}};
  auto ctx = tls::TlsContext::create(c);
  ASSERT_TRUE(ctx) << ctx.error().message();
  round_trip(*ctx, "127.0.0.1");
}

}  // namespace
}  // namespace edgekit::mqtt_asio::test
