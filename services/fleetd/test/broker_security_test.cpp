// The secured broker end to end: a real Mosquitto with mutual TLS and edgekit's plugin, a real
// fleetd deciding, devices with real certificates. Every isolation rule is tried as an attacker
// would and the refusal asserted.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <asio/io_context.hpp>
#include <array>
#include <chrono>
#include <future>
#include <sstream>
#include <iostream>
#include <string>

#include "edgekit/json/json.hpp"
#include "edgekit/testing/child_process.hpp"
#include "broker_link.hpp"
#include "revocation.hpp"
#include "plugin_logic.hpp"
#include "secured_broker.hpp"
#include "store/db.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::test {
namespace {

using namespace std::chrono_literals;

TEST_F(SecuredBroker, AThingWorksOnItsOwnTopicsOverBothVersions) {
  for (auto v : {mqtt::Version::V5, mqtt::Version::V311}) {
    Peer t1;
    auto c = device(t1, "t1", "t1", v);
    ASSERT_TRUE(c) << mqtt::to_string(c.error());
    EXPECT_EQ(t1.subscribe("$aws/things/t1/shadow/#"), ReasonCode::GrantedQoS1);
    EXPECT_EQ(t1.subscribe("t1/#"), ReasonCode::GrantedQoS1);
    EXPECT_EQ(t1.publish("t1/telemetry", "21.5"), ReasonCode::Success);
    EXPECT_EQ(t1.publish("$aws/things/t1/shadow/update", "{}"), ReasonCode::Success);
    t1.pump(2s, 2);
    ASSERT_EQ(t1.received.size(), 2u);
    ASSERT_TRUE(t1.client().disconnect());
  }
}

TEST_F(SecuredBroker, AThingIsRefusedOnAnotherThingsTopics) {
  Peer t1, t2;
  ASSERT_TRUE(device(t1, "t1", "t1"));
  ASSERT_TRUE(device(t2, "t2", "t2"));
  EXPECT_EQ(t2.subscribe("$aws/things/t2/#"), ReasonCode::GrantedQoS1);
  for (const char* filter : {"t2/#", "$aws/things/t2/shadow/update", "+/telemetry", "#",
                             "$aws/things/+/shadow/#", "$aws/#", "$share/g/t2/#",
                             "$share/g/#", "$aws/events/presence/#", "$CONTROL/edgekit/v1"}) {
    EXPECT_EQ(t1.subscribe(filter), ReasonCode::NotAuthorized) << filter;
  }
  for (const char* topic : {"t2/telemetry", "$aws/things/t2/shadow/update", "t1",
                            "$aws/events/presence/connected/t2", "$CONTROL/edgekit/v1"}) {
    EXPECT_EQ(t1.publish(topic, "x"), ReasonCode::NotAuthorized) << topic;
  }
  // A retained publish on $aws is refused even on the thing's own topic (AWS forbids it).
  EXPECT_EQ(t1.publish("$aws/things/t1/shadow/update", "{}", /*retain=*/true),
            ReasonCode::NotAuthorized);
  t2.pump(1s);
  EXPECT_TRUE(t2.received.empty()) << "t2 received " << t2.received.front().topic;
}

TEST_F(SecuredBroker, RefusesSpoofedIdsAndUnknownRevokedOrForeignCertificates) {
  {
    Peer p;
    auto r = device(p, "t1", "t2");  // t1's certificate, t2's client id
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), mqtt::Errc::ConnectionRefused);
    EXPECT_EQ(p.client().server_reason(), ReasonCode::NotAuthorized);
  }
  for (const char* cert : {"unregistered", "revoked"}) {
    Peer p;
    auto r = device(p, cert, cert);
    ASSERT_FALSE(r) << cert;
    EXPECT_EQ(r.error(), mqtt::Errc::ConnectionRefused) << cert;
  }
  {
    Peer p;  // signed by a CA the broker does not trust: the TLS handshake fails
    auto r = p.connect_tls(broker_->tls_port(), ca_->cert_file(), foreign_cert_, "t1");
    ASSERT_FALSE(r);
  }
  {
    Peer p;  // no certificate at all, on the plain listener
    auto r = p.connect_tcp(broker_->port(), "t1", "", "");
    ASSERT_FALSE(r);
    Peer q;  // fleetd's user name with a wrong token
    auto w = q.connect_tcp(broker_->port(), "x", "fleetd", std::string(token_.size(), '0'));
    ASSERT_FALSE(w);
  }
  const std::string log = broker_->log();
  EXPECT_NE(log.find("is not registered"), std::string::npos) << log;
  EXPECT_NE(log.find("is REVOKED"), std::string::npos) << log;
  EXPECT_NE(log.find("not allowed to connect"), std::string::npos) << log;
}

TEST_F(SecuredBroker, AnExpiredCertificateIsRefused) {
  // Registered, ACTIVE, attached to its thing — only its validity has ended.
  Peer p;
  auto r = device(p, "expired", "expired");
  ASSERT_FALSE(r) << "an expired certificate got in";
  Peer t1;  // the refusal is that certificate's, not the listener's
  EXPECT_TRUE(device(t1, "t1", "t1"));
}

TEST_F(SecuredBroker, AClaimCertificateReachesOnlyTheProvisioningTopics) {
  Peer c;
  ASSERT_TRUE(device(c, "claim", "factory-0042"));
  // fleetd subscribes to the create calls: the broker has a subscriber to hand it to.
  EXPECT_EQ(c.publish("$aws/certificates/create/json", "{}"), ReasonCode::Success);
  EXPECT_EQ(c.subscribe("$aws/provisioning-templates/fleet/provision/json/accepted"),
            ReasonCode::GrantedQoS1);
  EXPECT_EQ(c.publish("$aws/things/t1/shadow/update", "{}"), ReasonCode::NotAuthorized);
  EXPECT_EQ(c.publish("t1/telemetry", "x"), ReasonCode::NotAuthorized);
  for (const char* filter : {"$aws/things/t1/#", "$aws/things/+/shadow/#", "#", "t1/#"}) {
    EXPECT_EQ(c.subscribe(filter), ReasonCode::NotAuthorized) << filter;
  }
  // With a thing's name as client id it is still a claim certificate: no thing topics.
  Peer d;
  ASSERT_TRUE(device(d, "claim", "t2"));
  EXPECT_EQ(d.publish("$aws/things/t2/shadow/update", "{}"), ReasonCode::NotAuthorized);
  EXPECT_EQ(d.subscribe("$aws/things/t2/#"), ReasonCode::NotAuthorized);
}

TEST_F(SecuredBroker, RequestsCarryMetadataADeviceCannotForge) {
  Peer observer;
  trusted(observer, "observer");
  EXPECT_EQ(observer.subscribe("$aws/things/+/shadow/update"), ReasonCode::GrantedQoS1);
  for (auto v : {mqtt::Version::V5, mqtt::Version::V311}) {
    Peer t1;
    ASSERT_TRUE(device(t1, "t1", "t1", v));
    const std::array<mqtt::UserProperty, 3> forged{
        mqtt::UserProperty{plugin::kClientIdProperty, "t2"},
        mqtt::UserProperty{plugin::kCertificateIdProperty, ids_["t2"]},
        mqtt::UserProperty{"app", "kept"}};
    EXPECT_EQ(t1.publish("$aws/things/t1/shadow/update", "{}", false,
                         v == mqtt::Version::V5 ? std::span<const mqtt::UserProperty>(forged)
                                                : std::span<const mqtt::UserProperty>()),
              ReasonCode::Success);
    ASSERT_TRUE(t1.client().disconnect());
  }
  observer.pump(3s, 2);
  ASSERT_EQ(observer.received.size(), 2u);
  for (const auto& m : observer.received) {
    EXPECT_EQ(m.property(plugin::kClientIdProperty), "t1");
    EXPECT_EQ(m.property(plugin::kCertificateIdProperty), ids_["t1"]);
    EXPECT_EQ(m.property(plugin::kThingNameProperty), "t1");
  }
  EXPECT_EQ(observer.received[0].property("app"), "kept");
}

TEST_F(SecuredBroker, APrivateReplyReachesItsAddresseeOnly) {
  // Two devices whose policy lets both subscribe to the shared reply topic, as every device may
  // subscribe to $aws/certificates/create/json/accepted; and fleetd's side watching everything.
  Peer t3, t2, observer;
  ASSERT_TRUE(device(t3, "t3", "t3"));
  ASSERT_TRUE(device(t2, "t2", "t2"));
  EXPECT_EQ(t3.subscribe("replies/create/accepted"), ReasonCode::GrantedQoS1);
  EXPECT_EQ(t2.subscribe("replies/create/accepted"), ReasonCode::GrantedQoS1);
  EXPECT_EQ(t2.subscribe("replies/#"), ReasonCode::GrantedQoS1);
  trusted(observer, "observer");
  EXPECT_EQ(observer.subscribe("replies/#"), ReasonCode::GrantedQoS1);
  Peer fleetd;
  trusted(fleetd, "fleetd-peer");
  const std::array<mqtt::UserProperty, 1> to_t3{mqtt::UserProperty{plugin::kReplyToProperty, "t3"}};
  // The broker matches the original to no subscriber: the plugin addressed a copy to t3 alone
  // and sent the original where nobody reads.
  EXPECT_EQ(fleetd.publish("replies/create/accepted", R"({"certificatePem":"secret"})", false, to_t3),
            ReasonCode::NoMatchingSubscribers);
  t3.pump(2s, 1);
  ASSERT_EQ(t3.received.size(), 1u);
  EXPECT_EQ(t3.received[0].property(plugin::kReplyToProperty), "") << "the marker is removed";
  t2.pump(1s);
  EXPECT_TRUE(t2.received.empty()) << "a private reply reached another device";
  observer.pump(500ms);
  EXPECT_TRUE(observer.received.empty()) << "a private reply reached another subscriber";
  // An ordinary message on the same topic still reaches everyone.
  EXPECT_EQ(fleetd.publish("replies/create/accepted", "public"), ReasonCode::Success);
  t2.pump(2s, 2);
  EXPECT_EQ(t2.received.size(), 2u) << "one per matching subscription";
}

TEST_F(SecuredBroker, AFloodOfPrivateRepliesReachesItsAddresseeEachExactlyOnceInOrder) {
  // More QoS 1 private replies than Mosquitto keeps in flight to a client (max_inflight_messages,
  // 20) while the addressee reads nothing: the rest wait in its queue (max_queued_messages, 1000)
  // and none is lost or doubled, though the addressee also subscribes to the reply topic.
  constexpr int kReplies = 300;
  Peer t3;
  ASSERT_TRUE(device(t3, "t3", "t3"));
  EXPECT_EQ(t3.subscribe("replies/get/accepted"), ReasonCode::GrantedQoS1);
  Peer fleetd;
  trusted(fleetd, "fleetd-peer");
  const std::array<mqtt::UserProperty, 1> to_t3{mqtt::UserProperty{plugin::kReplyToProperty, "t3"}};
  for (int i = 0; i < kReplies; ++i) {
    ASSERT_EQ(fleetd.publish("replies/get/accepted", "r" + std::to_string(i), false, to_t3),
              ReasonCode::NoMatchingSubscribers);
  }
  t3.pump(5s, kReplies);
  t3.pump(100ms);  // a duplicate would come right behind the last one
  ASSERT_EQ(t3.received.size(), static_cast<std::size_t>(kReplies));
  for (int i = 0; i < kReplies; ++i) {
    EXPECT_EQ(t3.received[static_cast<std::size_t>(i)].payload, "r" + std::to_string(i));
  }
}

TEST_F(SecuredBroker, KickedCertificateIsDisconnectedWithinFiveSecondsAndLifecycleIsPublished) {
  Peer observer;
  trusted(observer, "observer");
  EXPECT_EQ(observer.subscribe("$aws/events/presence/#"), ReasonCode::GrantedQoS1);
  Peer t2;
  ASSERT_TRUE(device(t2, "t2", "t2"));
  observer.pump(2s, 1);
  ASSERT_EQ(observer.received.size(), 1u);
  auto connected = nlohmann::json::parse(observer.received[0].payload);
  EXPECT_EQ(observer.received[0].topic, "$aws/events/presence/connected/t2");
  EXPECT_EQ(connected["clientId"], "t2");
  EXPECT_EQ(connected["eventType"], "connected");
  EXPECT_EQ(connected["principalIdentifier"], ids_["t2"]);
  EXPECT_EQ(connected["ipAddress"], "127.0.0.1");
  EXPECT_TRUE(connected["timestamp"].is_number_integer());

  Peer fleetd;
  trusted(fleetd, "fleetd-peer");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(fleetd.publish("$CONTROL/edgekit/v1",
                           nlohmann::json{{"command", "kick"}, {"certificate_id", ids_["t2"]}}.dump()),
            ReasonCode::Success);
  while (t2.client().connected() && std::chrono::steady_clock::now() - start < 5s) {
    (void)t2.client().process_loop(Duration{20});
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(t2.client().connected());
  EXPECT_LT(took, 5s);
  std::cout << "[ measured ] kick to disconnect: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  observer.pump(3s, 2);
  ASSERT_EQ(observer.received.size(), 2u);
  auto gone = nlohmann::json::parse(observer.received[1].payload);
  EXPECT_EQ(observer.received[1].topic, "$aws/events/presence/disconnected/t2");
  EXPECT_EQ(gone["disconnectReason"], "API_INITIATED_DISCONNECT");
  EXPECT_EQ(gone["clientInitiatedDisconnect"], false);
  EXPECT_EQ(gone["sessionIdentifier"], connected["sessionIdentifier"]);
}

// A second connection with a client id in use takes the first one over; only that first one's
// disconnected event says DUPLICATE_CLIENTID (the plugin finds it by client id: an index, not a
// scan of every connection), not another client's and not the taker's own clean disconnect.
TEST_F(SecuredBroker, TakenOverConnectionIsReportedAsDuplicateClientIdAndNoOtherIs) {
  Peer observer;
  trusted(observer, "observer");
  EXPECT_EQ(observer.subscribe("$aws/events/presence/#"), ReasonCode::GrantedQoS1);
  Peer first, other;
  ASSERT_TRUE(device(first, "t2", "t2"));
  ASSERT_TRUE(device(other, "t1", "t1"));
  observer.pump(2s, 2);
  Peer second;
  ASSERT_TRUE(device(second, "t2", "t2"));
  observer.pump(3s, 4);  // connected t2, connected t1, connected t2 again, disconnected t2
  ASSERT_EQ(observer.received.size(), 4u);
  const auto first_session = nlohmann::json::parse(observer.received[0].payload)["sessionIdentifier"];
  EXPECT_EQ(observer.received[3].topic, "$aws/events/presence/disconnected/t2");
  auto gone = nlohmann::json::parse(observer.received[3].payload);
  EXPECT_EQ(gone["disconnectReason"], "DUPLICATE_CLIENTID");
  EXPECT_EQ(gone["sessionIdentifier"], first_session);
  ASSERT_TRUE(other.client().disconnect());
  ASSERT_TRUE(second.client().disconnect());
  observer.pump(3s, 6);
  ASSERT_EQ(observer.received.size(), 6u);
  for (std::size_t i = 4; i < 6; ++i) {
    auto e = nlohmann::json::parse(observer.received[i].payload);
    EXPECT_EQ(e["eventType"], "disconnected");
    // Mosquitto 2.0 gives plugins no reason for a clean disconnect (CONNECTION_LOST here); what
    // matters is that the taker's own end is not reported as taken over.
    EXPECT_NE(e["disconnectReason"], "DUPLICATE_CLIENTID") << observer.received[i].topic;
  }
}

TEST_F(SecuredBroker, RevokedThroughTheAdminApiIsDisconnectedWithinFiveSecondsAndCannotReconnect) {
  Peer t1;
  ASSERT_TRUE(device(t1, "t1", "t1"));
  EXPECT_EQ(t1.publish("t1/telemetry", "before"), ReasonCode::NoMatchingSubscribers);
  const auto start = std::chrono::steady_clock::now();
  auto r = admin_post("/admin/v1/certificates/" + ids_["t1"] + "/revoke");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto took = until_disconnected(t1, start);
  EXPECT_FALSE(t1.client().connected()) << "still connected 5 s after the revoke";
  EXPECT_LT(took, 5s);
  std::cout << "[ measured ] admin revoke to disconnect: " << took.count() << " ms\n";
  Peer again;
  auto back = device(again, "t1", "t1");
  ASSERT_FALSE(back) << "a revoked certificate reconnected";
  EXPECT_EQ(back.error(), mqtt::Errc::ConnectionRefused);
  EXPECT_NE(broker_->log().find("is REVOKED"), std::string::npos);
}

TEST_F(SecuredBroker, DeactivatingACertificateOrItsCaDisconnectsWithinFiveSeconds) {
  {
    Peer t2;
    ASSERT_TRUE(device(t2, "t2", "t2"));
    const auto start = std::chrono::steady_clock::now();
    auto r = admin_post("/admin/v1/certificates/" + ids_["t2"] + "/deactivate");
    ASSERT_TRUE(r && r->status == 200);
    const auto took = until_disconnected(t2, start);
    EXPECT_FALSE(t2.client().connected());
    std::cout << "[ measured ] admin deactivate to disconnect: " << took.count() << " ms\n";
    Peer again;
    EXPECT_FALSE(device(again, "t2", "t2"));
  }
  {
    Peer t3;
    ASSERT_TRUE(device(t3, "t3", "t3"));
    const auto ca = facts_of(ca_->cert_file()).id;
    const auto start = std::chrono::steady_clock::now();
    auto r = admin_post("/admin/v1/cas/" + ca + "/deactivate");
    ASSERT_TRUE(r && r->status == 200);
    const auto took = until_disconnected(t3, start);
    EXPECT_FALSE(t3.client().connected());
    std::cout << "[ measured ] CA deactivate to disconnect: " << took.count() << " ms\n";
    Peer again;
    EXPECT_FALSE(device(again, "t3", "t3"));
  }
}

TEST_F(SecuredBroker, AKickMadeWhileTheLinkIsDownGoesOutWhenItComesUp) {
  Peer t2;
  ASSERT_TRUE(device(t2, "t2", "t2"));
  asio::io_context io;
  std::ostringstream logs;
  Logger log(logs, LogFormat::Text, LogLevel::Debug);
  BrokerLinkOptions lo;
  lo.port = broker_->port();
  lo.client_id = "revoker-test";
  lo.username = "fleetd";
  lo.password = token_;
  BrokerLink link(io, lo, log);
  Revoker revoker(io, link, log, [](const std::string&) { return true; });
  link.on_state([&](bool up) { revoker.on_link(up); });
  // The link has not started: down. More kicks than the link's session holds in flight (64),
  // as when a CA with many certificates is deactivated: they go out in turns.
  for (int i = 0; i < 200; ++i) revoker.kick(std::string(60, 'f') + std::to_string(1000 + i));
  revoker.kick(ids_["t2"]);
  EXPECT_EQ(revoker.pending(), 201u);
  const auto start = std::chrono::steady_clock::now();
  link.start();
  std::thread loop([&] { io.run_for(std::chrono::seconds(8)); });
  const auto took = until_disconnected(t2, start);
  EXPECT_FALSE(t2.client().connected()) << logs.str();
  std::cout << "[ measured ] link start to disconnect by a pending kick: " << took.count() << " ms\n";
  // Everything went out (checked on the loop's thread, which owns the revoker).
  std::size_t left = 1;
  for (int i = 0; i < 100 && left != 0; ++i) {
    std::promise<std::size_t> p;
    asio::post(io, [&] { p.set_value(revoker.pending()); });
    left = p.get_future().get();
    if (left != 0) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(left, 0u);
  asio::post(io, [&] { link.shutdown([&] { io.stop(); }); });
  loop.join();
  EXPECT_NE(logs.str().find("revocation.kick_sent"), std::string::npos) << logs.str();
}

TEST_F(SecuredBroker, ARevocationThatNeverReachedTheBrokerIsEnforcedWhenFleetdRestarts) {
  Peer t1;
  ASSERT_TRUE(device(t1, "t1", "t1"));
  // fleetd crashes between committing a revocation and sending the kick: the store says REVOKED,
  // the broker never heard of it, and the device is still connected.
  testing::stop_child(fleetd_, SIGKILL, 1s);
  {
    auto db = open_sqlite({(dir_ / "state" / "fleetd.db").string()});
    ASSERT_TRUE(db) << db.error().message;
    auto store = Store::open(std::move(db.value()));
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE(store.value()->transact([&](Tx& t) -> Res<void> {
      auto r = t.set_certificate_status(ids_["t1"], CertificateStatus::Revoked);
      if (!r) return fail(r.error());
      return {};
    }));
  }
  t1.pump(300ms);
  ASSERT_TRUE(t1.client().connected()) << "nothing should have told the broker yet";
  const auto start = std::chrono::steady_clock::now();
  start_fleetd();
  const auto took = until_disconnected(t1, start);
  EXPECT_FALSE(t1.client().connected()) << broker_->log();
  EXPECT_LT(took, 5000ms);
  std::cout << "[ measured ] fleetd restart to disconnect of a device revoked while it was down: "
            << took.count() << " ms\n";
  Peer again;
  EXPECT_FALSE(device(again, "t1", "t1")) << "a revoked certificate reconnected";
}

TEST_F(SecuredBroker, WithFleetdDownNewConnectionsAreRefusedAndLiveOnesKeepWorking) {
  Peer t1;
  ASSERT_TRUE(device(t1, "t1", "t1"));
  testing::stop_child(fleetd_, SIGKILL, 1s);
  Peer t2;
  auto r = device(t2, "t2", "t2");
  ASSERT_FALSE(r) << "the broker failed open";
  EXPECT_EQ(r.error(), mqtt::Errc::ConnectionRefused);
  EXPECT_NE(broker_->log().find("fleetd unreachable"), std::string::npos);
  EXPECT_EQ(t1.publish("t1/telemetry", "still here"), ReasonCode::NoMatchingSubscribers);
}

}  // namespace
}  // namespace edgekit::fleetd::test
