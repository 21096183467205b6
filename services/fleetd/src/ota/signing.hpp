#pragma once
/// \file
/// Checking an OTA image's code signature (aws-iot-protocols.md 2.6, `sig-sha256-ecdsa`): what
/// fleetd does before it accepts a pre-signed image, and what a test does with a signature
/// fleetd made. The signature is ECDSA P-256 over the image's SHA-256, DER-encoded (the FreeRTOS
/// OTA agent's form); the signer's certificate must carry the codeSigning extended key usage,
/// hold an EC P-256 key, and chain to one of the trust anchors at `now`.
///
/// Thread safety: stateless functions; safe from any thread.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "edgekit/pki/certificate.hpp"
#include "store/errc.hpp"

namespace edgekit::fleetd::ota {

/// Lower-case hex SHA-256 of `bytes`.
[[nodiscard]] std::string sha256_hex(std::string_view bytes);

/// Checks `signature` (DER) over `image` with the first certificate of `certificate_pem` (a PEM
/// bundle: the signer, then any intermediates), and the signer's certificate against `anchors`.
/// Errors (InvalidArgument, the message naming the failure): no certificate or an unreadable
/// one; a key that is not EC P-256; no codeSigning extended key usage; a chain that does not
/// reach an anchor at `now` (pki::verify_chain's reason); a signature that does not verify.
[[nodiscard]] Res<void> verify_image_signature(std::string_view image,
                                               std::string_view signature_der,
                                               std::string_view certificate_pem,
                                               std::span<const pki::CertificateInfo> anchors,
                                               std::int64_t now);

}  // namespace edgekit::fleetd::ota
