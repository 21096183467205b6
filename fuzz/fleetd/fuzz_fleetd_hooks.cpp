// The decision interface's untrusted inputs on both sides: fleetd parses the broker's requests
// (authenticate, authorize), the plugin parses fleetd's answers (a verdict it cannot read is a
// denial). The first byte picks the parser. Oracles: no crash or hang; an accepted request
// respects its documented limits; an accepted "allow" verdict carries parsed rules.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "hooks/wire.hpp"
#include "plugin_logic.hpp"

namespace f = edgekit::fleetd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      auto r = f::hooks::parse_auth_request(body);
      if (r && (r.value().client_id.size() > 128 || r.value().certificate_id.size() > 64)) std::abort();
      break;
    }
    case 1: {
      auto r = f::hooks::parse_authorize_request(body);
      if (r && r.value().topic.size() > 512) std::abort();
      break;
    }
    default: {
      std::string error;
      auto v = f::plugin::parse_verdict(body, error);
      if (!v && error.empty()) std::abort();  // every refusal says why
      if (v && v->allow) {
        // The rules were read: deciding on them is safe for any topic.
        (void)f::policy::allowed(v->rules, f::policy::Action::Publish, body.substr(0, 256));
      }
      break;
    }
  }
  return 0;
}
