#include <charconv>

#include "store/db.hpp"

namespace edgekit::fleetd {

const std::string& Row::text(std::size_t i) const {
  static const std::string empty;
  const auto& f = fields_.at(i);
  return f ? *f : empty;
}

std::int64_t Row::integer(std::size_t i) const {
  const auto& f = fields_.at(i);
  if (!f) return 0;
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(f->data(), f->data() + f->size(), v);
  if (ec != std::errc() || ptr != f->data() + f->size()) return 0;
  return v;
}

}  // namespace edgekit::fleetd
