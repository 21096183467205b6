// The job execution state machine (aws-iot-protocols.md 2.4): every status against every
// request, by device and by service, with versions and terminal states.

#include <gtest/gtest.h>

#include <array>

#include "jobs/config.hpp"
#include "jobs/execution.hpp"

namespace edgekit::fleetd::jobs {
namespace {

using S = ExecutionStatus;
constexpr std::array kAll{S::Queued,   S::InProgress, S::Succeeded, S::Failed,
                          S::Rejected, S::TimedOut,   S::Removed,   S::Canceled};

TEST(ExecutionStatusNames, RoundTripAwsNames) {
  for (S s : kAll) EXPECT_EQ(execution_status_from(to_string(s)), s) << to_string(s);
  EXPECT_EQ(execution_status_from("in_progress"), std::nullopt);
  EXPECT_EQ(execution_status_from(""), std::nullopt);
  EXPECT_STREQ(to_string(S::TimedOut), "TIMED_OUT");
}

TEST(ExecutionStatusNames, OnlyQueuedAndInProgressArePending) {
  for (S s : kAll) {
    EXPECT_EQ(is_terminal(s), s != S::Queued && s != S::InProgress) << to_string(s);
    EXPECT_EQ(is_pending(s), !is_terminal(s));
  }
  EXPECT_TRUE(retryable(S::Failed));
  EXPECT_TRUE(retryable(S::TimedOut));
  EXPECT_FALSE(retryable(S::Rejected));
  EXPECT_FALSE(retryable(S::Canceled));
  EXPECT_FALSE(retryable(S::Removed));
}

// The whole device table: expected outcome for each (current, requested).
Refusal expected(S from, S to) {
  if (!device_may_report(to)) return Refusal::InvalidRequest;
  if (is_terminal(from)) return Refusal::InvalidStateTransition;
  if (from == S::InProgress && to == S::Rejected) return Refusal::InvalidStateTransition;
  return Refusal::None;
}

TEST(DeviceUpdate, EveryPairFollowsTheTable) {
  int accepted = 0;
  for (S from : kAll) {
    for (S to : kAll) {
      const auto d = decide_device_update({from, 7, 2}, to, std::nullopt, std::nullopt);
      ASSERT_EQ(d.refusal, expected(from, to)) << to_string(from) << " -> " << to_string(to);
      if (d.refusal == Refusal::None) {
        ++accepted;
        EXPECT_EQ(d.next.status, to);
        EXPECT_EQ(d.next.version_number, 8);
        EXPECT_EQ(d.next.execution_number, 2);
        EXPECT_EQ(d.starts, from == S::Queued);
      }
    }
  }
  // QUEUED -> 4 statuses, IN_PROGRESS -> 3.
  EXPECT_EQ(accepted, 7);
}

TEST(DeviceUpdate, OnlyDeviceStatusesMayBeReported) {
  for (S s : {S::Queued, S::TimedOut, S::Removed, S::Canceled}) {
    EXPECT_EQ(decide_device_update({S::InProgress, 1, 1}, s, {}, {}).refusal,
              Refusal::InvalidRequest)
        << to_string(s);
  }
}

TEST(DeviceUpdate, ExpectedVersionMustBeCurrent) {
  const ExecutionState cur{S::InProgress, 3, 1};
  EXPECT_EQ(decide_device_update(cur, S::Succeeded, 2, {}).refusal, Refusal::VersionMismatch);
  EXPECT_EQ(decide_device_update(cur, S::Succeeded, 4, {}).refusal, Refusal::VersionMismatch);
  const auto ok = decide_device_update(cur, S::Succeeded, 3, {});
  EXPECT_EQ(ok.refusal, Refusal::None);
  EXPECT_EQ(ok.next.version_number, 4);
}

TEST(DeviceUpdate, TerminalWinsOverVersionMismatch) {
  // A device that reports SUCCEEDED again with a stale version learns the truth: the execution
  // is over (its version is not what matters any more).
  EXPECT_EQ(decide_device_update({S::Succeeded, 5, 1}, S::Succeeded, 1, {}).refusal,
            Refusal::InvalidStateTransition);
  EXPECT_EQ(decide_device_update({S::Canceled, 5, 1}, S::InProgress, 5, {}).refusal,
            Refusal::InvalidStateTransition);
}

TEST(DeviceUpdate, ExecutionNumberMustNameTheCurrentAttempt) {
  EXPECT_EQ(decide_device_update({S::Queued, 1, 2}, S::InProgress, {}, 1).refusal,
            Refusal::ResourceNotFound);
  EXPECT_EQ(decide_device_update({S::Queued, 1, 2}, S::InProgress, {}, 2).refusal, Refusal::None);
}

TEST(DeviceUpdate, InProgressMayBeRepeatedAndBumpsTheVersionEachTime) {
  ExecutionState s{S::Queued, 1, 1};
  for (std::int64_t v = 2; v <= 5; ++v) {
    const auto d = decide_device_update(s, S::InProgress, s.version_number, {});
    ASSERT_EQ(d.refusal, Refusal::None);
    EXPECT_EQ(d.starts, v == 2);
    s = d.next;
    EXPECT_EQ(s.version_number, v);
  }
}

TEST(ServiceChange, TimedOutOnlyFromInProgress) {
  for (S from : kAll) {
    const auto r = decide_service_change({from, 4, 1}, S::TimedOut, false);
    EXPECT_EQ(r.has_value(), from == S::InProgress) << to_string(from);
    if (r) {
      EXPECT_EQ(r->status, S::TimedOut);
      EXPECT_EQ(r->version_number, 5);
    }
  }
}

TEST(ServiceChange, CancelNeedsForceWhileInProgress) {
  EXPECT_TRUE(decide_service_change({S::Queued, 1, 1}, S::Canceled, false));
  EXPECT_FALSE(decide_service_change({S::InProgress, 2, 1}, S::Canceled, false));
  EXPECT_TRUE(decide_service_change({S::InProgress, 2, 1}, S::Canceled, true));
  for (S from : kAll) {
    if (is_terminal(from)) {
      EXPECT_FALSE(decide_service_change({from, 2, 1}, S::Canceled, true)) << to_string(from);
      EXPECT_FALSE(decide_service_change({from, 2, 1}, S::Removed, true)) << to_string(from);
    }
  }
}

TEST(ServiceChange, RemovedFromAnyPendingStatus) {
  EXPECT_TRUE(decide_service_change({S::Queued, 1, 1}, S::Removed, false));
  EXPECT_TRUE(decide_service_change({S::InProgress, 1, 1}, S::Removed, false));
}

TEST(ServiceChange, ServiceSetsNoDeviceStatus) {
  for (S to : {S::Queued, S::InProgress, S::Succeeded, S::Failed, S::Rejected}) {
    EXPECT_FALSE(decide_service_change({S::Queued, 1, 1}, to, true)) << to_string(to);
  }
}

TEST(RetryConfig, RetriesEachFailureTypeWithinItsAllowance) {
  auto c = read_retry_config(
      R"({"criteriaList":[{"failureType":"FAILED","numberOfRetries":2},{"failureType":"TIMED_OUT","numberOfRetries":1}]})");
  ASSERT_TRUE(c) << c.error().message;
  // Counts include the attempt that just ended.
  EXPECT_TRUE(c.value().should_retry(S::Failed, 1, 0));
  EXPECT_TRUE(c.value().should_retry(S::Failed, 2, 0));
  EXPECT_FALSE(c.value().should_retry(S::Failed, 3, 0));
  EXPECT_TRUE(c.value().should_retry(S::TimedOut, 2, 1));
  EXPECT_FALSE(c.value().should_retry(S::TimedOut, 0, 2));
  EXPECT_FALSE(c.value().should_retry(S::Rejected, 0, 0)) << "REJECTED is never retried";
  auto all = read_retry_config(R"({"criteriaList":[{"failureType":"ALL","numberOfRetries":10}]})");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all.value().should_retry(S::TimedOut, 5, 5));
  EXPECT_FALSE(all.value().should_retry(S::TimedOut, 6, 5)) << "10 retries in all";
  EXPECT_FALSE(RetryConfig{}.should_retry(S::Failed, 1, 0)) << "no config, no retry";
}

TEST(RetryConfig, RefusesWhatAwsRefuses) {
  for (const char* bad : {"[]", "{}", R"({"criteriaList":[{"failureType":"REJECTED","numberOfRetries":1}]})",
                          R"({"criteriaList":[{"failureType":"FAILED","numberOfRetries":11}]})",
                          R"({"criteriaList":[{"failureType":"FAILED"}]})"}) {
    auto c = read_retry_config(bad);
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().code, Errc::InvalidArgument);
  }
}

TEST(AbortConfig, CancelsAtTheThresholdOnceEnoughThingsEnded) {
  auto c = read_abort_config(
      R"({"criteriaList":[{"failureType":"FAILED","action":"CANCEL","thresholdPercentage":50,"minNumberOfExecutedThings":4}]})");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_FALSE(c.value().should_abort(0, 3, 0, 0)) << "fewer than 4 ended";
  EXPECT_TRUE(c.value().should_abort(2, 2, 0, 0));
  EXPECT_FALSE(c.value().should_abort(3, 2, 0, 0));
  EXPECT_FALSE(c.value().should_abort(2, 0, 2, 2)) << "only FAILED counts";
  auto all = read_abort_config(
      R"({"criteriaList":[{"failureType":"ALL","action":"CANCEL","thresholdPercentage":25,"minNumberOfExecutedThings":1}]})");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all.value().should_abort(3, 0, 0, 1));
  EXPECT_FALSE(read_abort_config(
      R"({"criteriaList":[{"failureType":"FAILED","action":"PAUSE","thresholdPercentage":5,"minNumberOfExecutedThings":1}]})"));
  EXPECT_FALSE(read_abort_config(
      R"({"criteriaList":[{"failureType":"FAILED","action":"CANCEL","thresholdPercentage":101,"minNumberOfExecutedThings":1}]})"));
}

TEST(RolloutConfig, ExponentialRateGrowsPerStepUpToTheMaximum) {
  auto c = read_rollout_config(
      R"({"maximumPerMinute":100,"exponentialRate":{"baseRatePerMinute":10,"incrementFactor":2,"rateIncreaseCriteria":{"numberOfNotifiedThings":5}}})");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c.value().limited());
  EXPECT_EQ(c.value().rate_per_minute(0, 0), 10);
  EXPECT_EQ(c.value().rate_per_minute(4, 0), 10);
  EXPECT_EQ(c.value().rate_per_minute(5, 0), 20);
  EXPECT_EQ(c.value().rate_per_minute(10, 0), 40);
  EXPECT_EQ(c.value().rate_per_minute(1000, 0), 100);
  auto by_success = read_rollout_config(
      R"({"exponentialRate":{"baseRatePerMinute":3,"incrementFactor":1.5,"rateIncreaseCriteria":{"numberOfSucceededThings":2}}})");
  ASSERT_TRUE(by_success);
  EXPECT_EQ(by_success.value().rate_per_minute(100, 1), 3);
  EXPECT_EQ(by_success.value().rate_per_minute(100, 2), 4);
  auto fixed = read_rollout_config(R"({"maximumPerMinute":7})");
  ASSERT_TRUE(fixed);
  EXPECT_EQ(fixed.value().rate_per_minute(1000, 1000), 7);
  EXPECT_FALSE(read_rollout_config("").value().limited());
  EXPECT_FALSE(read_rollout_config(R"({"maximumPerMinute":0})"));
  EXPECT_FALSE(read_rollout_config(R"({"maximumPerMinute":10001})"));
  EXPECT_FALSE(read_rollout_config(
      R"({"exponentialRate":{"baseRatePerMinute":3,"incrementFactor":1.5,"rateIncreaseCriteria":{}}})"));
}

}  // namespace
}  // namespace edgekit::fleetd::jobs
