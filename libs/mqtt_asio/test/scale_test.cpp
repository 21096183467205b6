// Many connections on one io_context thread against a real Mosquitto: all connect (paced: a
// bounded number of connects in flight, so the broker's listen backlog never drops a SYN), each
// subscribes to its own topic, and only when every one is connected and subscribed do they all
// publish to themselves at QoS 1. Every message must come back and every PUBACK must complete;
// then all disconnect. Prints connections, messages, wall time, CPU per message and memory per
// connection.
//
// Scale from the environment (the default run stays fast; scripts/evloop-scale runs the full one):
//   EDGEKIT_EVLOOP_SCALE       plain TCP connections (default 1000)
//   EDGEKIT_EVLOOP_TLS_SCALE   mutual-TLS connections (default 200)
//   EDGEKIT_EVLOOP_MESSAGES    messages per connection (default 5)
//   EDGEKIT_EVLOOP_CONNECTING  connects in flight at once (default 64)
//   EDGEKIT_EVLOOP_TLS_DEVICES mutual-TLS devices each with a key and certificate of its own
//                              (default 100)
//   EDGEKIT_EVLOOP_TLS_IDENTITY how those devices hold them: "identity" (default: one shared
//                              TlsContext, a tls::ClientIdentity per device) or "context" (a
//                              TlsContext per device, as bench/shadow_bench does)

#include <edgekit/testing/mosquitto.hpp>
#include <edgekit/testing/test_pki.hpp>
#include <edgekit/tls/tls.hpp>

#include <asio/io_context.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "evloop_test_support.hpp"
#include "tls_test_support.hpp"

namespace edgekit::mqtt_asio::test {
namespace {

using namespace std::chrono_literals;
using mqtt::EventType;

constexpr std::size_t kWindow = 2;  // QoS 1 publishes in flight per connection

class Fleet;

// One device: its session, buffers and connection, and what it has seen.
class Device final : public Handler {
 public:
  Device(Fleet& fleet, Driver& driver, std::size_t index);
  void start();
  void publish_next();
  void on_event(Connection& c, const mqtt::Event& e) override;
  void on_closed(Connection& c, std::error_code ec) override;

  Fleet& fleet_;
  std::size_t index_;
  char topic_[32];
  char id_[32];
  // The same 64-byte payload for every message of this device: "<index>" padded with dots (the
  // size of scripts/bench's messages).
  char payload_[65];
  DeviceState<4, 256> state_;
  mqtt::Session session_;
  Connection conn_;
  std::uint32_t sent_ = 0;
  std::uint32_t completed_ = 0;
  std::uint32_t received_ = 0;
  bool connected_ = false;
  bool subscribed_ = false;
  bool closed_ = false;
  bool bad_ = false;  // an unexpected event: failure, wrong payload, wrong topic
  bool settled_ = false;  // subscribed, or gone bad: counted once in Fleet::settled_

  void settle();
  void go_bad() {
    bad_ = true;
    settle();
  }
};

class Fleet {
 public:
  Fleet(asio::io_context& io, Endpoint endpoint, std::size_t count, std::uint32_t messages,
        std::size_t connecting)
      : io_(io), driver_(io), endpoint_(endpoint), messages_(messages), max_connecting_(connecting) {
    devices_.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      devices_.push_back(std::make_unique<Device>(*this, driver_, i));
    }
  }

  // Starts connects until `max_connecting_` are in flight.
  void start_more() {
    while (connecting_ < max_connecting_ && next_ < devices_.size()) {
      ++connecting_;
      devices_[next_++]->start();
    }
  }
  void connect_done() {
    --connecting_;
    start_more();
  }
  void publish_all() {
    for (auto& d : devices_) {
      for (std::size_t i = 0; i < kWindow; ++i) d->publish_next();
    }
  }
  void disconnect_all() {
    for (auto& d : devices_) {
      if (d->conn_.active()) (void)d->conn_.disconnect();
    }
  }

  std::size_t count(bool Device::*flag) const {
    std::size_t n = 0;
    for (const auto& d : devices_) n += (d.get()->*flag) ? 1 : 0;
    return n;
  }
  std::uint64_t total(std::uint32_t Device::*counter) const {
    std::uint64_t n = 0;
    for (const auto& d : devices_) n += d.get()->*counter;
    return n;
  }

  asio::io_context& io_;
  Driver driver_;
  Endpoint endpoint_;
  // When not empty: device i connects to endpoints_[i] (its own identity or TLS context).
  std::vector<Endpoint> endpoints_;
  std::uint32_t messages_;
  std::size_t max_connecting_;
  std::size_t connecting_ = 0;
  std::size_t next_ = 0;
  std::vector<std::unique_ptr<Device>> devices_;
  std::uint64_t failures_ = 0;
  std::string first_failure_;
  // Running totals, so that the test's "done?" checks do not scan every device per loop turn
  // (that CPU would count against the driver).
  std::size_t settled_ = 0;
  std::size_t closed_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t received_ = 0;
};

void Device::settle() {
  if (settled_) return;
  settled_ = true;
  ++fleet_.settled_;
}

Device::Device(Fleet& fleet, Driver& driver, std::size_t index)
    : fleet_(fleet),
      index_(index),
      session_(state_.storage()),
      conn_(driver, session_, state_.rx, state_.tx, *this) {
  std::snprintf(topic_, sizeof topic_, "evloop/%zu", index);
  std::snprintf(id_, sizeof id_, "evloop-%zu", index);
  std::memset(payload_, '.', sizeof payload_ - 1);
  payload_[sizeof payload_ - 1] = '\0';
  char digits[24];
  const int n = std::snprintf(digits, sizeof digits, "%zu", index);
  std::memcpy(payload_, digits, static_cast<std::size_t>(n));
}

void Device::start() {
  mqtt::ConnectOptions o;
  o.version = mqtt::Version::V311;
  o.client_id = id_;
  o.keep_alive_seconds = 120;
  auto r = conn_.start(fleet_.endpoints_.empty() ? fleet_.endpoint_ : fleet_.endpoints_[index_], o,
                       Duration{60000});
  if (!r) {
    go_bad();
    closed_ = true;
    ++fleet_.closed_;
    fleet_.connect_done();
  }
}

void Device::publish_next() {
  if (sent_ >= fleet_.messages_) return;
  mqtt::Publish p;
  p.topic = topic_;
  p.payload = mqtt::as_bytes(payload_);
  p.qos = mqtt::QoS::AtLeastOnce;
  auto r = conn_.publish(p);
  if (!r) {
    go_bad();
    if (fleet_.first_failure_.empty()) {
      fleet_.first_failure_ = std::string("publish: ") + mqtt::to_string(r.error());
    }
    return;
  }
  ++sent_;
}

void Device::on_event(Connection& c, const mqtt::Event& e) {
  switch (e.type) {
    case EventType::Connected: {
      connected_ = true;
      fleet_.connect_done();
      const std::array<mqtt::Subscription, 1> sub{
          mqtt::Subscription{topic_, mqtt::SubscribeOptions{mqtt::QoS::AtLeastOnce}}};
      if (!c.subscribe(sub)) go_bad();
      break;
    }
    case EventType::SubscribeCompleted:
      subscribed_ = e.error == mqtt::Errc::Ok && e.reason_code == mqtt::ReasonCode::Success;
      if (subscribed_) {
        settle();
      } else {
        go_bad();
      }
      break;
    case EventType::PublishCompleted:
      ++completed_;
      ++fleet_.completed_;
      if (e.reason_code != mqtt::ReasonCode::Success) go_bad();
      publish_next();
      break;
    case EventType::MessageReceived:
      ++received_;
      ++fleet_.received_;
      if (e.message->topic != topic_ || mqtt::as_string(e.message->payload) != payload_) go_bad();
      break;
    case EventType::ConnectFailed:
      fleet_.connect_done();
      [[fallthrough]];
    default:
      go_bad();
      ++fleet_.failures_;
      if (fleet_.first_failure_.empty()) {
        fleet_.first_failure_ = std::string(id_) + ": event " +
                                std::to_string(static_cast<int>(e.type)) + " " +
                                mqtt::to_string(e.error);
      }
      break;
  }
}

void Device::on_closed(Connection&, std::error_code ec) {
  closed_ = true;
  ++fleet_.closed_;
  if (ec && fleet_.first_failure_.empty()) {
    fleet_.first_failure_ = std::string(id_) + ": closed: " + ec.message();
  }
}

struct Figures {
  std::size_t connections = 0;
  std::uint64_t messages = 0;
  double connect_s = 0;
  double publish_s = 0;
  double cpu_us_per_message = 0;
  double rss_objects_per_connection = 0;    // bytes: the Device objects (see the printout)
  double rss_connected_per_connection = 0;  // bytes: what connecting added (Asio, OpenSSL)
};

// Runs the whole scenario; fails the test on any loss.
Figures run_fleet(const Endpoint& endpoint, std::size_t count, const char* label,
                  std::vector<Endpoint> endpoints = {}) {
  const auto messages = static_cast<std::uint32_t>(env_size("EDGEKIT_EVLOOP_MESSAGES", 5));
  const std::size_t connecting = env_size("EDGEKIT_EVLOOP_CONNECTING", 64);
  Figures f;
  f.connections = count;
  asio::io_context io(1);
  const std::size_t rss0 = rss_bytes();
  Fleet fleet(io, endpoint, count, messages, connecting);
  fleet.endpoints_ = std::move(endpoints);
  const std::size_t rss1 = rss_bytes();
  const std::size_t heap1 = heap_in_use();

  const auto t0 = std::chrono::steady_clock::now();
  fleet.start_more();
  const bool all_up = run_until(
      io,
      [&] {
        return fleet.settled_ >= count;
      },
      std::chrono::seconds(60 + count / 50));
  const auto t1 = std::chrono::steady_clock::now();
  const std::size_t rss2 = rss_bytes();
  const std::size_t heap2 = heap_in_use();
  EXPECT_TRUE(all_up) << label << ": subscribed " << fleet.count(&Device::subscribed_) << " of "
                      << count << "; " << fleet.first_failure_;
  EXPECT_EQ(fleet.count(&Device::bad_), 0u) << fleet.first_failure_;
  EXPECT_EQ(fleet.count(&Device::connected_), count);

  const auto cpu0 = cpu_time();
  fleet.publish_all();
  const std::uint64_t want = static_cast<std::uint64_t>(count) * messages;
  const bool all_done = run_until(
      io,
      [&] {
        return (fleet.completed_ >= want && fleet.received_ >= want) ||
               fleet.failures_ > 0;
      },
      std::chrono::seconds(60 + want / 500));
  const auto cpu1 = cpu_time();
  const auto t2 = std::chrono::steady_clock::now();
  EXPECT_TRUE(all_done) << label << ": completed " << fleet.total(&Device::completed_)
                        << ", received " << fleet.total(&Device::received_) << " of " << want
                        << "; " << fleet.first_failure_;
  EXPECT_EQ(fleet.total(&Device::completed_), want);
  EXPECT_EQ(fleet.total(&Device::received_), want);
  EXPECT_EQ(fleet.count(&Device::bad_), 0u) << fleet.first_failure_;

  std::uint64_t calls = 0;
  std::uint64_t blocks = 0;
  for (const auto& d : fleet.devices_) {
    calls += d->conn_.stats().reads + d->conn_.stats().writes;
    blocks += d->conn_.stats().write_blocks;
  }
  fleet.disconnect_all();
  EXPECT_TRUE(run_until(io, [&] { return fleet.closed_ >= count; }, 60s))
      << label << ": closed " << fleet.count(&Device::closed_) << " of " << count;
  EXPECT_EQ(fleet.failures_, 0u) << fleet.first_failure_;

  f.messages = want;
  f.connect_s = std::chrono::duration<double>(t1 - t0).count();
  f.publish_s = std::chrono::duration<double>(t2 - t1).count();
  f.cpu_us_per_message =
      want == 0 ? 0 : static_cast<double>((cpu1 - cpu0).count()) / static_cast<double>(want);
  f.rss_objects_per_connection = static_cast<double>(rss1 - rss0) / static_cast<double>(count);
  f.rss_connected_per_connection = static_cast<double>(rss2 > rss1 ? rss2 - rss1 : 0) /
                                   static_cast<double>(count);
  std::printf(
      "[evloop %s] connections %zu, messages %" PRIu64 " (QoS 1, each received and acked), "
      "connect+subscribe %.2f s, publish phase %.2f s (%.0f msg/s), CPU %.2f us/msg; "
      "RSS per connection %.0f B = objects %.0f B (device: Connection, Session, records, "
      "buffers; sizeof %zu B) + %.0f B added by connecting (Asio reactor, pending waits, TLS); "
      "sizeof(mqtt_asio::Connection) %zu B of which sizeof(mqtt::Connection) %zu B; "
      "socket read+write calls per message %.2f (connect and subscribe included), "
      "writes that waited %" PRIu64 "; heap in use added by connecting %.0f B per connection\n",
      label, f.connections, f.messages, f.connect_s, f.publish_s,
      f.publish_s > 0 ? static_cast<double>(want) / f.publish_s : 0.0, f.cpu_us_per_message,
      f.rss_objects_per_connection + f.rss_connected_per_connection,
      f.rss_objects_per_connection, sizeof(Device), f.rss_connected_per_connection,
      sizeof(Connection), sizeof(mqtt::Connection),
      want == 0 ? 0.0 : static_cast<double>(calls) / static_cast<double>(want), blocks,
      heap2 > heap1 ? static_cast<double>(heap2 - heap1) / static_cast<double>(count) : 0.0);
  std::fflush(stdout);
  return f;
}

testing::MosquittoOptions scale_broker() {
  testing::MosquittoOptions o;
  o.max_connections = -1;
  // connection_messages would write two log lines per device.
  o.extra_lines = {"connection_messages false", "max_queued_messages 0"};
  o.start_timeout = std::chrono::milliseconds(10000);
  return o;
}

TEST(EventLoopScale, ManyTcpConnectionsOnOneThreadLoseNothing) {
  const std::size_t n = env_size("EDGEKIT_EVLOOP_SCALE", 1000);
  testing::Mosquitto broker(scale_broker());
  ASSERT_TRUE(broker.start()) << broker.error();
  const Endpoint ep{{asio::ip::make_address_v4("127.0.0.1"), broker.port()}};
  run_fleet(ep, n, "tcp");
  if (::testing::Test::HasFailure()) {
    const std::string log = broker.log();
    std::cerr << "--- mosquitto log (tail) ---\n" << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
  }
}

TEST(EventLoopScale, ManyMutualTlsConnectionsOnOneThreadLoseNothing) {
  const std::size_t n = env_size("EDGEKIT_EVLOOP_TLS_SCALE", 200);
  tls::test::TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  TestPki pki(dir.path);
  ASSERT_TRUE(pki.ca.ok()) << pki.ca.error();
  testing::MosquittoOptions o = scale_broker();
  o.tls = pki.listener();
  testing::Mosquitto broker(o);
  ASSERT_TRUE(broker.start()) << broker.error();
  tls::Config config;
  config.ca_file = pki.ca.cert_file();
  config.certificate_file = pki.client.cert_file;
  config.private_key_file = pki.client.key_file;
  auto ctx = tls::TlsContext::create(config);
  ASSERT_TRUE(ctx) << ctx.error().message();
  const Endpoint ep{{asio::ip::make_address_v4("127.0.0.1"), broker.tls_port()}, &*ctx, "localhost"};
  run_fleet(ep, n, "mutual-tls");
  if (::testing::Test::HasFailure()) {
    const std::string log = broker.log();
    std::cerr << "--- mosquitto log (tail) ---\n" << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
  }
}

// Devices each with its own key and certificate: one shared TlsContext (the CA) and a
// tls::ClientIdentity per device, or a TlsContext per device. Prints the memory the identities or
// contexts take per device (heap in use, before any connection) beside the run's figures.
TEST(EventLoopScale, ManyMutualTlsDevicesEachWithItsOwnIdentityLoseNothing) {
  const std::size_t n = env_size("EDGEKIT_EVLOOP_TLS_DEVICES", 100);
  const char* mode_env = std::getenv("EDGEKIT_EVLOOP_TLS_IDENTITY");
  const std::string mode = mode_env != nullptr && *mode_env != '\0' ? mode_env : "identity";
  ASSERT_TRUE(mode == "identity" || mode == "context") << mode;
  tls::test::TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  TestPki pki(dir.path);
  ASSERT_TRUE(pki.ca.ok()) << pki.ca.error();
  std::vector<testing::Issued> issued;
  issued.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    testing::CertOptions c;
    c.common_name = "evloop-" + std::to_string(i);
    issued.push_back(pki.ca.issue(c.common_name, c));
  }
  ASSERT_TRUE(pki.ca.ok()) << pki.ca.error();
  testing::MosquittoOptions o = scale_broker();
  o.tls = pki.listener();
  testing::Mosquitto broker(o);
  ASSERT_TRUE(broker.start()) << broker.error();

  tls::Config shared;
  shared.ca_file = pki.ca.cert_file();
  auto ctx = tls::TlsContext::create(shared);
  ASSERT_TRUE(ctx) << ctx.error().message();
  const asio::ip::tcp::endpoint where{asio::ip::make_address_v4("127.0.0.1"), broker.tls_port()};
  std::vector<tls::ClientIdentity> identities;
  std::vector<tls::TlsContext> contexts;
  std::vector<Endpoint> endpoints;
  identities.reserve(n);
  contexts.reserve(n);
  endpoints.reserve(n);
  malloc_trim(0);
  const std::size_t heap0 = heap_in_use();
  const std::size_t rss0 = rss_bytes();
  for (std::size_t i = 0; i < n; ++i) {
    if (mode == "identity") {
      auto id = tls::ClientIdentity::from_files(issued[i].cert_file, issued[i].key_file);
      ASSERT_TRUE(id) << id.error().message();
      identities.push_back(std::move(*id));
      endpoints.emplace_back(where, &*ctx, "localhost", &identities.back());
    } else {
      tls::Config c = shared;
      c.certificate_file = issued[i].cert_file;
      c.private_key_file = issued[i].key_file;
      auto own = tls::TlsContext::create(c);
      ASSERT_TRUE(own) << own.error().message();
      contexts.push_back(std::move(*own));
      endpoints.emplace_back(where, &contexts.back(), "localhost");
    }
  }
  const std::size_t heap1 = heap_in_use();
  const std::size_t rss1 = rss_bytes();
  std::printf("[evloop tls-%s] %zu devices: heap %.0f B, RSS %.0f B per device for the %s\n",
              mode.c_str(), n,
              static_cast<double>(heap1 - heap0) / static_cast<double>(n),
              static_cast<double>(rss1 > rss0 ? rss1 - rss0 : 0) / static_cast<double>(n),
              mode == "identity" ? "tls::ClientIdentity objects (one shared TlsContext)"
                                 : "TlsContext objects (one per device)");
  std::fflush(stdout);
  run_fleet({where, &*ctx, "localhost"}, n, mode == "identity" ? "tls-identity" : "tls-context",
            std::move(endpoints));
  if (::testing::Test::HasFailure()) {
    const std::string log = broker.log();
    std::cerr << "--- mosquitto log (tail) ---\n" << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
  }
}

}  // namespace
}  // namespace edgekit::mqtt_asio::test
