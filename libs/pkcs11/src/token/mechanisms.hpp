#pragma once
// The mechanisms the token offers and the sign/verify/digest operations behind them.

#include "token/attributes.hpp"
#include "token/crypto.hpp"

#include <edgekit/pkcs11/cryptoki.hpp>
#include <openssl/evp.h>

#include <memory>
#include <span>

namespace edgekit::pkcs11::token {

struct MechanismSpec {
  CK_MECHANISM_TYPE type;
  CK_ULONG min_key;
  CK_ULONG max_key;
  CK_FLAGS flags;
};
std::span<const MechanismSpec> mechanisms();
const MechanismSpec* find_mechanism(CK_MECHANISM_TYPE type);

/// A sign or verify operation in progress. Owns its own reference to the key, so destroying the
/// key object mid-operation is safe.
class SignatureOp {
 public:
  /// Checks mechanism, parameters and key, and starts the operation. Errors:
  /// CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID, CKR_KEY_TYPE_INCONSISTENT,
  /// CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_KEY_SIZE_RANGE, CKR_HOST_MEMORY.
  static CK_RV start(const CK_MECHANISM& mechanism, const AttributeMap& key_attrs, EVP_PKEY* key,
                     bool sign, std::unique_ptr<SignatureOp>& out);
  ~SignatureOp();
  SignatureOp(const SignatureOp&) = delete;
  SignatureOp& operator=(const SignatureOp&) = delete;

  CK_RV update(std::span<const std::uint8_t> data);
  bool updated() const { return updated_; }
  CK_ULONG signature_length() const { return static_cast<CK_ULONG>(sig_len_); }
  /// Produces the signature into `out` (exactly signature_length() bytes). CKR_DATA_LEN_RANGE,
  /// CKR_FUNCTION_FAILED.
  CK_RV sign(std::span<std::uint8_t> out);
  /// CKR_OK, CKR_SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE, CKR_DATA_LEN_RANGE.
  CK_RV verify(std::span<const std::uint8_t> signature);

 private:
  enum class Alg { Ecdsa, RsaPkcs1, RsaPss, Hmac };
  SignatureOp() = default;
  CK_RV to_be_signed(Bytes& out);
  CK_RV configure(EVP_PKEY_CTX* ctx) const;

  Alg alg_ = Alg::Ecdsa;
  CK_MECHANISM_TYPE mechanism_ = 0;
  bool updated_ = false;
  std::size_t sig_len_ = 0;
  std::size_t field_bytes_ = 0;
  const EVP_MD* md_ = nullptr;  // hash the token applies to the data, if any
  MdCtx hash_;
  EVP_MAC_CTX* mac_ = nullptr;
  Bytes data_;
  Pkey key_;
  const EVP_MD* pss_md_ = nullptr;
  const EVP_MD* mgf1_md_ = nullptr;
  int salt_len_ = 0;
};

/// A digest in progress (CKM_SHA256).
class DigestOp {
 public:
  static CK_RV start(const CK_MECHANISM& mechanism, std::unique_ptr<DigestOp>& out);
  CK_RV update(std::span<const std::uint8_t> data);
  CK_ULONG length() const { return 32; }
  CK_RV finish(std::span<std::uint8_t> out);
  bool updated() const { return updated_; }

 private:
  MdCtx ctx_;
  bool updated_ = false;
};

}  // namespace edgekit::pkcs11::token
