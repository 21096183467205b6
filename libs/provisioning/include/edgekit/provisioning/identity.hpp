#pragma once
/// \file
/// Pointing a device at its broker (fleetd's Mosquitto, or AWS IoT itself) with an identity
/// kept in its token: the claim identity to provision, the device identity afterwards. The
/// TLS layer (tls.hpp) loads the client certificate from a PEM file and signs with a token key;
/// this reads the certificate stored under a label in the token and writes that file, so the
/// same call serves the claim and the device label and nothing else has to know where the
/// certificate came from.
/// Thread safety: the session's (one thread at a time).

#include <edgekit/pkcs11/client.hpp>
#include <edgekit/tls/tls.hpp>
#include <string>
#include <string_view>

#include "edgekit/provisioning/errc.hpp"

namespace edgekit::provisioning {

/// Where the token is, for the TLS layer's own session (it logs in by itself).
struct TokenLocation {
  std::string module_path;  ///< the PKCS#11 module
  std::string token_label;  ///< the token's label
  std::string pin;          ///< the user PIN
};

/// A `tls::Config` for the identity under `label` (key pair and certificate, as `Provisioner`
/// leaves them, or a claim identity stored the same way): the certificate read from the token
/// (`session`, logged in) and written as PEM to `certificate_path` (mode 0644: it is public),
/// the private key left in the token (`token_key` with `label`), and `ca_file` as the trusted
/// CAs of the broker. The caller adds host name checks, ALPN ("x-amzn-mqtt-ca" on 443) etc.
/// Errors: TokenFailed (no single certificate or private key under `label`, or the token
/// refused to read), StateStoreFailed (the file could not be written).
[[nodiscard]] Result<tls::Config, Errc> tls_config_for(pkcs11::Session& session,
                                                       const TokenLocation& token,
                                                       std::string_view label,
                                                       const std::string& ca_file,
                                                       const std::string& certificate_path);

}  // namespace edgekit::provisioning
