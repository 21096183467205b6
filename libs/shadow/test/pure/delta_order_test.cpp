#include "edgekit/shadow/delta_order.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::shadow {
namespace {

using ShadowDeltaOrder = edgekit::testing::PureTest;

TEST_F(ShadowDeltaOrder, AppliesTheFirstDeltaWhateverItsVersion) {
  DeltaOrder order;
  EXPECT_FALSE(order.has_applied());
  EXPECT_EQ(order.decide(0), DeltaDecision::Apply);
  EXPECT_EQ(order.accept(17), DeltaDecision::Apply);
  EXPECT_TRUE(order.has_applied());
  EXPECT_EQ(order.last_applied(), 17u);
}

TEST_F(ShadowDeltaOrder, AppliesEachVersionOnceInOrderDespiteReorderingAndRedelivery) {
  // Deliveries as a broker may make them: out of order, twice, with gaps (a reported-only
  // update makes no delta, aws-iot-protocols.md 1.4, 1.5).
  const std::array<std::uint64_t, 10> delivered{3, 5, 4, 5, 3, 8, 7, 8, 9, 2};
  const std::array<DeltaDecision, 10> expected{
      DeltaDecision::Apply,           DeltaDecision::Apply,           DeltaDecision::IgnoreStale,
      DeltaDecision::IgnoreDuplicate, DeltaDecision::IgnoreStale,     DeltaDecision::Apply,
      DeltaDecision::IgnoreStale,     DeltaDecision::IgnoreDuplicate, DeltaDecision::Apply,
      DeltaDecision::IgnoreStale};
  DeltaOrder order;
  std::uint64_t applied_before = 0;
  for (std::size_t i = 0; i < delivered.size(); ++i) {
    const DeltaDecision d = order.accept(delivered[i]);
    EXPECT_EQ(d, expected[i]) << "delivery " << i;
    if (d == DeltaDecision::Apply) {
      EXPECT_GT(delivered[i], applied_before);  // strictly increasing
      applied_before = delivered[i];
    }
  }
  EXPECT_EQ(order.last_applied(), 9u);
}

TEST_F(ShadowDeltaOrder, DecideDoesNotRecord) {
  DeltaOrder order(4);
  EXPECT_EQ(order.decide(5), DeltaDecision::Apply);
  EXPECT_EQ(order.decide(5), DeltaDecision::Apply);
  EXPECT_EQ(order.decide(4), DeltaDecision::IgnoreDuplicate);
  EXPECT_EQ(order.decide(3), DeltaDecision::IgnoreStale);
  EXPECT_EQ(order.last_applied(), 4u);
}

TEST_F(ShadowDeltaOrder, AFullDocumentCountsAsAppliedAndNeverMovesBack) {
  DeltaOrder order;
  order.applied_document(10);
  EXPECT_EQ(order.accept(10), DeltaDecision::IgnoreDuplicate);
  EXPECT_EQ(order.accept(9), DeltaDecision::IgnoreStale);
  order.applied_document(6);  // an older get/accepted arriving late
  EXPECT_EQ(order.last_applied(), 10u);
  EXPECT_EQ(order.accept(11), DeltaDecision::Apply);
}

TEST_F(ShadowDeltaOrder, ResetAfterDeleteAcceptsARestartedNumbering) {
  DeltaOrder order(40);
  EXPECT_EQ(order.accept(1), DeltaDecision::IgnoreStale);
  order.reset();  // the shadow was deleted; re-created after 48 h it numbers from 0 (1.5)
  EXPECT_FALSE(order.has_applied());
  EXPECT_EQ(order.accept(1), DeltaDecision::Apply);
}

TEST_F(ShadowDeltaOrder, HandlesTheExtremesOfTheVersionRange) {
  DeltaOrder order(0);
  EXPECT_EQ(order.accept(0), DeltaDecision::IgnoreDuplicate);
  EXPECT_EQ(order.accept(UINT64_MAX), DeltaDecision::Apply);
  EXPECT_EQ(order.accept(UINT64_MAX), DeltaDecision::IgnoreDuplicate);
  EXPECT_EQ(order.accept(0), DeltaDecision::IgnoreStale);
  static_assert(DeltaOrder(3).decide(4) == DeltaDecision::Apply);  // usable at compile time
}

}  // namespace
}  // namespace edgekit::shadow
