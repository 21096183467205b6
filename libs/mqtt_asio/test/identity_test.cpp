// Per-connection client identities (Endpoint::identity): one TlsContext (the CA and the server
// checks) for every device, each device connecting with its own key and certificate, against a
// real Mosquitto that requires client certificates and takes the certificate's CN as the user
// name, with an ACL that lets each user touch only its own topic. So a device that gets its own
// message back and is refused a publish to its neighbour's topic proves the broker saw that
// device's CN. (Mosquitto 2.0 grants every SUBSCRIBE and applies read rules at delivery, so the
// refusal is tested on PUBLISH.)
//
// Scale from the environment: EDGEKIT_EVLOOP_ID_SCALE devices (default 300).

#include <edgekit/testing/mosquitto.hpp>
#include <edgekit/testing/test_pki.hpp>
#include <edgekit/tls/tls.hpp>

#include <asio/io_context.hpp>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "evloop_test_support.hpp"
#include "identity_test_support.hpp"
#include "tls_test_support.hpp"

namespace edgekit::mqtt_asio::test {
namespace {

using namespace std::chrono_literals;
using mqtt::EventType;

class PerConnectionIdentity : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path.empty());
    pki_ = std::make_unique<TestPki>(dir_.path);
    ASSERT_TRUE(pki_->ca.ok()) << pki_->ca.error();
    broker_ = std::make_unique<testing::Mosquitto>(identity_broker(*pki_, dir_.path));
    ASSERT_TRUE(broker_->start()) << broker_->error() << "\n" << broker_->log();
    auto ctx = tls::TlsContext::create(shared_config(*pki_));
    ASSERT_TRUE(ctx) << ctx.error().message();
    context_.emplace(std::move(*ctx));
  }
  void TearDown() override {
    if (broker_ && HasFailure()) {
      const std::string log = broker_->log();
      std::cerr << "--- mosquitto log (tail) ---\n" << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
    }
  }

  // A device identity issued by `ca` with CN `cn`.
  tls::ClientIdentity issue(testing::TestCa& ca, const std::string& cn) {
    testing::CertOptions o;
    o.common_name = cn;
    const testing::Issued i = ca.issue(cn, o);
    auto id = tls::ClientIdentity::from_files(i.cert_file, i.key_file);
    EXPECT_TRUE(id) << cn << ": " << id.error().message();
    return id ? std::move(*id) : tls::ClientIdentity{};
  }

  // Connects one device with `identity` and waits until it is closed; returns it.
  std::unique_ptr<IdDevice> connect_one(tls::ClientIdentity identity, const std::string& cn) {
    auto d = std::make_unique<IdDevice>(driver_, cn, cn + "-other", std::move(identity));
    d->start(*context_, broker_->tls_port());
    EXPECT_TRUE(run_until(io_, [&] { return d->closed_; }, 15s)) << cn << " never closed";
    return d;
  }

  tls::test::TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<testing::Mosquitto> broker_;
  std::optional<tls::TlsContext> context_;
  asio::io_context io_{1};
  Driver driver_{io_};
};

TEST_F(PerConnectionIdentity, HundredsOfDevicesOnOneThreadEachAreTheirOwnCommonName) {
  const std::size_t n = env_size("EDGEKIT_EVLOOP_ID_SCALE", 300);
  std::vector<std::unique_ptr<IdDevice>> devices;
  devices.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string cn = "dev-" + std::to_string(i);
    devices.push_back(std::make_unique<IdDevice>(driver_, cn, "dev-" + std::to_string((i + 1) % n),
                                                 issue(pki_->ca, cn)));
    ASSERT_TRUE(devices.back()->identity_.valid());
    ASSERT_EQ(devices.back()->identity_.common_name(), cn);
  }
  // 32 handshakes in flight at once: the listen backlog never drops a SYN.
  std::size_t next = 0;
  std::size_t finished = 0;
  const auto start_more = [&] {
    while (next < n && next - finished < 32) devices[next++]->start(*context_, broker_->tls_port());
  };
  start_more();
  const bool all = run_until(
      io_,
      [&] {
        finished = 0;
        for (std::size_t i = 0; i < next; ++i) {
          finished += devices[i]->done() || !devices[i]->failure_.empty() ? 1 : 0;
        }
        start_more();
        return finished == n;
      },
      std::chrono::seconds(60 + n / 10));
  std::size_t ok = 0;
  std::string first;
  for (const auto& d : devices) {
    ok += d->done() && d->failure_.empty() ? 1 : 0;
    if (first.empty() && !d->failure_.empty()) first = d->failure_;
  }
  EXPECT_TRUE(all);
  EXPECT_EQ(ok, n) << first;
  for (auto& d : devices) (void)d->conn_.disconnect();
  EXPECT_TRUE(run_until(
      io_,
      [&] {
        for (const auto& d : devices) {
          if (!d->closed_) return false;
        }
        return true;
      },
      30s));
  for (const auto& d : devices) EXPECT_FALSE(d->close_error_) << d->cn_ << ": " << d->close_error_.message();
}

TEST_F(PerConnectionIdentity, AMismatchedKeyAndCertificateIsRefusedWhenTheIdentityIsMade) {
  testing::CertOptions o;
  o.common_name = "a";
  const testing::Issued a = pki_->ca.issue("a", o);
  o.common_name = "b";
  const testing::Issued b = pki_->ca.issue("b", o);
  auto id = tls::ClientIdentity::from_files(a.cert_file, b.key_file);
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().cause, tls::Cause::KeyCertificateMismatch) << id.error().message();
}

TEST_F(PerConnectionIdentity, AnIdentityTheContextRefusesFailsTheConnectionWithItsOwnCause) {
  // Security level 4 asks for 192-bit keys: OpenSSL refuses a P-256 certificate on the SSL
  // ("ee key too small") before anything is sent.
  tls::Config c = shared_config(*pki_);
  c.cipher_list_tls12 = "DEFAULT:@SECLEVEL=4";
  auto strict = tls::TlsContext::create(c);
  ASSERT_TRUE(strict) << strict.error().message();
  context_.emplace(std::move(*strict));
  auto d = connect_one(issue(pki_->ca, "weak"), "weak");
  EXPECT_EQ(d->close_error_, make_error_code(Errc::TlsClientIdentityRejected))
      << d->close_error_.message();
  EXPECT_EQ(d->failure_.rfind("weak: event ", 0), 0u) << "a ConnectFailed event: " << d->failure_;
}

TEST_F(PerConnectionIdentity, ACertificateFromAForeignCaIsRefusedWithTheServersAlert) {
  tls::test::TempDir other_dir;
  testing::TestCa foreign(other_dir.path, "foreign");
  ASSERT_TRUE(foreign.ok()) << foreign.error();
  auto d = connect_one(issue(foreign, "intruder"), "intruder");
  EXPECT_EQ(d->close_error_, make_error_code(Errc::TlsServerAlert)) << d->close_error_.message();
  EXPECT_EQ(d->conn_.tls_alert(), 48);  // unknown_ca (RFC 8446 6.2)
  EXPECT_EQ(tls::alert_name(d->conn_.tls_alert()), "unknown CA");
  EXPECT_FALSE(d->done());
}

}  // namespace
}  // namespace edgekit::mqtt_asio::test
