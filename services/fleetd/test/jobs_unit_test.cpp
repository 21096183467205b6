// The job execution state machine (aws-iot-protocols.md 2.4): every status against every
// request, by device and by service, with versions and terminal states.

#include <gtest/gtest.h>

#include <array>

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

}  // namespace
}  // namespace edgekit::fleetd::jobs
