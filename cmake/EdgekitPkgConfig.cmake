# pkg-config files for users without CMake: one per installed library (edgekit-<name>.pc, with
# the CMake target's name in hyphens: edgekit::mqtt_codec is edgekit-mqtt-codec) and edgekit.pc,
# which requires all of them:
#   c++ -std=c++20 app.cpp $(pkg-config --cflags --libs edgekit-mqtt edgekit-tcp)
# The libraries are static, so every dependency is a public Requires (`--libs` alone links).
# The files are relocatable: the prefix is found from the .pc file's own place (${pcfiledir}),
# so `cmake --install --prefix <anywhere>` works.

if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_edgekit_pc_prefix "${CMAKE_INSTALL_PREFIX}")
  set(_edgekit_pc_libdir "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _up "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
  string(REGEX REPLACE "/$" "" _up "${_up}")
  set(_edgekit_pc_prefix "\${pcfiledir}/${_up}")
  set(_edgekit_pc_libdir "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(_edgekit_pc_includedir "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(_edgekit_pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

set(_edgekit_pc_dir ${PROJECT_BINARY_DIR}/pkgconfig)
set(_edgekit_pc_all "")

# edgekit_pkg_config(<target name> DESCRIPTION <text> [REQUIRES ...] [REQUIRES_PRIVATE ...]
#                    [LIBS ...] [CFLAGS ...] [VARIABLES name=value ...])
# Writes edgekit-<name>.pc if the target edgekit_<name> exists in this build. LIBS are added after
# the library's own -ledgekit_<name> (none for an INTERFACE target).
function(edgekit_pkg_config name)
  cmake_parse_arguments(ARG "" "DESCRIPTION" "REQUIRES;REQUIRES_PRIVATE;LIBS;CFLAGS;VARIABLES" ${ARGN})
  if(NOT TARGET edgekit_${name})
    return()
  endif()
  string(REPLACE "_" "-" pc "edgekit-${name}")
  get_target_property(_type edgekit_${name} TYPE)
  set(libs "")
  if(_type STREQUAL "STATIC_LIBRARY")
    set(libs "-L\${libdir} -ledgekit_${name}")
  endif()
  list(APPEND libs ${ARG_LIBS})
  list(JOIN libs " " libs)
  list(JOIN ARG_REQUIRES " " requires)
  list(JOIN ARG_REQUIRES_PRIVATE " " requires_private)
  list(JOIN ARG_CFLAGS " " cflags)
  set(text "prefix=${_edgekit_pc_prefix}\nlibdir=${_edgekit_pc_libdir}\nincludedir=${_edgekit_pc_includedir}\n")
  foreach(v IN LISTS ARG_VARIABLES)
    string(APPEND text "${v}\n")
  endforeach()
  string(APPEND text "\nName: ${pc}\nDescription: ${ARG_DESCRIPTION} (C++20)\n")
  string(APPEND text "Version: ${PROJECT_VERSION}\n")
  if(requires)
    string(APPEND text "Requires: ${requires}\n")
  endif()
  if(requires_private)
    string(APPEND text "Requires.private: ${requires_private}\n")
  endif()
  string(APPEND text "Cflags: -I\${includedir}")
  if(cflags)
    string(APPEND text " ${cflags}")
  endif()
  string(APPEND text "\n")
  if(libs)
    string(APPEND text "Libs: ${libs}\n")
  endif()
  # GENERATE, not WRITE: VARIABLES may hold generator expressions (a target's file name).
  file(GENERATE OUTPUT ${_edgekit_pc_dir}/${pc}.pc CONTENT "${text}")
  install(FILES ${_edgekit_pc_dir}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
  set(_edgekit_pc_all ${_edgekit_pc_all} ${pc} PARENT_SCOPE)
endfunction()

# The MQTT build switches are part of the ABI: a user must compile with the library's.
set(_mqtt_switches)
foreach(_s V311 V5 QOS2)
  if(EDGEKIT_MQTT_ENABLE_${_s})
    list(APPEND _mqtt_switches -DEDGEKIT_MQTT_ENABLE_${_s}=1)
  else()
    list(APPEND _mqtt_switches -DEDGEKIT_MQTT_ENABLE_${_s}=0)
  endif()
endforeach()

edgekit_pkg_config(core DESCRIPTION "edgekit core: Result, error categories, clock, backoff, version")
edgekit_pkg_config(transport DESCRIPTION "edgekit Transport interface" REQUIRES edgekit-core)
edgekit_pkg_config(mqtt_codec DESCRIPTION "edgekit MQTT 3.1.1/5 codec (pure)"
  REQUIRES edgekit-core CFLAGS ${_mqtt_switches})
edgekit_pkg_config(mqtt_error_category DESCRIPTION "edgekit MQTT errors as std::error_code"
  REQUIRES edgekit-mqtt-codec)
edgekit_pkg_config(mqtt_session DESCRIPTION "edgekit MQTT session state (pure)"
  REQUIRES edgekit-mqtt-codec)
edgekit_pkg_config(mqtt_connection DESCRIPTION "edgekit sans-I/O MQTT connection engine (pure)"
  REQUIRES edgekit-mqtt-session)
edgekit_pkg_config(mqtt DESCRIPTION "edgekit blocking MQTT client"
  REQUIRES edgekit-mqtt-connection edgekit-transport edgekit-mqtt-error-category)
edgekit_pkg_config(mqtt_lite DESCRIPTION "edgekit minimal MQTT 3.1.1 client"
  REQUIRES edgekit-mqtt-codec edgekit-transport)
edgekit_pkg_config(mqtt_file_store DESCRIPTION "edgekit file-backed MQTT session store"
  REQUIRES edgekit-mqtt-session)
edgekit_pkg_config(doc DESCRIPTION "edgekit JSON and CBOR codecs for devices (pure)"
  REQUIRES edgekit-core)
edgekit_pkg_config(doc_error_category DESCRIPTION "edgekit document codec errors as std::error_code"
  REQUIRES edgekit-doc)
edgekit_pkg_config(tcp DESCRIPTION "edgekit POSIX TCP transport" REQUIRES edgekit-transport)
edgekit_pkg_config(agent DESCRIPTION "edgekit MQTT agent (one connection, many threads)"
  REQUIRES edgekit-mqtt edgekit-tcp LIBS -pthread)
edgekit_pkg_config(pkcs11_cryptoki DESCRIPTION "edgekit PKCS#11 declarations and CKR names"
  REQUIRES_PRIVATE p11-kit-1)
set(_dl)
foreach(_l IN LISTS CMAKE_DL_LIBS)
  list(APPEND _dl -l${_l})
endforeach()
edgekit_pkg_config(pkcs11 DESCRIPTION "edgekit PKCS#11 client for any module"
  REQUIRES edgekit-pkcs11-cryptoki edgekit-core LIBS ${_dl}
  VARIABLES "token_module=\${libdir}/$<TARGET_FILE_NAME:edgekit_pkcs11_token>")
edgekit_pkg_config(pki DESCRIPTION "edgekit PKI: X.509 certificates, CSRs, CRLs, keys in PKCS#11 tokens (OpenSSL 3)"
  REQUIRES edgekit-pkcs11 libcrypto)
edgekit_pkg_config(tls DESCRIPTION "edgekit TLS transport (OpenSSL 3, keys in PKCS#11 tokens)"
  REQUIRES edgekit-tcp edgekit-pki edgekit-pkcs11 openssl)
edgekit_pkg_config(tls_agent DESCRIPTION "edgekit TLS transport factory for the agent"
  REQUIRES edgekit-tls edgekit-agent)
edgekit_pkg_config(mqtt_asio DESCRIPTION "edgekit event-loop MQTT driver (standalone Asio)"
  REQUIRES edgekit-mqtt-connection edgekit-mqtt-error-category edgekit-tls openssl
  CFLAGS -DASIO_STANDALONE -DASIO_NO_DEPRECATED -DASIO_DISABLE_STD_ALIGNED_ALLOC LIBS -pthread)

if(_edgekit_pc_all)
  list(JOIN _edgekit_pc_all " " _requires)
  file(GENERATE OUTPUT ${_edgekit_pc_dir}/edgekit.pc CONTENT
    "Name: edgekit\nDescription: edgekit, every installed library (C++20)\nVersion: ${PROJECT_VERSION}\nRequires: ${_requires}\n")
  install(FILES ${_edgekit_pc_dir}/edgekit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()
