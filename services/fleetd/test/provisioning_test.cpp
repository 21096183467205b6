// The provisioning template engine (provisioning/engine.hpp) on a SQLite store: parameters,
// pseudo parameters, each intrinsic function, each OverrideSettings value, the resources.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "admin/templates.hpp"
#include "provisioning/engine.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::provisioning {
namespace {

namespace fs = std::filesystem;

const std::string kCert(64, 'c');

class Engine : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("edgekit-provisioning-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto db = open_sqlite({(dir_ / "fleetd.db").string()});
    ASSERT_TRUE(db) << db.error().message;
    auto s = Store::open(std::move(db.value()), [] { return std::int64_t{1'700'000'000}; });
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(s.value());
    ok(store_->transact([](Tx& t) -> Res<void> {
      Certificate c;
      c.id = kCert;
      c.pem = "PEM";
      c.status = CertificateStatus::PendingActivation;
      if (auto r = t.create_certificate(c); !r) return fail(r.error());
      Policy p;
      p.name = "sensor";
      p.document = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]})";
      if (auto r = t.create_policy(p); !r) return fail(r.error());
      for (const char* g : {"g1", "g2", "g3"}) {
        if (auto r = t.create_group({g, "", 0}); !r) return fail(r.error());
      }
      return {};
    }));
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  template <class R>
  static void ok(const R& r) {
    ASSERT_TRUE(r) << r.error().message;
  }

  // Runs `body` in one transaction, rolled back when the engine rejects, as callers do.
  Outcome<Provisioned> run(const std::string& body, std::map<std::string, std::string> params = {},
                           std::map<std::string, std::string> subject = {},
                           std::string type = "FLEET_PROVISIONING") {
    auto valid = admin::validate_template(body, type);
    EXPECT_TRUE(valid) << valid.error().message;
    ProvisioningTemplate tmpl;
    tmpl.name = "t";
    tmpl.body = body;
    tmpl.type = type;
    CertificateContext cert{kCert, std::move(subject)};
    std::optional<Rejection> rejected;
    auto r = store_->transact([&](Tx& tx) -> Res<Provisioned> {
      auto p = run_template(tx, tmpl, params, cert);
      if (!p) {
        rejected = p.error();
        return fail(Errc::Conflict, "rejected");
      }
      return p.value();
    });
    if (rejected) return fail(*rejected);
    if (!r) return fail(Rejection{500, "store", r.error().message, {}});
    return r.value();
  }

  template <class F>
  auto read(F&& f) {
    auto r = store_->transact(std::forward<F>(f));
    EXPECT_TRUE(r) << r.error().message;
    return r.value();
  }
  Thing thing(const std::string& name) {
    return read([&](Tx& t) { return t.get_thing(name); });
  }
  std::set<std::string> groups(const std::string& name) {
    auto g = read([&](Tx& t) { return t.groups_of(name); });
    return {g.begin(), g.end()};
  }
  CertificateStatus cert_status() {
    return read([](Tx& t) { return t.get_certificate(kCert); }).status;
  }
  bool thing_exists(const std::string& name) {
    return static_cast<bool>(store_->transact([&](Tx& t) { return t.get_thing(name); }));
  }
  void expect_rejected(const Outcome<Provisioned>& r, int status, const std::string& code,
                       const std::string& message) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().status_code, status);
    EXPECT_EQ(r.error().error_code, code);
    EXPECT_EQ(r.error().error_message, message);
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

// A fleet template around a thing resource and extra sections; the certificate is the request's.
std::string fleet(const std::string& thing_props, const std::string& extra = "",
                  const std::string& overrides = "", const std::string& cert_status = "ACTIVE") {
  return R"({"Parameters":{"SerialNumber":{"Type":"String"},
                           "Site":{"Type":"String","Default":"lab"}},)" +
         extra + R"("Resources":{
    "thing":{"Type":"AWS::IoT::Thing","Properties":{)" + thing_props + "}" +
         (overrides.empty() ? "" : R"(,"OverrideSettings":{)" + overrides + "}") + R"(},
    "certificate":{"Type":"AWS::IoT::Certificate","Properties":{
        "CertificateId":{"Ref":"AWS::IoT::Certificate::Id"},"Status":")" + cert_status + R"("}},
    "policy":{"Type":"AWS::IoT::Policy","Properties":{"PolicyName":"sensor"}}}})";
}

TEST_F(Engine, CreatesTheThingActivatesAndAttachesTheCertificateAndThePolicy) {
  auto r = run(fleet(R"("ThingName":{"Ref":"SerialNumber"},
                        "AttributePayload":{"site":{"Ref":"Site"},"version":"v1"},
                        "ThingTypeName":"thermometer","ThingGroups":["g1","g2"])"),
               {{"SerialNumber", "sensor-7"}});
  ASSERT_TRUE(r) << r.error().error_message;
  EXPECT_EQ(r->thing_name, "sensor-7");
  EXPECT_TRUE(r->thing_created);
  EXPECT_EQ(r->certificate_status, CertificateStatus::Active);
  EXPECT_EQ(r->policies, std::vector<std::string>{"sensor"});
  const Thing t = thing("sensor-7");
  EXPECT_EQ(t.attributes, (Attributes{{"site", "lab"}, {"version", "v1"}}));
  EXPECT_EQ(t.type, "thermometer");
  EXPECT_EQ(groups("sensor-7"), (std::set<std::string>{"g1", "g2"}));
  EXPECT_EQ(cert_status(), CertificateStatus::Active);
  EXPECT_EQ(read([](Tx& tx) { return tx.things_of(kCert); }), std::vector<std::string>{"sensor-7"});
  EXPECT_EQ(read([](Tx& tx) { return tx.policies_of(kCert); }), std::vector<std::string>{"sensor"});
}

TEST_F(Engine, ARequestValueWinsOverTheDefault) {
  auto r = run(fleet(R"("ThingName":{"Ref":"SerialNumber"},"AttributePayload":{"site":{"Ref":"Site"}})"),
               {{"SerialNumber", "s1"}, {"Site", "roof"}});
  ASSERT_TRUE(r) << r.error().error_message;
  EXPECT_EQ(thing("s1").attributes.at("site"), "roof");
}

TEST_F(Engine, AMissingParameterWithoutDefaultIsInvalidParametersAndLeavesNothing) {
  auto r = run(fleet(R"("ThingName":{"Ref":"SerialNumber"})"), {{"Other", "x"}});
  expect_rejected(r, 400, "InvalidParameters", "Cannot resolve reference value: SerialNumber");
  EXPECT_EQ(cert_status(), CertificateStatus::PendingActivation);
}

TEST_F(Engine, CertificatePseudoParametersComeFromTheSubjectNeverFromTheRequest) {
  const std::string body = R"({"Parameters":{
      "AWS::IoT::Certificate::CommonName":{"Type":"String"},
      "AWS::IoT::Certificate::Country":{"Type":"String"},
      "AWS::IoT::Certificate::Organization":{"Type":"String","Default":"none"}},
    "Resources":{
      "thing":{"Type":"AWS::IoT::Thing","Properties":{
        "ThingName":{"Ref":"AWS::IoT::Certificate::CommonName"},
        "AttributePayload":{"country":{"Ref":"AWS::IoT::Certificate::Country"},
                            "org":{"Ref":"AWS::IoT::Certificate::Organization"},
                            "id":{"Ref":"AWS::IoT::Certificate::Id"}}}},
      "certificate":{"Type":"AWS::IoT::Certificate","Properties":{
        "CertificateId":{"Ref":"AWS::IoT::Certificate::Id"},"Status":"ACTIVE"}}}})";
  auto r = run(body, {{"AWS::IoT::Certificate::CommonName", "forged"}},
               {{"CommonName", "dev-42"}, {"Country", "DE"}}, "JITP");
  ASSERT_TRUE(r) << r.error().error_message;
  EXPECT_EQ(r->thing_name, "dev-42");
  EXPECT_FALSE(thing_exists("forged"));
  // Organization is not in the subject: its Default.
  EXPECT_EQ(thing("dev-42").attributes,
            (Attributes{{"country", "DE"}, {"org", "none"}, {"id", kCert}}));
}

TEST_F(Engine, ASubjectLackingATemplateParameterFailsTheRun) {
  const std::string body = R"({"Parameters":{
      "AWS::IoT::Certificate::CommonName":{"Type":"String"},
      "AWS::IoT::Certificate::SerialNumber":{"Type":"String"}},
    "Resources":{
      "thing":{"Type":"AWS::IoT::Thing","Properties":{
        "ThingName":{"Fn::Join":["-",[{"Ref":"AWS::IoT::Certificate::CommonName"},
                                       {"Ref":"AWS::IoT::Certificate::SerialNumber"}]]}}},
      "certificate":{"Type":"AWS::IoT::Certificate","Properties":{
        "CertificateId":{"Ref":"AWS::IoT::Certificate::Id"}}}}})";
  auto r = run(body, {{"AWS::IoT::Certificate::SerialNumber", "1"}}, {{"CommonName", "dev"}},
               "JITP");
  expect_rejected(r, 400, "InvalidParameters",
                  "Cannot resolve reference value: AWS::IoT::Certificate::SerialNumber");
  EXPECT_FALSE(thing_exists("dev-1"));
  // With it, the run succeeds, and Status defaults to ACTIVE.
  auto ok = run(body, {}, {{"CommonName", "dev"}, {"SerialNumber", "1"}}, "JITP");
  ASSERT_TRUE(ok) << ok.error().error_message;
  EXPECT_EQ(ok->thing_name, "dev-1");
  EXPECT_EQ(cert_status(), CertificateStatus::Active);
}

TEST_F(Engine, FnJoinSelectSplitFindInMapAndSubResolve) {
  const std::string mappings = R"("Mappings":{"Sites":{"lab":{"Region":"eu","Floor":3,"Ok":true}}},
    "DeviceConfiguration":{
      "join":{"Fn::Join":["/",["a",{"Ref":"Site"},"c"]]},
      "select":{"Fn::Select":[1,["x","y","z"]]},
      "selectText":{"Fn::Select":["2",{"Fn::Split":[",","p,q,r"]}]},
      "split":{"Fn::Join":["+",{"Fn::Split":["::","a::b::::c"]}]},
      "map":{"Fn::FindInMap":["Sites",{"Ref":"Site"},"Region"]},
      "mapNumber":{"Fn::FindInMap":["Sites","lab","Floor"]},
      "mapBool":{"Fn::FindInMap":["Sites","lab","Ok"]},
      "sub":{"Fn::Sub":"${Site}/${AWS::IoT::Certificate::Id}/${!Literal}"},
      "subList":{"Fn::Sub":["${Site}-${n}",{"n":{"Fn::Select":[0,["7"]]}}]},
      "literal":"plain"},)";
  auto r = run(fleet(R"("ThingName":{"Fn::Sub":"dev-${SerialNumber}"})", mappings),
               {{"SerialNumber", "9"}});
  ASSERT_TRUE(r) << r.error().error_message;
  EXPECT_EQ(r->thing_name, "dev-9");
  const std::map<std::string, std::string> want{
      {"join", "a/lab/c"},      {"select", "y"},         {"selectText", "r"},
      {"split", "a+b++c"},      {"map", "eu"},           {"mapNumber", "3"},
      {"mapBool", "true"},      {"sub", "lab/" + kCert + "/${Literal}"},
      {"subList", "lab-7"},     {"literal", "plain"}};
  EXPECT_EQ(r->device_configuration, want);
}

TEST_F(Engine, IntrinsicsThatCannotResolveAreInvalidParameters) {
  const auto with_config = [](const std::string& value) {
    return fleet(R"("ThingName":"x")",
                 R"("Mappings":{"M":{"a":{"b":"c"}}},"DeviceConfiguration":{"v":)" + value + "},");
  };
  expect_rejected(run(with_config(R"({"Fn::Select":[3,["a","b"]]})")), 400, "InvalidParameters",
                  "DeviceConfiguration.v.Fn::Select: index 3 is beyond the list's 2 items");
  expect_rejected(run(with_config(R"({"Fn::FindInMap":["M","a","zz"]})")), 400,
                  "InvalidParameters",
                  "DeviceConfiguration.v.Fn::FindInMap: no value in Mappings for M/a/zz");
  expect_rejected(run(with_config(R"({"Fn::Sub":"${Nope}"})")), 400, "InvalidParameters",
                  "Cannot resolve reference value: Nope");
  expect_rejected(run(with_config(R"({"Fn::Join":["-",[{"Ref":"SerialNumber"}]]})")), 400,
                  "InvalidParameters", "Cannot resolve reference value: SerialNumber");
  EXPECT_FALSE(thing_exists("x"));
}

// An existing thing: attributes {a:1, b:2}, type "old", group g1.
class EngineOverride : public Engine {
 protected:
  void SetUp() override {
    Engine::SetUp();
    ok(store_->transact([](Tx& t) -> Res<void> {
      if (auto r = t.create_thing({"dev", "old", {{"a", "1"}, {"b", "2"}}, 0, 0}); !r) {
        return fail(r.error());
      }
      return t.add_to_group("g1", "dev");
    }));
  }
  Outcome<Provisioned> run_with(const std::string& setting) {
    const std::string overrides =
        setting.empty() ? ""
                        : R"("AttributePayload":")" + setting + R"(","ThingGroups":")" +
                              setting + R"(")" +
                              (setting == "MERGE" ? "" : R"(,"ThingTypeName":")" + setting + "\"");
    return run(fleet(R"("ThingName":"dev","AttributePayload":{"b":"3","c":"4"},
                        "ThingTypeName":"new","ThingGroups":["g2"])",
                     "", overrides));
  }
};

TEST_F(EngineOverride, WithoutSettingsOrDoNothingTheThingStaysAsItIs) {
  for (const char* setting : {"", "DO_NOTHING"}) {
    auto r = run_with(setting);
    ASSERT_TRUE(r) << r.error().error_message;
    EXPECT_FALSE(r->thing_created);
    const Thing t = thing("dev");
    EXPECT_EQ(t.attributes, (Attributes{{"a", "1"}, {"b", "2"}}));
    EXPECT_EQ(t.type, "old");
    EXPECT_EQ(t.version, 1);
    EXPECT_EQ(groups("dev"), std::set<std::string>{"g1"});
  }
  // The certificate is still the thing's, and active.
  EXPECT_EQ(read([](Tx& tx) { return tx.principals_of("dev"); }), std::vector<std::string>{kCert});
  EXPECT_EQ(cert_status(), CertificateStatus::Active);
}

TEST_F(EngineOverride, ReplaceSetsTheTemplatesValues) {
  auto r = run_with("REPLACE");
  ASSERT_TRUE(r) << r.error().error_message;
  const Thing t = thing("dev");
  EXPECT_EQ(t.attributes, (Attributes{{"b", "3"}, {"c", "4"}}));
  EXPECT_EQ(t.type, "new");
  EXPECT_EQ(groups("dev"), std::set<std::string>{"g2"});
}

TEST_F(EngineOverride, MergeAddsAttributesAndGroups) {
  auto r = run_with("MERGE");
  ASSERT_TRUE(r) << r.error().error_message;
  const Thing t = thing("dev");
  EXPECT_EQ(t.attributes, (Attributes{{"a", "1"}, {"b", "3"}, {"c", "4"}}));
  EXPECT_EQ(t.type, "old");
  EXPECT_EQ(groups("dev"), (std::set<std::string>{"g1", "g2"}));
}

TEST_F(EngineOverride, FailRefusesDifferentValuesAndAcceptsTheSame) {
  expect_rejected(run_with("FAIL"), 409, "ResourceConflictsException",
                  "thing 'dev' exists with other attributes");
  EXPECT_EQ(cert_status(), CertificateStatus::PendingActivation);
  ok(store_->transact([](Tx& t) -> Res<void> {
    if (auto r = t.update_thing({"dev", "new", {{"b", "3"}, {"c", "4"}}, 0, 0}); !r) {
      return fail(r.error());
    }
    if (auto r = t.remove_from_group("g1", "dev"); !r) return r;
    return t.add_to_group("g2", "dev");
  }));
  auto same = run_with("FAIL");
  ASSERT_TRUE(same) << same.error().error_message;
  EXPECT_FALSE(same->thing_created);
}

TEST_F(Engine, InactiveStatusAndAPolicyDocumentNamedByItsHash) {
  const std::string doc =
      R"({\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]})";
  std::string body = fleet(R"("ThingName":"d1")", "", "", "INACTIVE");
  body.replace(body.find(R"("PolicyName":"sensor")"), std::string(R"("PolicyName":"sensor")").size(),
               R"("PolicyDocument":")" + doc + "\"");
  auto r = run(body);
  ASSERT_TRUE(r) << r.error().error_message;
  EXPECT_EQ(r->certificate_status, CertificateStatus::Inactive);
  EXPECT_EQ(cert_status(), CertificateStatus::Inactive);
  ASSERT_EQ(r->policies.size(), 1u);
  const std::string name = r->policies[0];
  EXPECT_EQ(name.size(), 64u);
  EXPECT_EQ(read([&](Tx& t) { return t.get_policy(name); }).document.find("iot:Connect") !=
                std::string::npos,
            true);
  // The same document again (another device): the same policy, not a second one.
  std::string again = body;
  again.replace(again.find("\"d1\""), 4, "\"d2\"");
  auto r2 = run(again);
  ASSERT_TRUE(r2) << r2.error().error_message;
  EXPECT_EQ(r2->policies, std::vector<std::string>{name});
}

TEST_F(Engine, RefusesAnotherCertificateAMissingGroupOrPolicyAndARevokedCertificate) {
  std::string other = fleet(R"("ThingName":"d")");
  other.replace(other.find(R"({"Ref":"AWS::IoT::Certificate::Id"})"),
                std::string(R"({"Ref":"AWS::IoT::Certificate::Id"})").size(),
                "\"" + std::string(64, 'e') + "\"");
  expect_rejected(run(other), 400, "InvalidParameters",
                  "Resources.certificate.CertificateId is not the certificate being provisioned");
  auto group = run(fleet(R"("ThingName":"d","ThingGroups":["nope"])"));
  ASSERT_FALSE(group);
  EXPECT_EQ(group.error().error_code, "InvalidParameters");
  ASSERT_TRUE(group.error().store_error);
  EXPECT_EQ(group.error().store_error->code, Errc::NotFound);
  std::string policy = fleet(R"("ThingName":"d")");
  policy.replace(policy.find("\"sensor\""), 8, "\"missing\"");
  auto p = run(policy);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().error_code, "InvalidParameters");
  EXPECT_FALSE(thing_exists("d"));
  ok(store_->transact([](Tx& t) { return t.set_certificate_status(kCert, CertificateStatus::Revoked); }));
  auto revoked = run(fleet(R"("ThingName":"d")"));
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().status_code, 409);
  EXPECT_FALSE(thing_exists("d"));
}

TEST_F(Engine, AThingNameAwsWouldRefuseIsInvalidParameters) {
  auto r = run(fleet(R"("ThingName":{"Ref":"SerialNumber"})"), {{"SerialNumber", "a b/c"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().status_code, 400);
  EXPECT_EQ(r.error().error_code, "InvalidParameters");
}

}  // namespace
}  // namespace edgekit::fleetd::provisioning
