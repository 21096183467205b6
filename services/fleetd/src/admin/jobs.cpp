// The admin API's jobs routes (AWS's CreateJob, DescribeJob, ListJobExecutionsForJob,
// CancelJob, in fleetd's JSON). The work runs in the Jobs service on the io thread, which also
// publishes the notify events the change causes.

#include <asio/post.hpp>
#include <httplib.h>

#include "admin/jobs.hpp"
#include "admin/server.hpp"
#include "admin/wire.hpp"
#include "http/common.hpp"
#include "jobs/service.hpp"
#include "jobs/wire.hpp"

namespace edgekit::fleetd {
namespace {

using nlohmann::json;
using Req = httplib::Request;
using Resp = httplib::Response;
using jobs::ExecutionStatus;

constexpr std::chrono::milliseconds kTimeout{5000};

Unexpected<Error> bad(std::string message) {
  return fail(Errc::InvalidArgument, std::move(message));
}

Res<std::vector<std::string>> names(const json& j, const char* key) {
  std::vector<std::string> out;
  if (!j.contains(key)) return out;
  if (!j[key].is_array()) return bad(std::string(key) + " must be a list of names");
  for (const auto& v : j[key]) {
    if (!v.is_string()) return bad(std::string(key) + " must be a list of names");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// An optional configuration member: an object (a list for rolloutGroups), kept as its text.
Res<std::string> config(const json& j, const char* key, bool array) {
  if (!j.contains(key)) return std::string();
  if (array ? !j[key].is_array() : !j[key].is_object()) {
    return bad(std::string(key) + " must be a JSON " + (array ? "list" : "object"));
  }
  return j[key].dump();
}

}  // namespace

namespace admin {

Res<Job> parse_job(const json& j) {
  if (!j.is_object()) return bad("the body must be a JSON object");
  Job job;
  if (!j.contains("jobId") || !j["jobId"].is_string()) return bad("jobId is required");
  job.job_id = j["jobId"].get<std::string>();
  // AWS's CreateJob takes the document as a string; an object is accepted too.
  if (!j.contains("document")) return bad("document is required");
  job.document = j["document"].is_string() ? j["document"].get<std::string>() : j["document"].dump();
  if (j.contains("description")) {
    if (!j["description"].is_string()) return bad("description must be a string");
    job.description = j["description"].get<std::string>();
  }
  if (!j.contains("targets") || !j["targets"].is_object()) {
    return bad("targets is required: {\"things\": [...], \"thingGroups\": [...]}");
  }
  auto things = names(j["targets"], "things");
  if (!things) return fail(things.error());
  auto groups = names(j["targets"], "thingGroups");
  if (!groups) return fail(groups.error());
  job.target_things = std::move(things.value());
  job.target_groups = std::move(groups.value());
  const std::string selection = j.value("targetSelection", std::string("SNAPSHOT"));
  if (selection != "SNAPSHOT" && selection != "CONTINUOUS") {
    return bad("targetSelection must be SNAPSHOT or CONTINUOUS");
  }
  job.continuous = selection == "CONTINUOUS";
  if (j.contains("timeoutConfig")) {
    const json& t = j["timeoutConfig"];
    if (!t.is_object() || !t.contains("inProgressTimeoutInMinutes") ||
        !t["inProgressTimeoutInMinutes"].is_number_integer()) {
      return bad("timeoutConfig needs inProgressTimeoutInMinutes");
    }
    const auto m = t["inProgressTimeoutInMinutes"].get<std::int64_t>();
    // 1 minute to 7 days (aws-iot-protocols.md 2.5).
    if (m < 1 || m > 10080) return bad("inProgressTimeoutInMinutes must be 1-10080");
    job.in_progress_timeout_minutes = m;
  }
  for (auto [out, key, array] : {std::tuple{&job.retry_config, "jobExecutionsRetryConfig", false},
                                 std::tuple{&job.abort_config, "abortConfig", false},
                                 std::tuple{&job.rollout_config, "jobExecutionsRolloutConfig", false},
                                 std::tuple{&job.rollout_groups, "rolloutGroups", true}}) {
    auto c = config(j, key, array);
    if (!c) return fail(c.error());
    *out = std::move(c.value());
  }
  return job;
}

json job_json(const Job& job) {
  json j{{"jobId", job.job_id},
         {"status", to_string(job.status)},
         {"targetSelection", job.continuous ? "CONTINUOUS" : "SNAPSHOT"},
         {"targets", {{"things", job.target_things}, {"thingGroups", job.target_groups}}},
         {"description", job.description},
         {"document", json::parse(job.document, nullptr, false)},
         {"forceCanceled", job.force_canceled},
         {"paused", job.paused},
         {"createdAt", job.created_at},
         {"lastUpdatedAt", job.last_updated_at}};
  if (job.completed_at > 0) j["completedAt"] = job.completed_at;
  if (!job.reason_code.empty()) j["reasonCode"] = job.reason_code;
  if (!job.comment.empty()) j["comment"] = job.comment;
  if (job.in_progress_timeout_minutes > 0) {
    j["timeoutConfig"] = {{"inProgressTimeoutInMinutes", job.in_progress_timeout_minutes}};
  }
  for (auto [text, key] : {std::pair{&job.retry_config, "jobExecutionsRetryConfig"},
                           std::pair{&job.abort_config, "abortConfig"},
                           std::pair{&job.rollout_config, "jobExecutionsRolloutConfig"},
                           std::pair{&job.rollout_groups, "rolloutGroups"}}) {
    if (!text->empty()) j[key] = json::parse(*text, nullptr, false);
  }
  return j;
}

namespace {

// AWS's JobProcessDetails member names for each status.
const char* count_name(ExecutionStatus s) {
  switch (s) {
    case ExecutionStatus::Queued: return "numberOfQueuedThings";
    case ExecutionStatus::InProgress: return "numberOfInProgressThings";
    case ExecutionStatus::Succeeded: return "numberOfSucceededThings";
    case ExecutionStatus::Failed: return "numberOfFailedThings";
    case ExecutionStatus::Rejected: return "numberOfRejectedThings";
    case ExecutionStatus::TimedOut: return "numberOfTimedOutThings";
    case ExecutionStatus::Removed: return "numberOfRemovedThings";
    case ExecutionStatus::Canceled: return "numberOfCanceledThings";
  }
  return "numberOfQueuedThings";
}

}  // namespace

Res<json> describe_job(Tx& tx, const std::string& id) {
  auto job = get_job(tx, id);
  if (!job) return fail(job.error());
  auto counts = execution_counts(tx, id);
  if (!counts) return fail(counts.error());
  json details = json::object();
  for (ExecutionStatus s :
       {ExecutionStatus::Queued, ExecutionStatus::InProgress, ExecutionStatus::Succeeded,
        ExecutionStatus::Failed, ExecutionStatus::Rejected, ExecutionStatus::TimedOut,
        ExecutionStatus::Removed, ExecutionStatus::Canceled}) {
    auto it = counts.value().find(s);
    details[count_name(s)] = it == counts.value().end() ? 0 : it->second;
  }
  json j = job_json(job.value());
  j["jobProcessDetails"] = details;
  return j;
}

}  // namespace admin

namespace {

using admin::job_json;

Res<Job> parse_create(const std::string& body) {
  return admin::parse_job(json::parse(body, nullptr, false));
}

std::string param(const Req& req, std::size_t i) {
  return i < req.matches.size() ? req.matches[i].str() : std::string();
}

}  // namespace

void AdminServer::create_job(const Req& req, Resp& res) {
  auto job = parse_create(req.body);
  if (!job) return answer(res, 400, Res<json>(fail(job.error())));
  if (!jobs_) return http::reply_error(res, 404, "not_found", "fleetd runs no jobs service");
  answer(res, 201, http::run_on(io_, [jobs = jobs_, job = std::move(job.value())]() -> Res<json> {
    auto r = jobs->create(job);
    if (!r) return fail(r.error());
    return job_json(r.value());
  }, kTimeout));
}

void AdminServer::list_jobs(const Req& req, Resp& res) {
  auto p = admin::parse_page(req.get_param_value("limit"), req.get_param_value("next"));
  if (!p) return answer(res, 400, Res<json>(fail(p.error())));
  answer(res, 200, admin::in_store(io_, store_, [p = p.value()](Tx& tx) -> Res<json> {
    auto r = fleetd::list_jobs(tx, p);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(), [](const Job& j) { return job_json(j); });
  }));
}

void AdminServer::describe_job(const Req& req, Resp& res) {
  answer(res, 200, admin::in_store(io_, store_, [id = param(req, 1)](Tx& tx) -> Res<json> {
    return admin::describe_job(tx, id);
  }));
}

void AdminServer::list_job_executions(const Req& req, Resp& res) {
  auto p = admin::parse_page(req.get_param_value("limit"), req.get_param_value("next"));
  if (!p) return answer(res, 400, Res<json>(fail(p.error())));
  std::optional<ExecutionStatus> status;
  if (req.has_param("status")) {
    status = jobs::execution_status_from(req.get_param_value("status"));
    if (!status) {
      return answer(res, 400, Res<json>(bad("status must be one of AWS's execution statuses")));
    }
  }
  answer(res, 200, admin::in_store(io_, store_, [id = param(req, 1), p = p.value(), status](Tx& tx) -> Res<json> {
    if (auto job = get_job(tx, id); !job) return fail(job.error());
    auto r = job_executions(tx, id, p, status);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(), [](const JobExecution& e) {
      return jobs::execution_json(e, nullptr);
    });
  }));
}

void AdminServer::cancel_job(const Req& req, Resp& res) {
  jobs::CancelRequest rq;
  rq.job_id = param(req, 1);
  if (!req.body.empty()) {
    auto j = json::parse(req.body, nullptr, false);
    if (!j.is_object()) return answer(res, 400, Res<json>(bad("the body must be a JSON object")));
    if (j.contains("force") && !j["force"].is_boolean()) {
      return answer(res, 400, Res<json>(bad("force must be a boolean")));
    }
    rq.force = j.value("force", false);
    if (j.contains("reasonCode") && j["reasonCode"].is_string()) rq.reason_code = j["reasonCode"];
    if (j.contains("comment") && j["comment"].is_string()) rq.comment = j["comment"];
  }
  if (!jobs_) return http::reply_error(res, 404, "not_found", "fleetd runs no jobs service");
  answer(res, 200, http::run_on(io_, [jobs = jobs_, rq = std::move(rq)]() -> Res<json> {
    auto r = jobs->cancel(rq);
    if (!r) return fail(r.error());
    return job_json(r.value());
  }, kTimeout));
}

void AdminServer::pause_job(const Req& req, Resp& res) { set_job_paused(req, res, true); }

void AdminServer::resume_job(const Req& req, Resp& res) { set_job_paused(req, res, false); }

void AdminServer::set_job_paused(const Req& req, Resp& res, bool paused) {
  if (!jobs_) return http::reply_error(res, 404, "not_found", "fleetd runs no jobs service");
  answer(res, 200, http::run_on(io_, [jobs = jobs_, id = param(req, 1), paused]() -> Res<json> {
    auto r = jobs->set_paused(id, paused);
    if (!r) return fail(r.error());
    return job_json(r.value());
  }, kTimeout));
}

void AdminServer::thing_joined_group(std::string group, std::string thing) {
  membership_changed(std::move(group), std::move(thing), true);
}

void AdminServer::thing_left_group(std::string group, std::string thing) {
  membership_changed(std::move(group), std::move(thing), false);
}

void AdminServer::membership_changed(std::string group, std::string thing, bool joined) {
  if (!jobs_) return;
  asio::post(io_, [jobs = jobs_, &log = log_, group = std::move(group), thing = std::move(thing),
                   joined] {
    auto r = joined ? jobs->thing_added_to_group(group, thing)
                    : jobs->thing_removed_from_group(group, thing);
    if (!r) {
      log.error("jobs.continuous_failed", {{"group", group},
                                           {"thing", thing},
                                           {"joined", joined},
                                           {"error", r.error().message}});
    }
  });
}

}  // namespace edgekit::fleetd
