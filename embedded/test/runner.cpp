// Test runner of the QEMU image: runs every test registered through the GoogleTest shim, prints
// failures and a summary line, and returns the number of failed tests (capped at 255), which
// semihosting turns into QEMU's exit status.
//
//   qemu-system-arm -M mps2-an386 ... -kernel edgekit_qemu_tests.elf [-append "--canary"]
//
// `--canary` runs only the runner's own self-checks instead: tests that must fail (an EXPECT, an
// ASSERT that must stop its test, an allocation inside a PureTest). scripts/qemu-test requires
// them to fail, so a harness that could not report a failure would be caught.
// `--verbose` prints every test name.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <gtest/gtest.h>

#include "edgekit/testing/alloc_guard.hpp"

namespace {

testing::internal::TestInfo* g_first = nullptr;
testing::internal::TestInfo* g_last = nullptr;
int g_current_failures = 0;
bool g_canary_mode = false;
char g_detail[256];

bool g_armed = false;
std::size_t g_allocations = 0;

}  // namespace

// --- Allocation guard ------------------------------------------------------------------------
namespace edgekit::testing {
std::size_t guarded_allocations() noexcept { return g_allocations; }
bool allocation_guard_armed() noexcept { return g_armed; }
void arm_allocation_guard() noexcept {
  g_allocations = 0;
  g_armed = true;
}
void disarm_allocation_guard() noexcept { g_armed = false; }
void PureTest::TearDown() {
  const std::size_t n = g_allocations;
  g_armed = false;
  if (n != 0) {
    char text[64];
    std::snprintf(text, sizeof text, "%u heap allocation(s) in a pure test",
                  static_cast<unsigned>(n));
    ::testing::internal::report_failure(__FILE__, __LINE__, "allocation guard", "", text);
  }
}
}  // namespace edgekit::testing

namespace {
void* counted_alloc(std::size_t n) {
  if (g_armed) ++g_allocations;
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) {
    std::puts("edgekit: out of memory");
    std::exit(254);
  }
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

// --- Shim back end -----------------------------------------------------------------------------
namespace testing::internal {

void register_test(TestInfo* info) {
  info->next = nullptr;
  if (g_last) {
    g_last->next = info;
  } else {
    g_first = info;
  }
  g_last = info;
}

char* detail_buffer() { return g_detail; }
std::size_t detail_capacity() { return sizeof g_detail; }

void report_failure(const char* file, int line, const char* expression, const char* detail,
                    const char* message) {
  ++g_current_failures;
  const char* base = std::strrchr(file, '/');
  std::printf("%s:%d: Failure: %s\n", base ? base + 1 : file, line, expression);
  if (detail[0] != '\0') std::printf("%s\n", detail);
  if (message[0] != '\0') std::printf("  %s\n", message);
  g_detail[0] = '\0';
}

}  // namespace testing::internal

// --- Self-checks (run with --canary; each must fail) --------------------------------------------
namespace {

bool g_after_assert_ran = false;

void assert_stops_here() {
  ASSERT_TRUE(false) << "canary: a failing ASSERT";
  g_after_assert_ran = true;
}

}  // namespace

TEST(RunnerCanary, ExpectEqFails) { EXPECT_EQ(1 + 1, 3) << "canary: a failing EXPECT_EQ"; }

TEST(RunnerCanary, AssertStopsTheTest) { assert_stops_here(); }

using RunnerCanaryPure = edgekit::testing::PureTest;
TEST_F(RunnerCanaryPure, AllocationIsCaught) {
  auto* volatile p = new int(7);
  delete p;
}

// --- main --------------------------------------------------------------------------------------
namespace {

bool is_canary(const testing::internal::TestInfo& t) {
  return std::strncmp(t.suite, "RunnerCanary", 12) == 0;
}

// Runs one test instance; true when it passed.
bool run_one(const testing::internal::TestInfo& t, int param, bool verbose) {
  if (verbose) {
    if (param < 0) std::printf("[ RUN  ] %s.%s\n", t.suite, t.name);
    else std::printf("[ RUN  ] %s.%s/%d\n", t.suite, t.name, param);
  }
  g_current_failures = 0;
  testing::Test* test = t.make();
  test->SetUp();
  if (g_current_failures == 0) test->TestBody();
  test->TearDown();
  delete test;
  if (g_current_failures != 0) {
    if (param < 0) std::printf("[ FAILED ] %s.%s\n", t.suite, t.name);
    else std::printf("[ FAILED ] %s.%s/%d\n", t.suite, t.name, param);
  }
  return g_current_failures == 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--canary") == 0) g_canary_mode = true;
    if (std::strcmp(argv[i], "--verbose") == 0) verbose = true;
  }
  int passed = 0;
  int failed = 0;
  for (testing::internal::TestInfo* t = g_first; t != nullptr; t = t->next) {
    if (is_canary(*t) != g_canary_mode) continue;
    if (t->param_count == nullptr) {
      (run_one(*t, -1, verbose) ? passed : failed) += 1;
      continue;
    }
    const std::size_t n = t->param_count();
    if (n == 0) {
      std::printf("[ FAILED ] %s.%s: TEST_P without INSTANTIATE_TEST_SUITE_P\n", t->suite, t->name);
      ++failed;
    }
    for (std::size_t i = 0; i < n; ++i) {
      t->set_param(i);
      (run_one(*t, static_cast<int>(i), verbose) ? passed : failed) += 1;
    }
  }
  // scripts/qemu-test looks for this line: an ASSERT that did not return is a broken harness.
  if (g_after_assert_ran) std::printf("canary: ASSERT did not stop its function\n");
  std::printf("%s: %d passed, %d failed\n", g_canary_mode ? "qemu canary" : "qemu", passed, failed);
  std::fflush(stdout);
  return failed > 255 ? 255 : failed;
}
