// The jobs tables (store/jobs.hpp) on both stores: SQLite and a throwaway PostgreSQL.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "store/jobs.hpp"
#include "store_backends.hpp"

namespace edgekit::fleetd {
namespace {

namespace fs = std::filesystem;
using jobs::ExecutionStatus;
using test::Backend;

class JobsStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    static int counter = 0;
    name_ = "jobs" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    auto db = test::open_test_database(GetParam(), name_, dir_);
    ASSERT_TRUE(db) << db.error().message;
    auto s = Store::open(std::move(db.value()), [this] { return now_; });
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(s.value());
    ASSERT_TRUE(store_->transact([](Tx& t) -> Res<void> {
      for (const char* n : {"t1", "t2", "t3"}) {
        if (auto r = t.create_thing({n, "", {}, 0, 0}); !r) return fail(r.error());
      }
      if (auto g = t.create_group({"g", "", 0}); !g) return fail(g.error());
      if (auto a = t.add_to_group("g", "t2"); !a) return a;
      return t.add_to_group("g", "t3");
    }));
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  template <class F>
  auto tx(F&& f) {
    return store_->transact(std::forward<F>(f));
  }
  static Job job(std::string id) {
    Job j;
    j.job_id = std::move(id);
    j.document = R"({"operation":"reboot"})";
    j.target_things = {"t1"};
    j.target_groups = {"g"};
    return j;
  }
  JobExecution execution(std::string job_id, std::string thing, std::int64_t queued_at) {
    JobExecution e;
    e.job_id = std::move(job_id);
    e.thing_name = std::move(thing);
    e.queued_at = e.last_updated_at = queued_at;
    return e;
  }

  // The test's database again (after store_.reset()), as a restarted fleetd opens it.
  Res<std::unique_ptr<Db>> reopen() {
    if (GetParam() == Backend::Postgres) {
      std::string error;
      testing::Postgres* pg = test::shared_postgres(error);
      if (pg == nullptr) return fail(Errc::Unavailable, error);
      return open_postgres({pg->connection_string(name_)});
    }
    return open_sqlite({(dir_ / "fleetd.db").string()});
  }

  std::int64_t now_ = 1'700'000'000;
  std::string name_;
  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(JobsStoreTest, CreatesAJobWithItsTargetsAndConfigurations) {
  Job j = job("fw-1");
  j.continuous = true;
  j.in_progress_timeout_minutes = 30;
  j.retry_config = R"({"criteriaList":[{"failureType":"FAILED","numberOfRetries":2}]})";
  j.rollout_groups = R"([{"things":["t1"],"successThreshold":100}])";
  auto c = tx([&](Tx& t) { return create_job(t, j); });
  ASSERT_TRUE(c) << c.error().message;
  auto got = tx([](Tx& t) { return get_job(t, "fw-1"); });
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got.value().document, j.document);
  EXPECT_TRUE(got.value().continuous);
  EXPECT_EQ(got.value().status, JobStatus::InProgress);
  EXPECT_EQ(got.value().target_things, std::vector<std::string>{"t1"});
  EXPECT_EQ(got.value().target_groups, std::vector<std::string>{"g"});
  EXPECT_EQ(got.value().in_progress_timeout_minutes, 30);
  EXPECT_EQ(got.value().retry_config, j.retry_config);
  EXPECT_EQ(got.value().rollout_groups, j.rollout_groups);
  EXPECT_EQ(got.value().created_at, now_);
  auto things = tx([&](Tx& t) { return job_target_things(t, got.value()); });
  ASSERT_TRUE(things);
  EXPECT_EQ(things.value(), (std::vector<std::string>{"t1", "t2", "t3"}));
  JobExecution first;
  first.job_id = "fw-1";
  first.thing_name = "t2";
  ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, first); }));
  auto unstarted = tx([&](Tx& t) { return unstarted_targets(t, got.value(), 10); });
  ASSERT_TRUE(unstarted) << unstarted.error().message;
  EXPECT_EQ(unstarted.value(), (std::vector<std::string>{"t1", "t3"}));
  EXPECT_EQ(tx([&](Tx& t) { return unstarted_targets(t, got.value(), 1); }).value().size(), 1u);
  EXPECT_EQ(tx([](Tx& t) { return first_attempts(t, "fw-1", 0); }).value(), 1);
  EXPECT_EQ(tx([](Tx& t) { return first_attempts(t, "fw-1", 1); }).value(), 0);
  auto cont = tx([](Tx& t) { return continuous_jobs_of_group(t, "g"); });
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont.value(), std::vector<std::string>{"fw-1"});
  auto dup = tx([&](Tx& t) { return create_job(t, j); });
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Errc::AlreadyExists);
}

TEST_P(JobsStoreTest, RefusesBadJobs) {
  auto refused = [&](Job j, Errc code) {
    auto r = tx([&](Tx& t) { return create_job(t, j); });
    ASSERT_FALSE(r) << j.job_id;
    EXPECT_EQ(r.error().code, code) << r.error().message;
  };
  refused(job("bad.id"), Errc::InvalidArgument);
  refused(job(std::string(65, 'a')), Errc::InvalidArgument);
  Job big = job("big");
  big.document = R"({"x":")" + std::string(kMaxJobDocument, 'a') + R"("})";
  refused(big, Errc::InvalidArgument);
  Job array = job("array");
  array.document = "[1]";
  refused(array, Errc::InvalidArgument);
  Job none = job("none");
  none.target_things.clear();
  none.target_groups.clear();
  refused(none, Errc::InvalidArgument);
  Job ghost = job("ghost");
  ghost.target_things = {"nobody"};
  refused(ghost, Errc::NotFound);
  Job bad_config = job("cfg");
  bad_config.abort_config = "not json";
  refused(bad_config, Errc::InvalidArgument);
  // The largest document AWS allows fits.
  Job max = job("max");
  max.document = R"({"x":")" + std::string(kMaxJobDocument - 8, 'a') + R"("})";
  ASSERT_EQ(max.document.size(), kMaxJobDocument);
  EXPECT_TRUE(tx([&](Tx& t) { return create_job(t, max); }));
}

TEST_P(JobsStoreTest, KeepsExecutionsWithOptimisticVersions) {
  ASSERT_TRUE(tx([&](Tx& t) { return create_job(t, job("a")); }));
  ASSERT_TRUE(tx([&](Tx& t) { return create_job(t, job("b")); }));
  ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, execution("a", "t1", 200)); }));
  ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, execution("b", "t1", 100)); }));
  auto again = tx([&](Tx& t) { return insert_execution(t, execution("a", "t1", 300)); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::AlreadyExists);

  // Queued order: b (older) before a; an IN_PROGRESS one comes first.
  auto pending = tx([](Tx& t) { return pending_executions(t, "t1"); });
  ASSERT_TRUE(pending);
  ASSERT_EQ(pending.value().size(), 2u);
  EXPECT_EQ(pending.value()[0].job_id, "b");

  JobExecution a = tx([](Tx& t) { return latest_execution(t, "a", "t1"); }).value().value();
  a.status = ExecutionStatus::InProgress;
  a.version_number = 2;
  a.started_at = now_;
  a.status_details = {{"step", "download"}};
  a.step_timeout_at = now_ + 60;
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, a, 1); }));
  auto stale = tx([&](Tx& t) { return save_execution(t, a, 1); });
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, Errc::Conflict);

  pending = tx([](Tx& t) { return pending_executions(t, "t1"); });
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending.value()[0].job_id, "a");
  EXPECT_EQ(pending.value()[0].status_details.at("step"), "download");
  EXPECT_EQ(pending.value()[0].version_number, 2);

  EXPECT_EQ(tx([](Tx& t) { return next_deadline(t); }).value(), now_ + 60);
  EXPECT_TRUE(tx([&](Tx& t) { return expired_executions(t, now_ + 59); }).value().empty());
  auto expired = tx([&](Tx& t) { return expired_executions(t, now_ + 60); });
  ASSERT_TRUE(expired);
  ASSERT_EQ(expired.value().size(), 1u);
  EXPECT_EQ(expired.value()[0].job_id, "a");

  // A retry is a new execution number; lists and counts see the latest attempt only, while
  // attempt counts see every one.
  a.status = ExecutionStatus::Failed;
  a.version_number = 3;
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, a, 2); }));
  JobExecution retry = execution("a", "t1", now_);
  retry.execution_number = 2;
  retry.retry_attempt = 1;
  ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, retry); }));
  ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, execution("a", "t2", 300)); }));
  auto latest = tx([](Tx& t) { return latest_execution(t, "a", "t1"); });
  ASSERT_TRUE(latest && latest.value());
  EXPECT_EQ(latest.value()->execution_number, 2);
  auto counts = tx([](Tx& t) { return execution_counts(t, "a"); });
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts.value(), (std::map<ExecutionStatus, std::int64_t>{{ExecutionStatus::Queued, 2}}));
  auto attempts = tx([](Tx& t) { return attempt_counts(t, "a"); });
  ASSERT_TRUE(attempts);
  EXPECT_EQ(attempts.value().at(ExecutionStatus::Failed), 1);
  auto page = tx([](Tx& t) { return job_executions(t, "a", {"", 1}, std::nullopt); });
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page.value().items.size(), 1u);
  EXPECT_EQ(page.value().items[0].thing_name, "t1");
  EXPECT_EQ(page.value().next, "t1");
  auto rest = tx([](Tx& t) { return job_executions(t, "a", {"t1", 10}, ExecutionStatus::Queued); });
  ASSERT_TRUE(rest) << rest.error().message;
  ASSERT_EQ(rest.value().items.size(), 1u);
  EXPECT_EQ(rest.value().items[0].thing_name, "t2");
  EXPECT_TRUE(rest.value().next.empty());
}

// Settling a job asks only whether any execution is still QUEUED or IN_PROGRESS; it must follow
// every change of status, of this job only, and see a retry's new attempt.
TEST_P(JobsStoreTest, KnowsWhetherAJobStillHasUnfinishedExecutions) {
  auto unfinished = [&](const char* id) {
    auto r = tx([&](Tx& t) { return has_unfinished_executions(t, id); });
    EXPECT_TRUE(r) << r.error().message;
    return r && r.value();
  };
  ASSERT_TRUE(tx([&](Tx& t) { return create_job(t, job("a")); }));
  ASSERT_TRUE(tx([&](Tx& t) { return create_job(t, job("b")); }));
  EXPECT_FALSE(unfinished("a"));  // no executions yet
  ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, execution("a", "t1", 100)); }));
  ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, execution("b", "t2", 100)); }));
  EXPECT_TRUE(unfinished("a"));

  JobExecution a = tx([](Tx& t) { return latest_execution(t, "a", "t1"); }).value().value();
  a.status = ExecutionStatus::InProgress;
  a.version_number = 2;
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, a, 1); }));
  EXPECT_TRUE(unfinished("a"));
  a.status = ExecutionStatus::Failed;
  a.version_number = 3;
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, a, 2); }));
  EXPECT_FALSE(unfinished("a"));  // job b's queued execution is not a's
  EXPECT_TRUE(unfinished("b"));

  JobExecution retry = execution("a", "t1", 200);
  retry.execution_number = 2;
  retry.retry_attempt = 1;
  ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, retry); }));
  EXPECT_TRUE(unfinished("a"));
  retry.status = ExecutionStatus::Succeeded;
  retry.version_number = 2;
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, retry, 1); }));
  EXPECT_FALSE(unfinished("a"));
}

// execution_counts comes from job_execution_counts, which every insert and status change keeps:
// after each step it must equal the counts made from the executions themselves, per job, through
// status changes, a stale save that loses, a save with the status unchanged, a retry (the
// earlier attempt is no longer the latest) and a change of an attempt that is no longer the latest.
TEST_P(JobsStoreTest, KeptExecutionCountsEqualTheLatestExecutionsAfterEveryChange) {
  using Counts = std::map<ExecutionStatus, std::int64_t>;
  auto check = [&](const char* id, const Counts& want) {
    auto kept = tx([&](Tx& t) { return execution_counts(t, id); });
    auto made = tx([&](Tx& t) { return counted_latest_executions(t, id); });
    ASSERT_TRUE(kept) << kept.error().message;
    ASSERT_TRUE(made) << made.error().message;
    EXPECT_EQ(kept.value(), made.value()) << "job " << id;
    EXPECT_EQ(kept.value(), want) << "job " << id;
  };
  ASSERT_TRUE(tx([&](Tx& t) { return create_job(t, job("a")); }));
  ASSERT_TRUE(tx([&](Tx& t) { return create_job(t, job("b")); }));
  check("a", {});
  for (const char* thing : {"t1", "t2", "t3"}) {
    ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, execution("a", thing, 100)); }));
  }
  ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, execution("b", "t1", 100)); }));
  check("a", {{ExecutionStatus::Queued, 3}});
  check("b", {{ExecutionStatus::Queued, 1}});

  JobExecution t1 = tx([](Tx& t) { return latest_execution(t, "a", "t1"); }).value().value();
  t1.status = ExecutionStatus::InProgress;
  t1.version_number = 2;
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, t1, 1); }));
  check("a", {{ExecutionStatus::Queued, 2}, {ExecutionStatus::InProgress, 1}});
  // A stale save (version 1 is gone) changes nothing, counts included.
  JobExecution stale = t1;
  stale.status = ExecutionStatus::Rejected;
  stale.version_number = 2;
  ASSERT_FALSE(tx([&](Tx& t) { return save_execution(t, stale, 1); }));
  check("a", {{ExecutionStatus::Queued, 2}, {ExecutionStatus::InProgress, 1}});
  // Same status, new details: no count moves.
  t1.version_number = 3;
  t1.status_details["step"] = "download";
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, t1, 2); }));
  check("a", {{ExecutionStatus::Queued, 2}, {ExecutionStatus::InProgress, 1}});
  t1.status = ExecutionStatus::Failed;
  t1.version_number = 4;
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, t1, 3); }));
  check("a", {{ExecutionStatus::Queued, 2}, {ExecutionStatus::Failed, 1}});

  // The retry is t1's latest now: its FAILED attempt no longer counts.
  JobExecution retry = execution("a", "t1", 200);
  retry.execution_number = 2;
  retry.retry_attempt = 1;
  ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, retry); }));
  check("a", {{ExecutionStatus::Queued, 3}});
  // A change to the earlier attempt (not the latest) leaves the counts alone.
  t1.version_number = 5;
  t1.status_details["note"] = "late";
  t1.status = ExecutionStatus::TimedOut;
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, t1, 4); }));
  check("a", {{ExecutionStatus::Queued, 3}});
  retry.status = ExecutionStatus::Succeeded;
  retry.version_number = 2;
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, retry, 1); }));
  check("a", {{ExecutionStatus::Queued, 2}, {ExecutionStatus::Succeeded, 1}});
  check("b", {{ExecutionStatus::Queued, 1}});
}

// Migration 11 fills job_execution_counts from the executions a store of schema 10 held (a
// retry's earlier attempt not counted): made here by dropping the table and the migration's
// record from a store with executions, then opening it again as a restarted fleetd would.
TEST_P(JobsStoreTest, MigrationElevenCountsTheExecutionsAStoreAlreadyHeld) {
  ASSERT_TRUE(tx([&](Tx& t) { return create_job(t, job("a")); }));
  for (const char* thing : {"t1", "t2", "t3"}) {
    ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, execution("a", thing, 100)); }));
  }
  JobExecution t1 = tx([](Tx& t) { return latest_execution(t, "a", "t1"); }).value().value();
  t1.status = ExecutionStatus::Failed;
  t1.version_number = 2;
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, t1, 1); }));
  JobExecution retry = execution("a", "t1", 200);
  retry.execution_number = 2;
  ASSERT_TRUE(tx([&](Tx& t) { return insert_execution(t, retry); }));
  JobExecution t2 = tx([](Tx& t) { return latest_execution(t, "a", "t2"); }).value().value();
  t2.status = ExecutionStatus::Succeeded;
  t2.version_number = 2;
  ASSERT_TRUE(tx([&](Tx& t) { return save_execution(t, t2, 1); }));
  const std::map<ExecutionStatus, std::int64_t> want{{ExecutionStatus::Queued, 2},
                                                     {ExecutionStatus::Succeeded, 1}};
  ASSERT_EQ(tx([](Tx& t) { return counted_latest_executions(t, "a"); }).value(), want);

  ASSERT_TRUE(tx([](Tx& t) {
    return t.db().exec_script(
        "DROP TABLE job_execution_counts; DELETE FROM schema_migrations WHERE version = 11;");
  }));
  store_.reset();
  auto db = reopen();
  ASSERT_TRUE(db) << db.error().message;
  auto s = Store::open(std::move(db.value()), [this] { return now_; });
  ASSERT_TRUE(s) << s.error().message;
  store_ = std::move(s.value());
  EXPECT_EQ(store_->schema_version(), Store::kSchemaVersion);
  auto kept = tx([](Tx& t) { return execution_counts(t, "a"); });
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_EQ(kept.value(), want);
}

TEST_P(JobsStoreTest, SavesJobStatusAndListsActiveJobs) {
  ASSERT_TRUE(tx([&](Tx& t) { return create_job(t, job("a")); }));
  ASSERT_TRUE(tx([&](Tx& t) { return create_job(t, job("b")); }));
  Job a = tx([](Tx& t) { return get_job(t, "a"); }).value();
  a.status = JobStatus::Canceled;
  a.force_canceled = true;
  a.reason_code = "operator";
  a.completed_at = now_;
  now_ += 5;
  auto saved = tx([&](Tx& t) { return save_job(t, a); });
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_EQ(saved.value().status, JobStatus::Canceled);
  EXPECT_TRUE(saved.value().force_canceled);
  EXPECT_EQ(saved.value().last_updated_at, now_);
  EXPECT_EQ(tx([](Tx& t) { return active_job_ids(t); }).value(), std::vector<std::string>{"b"});
  auto list = tx([](Tx& t) { return list_jobs(t, {"", 1}); });
  ASSERT_TRUE(list);
  ASSERT_EQ(list.value().items.size(), 1u);
  EXPECT_EQ(list.value().next, "a");
}

INSTANTIATE_TEST_SUITE_P(Backends, JobsStoreTest,
                         ::testing::Values(Backend::Sqlite, Backend::Postgres),
                         test::backend_name);

}  // namespace
}  // namespace edgekit::fleetd
