#pragma once
/// \file
/// The admin API's reading and writing of jobs (admin/jobs.cpp), shared with the OTA routes
/// (admin/ota.cpp), whose updates are jobs. Thread safety: stateless; `describe_job` as `Tx`.

#include <nlohmann/json.hpp>

#include <string>

#include "store/jobs.hpp"

namespace edgekit::fleetd::admin {

/// A CreateJob body (fleetd's JSON: jobId, document, targets, targetSelection, timeoutConfig,
/// jobExecutionsRetryConfig, abortConfig, jobExecutionsRolloutConfig, rolloutGroups) as a Job.
/// InvalidArgument naming the member.
[[nodiscard]] Res<Job> parse_job(const nlohmann::json& body);
/// A job as the admin API shows it.
[[nodiscard]] nlohmann::json job_json(const Job& job);
/// job_json plus AWS's jobProcessDetails (counts of the latest executions by status). NotFound.
[[nodiscard]] Res<nlohmann::json> describe_job(Tx& tx, const std::string& job_id);

}  // namespace edgekit::fleetd::admin
