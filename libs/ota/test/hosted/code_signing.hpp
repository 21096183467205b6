#pragma once
// The code signer's side for the OTA tests, with OpenSSL: a P-256 key, its SubjectPublicKeyInfo
// (what `import_code_signing_key` takes), and the DER ECDSA signature of SHA-256(data) that AWS
// Signer and `openssl dgst -sha256 -sign` make.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace edgekit::ota::test {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

inline Pkey p256_key() {
  return Pkey(EVP_EC_gen("P-256"));
}

inline std::vector<std::uint8_t> spki_of(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(key, &der);
  std::vector<std::uint8_t> out(der, der + (n > 0 ? n : 0));
  OPENSSL_free(der);
  return out;
}

inline std::vector<std::byte> sign(EVP_PKEY* key, std::span<const std::byte> data) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t len = 0;
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key), 1);
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()),
            1);
  std::vector<std::byte> sig(len);
  EXPECT_EQ(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()),
            1);
  sig.resize(len);
  return sig;
}

}  // namespace edgekit::ota::test
