#pragma once
namespace edgekit::testing {
int support_library_anchor();
}
