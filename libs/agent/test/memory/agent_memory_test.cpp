// Memory of one agent: the heap it takes at construction and start (its per-connection memory)
// and the heap it uses in steady state (none), measured with a counting global operator new in
// this binary, against a real Mosquitto. The figures are printed and stated in docs/agent.md.
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "edgekit/agent/agent.hpp"
#include "edgekit/mqtt/connection.hpp"
#include "edgekit/testing/mosquitto.hpp"

namespace {
std::atomic<std::size_t> g_allocations{0};
std::atomic<std::size_t> g_bytes{0};
}  // namespace

void* operator new(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(n, std::memory_order_relaxed);
  return p;
}
void* operator new[](std::size_t n) {
  return ::operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return ::operator new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
  return ::operator new(n, t);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace edgekit::agent::test {
namespace {

using namespace std::chrono_literals;

struct Counts {
  std::size_t allocations;
  std::size_t bytes;
};
Counts counts() {
  return {g_allocations.load(), g_bytes.load()};
}
Counts since(Counts a) {
  return {g_allocations.load() - a.allocations, g_bytes.load() - a.bytes};
}

class AgentMemory : public edgekit::testing::MosquittoFixture {
 protected:
  static mqtt::ConnectOptions options(mqtt::Version v, std::string_view id) {
    mqtt::ConnectOptions o;
    o.version = v;
    o.client_id = id;
    return o;
  }
  SteadyClock clock_;
};

void count(void* ctx, const mqtt::Publish&) {
  static_cast<std::atomic<int>*>(ctx)->fetch_add(1);
}

TEST_F(AgentMemory, ConstructionTakesEveryByteAndSteadyStateNone) {
  TcpTransportFactory factory("127.0.0.1", broker().port());
  const auto o = options(mqtt::Version::V5, "agent-memory");
  const Config config{};
  const Counts before = counts();
  auto agent = std::make_unique<Agent>(config, o, factory, clock_);
  const Counts constructed = since(before);
  ASSERT_TRUE(agent->start());
  const Counts started = since(before);
  std::atomic<int> got{0};
  ASSERT_TRUE(agent->subscribe_and_wait("mem/#", {mqtt::QoS::AtLeastOnce}, {&count, &got}, 5s));
  mqtt::Publish p;
  p.topic = "mem/t";
  p.payload = mqtt::as_bytes(std::string_view("0123456789abcdef0123456789abcdef"));
  p.qos = mqtt::QoS::AtLeastOnce;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(agent->publish_and_wait(p, 5s));  // warm up
  const Counts steady_start = counts();
  constexpr int kMessages = 1000;
  for (int i = 0; i < kMessages; ++i) {
    p.qos = (i % 2) == 0 ? mqtt::QoS::AtMostOnce : mqtt::QoS::AtLeastOnce;
    ASSERT_TRUE(agent->publish_and_wait(p, 5s));
  }
  const Counts steady = since(steady_start);
  std::printf(
      "[   INFO   ] Agent (default Config): sizeof(Agent) %zu B; construction %zu B in %zu "
      "allocations; after start %zu B in %zu allocations; steady state (%d publishes, "
      "QoS 0/1, echoed back): %zu B in %zu allocations\n",
      sizeof(Agent), constructed.bytes, constructed.allocations, started.bytes, started.allocations,
      kMessages, steady.bytes, steady.allocations);
  EXPECT_EQ(steady.allocations, 0u);
  agent->stop();
  std::printf(
      "[   INFO   ] sizeof: mqtt::Connection %zu B, mqtt::Session %zu B, "
      "mqtt::OutgoingRecord %zu B, mqtt::Publish %zu B\n",
      sizeof(mqtt::Connection), sizeof(mqtt::Session), sizeof(mqtt::OutgoingRecord),
      sizeof(mqtt::Publish));
}

// A small device's settings: what one connection costs when the buffers are sized for it.
TEST_F(AgentMemory, SmallDeviceConfiguration) {
  TcpTransportFactory factory("127.0.0.1", broker().port());
  const auto o = options(mqtt::Version::V311, "agent-memory-small");
  Config config;
  config.command_slots = 16;
  config.slot_size = 256;
  config.offline_queue_limit = 8;
  config.max_subscriptions = 8;
  config.max_filter_length = 64;
  config.receive_buffer_size = 2048;
  config.send_buffer_size = 1024;
  config.inflight_records = 16;
  config.incoming_qos2 = 16;
  const Counts before = counts();
  auto agent = std::make_unique<Agent>(config, o, factory, clock_);
  const Counts constructed = since(before);
  std::printf(
      "[   INFO   ] Agent (16 slots of 256 B, 2 KB + 1 KB buffers, 16 records, 8 routes): "
      "construction %zu B in %zu allocations\n",
      constructed.bytes, constructed.allocations);
  ASSERT_TRUE(agent->start());
  mqtt::Publish p;
  p.topic = "mem/small";
  p.payload = mqtt::as_bytes(std::string_view("x"));
  p.qos = mqtt::QoS::AtLeastOnce;
  ASSERT_TRUE(agent->publish_and_wait(p, 5s));
  agent->stop();
}

}  // namespace
}  // namespace edgekit::agent::test
