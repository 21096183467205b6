#pragma once
// Private: the checksummed state files of the file-backed ports, written atomically.
//
// Layout (little-endian): magic (4 bytes), format version (1 byte, 1), 3 zero bytes, the sizes
// of the two parts (4 bytes each), the parts, then a CRC-32 (IEEE, as zlib) of everything
// before it. Written as: truncate `<path>.tmp`, write, fsync, rename over `<path>`, fsync of the
// directory; so that after a power cut the file is the old one or the new one.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "edgekit/ota/file_ports.hpp"

namespace edgekit::ota::detail {

using Magic = std::array<char, 4>;

// Writes the two parts under `magic` to `path` in `dir`. Returns false on any failure (the old
// file is then intact).
[[nodiscard]] bool write_state(Filesystem& fs, const std::string& dir, const std::string& path,
                               const Magic& magic, std::span<const std::uint8_t> first,
                               std::span<const std::uint8_t> second);

// The two parts of a state file.
struct StateParts {
  std::vector<std::uint8_t> first;
  std::vector<std::uint8_t> second;
};

// Reads `path`. Errors: `missing` when it does not exist, RecordCorrupted when it is not a
// well-formed file of `magic` with a matching CRC, `io` when it cannot be read.
[[nodiscard]] Result<StateParts, Errc> read_state(Filesystem& fs, const std::string& path,
                                                  const Magic& magic, Errc missing, Errc io);

// Creates `dir` and its parents (not a power-cut point: a directory that exists stays).
void make_directory(const std::string& dir);

}  // namespace edgekit::ota::detail
