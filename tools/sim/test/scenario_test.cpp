// The scenario file: what it accepts, and that every mistake is named by its JSON path.
#include "scenario.hpp"

#include <gtest/gtest.h>

#include <string>

namespace edgekit::sim {
namespace {

TEST(Scenario, ReadsEveryPhaseKind) {
  std::string error;
  const auto s = parse_scenario(R"({
      "devices": 10000, "identity": "claim", "prefix": "fleet_a", "hold_s": 5,
      "connect": {"rate": 500, "in_flight": 128, "keep_alive_s": 30, "timeout_s": 12.5, "attempts": 4,
                  "clean_start": false},
      "phases": [
        {"kind": "telemetry", "seconds": 30, "rate": 2000, "qos": 0, "bytes": 200},
        {"kind": "shadow", "rounds": 2, "timeout_s": 60},
        {"kind": "jobs", "timeout_s": 90, "rollout_per_minute": 6000, "group": "fleet-a"},
        {"kind": "faults", "seconds": 20, "rate": 100, "cuts_per_s": 5, "reboots_per_s": 1,
         "broker_restart_at_s": 10}]})",
                                error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->devices, 10000u);
  EXPECT_EQ(s->identity, IdentityMode::Claim);
  EXPECT_EQ(s->prefix, "fleet_a");
  EXPECT_EQ(s->hold_s, 5);
  EXPECT_EQ(s->connect.rate, 500);
  EXPECT_EQ(s->connect.in_flight, 128u);
  EXPECT_EQ(s->connect.keep_alive_s, 30);
  EXPECT_EQ(s->connect.timeout_ms, 12500u);
  EXPECT_EQ(s->connect.attempts, 4u);
  EXPECT_FALSE(s->connect.clean_start);
  ASSERT_EQ(s->phases.size(), 4u);
  EXPECT_EQ(s->phases[0].kind, Phase::Kind::Telemetry);
  EXPECT_EQ(s->phases[0].telemetry.qos, 0);
  EXPECT_EQ(s->phases[0].telemetry.bytes, 200u);
  EXPECT_EQ(s->phases[1].shadow.rounds, 2u);
  EXPECT_EQ(s->phases[2].jobs.rollout_per_minute, 6000);
  EXPECT_EQ(s->phases[2].jobs.group, "fleet-a");
  ASSERT_TRUE(s->phases[3].faults.broker_restart_at_s);
  EXPECT_EQ(*s->phases[3].faults.broker_restart_at_s, 10);
  EXPECT_EQ(s->phases[3].faults.cuts_per_s, 5);
  EXPECT_STREQ(to_string(s->phases[3].kind), "faults");
}

TEST(Scenario, StallsTakeALengthOrARange) {
  std::string error;
  auto s = parse_scenario(R"({"phases": [{"kind": "faults", "stalls_per_s": 2, "stall_s": 7},
                                         {"kind": "faults", "stall_s": [0.5, 12]}]})", error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->phases[0].faults.stalls_per_s, 2);
  EXPECT_EQ(s->phases[0].faults.stall_min_s, 7);
  EXPECT_EQ(s->phases[0].faults.stall_max_s, 7);
  EXPECT_EQ(s->phases[1].faults.stalls_per_s, 0);  // no stalls unless asked for
  EXPECT_EQ(s->phases[1].faults.stall_min_s, 0.5);
  EXPECT_EQ(s->phases[1].faults.stall_max_s, 12);
}

TEST(Scenario, DefaultsWhenMembersAreLeftOut) {
  std::string error;
  const auto s = parse_scenario("{}", error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->devices, 100u);
  EXPECT_EQ(s->identity, IdentityMode::Jitp);
  EXPECT_EQ(s->prefix, "sim");
  EXPECT_TRUE(s->connect.clean_start);
  EXPECT_TRUE(s->phases.empty());
}

TEST(Scenario, NamesTheFirstMistakeByItsPath) {
  struct Case {
    const char* json;
    const char* error;
  };
  const Case cases[] = {
      {"[", "not valid JSON"},
      {"[]", "must be an object"},
      {R"({"devices": 0})", "devices: must be between 1 and 1000000"},
      {R"({"devices": -3})", "devices: must be a whole number"},
      {R"({"devices": 1.5})", "devices: must be a whole number"},
      {R"({"device": 10})", "device: unknown member"},
      {R"({"identity": "x509"})", "identity: must be \"jitp\" or \"claim\""},
      {R"({"prefix": "a/b"})", "prefix: must be 1 to 64 of [a-zA-Z0-9_-]"},
      {R"({"connect": {"rate": "fast"}})", "connect.rate: must be a number"},
      {R"({"connect": {"in_flight": 0}})", "connect.in_flight: must be between 1 and 100000"},
      {R"({"connect": {"clean_start": 0}})", "connect.clean_start: must be true or false"},
      {R"({"phases": {}})", "phases: must be an array"},
      {R"({"phases": [{"seconds": 3}]})", "phases[0].kind: missing (telemetry, shadow, jobs, faults or ota)"},
      {R"({"phases": [{"kind": "shadow"}, {"kind": "storm"}]})",
       "phases[1].kind: unknown phase 'storm' (telemetry, shadow, jobs, faults or ota)"},
      {R"({"phases": [{"kind": "telemetry", "rate": -1}]})", "phases[0].rate: must be a number >= 0 and <= 10000000"},
      {R"({"phases": [{"kind": "telemetry", "rate": 0, "qos": 0}]})",
       "phases[0].rate: 0 (as fast as acknowledgements allow) needs qos 1"},
      {R"({"phases": [{"kind": "telemetry", "qos": 2}]})", "phases[0].qos: must be between 0 and 1"},
      {R"({"phases": [{"kind": "faults", "cuts_per_sec": 2}]})", "phases[0].cuts_per_sec: unknown member"},
      {R"({"phases": [{"kind": "faults", "seconds": 5, "broker_restart_at_s": 5}]})",
       "phases[0].broker_restart_at_s: must be within the phase's seconds"},
      {R"({"phases": [{"kind": "faults", "stall_s": [3]}]})",
       "phases[0].stall_s: must be a number or [min, max] of seconds"},
      {R"({"phases": [{"kind": "faults", "stall_s": [5, 1]}]})",
       "phases[0].stall_s: must be > 0, min <= max, and at most a day"},
      {R"({"phases": [{"kind": "faults", "stall_s": 0}]})",
       "phases[0].stall_s: must be a number > 0 and <= 86400"},
  };
  for (const Case& c : cases) {
    std::string error;
    EXPECT_FALSE(parse_scenario(c.json, error)) << c.json;
    EXPECT_EQ(error, c.error) << c.json;
  }
}

// The OTA phase (ota_phase.hpp): its options, its defaults, and each mistake by its path.
TEST(Scenario, ReadsTheOtaPhase) {
  std::string error;
  auto s = parse_scenario(R"({"phases": [{"kind": "ota"},
      {"kind": "ota", "image_bytes": 65536, "block_bytes": 512, "timeout_s": 60,
       "group": "sim-fleet", "rollout_per_minute": 600, "format": "json"}]})",
                          error);
  ASSERT_TRUE(s) << error;
  ASSERT_EQ(s->phases.size(), 2u);
  const OtaSpec& d = s->phases[0].ota;
  EXPECT_EQ(s->phases[0].kind, Phase::Kind::Ota);
  EXPECT_EQ(d.image_bytes, 16u * 1024);
  EXPECT_EQ(d.block_bytes, 1024u);
  EXPECT_EQ(d.timeout_s, 300);
  EXPECT_TRUE(d.group.empty());
  EXPECT_FALSE(d.json);
  const OtaSpec& o = s->phases[1].ota;
  EXPECT_EQ(o.image_bytes, 65536u);
  EXPECT_EQ(o.block_bytes, 512u);
  EXPECT_EQ(o.timeout_s, 60);
  EXPECT_EQ(o.group, "sim-fleet");
  EXPECT_EQ(o.rollout_per_minute, 600);
  EXPECT_TRUE(o.json);
  EXPECT_STREQ(to_string(Phase::Kind::Ota), "ota");

  struct Case {
    const char* json;
    const char* error;
  };
  const Case cases[] = {
      {R"({"phases": [{"kind": "jobs"}, {"kind": "ota", "image_bytes": 64}]})",
       "phases[1].image_bytes: must be between 65 and 16777216"},
      {R"({"phases": [{"kind": "ota", "block_bytes": 4096}]})",
       "phases[0].block_bytes: must be between 256 and 1024"},
      {R"({"phases": [{"kind": "ota", "block_bytes": 128}]})",
       "phases[0].block_bytes: must be between 256 and 1024"},
      {R"({"phases": [{"kind": "ota", "timeout_s": 0}]})",
       "phases[0].timeout_s: must be a number > 0 and <= 86400"},
      {R"({"phases": [{"kind": "ota", "group": 3}]})", "phases[0].group: must be a string"},
      {R"({"phases": [{"kind": "ota", "format": "xml"}]})",
       "phases[0].format: must be \"cbor\" or \"json\""},
      {R"({"phases": [{"kind": "ota", "image_size": 1000}]})",
       "phases[0].image_size: unknown member"},
      {R"({"phases": [{"kind": "ota", "rollout_per_minute": -1}]})",
       "phases[0].rollout_per_minute: must be a number >= 0 and <= 1000000"},
  };
  for (const Case& c : cases) {
    EXPECT_FALSE(parse_scenario(c.json, error)) << c.json;
    EXPECT_EQ(error, c.error) << c.json;
  }
}

}  // namespace
}  // namespace edgekit::sim
