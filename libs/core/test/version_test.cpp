#include "edgekit/core/version.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string_view>

#include "edgekit/testing/alloc_guard.hpp"

namespace {

using Version = edgekit::testing::PureTest;

// The project's version as CMake knows it, passed by the build (not through the generated
// header), so that the test checks the generation.
constexpr std::string_view kProjectVersion = EDGEKIT_TEST_PROJECT_VERSION;

TEST_F(Version, RuntimeVersionIsTheProjectVersion) {
  const edgekit::VersionInfo v = edgekit::version();
  EXPECT_EQ(std::string_view(v.string), kProjectVersion);
  char joined[32];
  std::snprintf(joined, sizeof joined, "%u.%u.%u", unsigned{v.major}, unsigned{v.minor},
                unsigned{v.patch});
  EXPECT_EQ(std::string_view(joined), kProjectVersion);
}

TEST_F(Version, LibraryAndHeadersAgree) {
  const edgekit::VersionInfo v = edgekit::version();
  EXPECT_EQ(v.major, edgekit::kVersion.major);
  EXPECT_EQ(v.minor, edgekit::kVersion.minor);
  EXPECT_EQ(v.patch, edgekit::kVersion.patch);
  EXPECT_EQ(std::string_view(v.string), std::string_view(EDGEKIT_VERSION_STRING));
  static_assert(EDGEKIT_VERSION_MAJOR == edgekit::kVersion.major);
}

}  // namespace
