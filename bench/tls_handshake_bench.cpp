// TLS handshakes per second with the client key in a PEM file, in edgekit's PKCS#11 token and in
// SoftHSM2: full handshakes (no resumption), mutual authentication, EC P-256, TLS 1.3 and 1.2,
// against a local OpenSSL server thread that requires and verifies the client certificate.
// Reports the wall-clock rate of sequential handshakes and the client thread's CPU time per
// handshake (the server's work runs on its own thread). Not part of the test suite.
//
// Usage: tls_handshake_bench [handshakes per case, default 500]

#include <edgekit/pkcs11/client.hpp>
#include <edgekit/testing/test_pki.hpp>
#include <edgekit/tls/tls.hpp>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/ssl.h>
#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <vector>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace {

using namespace edgekit;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Accepts connections until stopped; each: handshake with a required client certificate, then
// read until the client closes.
class Server {
 public:
  Server(const testing::Issued& cert, const std::string& ca_file) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(ctx_, cert.cert_file.c_str());
    SSL_CTX_use_PrivateKey_file(ctx_, cert.key_file.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_load_verify_file(ctx_, ca_file.c_str());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    // Full handshakes only: no tickets, no session cache.
    SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx_, 0);
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    auto l = transport::TcpListener::bind("127.0.0.1", 0);
    if (l) listener_ = std::move(*l);
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        auto conn = listener_.accept(edgekit::Duration{200});
        if (!conn) continue;
        const int fd = conn->native_handle();
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        SSL* ssl = SSL_new(ctx_);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
          char buf[64];
          while (SSL_read(ssl, buf, sizeof buf) > 0) {
          }
        } else {
          failures_.fetch_add(1);
        }
        SSL_free(ssl);
      }
    });
  }
  ~Server() {
    stop_.store(true);
    thread_.join();
    SSL_CTX_free(ctx_);
  }
  std::uint16_t port() const { return listener_.port(); }
  int failures() const { return failures_.load(); }

 private:
  SSL_CTX* ctx_ = nullptr;
  transport::TcpListener listener_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
};

EVP_PKEY* public_key_of(pkcs11::Session& s, CK_OBJECT_HANDLE pub) {
  auto point = s.attribute(pub, CKA_EC_POINT);
  if (!point) return nullptr;
  const unsigned char* p = point->data();
  ASN1_OCTET_STRING* os = d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(point->size()));
  if (os == nullptr) return nullptr;
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, ASN1_STRING_get0_data(os),
                                   static_cast<std::size_t>(ASN1_STRING_length(os)));
  OSSL_PARAM* ps = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_fromdata_init(ctx) == 1) (void)EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, ps);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(ps);
  OSSL_PARAM_BLD_free(bld);
  ASN1_OCTET_STRING_free(os);
  return key;
}

// Initialises a token in `module`, generates a P-256 key inside it and has the CA certify it.
bool token_cert(const std::string& module, testing::TestCa& ca, const std::string& stem,
                testing::Issued& out) {
  auto m = pkcs11::Module::load(module);
  if (!m) return false;
  auto slots = m->slots(false);
  if (!slots || slots->empty()) return false;
  if (!m->init_token((*slots)[0], "so-secret", "bench")) return false;
  auto slot = m->find_token("bench");
  if (!slot) return false;
  {
    auto so = m->open_session(*slot, true);
    if (!so || !so->login(pkcs11::UserType::SecurityOfficer, "so-secret") || !so->init_pin("1234")) {
      return false;
    }
  }
  auto s = m->open_session(*slot, true);
  if (!s || !s->login(pkcs11::UserType::User, "1234")) return false;
  auto kp = s->generate_ec_key_pair(pkcs11::Curve::P256, {"tls", {0x01}, true});
  if (!kp) return false;
  EVP_PKEY* pub = public_key_of(*s, kp->public_key);
  if (pub == nullptr) return false;
  out = ca.issue_for_public_key(stem, pub, testing::CertOptions{});
  EVP_PKEY_free(pub);
  return ca.ok();
}

struct Case {
  std::string key_where;
  tls::Version version;
  std::optional<tls::TlsContext> ctx;
  std::string error;
  std::vector<double> rates;  // handshakes/s per round
  std::vector<double> cpu_us;  // client CPU µs per handshake per round
  int failures = 0;
};

Case make_case(const char* key_where, tls::Version v, const tls::Config& base) {
  Case c;
  c.key_where = key_where;
  c.version = v;
  tls::Config config = base;
  config.min_version = config.max_version = v;
  auto ctx = tls::TlsContext::create(config);
  if (ctx) c.ctx.emplace(std::move(*ctx));
  else c.error = ctx.error().message();
  return c;
}

void run_round(Case& c, std::uint16_t port, int count) {
  if (!c.ctx) return;
  const auto start = std::chrono::steady_clock::now();
  const double cpu0 = thread_cpu_seconds();
  for (int i = 0; i < count; ++i) {
    auto t = tls::TlsTransport::connect(*c.ctx, "localhost", port, edgekit::Duration{5000});
    if (!t) {
      ++c.failures;
      continue;
    }
    t->close();
  }
  const double cpu = thread_cpu_seconds() - cpu0;
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  c.rates.push_back(count / wall);
  c.cpu_us.push_back(cpu / count * 1e6);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int count = argc > 1 ? std::atoi(argv[1]) : 500;
  char tmpl[] = "/tmp/edgekit-tls-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  ::setenv("EDGEKIT_TOKEN_DIR", (dir + "/token").c_str(), 1);
  ::setenv("EDGEKIT_TOKEN_QUIET", "1", 1);
  std::filesystem::create_directories(dir + "/softhsm");
  std::ofstream(dir + "/softhsm2.conf") << "directories.tokendir = " << dir
                                        << "/softhsm\nobjectstore.backend = file\nlog.level = ERROR\n";
  ::setenv("SOFTHSM2_CONF", (dir + "/softhsm2.conf").c_str(), 1);

  testing::TestCa ca(dir, "ca");
  testing::CertOptions s;
  s.common_name = "localhost";
  s.dns_names = {"localhost"};
  s.server = true;
  testing::Issued server_cert = ca.issue("server", s);
  testing::Issued pem_client = ca.issue("client", testing::CertOptions{});
  if (!ca.ok()) {
    std::fprintf(stderr, "PKI: %s\n", ca.error().c_str());
    return 1;
  }
  Server server(server_cert, ca.cert_file());

  utsname u{};
  ::uname(&u);
  std::printf("TLS handshakes, %d per case in 5 interleaved rounds (medians), EC P-256, mutual auth, full handshakes; %s %s, %u "
              "hardware threads; %s\n\n",
              count, u.sysname, u.machine, std::thread::hardware_concurrency(),
              OpenSSL_version(OPENSSL_VERSION));
  std::printf("| client key | version | handshakes/s | client CPU µs/handshake | failures |\n");
  std::printf("|---|---|---:|---:|---:|\n");

  tls::Config base;
  base.ca_file = ca.cert_file();
  base.certificate_file = pem_client.cert_file;
  base.private_key_file = pem_client.key_file;
  std::vector<Case> cases;
  for (auto v : {tls::Version::Tls13, tls::Version::Tls12}) {
    cases.push_back(make_case("PEM file", v, base));
  }
  struct TokenCase {
    const char* name;
    const char* module;
  };
  for (TokenCase tc : {TokenCase{"edgekit token", EDGEKIT_TOKEN_MODULE},
                       TokenCase{"SoftHSM2", EDGEKIT_SOFTHSM2_MODULE}}) {
    testing::Issued cert;
    if (std::string(tc.module).empty() ||
        !token_cert(tc.module, ca, std::string("token-") + tc.name[0], cert)) {
      Case c;
      c.key_where = tc.name;
      c.error = std::string(tc.module).empty() ? "not installed" : "token setup failed";
      cases.push_back(std::move(c));
      continue;
    }
    tls::Config c = base;
    c.private_key_file.clear();
    c.certificate_file = cert.cert_file;
    c.token_key = tls::TokenKey{tc.module, "bench", "1234", "tls", {}};
    for (auto v : {tls::Version::Tls13, tls::Version::Tls12}) cases.push_back(make_case(tc.name, v, c));
  }
  // Interleaved rounds, medians: a loaded machine's slow spells hit every case alike.
  constexpr int kRounds = 5;
  for (Case& c : cases) run_round(c, server.port(), 5);  // warm-up
  for (Case& c : cases) {
    c.rates.clear();
    c.cpu_us.clear();
  }
  for (int r = 0; r < kRounds; ++r) {
    for (Case& c : cases) run_round(c, server.port(), count / kRounds);
  }
  for (const Case& c : cases) {
    const char* v = c.version == tls::Version::Tls13 ? "TLS 1.3" : "TLS 1.2";
    if (!c.ctx) {
      std::printf("| %s | %s | %s | | |\n", c.key_where.c_str(), v, c.error.c_str());
      continue;
    }
    std::printf("| %s | %s | %.0f | %.0f | %d |\n", c.key_where.c_str(), v, median(c.rates),
                median(c.cpu_us), c.failures);
  }
  if (server.failures() != 0) std::printf("\nserver-side handshake failures: %d\n", server.failures());
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
