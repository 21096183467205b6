// The provisioning template engine (provisioning/engine.hpp) on a SQLite store: parameters,
// pseudo parameters, each intrinsic function, each OverrideSettings value, the resources.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "admin/templates.hpp"
#include "ca/broker_trust.hpp"
#include "edgekit/json/json.hpp"
#include "edgekit/pki/certificate.hpp"
#include "edgekit/testing/test_pki.hpp"
#include "provisioning/engine.hpp"
#include "provisioning/jit.hpp"
#include "store/store.hpp"
#include "store_backends.hpp"

namespace edgekit::fleetd::provisioning {
namespace {

namespace fs = std::filesystem;

const std::string kCert(64, 'c');

using test::Backend;

// Every test runs on both stores: the engine uses only `Tx`, but PostgreSQL's SERIALIZABLE
// transactions and its types are where a difference would show.
class Engine : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    static int counter = 0;
    ++counter;
    dir_ = fs::temp_directory_path() /
           ("edgekit-provisioning-" + std::to_string(::getpid()) + "-" + std::to_string(counter));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Res<std::unique_ptr<Db>> db = fail(Errc::Internal, "no backend");
    if (GetParam() == Backend::Postgres) {
      auto made = test::new_postgres_database("p" + std::to_string(::getpid()) + "_" +
                                              std::to_string(counter));
      ASSERT_TRUE(made) << made.error().message;
      db = open_postgres({made.value()});
    } else {
      db = open_sqlite({(dir_ / "fleetd.db").string()});
    }
    ASSERT_TRUE(db) << db.error().message;
    // The real time: just-in-time registration checks certificates issued now.
    auto s = Store::open(std::move(db.value()), [] {
      return std::int64_t{std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count()};
    });
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
      p.document =
          R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]})";
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
    "thing":{"Type":"AWS::IoT::Thing","Properties":{)" +
         thing_props + "}" +
         (overrides.empty() ? "" : R"(,"OverrideSettings":{)" + overrides + "}") + R"(},
    "certificate":{"Type":"AWS::IoT::Certificate","Properties":{
        "CertificateId":{"Ref":"AWS::IoT::Certificate::Id"},"Status":")" +
         cert_status + R"("}},
    "policy":{"Type":"AWS::IoT::Policy","Properties":{"PolicyName":"sensor"}}}})";
}

TEST_P(Engine, CreatesTheThingActivatesAndAttachesTheCertificateAndThePolicy) {
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

TEST_P(Engine, ARequestValueWinsOverTheDefault) {
  auto r =
      run(fleet(R"("ThingName":{"Ref":"SerialNumber"},"AttributePayload":{"site":{"Ref":"Site"}})"),
          {{"SerialNumber", "s1"}, {"Site", "roof"}});
  ASSERT_TRUE(r) << r.error().error_message;
  EXPECT_EQ(thing("s1").attributes.at("site"), "roof");
}

TEST_P(Engine, AMissingParameterWithoutDefaultIsInvalidParametersAndLeavesNothing) {
  auto r = run(fleet(R"("ThingName":{"Ref":"SerialNumber"})"), {{"Other", "x"}});
  expect_rejected(r, 400, "InvalidParameters", "Cannot resolve reference value: SerialNumber");
  EXPECT_EQ(cert_status(), CertificateStatus::PendingActivation);
}

TEST_P(Engine, CertificatePseudoParametersComeFromTheSubjectNeverFromTheRequest) {
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

TEST_P(Engine, ASubjectLackingATemplateParameterFailsTheRun) {
  const std::string body = R"({"Parameters":{
      "AWS::IoT::Certificate::CommonName":{"Type":"String"},
      "AWS::IoT::Certificate::SerialNumber":{"Type":"String"}},
    "Resources":{
      "thing":{"Type":"AWS::IoT::Thing","Properties":{
        "ThingName":{"Fn::Join":["-",[{"Ref":"AWS::IoT::Certificate::CommonName"},
                                       {"Ref":"AWS::IoT::Certificate::SerialNumber"}]]}}},
      "certificate":{"Type":"AWS::IoT::Certificate","Properties":{
        "CertificateId":{"Ref":"AWS::IoT::Certificate::Id"}}}}})";
  auto r =
      run(body, {{"AWS::IoT::Certificate::SerialNumber", "1"}}, {{"CommonName", "dev"}}, "JITP");
  expect_rejected(r, 400, "InvalidParameters",
                  "Cannot resolve reference value: AWS::IoT::Certificate::SerialNumber");
  EXPECT_FALSE(thing_exists("dev-1"));
  // With it, the run succeeds, and Status defaults to ACTIVE.
  auto ok = run(body, {}, {{"CommonName", "dev"}, {"SerialNumber", "1"}}, "JITP");
  ASSERT_TRUE(ok) << ok.error().error_message;
  EXPECT_EQ(ok->thing_name, "dev-1");
  EXPECT_EQ(cert_status(), CertificateStatus::Active);
}

TEST_P(Engine, FnJoinSelectSplitFindInMapAndSubResolve) {
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
      {"join", "a/lab/c"},  {"select", "y"},
      {"selectText", "r"},  {"split", "a+b++c"},
      {"map", "eu"},        {"mapNumber", "3"},
      {"mapBool", "true"},  {"sub", "lab/" + kCert + "/${Literal}"},
      {"subList", "lab-7"}, {"literal", "plain"}};
  EXPECT_EQ(r->device_configuration, want);
}

TEST_P(Engine, IntrinsicsThatCannotResolveAreInvalidParameters) {
  const auto with_config = [](const std::string& value) {
    return fleet(R"("ThingName":"x")",
                 R"("Mappings":{"M":{"a":{"b":"c"}}},"DeviceConfiguration":{"v":)" + value + "},");
  };
  expect_rejected(run(with_config(R"({"Fn::Select":[3,["a","b"]]})")), 400, "InvalidParameters",
                  "DeviceConfiguration.v.Fn::Select: index 3 is beyond the list's 2 items");
  expect_rejected(run(with_config(R"({"Fn::FindInMap":["M","a","zz"]})")), 400, "InvalidParameters",
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
        setting.empty()
            ? ""
            : R"("AttributePayload":")" + setting + R"(","ThingGroups":")" + setting + R"(")" +
                  (setting == "MERGE" ? "" : R"(,"ThingTypeName":")" + setting + "\"");
    return run(fleet(R"("ThingName":"dev","AttributePayload":{"b":"3","c":"4"},
                        "ThingTypeName":"new","ThingGroups":["g2"])",
                     "", overrides));
  }
};

TEST_P(EngineOverride, WithoutSettingsOrDoNothingTheThingStaysAsItIs) {
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

TEST_P(EngineOverride, ReplaceSetsTheTemplatesValues) {
  auto r = run_with("REPLACE");
  ASSERT_TRUE(r) << r.error().error_message;
  const Thing t = thing("dev");
  EXPECT_EQ(t.attributes, (Attributes{{"b", "3"}, {"c", "4"}}));
  EXPECT_EQ(t.type, "new");
  EXPECT_EQ(groups("dev"), std::set<std::string>{"g2"});
}

TEST_P(EngineOverride, MergeAddsAttributesAndGroups) {
  auto r = run_with("MERGE");
  ASSERT_TRUE(r) << r.error().error_message;
  const Thing t = thing("dev");
  EXPECT_EQ(t.attributes, (Attributes{{"a", "1"}, {"b", "3"}, {"c", "4"}}));
  EXPECT_EQ(t.type, "old");
  EXPECT_EQ(groups("dev"), (std::set<std::string>{"g1", "g2"}));
}

TEST_P(EngineOverride, FailRefusesDifferentValuesAndAcceptsTheSame) {
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

TEST_P(Engine, InactiveStatusAndAPolicyDocumentNamedByItsHash) {
  const std::string doc =
      R"({\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]})";
  std::string body = fleet(R"("ThingName":"d1")", "", "", "INACTIVE");
  body.replace(body.find(R"("PolicyName":"sensor")"),
               std::string(R"("PolicyName":"sensor")").size(),
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

TEST_P(Engine, RefusesAnotherCertificateAMissingGroupOrPolicyAndARevokedCertificate) {
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
  ok(store_->transact(
      [](Tx& t) { return t.set_certificate_status(kCert, CertificateStatus::Revoked); }));
  auto revoked = run(fleet(R"("ThingName":"d")"));
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error().status_code, 409);
  EXPECT_FALSE(thing_exists("d"));
}

TEST_P(Engine, AThingNameAwsWouldRefuseIsInvalidParameters) {
  auto r = run(fleet(R"("ThingName":{"Ref":"SerialNumber"})"), {{"SerialNumber", "a b/c"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().status_code, 400);
  EXPECT_EQ(r.error().error_code, "InvalidParameters");
}

// Just-in-time registration at store level (the end-to-end tests are fleetd_jit_test).
class JitRegistration : public Engine {
 protected:
  void SetUp() override {
    Engine::SetUp();
    ca_ = std::make_unique<testing::TestCa>(dir_.string(), "jit-ca");
    ASSERT_TRUE(ca_->ok()) << ca_->error();
    auto info = pki::parse_certificate(file(ca_->cert_file()));
    ASSERT_TRUE(info);
    ca_id_ = info->id;
    ok(store_->transact([&](Tx& t) -> Res<void> {
      if (auto r = t.register_ca({ca_id_, info->pem(), CaStatus::Active, true, "", 0}); !r) {
        return fail(r.error());
      }
      return {};
    }));
  }
  static std::string file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // A device certificate of the CA: its PEM and id.
  std::pair<std::string, std::string> device(
      const std::string& cn, std::chrono::seconds not_after = std::chrono::hours(24),
      std::vector<std::pair<std::string, std::string>> fields = {}) {
    testing::CertOptions o;
    o.common_name = cn;
    o.not_after = not_after;
    o.subject_fields = std::move(fields);
    const std::string pem = file(ca_->issue(cn, o).cert_file);
    auto info = pki::parse_certificate(pem);
    EXPECT_TRUE(info);
    return {pem, info ? info->id : ""};
  }
  JitOutcome jit(const std::string& pem, const std::string& id) {
    std::optional<JitOutcome> out;
    auto r = store_->transact([&](Tx& tx) -> Res<bool> {
      auto j = register_just_in_time(tx, id, pem, "");
      if (!j) return fail(j.error());
      out = j.value();
      if (j->roll_back) return fail(Errc::Conflict, "rolled back");
      return true;
    });
    EXPECT_TRUE(out) << (r ? "" : r.error().message);
    return out.value_or(JitOutcome{});
  }
  void set_template(const std::string& body, bool enabled, const std::string& type = "JITP") {
    ok(store_->transact([&](Tx& t) -> Res<void> {
      ProvisioningTemplate tmpl;
      tmpl.name = "jitp";
      tmpl.body = body;
      tmpl.type = type;
      tmpl.enabled = enabled;
      if (auto r = t.create_template(tmpl); !r) return fail(r.error());
      auto ca = t.get_ca(ca_id_);
      if (!ca) return fail(ca.error());
      ca->registration_template = "jitp";
      if (auto r = t.update_ca(ca.value()); !r) return fail(r.error());
      return {};
    }));
  }
  bool registered(const std::string& id) {
    return static_cast<bool>(store_->transact([&](Tx& t) { return t.get_certificate(id); }));
  }

  std::unique_ptr<testing::TestCa> ca_;
  std::string ca_id_;
};

const char* kJitp = R"({"Parameters":{"AWS::IoT::Certificate::CommonName":{"Type":"String"},
    "AWS::IoT::Certificate::SerialNumber":{"Type":"String"}},
  "Resources":{
    "thing":{"Type":"AWS::IoT::Thing","Properties":{
      "ThingName":{"Ref":"AWS::IoT::Certificate::CommonName"},
      "AttributePayload":{"serial":{"Ref":"AWS::IoT::Certificate::SerialNumber"}}}},
    "certificate":{"Type":"AWS::IoT::Certificate","Properties":{
      "CertificateId":{"Ref":"AWS::IoT::Certificate::Id"},"Status":"ACTIVE"}}}})";

TEST_P(JitRegistration, WithoutATemplateRegistersPendingActivationWithAnEvent) {
  auto [pem, id] = device("d1");
  const JitOutcome o = jit(pem, id);
  ASSERT_TRUE(o.registered) << o.reason;
  EXPECT_FALSE(o.provisioned);
  ASSERT_TRUE(o.event);
  EXPECT_EQ(o.event->certificate_id, id);
  EXPECT_EQ(o.event->ca_certificate_id, ca_id_);
  EXPECT_EQ(o.event->status, CertificateStatus::PendingActivation);
  const Certificate c = read([&](Tx& t) { return t.get_certificate(id); });
  EXPECT_EQ(c.status, CertificateStatus::PendingActivation);
  EXPECT_EQ(c.ca_id, ca_id_);
  EXPECT_EQ(registration_topic(*o.event), "$aws/events/certificates/registered/" + ca_id_);
  const auto j = nlohmann::json::parse(registration_json(*o.event, 1'234'000));
  EXPECT_EQ(j["certificateId"], id);
  EXPECT_EQ(j["caCertificateId"], ca_id_);
  EXPECT_EQ(j["timestamp"], 1'234'000);
  EXPECT_EQ(j["certificateStatus"], "PENDING_ACTIVATION");
  EXPECT_EQ(j["awsAccountId"], "000000000000");
  EXPECT_EQ(j["certificateRegistrationTimestamp"], c.created_at * 1000);
  EXPECT_EQ(j.size(), 6u);
}

TEST_P(JitRegistration, WithAJitpTemplateProvisionsFromTheSubject) {
  set_template(kJitp, true);
  auto [pem, id] = device("d2", std::chrono::hours(24), {{"serialNumber", "SN-9"}});
  const JitOutcome o = jit(pem, id);
  ASSERT_TRUE(o.registered) << o.reason;
  ASSERT_TRUE(o.provisioned);
  EXPECT_EQ(o.provisioned->thing_name, "d2");
  EXPECT_EQ(o.event->status, CertificateStatus::Active);
  EXPECT_EQ(thing("d2").attributes.at("serial"), "SN-9");
  EXPECT_EQ(read([&](Tx& t) { return t.get_certificate(id); }).status, CertificateStatus::Active);
}

TEST_P(JitRegistration, ARejectedTemplateRunIsRolledBackWithItsReason) {
  set_template(kJitp, true);
  auto [pem, id] = device("d3");  // no serialNumber in the subject
  const JitOutcome o = jit(pem, id);
  EXPECT_FALSE(o.registered);
  EXPECT_TRUE(o.roll_back);
  EXPECT_NE(o.reason.find("Cannot resolve reference value: AWS::IoT::Certificate::SerialNumber"),
            std::string::npos)
      << o.reason;
  EXPECT_FALSE(registered(id));
  EXPECT_FALSE(thing_exists("d3"));
}

TEST_P(JitRegistration, RefusesWithoutWritingWhatItCannotTrust) {
  auto [pem, id] = device("d4");
  // The PEM of another certificate than the one presented.
  auto [other_pem, other_id] = device("d5");
  JitOutcome o = jit(other_pem, id);
  EXPECT_FALSE(o.registered);
  EXPECT_NE(o.reason.find("another certificate"), std::string::npos) << o.reason;
  // No PEM at all: simply unknown.
  o = jit("", id);
  EXPECT_FALSE(o.registered);
  EXPECT_EQ(o.reason, "certificate " + id + " is not registered");
  // Expired.
  auto [expired_pem, expired_id] = device("d6", std::chrono::seconds(-60));
  o = jit(expired_pem, expired_id);
  EXPECT_FALSE(o.registered);
  EXPECT_NE(o.reason.find("no ACTIVE registered CA with auto-registration"), std::string::npos);
  EXPECT_NE(o.reason.find("xpired"), std::string::npos) << o.reason;
  // A disabled template: refused before anything is written.
  set_template(kJitp, false);
  o = jit(pem, id);
  EXPECT_FALSE(o.registered);
  EXPECT_NE(o.reason.find("is disabled"), std::string::npos) << o.reason;
  // The CA deactivated, or without auto-registration.
  ok(store_->transact([&](Tx& t) -> Res<void> {
    auto ca = t.get_ca(ca_id_);
    if (!ca) return fail(ca.error());
    ca->registration_template.clear();
    ca->status = CaStatus::Inactive;
    if (auto r = t.update_ca(ca.value()); !r) return fail(r.error());
    return {};
  }));
  o = jit(pem, id);
  EXPECT_FALSE(o.registered);
  ok(store_->transact([&](Tx& t) -> Res<void> {
    auto ca = t.get_ca(ca_id_);
    if (!ca) return fail(ca.error());
    ca->status = CaStatus::Active;
    ca->auto_registration = false;
    if (auto r = t.update_ca(ca.value()); !r) return fail(r.error());
    return {};
  }));
  o = jit(pem, id);
  EXPECT_FALSE(o.registered);
  for (const auto& c : {id, other_id, expired_id}) EXPECT_FALSE(registered(c));
}

TEST_P(JitRegistration, TheBrokerTrustFolderHoldsTheActiveCasByHashOnly) {
  const std::string folder = (dir_ / "broker-cas").string();
  std::ofstream(fs::path(folder).string() + ".keep");  // a file beside it is not touched
  auto n = ca::write_broker_trust(*store_, folder);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n.value(), 1u);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(folder))
    names.push_back(e.path().filename().string());
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0].size(), 10u);  // <8 hex digits>.0, as `openssl rehash` names it
  EXPECT_EQ(names[0].substr(8), ".0");
  EXPECT_EQ(file((fs::path(folder) / names[0]).string()), file(ca_->cert_file()));
  EXPECT_EQ(fs::status(folder).permissions() & fs::perms::others_read, fs::perms::others_read);
  // Deactivated: removed at the next write.
  ok(store_->transact([&](Tx& t) -> Res<void> {
    auto ca = t.get_ca(ca_id_);
    if (!ca) return fail(ca.error());
    ca->status = CaStatus::Inactive;
    if (auto r = t.update_ca(ca.value()); !r) return fail(r.error());
    return {};
  }));
  n = ca::write_broker_trust(*store_, folder);
  ASSERT_TRUE(n);
  EXPECT_EQ(n.value(), 0u);
  EXPECT_TRUE(fs::is_empty(folder));
}

const auto kBackends = ::testing::Values(Backend::Sqlite, Backend::Postgres);
INSTANTIATE_TEST_SUITE_P(Backends, Engine, kBackends, test::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, EngineOverride, kBackends, test::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, JitRegistration, kBackends, test::backend_name);

}  // namespace
}  // namespace edgekit::fleetd::provisioning
