#pragma once
#include <CLI/CLI.hpp>

#include "connection.hpp"

namespace edgekit::tools {

/// Adds the options every command shares (-h host, -p port, -V version, -i id, -u/-P, -k, and
/// TLS: --cafile, --cert, --key or --key-label with --pkcs11-module/--token/--pin).
void add_broker_options(CLI::App& app, BrokerOptions& options, std::string& version_text);
/// Checks what add_broker_options parsed; prints an error and returns false when invalid.
bool finish_broker_options(const char* command, BrokerOptions& options, const std::string& version_text);

/// This program's own path (/proc/self/exe), empty when unknown.
std::string executable_path();
/// After `open`: tells the user the client id the broker assigned when it matters (a kept
/// session is resumed only with that id; -d always) and reports one the session could not keep.
void report_assigned_id(const char* command, Connection& connection, const BrokerOptions& options,
                        bool debug);

void add_pub_command(CLI::App& app, int& exit_code);
void add_sub_command(CLI::App& app, int& exit_code);
/// `edgekit token init|keygen|csr|import-cert|list|info` (tools/edgekit/token.cpp).
void add_token_command(CLI::App& app, int& exit_code);
/// `edgekit provision`: fleet provisioning by claim with the claim identity in the device's
/// token (tools/edgekit/provision.cpp).
void add_provision_command(CLI::App& app, int& exit_code);
/// `edgekit shadow sync`: a device keeping a state file in sync with its Device Shadow
/// (tools/edgekit/shadow.cpp).
void add_shadow_command(CLI::App& app, int& exit_code);
/// `edgekit jobs run`: a device running its jobs (a few demo operations) with jobs::Runner
/// (tools/edgekit/jobs.cpp).
void add_jobs_command(CLI::App& app, int& exit_code);
/// `edgekit fleet things|certificates|cas|templates|policies ...` over fleetd's admin API
/// (tools/edgekit/fleet.cpp).
void add_fleet_command(CLI::App& app, int& exit_code);
/// `edgekit ota upload|sign|create-update|status` over fleetd's admin API
/// (tools/edgekit/fleet.cpp).
void add_ota_command(CLI::App& app, int& exit_code);
/// `edgekit ota run`: a device applying its OTA updates with ota::Agent (ota_run.cpp); a
/// subcommand of `ota` (added by add_ota_command).
void add_ota_run_command(CLI::App& ota, int& exit_code);
/// `edgekit fleet external-ca create|issue`: a local test CA for just-in-time registration
/// (tools/edgekit/fleet_external_ca.cpp).
void add_fleet_external_ca_command(CLI::App& fleet, int& exit_code);
/// `edgekit sim`: the fleet simulator, and `edgekit sim identities` (tools/edgekit/sim.cpp).
void add_sim_command(CLI::App& app, int& exit_code);

}  // namespace edgekit::tools
