#pragma once
/// \file
/// What `edgekit sim` runs: a scenario file (JSON, docs/simulator.md "Scenario files") read into
/// plain structs, checked as a whole before anything connects. The fleet connects first (the
/// connect storm, which is also a JITP provisioning storm when the devices' CA is registered for
/// JITP, or a claim provisioning storm with `"identity": "claim"`), then runs the phases in
/// order; devices stay connected (keep-alive) from their connect to the end of the run.
///
/// Example:
///   {"devices": 10000, "identity": "jitp",
///    "connect": {"rate": 500, "in_flight": 128, "keep_alive_s": 60},
///    "phases": [{"kind": "telemetry", "seconds": 30, "rate": 2000, "qos": 1, "bytes": 64},
///               {"kind": "shadow"}, {"kind": "jobs"},
///               {"kind": "ota", "image_bytes": 65536, "block_bytes": 1024},
///               {"kind": "faults", "seconds": 20, "cuts_per_s": 5, "reboots_per_s": 1}]}
///
/// Thread safety: plain values. Errors: `parse_scenario` names the first wrong field (with its
/// JSON path) and never throws.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgekit::sim {

/// How a device comes to the identity it connects with.
enum class IdentityMode : std::uint8_t {
  /// Its own key and certificate from the simulator's device CA (registered in fleetd for JITP,
  /// so the first connect registers the thing: CN = thing name).
  Jitp,
  /// The shared claim certificate, then fleet provisioning by claim (CreateKeysAndCertificate /
  /// CreateCertificateFromCsr + RegisterThing), then a reconnect with its own certificate.
  Claim,
};

struct ConnectSpec {
  double rate = 0;              ///< new connects started per second; 0: as fast as `in_flight` allows
  std::uint32_t in_flight = 64;  ///< connects awaiting their CONNACK at once
  std::uint16_t keep_alive_s = 60;
  std::uint32_t timeout_ms = 30000;  ///< TCP + TLS + CONNACK of one attempt
  std::uint32_t attempts = 3;        ///< per device, with backoff between, before it counts as failed
  /// Clean Start of a device's first connect and of the first connect of an image the OTA phase
  /// installed. Reconnects after a cut or a broker restart always resume (false); a faults-phase
  /// reboot always starts clean (that device has lost its session). Mosquitto 2.0 persists only
  /// sessions whose CONNECT had Clean Start 0: with true, a session begun clean survives cuts
  /// but not a broker restart (docs/simulator.md).
  bool clean_start = true;
};

/// Every device publishes to `<thing>/telemetry` (a per-thing topic fleetd's default thing
/// policy allows), at `rate` messages/s over the whole fleet (round robin), for `seconds` or
/// until `messages` have been sent (0: no limit). `rate` 0 (QoS 1 only): closed loop, each
/// device publishes its next message when the broker acknowledged its last one — the load of a
/// benchmark client such as emqtt-bench or an MQTT.js loop.
struct TelemetrySpec {
  double seconds = 10;
  double rate = 1000;
  std::uint8_t qos = 1;
  std::uint32_t bytes = 64;
  std::uint64_t messages = 0;
};

/// Shadow sync: each device gets its classic shadow and reports its state (shadow::Client); then
/// the operator sets a desired value on every thing through fleetd's admin API and each device
/// applies the delta and reports it: the delta round trip is admin request → reported.
struct ShadowSpec {
  std::uint32_t rounds = 1;
  double timeout_s = 120;  ///< for the whole round; devices still waiting then are counted as lost
};

/// Job rollout: one job for every thing (fleetd's admin API); devices run it with jobs::Runner
/// and report SUCCEEDED. Figure: job created → SUCCEEDED per device.
struct JobsSpec {
  double timeout_s = 180;
  /// Target this thing group (e.g. one a JITP template puts every device in); empty: the
  /// connected things by name, which fleetd's admin API takes up to about 3,000 of (64 KB body).
  std::string group;
  double rollout_per_minute = 0;  ///< the job's rollout rate (0: fleetd's default, all at once)
};

/// Faults while the fleet keeps publishing telemetry at `rate`: connection cuts (the socket is
/// closed under the device; it reconnects and resumes its session), device reboots (session and
/// in-memory state lost: a clean connect) and one broker restart at `broker_restart_at_s` (the
/// simulator runs `--broker-restart-command`), and stalls (below). Every QoS 1 message is delivered or reported lost
/// with its cause.
struct FaultSpec {
  double seconds = 20;
  double rate = 200;  ///< telemetry messages/s meanwhile (QoS 1)
  double cuts_per_s = 0;
  double reboots_per_s = 0;
  std::optional<double> broker_restart_at_s;
  /// Stalls (`stalls_per_s`): a device's link stops carrying bytes both ways without closing
  /// (mqtt_asio::Connection::stall) for a time drawn uniformly from [stall_min_s, stall_max_s]
  /// ("stall_s": 5, or [1, 20]). One longer than the keep-alive plus its ping timeout is found
  /// by the keep-alive and the device reconnects and resumes its session; a shorter one ends by
  /// itself.
  double stalls_per_s = 0;
  double stall_min_s = 5;
  double stall_max_s = 5;
};

/// OTA rollout (ota_phase.hpp): the operator uploads an image of `image_bytes` (an edgekit
/// image, version 2.0.0 over the devices' 1.0.0), has fleetd sign it with its code-signing key
/// and creates an OTA update (a stream in blocks of `block_bytes`, the job AFR_OTA-<id>) for
/// every connected thing or `group`; each device runs the real `ota::Agent` in a
/// `jobs::Runner`: download over the MQTT stream, signature check, install, reboot (a clean
/// reconnect), self-test, SUCCEEDED. `block_bytes` is at most 1024: a data message must fit the
/// device's 2 KB receive buffer (fleet.cpp, kBuffer).
struct OtaSpec {
  std::uint32_t image_bytes = 16 * 1024;  ///< the whole file, the 64-byte header included
  std::uint32_t block_bytes = 1024;
  double timeout_s = 300;
  std::string group;              ///< as JobsSpec::group
  double rollout_per_minute = 0;  ///< the job's rollout rate (0: fleetd's default, all at once)
  bool json = false;              ///< the stream's format: CBOR (the agent's default) or JSON
};

struct Phase {
  enum class Kind : std::uint8_t { Telemetry, Shadow, Jobs, Faults, Ota } kind = Kind::Telemetry;
  TelemetrySpec telemetry;
  ShadowSpec shadow;
  JobsSpec jobs;
  FaultSpec faults;
  OtaSpec ota;
};

struct Scenario {
  std::uint32_t devices = 100;
  IdentityMode identity = IdentityMode::Jitp;
  std::string prefix = "sim";  ///< thing names are <prefix>-<i>
  ConnectSpec connect;
  std::vector<Phase> phases;
  /// Seconds to stay connected after the last phase (keep-alive only), 0: disconnect at once.
  double hold_s = 0;
};

/// Reads a scenario. On error returns nothing and sets `error` to e.g.
/// "phases[1].rate: must be a number > 0".
[[nodiscard]] std::optional<Scenario> parse_scenario(std::string_view json, std::string& error);

/// A short name of a phase kind ("telemetry", "shadow", "jobs", "faults", "ota").
[[nodiscard]] const char* to_string(Phase::Kind kind) noexcept;

}  // namespace edgekit::sim
