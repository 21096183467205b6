#include "state_file.hpp"

#include <cstring>
#include <filesystem>
#include <system_error>

#include "edgekit/mqtt/session_store.hpp"

namespace edgekit::ota::detail {
namespace {

constexpr std::size_t kHeader = 16;
constexpr std::uint8_t kFormat = 1;

void put32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
std::uint32_t crc_of(std::span<const std::uint8_t> b) {
  return mqtt::crc32(std::as_bytes(b));
}

}  // namespace

bool write_state(Filesystem& fs, const std::string& dir, const std::string& path,
                 const Magic& magic, std::span<const std::uint8_t> first,
                 std::span<const std::uint8_t> second) {
  std::vector<std::uint8_t> bytes(kHeader + first.size() + second.size() + 4, 0);
  std::memcpy(bytes.data(), magic.data(), magic.size());
  bytes[4] = kFormat;
  put32(bytes.data() + 8, static_cast<std::uint32_t>(first.size()));
  put32(bytes.data() + 12, static_cast<std::uint32_t>(second.size()));
  if (!first.empty()) std::memcpy(bytes.data() + kHeader, first.data(), first.size());
  if (!second.empty()) {
    std::memcpy(bytes.data() + kHeader + first.size(), second.data(), second.size());
  }
  const std::size_t body = bytes.size() - 4;
  put32(bytes.data() + body, crc_of(std::span(bytes).first(body)));
  const std::string tmp = path + ".tmp";
  // The data must be durable before the rename makes it the state: a rename that reaches the
  // disk before the data would leave an empty or partial file under the final name.
  return fs.truncate(tmp) && fs.write_at(tmp, 0, std::as_bytes(std::span(bytes))) && fs.sync(tmp) &&
         fs.replace(tmp, path, dir);
}

Result<StateParts, Errc> read_state(Filesystem& fs, const std::string& path, const Magic& magic,
                                    Errc missing, Errc io) {
  const auto size = fs.size(path);
  if (!size) return fail(missing);
  // A state file is small (a record and a bitmap); anything larger is not one of ours.
  if (*size < kHeader + 4 || *size > (std::uint64_t{64} << 20)) return fail(Errc::RecordCorrupted);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(*size));
  const auto n = fs.read_at(path, 0, std::as_writable_bytes(std::span(bytes)));
  if (!n) return fail(io);
  if (*n != bytes.size()) return fail(Errc::RecordCorrupted);
  const std::uint8_t* p = bytes.data();
  const std::uint64_t first = get32(p + 8);
  const std::uint64_t second = get32(p + 12);
  if (std::memcmp(p, magic.data(), magic.size()) != 0 || p[4] != kFormat || p[5] != 0 ||
      p[6] != 0 || p[7] != 0 || kHeader + first + second + 4 != bytes.size()) {
    return fail(Errc::RecordCorrupted);
  }
  const std::size_t body = bytes.size() - 4;
  if (crc_of(std::span(bytes).first(body)) != get32(p + body)) return fail(Errc::RecordCorrupted);
  StateParts parts;
  parts.first.assign(p + kHeader, p + kHeader + first);
  parts.second.assign(p + kHeader + first, p + body);
  return parts;
}

void make_directory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);  // a failure shows at the first write
}

}  // namespace edgekit::ota::detail
