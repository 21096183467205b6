# Device identities (identity.hpp): a throw-away CA and a P-256 key and certificate per device,
# cached between runs; and `sim-identities`, which makes them and measures one device's crypto.
target_sources(edgekit_sim PRIVATE ${CMAKE_CURRENT_LIST_DIR}/identity.cpp)
target_link_libraries(edgekit_sim PUBLIC edgekit::tls PRIVATE OpenSSL::SSL OpenSSL::Crypto)

add_executable(sim-identities ${CMAKE_CURRENT_LIST_DIR}/identities_main.cpp)
target_link_libraries(sim-identities PRIVATE edgekit_sim)
edgekit_warnings(sim-identities)

if(EDGEKIT_BUILD_TESTS)
  edgekit_test(sim_identity_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/test/identity_test.cpp
    LIBS edgekit_sim edgekit::mqtt_asio edgekit::pki edgekit::testing_support edgekit_testing_pki
         OpenSSL::SSL OpenSSL::Crypto
    LABELS integration)
  # The driver's test devices that prove the broker saw each identity (identity_test_support.hpp).
  target_include_directories(sim_identity_test PRIVATE ${PROJECT_SOURCE_DIR}/libs/mqtt_asio/test)
endif()

if(EDGEKIT_BUILD_TESTS)
  # The factory's devices provisioned by fleetd's JITP at their first connection, through the
  # real Mosquitto + plugin + fleetd of fleetd's secured-broker fixture (services/fleetd defines
  # the fixture after tools/; CMake resolves the name at generation).
  find_package(nlohmann_json 3.10 REQUIRED)
  edgekit_test(sim_identity_jitp_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/test/identity_jitp_test.cpp
    LIBS edgekit_sim edgekit::mqtt_asio fleetd_secured_broker_fixture edgekit::json
    LABELS integration)
  target_include_directories(sim_identity_jitp_test PRIVATE ${PROJECT_SOURCE_DIR}/libs/mqtt_asio/test)
endif()
