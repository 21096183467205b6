// The secured broker fixture (secured_broker.hpp): PKI, registry, Mosquitto with the plugin on a
// mutual-TLS device listener, and the fleetd binary.

#include "secured_broker.hpp"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>

#include "edgekit/testing/child_process.hpp"
#include "edgekit/testing/token_env.hpp"
#include "hooks/server.hpp"
#include "plugin_logic.hpp"
#include "provisioning/claim_wire.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::int64_t epoch_of(const ASN1_TIME* t) {
  std::tm tm{};
  ASN1_TIME_to_tm(t, &tm);
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace

pid_t spawn(std::vector<std::string> args, const std::string& log, const char* mode, int fd) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // A crashed test takes fleetd (or the device program) with it.
    if (!testing::die_with_parent(parent)) ::_exit(126);
    FILE* f = std::fopen(log.c_str(), mode);
    if (f) ::dup2(fileno(f), fd);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

CertFacts facts_of(const std::string& pem_file) {
  CertFacts f;
  std::ifstream in(pem_file);
  f.pem.assign(std::istreambuf_iterator<char>(in), {});
  BIO* bio = BIO_new_mem_buf(f.pem.data(), static_cast<int>(f.pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!x) return f;
  unsigned char* der = nullptr;
  int len = i2d_X509(x, &der);
  f.id = plugin::sha256_hex(der, static_cast<std::size_t>(len));
  OPENSSL_free(der);
  f.not_before = epoch_of(X509_get0_notBefore(x));
  f.not_after = epoch_of(X509_get0_notAfter(x));
  X509_free(x);
  return f;
}

void SecuredBroker::SetUp() {
  dir_ = fs::temp_directory_path() / ("edgekit-secured-" + std::to_string(::getpid()));
  fs::remove_all(dir_);
  fs::create_directories(dir_ / "state");
  pki_ = (dir_ / "pki").string();
  fs::create_directories(pki_);
  ca_ = std::make_unique<testing::TestCa>(pki_, "ca");
  foreign_ = std::make_unique<testing::TestCa>(pki_, "foreign");
  ASSERT_TRUE(ca_->ok() && foreign_->ok()) << ca_->error() << foreign_->error();
  testing::CertOptions server;
  server.server = true;
  server.common_name = "localhost";
  server.dns_names = {"localhost"};
  server.ip_addresses = {"127.0.0.1"};
  server_ = ca_->issue("server", server);
  for (const char* name : {"t1", "t2", "t3", "t4", "unregistered", "revoked", "expired", "claim"}) {
    testing::CertOptions o;
    o.common_name = name;
    // t4 is an RSA device (rsa_pkcs1_sha256 on small TLS 1.2 stacks); the others are P-256.
    if (std::string(name) == "t4") o.key_type = testing::KeyType::Rsa2048;
    if (std::string(name) == "expired") o.not_after = std::chrono::seconds{-60};
    devices_[name] = ca_->issue(name, o);
  }
  testing::CertOptions foreign;
  foreign.common_name = "t1";
  foreign_cert_ = foreign_->issue("foreign-t1", foreign);

  // The registry: t1, t2, t3 with their certificates; t3 may also use the shared reply topics.
  {
    auto db = open_sqlite({(dir_ / "state" / "fleetd.db").string()});
    ASSERT_TRUE(db) << db.error().message;
    auto store = Store::open(std::move(db.value()));
    ASSERT_TRUE(store) << store.error().message;
    auto ca = facts_of(ca_->cert_file());
    ASSERT_TRUE(store.value()->transact([&](Tx& t) -> Res<void> {
      if (auto r = t.register_ca({ca.id, ca.pem, CaStatus::Active, false, "", 0}); !r) {
        return fail(r.error());
      }
      if (auto r = t.create_policy({"replies", R"({"Statement":[
          {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
          {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":"arn:aws:iot:*:*:topicfilter/replies/*"},
          {"Effect":"Allow","Action":["iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/replies/*"},
          {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/*"},
          {"Effect":"Allow","Action":["iot:Subscribe"],"Resource":"arn:aws:iot:*:*:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/*"}]})", 0, 0});
          !r) {
        return fail(r.error());
      }
      // A claim certificate as fleet provisioning uses it: ACTIVE, no thing, the claim policy of
      // template "fleet" (the create calls and that template's topics only). It must not reach any
      // thing's topics.
      if (auto r = t.create_policy({"claim", provisioning::claim_policy_document("fleet"), 0, 0});
          !r) {
        return fail(r.error());
      }
      for (const char* name : {"t1", "t2", "t3", "t4", "revoked", "expired", "claim"}) {
        auto f = facts_of(devices_[name].cert_file);
        ids_[name] = f.id;
        Certificate c;
        c.id = f.id;
        c.pem = f.pem;
        c.ca_id = ca.id;
        c.status = std::string(name) == "revoked" ? CertificateStatus::Revoked
                                                  : CertificateStatus::Active;
        c.not_before = f.not_before;
        c.not_after = f.not_after;
        if (auto r = t.create_certificate(c); !r) return fail(r.error());
        if (std::string(name) == "claim") {
          if (auto r = t.attach_policy("claim", f.id); !r) return r;
          continue;
        }
        if (auto r = t.create_thing({name, "", {}, 0, 0}); !r) return fail(r.error());
        if (auto r = t.attach_thing_principal(name, f.id); !r) return r;
      }
      if (auto r = t.attach_policy("replies", ids_["t3"]); !r) return r;
      if (auto r = t.attach_policy("replies", ids_["t2"]); !r) return r;
      return {};
    }));
  }
  std::string cafile = ca_->cert_file();
  if (own_ca_) {
    ASSERT_NO_FATAL_FAILURE(make_ca_token(dir_));
    std::string out;
    std::vector<std::string> init{"--init-ca"};
    for (const auto& a : ca_flags(dir_)) init.push_back(a);
    ASSERT_EQ(run_fleetd(dir_, init, &out), 0) << out;
    // The device listener trusts the test CA and fleetd's chain.
    cafile = pki_ + "/device-cas.pem";
    std::ofstream(cafile) << testing::read_text_file(ca_->cert_file())
                          << testing::read_text_file((dir_ / "state" / "ca" / "chain.pem").string());
  }
  auto token = load_or_create_token((dir_ / "state" / "hooks.token").string());
  ASSERT_TRUE(token);
  token_ = token.value();
  hooks_port_ = testing::free_loopback_port();
  admin_port_ = testing::free_loopback_port();

  testing::MosquittoOptions o;
  o.allow_anonymous = false;
  o.extra_lines = {
      std::string("plugin ") + EDGEKIT_MOSQUITTO_PLUGIN,
      "plugin_opt_hooks_url http://127.0.0.1:" + std::to_string(hooks_port_),
      "plugin_opt_hooks_token_file " + (dir_ / "state" / "hooks.token").string(),
      "plugin_opt_timeout_ms 2000",
  };
  o.extra_lines.insert(o.extra_lines.end(), broker_lines_.begin(), broker_lines_.end());
  testing::MosquittoOptions::TlsListener t;
  t.cafile = cafile;
  if (broker_capath_) {
    t.capath = (dir_ / "state" / "broker-cas").string();
    fs::create_directories(t.capath);
  }
  if (own_ca_ && own_crlfile_) t.crlfile = (dir_ / "state" / "ca" / "crl.pem").string();
  t.certfile = server_.cert_file;
  t.keyfile = server_.key_file;
  t.require_certificate = true;
  // The device listener as docs/fleetd.md recommends it: small TLS 1.2 stacks and TLS 1.3 alike.
  t.tls_version = kDeviceTlsVersion;
  t.ciphers = kDeviceCiphers;
  o.tls = t;
  if (std::string(EDGEKIT_SANITIZER_PRELOAD).size() > 0) {
    // The plugin is built with the sanitizers of this build; the broker is not: preload them.
    o.environment = {std::string("LD_PRELOAD=") + EDGEKIT_SANITIZER_PRELOAD,
                     "ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0"};
  }
  broker_ = std::make_unique<testing::Mosquitto>(o);
  ASSERT_TRUE(broker_->start()) << broker_->error() << "\n" << broker_->log();
  start_fleetd();
}

void SecuredBroker::start_fleetd() {
  std::vector<std::string> args{FLEETD_BINARY, "--state-dir", (dir_ / "state").string(),
                                "--broker-port", std::to_string(broker_->port()),
                                "--hooks-port", std::to_string(hooks_port_), "--admin-port", std::to_string(admin_port_),
                                "--broker-client-id", "fleetd-test", "--log-format", "text"};
  if (own_ca_) {
    for (const auto& a : ca_flags(dir_)) args.push_back(a);
  }
  args.insert(args.end(), fleetd_flags_.begin(), fleetd_flags_.end());
  fleetd_log_ = (dir_ / "fleetd.log").string();
  // The log is appended to across restarts: wait for one more of each line than it holds now.
  auto count = [this](std::string_view text) { return fleetd_log_count(text); };
  const std::size_t hooks_before = count("hooks.listening");
  const std::size_t admin_before = count("admin.listening");
  const std::size_t link_before = count("broker.connected");
  fleetd_ = spawn(args, fleetd_log_, "a");
  ASSERT_GE(fleetd_, 0);
  ASSERT_TRUE(fleetd_logged("admin.listening", admin_before + 1, 10s))
      << testing::read_text_file(fleetd_log_);
  ASSERT_GT(count("hooks.listening"), hooks_before) << testing::read_text_file(fleetd_log_);
  // fleetd's own link is admitted by the plugin (user name + token, no certificate).
  ASSERT_TRUE(fleetd_logged("broker.connected", link_before + 1, 10s))
      << testing::read_text_file(fleetd_log_);
}

void make_ca_token(const fs::path& dir) {
  // In a folder of its own: a device token that a test makes lives elsewhere.
  const std::string module = testing::prepare_token_env(
      testing::TokenKind::Edgekit, (dir / "ca-token").string(), EDGEKIT_TOKEN_MODULE, "");
  {
    auto m = pkcs11::Module::load(module);
    ASSERT_TRUE(m) << m.error().message();
    ASSERT_TRUE(testing::init_test_token(*m, "fleetd-ca", "87654321", "1234"));
  }
  const std::string pin = (dir / "ca.pin").string();
  std::ofstream(pin) << "1234\n";
  fs::permissions(pin, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
}

std::vector<std::string> ca_flags(const fs::path& dir) {
  return {"--ca-pin-file", (dir / "ca.pin").string(), "--ca-module", EDGEKIT_TOKEN_MODULE,
          "--ca-token-dir", (dir / "ca-token" / "token").string()};
}

int run_fleetd(const fs::path& dir, const std::vector<std::string>& args, std::string* output) {
  std::vector<std::string> all{FLEETD_BINARY, "--state-dir", (dir / "state").string(),
                               "--log-format", "text"};
  all.insert(all.end(), args.begin(), args.end());
  const std::string log = (dir / "fleetd-run.log").string();
  const pid_t pid = spawn(all, log, "w");
  // A fleetd that does not exit by itself is a failure of the caller's expectation, not a hang.
  int status = 0;
  const auto end = std::chrono::steady_clock::now() + 30s;
  pid_t done = 0;
  while (pid > 0 && (done = ::waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(10ms);
  }
  if (done != pid) {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
    if (output) *output = testing::read_text_file(log);
    return -1;
  }
  if (output) *output = testing::read_text_file(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The admin token fleetd created in its state folder, as an Authorization header.
static httplib::Headers admin_auth(const fs::path& dir) {
  std::string token = testing::read_text_file((dir / "state" / "admin.token").string());
  while (!token.empty() && token.back() == '\n') token.pop_back();
  return {{"Authorization", "Bearer " + token}};
}

httplib::Result SecuredBroker::admin_get(const std::string& path) {
  httplib::Client c("127.0.0.1", admin_port_);
  return c.Get(path.c_str(), admin_auth(dir_));
}

httplib::Result SecuredBroker::admin_post_json(const std::string& path, const std::string& body) {
  httplib::Client c("127.0.0.1", admin_port_);
  return c.Post(path.c_str(), admin_auth(dir_), body, "application/json");
}

void SecuredBroker::TearDown() {
  if (fleetd_ > 0) testing::stop_child(fleetd_, SIGTERM, 5s);
  if (HasFailure()) {
    std::cerr << "--- mosquitto log ---\n" << (broker_ ? broker_->log() : "") << "\n--- fleetd log ---\n"
              << testing::read_text_file(fleetd_log_);
  }
  broker_.reset();
  fs::remove_all(dir_);
}

mqtt::Result<mqtt::ConnAck> SecuredBroker::device(Peer& p, const char* cert, std::string_view id,
                                                  mqtt::Version v) {
  return p.connect_tls(broker_->tls_port(), ca_->cert_file(), devices_[cert], id, v);
}

httplib::Result SecuredBroker::admin_post(const std::string& path) {
  return admin_post_json(path, "");
}

httplib::Result SecuredBroker::admin(const std::string& method, const std::string& path,
                                     const std::string& body) {
  httplib::Client c("127.0.0.1", admin_port_);
  const httplib::Headers h = admin_auth(dir_);
  if (method == "GET") return c.Get(path.c_str(), h);
  if (method == "PUT") return c.Put(path.c_str(), h, body, "application/json");
  if (method == "PATCH") return c.Patch(path.c_str(), h, body, "application/json");
  if (method == "DELETE") return c.Delete(path.c_str(), h, body, "application/json");
  return c.Post(path.c_str(), h, body, "application/json");
}

std::size_t SecuredBroker::fleetd_log_count(std::string_view text) const {
  const std::string log = testing::read_text_file(fleetd_log_);
  std::size_t n = 0;
  for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
  return n;
}

bool SecuredBroker::fleetd_logged(std::string_view text, std::size_t times,
                                  std::chrono::milliseconds limit) {
  auto count = [&] { return fleetd_log_count(text); };
  const auto end = std::chrono::steady_clock::now() + limit;
  while (count() < times && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(20ms);
  }
  return count() >= times;
}

std::chrono::milliseconds SecuredBroker::until_disconnected(Peer& p,
                                                            std::chrono::steady_clock::time_point start) {
  while (p.client().connected() && std::chrono::steady_clock::now() - start < 5s) {
    (void)p.client().process_loop(Duration{20});
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

void SecuredBroker::trusted(Peer& p, std::string_view id) {
  auto r = p.connect_tcp(broker_->port(), id, "fleetd", token_);
  ASSERT_TRUE(r) << mqtt::to_string(r.error());
}


}  // namespace edgekit::fleetd::test
