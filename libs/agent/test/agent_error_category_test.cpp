// The agent's Errc in std::error_code: Ok is no error, every other value is one, in its own
// category (apart from the MQTT layer's).
#include <gtest/gtest.h>

#include <system_error>

#include "edgekit/agent/agent.hpp"
#include "edgekit/testing/error_category.hpp"

namespace edgekit::agent::test {
namespace {

TEST(AgentErrorCategory, OkIsNoErrorAndEveryOtherErrcIsOne) {
  edgekit::testing::expect_error_category<Errc>(agent_category(), "edgekit.agent", to_string,
                                                "?", 16);
  // Same number, different library: not equal.
  EXPECT_NE(std::error_code(Errc::Timeout), std::error_code(mqtt::Errc::Timeout));
}

}  // namespace
}  // namespace edgekit::agent::test
