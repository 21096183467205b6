// The library's own copy of the version (see edgekit/core/version.hpp): compiled here, so that
// it answers with the version of the library, not of the headers the caller was built with.
#include "edgekit/core/version.hpp"

namespace edgekit {

VersionInfo version() noexcept { return kVersion; }

}  // namespace edgekit
