// sim::IdentityFactory: identities that are distinct, named, issued as fleetd checks them
// (pki::verify_chain, strict X.509), cached and reused, and good for mutual TLS against a real
// Mosquitto that trusts the factory's CA, hundreds at once on one io_context thread.
#include <edgekit/pki/certificate.hpp>
#include <edgekit/testing/mosquitto.hpp>
#include <edgekit/testing/test_pki.hpp>
#include <gtest/gtest.h>
#include <openssl/x509.h>

#include <asio/io_context.hpp>
#include <stdlib.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "evloop_test_support.hpp"
#include "identity.hpp"
#include "identity_test_support.hpp"

namespace edgekit::sim {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A private directory, removed with its contents.
struct ScratchDir {
  ScratchDir() {
    char name[] = "/tmp/edgekit-simid-XXXXXX";
    if (::mkdtemp(name) != nullptr) path = name;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
  std::string path;
};

std::string der_of(const tls::ClientIdentity& id) {
  unsigned char* der = nullptr;
  const int n = i2d_X509(id.certificate(), &der);
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n > 0 ? n : 0));
  OPENSSL_free(der);
  return out;
}

pki::CertificateInfo info_of(const tls::ClientIdentity& id) {
  const std::string der = der_of(id);
  auto c = pki::parse_certificate(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(der.data()), der.size()));
  EXPECT_TRUE(c) << c.error().message;
  return c ? *c : pki::CertificateInfo{};
}

TEST(IdentityFactory, MakesDistinctDevicesNamedByIndexThatFleetdWouldAccept) {
  IdentityOptions o;
  o.prefix = "valve";
  o.subject_fields = {{"C", "DE"}};
  auto f = IdentityFactory::create(o);
  ASSERT_TRUE(f) << f.error();
  auto ids = f->identities(40, 10);
  ASSERT_TRUE(ids) << ids.error();
  ASSERT_EQ(ids->size(), 40u);
  auto ca = pki::parse_certificate(f->ca_certificate_pem());
  ASSERT_TRUE(ca) << ca.error().message;
  EXPECT_TRUE(ca->is_ca);
  std::set<pki::Bytes> keys;
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  for (std::size_t i = 0; i < ids->size(); ++i) {
    const DeviceIdentity& d = (*ids)[i];
    const std::string name = "valve-" + std::to_string(10 + i);
    EXPECT_EQ(d.thing_name, name);
    EXPECT_EQ(d.tls.common_name(), name);
    const pki::CertificateInfo c = info_of(d.tls);
    EXPECT_EQ(c.key_algorithm, pki::KeyAlgorithm::EcP256);
    EXPECT_EQ(c.signature_algorithm, pki::SignatureAlgorithm::EcdsaSha256);
    EXPECT_FALSE(c.is_ca);
    EXPECT_FALSE(c.authority_key_id.empty());
    // The check fleetd's JITP makes at a device's first connection.
    EXPECT_TRUE(pki::verify_chain(c, {}, std::span(&*ca, 1), now)) << name;
    EXPECT_TRUE(keys.insert(c.public_key_der).second) << name << " repeats a key";
  }
  EXPECT_EQ(f->counters().made, 40u);
  EXPECT_EQ(f->counters().loaded, 0u);
}

TEST(IdentityFactory, RefusesAPrefixNoThingNameMayHave) {
  IdentityOptions o;
  o.prefix = "a/b";
  auto f = IdentityFactory::create(o);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().find("a/b"), std::string::npos) << f.error();
}

TEST(IdentityFactory, ARerunReusesTheCacheAndRemakesWhatIsBroken) {
  ScratchDir dir;
  IdentityOptions o;
  o.prefix = "cached";
  o.cache_dir = dir.path + "/ids";
  std::vector<std::string> first;
  std::string ca_pem;
  {
    auto f = IdentityFactory::create(o);
    ASSERT_TRUE(f) << f.error();
    auto ids = f->identities(12);
    ASSERT_TRUE(ids) << ids.error();
    for (const auto& d : *ids) first.push_back(der_of(d.tls));
    ca_pem = f->ca_certificate_pem();
    EXPECT_EQ(f->counters().made, 12u);
  }
  EXPECT_EQ(fs::status(o.cache_dir + "/ca.key").permissions() & fs::perms::group_all, fs::perms::none);
  EXPECT_EQ(fs::status(o.cache_dir + "/cached-3.pem").permissions() & fs::perms::others_all,
            fs::perms::none);
  {
    auto f = IdentityFactory::create(o);
    ASSERT_TRUE(f) << f.error();
    EXPECT_EQ(f->ca_certificate_pem(), ca_pem);
    auto ids = f->identities(12);
    ASSERT_TRUE(ids) << ids.error();
    for (std::size_t i = 0; i < ids->size(); ++i) EXPECT_EQ(der_of((*ids)[i].tls), first[i]) << i;
    EXPECT_EQ(f->counters().loaded, 12u);
    EXPECT_EQ(f->counters().made, 0u);
  }
  // A torn file and a file of another device: both made again, the rest reused.
  std::ofstream(o.cache_dir + "/cached-4.pem", std::ios::trunc) << "-----BEGIN CERT";
  fs::copy_file(o.cache_dir + "/cached-6.pem", o.cache_dir + "/cached-5.pem",
                fs::copy_options::overwrite_existing);
  {
    auto f = IdentityFactory::create(o);
    ASSERT_TRUE(f) << f.error();
    auto ids = f->identities(12);
    ASSERT_TRUE(ids) << ids.error();
    EXPECT_EQ(f->counters().made, 2u);
    EXPECT_EQ(f->counters().loaded, 10u);
    EXPECT_EQ((*ids)[5].tls.common_name(), "cached-5");
    EXPECT_NE(der_of((*ids)[4].tls), first[4]);
  }
  // Without the CA's key the CA is new, and so is every device.
  fs::remove(o.cache_dir + "/ca.key");
  {
    auto f = IdentityFactory::create(o);
    ASSERT_TRUE(f) << f.error();
    EXPECT_NE(f->ca_certificate_pem(), ca_pem);
    auto ids = f->identities(12);
    ASSERT_TRUE(ids) << ids.error();
    EXPECT_EQ(f->counters().made, 12u);
  }
}

TEST(DeviceCrypto, MeasuresEveryStep) {
  auto cost = measure_device_crypto(3);
  ASSERT_TRUE(cost) << cost.error();
  EXPECT_EQ(cost->rounds, 3u);
  EXPECT_GT(cost->keygen_us, 0);
  EXPECT_GT(cost->cert_sign_us, 0);
  EXPECT_GT(cost->handshake_client_us, 0);
  EXPECT_GT(cost->handshake_server_us, 0);
}

// Hundreds of the factory's devices on one io_context thread against a Mosquitto that trusts
// the factory's CA (written out as a user would register it) and names each client by its CN.
TEST(IdentityFactory, HundredsOfItsDevicesConnectToABrokerThatTrustsItsCa) {
  const std::size_t n = mqtt_asio::test::env_size("EDGEKIT_SIM_ID_SCALE", 200);
  ScratchDir dir;
  mqtt_asio::test::TestPki broker_pki(dir.path);  // the broker's own certificate
  ASSERT_TRUE(broker_pki.ca.ok()) << broker_pki.ca.error();
  IdentityOptions o;
  o.prefix = "fleet";
  auto f = IdentityFactory::create(o);
  ASSERT_TRUE(f) << f.error();
  ASSERT_TRUE(f->write_ca_certificate(dir.path + "/devices-ca.crt"));
  testing::MosquittoOptions bo = mqtt_asio::test::identity_broker(broker_pki, dir.path);
  bo.tls->cafile = dir.path + "/devices-ca.crt";  // clients: the factory's CA only
  testing::Mosquitto broker(bo);
  ASSERT_TRUE(broker.start()) << broker.error();
  auto ctx = tls::TlsContext::create(mqtt_asio::test::shared_config(broker_pki));
  ASSERT_TRUE(ctx) << ctx.error().message();

  asio::io_context io(1);
  mqtt_asio::Driver driver(io);
  auto ids = f->identities(n);
  ASSERT_TRUE(ids) << ids.error();
  std::vector<std::unique_ptr<mqtt_asio::test::IdDevice>> devices;
  for (std::size_t i = 0; i < n; ++i) {
    devices.push_back(std::make_unique<mqtt_asio::test::IdDevice>(
        driver, (*ids)[i].thing_name, "fleet-" + std::to_string((i + 1) % n),
        std::move((*ids)[i].tls)));
  }
  std::size_t next = 0;
  std::size_t finished = 0;
  const bool all = mqtt_asio::test::run_until(
      io,
      [&] {
        finished = 0;
        for (std::size_t i = 0; i < next; ++i) {
          finished += devices[i]->done() || !devices[i]->failure_.empty() ? 1 : 0;
        }
        while (next < n && next - finished < 32) devices[next++]->start(*ctx, broker.tls_port());
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
  EXPECT_TRUE(mqtt_asio::test::run_until(
      io,
      [&] {
        for (const auto& d : devices) {
          if (!d->closed_) return false;
        }
        return true;
      },
      30s));
}

}  // namespace
}  // namespace edgekit::sim
