// The small TLS stack itself: mbedTLS (Debian's 2.28), configured as AWS's embedded demos configure
// it — TLS 1.2 only, the P-256 curve only, SHA-256 signatures only (so ecdsa_secp256r1_sha256 /
// rsa_pkcs1_sha256), a 4,096-byte maximum fragment length, and a certificate profile that accepts
// SHA-256-signed certificates only (a SHA-384-signed server certificate fails it) — connecting to
// the secured broker's device listener and speaking MQTT 3.1.1 through it.

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "secured_broker.hpp"

namespace edgekit::fleetd::test {
namespace {

std::string mbedtls_text(int rc) {
  char buf[256] = {};
  mbedtls_strerror(rc, buf, sizeof buf);
  return std::to_string(rc) + " " + buf;
}

// The demos' certificate profile: SHA-256 signatures only, EC (P-256) or RSA (>= 2048) keys.
const mbedtls_x509_crt_profile kProfile = {
    MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA256),
    MBEDTLS_X509_ID_FLAG(MBEDTLS_PK_ECKEY) | MBEDTLS_X509_ID_FLAG(MBEDTLS_PK_ECDSA) |
        MBEDTLS_X509_ID_FLAG(MBEDTLS_PK_RSA),
    MBEDTLS_X509_ID_FLAG(MBEDTLS_ECP_DP_SECP256R1),
    2048,
};

// One mbedTLS client connection; every resource is freed by the destructor.
class MbedtlsDevice {
 public:
  MbedtlsDevice() {
    mbedtls_net_init(&net_);
    mbedtls_ssl_init(&ssl_);
    mbedtls_ssl_config_init(&conf_);
    mbedtls_x509_crt_init(&ca_);
    mbedtls_x509_crt_init(&cert_);
    mbedtls_pk_init(&key_);
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
  }
  ~MbedtlsDevice() {
    mbedtls_ssl_close_notify(&ssl_);
    mbedtls_net_free(&net_);
    mbedtls_ssl_free(&ssl_);
    mbedtls_ssl_config_free(&conf_);
    mbedtls_x509_crt_free(&ca_);
    mbedtls_x509_crt_free(&cert_);
    mbedtls_pk_free(&key_);
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
  }
  MbedtlsDevice(const MbedtlsDevice&) = delete;
  MbedtlsDevice& operator=(const MbedtlsDevice&) = delete;

  // "" when the handshake completed and the server's certificate passed, else what failed.
  std::string connect(std::uint16_t port, const std::string& ca, const testing::Issued& cert) {
    static const char kPers[] = "edgekit-small-stack";
    int rc = mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_,
                                   reinterpret_cast<const unsigned char*>(kPers), sizeof kPers);
    if (rc != 0) return "drbg " + mbedtls_text(rc);
    if ((rc = mbedtls_x509_crt_parse_file(&ca_, ca.c_str())) != 0) return "ca " + mbedtls_text(rc);
    if ((rc = mbedtls_x509_crt_parse_file(&cert_, cert.cert_file.c_str())) != 0) {
      return "cert " + mbedtls_text(rc);
    }
    if ((rc = mbedtls_pk_parse_keyfile(&key_, cert.key_file.c_str(), nullptr)) != 0) {
      return "key " + mbedtls_text(rc);
    }
    rc = mbedtls_ssl_config_defaults(&conf_, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                     MBEDTLS_SSL_PRESET_DEFAULT);
    if (rc != 0) return "config " + mbedtls_text(rc);
    // The demos' limits.
    mbedtls_ssl_conf_min_version(&conf_, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(&conf_, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    static const mbedtls_ecp_group_id kCurves[] = {MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_NONE};
    mbedtls_ssl_conf_curves(&conf_, kCurves);
    static const int kHashes[] = {MBEDTLS_MD_SHA256, MBEDTLS_MD_NONE};
    mbedtls_ssl_conf_sig_hashes(&conf_, kHashes);
    if ((rc = mbedtls_ssl_conf_max_frag_len(&conf_, MBEDTLS_SSL_MAX_FRAG_LEN_4096)) != 0) {
      return "max_frag_len " + mbedtls_text(rc);
    }
    mbedtls_ssl_conf_cert_profile(&conf_, &kProfile);
    mbedtls_ssl_conf_authmode(&conf_, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&conf_, &ca_, nullptr);
    if ((rc = mbedtls_ssl_conf_own_cert(&conf_, &cert_, &key_)) != 0) {
      return "own cert " + mbedtls_text(rc);
    }
    mbedtls_ssl_conf_rng(&conf_, mbedtls_ctr_drbg_random, &drbg_);
    mbedtls_ssl_conf_read_timeout(&conf_, 5000);  // bounded reads
    if ((rc = mbedtls_ssl_setup(&ssl_, &conf_)) != 0) return "setup " + mbedtls_text(rc);
    if ((rc = mbedtls_ssl_set_hostname(&ssl_, "localhost")) != 0) {
      return "hostname " + mbedtls_text(rc);
    }
    rc = mbedtls_net_connect(&net_, "127.0.0.1", std::to_string(port).c_str(),
                             MBEDTLS_NET_PROTO_TCP);
    if (rc != 0) return "tcp " + mbedtls_text(rc);
    mbedtls_ssl_set_bio(&ssl_, &net_, mbedtls_net_send, nullptr, mbedtls_net_recv_timeout);
    while ((rc = mbedtls_ssl_handshake(&ssl_)) != 0) {
      if (rc != MBEDTLS_ERR_SSL_WANT_READ && rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
        return "handshake " + mbedtls_text(rc) + " verify flags " +
               std::to_string(mbedtls_ssl_get_verify_result(&ssl_));
      }
    }
    return "";
  }

  bool write(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const int r = mbedtls_ssl_write(
          &ssl_, reinterpret_cast<const unsigned char*>(bytes.data()) + done, bytes.size() - done);
      if (r <= 0) return false;
      done += static_cast<std::size_t>(r);
    }
    return true;
  }

  std::string read(std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      const int r =
          mbedtls_ssl_read(&ssl_, reinterpret_cast<unsigned char*>(out.data()) + got, n - got);
      if (r <= 0) return "";
      got += static_cast<std::size_t>(r);
    }
    return out;
  }

  mbedtls_ssl_context& ssl() { return ssl_; }
  std::uint32_t verify_flags() { return mbedtls_ssl_get_verify_result(&ssl_); }

 private:
  mbedtls_net_context net_;
  mbedtls_ssl_context ssl_;
  mbedtls_ssl_config conf_;
  mbedtls_x509_crt ca_;
  mbedtls_x509_crt cert_;
  mbedtls_pk_context key_;
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
};

using MbedtlsDeviceTest = SecuredBroker;

TEST_F(MbedtlsDeviceTest, AnMbedtlsDeviceWithTheDemosLimitsGetsIn) {
  MbedtlsDevice device;
  const std::string err = device.connect(broker_->tls_port(), ca_->cert_file(), issued("t1"));
  ASSERT_EQ(err, "") << broker_->log();
  EXPECT_STREQ(mbedtls_ssl_get_version(&device.ssl()), "TLSv1.2");
  EXPECT_EQ(mbedtls_ssl_get_verify_result(&device.ssl()), 0u);
  std::cout << "[ mbedtls ] " << mbedtls_ssl_get_version(&device.ssl()) << " "
            << mbedtls_ssl_get_ciphersuite(&device.ssl()) << ", max fragment "
            << mbedtls_ssl_get_output_max_frag_len(&device.ssl()) << "\n";
  EXPECT_EQ(mbedtls_ssl_get_output_max_frag_len(&device.ssl()), 4096u);

  // MQTT 3.1.1 CONNECT (clean session, keep-alive 60 s, client id t1) and its CONNACK.
  const std::string connect{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 2, 't', '1'};
  ASSERT_TRUE(device.write(connect));
  EXPECT_EQ(device.read(4), (std::string{0x20, 2, 0, 0})) << "CONNACK accepted\n" << broker_->log();
  // PINGREQ / PINGRESP: the session is alive.
  ASSERT_TRUE(device.write(std::string{static_cast<char>(0xc0), 0}));
  EXPECT_EQ(device.read(2), (std::string{static_cast<char>(0xd0), 0}));
}

// A device whose key is RSA-2048 signs with rsa_pkcs1_sha256, the demos' other signature.
TEST_F(MbedtlsDeviceTest, AnMbedtlsDeviceWithAnRsaKeyGetsIn) {
  MbedtlsDevice device;
  const std::string err = device.connect(broker_->tls_port(), ca_->cert_file(), issued("t4"));
  ASSERT_EQ(err, "") << broker_->log();
  const std::string connect{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 2, 't', '4'};
  ASSERT_TRUE(device.write(connect));
  EXPECT_EQ(device.read(4), (std::string{0x20, 2, 0, 0})) << "CONNACK accepted\n" << broker_->log();
}

// The other half of the demos' rule, end to end: the same broker setup but its server certificate
// re-signed by the same CA with SHA-384 — mbedTLS refuses it (X509_BADCERT_BAD_MD), so the
// handshake above passing means the fixture's (and the recommended) server certificate is SHA-256.
TEST_F(MbedtlsDeviceTest, AnMbedtlsDeviceRefusesASha384SignedServerCertificate) {
  const std::string sha384_file = pki_ + "/server-sha384.crt";
  {
    FILE* f = std::fopen(server_.cert_file.c_str(), "r");
    FILE* k = std::fopen((pki_ + "/ca.key").c_str(), "r");
    ASSERT_TRUE(f && k);
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    EVP_PKEY* ca_key = PEM_read_PrivateKey(k, nullptr, nullptr, nullptr);
    std::fclose(f);
    std::fclose(k);
    ASSERT_TRUE(cert && ca_key);
    ASSERT_GT(X509_sign(cert, ca_key, EVP_sha384()), 0);
    FILE* out = std::fopen(sha384_file.c_str(), "w");
    ASSERT_TRUE(out);
    ASSERT_EQ(PEM_write_X509(out, cert), 1);
    std::fclose(out);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
  }
  testing::MosquittoOptions o;
  testing::MosquittoOptions::TlsListener t;
  t.cafile = ca_->cert_file();
  t.certfile = sha384_file;
  t.keyfile = server_.key_file;
  t.require_certificate = true;
  o.tls = t;
  testing::Mosquitto sha384_broker(o);
  ASSERT_TRUE(sha384_broker.start()) << sha384_broker.error() << sha384_broker.log();

  MbedtlsDevice device;
  const std::string err = device.connect(sha384_broker.tls_port(), ca_->cert_file(), issued("t1"));
  EXPECT_NE(err, "") << "mbedTLS accepted a SHA-384-signed server certificate";
  EXPECT_TRUE(device.verify_flags() & MBEDTLS_X509_BADCERT_BAD_MD) << err;
}

}  // namespace
}  // namespace edgekit::fleetd::test
