#pragma once
/// \file
/// A device with a `reqres::Channel` over either MQTT driver, for the tests of the
/// request/response clients (reqres, shadow; jobs and OTA next), which run each case over both:
///
///   class MyTest : public MosquittoFixture, public ::testing::WithParamInterface<Driver> {};
///   TEST_P(MyTest, Works) {
///     ChannelDevice device;
///     ASSERT_TRUE(device.connect(GetParam(), broker().port(), "lamp-1"));
///     shadow::Client c(*device.channel, ...);
///   }
///   INSTANTIATE_TEST_SUITE_P(Drivers, MyTest, kBothDrivers, driver_name);
///
/// Header-only; the test links `edgekit::reqres` and `edgekit::tcp`. Thread safety: as the
/// drivers'.

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "edgekit/reqres/channel.hpp"
#include "edgekit/testing/blocking_device.hpp"

namespace edgekit::testing {

/// Which MQTT driver a channel runs over.
enum class Driver { Client, Agent };

inline void PrintTo(Driver d, std::ostream* os) {
  *os << (d == Driver::Client ? "Client" : "Agent");
}
/// For INSTANTIATE_TEST_SUITE_P: the cases are named .../Client and .../Agent.
inline std::string driver_name(const ::testing::TestParamInfo<Driver>& info) {
  return info.param == Driver::Client ? "Client" : "Agent";
}
inline const auto kBothDrivers = ::testing::Values(Driver::Client, Driver::Agent);

struct ChannelDevice {
  /// Connects over `driver` to 127.0.0.1:`port` as `client_id`; `config` is the agent's.
  bool connect(Driver driver, std::uint16_t port, std::string_view client_id,
               agent::Config config = {}) {
    if (driver == Driver::Client) {
      blocking = std::make_unique<BlockingDevice>();
      if (!blocking->connect(port, client_id)) return false;
      channel = std::make_unique<reqres::ClientChannel>(blocking->client, blocking->clock);
      return true;
    }
    agent = std::make_unique<AgentDevice>(port, client_id, config);
    if (!agent->start()) return false;
    channel = std::make_unique<reqres::AgentChannel>(agent->agent);
    return true;
  }
  ChannelDevice() = default;
  ChannelDevice(const ChannelDevice&) = delete;
  ChannelDevice& operator=(const ChannelDevice&) = delete;
  ~ChannelDevice() { reset(); }
  /// Closes everything, the channel first (it points into the driver); e.g. before the broker
  /// of the test stops.
  void reset() {
    channel.reset();
    agent.reset();
    blocking.reset();
  }

  std::unique_ptr<BlockingDevice> blocking;
  std::unique_ptr<AgentDevice> agent;
  std::unique_ptr<reqres::Channel> channel;
};

}  // namespace edgekit::testing
