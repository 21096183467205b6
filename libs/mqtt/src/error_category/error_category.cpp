// The std::error_category of Errc, in its own translation unit: bare-metal images that never
// build a std::error_code do not link it (it pulls in std::string).
#include <string>

#include "edgekit/mqtt/errc.hpp"

namespace edgekit::mqtt {
namespace {
class MqttCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "edgekit.mqtt"; }
  std::string message(int ev) const override { return to_string(static_cast<Errc>(ev)); }
};
}  // namespace

const std::error_category& mqtt_category() noexcept {
  static const MqttCategory category;
  return category;
}
}  // namespace edgekit::mqtt
