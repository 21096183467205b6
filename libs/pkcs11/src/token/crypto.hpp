#pragma once
// OpenSSL 3 behind small functions: keys, signatures, digests, HMAC, AES-256-GCM, PBKDF2.
// Every function reports failure through its return value; none throws.

#include "token/secure_bytes.hpp"

#include <edgekit/pkcs11/cryptoki.hpp>
#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace edgekit::pkcs11::token {

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

/// Named curves the token knows: their DER OIDs (CKA_EC_PARAMS) and sizes.
struct Curve {
  const char* name;                  // OpenSSL group name
  std::span<const std::uint8_t> oid;  // DER-encoded OBJECT IDENTIFIER
  std::size_t field_bytes;
};
/// The curve whose DER OID is `ec_params`, or nullptr.
const Curve* curve_from_params(std::span<const std::uint8_t> ec_params);
/// P-256 and P-384.
std::span<const Curve> supported_curves();

bool random_bytes(std::span<std::uint8_t> out);

/// PBKDF2-HMAC-SHA256 into 32 bytes.
bool pbkdf2(std::string_view pin, std::span<const std::uint8_t> salt, std::uint32_t iterations,
            Bytes& out);
bool sha256(std::span<const std::uint8_t> data, std::uint8_t (&out)[32]);
bool hmac_sha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data,
                 std::uint8_t (&out)[32]);
/// AES-256-GCM with a fresh random 12-byte nonce: returns nonce || ciphertext || tag.
bool seal(std::span<const std::uint8_t> key, std::span<const std::uint8_t> aad,
          std::span<const std::uint8_t> plain, Bytes& out);
/// Inverse of seal; false when the tag does not verify (tampered, truncated, wrong key).
bool open(std::span<const std::uint8_t> key, std::span<const std::uint8_t> aad,
          std::span<const std::uint8_t> sealed, Bytes& out);
constexpr std::size_t kSealOverhead = 12 + 16;

/// Key material, as PKCS#11 attributes name it.
struct EcKeyParts {
  const Curve* curve = nullptr;
  Bytes point;    // uncompressed 04||X||Y
  Bytes scalar;   // private value, big-endian, field size; empty for a public key
};
struct RsaKeyParts {
  Bytes n, e, d, p, q, dp, dq, qinv;  // d..qinv empty for a public key
};

Pkey generate_ec(const Curve& curve);
Pkey generate_rsa(unsigned bits, std::span<const std::uint8_t> public_exponent);
bool export_ec(EVP_PKEY* key, EcKeyParts& out);
bool export_rsa(EVP_PKEY* key, RsaKeyParts& out);
/// Builds a key from parts; nullptr when the parts do not form a valid key.
Pkey import_ec(const EcKeyParts& parts);
Pkey import_rsa(const RsaKeyParts& parts);
/// Modulus size in bits of an RSA key, field size in bytes of an EC key.
int key_bits(EVP_PKEY* key);

/// CKA_EC_POINT holds a DER OCTET STRING around the point; these wrap and unwrap it (a raw point
/// is accepted on input too, as several applications write one).
Bytes der_octet_string(std::span<const std::uint8_t> content);
bool point_from_ec_point_attribute(std::span<const std::uint8_t> attr, Bytes& point);

/// Certificate fields for CKA_SUBJECT / CKA_ISSUER / CKA_SERIAL_NUMBER; false if `der` is not an
/// X.509 certificate.
bool parse_certificate(std::span<const std::uint8_t> der, Bytes& subject, Bytes& issuer,
                       Bytes& serial);

}  // namespace edgekit::pkcs11::token
