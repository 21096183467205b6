// Shared pieces of the pki sources: errors, hex, DER writing, PEM blocks, names, times, keys.
#include "openssl.hpp"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <algorithm>
#include <ctime>
#include <string_view>
#include <utility>

namespace edgekit::pki {

const char* to_string(Errc code) noexcept {
  switch (code) {
    case Errc::Malformed: return "malformed input";
    case Errc::InvalidArgument: return "invalid argument";
    case Errc::UnsupportedKey: return "unsupported key";
    case Errc::BadSignature: return "signature does not verify";
    case Errc::KeyMismatch: return "key mismatch";
    case Errc::NotCa: return "issuer is not a CA";
    case Errc::Expired: return "certificate expired";
    case Errc::NotYetValid: return "certificate not yet valid";
    case Errc::UnknownIssuer: return "unknown issuer";
    case Errc::Revoked: return "certificate revoked";
    case Errc::Untrusted: return "certificate not trusted";
    case Errc::Token: return "token error";
    case Errc::NotFound: return "not found in the token";
    case Errc::Crypto: return "cryptographic library failure";
  }
  return "unknown pki error";
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (auto b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

Result<Bytes> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) {
    return fail(Error{Errc::InvalidArgument, detail::quote(hex) + ": an odd number of hex digits", {}});
  }
  Bytes out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return fail(Error{Errc::InvalidArgument, detail::quote(hex) + ": not hex", {}});
    }
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  std::uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(bytes.data(), bytes.size(), digest);
  return to_hex(digest);
}

Result<std::string> public_key_pem(std::span<const std::uint8_t> spki) {
  auto key = detail::pkey_of_spki(spki);
  detail::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!key) return fail(detail::make_error(Errc::Malformed, "not a DER SubjectPublicKeyInfo"));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    return fail(detail::openssl_error(Errc::Crypto, "cannot write the public key as PEM"));
  }
  return detail::bio_text(bio.get());
}

namespace detail {

Error make_error(Errc code, std::string message) {
  ERR_clear_error();
  return Error{code, std::move(message), std::nullopt};
}

Error openssl_error(Errc code, std::string message) {
  const unsigned long e = ERR_peek_last_error();
  if (e != 0) {
    if (const char* reason = ERR_reason_error_string(e)) message += std::string(": ") + reason;
  }
  return make_error(code, std::move(message));
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string quote(std::string_view text) {
  // Appended piecewise: GCC 12's -Wrestrict misreads "'" + std::string at -O3.
  std::string out;
  out.reserve(text.size() + 2);
  out += '\'';
  out += text;
  out += '\'';
  return out;
}

std::string pem_text(const char* label, std::span<const std::uint8_t> der) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio(bio.get(), label, "", der.data(), static_cast<long>(der.size())) <= 0) {
    ERR_clear_error();
    return {};
  }
  return bio_text(bio.get());
}

std::string quoted_name(const X509_NAME* name) {
  return quote(from_x509_name(name).to_string());
}

std::string time_text(std::int64_t epoch_seconds) {
  const auto t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return "?";
  char buf[40];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) return "?";
  return buf;
}

bool epoch_of(const ASN1_TIME* t, std::int64_t& out) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return false;
  out = static_cast<std::int64_t>(::timegm(&tm));
  return true;
}

Result<std::vector<Bytes>> pem_bodies(std::span<const std::uint8_t> input,
                                      std::initializer_list<std::string_view> labels,
                                      std::size_t max) {
  if (input.size() > static_cast<std::size_t>(INT32_MAX)) {
    return fail(make_error(Errc::Malformed, "input too large"));
  }
  BioPtr bio(BIO_new_mem_buf(input.data(), static_cast<int>(input.size())));
  if (!bio) return fail(make_error(Errc::Crypto, "out of memory"));
  std::vector<Bytes> out;
  for (std::size_t block = 1; out.size() < max; ++block) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
        return fail(make_error(Errc::Malformed, "PEM block " + std::to_string(block) +
                                                    " is damaged (bad base64, or no END line)"));
      }
      break;
    }
    bool match = false;
    for (auto l : labels) match = match || l == name;
    if (match) out.emplace_back(data, data + len);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    if (match && out.back().empty()) {
      return fail(make_error(Errc::Malformed, "PEM block " + std::to_string(block) + " is empty"));
    }
  }
  ERR_clear_error();
  if (out.empty()) {
    return fail(make_error(Errc::Malformed, "no PEM " + std::string(*labels.begin()) + " block"));
  }
  return out;
}

Result<Bytes> der_body(std::span<const std::uint8_t> input,
                       std::initializer_list<std::string_view> labels, const char* what) {
  const std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  if (text.find("-----BEGIN ") == std::string_view::npos) {
    if (input.empty()) return fail(make_error(Errc::Malformed, std::string("empty input: no ") + what));
    return Bytes(input.begin(), input.end());
  }
  auto bodies = pem_bodies(input, labels, 1);
  if (!bodies) return fail(bodies.error());
  return std::move(bodies->front());
}

Result<NamePtr> to_x509_name(const Name& name) {
  NamePtr out(X509_NAME_new());
  if (!out) return fail(make_error(Errc::Crypto, "out of memory"));
  for (const auto& e : name.entries) {
    if (OBJ_txt2nid(e.field.c_str()) == NID_undef) {
      return fail(make_error(Errc::InvalidArgument,
                             "unknown name field '" + e.field +
                                 "' (fields: CN, O, OU, C, ST, L, serialNumber, ... or an OID)"));
    }
    if (X509_NAME_add_entry_by_txt(out.get(), e.field.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(e.value.data()),
                                   static_cast<int>(e.value.size()), -1, 0) != 1) {
      return fail(openssl_error(Errc::InvalidArgument,
                                "bad value '" + e.value + "' for name field '" + e.field + "'"));
    }
  }
  return out;
}

Name from_x509_name(const X509_NAME* name) {
  Name out;
  const int n = X509_NAME_entry_count(name);
  for (int i = 0; i < n; ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    const ASN1_OBJECT* obj = X509_NAME_ENTRY_get_object(e);
    NameEntry entry;
    const int nid = OBJ_obj2nid(obj);
    if (nid != NID_undef && OBJ_nid2sn(nid) != nullptr) {
      entry.field = OBJ_nid2sn(nid);
    } else {
      char buf[128];
      const int len = OBJ_obj2txt(buf, sizeof buf, obj, 1);
      entry.field = len > 0 ? std::string(buf, std::min<std::size_t>(static_cast<std::size_t>(len), sizeof buf - 1)) : "?";
    }
    unsigned char* utf8 = nullptr;
    const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (len >= 0 && utf8 != nullptr) entry.value.assign(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
    OPENSSL_free(utf8);
    out.entries.push_back(std::move(entry));
  }
  ERR_clear_error();
  return out;
}

Result<PkeyPtr> read_private_key_pem(std::string_view pem) {
  if (pem.size() > static_cast<std::size_t>(INT32_MAX)) {
    return fail(make_error(Errc::Malformed, "input too large"));
  }
  // A read-only memory BIO over the caller's bytes: no copy of the PEM text is made here.
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr pkey(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr,
                                             [](char*, int, int, void*) { return 0; }, nullptr)
                   : nullptr);
  if (!pkey) return fail(openssl_error(Errc::Malformed, "no unencrypted PEM private key"));
  return pkey;
}

namespace {

// OpenSSL 3.0 turns DER SPKI into a key and back through its decoder and encoder frameworks,
// which build a context by walking every registered decoder/encoder on each call: measured in
// the fleet simulator, those walks were 44 % of the CPU of provisioning a device by claim, the
// elliptic-curve arithmetic 6 %. EC keys on the named curves P-256 and P-384 (every key edgekit
// makes) take a direct path instead: the SPKI's fixed DER around the curve and the point
// [RFC 5480 2], the key from (group, point) through the key manager. Anything else (RSA, other
// curves, explicit parameters, non-canonical DER) goes through d2i_PUBKEY / i2d_PUBKEY as before.
struct EcCurveDer {
  const char* group;     // OpenSSL's group name
  std::size_t point_len;  // an uncompressed point: 0x04 || X || Y
  std::span<const std::uint8_t> prefix;  // SEQUENCE { AlgorithmIdentifier, BIT STRING hdr, 0 }
};
// SEQUENCE (89) { SEQUENCE (19) { id-ecPublicKey, prime256v1 }, BIT STRING (66) 0 unused bits }
constexpr std::uint8_t kP256SpkiPrefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                            0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                            0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
// SEQUENCE (118) { SEQUENCE (16) { id-ecPublicKey, secp384r1 }, BIT STRING (98) 0 unused bits }
constexpr std::uint8_t kP384SpkiPrefix[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86,
                                            0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
                                            0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00};
constexpr EcCurveDer kEcCurves[] = {{"prime256v1", 65, kP256SpkiPrefix},
                                    {"secp384r1", 97, kP384SpkiPrefix}};

PkeyPtr ec_public_key(const char* group, std::span<const std::uint8_t> point) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                        const_cast<std::uint8_t*>(point.data()), point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* raw = nullptr;
  // The key manager checks that the point is on the curve, as d2i_PUBKEY does.
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  return PkeyPtr(raw);
}

}  // namespace

PkeyPtr pkey_of_spki(std::span<const std::uint8_t> spki) {
  if (spki.empty() || spki.size() > static_cast<std::size_t>(INT32_MAX)) return nullptr;
  for (const EcCurveDer& c : kEcCurves) {
    if (spki.size() == c.prefix.size() + c.point_len &&
        std::equal(c.prefix.begin(), c.prefix.end(), spki.begin())) {
      const auto point = spki.subspan(c.prefix.size());
      if (point[0] != 0x04) break;  // not uncompressed: the general path
      return ec_public_key(c.group, point);
    }
  }
  const unsigned char* p = spki.data();
  PkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
  if (key && p != spki.data() + spki.size()) key.reset();
  if (!key) ERR_clear_error();
  return key;
}

std::optional<KeyAlgorithm> key_algorithm_of(const EVP_PKEY* key) {
  if (key == nullptr) return std::nullopt;
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &len) != 1) {
      ERR_clear_error();
      return std::nullopt;
    }
    const int nid = OBJ_sn2nid(group) != NID_undef ? OBJ_sn2nid(group) : OBJ_ln2nid(group);
    if (nid == NID_X9_62_prime256v1) return KeyAlgorithm::EcP256;
    if (nid == NID_secp384r1) return KeyAlgorithm::EcP384;
    return std::nullopt;
  }
  if (EVP_PKEY_is_a(key, "RSA")) {
    switch (EVP_PKEY_get_bits(key)) {
      case 2048: return KeyAlgorithm::Rsa2048;
      case 3072: return KeyAlgorithm::Rsa3072;
      case 4096: return KeyAlgorithm::Rsa4096;
      default: return std::nullopt;
    }
  }
  return std::nullopt;
}

Bytes spki_of(EVP_PKEY* key) {
  if (key != nullptr && EVP_PKEY_is_a(key, "EC")) {
    char group[32] = {};
    std::uint8_t point[97];
    std::size_t group_len = 0, point_len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &group_len) == 1 &&
        EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                        sizeof point, &point_len) == 1) {
      for (const EcCurveDer& c : kEcCurves) {
        if (std::string_view(group, group_len) == c.group && point_len == c.point_len &&
            point[0] == 0x04) {
          Bytes out(c.prefix.begin(), c.prefix.end());
          out.insert(out.end(), point, point + point_len);
          return out;
        }
      }
    }
    ERR_clear_error();  // another curve or form: the encoder below
  }
  return der_of([&](unsigned char** p) { return i2d_PUBKEY(key, p); });
}

namespace {
constexpr std::uint8_t kEcdsaSha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x04, 0x03, 0x02};
constexpr std::uint8_t kEcdsaSha384[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x04, 0x03, 0x03};
constexpr std::uint8_t kSha256Rsa[] = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                       0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};
}  // namespace

std::span<const std::uint8_t> algorithm_identifier(SignatureAlgorithm algorithm) {
  switch (algorithm) {
    case SignatureAlgorithm::EcdsaSha256: return kEcdsaSha256;
    case SignatureAlgorithm::EcdsaSha384: return kEcdsaSha384;
    case SignatureAlgorithm::RsaPkcs1Sha256: return kSha256Rsa;
  }
  return kEcdsaSha256;
}

int signature_nid(SignatureAlgorithm algorithm) {
  switch (algorithm) {
    case SignatureAlgorithm::EcdsaSha256: return NID_ecdsa_with_SHA256;
    case SignatureAlgorithm::EcdsaSha384: return NID_ecdsa_with_SHA384;
    case SignatureAlgorithm::RsaPkcs1Sha256: return NID_sha256WithRSAEncryption;
  }
  return NID_undef;
}

std::optional<SignatureAlgorithm> signature_algorithm_of_nid(int nid) {
  if (nid == NID_ecdsa_with_SHA256) return SignatureAlgorithm::EcdsaSha256;
  if (nid == NID_ecdsa_with_SHA384) return SignatureAlgorithm::EcdsaSha384;
  if (nid == NID_sha256WithRSAEncryption) return SignatureAlgorithm::RsaPkcs1Sha256;
  return std::nullopt;
}

void append_tlv(Bytes& out, std::uint8_t tag, std::span<const std::uint8_t> content) {
  out.push_back(tag);
  const std::size_t n = content.size();
  // [X.690 8.1.3] short form below 128, else the number of length bytes, then the length.
  if (n < 0x80) {
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    std::uint8_t len[sizeof(std::size_t)];
    std::size_t count = 0;
    for (std::size_t v = n; v != 0; v >>= 8) len[count++] = static_cast<std::uint8_t>(v & 0xff);
    out.push_back(static_cast<std::uint8_t>(0x80 | count));
    while (count > 0) out.push_back(len[--count]);
  }
  out.insert(out.end(), content.begin(), content.end());
}

Bytes sequence(std::initializer_list<std::span<const std::uint8_t>> parts) {
  Bytes body;
  for (auto p : parts) body.insert(body.end(), p.begin(), p.end());
  Bytes out;
  append_tlv(out, 0x30, body);
  return out;
}

Bytes signed_structure(std::span<const std::uint8_t> tbs, const Signature& signature) {
  // A BIT STRING whose first content byte counts the unused bits: none.
  Bytes bits{0x00};
  bits.insert(bits.end(), signature.value.begin(), signature.value.end());
  Bytes bit_string;
  append_tlv(bit_string, 0x03, bits);
  return sequence({tbs, algorithm_identifier(signature.algorithm), bit_string});
}

Bytes time_der(std::int64_t epoch) {
  AsnTimePtr t(ASN1_TIME_set(nullptr, static_cast<std::time_t>(epoch)));
  if (!t) return {};
  return der_of([&](unsigned char** p) { return i2d_ASN1_TIME(t.get(), p); });
}

Result<Bytes> serial_der(std::string_view hex) {
  const std::string text(hex);
  auto bad = [&](const char* why) {
    return fail(make_error(Errc::InvalidArgument, "serial '" + text + "': " + why));
  };
  if (text.empty() || text.size() > 40 || text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return bad("want 1 to 40 hex digits");
  }
  BIGNUM* bn = nullptr;
  if (BN_hex2bn(&bn, text.c_str()) != static_cast<int>(text.size())) {
    BN_free(bn);
    return bad("not hex");
  }
  const bool zero = BN_is_zero(bn);
  AsnIntPtr i(zero ? nullptr : BN_to_ASN1_INTEGER(bn, nullptr));
  BN_free(bn);
  if (zero) return bad("a serial is a positive number (RFC 5280 4.1.2.2)");
  if (!i) return fail(make_error(Errc::Crypto, "out of memory"));
  return der_of([&](unsigned char** p) { return i2d_ASN1_INTEGER(i.get(), p); });
}

std::string integer_hex(const ASN1_INTEGER* value) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(value, nullptr);
  if (bn == nullptr) {
    ERR_clear_error();
    return "";
  }
  Bytes mag(static_cast<std::size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, mag.data());
  const bool negative = BN_is_negative(bn) != 0;
  BN_free(bn);
  if (mag.empty()) return "00";
  std::string out = negative ? "-" : "";
  out += to_hex(mag);
  return out;
}

Bytes key_identifier(std::span<const std::uint8_t> spki) {
  const unsigned char* p = spki.data();
  X509_PUBKEY* pub = d2i_X509_PUBKEY(nullptr, &p, static_cast<long>(spki.size()));
  const unsigned char* bits = nullptr;
  int len = 0;
  Bytes out;
  if (pub != nullptr && X509_PUBKEY_get0_param(nullptr, &bits, &len, nullptr, pub) == 1 &&
      bits != nullptr && len > 0) {
    out.resize(SHA_DIGEST_LENGTH);
    SHA1(bits, static_cast<std::size_t>(len), out.data());
  }
  X509_PUBKEY_free(pub);
  ERR_clear_error();
  return out;
}

}  // namespace detail
}  // namespace edgekit::pki
