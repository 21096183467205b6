#include <gtest/gtest.h>
#include <mosquitto.h>

#include "edgekit/json/json.hpp"
#include "plugin_logic.hpp"

namespace edgekit::fleetd::plugin {
namespace {

ClientState thing(const char* name) {
  ClientState c;
  c.client_id = name;
  c.thing_name = name;
  std::vector<policy::Document> docs{policy::default_thing_policy()};
  c.rules = policy::resolve(docs, policy::Context{name, name});
  return c;
}

TEST(PluginLogic, PermitsByRulesAndRefusesReservedUses) {
  auto t1 = thing("t1");
  EXPECT_TRUE(permitted(t1, Access::Publish, "t1/x", false));
  EXPECT_TRUE(permitted(t1, Access::Publish, "$aws/things/t1/shadow/update", false));
  EXPECT_FALSE(permitted(t1, Access::Publish, "$aws/things/t1/shadow/update", true)) << "retained $aws";
  EXPECT_TRUE(permitted(t1, Access::Publish, "t1/x", true)) << "retained elsewhere is the policy's call";
  EXPECT_FALSE(permitted(t1, Access::Subscribe, "#", false));
  EXPECT_TRUE(permitted(t1, Access::Unsubscribe, "#", false));
  EXPECT_FALSE(permitted(t1, Access::Receive, "t2/x", false));
  ClientState fleetd;
  fleetd.trusted = true;
  EXPECT_TRUE(permitted(fleetd, Access::Publish, "$CONTROL/edgekit/v1", false));
  auto all = thing("t1");
  all.rules.push_back(policy::Rule{true, policy::Action::Publish, "*"});
  EXPECT_FALSE(permitted(all, Access::Publish, "$CONTROL/edgekit/v1", false))
      << "no policy opens the control topic to a device";
  all.rules.push_back(policy::Rule{true, policy::Action::Subscribe, "*"});
  all.rules.push_back(policy::Rule{true, policy::Action::Receive, "*"});
  EXPECT_FALSE(permitted(all, Access::Subscribe, "$edgekit/private-reply", false))
      << "nor the originals of private replies";
  EXPECT_FALSE(permitted(all, Access::Receive, "$edgekit/private-reply", false));
}

TEST(PluginLogic, ReadsVerdictsAndRefusesWhatItCannotRead) {
  std::string error;
  auto allow = parse_verdict(
      R"({"result":"allow","acl":[{"permission":"allow","action":"publish","topic":"t1/*"}],"client_attrs":{"thing_name":"t1"}})",
      error);
  ASSERT_TRUE(allow) << error;
  EXPECT_TRUE(allow->allow);
  EXPECT_EQ(allow->thing_name, "t1");
  EXPECT_EQ(allow->rules.size(), 1u);
  auto deny = parse_verdict(R"({"result":"deny","reason":"revoked"})", error);
  ASSERT_TRUE(deny);
  EXPECT_FALSE(deny->allow);
  EXPECT_EQ(deny->reason, "revoked");
  for (const char* bad : {"", "[]", R"({"result":"maybe"})", R"({"result":"allow"})",
                          R"({"result":"allow","acl":[{"permission":"allow"}]})"}) {
    error.clear();
    EXPECT_FALSE(parse_verdict(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(PluginLogic, LifecycleEventsCarryAwsFields) {
  auto c = thing("t1");
  c.certificate_id = "abc";
  c.session_id = "s1";
  c.peer = "127.0.0.1";
  c.version = 3;
  auto up = nlohmann::json::parse(connected_event(c, 1700000000123));
  EXPECT_EQ(up["clientId"], "t1");
  EXPECT_EQ(up["eventType"], "connected");
  EXPECT_EQ(up["timestamp"], 1700000000123);
  EXPECT_EQ(up["principalIdentifier"], "abc");
  EXPECT_EQ(up["ipAddress"], "127.0.0.1");
  EXPECT_EQ(up["versionNumber"], 3);
  auto down = nlohmann::json::parse(disconnected_event(c, 1, MOSQ_ERR_SUCCESS));
  EXPECT_EQ(down["disconnectReason"], "CLIENT_INITIATED_DISCONNECT");
  EXPECT_EQ(down["clientInitiatedDisconnect"], true);
  EXPECT_FALSE(down.contains("ipAddress"));
  EXPECT_STREQ(disconnect_reason(MOSQ_ERR_KEEPALIVE), "MQTT_KEEP_ALIVE_TIMEOUT");
  EXPECT_STREQ(disconnect_reason(kTakenOver), "DUPLICATE_CLIENTID");
  EXPECT_STREQ(disconnect_reason(MOSQ_ERR_ADMINISTRATIVE_ACTION), "API_INITIATED_DISCONNECT");
}

// Private replies expire in the order added, and a key added again lives on from its new add: the
// stale record of its first add must not remove it.
TEST(PluginLogic, PrivateRepliesExpireInOrderAndARenewedReplyLivesOn) {
  using namespace std::chrono_literals;
  const auto t0 = PrivateReplies::Clock::time_point{} + 1h;
  PrivateReplies r(5s);
  EXPECT_TRUE(r.empty());
  r.add("a", "dev-1", t0);
  r.add("b", "dev-2", t0 + 1s);
  r.add("a", "dev-3", t0 + 2s);  // the same topic and payload again, for another client
  ASSERT_EQ(r.size(), 2u);
  ASSERT_NE(r.addressee("a", t0 + 2s), nullptr);
  EXPECT_EQ(*r.addressee("a", t0 + 2s), "dev-3");
  EXPECT_EQ(r.addressee("c", t0), nullptr);

  r.expire(t0 + 5s);  // a's first add is due: a lives on from its second
  EXPECT_EQ(r.size(), 2u);
  ASSERT_NE(r.addressee("a", t0 + 5s), nullptr);
  EXPECT_EQ(*r.addressee("a", t0 + 5s), "dev-3");
  EXPECT_EQ(r.addressee("b", t0 + 6s), nullptr);  // expired though not yet dropped
  r.expire(t0 + 6s);
  EXPECT_EQ(r.size(), 1u);
  r.expire(t0 + 7s);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.addressee("a", t0 + 3s), nullptr);
}

}  // namespace
}  // namespace edgekit::fleetd::plugin
