#pragma once
/// \file
/// fleetd's Jobs service (aws-iot-protocols.md 2): answers a device's requests on
///   $aws/things/{thing}/jobs/get                 GetPendingJobExecutions
///   $aws/things/{thing}/jobs/start-next          StartNextPendingJobExecution
///   $aws/things/{thing}/jobs/{jobId|$next}/get   DescribeJobExecution
///   $aws/things/{thing}/jobs/{jobId}/update      UpdateJobExecution
/// on `<topic>/accepted` or `<topic>/rejected`, PRIVATELY to the requesting client (as AWS
/// does: the reply reaches it even when it subscribed to nothing, and no one else sees it; the
/// broker plugin delivers it from the `x-edgekit-reply-to` marker), with the clientToken echoed
/// on both outcomes; and publishes `…/jobs/notify` and `…/jobs/notify-next` through the broker
/// whenever a thing's pending executions, or the next one, change — for a device's own update
/// as for the admin's create and cancel.
///
/// Which device may act on which thing is the broker's decision (the thing's policy, as on AWS);
/// this service trusts the topic's thing once the request carries the plugin's stamps, and
/// answers nothing without them.
///
/// Thread safety: everything runs on the io_context's thread, as the store and the broker link.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jobs/wire.hpp"
#include "log.hpp"
#include "store/jobs.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::jobs {

/// One request as the broker link delivered it (views valid during `handle`).
struct JobsRequest {
  std::string_view topic;
  std::string_view payload;
  std::string_view client_id;  ///< x-edgekit-client-id; empty: not stamped, not answered
};

/// Publishes QoS 1: privately to `client_id` when it is not empty, else to every subscriber.
using Publisher = std::function<void(const std::string& topic, const std::string& payload,
                                     std::string_view client_id)>;

struct JobsOptions {
  /// The length of a Jobs "minute" in seconds: the unit of timeouts and rollout rates. 60 but in
  /// tests and demos, which shorten it to see timers fire within seconds.
  std::int64_t seconds_per_minute = 60;
  /// Device requests per thing: a bucket of `request_burst` refilled at `requests_per_second`;
  /// a request that finds it empty is rejected with RequestThrottled (AWS throttles the Jobs
  /// data plane too; a device retries later).
  double requests_per_second = 10;
  double request_burst = 20;
};

/// How an admin cancels a job (AWS's CancelJob).
struct CancelRequest {
  std::string job_id;
  bool force = false;  ///< also cancel IN_PROGRESS executions
  std::string reason_code;
  std::string comment;
};

class JobsService {
 public:
  JobsService(Store& store, Logger& log, Publisher publish, JobsOptions options = {});
  JobsService(const JobsService&) = delete;
  JobsService& operator=(const JobsService&) = delete;

  /// Answers one device request (or logs and ignores a message that is none).
  void handle(const JobsRequest& request);

  /// Creates the job and a QUEUED execution for every thing it targets now; notifies them.
  /// Errors: those of `create_job` (store/jobs.hpp).
  [[nodiscard]] Res<Job> create(Job job);
  /// Cancels the job: QUEUED executions become CANCELED, and IN_PROGRESS ones too with `force`
  /// (without it they may still finish). NotFound; Conflict when the job is already
  /// COMPLETED or CANCELED (canceling again with force upgrades a canceled job, as AWS).
  [[nodiscard]] Res<Job> cancel(const CancelRequest& request);
  /// A thing joined a group: it gets every CONTINUOUS job of that group that it does not have.
  [[nodiscard]] Res<void> thing_added_to_group(std::string_view group, std::string_view thing);
  /// A thing left a group: its pending executions of CONTINUOUS jobs of that group that no longer
  /// target it (not by name, not through another group) become REMOVED, as on AWS.
  [[nodiscard]] Res<void> thing_removed_from_group(std::string_view group, std::string_view thing);

  /// Pauses or resumes the job's rollout (no new executions while paused; running and queued
  /// ones go on). NotFound; Conflict when the job is no longer IN_PROGRESS.
  [[nodiscard]] Res<Job> set_paused(std::string_view job_id, bool paused);

  /// The timers, from the store (so a restart loses none): IN_PROGRESS executions past their
  /// step or in-progress deadline become TIMED_OUT (then retried or counted for abort as any
  /// failure), and rate-limited rollouts queue their next executions: at most the current rate
  /// in any minute and its per-second share in any second, counted from the executions
  /// recorded, so that after a restart the rollout continues at its rate instead of catching
  /// up. fleetd calls it every half second.
  [[nodiscard]] Res<void> tick();

 private:
  /// The things whose pending executions a transaction touched, with their list before it, so
  /// that notify and notify-next go out after the commit for exactly the things that changed.
  struct Changes {
    std::map<std::string, std::vector<JobExecution>> before;
    std::map<std::string, std::vector<JobExecution>> after;
    std::map<std::string, std::string> documents;  // job id -> document, for notify-next
    Res<void> touch(Tx& tx, const std::string& thing);
    Res<void> finish(Tx& tx);
  };
  void notify(const Changes& changes, std::int64_t now);
  /// Runs `f(Tx&, Changes&)` in one transaction and, once it committed, publishes the events of
  /// what it changed.
  template <class F>
  auto changing(F f) -> decltype(f(std::declval<Tx&>(), std::declval<Changes&>()));

  void reply(std::string_view request_topic, bool accepted, const nlohmann::json& doc,
             std::string_view client_id);
  void reject(std::string_view request_topic, const Rejection& r,
              const std::optional<std::string>& client_token, std::string_view client_id,
              std::int64_t now, const JobExecution* state = nullptr);

  /// Queues a new execution of `job` on `thing` in the transaction.
  Res<void> queue(Tx& tx, const Job& job, const std::string& thing, Changes& changes,
                  std::int64_t execution_number = 1, std::int64_t retry_attempt = 0,
                  std::int64_t rollout_group = 0);
  /// After an execution ended: a retry when the job's retry config allows one, the job
  /// canceled when its abort criteria are met, COMPLETED when a snapshot job has nothing left.
  Res<void> ended(Tx& tx, const JobExecution& e, Changes& changes);
  /// A snapshot job whose targets all have an execution and whose executions all ended is
  /// COMPLETED.
  Res<void> settle_job(Tx& tx, const std::string& job_id);
  /// Cancels `job` in the transaction (CancelJob and abort criteria).
  Res<Job> cancel_in(Tx& tx, Job job, const CancelRequest& request, Changes& changes);
  /// Queues the rollout's next executions of a rate-limited job.
  Res<void> roll_out(Tx& tx, const Job& job, Changes& changes);

  /// Takes one request from `thing`'s bucket; false when it is empty.
  bool admit(std::string_view thing);

  Store& store_;
  Logger& log_;
  Publisher publish_;
  JobsOptions options_;
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::string, Bucket, std::less<>> buckets_;
};

}  // namespace edgekit::fleetd::jobs
