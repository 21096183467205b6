#pragma once
// A jobs::Runner as the device commands run it (`edgekit jobs run`, `edgekit ota run`): over a
// channel on the blocking client, its record in the caller's store (a FileRecordStore) or else
// in RAM — a process then keeps no record across runs, so a job a killed run left IN_PROGRESS
// is started again by start-next (the service's view), not resumed — and its buffers on the
// heap (a host tool). Thread safety: the runner's.
#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "edgekit/jobs/runner.hpp"

namespace edgekit::tools {

struct CommandRunner {
  CommandRunner(reqres::Channel& channel, const Clock& clock, std::string_view thing,
                std::span<const jobs::JobHandler> handlers, int timeout_ms,
                jobs::RecordStore* records = nullptr)
      : runner(channel, records ? *records : ram, clock, config(thing, handlers, timeout_ms),
               {request, reply, document}) {}

  static jobs::RunnerConfig config(std::string_view thing,
                                   std::span<const jobs::JobHandler> handlers, int timeout_ms) {
    jobs::RunnerConfig c;
    c.thing = thing;
    c.handlers = handlers;
    c.token_seed =
        static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    c.request_timeout = Duration{timeout_ms};
    return c;
  }

  jobs::RamRecordSlot slot{};
  jobs::RamRecordStore ram{slot};
  std::vector<char> request = std::vector<char>(8 * 1024);
  std::vector<char> reply = std::vector<char>(40 * 1024);     // start-next with its document
  std::vector<char> document = std::vector<char>(32 * 1024);  // AWS's job document limit
  jobs::Runner runner;
};

}  // namespace edgekit::tools
