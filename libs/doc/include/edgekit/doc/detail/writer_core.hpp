#pragma once
/// \file
/// Internal: the state and call-sequence rules that the JSON and CBOR writers share: the
/// caller's buffer, the sticky first error, and which container is open (whether a key or a
/// value is due). Not part of the API; it is in a public header only because the writers hold it
/// by value (no heap).

#include <cstddef>
#include <cstdint>

#include "edgekit/doc/errc.hpp"

namespace edgekit::doc {

/// The deepest nesting either writer accepts (WriterTooDeep beyond). Why a constant and not a
/// template parameter: the writers stay non-templates (compiled once, which matters on a
/// microcontroller), and no AWS IoT document nests deeper than a handful of levels.
inline constexpr std::size_t kMaxWriterDepth = 16;

namespace detail {

/// One open container: where its header starts in the output, how many items it holds so far
/// (keys and values both count in a map), and whether it is a map/object.
struct Frame {
  std::uint32_t start = 0;
  std::uint32_t items = 0;
  bool is_map = false;
};

/// A writer's buffer, error and open containers. Every public writer call begins with `start()`
/// (which remembers where the call began) and on failure calls `fail()`, which records the error
/// at that position and takes back what the call had written: so the buffer always holds whole
/// calls, and the error's offset is where the failing call began. Thread safety: none.
class WriterCore {
 public:
  WriterCore(unsigned char* data, std::size_t capacity) noexcept
      : data_(data), capacity_(capacity) {}

  /// Begins a public call; false when an earlier call failed (errors are sticky).
  [[nodiscard]] bool start() noexcept {
    mark_ = used_;
    return error_.code == Errc::Ok;
  }
  /// Checks that a key (`is_key`) or a value may come next and counts it; on misuse records
  /// WriterMisuse and returns false. `prev` is the number of items already in the innermost
  /// container (0 at top level), which the JSON writer needs for its separators.
  [[nodiscard]] bool next(bool is_key, std::uint32_t& prev) noexcept;
  /// Opens a container whose header starts at the current position (WriterTooDeep).
  [[nodiscard]] bool push(bool is_map) noexcept;
  /// Closes the innermost container, which must be of kind `is_map` and, for a map, must not be
  /// waiting for a value (WriterMisuse). On success `closed` is the frame that was closed.
  [[nodiscard]] bool pop(bool is_map, Frame& closed) noexcept;
  /// True inside a map/object.
  [[nodiscard]] bool in_map() const noexcept { return depth_ > 0 && frames_[depth_ - 1].is_map; }

  /// Appends bytes (BufferTooSmall when they do not fit).
  [[nodiscard]] bool put(const void* bytes, std::size_t n) noexcept;
  [[nodiscard]] bool put(unsigned char byte) noexcept { return put(&byte, 1); }
  /// Opens a gap of `n` bytes at `at` (≤ size()) by moving what follows (BufferTooSmall).
  [[nodiscard]] bool insert_gap(std::size_t at, std::size_t n) noexcept;
  /// Records the first error at the start of the current call and drops that call's output.
  void fail(Errc e) noexcept;

  [[nodiscard]] unsigned char* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return used_; }
  [[nodiscard]] Error error() const noexcept { return error_; }
  /// The length of the finished document: the first error, or WriterMisuse when nothing or an
  /// unclosed container was written.
  [[nodiscard]] Result<std::size_t> finish() const noexcept;

 private:
  unsigned char* data_;
  std::size_t capacity_;
  std::size_t used_ = 0;
  std::size_t mark_ = 0;
  Error error_{};
  Frame frames_[kMaxWriterDepth]{};
  std::uint8_t depth_ = 0;
  bool top_written_ = false;
};

}  // namespace detail
}  // namespace edgekit::doc
