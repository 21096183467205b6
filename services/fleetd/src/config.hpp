#pragma once
/// \file
/// fleetd's configuration: every option is a command-line flag and may also be set in one
/// configuration file (`--config fleetd.conf`, lines of `key = value`, `#` comments; flags win
/// over the file). `fleetd --help` explains each option. Anything unknown or malformed is refused
/// before fleetd touches its state.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "log.hpp"

namespace edgekit::fleetd {

struct Config {
  /// Folder holding all of fleetd's state (the SQLite store `fleetd.db`, later the CA's files).
  std::string state_dir;
  enum class StoreKind { Sqlite, Postgres } store = StoreKind::Sqlite;
  /// libpq connection string (store = postgres).
  std::string postgres;
  /// The broker fleetd serves devices through (its own MQTT 5 link).
  std::string broker_host = "127.0.0.1";
  std::uint16_t broker_port = 1883;
  std::string broker_client_id = "fleetd";
  /// User name of the link; its password is the hooks token (the plugin checks both).
  std::string broker_username = "fleetd";
  std::uint16_t broker_keep_alive = 30;
  /// Backpressure of the link (broker_link.hpp): replies queued beyond which fleetd stops
  /// acknowledging requests, and the Receive Maximum it announces to the broker.
  std::uint32_t broker_max_queued = 4096;
  std::uint16_t broker_receive_maximum = 64;
  /// Reconnect backoff of the broker link (full jitter), milliseconds.
  std::uint32_t reconnect_base_ms = 200;
  std::uint32_t reconnect_cap_ms = 10'000;
  /// The length of a Jobs "minute" (timeouts, rollout rates), seconds: 60 but in tests and demos.
  std::int64_t jobs_minute_seconds = 60;
  /// The decision interface for the broker plugin (HTTP; loopback unless you mean otherwise).
  std::string hooks_host = "127.0.0.1";
  std::uint16_t hooks_port = 8766;  ///< 0: any free port (written to <state-dir>/hooks.port)
  /// Bearer token shared with the plugin; default <state-dir>/hooks.token, created if missing.
  std::string hooks_token_file;
  /// The admin API (HTTP JSON; loopback unless you mean otherwise, and then with TLS).
  std::string admin_host = "127.0.0.1";
  std::uint16_t admin_port = 8767;  ///< 0: any free port (written to <state-dir>/admin.port)
  /// Bearer token of the admin API, a secret of its own; default <state-dir>/admin.token.
  std::string admin_token_file;
  /// Both set: the admin API speaks HTTPS with this certificate and key (PEM).
  std::string admin_tls_cert;
  std::string admin_tls_key;
  /// fleetd's own CA (docs/fleetd.md): on when `ca_pin_file` is set. Its keys are in the PKCS#11
  /// token `ca_token_label` of `ca_module`; its certificates in <state-dir>/ca.
  std::string ca_pin_file;
  std::string ca_module = "libedgekit-pkcs11.so";
  std::string ca_token_label = "fleetd-ca";
  std::string ca_token_dir;  ///< edgekit's module only: its token folder (EDGEKIT_TOKEN_DIR)
  bool init_ca = false;               ///< create the CA, register it, exit
  bool ca_create_if_missing = false;  ///< create the CA at start when the state folder has none
  /// OTA: a PEM bundle of the CAs a pre-signed image's signer must chain to (besides fleetd's
  /// own CA, when it runs one).
  std::string ota_signer_ca;
  /// OTA's device-facing HTTPS download endpoint (ota/http.hpp): on when both TLS files are set.
  std::string ota_http_host = "127.0.0.1";
  std::uint16_t ota_http_port = 8768;  ///< 0: any free port (written to <state-dir>/ota-http.port)
  std::string ota_http_tls_cert;
  std::string ota_http_tls_key;
  /// The base URL devices reach the endpoint at; default https://<host>:<bound port>.
  std::string ota_http_url;
  LogFormat log_format = LogFormat::Json;
  LogLevel log_level = LogLevel::Info;
};

/// The outcome of reading the command line: run with a config, or exit now with `exit_code`
/// after printing `message` (help: to stdout with code 0; errors: to stderr with code 2).
struct ConfigOutcome {
  std::optional<Config> config;
  int exit_code = 0;
  std::string message;
};

/// Parses argv (and the file named by --config). Never throws.
ConfigOutcome parse_config(int argc, const char* const* argv);

}  // namespace edgekit::fleetd
