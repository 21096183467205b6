// Keeps the support library non-empty while its parts are added one by one.
#include "edgekit/testing/support.hpp"
namespace edgekit::testing {
int support_library_anchor() { return 0; }
}  // namespace edgekit::testing
