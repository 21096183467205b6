// Jobs and job executions over the SQL seam (tables of the jobs schema migration). Status
// details are kept as a JSON object text; a job's targets in a table of their own, so that
// "which continuous jobs target this group" is a query, not a scan of every job.

#include "store/jobs.hpp"

#include <algorithm>

#include "edgekit/json/json.hpp"

namespace edgekit::fleetd {
namespace {

using jobs::ExecutionStatus;

bool job_id_ok(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

std::string details_json(const std::map<std::string, std::string>& d) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : d) j[k] = v;
  return j.dump();
}

std::map<std::string, std::string> parse_details(const std::string& text) {
  std::map<std::string, std::string> d;
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return d;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_string()) d[it.key()] = it.value().get<std::string>();
  }
  return d;
}

constexpr const char* kJobColumns =
    "job_id, document, description, target_selection, status, force_canceled, paused, "
    "reason_code, comment, in_progress_timeout_minutes, retry_config, abort_config, "
    "rollout_config, rollout_groups, rollout_created, created_at, last_updated_at, completed_at";

Job job_from(const Row& r) {
  Job j;
  j.job_id = r.text(0);
  j.document = r.text(1);
  j.description = r.text(2);
  j.continuous = r.text(3) == "CONTINUOUS";
  j.status = job_status_from(r.text(4)).value_or(JobStatus::InProgress);
  j.force_canceled = r.integer(5) != 0;
  j.paused = r.integer(6) != 0;
  j.reason_code = r.text(7);
  j.comment = r.text(8);
  j.in_progress_timeout_minutes = r.integer(9);
  j.retry_config = r.text(10);
  j.abort_config = r.text(11);
  j.rollout_config = r.text(12);
  j.rollout_groups = r.text(13);
  j.rollout_created = r.integer(14);
  j.created_at = r.integer(15);
  j.last_updated_at = r.integer(16);
  j.completed_at = r.integer(17);
  return j;
}

constexpr const char* kExecutionColumns =
    "job_id, thing_name, execution_number, status, version_number, status_details, queued_at, "
    "started_at, last_updated_at, step_timeout_at, in_progress_timeout_at, retry_attempt, "
    "rollout_group";

JobExecution execution_from(const Row& r) {
  JobExecution e;
  e.job_id = r.text(0);
  e.thing_name = r.text(1);
  e.execution_number = r.integer(2);
  e.status = jobs::execution_status_from(r.text(3)).value_or(ExecutionStatus::Queued);
  e.version_number = r.integer(4);
  e.status_details = parse_details(r.text(5));
  e.queued_at = r.integer(6);
  e.started_at = r.integer(7);
  e.last_updated_at = r.integer(8);
  e.step_timeout_at = r.integer(9);
  e.in_progress_timeout_at = r.integer(10);
  e.retry_attempt = r.integer(11);
  e.rollout_group = r.integer(12);
  return e;
}

// The latest execution of each (job, thing): the row with no higher execution number.
constexpr const char* kLatestOnly =
    " AND NOT EXISTS (SELECT 1 FROM job_executions later WHERE later.job_id = e.job_id AND "
    "later.thing_name = e.thing_name AND later.execution_number > e.execution_number)";

std::string with_e(const char* columns) {
  std::string out;
  std::string_view rest = columns;
  while (!rest.empty()) {
    const auto comma = rest.find(", ");
    out += "e.";
    out += rest.substr(0, comma);
    if (comma == std::string_view::npos) break;
    out += ", ";
    rest.remove_prefix(comma + 2);
  }
  return out;
}

Res<void> check_json(const std::string& text, const char* what, bool array) {
  if (text.empty()) return {};
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || (array ? !j.is_array() : !j.is_object())) {
    return fail(Errc::InvalidArgument,
                std::string(what) + " must be a JSON " + (array ? "array" : "object"));
  }
  return {};
}

// Rows of (status, count) as a map; unknown statuses are skipped.
std::map<ExecutionStatus, std::int64_t> by_status(const std::vector<Row>& rows) {
  std::map<ExecutionStatus, std::int64_t> out;
  for (const Row& r : rows) {
    if (auto s = jobs::execution_status_from(r.text(0))) out[*s] = r.integer(1);
  }
  return out;
}

Res<std::map<ExecutionStatus, std::int64_t>> counts(Tx& tx, std::string_view job_id,
                                                     bool latest_only) {
  auto rows = tx.db().query(std::string("SELECT e.status, COUNT(*) FROM job_executions e "
                                        "WHERE e.job_id = $1") +
                                (latest_only ? kLatestOnly : "") + " GROUP BY e.status",
                            {job_id});
  if (!rows) return fail(rows.error());
  return by_status(rows.value());
}

// job_execution_counts (migration 11): `delta` things more (or fewer) whose latest execution
// of `job_id` is in `status`. One upsert, in the caller's transaction.
Res<void> count_latest(Tx& tx, std::string_view job_id, ExecutionStatus status,
                       std::int64_t delta) {
  auto r = tx.db().exec(
      "INSERT INTO job_execution_counts (job_id, status, things) VALUES ($1, $2, $3) "
      "ON CONFLICT (job_id, status) DO UPDATE SET things = job_execution_counts.things + "
      "excluded.things",
      {job_id, std::string_view(jobs::to_string(status)), delta});
  if (!r) return fail(r.error());
  return {};
}

}  // namespace

const char* to_string(JobStatus s) noexcept {
  switch (s) {
    case JobStatus::InProgress: return "IN_PROGRESS";
    case JobStatus::Canceled: return "CANCELED";
    case JobStatus::Completed: return "COMPLETED";
  }
  return "IN_PROGRESS";
}

std::optional<JobStatus> job_status_from(std::string_view s) noexcept {
  if (s == "IN_PROGRESS") return JobStatus::InProgress;
  if (s == "CANCELED") return JobStatus::Canceled;
  if (s == "COMPLETED") return JobStatus::Completed;
  return std::nullopt;
}

Res<Job> create_job(Tx& tx, Job job) {
  if (!job_id_ok(job.job_id)) {
    return fail(Errc::InvalidArgument, "invalid job id '" + job.job_id.substr(0, 80) +
                                           "': 1-64 characters of [a-zA-Z0-9_-]");
  }
  if (job.document.size() > kMaxJobDocument) {
    return fail(Errc::InvalidArgument, "job document of " + std::to_string(job.document.size()) +
                                           " bytes exceeds " + std::to_string(kMaxJobDocument));
  }
  if (auto d = nlohmann::json::parse(job.document, nullptr, false); !d.is_object()) {
    return fail(Errc::InvalidArgument, "job document must be a JSON object");
  }
  for (auto [text, what, array] :
       {std::tuple{&job.retry_config, "jobExecutionsRetryConfig", false},
        std::tuple{&job.abort_config, "abortConfig", false},
        std::tuple{&job.rollout_config, "jobExecutionsRolloutConfig", false},
        std::tuple{&job.rollout_groups, "rolloutGroups", true}}) {
    if (auto c = check_json(*text, what, array); !c) return fail(c.error());
  }
  for (auto* v : {&job.target_things, &job.target_groups}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  if (job.target_things.empty() && job.target_groups.empty()) {
    return fail(Errc::InvalidArgument, "a job needs at least one target thing or thing group");
  }
  for (const auto& t : job.target_things) {
    if (auto g = tx.get_thing(t); !g) return fail(g.error());
  }
  for (const auto& g : job.target_groups) {
    if (auto r = tx.get_group(g); !r) return fail(r.error());
  }
  job.status = JobStatus::InProgress;
  job.created_at = job.last_updated_at = tx.now();
  job.completed_at = 0;
  job.rollout_created = 0;
  auto ins = tx.db().exec(
      std::string("INSERT INTO jobs (") + kJobColumns +
          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
          "$18)",
      {std::string_view(job.job_id), std::string_view(job.document),
       std::string_view(job.description),
       std::string_view(job.continuous ? "CONTINUOUS" : "SNAPSHOT"),
       std::string_view(to_string(job.status)), std::int64_t{job.force_canceled},
       std::int64_t{job.paused}, std::string_view(job.reason_code), std::string_view(job.comment),
       job.in_progress_timeout_minutes, std::string_view(job.retry_config),
       std::string_view(job.abort_config), std::string_view(job.rollout_config),
       std::string_view(job.rollout_groups), job.rollout_created, job.created_at,
       job.last_updated_at, job.completed_at});
  if (!ins) {
    if (ins.error().code == Errc::AlreadyExists) {
      return fail(Errc::AlreadyExists, "job '" + job.job_id + "' already exists");
    }
    return fail(ins.error());
  }
  for (auto [names, kind] : {std::pair{&job.target_things, "thing"},
                             std::pair{&job.target_groups, "group"}}) {
    for (const auto& n : *names) {
      auto r = tx.db().exec(
          "INSERT INTO job_targets (job_id, kind, name) VALUES ($1, $2, $3)",
          {std::string_view(job.job_id), std::string_view(kind), std::string_view(n)});
      if (!r) return fail(r.error());
    }
  }
  return job;
}

Res<Job> get_job(Tx& tx, std::string_view job_id) {
  auto rows = tx.db().query(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE job_id = $1",
                            {job_id});
  if (!rows) return fail(rows.error());
  if (rows.value().empty()) {
    return fail(Errc::NotFound, "job '" + std::string(job_id) + "' not found");
  }
  Job job = job_from(rows.value().front());
  auto targets = tx.db().query(
      "SELECT kind, name FROM job_targets WHERE job_id = $1 ORDER BY kind, name", {job_id});
  if (!targets) return fail(targets.error());
  for (const Row& r : targets.value()) {
    (r.text(0) == "thing" ? job.target_things : job.target_groups).push_back(r.text(1));
  }
  return job;
}

Res<Job> save_job(Tx& tx, const Job& job) {
  auto n = tx.db().exec(
      "UPDATE jobs SET status = $2, force_canceled = $3, paused = $4, reason_code = $5, "
      "comment = $6, rollout_created = $7, completed_at = $8, last_updated_at = $9 "
      "WHERE job_id = $1",
      {std::string_view(job.job_id), std::string_view(to_string(job.status)),
       std::int64_t{job.force_canceled}, std::int64_t{job.paused},
       std::string_view(job.reason_code), std::string_view(job.comment), job.rollout_created,
       job.completed_at, tx.now()});
  if (!n) return fail(n.error());
  if (n.value() != 1) return fail(Errc::NotFound, "job '" + job.job_id + "' not found");
  return get_job(tx, job.job_id);
}

Res<Page<Job>> list_jobs(Tx& tx, const PageRequest& page) {
  if (page.limit == 0 || page.limit > 1000) {
    return fail(Errc::InvalidArgument, "page size must be 1..1000");
  }
  auto rows = tx.db().query(std::string("SELECT job_id FROM jobs WHERE job_id > $1 "
                                        "ORDER BY job_id LIMIT $2"),
                            {std::string_view(page.after),
                             static_cast<std::int64_t>(page.limit + 1)});
  if (!rows) return fail(rows.error());
  Page<Job> out;
  for (const Row& r : rows.value()) {
    if (out.items.size() == page.limit) {
      out.next = out.items.back().job_id;
      break;
    }
    auto j = get_job(tx, r.text(0));
    if (!j) return fail(j.error());
    out.items.push_back(std::move(j.value()));
  }
  return out;
}

Res<std::vector<std::string>> job_target_things(Tx& tx, const Job& job) {
  auto rows = tx.db().query(
      "SELECT name FROM job_targets WHERE job_id = $1 AND kind = 'thing' UNION "
      "SELECT m.thing_name FROM job_targets t JOIN thing_group_members m ON m.group_name = t.name "
      "WHERE t.job_id = $1 AND t.kind = 'group' ORDER BY 1",
      {std::string_view(job.job_id)});
  if (!rows) return fail(rows.error());
  std::vector<std::string> out;
  for (const Row& r : rows.value()) out.push_back(r.text(0));
  return out;
}

Res<std::vector<std::string>> continuous_jobs_of_group(Tx& tx, std::string_view group) {
  auto rows = tx.db().query(
      "SELECT j.job_id FROM jobs j JOIN job_targets t ON t.job_id = j.job_id "
      "WHERE t.kind = 'group' AND t.name = $1 AND j.target_selection = 'CONTINUOUS' "
      "AND j.status = 'IN_PROGRESS' ORDER BY j.job_id",
      {group});
  if (!rows) return fail(rows.error());
  std::vector<std::string> out;
  for (const Row& r : rows.value()) out.push_back(r.text(0));
  return out;
}

Res<std::vector<std::string>> active_job_ids(Tx& tx) {
  auto rows =
      tx.db().query("SELECT job_id FROM jobs WHERE status = 'IN_PROGRESS' ORDER BY job_id");
  if (!rows) return fail(rows.error());
  std::vector<std::string> out;
  for (const Row& r : rows.value()) out.push_back(r.text(0));
  return out;
}

Res<void> insert_execution(Tx& tx, const JobExecution& e) {
  const std::string details = details_json(e.status_details);
  // The thing's latest execution before this one (a retry follows an ended attempt): it stops
  // being the latest, for the counts.
  auto before = tx.db().query(
      "SELECT execution_number, status FROM job_executions WHERE job_id = $1 AND "
      "thing_name = $2 ORDER BY execution_number DESC LIMIT 1",
      {std::string_view(e.job_id), std::string_view(e.thing_name)});
  if (!before) return fail(before.error());
  auto r = tx.db().exec(
      std::string("INSERT INTO job_executions (") + kExecutionColumns +
          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
      {std::string_view(e.job_id), std::string_view(e.thing_name), e.execution_number,
       std::string_view(jobs::to_string(e.status)), e.version_number, std::string_view(details),
       e.queued_at, e.started_at, e.last_updated_at, e.step_timeout_at, e.in_progress_timeout_at,
       e.retry_attempt, e.rollout_group});
  if (!r) {
    if (r.error().code == Errc::AlreadyExists) {
      return fail(Errc::AlreadyExists, "execution " + std::to_string(e.execution_number) +
                                           " of job '" + e.job_id + "' on '" + e.thing_name +
                                           "' already exists");
    }
    return fail(r.error());
  }
  if (!before.value().empty()) {
    const Row& prev = before.value().front();
    // An older number inserted after a newer one (not something fleetd does) is not the latest.
    if (prev.integer(0) > e.execution_number) return {};
    if (auto s = jobs::execution_status_from(prev.text(1))) {
      if (auto c = count_latest(tx, e.job_id, *s, -1); !c) return c;
    }
  }
  return count_latest(tx, e.job_id, e.status, 1);
}

Res<void> save_execution(Tx& tx, const JobExecution& e, std::int64_t previous_version) {
  const std::string details = details_json(e.status_details);
  // The status it had, and whether it is its thing's latest execution, for the counts; read at
  // the version the update below requires, so that what it replaces is what was read.
  auto before = tx.db().query(
      "SELECT status, CASE WHEN EXISTS (SELECT 1 FROM job_executions later WHERE "
      "later.job_id = $1 AND later.thing_name = $2 AND later.execution_number > $3) THEN 0 "
      "ELSE 1 END FROM job_executions WHERE job_id = $1 AND thing_name = $2 AND "
      "execution_number = $3 AND version_number = $4",
      {std::string_view(e.job_id), std::string_view(e.thing_name), e.execution_number,
       previous_version});
  if (!before) return fail(before.error());
  auto n = tx.db().exec(
      "UPDATE job_executions SET status = $4, version_number = $5, status_details = $6, "
      "started_at = $7, last_updated_at = $8, step_timeout_at = $9, in_progress_timeout_at = $10 "
      "WHERE job_id = $1 AND thing_name = $2 AND execution_number = $3 AND version_number = $11",
      {std::string_view(e.job_id), std::string_view(e.thing_name), e.execution_number,
       std::string_view(jobs::to_string(e.status)), e.version_number, std::string_view(details),
       e.started_at, e.last_updated_at, e.step_timeout_at, e.in_progress_timeout_at,
       previous_version});
  if (!n) return fail(n.error());
  if (n.value() != 1) {
    auto cur = get_execution(tx, e.job_id, e.thing_name, e.execution_number);
    if (!cur) return fail(cur.error());
    if (!cur.value()) {
      return fail(Errc::NotFound, "execution of job '" + e.job_id + "' on '" + e.thing_name +
                                      "' not found");
    }
    return fail(Errc::Conflict, "execution of job '" + e.job_id + "' on '" + e.thing_name +
                                    "' changed meanwhile");
  }
  // Updated at the version read above, so `before` holds the replaced row.
  if (!before.value().empty() && before.value().front().integer(1) == 1) {
    const auto was = jobs::execution_status_from(before.value().front().text(0));
    if (was && *was != e.status) {
      if (auto c = count_latest(tx, e.job_id, *was, -1); !c) return c;
      if (auto c = count_latest(tx, e.job_id, e.status, 1); !c) return c;
    }
  }
  return {};
}

Res<std::optional<JobExecution>> latest_execution(Tx& tx, std::string_view job_id,
                                                  std::string_view thing) {
  auto rows = tx.db().query(std::string("SELECT ") + kExecutionColumns +
                                " FROM job_executions WHERE job_id = $1 AND thing_name = $2 "
                                "ORDER BY execution_number DESC LIMIT 1",
                            {job_id, thing});
  if (!rows) return fail(rows.error());
  if (rows.value().empty()) return std::optional<JobExecution>();
  return std::optional<JobExecution>(execution_from(rows.value().front()));
}

Res<std::optional<JobExecution>> get_execution(Tx& tx, std::string_view job_id,
                                               std::string_view thing,
                                               std::int64_t execution_number) {
  auto rows = tx.db().query(std::string("SELECT ") + kExecutionColumns +
                                " FROM job_executions WHERE job_id = $1 AND thing_name = $2 "
                                "AND execution_number = $3",
                            {job_id, thing, execution_number});
  if (!rows) return fail(rows.error());
  if (rows.value().empty()) return std::optional<JobExecution>();
  return std::optional<JobExecution>(execution_from(rows.value().front()));
}

Res<std::vector<JobExecution>> pending_executions(Tx& tx, std::string_view thing) {
  auto rows = tx.db().query(
      std::string("SELECT ") + kExecutionColumns +
          " FROM job_executions WHERE thing_name = $1 AND status IN ('QUEUED', 'IN_PROGRESS') "
          "ORDER BY CASE status WHEN 'IN_PROGRESS' THEN 0 ELSE 1 END, queued_at, job_id",
      {thing});
  if (!rows) return fail(rows.error());
  std::vector<JobExecution> out;
  for (const Row& r : rows.value()) out.push_back(execution_from(r));
  return out;
}

Res<Page<JobExecution>> job_executions(Tx& tx, std::string_view job_id, const PageRequest& page,
                                       std::optional<jobs::ExecutionStatus> status) {
  if (page.limit == 0 || page.limit > 1000) {
    return fail(Errc::InvalidArgument, "page size must be 1..1000");
  }
  const std::string sql = "SELECT " + with_e(kExecutionColumns) +
                          " FROM job_executions e WHERE e.job_id = $1 AND e.thing_name > $2" +
                          kLatestOnly + (status ? " AND e.status = $4" : "") +
                          " ORDER BY e.thing_name LIMIT $3";
  const auto limit = static_cast<std::int64_t>(page.limit + 1);
  auto rows = status ? tx.db().query(sql, {job_id, std::string_view(page.after), limit,
                                           std::string_view(jobs::to_string(*status))})
                     : tx.db().query(sql, {job_id, std::string_view(page.after), limit});
  if (!rows) return fail(rows.error());
  Page<JobExecution> out;
  for (const Row& r : rows.value()) out.items.push_back(execution_from(r));
  if (out.items.size() > page.limit) {
    out.items.resize(page.limit);
    out.next = out.items.back().thing_name;
  }
  return out;
}

Res<std::map<jobs::ExecutionStatus, std::int64_t>> execution_counts(Tx& tx,
                                                                    std::string_view job_id) {
  // Kept by insert_execution and save_execution (migration 11): one short index range, where
  // counting the latest executions visited every execution of the job.
  auto rows = tx.db().query(
      "SELECT status, things FROM job_execution_counts WHERE job_id = $1 AND things <> 0",
      {job_id});
  if (!rows) return fail(rows.error());
  return by_status(rows.value());
}

Res<std::map<jobs::ExecutionStatus, std::int64_t>> counted_latest_executions(
    Tx& tx, std::string_view job_id) {
  return counts(tx, job_id, true);
}

Res<bool> has_unfinished_executions(Tx& tx, std::string_view job_id) {
  // An unfinished execution is always its thing's latest (a retry is queued only after the
  // attempt before it ended), so no latest-only filter is needed.
  auto rows = tx.db().query(
      "SELECT 1 FROM job_executions WHERE job_id = $1 AND status IN ('QUEUED', 'IN_PROGRESS') "
      "LIMIT 1",
      {job_id});
  if (!rows) return fail(rows.error());
  return !rows.value().empty();
}

Res<std::map<jobs::ExecutionStatus, std::int64_t>> attempt_counts(Tx& tx,
                                                                  std::string_view job_id) {
  return counts(tx, job_id, false);
}

Res<std::vector<std::string>> unstarted_targets(Tx& tx, const Job& job, std::size_t limit) {
  auto rows = tx.db().query(
      "SELECT name FROM (SELECT name AS name FROM job_targets WHERE job_id = $1 AND kind = 'thing' "
      "UNION SELECT m.thing_name AS name FROM job_targets t JOIN thing_group_members m ON "
      "m.group_name = t.name WHERE t.job_id = $1 AND t.kind = 'group') AS targets "
      "WHERE NOT EXISTS (SELECT 1 FROM "
      "job_executions e WHERE e.job_id = $1 AND e.thing_name = targets.name) ORDER BY name LIMIT $2",
      {std::string_view(job.job_id), static_cast<std::int64_t>(limit)});
  if (!rows) return fail(rows.error());
  std::vector<std::string> out;
  for (const Row& r : rows.value()) out.push_back(r.text(0));
  return out;
}

Res<std::int64_t> first_attempts(Tx& tx, std::string_view job_id, std::int64_t since) {
  auto rows = tx.db().query(
      "SELECT COUNT(*) FROM job_executions WHERE job_id = $1 AND execution_number = 1 AND "
      "queued_at >= $2",
      {job_id, since});
  if (!rows) return fail(rows.error());
  return rows.value().empty() ? std::int64_t{0} : rows.value().front().integer(0);
}

Res<std::map<jobs::ExecutionStatus, std::int64_t>> thing_attempt_counts(Tx& tx,
                                                                        std::string_view job_id,
                                                                        std::string_view thing) {
  auto rows = tx.db().query(
      "SELECT status, COUNT(*) FROM job_executions WHERE job_id = $1 AND thing_name = $2 "
      "GROUP BY status",
      {job_id, thing});
  if (!rows) return fail(rows.error());
  return by_status(rows.value());
}

Res<std::vector<JobExecution>> expired_executions(Tx& tx, std::int64_t now) {
  auto rows = tx.db().query(
      std::string("SELECT ") + kExecutionColumns +
          " FROM job_executions WHERE status = 'IN_PROGRESS' AND ((step_timeout_at > 0 AND "
          "step_timeout_at <= $1) OR (in_progress_timeout_at > 0 AND in_progress_timeout_at <= "
          "$1)) ORDER BY job_id, thing_name",
      {now});
  if (!rows) return fail(rows.error());
  std::vector<JobExecution> out;
  for (const Row& r : rows.value()) out.push_back(execution_from(r));
  return out;
}

Res<std::int64_t> next_deadline(Tx& tx) {
  auto rows = tx.db().query(
      "SELECT MIN(CASE WHEN step_timeout_at > 0 AND (in_progress_timeout_at = 0 OR "
      "step_timeout_at < in_progress_timeout_at) THEN step_timeout_at ELSE in_progress_timeout_at "
      "END) FROM job_executions WHERE status = 'IN_PROGRESS' AND (step_timeout_at > 0 OR "
      "in_progress_timeout_at > 0)");
  if (!rows) return fail(rows.error());
  if (rows.value().empty()) return std::int64_t{0};
  return rows.value().front().integer(0);
}

}  // namespace edgekit::fleetd
