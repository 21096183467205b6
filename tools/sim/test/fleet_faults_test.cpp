// sim::Fleet's network faults against a real Mosquitto (plain TCP, MQTT 5, one event-loop
// thread): stalled links, short ones that end by themselves and long ones the keep-alive finds,
// lose no QoS 1 message; the drain after a phase waits for stalled and reconnecting devices;
// devices still offline when the drain's bound ends are counted as pending under their own
// cause, not as lost; devices spread over two loopback source addresses; and the parser of
// `--source-addresses`.
#include <gtest/gtest.h>
#include <signal.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <edgekit/testing/mosquitto.hpp>
#include <map>
#include <string>

#include "fleet.hpp"
#include "metrics.hpp"
#include "scenario.hpp"
#include "source_addresses.hpp"

namespace edgekit::sim {
namespace {

using namespace std::chrono_literals;

struct FleetRun {
  FleetSummary summary;
  std::map<std::string, ErrorEntry, std::less<>> errors;
  bool finished = false;
};

std::string errors_text(const FleetRun& r) {
  std::string s;
  for (const auto& [cause, e] : r.errors) {
    s += "  " + std::to_string(e.count) + " x " + cause + " (" + e.first_example + ")\n";
  }
  return s;
}

// Runs `scenario_json` with `options` (scenario and broker filled in here) to its end.
FleetRun run_fleet(const std::string& scenario_json, FleetOptions options, std::uint16_t port) {
  std::string error;
  auto scenario = parse_scenario(scenario_json, error);
  EXPECT_TRUE(scenario) << error;
  FleetRun out;
  if (!scenario) return out;
  options.scenario = *scenario;
  options.broker = {asio::ip::make_address("127.0.0.1"), port};
  asio::io_context io;
  Metrics metrics(std::chrono::steady_clock::now(), false);
  Fleet fleet(io, metrics, options);
  fleet.start();
  const auto limit = std::chrono::steady_clock::now() + 180s;
  while (!fleet.finished() && std::chrono::steady_clock::now() < limit) {
    io.restart();
    io.run_for(50ms);
  }
  out.finished = fleet.finished();
  out.summary = fleet.summary();
  out.errors = metrics.errors();
  return out;
}

class FleetFaults : public testing::MosquittoFixture {};

// Two faults phases on 40 devices with a 1 s keep-alive (so a dead link is found after at most
// 1 s + the 1.5 s ping timeout): first stalls of 0.2-0.6 s, which end before the keep-alive or
// the broker's (1.5 s of silence) notices, and a few cuts; then stalls of 4-6 s, which the keep-alive finds: the
// device reconnects and its session resends. The second phase ends with stalls in progress and
// the drain allows connected devices only 0.5 s: the stalled ones are waited for (up to 20 s),
// so every message is acknowledged.
TEST_F(FleetFaults, StalledLinksLoseNoQos1Message) {
  FleetOptions o;
  o.drain = 500ms;
  o.drain_offline = 20s;
  const FleetRun r = run_fleet(R"({"devices": 40, "prefix": "stall",
      "connect": {"in_flight": 40, "keep_alive_s": 1, "timeout_s": 5},
      "phases": [
        {"kind": "faults", "seconds": 4, "rate": 200, "stalls_per_s": 5, "stall_s": [0.2, 0.6],
         "cuts_per_s": 1},
        {"kind": "faults", "seconds": 4, "rate": 200, "stalls_per_s": 3, "stall_s": [4, 6]}]})",
                          o, broker().port());
  ASSERT_TRUE(r.finished);
  const FleetSummary& s = r.summary;
  EXPECT_EQ(s.connected, 40u);
  EXPECT_GE(s.stalls, 25u);  // 20 + 12 offered; a device already stalled is not picked twice
  EXPECT_GT(s.stalls_reconnected, 0u);          // the long ones
  EXPECT_LT(s.stalls_reconnected, s.stalls);    // the short ones ended by themselves
  EXPECT_GT(s.published, 1000u);
  EXPECT_EQ(s.unacknowledged, 0u) << errors_text(r);
  EXPECT_EQ(s.pending_offline, 0u) << errors_text(r);
  EXPECT_EQ(s.lost_session, 0u);
  EXPECT_EQ(s.refused, 0u);
  EXPECT_EQ(s.acknowledged, s.published);
  EXPECT_GE(s.cuts, 3u);
  // A stall or a cut is the scenario's, not an error: nothing else happened.
  EXPECT_TRUE(r.errors.empty()) << errors_text(r);
}

// The broker freezes (SIGSTOP) 0.5 s into the 5 s phase and stays frozen: each device's window
// of 8 messages fills within about 0.4 s, its keep-alive then finds the silent broker (1 s +
// 1.5 s), its reconnect gets no CONNACK (8 s timeout), and when the drain's bound for offline
// devices ends (4 s after the phase) it still holds unacknowledged messages. Those are counted as pending, under a
// cause that says the device was offline, not as messages dropped without a cause.
TEST_F(FleetFaults, MessagesOfDevicesOfflineAtTheEndOfTheDrainArePendingNotLost) {
  FleetOptions o;
  o.drain = 500ms;
  o.drain_offline = 4s;
  o.broker_restart_command = "kill -STOP " + std::to_string(broker().pid());
  const FleetRun r = run_fleet(R"({"devices": 20, "prefix": "frozen",
      "connect": {"in_flight": 20, "keep_alive_s": 1, "timeout_s": 8, "attempts": 1},
      "phases": [{"kind": "faults", "seconds": 5, "rate": 400, "broker_restart_at_s": 0.5}]})",
                          o, broker().port());
  ::kill(broker().pid(), SIGCONT);  // for the fixture's stop
  ASSERT_TRUE(r.finished);
  const FleetSummary& s = r.summary;
  EXPECT_EQ(s.unacknowledged, 0u) << errors_text(r);
  EXPECT_GT(s.pending_offline, 0u) << errors_text(r);
  const auto pending = r.errors.find("pending: the device was offline at the end of the drain");
  ASSERT_NE(pending, r.errors.end()) << errors_text(r);
  EXPECT_EQ(pending->second.count, s.pending_offline);
  EXPECT_EQ(s.acknowledged + s.pending_offline + s.lost_session, s.published);
}

// Devices round robin over two loopback source addresses: the broker sees both.
TEST_F(FleetFaults, DevicesConnectFromEverySourceAddress) {
  FleetOptions o;
  std::string error;
  auto sources = parse_source_addresses("127.0.0.1-127.0.0.2", error);
  ASSERT_TRUE(sources) << error;
  o.source_addresses = *sources;
  const FleetRun r = run_fleet(R"({"devices": 6, "prefix": "src",
      "phases": [{"kind": "telemetry", "seconds": 1, "rate": 30}]})",
                          o, broker().port());
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.summary.connected, 6u);
  EXPECT_EQ(r.summary.acknowledged, r.summary.published);
  const std::string log = broker().log();
  for (int i = 0; i < 6; ++i) {
    // Mosquitto: "New client connected from 127.0.0.2:40123 as src-1 (p5, c1, k60)."
    const std::string from = i % 2 == 0 ? "127.0.0.1:" : "127.0.0.2:";
    const std::string as = " as src-" + std::to_string(i) + " ";
    const auto at = log.find(as);
    ASSERT_NE(at, std::string::npos) << as << "\n" << log;
    const auto line_start = log.rfind('\n', at);
    EXPECT_NE(log.substr(line_start, at - line_start).find("connected from " + from),
              std::string::npos)
        << log.substr(line_start, at - line_start + as.size());
  }
}

TEST(SourceAddresses, CountRangeAndList) {
  std::string error;
  auto n = parse_source_addresses("3", error);
  ASSERT_TRUE(n) << error;
  ASSERT_EQ(n->size(), 3u);
  EXPECT_EQ((*n)[0].to_string(), "127.0.0.1");
  EXPECT_EQ((*n)[2].to_string(), "127.0.0.3");
  auto range = parse_source_addresses("127.0.0.250-127.0.1.4", error);
  ASSERT_TRUE(range) << error;
  ASSERT_EQ(range->size(), 11u);
  EXPECT_EQ(range->back().to_string(), "127.0.1.4");
  auto list = parse_source_addresses("127.0.0.5,::1", error);
  ASSERT_TRUE(list) << error;
  ASSERT_EQ(list->size(), 2u);
  EXPECT_TRUE((*list)[1].is_v6());
}

TEST(SourceAddresses, MistakesAreNamed) {
  struct Case {
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"", "empty: a count, a range A-B or a list A,B"},
      {"0", "'0': a count must be 1 to 4096"},
      {"5000", "'5000': a count must be 1 to 4096"},
      {"127.0.0.9-127.0.0.1", "'127.0.0.9-127.0.0.1': the range ends before it starts"},
      {"127.0.0.1-128.0.0.1", "'127.0.0.1-128.0.0.1': more than 4096 addresses"},
      {"127.0.0.1-x", "'127.0.0.1-x': a range is two IPv4 addresses, A-B"},
      {"127.0.0.1,,127.0.0.2", "'127.0.0.1,,127.0.0.2': '' is not an IP address"},
      {"0.0.0.0", "'0.0.0.0': '0.0.0.0' is not an IP address"},
  };
  for (const Case& c : cases) {
    std::string error;
    EXPECT_FALSE(parse_source_addresses(c.text, error)) << c.text;
    EXPECT_EQ(error, c.error) << c.text;
  }
}

}  // namespace
}  // namespace edgekit::sim
