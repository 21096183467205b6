#pragma once
/// \file
/// The code signature of an OTA file (`sig-sha256-ecdsa`): an ECDSA P-256 signature over the
/// SHA-256 of the whole file, which AWS Signer (code signing for FreeRTOS) encodes in ASN.1 DER
/// (`SEQUENCE { INTEGER r, INTEGER s }`) and the FreeRTOS agent's platform layer verifies as
/// such. PKCS#11's CKM_ECDSA takes the raw form `r || s` (32 bytes each, big-endian), so the
/// device converts. Pure: no heap, no I/O. Thread safety: none needed (no state).

#include <cstddef>
#include <span>

#include "edgekit/ota/errc.hpp"

namespace edgekit::ota {

/// The raw P-256 signature size: r and s, 32 bytes each.
inline constexpr std::size_t kRawSignatureSize = 64;

/// Converts `signature` into raw `r || s` in `out`. Accepts strict DER (definite short-form
/// lengths, minimal positive INTEGERs of at most 32 significant bytes, nothing after the
/// SEQUENCE), or exactly 64 bytes taken as raw already.
/// Errors: MalformedSignature (anything else, e.g. a negative or zero-padded INTEGER, a
/// trailing byte, a value wider than 32 bytes).
[[nodiscard]] Result<void, Errc> raw_p256_signature(
    std::span<const std::byte> signature, std::span<std::byte, kRawSignatureSize> out) noexcept;

}  // namespace edgekit::ota
