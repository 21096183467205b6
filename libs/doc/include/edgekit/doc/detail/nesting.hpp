#pragma once
/// \file
/// Internal: the call-sequence rules that the JSON and CBOR writers share (which container is
/// open, whether a key or a value is due). Not part of the API; it is in a public header only
/// because the writers hold it by value (no heap).

#include <cstddef>
#include <cstdint>

#include "edgekit/doc/errc.hpp"

namespace edgekit::doc {

/// The deepest nesting either writer accepts. Why a constant and not a template parameter: the
/// writers stay non-templates (their code is compiled once, which matters on a microcontroller),
/// and no AWS IoT document nests deeper than a handful of levels.
inline constexpr std::size_t kMaxWriterDepth = 16;

namespace detail {

/// One open container: where its header starts in the output, how many items it holds so far
/// (keys and values both count in a map), and whether it is a map/object.
struct Frame {
  std::uint32_t start = 0;
  std::uint32_t items = 0;
  bool is_map = false;
};

/// The open containers of a writer. Thread safety: none (part of a writer).
class Nesting {
 public:
  /// Checks that a key (`is_key`) or a value may come next, and counts it. Errc::Ok or
  /// WriterMisuse. `Prev` is set to the number of items already in the innermost container
  /// (0 at top level), which the JSON writer needs for its separators.
  [[nodiscard]] Errc next(bool is_key, std::uint32_t& prev) noexcept;
  /// Opens a container whose header starts at `start`. Errc::Ok or WriterTooDeep.
  [[nodiscard]] Errc push(bool is_map, std::uint32_t start) noexcept;
  /// Closes the innermost container, which must be of kind `is_map` and (for a map) must not be
  /// waiting for a value. On success `closed` is the frame that was closed.
  [[nodiscard]] Errc pop(bool is_map, Frame& closed) noexcept;
  /// True when one complete top-level value has been written and nothing is open.
  [[nodiscard]] bool complete() const noexcept { return depth_ == 0 && top_written_; }
  [[nodiscard]] std::size_t depth() const noexcept { return depth_; }

 private:
  Frame frames_[kMaxWriterDepth]{};
  std::uint8_t depth_ = 0;
  bool top_written_ = false;
};

}  // namespace detail
}  // namespace edgekit::doc
