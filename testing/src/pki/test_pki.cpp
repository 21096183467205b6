// The test PKI. See test_pki.hpp.
#include "edgekit/testing/test_pki.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <ctime>

namespace edgekit::testing {
namespace {

std::string openssl_error() {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

bool add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

bool write_pem(const std::string& path, X509* cert, EVP_PKEY* key, X509_CRL* crl) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  bool ok = true;
  if (cert != nullptr) ok = ok && PEM_write_X509(f, cert) == 1;
  if (key != nullptr) {
    ok = ok && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  }
  if (crl != nullptr) ok = ok && PEM_write_X509_CRL(f, crl) == 1;
  return std::fclose(f) == 0 && ok;
}

X509_NAME* make_name(const std::string& cn) {
  X509_NAME* n = X509_NAME_new();
  X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("edgekit tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return n;
}

}  // namespace

EVP_PKEY* generate_key(KeyType type) {
  switch (type) {
    case KeyType::EcP256: return EVP_EC_gen("P-256");
    case KeyType::EcP384: return EVP_EC_gen("P-384");
    case KeyType::Rsa2048: return EVP_RSA_gen(2048);
  }
  return nullptr;
}

TestCa::TestCa(std::string dir, std::string name) : dir_(std::move(dir)), name_(std::move(name)) {
  key_ = generate_key(KeyType::EcP256);
  cert_ = X509_new();
  if (key_ == nullptr || cert_ == nullptr) {
    error_ = "CA key: " + openssl_error();
    return;
  }
  X509_set_version(cert_, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert_), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert_), -86400);
  X509_gmtime_adj(X509_getm_notAfter(cert_), 3650L * 86400);
  X509_NAME* n = make_name(name_);
  X509_set_subject_name(cert_, n);
  X509_set_issuer_name(cert_, n);
  X509_NAME_free(n);
  X509_set_pubkey(cert_, key_);
  if (!add_ext(cert_, cert_, NID_basic_constraints, "critical,CA:TRUE") ||
      !add_ext(cert_, cert_, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_ext(cert_, cert_, NID_subject_key_identifier, "hash") ||
      X509_sign(cert_, key_, EVP_sha256()) == 0) {
    error_ = "CA certificate: " + openssl_error();
    return;
  }
  cert_file_ = dir_ + "/" + name_ + ".crt";
  if (!write_pem(cert_file_, cert_, nullptr, nullptr) ||
      !write_pem(dir_ + "/" + name_ + ".key", nullptr, key_, nullptr)) {
    error_ = "cannot write " + cert_file_;
  }
}

TestCa::~TestCa() {
  X509_free(cert_);
  EVP_PKEY_free(key_);
}

Issued TestCa::issue(const std::string& stem, const CertOptions& options) {
  EVP_PKEY* key = generate_key(options.key_type);
  if (key == nullptr) {
    error_ = "key: " + openssl_error();
    return {};
  }
  Issued out = sign_and_write(stem, key, true, options);
  EVP_PKEY_free(key);
  return out;
}

Issued TestCa::issue_for_public_key(const std::string& stem, EVP_PKEY* public_key,
                                    const CertOptions& options) {
  return sign_and_write(stem, public_key, false, options);
}

Issued TestCa::sign_and_write(const std::string& stem, EVP_PKEY* key, bool write_key,
                              const CertOptions& options) {
  if (!ok()) return {};
  X509* cert = X509_new();
  const long serial = next_serial_++;
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), static_cast<long>(options.not_before.count()));
  X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(options.not_after.count()));
  X509_NAME* n = make_name(options.common_name);
  for (const auto& [field, value] : options.subject_fields) {
    X509_NAME_add_entry_by_txt(n, field.c_str(), MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
  }
  X509_set_subject_name(cert, n);
  X509_NAME_free(n);
  X509_set_issuer_name(cert, X509_get_subject_name(cert_));
  X509_set_pubkey(cert, key);
  std::string san;
  for (const auto& d : options.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : options.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  bool ok = add_ext(cert, cert_, NID_basic_constraints, "critical,CA:FALSE") &&
            add_ext(cert, cert_, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
            add_ext(cert, cert_, NID_ext_key_usage, options.server ? "serverAuth" : "clientAuth") &&
            add_ext(cert, cert_, NID_authority_key_identifier, "keyid") &&
            (san.empty() || add_ext(cert, cert_, NID_subject_alt_name, san)) &&
            X509_sign(cert, key_, EVP_sha256()) != 0;
  Issued out;
  if (!ok) {
    error_ = "certificate " + stem + ": " + openssl_error();
  } else {
    out.cert_file = dir_ + "/" + stem + ".crt";
    out.serial = serial;
    if (!write_pem(out.cert_file, cert, nullptr, nullptr)) error_ = "cannot write " + out.cert_file;
    if (write_key) {
      out.key_file = dir_ + "/" + stem + ".key";
      if (!write_pem(out.key_file, nullptr, key, nullptr)) error_ = "cannot write " + out.key_file;
    }
  }
  X509_free(cert);
  return ok ? out : Issued{};
}

std::string TestCa::write_crl(const std::string& stem) {
  if (!ok()) return {};
  X509_CRL* crl = X509_CRL_new();
  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(cert_));
  ASN1_TIME* t = ASN1_TIME_adj(nullptr, std::time(nullptr), 0, -3600);
  X509_CRL_set1_lastUpdate(crl, t);
  ASN1_TIME_adj(t, std::time(nullptr), 1, 0);
  X509_CRL_set1_nextUpdate(crl, t);
  for (long serial : revoked_) {
    X509_REVOKED* r = X509_REVOKED_new();
    ASN1_INTEGER* s = ASN1_INTEGER_new();
    ASN1_INTEGER_set(s, serial);
    X509_REVOKED_set_serialNumber(r, s);
    ASN1_TIME_adj(t, std::time(nullptr), 0, -60);
    X509_REVOKED_set_revocationDate(r, t);
    X509_CRL_add0_revoked(crl, r);
    ASN1_INTEGER_free(s);
  }
  ASN1_TIME_free(t);
  X509_CRL_sort(crl);
  std::string path = dir_ + "/" + stem + ".crl";
  if (X509_CRL_sign(crl, key_, EVP_sha256()) == 0 || !write_pem(path, nullptr, nullptr, crl)) {
    error_ = "CRL: " + openssl_error();
    path.clear();
  }
  X509_CRL_free(crl);
  return path;
}

}  // namespace edgekit::testing
