// Seeds for the PKCS#11 fuzz targets, written by fuzz_seeds: object files and token records as
// the token writes them, and templates of every object kind C_CreateObject accepts.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "p11_fuzz.hpp"
#include "token/crypto.hpp"
#include "token/store.hpp"

#include "seeds.hpp"

namespace edgekit::fuzz {
namespace {

namespace tk = edgekit::pkcs11::token;
using Seed = std::vector<std::uint8_t>;
using WriteSeed = void (*)(const char*, const Seed&);

std::span<const std::uint8_t> ulong_bytes(const CK_ULONG& v) {
  return {reinterpret_cast<const std::uint8_t*>(&v), sizeof v};
}
std::span<const std::uint8_t> text(const char* s) {
  return {reinterpret_cast<const std::uint8_t*>(s), std::strlen(s)};
}

struct Template {
  Seed bytes;
  explicit Template(std::uint8_t login) { bytes.push_back(login); }
  Template& ul(CK_ATTRIBUTE_TYPE t, CK_ULONG v) {
    p11::encode_entry(bytes, t, ulong_bytes(v));
    return *this;
  }
  Template& b(CK_ATTRIBUTE_TYPE t, bool v) {
    const std::uint8_t x = v ? 1 : 0;
    p11::encode_entry(bytes, t, {&x, 1});
    return *this;
  }
  Template& raw(CK_ATTRIBUTE_TYPE t, std::span<const std::uint8_t> v) {
    p11::encode_entry(bytes, t, v);
    return *this;
  }
};

Seed der_of_cert() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 42);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("seed"), -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_sign(cert, key, EVP_sha256());
  const int len = i2d_X509(cert, nullptr);
  Seed out(static_cast<std::size_t>(len > 0 ? len : 0));
  unsigned char* p = out.data();
  i2d_X509(cert, &p);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace

void pkcs11_seeds(WriteSeed write) {
  // Templates.
  const auto curve = tk::supported_curves().front();
  tk::Pkey ec = tk::generate_ec(curve);
  tk::EcKeyParts ec_parts;
  tk::export_ec(ec.get(), ec_parts);
  const tk::Bytes point = tk::der_octet_string(tk::view(ec_parts.point));
  const auto params = curve.oid;
  const std::uint8_t exponent[] = {1, 0, 1};
  const Seed cert = der_of_cert();
  std::vector<Template> templates;
  templates.push_back(Template(0).ul(CKA_CLASS, CKO_DATA).b(CKA_TOKEN, true).raw(CKA_LABEL, text("data"))
                          .raw(CKA_VALUE, text("hello")).raw(CKA_APPLICATION, text("app")));
  templates.push_back(Template(1).ul(CKA_CLASS, CKO_CERTIFICATE).ul(CKA_CERTIFICATE_TYPE, CKC_X_509)
                          .b(CKA_TOKEN, true).raw(CKA_ID, text("\x01")).raw(CKA_VALUE, cert));
  templates.push_back(Template(1).ul(CKA_CLASS, CKO_PUBLIC_KEY).ul(CKA_KEY_TYPE, CKK_EC)
                          .raw(CKA_EC_PARAMS, params).raw(CKA_EC_POINT, tk::view(point)).b(CKA_VERIFY, true));
  templates.push_back(Template(1).ul(CKA_CLASS, CKO_PRIVATE_KEY).ul(CKA_KEY_TYPE, CKK_EC)
                          .raw(CKA_EC_PARAMS, params).raw(CKA_VALUE, tk::view(ec_parts.scalar))
                          .b(CKA_SIGN, true).b(CKA_SENSITIVE, true).b(CKA_PRIVATE, true));
  templates.push_back(Template(1).ul(CKA_CLASS, CKO_PRIVATE_KEY).ul(CKA_KEY_TYPE, CKK_EC)
                          .raw(CKA_EC_PARAMS, params).raw(CKA_VALUE, tk::view(ec_parts.scalar))
                          .b(CKA_SENSITIVE, false).b(CKA_EXTRACTABLE, true));
  tk::Pkey rsa = tk::generate_rsa(2048, exponent);
  tk::RsaKeyParts rsa_parts;
  tk::export_rsa(rsa.get(), rsa_parts);
  templates.push_back(Template(1).ul(CKA_CLASS, CKO_PUBLIC_KEY).ul(CKA_KEY_TYPE, CKK_RSA)
                          .raw(CKA_MODULUS, tk::view(rsa_parts.n)).raw(CKA_PUBLIC_EXPONENT, tk::view(rsa_parts.e)));
  templates.push_back(Template(1).ul(CKA_CLASS, CKO_PRIVATE_KEY).ul(CKA_KEY_TYPE, CKK_RSA)
                          .raw(CKA_MODULUS, tk::view(rsa_parts.n)).raw(CKA_PUBLIC_EXPONENT, tk::view(rsa_parts.e))
                          .raw(CKA_PRIVATE_EXPONENT, tk::view(rsa_parts.d)).raw(CKA_PRIME_1, tk::view(rsa_parts.p))
                          .raw(CKA_PRIME_2, tk::view(rsa_parts.q)).raw(CKA_EXPONENT_1, tk::view(rsa_parts.dp))
                          .raw(CKA_EXPONENT_2, tk::view(rsa_parts.dq)).raw(CKA_COEFFICIENT, tk::view(rsa_parts.qinv)));
  const std::uint8_t secret[32] = {7};
  templates.push_back(Template(1).ul(CKA_CLASS, CKO_SECRET_KEY).ul(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
                          .raw(CKA_VALUE, secret).b(CKA_SIGN, true));
  templates.push_back(Template(2).ul(CKA_CLASS, CKO_CERTIFICATE).ul(CKA_CERTIFICATE_TYPE, CKC_X_509)
                          .b(CKA_TRUSTED, true).raw(CKA_VALUE, cert));
  for (const auto& t : templates) write("fuzz_attribute_template", t.bytes);

  // Object files, as the token writes them, and their attribute payloads for modes 1 and 2.
  const std::span<const std::uint8_t> integrity(p11::kIntegrityKey), master(p11::kMasterKey);
  std::uint64_t id = 1;
  for (const auto& t : templates) {
    std::vector<std::vector<std::uint8_t>> values;
    const auto attrs = p11::decode_template({t.bytes.data() + 1, t.bytes.size() - 1}, values);
    tk::AttributeMap m;
    tk::merge_template(m, attrs);
    tk::set_bool(m, CKA_PRIVATE, tk::bool_or(m, CKA_PRIVATE, false));
    tk::StoredObject obj{id++, tk::bool_or(m, CKA_PRIVATE, false) ? tk::ObjectKind::Private : tk::ObjectKind::Public, m};
    tk::Bytes file;
    tk::encode_object_file(obj, integrity, master, file);
    Seed raw{static_cast<std::uint8_t>(p11::FileMode::RawObjectFile)};
    raw.insert(raw.end(), file.begin(), file.end());
    write("fuzz_token_file", raw);
    tk::Bytes payload;
    tk::encode_attributes(m, payload);
    for (auto mode : {p11::FileMode::PublicPayload, p11::FileMode::PrivatePayload}) {
      Seed s{static_cast<std::uint8_t>(mode)};
      s.insert(s.end(), payload.begin(), payload.end());
      write("fuzz_token_file", s);
    }
  }
  // Token records: fresh, with a user PIN, with failure counts.
  tk::TokenRecord r;
  std::memcpy(r.label, "seed token                      ", 32);
  std::memcpy(r.serial, "0123456789abcdef", 16);
  r.iterations = 2000;
  r.so_salt.assign(16, 1);
  r.so_sealed_key.assign(32 + tk::kSealOverhead, 2);
  r.integrity_key.assign(32, 3);
  for (int variant = 0; variant < 2; ++variant) {
    if (variant == 1) {
      r.user_pin_initialized = true;
      r.user_salt.assign(16, 4);
      r.user_sealed_key.assign(32 + tk::kSealOverhead, 5);
      r.user_failures = 2;
    }
    tk::Bytes file;
    tk::encode_token_record(r, file);
    Seed raw{static_cast<std::uint8_t>(p11::FileMode::RawTokenRecord)};
    raw.insert(raw.end(), file.begin(), file.end());
    write("fuzz_token_file", raw);
    Seed body{static_cast<std::uint8_t>(p11::FileMode::TokenRecordBody)};
    body.insert(body.end(), file.begin(), file.end() - 32);
    write("fuzz_token_file", body);
  }
}

}  // namespace edgekit::fuzz
