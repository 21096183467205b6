#pragma once
/// \file
/// Proof that pure code never touches the heap. A test binary built with NO_ALLOC replaces the
/// global operator new/delete; while a `PureTest` body runs, every allocation on the test's
/// thread is counted and fails the test, naming the size. Every test in such a binary must
/// derive from `PureTest` (the binary's main refuses to pass otherwise), so no test can slip
/// past the guard by accident.
///
///   using PublishDecode = edgekit::testing::PureTest;
///   TEST_F(PublishDecode, RejectsWildcardInTopicName) { ... }

#include <cstddef>

#include <gtest/gtest.h>

namespace edgekit::testing {

/// Allocations counted on this thread since the guard was last armed.
std::size_t guarded_allocations() noexcept;
/// True while the current thread is inside a guarded test body.
bool allocation_guard_armed() noexcept;
void arm_allocation_guard() noexcept;
void disarm_allocation_guard() noexcept;

/// Lets the test itself use the heap for a moment (to build expected data), never the code
/// under test: `{ edgekit::testing::AllowAllocations allow; std::vector<...> big(...); }`
class AllowAllocations {
 public:
  AllowAllocations() noexcept;
  ~AllowAllocations();
  AllowAllocations(const AllowAllocations&) = delete;
  AllowAllocations& operator=(const AllowAllocations&) = delete;

 private:
  bool was_armed_;
};

/// Fixture for every test of a pure target.
class PureTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
};

}  // namespace edgekit::testing
