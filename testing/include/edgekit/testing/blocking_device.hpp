#pragma once
/// \file
/// A device's MQTT side over the blocking client for integration tests: TCP to a loopback
/// broker, a session on static storage, receive and send buffers. Header-only; the test links
/// `edgekit::mqtt` and `edgekit::tcp`.
///
///   edgekit::testing::BlockingDevice device;
///   ASSERT_TRUE(device.connect(broker().port(), "device-1"));
///   device.client.publish(...);
///
/// `AgentDevice` is the same over the agent.
///
/// Thread safety: the client's (one task); the agent's. Not movable: both point at members.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "edgekit/agent/agent.hpp"
#include "edgekit/core/clock.hpp"
#include "edgekit/mqtt/client.hpp"
#include "edgekit/mqtt/session.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::testing {

struct BlockingDevice {
  /// Connects TCP to 127.0.0.1:`port`, then MQTT 5 with `client_id` (copied) and a clean start.
  bool connect(std::uint16_t port, std::string_view client_id) {
    auto t = transport::TcpTransport::connect("127.0.0.1", port, Duration{2000});
    if (!t) return false;
    tcp = std::move(*t);
    if (client_id.size() > id.size()) return false;
    std::copy(client_id.begin(), client_id.end(), id.begin());
    mqtt::ConnectOptions o;
    o.version = mqtt::Version::V5;
    o.client_id = std::string_view(id.data(), client_id.size());
    return static_cast<bool>(client.connect(o, Duration{5000}));
  }
  BlockingDevice() = default;
  BlockingDevice(const BlockingDevice&) = delete;
  BlockingDevice& operator=(const BlockingDevice&) = delete;

  SteadyClock clock;
  transport::TcpTransport tcp;
  std::array<char, 64> id{};
  std::array<mqtt::OutgoingRecord, 8> records{};
  std::array<std::uint16_t, 8> qos2{};
  mqtt::TopicAliasArena<4, 64> in_alias{};
  mqtt::TopicAliasArena<4, 64> out_alias{};
  std::array<char, 64> cid{};
  mqtt::Session session{
      mqtt::SessionStorage{records, qos2, in_alias.storage(), out_alias.storage(), cid}};
  std::array<std::byte, 16 * 1024> rx{};
  std::array<std::byte, 4 * 1024> tx{};
  mqtt::Client client{tcp, clock, session, rx, tx};
};

/// A device (or a scripted service) on the agent: TCP to 127.0.0.1:`port`, MQTT 5.
struct AgentDevice {
  AgentDevice(std::uint16_t port, std::string_view client_id, agent::Config config = {})
      : factory("127.0.0.1", port), agent(config, options(client_id), factory, clock) {}
  AgentDevice(const AgentDevice&) = delete;
  AgentDevice& operator=(const AgentDevice&) = delete;
  ~AgentDevice() { agent.stop(); }

  /// Starts the agent, which connects in the background: commands (subscribe_and_wait, ...)
  /// queued meanwhile are carried out once it is connected.
  bool start() { return agent.start(); }

  mqtt::ConnectOptions options(std::string_view client_id) {
    const std::size_t n = std::min(client_id.size(), id.size());
    std::copy_n(client_id.begin(), n, id.begin());
    mqtt::ConnectOptions o;
    o.version = mqtt::Version::V5;
    o.client_id = std::string_view(id.data(), n);
    return o;
  }

  std::array<char, 64> id{};  // before `agent`, which keeps a view of it
  SteadyClock clock;
  agent::TcpTransportFactory factory;
  agent::Agent agent;
};

}  // namespace edgekit::testing
