# Network faults and limits of the fleet (fleet.hpp): `--source-addresses` (source_addresses.hpp)
# and the test of stalls, the drain and source addresses against a real Mosquitto.
target_sources(edgekit_sim_fleet PRIVATE ${CMAKE_CURRENT_LIST_DIR}/source_addresses.cpp)

if(EDGEKIT_BUILD_TESTS)
  edgekit_test(sim_fleet_faults_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/test/fleet_faults_test.cpp
    LIBS edgekit_sim_fleet edgekit::testing_support LABELS integration)
endif()
