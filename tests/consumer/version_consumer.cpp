// The installed library's run-time version agrees with the installed headers and, when the
// build says what it expects (EDGEKIT_EXPECTED_VERSION, e.g. from `pkg-config --modversion`),
// with that too.
#include <cstdio>
#include <cstring>
#include <edgekit/core/version.hpp>

int main() {
  const edgekit::VersionInfo v = edgekit::version();
  if (std::strcmp(v.string, edgekit::kVersion.string) != 0 || v.major != edgekit::kVersion.major ||
      v.minor != edgekit::kVersion.minor || v.patch != edgekit::kVersion.patch) {
    std::fprintf(stderr, "version consumer: library %s, headers %s\n", v.string,
                 edgekit::kVersion.string);
    return 1;
  }
#ifdef EDGEKIT_EXPECTED_VERSION
  if (std::strcmp(v.string, EDGEKIT_EXPECTED_VERSION) != 0) {
    std::fprintf(stderr, "version consumer: library %s, expected %s\n", v.string,
                 EDGEKIT_EXPECTED_VERSION);
    return 1;
  }
#endif
  std::printf("version consumer: edgekit %s (%u.%u.%u)\n", v.string, unsigned{v.major},
              unsigned{v.minor}, unsigned{v.patch});
  return 0;
}
