#include "edgekit/testing/memory_transport.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <string>
#include <thread>

#include "edgekit/testing/manual_clock.hpp"

namespace edgekit::testing {
namespace {

using namespace std::chrono_literals;
using transport::ConstBuffer;
using transport::Interest;
using transport::IoStatus;
using transport::WaitStatus;

ConstBuffer bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
std::string text(const std::vector<std::byte>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}

TEST(ManualClockTest, MovesOnlyWhenAdvancedAndNeverBackwards) {
  ManualClock clock(Instant{Duration{100}});
  EXPECT_EQ(clock.now().since_origin, 100ms);
  clock.advance(50ms);
  EXPECT_EQ(clock.now().since_origin, 150ms);
  clock.advance(Duration{-10});
  EXPECT_EQ(clock.now().since_origin, 150ms);
  EXPECT_EQ(clock.set(Instant{Duration{120}}).since_origin, 150ms);
  EXPECT_EQ(clock.set(Instant{Duration{1000}}).since_origin, 1000ms);
}

TEST(MemoryTransportTest, CapturesWhatTheClientWrites) {
  MemoryTransport t;
  EXPECT_EQ(t.send(bytes_of("ab")).bytes, 2u);
  const ConstBuffer parts[] = {bytes_of("cd"), bytes_of("efg")};
  auto r = t.writev(parts);
  EXPECT_EQ(r.status, IoStatus::Ok);
  EXPECT_EQ(r.bytes, 5u);
  EXPECT_EQ(text(t.outbound()), "abcdefg");
  EXPECT_EQ(text(t.take_outbound()), "abcdefg");
  EXPECT_TRUE(t.outbound().empty());
  auto s = t.stats();
  EXPECT_EQ(s.send_calls, 1u);
  EXPECT_EQ(s.writev_calls, 1u);
  EXPECT_EQ(s.write_calls(), 2u);
  EXPECT_EQ(s.bytes_sent, 7u);
}

TEST(MemoryTransportTest, DeliversInboundInChunksThenWouldBlock) {
  MemoryTransport t;
  t.push_inbound("hello world");
  t.set_recv_chunk(4);
  std::array<std::byte, 64> buf{};
  std::string got;
  for (;;) {
    auto r = t.recv(buf);
    if (r.status != IoStatus::Ok) {
      EXPECT_EQ(r.status, IoStatus::WouldBlock);
      break;
    }
    EXPECT_LE(r.bytes, 4u);
    got.append(reinterpret_cast<const char*>(buf.data()), r.bytes);
  }
  EXPECT_EQ(got, "hello world");
  EXPECT_EQ(t.stats().recv_calls, 4u);  // 3 chunks + the WouldBlock
  EXPECT_EQ(t.stats().bytes_received, 11u);
}

TEST(MemoryTransportTest, EndOfStreamComesAfterQueuedBytes) {
  MemoryTransport t;
  t.push_inbound("xy");
  t.close_inbound();
  std::array<std::byte, 1> buf{};
  EXPECT_EQ(t.recv(buf).status, IoStatus::Ok);
  EXPECT_EQ(t.recv(buf).status, IoStatus::Ok);
  EXPECT_EQ(t.recv(buf).status, IoStatus::Closed);
  EXPECT_EQ(t.send(bytes_of("z")).status, IoStatus::Closed);
  EXPECT_EQ(t.wait(Interest::Read, 1000), WaitStatus::Ready);
}

TEST(MemoryTransportTest, FailureReportsTheSystemError) {
  MemoryTransport t;
  t.fail(ECONNABORTED);
  std::array<std::byte, 1> buf{};
  auto r = t.recv(buf);
  EXPECT_EQ(r.status, IoStatus::Error);
  EXPECT_EQ(r.system_error, ECONNABORTED);
  EXPECT_EQ(t.send(bytes_of("z")).system_error, ECONNABORTED);
}

TEST(MemoryTransportTest, SendCapForcesPartialWrites) {
  MemoryTransport t;
  t.set_send_cap(3);
  const ConstBuffer parts[] = {bytes_of("ab"), bytes_of("cdef")};
  auto r = t.writev(parts);
  EXPECT_EQ(r.bytes, 3u);
  EXPECT_EQ(t.send(bytes_of("123456")).bytes, 3u);
  EXPECT_EQ(text(t.outbound()), "abc123");
}

TEST(MemoryTransportTest, ScriptedOutcomesComeFirstThenNormalBehaviour) {
  MemoryTransport t;
  t.push_inbound("a");
  t.script_recv({IoStatus::WouldBlock, IoStatus::WouldBlock});
  t.script_send({IoStatus::WouldBlock, IoStatus::Error});
  std::array<std::byte, 4> buf{};
  EXPECT_EQ(t.recv(buf).status, IoStatus::WouldBlock);
  EXPECT_EQ(t.recv(buf).status, IoStatus::WouldBlock);
  EXPECT_EQ(t.recv(buf).status, IoStatus::Ok);
  EXPECT_EQ(t.send(bytes_of("x")).status, IoStatus::WouldBlock);
  EXPECT_EQ(t.send(bytes_of("x")).status, IoStatus::Error);
  EXPECT_EQ(t.send(bytes_of("x")).status, IoStatus::Ok);
  EXPECT_EQ(text(t.outbound()), "x");
}

TEST(MemoryTransportTest, WaitTimesOutInSimulatedTime) {
  ManualClock clock;
  MemoryTransport t;
  t.attach_clock(&clock);
  EXPECT_EQ(t.wait(Interest::Read, 5000), WaitStatus::Timeout);
  EXPECT_EQ(clock.now().since_origin, 5000ms);
  EXPECT_EQ(t.wait(Interest::Write, 5000), WaitStatus::Ready);
  EXPECT_EQ(clock.now().since_origin, 5000ms);
  t.push_inbound("x");
  EXPECT_EQ(t.wait(Interest::Read, 5000), WaitStatus::Ready);
  EXPECT_EQ(clock.now().since_origin, 5000ms);
  EXPECT_EQ(t.stats().wait_calls, 3u);
}

TEST(MemoryTransportTest, HooksSeeWritesAndWaits) {
  MemoryTransport t;
  std::string seen;
  t.on_outbound([&](std::span<const std::byte> b) {
    seen.append(reinterpret_cast<const char*>(b.data()), b.size());
    t.push_inbound("reply");  // the hook may push (the lock is not held)
  });
  int waits = 0;
  t.on_wait([&](Interest, std::uint32_t timeout) {
    ++waits;
    EXPECT_EQ(timeout, 7u);
  });
  EXPECT_EQ(t.send(bytes_of("req")).bytes, 3u);
  EXPECT_EQ(seen, "req");
  EXPECT_EQ(t.inbound_pending(), 5u);
  EXPECT_EQ(t.wait(Interest::Read, 7), WaitStatus::Ready);
  EXPECT_EQ(waits, 1);
}

TEST(MemoryTransportTest, CloseByClientIsIdempotent) {
  MemoryTransport t;
  t.close();
  t.close();
  EXPECT_TRUE(t.closed_by_client());
  std::array<std::byte, 1> buf{};
  EXPECT_EQ(t.recv(buf).status, IoStatus::Closed);
  EXPECT_EQ(t.send(bytes_of("x")).status, IoStatus::Closed);
  EXPECT_EQ(t.wait(Interest::Read, 0), WaitStatus::Error);
}

TEST(MemoryTransportTest, BlockingWaitWakesOnPushFromAnotherThread) {
  MemoryTransport t;
  t.set_blocking_wait(true);
  std::thread peer([&] {
    std::this_thread::sleep_for(20ms);
    t.push_inbound("x");
  });
  EXPECT_EQ(t.wait(Interest::Read, 5000), WaitStatus::Ready);
  peer.join();
  std::array<std::byte, 1> buf{};
  EXPECT_EQ(t.recv(buf).status, IoStatus::Ok);
  EXPECT_EQ(t.wait(Interest::Read, 10), WaitStatus::Timeout);
}

}  // namespace
}  // namespace edgekit::testing
