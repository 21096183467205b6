# Installs headers, libraries and a CMake package so that a user's project can
#   find_package(edgekit REQUIRED)  and  target_link_libraries(app PRIVATE edgekit::mqtt)
include(CMakePackageConfigHelpers)

get_property(_edgekit_targets GLOBAL PROPERTY EDGEKIT_EXPORTED_TARGETS)
install(TARGETS ${_edgekit_targets}
  EXPORT edgekitTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

foreach(_dir libs/core libs/mqtt libs/doc libs/transport libs/agent)
  if(EXISTS ${PROJECT_SOURCE_DIR}/${_dir}/include)
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/${_dir}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endforeach()

set(EDGEKIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/edgekit)
install(EXPORT edgekitTargets NAMESPACE edgekit:: DESTINATION ${EDGEKIT_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/edgekitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/edgekitConfig.cmake INSTALL_DESTINATION ${EDGEKIT_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/edgekitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/edgekitConfig.cmake ${PROJECT_BINARY_DIR}/edgekitConfigVersion.cmake
  DESTINATION ${EDGEKIT_CMAKE_DIR})
include(EdgekitPkgConfig)
