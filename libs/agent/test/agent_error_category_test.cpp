// The agent's Errc in std::error_code: Ok is no error, every other value is one, in its own
// category (apart from the MQTT layer's).
#include <gtest/gtest.h>

#include <system_error>

#include "edgekit/agent/agent.hpp"
#include "edgekit/transport/tcp.hpp"
#include "edgekit/testing/error_category.hpp"

namespace edgekit::agent::test {
namespace {

TEST(AgentErrorCategory, OkIsNoErrorAndEveryOtherErrcIsOne) {
  edgekit::testing::expect_error_category<Errc>(agent_category(), "edgekit.agent", to_string,
                                                "?", 16);
  // Same number, different library: not equal.
  EXPECT_NE(std::error_code(Errc::Timeout), std::error_code(mqtt::Errc::Timeout));
}

TEST(AgentErrorCategory, TcpFactoryFailureKeepsTheTransportError) {
  // A port nothing listens on: refused, which the agent calls ConnectFailed.
  auto listener = transport::TcpListener::bind("127.0.0.1", 0);
  ASSERT_TRUE(listener);
  const std::uint16_t port = listener->port();
  listener->close();
  TcpTransportFactory factory("127.0.0.1", port, Duration{2000});
  auto c = factory.connect();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().error, mqtt::Errc::ConnectFailed);
  EXPECT_EQ(c.error().transport_error, transport::TcpErrc::ConnectionRefused);
  EXPECT_EQ(c.error().transport_error.category(), transport::tcp_category());
}

}  // namespace
}  // namespace edgekit::agent::test
