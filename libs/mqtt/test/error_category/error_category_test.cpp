// mqtt::Errc in std::error_code (the mqtt_error_category target; hosted only).
#include <gtest/gtest.h>

#include <string_view>
#include <system_error>

#include "edgekit/mqtt/errc.hpp"
#include "edgekit/testing/error_category.hpp"

namespace edgekit::mqtt::test {
namespace {

TEST(MqttErrorCategory, EveryErrcIsAnErrorCodeOfTheMqttCategory) {
  // 53 values, Ok (0) among them: 52 errors (the last added: ProtocolVersionNotChosen).
  edgekit::testing::expect_error_category<Errc>(mqtt_category(), "edgekit.mqtt", to_string,
                                                "unknown error", 52);
}

TEST(MqttErrorCategory, OkIsNoErrorAndEqualityKeepsTheCategory) {
  const std::error_code ok = Errc::Ok;
  EXPECT_FALSE(ok);
  const std::error_code bad = Errc::MalformedPacket;
  EXPECT_TRUE(bad);
  EXPECT_EQ(bad, Errc::MalformedPacket);
  EXPECT_NE(bad, std::error_code(static_cast<int>(Errc::MalformedPacket), std::generic_category()));
}

}  // namespace
}  // namespace edgekit::mqtt::test
