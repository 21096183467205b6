#pragma once
/// \file
/// Small helpers for the fixtures that run real servers as child processes (Mosquitto,
/// PostgreSQL): a free loopback port, a graceful stop with a deadline, a log file's text.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace edgekit::testing {

/// A loopback port nobody listens on right now (0 if none could be bound), never one this process
/// was given before, and where the system allows it one below the ephemeral range (so that no
/// outgoing connection takes it before the server binds it). A server binds it a moment later;
/// the rare race with another test process shows up as a server that fails to start, which the
/// fixtures handle by trying another port. Thread-safe.
[[nodiscard]] std::uint16_t free_loopback_port();

/// For a fixture's child between fork() and exec(): asks the kernel to SIGKILL this process when
/// the thread that forked it ends, so that a server never outlives a test process that dies
/// without running destructors (a crash, an ASan report). A server left behind would also hold
/// ctest's output pipe open, and ctest would wait for it until the test's timeout. `parent` is
/// the forking process's getpid(), taken before fork(): when it has already gone by the time the
/// request takes effect, returns false and the child should _exit(). On other systems than Linux
/// it does nothing and returns true. Async-signal-safe (only prctl and getppid); call it from the
/// main thread's forks (the tests' own thread), since a forking thread that ends kills the child.
bool die_with_parent(pid_t parent);

/// Sends `signal` to `pid`, waits up to `grace` for it to exit, then SIGKILLs it; reaps it and
/// sets `pid` to -1. Does nothing when `pid` <= 0.
void stop_child(pid_t& pid, int signal, std::chrono::milliseconds grace);

/// Waits until `deadline` for `pid` to end and reaps it: "exit <status>" or "signal <number>";
/// "hung" when it was still running at the deadline (it is then killed with SIGKILL and reaped).
/// Sets `pid` to -1 either way. For tests that check how a child process ended.
[[nodiscard]] std::string wait_child(pid_t& pid, std::chrono::steady_clock::time_point deadline);

/// What a shell command printed (standard output and error together) and its exit status.
struct CommandRun {
  int code = -1;  ///< the exit status; -1 when it could not run or was killed by a signal
  std::string out;
};
/// Runs `command` with /bin/sh (`popen`), its standard error sent to the same pipe.
[[nodiscard]] CommandRun run_command(const std::string& command);

/// The whole file as text ("" when it cannot be read).
[[nodiscard]] std::string read_text_file(const std::string& path);

}  // namespace edgekit::testing
