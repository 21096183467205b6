// Devices with small TLS stacks get in. AWS's embedded demos run mbedTLS limited to TLS 1.2, the
// P-256 curve, the signatures ecdsa_secp256r1_sha256 / rsa_pkcs1_sha256 and a 4,096-byte maximum
// fragment length, and they refuse a server certificate signed with SHA-384. Here OpenSSL is held
// to exactly those limits in a test-only context (mbedTLS's certificate profile is played by a
// verify callback that accepts SHA-256 signatures only), connects to the secured broker's device
// listener as the fixture configures it (docs/fleetd.md's recommended listener), and speaks
// MQTT 3.1.1 — coreMQTT's version — through it, hand-encoded as a small device would.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "secured_broker.hpp"

namespace edgekit::fleetd::test {
namespace {

constexpr std::size_t kMaxFragment = 4096;

// mbedTLS's x509 profile with SHA-256 as the only hash: every certificate of the server's chain
// but the trust anchor itself must be signed with SHA-256.
bool signed_with_sha256(X509* cert) {
  int md = NID_undef;
  return X509_get_signature_info(cert, &md, nullptr, nullptr, nullptr) == 1 && md == NID_sha256;
}

int verify_like_a_small_stack(int preverified, X509_STORE_CTX* store) {
  if (preverified != 1) return 0;
  X509* cert = X509_STORE_CTX_get_current_cert(store);
  const bool anchor = X509_check_issued(cert, cert) == X509_V_OK;
  if (!anchor && !signed_with_sha256(cert)) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_SIGNATURE_FAILURE);
    return 0;
  }
  return 1;
}

std::string openssl_errors() {
  std::string s;
  char buf[256];
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    s += std::string(buf) + "; ";
  }
  return s;
}

// A TLS 1.2-only client with the small stacks' limits; blocking I/O with bounded socket timeouts.
class SmallStack {
 public:
  SmallStack() = default;
  ~SmallStack() {
    if (ssl_) {
      (void)SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  SmallStack(const SmallStack&) = delete;
  SmallStack& operator=(const SmallStack&) = delete;

  // Handshake with the listener on 127.0.0.1:`port` as "localhost"; "" on success, else why not.
  std::string connect(std::uint16_t port, const std::string& ca, const testing::Issued& cert,
                      const std::string& cipher) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_ || SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx_, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx_, cipher.c_str()) != 1 ||
        SSL_CTX_set1_groups_list(ctx_, "P-256") != 1 ||
        SSL_CTX_set1_sigalgs_list(ctx_, "ECDSA+SHA256:RSA+SHA256") != 1 ||
        SSL_CTX_set_tlsext_max_fragment_length(ctx_, TLSEXT_max_fragment_length_4096) != 1 ||
        SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr) != 1 ||
        SSL_CTX_use_certificate_file(ctx_, cert.cert_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, cert.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return "context: " + openssl_errors();
    }
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, verify_like_a_small_stack);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};  // bounded: a stuck broker fails the test instead of hanging it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "tcp connect";
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");  // SNI, which AWS IoT requires
    SSL_set1_host(ssl_, "localhost");             // the demos check the server's name
    SSL_set_msg_callback(ssl_, &SmallStack::on_record);
    SSL_set_msg_callback_arg(ssl_, this);
    if (SSL_connect(ssl_) != 1) {
      return "handshake: " + openssl_errors() +
             " verify: " + X509_verify_cert_error_string(SSL_get_verify_result(ssl_));
    }
    return "";
  }

  bool write(const std::string& bytes) {
    return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) ==
           static_cast<int>(bytes.size());
  }

  // Exactly `n` bytes ("" when the connection ended or timed out first).
  std::string read(std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      const int r = SSL_read(ssl_, out.data() + got, static_cast<int>(n - got));
      if (r <= 0) return "";
      got += static_cast<std::size_t>(r);
    }
    return out;
  }

  // One MQTT packet: fixed header byte, then the body (its remaining-length decoded).
  std::pair<int, std::string> read_packet() {
    const std::string first = read(1);
    if (first.empty()) return {-1, ""};
    std::size_t length = 0;
    for (int shift = 0; shift < 28; shift += 7) {
      const std::string b = read(1);
      if (b.empty()) return {-1, ""};
      length |= static_cast<std::size_t>(b[0] & 0x7f) << shift;
      if ((b[0] & 0x80) == 0) break;
    }
    return {static_cast<unsigned char>(first[0]), read(length)};
  }

  SSL* ssl() { return ssl_; }
  // The largest TLS record the server sent, header excluded (ciphertext: plaintext + IV/MAC).
  std::size_t largest_record() const { return largest_record_; }
  std::size_t records_in() const { return records_in_; }

 private:
  static void on_record(int write_p, int, int content_type, const void* buf, std::size_t len, SSL*,
                        void* arg) {
    auto* self = static_cast<SmallStack*>(arg);
    if (write_p == 0 && content_type == SSL3_RT_HEADER && len == SSL3_RT_HEADER_LENGTH) {
      const auto* h = static_cast<const unsigned char*>(buf);
      self->largest_record_ = std::max<std::size_t>(self->largest_record_, (h[3] << 8) | h[4]);
      ++self->records_in_;
    }
  }

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  std::size_t largest_record_ = 0;
  std::size_t records_in_ = 0;
};

std::string remaining_length(std::size_t n) {
  std::string s;
  do {
    char b = static_cast<char>(n % 128);
    n /= 128;
    if (n > 0) b = static_cast<char>(b | 0x80);
    s += b;
  } while (n > 0);
  return s;
}

std::string with_length(std::string_view s) {
  return std::string{static_cast<char>(s.size() >> 8), static_cast<char>(s.size() & 0xff)} +
         std::string(s);
}

// MQTT 3.1.1 CONNECT, clean session, keep-alive 60 s [MQTT-3.1].
std::string connect_packet(std::string_view client_id) {
  const std::string body =
      with_length("MQTT") + std::string{4, 0x02, 0, 60} + with_length(client_id);
  return std::string{0x10} + remaining_length(body.size()) + body;
}

// SUBSCRIBE packet id 1, one filter at QoS 1 [MQTT-3.8].
std::string subscribe_packet(std::string_view filter) {
  const std::string body = std::string{0, 1} + with_length(filter) + std::string{1};
  return std::string{static_cast<char>(0x82)} + remaining_length(body.size()) + body;
}

using SmallTls = SecuredBroker;

class SmallTlsCipher : public SecuredBroker, public ::testing::WithParamInterface<const char*> {};

TEST_P(SmallTlsCipher, ATls12P256Sha256DeviceWith4KFragmentsGetsInAndIsServed) {
  SmallStack device;
  const std::string err =
      device.connect(broker_->tls_port(), ca_->cert_file(), issued("t1"), GetParam());
  ASSERT_EQ(err, "") << broker_->log();

  // What was negotiated is within the small stack's limits.
  SSL* ssl = device.ssl();
  EXPECT_EQ(SSL_version(ssl), TLS1_2_VERSION);
  EXPECT_STREQ(SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)), GetParam());
  EXPECT_EQ(SSL_get_negotiated_group(ssl), NID_X9_62_prime256v1);
  int nid = NID_undef;
  ASSERT_EQ(SSL_get_peer_signature_nid(ssl, &nid), 1);
  EXPECT_EQ(nid, NID_sha256) << "the server's handshake signature";
  ASSERT_EQ(SSL_get_peer_signature_type_nid(ssl, &nid), 1);
  EXPECT_EQ(nid, EVP_PKEY_EC) << "ecdsa_secp256r1_sha256";
  EXPECT_EQ(SSL_SESSION_get_max_fragment_length(SSL_get0_session(ssl)),
            TLSEXT_max_fragment_length_4096)
      << "the listener did not accept the 4,096-byte maximum fragment length";
  X509* server = SSL_get0_peer_certificate(ssl);
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(signed_with_sha256(server)) << "the server certificate must be signed with SHA-256";
  char group[64] = {};
  std::size_t group_len = 0;
  EXPECT_EQ(EVP_PKEY_get_group_name(X509_get0_pubkey(server), group, sizeof group, &group_len), 1);
  EXPECT_STREQ(group, "prime256v1") << "the server's key is on P-256";

  // MQTT 3.1.1 through it: admitted by fleetd, subscribed on its own topic.
  ASSERT_TRUE(device.write(connect_packet("t1")));
  EXPECT_EQ(device.read_packet(), (std::pair<int, std::string>{0x20, std::string{0, 0}}))
      << "CONNACK accepted\n"
      << broker_->log();
  ASSERT_TRUE(device.write(subscribe_packet("t1/firmware/chunk")));
  EXPECT_EQ(device.read_packet(), (std::pair<int, std::string>{0x90, std::string{0, 1, 1}}))
      << "SUBACK granted QoS 1";

  // A message larger than the fragment limit reaches it in records no larger than 4,096 bytes of
  // plaintext (OpenSSL would also fail the connection on a larger one: record_overflow).
  Peer cloud;
  trusted(cloud, "cloud");
  const std::string chunk(10000, 'x');
  const std::size_t records_before = device.records_in();
  ASSERT_EQ(cloud.publish("t1/firmware/chunk", chunk), ReasonCode::Success);
  auto [type, body] = device.read_packet();
  EXPECT_EQ(type & 0xf0, 0x30) << "PUBLISH";
  const std::string topic = "t1/firmware/chunk";
  ASSERT_GE(body.size(), 2 + topic.size() + 2 + chunk.size());
  EXPECT_EQ(body.substr(2, topic.size()), topic);
  EXPECT_EQ(body.substr(body.size() - chunk.size()), chunk);
  EXPECT_GE(device.records_in() - records_before, 3u) << "10,000 bytes in 4,096-byte records";
  // Ciphertext = plaintext + at most 64 bytes of IV, MAC and padding for these suites.
  EXPECT_LE(device.largest_record(), kMaxFragment + 64);
  std::cout << "[ small stack ] " << SSL_get_version(ssl) << " " << GetParam()
            << ", P-256, ecdsa_secp256r1_sha256, max fragment 4096: a 10,000-byte message came in "
            << device.records_in() - records_before << " records, the largest "
            << device.largest_record() << " bytes\n";
  ASSERT_TRUE(device.write(std::string{static_cast<char>(0xe0), 0}));  // DISCONNECT
}

// Both AEAD (AES-GCM) and, for stacks built without GCM, AES-CBC with SHA-256.
INSTANTIATE_TEST_SUITE_P(Suites, SmallTlsCipher,
                         ::testing::Values("ECDHE-ECDSA-AES128-GCM-SHA256",
                                           "ECDHE-ECDSA-AES128-SHA256"),
                         [](const ::testing::TestParamInfo<const char*>& i) {
                           std::string n = i.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST_F(SmallTls, TheSameRulesApplyToASmallStack) {
  SmallStack device;  // t1's certificate, t2's client id
  ASSERT_EQ(device.connect(broker_->tls_port(), ca_->cert_file(), issued("t1"),
                           "ECDHE-ECDSA-AES128-GCM-SHA256"),
            "");
  ASSERT_TRUE(device.write(connect_packet("t2")));
  EXPECT_EQ(device.read_packet(), (std::pair<int, std::string>{0x20, std::string{0, 5}}))
      << "CONNACK 5, not authorized";
}

TEST_F(SmallTls, ATls13DeviceGetsInOnTheSameListener) {
  Peer t1;  // edgekit's own TLS client: TLS 1.2 to 1.3, OpenSSL's defaults
  auto c = device(t1, "t1", "t1");
  ASSERT_TRUE(c) << mqtt::to_string(c.error());
  EXPECT_EQ(t1.tls_info().version, tls::Version::Tls13);
  // Accepted (0x00, or 0x10 while nobody subscribes), not refused.
  EXPECT_LT(static_cast<int>(t1.publish("t1/telemetry", "1.3")), 0x80);
}

// The small stacks' certificate rule, checked on its own: the fixture's server certificate passes,
// the same certificate signed with SHA-384 is refused — so the handshakes above prove something.
TEST_F(SmallTls, TheSmallStacksRefuseASha384SignedServerCertificate) {
  auto read_pem = [](const std::string& file, bool key) -> void* {
    FILE* f = std::fopen(file.c_str(), "r");
    if (!f) return nullptr;
    void* p = key ? static_cast<void*>(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr))
                  : static_cast<void*>(PEM_read_X509(f, nullptr, nullptr, nullptr));
    std::fclose(f);
    return p;
  };
  X509* ca = static_cast<X509*>(read_pem(ca_->cert_file(), false));
  EVP_PKEY* ca_key = static_cast<EVP_PKEY*>(read_pem(pki_ + "/ca.key", true));
  X509* server = static_cast<X509*>(read_pem(server_.cert_file, false));
  ASSERT_TRUE(ca && ca_key && server);
  X509* sha384 = X509_dup(server);
  ASSERT_GT(X509_sign(sha384, ca_key, EVP_sha384()), 0);

  auto verify = [&](X509* leaf) {
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_set_verify_cb(store, verify_like_a_small_stack);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, nullptr);
    const bool ok = X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
  };
  EXPECT_TRUE(signed_with_sha256(server));
  EXPECT_TRUE(verify(server)) << "the fixture's (SHA-256) server certificate";
  EXPECT_FALSE(signed_with_sha256(sha384));
  EXPECT_FALSE(verify(sha384)) << "a SHA-384-signed server certificate must be refused";
  X509_free(sha384);
  X509_free(server);
  EVP_PKEY_free(ca_key);
  X509_free(ca);
}

}  // namespace
}  // namespace edgekit::fleetd::test
