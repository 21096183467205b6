#pragma once
/// \file
/// A job's AWS-shaped configurations, read from the JSON an admin gave at creation (kept as text
/// in the store) into what the timers and the rollout act on:
///   jobExecutionsRetryConfig   {"criteriaList":[{"failureType":"FAILED|TIMED_OUT|ALL",
///                                                "numberOfRetries":0-10}]}
///   abortConfig                {"criteriaList":[{"failureType":"FAILED|REJECTED|TIMED_OUT|ALL",
///                                                "action":"CANCEL","thresholdPercentage":0-100,
///                                                "minNumberOfExecutedThings":>=1}]}
///   jobExecutionsRolloutConfig {"maximumPerMinute":1-1000,
///                               "exponentialRate":{"baseRatePerMinute":1-1000,
///                                 "incrementFactor":1.1-5,
///                                 "rateIncreaseCriteria":{"numberOfNotifiedThings":n} |
///                                                        {"numberOfSucceededThings":n}}}
/// (AWS's members and bounds; fleetd's own limit on the rate is 10,000 per minute, not AWS's
/// 1,000, for the benchmark's rollout). Pure: no store, no clock.
///
/// Thread safety: stateless functions; safe from any thread.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "jobs/execution.hpp"
#include "store/errc.hpp"

namespace edgekit::fleetd::jobs {

/// Which failures a retry or abort criterion counts. `All` is every failure type it allows.
enum class FailureType { Failed, Rejected, TimedOut, All };

struct RetryCriterion {
  FailureType failure_type = FailureType::All;
  std::int64_t retries = 0;
};
struct RetryConfig {
  std::vector<RetryCriterion> criteria;
  /// How many more attempts a thing gets after its attempts ended as `counts` says (FAILED and
  /// TIMED_OUT counted over every attempt so far, the one that just ended included), for a
  /// failure `last` (FAILED or TIMED_OUT): whether to queue another. At most 10 retries in all.
  [[nodiscard]] bool should_retry(ExecutionStatus last, std::int64_t failed,
                                  std::int64_t timed_out) const noexcept;
};

struct AbortCriterion {
  FailureType failure_type = FailureType::All;
  double threshold_percentage = 100;
  std::int64_t min_executed = 1;
};
struct AbortConfig {
  std::vector<AbortCriterion> criteria;
  /// Whether a job whose things ended as counted must be canceled: some criterion has at least
  /// `min_executed` things ended (SUCCEEDED, FAILED, REJECTED, TIMED_OUT) and its failures are
  /// at least `threshold_percentage` of them.
  [[nodiscard]] bool should_abort(std::int64_t succeeded, std::int64_t failed,
                                  std::int64_t rejected, std::int64_t timed_out) const noexcept;
};

struct RolloutConfig {
  std::int64_t maximum_per_minute = 0;  ///< 0: no rate (every execution at once)
  bool exponential = false;
  std::int64_t base_per_minute = 0;
  double increment_factor = 1;
  std::int64_t notified_step = 0;   ///< rateIncreaseCriteria.numberOfNotifiedThings
  std::int64_t succeeded_step = 0;  ///< rateIncreaseCriteria.numberOfSucceededThings
  [[nodiscard]] bool limited() const noexcept { return maximum_per_minute > 0 || exponential; }
  /// The rate now, given how many things were notified (executions created) and succeeded:
  /// the base rate times the factor once per criterion step reached, capped by the maximum.
  [[nodiscard]] std::int64_t rate_per_minute(std::int64_t notified,
                                             std::int64_t succeeded) const noexcept;
};

/// fleetd's rollout groups (beyond AWS, after hawkBit): the job's targets in thing name order,
/// cut into groups of `count` things (the last group takes whatever is left). A group starts only
/// when the previous one has at least `success_threshold` percent of its things SUCCEEDED; when
/// `error_threshold` percent of a group's things failed (FAILED, REJECTED, TIMED_OUT) the rollout
/// pauses until an admin resumes it.
///   rolloutGroups [{"count":n>=1, "successThreshold":0-100, "errorThreshold":0-100}, ...]
struct RolloutGroup {
  std::int64_t count = 0;
  double success_threshold = 100;
  double error_threshold = 100;
};
[[nodiscard]] Res<std::vector<RolloutGroup>> read_rollout_groups(std::string_view json_text);

/// The highest rate fleetd accepts, per minute.
inline constexpr std::int64_t kMaxRolloutPerMinute = 10'000;

/// Each reads its configuration's JSON text ("" = none). InvalidArgument naming the member.
[[nodiscard]] Res<RetryConfig> read_retry_config(std::string_view json_text);
[[nodiscard]] Res<AbortConfig> read_abort_config(std::string_view json_text);
[[nodiscard]] Res<RolloutConfig> read_rollout_config(std::string_view json_text);

}  // namespace edgekit::fleetd::jobs
