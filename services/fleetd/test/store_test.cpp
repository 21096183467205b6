// One store suite, run against both implementations: SQLite in a temp folder and a real
// PostgreSQL that the suite starts itself (initdb + postgres on a free loopback port).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "edgekit/testing/postgres.hpp"
#include "store/claims.hpp"
#include "store/shadows.hpp"
#include "store_backends.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd {
namespace {

namespace fs = std::filesystem;
using test::Backend;

std::string hex_id(int n) {
  char buf[65];
  std::snprintf(buf, sizeof buf, "%064x", n);
  return buf;
}


class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    static int counter = 0;
    ++counter;
    if (GetParam() == Backend::Postgres) {
      database_ = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter);
      auto made = test::new_postgres_database(database_);
      ASSERT_TRUE(made) << made.error().message;
      connection_ = made.value();
    } else {
      dir_ = fs::temp_directory_path() /
             ("edgekit-store-" + std::to_string(::getpid()) + "-" + std::to_string(counter));
      fs::remove_all(dir_);
      fs::create_directories(dir_);
    }
    reopen();
  }

  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  Res<std::unique_ptr<Db>> open_db() {
    if (GetParam() == Backend::Postgres) return open_postgres({connection_});
    return open_sqlite({(dir_ / "fleetd.db").string()});
  }

  void reopen() {
    store_.reset();
    auto db = open_db();
    ASSERT_TRUE(db) << db.error().message;
    auto s = Store::open(std::move(db.value()), [this] { return now_; });
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(s.value());
  }

  template <class F>
  auto tx(F&& f) {
    return store_->transact(std::forward<F>(f));
  }

  Certificate cert(int n, CertificateStatus status = CertificateStatus::Active) {
    Certificate c;
    c.id = hex_id(n);
    c.pem = "-----BEGIN CERTIFICATE-----\nMIIB" + std::to_string(n) + "\n-----END CERTIFICATE-----\n";
    c.status = status;
    c.serial = "0" + std::to_string(n);
    c.not_before = 1000;
    c.not_after = 2000;
    return c;
  }

  // The thing is certainly not stored (NotFound, not another failure).
  bool no_thing(std::string_view name) {
    auto r = tx([&](Tx& t) { return t.get_thing(name); });
    return !r && r.error().code == Errc::NotFound;
  }

  std::int64_t now_ = 1'700'000'000;
  std::string database_;
  std::string connection_;
  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreTest, CreatesReadsUpdatesAndDeletesThings) {
  auto created = tx([](Tx& t) {
    return t.create_thing({"sensor-1", "thermometer", {{"floor", "3"}, {"room", "a"}}, 0, 0});
  });
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created.value().version, 1);
  EXPECT_EQ(created.value().created_at, now_);

  auto got = tx([](Tx& t) { return t.get_thing("sensor-1"); });
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got.value().type, "thermometer");
  EXPECT_EQ(got.value().attributes, (Attributes{{"floor", "3"}, {"room", "a"}}));

  auto dup = tx([](Tx& t) { return t.create_thing({"sensor-1", "", {}, 0, 0}); });
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Errc::AlreadyExists);
  EXPECT_EQ(dup.error().message, "thing 'sensor-1' already exists");

  auto stale = tx([](Tx& t) { return t.update_thing({"sensor-1", "x", {}, 0, 0}, 7); });
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, Errc::Conflict);

  auto updated = tx([](Tx& t) { return t.update_thing({"sensor-1", "hygrometer", {{"k", "v"}}, 0, 0}, 1); });
  ASSERT_TRUE(updated) << updated.error().message;
  EXPECT_EQ(updated.value().version, 2);
  EXPECT_EQ(tx([](Tx& t) { return t.get_thing("sensor-1"); }).value().type, "hygrometer");

  ASSERT_TRUE(tx([](Tx& t) { return t.delete_thing("sensor-1", 2); }));
  auto gone = tx([](Tx& t) { return t.get_thing("sensor-1"); });
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::NotFound);
  EXPECT_EQ(gone.error().message, "thing 'sensor-1' not found");
}

TEST_P(StoreTest, RefusesNamesOutsideAwsRules) {
  for (std::string bad : {std::string(), std::string(129, 'a'), std::string("a/b"),
                          std::string("a b"), std::string("ü")}) {
    auto r = tx([&](Tx& t) { return t.create_thing({bad, "", {}, 0, 0}); });
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::InvalidArgument) << bad;
  }
  EXPECT_TRUE(tx([](Tx& t) { return t.create_thing({std::string(128, 'a'), "", {}, 0, 0}); }));
  EXPECT_TRUE(tx([](Tx& t) { return t.create_thing({"Ab:c_d-9", "", {}, 0, 0}); }));
}

TEST_P(StoreTest, PaginatesInKeyOrder) {
  ASSERT_TRUE(tx([](Tx& t) -> Res<void> {
    for (int i = 24; i >= 0; --i) {
      char name[16];
      std::snprintf(name, sizeof name, "thing-%02d", i);
      if (auto r = t.create_thing({name, "", {}, 0, 0}); !r) return fail(r.error());
    }
    return {};
  }));
  std::vector<std::string> seen;
  PageRequest req{"", 10};
  std::vector<std::size_t> sizes;
  for (;;) {
    auto page = tx([&](Tx& t) { return t.list_things(req); });
    ASSERT_TRUE(page) << page.error().message;
    sizes.push_back(page.value().items.size());
    for (const auto& th : page.value().items) seen.push_back(th.name);
    if (page.value().next.empty()) break;
    req.after = page.value().next;
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{10, 10, 5}));
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.front(), "thing-00");

  auto zero = tx([](Tx& t) { return t.list_things({"", 0}); });
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, Errc::InvalidArgument);
}

TEST_P(StoreTest, CertificateLifecycleFollowsAws) {
  ASSERT_TRUE(tx([&](Tx& t) { return t.create_certificate(cert(1)); }));
  auto bad_id = tx([&](Tx& t) {
    auto c = cert(2);
    c.id = "ABC";
    return t.create_certificate(c);
  });
  ASSERT_FALSE(bad_id);
  EXPECT_EQ(bad_id.error().code, Errc::InvalidArgument);

  auto active_delete = tx([](Tx& t) { return t.delete_certificate(hex_id(1)); });
  ASSERT_FALSE(active_delete);
  EXPECT_EQ(active_delete.error().code, Errc::Conflict);

  ASSERT_TRUE(tx([](Tx& t) { return t.set_certificate_status(hex_id(1), CertificateStatus::Revoked); }));
  auto unrevoke = tx([](Tx& t) { return t.set_certificate_status(hex_id(1), CertificateStatus::Active); });
  ASSERT_FALSE(unrevoke);
  EXPECT_EQ(unrevoke.error().code, Errc::Conflict);
  auto got = tx([](Tx& t) { return t.get_certificate(hex_id(1)); });
  ASSERT_TRUE(got);
  EXPECT_EQ(got.value().status, CertificateStatus::Revoked);
  EXPECT_EQ(got.value().pem, cert(1).pem);
  EXPECT_EQ(got.value().not_after, 2000);
  EXPECT_TRUE(tx([](Tx& t) { return t.delete_certificate(hex_id(1)); }));
}

TEST_P(StoreTest, AttachmentsGuardDeletes) {
  ASSERT_TRUE(tx([&](Tx& t) -> Res<void> {
    if (auto r = t.create_thing({"dev", "", {}, 0, 0}); !r) return fail(r.error());
    if (auto r = t.create_certificate(cert(5)); !r) return fail(r.error());
    if (auto r = t.create_policy({"dev-policy", R"({"Version":"2012-10-17"})", 0, 0}); !r) {
      return fail(r.error());
    }
    if (auto r = t.attach_thing_principal("dev", hex_id(5)); !r) return r;
    if (auto r = t.attach_thing_principal("dev", hex_id(5)); !r) return r;  // twice: no error
    return t.attach_policy("dev-policy", hex_id(5));
  }));
  EXPECT_EQ(tx([](Tx& t) { return t.principals_of("dev"); }).value(),
            std::vector<std::string>{hex_id(5)});
  EXPECT_EQ(tx([](Tx& t) { return t.things_of(hex_id(5)); }).value(),
            std::vector<std::string>{"dev"});
  EXPECT_EQ(tx([](Tx& t) { return t.policies_of(hex_id(5)); }).value(),
            std::vector<std::string>{"dev-policy"});

  auto missing = tx([](Tx& t) { return t.attach_thing_principal("nobody", hex_id(5)); });
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::NotFound);

  auto del_thing = tx([](Tx& t) { return t.delete_thing("dev"); });
  ASSERT_FALSE(del_thing);
  EXPECT_EQ(del_thing.error().code, Errc::Conflict);
  auto del_policy = tx([](Tx& t) { return t.delete_policy("dev-policy"); });
  ASSERT_FALSE(del_policy);
  EXPECT_EQ(del_policy.error().code, Errc::Conflict);
  ASSERT_TRUE(tx([](Tx& t) { return t.set_certificate_status(hex_id(5), CertificateStatus::Inactive); }));
  auto del_cert = tx([](Tx& t) { return t.delete_certificate(hex_id(5)); });
  ASSERT_FALSE(del_cert);
  EXPECT_EQ(del_cert.error().code, Errc::Conflict);

  ASSERT_TRUE(tx([](Tx& t) { return t.detach_thing_principal("dev", hex_id(5)); }));
  auto again = tx([](Tx& t) { return t.detach_thing_principal("dev", hex_id(5)); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::NotFound);
  ASSERT_TRUE(tx([](Tx& t) { return t.detach_policy("dev-policy", hex_id(5)); }));
  EXPECT_TRUE(tx([](Tx& t) { return t.delete_thing("dev"); }));
  EXPECT_TRUE(tx([](Tx& t) { return t.delete_policy("dev-policy"); }));
  EXPECT_TRUE(tx([](Tx& t) { return t.delete_certificate(hex_id(5)); }));
}

TEST_P(StoreTest, FailedTransactionLeavesNothingBehind) {
  auto r = tx([&](Tx& t) -> Res<void> {
    if (auto a = t.create_thing({"half", "", {}, 0, 0}); !a) return fail(a.error());
    if (auto b = t.create_certificate(cert(9)); !b) return fail(b.error());
    return t.attach_thing_principal("half", hex_id(10));  // no such certificate
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::NotFound);
  EXPECT_EQ(tx([](Tx& t) { return t.get_thing("half"); }).error().code, Errc::NotFound);
  EXPECT_EQ(tx([](Tx& t) { return t.get_certificate(hex_id(9)); }).error().code, Errc::NotFound);
}

// Group commit: three requests in one batch, the middle one failing after it wrote. Its error is
// passed on as it is, its write is undone, the other two commit together, and none of the batch
// is visible to another connection before the batch commits.
TEST_P(StoreTest, AFailedRequestInABatchLeavesNothingWhileTheOthersCommit) {
  std::unique_ptr<Store> other;  // PostgreSQL only: a SQLite store belongs to one process
  if (GetParam() == Backend::Postgres) {
    auto db = open_postgres({connection_});
    ASSERT_TRUE(db) << db.error().message;
    auto s = Store::open(std::move(db.value()), [this] { return now_; });
    ASSERT_TRUE(s) << s.error().message;
    other = std::move(s.value());
  }
  store_->begin_batch();
  EXPECT_TRUE(store_->in_batch());
  auto a = tx([](Tx& t) { return t.create_thing({"batch-a", "", {}, 0, 0}); });
  ASSERT_TRUE(a) << a.error().message;
  auto b = tx([&](Tx& t) -> Res<void> {
    if (auto made = t.create_thing({"batch-b", "", {}, 0, 0}); !made) return fail(made.error());
    if (auto c = t.create_certificate(cert(21)); !c) return fail(c.error());
    // A statement the database refuses (a unique key): on PostgreSQL it aborts the transaction
    // until the savepoint is rolled back to.
    if (auto again = t.create_thing({"batch-a", "", {}, 0, 0}); !again) return fail(again.error());
    return {};
  });
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, Errc::AlreadyExists);
  EXPECT_EQ(b.error().message, "thing 'batch-a' already exists");
  // The batch goes on after the failure and sees its own earlier work.
  auto c = tx([](Tx& t) -> Res<Thing> {
    if (auto seen = t.get_thing("batch-a"); !seen) return fail(seen.error());
    return t.create_thing({"batch-c", "", {}, 0, 0});
  });
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(no_thing("batch-b"));
  if (other) {
    auto seen = other->transact([](Tx& t) { return t.get_thing("batch-a"); });
    ASSERT_FALSE(seen) << "another connection saw an uncommitted batch";
    EXPECT_EQ(seen.error().code, Errc::NotFound);
  }
  const Store::BatchEnd end = store_->end_batch();
  EXPECT_EQ(end.outcome, Store::BatchOutcome::Committed) << end.error.message;
  EXPECT_EQ(end.transactions, 4u);  // the other connection's read is not the batch's
  EXPECT_FALSE(store_->in_batch());

  reopen();  // what is durable, not what the connection remembers
  EXPECT_TRUE(tx([](Tx& t) { return t.get_thing("batch-a"); }));
  EXPECT_TRUE(tx([](Tx& t) { return t.get_thing("batch-c"); }));
  EXPECT_TRUE(no_thing("batch-b"));
  auto gone = tx([](Tx& t) { return t.get_certificate(hex_id(21)); });
  EXPECT_TRUE(!gone && gone.error().code == Errc::NotFound);
  if (other) {
    EXPECT_TRUE(other->transact([](Tx& t) { return t.get_thing("batch-c"); }));
  }
}

// A Busy failure inside a batch is not retried there: the whole batch is rolled back, the
// requests after it do not run, and the caller is told to rerun them one by one.
TEST_P(StoreTest, ABusyRequestRollsTheWholeBatchBackForARerun) {
  store_->begin_batch();
  ASSERT_TRUE(tx([](Tx& t) { return t.create_thing({"busy-a", "", {}, 0, 0}); }));
  auto busy = tx([](Tx& t) -> Res<void> {
    if (auto made = t.create_thing({"busy-b", "", {}, 0, 0}); !made) return fail(made.error());
    return fail(Errc::Busy, "lost to a concurrent writer");
  });
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, Errc::Busy);
  bool ran = false;
  auto after = tx([&](Tx& t) {
    ran = true;
    return t.create_thing({"busy-c", "", {}, 0, 0});
  });
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, Errc::Busy);
  EXPECT_FALSE(ran) << "a request ran in a batch already doomed";
  const Store::BatchEnd end = store_->end_batch();
  EXPECT_EQ(end.outcome, Store::BatchOutcome::Rerun);
  EXPECT_EQ(end.error.message, "lost to a concurrent writer");
  EXPECT_EQ(end.transactions, 3u);
  for (const char* name : {"busy-a", "busy-b", "busy-c"}) {
    EXPECT_TRUE(no_thing(name)) << name;
  }
  // Outside a batch, transact is its own transaction again.
  ASSERT_TRUE(tx([](Tx& t) { return t.create_thing({"busy-a", "", {}, 0, 0}); }));
  reopen();
  EXPECT_TRUE(tx([](Tx& t) { return t.get_thing("busy-a"); }));
}

// A COMMIT that fails (made to fail for real: SQLite's deferred foreign keys, a PostgreSQL
// constraint trigger deferred to COMMIT) loses the batch: nothing of it is stored, and the
// outcome says that it may not be reported as done (nor rerun blindly).
TEST_P(StoreTest, ABatchWhoseCommitFailsIsLostWhole) {
  if (GetParam() == Backend::Postgres) {
    ASSERT_TRUE(tx([](Tx& t) {
      return t.db().exec_script(
          "CREATE TABLE commit_fails (x BIGINT);"
          "CREATE FUNCTION commit_fails() RETURNS trigger LANGUAGE plpgsql AS "
          "$$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$;"
          "CREATE CONSTRAINT TRIGGER commit_fails AFTER INSERT ON commit_fails "
          "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE PROCEDURE commit_fails();");
    }));
  }
  store_->begin_batch();
  ASSERT_TRUE(tx([](Tx& t) { return t.create_thing({"lost-a", "", {}, 0, 0}); }));
  ASSERT_TRUE(tx([&](Tx& t) -> Res<void> {
    if (GetParam() == Backend::Postgres) {
      if (auto r = t.db().exec("INSERT INTO commit_fails (x) VALUES (1)"); !r) return fail(r.error());
      return {};
    }
    if (auto r = t.db().exec("PRAGMA defer_foreign_keys = ON"); !r) return fail(r.error());
    if (auto r = t.db().exec("INSERT INTO thing_principals (thing_name, certificate_id) "
                             "VALUES ('nobody', 'nothing')");
        !r) {
      return fail(r.error());
    }
    return {};
  }));
  const Store::BatchEnd end = store_->end_batch();
  EXPECT_EQ(end.outcome, Store::BatchOutcome::Lost);
  EXPECT_FALSE(end.error.message.empty());
  EXPECT_TRUE(no_thing("lost-a"));
  ASSERT_TRUE(tx([](Tx& t) { return t.create_thing({"lost-a", "", {}, 0, 0}); }));
}

TEST_P(StoreTest, CertificatesNameOnlyRegisteredCas) {
  auto c = cert(3);
  c.ca_id = hex_id(100);
  auto r = tx([&](Tx& t) { return t.create_certificate(c); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Conflict);
  ASSERT_TRUE(tx([](Tx& t) {
    return t.register_ca({hex_id(100), "-----BEGIN CERTIFICATE-----\n", CaStatus::Active, true, "", 0});
  }));
  EXPECT_TRUE(tx([&](Tx& t) { return t.create_certificate(c); }));
  auto ca = tx([](Tx& t) { return t.get_ca(hex_id(100)); });
  ASSERT_TRUE(ca);
  EXPECT_TRUE(ca.value().auto_registration);
  EXPECT_EQ(ca.value().status, CaStatus::Active);
  EXPECT_EQ(tx([](Tx& t) { return t.list_cas({}); }).value().items.size(), 1u);
}

TEST_P(StoreTest, ACasRevocationListHasItsRevokedSerialsWithTheirTimes) {
  ASSERT_TRUE(tx([](Tx& t) {
    return t.register_ca({hex_id(100), "-----BEGIN CERTIFICATE-----\n", CaStatus::Active, false, "", 0});
  }));
  for (int n : {4, 5, 6}) {
    auto c = cert(n);
    if (n != 6) c.ca_id = hex_id(100);  // 6 has no CA: never on its list
    ASSERT_TRUE(tx([&](Tx& t) { return t.create_certificate(c); }));
  }
  now_ += 10;
  ASSERT_TRUE(tx([](Tx& t) { return t.set_certificate_status(hex_id(4), CertificateStatus::Revoked); }));
  ASSERT_TRUE(tx([](Tx& t) { return t.set_certificate_status(hex_id(5), CertificateStatus::Inactive); }));
  ASSERT_TRUE(tx([](Tx& t) { return t.set_certificate_status(hex_id(6), CertificateStatus::Revoked); }));
  // Revoking again keeps the first time.
  now_ += 10;
  ASSERT_TRUE(tx([](Tx& t) { return t.set_certificate_status(hex_id(4), CertificateStatus::Revoked); }));
  auto list = tx([](Tx& t) { return t.revoked_of_ca(hex_id(100)); });
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list.value().size(), 1u);
  EXPECT_EQ(list.value()[0].serial, "04");
  EXPECT_EQ(list.value()[0].revoked_at, 1'700'000'010);
  auto got = tx([](Tx& t) { return t.get_certificate(hex_id(4)); });
  EXPECT_EQ(got.value().revoked_at, 1'700'000'010);
  EXPECT_EQ(tx([](Tx& t) { return t.get_certificate(hex_id(5)); }).value().revoked_at, 0);
  EXPECT_TRUE(tx([](Tx& t) { return t.serial_in_use(hex_id(100), "05"); }).value());
  EXPECT_FALSE(tx([](Tx& t) { return t.serial_in_use(hex_id(100), "06"); }).value());
}

TEST_P(StoreTest, TemplatesAreValidatedAndGuarded) {
  auto bad_type = tx([](Tx& t) { return t.create_template({"tpl", "{}", "OTHER", "", true, 0, 0}); });
  ASSERT_FALSE(bad_type);
  EXPECT_EQ(bad_type.error().code, Errc::InvalidArgument);
  auto long_name = tx([](Tx& t) {
    return t.create_template({std::string(37, 'n'), "{}", "JITP", "", true, 0, 0});
  });
  ASSERT_FALSE(long_name);
  EXPECT_EQ(long_name.error().code, Errc::InvalidArgument);

  ASSERT_TRUE(tx([](Tx& t) { return t.create_template({"jitp", "{}", "JITP", "d", true, 0, 0}); }));
  ASSERT_TRUE(tx([](Tx& t) { return t.register_ca({hex_id(7), "pem", CaStatus::Active, true, "jitp", 0}); }));
  auto in_use = tx([](Tx& t) { return t.delete_template("jitp"); });
  ASSERT_FALSE(in_use);
  EXPECT_EQ(in_use.error().code, Errc::Conflict);
  auto up = tx([](Tx& t) { return t.update_template({"jitp", R"({"a":1})", "JITP", "e", false, 0, 0}); });
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_EQ(up.value().version, 2);
  EXPECT_FALSE(up.value().enabled);
  EXPECT_EQ(up.value().body, R"({"a":1})");
}

TEST_P(StoreTest, GroupMembershipFollowsTheThing) {
  ASSERT_TRUE(tx([](Tx& t) -> Res<void> {
    if (auto r = t.create_group({"floor-3", "third floor", 0}); !r) return fail(r.error());
    if (auto r = t.create_thing({"a", "", {}, 0, 0}); !r) return fail(r.error());
    if (auto r = t.create_thing({"b", "", {}, 0, 0}); !r) return fail(r.error());
    if (auto r = t.add_to_group("floor-3", "a"); !r) return r;
    return t.add_to_group("floor-3", "b");
  }));
  EXPECT_EQ(tx([](Tx& t) { return t.things_in_group("floor-3", {}); }).value().items,
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(tx([](Tx& t) { return t.groups_of("a"); }).value(), std::vector<std::string>{"floor-3"});
  ASSERT_TRUE(tx([](Tx& t) { return t.delete_thing("a"); }));
  EXPECT_EQ(tx([](Tx& t) { return t.things_in_group("floor-3", {}); }).value().items,
            (std::vector<std::string>{"b"}));
  EXPECT_EQ(tx([](Tx& t) { return t.add_to_group("floor-9", "b"); }).error().code, Errc::NotFound);
}

TEST_P(StoreTest, SurvivesReopenAndRefusesANewerSchema) {
  ASSERT_TRUE(tx([](Tx& t) { return t.create_thing({"kept", "", {}, 0, 0}); }));
  reopen();
  EXPECT_EQ(store_->schema_version(), Store::kSchemaVersion);
  EXPECT_TRUE(tx([](Tx& t) { return t.get_thing("kept"); }));

  ASSERT_TRUE(tx([](Tx& t) -> Res<void> {
    auto r = t.db().exec(
        "INSERT INTO schema_migrations (version, description, applied_at) VALUES (99, 'x', 0)");
    if (!r) return fail(r.error());
    return {};
  }));
  store_.reset();
  auto db = open_db();
  ASSERT_TRUE(db) << db.error().message;
  auto s = Store::open(std::move(db.value()));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::StoreTooNew);
  EXPECT_NE(s.error().message.find("99"), std::string::npos) << s.error().message;
}

// Fleet provisioning by claim (migration 3): a token is used once, even by racing requests; an
// expired unused token takes its still-pending, unattached certificate with it, also after a
// reopen; a registered one keeps it.
TEST_P(StoreTest, OwnershipTokensAreSingleUseAndSweepUnregisteredCertificates) {
  ASSERT_TRUE(tx([&](Tx& t) -> Res<void> {
    if (auto r = t.create_certificate(cert(1, CertificateStatus::PendingActivation)); !r) {
      return fail(r.error());
    }
    if (auto r = t.create_certificate(cert(2, CertificateStatus::PendingActivation)); !r) {
      return fail(r.error());
    }
    if (auto r = t.create_certificate(cert(3, CertificateStatus::PendingActivation)); !r) {
      return fail(r.error());
    }
    if (auto r = record_ownership_token(t, {"aa", hex_id(1), hex_id(9), now_ + 3600, 0}); !r) return r;
    if (auto r = record_ownership_token(t, {"bb", hex_id(2), hex_id(9), now_ + 3600, 0}); !r) return r;
    return record_ownership_token(t, {"cc", hex_id(3), hex_id(9), now_ + 3600, 0});
  }));
  auto dup = tx([&](Tx& t) { return record_ownership_token(t, {"aa", hex_id(1), "", 1, 0}); });
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Errc::AlreadyExists);

  ASSERT_TRUE(tx([](Tx& t) { return use_ownership_token(t, "bb"); }));
  auto again = tx([](Tx& t) { return use_ownership_token(t, "bb"); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::Conflict);
  auto got = tx([](Tx& t) { return get_ownership_token(t, "bb"); });
  ASSERT_TRUE(got);
  EXPECT_EQ(got.value().used_at, now_);
  EXPECT_EQ(got.value().claim_certificate_id, hex_id(9));
  ASSERT_TRUE(tx([](Tx& t) { return t.set_certificate_status(hex_id(2), CertificateStatus::Active); }));
  // Certificate 3 was attached meanwhile (by hand): the sweep leaves it alone.
  ASSERT_TRUE(tx([](Tx& t) -> Res<void> {
    if (auto r = t.create_thing({"keeper", "", {}, 0, 0}); !r) return fail(r.error());
    return t.attach_thing_principal("keeper", hex_id(3));
  }));

  auto early = tx([](Tx& t) { return sweep_expired_ownership_tokens(t); });
  ASSERT_TRUE(early);
  EXPECT_TRUE(early.value().empty()) << "nothing has expired yet";

  now_ += 3601;
  reopen();  // the sweep works from the store alone, after a restart too
  auto swept = tx([](Tx& t) { return sweep_expired_ownership_tokens(t); });
  ASSERT_TRUE(swept) << swept.error().message;
  ASSERT_EQ(swept.value().size(), 1u);
  EXPECT_EQ(swept.value()[0], hex_id(1));
  auto gone = tx([](Tx& t) { return t.get_certificate(hex_id(1)); });
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::NotFound);
  EXPECT_TRUE(tx([](Tx& t) { return t.get_certificate(hex_id(2)); })) << "registered: kept";
  EXPECT_TRUE(tx([](Tx& t) { return t.get_certificate(hex_id(3)); })) << "attached: kept";
  auto token = tx([](Tx& t) { return get_ownership_token(t, "aa"); });
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code, Errc::NotFound);
}

TEST_P(StoreTest, TemplateHooksAndProvisioningResults) {
  const std::string body = R"({"Resources":{}})";
  ASSERT_TRUE(tx([&](Tx& t) {
    return t.create_template({"fleet", body, "FLEET_PROVISIONING", "", true, 0, 0});
  }));
  auto none = tx([](Tx& t) { return get_pre_provisioning_hook(t, "fleet"); });
  ASSERT_TRUE(none);
  EXPECT_FALSE(none.value());
  ASSERT_TRUE(tx([](Tx& t) {
    return set_pre_provisioning_hook(t, "fleet", {"http://127.0.0.1:1/hook", "2020-04-01"});
  }));
  auto hook = tx([](Tx& t) { return get_pre_provisioning_hook(t, "fleet"); });
  ASSERT_TRUE(hook && hook.value());
  EXPECT_EQ(hook.value()->target, "http://127.0.0.1:1/hook");
  auto missing = tx([](Tx& t) { return set_pre_provisioning_hook(t, "nope", {"/bin/true", ""}); });
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::NotFound);
  // The hook goes with its template.
  ASSERT_TRUE(tx([](Tx& t) { return t.delete_template("fleet"); }));
  ASSERT_TRUE(tx([&](Tx& t) {
    return t.create_template({"fleet", body, "FLEET_PROVISIONING", "", true, 0, 0});
  }));
  auto after = tx([](Tx& t) { return get_pre_provisioning_hook(t, "fleet"); });
  ASSERT_TRUE(after);
  EXPECT_FALSE(after.value());

  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(tx([&](Tx& t) {
      return record_provisioning_result(t, {hex_id(i), "thing-" + std::to_string(i), "fleet",
                                            hex_id(9), "client", 0});
    }));
  }
  auto page = tx([](Tx& t) { return list_provisioning_results(t, {"", 2}); });
  ASSERT_TRUE(page);
  ASSERT_EQ(page.value().items.size(), 2u);
  EXPECT_EQ(page.value().items[0].thing_name, "thing-1");
  EXPECT_EQ(page.value().items[0].provisioned_at, now_);
  EXPECT_EQ(page.value().next, hex_id(2));
  auto rest = tx([&](Tx& t) { return list_provisioning_results(t, {page.value().next, 2}); });
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest.value().items.size(), 1u);
  EXPECT_TRUE(rest.value().next.empty());

  // What a RegisterThing answered is kept with it (schema 4), for an identical repeat.
  ASSERT_TRUE(tx([&](Tx& t) {
    return record_provisioning_result(t, {hex_id(4), "thing-4", "fleet", hex_id(9), "client", 0,
                                          R"({"SerialNumber":"4"})", R"({"Interval":"30"})"});
  }));
  auto four = tx([](Tx& t) { return get_provisioning_result(t, hex_id(4)); });
  ASSERT_TRUE(four && four.value());
  EXPECT_EQ(four.value()->thing_name, "thing-4");
  EXPECT_EQ(four.value()->request_parameters, R"({"SerialNumber":"4"})");
  EXPECT_EQ(four.value()->device_configuration, R"({"Interval":"30"})");
  auto one = tx([](Tx& t) { return get_provisioning_result(t, hex_id(1)); });
  ASSERT_TRUE(one && one.value());
  EXPECT_EQ(one.value()->request_parameters, "") << "recorded without: no repeat matches it";
  auto unknown = tx([](Tx& t) { return get_provisioning_result(t, hex_id(8)); });
  ASSERT_TRUE(unknown);
  EXPECT_FALSE(unknown.value());
}

// Concurrent writers on the same record: every increment lands (Busy conflicts are retried
// inside transact), none is lost.
TEST_P(StoreTest, ConcurrentWritersLoseNoUpdateOrAreRefused) {
  ASSERT_TRUE(tx([](Tx& t) { return t.create_thing({"counter", "", {}, 0, 0}); }));
  if (GetParam() == Backend::Sqlite) {
    // One process per SQLite store (flock); its writers are serialised by fleetd's store thread.
    auto second = open_db();
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, Errc::StoreLocked);
    EXPECT_NE(second.error().message.find("in use by another process"), std::string::npos)
        << second.error().message;
    return;
  }
  constexpr int kThreads = 4;
  constexpr int kUpdates = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto db = open_db();
      if (!db) {
        ++failures;
        return;
      }
      auto s = Store::open(std::move(db.value()));
      if (!s) {
        ++failures;
        return;
      }
      for (int u = 0; u < kUpdates; ++u) {
        auto r = s.value()->transact([](Tx& t) -> Res<Thing> {
          auto cur = t.get_thing("counter");
          if (!cur) return cur;
          Thing next = cur.value();
          next.attributes["n"] = std::to_string(std::stoi(next.attributes.count("n") ? next.attributes["n"] : "0") + 1);
          return t.update_thing(next, cur.value().version);
        });
        if (!r && failures++ == 0) ADD_FAILURE() << r.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto th = tx([](Tx& t) { return t.get_thing("counter"); });
  ASSERT_TRUE(th);
  EXPECT_EQ(th.value().version, 1 + kThreads * kUpdates);
  EXPECT_EQ(th.value().attributes.at("n"), std::to_string(kThreads * kUpdates));
}

// A writer killed with SIGKILL in the middle of a burst of "thing + certificate + attachment"
// transactions leaves a consistent store: no thing without its certificate, no certificate
// without its thing.
TEST_P(StoreTest, KilledWriterLeavesNoHalfMadeThing) {
  store_.reset();  // the child opens the store itself (SQLite: one process at a time)
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto db = open_db();
    if (!db) ::_exit(2);
    auto s = Store::open(std::move(db.value()));
    if (!s) ::_exit(3);
    for (int i = 0;; ++i) {
      auto r = s.value()->transact([&](Tx& t) -> Res<void> {
        std::string name = "burst-" + std::to_string(i);
        if (auto a = t.create_thing({name, "", {}, 0, 0}); !a) return fail(a.error());
        if (auto b = t.create_certificate(cert(1000 + i)); !b) return fail(b.error());
        return t.attach_thing_principal(name, hex_id(1000 + i));
      });
      if (!r) ::_exit(4);
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "writer ended early with status " << WEXITSTATUS(status);
  reopen();
  auto check = tx([](Tx& t) -> Res<std::pair<int, int>> {
    auto things = t.db().query(
        "SELECT COUNT(*) FROM things WHERE name NOT IN (SELECT thing_name FROM thing_principals)");
    if (!things) return fail(things.error());
    auto certs = t.db().query(
        "SELECT COUNT(*) FROM certificates WHERE id NOT IN (SELECT certificate_id FROM "
        "thing_principals)");
    if (!certs) return fail(certs.error());
    auto total = t.db().query("SELECT COUNT(*) FROM things");
    if (!total) return fail(total.error());
    EXPECT_GT(total.value().front().integer(0), 0) << "the writer made no progress";
    return std::pair<int, int>(static_cast<int>(things.value().front().integer(0)),
                               static_cast<int>(certs.value().front().integer(0)));
  });
  ASSERT_TRUE(check) << check.error().message;
  EXPECT_EQ(check.value().first, 0) << "things without a certificate";
  EXPECT_EQ(check.value().second, 0) << "certificates without a thing";
}

// Device Shadow records (store/shadows.hpp): upsert, a deleted row kept for its version, lists
// of live named shadows, survival across a reopen, AWS's name rules.
TEST_P(StoreTest, KeepsShadowsAcrossReopenAndListsLiveOnes) {
  auto put = [&](const char* thing, const char* name, std::int64_t version, bool deleted) {
    return tx([&](Tx& t) {
      return put_shadow(t, {thing, name, R"({"reported":{"a":1}})", "{}", version, deleted, 0});
    });
  };
  ASSERT_TRUE(put("t1", "", 1, false));
  ASSERT_TRUE(put("t1", "abc", 1, false));
  ASSERT_TRUE(put("t1", "cfg", 1, false));
  ASSERT_TRUE(put("t1", "cfg", 2, false));  // replaces
  ASSERT_TRUE(put("t1", "old", 7, true));
  ASSERT_TRUE(put("t2", "x", 1, false));
  EXPECT_EQ(put("t 1", "", 1, false).error().code, Errc::InvalidArgument);
  EXPECT_EQ(put("t1", std::string(65, 'n').c_str(), 1, false).error().code,
            Errc::InvalidArgument);
  reopen();
  auto got = tx([](Tx& t) { return get_shadow(t, "t1", "cfg"); });
  ASSERT_TRUE(got && got.value());
  EXPECT_EQ(got.value()->version, 2);
  EXPECT_EQ(got.value()->state, R"({"reported":{"a":1}})");
  EXPECT_EQ(got.value()->updated_at, now_);
  auto old = tx([](Tx& t) { return get_shadow(t, "t1", "old"); });
  ASSERT_TRUE(old && old.value());
  EXPECT_TRUE(old.value()->deleted);
  EXPECT_EQ(old.value()->version, 7);
  // The classic shadow by a default-constructed (data-less) empty view, as a topic matcher gives
  // it: bound as '' on both databases, never as NULL.
  auto classic = tx([](Tx& t) { return get_shadow(t, "t1", std::string_view{}); });
  ASSERT_TRUE(classic && classic.value());
  EXPECT_EQ(classic.value()->shadow_name, "");
  auto none = tx([](Tx& t) { return get_shadow(t, "t3", ""); });
  ASSERT_TRUE(none);
  EXPECT_FALSE(none.value());
  auto first = tx([](Tx& t) { return list_shadows(t, "t1", {"", 1}); });
  ASSERT_TRUE(first);
  ASSERT_EQ(first.value().items.size(), 1u);
  EXPECT_EQ(first.value().items[0].shadow_name, "abc");  // named shadows only
  auto rest = tx([&](Tx& t) { return list_shadows(t, "t1", {first.value().next, 10}); });
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest.value().items.size(), 1u);  // "old" is deleted
  EXPECT_EQ(rest.value().items[0].shadow_name, "cfg");
  EXPECT_TRUE(rest.value().next.empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values(Backend::Sqlite, Backend::Postgres),
                         test::backend_name);

// ---- backend-specific failures ----------------------------------------------------------

class SqliteStoreFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("edgekit-sqlite-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(SqliteStoreFile, RefusesAFileThatIsNotADatabase) {
  const auto path = (dir_ / "fleetd.db").string();
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 512; ++i) out << "this is not a database ";
  }
  auto db = open_sqlite({path});
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::StoreCorrupt) << db.error().message;
  EXPECT_NE(db.error().message.find(path), std::string::npos) << db.error().message;
}

TEST_F(SqliteStoreFile, RefusesADamagedDatabase) {
  const auto path = (dir_ / "fleetd.db").string();
  {
    auto db = open_sqlite({path});
    ASSERT_TRUE(db);
    auto s = Store::open(std::move(db.value()));
    ASSERT_TRUE(s);
    ASSERT_TRUE(s.value()->transact([](Tx& t) -> Res<void> {
      for (int i = 0; i < 300; ++i) {
        if (auto r = t.create_thing({"t" + std::to_string(i), "", {{"pad", std::string(200, 'x')}}, 0, 0}); !r) {
          return fail(r.error());
        }
      }
      return {};
    }));
    // Fold the WAL into the main file so that the damage below hits committed pages.
    ASSERT_TRUE(s.value()->transact([](Tx&) -> Res<void> { return {}; }));
  }
  {
    auto db = open_sqlite({path});
    ASSERT_TRUE(db);
    ASSERT_TRUE(db.value()->exec_script("PRAGMA wal_checkpoint(TRUNCATE)"));
  }
  {
    // Overwrite the middle of the table's pages (not the header) with garbage.
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(path) / 2));
    for (int i = 0; i < 8192; ++i) f.put(static_cast<char>(0xA5 ^ i));
  }
  auto db = open_sqlite({path});
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::StoreCorrupt) << db.error().message;
}

TEST(PostgresStore, UnreachableServerIsUnavailableWithItsCause) {
  // A port nobody listens on.
  auto db = open_postgres({"host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2"});
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::Unavailable);
  EXPECT_NE(db.error().message.find("cannot connect to PostgreSQL"), std::string::npos)
      << db.error().message;
}

}  // namespace
}  // namespace edgekit::fleetd
