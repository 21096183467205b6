#pragma once
/// \file
/// What the admin API needs to know of a certificate a caller registers: AWS's id (SHA-256 of the
/// DER, lowercase hex), serial, validity, whether it is a CA, and whether a given CA issued it.
/// Input is untrusted PEM: exactly one certificate, bounded size, errors that say what is wrong.
/// The X.509 work is edgekit::pki's (docs/pki.md); this adds the API's rules and messages.

#include <cstdint>
#include <string>
#include <string_view>

#include "store/errc.hpp"

namespace edgekit::fleetd::admin {

struct CertificateFacts {
  std::string id;      ///< SHA-256 of the DER, lowercase hex
  std::string serial;  ///< lowercase hex, whole bytes (pki::CertificateInfo::serial_hex)
  std::string subject;  ///< RFC 4514 form ("O=Example,CN=thing-1")
  std::int64_t not_before = 0;  ///< epoch seconds
  std::int64_t not_after = 0;
  bool is_ca = false;  ///< basicConstraints CA:TRUE
};

/// Largest PEM accepted (a certificate with a long chain of extensions stays far below).
inline constexpr std::size_t kMaxPem = 16 * 1024;

/// Reads one PEM certificate. InvalidArgument when it is empty, too large, not a PEM
/// certificate (naming what pki found wrong), or followed by a second one.
[[nodiscard]] Res<CertificateFacts> read_certificate(std::string_view pem);

/// True when the certificate `pem` names `ca_pem`'s subject as its issuer and carries a
/// signature that `ca_pem`'s key verifies (pki::verify_issued_by). False for anything
/// unreadable.
[[nodiscard]] bool issued_by(std::string_view pem, std::string_view ca_pem);

}  // namespace edgekit::fleetd::admin
