// The CBOR writer: preferred (shortest) heads, definite lengths, into the caller's buffer.
#include "cbor_head.hpp"
#include "edgekit/doc/cbor.hpp"
#include "utf8.hpp"

namespace edgekit::doc::cbor {

bool Writer::put_head(std::uint8_t major, std::uint64_t arg) noexcept {
  unsigned char head[9];
  return core_.put(head, wire::write_head(major, arg, head));
}

Writer& Writer::open(bool is_object) noexcept {
  std::uint32_t prev = 0;
  // A one-byte head for now: close() widens it once the count is known.
  if (core_.start() && core_.next(false, prev) && core_.push(is_object)) {
    (void)core_.put(static_cast<unsigned char>((is_object ? wire::kMap : wire::kArray) << 5));
  }
  return *this;
}

Writer& Writer::close(bool is_object) noexcept {
  detail::Frame closed;
  if (!core_.start() || !core_.pop(is_object, closed)) return *this;
  const std::uint64_t count = is_object ? closed.items / 2 : closed.items;
  const std::size_t size = wire::head_size(count);
  if (size > 1 && !core_.insert_gap(closed.start + 1, size - 1)) return *this;
  (void)wire::write_head(is_object ? wire::kMap : wire::kArray, count, core_.data() + closed.start);
  return *this;
}

Writer& Writer::begin_object() noexcept {
  return open(true);
}
Writer& Writer::end_object() noexcept {
  return close(true);
}
Writer& Writer::begin_array() noexcept {
  return open(false);
}
Writer& Writer::end_array() noexcept {
  return close(false);
}

Writer& Writer::put_string(std::uint8_t major, const void* data, std::size_t n,
                           bool is_key) noexcept {
  std::uint32_t prev = 0;
  if (!core_.start() || !core_.next(is_key, prev)) return *this;
  // Text must be valid UTF-8 (RFC 8949 §3.1), or the item would not be valid CBOR.
  if (major == wire::kText &&
      detail::utf8_invalid_at(static_cast<const unsigned char*>(data), n) != n) {
    core_.fail(Errc::InvalidArgument);
    return *this;
  }
  if (put_head(major, n)) (void)core_.put(data, n);
  return *this;
}

Writer& Writer::key(std::string_view k) noexcept {
  return put_string(wire::kText, k.data(), k.size(), true);
}
Writer& Writer::string(std::string_view s) noexcept {
  return put_string(wire::kText, s.data(), s.size(), false);
}
Writer& Writer::bytes(std::span<const std::byte> b) noexcept {
  return put_string(wire::kBytes, b.data(), b.size(), false);
}

Writer& Writer::int64(std::int64_t v) noexcept {
  std::uint32_t prev = 0;
  if (!core_.start() || !core_.next(false, prev)) return *this;
  // A negative integer n is major type 1 with argument -1 - n (RFC 8949 §3.1), which is ~n.
  if (v < 0)
    (void)put_head(wire::kNegative, ~static_cast<std::uint64_t>(v));
  else
    (void)put_head(wire::kUnsigned, static_cast<std::uint64_t>(v));
  return *this;
}

Writer& Writer::uint64(std::uint64_t v) noexcept {
  std::uint32_t prev = 0;
  if (core_.start() && core_.next(false, prev)) (void)put_head(wire::kUnsigned, v);
  return *this;
}

Writer& Writer::boolean(bool v) noexcept {
  std::uint32_t prev = 0;
  if (core_.start() && core_.next(false, prev)) (void)core_.put(v ? 0xF5 : 0xF4);
  return *this;
}

Writer& Writer::null() noexcept {
  std::uint32_t prev = 0;
  if (core_.start() && core_.next(false, prev)) (void)core_.put(0xF6);
  return *this;
}

Writer& Writer::value(const Value& v) noexcept {
  std::uint32_t prev = 0;
  const auto e = v.encoded();
  if (core_.start() && core_.next(false, prev)) (void)core_.put(e.data(), e.size());
  return *this;
}

Result<std::span<const std::byte>> Writer::finish() const noexcept {
  const auto n = core_.finish();
  if (!n) return fail(n.error());
  return std::span<const std::byte>(reinterpret_cast<const std::byte*>(core_.data()), *n);
}

}  // namespace edgekit::doc::cbor
