// A job's configurations (jobs/config.hpp): AWS's members, types and bounds, checked when the
// job is created so that a timer never meets a configuration it cannot read.

#include "jobs/config.hpp"

#include <cmath>
#include <string>

#include "edgekit/json/json.hpp"

namespace edgekit::fleetd::jobs {
namespace {

using nlohmann::json;

Unexpected<Error> bad(const std::string& what) {
  return fail(Errc::InvalidArgument, "invalid " + what);
}

Res<json> object_of(std::string_view text, const char* what) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return bad(std::string(what) + ": not a JSON object");
  return j;
}

std::optional<std::int64_t> integer(const json& j, const char* key, std::int64_t lo,
                                    std::int64_t hi) {
  if (!j.contains(key) || !j[key].is_number_integer()) return std::nullopt;
  const auto v = j[key].get<std::int64_t>();
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

std::optional<FailureType> failure_type(const json& c, bool rejected_ok) {
  if (!c.contains("failureType") || !c["failureType"].is_string()) return std::nullopt;
  const auto& s = c["failureType"].get_ref<const std::string&>();
  if (s == "FAILED") return FailureType::Failed;
  if (s == "TIMED_OUT") return FailureType::TimedOut;
  if (s == "ALL") return FailureType::All;
  if (s == "REJECTED" && rejected_ok) return FailureType::Rejected;
  return std::nullopt;
}

Res<const json*> criteria(const json& j, const char* what) {
  if (!j.contains("criteriaList") || !j["criteriaList"].is_array()) {
    return bad(std::string(what) + ": criteriaList must be a list");
  }
  return &j["criteriaList"];
}

}  // namespace

bool RetryConfig::should_retry(ExecutionStatus last, std::int64_t failed,
                               std::int64_t timed_out) const noexcept {
  if (!retryable(last) || failed + timed_out > 10) return false;
  for (const auto& c : criteria) {
    const std::int64_t counted = c.failure_type == FailureType::All      ? failed + timed_out
                                 : c.failure_type == FailureType::Failed ? failed
                                                                         : timed_out;
    const bool matches = c.failure_type == FailureType::All ||
                         (c.failure_type == FailureType::Failed && last == ExecutionStatus::Failed) ||
                         (c.failure_type == FailureType::TimedOut && last == ExecutionStatus::TimedOut);
    // `counted` includes the attempt that just ended: retry while it is within the allowance.
    if (matches && counted <= c.retries) return true;
  }
  return false;
}

bool AbortConfig::should_abort(std::int64_t succeeded, std::int64_t failed, std::int64_t rejected,
                               std::int64_t timed_out) const noexcept {
  const std::int64_t executed = succeeded + failed + rejected + timed_out;
  for (const auto& c : criteria) {
    if (executed < c.min_executed || executed == 0) continue;
    const std::int64_t failures = c.failure_type == FailureType::All ? failed + rejected + timed_out
                                  : c.failure_type == FailureType::Failed   ? failed
                                  : c.failure_type == FailureType::Rejected ? rejected
                                                                            : timed_out;
    if (100.0 * static_cast<double>(failures) / static_cast<double>(executed) >=
        c.threshold_percentage) {
      return true;
    }
  }
  return false;
}

std::int64_t RolloutConfig::rate_per_minute(std::int64_t notified,
                                            std::int64_t succeeded) const noexcept {
  const std::int64_t cap = maximum_per_minute > 0 ? maximum_per_minute : kMaxRolloutPerMinute;
  if (!exponential) return cap;
  const std::int64_t steps = notified_step > 0    ? notified / notified_step
                             : succeeded_step > 0 ? succeeded / succeeded_step
                                                  : 0;
  double rate = static_cast<double>(base_per_minute);
  for (std::int64_t i = 0; i < steps && rate < static_cast<double>(cap); ++i) {
    rate *= increment_factor;
  }
  return std::min(cap, static_cast<std::int64_t>(std::floor(rate)));
}

Res<RetryConfig> read_retry_config(std::string_view text) {
  RetryConfig out;
  if (text.empty()) return out;
  auto j = object_of(text, "jobExecutionsRetryConfig");
  if (!j) return fail(j.error());
  auto list = criteria(j.value(), "jobExecutionsRetryConfig");
  if (!list) return fail(list.error());
  for (const json& c : *list.value()) {
    auto type = c.is_object() ? failure_type(c, false) : std::nullopt;
    auto n = c.is_object() ? integer(c, "numberOfRetries", 0, 10) : std::nullopt;
    if (!type || !n) {
      return bad("jobExecutionsRetryConfig: each criterion needs failureType FAILED, TIMED_OUT "
                 "or ALL and numberOfRetries 0-10");
    }
    out.criteria.push_back({*type, *n});
  }
  return out;
}

Res<AbortConfig> read_abort_config(std::string_view text) {
  AbortConfig out;
  if (text.empty()) return out;
  auto j = object_of(text, "abortConfig");
  if (!j) return fail(j.error());
  auto list = criteria(j.value(), "abortConfig");
  if (!list) return fail(list.error());
  for (const json& c : *list.value()) {
    if (!c.is_object()) return bad("abortConfig: each criterion must be an object");
    auto type = failure_type(c, true);
    auto min = integer(c, "minNumberOfExecutedThings", 1, INT64_MAX);
    const bool action_ok = c.value("action", std::string()) == "CANCEL";
    const bool pct_ok = c.contains("thresholdPercentage") && c["thresholdPercentage"].is_number() &&
                        c["thresholdPercentage"].get<double>() >= 0 &&
                        c["thresholdPercentage"].get<double>() <= 100;
    if (!type || !min || !action_ok || !pct_ok) {
      return bad("abortConfig: each criterion needs failureType FAILED, REJECTED, TIMED_OUT or "
                 "ALL, action CANCEL, thresholdPercentage 0-100, minNumberOfExecutedThings >= 1");
    }
    out.criteria.push_back({*type, c["thresholdPercentage"].get<double>(), *min});
  }
  return out;
}

Res<RolloutConfig> read_rollout_config(std::string_view text) {
  RolloutConfig out;
  if (text.empty()) return out;
  auto j = object_of(text, "jobExecutionsRolloutConfig");
  if (!j) return fail(j.error());
  if (j.value().contains("maximumPerMinute")) {
    auto m = integer(j.value(), "maximumPerMinute", 1, kMaxRolloutPerMinute);
    if (!m) return bad("jobExecutionsRolloutConfig: maximumPerMinute must be 1-10000");
    out.maximum_per_minute = *m;
  }
  if (j.value().contains("exponentialRate")) {
    const json& e = j.value()["exponentialRate"];
    auto base = e.is_object() ? integer(e, "baseRatePerMinute", 1, kMaxRolloutPerMinute)
                              : std::nullopt;
    const bool factor_ok = e.is_object() && e.contains("incrementFactor") &&
                           e["incrementFactor"].is_number() &&
                           e["incrementFactor"].get<double>() >= 1.1 &&
                           e["incrementFactor"].get<double>() <= 5;
    const json* crit = e.is_object() && e.contains("rateIncreaseCriteria") &&
                               e["rateIncreaseCriteria"].is_object()
                           ? &e["rateIncreaseCriteria"]
                           : nullptr;
    auto notified = crit ? integer(*crit, "numberOfNotifiedThings", 1, INT64_MAX) : std::nullopt;
    auto succeeded = crit ? integer(*crit, "numberOfSucceededThings", 1, INT64_MAX) : std::nullopt;
    if (!base || !factor_ok || (notified.has_value() == succeeded.has_value())) {
      return bad("jobExecutionsRolloutConfig: exponentialRate needs baseRatePerMinute 1-10000, "
                 "incrementFactor 1.1-5 and rateIncreaseCriteria with one of "
                 "numberOfNotifiedThings, numberOfSucceededThings");
    }
    out.exponential = true;
    out.base_per_minute = *base;
    out.increment_factor = e["incrementFactor"].get<double>();
    out.notified_step = notified.value_or(0);
    out.succeeded_step = succeeded.value_or(0);
  }
  return out;
}

Res<std::vector<RolloutGroup>> read_rollout_groups(std::string_view text) {
  std::vector<RolloutGroup> out;
  if (text.empty()) return out;
  json j = json::parse(text, nullptr, false);
  if (!j.is_array()) return bad("rolloutGroups: not a list");
  auto pct = [](const json& g, const char* key, double& v) {
    if (!g.contains(key)) return true;
    if (!g[key].is_number()) return false;
    v = g[key].get<double>();
    return v >= 0 && v <= 100;
  };
  for (const json& g : j) {
    RolloutGroup r;
    auto count = g.is_object() ? integer(g, "count", 1, INT64_MAX) : std::nullopt;
    if (!count || !pct(g, "successThreshold", r.success_threshold) ||
        !pct(g, "errorThreshold", r.error_threshold)) {
      return bad("rolloutGroups: each group needs count >= 1 and may have successThreshold and "
                 "errorThreshold 0-100");
    }
    r.count = *count;
    out.push_back(r);
  }
  return out;
}

}  // namespace edgekit::fleetd::jobs
