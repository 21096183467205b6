#include "admin/pem.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>

namespace edgekit::fleetd::admin {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

// The first certificate of `pem`, and whether another one follows it.
X509Ptr parse_one(std::string_view pem, bool& more) {
  more = false;
  if (pem.empty() || pem.size() > kMaxPem) return nullptr;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!bio) return nullptr;
  X509Ptr x(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  if (x) {
    X509* second = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    more = second != nullptr;
    X509_free(second);
  }
  BIO_free(bio);
  return x;
}

std::int64_t epoch_of(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace

Res<CertificateFacts> read_certificate(std::string_view pem) {
  if (pem.size() > kMaxPem) {
    return fail(Errc::InvalidArgument, "certificate PEM larger than 16 KB");
  }
  bool more = false;
  X509Ptr x = parse_one(pem, more);
  // OpenSSL keeps a queue of errors per thread; what failed here must not surface elsewhere.
  ERR_clear_error();
  if (!x) {
    return fail(Errc::InvalidArgument,
                "not a PEM certificate (expected -----BEGIN CERTIFICATE-----)");
  }
  if (more) return fail(Errc::InvalidArgument, "more than one certificate in the PEM");
  CertificateFacts f;
  unsigned char* der = nullptr;
  const int len = i2d_X509(x.get(), &der);
  if (len <= 0) return fail(Errc::InvalidArgument, "the certificate cannot be DER-encoded");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  const bool hashed = EVP_Digest(der, static_cast<std::size_t>(len), digest, &dlen, EVP_sha256(),
                                 nullptr) == 1;
  OPENSSL_free(der);
  if (!hashed) return fail(Errc::Internal, "SHA-256 failed");
  static const char* hex = "0123456789abcdef";
  for (unsigned int i = 0; i < dlen; ++i) {
    f.id += hex[digest[i] >> 4];
    f.id += hex[digest[i] & 15];
  }
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x.get()), nullptr)) {
    if (char* s = BN_bn2hex(bn)) {
      f.serial = s;
      OPENSSL_free(s);
    }
    BN_free(bn);
  }
  if (char* s = X509_NAME_oneline(X509_get_subject_name(x.get()), nullptr, 0)) {
    f.subject = s;
    OPENSSL_free(s);
  }
  f.not_before = epoch_of(X509_get0_notBefore(x.get()));
  f.not_after = epoch_of(X509_get0_notAfter(x.get()));
  f.is_ca = X509_check_ca(x.get()) == 1;
  ERR_clear_error();
  return f;
}

bool issued_by(std::string_view pem, std::string_view ca_pem) {
  bool more = false;
  X509Ptr cert = parse_one(pem, more);
  X509Ptr ca = parse_one(ca_pem, more);
  bool ok = false;
  if (cert && ca && X509_check_issued(ca.get(), cert.get()) == X509_V_OK) {
    EVP_PKEY* key = X509_get0_pubkey(ca.get());
    ok = key && X509_verify(cert.get(), key) == 1;
  }
  ERR_clear_error();
  return ok;
}

}  // namespace edgekit::fleetd::admin
