#pragma once
// What the token tests share: a fresh token in a temporary folder, provisioned as an application
// would (C_InitToken, then the SO sets the user PIN), and reading a file whole.

#include <edgekit/pkcs11/client.hpp>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace edgekit::pkcs11::testing {

/// Makes /tmp/<prefix>-XXXXXX, points EDGEKIT_TOKEN_DIR at its `token` folder (fast PBKDF2;
/// diagnostics on stderr unless `quiet`), and initialises the token with both PINs through the
/// module. Returns the temporary folder (empty on failure, with the test failed).
inline std::string provision_token(const std::string& prefix, const std::string& label,
                                   const std::string& so_pin, const std::string& pin,
                                   bool quiet) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp";
    return {};
  }
  ::setenv("EDGEKIT_TOKEN_DIR", (tmpl + "/token").c_str(), 1);
  ::setenv("EDGEKIT_TOKEN_PBKDF2_ITERATIONS", "2000", 1);
  if (quiet) {
    ::setenv("EDGEKIT_TOKEN_QUIET", "1", 1);
  } else {
    ::unsetenv("EDGEKIT_TOKEN_QUIET");
  }
  auto m = Module::load(EDGEKIT_TOKEN_MODULE);
  if (!m) {
    ADD_FAILURE() << m.error().message();
    return {};
  }
  if (auto r = m->init_token(0, so_pin, label); !r) {
    ADD_FAILURE() << r.error().message();
    return {};
  }
  auto session = m->open_session(0, true);
  if (!session) {
    ADD_FAILURE() << session.error().message();
    return {};
  }
  if (auto r = session->login(UserType::SecurityOfficer, so_pin); !r) {
    ADD_FAILURE() << r.error().message();
    return {};
  }
  if (auto r = session->init_pin(pin); !r) {
    ADD_FAILURE() << r.error().message();
    return {};
  }
  return tmpl;
}

inline std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace edgekit::pkcs11::testing
