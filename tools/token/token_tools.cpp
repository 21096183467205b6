#include "token_tools.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <utility>

namespace edgekit::tools::token {
namespace {

// --- OpenSSL ownership -----------------------------------------------------------------------

template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>>;
using AlgorPtr = std::unique_ptr<X509_ALGOR, Deleter<X509_ALGOR_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using ObjPtr = std::unique_ptr<ASN1_OBJECT, Deleter<ASN1_OBJECT_free>>;
using OctetPtr = std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;
using BitStringPtr = std::unique_ptr<ASN1_BIT_STRING, Deleter<ASN1_BIT_STRING_free>>;

ToolError error(Exit exit, std::string message) { return ToolError{exit, std::move(message)}; }

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string padded_text(const CK_UTF8CHAR* s, std::size_t n) {
  std::string v(reinterpret_cast<const char*>(s), n);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\0')) v.pop_back();
  return v;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// [v2.40 2.3.3] CKA_EC_PARAMS of the named curves a key generator asks for.
constexpr std::uint8_t kP256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::uint8_t kP384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

// [RFC 8017 9.2 note 1] DER DigestInfo prefix for SHA-256, for modules that only offer raw
// CKM_RSA_PKCS.
constexpr std::uint8_t kSha256DigestInfo[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                              0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                              0x01, 0x05, 0x00, 0x04, 0x20};

/// The NID of the named curve in a DER CKA_EC_PARAMS, NID_undef for anything else.
int curve_nid(std::span<const std::uint8_t> params) {
  const unsigned char* p = params.data();
  ObjPtr oid(d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(params.size())));
  if (!oid || p != params.data() + params.size()) return NID_undef;
  return OBJ_obj2nid(oid.get());
}

std::string curve_label(int nid) {
  switch (nid) {
    case NID_X9_62_prime256v1: return "P-256";
    case NID_secp384r1: return "P-384";
    case NID_secp521r1: return "P-521";
    case NID_undef: return "unknown curve";
    default: return OBJ_nid2sn(nid);
  }
}

std::optional<CK_ULONG> ulong_of(const Bytes& b) {
  if (b.size() != sizeof(CK_ULONG)) return std::nullopt;
  CK_ULONG v = 0;
  std::memcpy(&v, b.data(), sizeof v);
  return v;
}

std::optional<bool> bool_of(const Bytes& b) {
  if (b.size() != 1) return std::nullopt;
  return b[0] != 0;
}

std::optional<Bytes> try_attribute(pkcs11::Session& s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t) {
  auto v = s.attribute(o, t);
  if (!v) return std::nullopt;
  return std::move(*v);
}

ToolResult<Bytes> need_attribute(pkcs11::Session& s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t,
                                 const char* what) {
  auto v = s.attribute(o, t);
  if (!v) return fail(explain(v.error(), std::string("read ") + what));
  return std::move(*v);
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
  if (!os || p != value.data() + value.size()) return std::nullopt;
  const auto* d = ASN1_STRING_get0_data(os.get());
  return Bytes(d, d + ASN1_STRING_length(os.get()));
}

ToolResult<PkeyPtr> pkey_from_params(const char* type, ParamBldPtr& bld) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return fail(error(Exit::Failure, std::string("OpenSSL rejects the token's ") + type +
                                         " public key attributes"));
  }
  return PkeyPtr(raw);
}

/// The public key of `private_key`'s pair as an OpenSSL key.
ToolResult<PkeyPtr> public_key_of(pkcs11::Session& s, CK_OBJECT_HANDLE private_key) {
  auto key_type_bytes = need_attribute(s, private_key, CKA_KEY_TYPE, "CKA_KEY_TYPE");
  if (!key_type_bytes) return fail(key_type_bytes.error());
  const auto key_type = ulong_of(*key_type_bytes);
  // The public half lives in the public key object of the pair: same CKA_ID, else same label.
  std::optional<CK_OBJECT_HANDLE> pub;
  const auto id = try_attribute(s, private_key, CKA_ID);
  const auto label = try_attribute(s, private_key, CKA_LABEL);
  if (id && !id->empty()) {
    auto h = s.find_one({CKO_PUBLIC_KEY, std::nullopt, *id});
    if (h) pub = *h;
  }
  if (!pub && label) {
    auto h = s.find_one({CKO_PUBLIC_KEY, std::string(label->begin(), label->end()), std::nullopt});
    if (h) pub = *h;
  }
  if (key_type == CKK_EC) {
    if (!pub) {
      return fail(error(Exit::NotFound,
                        "the token holds no public key object for this EC private key (same id "
                        "or label); a CSR needs it"));
    }
    auto params = need_attribute(s, *pub, CKA_EC_PARAMS, "CKA_EC_PARAMS");
    if (!params) return fail(params.error());
    auto point_attr = need_attribute(s, *pub, CKA_EC_POINT, "CKA_EC_POINT");
    if (!point_attr) return fail(point_attr.error());
    const int nid = curve_nid(*params);
    if (nid == NID_undef) return fail(error(Exit::Failure, "the key's CKA_EC_PARAMS is not a named curve"));
    auto point = unwrap_ec_point(*point_attr, nid);
    if (!point) return fail(error(Exit::Failure, "the key's CKA_EC_POINT is malformed"));
    ParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!bld ||
        OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, OBJ_nid2sn(nid), 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point->data(),
                                         point->size()) != 1) {
      return fail(error(Exit::Failure, "out of memory"));
    }
    return pkey_from_params("EC", bld);
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
    if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
      return fail(error(Exit::Failure, "out of memory"));
    }
    return pkey_from_params("RSA", bld);
  }
  return fail(error(Exit::Failure, "the key is neither EC nor RSA (CKA_KEY_TYPE " +
                                       std::to_string(key_type.value_or(~0UL)) + ")"));
}

ToolResult<Bytes> spki_der(EVP_PKEY* key) {
  const int len = i2d_PUBKEY(key, nullptr);
  if (len <= 0) return fail(error(Exit::Failure, "cannot encode the public key"));
  Bytes out(static_cast<std::size_t>(len));
  unsigned char* p = out.data();
  i2d_PUBKEY(key, &p);
  return out;
}

std::string pem_of_pubkey(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) return {};
  return bio_text(bio.get());
}

/// C_Sign with `mechanism`; CKR_MECHANISM_INVALID tells the caller to try its fallback.
pkcs11::Result<Bytes> sign_with(pkcs11::Session& s, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE m,
                                std::span<const std::uint8_t> data) {
  return s.sign(key, pkcs11::Mechanism{m, {}}, data);
}

bool mechanism_missing(const pkcs11::Error& e) {
  return e.cause == pkcs11::Cause::Module &&
         (e.rv == CKR_MECHANISM_INVALID || e.rv == CKR_KEY_TYPE_INCONSISTENT);
}

/// Signs `tbs` inside the token; returns the signature as X.509 wants it (DER ECDSA-Sig-Value
/// for EC) and the signature algorithm's NID. SHA-256, except SHA-384 for a P-384 key (the hash
/// that matches its strength, RFC 5480 4).
ToolResult<std::pair<Bytes, int>> sign_request(pkcs11::Session& s, CK_OBJECT_HANDLE key,
                                               EVP_PKEY* pub, std::span<const std::uint8_t> tbs) {
  std::uint8_t hash[SHA384_DIGEST_LENGTH];
  std::size_t hash_len = SHA256_DIGEST_LENGTH;
  if (EVP_PKEY_is_a(pub, "EC")) {
    char group[32] = {};
    EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, nullptr);
    const bool p384 = OBJ_sn2nid(group) == NID_secp384r1;
    if (p384) {
      SHA384(tbs.data(), tbs.size(), hash);
      hash_len = SHA384_DIGEST_LENGTH;
    } else {
      SHA256(tbs.data(), tbs.size(), hash);
    }
    auto sig = sign_with(s, key, p384 ? CKM_ECDSA_SHA384 : CKM_ECDSA_SHA256, tbs);
    // SoftHSM2 2.6, and our token for SHA-384, offer only raw CKM_ECDSA: hash here, sign the
    // hash there.
    if (!sig && mechanism_missing(sig.error())) sig = sign_with(s, key, CKM_ECDSA, {hash, hash_len});
    if (!sig) return fail(explain(sig.error(), "sign the request in the token"));
    // [v2.40 2.3.1] the token returns r || s, each as long as the order; X.509 wants
    // [RFC 3279 2.2.3] Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }.
    if (sig->empty() || sig->size() % 2 != 0) {
      return fail(error(Exit::Failure, "the token returned an ECDSA signature of odd length"));
    }
    const int half = static_cast<int>(sig->size() / 2);
    EcdsaSigPtr es(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(sig->data(), half, nullptr);
    BIGNUM* sv = BN_bin2bn(sig->data() + half, half, nullptr);
    if (!es || !r || !sv || ECDSA_SIG_set0(es.get(), r, sv) != 1) {
      BN_free(r);
      BN_free(sv);
      return fail(error(Exit::Failure, "out of memory"));
    }
    const int len = i2d_ECDSA_SIG(es.get(), nullptr);
    if (len <= 0) return fail(error(Exit::Failure, "cannot encode the ECDSA signature"));
    Bytes der(static_cast<std::size_t>(len));
    unsigned char* p = der.data();
    i2d_ECDSA_SIG(es.get(), &p);
    return std::pair<Bytes, int>{std::move(der), p384 ? NID_ecdsa_with_SHA384 : NID_ecdsa_with_SHA256};
  }
  SHA256(tbs.data(), tbs.size(), hash);
  auto sig = sign_with(s, key, CKM_SHA256_RSA_PKCS, tbs);
  if (!sig && mechanism_missing(sig.error())) {
    Bytes info(std::begin(kSha256DigestInfo), std::end(kSha256DigestInfo));
    info.insert(info.end(), hash, hash + SHA256_DIGEST_LENGTH);
    sig = sign_with(s, key, CKM_RSA_PKCS, info);
  }
  if (!sig) return fail(explain(sig.error(), "sign the request in the token"));
  return std::pair<Bytes, int>{std::move(*sig), NID_sha256WithRSAEncryption};
}

std::string time_text(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return "?";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string name_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  return bio_text(bio.get());
}

template <class F>
Bytes der_of(F&& encode) {
  const int len = encode(nullptr);
  if (len <= 0) return {};
  Bytes out(static_cast<std::size_t>(len));
  unsigned char* p = out.data();
  encode(&p);
  return out;
}

const char* class_name(CK_OBJECT_CLASS c) {
  switch (c) {
    case CKO_PRIVATE_KEY: return "private-key";
    case CKO_PUBLIC_KEY: return "public-key";
    case CKO_SECRET_KEY: return "secret-key";
    case CKO_CERTIFICATE: return "certificate";
    case CKO_DATA: return "data";
    default: return "object";
  }
}

std::string mechanism_name(CK_MECHANISM_TYPE m) {
  const auto name = pkcs11::mechanism_to_string(m);
  if (name != "CKM_<unknown>") return std::string(name);
  char buf[32];
  std::snprintf(buf, sizeof buf, "mechanism 0x%lx", static_cast<unsigned long>(m));
  return buf;
}

}  // namespace

// --- errors ----------------------------------------------------------------------------------

ToolError explain(const pkcs11::Error& e, std::string_view context) {
  ToolError out;
  out.exit = e.cause == pkcs11::Cause::NotFound ? Exit::NotFound : Exit::Failure;
  std::string advice;
  if (e.cause == pkcs11::Cause::Module) {
    switch (e.rv) {
      case CKR_PIN_INCORRECT:
        out.exit = Exit::PinRefused;
        advice = "wrong PIN; the token counts failed logins and locks the PIN after its limit";
        break;
      case CKR_PIN_LOCKED:
        out.exit = Exit::PinRefused;
        advice = "the PIN is locked after too many wrong tries; the security officer must set a "
                 "new user PIN (C_InitPIN, e.g. pkcs11-tool --init-pin) or re-initialise the "
                 "token with `edgekit token init --force`";
        break;
      case CKR_USER_PIN_NOT_INITIALIZED:
        out.exit = Exit::PinRefused;
        advice = "the token has no user PIN yet; run `edgekit token init`";
        break;
      case CKR_PIN_LEN_RANGE:
      case CKR_PIN_INVALID:
        out.exit = Exit::Usage;
        advice = "the token does not accept a PIN of this length or these characters (see "
                 "`edgekit token info` for its PIN lengths)";
        break;
      case CKR_TOKEN_NOT_RECOGNIZED:
      case CKR_TOKEN_NOT_PRESENT:
        advice = "the token is not initialised (or its files are damaged); run `edgekit token "
                 "init --label <label>`";
        break;
      case CKR_MECHANISM_INVALID:
      case CKR_MECHANISM_PARAM_INVALID:
        advice = "the module does not offer this mechanism or key size (see `edgekit token info`)";
        break;
      case CKR_USER_NOT_LOGGED_IN:
        advice = "this needs a login; give the PIN";
        break;
      case CKR_TOKEN_WRITE_PROTECTED:
      case CKR_SESSION_READ_ONLY:
        advice = "the token is write-protected";
        break;
      case CKR_DEVICE_MEMORY:
        advice = "the token is full";
        break;
      case CKR_KEY_HANDLE_INVALID:
      case CKR_OBJECT_HANDLE_INVALID:
        advice = "the object disappeared while in use (another program removed it?)";
        break;
      case CKR_USER_ALREADY_LOGGED_IN:
      case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
        advice = "another application holds a login on this token";
        break;
      case CKR_SESSION_EXISTS:
        advice = "another application has sessions open on this token; close it first";
        break;
      default:
        break;
    }
  }
  out.message = std::string(context) + ": " + e.message();
  if (!advice.empty()) out.message += " — " + advice;
  return out;
}

// --- secrets, parsing ------------------------------------------------------------------------

void wipe(std::string& s) noexcept {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

Secret::Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.clear(); }
Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    clear();
    value_ = std::move(other.value_);
    other.clear();
  }
  return *this;
}
Secret::~Secret() { clear(); }
void Secret::clear() noexcept { wipe(value_); }

std::optional<KeyType> parse_key_type(std::string_view t) {
  if (t == "ec-p256") return KeyType::EcP256;
  if (t == "ec-p384") return KeyType::EcP384;
  if (t == "rsa-2048") return KeyType::Rsa2048;
  if (t == "rsa-3072") return KeyType::Rsa3072;
  return std::nullopt;
}

const char* key_type_name(KeyType t) {
  switch (t) {
    case KeyType::EcP256: return "ec-p256";
    case KeyType::EcP384: return "ec-p384";
    case KeyType::Rsa2048: return "rsa-2048";
    case KeyType::Rsa3072: return "rsa-3072";
  }
  return "?";
}

ToolResult<Bytes> parse_id(std::string_view hex) {
  const std::string original(hex);
  if (hex.starts_with("0x") || hex.starts_with("0X")) hex.remove_prefix(2);
  std::string digits;
  for (char c : hex) {
    if (c == ':') continue;
    digits.push_back(c);
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (digits.empty() || digits.size() % 2 != 0 || digits.size() > 128) {
    return fail(error(Exit::Usage, "--id " + quoted(original) +
                                       ": want an even number of hex digits (1 to 64 bytes)"));
  }
  Bytes out;
  for (std::size_t i = 0; i < digits.size(); i += 2) {
    const int hi = nibble(digits[i]), lo = nibble(digits[i + 1]);
    if (hi < 0 || lo < 0) return fail(error(Exit::Usage, "--id " + quoted(original) + ": not hex"));
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

ToolResult<std::vector<std::pair<std::string, std::string>>> parse_subject(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  if (text.empty() || text.front() != '/') {
    return fail(error(Exit::Usage, "--subject " + quoted(text) +
                                       ": want the form /CN=thing-1/O=Example (a leading '/')"));
  }
  std::string part;
  auto flush = [&]() -> bool {
    const auto eq = part.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    out.emplace_back(part.substr(0, eq), part.substr(eq + 1));
    part.clear();
    return true;
  };
  for (std::size_t i = 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      part.push_back(text[++i]);
    } else if (c == '/') {
      if (!flush()) return fail(error(Exit::Usage, "--subject " + quoted(text) + ": component without field=value"));
    } else {
      part.push_back(c);
    }
  }
  if (!flush()) return fail(error(Exit::Usage, "--subject " + quoted(text) + ": component without field=value"));
  return out;
}

// --- module, slots ---------------------------------------------------------------------------

std::string default_module_path(const std::string& exe) {
  const std::string name = "libedgekit-pkcs11.so";
  const auto slash = exe.rfind('/');
  if (slash != std::string::npos) {
    const std::string dir = exe.substr(0, slash);
    std::vector<std::string> candidates{dir + "/" + name};
#ifdef EDGEKIT_INSTALL_LIBDIR
    candidates.push_back(dir + "/../" EDGEKIT_INSTALL_LIBDIR "/" + name);
#endif
    candidates.push_back(dir + "/../lib/" + name);
    for (const auto& c : candidates) {
      if (::access(c.c_str(), R_OK) == 0) return c;
    }
  }
  return name;  // the dynamic loader's search path
}

ToolResult<pkcs11::Module> load_module(const std::string& path) {
  auto m = pkcs11::Module::load(path);
  if (!m) {
    auto e = explain(m.error(), "load module");
    if (m.error().cause == pkcs11::Cause::LoadFailed) {
      e.message += " — give the module's path with --module";
    }
    return fail(std::move(e));
  }
  return std::move(*m);
}

ToolResult<CK_SLOT_ID> select_token(const pkcs11::Module& module,
                                    const std::optional<std::string>& label) {
  auto slots = module.slots(true);
  if (!slots) return fail(explain(slots.error(), "list slots"));
  std::vector<std::pair<CK_SLOT_ID, std::string>> initialised;
  bool any_uninitialised = false;
  for (CK_SLOT_ID slot : *slots) {
    auto info = module.token_info(slot);
    if (!info) continue;
    if ((info->flags & CKF_TOKEN_INITIALIZED) == 0) {
      any_uninitialised = true;
      continue;
    }
    initialised.emplace_back(slot, padded_text(info->label, sizeof info->label));
  }
  if (initialised.empty()) {
    return fail(error(Exit::NotFound,
                      std::string("no initialised token") +
                          (any_uninitialised ? " (the token is not initialised)" : "") +
                          "; run `edgekit token init --label <label> --so-pin <so-pin> --pin "
                          "<pin>` first"));
  }
  std::string names;
  for (const auto& [slot, name] : initialised) names += (names.empty() ? "" : ", ") + quoted(name);
  if (label) {
    for (const auto& [slot, name] : initialised) {
      if (name == *label) return slot;
    }
    return fail(error(Exit::NotFound, "no initialised token labelled " + quoted(*label) +
                                          " (initialised tokens: " + names +
                                          "); run `edgekit token init --label " + *label +
                                          "` to make one"));
  }
  if (initialised.size() > 1) {
    return fail(error(Exit::NotFound, "several tokens (" + names + "); choose one with --label"));
  }
  return initialised.front().first;
}

ToolResult<CK_SLOT_ID> init_token(const pkcs11::Module& module, std::optional<CK_SLOT_ID> slot,
                                  const std::string& label, std::string_view so_pin,
                                  std::string_view user_pin, bool force) {
  if (label.empty() || label.size() > 32) {
    return fail(error(Exit::Usage, "--label: a token label has 1 to 32 bytes"));
  }
  if (so_pin.empty() || user_pin.empty()) {
    return fail(error(Exit::Usage, "both the SO PIN and the user PIN are needed"));
  }
  auto slots = module.slots(true);
  if (!slots) return fail(explain(slots.error(), "list slots"));
  if (!slot) {
    // A second token with the same label would make every later --label ambiguous: the label
    // names the token to re-initialise (with --force), else the first free slot takes it.
    std::optional<CK_SLOT_ID> same_label, free_slot;
    for (CK_SLOT_ID s : *slots) {
      auto info = module.token_info(s);
      if (!info) continue;
      if ((info->flags & CKF_TOKEN_INITIALIZED) == 0) {
        if (!free_slot) free_slot = s;
      } else if (padded_text(info->label, sizeof info->label) == label) {
        same_label = s;
      }
    }
    if (same_label) {
      if (!force) {
        return fail(error(Exit::Usage, "token " + quoted(label) +
                                           " is already initialised; re-initialising erases "
                                           "every object on it: add --force (with its SO PIN)"));
      }
      slot = same_label;
    } else if (free_slot) {
      slot = free_slot;
    } else {
      return fail(error(Exit::NotFound, "no slot holds an uninitialised token; choose one with "
                                        "--slot (and --force to erase it)"));
    }
  } else {
    if (std::find(slots->begin(), slots->end(), *slot) == slots->end()) {
      return fail(error(Exit::NotFound, "no token in slot " + std::to_string(*slot)));
    }
    auto info = module.token_info(*slot);
    if (!info) return fail(explain(info.error(), "read token info"));
    if ((info->flags & CKF_TOKEN_INITIALIZED) != 0 && !force) {
      return fail(error(Exit::Usage, "the token in slot " + std::to_string(*slot) +
                                         " is already initialised; re-initialising erases every "
                                         "object on it: add --force (with its SO PIN)"));
    }
  }
  // Both PINs are checked against the token's limits before C_InitToken erases anything: a user
  // PIN that C_InitPIN refuses afterwards would leave a wiped token without one (issue 11, point
  // 5). The SO PIN itself is verified by C_InitToken before it erases.
  if (auto limits = module.token_info(*slot); limits) {
    for (const auto& [pin, what] : {std::pair{so_pin, "SO PIN"}, std::pair{user_pin, "user PIN"}}) {
      if (pin.size() < limits->ulMinPinLen || pin.size() > limits->ulMaxPinLen) {
        return fail(error(Exit::PinRefused,
                          std::string("the ") + what + " must have " +
                              std::to_string(limits->ulMinPinLen) + " to " +
                              std::to_string(limits->ulMaxPinLen) +
                              " bytes on this token; nothing was changed"));
      }
    }
  }
  if (auto st = module.init_token(*slot, so_pin, label); !st) {
    return fail(explain(st.error(), "initialise the token"));
  }
  // Some modules (SoftHSM2) move an initialised token to a new slot id: find it again.
  auto now = module.find_token(label);
  const CK_SLOT_ID at = now ? *now : *slot;
  auto session = module.open_session(at, true);
  if (!session) return fail(explain(session.error(), "open a session"));
  if (auto st = session->login(pkcs11::UserType::SecurityOfficer, so_pin); !st) {
    return fail(explain(st.error(), "log in as security officer"));
  }
  if (auto st = session->init_pin(user_pin); !st) return fail(explain(st.error(), "set the user PIN"));
  (void)session->logout();
  return at;
}

ToolResult<pkcs11::Session> open_user_session(const pkcs11::Module& module, CK_SLOT_ID slot,
                                              const std::optional<std::string_view>& pin,
                                              bool read_write) {
  auto session = module.open_session(slot, read_write);
  if (!session) return fail(explain(session.error(), "open a session"));
  if (pin) {
    if (auto st = session->login(pkcs11::UserType::User, *pin); !st) {
      // A login left over from another session of this process is a login all the same.
      if (st.error().rv != CKR_USER_ALREADY_LOGGED_IN) return fail(explain(st.error(), "log in"));
    }
  }
  return std::move(*session);
}

// --- keys --------------------------------------------------------------------------------

ToolResult<GeneratedKey> generate_key(pkcs11::Session& session, KeyType type,
                                      const std::string& key_label, Bytes id) {
  if (key_label.empty()) return fail(error(Exit::Usage, "--key-label must not be empty"));
  auto clash = session.find({CKO_PRIVATE_KEY, key_label, std::nullopt});
  if (!clash) return fail(explain(clash.error(), "look for existing keys"));
  if (!clash->empty()) {
    return fail(error(Exit::Usage, "a private key labelled " + quoted(key_label) +
                                       " exists already; choose another --key-label"));
  }
  if (id.empty()) {
    auto r = session.random(8);
    if (!r) return fail(explain(r.error(), "draw a random key id"));
    id = std::move(*r);
  } else {
    auto same_id = session.find({CKO_PRIVATE_KEY, std::nullopt, id});
    if (!same_id) return fail(explain(same_id.error(), "look for existing keys"));
    if (!same_id->empty()) {
      return fail(error(Exit::Usage, "a private key with id " + to_hex(id) +
                                         " exists already; choose another --id"));
    }
  }

  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ULONG bits = type == KeyType::Rsa3072 ? 3072 : 2048;
  CK_BYTE exponent[] = {0x01, 0x00, 0x01};
  auto* label_ptr = const_cast<char*>(key_label.data());
  std::vector<CK_ATTRIBUTE> pub{
      {CKA_TOKEN, &yes, 1},      {CKA_PRIVATE, &no, 1},
      {CKA_VERIFY, &yes, 1},     {CKA_LABEL, label_ptr, key_label.size()},
      {CKA_ID, id.data(), id.size()},
  };
  // [v2.40 4.9] the private key can sign and nothing else; it never leaves the token.
  std::vector<CK_ATTRIBUTE> priv{
      {CKA_TOKEN, &yes, 1},       {CKA_PRIVATE, &yes, 1},
      {CKA_SIGN, &yes, 1},        {CKA_SENSITIVE, &yes, 1},
      {CKA_EXTRACTABLE, &no, 1},  {CKA_LABEL, label_ptr, key_label.size()},
      {CKA_ID, id.data(), id.size()},
  };
  CK_MECHANISM mech{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  if (type == KeyType::EcP256 || type == KeyType::EcP384) {
    const auto params = type == KeyType::EcP256 ? std::span<const std::uint8_t>(kP256)
                                                : std::span<const std::uint8_t>(kP384);
    pub.push_back({CKA_EC_PARAMS, const_cast<std::uint8_t*>(params.data()), params.size()});
  } else {
    mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
    pub.push_back({CKA_MODULUS_BITS, &bits, sizeof bits});
    pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof exponent});
  }
  GeneratedKey out;
  const auto& f = session.functions();
  const CK_RV rv = f.C_GenerateKeyPair(session.handle(), &mech, pub.data(), pub.size(), priv.data(),
                                       priv.size(), &out.handles.public_key, &out.handles.private_key);
  if (rv != CKR_OK) {
    pkcs11::Error e;
    e.rv = rv;
    e.function = "C_GenerateKeyPair";
    return fail(explain(e, std::string("generate an ") + key_type_name(type) + " key pair"));
  }
  out.id = std::move(id);
  auto key = public_key_of(session, out.handles.private_key);
  if (!key) return fail(key.error());
  out.public_key_pem = pem_of_pubkey(key->get());
  return out;
}

ToolResult<CK_OBJECT_HANDLE> find_private_key(pkcs11::Session& session,
                                              const std::string& key_label) {
  auto found = session.find({CKO_PRIVATE_KEY, key_label, std::nullopt});
  if (!found) return fail(explain(found.error(), "look for the key"));
  if (found->empty()) {
    return fail(error(Exit::NotFound, "key label " + quoted(key_label) +
                                          " not found: no private key with that label on the "
                                          "token (see `edgekit token list`; a login is needed "
                                          "to see private keys)"));
  }
  if (found->size() > 1) {
    return fail(error(Exit::Usage, std::to_string(found->size()) + " private keys are labelled " +
                                       quoted(key_label) + "; remove the extra ones"));
  }
  return found->front();
}

ToolResult<Bytes> public_key_der(pkcs11::Session& session, CK_OBJECT_HANDLE private_key) {
  auto key = public_key_of(session, private_key);
  if (!key) return fail(key.error());
  return spki_der(key->get());
}

// --- CSR -------------------------------------------------------------------------------------

ToolResult<std::string> make_csr(pkcs11::Session& session, const std::string& key_label,
                                 std::string_view subject) {
  auto fields = parse_subject(subject);
  if (!fields) return fail(fields.error());
  auto key = find_private_key(session, key_label);
  if (!key) return fail(key.error());
  auto pub = public_key_of(session, *key);
  if (!pub) return fail(pub.error());

  ReqPtr req(X509_REQ_new());
  NamePtr name(X509_NAME_new());
  if (!req || !name) return fail(error(Exit::Failure, "out of memory"));
  for (const auto& [field, value] : *fields) {
    if (X509_NAME_add_entry_by_txt(name.get(), field.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                   0) != 1) {
      return fail(error(Exit::Usage, "--subject: unknown field " + quoted(field) +
                                         " or bad value (fields: CN, O, OU, C, ST, L, ...)"));
    }
  }
  // [RFC 2986 4.1] version 0; subject; SubjectPublicKeyInfo; no attributes.
  if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), name.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), pub->get()) != 1) {
    return fail(error(Exit::Failure, "cannot build the request"));
  }
  const Bytes tbs = der_of([&](unsigned char** p) { return i2d_re_X509_REQ_tbs(req.get(), p); });
  if (tbs.empty()) return fail(error(Exit::Failure, "cannot encode the request info"));

  auto signed_tbs = sign_request(session, *key, pub->get(), tbs);
  if (!signed_tbs) return fail(signed_tbs.error());
  auto& [signature, nid] = *signed_tbs;

  // [RFC 5758 3.2] ecdsa-with-SHA256/384 have no parameters; [RFC 4055 5]
  // sha256WithRSAEncryption has NULL.
  AlgorPtr alg(X509_ALGOR_new());
  BitStringPtr bits(ASN1_BIT_STRING_new());
  if (!alg || !bits ||
      X509_ALGOR_set0(alg.get(), OBJ_nid2obj(nid),
                      nid == NID_sha256WithRSAEncryption ? V_ASN1_NULL : V_ASN1_UNDEF, nullptr) != 1 ||
      X509_REQ_set1_signature_algo(req.get(), alg.get()) != 1 ||
      ASN1_BIT_STRING_set(bits.get(), signature.data(), static_cast<int>(signature.size())) != 1) {
    return fail(error(Exit::Failure, "cannot attach the signature"));
  }
  // A whole number of bytes: no unused bits at the end of the BIT STRING.
  bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
  bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
  X509_REQ_set0_signature(req.get(), bits.release());

  // The token signed what we meant it to sign, with the key we put in the request.
  if (X509_REQ_verify(req.get(), pub->get()) != 1) {
    return fail(error(Exit::Failure, "the request's signature made by the token does not verify "
                                     "with its public key (is the public key object the private "
                                     "key's pair?)"));
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return fail(error(Exit::Failure, "cannot write the request as PEM"));
  }
  return bio_text(bio.get());
}

// --- certificates ----------------------------------------------------------------------------

ToolResult<ImportedCertificate> import_certificate(pkcs11::Session& session,
                                                   const std::string& label, std::string_view pem,
                                                   std::optional<Bytes> id) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return fail(error(Exit::Usage, "--cert: not a PEM certificate"));
  if (label.empty()) return fail(error(Exit::Usage, "--label must not be empty"));

  EVP_PKEY* cert_key = X509_get0_pubkey(cert.get());
  if (cert_key == nullptr) return fail(error(Exit::Usage, "--cert: the certificate's public key is unreadable"));
  auto cert_spki = spki_der(cert_key);
  if (!cert_spki) return fail(cert_spki.error());

  // Which key does the certificate belong to?
  std::optional<CK_OBJECT_HANDLE> key;
  if (id) {
    auto k = session.find({CKO_PRIVATE_KEY, std::nullopt, *id});
    if (!k) return fail(explain(k.error(), "look for the key"));
    if (k->size() == 1) key = k->front();
  } else {
    auto k = session.find({CKO_PRIVATE_KEY, label, std::nullopt});
    if (!k) return fail(explain(k.error(), "look for the key"));
    if (k->size() > 1) {
      return fail(error(Exit::Usage, "several private keys are labelled " + quoted(label) +
                                         "; say which with --id"));
    }
    if (k->empty()) {
      // Any private key whose public key is the certificate's.
      auto all = session.find({CKO_PRIVATE_KEY, std::nullopt, std::nullopt});
      if (!all) return fail(explain(all.error(), "look for the key"));
      for (auto h : *all) {
        auto spki = public_key_der(session, h);
        if (spki && *spki == *cert_spki) {
          key = h;
          break;
        }
      }
      if (!key) {
        return fail(error(Exit::NotFound, "no private key labelled " + quoted(label) +
                                              " or matching the certificate's public key; give "
                                              "the key's id with --id (see `edgekit token list`)"));
      }
    } else {
      key = k->front();
    }
    auto key_id = need_attribute(session, *key, CKA_ID, "CKA_ID");
    if (!key_id) return fail(key_id.error());
    id = std::move(*key_id);
  }

  ImportedCertificate out;
  if (key) {
    auto spki = public_key_der(session, *key);
    if (!spki) return fail(spki.error());
    if (*spki != *cert_spki) {
      return fail(error(Exit::Usage, "the certificate's public key is not the public key of the "
                                     "private key with id " + to_hex(*id) +
                                     " (was the CSR made from another key?)"));
    }
    out.matches_key = true;
  }
  auto existing = session.find({CKO_CERTIFICATE, label, *id});
  if (!existing) return fail(explain(existing.error(), "look for certificates"));
  if (!existing->empty()) {
    return fail(error(Exit::Usage, "a certificate labelled " + quoted(label) + " with id " +
                                       to_hex(*id) + " is on the token already"));
  }

  const Bytes value = der_of([&](unsigned char** p) { return i2d_X509(cert.get(), p); });
  const Bytes subject = der_of([&](unsigned char** p) {
    return i2d_X509_NAME(X509_get_subject_name(cert.get()), p);
  });
  const Bytes issuer = der_of([&](unsigned char** p) {
    return i2d_X509_NAME(X509_get_issuer_name(cert.get()), p);
  });
  // [v2.40 4.6.3] CKA_SERIAL_NUMBER: the DER encoding of the INTEGER.
  const Bytes serial = der_of([&](unsigned char** p) {
    return i2d_ASN1_INTEGER(X509_get_serialNumber(cert.get()), p);
  });
  if (value.empty() || subject.empty() || issuer.empty() || serial.empty()) {
    return fail(error(Exit::Usage, "--cert: cannot re-encode the certificate"));
  }
  CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
  CK_CERTIFICATE_TYPE type = CKC_X_509;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  auto bytes = [](const Bytes& b) { return const_cast<std::uint8_t*>(b.data()); };
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &cls, sizeof cls},
      {CKA_CERTIFICATE_TYPE, &type, sizeof type},
      {CKA_TOKEN, &yes, 1},
      {CKA_PRIVATE, &no, 1},
      {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
      {CKA_ID, bytes(*id), id->size()},
      {CKA_SUBJECT, bytes(subject), subject.size()},
      {CKA_ISSUER, bytes(issuer), issuer.size()},
      {CKA_SERIAL_NUMBER, bytes(serial), serial.size()},
      {CKA_VALUE, bytes(value), value.size()},
  };
  const auto& f = session.functions();
  const CK_RV rv = f.C_CreateObject(session.handle(), tmpl, sizeof tmpl / sizeof tmpl[0], &out.handle);
  if (rv != CKR_OK) {
    pkcs11::Error e;
    e.rv = rv;
    e.function = "C_CreateObject";
    return fail(explain(e, "store the certificate"));
  }
  out.id = std::move(*id);
  out.subject = name_text(X509_get_subject_name(cert.get()));
  return out;
}

// --- list, info ------------------------------------------------------------------------------

ToolResult<std::vector<ObjectSummary>> list_objects(pkcs11::Session& session) {
  auto handles = session.find({});
  if (!handles) return fail(explain(handles.error(), "list objects"));
  std::vector<ObjectSummary> out;
  for (auto h : *handles) {
    ObjectSummary o;
    auto cls = try_attribute(session, h, CKA_CLASS);
    if (!cls || !ulong_of(*cls)) continue;
    o.object_class = *ulong_of(*cls);
    if (auto v = try_attribute(session, h, CKA_LABEL)) o.label.assign(v->begin(), v->end());
    if (auto v = try_attribute(session, h, CKA_ID)) o.id = std::move(*v);
    if (auto v = try_attribute(session, h, CKA_PRIVATE)) o.is_private = bool_of(*v);
    if (o.object_class == CKO_PRIVATE_KEY || o.object_class == CKO_PUBLIC_KEY ||
        o.object_class == CKO_SECRET_KEY) {
      const auto kt = try_attribute(session, h, CKA_KEY_TYPE);
      const auto key_type = kt ? ulong_of(*kt) : std::nullopt;
      if (key_type == CKK_EC) {
        auto params = try_attribute(session, h, CKA_EC_PARAMS);
        o.key_type = "EC " + curve_label(params ? curve_nid(*params) : NID_undef);
      } else if (key_type == CKK_RSA) {
        std::size_t bits = 0;
        if (auto mb = try_attribute(session, h, CKA_MODULUS_BITS); mb && ulong_of(*mb)) {
          bits = *ulong_of(*mb);
        } else if (auto n = try_attribute(session, h, CKA_MODULUS)) {
          bits = n->size() * 8;
        }
        o.key_type = "RSA " + std::to_string(bits);
      } else if (key_type == CKK_GENERIC_SECRET) {
        o.key_type = "generic secret";
      } else if (key_type == CKK_AES) {
        o.key_type = "AES";
      } else {
        o.key_type = "key type " + std::to_string(key_type.value_or(~0UL));
      }
      if (o.object_class != CKO_PUBLIC_KEY) {
        if (auto v = try_attribute(session, h, CKA_SENSITIVE)) o.sensitive = bool_of(*v);
        if (auto v = try_attribute(session, h, CKA_EXTRACTABLE)) o.extractable = bool_of(*v);
      }
    } else if (o.object_class == CKO_CERTIFICATE) {
      if (auto v = try_attribute(session, h, CKA_VALUE)) {
        const unsigned char* p = v->data();
        X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(v->size())));
        if (cert) {
          o.subject = name_text(X509_get_subject_name(cert.get()));
          o.not_after = time_text(X509_get0_notAfter(cert.get()));
        } else {
          o.subject = "(not an X.509 certificate)";
        }
      }
    }
    out.push_back(std::move(o));
  }
  // A plain loop: GCC 12 at -O3 misreads vector<uint8_t>'s operator< as a memcmp overread.
  auto id_less = [](const Bytes& a, const Bytes& b) {
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (a[i] != b[i]) return a[i] < b[i];
    }
    return a.size() < b.size();
  };
  std::sort(out.begin(), out.end(), [&](const ObjectSummary& a, const ObjectSummary& b) {
    if (a.id != b.id) return id_less(a.id, b.id);
    return a.object_class < b.object_class;
  });
  return out;
}

std::string format_object(const ObjectSummary& o) {
  auto yes_no = [](bool b) { return b ? "yes" : "no"; };
  char head[16];
  std::snprintf(head, sizeof head, "%-12s", class_name(o.object_class));
  std::string line = head;
  line += " id=" + (o.id.empty() ? std::string("-") : to_hex(o.id));
  line += " label=\"" + o.label + "\"";
  if (!o.key_type.empty()) line += " " + o.key_type;
  if (o.sensitive) line += std::string(" sensitive=") + yes_no(*o.sensitive);
  if (o.extractable) line += std::string(" extractable=") + yes_no(*o.extractable);
  if (o.object_class == CKO_CERTIFICATE) {
    line += " subject=\"" + o.subject + "\"";
    if (!o.not_after.empty()) line += " expires=" + o.not_after;
  }
  return line;
}

ToolResult<std::string> describe_module(const pkcs11::Module& module) {
  std::string out;
  char buf[256];
  auto info = module.info();
  if (!info) return fail(explain(info.error(), "read module info"));
  std::snprintf(buf, sizeof buf, "module: %s (%s) version %u.%u, Cryptoki %u.%u\n",
                padded_text(info->libraryDescription, sizeof info->libraryDescription).c_str(),
                padded_text(info->manufacturerID, sizeof info->manufacturerID).c_str(),
                info->libraryVersion.major, info->libraryVersion.minor,
                info->cryptokiVersion.major, info->cryptokiVersion.minor);
  out += buf;
  auto slots = module.slots(false);
  if (!slots) return fail(explain(slots.error(), "list slots"));
  const auto& f = module.functions();
  for (CK_SLOT_ID slot : *slots) {
    CK_SLOT_INFO si{};
    if (f.C_GetSlotInfo(slot, &si) != CKR_OK) continue;
    std::snprintf(buf, sizeof buf, "slot %lu: %s\n", static_cast<unsigned long>(slot),
                  padded_text(si.slotDescription, sizeof si.slotDescription).c_str());
    out += buf;
    if ((si.flags & CKF_TOKEN_PRESENT) == 0) {
      out += "  no token\n";
      continue;
    }
    auto ti = module.token_info(slot);
    if (!ti) {
      out += "  token: " + explain(ti.error(), "read token info").message + "\n";
      continue;
    }
    if ((ti->flags & CKF_TOKEN_INITIALIZED) == 0) {
      out += "  token: not initialised (run `edgekit token init`)\n";
    } else {
      out += "  token: label=\"" + padded_text(ti->label, sizeof ti->label) + "\"\n";
    }
    std::snprintf(buf, sizeof buf, "  manufacturer: %s, model: %s, serial: %s\n",
                  padded_text(ti->manufacturerID, sizeof ti->manufacturerID).c_str(),
                  padded_text(ti->model, sizeof ti->model).c_str(),
                  padded_text(ti->serialNumber, sizeof ti->serialNumber).c_str());
    out += buf;
    std::string flags;
    const std::pair<CK_FLAGS, const char*> kFlags[] = {
        {CKF_TOKEN_INITIALIZED, "initialised"},   {CKF_USER_PIN_INITIALIZED, "user-PIN-set"},
        {CKF_LOGIN_REQUIRED, "login-required"},   {CKF_RNG, "rng"},
        {CKF_WRITE_PROTECTED, "write-protected"}, {CKF_USER_PIN_COUNT_LOW, "user-PIN-count-low"},
        {CKF_USER_PIN_FINAL_TRY, "user-PIN-final-try"}, {CKF_USER_PIN_LOCKED, "user-PIN-LOCKED"},
        {CKF_SO_PIN_COUNT_LOW, "SO-PIN-count-low"}, {CKF_SO_PIN_LOCKED, "SO-PIN-LOCKED"},
    };
    for (const auto& [bit, name] : kFlags) {
      if ((ti->flags & bit) != 0) flags += (flags.empty() ? "" : ", ") + std::string(name);
    }
    std::snprintf(buf, sizeof buf, "  flags: %s; PIN length %lu..%lu\n", flags.c_str(),
                  static_cast<unsigned long>(ti->ulMinPinLen),
                  static_cast<unsigned long>(ti->ulMaxPinLen));
    out += buf;
    auto mechs = module.mechanisms(slot);
    if (!mechs) {
      out += "  mechanisms: " + explain(mechs.error(), "list").message + "\n";
      continue;
    }
    out += "  mechanisms:\n";
    for (auto m : *mechs) {
      CK_MECHANISM_INFO mi{};
      std::string what;
      if (f.C_GetMechanismInfo(slot, m, &mi) == CKR_OK) {
        const std::pair<CK_FLAGS, const char*> kUses[] = {
            {CKF_GENERATE_KEY_PAIR, "keygen"}, {CKF_SIGN, "sign"},   {CKF_VERIFY, "verify"},
            {CKF_DIGEST, "digest"},            {CKF_ENCRYPT, "encrypt"}, {CKF_DECRYPT, "decrypt"},
            {CKF_GENERATE, "generate"},        {CKF_DERIVE, "derive"},
        };
        for (const auto& [bit, name] : kUses) {
          if ((mi.flags & bit) != 0) what += (what.empty() ? "" : ",") + std::string(name);
        }
        if (mi.ulMaxKeySize != 0) {
          what += " keys " + std::to_string(mi.ulMinKeySize) + ".." + std::to_string(mi.ulMaxKeySize);
        }
      }
      std::snprintf(buf, sizeof buf, "    %-28s %s\n", mechanism_name(m).c_str(), what.c_str());
      out += buf;
    }
  }
  return out;
}

}  // namespace edgekit::tools::token
