// Run by ctest with WILL_FAIL: a pure test that allocates must make its binary fail.
#include <vector>

#include "edgekit/testing/alloc_guard.hpp"

namespace {
using AllocGuardMustFail = edgekit::testing::PureTest;
TEST_F(AllocGuardMustFail, AllocatingInAPureTestFailsTheTest) {
  std::vector<int> v(16, 1);
  EXPECT_EQ(v.size(), 16u);
}
}  // namespace
