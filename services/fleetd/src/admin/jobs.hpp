#pragma once
/// \file
/// The admin API's reading and writing of jobs (admin/jobs.cpp), shared with the OTA routes
/// (admin/ota.cpp), whose updates are jobs, and their hand-off of store work to the io thread. Thread safety: stateless; `describe_job` as `Tx`.

#include <asio/io_context.hpp>

#include <chrono>
#include <optional>
#include <string>

#include "edgekit/json/json.hpp"
#include "http/common.hpp"
#include "store/jobs.hpp"

namespace edgekit::fleetd::admin {

/// Runs `f(Tx&)` in one store transaction on the io thread (the store's owner), waiting up to
/// 5 s; nullopt when it did not run in time (see http::run_on).
template <class F>
std::optional<Res<nlohmann::json>> in_store(asio::io_context& io, Store& store, F f) {
  return http::run_on(io, [store = &store, f = std::move(f)]() -> Res<nlohmann::json> {
    return store->transact([&](Tx& tx) -> Res<nlohmann::json> { return f(tx); });
  }, std::chrono::milliseconds(5000));
}

/// A CreateJob body (fleetd's JSON: jobId, document, targets, targetSelection, timeoutConfig,
/// jobExecutionsRetryConfig, abortConfig, jobExecutionsRolloutConfig, rolloutGroups) as a Job.
/// InvalidArgument naming the member.
[[nodiscard]] Res<Job> parse_job(const nlohmann::json& body);
/// A job as the admin API shows it.
[[nodiscard]] nlohmann::json job_json(const Job& job);
/// job_json plus AWS's jobProcessDetails (counts of the latest executions by status). NotFound.
[[nodiscard]] Res<nlohmann::json> describe_job(Tx& tx, const std::string& job_id);

}  // namespace edgekit::fleetd::admin
