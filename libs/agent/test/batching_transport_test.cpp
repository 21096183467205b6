// The agent's batching link (src/batching_transport.hpp) against a counting transport: writes
// between two waits leave as one, and a zero-timeout check for data costs no poll of its own.
#include "../src/batching_transport.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <vector>

#include "edgekit/core/clock.hpp"

namespace edgekit::agent::test {
namespace {

using transport::ConstBuffer;
using transport::Interest;
using transport::IoResult;
using transport::IoStatus;
using transport::WaitStatus;

// Counts every call; holds `pending` bytes for recv.
class CountingTransport final : public transport::Transport {
 public:
  IoResult send(ConstBuffer data) noexcept override {
    return writev(std::span<const ConstBuffer>(&data, 1));
  }
  IoResult writev(std::span<const ConstBuffer> buffers) noexcept override {
    ++writes;
    std::size_t n = 0;
    for (auto b : buffers) {
      written.insert(written.end(), b.begin(), b.end());
      n += b.size();
    }
    return {IoStatus::Ok, n, 0};
  }
  IoResult recv(std::span<std::byte> buffer) noexcept override {
    ++recvs;
    if (pending == 0) return {IoStatus::WouldBlock, 0, 0};
    const std::size_t n = std::min(pending, buffer.size());
    pending -= n;
    return {IoStatus::Ok, n, 0};
  }
  WaitStatus wait(Interest, std::uint32_t) noexcept override {
    ++waits;
    return pending > 0 ? WaitStatus::Ready : WaitStatus::Timeout;
  }
  void close() noexcept override {}

  int writes = 0, recvs = 0, waits = 0;
  std::size_t pending = 0;
  std::vector<std::byte> written;
};

class BatchingTransportTest : public ::testing::Test {
 protected:
  SteadyClock clock_;
  CountingTransport inner_;
  detail::BatchingTransport link_{1024, clock_};
  void SetUp() override { link_.attach(&inner_, 3); }
};

TEST_F(BatchingTransportTest, WritesBetweenTwoWaitsLeaveAsOne) {
  const std::array<std::byte, 10> packet{};
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(link_.send(ConstBuffer(packet)).status, IoStatus::Ok);
  }
  EXPECT_EQ(inner_.writes, 0);
  (void)link_.wait(Interest::Read, 0);
  EXPECT_EQ(inner_.writes, 1);
  EXPECT_EQ(inner_.written.size(), 50u);
}

// The agent checks for data after every batch with a zero timeout. recv never blocks, so the
// link lets the client try it at once instead of polling first: with data there, one system
// call (recv) instead of two (poll + recv).
TEST_F(BatchingTransportTest, ZeroTimeoutReadCheckCostsNoPollAndDataIsStillRead) {
  inner_.pending = 8;
  EXPECT_EQ(link_.wait(Interest::Read, 0), WaitStatus::Ready);
  EXPECT_EQ(inner_.waits, 0);
  std::array<std::byte, 64> buf{};
  const auto r = link_.recv(buf);
  EXPECT_EQ(r.status, IoStatus::Ok);
  EXPECT_EQ(r.bytes, 8u);
  EXPECT_EQ(inner_.recvs, 1);
  EXPECT_EQ(link_.data_reads(), 1u);
}

// Nothing there: the (stale) readiness costs one recv answering WouldBlock, as many system calls
// as the poll it replaces; nothing is lost or invented.
TEST_F(BatchingTransportTest, ZeroTimeoutReadCheckWithNoDataIsOneWouldBlockRecv) {
  EXPECT_EQ(link_.wait(Interest::Read, 0), WaitStatus::Ready);
  std::array<std::byte, 64> buf{};
  EXPECT_EQ(link_.recv(buf).status, IoStatus::WouldBlock);
  EXPECT_EQ(inner_.waits, 0);
  EXPECT_EQ(inner_.recvs, 1);
  EXPECT_EQ(link_.data_reads(), 0u);
}

// A wait with a timeout still blocks in the inner transport (the agent relies on it to sleep).
TEST_F(BatchingTransportTest, WaitWithATimeoutStillWaitsOnTheConnection) {
  EXPECT_EQ(link_.wait(Interest::Read, 50), WaitStatus::Timeout);
  EXPECT_EQ(inner_.waits, 1);
  inner_.pending = 1;
  EXPECT_EQ(link_.wait(Interest::Read, 50), WaitStatus::Ready);
  EXPECT_EQ(inner_.waits, 2);
}

}  // namespace
}  // namespace edgekit::agent::test
