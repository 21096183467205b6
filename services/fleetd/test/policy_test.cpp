#include <gtest/gtest.h>

#include "policy/policy.hpp"

namespace edgekit::fleetd::policy {
namespace {

std::vector<Rule> rules_for(std::string_view doc_json, std::string_view thing, std::string_view client) {
  auto doc = parse(doc_json);
  EXPECT_TRUE(doc) << doc.error().message;
  if (!doc) return {};
  std::vector<Document> docs{doc.value()};
  return resolve(docs, Context{thing, client});
}

std::vector<Rule> default_rules(std::string_view thing, std::string_view client) {
  std::vector<Document> docs{default_thing_policy()};
  return resolve(docs, Context{thing, client});
}

TEST(PolicyGlob, MatchesAwsWildcards) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "a/b/c"));
  EXPECT_TRUE(glob_match("$aws/things/t1/*", "$aws/things/t1/shadow/update"));
  EXPECT_FALSE(glob_match("$aws/things/t1/*", "$aws/things/t1x/shadow"));
  EXPECT_FALSE(glob_match("$aws/things/t1/*", "$aws/things/t1"));
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "ac"));
  EXPECT_TRUE(glob_match("a*b*c", "a__b__c"));
  EXPECT_FALSE(glob_match("a*b*c", "a__c__b"));
  EXPECT_TRUE(glob_match("x\\*y", "x*y"));
  EXPECT_FALSE(glob_match("x\\*y", "xzzy"));
  // No exponential blow-up on a pathological pattern.
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*b", std::string(5000, 'a')));
}

TEST(Policy, ParsesAnAwsDevicePolicyAndResolvesItsVariables) {
  const char* doc = R"({
    "Version": "2012-10-17",
    "Statement": [
      {"Effect": "Allow", "Action": "iot:Connect",
       "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
      {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
       "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]},
      {"Effect": "Allow", "Action": "iot:Subscribe",
       "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"},
      {"Effect": "Deny", "Action": "iot:Publish",
       "Resource": "arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/delete"}
    ]})";
  auto rules = rules_for(doc, "sensor-1", "sensor-1");
  EXPECT_TRUE(allowed(rules, Action::Connect, "sensor-1"));
  EXPECT_FALSE(allowed(rules, Action::Connect, "sensor-2"));
  EXPECT_TRUE(allowed(rules, Action::Publish, "$aws/things/sensor-1/shadow/update"));
  EXPECT_TRUE(allowed(rules, Action::Receive, "$aws/things/sensor-1/shadow/update/delta"));
  EXPECT_FALSE(allowed(rules, Action::Publish, "$aws/things/sensor-1/shadow/delete"))
      << "Deny wins over Allow";
  EXPECT_FALSE(allowed(rules, Action::Publish, "$aws/things/sensor-2/shadow/update"));
  EXPECT_TRUE(allowed(rules, Action::Subscribe, "$aws/things/sensor-1/shadow/#"));
  EXPECT_TRUE(allowed(rules, Action::Subscribe, "$aws/things/sensor-1/shadow/+/accepted"));
  EXPECT_FALSE(allowed(rules, Action::Subscribe, "$aws/things/+/shadow/update"));
  EXPECT_FALSE(allowed(rules, Action::Subscribe, "#"));
  EXPECT_FALSE(allowed(rules, Action::Subscribe, "$aws/things/#"));
}

TEST(Policy, DefaultThingPolicyIsolatesThings) {
  auto rules = default_rules("t1", "t1");
  EXPECT_TRUE(allowed(rules, Action::Connect, "t1"));
  EXPECT_FALSE(allowed(rules, Action::Connect, "t2")) << "client id spoofing";
  for (const char* ok : {"$aws/things/t1/shadow/update", "t1/telemetry", "t1/a/b/c"}) {
    EXPECT_TRUE(allowed(rules, Action::Publish, ok)) << ok;
    EXPECT_TRUE(allowed(rules, Action::Receive, ok)) << ok;
  }
  for (const char* bad : {"$aws/things/t2/shadow/update", "t2/telemetry", "t1", "other",
                          "$aws/things/t1", "$aws/events/presence/connected/t1"}) {
    EXPECT_FALSE(allowed(rules, Action::Publish, bad)) << bad;
  }
  for (const char* ok : {"$aws/things/t1/#", "$aws/things/t1/shadow/+", "t1/#"}) {
    EXPECT_TRUE(allowed(rules, Action::Subscribe, ok)) << ok;
  }
  for (const char* bad : {"#", "+/telemetry", "$aws/things/+/shadow/update", "$aws/#",
                          "t2/#", "$share/g/t2/#", "+/#"}) {
    EXPECT_FALSE(allowed(rules, Action::Subscribe, bad)) << bad;
  }
}

TEST(Policy, NoThingAttachedMeansThingStatementsDoNotApply) {
  auto rules = default_rules("", "claim-device");
  EXPECT_TRUE(rules.empty());
  EXPECT_FALSE(allowed(rules, Action::Connect, "claim-device"));
}

TEST(Policy, VariableValuesAreLiteral) {
  // A client id full of wildcards must not widen `${iot:ClientId}/*` to everything.
  auto rules = rules_for(R"({"Statement":{"Effect":"Allow","Action":"iot:Publish",
      "Resource":"arn:aws:iot:*:*:topic/${iot:ClientId}/*"}})", "", "*");
  EXPECT_TRUE(allowed(rules, Action::Publish, "*/x"));
  EXPECT_FALSE(allowed(rules, Action::Publish, "other/x"));
  rules = rules_for(R"({"Statement":{"Effect":"Allow","Action":"iot:Publish",
      "Resource":"arn:aws:iot:*:*:topic/${iot:ClientId}/*"}})", "", "a?c");
  EXPECT_FALSE(allowed(rules, Action::Publish, "abc/x"));
}

TEST(Policy, RefusesMalformedDocumentsWithTheReason) {
  struct Case {
    const char* doc;
    const char* reason;
  } cases[] = {
      {"", "not valid JSON"},
      {"[]", "not a JSON object"},
      {"{}", "no Statement"},
      {R"({"Statement":[]})", "no Statement"},
      {R"({"Statement":[{"Effect":"Maybe","Action":"iot:Connect","Resource":"*"}]})", "Effect"},
      {R"({"Statement":[{"Effect":"Allow","Action":"iot:Fly","Resource":"*"}]})", "iot:Fly"},
      {R"({"Statement":[{"Effect":"Allow","Action":"iot:Publish"}]})", "no Resource"},
      {R"({"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"topic/x"}]})", "ARN"},
      {R"({"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:r:a:thing/x"}]})",
       "client, topic or topicfilter"},
      {R"({"Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:r:a:topic/${iot:Connection.Thing.Attributes[x]}"}]})",
       "unsupported policy variable"},
  };
  for (const auto& c : cases) {
    auto r = parse(c.doc);
    ASSERT_FALSE(r) << c.doc;
    EXPECT_EQ(r.error().code, Errc::InvalidArgument);
    EXPECT_NE(r.error().message.find(c.reason), std::string::npos) << c.doc << " -> " << r.error().message;
  }
  EXPECT_FALSE(parse(std::string(21 * 1024, ' ')));
}

TEST(Policy, RulesRoundTripThroughTheDecisionInterface) {
  auto rules = default_rules("t1", "t1");
  rules.push_back(Rule{false, Action::Publish, "t1/secret"});
  auto back = rules_from_json(rules_to_json(rules));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back.value(), rules);
  for (const char* bad : {"{}", "[1]", R"([{"permission":"maybe","action":"publish","topic":"x"}])",
                          R"([{"permission":"allow","action":"fly","topic":"x"}])",
                          R"([{"permission":"allow","action":"publish"}])"}) {
    EXPECT_FALSE(rules_from_json(bad)) << bad;
  }
}

}  // namespace
}  // namespace edgekit::fleetd::policy
