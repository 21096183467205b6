// fleetd's shadow service (src/shadow/service.hpp) over a real SQLite store, its broker replies
// captured, its clocks injected: the order and topics of the messages of one request, the
// throttle's window to the request, the admin operations publishing what a device's would, a
// store that fails answered 500, and group commit (requests of one turn of the loop in one
// transaction, answered after it, a failed batch decided again request by request).

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
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
  int commits = 0;  // transactions committed when it was published
};

// The real SQLite database, its commits counted (what group commit saves).
class CountingDb final : public Db {
 public:
  CountingDb(std::unique_ptr<Db> db, int& commits) : db_(std::move(db)), commits_(commits) {}
  Dialect dialect() const noexcept override { return db_->dialect(); }
  Res<std::int64_t> exec(std::string_view sql, std::initializer_list<Param> params) override {
    return db_->exec(sql, params);
  }
  Res<std::vector<Row>> query(std::string_view sql, std::initializer_list<Param> params) override {
    return db_->query(sql, params);
  }
  Res<void> exec_script(std::string_view sql) override { return db_->exec_script(sql); }
  Res<void> begin() override { return db_->begin(); }
  Res<void> commit() override {
    auto r = db_->commit();
    if (r) ++commits_;
    return r;
  }
  void rollback() noexcept override { db_->rollback(); }

 private:
  std::unique_ptr<Db> db_;
  int& commits_;
};

class ShadowServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgekit-shadow-service-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto db = open_sqlite({(dir_ / "fleetd.db").string()});
    ASSERT_TRUE(db) << db.error().message;
    auto s = Store::open(std::make_unique<CountingDb>(std::move(db.value()), commits_),
                         [this] { return wall_; });
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(s.value());
    service_ = std::make_unique<ShadowService>(
        *store_, log_,
        [this](const std::string& topic, const std::string& payload) {
          sent_.push_back({topic, json::parse(payload), commits_});
        },
        ShadowOptions{}, [this] { return mono_ms_; });
  }
  // The service as fleetd runs it: requests queued, decided when the deferred call runs.
  void defer_flushes() {
    service_ = std::make_unique<ShadowService>(
        *store_, log_,
        [this](const std::string& topic, const std::string& payload) {
          sent_.push_back({topic, json::parse(payload), commits_});
        },
        ShadowOptions{}, [this] { return mono_ms_; },
        [this](std::function<void()> f) { deferred_.push_back(std::move(f)); });
  }
  void run_deferred() {
    auto calls = std::move(deferred_);
    deferred_.clear();
    for (auto& f : calls) f();
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
  int commits_ = 0;
  std::vector<std::function<void()>> deferred_;
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

TEST_F(ShadowServiceTest, RequestsOfOneTurnAreCommittedTogetherAndAnsweredAfterTheCommit) {
  defer_flushes();
  const int before = commits_;
  const std::string t = "$aws/things/t1/shadow/name/race/update";
  for (int i = 1; i <= 5; ++i) {
    service_->handle(t, R"({"state":{"reported":{"k)" + std::to_string(i) + R"(":1}},"clientToken":"c)" +
                            std::to_string(i) + "\"}");
  }
  // One stale version and a get: decided in the same transaction, in their place.
  service_->handle(t, R"({"state":{"reported":{"z":1}},"version":2,"clientToken":"stale"})");
  service_->handle("$aws/things/t1/shadow/name/race/get", R"({"clientToken":"g"})");
  EXPECT_TRUE(sent_.empty()) << "nothing is answered before the batch is committed";
  EXPECT_EQ(deferred_.size(), 1u) << "one deferred call per batch";
  EXPECT_EQ(service_->queued(), 7u);
  run_deferred();
  EXPECT_EQ(commits_, before + 1) << "seven requests, one transaction";
  std::vector<std::int64_t> versions;
  for (const auto& s : sent_) {
    EXPECT_EQ(s.commits, before + 1) << s.topic << " was published before the commit";
    if (s.topic == t + "/accepted") versions.push_back(s.doc["version"]);
  }
  EXPECT_EQ(versions, (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  ASSERT_EQ(sent_.size(), 12u);  // 5 × (accepted, documents), rejected, get accepted
  EXPECT_EQ(sent_[10].topic, t + "/rejected");
  EXPECT_EQ(sent_[10].doc["code"], 409);
  EXPECT_EQ(sent_[10].doc["clientToken"], "stale");
  EXPECT_EQ(sent_[11].topic, "$aws/things/t1/shadow/name/race/get/accepted");
  EXPECT_EQ(sent_[11].doc["version"], 5);
  EXPECT_EQ(sent_[11].doc["state"]["reported"].size(), 5u);
  // An admin operation works the queue first: the device's request arrived before it.
  sent_.clear();
  service_->handle(t, R"({"state":{"reported":{"k6":1}}})");
  Answer a = service_->update("t1", "race", R"({"state":{"reported":{"k7":1}}})");
  EXPECT_EQ(a.document["version"], 7);
  EXPECT_EQ(sent_.front().doc["version"], 6);
  run_deferred();  // the deferred call finds nothing left
  EXPECT_EQ(service_->queued(), 0u);
}

TEST_F(ShadowServiceTest, AFailedBatchIsDecidedAgainRequestByRequest) {
  defer_flushes();
  ASSERT_TRUE(store_->transact([](Tx& tx) {
    return tx.db().exec(
        "INSERT INTO shadows (thing_name, shadow_name, state, metadata, version, deleted, "
        "updated_at) VALUES ('t2', '', 'garbage', '{}', 1, 0, 0)");
  }));
  // A trigger makes the store refuse t3's row: the batch's transaction fails as a whole.
  ASSERT_TRUE(store_->transact([](Tx& tx) {
    return tx.db().exec_script(
        "CREATE TRIGGER refuse_t3 BEFORE INSERT ON shadows WHEN NEW.thing_name = 't3' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END;");
  }));
  service_->handle("$aws/things/t1/shadow/update", R"({"state":{"reported":{"a":1}},"clientToken":"1"})");
  service_->handle("$aws/things/t2/shadow/get", R"({"clientToken":"2"})");
  service_->handle("$aws/things/t3/shadow/update", R"({"state":{"reported":{"a":1}},"clientToken":"3"})");
  service_->handle("$aws/things/t4/shadow/update", R"({"state":{"reported":{"a":1}},"clientToken":"4"})");
  run_deferred();
  std::map<std::string, int> code;
  for (const auto& s : sent_) {
    if (s.topic.ends_with("/accepted")) code[s.doc["clientToken"]] = 200;
    if (s.topic.ends_with("/rejected")) code[s.doc["clientToken"]] = s.doc["code"];
  }
  EXPECT_EQ(code, (std::map<std::string, int>{{"1", 200}, {"2", 500}, {"3", 500}, {"4", 200}}));
  EXPECT_NE(log_text_.str().find("shadow.batch_failed"), std::string::npos);
  EXPECT_EQ(service_->get("t1", "").document["version"], 1);  // stored once, not twice
  EXPECT_EQ(service_->get("t4", "").document["version"], 1);
  EXPECT_EQ(service_->get("t3", "").status, 404);
}

}  // namespace
}  // namespace edgekit::fleetd::shadow
