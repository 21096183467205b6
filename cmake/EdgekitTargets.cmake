# Shared helpers for edgekit targets.

# Warnings for every edgekit target. -Wconversion is left out on purpose: byte-level codec code
# would drown in casts that hide more than they show.
function(edgekit_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual
    -Wimplicit-fallthrough -Wcast-align -Wmissing-declarations)
  if(EDGEKIT_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# With EDGEKIT_UNITY_BUILD, compiles `target`'s sources in batches of `batch` files, each batch one
# translation unit: the inline and template code of the headers every file includes (nlohmann/json
# alone is most of a fleetd object file) is then parsed and generated once per batch instead of
# once per file. The sources must not define the same internal name twice (two files' anonymous
# namespaces share one translation unit). Usage: edgekit_unity_build(<target> <batch>)
function(edgekit_unity_build target batch)
  if(EDGEKIT_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${batch})
  endif()
endfunction()

# A device library: no exceptions, no RTTI (so it also builds for a microcontroller), exported as
# edgekit::<name>. Usage: edgekit_device_library(<name> [PURE] SOURCES ... )
# PURE marks a library that must never touch the heap, a socket, a thread or a clock; its tests
# run with the allocation guard (see testing/).
function(edgekit_device_library name)
  cmake_parse_arguments(ARG "PURE;INTERFACE" "" "SOURCES" ${ARGN})
  set(target edgekit_${name})
  if(ARG_INTERFACE)
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE
      $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  else()
    add_library(${target} STATIC ${ARG_SOURCES})
    target_include_directories(${target} PUBLIC
      $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    target_compile_options(${target} PRIVATE -fno-exceptions -fno-rtti)
    edgekit_warnings(${target})
    # Position-independent code lets hosted static libraries go into shared objects; on a
    # microcontroller it only costs flash (GOT-relative addressing), so bare-metal builds skip it.
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ${EDGEKIT_HOSTED})
  endif()
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  add_library(edgekit::${name} ALIAS ${target})
  set_property(GLOBAL APPEND PROPERTY EDGEKIT_EXPORTED_TARGETS ${target})
  if(ARG_PURE)
    set_property(GLOBAL APPEND PROPERTY EDGEKIT_PURE_TARGETS ${target})
  endif()
endfunction()

# A GoogleTest executable registered with ctest. Usage:
#   edgekit_test(<name> SOURCES ... LIBS ... [NO_ALLOC] [LABELS ...])
# NO_ALLOC links the allocation guard: any heap allocation inside a guarded scope fails the test.
function(edgekit_test name)
  cmake_parse_arguments(ARG "NO_ALLOC" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock)
  if(ARG_NO_ALLOC)
    target_link_libraries(${name} PRIVATE edgekit_testing_alloc_guard_main)
  else()
    target_link_libraries(${name} PRIVATE GTest::gtest_main)
  endif()
  edgekit_warnings(${name})
  if(EDGEKIT_TEST_PCH_USED)
    target_precompile_headers(${name} REUSE_FROM edgekit_test_pch)
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${ARG_LABELS}")
endfunction()

# A copy of edgekit's PKCS#11 token module beside `target`'s executable in the build tree,
# refreshed when the module is rebuilt: the programs that load it by default (edgekit token,
# fleetd's CA) look beside themselves first.
function(edgekit_token_module_beside target)
  set(_copy ${CMAKE_CURRENT_BINARY_DIR}/libedgekit-pkcs11.so)
  add_custom_command(OUTPUT ${_copy}
    COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:edgekit_pkcs11_token> ${_copy}
    DEPENDS edgekit_pkcs11_token
    COMMENT "Copying the token module next to ${target}")
  add_custom_target(${target}_token_module_copy DEPENDS ${_copy})
  add_dependencies(${target} ${target}_token_module_copy)
endfunction()
