// Key and signature algorithms, and the software signer (tests only).
#include "openssl.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <utility>

namespace edgekit::pki {

const char* to_string(KeyAlgorithm algorithm) noexcept {
  switch (algorithm) {
    case KeyAlgorithm::EcP256: return "EC P-256";
    case KeyAlgorithm::EcP384: return "EC P-384";
    case KeyAlgorithm::Rsa2048: return "RSA 2048";
    case KeyAlgorithm::Rsa3072: return "RSA 3072";
    case KeyAlgorithm::Rsa4096: return "RSA 4096";
  }
  return "?";
}

const char* to_string(SignatureAlgorithm algorithm) noexcept {
  switch (algorithm) {
    case SignatureAlgorithm::EcdsaSha256: return "ecdsa-with-SHA256";
    case SignatureAlgorithm::EcdsaSha384: return "ecdsa-with-SHA384";
    case SignatureAlgorithm::RsaPkcs1Sha256: return "sha256WithRSAEncryption";
  }
  return "?";
}

SignatureAlgorithm signature_algorithm_for(KeyAlgorithm algorithm) noexcept {
  switch (algorithm) {
    case KeyAlgorithm::EcP256: return SignatureAlgorithm::EcdsaSha256;
    // [RFC 5480 4] the hash that matches the curve's strength.
    case KeyAlgorithm::EcP384: return SignatureAlgorithm::EcdsaSha384;
    case KeyAlgorithm::Rsa2048:
    case KeyAlgorithm::Rsa3072:
    case KeyAlgorithm::Rsa4096: return SignatureAlgorithm::RsaPkcs1Sha256;
  }
  return SignatureAlgorithm::EcdsaSha256;
}

std::optional<KeyAlgorithm> key_algorithm_of(std::span<const std::uint8_t> spki) {
  auto key = detail::pkey_of_spki(spki);
  return detail::key_algorithm_of(key.get());
}

// --- SoftwareSigner ------------------------------------------------------------------------

struct SoftwareSigner::Key {
  detail::PkeyPtr pkey;
};

SoftwareSigner::SoftwareSigner(std::unique_ptr<Key> key, Bytes public_key, KeyAlgorithm algorithm)
    : key_(std::move(key)), public_key_(std::move(public_key)), algorithm_(algorithm) {}
SoftwareSigner::SoftwareSigner(SoftwareSigner&&) noexcept = default;
SoftwareSigner& SoftwareSigner::operator=(SoftwareSigner&&) noexcept = default;
SoftwareSigner::~SoftwareSigner() = default;

namespace {

Result<SoftwareSigner> make_signer(detail::PkeyPtr pkey, auto construct) {
  const auto algorithm = detail::key_algorithm_of(pkey.get());
  if (!algorithm) {
    return fail(detail::make_error(Errc::UnsupportedKey,
                                   "the private key is not EC P-256/P-384 or RSA 2048/3072/4096"));
  }
  Bytes spki = detail::spki_of(pkey.get());
  if (spki.empty()) return fail(detail::openssl_error(Errc::Crypto, "cannot encode the public key"));
  return construct(std::move(pkey), std::move(spki), *algorithm);
}

}  // namespace

Result<SoftwareSigner> SoftwareSigner::from_pem(std::string_view pem) {
  auto pkey = detail::read_private_key_pem(pem);
  if (!pkey) return fail(pkey.error());
  return make_signer(std::move(*pkey), [](detail::PkeyPtr k, Bytes spki, KeyAlgorithm a) {
    return SoftwareSigner(std::make_unique<Key>(Key{std::move(k)}), std::move(spki), a);
  });
}

Result<SoftwareSigner> SoftwareSigner::generate(KeyAlgorithm algorithm) {
  EVP_PKEY* raw = nullptr;
  switch (algorithm) {
    case KeyAlgorithm::EcP256: raw = EVP_EC_gen("P-256"); break;
    case KeyAlgorithm::EcP384: raw = EVP_EC_gen("P-384"); break;
    case KeyAlgorithm::Rsa2048: raw = EVP_RSA_gen(2048); break;
    case KeyAlgorithm::Rsa3072: raw = EVP_RSA_gen(3072); break;
    case KeyAlgorithm::Rsa4096: raw = EVP_RSA_gen(4096); break;
  }
  if (raw == nullptr) return fail(detail::openssl_error(Errc::Crypto, "cannot generate a key"));
  return make_signer(detail::PkeyPtr(raw), [](detail::PkeyPtr k, Bytes spki, KeyAlgorithm a) {
    return SoftwareSigner(std::make_unique<Key>(Key{std::move(k)}), std::move(spki), a);
  });
}

Result<Signature> SoftwareSigner::sign(std::span<const std::uint8_t> data) {
  const SignatureAlgorithm algorithm = signature_algorithm_for(algorithm_);
  const EVP_MD* md = algorithm == SignatureAlgorithm::EcdsaSha384 ? EVP_sha384() : EVP_sha256();
  std::unique_ptr<EVP_MD_CTX, detail::Deleter<EVP_MD_CTX_free>> ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) != 1) {
    return fail(detail::openssl_error(Errc::Crypto, "cannot sign"));
  }
  Signature out;
  out.algorithm = algorithm;
  out.value.resize(len);
  if (EVP_DigestSign(ctx.get(), out.value.data(), &len, data.data(), data.size()) != 1) {
    return fail(detail::openssl_error(Errc::Crypto, "cannot sign"));
  }
  out.value.resize(len);
  return out;
}

std::string SoftwareSigner::private_key_pem() const {
  detail::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key_->pkey.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    ERR_clear_error();
    return {};
  }
  return detail::bio_text(bio.get());
}

}  // namespace edgekit::pki
