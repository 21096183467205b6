#pragma once
// Bare-metal version of testing/include/edgekit/testing/alloc_guard.hpp for the QEMU test image:
// the same `PureTest` fixture and `AllowAllocations` scope. The runner replaces the global
// operator new; while a PureTest body runs, every allocation is counted and fails the test.

#include <cstddef>

#include <gtest/gtest.h>

namespace edgekit::testing {

/// Allocations counted since the guard was last armed.
std::size_t guarded_allocations() noexcept;
/// True while inside a guarded test body.
bool allocation_guard_armed() noexcept;
void arm_allocation_guard() noexcept;
void disarm_allocation_guard() noexcept;

/// Lets the test itself use the heap for a moment, never the code under test.
class AllowAllocations {
 public:
  AllowAllocations() noexcept : was_armed_(allocation_guard_armed()) { disarm_allocation_guard(); }
  ~AllowAllocations() {
    if (was_armed_) arm_allocation_guard();
  }
  AllowAllocations(const AllowAllocations&) = delete;
  AllowAllocations& operator=(const AllowAllocations&) = delete;

 private:
  bool was_armed_;
};

/// Fixture for every test of a pure target.
class PureTest : public ::testing::Test {
 protected:
  void SetUp() override { arm_allocation_guard(); }
  void TearDown() override;
};

}  // namespace edgekit::testing
