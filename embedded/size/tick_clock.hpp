#pragma once
// The clock of the device programs: a millisecond passes on every reading, so every timeout
// ends. Outside namespace edgekit on purpose: scripts/size-report counts code named edgekit:: in
// a program as the library's ("headers"), and this is the program's.
#include <cstdint>

#include "edgekit/core/clock.hpp"

namespace size_program {

class TickClock final : public edgekit::Clock {
 public:
  [[nodiscard]] edgekit::Instant now() const noexcept override {
    ticks_ += 1;
    return edgekit::Instant{edgekit::Duration{ticks_}};
  }

 private:
  mutable std::int64_t ticks_ = 0;
};

}  // namespace size_program
