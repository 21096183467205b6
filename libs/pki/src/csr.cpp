// PKCS#10 requests: made with a Signer, read with their self-signature checked.
#include <edgekit/pki/csr.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "openssl.hpp"

namespace edgekit::pki {

using detail::make_error;
using detail::openssl_error;

Result<std::string> make_csr(Signer& signer, const Name& subject) {
  if (subject.empty()) return fail(make_error(Errc::InvalidArgument, "a request needs a subject"));
  auto name = detail::to_x509_name(subject);
  if (!name) return fail(name.error());
  auto pub = detail::pkey_of_spki(signer.public_key_der());
  if (!pub) return fail(make_error(Errc::Malformed, "the signer's public key is no SubjectPublicKeyInfo"));
  detail::ReqPtr req(X509_REQ_new());
  if (!req) return fail(make_error(Errc::Crypto, "out of memory"));
  // [RFC 2986 4.1] version 0; subject; SubjectPublicKeyInfo; no attributes.
  if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), name->get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), pub.get()) != 1) {
    return fail(openssl_error(Errc::Crypto, "cannot build the request"));
  }
  const Bytes tbs = detail::der_of([&](unsigned char** p) { return i2d_re_X509_REQ_tbs(req.get(), p); });
  if (tbs.empty()) return fail(openssl_error(Errc::Crypto, "cannot encode the request info"));
  auto signature = signer.sign(tbs);
  if (!signature) return fail(signature.error());

  // The whole request is SEQUENCE { info, algorithm, signature } (RFC 2986 4.2), the same shape
  // as a certificate: assembled in DER, then read back by OpenSSL.
  const Bytes der = detail::signed_structure(tbs, *signature);
  const unsigned char* p = der.data();
  detail::ReqPtr signed_req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (!signed_req) return fail(openssl_error(Errc::Crypto, "cannot read back the signed request"));
  // The signer signed what we meant it to sign, with the key we put in the request.
  if (X509_REQ_verify(signed_req.get(), pub.get()) != 1) {
    return fail(make_error(Errc::BadSignature,
                           "the request's signature does not verify with the signer's public key "
                           "(in a token: is the public key object the private key's pair?)"));
  }
  detail::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), signed_req.get()) != 1) {
    return fail(openssl_error(Errc::Crypto, "cannot write the request as PEM"));
  }
  return detail::bio_text(bio.get());
}

Result<CsrInfo> parse_csr(std::span<const std::uint8_t> input) {
  auto der = detail::der_body(input, {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"},
                              "certificate request");
  if (!der) return fail(der.error());
  const unsigned char* p = der->data();
  detail::ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der->size())));
  if (!req) return fail(openssl_error(Errc::Malformed, "not a DER PKCS#10 certificate request"));
  if (p != der->data() + der->size()) {
    return fail(make_error(Errc::Malformed, std::to_string(der->data() + der->size() - p) +
                                                " bytes after the certificate request"));
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr) {
    return fail(openssl_error(Errc::Malformed, "the request's public key cannot be read"));
  }
  if (X509_REQ_verify(req.get(), key) != 1) {
    return fail(openssl_error(Errc::BadSignature,
                              "the request's signature does not verify with its public key"));
  }
  CsrInfo out;
  out.der = detail::der_of([&](unsigned char** q) { return i2d_X509_REQ(req.get(), q); });
  out.subject = detail::from_x509_name(X509_REQ_get_subject_name(req.get()));
  out.public_key_der = detail::spki_of(key);
  out.key_algorithm = detail::key_algorithm_of(key);
  if (out.der.empty() || out.public_key_der.empty()) {
    return fail(openssl_error(Errc::Malformed, "the request cannot be encoded again"));
  }
  ERR_clear_error();
  return out;
}

}  // namespace edgekit::pki
