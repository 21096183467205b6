#pragma once
/// \file
/// Running a shell command from the simulator (the faults phase's broker restart) without
/// handing it the simulator's open files.
///
/// Why: `std::system` forks with every descriptor that lacks close-on-exec, and Asio's sockets
/// lack it. A broker restarted by such a command (`mosquitto -d`) kept all 10,000 device sockets
/// of the simulator open for the rest of its life: twice the descriptors per device, so that a
/// later run of 10,000 devices by claim hit the broker's limit of 20,000 and its last 12 devices
/// were closed before CONNACK (docs/benchmarks.md).

#include <string>

namespace edgekit::sim {

/// Runs `command` with /bin/sh -c, its standard input, output and error those of the simulator
/// and every other descriptor closed, and waits for it. Returns its exit status (0..255), or -1
/// when it could not be started or ended by a signal. Thread-safe (no shared state).
[[nodiscard]] int run_command(const std::string& command);

}  // namespace edgekit::sim
