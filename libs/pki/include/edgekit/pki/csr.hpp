#pragma once
/// \file
/// PKCS#10 certification requests (RFC 2986): made with a `Signer` (inside the token on a
/// device), and read (untrusted input) with their self-signature checked.
/// Thread safety: free functions; a `Signer` is used by one thread at a time.

#include <edgekit/pki/keys.hpp>
#include <edgekit/pki/name.hpp>

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace edgekit::pki {

/// Makes a request (version 0, `subject`, the signer's public key, no attributes) signed by
/// `signer`, as PEM. It is verified with its own public key before it is returned.
/// Errors: InvalidArgument (empty subject), Token / Crypto from the signer, BadSignature (the
/// signer's signature does not verify with its public key: a token whose public key object is
/// not the private key's pair).
Result<std::string> make_csr(Signer& signer, const Name& subject);

/// What a request asks for.
struct CsrInfo {
  Bytes der;
  Name subject;
  Bytes public_key_der;                       ///< SubjectPublicKeyInfo, DER
  std::optional<KeyAlgorithm> key_algorithm;  ///< nullopt: a key this library does not handle
};

/// Reads a request, DER (the whole input) or PEM (the first CERTIFICATE REQUEST block), and
/// checks its signature with the public key it carries.
/// Errors: Malformed (no request, trailing bytes, a public key OpenSSL cannot read),
/// BadSignature.
Result<CsrInfo> parse_csr(std::span<const std::uint8_t> pem_or_der);
inline Result<CsrInfo> parse_csr(std::string_view pem_or_der) {
  return parse_csr(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(pem_or_der.data()), pem_or_der.size()));
}

}  // namespace edgekit::pki
