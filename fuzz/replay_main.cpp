// The replay driver: links a fuzz target's LLVMFuzzerTestOneInput without libFuzzer, so that an
// ordinary test build (GCC, ASan+UBSan) runs each harness and its oracles over fixed inputs.
//   <target>_replay <file or directory>...
// Every regular file named (directly, or inside a named directory, in name order) is one input.
// An oracle failure aborts, as under libFuzzer. Exits 1 when no input was found at all, so that a
// missing seed directory fails the test instead of passing it with nothing replayed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_entry.hpp"

namespace {

bool replay(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", file.c_str());
    return false;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A copy of exactly the input's size (as libFuzzer gives), so that ASan sees reads past its end.
  // An empty input still gets a valid pointer, as libFuzzer gives.
  std::vector<std::uint8_t> input(bytes.begin(), bytes.end());
  static std::uint8_t empty = 0;
  LLVMFuzzerTestOneInput(input.empty() ? &empty : input.data(), input.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t count = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(arg, ec))
        if (entry.is_regular_file()) files.push_back(entry.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        if (!replay(f)) return 1;
        ++count;
      }
    } else if (std::filesystem::is_regular_file(arg, ec)) {
      if (!replay(arg)) return 1;
      ++count;
    } else {
      std::fprintf(stderr, "replay: %s is neither a file nor a directory\n", argv[i]);
      return 1;
    }
  }
  if (count == 0) {
    std::fprintf(stderr, "replay: no input replayed\n");
    return 1;
  }
  std::printf("replay: %zu input(s) passed\n", count);
  return 0;
}
