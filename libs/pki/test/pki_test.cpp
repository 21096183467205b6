// edgekit::pki with software keys: names, hex, CSRs, certificates, chains, CRLs, external CA
// registration, and malformed input of every kind. The same operations with keys inside
// PKCS#11 tokens are in pki_token_test.cpp.
#include <edgekit/pki/pki.hpp>
#include <edgekit/testing/error_category.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>

namespace edgekit::pki {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;  // 2027-01-15
constexpr std::int64_t kDay = 86'400;

Name name(std::string_view text) {
  auto n = Name::parse(text);
  EXPECT_TRUE(n) << n.error().message;
  return n ? *n : Name{};
}

SoftwareSigner key(KeyAlgorithm algorithm = KeyAlgorithm::EcP256) {
  auto k = SoftwareSigner::generate(algorithm);
  EXPECT_TRUE(k) << k.error().message;
  return std::move(*k);
}

IssueOptions options(Profile profile, std::string_view subject, std::int64_t from = kNow - kDay,
                     std::int64_t to = kNow + 30 * kDay) {
  IssueOptions o;
  o.profile = profile;
  o.subject = name(subject);
  o.not_before = from;
  o.not_after = to;
  return o;
}

// A root CA with its key.
struct Ca {
  SoftwareSigner key;
  CertificateInfo cert;
};

Ca root(std::string_view subject = "/CN=edgekit test root/O=edgekit",
        KeyAlgorithm algorithm = KeyAlgorithm::EcP256) {
  Ca ca{key(algorithm), {}};
  auto o = options(Profile::Ca, subject, kNow - 10 * kDay, kNow + 3650 * kDay);
  auto cert = issue_certificate(ca.key.public_key_der(), o, nullptr, ca.key);
  EXPECT_TRUE(cert) << cert.error().message;
  if (cert) ca.cert = std::move(*cert);
  return ca;
}

void expect_error(const Error& e, Errc code, std::string_view words) {
  EXPECT_EQ(e.code, code) << e.message;
  EXPECT_NE(e.message.find(words), std::string::npos) << "message: " << e.message;
}

TEST(PkiErrorCategory, EveryCodeIsANonZeroErrorCodeWithItsDescription) {
  edgekit::testing::expect_error_category<Errc>(pki_category(), "edgekit.pki", to_string,
                                                "unknown pki error", 14);
}

TEST(PkiName, ParsesSlashFormAndPrintsRfc2253) {
  auto n = Name::parse("/CN=thing-1/O=Acme\\/Labs/C=DE");
  ASSERT_TRUE(n) << n.error().message;
  ASSERT_EQ(n->entries.size(), 3u);
  EXPECT_EQ(n->entries[0], (NameEntry{"CN", "thing-1"}));
  EXPECT_EQ(n->entries[1].value, "Acme/Labs");
  EXPECT_EQ(n->to_string(), "C=DE,O=Acme/Labs,CN=thing-1");
  EXPECT_EQ(n->common_name(), "thing-1");
  EXPECT_EQ(name("/CN=a\\,b/O= x").to_string(), "O=\\ x,CN=a\\,b");
}

TEST(PkiName, RejectionsNameTheTextAndTheProblem) {
  expect_error(Name::parse("CN=x").error(), Errc::InvalidArgument, "want the form /CN=");
  for (const char* bad : {"", "/CN", "/=x", "/CN=x//O=y"}) {
    auto n = Name::parse(bad);
    ASSERT_FALSE(n) << bad;
    EXPECT_EQ(n.error().code, Errc::InvalidArgument);
  }
  expect_error(Name::parse("/CN=x/XYZ=1").error(), Errc::InvalidArgument, "unknown name field 'XYZ'");
  expect_error(Name::parse("/C=Germany").error(), Errc::InvalidArgument, "bad value 'Germany' for name field 'C'");
}

TEST(PkiHex, RoundTripAndErrors) {
  const Bytes b{0x00, 0x0a, 0xff};
  EXPECT_EQ(to_hex(b), "000aff");
  auto back = from_hex("000AfF");
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, b);
  expect_error(from_hex("abc").error(), Errc::InvalidArgument, "odd number");
  expect_error(from_hex("zz").error(), Errc::InvalidArgument, "not hex");
}

// EC P-256/P-384 public keys skip OpenSSL's encoder and decoder (common.cpp): the DER made and
// the keys read must be exactly OpenSSL's, and a point off the curve must still be refused.
TEST(PkiKeys, EcPublicKeysMatchOpenSslsEncodingAndAreCheckedOnTheCurve) {
  for (const char* curve : {"P-256", "P-384"}) {
    SCOPED_TRACE(curve);
    EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve);
    ASSERT_NE(raw, nullptr);
    BIO* bio = BIO_new(BIO_s_mem());
    ASSERT_EQ(PEM_write_bio_PrivateKey(bio, raw, nullptr, nullptr, 0, nullptr, nullptr), 1);
    char* pem_data = nullptr;
    const long pem_len = BIO_get_mem_data(bio, &pem_data);
    auto signer = SoftwareSigner::from_pem(std::string_view(pem_data, static_cast<std::size_t>(pem_len)));
    BIO_free(bio);
    ASSERT_TRUE(signer);
    unsigned char* der = nullptr;
    const int der_len = i2d_PUBKEY(raw, &der);
    ASSERT_GT(der_len, 0);
    const Bytes openssl_der(der, der + der_len);
    OPENSSL_free(der);
    EXPECT_EQ(signer->public_key_der(), openssl_der);  // made without the encoder
    const auto algorithm = key_algorithm_of(openssl_der);  // read without the decoder
    ASSERT_TRUE(algorithm);
    EXPECT_EQ(*algorithm, std::string_view(curve) == "P-256" ? KeyAlgorithm::EcP256 : KeyAlgorithm::EcP384);

    // The same key with a compressed point: other DER (the general path), the same key.
    ASSERT_EQ(EVP_PKEY_set_utf8_string_param(raw, "point-format", "compressed"), 1);
    der = nullptr;
    const int compressed_len = i2d_PUBKEY(raw, &der);
    ASSERT_GT(compressed_len, 0);
    const Bytes compressed(der, der + compressed_len);
    OPENSSL_free(der);
    EXPECT_LT(compressed.size(), openssl_der.size());
    EXPECT_TRUE(key_algorithm_of(compressed));
    EXPECT_TRUE(same_public_key(openssl_der, compressed));
    EVP_PKEY_free(raw);

    // Y changed: not on the curve. Extended or cut DER: not an SPKI.
    Bytes off_curve = openssl_der;
    off_curve.back() ^= 0x01;
    EXPECT_FALSE(key_algorithm_of(off_curve));
    EXPECT_FALSE(same_public_key(openssl_der, off_curve));
    Bytes longer = openssl_der;
    longer.push_back(0);
    EXPECT_FALSE(key_algorithm_of(longer));
    EXPECT_FALSE(key_algorithm_of(std::span(openssl_der).first(openssl_der.size() - 1)));
  }
}

TEST(PkiCsr, RoundTripForEveryKeyType) {
  for (auto algorithm : {KeyAlgorithm::EcP256, KeyAlgorithm::EcP384, KeyAlgorithm::Rsa2048}) {
    SCOPED_TRACE(to_string(algorithm));
    auto k = key(algorithm);
    auto pem = make_csr(k, name("/CN=thing-1/O=edgekit"));
    ASSERT_TRUE(pem) << pem.error().message;
    auto csr = parse_csr(*pem);
    ASSERT_TRUE(csr) << csr.error().message;
    EXPECT_EQ(csr->subject.to_string(), "O=edgekit,CN=thing-1");
    EXPECT_EQ(csr->public_key_der, k.public_key_der());
    EXPECT_EQ(csr->key_algorithm, algorithm);
    // The same request as DER.
    auto again = parse_csr(std::span<const std::uint8_t>(csr->der));
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->der, csr->der);
  }
}

TEST(PkiCsr, TamperedOrMalformedRequestsAreNamed) {
  auto k = key();
  auto pem = make_csr(k, name("/CN=thing-1"));
  ASSERT_TRUE(pem);
  auto csr = parse_csr(*pem);
  ASSERT_TRUE(csr);
  Bytes bad = csr->der;
  bad[bad.size() - 3] ^= 0x01;  // inside the signature
  expect_error(parse_csr(std::span<const std::uint8_t>(bad)).error(), Errc::BadSignature, "does not verify");
  bad = csr->der;
  bad.push_back(0);
  expect_error(parse_csr(std::span<const std::uint8_t>(bad)).error(), Errc::Malformed, "1 bytes after");
  expect_error(parse_csr("").error(), Errc::Malformed, "empty input");
  expect_error(parse_csr("garbage").error(), Errc::Malformed, "not a DER PKCS#10");
  expect_error(parse_csr("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").error(),
               Errc::Malformed, "no PEM CERTIFICATE REQUEST block");
  expect_error(parse_csr("-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n").error(),
               Errc::Malformed, "PEM block 1 is damaged");
  expect_error(make_csr(k, Name{}).error(), Errc::InvalidArgument, "needs a subject");
}

TEST(PkiCertificate, RootIssuingCaAndDevicesForEveryKeyType) {
  Ca ca = root();
  ASSERT_TRUE(ca.cert.is_ca);
  EXPECT_TRUE(ca.cert.can_sign_certificates);
  EXPECT_EQ(ca.cert.subject, ca.cert.issuer);
  EXPECT_EQ(ca.cert.subject_key_id, ca.cert.authority_key_id);
  EXPECT_EQ(ca.cert.signature_algorithm, SignatureAlgorithm::EcdsaSha256);

  auto issuing_key = key();
  auto o = options(Profile::Ca, "/CN=edgekit issuing CA");
  o.path_length = 0;
  auto issuing = issue_certificate(issuing_key.public_key_der(), o, &ca.cert, ca.key);
  ASSERT_TRUE(issuing) << issuing.error().message;
  EXPECT_EQ(issuing->path_length, 0);
  EXPECT_EQ(issuing->authority_key_id, ca.cert.subject_key_id);
  ASSERT_TRUE(verify_issued_by(*issuing, ca.cert));

  for (auto algorithm : {KeyAlgorithm::EcP256, KeyAlgorithm::EcP384, KeyAlgorithm::Rsa2048}) {
    SCOPED_TRACE(to_string(algorithm));
    auto device_key = key(algorithm);
    auto device = issue_certificate(device_key.public_key_der(),
                                    options(Profile::Device, "/CN=thing-1"), &*issuing, issuing_key);
    ASSERT_TRUE(device) << device.error().message;
    EXPECT_FALSE(device->is_ca);
    EXPECT_EQ(device->key_algorithm, algorithm);
    // The issuer's key decides the hash: a P-256 CA signs with SHA-256 (AWS's mbedTLS clients).
    EXPECT_EQ(device->signature_algorithm, SignatureAlgorithm::EcdsaSha256);
    EXPECT_EQ(device->serial_hex.size(), 32u);  // 16 random bytes, top bit clear
    EXPECT_LT(device->serial_hex[0], '8');
    EXPECT_EQ(device->id, sha256_hex(device->der));
    ASSERT_TRUE(verify_issued_by(*device, *issuing));
    const CertificateInfo trusted[] = {ca.cert};
    const CertificateInfo chain[] = {*issuing};
    auto st = verify_chain(*device, chain, trusted, kNow);
    EXPECT_TRUE(st) << st.error().message;
    // PEM round trip keeps every byte.
    auto back = parse_certificate(device->pem());
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->der, device->der);
    EXPECT_EQ(back->id, device->id);
  }
  // The issuing CA has path length 0: it may not make another CA.
  auto sub = options(Profile::Ca, "/CN=too deep");
  expect_error(issue_certificate(key().public_key_der(), sub, &*issuing, issuing_key).error(),
               Errc::NotCa, "path length 0");
}

TEST(PkiCertificate, SignatureHashFollowsTheIssuerKey) {
  for (auto [algorithm, expected] :
       {std::pair{KeyAlgorithm::EcP384, SignatureAlgorithm::EcdsaSha384},
        std::pair{KeyAlgorithm::Rsa2048, SignatureAlgorithm::RsaPkcs1Sha256}}) {
    Ca ca = root("/CN=root", algorithm);
    EXPECT_EQ(ca.cert.signature_algorithm, expected);
    auto device = issue_certificate(key().public_key_der(), options(Profile::Device, "/CN=d"),
                                    &ca.cert, ca.key);
    ASSERT_TRUE(device) << device.error().message;
    EXPECT_EQ(device->signature_algorithm, expected);
  }
}

TEST(PkiCertificate, ServerProfileCarriesNamesAndServerAuth) {
  Ca ca = root();
  auto o = options(Profile::Server, "/CN=broker");
  o.dns_names = {"broker.example.com", "*.iot.example.com"};
  o.ip_addresses = {"127.0.0.1", "::1"};
  o.serial_hex = "0A1B";
  auto cert = issue_certificate(key(KeyAlgorithm::Rsa2048).public_key_der(), o, &ca.cert, ca.key);
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_EQ(cert->serial_hex, "0a1b");
  EXPECT_EQ(cert->dns_names, o.dns_names);
  EXPECT_EQ(cert->ip_addresses, (std::vector<std::string>{"127.0.0.1", "::1"}));
  const unsigned char* p = cert->der.data();
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(cert->der.size()));
  ASSERT_NE(x, nullptr);
  EXPECT_NE(X509_get_extended_key_usage(x) & XKU_SSL_SERVER, 0u);
  EXPECT_EQ(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT, 0u);
  EXPECT_NE(X509_get_key_usage(x) & KU_KEY_ENCIPHERMENT, 0u);  // an RSA server key
  EXPECT_EQ(X509_check_host(x, "broker.example.com", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
  X509_free(x);
}

TEST(PkiCertificate, BadIssueRequestsAreRefusedWithTheirCause) {
  Ca ca = root();
  auto subject = key();
  auto device = options(Profile::Device, "/CN=d");
  auto dev = issue_certificate(subject.public_key_der(), device, &ca.cert, ca.key);
  ASSERT_TRUE(dev);
  // A device certificate cannot issue.
  expect_error(issue_certificate(key().public_key_der(), device, &*dev, subject).error(),
               Errc::NotCa, "is not a CA");
  // The signer is not the issuer's key.
  auto stranger = key();
  expect_error(issue_certificate(subject.public_key_der(), device, &ca.cert, stranger).error(),
               Errc::KeyMismatch, "not the key of the issuer 'O=edgekit,CN=edgekit test root'");
  expect_error(issue_certificate(subject.public_key_der(), device, nullptr, stranger).error(),
               Errc::KeyMismatch, "own key");
  auto swapped = device;
  std::swap(swapped.not_before, swapped.not_after);
  expect_error(issue_certificate(subject.public_key_der(), swapped, &ca.cert, ca.key).error(),
               Errc::InvalidArgument, "is not after notBefore");
  auto bad_serial = device;
  bad_serial.serial_hex = "00";
  expect_error(issue_certificate(subject.public_key_der(), bad_serial, &ca.cert, ca.key).error(),
               Errc::InvalidArgument, "positive");
  bad_serial.serial_hex = std::string(42, '1');
  expect_error(issue_certificate(subject.public_key_der(), bad_serial, &ca.cert, ca.key).error(),
               Errc::InvalidArgument, "1 to 40 hex digits");
  auto bad_ip = device;
  bad_ip.ip_addresses = {"300.1.1.1"};
  expect_error(issue_certificate(subject.public_key_der(), bad_ip, &ca.cert, ca.key).error(),
               Errc::InvalidArgument, "'300.1.1.1' is not an IPv4 or IPv6 address");
  auto pathlen = device;
  pathlen.path_length = 1;
  expect_error(issue_certificate(subject.public_key_der(), pathlen, &ca.cert, ca.key).error(),
               Errc::InvalidArgument, "path length is for a CA");
  const Bytes junk{0x30, 0x03, 0x02, 0x01, 0x01};
  expect_error(issue_certificate(junk, device, &ca.cert, ca.key).error(), Errc::Malformed,
               "no DER SubjectPublicKeyInfo");
  auto small_rsa = [] {
    EVP_PKEY* k = EVP_RSA_gen(1024);
    Bytes spki(static_cast<std::size_t>(i2d_PUBKEY(k, nullptr)));
    unsigned char* p = spki.data();
    i2d_PUBKEY(k, &p);
    EVP_PKEY_free(k);
    return spki;
  }();
  expect_error(issue_certificate(small_rsa, device, &ca.cert, ca.key).error(),
               Errc::UnsupportedKey, "subject key");
}

TEST(PkiChain, ExpiredNotYetValidAndUnknownIssuerAreNamed) {
  Ca ca = root();
  Ca other = root("/CN=other CA");
  auto device_key = key();
  auto cert = issue_certificate(device_key.public_key_der(),
                                options(Profile::Device, "/CN=thing-1", kNow, kNow + kDay),
                                &ca.cert, ca.key);
  ASSERT_TRUE(cert);
  const CertificateInfo trusted[] = {ca.cert};
  ASSERT_TRUE(verify_chain(*cert, {}, trusted, kNow + 60));
  expect_error(verify_chain(*cert, {}, trusted, kNow + 2 * kDay).error(), Errc::Expired,
               "certificate 'CN=thing-1' expired at 2027-01-16 08:00:00 UTC");
  expect_error(verify_chain(*cert, {}, trusted, kNow - 60).error(), Errc::NotYetValid,
               "certificate 'CN=thing-1' is not valid before 2027-01-15 08:00:00 UTC");
  const CertificateInfo wrong[] = {other.cert};
  expect_error(verify_chain(*cert, {}, wrong, kNow + 60).error(), Errc::UnknownIssuer,
               "no trusted issuer 'O=edgekit,CN=edgekit test root' for certificate 'CN=thing-1'");
  expect_error(verify_issued_by(*cert, other.cert).error(), Errc::UnknownIssuer,
               "was issued by 'O=edgekit,CN=edgekit test root', not by 'CN=other CA'");
  // Same name, another key: the authority key identifier tells them apart.
  Ca twin = root();
  expect_error(verify_issued_by(*cert, twin.cert).error(), Errc::UnknownIssuer,
               "names another key");
}

TEST(PkiCrl, ListsTheRevokedSerialAndVerifiesWithTheCaKey) {
  Ca ca = root();
  auto a = issue_certificate(key().public_key_der(), options(Profile::Device, "/CN=a"), &ca.cert, ca.key);
  auto b = issue_certificate(key().public_key_der(), options(Profile::Device, "/CN=b"), &ca.cert, ca.key);
  ASSERT_TRUE(a && b);
  CrlOptions o;
  o.revoked = {{a->serial_hex, kNow - 3600}};
  o.this_update = kNow - 60;
  o.next_update = kNow + kDay;
  o.crl_number = 7;
  auto crl = make_crl(ca.cert, ca.key, o);
  ASSERT_TRUE(crl) << crl.error().message;
  EXPECT_TRUE(crl->lists(a->serial_hex));
  EXPECT_FALSE(crl->lists(b->serial_hex));
  EXPECT_EQ(crl->crl_number, 7u);
  EXPECT_EQ(crl->this_update, kNow - 60);
  EXPECT_EQ(crl->next_update, kNow + kDay);
  ASSERT_EQ(crl->revoked.size(), 1u);
  EXPECT_EQ(crl->revoked[0].revoked_at, kNow - 3600);
  EXPECT_EQ(crl->issuer, ca.cert.subject);
  ASSERT_TRUE(verify_crl(*crl, ca.cert));
  auto back = parse_crl(crl->pem());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->der, crl->der);

  const CertificateInfo trusted[] = {ca.cert};
  const CrlInfo crls[] = {*crl};
  expect_error(verify_chain(*a, {}, trusted, kNow, crls).error(), Errc::Revoked,
               "certificate 'CN=a' (serial " + a->serial_hex + ") is revoked");
  EXPECT_TRUE(verify_chain(*b, {}, trusted, kNow, crls));

  Ca other = root("/CN=other CA");
  expect_error(verify_crl(*crl, other.cert).error(), Errc::UnknownIssuer, "issued by");
  // An empty CRL is valid too, and a device cannot sign one.
  o.revoked.clear();
  ASSERT_TRUE(make_crl(ca.cert, ca.key, o));
  auto device_key = key();
  auto device = issue_certificate(device_key.public_key_der(), options(Profile::Device, "/CN=d"),
                                  &ca.cert, ca.key);
  ASSERT_TRUE(device);
  expect_error(make_crl(*device, device_key, o).error(), Errc::NotCa, "may not sign CRLs");
  o.revoked = {{"xyz", kNow}};
  expect_error(make_crl(ca.cert, ca.key, o).error(), Errc::InvalidArgument, "serial 'xyz'");
}

TEST(PkiRegistration, ExternalCaWithVerificationCertificate) {
  Ca external = root("/CN=customer CA/O=customer");
  auto verification_key = key();
  auto verification = issue_certificate(verification_key.public_key_der(),
                                        options(Profile::Device, "/CN=reg-code-1234"),
                                        &external.cert, external.key);
  ASSERT_TRUE(verification);
  EXPECT_TRUE(verify_ca_registration(external.cert, *verification, "reg-code-1234", kNow));
  expect_error(verify_ca_registration(external.cert, *verification, "other-code", kNow).error(),
               Errc::InvalidArgument, "'reg-code-1234' is not the registration code");
  expect_error(verify_ca_registration(external.cert, *verification, "reg-code-1234",
                                      kNow + 400 * kDay).error(),
               Errc::Expired, "certificate 'CN=reg-code-1234' expired");
  Ca impostor = root("/CN=customer CA/O=customer");
  expect_error(verify_ca_registration(impostor.cert, *verification, "reg-code-1234", kNow).error(),
               Errc::UnknownIssuer, "names another key");
  expect_error(verify_ca_registration(*verification, *verification, "reg-code-1234", kNow).error(),
               Errc::NotCa, "is not a CA");
}

TEST(PkiParse, MalformedCertificatesGiveClearErrors) {
  Ca ca = root();
  const Bytes& der = ca.cert.der;
  expect_error(parse_certificate("").error(), Errc::Malformed, "empty input");
  expect_error(parse_certificate("hello").error(), Errc::Malformed, "not a DER X.509 certificate");
  expect_error(parse_certificate(std::span<const std::uint8_t>(der.data(), der.size() - 1)).error(),
               Errc::Malformed, "not a DER X.509 certificate");
  Bytes longer = der;
  longer.insert(longer.end(), {1, 2, 3});
  expect_error(parse_certificate(std::span<const std::uint8_t>(longer)).error(), Errc::Malformed,
               "3 bytes after the certificate");
  expect_error(parse_certificate("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").error(),
               Errc::Malformed, "no PEM CERTIFICATE block");
  expect_error(parse_certificate("-----BEGIN CERTIFICATE-----\n*&^%\n-----END CERTIFICATE-----\n").error(),
               Errc::Malformed, "PEM block 1 is damaged");
  expect_error(parse_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n").error(), Errc::Malformed,
               "damaged");
  expect_error(parse_certificate("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n").error(),
               Errc::Malformed, "not a DER X.509 certificate");
  // Every truncation and every flipped byte: an error or a certificate, never a crash.
  for (std::size_t n = 0; n < der.size(); ++n) {
    EXPECT_FALSE(parse_certificate(std::span<const std::uint8_t>(der.data(), n))) << n;
    Bytes flipped = der;
    flipped[n] ^= 0xff;
    (void)parse_certificate(std::span<const std::uint8_t>(flipped));
  }
}

TEST(PkiParse, BundlesKeepOrderSkipOtherBlocksAndNameTheBadOne) {
  Ca a = root("/CN=a");
  Ca b = root("/CN=b");
  const std::string key_block = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
  auto both = parse_certificates(a.cert.pem() + key_block + b.cert.pem());
  ASSERT_TRUE(both) << both.error().message;
  ASSERT_EQ(both->size(), 2u);
  EXPECT_EQ((*both)[0].subject.common_name(), "a");
  EXPECT_EQ((*both)[1].subject.common_name(), "b");
  const std::string broken = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
  expect_error(parse_certificates(a.cert.pem() + broken).error(), Errc::Malformed,
               "certificate 2 of the bundle: not a DER X.509 certificate");
  expect_error(parse_certificates(key_block).error(), Errc::Malformed, "no PEM CERTIFICATE block");
}

TEST(PkiParse, MalformedCrlsGiveClearErrors) {
  expect_error(parse_crl("").error(), Errc::Malformed, "empty input");
  expect_error(parse_crl("nope").error(), Errc::Malformed, "not a DER X.509 CRL");
  expect_error(parse_crl("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n").error(),
               Errc::Malformed, "no PEM X509 CRL block");
}

TEST(PkiKeys, SoftwareSignerReadsPemAndRefusesOthers) {
  auto k = key(KeyAlgorithm::EcP384);
  auto again = SoftwareSigner::from_pem(k.private_key_pem());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->public_key_der(), k.public_key_der());
  EXPECT_EQ(again->key_algorithm(), KeyAlgorithm::EcP384);
  expect_error(SoftwareSigner::from_pem("junk").error(), Errc::Malformed, "no unencrypted PEM private key");
  EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_NE(ed, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, ed, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  expect_error(SoftwareSigner::from_pem(std::string_view(data, static_cast<std::size_t>(n))).error(),
               Errc::UnsupportedKey, "not EC P-256/P-384 or RSA");
  BIO_free(bio);
  EVP_PKEY_free(ed);
  EXPECT_EQ(key_algorithm_of(k.public_key_der()), KeyAlgorithm::EcP384);
  EXPECT_FALSE(key_algorithm_of(Bytes{1, 2, 3}));
  auto pem = public_key_pem(k.public_key_der());
  ASSERT_TRUE(pem);
  EXPECT_NE(pem->find("BEGIN PUBLIC KEY"), std::string::npos);
}

}  // namespace
}  // namespace edgekit::pki
