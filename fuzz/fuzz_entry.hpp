#pragma once
// libFuzzer's entry point, declared for every target (force-included by fuzz/CMakeLists.txt) so
// that -Wmissing-declarations holds in the replay build, which GCC compiles without libFuzzer.
#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
