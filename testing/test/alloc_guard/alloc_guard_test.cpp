// The allocation guard itself: it must see a heap allocation in a pure test, and must not see
// what the test deliberately allows.
#include <memory>
#include <vector>

#include "edgekit/testing/alloc_guard.hpp"

namespace {

using AllocGuard = edgekit::testing::PureTest;

TEST_F(AllocGuard, CountsAHeapAllocationInsideAPureTest) {
  auto p = std::make_unique<int>(7);
  EXPECT_EQ(edgekit::testing::guarded_allocations(), 1u);
  EXPECT_EQ(*p, 7);
  // Re-arming forgets the count so that this test, which allocated on purpose, passes.
  edgekit::testing::arm_allocation_guard();
}

TEST_F(AllocGuard, IgnoresWhatTheTestAllowsExplicitly) {
  {
    edgekit::testing::AllowAllocations allow;
    std::vector<int> v(100, 1);
    EXPECT_EQ(v.size(), 100u);
  }
  EXPECT_EQ(edgekit::testing::guarded_allocations(), 0u);
  EXPECT_TRUE(edgekit::testing::allocation_guard_armed());
}

}  // namespace
