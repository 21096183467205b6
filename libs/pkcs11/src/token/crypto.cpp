#include "token/crypto.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <array>
#include <cstring>

namespace edgekit::pkcs11::token {
namespace {

// DER OBJECT IDENTIFIERs: prime256v1 1.2.840.10045.3.1.7 and secp384r1 1.3.132.0.34.
constexpr std::uint8_t kP256Oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::uint8_t kP384Oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
const Curve kCurves[] = {
    {"P-256", kP256Oid, 32},
    {"P-384", kP384Oid, 48},
};

struct BnDeleter {
  void operator()(BIGNUM* b) const noexcept { BN_clear_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnDeleter>;
struct CtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const noexcept { EVP_PKEY_CTX_free(c); }
};
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, CtxDeleter>;
struct BldDeleter {
  void operator()(OSSL_PARAM_BLD* b) const noexcept { OSSL_PARAM_BLD_free(b); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
};
struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};

Bn bn_from(std::span<const std::uint8_t> b) {
  return Bn(BN_bin2bn(b.data(), static_cast<int>(b.size()), nullptr));
}

bool get_bn(EVP_PKEY* key, const char* name, Bytes& out, std::size_t pad = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) return false;
  Bn bn(raw);
  std::size_t len = static_cast<std::size_t>(BN_num_bytes(bn.get()));
  if (pad != 0) {
    if (len > pad) return false;
    len = pad;
  }
  if (len == 0) len = 1;
  out.assign(len, 0);
  return BN_bn2binpad(bn.get(), out.data(), static_cast<int>(len)) == static_cast<int>(len);
}

Pkey from_params(const char* type, OSSL_PARAM_BLD* bld, int selection) {
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld));
  if (!params) return nullptr;
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, selection, params.get()) != 1) {
    return nullptr;
  }
  return Pkey(key);
}

}  // namespace

std::span<const Curve> supported_curves() { return kCurves; }

const Curve* curve_from_params(std::span<const std::uint8_t> ec_params) {
  for (const Curve& c : kCurves) {
    if (ec_params.size() == c.oid.size() &&
        std::memcmp(ec_params.data(), c.oid.data(), c.oid.size()) == 0) {
      return &c;
    }
  }
  return nullptr;
}

bool random_bytes(std::span<std::uint8_t> out) {
  return out.empty() || RAND_bytes(out.data(), static_cast<int>(out.size())) == 1;
}

bool pbkdf2(std::string_view pin, std::span<const std::uint8_t> salt, std::uint32_t iterations,
            Bytes& out) {
  out.assign(32, 0);
  return PKCS5_PBKDF2_HMAC(pin.data(), static_cast<int>(pin.size()), salt.data(),
                           static_cast<int>(salt.size()), static_cast<int>(iterations),
                           EVP_sha256(), 32, out.data()) == 1;
}

bool sha256(std::span<const std::uint8_t> data, std::uint8_t (&out)[32]) {
  unsigned len = 0;
  return EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr) == 1 && len == 32;
}

bool hmac_sha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data,
                 std::uint8_t (&out)[32]) {
  std::size_t len = 0;
  return EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                   data.data(), data.size(), out, sizeof out, &len) != nullptr &&
         len == 32;
}

bool seal(std::span<const std::uint8_t> key, std::span<const std::uint8_t> aad,
          std::span<const std::uint8_t> plain, Bytes& out) {
  if (key.size() != 32) return false;
  out.assign(kSealOverhead + plain.size(), 0);
  std::uint8_t* nonce = out.data();
  std::uint8_t* ct = out.data() + 12;
  std::uint8_t* tag = ct + plain.size();
  if (!random_bytes({nonce, 12})) return false;
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return false;
  }
  if (!plain.empty() &&
      EVP_EncryptUpdate(ctx.get(), ct, &len, plain.data(), static_cast<int>(plain.size())) != 1) {
    return false;
  }
  if (EVP_EncryptFinal_ex(ctx.get(), ct + plain.size(), &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, tag) != 1) {
    return false;
  }
  return true;
}

bool open(std::span<const std::uint8_t> key, std::span<const std::uint8_t> aad,
          std::span<const std::uint8_t> sealed, Bytes& out) {
  if (key.size() != 32 || sealed.size() < kSealOverhead) return false;
  const std::size_t ct_len = sealed.size() - kSealOverhead;
  const std::uint8_t* nonce = sealed.data();
  const std::uint8_t* ct = sealed.data() + 12;
  std::uint8_t tag[16];
  std::memcpy(tag, ct + ct_len, 16);
  out.assign(ct_len, 0);
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return false;
  }
  if (ct_len != 0 &&
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, ct, static_cast<int>(ct_len)) != 1) {
    return false;
  }
  std::uint8_t scratch[16];
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), scratch, &len) != 1) {
    out.clear();
    return false;
  }
  return true;
}

Pkey generate_ec(const Curve& curve) {
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve.name));
}

Pkey generate_rsa(unsigned bits, std::span<const std::uint8_t> public_exponent) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), static_cast<int>(bits)) != 1) {
    return nullptr;
  }
  if (!public_exponent.empty()) {
    Bn e = bn_from(public_exponent);
    if (!e || EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx.get(), e.get()) != 1) return nullptr;
  }
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &key) != 1) return nullptr;
  return Pkey(key);
}

bool export_ec(EVP_PKEY* key, EcKeyParts& out) {
  char group[32] = {};
  std::size_t glen = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                     &glen) != 1) {
    return false;
  }
  out.curve = nullptr;
  for (const Curve& c : kCurves) {
    // OpenSSL may answer with the SEC name; map both spellings.
    if (std::strcmp(group, c.name) == 0 ||
        (c.field_bytes == 32 && std::strcmp(group, "prime256v1") == 0) ||
        (c.field_bytes == 48 && std::strcmp(group, "secp384r1") == 0)) {
      out.curve = &c;
    }
  }
  if (out.curve == nullptr) return false;
  std::uint8_t point[1 + 2 * 66];
  std::size_t plen = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                      sizeof point, &plen) != 1) {
    return false;
  }
  out.point.assign(point, point + plen);
  out.scalar.clear();
  BIGNUM* priv = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &priv) == 1) {
    Bn p(priv);
    out.scalar.assign(out.curve->field_bytes, 0);
    if (BN_bn2binpad(p.get(), out.scalar.data(), static_cast<int>(out.scalar.size())) < 0) {
      return false;
    }
  }
  return true;
}

bool export_rsa(EVP_PKEY* key, RsaKeyParts& out) {
  if (!get_bn(key, OSSL_PKEY_PARAM_RSA_N, out.n) || !get_bn(key, OSSL_PKEY_PARAM_RSA_E, out.e)) {
    return false;
  }
  out.d.clear();
  if (get_bn(key, OSSL_PKEY_PARAM_RSA_D, out.d)) {
    return get_bn(key, OSSL_PKEY_PARAM_RSA_FACTOR1, out.p) &&
           get_bn(key, OSSL_PKEY_PARAM_RSA_FACTOR2, out.q) &&
           get_bn(key, OSSL_PKEY_PARAM_RSA_EXPONENT1, out.dp) &&
           get_bn(key, OSSL_PKEY_PARAM_RSA_EXPONENT2, out.dq) &&
           get_bn(key, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, out.qinv);
  }
  return true;
}

Pkey import_ec(const EcKeyParts& parts) {
  if (parts.curve == nullptr) return nullptr;
  std::unique_ptr<OSSL_PARAM_BLD, BldDeleter> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, parts.curve->name, 0) !=
          1) {
    return nullptr;
  }
  if (!parts.point.empty() &&
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, parts.point.data(),
                                       parts.point.size()) != 1) {
    return nullptr;
  }
  Bn priv;
  Bytes derived_point;
  if (!parts.scalar.empty()) {
    if (parts.scalar.size() > parts.curve->field_bytes) return nullptr;
    priv = bn_from(view(parts.scalar));
    if (!priv || BN_is_zero(priv.get()) ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv.get()) != 1) {
      return nullptr;
    }
    // A private key object carries no point (CKA_EC_POINT belongs to the public key), but a
    // complete key pair lets OpenSSL check it and use its full signing path: derive Q = d*G.
    if (parts.point.empty()) {
      EC_GROUP* group = EC_GROUP_new_by_curve_name(parts.curve->field_bytes == 32 ? NID_X9_62_prime256v1
                                                                                 : NID_secp384r1);
      EC_POINT* q = group == nullptr ? nullptr : EC_POINT_new(group);
      bool ok = q != nullptr && BN_cmp(priv.get(), EC_GROUP_get0_order(group)) < 0 &&
                EC_POINT_mul(group, q, priv.get(), nullptr, nullptr, nullptr) == 1;
      if (ok) {
        derived_point.assign(1 + 2 * parts.curve->field_bytes, 0);
        ok = EC_POINT_point2oct(group, q, POINT_CONVERSION_UNCOMPRESSED, derived_point.data(),
                                derived_point.size(), nullptr) == derived_point.size();
      }
      EC_POINT_free(q);
      EC_GROUP_free(group);
      if (!ok || OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                                  derived_point.data(), derived_point.size()) != 1) {
        return nullptr;
      }
    }
  }
  if (parts.point.empty() && parts.scalar.empty()) return nullptr;
  const int selection = parts.scalar.empty() ? EVP_PKEY_PUBLIC_KEY : EVP_PKEY_KEYPAIR;
  Pkey key = from_params("EC", bld.get(), selection);
  if (key && parts.scalar.empty()) {
    // fromdata does not check that the point is on the curve; a public key check does.
    PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  }
  return key;
}

Pkey import_rsa(const RsaKeyParts& parts) {
  if (parts.n.empty() || parts.e.empty()) return nullptr;
  std::unique_ptr<OSSL_PARAM_BLD, BldDeleter> bld(OSSL_PARAM_BLD_new());
  if (!bld) return nullptr;
  Bn n = bn_from(view(parts.n)), e = bn_from(view(parts.e));
  if (!n || !e || BN_is_zero(n.get()) || BN_is_zero(e.get()) ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return nullptr;
  }
  std::array<Bn, 6> crt;
  Bn d;
  if (!parts.d.empty()) {
    d = bn_from(view(parts.d));
    if (!d || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_D, d.get()) != 1) {
      return nullptr;
    }
    const Bytes* in[6] = {&parts.p, &parts.q, &parts.dp, &parts.dq, &parts.qinv, nullptr};
    const char* names[5] = {OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_FACTOR2,
                            OSSL_PKEY_PARAM_RSA_EXPONENT1, OSSL_PKEY_PARAM_RSA_EXPONENT2,
                            OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    bool all = true;
    for (int i = 0; i < 5; ++i) all = all && !in[i]->empty();
    if (all) {
      for (int i = 0; i < 5; ++i) {
        crt[static_cast<std::size_t>(i)] = bn_from(view(*in[i]));
        if (!crt[static_cast<std::size_t>(i)] ||
            OSSL_PARAM_BLD_push_BN(bld.get(), names[i], crt[static_cast<std::size_t>(i)].get()) !=
                1) {
          return nullptr;
        }
      }
    }
  }
  return from_params("RSA", bld.get(), parts.d.empty() ? EVP_PKEY_PUBLIC_KEY : EVP_PKEY_KEYPAIR);
}

int key_bits(EVP_PKEY* key) { return EVP_PKEY_get_bits(key); }

Bytes der_octet_string(std::span<const std::uint8_t> content) {
  // Header first, then one sized construction (GCC 12 at -O3 misreads a push_back sequence here
  // as an overflow).
  std::uint8_t header[4] = {0x04, 0, 0, 0};
  std::size_t h = 1;
  if (content.size() < 0x80) {
    header[h++] = static_cast<std::uint8_t>(content.size());
  } else if (content.size() < 0x100) {
    header[h++] = 0x81;
    header[h++] = static_cast<std::uint8_t>(content.size());
  } else {
    header[h++] = 0x82;
    header[h++] = static_cast<std::uint8_t>(content.size() >> 8);
    header[h++] = static_cast<std::uint8_t>(content.size());
  }
  Bytes out(h + content.size());
  std::memcpy(out.data(), header, h);
  if (!content.empty()) std::memcpy(out.data() + h, content.data(), content.size());
  return out;
}

bool point_from_ec_point_attribute(std::span<const std::uint8_t> attr, Bytes& point) {
  // DER OCTET STRING (the spec's form) ...
  if (attr.size() >= 2 && attr[0] == 0x04) {
    std::size_t len = 0, hdr = 0;
    if (attr[1] < 0x80) {
      len = attr[1];
      hdr = 2;
    } else if (attr[1] == 0x81 && attr.size() >= 3) {
      len = attr[2];
      hdr = 3;
    }
    if (hdr != 0 && hdr + len == attr.size() && len > 0 && attr[hdr] == 0x04) {
      point.assign(attr.begin() + static_cast<std::ptrdiff_t>(hdr), attr.end());
      return true;
    }
  }
  // ... or a raw uncompressed point.
  if (!attr.empty() && attr[0] == 0x04 && attr.size() % 2 == 1) {
    point.assign(attr.begin(), attr.end());
    return true;
  }
  return false;
}

bool parse_certificate(std::span<const std::uint8_t> der, Bytes& subject, Bytes& issuer,
                       Bytes& serial) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (cert == nullptr) return false;
  bool ok = p == der.data() + der.size();
  auto encode = [](auto* obj, auto fn, Bytes& out) {
    unsigned char* buf = nullptr;
    const int len = fn(obj, &buf);
    if (len <= 0) return false;
    out.assign(buf, buf + len);
    OPENSSL_free(buf);
    return true;
  };
  ok = ok && encode(X509_get_subject_name(cert), i2d_X509_NAME, subject) &&
       encode(X509_get_issuer_name(cert), i2d_X509_NAME, issuer) &&
       encode(X509_get0_serialNumber(cert), i2d_ASN1_INTEGER, serial);
  X509_free(cert);
  return ok;
}

}  // namespace edgekit::pkcs11::token
