// Signature checks of OTA images with OpenSSL (the EKU and the ECDSA verification; the chain
// through edgekit::pki).

#include "ota/signing.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "edgekit/pki/keys.hpp"

namespace edgekit::fleetd::ota {
namespace {

Unexpected<Error> refused(std::string message) {
  return fail(Errc::InvalidArgument, std::move(message));
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  return pki::sha256_hex(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

Res<void> verify_image_signature(std::string_view image, std::string_view signature_der,
                                 std::string_view certificate_pem,
                                 std::span<const pki::CertificateInfo> anchors, std::int64_t now) {
  auto chain = pki::parse_certificates(certificate_pem);
  if (!chain) return refused("the signer certificate cannot be read: " + chain.error().message);
  const pki::CertificateInfo& signer = chain->front();
  if (signer.key_algorithm != pki::KeyAlgorithm::EcP256) {
    return refused("the signer's key is not EC P-256 (OTA images are signed with ECDSA P-256)");
  }
  const unsigned char* p = signer.der.data();
  std::unique_ptr<X509, decltype(&X509_free)> x509(
      d2i_X509(nullptr, &p, static_cast<long>(signer.der.size())), &X509_free);
  if (!x509) return refused("the signer certificate cannot be read");
  if ((X509_get_extension_flags(x509.get()) & EXFLAG_XKUSAGE) == 0 ||
      (X509_get_extended_key_usage(x509.get()) & XKU_CODE_SIGN) == 0) {
    return refused("the signer certificate is not for code signing (no codeSigning extended key "
                   "usage)");
  }
  if (anchors.empty()) return refused("fleetd has no trust anchor for code signers");
  const std::vector<pki::CertificateInfo> intermediates(chain->begin() + 1, chain->end());
  if (auto v = pki::verify_chain(signer, intermediates, anchors, now); !v) {
    return refused("the signer certificate is not trusted: " + v.error().message);
  }
  const unsigned char* k = signer.public_key_der.data();
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      d2i_PUBKEY(nullptr, &k, static_cast<long>(signer.public_key_der.size())), &EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!key || !ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) {
    return fail(Errc::Internal, "cannot set up the signature check");
  }
  const int ok = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature_der.data()), signature_der.size(),
      reinterpret_cast<const unsigned char*>(image.data()), image.size());
  if (ok != 1) return refused("the signature does not verify over the image with the signer's key");
  return {};
}

}  // namespace edgekit::fleetd::ota
