// sim-identities: makes (or loads from a cache) the simulator's device identities and states
// what one device's cryptography costs (the "physical limit" of a simulation run).
//
//   sim-identities [--count N] [--prefix P] [--cache DIR] [--ca-out FILE] [--measure ROUNDS]
//
// Prints one JSON line: identities made and loaded, identities per second (wall and CPU time),
// heap per identity,
// and (with --measure) microseconds of CPU for a P-256 key generation, a device certificate's
// signing and one mutual-TLS 1.3 handshake on each side.
#include <malloc.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "identity.hpp"

namespace {

// This process's CPU time in seconds: the machine may be shared, so rates are also given per
// CPU second.
double cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

int usage() {
  std::fprintf(stderr,
               "usage: sim-identities [--count N] [--prefix P] [--cache DIR] [--ca-out FILE] "
               "[--measure ROUNDS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  edgekit::sim::IdentityOptions options;
  std::size_t count = 1000;
  std::size_t measure = 0;
  std::string ca_out;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage();
    const char* value = argv[++i];
    if (arg == "--count") {
      count = std::strtoull(value, nullptr, 10);
    } else if (arg == "--prefix") {
      options.prefix = value;
    } else if (arg == "--cache") {
      options.cache_dir = value;
    } else if (arg == "--ca-out") {
      ca_out = value;
    } else if (arg == "--measure") {
      measure = std::strtoull(value, nullptr, 10);
    } else {
      return usage();
    }
  }

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto factory = edgekit::sim::IdentityFactory::create(options);
  if (!factory) {
    std::fprintf(stderr, "sim-identities: %s\n", factory.error().c_str());
    return 1;
  }
  if (!ca_out.empty()) {
    if (auto w = factory->write_ca_certificate(ca_out); !w) {
      std::fprintf(stderr, "sim-identities: %s\n", w.error().c_str());
      return 1;
    }
  }
  const std::size_t heap0 = mallinfo2().uordblks;
  const auto t1 = Clock::now();
  const double cpu1 = cpu_seconds();
  auto ids = factory->identities(count);
  const double cpu = cpu_seconds() - cpu1;
  const auto t2 = Clock::now();
  if (!ids) {
    std::fprintf(stderr, "sim-identities: %s\n", ids.error().c_str());
    return 1;
  }
  const std::size_t heap1 = mallinfo2().uordblks;
  const double seconds = std::chrono::duration<double>(t2 - t1).count();
  std::printf(
      "{\"identities\":%zu,\"made\":%zu,\"loaded\":%zu,\"ca_seconds\":%.3f,\"seconds\":%.3f,"
      "\"identities_per_second\":%.0f,\"cpu_seconds\":%.3f,\"identities_per_cpu_second\":%.0f,"
      "\"heap_bytes_per_identity\":%.0f",
      count, factory->counters().made, factory->counters().loaded,
      std::chrono::duration<double>(t1 - t0).count(), seconds,
      seconds > 0 ? static_cast<double>(count) / seconds : 0.0, cpu,
      cpu > 0 ? static_cast<double>(count) / cpu : 0.0,
      count > 0 && heap1 > heap0 ? static_cast<double>(heap1 - heap0) / static_cast<double>(count)
                                 : 0.0);
  if (measure > 0) {
    auto cost = edgekit::sim::measure_device_crypto(measure);
    if (!cost) {
      std::printf("}\n");
      std::fprintf(stderr, "sim-identities: %s\n", cost.error().c_str());
      return 1;
    }
    std::printf(
        ",\"crypto_rounds\":%zu,\"keygen_us\":%.1f,\"cert_sign_us\":%.1f,"
        "\"handshake_client_us\":%.1f,\"handshake_server_us\":%.1f",
        cost->rounds, cost->keygen_us, cost->cert_sign_us, cost->handshake_client_us,
        cost->handshake_server_us);
  }
  std::printf("}\n");
  return 0;
}
