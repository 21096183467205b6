// Keys in a PKCS#11 token: the public half, generation, and signatures made inside the token.
#include <edgekit/pki/token.hpp>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "openssl.hpp"

namespace edgekit::pki {
namespace {

using detail::make_error;
using detail::PkeyPtr;
using detail::PkeyCtxPtr;
using BnPtr = std::unique_ptr<BIGNUM, detail::Deleter<BN_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, detail::Deleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, detail::Deleter<OSSL_PARAM_free>>;
using ObjPtr = std::unique_ptr<ASN1_OBJECT, detail::Deleter<ASN1_OBJECT_free>>;
using OctetPtr = std::unique_ptr<ASN1_OCTET_STRING, detail::Deleter<ASN1_OCTET_STRING_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, detail::Deleter<ECDSA_SIG_free>>;

// [v2.40 2.3.3] CKA_EC_PARAMS of the named curves a key generator asks for.
constexpr std::uint8_t kP256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::uint8_t kP384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

// [RFC 8017 9.2 note 1] DER DigestInfo prefix for SHA-256, for modules that only offer raw
// CKM_RSA_PKCS.
constexpr std::uint8_t kSha256DigestInfo[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                              0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                              0x01, 0x05, 0x00, 0x04, 0x20};

Error token_error(const pkcs11::Error& e, const std::string& what) {
  Error out{e.cause == pkcs11::Cause::NotFound ? Errc::NotFound : Errc::Token,
            what + ": " + e.message(), e};
  ERR_clear_error();
  return out;
}

std::optional<Bytes> try_attribute(pkcs11::Session& s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t) {
  auto v = s.attribute(o, t);
  if (!v) return std::nullopt;
  return std::move(*v);
}

Result<Bytes> need_attribute(pkcs11::Session& s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t,
                             const char* name) {
  auto v = s.attribute(o, t);
  if (!v) return fail(token_error(v.error(), std::string("the token would not give ") + name));
  return std::move(*v);
}

/// The NID of the named curve in a DER CKA_EC_PARAMS, NID_undef for anything else.
int curve_nid(std::span<const std::uint8_t> params) {
  const unsigned char* p = params.data();
  ObjPtr oid(d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(params.size())));
  if (!oid || p != params.data() + params.size()) {
    ERR_clear_error();
    return NID_undef;
  }
  return OBJ_obj2nid(oid.get());
}

/// The uncompressed point inside CKA_EC_POINT. The spec asks for a DER OCTET STRING around it;
/// some modules store the bare point, which also starts with 0x04, so the length decides.
std::optional<Bytes> unwrap_ec_point(std::span<const std::uint8_t> value, int nid) {
  std::size_t field = 0;
  if (nid == NID_X9_62_prime256v1) field = 32;
  else if (nid == NID_secp384r1) field = 48;
  else if (nid == NID_secp521r1) field = 66;
  if (field != 0 && value.size() == 1 + 2 * field && value[0] == 0x04) {
    return Bytes(value.begin(), value.end());
  }
  const unsigned char* p = value.data();
  OctetPtr os(d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(value.size())));
  if (!os || p != value.data() + value.size()) {
    ERR_clear_error();
    return std::nullopt;
  }
  const auto* d = ASN1_STRING_get0_data(os.get());
  return Bytes(d, d + ASN1_STRING_length(os.get()));
}

Result<Bytes> spki_from_params(const char* type, ParamBldPtr& bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return fail(detail::openssl_error(Errc::Malformed, std::string("OpenSSL rejects the token's ") +
                                                           type + " public key attributes"));
  }
  PkeyPtr key(raw);
  Bytes spki = detail::spki_of(key.get());
  if (spki.empty()) return fail(detail::openssl_error(Errc::Malformed, "cannot encode the token's public key"));
  return spki;
}

bool mechanism_missing(const pkcs11::Error& e) {
  return e.cause == pkcs11::Cause::Module &&
         (e.rv == CKR_MECHANISM_INVALID || e.rv == CKR_KEY_TYPE_INCONSISTENT);
}

}  // namespace

Result<Bytes> token_public_key(pkcs11::Session& s, CK_OBJECT_HANDLE private_key) {
  auto key_type_bytes = need_attribute(s, private_key, CKA_KEY_TYPE, "CKA_KEY_TYPE");
  if (!key_type_bytes) return fail(key_type_bytes.error());
  CK_KEY_TYPE key_type = CKK_VENDOR_DEFINED;
  if (key_type_bytes->size() == sizeof key_type) {
    std::memcpy(&key_type, key_type_bytes->data(), sizeof key_type);
  }
  // The public half lives in the public key object of the pair: same CKA_ID, else same label.
  std::optional<CK_OBJECT_HANDLE> pub;
  const auto id = try_attribute(s, private_key, CKA_ID);
  const auto label = try_attribute(s, private_key, CKA_LABEL);
  if (id && !id->empty()) {
    if (auto h = s.find_one({CKO_PUBLIC_KEY, std::nullopt, *id})) pub = *h;
  }
  if (!pub && label && !label->empty()) {
    if (auto h = s.find_one({CKO_PUBLIC_KEY, std::string(label->begin(), label->end()), std::nullopt})) {
      pub = *h;
    }
  }
  if (key_type == CKK_EC) {
    std::optional<Bytes> point_attr;
    CK_OBJECT_HANDLE from = private_key;
    if (pub) {
      from = *pub;
    } else {
      // Some modules keep the point on the private key as well.
      point_attr = try_attribute(s, private_key, CKA_EC_POINT);
      if (!point_attr) {
        pkcs11::Error e;
        e.cause = pkcs11::Cause::NotFound;
        e.detail = "no public key object with the private key's CKA_ID or CKA_LABEL";
        return fail(Error{Errc::NotFound,
                          "the token holds no public key object for this EC private key (same "
                          "id or label), and the private key carries no CKA_EC_POINT",
                          e});
      }
    }
    auto params = need_attribute(s, from, CKA_EC_PARAMS, "CKA_EC_PARAMS");
    if (!params) return fail(params.error());
    if (!point_attr) {
      auto p = need_attribute(s, from, CKA_EC_POINT, "CKA_EC_POINT");
      if (!p) return fail(p.error());
      point_attr = std::move(*p);
    }
    const int nid = curve_nid(*params);
    if (nid == NID_undef) {
      return fail(make_error(Errc::UnsupportedKey, "the key's CKA_EC_PARAMS is not a named curve"));
    }
    auto point = unwrap_ec_point(*point_attr, nid);
    if (!point) return fail(make_error(Errc::Malformed, "the key's CKA_EC_POINT is malformed"));
    ParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!bld ||
        OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, OBJ_nid2sn(nid), 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point->data(),
                                         point->size()) != 1) {
      return fail(make_error(Errc::Crypto, "out of memory"));
    }
    return spki_from_params("EC", bld);
  }
  if (key_type == CKK_RSA) {
    // An RSA private key object also carries the (public) modulus and exponent.
    const CK_OBJECT_HANDLE from = pub.value_or(private_key);
    auto n = need_attribute(s, from, CKA_MODULUS, "CKA_MODULUS");
    if (!n) return fail(n.error());
    auto e = need_attribute(s, from, CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT");
    if (!e) return fail(e.error());
    BnPtr bn_n(BN_bin2bn(n->data(), static_cast<int>(n->size()), nullptr));
    BnPtr bn_e(BN_bin2bn(e->data(), static_cast<int>(e->size()), nullptr));
    ParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!bn_n || !bn_e || !bld ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
      return fail(make_error(Errc::Crypto, "out of memory"));
    }
    return spki_from_params("RSA", bld);
  }
  return fail(make_error(Errc::UnsupportedKey, "the key is neither EC nor RSA (CKA_KEY_TYPE " +
                                                   std::to_string(key_type) + ")"));
}

Result<pkcs11::KeyPair> generate_token_key(pkcs11::Session& session, KeyAlgorithm algorithm,
                                           std::string_view label,
                                           std::span<const std::uint8_t> id) {
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ULONG bits = algorithm == KeyAlgorithm::Rsa4096   ? 4096
                  : algorithm == KeyAlgorithm::Rsa3072 ? 3072
                                                       : 2048;
  CK_BYTE exponent[] = {0x01, 0x00, 0x01};
  auto* label_ptr = const_cast<char*>(label.data());
  auto* id_ptr = const_cast<std::uint8_t*>(id.data());
  std::vector<CK_ATTRIBUTE> pub{
      {CKA_TOKEN, &yes, 1},      {CKA_PRIVATE, &no, 1},
      {CKA_VERIFY, &yes, 1},     {CKA_LABEL, label_ptr, label.size()},
      {CKA_ID, id_ptr, id.size()},
  };
  // [v2.40 4.9] the private key can sign and nothing else; it never leaves the token.
  std::vector<CK_ATTRIBUTE> priv{
      {CKA_TOKEN, &yes, 1},       {CKA_PRIVATE, &yes, 1},
      {CKA_SIGN, &yes, 1},        {CKA_SENSITIVE, &yes, 1},
      {CKA_EXTRACTABLE, &no, 1},  {CKA_LABEL, label_ptr, label.size()},
      {CKA_ID, id_ptr, id.size()},
  };
  CK_MECHANISM mech{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  if (algorithm == KeyAlgorithm::EcP256 || algorithm == KeyAlgorithm::EcP384) {
    const auto params = algorithm == KeyAlgorithm::EcP256 ? std::span<const std::uint8_t>(kP256)
                                                          : std::span<const std::uint8_t>(kP384);
    pub.push_back({CKA_EC_PARAMS, const_cast<std::uint8_t*>(params.data()), params.size()});
  } else {
    mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
    pub.push_back({CKA_MODULUS_BITS, &bits, sizeof bits});
    pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof exponent});
  }
  pkcs11::KeyPair out;
  const auto& f = session.functions();
  const CK_RV rv = f.C_GenerateKeyPair(session.handle(), &mech, pub.data(), pub.size(), priv.data(),
                                       priv.size(), &out.public_key, &out.private_key);
  if (rv != CKR_OK) {
    pkcs11::Error e;
    e.rv = rv;
    e.function = "C_GenerateKeyPair";
    return fail(token_error(e, std::string("the token refused to generate an ") +
                                   to_string(algorithm) + " key pair"));
  }
  return out;
}

namespace {

// A secret's bytes that wipe themselves (OPENSSL_cleanse: a memset the compiler may not drop).
struct SecretBytes {
  Bytes bytes;
  SecretBytes() = default;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes() {
    if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
  }
};

struct BnClearFree {
  void operator()(BIGNUM* b) const noexcept { BN_clear_free(b); }
};

// A key parameter as big-endian bytes (`pad`: at least that many, zero-padded in front: EC
// private scalars have the field's size). False when the key has no such parameter.
bool bn_param(const EVP_PKEY* key, const char* name, SecretBytes& out, int pad = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) return false;
  std::unique_ptr<BIGNUM, BnClearFree> bn(raw);
  const int size = std::max(BN_num_bytes(bn.get()), pad);
  out.bytes.assign(static_cast<std::size_t>(size), 0);
  return BN_bn2binpad(bn.get(), out.bytes.data(), size) == size;
}

Result<CK_OBJECT_HANDLE> create_object(pkcs11::Session& session, std::vector<CK_ATTRIBUTE>& tmpl,
                                       const char* what) {
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  const CK_RV rv =
      session.functions().C_CreateObject(session.handle(), tmpl.data(), tmpl.size(), &handle);
  if (rv != CKR_OK) {
    pkcs11::Error e;
    e.rv = rv;
    e.function = "C_CreateObject";
    return fail(token_error(e, std::string("the token refused to import the ") + what));
  }
  return handle;
}

}  // namespace

Result<pkcs11::KeyPair> import_private_key(pkcs11::Session& session, std::string_view pem,
                                           std::string_view label,
                                           std::span<const std::uint8_t> id) {
  auto key = detail::read_private_key_pem(pem);
  if (!key) return fail(key.error());
  const auto algorithm = detail::key_algorithm_of(key->get());
  if (!algorithm) {
    return fail(make_error(Errc::UnsupportedKey, "the private key is not one of EC P-256, "
                                                 "P-384 or RSA 2048/3072/4096"));
  }
  CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY, pub_class = CKO_PUBLIC_KEY;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  auto* label_ptr = const_cast<char*>(label.data());
  auto* id_ptr = const_cast<std::uint8_t*>(id.data());
  auto bytes = [](Bytes& b) { return static_cast<void*>(b.data()); };
  const bool ec = *algorithm == KeyAlgorithm::EcP256 || *algorithm == KeyAlgorithm::EcP384;
  CK_KEY_TYPE key_type = ec ? CKK_EC : CKK_RSA;
  // [v2.40 4.9] as generate_token_key: sign only, never leaves the token.
  std::vector<CK_ATTRIBUTE> priv{
      {CKA_CLASS, &priv_class, sizeof priv_class}, {CKA_KEY_TYPE, &key_type, sizeof key_type},
      {CKA_TOKEN, &yes, 1},                        {CKA_PRIVATE, &yes, 1},
      {CKA_SIGN, &yes, 1},                         {CKA_SENSITIVE, &yes, 1},
      {CKA_EXTRACTABLE, &no, 1},                   {CKA_LABEL, label_ptr, label.size()},
      {CKA_ID, id_ptr, id.size()},
  };
  std::vector<CK_ATTRIBUTE> pub{
      {CKA_CLASS, &pub_class, sizeof pub_class}, {CKA_KEY_TYPE, &key_type, sizeof key_type},
      {CKA_TOKEN, &yes, 1},                      {CKA_PRIVATE, &no, 1},
      {CKA_VERIFY, &yes, 1},                     {CKA_LABEL, label_ptr, label.size()},
      {CKA_ID, id_ptr, id.size()},
  };
  // Every secret number lives in one of these until the end of the function, then is wiped.
  SecretBytes d, n, e, p, q, dp, dq, qinv;
  Bytes ec_params, ec_point;
  if (ec) {
    const auto params = *algorithm == KeyAlgorithm::EcP256 ? std::span<const std::uint8_t>(kP256)
                                                           : std::span<const std::uint8_t>(kP384);
    ec_params.assign(params.begin(), params.end());
    const int field = *algorithm == KeyAlgorithm::EcP256 ? 32 : 48;
    std::size_t point_len = 0;
    if (!bn_param(key->get(), OSSL_PKEY_PARAM_PRIV_KEY, d, field) ||
        EVP_PKEY_get_octet_string_param(key->get(), OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0,
                                        &point_len) != 1) {
      return fail(detail::openssl_error(Errc::Malformed, "the EC key has no private or public part"));
    }
    Bytes point(point_len);
    if (EVP_PKEY_get_octet_string_param(key->get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size(), &point_len) != 1 ||
        point_len > 127) {
      return fail(detail::openssl_error(Errc::Malformed, "the EC public point cannot be read"));
    }
    // [v2.40 2.3.3] CKA_EC_POINT is the DER OCTET STRING around the point (short form length:
    // an uncompressed P-384 point is 97 bytes).
    ec_point = {0x04, static_cast<std::uint8_t>(point_len)};
    ec_point.insert(ec_point.end(), point.begin(), point.begin() + point_len);
    priv.push_back({CKA_EC_PARAMS, bytes(ec_params), ec_params.size()});
    priv.push_back({CKA_VALUE, bytes(d.bytes), d.bytes.size()});
    pub.push_back({CKA_EC_PARAMS, bytes(ec_params), ec_params.size()});
    pub.push_back({CKA_EC_POINT, bytes(ec_point), ec_point.size()});
  } else {
    if (!bn_param(key->get(), OSSL_PKEY_PARAM_RSA_N, n) ||
        !bn_param(key->get(), OSSL_PKEY_PARAM_RSA_E, e) ||
        !bn_param(key->get(), OSSL_PKEY_PARAM_RSA_D, d)) {
      return fail(detail::openssl_error(Errc::Malformed, "the RSA key lacks n, e or d"));
    }
    priv.push_back({CKA_MODULUS, bytes(n.bytes), n.bytes.size()});
    priv.push_back({CKA_PUBLIC_EXPONENT, bytes(e.bytes), e.bytes.size()});
    priv.push_back({CKA_PRIVATE_EXPONENT, bytes(d.bytes), d.bytes.size()});
    // The CRT parts are optional in PKCS#11 but make signing several times faster.
    if (bn_param(key->get(), OSSL_PKEY_PARAM_RSA_FACTOR1, p) &&
        bn_param(key->get(), OSSL_PKEY_PARAM_RSA_FACTOR2, q) &&
        bn_param(key->get(), OSSL_PKEY_PARAM_RSA_EXPONENT1, dp) &&
        bn_param(key->get(), OSSL_PKEY_PARAM_RSA_EXPONENT2, dq) &&
        bn_param(key->get(), OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qinv)) {
      priv.push_back({CKA_PRIME_1, bytes(p.bytes), p.bytes.size()});
      priv.push_back({CKA_PRIME_2, bytes(q.bytes), q.bytes.size()});
      priv.push_back({CKA_EXPONENT_1, bytes(dp.bytes), dp.bytes.size()});
      priv.push_back({CKA_EXPONENT_2, bytes(dq.bytes), dq.bytes.size()});
      priv.push_back({CKA_COEFFICIENT, bytes(qinv.bytes), qinv.bytes.size()});
    }
    pub.push_back({CKA_MODULUS, bytes(n.bytes), n.bytes.size()});
    pub.push_back({CKA_PUBLIC_EXPONENT, bytes(e.bytes), e.bytes.size()});
  }
  ERR_clear_error();
  pkcs11::KeyPair out;
  auto private_key = create_object(session, priv, "private key");
  if (!private_key) return fail(private_key.error());
  out.private_key = *private_key;
  auto public_key = create_object(session, pub, "public key");
  if (!public_key) {
    (void)session.destroy(out.private_key);  // never half a pair
    return fail(public_key.error());
  }
  out.public_key = *public_key;
  return out;
}

Result<CK_OBJECT_HANDLE> store_certificate(pkcs11::Session& session,
                                           const CertificateInfo& certificate,
                                           std::string_view label,
                                           std::span<const std::uint8_t> id) {
  auto cert = detail::x509_of(certificate);
  if (!cert) return fail(cert.error());
  const Bytes subject = detail::der_of([&](unsigned char** p) {
    return i2d_X509_NAME(X509_get_subject_name(cert->get()), p);
  });
  const Bytes issuer = detail::der_of([&](unsigned char** p) {
    return i2d_X509_NAME(X509_get_issuer_name(cert->get()), p);
  });
  // [v2.40 4.6.3] CKA_SERIAL_NUMBER: the DER encoding of the INTEGER.
  const Bytes serial = detail::der_of([&](unsigned char** p) {
    return i2d_ASN1_INTEGER(X509_get_serialNumber(cert->get()), p);
  });
  if (subject.empty() || issuer.empty() || serial.empty()) {
    return fail(detail::openssl_error(Errc::Malformed, "the certificate cannot be encoded again"));
  }
  CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
  CK_CERTIFICATE_TYPE type = CKC_X_509;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  auto bytes = [](std::span<const std::uint8_t> b) { return const_cast<std::uint8_t*>(b.data()); };
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &cls, sizeof cls},
      {CKA_CERTIFICATE_TYPE, &type, sizeof type},
      {CKA_TOKEN, &yes, 1},
      {CKA_PRIVATE, &no, 1},
      {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
      {CKA_ID, bytes(id), id.size()},
      {CKA_SUBJECT, bytes(subject), subject.size()},
      {CKA_ISSUER, bytes(issuer), issuer.size()},
      {CKA_SERIAL_NUMBER, bytes(serial), serial.size()},
      {CKA_VALUE, bytes(certificate.der), certificate.der.size()},
  };
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  const CK_RV rv = session.functions().C_CreateObject(session.handle(), tmpl,
                                                      sizeof tmpl / sizeof tmpl[0], &handle);
  if (rv != CKR_OK) {
    pkcs11::Error e;
    e.rv = rv;
    e.function = "C_CreateObject";
    return fail(token_error(e, "the token refused to store the certificate"));
  }
  return handle;
}

std::string ec_curve_name(std::span<const std::uint8_t> ec_params) {
  switch (const int nid = curve_nid(ec_params)) {
    case NID_X9_62_prime256v1: return "P-256";
    case NID_secp384r1: return "P-384";
    case NID_secp521r1: return "P-521";
    case NID_undef: return "unknown curve";
    default: return OBJ_nid2sn(nid);
  }
}

// --- TokenSigner ---------------------------------------------------------------------------

Result<TokenSigner> TokenSigner::create(pkcs11::Session& session, CK_OBJECT_HANDLE private_key) {
  auto spki = token_public_key(session, private_key);
  if (!spki) return fail(spki.error());
  const auto algorithm = key_algorithm_of(*spki);
  if (!algorithm) {
    return fail(make_error(Errc::UnsupportedKey, "the token's key is not EC P-256/P-384 or RSA "
                                                 "2048/3072/4096"));
  }
  return TokenSigner(session, private_key, std::move(*spki), *algorithm);
}

Result<Signature> TokenSigner::sign(std::span<const std::uint8_t> data) {
  Signature out;
  out.algorithm = signature_algorithm_for(algorithm_);
  const bool p384 = out.algorithm == SignatureAlgorithm::EcdsaSha384;
  std::uint8_t hash[SHA384_DIGEST_LENGTH];
  const std::size_t hash_len = p384 ? SHA384_DIGEST_LENGTH : SHA256_DIGEST_LENGTH;
  if (p384) SHA384(data.data(), data.size(), hash);
  else SHA256(data.data(), data.size(), hash);

  auto sign_with = [&](CK_MECHANISM_TYPE m, std::span<const std::uint8_t> input) {
    return session_->sign(key_, pkcs11::Mechanism{m, {}}, input);
  };
  const bool ec = out.algorithm != SignatureAlgorithm::RsaPkcs1Sha256;
  pkcs11::Result<Bytes> sig = fail(pkcs11::Error{});
  if (combined_mechanism_) {
    sig = sign_with(ec ? (p384 ? CKM_ECDSA_SHA384 : CKM_ECDSA_SHA256) : CKM_SHA256_RSA_PKCS, data);
    // SoftHSM2 2.6 (and our token for SHA-384) offer only the raw mechanisms: hash here, sign
    // the hash there, from now on.
    if (!sig && mechanism_missing(sig.error())) combined_mechanism_ = false;
  }
  if (!combined_mechanism_) {
    if (ec) {
      sig = sign_with(CKM_ECDSA, {hash, hash_len});
    } else {
      Bytes info(std::begin(kSha256DigestInfo), std::end(kSha256DigestInfo));
      info.insert(info.end(), hash, hash + SHA256_DIGEST_LENGTH);
      sig = sign_with(CKM_RSA_PKCS, info);
    }
  }
  if (!sig) return fail(token_error(sig.error(), "the token refused to sign"));
  if (!ec) {
    out.value = std::move(*sig);
    return out;
  }
  // [v2.40 2.3.1] the token returns r || s, each as long as the order; X.509 wants
  // [RFC 3279 2.2.3] Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }.
  const std::size_t half = p384 ? 48 : 32;
  if (sig->size() != 2 * half) {
    return fail(make_error(Errc::Token, "the token returned an ECDSA signature of " +
                                            std::to_string(sig->size()) + " bytes, not " +
                                            std::to_string(2 * half)));
  }
  EcdsaSigPtr es(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(sig->data(), static_cast<int>(half), nullptr);
  BIGNUM* sv = BN_bin2bn(sig->data() + half, static_cast<int>(half), nullptr);
  if (!es || !r || !sv || ECDSA_SIG_set0(es.get(), r, sv) != 1) {
    BN_free(r);
    BN_free(sv);
    return fail(make_error(Errc::Crypto, "out of memory"));
  }
  out.value = detail::der_of([&](unsigned char** p) { return i2d_ECDSA_SIG(es.get(), p); });
  if (out.value.empty()) return fail(detail::openssl_error(Errc::Crypto, "cannot encode the ECDSA signature"));
  return out;
}

}  // namespace edgekit::pki
