#include "token/mechanisms.hpp"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>

#include <cstring>

namespace edgekit::pkcs11::token {
namespace {

constexpr CK_FLAGS kEcFlags = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
// Key sizes: bits for RSA and EC, bytes for HMAC keys [v2.40 2.x, per mechanism].
constexpr MechanismSpec kMechanisms[] = {
    {CKM_EC_KEY_PAIR_GEN, 256, 384, CKF_GENERATE_KEY_PAIR | kEcFlags},
    {CKM_ECDSA, 256, 384, CKF_SIGN | CKF_VERIFY | kEcFlags},
    {CKM_ECDSA_SHA256, 256, 384, CKF_SIGN | CKF_VERIFY | kEcFlags},
    {CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, 4096, CKF_GENERATE_KEY_PAIR},
    {CKM_RSA_PKCS, 2048, 4096, CKF_SIGN | CKF_VERIFY},
    {CKM_SHA256_RSA_PKCS, 2048, 4096, CKF_SIGN | CKF_VERIFY},
    {CKM_RSA_PKCS_PSS, 2048, 4096, CKF_SIGN | CKF_VERIFY},
    {CKM_SHA256_RSA_PKCS_PSS, 2048, 4096, CKF_SIGN | CKF_VERIFY},
    {CKM_SHA256, 0, 0, CKF_DIGEST},
    {CKM_SHA256_HMAC, 16, 512, CKF_SIGN | CKF_VERIFY},
};

const EVP_MD* md_for(CK_MECHANISM_TYPE hash) {
  switch (hash) {
    case CKM_SHA_1: return EVP_sha1();
    case CKM_SHA224: return EVP_sha224();
    case CKM_SHA256: return EVP_sha256();
    case CKM_SHA384: return EVP_sha384();
    case CKM_SHA512: return EVP_sha512();
    default: return nullptr;
  }
}
const EVP_MD* mgf_for(CK_RSA_PKCS_MGF_TYPE mgf) {
  switch (mgf) {
    case CKG_MGF1_SHA1: return EVP_sha1();
    case CKG_MGF1_SHA224: return EVP_sha224();
    case CKG_MGF1_SHA256: return EVP_sha256();
    case CKG_MGF1_SHA384: return EVP_sha384();
    case CKG_MGF1_SHA512: return EVP_sha512();
    default: return nullptr;
  }
}

struct CtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const noexcept { EVP_PKEY_CTX_free(c); }
};
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, CtxDeleter>;

}  // namespace

std::span<const MechanismSpec> mechanisms() { return kMechanisms; }

const MechanismSpec* find_mechanism(CK_MECHANISM_TYPE type) {
  for (const MechanismSpec& m : kMechanisms) {
    if (m.type == type) return &m;
  }
  return nullptr;
}

SignatureOp::~SignatureOp() { EVP_MAC_CTX_free(mac_); }

CK_RV SignatureOp::start(const CK_MECHANISM& mechanism, const AttributeMap& key_attrs,
                         EVP_PKEY* key, bool sign, std::unique_ptr<SignatureOp>& out) {
  const MechanismSpec* spec = find_mechanism(mechanism.mechanism);
  if (spec == nullptr || (spec->flags & (sign ? CKF_SIGN : CKF_VERIFY)) == 0) {
    return CKR_MECHANISM_INVALID;
  }
  const CK_OBJECT_CLASS cls = get_ulong(key_attrs, CKA_CLASS).value_or(CKO_DATA);
  const CK_KEY_TYPE key_type = get_ulong(key_attrs, CKA_KEY_TYPE).value_or(CKK_VENDOR_DEFINED);
  const CK_ATTRIBUTE_TYPE usage = sign ? CKA_SIGN : CKA_VERIFY;
  if (!bool_or(key_attrs, usage, false)) return CKR_KEY_FUNCTION_NOT_PERMITTED;

  std::unique_ptr<SignatureOp> op(new (std::nothrow) SignatureOp());
  if (!op) return CKR_HOST_MEMORY;
  op->mechanism_ = mechanism.mechanism;
  const bool asym_ok = sign ? cls == CKO_PRIVATE_KEY : cls == CKO_PUBLIC_KEY;

  switch (mechanism.mechanism) {
    case CKM_ECDSA:
    case CKM_ECDSA_SHA256:
      if (mechanism.ulParameterLen != 0) return CKR_MECHANISM_PARAM_INVALID;
      if (!asym_ok || key_type != CKK_EC || key == nullptr) return CKR_KEY_TYPE_INCONSISTENT;
      op->alg_ = Alg::Ecdsa;
      op->md_ = mechanism.mechanism == CKM_ECDSA_SHA256 ? EVP_sha256() : nullptr;
      op->field_bytes_ = static_cast<std::size_t>((key_bits(key) + 7) / 8);
      op->sig_len_ = 2 * op->field_bytes_;
      break;
    case CKM_RSA_PKCS:
    case CKM_SHA256_RSA_PKCS:
      if (mechanism.ulParameterLen != 0) return CKR_MECHANISM_PARAM_INVALID;
      if (!asym_ok || key_type != CKK_RSA || key == nullptr) return CKR_KEY_TYPE_INCONSISTENT;
      op->alg_ = Alg::RsaPkcs1;
      op->md_ = mechanism.mechanism == CKM_SHA256_RSA_PKCS ? EVP_sha256() : nullptr;
      op->sig_len_ = static_cast<std::size_t>((key_bits(key) + 7) / 8);
      break;
    case CKM_RSA_PKCS_PSS:
    case CKM_SHA256_RSA_PKCS_PSS: {
      if (!asym_ok || key_type != CKK_RSA || key == nullptr) return CKR_KEY_TYPE_INCONSISTENT;
      if (mechanism.pParameter == nullptr ||
          mechanism.ulParameterLen != sizeof(CK_RSA_PKCS_PSS_PARAMS)) {
        return CKR_MECHANISM_PARAM_INVALID;
      }
      CK_RSA_PKCS_PSS_PARAMS params;
      std::memcpy(&params, mechanism.pParameter, sizeof params);
      op->pss_md_ = md_for(params.hashAlg);
      op->mgf1_md_ = mgf_for(params.mgf);
      // [v2.40 2.1.14] the hashed variant fixes the hash; the parameters must agree with it.
      if (op->pss_md_ == nullptr || op->mgf1_md_ == nullptr ||
          (mechanism.mechanism == CKM_SHA256_RSA_PKCS_PSS && params.hashAlg != CKM_SHA256)) {
        return CKR_MECHANISM_PARAM_INVALID;
      }
      op->sig_len_ = static_cast<std::size_t>((key_bits(key) + 7) / 8);
      const std::size_t hlen = static_cast<std::size_t>(EVP_MD_get_size(op->pss_md_));
      if (params.sLen > op->sig_len_ - hlen - 2) return CKR_MECHANISM_PARAM_INVALID;
      op->salt_len_ = static_cast<int>(params.sLen);
      op->alg_ = Alg::RsaPss;
      op->md_ = mechanism.mechanism == CKM_SHA256_RSA_PKCS_PSS ? EVP_sha256() : nullptr;
      break;
    }
    case CKM_SHA256_HMAC: {
      if (mechanism.ulParameterLen != 0) return CKR_MECHANISM_PARAM_INVALID;
      if (cls != CKO_SECRET_KEY ||
          (key_type != CKK_GENERIC_SECRET && key_type != CKK_SHA256_HMAC)) {
        return CKR_KEY_TYPE_INCONSISTENT;
      }
      const Bytes* value = find_attribute(key_attrs, CKA_VALUE);
      if (value == nullptr || value->empty()) return CKR_KEY_TYPE_INCONSISTENT;
      EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
      op->mac_ = mac == nullptr ? nullptr : EVP_MAC_CTX_new(mac);
      EVP_MAC_free(mac);
      char digest[] = "SHA256";
      const OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_END};
      if (op->mac_ == nullptr ||
          EVP_MAC_init(op->mac_, value->data(), value->size(), params) != 1) {
        return CKR_FUNCTION_FAILED;
      }
      op->alg_ = Alg::Hmac;
      op->sig_len_ = 32;
      break;
    }
    default:
      return CKR_MECHANISM_INVALID;
  }
  if (key != nullptr) {
    if (EVP_PKEY_up_ref(key) != 1) return CKR_FUNCTION_FAILED;
    op->key_.reset(key);
  }
  if (op->md_ != nullptr) {
    op->hash_.reset(EVP_MD_CTX_new());
    if (!op->hash_ || EVP_DigestInit_ex(op->hash_.get(), op->md_, nullptr) != 1) {
      return CKR_HOST_MEMORY;
    }
  }
  out = std::move(op);
  return CKR_OK;
}

CK_RV SignatureOp::update(std::span<const std::uint8_t> data) {
  updated_ = true;
  if (alg_ == Alg::Hmac) {
    return EVP_MAC_update(mac_, data.data(), data.size()) == 1 ? CKR_OK : CKR_FUNCTION_FAILED;
  }
  if (hash_) {
    return EVP_DigestUpdate(hash_.get(), data.data(), data.size()) == 1 ? CKR_OK
                                                                       : CKR_FUNCTION_FAILED;
  }
  // Raw mechanisms sign their input as it is; collect it, bounded by what they can take.
  if (data_.size() + data.size() > 8192) return CKR_DATA_LEN_RANGE;
  data_.insert(data_.end(), data.begin(), data.end());
  return CKR_OK;
}

CK_RV SignatureOp::to_be_signed(Bytes& out) {
  if (hash_) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (EVP_DigestFinal_ex(hash_.get(), digest, &len) != 1) return CKR_FUNCTION_FAILED;
    out.assign(digest, digest + len);
    return CKR_OK;
  }
  switch (alg_) {
    case Alg::RsaPkcs1:
      // [v2.40 2.1.6] at most k-11 bytes fit in a PKCS #1 v1.5 block.
      if (data_.size() > sig_len_ - 11) return CKR_DATA_LEN_RANGE;
      break;
    case Alg::RsaPss:
      // [v2.40 2.1.14] CKM_RSA_PKCS_PSS takes the hash value itself.
      if (data_.size() != static_cast<std::size_t>(EVP_MD_get_size(pss_md_))) {
        return CKR_DATA_LEN_RANGE;
      }
      break;
    case Alg::Ecdsa:
      if (data_.empty()) return CKR_DATA_LEN_RANGE;
      break;
    case Alg::Hmac:
      break;
  }
  out = std::move(data_);
  return CKR_OK;
}

CK_RV SignatureOp::configure(EVP_PKEY_CTX* ctx) const {
  switch (alg_) {
    case Alg::RsaPkcs1:
      if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1) return CKR_FUNCTION_FAILED;
      // With a hash, OpenSSL wraps the digest in a DigestInfo; CKM_RSA_PKCS gets it from the caller.
      if (md_ != nullptr && EVP_PKEY_CTX_set_signature_md(ctx, md_) != 1) {
        return CKR_FUNCTION_FAILED;
      }
      return CKR_OK;
    case Alg::RsaPss:
      if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
          EVP_PKEY_CTX_set_signature_md(ctx, pss_md_) != 1 ||
          EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf1_md_) != 1 ||
          EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt_len_) != 1) {
        return CKR_FUNCTION_FAILED;
      }
      return CKR_OK;
    case Alg::Ecdsa:
    case Alg::Hmac:
      return CKR_OK;
  }
  return CKR_FUNCTION_FAILED;
}

CK_RV SignatureOp::sign(std::span<std::uint8_t> out) {
  if (out.size() < sig_len_) return CKR_BUFFER_TOO_SMALL;
  if (alg_ == Alg::Hmac) {
    std::size_t len = 0;
    return EVP_MAC_final(mac_, out.data(), &len, out.size()) == 1 && len == sig_len_
               ? CKR_OK
               : CKR_FUNCTION_FAILED;
  }
  Bytes tbs;
  if (CK_RV rv = to_be_signed(tbs); rv != CKR_OK) return rv;
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1) return CKR_FUNCTION_FAILED;
  if (CK_RV rv = configure(ctx.get()); rv != CKR_OK) return rv;
  std::size_t len = 0;
  if (EVP_PKEY_sign(ctx.get(), nullptr, &len, tbs.data(), tbs.size()) != 1) {
    return CKR_FUNCTION_FAILED;
  }
  Bytes sig(len);
  if (EVP_PKEY_sign(ctx.get(), sig.data(), &len, tbs.data(), tbs.size()) != 1) {
    return alg_ == Alg::RsaPkcs1 ? CKR_DATA_LEN_RANGE : CKR_FUNCTION_FAILED;
  }
  if (alg_ != Alg::Ecdsa) {
    if (len != sig_len_) return CKR_FUNCTION_FAILED;
    std::memcpy(out.data(), sig.data(), len);
    return CKR_OK;
  }
  // [v2.40 2.3.1] ECDSA signatures are r || s, each as long as the field; OpenSSL writes DER.
  const unsigned char* p = sig.data();
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
  if (es == nullptr) return CKR_FUNCTION_FAILED;
  const int n = static_cast<int>(field_bytes_);
  const bool ok = BN_bn2binpad(ECDSA_SIG_get0_r(es), out.data(), n) == n &&
                  BN_bn2binpad(ECDSA_SIG_get0_s(es), out.data() + n, n) == n;
  ECDSA_SIG_free(es);
  return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

CK_RV SignatureOp::verify(std::span<const std::uint8_t> signature) {
  if (signature.size() != sig_len_) return CKR_SIGNATURE_LEN_RANGE;
  if (alg_ == Alg::Hmac) {
    std::uint8_t mac[32];
    std::size_t len = 0;
    if (EVP_MAC_final(mac_, mac, &len, sizeof mac) != 1 || len != 32) return CKR_FUNCTION_FAILED;
    return CRYPTO_memcmp(mac, signature.data(), 32) == 0 ? CKR_OK : CKR_SIGNATURE_INVALID;
  }
  Bytes tbs;
  if (CK_RV rv = to_be_signed(tbs); rv != CKR_OK) return rv;
  Bytes sig(signature.begin(), signature.end());
  if (alg_ == Alg::Ecdsa) {
    ECDSA_SIG* es = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(signature.data(), static_cast<int>(field_bytes_), nullptr);
    BIGNUM* s = BN_bin2bn(signature.data() + field_bytes_, static_cast<int>(field_bytes_), nullptr);
    if (es == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(es, r, s) != 1) {
      BN_free(r);
      BN_free(s);
      ECDSA_SIG_free(es);
      return CKR_HOST_MEMORY;
    }
    unsigned char* der = nullptr;
    const int len = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (len <= 0) return CKR_FUNCTION_FAILED;
    sig.assign(der, der + len);
    OPENSSL_free(der);
  }
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) return CKR_FUNCTION_FAILED;
  if (CK_RV rv = configure(ctx.get()); rv != CKR_OK) return rv;
  return EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), tbs.data(), tbs.size()) == 1
             ? CKR_OK
             : CKR_SIGNATURE_INVALID;
}

CK_RV DigestOp::start(const CK_MECHANISM& mechanism, std::unique_ptr<DigestOp>& out) {
  if (mechanism.mechanism != CKM_SHA256) return CKR_MECHANISM_INVALID;
  if (mechanism.ulParameterLen != 0) return CKR_MECHANISM_PARAM_INVALID;
  std::unique_ptr<DigestOp> op(new (std::nothrow) DigestOp());
  if (!op) return CKR_HOST_MEMORY;
  op->ctx_.reset(EVP_MD_CTX_new());
  if (!op->ctx_ || EVP_DigestInit_ex(op->ctx_.get(), EVP_sha256(), nullptr) != 1) {
    return CKR_HOST_MEMORY;
  }
  out = std::move(op);
  return CKR_OK;
}

CK_RV DigestOp::update(std::span<const std::uint8_t> data) {
  updated_ = true;
  return EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) == 1 ? CKR_OK
                                                                     : CKR_FUNCTION_FAILED;
}

CK_RV DigestOp::finish(std::span<std::uint8_t> out) {
  if (out.size() < 32) return CKR_BUFFER_TOO_SMALL;
  unsigned len = 0;
  return EVP_DigestFinal_ex(ctx_.get(), out.data(), &len) == 1 && len == 32 ? CKR_OK
                                                                            : CKR_FUNCTION_FAILED;
}

}  // namespace edgekit::pkcs11::token
