#pragma once
/// \file
/// The fleetd process: opens the state folder and the store, connects the broker link, runs the
/// event loop until SIGTERM or SIGINT, then shuts down in order (link disconnected, store closed).

#include "config.hpp"
#include "log.hpp"

namespace edgekit::fleetd {

/// Exit codes of the fleetd binary (documented in docs/fleetd.md).
enum class Exit : int {
  Ok = 0,
  Failure = 1,       ///< a failure while running
  Usage = 2,         ///< bad flags or configuration file
  StoreRefused = 3,  ///< the store cannot be used: locked, corrupt, too new, unreachable
  StateDir = 4,      ///< the state folder cannot be created or written
  CaRefused = 5,     ///< the configured CA is missing or unusable (token, PIN, keys, certificates)
};

/// Runs fleetd with `config` until a stop signal. Logs every step to `log`.
Exit run_service(const Config& config, Logger& log);

}  // namespace edgekit::fleetd
