// Proof that the client itself never touches the heap: a whole conversation (connect, subscribe,
// incoming QoS 1 and 2, publish QoS 0/1/2, ping, keep-alive, subscribe_async and
// unsubscribe_async, disconnect) over a transport made of fixed arrays, with every global
// operator new in this binary counted while the client runs.
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <new>

#include "edgekit/mqtt/client.hpp"
#include "edgekit/mqtt/codec.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/testing/manual_clock.hpp"

namespace {
bool g_counting = false;
std::size_t g_allocations = 0;
}  // namespace

// Replaces the global allocation functions of this test binary (the client test is not built
// with the shared allocation guard, whose replacement lives in another binary).
void* operator new(std::size_t n) {
  if (g_counting) ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// GCC 12 at -O2 (the tsan preset) inlines these into gtest's code and then warns that the
// memory came from operator new: it did, from the replacement above, which uses malloc.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#pragma GCC diagnostic pop

namespace edgekit::mqtt::test {
namespace {

using namespace std::chrono_literals;

/// A transport on two fixed arrays: the test encodes the server's packets straight into `in`.
class ArrayTransport final : public transport::Transport {
 public:
  transport::IoResult send(transport::ConstBuffer data) noexcept override {
    const std::size_t n = std::min(data.size(), out.size() - out_len);
    std::memcpy(out.data() + out_len, data.data(), n);
    out_len += n;
    return {transport::IoStatus::Ok, n, 0};
  }
  transport::IoResult recv(std::span<std::byte> buffer) noexcept override {
    if (in_pos == in_len) return {transport::IoStatus::WouldBlock, 0, 0};
    const std::size_t n = std::min(buffer.size(), in_len - in_pos);
    std::memcpy(buffer.data(), in.data() + in_pos, n);
    in_pos += n;
    return {transport::IoStatus::Ok, n, 0};
  }
  transport::WaitStatus wait(transport::Interest interest, std::uint32_t ms) noexcept override {
    if (interest == transport::Interest::Write || in_pos < in_len)
      return transport::WaitStatus::Ready;
    clock->advance(Duration{ms});
    return transport::WaitStatus::Timeout;
  }
  void close() noexcept override { closed = true; }

  /// Appends a server packet (encoded without allocating).
  template <class P>
  void push(const P& packet, Version v) {
    auto n = encode(packet, v, std::span<std::byte>(in).subspan(in_len));
    ASSERT_TRUE(n.has_value());
    in_len += *n;
  }

  testing::ManualClock* clock = nullptr;
  std::array<std::byte, 4096> in{};
  std::size_t in_len = 0;
  std::size_t in_pos = 0;
  std::array<std::byte, 4096> out{};
  std::size_t out_len = 0;
  bool closed = false;
};

struct Counter {
  static void on_event(void* ctx, Client&, const Event& e) {
    auto* self = static_cast<Counter*>(ctx);
    if (e.type == EventType::MessageReceived) ++self->received;
    if (e.type == EventType::PublishCompleted) ++self->completed;
    if (e.type == EventType::SubscribeCompleted || e.type == EventType::UnsubscribeCompleted) {
      ++self->requests;
    }
  }
  int received = 0;
  int completed = 0;
  int requests = 0;
};

class ClientNoAlloc : public ::testing::TestWithParam<Version> {};

TEST(ClientNoAllocCounter, SeesAllocations) {
  // The proof below is only as good as the counter: make sure it counts.
  g_allocations = 0;
  g_counting = true;
  // A direct call, not a new-expression: the compiler may leave out a new/delete pair that
  // nothing observes (C++14 [expr.new]), and optimised builds (the tsan preset) did.
  void* p = ::operator new(sizeof(int));
  g_counting = false;
  ::operator delete(p);
  EXPECT_EQ(g_allocations, 1u);
}

TEST_P(ClientNoAlloc, AWholeConversationAllocatesNothing) {
  const Version v = GetParam();
  testing::ManualClock clock;
  ArrayTransport net;
  net.clock = &clock;
  std::array<OutgoingRecord, 8> records{};
  std::array<std::uint16_t, 8> qos2{};
  TopicAliasArena<4, 32> in_alias;
  TopicAliasArena<4, 32> out_alias;
  std::array<char, 32> cid{};
  Session session(SessionStorage{records, qos2, in_alias.storage(), out_alias.storage(), cid});
  std::array<std::byte, 512> rx{};
  std::array<std::byte, 256> tx{};
  Counter counter;
  Client client(net, clock, session, rx, tx, EventHandler(&Counter::on_event, &counter));

  g_allocations = 0;
  g_counting = true;

  ConnectOptions o;
  o.version = v;
  o.client_id = "no-alloc";
  o.keep_alive_seconds = 5;
  net.push(ConnAck{}, v);
  const bool connected = client.connect(o, 1s).has_value();

  // SUBSCRIBE gets id 1; then an incoming QoS 1 and a QoS 2 (with its PUBREL).
  SubAck suback;
  suback.packet_id = 1;
  const std::array<ReasonCode, 1> granted{ReasonCode::GrantedQoS2};
  suback.reason_codes = granted;
  net.push(suback, v);
  Publish in1;
  in1.topic = "in";
  in1.payload = as_bytes("one");
  in1.qos = QoS::AtLeastOnce;
  in1.packet_id = 7;
  net.push(in1, v);
  Publish in2 = in1;
  in2.qos = QoS::ExactlyOnce;
  in2.packet_id = 8;
  net.push(in2, v);
  PubRel rel;
  rel.packet_id = 8;
  net.push(rel, v);
  const std::array<Subscription, 1> subs{Subscription{"in", SubscribeOptions{QoS::ExactlyOnce}}};
  std::array<ReasonCode, 1> codes{};
  const bool subscribed = client.subscribe(subs, codes, 1s).has_value();
  const bool looped = client.process_loop(100ms).has_value();

  // Outgoing QoS 0, 1 (PUBACK) and 2 (PUBREC, PUBCOMP): ids 2 and 3.
  Publish out = in1;
  out.topic = "out";
  out.qos = QoS::AtMostOnce;
  const bool p0 = client.publish(out, 1s).has_value();
  out.qos = QoS::AtLeastOnce;
  PubAck puback;
  puback.packet_id = 2;
  net.push(puback, v);
  const bool p1 = client.publish_and_wait(out, 1s).has_value();
  out.qos = QoS::ExactlyOnce;
  PubRec rec;
  rec.packet_id = 3;
  PubComp comp;
  comp.packet_id = 3;
  net.push(rec, v);
  net.push(comp, v);
  const bool p2 = client.publish_and_wait(out, 1s).has_value();

  // Keep-alive in simulated time, then an explicit ping, then DISCONNECT.
  const std::size_t before_idle = net.out_len;
  const bool idle = client.process_loop(6s).has_value();  // PINGREQ at 5 s
  const std::size_t idle_bytes = net.out_len - before_idle;
  net.push(PingResp{}, v);
  const bool answered = client.process_loop(100ms).has_value();
  net.push(PingResp{}, v);
  const bool pinged = client.ping(1s).has_value();

  // SUBSCRIBE and UNSUBSCRIBE without waiting; their acks arrive as events.
  const auto sub_id = client.subscribe_async(subs, 1s);
  const std::array<std::string_view, 1> filters{"in"};
  const auto unsub_id = client.unsubscribe_async(filters, 1s);
  if (sub_id && unsub_id) {
    suback.packet_id = *sub_id;
    net.push(suback, v);
    UnsubAck unsuback;
    unsuback.packet_id = *unsub_id;
    const std::array<ReasonCode, 1> removed{ReasonCode::Success};
    if (v == Version::V5) unsuback.reason_codes = removed;
    net.push(unsuback, v);
  }
  const bool acked = client.process_loop(100ms).has_value();
  const bool disconnected = client.disconnect().has_value();

  g_counting = false;
  EXPECT_EQ(g_allocations, 0u);
  EXPECT_TRUE(connected);
  EXPECT_TRUE(subscribed);
  EXPECT_EQ(codes[0], ReasonCode::GrantedQoS2);
  EXPECT_TRUE(looped);
  EXPECT_EQ(counter.received, 2);
  EXPECT_TRUE(p0);
  EXPECT_TRUE(p1);
  EXPECT_TRUE(p2);
  EXPECT_EQ(counter.completed, 2);
  EXPECT_TRUE(sub_id.has_value());
  EXPECT_TRUE(unsub_id.has_value());
  EXPECT_TRUE(acked);
  EXPECT_EQ(counter.requests, 2);
  EXPECT_TRUE(idle);
  EXPECT_EQ(idle_bytes, 2u);  // one PINGREQ
  EXPECT_TRUE(answered);
  EXPECT_TRUE(pinged);
  EXPECT_TRUE(disconnected);
  EXPECT_TRUE(net.closed);
}

INSTANTIATE_TEST_SUITE_P(BothVersions, ClientNoAlloc, ::testing::Values(Version::V311, Version::V5),
                         [](const ::testing::TestParamInfo<Version>& p) {
                           return p.param == Version::V5 ? std::string("V5") : std::string("V311");
                         });

}  // namespace
}  // namespace edgekit::mqtt::test
