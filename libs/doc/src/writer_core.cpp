// The writers' shared state: buffer, sticky error, call-sequence rules.
#include "edgekit/doc/detail/writer_core.hpp"

#include <cstring>

namespace edgekit::doc::detail {

bool WriterCore::next(bool is_key, std::uint32_t& prev) noexcept {
  if (depth_ == 0) {
    // Exactly one top-level value, and no key outside an object.
    if (is_key || top_written_) {
      fail(Errc::WriterMisuse);
      return false;
    }
    top_written_ = true;
    prev = 0;
    return true;
  }
  Frame& f = frames_[depth_ - 1];
  // In a map, items alternate key, value; an array holds values only.
  const bool key_due = f.is_map && f.items % 2 == 0;
  if (is_key != key_due) {
    fail(Errc::WriterMisuse);
    return false;
  }
  prev = f.items++;
  return true;
}

bool WriterCore::push(bool is_map) noexcept {
  if (depth_ == kMaxWriterDepth) {
    fail(Errc::WriterTooDeep);
    return false;
  }
  frames_[depth_++] = Frame{static_cast<std::uint32_t>(used_), 0, is_map};
  return true;
}

bool WriterCore::pop(bool is_map, Frame& closed) noexcept {
  if (depth_ == 0 || frames_[depth_ - 1].is_map != is_map ||
      (is_map && frames_[depth_ - 1].items % 2 != 0)) {
    fail(Errc::WriterMisuse);
    return false;
  }
  closed = frames_[--depth_];
  return true;
}

bool WriterCore::put(const void* bytes, std::size_t n) noexcept {
  if (n > capacity_ - used_) {
    fail(Errc::BufferTooSmall);
    return false;
  }
  if (n != 0) std::memcpy(data_ + used_, bytes, n);
  used_ += n;
  return true;
}

bool WriterCore::insert_gap(std::size_t at, std::size_t n) noexcept {
  if (n > capacity_ - used_) {
    fail(Errc::BufferTooSmall);
    return false;
  }
  std::memmove(data_ + at + n, data_ + at, used_ - at);
  used_ += n;
  return true;
}

void WriterCore::fail(Errc e) noexcept {
  // The first error is the one that explains the rest; later calls do nothing.
  if (error_.code == Errc::Ok) error_ = Error{e, mark_};
  used_ = mark_;
}

Result<std::size_t> WriterCore::finish() const noexcept {
  if (error_.code != Errc::Ok) return edgekit::fail(error_);
  if (depth_ != 0 || !top_written_) return edgekit::fail(Error{Errc::WriterMisuse, used_});
  return used_;
}

}  // namespace edgekit::doc::detail
