// The factory's devices and fleetd's just-in-time provisioning, end to end: the factory's CA is
// registered with fleetd (ACTIVE, auto-registration, a JITP template that names the thing after
// the certificate's CN), and its devices connect for the first time over mutual TLS on one
// io_context thread (the event-loop driver, a per-connection identity each). Each is admitted at
// once as its thing, may publish on its thing's topic only, and the registry holds the things.
//
// Scale from the environment: EDGEKIT_SIM_JITP_DEVICES (default 40).

#include <asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "edgekit/json/json.hpp"
#include "identity.hpp"
#include "identity_test_support.hpp"
#include "secured_broker.hpp"

namespace edgekit::sim {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// Thing = CN; the certificate ACTIVE; a policy that lets the thing connect as itself and touch
// ids/<thing> only (the topic the test devices use).
const char* kTemplate = R"({
  "Parameters": {
    "AWS::IoT::Certificate::CommonName": {"Type": "String"},
    "AWS::IoT::Certificate::Id": {"Type": "String"}
  },
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing", "Properties": {
      "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"}}},
    "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
      "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}},
    "policy": {"Type": "AWS::IoT::Policy", "Properties": {
      "PolicyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}\"},{\"Effect\":\"Allow\",\"Action\":[\"iot:Publish\",\"iot:Receive\"],\"Resource\":\"arn:aws:iot:*:*:topic/ids/${iot:Connection.Thing.ThingName}\"},{\"Effect\":\"Allow\",\"Action\":\"iot:Subscribe\",\"Resource\":\"arn:aws:iot:*:*:topicfilter/ids/${iot:Connection.Thing.ThingName}\"}]}"}}
  }
})";

class SimJitp : public fleetd::test::SecuredBroker {
 protected:
  SimJitp() { broker_capath_ = true; }  // a registered CA is trusted in the handshake at once
};

TEST_F(SimJitp, TheFactorysDevicesAreProvisionedAtTheirFirstConnectionAsTheirThings) {
  const std::size_t n = mqtt_asio::test::env_size("EDGEKIT_SIM_JITP_DEVICES", 40);
  IdentityOptions o;
  o.prefix = "simjit";
  auto factory = IdentityFactory::create(o);
  ASSERT_TRUE(factory) << factory.error();

  json t{{"templateName", "simjitp"}, {"templateBody", kTemplate}, {"type", "JITP"},
         {"enabled", true}};
  auto r = admin("POST", "/admin/v1/provisioning-templates", t.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const std::size_t written = fleetd_log_count("ca.broker_trust_written");
  json ca{{"caCertificatePem", factory->ca_certificate_pem()},
          {"status", "ACTIVE"},
          {"autoRegistration", true},
          {"registrationTemplate", "simjitp"}};
  r = admin("POST", "/admin/v1/cas", ca.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  ASSERT_TRUE(fleetd_logged("ca.broker_trust_written", written + 1, 5s));

  // Devices trust the broker's certificate (the fixture's CA); one context for all of them.
  tls::Config shared;
  shared.ca_file = ca_->cert_file();
  auto ctx = tls::TlsContext::create(shared);
  ASSERT_TRUE(ctx) << ctx.error().message();
  auto ids = factory->identities(n);
  ASSERT_TRUE(ids) << ids.error();

  asio::io_context io(1);
  mqtt_asio::Driver driver(io);
  std::vector<std::unique_ptr<mqtt_asio::test::IdDevice>> devices;
  for (std::size_t i = 0; i < n; ++i) {
    devices.push_back(std::make_unique<mqtt_asio::test::IdDevice>(
        driver, (*ids)[i].thing_name, "simjit-" + std::to_string((i + 1) % n),
        std::move((*ids)[i].tls)));
  }
  // A few first connections at once: each is a registration in fleetd's store.
  const mqtt_asio::test::FleetOutcome outcome = mqtt_asio::test::run_devices(
      io, devices, [&](mqtt_asio::test::IdDevice& d) { d.start(*ctx, broker_->tls_port()); }, 8,
      std::chrono::seconds(60 + n / 5));
  EXPECT_TRUE(outcome.finished);
  EXPECT_EQ(outcome.ok, n) << outcome.first_failure;
  EXPECT_TRUE(mqtt_asio::test::disconnect_all(io, devices, 30s));

  for (std::size_t i = 0; i < n; ++i) {
    auto thing = admin("GET", "/admin/v1/things/simjit-" + std::to_string(i));
    ASSERT_TRUE(thing);
    EXPECT_EQ(thing->status, 200) << "simjit-" << i << ": " << thing->body;
  }
}

}  // namespace
}  // namespace edgekit::sim
