// TcpErrc in std::error_code: every value is an error (0 is none of them), in its own category.
#include <gtest/gtest.h>

#include <system_error>

#include "edgekit/testing/error_category.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::transport {
namespace {

TEST(TcpErrorCategory, EveryTcpErrcIsANonZeroErrorCodeWithItsName) {
  edgekit::testing::expect_error_category<TcpErrc>(tcp_category(), "edgekit.tcp", to_string,
                                                   "Unknown", 5);
}

TEST(TcpErrorCategory, ConnectFailureConvertsToErrorCode) {
  // Port 1 on the loopback: nothing listens there (refused), or the time runs out.
  auto r = TcpTransport::connect("127.0.0.1", 1, edgekit::Duration{2000});
  ASSERT_FALSE(r);
  const std::error_code ec = r.error().code;
  EXPECT_EQ(ec, r.error().code);
  EXPECT_EQ(ec.category(), tcp_category());
}

}  // namespace
}  // namespace edgekit::transport
