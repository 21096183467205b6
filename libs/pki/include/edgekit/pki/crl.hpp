#pragma once
/// \file
/// Certificate revocation lists (RFC 5280 5): made with the CA's `Signer`, read (untrusted
/// input), verified with the issuer's certificate.
/// Thread safety: free functions; a `Signer` is used by one thread at a time.

#include <edgekit/pki/certificate.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgekit::pki {

/// One revoked certificate.
struct RevokedCertificate {
  std::string serial_hex;        ///< as CertificateInfo::serial_hex (either case accepted)
  std::int64_t revoked_at = 0;   ///< epoch seconds
};

/// A CRL as read.
struct CrlInfo {
  Bytes der;
  Name issuer;
  std::int64_t this_update = 0;
  std::optional<std::int64_t> next_update;
  std::optional<std::uint64_t> crl_number;  ///< nullopt when absent or over 64 bits
  std::vector<RevokedCertificate> revoked;  ///< serials in lower-case hex, whole bytes

  /// Whether `serial_hex` (either case, leading zero bytes ignored) is listed.
  [[nodiscard]] bool lists(std::string_view serial_hex) const;
  [[nodiscard]] std::string pem() const;
};

/// What to put in a CRL.
struct CrlOptions {
  std::vector<RevokedCertificate> revoked;
  std::int64_t this_update = 0;
  std::int64_t next_update = 0;  ///< after this_update
  std::uint64_t crl_number = 1;  ///< grows with every CRL of the issuer (RFC 5280 5.2.3)
};

/// Makes a version 2 CRL of `issuer` (with cRLNumber and authorityKeyIdentifier) signed by
/// `issuer_key`, verified with the issuer's public key before it is returned.
/// Errors: InvalidArgument (times, a serial that is no positive hex number), NotCa (the issuer
/// is not a CA), KeyMismatch, Token / Crypto from the signer, BadSignature.
Result<CrlInfo> make_crl(const CertificateInfo& issuer, Signer& issuer_key,
                         const CrlOptions& options);

/// Reads a CRL, DER (the whole input) or PEM (the first X509 CRL block).
/// Errors: Malformed naming the problem.
Result<CrlInfo> parse_crl(std::span<const std::uint8_t> pem_or_der);
inline Result<CrlInfo> parse_crl(std::string_view pem_or_der) {
  return parse_crl(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(pem_or_der.data()), pem_or_der.size()));
}

/// Checks that `issuer` signed `crl` (names match, signature verifies).
/// Errors: UnknownIssuer, BadSignature, Malformed.
Status verify_crl(const CrlInfo& crl, const CertificateInfo& issuer);

}  // namespace edgekit::pki
