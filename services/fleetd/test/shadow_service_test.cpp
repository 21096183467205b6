// fleetd's shadow service (src/shadow/service.hpp) over a real SQLite store, its broker replies
// captured, its clocks injected: the order and topics of the messages of one request, the
// throttle's window to the request, the admin operations publishing what a device's would, and a
// store that fails answered 500.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "shadow/service.hpp"
#include "store/db.hpp"

namespace edgekit::fleetd::shadow {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Sent {
  std::string topic;
  json doc;
};

class ShadowServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgekit-shadow-service-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto db = open_sqlite({(dir_ / "fleetd.db").string()});
    ASSERT_TRUE(db) << db.error().message;
    auto s = Store::open(std::move(db.value()), [this] { return wall_; });
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(s.value());
    service_ = std::make_unique<ShadowService>(
        *store_, log_,
        [this](const std::string& topic, const std::string& payload) {
          sent_.push_back({topic, json::parse(payload)});
        },
        ShadowOptions{}, [this] { return mono_ms_; });
  }
  void TearDown() override {
    service_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  std::vector<std::string> topics() const {
    std::vector<std::string> t;
    for (const auto& s : sent_) t.push_back(s.topic);
    return t;
  }

  std::int64_t wall_ = 1'700'000'000;
  std::int64_t mono_ms_ = 5'000;
  fs::path dir_;
  std::ostringstream log_text_;
  Logger log_{log_text_, LogFormat::Text, LogLevel::Debug};
  std::unique_ptr<Store> store_;
  std::unique_ptr<ShadowService> service_;
  std::vector<Sent> sent_;
};

TEST_F(ShadowServiceTest, AnUpdateIsAnsweredThenItsDeltaThenItsDocuments) {
  service_->handle("$aws/things/t1/shadow/name/cfg/update",
                   R"({"state":{"desired":{"on":true}},"clientToken":"a"})");
  EXPECT_EQ(topics(),
            (std::vector<std::string>{"$aws/things/t1/shadow/name/cfg/update/accepted",
                                      "$aws/things/t1/shadow/name/cfg/update/delta",
                                      "$aws/things/t1/shadow/name/cfg/update/documents"}));
  EXPECT_EQ(sent_[0].doc["timestamp"], wall_);  // the store's clock
  EXPECT_EQ(sent_[1].doc["version"], 1);
  sent_.clear();
  // A reply topic, an unknown operation or a name AWS refuses is not a request: nothing is sent.
  for (const char* t : {"$aws/things/t1/shadow/update/accepted", "$aws/things/t1/shadow/patch",
                        "$aws/things/t 1/shadow/get", "$aws/things/t1/shadow/name//get"}) {
    service_->handle(t, "");
  }
  EXPECT_TRUE(sent_.empty());
}

TEST_F(ShadowServiceTest, ThrottlesTheTwentyFirstRequestOfAThingInOneSecond) {
  for (int i = 0; i < 20; ++i) service_->handle("$aws/things/t1/shadow/get", "");
  EXPECT_EQ(sent_.size(), 20u);
  for (const auto& s : sent_) EXPECT_EQ(s.doc["code"], 404);
  sent_.clear();
  mono_ms_ += 999;
  service_->handle("$aws/things/t1/shadow/name/x/delete", R"({"clientToken":"late"})");
  service_->handle("$aws/things/t2/shadow/get", "");  // another thing: its own allowance
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].topic, "$aws/things/t1/shadow/name/x/delete/rejected");
  EXPECT_EQ(sent_[0].doc["code"], 429);
  EXPECT_EQ(sent_[0].doc["message"], "Too many requests");
  EXPECT_EQ(sent_[0].doc["clientToken"], "late");
  EXPECT_EQ(sent_[1].doc["code"], 404);
  sent_.clear();
  mono_ms_ += 1;  // a new window
  service_->handle("$aws/things/t1/shadow/get", "");
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].doc["code"], 404);
  // The admin API is not throttled.
  for (int i = 0; i < 30; ++i) EXPECT_EQ(service_->get("t1", "").status, 404);
}

TEST_F(ShadowServiceTest, AdminOperationsPublishWhatADevicesWould) {
  Answer a = service_->update("t1", "", R"({"state":{"desired":{"x":1}}})");
  EXPECT_TRUE(a.accepted);
  EXPECT_EQ(a.document["version"], 1);
  EXPECT_EQ(topics(), (std::vector<std::string>{"$aws/things/t1/shadow/update/accepted",
                                                "$aws/things/t1/shadow/update/delta",
                                                "$aws/things/t1/shadow/update/documents"}));
  sent_.clear();
  Answer d = service_->remove("t1", "");
  EXPECT_TRUE(d.accepted);
  EXPECT_EQ(topics(), (std::vector<std::string>{"$aws/things/t1/shadow/delete/accepted"}));
  Answer bad = service_->get("no such thing", "");
  EXPECT_EQ(bad.status, 400);
  Answer conflict = service_->update("t1", "", R"({"state":{},"version":3})");
  EXPECT_EQ(conflict.status, 400);  // no shadow: a version is "Invalid version"
}

TEST_F(ShadowServiceTest, AStoreThatFailsIsAnInternalFailure) {
  // A damaged row (not JSON) is what this service cannot read.
  ASSERT_TRUE(store_->transact([](Tx& tx) {
    return tx.db().exec(
        "INSERT INTO shadows (thing_name, shadow_name, state, metadata, version, deleted, "
        "updated_at) VALUES ('t1', '', 'garbage', '{}', 1, 0, 0)");
  }));
  service_->handle("$aws/things/t1/shadow/get", R"({"clientToken":"k"})");
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].topic, "$aws/things/t1/shadow/get/rejected");
  EXPECT_EQ(sent_[0].doc["code"], 500);
  EXPECT_EQ(sent_[0].doc["message"], "Internal service failure");
  EXPECT_EQ(sent_[0].doc["clientToken"], "k");
  EXPECT_NE(log_text_.str().find("shadow.store_failed"), std::string::npos);
}

}  // namespace
}  // namespace edgekit::fleetd::shadow
