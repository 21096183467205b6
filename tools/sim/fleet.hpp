#pragma once
/// \file
/// `sim::Fleet`: runs a scenario (scenario.hpp) with N simulated devices on one io_context
/// thread. Each device is a `sim::Device` (its own session, connection and `LoopChannel`) with
/// its own identity (`tls::ClientIdentity` through `mqtt_asio::Endpoint::identity`), and a
/// fiber (fiber.hpp) that runs its SDK code unchanged: `shadow::Client` in the shadow phase,
/// `jobs::Runner` in the jobs phase, blocking as on a device while the loop drives the others.
///
/// Phases (docs/simulator.md):
///   - connect storm: device fibers are started at `connect.rate` per second, at most
///     `connect.in_flight` awaiting their CONNACK; each tries `connect.attempts` times. With a
///     device CA registered for JITP this is also a provisioning storm (the first connect of
///     each device registers its thing). Figures: TCP connect, TLS handshake, CONNACK, SUBACK.
///   - telemetry: QoS 0/1 publishes round robin at a fleet-wide rate; PUBACK latency; every
///     QoS 1 message is acknowledged, or counted lost with its cause (MessageLost, or no PUBACK
///     by the end of the phase's drain).
///   - shadow: per device `shadow::Client` start + report; then the operator (fleetd's admin
///     API, on a thread of its own) sets a desired value on every thing; each device applies
///     the delta and reports it: `shadow_delta_round_trip` = admin request sent → update
///     accepted.
///   - jobs: per device `jobs::Runner`; one job for every thing (admin API); figures
///     `job_notify_to_succeeded` (notify-next received → SUCCEEDED accepted) and
///     `job_created_to_succeeded`.
///   - ota: the operator uploads an image, fleetd signs it and rolls it out as an OTA update;
///     each device runs the real `ota::Agent` (ota_phase.hpp): stream download, signature,
///     install, reboot (a clean reconnect), self-test, SUCCEEDED. Figures
///     `ota_job_to_succeeded` (notify-next received → SUCCEEDED accepted) and `ota_bytes`.
///   - faults: telemetry while connections are cut (the device resumes its session), links
///     stall (silent both ways: the keep-alive finds a long stall, the device reconnects and
///     resumes), devices reboot (clean session: its unacknowledged messages are reported lost,
///     cause "reboot") and the broker restarts (`FleetOptions::broker_restart_command`, run on a
///     thread). The drain after a phase waits (bounded) for offline devices holding messages.
///
/// Stopping: `request_stop()` (e.g. from a SIGINT handler, through asio::post) ends the current
/// phase at once and disconnects every device; the report is written as usual.
///
/// Threading: everything on the io_context's thread, except the admin client and the broker
/// restart command, which run on threads of their own and hand results back with asio::post.
/// Memory per device: see `Fleet::device_bytes()` (the Device, its buffers and bookkeeping), plus
/// the touched pages of its fiber stack and OpenSSL's per-connection state (docs/simulator.md).
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "identity.hpp"
#include "metrics.hpp"
#include "scenario.hpp"

namespace edgekit::tls {
class TlsContext;
}

namespace edgekit::sim {

class ClaimProvisioning;

struct FleetOptions {
  Scenario scenario;
  asio::ip::tcp::endpoint broker;
  /// TLS: the context (broker CA, verification) every device shares; null: plain TCP (client id
  /// = thing name, no identity).
  const tls::TlsContext* tls = nullptr;
  std::string server_name = "localhost";
  /// The devices' identities, index i for device i (TLS only; at least `scenario.devices`).
  std::span<const DeviceIdentity> identities;
  /// Provisioning by claim (scenario identity "claim"): each device connects with the claim
  /// identity, provisions itself into this token and reconnects as its thing (claim.hpp).
  /// `identities` is not used then.
  ClaimProvisioning* claim = nullptr;
  /// fleetd's admin API, for the shadow and jobs phases.
  std::string admin_url;
  std::string admin_token;
  /// Run (with /bin/sh) at the faults phase's `broker_restart_at_s`; must restart the broker on
  /// the same port and return when it listens again.
  std::string broker_restart_command;
  /// MQTT version of the devices (5 by default; 3.1.1 for brokers without 5).
  bool mqtt5 = true;
  /// Local addresses the devices connect from, round robin (device i from [i % size]); empty:
  /// the system's choice. Each has its own ephemeral ports (docs/simulator.md, OS limits).
  std::vector<asio::ip::address> source_addresses;
  /// After a telemetry or faults phase: how long connected devices' QoS 1 messages may wait for
  /// their PUBACK, and how long at most (from the phase's end) the run waits for devices that
  /// hold unacknowledged messages while offline or stalled to come back and resend them.
  std::chrono::milliseconds drain{30000};
  std::chrono::milliseconds drain_offline{90000};
  /// Progress and phase lines (from the loop thread).
  std::function<void(const std::string&)> log;
};

/// What a run did, beside the metrics.
struct FleetSummary {
  std::uint32_t devices = 0;
  std::uint32_t connected = 0;         ///< devices connected at the end of the connect storm
  std::uint32_t connect_failed = 0;    ///< devices that never connected
  /// Devices provisioned by claim (each also counted in the `provisioned` counter and its time
  /// from the claim connect to RegisterThing's reply in the `provisioning` histogram).
  std::uint32_t provisioned = 0;
  std::uint64_t published = 0;         ///< QoS 0 and 1 publishes the engine took
  std::uint64_t acknowledged = 0;      ///< QoS 1 publishes completed with success
  /// QoS 1 publishes with no PUBACK and no loss report by the end of their phase's drain: a
  /// message dropped silently somewhere (the SDK, the driver or the broker). A correct run has 0.
  std::uint64_t unacknowledged = 0;
  /// QoS 1 publishes the engine reported lost (MessageLost) because the broker had forgotten
  /// the session (CONNACK session present 0 on a resume: e.g. a broker restarted without
  /// persistence, or sessions made between its last save and its exit). Reported, by cause.
  std::uint64_t lost_session = 0;
  /// QoS 1 publishes a simulated reboot lost (its clean session): expected, still reported.
  std::uint64_t lost_to_reboots = 0;
  std::uint64_t refused = 0;           ///< QoS 1 publishes the broker completed with an error code
  /// QoS 1 publishes still unacknowledged when the drain ended while their device was offline
  /// (reconnecting) or its link stalled: not lost (the session resends them when the device is
  /// back), but not seen delivered either. Each is an error, cause "pending: ...".
  std::uint64_t pending_offline = 0;
  std::uint32_t shadow_synced = 0;     ///< device-rounds whose delta came back reported
  std::uint32_t jobs_succeeded = 0;
  /// Devices whose OTA job ended SUCCEEDED with the uploaded image active, byte for byte.
  std::uint32_t ota_succeeded = 0;
  /// Device steps of the shadow and jobs phases that did not succeed (each failure is an error
  /// in the metrics, by cause).
  std::uint32_t phase_incomplete = 0;
  std::uint32_t cuts = 0, reboots = 0, broker_restarts = 0;
  std::uint32_t stalls = 0;              ///< links stalled (faults phase)
  /// Stalls that ended the connection (the keep-alive found them, or the broker's did) after
  /// which the device reconnected; the others ended by themselves.
  std::uint32_t stalls_reconnected = 0;
  bool stopped = false;                ///< request_stop() ended the run early
  std::vector<std::string> phases;     ///< one line per phase: what it did
  /// Every device phase step that failed, and every message that was not delivered, is also an
  /// error in the metrics, by cause.
};

class Fleet {
 public:
  /// Borrows everything; `io` is run by the caller (one thread). Nothing starts before `start`.
  Fleet(asio::io_context& io, Metrics& metrics, FleetOptions options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  /// Starts the run (from the loop thread or before `io.run()`).
  void start();
  /// Ends the run early: the current phase stops, devices disconnect. Loop thread only.
  void request_stop();
  /// True once every device fiber has ended (the run is over; the io_context may stop).
  [[nodiscard]] bool finished() const noexcept;
  [[nodiscard]] const FleetSummary& summary() const noexcept;
  /// The progress figures of now (connected, provisioned, errors, rates are the metrics').
  [[nodiscard]] std::uint32_t connected_now() const noexcept;
  /// sizeof the per-device state the fleet allocates (the Device with its buffers included).
  [[nodiscard]] static std::size_t device_bytes() noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgekit::sim
