#pragma once
// Shared pieces of the event-loop driver's tests: a device (one connection with its session,
// buffers and counters, as an application would hold it), a run loop with a watchdog, and the
// process's RSS and CPU time.

#include <edgekit/mqtt_asio/connection.hpp>
#include <edgekit/testing/mosquitto.hpp>
#include <edgekit/testing/test_pki.hpp>
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/address_v4.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace edgekit::mqtt_asio::test {

// The session, the buffers and the counters of one connection; the test's handler.
// Sizes are what a fleet device needs for small messages: 3 publishes and a SUBSCRIBE in flight.
template <std::size_t Records = 4, std::size_t BufferSize = 512>
struct DeviceState {
  std::array<mqtt::OutgoingRecord, Records> outgoing{};
  std::array<std::uint16_t, 4> incoming_qos2{};
  std::array<char, 32> client_id{};
  std::array<std::byte, BufferSize> rx{};
  std::array<std::byte, BufferSize> tx{};
  mqtt::SessionStorage storage() {
    mqtt::SessionStorage s;
    s.outgoing = outgoing;
    s.incoming_qos2 = incoming_qos2;
    s.client_id = client_id;
    return s;
  }
};

// A handler that records everything and lets the test react through callbacks.
class Recorder final : public Handler {
 public:
  struct Seen {
    mqtt::EventType type;
    mqtt::Errc error;
    std::uint16_t packet_id;
    mqtt::QoS qos;
    std::string topic;
    std::string payload;
  };
  std::function<void(Connection&, const mqtt::Event&)> on_event_fn;
  std::function<void(Connection&, std::error_code)> on_closed_fn;
  std::vector<Seen> events;
  int closed = 0;
  std::error_code close_error;

  void on_event(Connection& c, const mqtt::Event& e) override {
    Seen s{e.type, e.error, e.packet_id, mqtt::QoS::AtMostOnce, {}, {}};
    if (e.message != nullptr) {
      s.qos = e.message->qos;
      s.topic = std::string(e.message->topic);
      s.payload = std::string(mqtt::as_string(e.message->payload));
    }
    events.push_back(std::move(s));
    if (on_event_fn) on_event_fn(c, e);
  }
  // events.size() at each on_events_done call.
  std::vector<std::size_t> done_at;
  void on_events_done(Connection&) override { done_at.push_back(events.size()); }
  void on_closed(Connection& c, std::error_code ec) override {
    ++closed;
    close_error = ec;
    if (on_closed_fn) on_closed_fn(c, ec);
  }
  [[nodiscard]] int count(mqtt::EventType t) const {
    int n = 0;
    for (const Seen& s : events) n += s.type == t ? 1 : 0;
    return n;
  }
};

// Runs `io` until `done()` or `limit` passes; true when done.
inline bool run_until(asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    io.restart();
    io.run_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Resident set size of this process, in bytes.
inline std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0;
  std::size_t resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// Heap bytes in use (glibc's count of allocated chunks; RSS also holds freed and fragmented ones).
inline std::size_t heap_in_use() { return mallinfo2().uordblks; }

// User + system CPU time of this process.
inline std::chrono::microseconds cpu_time() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  const auto us = [](const timeval& t) {
    return std::chrono::microseconds(static_cast<std::int64_t>(t.tv_sec) * 1000000 + t.tv_usec);
  };
  return us(u.ru_utime) + us(u.ru_stime);
}

// A size from the environment, else `fallback`.
inline std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return static_cast<std::size_t>(std::strtoull(v, nullptr, 10));
}

// A CA, the broker's certificate (localhost, 127.0.0.1) and one client certificate with a PEM
// key, in `dir`; `listener()` is a Mosquitto TLS listener that requires a client certificate.
struct TestPki {
  explicit TestPki(const std::string& dir) : ca(dir, "ca") {
    testing::CertOptions s;
    s.common_name = "localhost";
    s.dns_names = {"localhost"};
    s.ip_addresses = {"127.0.0.1"};
    s.server = true;
    server = ca.issue("server", s);
    testing::CertOptions c;
    c.common_name = "evloop-device";
    client = ca.issue("device", c);
  }
  [[nodiscard]] testing::MosquittoOptions::TlsListener listener() const {
    testing::MosquittoOptions::TlsListener t;
    t.cafile = ca.cert_file();
    t.certfile = server.cert_file;
    t.keyfile = server.key_file;
    t.require_certificate = true;
    t.use_identity_as_username = true;
    return t;
  }
  testing::TestCa ca;
  testing::Issued server;
  testing::Issued client;
};

// One device on the loop.
struct Device {
  explicit Device(Driver& driver, Recorder& recorder)
      : session(state.storage()), conn(driver, session, state.rx, state.tx, recorder) {}
  DeviceState<8, 2048> state;
  mqtt::Session session;
  Connection conn;
};

inline asio::ip::tcp::endpoint loopback(std::uint16_t port) {
  return {asio::ip::make_address_v4("127.0.0.1"), port};
}

}  // namespace edgekit::mqtt_asio::test
