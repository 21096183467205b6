#pragma once
/// \file
/// Keys and signatures: the key algorithms edgekit's PKI handles, the signature algorithm each
/// signs with, the `Signer` interface the CSR, certificate and CRL makers sign through, a
/// software signer for tests, and hex.
///
/// Signature hash per key (docs/pki.md): EC P-256 signs with ecdsa-with-SHA256, EC P-384 with
/// ecdsa-with-SHA384 (the hash that matches its strength, RFC 5480 4), RSA with
/// sha256WithRSAEncryption (PKCS#1 v1.5). A P-256 CA therefore signs with SHA-256, which AWS's
/// mbedTLS demos require (they accept only ecdsa_secp256r1_sha256 and rsa_pkcs1_sha256): do not
/// make a CA that signs broker certificates for such devices with a P-384 key.

#include <edgekit/pki/error.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgekit::pki {

using Bytes = std::vector<std::uint8_t>;

/// Key types: EC on P-256 (the device default) or P-384; RSA with a 2048-, 3072- or 4096-bit
/// modulus.
enum class KeyAlgorithm { EcP256, EcP384, Rsa2048, Rsa3072, Rsa4096 };

/// "EC P-256", "EC P-384", "RSA 2048", "RSA 3072", "RSA 4096".
[[nodiscard]] const char* to_string(KeyAlgorithm algorithm) noexcept;

/// The signature algorithms edgekit makes (and the ones it names when it reads them).
enum class SignatureAlgorithm { EcdsaSha256, EcdsaSha384, RsaPkcs1Sha256 };

/// "ecdsa-with-SHA256", "ecdsa-with-SHA384", "sha256WithRSAEncryption".
[[nodiscard]] const char* to_string(SignatureAlgorithm algorithm) noexcept;

/// The signature algorithm a key of `algorithm` signs with (see the file comment).
[[nodiscard]] SignatureAlgorithm signature_algorithm_for(KeyAlgorithm algorithm) noexcept;

/// The key algorithm of a DER SubjectPublicKeyInfo; nullopt for anything this library does not
/// handle (another curve or type, an RSA modulus of another size) or bytes that are no SPKI.
[[nodiscard]] std::optional<KeyAlgorithm> key_algorithm_of(std::span<const std::uint8_t> spki);

/// A signature as X.509 carries it: for ECDSA the DER Ecdsa-Sig-Value (RFC 3279 2.2.3), for RSA
/// the PKCS#1 v1.5 signature block.
struct Signature {
  Bytes value;
  SignatureAlgorithm algorithm = SignatureAlgorithm::EcdsaSha256;
};

/// Something that signs with one private key: a key in a PKCS#11 token (`TokenSigner`,
/// <edgekit/pki/token.hpp>) or, in tests, a PEM key (`SoftwareSigner`).
/// Thread safety: an implementation may keep state (a token session): one thread at a time.
class Signer {
 public:
  virtual ~Signer() = default;
  /// The public key, DER SubjectPublicKeyInfo. Valid while the signer lives.
  [[nodiscard]] virtual const Bytes& public_key_der() const = 0;
  [[nodiscard]] virtual KeyAlgorithm key_algorithm() const = 0;
  /// Signs `data` (a DER to-be-signed structure; the signer hashes it) with
  /// `signature_algorithm_for(key_algorithm())`.
  /// Errors: Token (the token refused, with its CKR code), Crypto.
  virtual Result<Signature> sign(std::span<const std::uint8_t> data) = 0;

 protected:
  Signer() = default;
  Signer(const Signer&) = default;
  Signer& operator=(const Signer&) = default;
};

/// A signer over a private key held in memory. **For tests only**: a device's or CA's key
/// belongs in a token, where it never leaves. Move-only; the key's memory is wiped by OpenSSL
/// when freed.
class SoftwareSigner final : public Signer {
 public:
  /// Reads an unencrypted PEM private key (PKCS#8 or traditional).
  /// Errors: Malformed (no PEM private key), UnsupportedKey (not one of KeyAlgorithm).
  static Result<SoftwareSigner> from_pem(std::string_view pem);
  /// A new key of `algorithm`. Errors: Crypto.
  static Result<SoftwareSigner> generate(KeyAlgorithm algorithm);

  SoftwareSigner(SoftwareSigner&&) noexcept;
  SoftwareSigner& operator=(SoftwareSigner&&) noexcept;
  ~SoftwareSigner() override;

  [[nodiscard]] const Bytes& public_key_der() const override { return public_key_; }
  [[nodiscard]] KeyAlgorithm key_algorithm() const override { return algorithm_; }
  Result<Signature> sign(std::span<const std::uint8_t> data) override;
  /// The private key as unencrypted PKCS#8 PEM (tests write it for other tools to read).
  [[nodiscard]] std::string private_key_pem() const;

 private:
  struct Key;
  SoftwareSigner(std::unique_ptr<Key> key, Bytes public_key, KeyAlgorithm algorithm);
  std::unique_ptr<Key> key_;
  Bytes public_key_;
  KeyAlgorithm algorithm_ = KeyAlgorithm::EcP256;
};

/// Whether two DER SubjectPublicKeyInfos hold the same public key (compared as keys, so that
/// two encodings of one key match); false when either is no SPKI.
[[nodiscard]] bool same_public_key(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);

/// "2027-11-26 09:40:00 UTC" for epoch seconds; "?" for a time gmtime cannot represent.
[[nodiscard]] std::string utc_time_text(std::int64_t epoch_seconds);

/// Lower-case hex, no separators.
[[nodiscard]] std::string to_hex(std::span<const std::uint8_t> bytes);
/// The bytes of an even number of hex digits (either case, nothing else).
/// Errors: InvalidArgument naming the problem (odd length, a non-hex character).
[[nodiscard]] Result<Bytes> from_hex(std::string_view hex);
/// Lower-case hex SHA-256 of `bytes`: for a certificate's DER, AWS IoT's certificateId.
[[nodiscard]] std::string sha256_hex(std::span<const std::uint8_t> bytes);
/// The SPKI as PEM ("-----BEGIN PUBLIC KEY-----"). Errors: Malformed.
[[nodiscard]] Result<std::string> public_key_pem(std::span<const std::uint8_t> spki);

}  // namespace edgekit::pki
