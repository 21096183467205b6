// Process-level faults of the secured system: the real Mosquitto (with the plugin), the fleetd
// binary and its SQLite store. A broker restart under fleetd, and fleetd SIGKILLed in the middle
// of a burst of registry writes made through its admin API.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "edgekit/json/json.hpp"
#include "edgekit/testing/child_process.hpp"
#include "secured_broker.hpp"
#include "edgekit/pki/csr.hpp"
#include "edgekit/pki/keys.hpp"
#include "edgekit/pki/name.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class FleetdFaults : public SecuredBroker {};

// Broker restart (stop, then start on the same port): fleetd sees its link drop, reconnects by
// itself, subscribes again (the presence events of a device that connects afterwards reach it),
// and a revocation made through the admin API afterwards still kicks a live device.
TEST_F(FleetdFaults, BrokerRestartFleetdReconnectsAndResubscribesByItself) {
  ASSERT_TRUE(fleetd_logged("broker.subscribed", 1, 10s));
  {
    Peer t4;
    ASSERT_TRUE(device(t4, "t4", "t4"));
    ASSERT_TRUE(fleetd_logged("presence.connected client_id=t4", 1, 5s))
        << "fleetd did not see t4 connect before the restart";
  }

  broker_->stop();
  ASSERT_TRUE(fleetd_logged("broker.link_down", 1, 5s));
  // While the broker is away fleetd keeps trying (and failing) on its own.
  ASSERT_TRUE(fleetd_logged("broker.connect_failed", 1, 5s));
  ASSERT_TRUE(broker_->restart()) << broker_->error();

  ASSERT_TRUE(fleetd_logged("connects=2", 1, 15s)) << "fleetd did not reconnect";
  ASSERT_TRUE(fleetd_logged("broker.subscribed", 2, 5s)) << "fleetd did not subscribe again";

  Peer t1;
  ASSERT_TRUE(device(t1, "t1", "t1")) << "the plugin no longer admits a registered device";
  EXPECT_TRUE(fleetd_logged("presence.connected client_id=t1", 1, 5s))
      << "the presence subscription did not come back";
  EXPECT_EQ(t1.publish("t1/telemetry", "after the restart"), ReasonCode::NoMatchingSubscribers);

  const auto start = std::chrono::steady_clock::now();
  auto r = admin_post("/admin/v1/certificates/" + ids_["t1"] + "/revoke");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto took = until_disconnected(t1, start);
  EXPECT_FALSE(t1.client().connected()) << "the kick did not go out over the new link";
  std::cout << "[ measured ] revoke to disconnect after a broker restart: " << took.count()
            << " ms\n";
  Peer again;
  EXPECT_FALSE(device(again, "t1", "t1"));
}

// fleetd SIGKILLed while a client makes things, registers certificates and attaches them through
// the admin API, then started again: it opens the store (not refused, not corrupt), every write
// it acknowledged is there and whole, nothing is half-made, and a device with one of the burst's
// certificates is admitted. The admin API makes each of the three steps its own transaction, so
// the one sequence cut by the kill may stop at a step boundary (a thing without its certificate
// yet, or a certificate not yet attached) — never inside a record; every other certificate has
// its thing.
TEST_F(FleetdFaults, KilledDuringABurstOfAdminWritesRestartsWithAConsistentStore) {
  constexpr int kCerts = 120;
  std::vector<testing::Issued> certs;
  std::vector<CertFacts> facts;
  for (int i = 0; i < kCerts; ++i) {
    testing::CertOptions o;
    o.common_name = "burst-" + std::to_string(i);
    certs.push_back(ca_->issue("burst-" + std::to_string(i), o));
    facts.push_back(facts_of(certs.back().cert_file));
    ASSERT_FALSE(facts.back().id.empty());
  }
  const std::string ca_id = facts_of(ca_->cert_file()).id;

  // What the API acknowledged, step by step.
  std::mutex m;
  std::set<std::string> things_acked, certs_acked, attached_acked;
  std::atomic<int> sequences{0};
  std::atomic<bool> ran_out{false};
  std::string last_error;
  std::thread writer([&] {
    for (int i = 0; i < kCerts; ++i) {
      const std::string name = "burst-" + std::to_string(i);
      auto a = admin("POST", "/admin/v1/things",
                     json{{"thingName", name},
                          {"thingTypeName", "sensor"},
                          {"attributes", {{"serial", std::to_string(i)}, {"batch", "b1"}}}}
                         .dump());
      if (!a || a->status != 201) break;
      { std::lock_guard l(m); things_acked.insert(name); }
      auto c = admin("POST", "/admin/v1/certificates",
                     json{{"certificatePem", facts[i].pem}, {"status", "ACTIVE"},
                          {"caCertificateId", ca_id}}
                         .dump());
      if (!c || c->status != 201) break;
      { std::lock_guard l(m); certs_acked.insert(facts[i].id); }
      auto p = admin("PUT", "/admin/v1/things/" + name + "/certificates/" + facts[i].id);
      if (!p || p->status / 100 != 2) break;
      { std::lock_guard l(m); attached_acked.insert(name); }
      ++sequences;
    }
    if (sequences.load() == kCerts) ran_out = true;
  });
  // Kill mid-burst: after a number of whole sequences, while the writer is in its next ones.
  const auto end = std::chrono::steady_clock::now() + 30s;
  while (sequences.load() < 20 && !ran_out && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_GE(sequences.load(), 20) << "the burst made no progress";
  // A random moment inside the following sequences (each step is a few ms), so that runs land
  // between steps and inside requests alike.
  std::this_thread::sleep_for(std::chrono::microseconds(std::random_device{}() % 30000));
  testing::stop_child(fleetd_, SIGKILL, 1s);
  writer.join();
  ASSERT_FALSE(ran_out) << "the burst ended before the kill; raise kCerts";
  std::cout << "[ measured ] killed after " << sequences.load() << " whole sequences, "
            << things_acked.size() << " things, " << certs_acked.size() << " certificates, "
            << attached_acked.size() << " attachments acknowledged\n";

  start_fleetd();
  ASSERT_FALSE(HasFatalFailure()) << "fleetd did not start again on the killed store";

  // Through the admin API: every acknowledged write is there, whole.
  for (int i = 0; i < kCerts; ++i) {
    const std::string name = "burst-" + std::to_string(i);
    if (!things_acked.count(name)) break;
    auto t = admin("GET", "/admin/v1/things/" + name);
    ASSERT_TRUE(t && t->status == 200) << name << ": " << (t ? t->body : "no answer");
    auto j = json::parse(t->body);
    EXPECT_EQ(j["attributes"]["serial"], std::to_string(i));
    EXPECT_EQ(j["attributes"]["batch"], "b1");
    EXPECT_EQ(j["thingTypeName"], "sensor");
    if (attached_acked.count(name)) {
      EXPECT_EQ(j["certificates"], json::array({facts[i].id})) << name;
    }
    if (certs_acked.count(facts[i].id)) {
      auto c = admin("GET", "/admin/v1/certificates/" + facts[i].id);
      ASSERT_TRUE(c && c->status == 200) << facts[i].id;
      auto cj = json::parse(c->body);
      EXPECT_EQ(cj["status"], "ACTIVE");
      EXPECT_EQ(cj["certificatePem"], facts[i].pem);
    }
  }
  // A device of the burst gets in with its certificate (the registry is usable, not just there).
  {
    Peer d;
    testing::Issued& c = certs[3];
    ASSERT_TRUE(d.connect_tls(broker_->tls_port(), ca_->cert_file(), c, "burst-3"));
    EXPECT_EQ(d.publish("burst-3/telemetry", "back"), ReasonCode::NoMatchingSubscribers);
  }

  // In the store itself (fleetd stopped: SQLite is one process's at a time).
  testing::stop_child(fleetd_, SIGTERM, 5s);
  auto db = open_sqlite({(dir_ / "state" / "fleetd.db").string()});
  ASSERT_TRUE(db) << db.error().message;
  auto store = Store::open(std::move(db.value()));
  ASSERT_TRUE(store) << store.error().message;
  struct Found {
    std::string integrity;
    std::int64_t foreign_key_violations = 0;
    std::vector<std::string> things_without_cert, certs_without_thing;
    std::int64_t things = 0;
  };
  // The fixture's claim certificate is attached to no thing by design (a policy only).
  const std::string not_claim = " AND id <> '" + ids_["claim"] + "'";
  auto found = store.value()->transact([&not_claim](Tx& t) -> Res<Found> {
    Found f;
    auto ic = t.db().query("PRAGMA integrity_check");
    if (!ic) return fail(ic.error());
    f.integrity = ic.value().front().text(0);
    auto fk = t.db().query("PRAGMA foreign_key_check");
    if (!fk) return fail(fk.error());
    f.foreign_key_violations = static_cast<std::int64_t>(fk.value().size());
    auto a = t.db().query(
        "SELECT name FROM things WHERE name LIKE 'burst-%' AND name NOT IN "
        "(SELECT thing_name FROM thing_principals)");
    if (!a) return fail(a.error());
    for (const auto& r : a.value()) f.things_without_cert.push_back(r.text(0));
    auto b = t.db().query(
        "SELECT id FROM certificates WHERE id NOT IN (SELECT certificate_id FROM thing_principals)" +
        not_claim);
    if (!b) return fail(b.error());
    for (const auto& r : b.value()) f.certs_without_thing.push_back(r.text(0));
    auto n = t.db().query("SELECT COUNT(*) FROM things WHERE name LIKE 'burst-%'");
    if (!n) return fail(n.error());
    f.things = n.value().front().integer(0);
    return f;
  });
  ASSERT_TRUE(found) << found.error().message;
  const Found& f = found.value();
  EXPECT_EQ(f.integrity, "ok");
  EXPECT_EQ(f.foreign_key_violations, 0);
  // At most the one sequence the kill interrupted: the first one not acknowledged whole.
  const std::string cut = "burst-" + std::to_string(sequences.load());
  const std::string cut_cert = facts[static_cast<std::size_t>(sequences.load())].id;
  EXPECT_LE(f.things_without_cert.size(), 1u);
  for (const auto& name : f.things_without_cert) EXPECT_EQ(name, cut);
  // The fixture's own certificates (but its claim certificate) are attached, so an unattached one can only be the cut
  // sequence's.
  EXPECT_LE(f.certs_without_thing.size(), 1u);
  for (const auto& id : f.certs_without_thing) EXPECT_EQ(id, cut_cert);
  // Nothing beyond the cut sequence was written (the writer stopped there).
  EXPECT_GE(f.things, sequences.load());
  EXPECT_LE(f.things, sequences.load() + 1);
}

// The same kill with fleetd's own CA, where the admin API issues a certificate from a CSR and
// attaches it to its thing in one request (one transaction): after the restart no certificate is
// without its thing, strictly; at most the cut sequence's thing waits for its certificate.
class FleetdFaultsOwnCa : public SecuredBroker {
 protected:
  FleetdFaultsOwnCa() { own_ca_ = true; }
};

TEST_F(FleetdFaultsOwnCa, KilledDuringFromCsrIssuingLeavesNoCertificateWithoutItsThing) {
  constexpr int kCsrs = 120;
  std::vector<std::string> csrs;
  for (int i = 0; i < kCsrs; ++i) {
    auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
    ASSERT_TRUE(key);
    auto csr = pki::make_csr(*key, *pki::Name::parse("/CN=csr-" + std::to_string(i)));
    ASSERT_TRUE(csr);
    csrs.push_back(*csr);
  }
  std::atomic<int> sequences{0};
  std::mutex m;
  std::set<std::string> issued;  // certificate ids the API answered
  std::thread writer([&] {
    for (int i = 0; i < kCsrs; ++i) {
      const std::string name = "csr-" + std::to_string(i);
      auto a = admin("POST", "/admin/v1/things", json{{"thingName", name}}.dump());
      if (!a || a->status != 201) break;
      auto c = admin("POST", "/admin/v1/certificates/from-csr",
                     json{{"certificateSigningRequest", csrs[static_cast<std::size_t>(i)]},
                          {"setAsActive", true},
                          {"thingName", name}}
                         .dump());
      if (!c || c->status != 201) break;
      { std::lock_guard l(m); issued.insert(json::parse(c->body)["certificateId"].get<std::string>()); }
      ++sequences;
    }
  });
  const auto end = std::chrono::steady_clock::now() + 30s;
  while (sequences.load() < 20 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_GE(sequences.load(), 20) << "the burst made no progress";
  std::this_thread::sleep_for(std::chrono::microseconds(std::random_device{}() % 30000));
  testing::stop_child(fleetd_, SIGKILL, 1s);
  writer.join();
  ASSERT_LT(sequences.load(), kCsrs) << "the burst ended before the kill; raise kCsrs";
  std::cout << "[ measured ] killed after " << sequences.load() << " things issued with their "
            << "certificates\n";

  start_fleetd();
  ASSERT_FALSE(HasFatalFailure()) << "fleetd did not start again on the killed store";
  for (const auto& id : issued) {
    auto c = admin("GET", "/admin/v1/certificates/" + id);
    ASSERT_TRUE(c && c->status == 200) << id;
    auto j = json::parse(c->body);
    EXPECT_EQ(j["status"], "ACTIVE");
    EXPECT_EQ(j["things"].size(), 1u) << id;
  }
  testing::stop_child(fleetd_, SIGTERM, 5s);
  auto db = open_sqlite({(dir_ / "state" / "fleetd.db").string()});
  ASSERT_TRUE(db) << db.error().message;
  auto store = Store::open(std::move(db.value()));
  ASSERT_TRUE(store) << store.error().message;
  const std::string not_claim = " AND id <> '" + ids_["claim"] + "'";
  auto counts = store.value()->transact(
      [&not_claim](Tx& t) -> Res<std::pair<std::int64_t, std::int64_t>> {
    auto a = t.db().query(
        "SELECT COUNT(*) FROM certificates WHERE id NOT IN (SELECT certificate_id FROM "
        "thing_principals)" + not_claim);
    if (!a) return fail(a.error());
    auto b = t.db().query(
        "SELECT COUNT(*) FROM things WHERE name LIKE 'csr-%' AND name NOT IN "
        "(SELECT thing_name FROM thing_principals)");
    if (!b) return fail(b.error());
    return std::pair(a.value().front().integer(0), b.value().front().integer(0));
  });
  ASSERT_TRUE(counts) << counts.error().message;
  EXPECT_EQ(counts.value().first, 0) << "certificates without their thing";
  EXPECT_LE(counts.value().second, 1) << "things without a certificate besides the cut one";
}

}  // namespace
}  // namespace edgekit::fleetd::test
