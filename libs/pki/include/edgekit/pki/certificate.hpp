#pragma once
/// \file
/// X.509 certificates: reading them (untrusted input: every malformed input is an error, never a
/// crash), issuing them with a `Signer` (inside a token for a CA), and checking them: issued by
/// whom, a chain at a given time, and the registration of an external CA (bring your own CA).
///
/// Times are seconds since the Unix epoch, given by the caller: nothing here reads a clock.
/// Thread safety: free functions over values; a `Signer` is used by one thread at a time.

#include <edgekit/pki/keys.hpp>
#include <edgekit/pki/name.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgekit::pki {

/// What edgekit reads from a certificate.
struct CertificateInfo {
  Bytes der;                  ///< the certificate, DER
  Name subject;
  Name issuer;
  std::string serial_hex;     ///< lower-case hex of the serial, whole bytes ("0a1b")
  std::int64_t not_before = 0;  ///< epoch seconds
  std::int64_t not_after = 0;   ///< epoch seconds
  bool is_ca = false;           ///< basicConstraints cA
  std::optional<int> path_length;  ///< basicConstraints pathLenConstraint
  bool can_sign_certificates = false;  ///< a CA whose keyUsage (if any) has keyCertSign
  Bytes public_key_der;       ///< SubjectPublicKeyInfo, DER
  std::optional<KeyAlgorithm> key_algorithm;  ///< nullopt: a key this library does not handle
  std::optional<SignatureAlgorithm> signature_algorithm;  ///< nullopt: another algorithm
  Bytes subject_key_id;       ///< empty when absent
  Bytes authority_key_id;     ///< keyIdentifier of the AKI extension, empty when absent
  std::vector<std::string> dns_names;     ///< subjectAltName dNSName entries
  std::vector<std::string> ip_addresses;  ///< subjectAltName iPAddress entries, as text
  /// Lower-case hex SHA-256 of `der`: AWS IoT's certificateId (`openssl x509 -outform der |
  /// sha256sum`).
  std::string id;

  /// The certificate as PEM.
  [[nodiscard]] std::string pem() const;
};

/// Reads one certificate: DER (the whole input, nothing after it), or PEM (the first
/// CERTIFICATE block; blocks of other types before it are skipped).
/// Errors: Malformed naming the problem ("no PEM CERTIFICATE block", "not a DER X.509
/// certificate", "7 bytes after the certificate", "invalid extensions", a validity time that
/// is no time).
Result<CertificateInfo> parse_certificate(std::span<const std::uint8_t> pem_or_der);
inline Result<CertificateInfo> parse_certificate(std::string_view pem_or_der) {
  return parse_certificate(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(pem_or_der.data()), pem_or_der.size()));
}

/// Reads every CERTIFICATE block of a PEM bundle, in order (other blocks are skipped).
/// Errors: Malformed (a block that is no certificate, naming its position; no certificate).
Result<std::vector<CertificateInfo>> parse_certificates(std::string_view pem);

/// What a certificate is for.
enum class Profile {
  Device,  ///< TLS client (a thing): extendedKeyUsage clientAuth
  Server,  ///< TLS server (the broker): extendedKeyUsage serverAuth, subjectAltName names
  Ca,      ///< a CA: basicConstraints cA (with `path_length`), keyCertSign and cRLSign
  CodeSigning,  ///< signs firmware images (OTA): extendedKeyUsage codeSigning
};

/// The contents of a certificate to issue.
struct IssueOptions {
  Profile profile = Profile::Device;
  Name subject;
  /// Hex (either case) of a positive serial of at most 20 bytes; empty: 16 random bytes from
  /// OpenSSL's CSPRNG, made positive (RFC 5280 4.1.2.2).
  std::string serial_hex;
  std::int64_t not_before = 0;  ///< epoch seconds
  std::int64_t not_after = 0;   ///< epoch seconds, after not_before
  std::optional<int> path_length;  ///< Profile::Ca only: how many CAs may follow (0: none)
  std::vector<std::string> dns_names;     ///< subjectAltName dNSName (any profile)
  std::vector<std::string> ip_addresses;  ///< subjectAltName iPAddress, IPv4 or IPv6 text
};

/// Issues a certificate for `subject_public_key` (DER SubjectPublicKeyInfo: EC P-256 or P-384,
/// RSA of 2048 bits or more) signed by `issuer_key`, as issued by `issuer` or, when `issuer` is
/// null, self-signed (`issuer_key` must then hold the subject key: a root CA).
///
/// Extensions (RFC 5280 4.2): basicConstraints (critical), keyUsage (critical:
/// digitalSignature, plus keyEncipherment for RSA keys; keyCertSign + cRLSign for a CA),
/// extendedKeyUsage (clientAuth, serverAuth or codeSigning; none for a CA), subjectAltName if names are
/// given, subjectKeyIdentifier (SHA-1 of the public key bits) and authorityKeyIdentifier (the
/// issuer's subjectKeyIdentifier, else the SHA-1 of its key). The signature algorithm is the
/// one of the issuer's key (keys.hpp). The certificate is parsed back and verified with the
/// issuer's public key before it is returned.
/// Errors: InvalidArgument (empty subject, times, serial, an IP address that is none, a path
/// length outside a CA), UnsupportedKey (the subject key), Malformed (the subject key bytes),
/// NotCa (the issuer cannot sign certificates), KeyMismatch (`issuer_key` is not the issuer's
/// key), Token / Crypto from the signer, BadSignature (the signer's signature does not verify).
Result<CertificateInfo> issue_certificate(std::span<const std::uint8_t> subject_public_key,
                                          const IssueOptions& options,
                                          const CertificateInfo* issuer, Signer& issuer_key);

/// Checks that `issuer` issued `certificate`: names (and key identifiers) match, `issuer` may
/// sign certificates, and the signature verifies with the issuer's key. Validity times are not
/// looked at.
/// Errors: UnknownIssuer (the certificate names another issuer or key), NotCa, BadSignature,
/// Malformed (either certificate's DER).
Status verify_issued_by(const CertificateInfo& certificate, const CertificateInfo& issuer);

struct CrlInfo;

/// Checks a chain as a TLS peer would (OpenSSL's X509_verify_cert, strict X.509): `leaf` up to
/// one of `trusted` through `intermediates`, at time `now`. When `crls` is not empty, the leaf
/// is checked against its issuer's CRL (which must then be among them).
/// Errors: Expired / NotYetValid (naming the certificate and its time), UnknownIssuer (naming
/// the issuer that is missing), BadSignature, NotCa, Revoked, Untrusted (another reason,
/// OpenSSL's words), Malformed.
Status verify_chain(const CertificateInfo& leaf, std::span<const CertificateInfo> intermediates,
                    std::span<const CertificateInfo> trusted, std::int64_t now,
                    std::span<const CrlInfo> crls = {});

/// Checks an external CA that someone asks to register (bring your own CA, as AWS IoT's
/// RegisterCACertificate): `ca` can sign certificates, is valid at `now`, and verifies itself
/// if self-signed; `verification` was issued by `ca`, is valid at `now`, and its common name is
/// `registration_code` (proof that the registrant holds the CA's private key).
/// Errors: NotCa, Expired, NotYetValid, BadSignature, UnknownIssuer (verification not issued by
/// the CA), InvalidArgument (the common name is not the code).
Status verify_ca_registration(const CertificateInfo& ca, const CertificateInfo& verification,
                              std::string_view registration_code, std::int64_t now);

}  // namespace edgekit::pki
