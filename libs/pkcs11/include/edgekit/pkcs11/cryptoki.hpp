#pragma once
/// \file
/// The PKCS#11 v2.40 (Cryptoki) C declarations edgekit builds against, and the names of CKR codes.
/// The declarations are p11-kit's `pkcs11.h` (Debian libp11-kit-dev) in its standard-compatible
/// mode: CK_ULONG is `unsigned long`, structures have the platform's default packing, exactly the
/// ABI every Linux PKCS#11 module and application shares.

#include <p11-kit/pkcs11.h>

#include <string_view>

namespace edgekit::pkcs11 {

/// The spec name of a return value, e.g. "CKR_PIN_INCORRECT"; "CKR_VENDOR_DEFINED" for vendor
/// codes and "CKR_<unknown>" for values the spec does not define. Never fails, never allocates;
/// the view points at static storage. Thread safe.
[[nodiscard]] std::string_view rv_to_string(CK_RV rv) noexcept;

/// The spec name of a mechanism, e.g. "CKM_ECDSA_SHA256", or "CKM_<unknown>". Static storage.
[[nodiscard]] std::string_view mechanism_to_string(CK_MECHANISM_TYPE mechanism) noexcept;

}  // namespace edgekit::pkcs11
