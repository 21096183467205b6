// fleetd: see docs/fleetd.md and `fleetd --help`.
#include <iostream>

#include "config.hpp"
#include "service.hpp"

int main(int argc, char** argv) {
  using namespace edgekit::fleetd;
  ConfigOutcome parsed = parse_config(argc, argv);
  if (!parsed.config) {
    (parsed.exit_code == 0 ? std::cout : std::cerr) << parsed.message << "\n";
    return parsed.exit_code;
  }
  Logger log(std::cerr, parsed.config->log_format, parsed.config->log_level);
  return static_cast<int>(run_service(*parsed.config, log));
}
