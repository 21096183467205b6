#pragma once
/// \file
/// Keys in a PKCS#11 token (any module, through edgekit::pkcs11): the public key of a token key
/// pair, key generation inside the token, and `TokenSigner`, which makes the signatures of CSRs,
/// certificates and CRLs inside the token.
///
/// Thread safety: as the session's: one thread at a time per `pkcs11::Session`.

#include <edgekit/pkcs11/client.hpp>
#include <edgekit/pki/certificate.hpp>
#include <edgekit/pki/keys.hpp>

#include <string>
#include <string_view>

namespace edgekit::pki {

/// The public key of a private key held in a token, as DER SubjectPublicKeyInfo. It is read
/// from the pair's public key object (same CKA_ID, else same CKA_LABEL): CKA_EC_PARAMS +
/// CKA_EC_POINT (a DER OCTET STRING around the point as PKCS#11 v2.40 2.3.3 asks, or the bare
/// point some modules store), or CKA_MODULUS + CKA_PUBLIC_EXPONENT. An EC private key without a
/// public key object is read from its own CKA_EC_POINT where the module keeps one there; an RSA
/// private key carries its modulus and exponent itself.
/// Errors: NotFound (no public key object for an EC key), Token (an attribute the module would
/// not give), UnsupportedKey (neither EC nor RSA, an unnamed curve), Malformed (attributes
/// OpenSSL rejects).
Result<Bytes> token_public_key(pkcs11::Session& session, CK_OBJECT_HANDLE private_key);

/// Generates a key pair inside the token: the private key CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE,
/// not CKA_EXTRACTABLE, CKA_SIGN only; the public key CKA_VERIFY; both labelled `label` with
/// CKA_ID `id`. The session must be read/write and logged in.
/// Errors: Token (C_GenerateKeyPair refused, e.g. CKR_MECHANISM_INVALID for a key type the
/// module lacks).
Result<pkcs11::KeyPair> generate_token_key(pkcs11::Session& session, KeyAlgorithm algorithm,
                                           std::string_view label,
                                           std::span<const std::uint8_t> id);

/// Imports a private key received in clear (e.g. from AWS IoT's CreateKeysAndCertificate) into
/// the token, with its public key beside it: the private key CKA_TOKEN, CKA_PRIVATE,
/// CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN only; the public key CKA_VERIFY (an EC public
/// key object carries CKA_EC_POINT, so that `token_public_key` and `TokenSigner` find it); both
/// labelled `label` with CKA_ID `id`. `pem` is an unencrypted PEM private key (PKCS#8 or
/// traditional), EC P-256/P-384 or RSA 2048/3072/4096. The session must be read/write and
/// logged in.
/// Secrets: every copy this function makes (the key's numbers as bytes for the template, the
/// decoded key) is wiped before it returns (OPENSSL_cleanse; OpenSSL frees private BIGNUMs
/// with BN_clear_free and reads PEM private keys into its secure heap). `pem` itself is the
/// caller's to wipe.
/// If the private key is created and the public one is refused, the private key is destroyed
/// again: the token never keeps half a pair.
/// Errors: Malformed (no PEM private key), UnsupportedKey (not one of KeyAlgorithm), Token
/// (C_CreateObject refused, e.g. a module that does not import private keys).
Result<pkcs11::KeyPair> import_private_key(pkcs11::Session& session, std::string_view pem,
                                           std::string_view label,
                                           std::span<const std::uint8_t> id);

/// Stores `certificate` in the token as a public token object (CKO_CERTIFICATE, CKC_X_509)
/// with CKA_LABEL `label`, CKA_ID `id` (that of its private key, by PKCS#11 convention), and
/// CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER (the DER INTEGER, v2.40 4.6.3) and CKA_VALUE.
/// The session must be read/write (and logged in where the module asks it for token objects).
/// Errors: Malformed (`certificate.der`), Token (C_CreateObject refused).
Result<CK_OBJECT_HANDLE> store_certificate(pkcs11::Session& session,
                                           const CertificateInfo& certificate,
                                           std::string_view label,
                                           std::span<const std::uint8_t> id);

/// The name of the curve in a DER CKA_EC_PARAMS: "P-256", "P-384", "P-521", OpenSSL's short
/// name for other named curves, "unknown curve" for anything else.
[[nodiscard]] std::string ec_curve_name(std::span<const std::uint8_t> ec_params);

/// A `Signer` whose signatures are C_Sign calls in the token; the private key never leaves it.
/// EC keys sign with CKM_ECDSA_SHA256 (CKM_ECDSA_SHA384 for P-384), RSA keys with
/// CKM_SHA256_RSA_PKCS. A module without the combined mechanism (SoftHSM2 2.6 lacks
/// CKM_ECDSA_SHA256, edgekit's token CKM_ECDSA_SHA384) gets the hash, computed here, signed with
/// raw CKM_ECDSA, or the SHA-256 DigestInfo signed with CKM_RSA_PKCS; the choice is remembered.
/// ECDSA's raw r || s becomes a DER Ecdsa-Sig-Value.
///
/// Borrows the session, which must outlive the signer and stay logged in.
class TokenSigner final : public Signer {
 public:
  /// A signer for `private_key` (its public key read with token_public_key).
  /// Errors: as token_public_key; UnsupportedKey for a key that is not a KeyAlgorithm.
  static Result<TokenSigner> create(pkcs11::Session& session, CK_OBJECT_HANDLE private_key);

  [[nodiscard]] const Bytes& public_key_der() const override { return public_key_; }
  [[nodiscard]] KeyAlgorithm key_algorithm() const override { return algorithm_; }
  [[nodiscard]] CK_OBJECT_HANDLE private_key() const { return key_; }
  /// Errors: Token ("the token refused C_Sign: CKR_..."), Crypto (a malformed answer).
  Result<Signature> sign(std::span<const std::uint8_t> data) override;

 private:
  TokenSigner(pkcs11::Session& session, CK_OBJECT_HANDLE key, Bytes public_key,
              KeyAlgorithm algorithm)
      : session_(&session), key_(key), public_key_(std::move(public_key)), algorithm_(algorithm) {}
  pkcs11::Session* session_;
  CK_OBJECT_HANDLE key_;
  Bytes public_key_;
  KeyAlgorithm algorithm_;
  bool combined_mechanism_ = true;  // false once the module said it lacks hash-and-sign
};

}  // namespace edgekit::pki
