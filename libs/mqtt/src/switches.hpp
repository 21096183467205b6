#pragma once
// Private to the MQTT library (session and client; the codec has the same constants in
// wire.hpp): the build switches of config.hpp as constants, so that a protocol version or QoS 2
// left out of the build also leaves out the session and client code that handles it.

#include "edgekit/mqtt/types.hpp"

namespace edgekit::mqtt::switches {

inline constexpr bool kV311 = EDGEKIT_MQTT_ENABLE_V311 != 0;
inline constexpr bool kV5 = EDGEKIT_MQTT_ENABLE_V5 != 0;
inline constexpr bool kQoS2 = EDGEKIT_MQTT_ENABLE_QOS2 != 0;

/// True when `v` means MQTT 5. A constant when only one version is compiled in (a disabled
/// version never gets this far: connect refuses it with ProtocolVersionDisabled).
[[nodiscard]] constexpr bool is_v5(Version v) noexcept {
  if constexpr (!kV5) {
    return false;
  } else if constexpr (!kV311) {
    return true;
  } else {
    return v == Version::V5;
  }
}

}  // namespace edgekit::mqtt::switches
