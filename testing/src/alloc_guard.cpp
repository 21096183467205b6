// Replaces the global allocation functions for test binaries of pure targets. Linked only into
// those binaries (NO_ALLOC in edgekit_test).
#include "edgekit/testing/alloc_guard.hpp"

#include <cstdio>
#include <cstdlib>
#include <new>

namespace {
thread_local bool t_armed = false;
thread_local std::size_t t_count = 0;
thread_local std::size_t t_first_size = 0;
bool g_unguarded_test = false;

// Only counts: reporting from inside operator new would call into gtest, which may itself be
// allocating while it holds its own mutex (a failing EXPECT builds its message under that lock)
// and would deadlock. The failure is reported when the test body ends (PureTest::TearDown).
void note_allocation(std::size_t size) {
  if (!t_armed) return;
  if (t_count++ == 0) t_first_size = size;
}

void* allocate(std::size_t size, std::size_t align = 0) {
  note_allocation(size);
  if (size == 0) size = 1;
  void* p = nullptr;
  if (align > alignof(std::max_align_t)) {
    if (posix_memalign(&p, align, size) != 0) p = nullptr;
  } else {
    p = std::malloc(size);
  }
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

class GuardListener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override { guarded_ = false; }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (!guarded_) {
      std::fprintf(stderr,
                   "allocation guard: %s.%s does not derive from edgekit::testing::PureTest; every "
                   "test of a pure target must\n",
                   info.test_suite_name(), info.name());
      g_unguarded_test = true;
    }
  }
  static inline bool guarded_ = false;
};
}  // namespace

namespace edgekit::testing {
std::size_t guarded_allocations() noexcept { return t_count; }
bool allocation_guard_armed() noexcept { return t_armed; }
void arm_allocation_guard() noexcept {
  t_count = 0;
  t_armed = true;
  GuardListener::guarded_ = true;
}
void disarm_allocation_guard() noexcept { t_armed = false; }

AllowAllocations::AllowAllocations() noexcept : was_armed_(t_armed) { t_armed = false; }
AllowAllocations::~AllowAllocations() { t_armed = was_armed_; }

void PureTest::SetUp() { arm_allocation_guard(); }
void PureTest::TearDown() {
  disarm_allocation_guard();
  if (t_count > 0) {
    ADD_FAILURE() << t_count << " heap allocation(s), the first of " << t_first_size
                  << " bytes, inside a test of a pure target (the code under test must not "
                     "allocate)"
                  << (HasFailure() ? "; this test failed already, and gtest's own failure "
                                     "messages allocate, so some of these may be its own"
                                   : "");
  }
}
}  // namespace edgekit::testing

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void* operator new(std::size_t n, std::align_val_t a) { return allocate(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  note_allocation(n);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  note_allocation(n);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new GuardListener);
  int rc = RUN_ALL_TESTS();
  if (g_unguarded_test) {
    std::fprintf(stderr, "allocation guard: failing the run, some tests ran unguarded\n");
    return 1;
  }
  return rc;
}
