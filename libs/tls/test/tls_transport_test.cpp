// The transport contract over a local OpenSSL test server (a thread with a blocking SSL server):
// bytes OpenSSL already holds make `wait` ready although the socket is empty, partial reads,
// large gathered writes with WouldBlock, ALPN, and close_notify in both directions.

#include <edgekit/testing/test_pki.hpp>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <functional>
#include <thread>

#include "tls_test_support.hpp"

namespace edgekit::tls::test {
namespace {

using transport::Interest;
using transport::IoStatus;
using transport::WaitStatus;

// Accepts one connection and runs `script` on the server's SSL object (blocking socket).
class TestServer {
 public:
  using Script = std::function<void(SSL*)>;

  TestServer(const testing::Issued& cert, Script script) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(ctx_, cert.cert_file.c_str());
    SSL_CTX_use_PrivateKey_file(ctx_, cert.key_file.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_set_alpn_select_cb(ctx_, &select_alpn, nullptr);
    auto l = transport::TcpListener::bind("127.0.0.1", 0);
    EXPECT_TRUE(l);
    listener_ = std::move(*l);
    thread_ = std::thread([this, script = std::move(script)] {
      // This server writes through OpenSSL's socket BIO (write(2)); when the client under test
      // has already gone (an ALPN refusal, a close), that raises SIGPIPE, which would kill the
      // test binary. Blocked in this thread only, so a SIGPIPE from the client side (the
      // library under test must never raise one) still ends the test.
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      auto conn = listener_.accept(edgekit::Duration{5000});
      if (!conn) return;
      const int fd = conn->native_handle();
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) script(ssl);
      SSL_free(ssl);
    });
  }
  ~TestServer() {
    if (thread_.joinable()) thread_.join();
    SSL_CTX_free(ctx_);
  }
  std::uint16_t port() const { return listener_.port(); }

 private:
  // Selects "x-amzn-mqtt-ca" when offered, refuses other offers (RFC 7301 3.2).
  static int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len,
                         const unsigned char* in, unsigned in_len, void*) {
    static const unsigned char kWanted[] = "\x0ex-amzn-mqtt-ca";
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, out_len, kWanted, sizeof kWanted - 1, in, in_len) ==
        OPENSSL_NPN_NEGOTIATED) {
      *out = selected;
      return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }

  SSL_CTX* ctx_ = nullptr;
  transport::TcpListener listener_;
  std::thread thread_;
};

class LocalServer : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = std::make_unique<testing::TestCa>(dir_.path, "ca");
    testing::CertOptions s;
    s.common_name = "localhost";
    s.dns_names = {"localhost"};
    s.server = true;
    server_cert_ = ca_->issue("server", s);
    ASSERT_TRUE(ca_->ok()) << ca_->error();
  }

  TlsTransport connect(std::uint16_t port, std::vector<std::string> alpn = {}) {
    Config c;
    c.ca_file = ca_->cert_file();
    c.alpn = std::move(alpn);
    auto ctx = TlsContext::create(c);
    EXPECT_TRUE(ctx) << ctx.error().message();
    auto t = TlsTransport::connect(*ctx, "localhost", port, edgekit::Duration{5000});
    EXPECT_TRUE(t) << t.error().message();
    return t ? std::move(*t) : TlsTransport();
  }

  TempDir dir_;
  std::unique_ptr<testing::TestCa> ca_;
  testing::Issued server_cert_;
};

std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s)); }

TEST_F(LocalServer, WaitIsReadyForBytesOpenSslHoldsWhileTheSocketIsEmpty) {
  TestServer server(server_cert_, [](SSL* ssl) {
    const std::string record(100, 'x');
    SSL_write(ssl, record.data(), static_cast<int>(record.size()));  // one TLS record
    char c;
    SSL_read(ssl, &c, 1);  // stay until the client says it is done
  });
  TlsTransport t = connect(server.port());
  ASSERT_TRUE(t.is_open());
  ASSERT_EQ(t.wait(Interest::Read, 5000), WaitStatus::Ready);
  std::array<std::byte, 10> small{};
  auto r = t.recv(small);
  while (r.status == IoStatus::WouldBlock) {  // session tickets came first
    ASSERT_EQ(t.wait(Interest::Read, 5000), WaitStatus::Ready);
    r = t.recv(small);
  }
  ASSERT_EQ(r.status, IoStatus::Ok);
  EXPECT_EQ(r.bytes, 10u);  // a partial read of the record
  EXPECT_EQ(t.pending(), 90u);
  pollfd p{t.native_handle(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the socket itself has nothing to read";
  EXPECT_EQ(t.wait(Interest::Read, 0), WaitStatus::Ready);
  std::array<std::byte, 200> rest{};
  r = t.recv(rest);
  ASSERT_EQ(r.status, IoStatus::Ok);
  EXPECT_EQ(r.bytes, 90u);
  EXPECT_EQ(t.pending(), 0u);
  EXPECT_EQ(t.wait(Interest::Read, 50), WaitStatus::Timeout);
  r = t.recv(rest);
  EXPECT_EQ(r.status, IoStatus::WouldBlock);
  ASSERT_EQ(t.send(bytes("k")).status, IoStatus::Ok);
}

TEST_F(LocalServer, LargeGatheredWritesEchoBackIntact) {
  constexpr std::size_t kTotal = 300 * 1024;
  TestServer server(server_cert_, [](SSL* ssl) {
    std::vector<char> buf(8192);
    std::size_t echoed = 0;
    while (echoed < kTotal) {
      const int n = SSL_read(ssl, buf.data(), static_cast<int>(buf.size()));
      if (n <= 0) return;
      if (SSL_write(ssl, buf.data(), n) != n) return;
      echoed += static_cast<std::size_t>(n);
    }
    SSL_shutdown(ssl);
  });
  TlsTransport t = connect(server.port());
  ASSERT_TRUE(t.is_open());
  std::string head(5, 'h');
  std::string body(kTotal - 5, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  const std::string expected = head + body;
  std::size_t sent = 0;
  std::string got;
  std::vector<std::byte> rx(4096);
  while (got.size() < kTotal) {
    if (sent < kTotal) {
      // Offer the rest as header + body, as the MQTT client does for a PUBLISH.
      const std::size_t head_left = sent < head.size() ? head.size() - sent : 0;
      const std::size_t body_off = sent < head.size() ? 0 : sent - head.size();
      std::array<transport::ConstBuffer, 2> bufs{
          bytes(head).subspan(head.size() - head_left),
          bytes(body).subspan(body_off)};
      auto w = t.writev(bufs);
      ASSERT_NE(w.status, IoStatus::Error) << t.last_error().message();
      ASSERT_NE(w.status, IoStatus::Closed);
      if (w.status == IoStatus::Ok) {
        EXPECT_LE(w.bytes, 16384u);  // one record per call
        sent += w.bytes;
      }
    }
    auto r = t.recv(rx);
    if (r.status == IoStatus::Ok) {
      got.append(reinterpret_cast<const char*>(rx.data()), r.bytes);
    } else {
      ASSERT_EQ(r.status, IoStatus::WouldBlock) << t.last_error().message();
      ASSERT_NE(t.wait(sent < kTotal ? Interest::ReadWrite : Interest::Read, 5000),
                WaitStatus::Timeout);
    }
  }
  EXPECT_EQ(got, expected);
  // The server's close_notify is an orderly Closed.
  transport::IoResult r{};
  do {
    ASSERT_EQ(t.wait(Interest::Read, 5000), WaitStatus::Ready);
    r = t.recv(rx);
  } while (r.status == IoStatus::WouldBlock);
  EXPECT_EQ(r.status, IoStatus::Closed);
}

TEST_F(LocalServer, AlpnIsNegotiatedAndARefusalIsNamed) {
  {
    TestServer server(server_cert_, [](SSL* ssl) {
      char c;
      SSL_read(ssl, &c, 1);
    });
    TlsTransport t = connect(server.port(), {"mqtt", "x-amzn-mqtt-ca"});
    ASSERT_TRUE(t.is_open());
    EXPECT_EQ(t.info().alpn, "x-amzn-mqtt-ca");
    EXPECT_EQ(t.send(bytes("k")).status, IoStatus::Ok);
  }
  TestServer server(server_cert_, [](SSL*) {});
  Config c;
  c.ca_file = ca_->cert_file();
  c.alpn = {"mqtt"};
  auto ctx = TlsContext::create(c);
  ASSERT_TRUE(ctx);
  auto r = TlsTransport::connect(*ctx, "localhost", server.port(), edgekit::Duration{5000});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().cause, Cause::ServerAlert);
  EXPECT_EQ(r.error().message(), "server alert: no application protocol");
}

TEST_F(LocalServer, CloseSendsCloseNotify) {
  int server_saw = -1;
  {
    TestServer server(server_cert_, [&](SSL* ssl) {
      char c;
      const int n = SSL_read(ssl, &c, 1);
      server_saw = SSL_get_error(ssl, n);
    });
    TlsTransport t = connect(server.port());
    ASSERT_TRUE(t.is_open());
    t.close();
    EXPECT_FALSE(t.is_open());
    t.close();  // idempotent
    EXPECT_EQ(t.send(bytes("x")).status, IoStatus::Closed);
    std::array<std::byte, 4> b{};
    EXPECT_EQ(t.recv(b).status, IoStatus::Closed);
    EXPECT_EQ(t.wait(Interest::Read, 0), WaitStatus::Error);
  }
  EXPECT_EQ(server_saw, SSL_ERROR_ZERO_RETURN);
  TlsTransport moved_from;
  EXPECT_EQ(moved_from.send(bytes("x")).status, IoStatus::Closed);
}

// The server vanishes (socket closed without close_notify) and the client keeps writing: the
// transport reports an error or Closed; it must not raise SIGPIPE, which would kill the device
// process (OpenSSL's own socket BIO writes with write(2) and would).
TEST_F(LocalServer, WritingToAVanishedServerIsAnErrorNotSigpipe) {
  TestServer server(server_cert_, [](SSL* ssl) {
    ::shutdown(SSL_get_fd(ssl), SHUT_RDWR);  // gone, no close_notify
  });
  TlsTransport t = connect(server.port());
  ASSERT_TRUE(t.is_open());
  const std::string chunk(4096, 'x');
  IoStatus last = IoStatus::Ok;
  for (int i = 0; i < 2000 && (last == IoStatus::Ok || last == IoStatus::WouldBlock); ++i) {
    last = t.send(bytes(chunk)).status;
    if (last == IoStatus::WouldBlock) t.wait(Interest::Write, 100);
  }
  EXPECT_TRUE(last == IoStatus::Error || last == IoStatus::Closed);
}

}  // namespace
}  // namespace edgekit::tls::test
