// edgekit::pki with keys inside PKCS#11 tokens, run against edgekit's module and SoftHSM2: a CA
// whose keys are generated in the token issues device certificates for P-256, P-384 and RSA-2048
// keys (also in the token, through CSRs signed there), OpenSSL's X509_verify_cert accepts the
// chain, the certificate id is what `openssl x509 -outform der | sha256sum` prints, and the CA
// signs CRLs in the token. Token failures keep their CKR code.
#include <edgekit/pki/pki.hpp>
#include <edgekit/testing/token_env.hpp>
#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

namespace edgekit::pki {
namespace {

using edgekit::testing::TokenKind;

constexpr char kSoPin[] = "87654321";
constexpr char kPin[] = "1234";
constexpr std::int64_t kNow = 1'800'000'000;
constexpr std::int64_t kDay = 86'400;

// Output of a shell command (the openssl command-line tool), "" when it fails.
std::string run(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  return ::pclose(p) == 0 ? out : std::string();
}

class PkiOnToken : public ::testing::TestWithParam<TokenKind> {
 protected:
  void SetUp() override {
    if (GetParam() == TokenKind::SoftHsm2 && std::string(EDGEKIT_SOFTHSM2_MODULE).empty()) {
      GTEST_SKIP() << "SoftHSM2 is not installed";
    }
    char tmpl[] = "/tmp/edgekit-pki-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string path = edgekit::testing::prepare_token_env(
        GetParam(), dir_, EDGEKIT_TOKEN_MODULE, EDGEKIT_SOFTHSM2_MODULE);
    auto m = pkcs11::Module::load(path);
    ASSERT_TRUE(m) << m.error().message();
    module_.emplace(std::move(*m));
    auto slot = edgekit::testing::init_test_token(*module_, "pki-test", kSoPin, kPin);
    ASSERT_TRUE(slot);
    auto s = module_->open_session(*slot, true);
    ASSERT_TRUE(s) << s.error().message();
    ASSERT_TRUE(s->login(pkcs11::UserType::User, kPin));
    session_.emplace(std::move(*s));
  }
  void TearDown() override {
    session_.reset();
    module_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // A key pair generated in the token, and its signer.
  TokenSigner token_key(KeyAlgorithm algorithm, const std::string& label) {
    const Bytes id(label.begin(), label.end());
    auto kp = generate_token_key(*session_, algorithm, label, id);
    EXPECT_TRUE(kp) << kp.error().message;
    // The private key stays in the token.
    EXPECT_FALSE(session_->attribute(kp->private_key, CKA_VALUE));
    auto signer = TokenSigner::create(*session_, kp->private_key);
    EXPECT_TRUE(signer) << signer.error().message;
    EXPECT_EQ(signer->key_algorithm(), algorithm);
    return std::move(*signer);
  }

  static IssueOptions options(Profile profile, const char* subject) {
    IssueOptions o;
    o.profile = profile;
    o.subject = *Name::parse(subject);
    o.not_before = kNow - kDay;
    o.not_after = kNow + 365 * kDay;
    return o;
  }

  std::string dir_;
  std::optional<pkcs11::Module> module_;
  std::optional<pkcs11::Session> session_;
};

// OpenSSL's own chain check (not ours): leaf → issuing CA → trusted root, at kNow, as a TLS
// client certificate.
int openssl_verify(const CertificateInfo& leaf, const CertificateInfo& issuing,
                   const CertificateInfo& root) {
  auto x509 = [](const CertificateInfo& c) {
    const unsigned char* p = c.der.data();
    return d2i_X509(nullptr, &p, static_cast<long>(c.der.size()));
  };
  X509* l = x509(leaf);
  X509* i = x509(issuing);
  X509* r = x509(root);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, r);
  STACK_OF(X509)* chain = sk_X509_new_null();
  sk_X509_push(chain, i);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, l, chain);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), static_cast<time_t>(kNow));
  const int ok = X509_verify_cert(ctx);
  const int err = X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  sk_X509_free(chain);
  X509_STORE_free(store);
  X509_free(l);
  X509_free(i);
  X509_free(r);
  return ok == 1 ? X509_V_OK : err;
}

TEST_P(PkiOnToken, CaInTheTokenIssuesDeviceCertificatesForEveryKeyType) {
  auto root_key = token_key(KeyAlgorithm::EcP256, "root-ca");
  auto o = options(Profile::Ca, "/CN=edgekit root CA/O=edgekit");
  o.not_after = kNow + 3650 * kDay;
  auto root = issue_certificate(root_key.public_key_der(), o, nullptr, root_key);
  ASSERT_TRUE(root) << root.error().message;
  auto issuing_key = token_key(KeyAlgorithm::EcP256, "issuing-ca");
  o = options(Profile::Ca, "/CN=edgekit issuing CA/O=edgekit");
  o.path_length = 0;
  auto issuing = issue_certificate(issuing_key.public_key_der(), o, &*root, root_key);
  ASSERT_TRUE(issuing) << issuing.error().message;

  for (auto algorithm : {KeyAlgorithm::EcP256, KeyAlgorithm::EcP384, KeyAlgorithm::Rsa2048}) {
    SCOPED_TRACE(to_string(algorithm));
    // The device: its key in the token, a CSR signed there, parsed and checked by the CA.
    auto device_key = token_key(algorithm, std::string("device-") + to_string(algorithm));
    auto csr_pem = make_csr(device_key, *Name::parse("/CN=thing-1/O=edgekit devices"));
    ASSERT_TRUE(csr_pem) << csr_pem.error().message;
    auto csr = parse_csr(*csr_pem);
    ASSERT_TRUE(csr) << csr.error().message;
    EXPECT_EQ(csr->key_algorithm, algorithm);
    EXPECT_EQ(csr->public_key_der, device_key.public_key_der());

    auto device = issue_certificate(csr->public_key_der,
                                    options(Profile::Device, "/CN=thing-1/O=edgekit devices"),
                                    &*issuing, issuing_key);
    ASSERT_TRUE(device) << device.error().message;
    EXPECT_EQ(device->signature_algorithm, SignatureAlgorithm::EcdsaSha256);
    EXPECT_EQ(openssl_verify(*device, *issuing, *root), X509_V_OK);
    const CertificateInfo trusted[] = {*root};
    const CertificateInfo chain[] = {*issuing};
    auto st = verify_chain(*device, chain, trusted, kNow);
    EXPECT_TRUE(st) << st.error().message;

    // AWS's certificateId: the SHA-256 of the DER, as openssl and sha256sum compute it.
    const std::string file = dir_ + "/device.pem";
    std::ofstream(file) << device->pem();
    const std::string sum = run("openssl x509 -in " + file + " -outform der | sha256sum");
    ASSERT_GE(sum.size(), 64u);
    EXPECT_EQ(device->id, sum.substr(0, 64));
  }
}

TEST_P(PkiOnToken, EveryCaKeyTypeSignsInTheTokenWithItsHash) {
  for (auto [algorithm, expected] :
       {std::pair{KeyAlgorithm::EcP256, SignatureAlgorithm::EcdsaSha256},
        std::pair{KeyAlgorithm::EcP384, SignatureAlgorithm::EcdsaSha384},
        std::pair{KeyAlgorithm::Rsa2048, SignatureAlgorithm::RsaPkcs1Sha256}}) {
    SCOPED_TRACE(to_string(algorithm));
    auto ca_key = token_key(algorithm, std::string("ca-") + to_string(algorithm));
    auto ca = issue_certificate(ca_key.public_key_der(), options(Profile::Ca, "/CN=ca"), nullptr, ca_key);
    ASSERT_TRUE(ca) << ca.error().message;
    EXPECT_EQ(ca->signature_algorithm, expected);
    EXPECT_TRUE(verify_issued_by(*ca, *ca));
    // Signing twice exercises the remembered mechanism choice.
    auto device_key = SoftwareSigner::generate(KeyAlgorithm::EcP256);
    ASSERT_TRUE(device_key);
    auto device = issue_certificate(device_key->public_key_der(), options(Profile::Device, "/CN=d"),
                                    &*ca, ca_key);
    ASSERT_TRUE(device) << device.error().message;
    EXPECT_TRUE(verify_issued_by(*device, *ca));
  }
}

TEST_P(PkiOnToken, CrlSignedInTheTokenListsTheRevokedSerial) {
  auto ca_key = token_key(KeyAlgorithm::EcP256, "ca");
  auto ca = issue_certificate(ca_key.public_key_der(), options(Profile::Ca, "/CN=ca"), nullptr, ca_key);
  ASSERT_TRUE(ca) << ca.error().message;
  auto device_key = SoftwareSigner::generate(KeyAlgorithm::EcP256);
  ASSERT_TRUE(device_key);
  auto device = issue_certificate(device_key->public_key_der(), options(Profile::Device, "/CN=d"),
                                  &*ca, ca_key);
  ASSERT_TRUE(device);
  CrlOptions o;
  o.revoked = {{device->serial_hex, kNow - 60}};
  o.this_update = kNow - 60;
  o.next_update = kNow + kDay;
  auto crl = make_crl(*ca, ca_key, o);
  ASSERT_TRUE(crl) << crl.error().message;
  EXPECT_TRUE(crl->lists(device->serial_hex));
  EXPECT_TRUE(verify_crl(*crl, *ca));
  const std::string crl_file = dir_ + "/ca.crl", ca_file = dir_ + "/ca.pem";
  std::ofstream(crl_file) << crl->pem();
  std::ofstream(ca_file) << ca->pem();
  const std::string text = run("openssl crl -in " + crl_file + " -CAfile " + ca_file + " -noout -text 2>&1");
  EXPECT_NE(text.find("Serial Number: " + [&] {
    std::string upper = device->serial_hex;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return upper;
  }()), std::string::npos) << text;
  EXPECT_NE(run("openssl crl -in " + crl_file + " -CAfile " + ca_file + " -noout 2>&1").find("verify OK"),
            std::string::npos);
}

TEST_P(PkiOnToken, TokenFailuresKeepTheirCkrCode) {
  auto signer = token_key(KeyAlgorithm::EcP256, "doomed");
  ASSERT_TRUE(session_->destroy(signer.private_key()));
  const Bytes data{1, 2, 3};
  auto sig = signer.sign(data);
  ASSERT_FALSE(sig);
  EXPECT_EQ(sig.error().code, Errc::Token);
  ASSERT_TRUE(sig.error().token);
  EXPECT_NE(sig.error().token->rv, static_cast<CK_RV>(CKR_OK));
  EXPECT_NE(sig.error().message.find("the token refused to sign: C_Sign"), std::string::npos)
      << sig.error().message;
  EXPECT_NE(sig.error().message.find("CKR_"), std::string::npos) << sig.error().message;
  auto csr = make_csr(signer, *Name::parse("/CN=x"));
  ASSERT_FALSE(csr);
  EXPECT_EQ(csr.error().code, Errc::Token);
}

TEST_P(PkiOnToken, PublicKeyOfAnEcKeyWithoutItsPublicObject) {
  auto kp = generate_token_key(*session_, KeyAlgorithm::EcP256, "lonely", Bytes{0x42});
  ASSERT_TRUE(kp) << kp.error().message;
  auto before = token_public_key(*session_, kp->private_key);
  ASSERT_TRUE(before) << before.error().message;
  ASSERT_TRUE(session_->destroy(kp->public_key));
  // Either the module keeps the point on the private key too, or the key is named as missing.
  auto after = token_public_key(*session_, kp->private_key);
  if (after) {
    EXPECT_EQ(*after, *before);
  } else {
    EXPECT_EQ(after.error().code, Errc::NotFound) << after.error().message;
    EXPECT_NE(after.error().message.find("no public key object"), std::string::npos);
  }
}

TEST_P(PkiOnToken, ImportedPrivateKeySignsInTheTokenAndCannotBeReadBack) {
  for (KeyAlgorithm a : {KeyAlgorithm::EcP256, KeyAlgorithm::EcP384, KeyAlgorithm::Rsa2048}) {
    auto soft = SoftwareSigner::generate(a);
    ASSERT_TRUE(soft);
    const std::string label = std::string("imported-") + to_string(a);
    const Bytes id(label.begin(), label.end());
    auto kp = import_private_key(*session_, soft->private_key_pem(), label, id);
    ASSERT_TRUE(kp) << kp.error().message;
    // Sensitive and not extractable: the value cannot be read back.
    EXPECT_FALSE(session_->attribute(kp->private_key, CKA_VALUE));
    EXPECT_FALSE(session_->attribute(kp->private_key, CKA_PRIVATE_EXPONENT));
    auto extractable = session_->attribute(kp->private_key, CKA_EXTRACTABLE);
    ASSERT_TRUE(extractable);
    EXPECT_EQ(extractable->at(0), CK_FALSE);
    auto signer = TokenSigner::create(*session_, kp->private_key);
    ASSERT_TRUE(signer) << signer.error().message;
    EXPECT_TRUE(same_public_key(signer->public_key_der(), soft->public_key_der()));
    // A CSR signed in the token verifies with the imported key's public half.
    auto csr = make_csr(*signer, *Name::parse("/CN=imported"));
    ASSERT_TRUE(csr) << csr.error().message;
  }
}

TEST_P(PkiOnToken, ImportRefusesWhatIsNoPrivateKey) {
  auto kp = import_private_key(*session_, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                               "x", Bytes{1});
  ASSERT_FALSE(kp);
  EXPECT_EQ(kp.error().code, Errc::Malformed);
}

INSTANTIATE_TEST_SUITE_P(Modules, PkiOnToken,
                         ::testing::Values(TokenKind::Edgekit, TokenKind::SoftHsm2),
                         [](const auto& p) { return std::string(edgekit::testing::name(p.param)); });

}  // namespace
}  // namespace edgekit::pki
