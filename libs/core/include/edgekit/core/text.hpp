#pragma once
/// \file
/// Small text helpers for building and matching MQTT topics in caller-owned buffers, shared by
/// the AWS IoT protocol libraries (provisioning, shadow, ...). Header-only, pure: no heap, no
/// I/O. Thread safety: none needed (value types; one owner at a time).

#include <cstddef>
#include <cstring>
#include <span>
#include <string_view>

namespace edgekit {

/// Appends text to a caller-owned buffer and remembers an overflow instead of failing each call,
/// so that a topic is built with a row of `put`s and checked once:
///
///   TextAppender w{buffer};
///   w.put("$aws/things/"); w.put(thing); w.put("/shadow");
///   if (w.overflow) return fail(Errc::BufferTooSmall);
///
/// After an overflow nothing more is written; `used` bytes of `out` hold the whole puts before it.
struct TextAppender {
  std::span<char> out;
  std::size_t used = 0;
  bool overflow = false;

  void put(std::string_view s) noexcept {
    if (s.empty()) return;  // memcpy from an empty view's null data is undefined
    if (overflow || s.size() > out.size() - used) {
      overflow = true;
      return;
    }
    std::memcpy(out.data() + used, s.data(), s.size());
    used += s.size();
  }
  /// What was written (meaningful when `overflow` is false).
  [[nodiscard]] std::string_view view() const noexcept { return {out.data(), used}; }
};

/// Removes `prefix` from the front of `s` and says true when `s` starts with it; else leaves `s`
/// as it is. Why not `substr`: its range check links libstdc++'s throwing path on a device.
[[nodiscard]] inline bool consume_prefix(std::string_view& s, std::string_view prefix) noexcept {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

/// Whether `name` is 1 to `max_length` bytes of `[a-zA-Z0-9_-]`, plus `:` when `allow_colon`: the
/// shape of AWS IoT's names (thing names and shadow names allow `:`, job ids do not;
/// aws-iot-protocols.md 0). Such a name never needs escaping in JSON or in a topic level.
[[nodiscard]] constexpr bool is_aws_name(std::string_view name, std::size_t max_length,
                                         bool allow_colon) noexcept {
  if (name.empty() || name.size() > max_length) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || (allow_colon && c == ':');
    if (!ok) return false;
  }
  return true;
}

}  // namespace edgekit
