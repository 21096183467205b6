#pragma once
/// \file
/// Errors of `edgekit::pki`: an `Errc` wired into `std::error_code` (category "edgekit.pki") and
/// an `Error` that carries a message naming the cause ("the token refused C_Sign:
/// CKR_KEY_FUNCTION_NOT_PERMITTED (0x68)", "certificate 'CN=thing-1' expired at 2026-01-01
/// 00:00:00 UTC") and, when a PKCS#11 call failed, the client's error with its CKR code.
/// Messages never name command-line flags: the tools that call the library add those.

#include <edgekit/core/result.hpp>
#include <edgekit/pkcs11/client.hpp>

#include <optional>
#include <string>
#include <system_error>

namespace edgekit::pki {

/// Why a pki call failed. Value 0 is unused (a `std::error_code` of 0 means "no error").
enum class Errc {
  Malformed = 1,    ///< the bytes are not what they claim (PEM, DER, certificate, CSR, CRL)
  InvalidArgument,  ///< the caller's input cannot be used (empty subject, bad serial, times)
  UnsupportedKey,   ///< a key type, curve or size this library does not handle
  BadSignature,     ///< a signature does not verify with the key it should verify with
  KeyMismatch,      ///< a signer's key is not the certificate's (issuer or self-signed subject)
  NotCa,            ///< an issuer is not a CA (basicConstraints, keyCertSign, path length)
  Expired,          ///< a certificate's notAfter (or a CRL's nextUpdate) is before the time given
  NotYetValid,      ///< a certificate's notBefore is after the time given
  UnknownIssuer,    ///< no trusted issuer for a certificate, or not the issuer named
  Revoked,          ///< a CRL of the issuer lists the certificate
  Untrusted,        ///< any other reason the chain check refuses a certificate
  Token,            ///< a PKCS#11 call failed (`Error::token` has the function and CKR code)
  NotFound,         ///< the token has no object the operation needs (e.g. the public key)
  Crypto,           ///< OpenSSL failed where it should not (out of memory, internal error)
};

/// A short static description of `code`, e.g. "certificate expired" (never allocates).
[[nodiscard]] const char* to_string(Errc code) noexcept;

/// The `std::error_category` of `Errc` (name "edgekit.pki"). Thread safe.
[[nodiscard]] const std::error_category& pki_category() noexcept;

/// Wires `Errc` into `std::error_code`: `std::error_code ec = error.code;`.
[[nodiscard]] inline std::error_code make_error_code(Errc code) noexcept {
  return {static_cast<int>(code), pki_category()};
}

/// A failure: its code, a message for a person that names the cause, and the PKCS#11 error
/// when a token call failed (Errc::Token, and Errc::NotFound for a missing token object).
struct Error {
  Errc code = Errc::Crypto;
  std::string message;
  std::optional<pkcs11::Error> token;
};

template <class T>
using Result = edgekit::Result<T, Error>;
using Status = edgekit::Result<void, Error>;

}  // namespace edgekit::pki

template <>
struct std::is_error_code_enum<edgekit::pki::Errc> : std::true_type {};
