// The Verifier against signatures made by OpenSSL, in edgekit's PKCS#11 token and in SoftHSM2
// (when installed: the same suite, so that the Verifier asks nothing of a token that only ours
// gives): a good image passes; a tampered byte, another signer, a truncated image and a
// malformed signature are each refused with their reason. The image is read back from a
// FileDownloadStore, as the agent will.
#include "edgekit/ota/verifier.hpp"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "code_signing.hpp"
#include "edgekit/ota/file_ports.hpp"
#include "edgekit/ota/image.hpp"
#include "edgekit/testing/token_env.hpp"
#include "power_cut_filesystem.hpp"

namespace edgekit::ota {
namespace {

using test::p256_key;
using test::Pkey;
using test::sign;
using test::spki_of;
using test::TempDir;

// The same signature as raw r || s.
std::vector<std::byte> to_raw(std::span<const std::byte> der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  std::vector<std::byte> raw(64);
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

// A self-signed certificate of `key` (DER), as a code-signing certificate is delivered.
std::vector<std::uint8_t> certificate_of(EVP_PKEY* key) {
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("code signing"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key);
  X509_sign(cert.get(), key, EVP_sha256());
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert.get(), &der);
  std::vector<std::uint8_t> out(der, der + (n > 0 ? n : 0));
  OPENSSL_free(der);
  return out;
}

class OtaVerifier : public ::testing::TestWithParam<testing::TokenKind> {
 protected:
  void SetUp() override {
    if (GetParam() == testing::TokenKind::SoftHsm2 &&
        std::string(EDGEKIT_SOFTHSM2_MODULE).empty()) {
      GTEST_SKIP() << "SoftHSM2 is not installed";
    }
    const std::string module_path = testing::prepare_token_env(
        GetParam(), dir_.path(), EDGEKIT_TOKEN_MODULE, EDGEKIT_SOFTHSM2_MODULE);
    auto module = pkcs11::Module::load(module_path);
    ASSERT_TRUE(module.has_value()) << module.error().message();
    module_.emplace(std::move(*module));
    auto slot = testing::init_test_token(*module_, "ota", "so-pin", "user-pin");
    ASSERT_TRUE(slot.has_value());
    auto session = module_->open_session(*slot, true);
    ASSERT_TRUE(session.has_value());
    session_.emplace(std::move(*session));
    ASSERT_TRUE(session_->login(pkcs11::UserType::User, "user-pin").has_value());
    // An edgekit image of 5,000 payload bytes, stored as a download would leave it.
    image_.resize(kImageHeaderSize + 5000);
    ImageHeader h;
    h.version = {2, 1, 0};
    h.device_type = "sensor-v1";
    h.payload_size = 5000;
    ASSERT_TRUE(write_image_header(h, image_).has_value());
    for (std::size_t i = kImageHeaderSize; i < image_.size(); ++i) {
      image_[i] = static_cast<std::byte>(i % 251);
    }
    store_.emplace(dir_.path() + "/download");
    ASSERT_TRUE(store_->write_block(0, image_).has_value());
    signer_ = p256_key();
    ASSERT_TRUE(signer_ != nullptr);
    auto key = import_code_signing_key(*session_, spki_of(signer_.get()), "code-signing", true);
    ASSERT_TRUE(key.has_value());
  }

  Result<void, Errc> verify(std::span<const std::byte> signature, std::uint64_t size = 0) {
    auto v = Verifier::find(*session_, "code-signing");
    if (!v) return fail(v.error());
    ImageReader read = [this](std::uint64_t at, std::span<std::byte> out) {
      return store_->read_image(at, out);
    };
    return v->verify(read, size == 0 ? image_.size() : size, signature, 1000);
  }

  TempDir dir_;
  std::optional<pkcs11::Module> module_;
  std::optional<pkcs11::Session> session_;
  std::optional<FileDownloadStore> store_;
  std::vector<std::byte> image_;
  Pkey signer_;
};

TEST_P(OtaVerifier, AcceptsTheImageTheCodeSigningKeySigned) {
  const auto sig = sign(signer_.get(), image_);
  EXPECT_TRUE(verify(sig).has_value());
  EXPECT_TRUE(verify(to_raw(sig)).has_value());  // raw r || s too
  // Twice in a row on one Verifier, and after an abandoned digest.
  auto v = Verifier::find(*session_, "code-signing");
  ASSERT_TRUE(v.has_value());
  ASSERT_TRUE(v->begin().has_value());
  ASSERT_TRUE(v->update(std::span(image_).first(10)).has_value());
  ASSERT_TRUE(v->begin().has_value());
  ASSERT_TRUE(v->update(image_).has_value());
  EXPECT_TRUE(v->finish(sig).has_value());
}

TEST_P(OtaVerifier, RefusesATamperedByteInTheHeaderOrThePayload) {
  const auto sig = sign(signer_.get(), image_);
  for (std::size_t at : {std::size_t{8}, std::size_t{kImageHeaderSize + 4321}}) {
    auto tampered = image_;
    tampered[at] ^= std::byte{0x01};
    ASSERT_TRUE(store_->write_block(0, tampered).has_value());
    auto r = verify(sig);
    ASSERT_FALSE(r.has_value()) << at;
    EXPECT_EQ(r.error(), Errc::SignatureInvalid) << at;
  }
}

TEST_P(OtaVerifier, RefusesAnotherSigner) {
  auto other = p256_key();
  auto r = verify(sign(other.get(), image_));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::SignatureInvalid);
}

TEST_P(OtaVerifier, RefusesATruncatedImage) {
  const auto sig = sign(signer_.get(), image_);
  // The file as the job document sizes it, but the store holds less of it.
  TempDir other;
  FileDownloadStore short_store(other.path());
  ASSERT_TRUE(short_store.write_block(0, std::span(image_).first(image_.size() - 1)).has_value());
  auto v = Verifier::find(*session_, "code-signing");
  ASSERT_TRUE(v.has_value());
  ImageReader read = [&](std::uint64_t at, std::span<std::byte> out) {
    return short_store.read_image(at, out);
  };
  auto r = v->verify(read, image_.size(), sig);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::ImageTruncated);
  // Or the document itself says the file is shorter: the digest differs.
  r = verify(sig, image_.size() - 100);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::SignatureInvalid);
}

TEST_P(OtaVerifier, NamesAMalformedSignatureAndAMissingKey) {
  const std::byte junk[10] = {};
  auto r = verify(junk);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::MalformedSignature);
  auto none = Verifier::find(*session_, "no-such-key");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error(), Errc::KeyNotFound);
  const std::uint8_t not_a_key[] = {0x30, 0x03, 0x02, 0x01, 0x01};
  auto bad = import_code_signing_key(*session_, not_a_key, "x", false);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error(), Errc::InvalidArgument);
  Pkey p384(EVP_EC_gen("P-384"));  // another curve than the code-signing P-256
  auto wrong_type = import_code_signing_key(*session_, spki_of(p384.get()), "x", false);
  ASSERT_FALSE(wrong_type.has_value());
  EXPECT_EQ(wrong_type.error(), Errc::InvalidArgument);
}

TEST_P(OtaVerifier, ImportsTheKeyFromTheCodeSigningCertificate) {
  auto other = p256_key();
  auto key = import_code_signing_key(*session_, certificate_of(other.get()), "from-cert", false);
  ASSERT_TRUE(key.has_value());
  Verifier v(*session_, *key);
  ASSERT_TRUE(v.begin().has_value());
  ASSERT_TRUE(v.update(image_).has_value());
  EXPECT_TRUE(v.finish(sign(other.get(), image_)).has_value());
  // A certificate with a byte after it is not a certificate.
  auto cert = certificate_of(other.get());
  cert.push_back(0);
  auto bad = import_code_signing_key(*session_, cert, "x", false);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error(), Errc::InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Tokens, OtaVerifier,
                         ::testing::Values(testing::TokenKind::Edgekit,
                                           testing::TokenKind::SoftHsm2),
                         [](const auto& token) { return std::string(testing::name(token.param)); });

}  // namespace
}  // namespace edgekit::ota
