// Unit tests of edgekit::pkcs11_tools: the parsers, and the provisioning steps against our token
// module in a temporary folder (the CLI's end-to-end tests cover SoftHSM2 as well).
#include "token_tools.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <filesystem>

namespace edgekit::tools::token {
namespace {

// A PEM certificate for `subject_key` named `subject`, signed by `signer` (a throwaway key, or
// the subject key itself), valid for an hour: what import-cert is given in these tests.
std::string certificate_pem(const X509_NAME* subject, EVP_PKEY* subject_key, EVP_PKEY* signer) {
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
  X509_set_subject_name(cert, subject);
  X509_set_issuer_name(cert, subject);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, subject_key);
  std::string pem;
  if (X509_sign(cert, signer, EVP_sha256()) > 0) {
    BIO* out = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(out, cert);
    char* data = nullptr;
    const long n = BIO_get_mem_data(out, &data);
    pem.assign(data, static_cast<std::size_t>(n));
    BIO_free(out);
  }
  X509_free(cert);
  return pem;
}

TEST(TokenToolsParse, IdAcceptsHexWithPrefixAndColons) {
  auto id = parse_id("0x0A:1b");
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, (Bytes{0x0a, 0x1b}));
  EXPECT_EQ(to_hex(*id), "0a1b");
}

TEST(TokenToolsParse, IdRejectsOddLengthNonHexAndEmpty) {
  const std::string too_long(130, 'a');
  for (std::string_view bad : {std::string_view(""), std::string_view("abc"), std::string_view("zz"),
                               std::string_view("0x"), std::string_view(too_long)}) {
    auto id = parse_id(bad);
    ASSERT_FALSE(id) << bad;
    EXPECT_EQ(id.error().exit, Exit::Usage);
  }
}

TEST(TokenToolsParse, KeyTypes) {
  EXPECT_EQ(parse_key_type("ec-p256"), KeyType::EcP256);
  EXPECT_EQ(parse_key_type("rsa-3072"), KeyType::Rsa3072);
  EXPECT_FALSE(parse_key_type("ec-p521"));
  EXPECT_FALSE(parse_key_type("EC-P256"));
}

TEST(TokenToolsParse, SubjectSplitsComponentsAndHonoursEscapedSlash) {
  auto s = parse_subject("/CN=thing-1/O=Acme\\/Labs/C=DE");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0], (std::pair<std::string, std::string>{"CN", "thing-1"}));
  EXPECT_EQ((*s)[1].second, "Acme/Labs");
  for (const char* bad : {"", "CN=x", "/CN", "/=x", "/CN=x//O=y"}) {
    EXPECT_FALSE(parse_subject(bad)) << bad;
  }
}

TEST(TokenToolsErrors, WrongPinNamesTheCodeAndSaysWhatToDo) {
  pkcs11::Error e;
  e.rv = CKR_PIN_INCORRECT;
  e.function = "C_Login";
  const auto t = explain(e, "log in");
  EXPECT_EQ(t.exit, Exit::PinRefused);
  EXPECT_NE(t.message.find("C_Login: CKR_PIN_INCORRECT (0xa0)"), std::string::npos) << t.message;
  EXPECT_NE(t.message.find("wrong PIN"), std::string::npos) << t.message;
}

TEST(TokenToolsSecret, ClearWipesAndMoveLeavesTheSourceEmpty) {
  Secret a(std::string("123456"));
  Secret b(std::move(a));
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(b.view(), "123456");
  b.clear();
  EXPECT_TRUE(b.empty());
  std::string pin = "987654";
  wipe(pin);
  EXPECT_TRUE(pin.empty());
}

class TokenToolsOnOurToken : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/edgekit-tools-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::setenv("EDGEKIT_TOKEN_DIR", (dir_ + "/token").c_str(), 1);
    ::setenv("EDGEKIT_TOKEN_PBKDF2_ITERATIONS", "2000", 1);
    auto m = load_module(EDGEKIT_TOKEN_MODULE);
    ASSERT_TRUE(m) << m.error().message;
    module_.emplace(std::move(*m));
  }
  void TearDown() override {
    module_.reset();
    std::filesystem::remove_all(dir_);
  }
  pkcs11::Session provisioned() {
    auto slot = init_token(*module_, std::nullopt, "tools-test", "87654321", "1234", false);
    EXPECT_TRUE(slot) << slot.error().message;
    auto s = open_user_session(*module_, *slot, std::string_view("1234"));
    EXPECT_TRUE(s) << s.error().message;
    return std::move(*s);
  }
  std::string dir_;
  std::optional<pkcs11::Module> module_;
};

TEST_F(TokenToolsOnOurToken, SelectTokenBeforeInitSaysNotInitialised) {
  auto slot = select_token(*module_, std::nullopt);
  ASSERT_FALSE(slot);
  EXPECT_EQ(slot.error().exit, Exit::NotFound);
  EXPECT_NE(slot.error().message.find("not initialised"), std::string::npos) << slot.error().message;
  EXPECT_NE(slot.error().message.find("edgekit token init"), std::string::npos);
}

TEST_F(TokenToolsOnOurToken, InitTwiceNeedsForce) {
  ASSERT_TRUE(init_token(*module_, std::nullopt, "tools-test", "87654321", "1234", false));
  auto again = init_token(*module_, std::nullopt, "tools-test", "87654321", "1234", false);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("--force"), std::string::npos) << again.error().message;
  EXPECT_TRUE(init_token(*module_, std::nullopt, "tools-test", "87654321", "1234", true));
}

// Issue 11, point 5: `token init --force` with an invalid PIN checks it before it wipes anything.
TEST_F(TokenToolsOnOurToken, InitForceWithAnInvalidPinErasesNothing) {
  {
    auto session = provisioned();
    ASSERT_TRUE(generate_key(session, KeyType::EcP256, "kept", {0x01}));
  }
  auto bad_user = init_token(*module_, std::nullopt, "tools-test", "87654321", "12", true);
  ASSERT_FALSE(bad_user);
  EXPECT_EQ(bad_user.error().exit, Exit::PinRefused);
  EXPECT_NE(bad_user.error().message.find("user PIN must have 4 to 255 bytes"), std::string::npos)
      << bad_user.error().message;
  auto wrong_so = init_token(*module_, std::nullopt, "tools-test", "wrong-so-pin", "5678", true);
  ASSERT_FALSE(wrong_so);
  // The token, its user PIN and its key are as they were.
  auto s = open_user_session(*module_, 0, std::string_view("1234"));
  ASSERT_TRUE(s) << s.error().message;
  auto key = s->find_one({CKO_PRIVATE_KEY, "kept", std::nullopt});
  EXPECT_TRUE(key) << key.error().message();
}

TEST_F(TokenToolsOnOurToken, KeygenCsrImportList) {
  auto session = provisioned();
  auto key = generate_key(session, KeyType::EcP256, "device", {0x01, 0x02});
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_NE(key->public_key_pem.find("BEGIN PUBLIC KEY"), std::string::npos);
  // A second key with the same label would make `csr --key-label` ambiguous.
  auto dup = generate_key(session, KeyType::EcP256, "device", {});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().exit, Exit::Usage);

  auto pem = make_csr(session, "device", "/CN=thing-1/O=edgekit");
  ASSERT_TRUE(pem) << pem.error().message;
  BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(req, nullptr);
  EVP_PKEY* req_key = X509_REQ_get0_pubkey(req);
  EXPECT_EQ(X509_REQ_verify(req, req_key), 1);

  // Self-sign a certificate for the request's key with a throwaway key: import-cert must match
  // it to the token's key by its public key.
  EVP_PKEY* ca = EVP_EC_gen("P-256");
  const std::string cert_pem = certificate_pem(X509_REQ_get_subject_name(req), req_key, ca);
  EVP_PKEY_free(ca);
  X509_REQ_free(req);
  ASSERT_FALSE(cert_pem.empty());

  auto imported = import_certificate(session, "device", cert_pem, std::nullopt);
  ASSERT_TRUE(imported) << imported.error().message;
  EXPECT_EQ(imported->id, (Bytes{0x01, 0x02}));
  EXPECT_TRUE(imported->matches_key);
  EXPECT_EQ(imported->subject, "O=edgekit,CN=thing-1");

  auto objects = list_objects(session);
  ASSERT_TRUE(objects) << objects.error().message;
  ASSERT_EQ(objects->size(), 3u);
  for (const auto& o : *objects) EXPECT_EQ(o.id, (Bytes{0x01, 0x02}));
  const auto& priv = *std::find_if(objects->begin(), objects->end(),
                                   [](const auto& o) { return o.object_class == CKO_PRIVATE_KEY; });
  EXPECT_EQ(priv.key_type, "EC P-256");
  EXPECT_EQ(priv.sensitive, true);
  EXPECT_EQ(priv.extractable, false);
  EXPECT_EQ(format_object(priv),
            "private-key  id=0102 label=\"device\" EC P-256 sensitive=yes extractable=no");
}

TEST_F(TokenToolsOnOurToken, RsaCsrVerifies) {
  auto session = provisioned();
  ASSERT_TRUE(generate_key(session, KeyType::Rsa2048, "rsa", {}));
  auto pem = make_csr(session, "rsa", "/CN=rsa-thing");
  ASSERT_TRUE(pem) << pem.error().message;
  EXPECT_NE(pem->find("BEGIN CERTIFICATE REQUEST"), std::string::npos);
}

TEST_F(TokenToolsOnOurToken, P384CsrIsSignedWithSha384) {
  auto session = provisioned();
  ASSERT_TRUE(generate_key(session, KeyType::EcP384, "p384", {}));
  auto pem = make_csr(session, "p384", "/CN=p384-thing");
  ASSERT_TRUE(pem) << pem.error().message;
  BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(req, nullptr);
  EXPECT_EQ(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA384);
  EXPECT_EQ(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
  X509_REQ_free(req);
}

TEST_F(TokenToolsOnOurToken, CsrForUnknownKeyLabelIsNotFound) {
  auto session = provisioned();
  auto pem = make_csr(session, "nope", "/CN=x");
  ASSERT_FALSE(pem);
  EXPECT_EQ(pem.error().exit, Exit::NotFound);
  EXPECT_NE(pem.error().message.find("key label 'nope' not found"), std::string::npos)
      << pem.error().message;
}

TEST_F(TokenToolsOnOurToken, ImportRejectsACertificateOfAnotherKey) {
  auto session = provisioned();
  ASSERT_TRUE(generate_key(session, KeyType::EcP256, "device", {0x05}));
  EVP_PKEY* other = EVP_EC_gen("P-256");
  X509_NAME* name = X509_NAME_new();
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("x"),
                             -1, -1, 0);
  const std::string cert_pem = certificate_pem(name, other, other);
  X509_NAME_free(name);
  EVP_PKEY_free(other);
  ASSERT_FALSE(cert_pem.empty());
  auto imported = import_certificate(session, "device", cert_pem, std::nullopt);
  ASSERT_FALSE(imported);
  EXPECT_EQ(imported.error().exit, Exit::Usage);
  EXPECT_NE(imported.error().message.find("not the public key"), std::string::npos);
}

}  // namespace
}  // namespace edgekit::tools::token
