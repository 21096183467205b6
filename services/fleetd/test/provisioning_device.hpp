#pragma once
/// \file
/// A device as the end-to-end provisioning tests run it against the real fleetd, Mosquitto and
/// plugin: its keys in edgekit's PKCS#11 token (the folder of $EDGEKIT_TOKEN_DIR), one boot of
/// `edgekit::provisioning` (`Provisioner` over `ClientChannel` or `AgentChannel`, connected over
/// mutual TLS with the claim identity from the token), then a reconnect with the device identity
/// from the token and a publish on its own thing's topic. Shared by the in-process tests
/// (device_provisioning_test.cpp) and the device program the crash tests kill
/// (provisioning_device_main.cpp), so both run the same code.
/// Thread safety: none; one boot at a time per process (the module reads its token folder from
/// the environment at load).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "edgekit/provisioning/client.hpp"

namespace edgekit::fleetd::test {

/// Where the device's token, state and broker are, and how it provisions.
struct DeviceSetup {
  std::string module_path;  ///< edgekit's PKCS#11 module
  std::string token_label = "device-token";
  std::string pin = "1234";
  std::string state_file;  ///< the FileStateStore (its folder must exist)
  std::string work_dir;    ///< where the certificate PEM files for the TLS layer are written
  std::uint16_t port = 0;  ///< the broker's mutual-TLS device listener (server name localhost)
  std::string ca_file;     ///< the CA of the broker's server certificate
  std::string claim_client_id = "factory-device";
  bool agent = false;  ///< AgentChannel over the agent instead of ClientChannel over the client
  provisioning::Options options;
};

/// The factory's step: initialises the token (label `setup.token_label`, SO PIN `so_pin`, user
/// PIN `setup.pin`) and stores the claim identity (an unencrypted PEM key and its certificate)
/// under the label `setup.options.claim_label`. Returns "" or what failed.
std::string install_claim(const DeviceSetup& setup, const char* so_pin,
                          const std::string& claim_key_pem, const std::string& claim_cert_pem);

/// What one boot did.
struct BootReport {
  bool ok = false;
  std::string error;  ///< what failed ("" when ok)
  provisioning::Identity identity;
  std::size_t device_objects = 0;  ///< objects under the device label after the boot
  bool used_claim = false;         ///< this boot connected with the claim identity
  /// PUBACK reason codes of the publishes made with the device identity: on `<thing>/telemetry`
  /// and on another thing's topic (`t1/telemetry`); -1 when not made.
  int own_publish = -1;
  int foreign_publish = -1;
};

/// Lets the crash program put decorators around the state store and the channel (they must
/// forward to what they wrap). Empty: none.
struct BootHooks {
  std::function<std::unique_ptr<provisioning::StateStore>(provisioning::StateStore&)> store;
  std::function<std::unique_ptr<provisioning::Channel>(provisioning::Channel&)> channel;
};

/// One boot: provisions (or finds the identity already there), reconnects with the device
/// identity as its thing and publishes. The token folder must be set in the environment.
BootReport boot(const DeviceSetup& setup, const BootHooks& hooks = {});

/// The report as `key=value` lines (the device program's output) and back.
std::string to_text(const BootReport& r);
BootReport from_text(const std::string& text);

}  // namespace edgekit::fleetd::test
