#pragma once
// Reading a user's input file for a command-line tool, bounded and with errors a user can act on.

#include <cstddef>
#include <string>

namespace edgekit::tools {

/// Reads the file at `path` (empty: standard input) into `out`, never more than `limit` bytes:
/// an endless input (/dev/zero, a pipe that never closes) or a huge file costs at most `limit`
/// + 1 bytes of memory. Returns false with `error` set to the cause in words: "it is a
/// directory", the system's message (no such file, permission denied, ...), or "more than
/// `limit` bytes". Throws nothing (iostreams would throw std::ios_failure on a directory).
/// Thread safety: none needed (no shared state).
bool read_input(const std::string& path, std::size_t limit, std::string& out, std::string& error);

}  // namespace edgekit::tools
