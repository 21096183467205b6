#pragma once
/// \file
/// A fresh PKCS#11 token for a test, in edgekit's module or SoftHSM2: the environment that
/// points the module at a folder of the test's own, and a token initialised in it with both
/// PINs set. Header-only; the caller's test target defines the module paths. Thread safety:
/// none (it sets environment variables, read by the module at C_Initialize).

#include <edgekit/pkcs11/client.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace edgekit::testing {

enum class TokenKind { Edgekit, SoftHsm2 };
inline const char* name(TokenKind k) { return k == TokenKind::Edgekit ? "edgekit" : "softhsm2"; }

/// Points the module of `kind` at a fresh token folder under `dir` and returns the module path
/// to load: `edgekit_module` (with fast PIN hashing and no diagnostics) or `softhsm2_module`
/// (with a configuration file of its own).
inline std::string prepare_token_env(TokenKind kind, const std::string& dir,
                                     const std::string& edgekit_module,
                                     const std::string& softhsm2_module) {
  if (kind == TokenKind::SoftHsm2) {
    std::filesystem::create_directories(dir + "/softhsm");
    std::ofstream(dir + "/softhsm2.conf")
        << "directories.tokendir = " << dir << "/softhsm\nobjectstore.backend = file\n"
        << "log.level = ERROR\nslots.removable = false\n";
    ::setenv("SOFTHSM2_CONF", (dir + "/softhsm2.conf").c_str(), 1);
    return softhsm2_module;
  }
  ::setenv("EDGEKIT_TOKEN_DIR", (dir + "/token").c_str(), 1);
  ::setenv("EDGEKIT_TOKEN_PBKDF2_ITERATIONS", "2000", 1);  // fast logins in tests
  ::setenv("EDGEKIT_TOKEN_QUIET", "1", 1);
  return edgekit_module;
}

/// Initialises the first uninitialised token of `module` with `label` and both PINs, and
/// returns its slot (looked up again by label: SoftHSM2 renumbers slots). nullopt on failure.
inline std::optional<CK_SLOT_ID> init_test_token(const pkcs11::Module& module,
                                                 const std::string& label, const char* so_pin,
                                                 const char* pin) {
  auto slots = module.slots(false);
  if (!slots) return std::nullopt;
  for (CK_SLOT_ID s : *slots) {
    auto info = module.token_info(s);
    if (info && (info->flags & CKF_TOKEN_INITIALIZED) == 0) {
      if (!module.init_token(s, so_pin, label)) return std::nullopt;
      break;
    }
  }
  auto slot = module.find_token(label);
  if (!slot) return std::nullopt;
  auto so = module.open_session(*slot, true);
  if (!so || !so->login(pkcs11::UserType::SecurityOfficer, so_pin) || !so->init_pin(pin)) {
    return std::nullopt;
  }
  return *slot;
}

}  // namespace edgekit::testing
