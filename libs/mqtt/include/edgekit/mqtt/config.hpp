#pragma once
/// \file
/// Build-time switches of the MQTT core. CMake sets them (EDGEKIT_MQTT_ENABLE_V311, _V5, _QOS2);
/// a build without CMake may define them to 0 to leave a feature out of the image. A disabled
/// feature is reported as Errc::ProtocolVersionDisabled or Errc::QoS2Disabled at run time.
/// One exception is checked at compile time: without MQTT 5 (EDGEKIT_MQTT_ENABLE_V5=0)
/// `Properties` has no members (properties.hpp), so code that sets or reads a property does not
/// compile; guard it with `#if EDGEKIT_MQTT_ENABLE_V5`.

#ifndef EDGEKIT_MQTT_ENABLE_V311
#define EDGEKIT_MQTT_ENABLE_V311 1
#endif
#ifndef EDGEKIT_MQTT_ENABLE_V5
#define EDGEKIT_MQTT_ENABLE_V5 1
#endif
#ifndef EDGEKIT_MQTT_ENABLE_QOS2
#define EDGEKIT_MQTT_ENABLE_QOS2 1
#endif

#if !EDGEKIT_MQTT_ENABLE_V311 && !EDGEKIT_MQTT_ENABLE_V5
#error "edgekit: at least one MQTT protocol version must be enabled"
#endif
