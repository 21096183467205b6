// Shared by the benchmarks that drive many devices against a real fleetd + Mosquitto on one
// standalone-Asio thread (provisioning_bench, shadow_bench): clocks and CPU time (this process
// and, from /proc, fleetd's and the broker's), percentiles, `--key value` options, one device
// connection with the memory the event-loop driver asks for, and running the loop until a
// condition holds or a deadline passes. Not part of the test suite. Thread safety: none (one
// event-loop thread).
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "edgekit/mqtt_asio/connection.hpp"

namespace edgekit::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

inline double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// utime + stime of another process, in seconds (-1 when unknown).
inline double other_cpu_seconds(long pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(all.substr(close + 2));
  std::string field;
  // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
  std::vector<std::string> fields;
  while (rest >> field) fields.push_back(field);
  if (fields.size() < 13) return -1;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / tick;
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

inline std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// Prints `s` as the inside of a JSON string (quotes and backslashes escaped, newlines as spaces).
inline void print_json_text(const std::string& s) {
  for (char ch : s) {
    if (ch == '"' || ch == '\\') std::putchar('\\');
    std::putchar(ch == '\n' ? ' ' : ch);
  }
}

struct Args {
  std::map<std::string, std::string> values;
  std::string get(const std::string& k, const std::string& dflt = {}) const {
    auto it = values.find(k);
    return it == values.end() ? dflt : it->second;
  }
  long number(const std::string& k, long dflt) const {
    auto it = values.find(k);
    return it == values.end() ? dflt : std::strtol(it->second.c_str(), nullptr, 10);
  }
};

// `--key value` pairs from argv[first] on; `program` names the complaint about a bad one.
inline std::optional<Args> parse_args(const char* program, int argc, char** argv, int first) {
  Args a;
  for (int i = first; i < argc; i += 2) {
    if (std::strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc) {
      std::fprintf(stderr, "%s: bad option '%s'\n", program, argv[i]);
      return std::nullopt;
    }
    a.values[argv[i] + 2] = argv[i + 1];
  }
  return a;
}

// One MQTT connection of a device with its session, records and buffers (the caller's memory
// the event-loop driver asks for). `Outgoing`: QoS 1 publishes unacknowledged at once.
template <std::size_t Outgoing = 4>
struct Link {
  std::array<mqtt::OutgoingRecord, Outgoing> outgoing{};
  std::array<std::uint16_t, 4> incoming_qos2{};
  std::array<char, 64> client_id{};
  std::array<std::byte, 8192> rx{};
  std::array<std::byte, 4096> tx{};
  mqtt::Session session;
  mqtt_asio::Connection conn;
  Link(mqtt_asio::Driver& d, mqtt_asio::Handler& h)
      : session(storage()), conn(d, session, rx, tx, h) {}
  mqtt::SessionStorage storage() {
    mqtt::SessionStorage s;
    s.outgoing = outgoing;
    s.incoming_qos2 = incoming_qos2;
    s.client_id = client_id;
    return s;
  }
};

// Runs `io` until `done()` holds (checked every 50 ms at most) or `limit_s` seconds passed;
// false on the deadline.
inline bool run_io_until(asio::io_context& io, const std::function<bool()>& done, double limit_s) {
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(limit_s));
  while (!done()) {
    if (Clock::now() > end) return false;
    io.run_for(std::chrono::milliseconds(50));
    if (io.stopped()) io.restart();
  }
  return true;
}

// The JSON member `name` with the percentiles of `v` in milliseconds.
inline void print_ms(const char* name, std::vector<double> v, bool comma = true) {
  std::printf("\"%s\":{\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"max\":%.2f}%s", name,
              percentile(v, 50), percentile(v, 90), percentile(v, 99), percentile(v, 100),
              comma ? "," : "");
}

}  // namespace edgekit::bench
