// The OS seam's wake-up (os::Wakeup, src/os_std.cpp) over a real loopback TCP connection: its
// read low water lets bytes gather in the socket before the wait returns, never past the end
// of the stream, and a non-blocking read still takes what is there below it.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>

#include "edgekit/agent/os.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::agent::test {
namespace {

using transport::IoStatus;

struct LoopbackPair {
  transport::TcpTransport client;
  transport::TcpTransport server;
};

bool make_pair(LoopbackPair& p) {
  auto listener = transport::TcpListener::bind("127.0.0.1", 0);
  if (!listener) return false;
  auto c = transport::TcpTransport::connect("127.0.0.1", listener->port(), Duration{2000});
  if (!c) return false;
  auto s = listener->accept(Duration{2000});
  if (!s) return false;
  p.client = std::move(*c);
  p.server = std::move(*s);
  return true;
}

void send_bytes(transport::TcpTransport& t, std::size_t n) {
  std::array<std::byte, 64> bytes{};
  ASSERT_LE(n, bytes.size());
  const auto r = t.send(transport::ConstBuffer(bytes.data(), n));
  ASSERT_EQ(r.status, IoStatus::Ok);
  ASSERT_EQ(r.bytes, n);
}

TEST(AgentWakeup, ReadLowWaterLetsBytesGatherButNotPastTheEndOfTheStream) {
  LoopbackPair p;
  ASSERT_TRUE(make_pair(p));
  os::Wakeup w;
  ASSERT_TRUE(w.ok());
  const int fd = p.client.native_handle();

  // 4 bytes waiting, 8 asked for: the wait runs out (the bytes are there, not enough of them).
  send_bytes(p.server, 4);
  w.arm();
  EXPECT_FALSE(w.wait(fd, Duration{100}, 8).readable);
  // 8 waiting: readable at once.
  send_bytes(p.server, 4);
  w.arm();
  EXPECT_TRUE(w.wait(fd, Duration{5000}, 8).readable);
  std::array<std::byte, 64> buffer{};
  auto r = p.client.recv(buffer);
  ASSERT_EQ(r.status, IoStatus::Ok);
  EXPECT_EQ(r.bytes, 8u);

  // Below the low water a non-blocking read still takes what is there (the agent's timers rely
  // on it), and a wake() still ends the wait.
  send_bytes(p.server, 3);
  w.arm();
  w.wake();
  const auto woken = w.wait(fd, Duration{5000}, 8);
  EXPECT_TRUE(woken.woken);
  r = p.client.recv(buffer);
  ASSERT_EQ(r.status, IoStatus::Ok);
  EXPECT_EQ(r.bytes, 3u);

  // Back to 1: one byte is enough again.
  send_bytes(p.server, 1);
  w.arm();
  EXPECT_TRUE(w.wait(fd, Duration{5000}, 1).readable);
  r = p.client.recv(buffer);
  EXPECT_EQ(r.bytes, 1u);

  // The end of the stream ends a wait for more than will ever come, at once.
  send_bytes(p.server, 2);
  p.server.close();
  w.arm();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(w.wait(fd, Duration{5000}, 64).readable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
  r = p.client.recv(buffer);
  ASSERT_EQ(r.status, IoStatus::Ok);
  EXPECT_EQ(r.bytes, 2u);
  r = p.client.recv(buffer);
  EXPECT_EQ(r.status, IoStatus::Closed);
}

}  // namespace
}  // namespace edgekit::agent::test
