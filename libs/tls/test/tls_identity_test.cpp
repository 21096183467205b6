// tls::ClientIdentity: what it accepts, what it refuses and how it names the refusal.
#include <edgekit/testing/test_pki.hpp>
#include <edgekit/tls/tls.hpp>
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tls_test_support.hpp"

namespace edgekit::tls::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class Identity : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path.empty());
    ASSERT_TRUE(ca_.ok()) << ca_.error();
    testing::CertOptions o;
    o.common_name = "thing-7";
    a_ = ca_.issue("a", o);
    o.common_name = "thing-8";
    b_ = ca_.issue("b", o);
  }
  TempDir dir_;
  testing::TestCa ca_{dir_.path, "ca"};
  testing::Issued a_, b_;
};

TEST_F(Identity, LoadsFromPemAndNamesItsCommonName) {
  auto id = ClientIdentity::from_pem(slurp(a_.cert_file), slurp(a_.key_file));
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_TRUE(id->valid());
  EXPECT_NE(id->certificate(), nullptr);
  EXPECT_EQ(id->common_name(), "thing-7");
}

TEST_F(Identity, TakesTheRestOfTheBundleAsTheChain) {
  auto id = ClientIdentity::from_pem(slurp(a_.cert_file) + slurp(ca_.cert_file()), slurp(a_.key_file));
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_EQ(id->common_name(), "thing-7");
}

TEST_F(Identity, RefusesAKeyOfAnotherCertificate) {
  auto id = ClientIdentity::from_pem(slurp(a_.cert_file), slurp(b_.key_file));
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().cause, Cause::KeyCertificateMismatch);
  EXPECT_EQ(id.error().message(),
            "private key does not match the certificate: the private key does not match the "
            "client certificate");
}

TEST_F(Identity, NamesWhatItCannotRead) {
  auto none = ClientIdentity::from_pem("no PEM here", slurp(a_.key_file));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().cause, Cause::CertificateLoadFailed);
  auto broken_chain = ClientIdentity::from_pem(
      slurp(a_.cert_file) + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      slurp(a_.key_file));
  ASSERT_FALSE(broken_chain);
  EXPECT_EQ(broken_chain.error().cause, Cause::CertificateLoadFailed);
  auto no_key = ClientIdentity::from_pem(slurp(a_.cert_file), slurp(a_.cert_file));
  ASSERT_FALSE(no_key);
  EXPECT_EQ(no_key.error().cause, Cause::PrivateKeyLoadFailed);
  auto missing = ClientIdentity::from_files(dir_.path + "/absent.crt", a_.key_file);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().cause, Cause::CertificateLoadFailed);
  EXPECT_NE(missing.error().detail.find("absent.crt"), std::string::npos) << missing.error().detail;
}

TEST_F(Identity, AnEncryptedKeyNeedsItsPassphrase) {
  EVP_PKEY* key = testing::generate_key(testing::KeyType::EcP256);
  ASSERT_NE(key, nullptr);
  const testing::Issued i = ca_.issue_for_public_key("enc", key, testing::CertOptions{});
  BIO* out = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PrivateKey(out, key, EVP_aes_128_cbc(), nullptr, 0, nullptr,
                                     const_cast<char*>("secret")),
            1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  const std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(out);
  const std::string cert = slurp(i.cert_file);
  auto without = ClientIdentity::from_pem(cert, pem);
  ASSERT_FALSE(without);
  EXPECT_EQ(without.error().cause, Cause::PrivateKeyLoadFailed);
  auto with = ClientIdentity::from_pem(cert, pem, "secret");
  EXPECT_TRUE(with) << with.error().message();
  auto from_objects = ClientIdentity::from_openssl(with->certificate(), key);
  EXPECT_TRUE(from_objects) << from_objects.error().message();
  EVP_PKEY_free(key);  // the identity holds its own reference
  ASSERT_TRUE(from_objects);
  EXPECT_EQ(from_objects->common_name(), "edgekit-test");
}

TEST_F(Identity, ReadsASec1KeyAlsoFromOneFileWithTheCertificate) {
  EVP_PKEY* key = testing::generate_key(testing::KeyType::EcP256);
  ASSERT_NE(key, nullptr);
  const testing::Issued i = ca_.issue_for_public_key("sec1", key, testing::CertOptions{});
  BIO* out = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PrivateKey_traditional(out, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(out, &data);
  const std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(out);
  EVP_PKEY_free(key);
  ASSERT_NE(pem.find("BEGIN EC PRIVATE KEY"), std::string::npos);
  const std::string both = slurp(i.cert_file) + pem;  // the simulator's cache files
  auto id = ClientIdentity::from_pem(both, both);
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_EQ(id->common_name(), "edgekit-test");
  auto wrong = ClientIdentity::from_pem(slurp(a_.cert_file), pem);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().cause, Cause::KeyCertificateMismatch);
}

TEST_F(Identity, FromOpenSslRefusesNullsAndMismatches) {
  auto a = ClientIdentity::from_files(a_.cert_file, a_.key_file);
  ASSERT_TRUE(a) << a.error().message();
  auto null_key = ClientIdentity::from_openssl(a->certificate(), nullptr);
  ASSERT_FALSE(null_key);
  EXPECT_EQ(null_key.error().cause, Cause::InvalidConfig);
  EVP_PKEY* other = testing::generate_key(testing::KeyType::EcP256);
  auto mismatch = ClientIdentity::from_openssl(a->certificate(), other);
  EVP_PKEY_free(other);
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().cause, Cause::KeyCertificateMismatch);
}

TEST_F(Identity, AnEmptyIdentityIsRefusedByTheContext) {
  Config c;
  c.ca_file = ca_.cert_file();
  auto ctx = TlsContext::create(c);
  ASSERT_TRUE(ctx) << ctx.error().message();
  ClientIdentity empty;
  auto ssl = ctx->new_client_ssl(-1, "localhost", &empty);
  ASSERT_FALSE(ssl);
  EXPECT_EQ(ssl.error().cause, Cause::InvalidConfig);
}

TEST(AlertName, NamesTheAlertsOpenSslsTableLacks) {
  EXPECT_EQ(alert_name(48), "unknown CA");
  EXPECT_EQ(alert_name(116), "certificate required");
  EXPECT_EQ(alert_name(250), "alert 250");
}

}  // namespace
}  // namespace edgekit::tls::test
