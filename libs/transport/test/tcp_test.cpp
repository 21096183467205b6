// TcpTransport and TcpListener against loopback sockets. Every test is bounded in time and uses
// ports chosen by the system.
#include "edgekit/transport/tcp.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace edgekit::transport {
namespace {

using namespace std::chrono_literals;

ConstBuffer bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Reads until `n` bytes arrived or the peer closed / 2 s passed.
std::string read_exactly(TcpTransport& t, std::size_t n) {
  std::string out;
  std::array<std::byte, 4096> buf{};
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    IoResult r = t.recv(std::span(buf).first(std::min(buf.size(), n - out.size())));
    if (r.status == IoStatus::Ok) {
      out.append(reinterpret_cast<const char*>(buf.data()), r.bytes);
    } else if (r.status == IoStatus::WouldBlock) {
      (void)t.wait(Interest::Read, 100);
    } else {
      break;
    }
  }
  return out;
}

// Waits for the next recv outcome that is not WouldBlock (bounded).
IoResult next_recv_outcome(TcpTransport& t) {
  std::array<std::byte, 256> buf{};
  for (int i = 0; i < 40; ++i) {
    IoResult r = t.recv(buf);
    if (r.status != IoStatus::WouldBlock) return r;
    (void)t.wait(Interest::Read, 50);
  }
  return {IoStatus::WouldBlock, 0, 0};
}

struct Pair {
  TcpListener listener;
  TcpTransport client;
  TcpTransport server;
};

Pair connected_pair(const char* address = "127.0.0.1", const TcpOptions& options = {}) {
  Pair p;
  auto l = TcpListener::bind(address, 0);
  EXPECT_TRUE(l.has_value());
  if (!l) return p;
  p.listener = std::move(*l);
  auto c = TcpTransport::connect(address, p.listener.port(), edgekit::Duration{2000}, options);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().detail);
  if (!c) return p;
  p.client = std::move(*c);
  auto s = p.listener.accept(edgekit::Duration{2000});
  EXPECT_TRUE(s.has_value());
  if (s) p.server = std::move(*s);
  return p;
}

TEST(TcpConnect, ExchangesBytesWithALoopbackListener) {
  Pair p = connected_pair();
  ASSERT_TRUE(p.client.is_open());
  ASSERT_TRUE(p.server.is_open());
  EXPECT_EQ(p.client.send(bytes_of("hello")).bytes, 5u);
  EXPECT_EQ(read_exactly(p.server, 5), "hello");
  EXPECT_EQ(p.server.send(bytes_of("world!")).bytes, 6u);
  EXPECT_EQ(read_exactly(p.client, 6), "world!");
  EXPECT_EQ(p.client.local_port() != 0, true);
}

// Duration::max() as "no limit": the deadline saturates (a plain now + timeout overflowed, which
// UBSan reports) and the connect and accept complete as with any other timeout.
TEST(TcpConnect, AnUnlimitedTimeoutConnects) {
  auto l = TcpListener::bind("127.0.0.1", 0);
  ASSERT_TRUE(l.has_value());
  auto c = TcpTransport::connect("127.0.0.1", l->port(), edgekit::Duration::max());
  ASSERT_TRUE(c.has_value()) << c.error().detail;
  auto s = l->accept(edgekit::Duration::max());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(c->send(bytes_of("x")).bytes, 1u);
  EXPECT_EQ(read_exactly(*s, 1), "x");
}

TEST(TcpConnect, SetsNoDelayAndNonBlocking) {
  Pair p = connected_pair();
  ASSERT_TRUE(p.client.is_open());
  int v = 0;
  socklen_t len = sizeof v;
  ASSERT_EQ(::getsockopt(p.client.native_handle(), IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
  EXPECT_NE(v, 0);
  EXPECT_NE(::fcntl(p.client.native_handle(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(::fcntl(p.server.native_handle(), F_GETFL) & O_NONBLOCK, 0);
}

TEST(TcpConnect, KeepAliveIsOptional) {
  TcpOptions o;
  o.keep_alive = true;
  Pair p = connected_pair("127.0.0.1", o);
  ASSERT_TRUE(p.client.is_open());
  int v = 0;
  socklen_t len = sizeof v;
  ASSERT_EQ(::getsockopt(p.client.native_handle(), SOL_SOCKET, SO_KEEPALIVE, &v, &len), 0);
  EXPECT_NE(v, 0);
}

TEST(TcpConnect, ResolvesLocalhostByName) {
  auto l = TcpListener::bind("127.0.0.1", 0);
  ASSERT_TRUE(l.has_value());
  // "localhost" may resolve to ::1 first; the IPv4 address must still be reached in time.
  auto c = TcpTransport::connect("localhost", l->port(), edgekit::Duration{2000});
  ASSERT_TRUE(c.has_value()) << c.error().detail;
  EXPECT_TRUE(l->accept(edgekit::Duration{1000}).has_value());
}

TEST(TcpConnect, ReportsConnectionRefused) {
  std::uint16_t port = 0;
  {
    auto l = TcpListener::bind("127.0.0.1", 0);
    ASSERT_TRUE(l.has_value());
    port = l->port();
  }  // closed: nobody listens on `port` now
  auto c = TcpTransport::connect("127.0.0.1", port, edgekit::Duration{2000});
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, TcpErrc::ConnectionRefused) << to_string(c.error().code);
  EXPECT_EQ(c.error().system_error, ECONNREFUSED);
}

TEST(TcpConnect, ReportsHostNotFoundWithResolverMessage) {
  // ".invalid" never resolves (RFC 6761).
  auto c = TcpTransport::connect("no-such-host.invalid", 1883, edgekit::Duration{2000});
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, TcpErrc::HostNotFound) << to_string(c.error().code);
  EXPECT_GT(std::strlen(c.error().detail), 0u);
}

TEST(TcpConnect, RejectsEmptyAndOverlongHosts) {
  auto a = TcpTransport::connect("", 1883, edgekit::Duration{100});
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code, TcpErrc::InvalidArgument);
  auto b = TcpTransport::connect(std::string(300, 'a'), 1883, edgekit::Duration{100});
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code, TcpErrc::InvalidArgument);
}

TEST(TcpConnect, TimesOutAgainstAListenerWhoseBacklogIsFull) {
  // A listener that never accepts, with the smallest backlog: once its queue is full the kernel
  // drops further SYNs, so a connect neither succeeds nor is refused.
  auto l = TcpListener::bind("127.0.0.1", 0, 0);
  ASSERT_TRUE(l.has_value());
  std::vector<TcpTransport> fillers;
  bool timed_out = false;
  for (int i = 0; i < 8 && !timed_out; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto c = TcpTransport::connect("127.0.0.1", l->port(), edgekit::Duration{150});
    const auto elapsed = std::chrono::steady_clock::now() - start;
    if (c) {
      fillers.push_back(std::move(*c));
      continue;
    }
    ASSERT_EQ(c.error().code, TcpErrc::Timeout)
        << to_string(c.error().code) << ": " << c.error().detail;
    EXPECT_GE(elapsed, 140ms);
    EXPECT_LT(elapsed, 1500ms);
    timed_out = true;
  }
  EXPECT_TRUE(timed_out) << "the backlog never filled";
}

TEST(TcpConnect, ConnectsOverIpv6Loopback) {
  auto l = TcpListener::bind("::1", 0);
  if (!l) GTEST_SKIP() << "IPv6 loopback unavailable: " << l.error().detail;
  auto c = TcpTransport::connect("::1", l->port(), edgekit::Duration{2000});
  ASSERT_TRUE(c.has_value()) << c.error().detail;
  auto s = l->accept(edgekit::Duration{2000});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(c->send(bytes_of("v6")).bytes, 2u);
  EXPECT_EQ(read_exactly(*s, 2), "v6");
  // The bracketed URL form is accepted too.
  auto c2 = TcpTransport::connect("[::1]", l->port(), edgekit::Duration{2000});
  EXPECT_TRUE(c2.has_value());
}

TEST(TcpIo, WritevSendsAllBuffersInOneCall) {
  Pair p = connected_pair();
  ASSERT_TRUE(p.client.is_open());
  std::string payload(1000, 'p');
  const ConstBuffer parts[] = {bytes_of("\x30\x0e"), bytes_of(""), bytes_of("topic"),
                               bytes_of(payload)};
  IoResult r = p.client.writev(parts);
  ASSERT_EQ(r.status, IoStatus::Ok);
  // One call carried every buffer (a short first send would return fewer bytes).
  EXPECT_EQ(r.bytes, 2u + 5u + payload.size());
  EXPECT_EQ(read_exactly(p.server, r.bytes), std::string("\x30\x0e") + "topic" + payload);
}

TEST(TcpIo, WritevOfOnlyEmptyBuffersSendsNothing) {
  Pair p = connected_pair();
  const ConstBuffer parts[] = {bytes_of(""), bytes_of("")};
  IoResult r = p.client.writev(parts);
  EXPECT_EQ(r.status, IoStatus::Ok);
  EXPECT_EQ(r.bytes, 0u);
}

TEST(TcpIo, WritevWithMoreBuffersThanOneCallTakesIsPartial) {
  Pair p = connected_pair();
  std::vector<ConstBuffer> parts(5000, bytes_of("x"));
  IoResult r = p.client.writev(parts);
  ASSERT_EQ(r.status, IoStatus::Ok);
  EXPECT_GT(r.bytes, 0u);
  EXPECT_LT(r.bytes, parts.size());
  EXPECT_EQ(read_exactly(p.server, r.bytes), std::string(r.bytes, 'x'));
}

TEST(TcpIo, RecvOnIdleConnectionWouldBlockNotClosed) {
  Pair p = connected_pair();
  std::array<std::byte, 16> buf{};
  IoResult r = p.client.recv(buf);
  EXPECT_EQ(r.status, IoStatus::WouldBlock);
  EXPECT_EQ(r.bytes, 0u);
  EXPECT_EQ(p.client.wait(Interest::Read, 20), WaitStatus::Timeout);
  EXPECT_EQ(p.client.wait(Interest::Write, 1000), WaitStatus::Ready);
}

TEST(TcpIo, WaitReportsReadableWhenDataArrives) {
  Pair p = connected_pair();
  ASSERT_EQ(p.server.send(bytes_of("x")).status, IoStatus::Ok);
  EXPECT_EQ(p.client.wait(Interest::Read, 2000), WaitStatus::Ready);
  EXPECT_EQ(p.client.wait(Interest::ReadWrite, 0), WaitStatus::Ready);
}

TEST(TcpIo, OrderlyShutdownByPeerIsClosed) {
  Pair p = connected_pair();
  ASSERT_EQ(p.server.send(bytes_of("last")).status, IoStatus::Ok);
  p.server.close();
  // Bytes sent before the FIN are still delivered, then Closed.
  EXPECT_EQ(read_exactly(p.client, 4), "last");
  IoResult r = next_recv_outcome(p.client);
  EXPECT_EQ(r.status, IoStatus::Closed);
  EXPECT_EQ(r.system_error, 0);
}

TEST(TcpIo, ResetByPeerIsClosedWithEconnreset) {
  Pair p = connected_pair();
  linger lg{1, 0};  // close() with linger 0 sends RST
  ASSERT_EQ(::setsockopt(p.server.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  p.server.close();
  IoResult r = next_recv_outcome(p.client);
  EXPECT_EQ(r.status, IoStatus::Closed);
  EXPECT_EQ(r.system_error, ECONNRESET);
}

TEST(TcpIo, SendingToAResetPeerNeverRaisesSigpipe) {
  Pair p = connected_pair();
  linger lg{1, 0};
  ASSERT_EQ(::setsockopt(p.server.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  p.server.close();
  (void)p.client.wait(Interest::Read, 1000);
  // Without MSG_NOSIGNAL the second send would kill the test process with SIGPIPE.
  IoResult last{};
  for (int i = 0; i < 5; ++i) {
    last = p.client.send(bytes_of("data"));
    if (last.status != IoStatus::Ok) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(last.status, IoStatus::Closed);
  EXPECT_TRUE(last.system_error == EPIPE || last.system_error == ECONNRESET) << last.system_error;
}

TEST(TcpIo, SendWouldBlockWhenThePeerDoesNotRead) {
  TcpOptions small;
  small.send_buffer_size = 4096;
  Pair p = connected_pair("127.0.0.1", small);
  std::vector<std::byte> chunk(64 * 1024, std::byte{0x55});
  std::size_t total = 0;
  IoResult r{};
  for (int i = 0; i < 10000; ++i) {
    r = p.client.send(chunk);
    if (r.status != IoStatus::Ok) break;
    total += r.bytes;
  }
  EXPECT_EQ(r.status, IoStatus::WouldBlock);
  EXPECT_EQ(r.bytes, 0u);
  EXPECT_GT(total, 0u);
  EXPECT_EQ(p.client.wait(Interest::Write, 10), WaitStatus::Timeout);
}

TEST(TcpLifecycle, CloseIsIdempotentAndLaterCallsReturnClosed) {
  Pair p = connected_pair();
  p.client.close();
  p.client.close();
  EXPECT_FALSE(p.client.is_open());
  std::array<std::byte, 4> buf{};
  EXPECT_EQ(p.client.send(bytes_of("x")).status, IoStatus::Closed);
  EXPECT_EQ(p.client.recv(buf).status, IoStatus::Closed);
  const ConstBuffer parts[] = {bytes_of("x")};
  EXPECT_EQ(p.client.writev(parts).status, IoStatus::Closed);
  EXPECT_EQ(p.client.wait(Interest::Read, 0), WaitStatus::Error);
  // The peer sees end of stream.
  EXPECT_EQ(next_recv_outcome(p.server).status, IoStatus::Closed);
}

TEST(TcpLifecycle, MoveTransfersOwnershipAndDestructorCloses) {
  Pair p = connected_pair();
  const int fd = p.client.native_handle();
  TcpTransport moved(std::move(p.client));
  EXPECT_FALSE(p.client.is_open());  // NOLINT(bugprone-use-after-move): moved-from is closed
  EXPECT_EQ(moved.native_handle(), fd);
  TcpTransport assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.native_handle(), fd);
  ASSERT_EQ(assigned.send(bytes_of("ok")).bytes, 2u);
  EXPECT_EQ(read_exactly(p.server, 2), "ok");
  { TcpTransport dying(std::move(assigned)); }
  EXPECT_EQ(next_recv_outcome(p.server).status, IoStatus::Closed);
}

TEST(TcpListenerTest, AcceptTimesOutWhenNobodyConnects) {
  auto l = TcpListener::bind("127.0.0.1", 0);
  ASSERT_TRUE(l.has_value());
  EXPECT_NE(l->port(), 0);
  auto s = l->accept(edgekit::Duration{30});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, TcpErrc::Timeout);
}

TEST(TcpListenerTest, RejectsNonNumericAddressAndBusyPort) {
  auto bad = TcpListener::bind("localhost", 0);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, TcpErrc::InvalidArgument);
  auto l = TcpListener::bind("127.0.0.1", 0);
  ASSERT_TRUE(l.has_value());
  auto again = TcpListener::bind("127.0.0.1", l->port());
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, TcpErrc::SystemError);
  EXPECT_EQ(again.error().system_error, EADDRINUSE);
}

}  // namespace
}  // namespace edgekit::transport
