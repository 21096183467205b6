#pragma once
/// \file
/// CBOR (RFC 8949) for devices: a strict, zero-copy, allocation-free reader and a writer into a
/// caller-owned buffer, for the subset AWS IoT uses (MQTT-based OTA file streams, Fleet
/// Provisioning's CBOR topics): maps with text keys ("objects" below, as in JSON), arrays, text
/// strings, byte strings, unsigned and negative integers, false, true and null.
///
/// What the reader does with the rest of CBOR (each refused with its own error, never misread):
///  - indefinite lengths (additional information 31), and a break byte 0xff outside one
///    (malformed, §3.2.1) → IndefiniteLength;
///  - tags (major type 6) → UnsupportedTag;
///  - floats (half, single, double) → UnsupportedFloat;
///  - simple values other than false/true/null (undefined, 0-19, the one-byte forms 32-255, and
///    the malformed one-byte forms 0-31, §3.3) → UnsupportedSimpleValue;
///  - additional information 28-30 → ReservedAdditionalInfo (malformed, §3);
///  - a map key that is not a text string → NonTextKey;
///  - the same key twice in one map → DuplicateKey (such a map is not valid CBOR, §5.6);
///  - a length or integer not in its shortest form → NonPreferredEncoding. Why refuse rather than
///    accept: the encoders AWS uses write preferred encodings, and a reader that accepts exactly
///    one encoding per value makes what it accepts round-trip byte for byte (the fuzzer checks
///    it), so no two devices can disagree about what a message says;
///  - text strings that are not well-formed UTF-8 → InvalidUtf8 (§3.1, a validity rule).
///
/// The API is the same as json.hpp's (value kinds, lookups, writer calls), so a client that
/// speaks both formats can be one template over the format. `parse()` checks the whole item once
/// and returns its root `Value`; lookups walk the checked bytes again and fail only with
/// NotFound / WrongType.
/// Ownership: every `Value`, `Member` and view they return points into the bytes given to
/// `parse()` and stays valid as long as they are unchanged and alive.
/// Thread safety: `parse()` is reentrant; a `Value` is immutable and may be read by many threads
/// at once. A `Writer` is one thread's at a time. No call allocates, throws, reads a clock or
/// does I/O.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/doc/detail/children.hpp"
#include "edgekit/doc/detail/value_base.hpp"
#include "edgekit/doc/detail/writer_base.hpp"
#include "edgekit/doc/detail/writer_core.hpp"
#include "edgekit/doc/errc.hpp"

namespace edgekit::doc::cbor {

/// The kinds of value (detail/value_base.hpp), also reachable by this namespace.
using Type = doc::Type;

class Value;
struct Member;

/// Internal: a position among a container's children (detail/children.hpp).
using ChildCursor = doc::detail::ChildCursor<std::byte>;

/// The pairs of a map, for range-for: `begin()`, `end()`, `empty()`; its `iterator` is a
/// forward iterator whose `operator*` gives a `const Member&`, and `end()` a sentinel it compares
/// with. Holds two positions, not the members: cheap to copy, no state.
using MemberRange = doc::detail::ChildRange<Member, ChildCursor>;
/// The elements of an array, likewise (`operator*` gives a `const Value&`).
using ElementRange = doc::detail::ChildRange<Value, ChildCursor>;

/// A data item inside a parsed CBOR document (a view: see the file comment for lifetime). Its
/// kind (`type()`, `is_object()` for a map, `is_number()` for an integer, ...), `offset()` and
/// lookups (`find`, `at_path`, `at`) are documented in detail/value_base.hpp.
/// A default-constructed `Value` is a `Type::Null` that belongs to no document.
class Value : public doc::detail::ValueBase<Value> {
 public:
  Value() = default;

  /// The item's whole encoding (head and content, nested items included), e.g. to forward a
  /// sub-map unchanged.
  [[nodiscard]] std::span<const std::byte> encoded() const noexcept {
    return {doc_ + begin_, end_ - begin_};
  }
  /// Pairs in a map or elements in an array, from the item's head (constant time); 0 for others.
  [[nodiscard]] std::size_t size() const noexcept;

  /// Errors: WrongType.
  [[nodiscard]] Result<bool> as_bool() const noexcept;
  /// Errors: WrongType, IntegerOutOfRange (e.g. 2^63, or -2^64: reported, never wrapped).
  [[nodiscard]] Result<std::int64_t> as_int64() const noexcept;
  /// Errors: WrongType, IntegerOutOfRange (any negative integer).
  [[nodiscard]] Result<std::uint64_t> as_uint64() const noexcept;
  /// A text string's content (zero-copy, always: CBOR has no escapes; UTF-8 checked by
  /// `parse()`). Errors: WrongType.
  [[nodiscard]] Result<std::string_view> as_string_view() const noexcept;
  /// Copies a text string's content into `out` (as json::Value::copy_string, for code written
  /// for both formats); returns the filled part of `out`. Errors: WrongType, BufferTooSmall.
  [[nodiscard]] Result<std::string_view> copy_string(std::span<char> out) const noexcept;
  /// A byte string's content (zero-copy). Errors: WrongType.
  [[nodiscard]] Result<std::span<const std::byte>> as_bytes() const noexcept;
  /// True when this is a text string equal to `s` byte for byte.
  [[nodiscard]] bool equals(std::string_view s) const noexcept;

  /// The pairs of a map, in encoded order; empty for anything but a map.
  [[nodiscard]] MemberRange members() const noexcept;
  /// The elements of an array, in order; empty for anything but an array.
  [[nodiscard]] ElementRange elements() const noexcept;

 private:
  friend Result<Value> parse(std::span<const std::byte>, ParseOptions) noexcept;
  friend struct doc::detail::ChildCursor<std::byte>;
  friend struct Access;
  Value(const std::byte* doc, std::size_t begin, std::size_t end, Type type, std::uint8_t head,
        std::uint64_t arg) noexcept
      : ValueBase(begin, end, type), doc_(doc), arg_(arg), head_(head) {}

  const std::byte* doc_ = nullptr;
  std::uint64_t arg_ = 0;  // the head's argument: integer magnitude, length, or count
  std::uint8_t head_ = 0;  // the initial byte (major type and additional information)
};

/// One pair of a map: its key (always a text string) and its value.
struct Member {
  Value key;
  Value value;
};

/// Checks that `data` is exactly one well-formed, valid data item of the supported subset (see
/// the file comment for what is refused and why) and returns it. Nothing may follow the item:
/// TrailingData (CBOR has no terminator convention; AWS sends the item alone).
/// Errors (offset = the offending byte, or the head of the offending item): Empty,
/// UnexpectedEnd, TrailingData, TooDeep, ReservedAdditionalInfo, IndefiniteLength,
/// UnsupportedTag, UnsupportedFloat, UnsupportedSimpleValue, NonPreferredEncoding, NonTextKey,
/// DuplicateKey, InvalidUtf8, DocumentTooLarge (a length that cannot fit in memory).
/// Cost: linear in the size, plus per map quadratic in its number of keys (duplicate check).
/// No recursion.
[[nodiscard]] Result<Value> parse(std::span<const std::byte> data,
                                  ParseOptions options = {}) noexcept;

/// Writes one CBOR data item into a caller-owned buffer with preferred (shortest) heads and
/// definite lengths (the rules of RFC 8949 §4.2.1 that apply to the subset), e.g.
///
///   std::byte buf[128];
///   cbor::Writer w(buf);
///   w.begin_object().member("certificateOwnershipToken", token).key("parameters")
///    .begin_object().member("SerialNumber", serial).end_object().end_object();
///   auto item = w.finish();   // Result<std::span<const std::byte>>: a view into buf
///
/// `begin_object()` starts a map. Containers need no count up front: `begin_*` reserves a
/// one-byte head and `end_*` widens it (moving the content) when there are 24 or more entries,
/// so the result is the shortest definite-length encoding all the same.
/// Errors are sticky: the first failure is kept, later calls do nothing, `finish()` returns it.
/// Nothing is truncated silently: BufferTooSmall (offset: bytes written before the failing call).
/// Text must be well-formed UTF-8 (else InvalidArgument). In a map, keys are text (`key()`), each
/// followed by exactly one value (else WriterMisuse); nesting deeper than kMaxWriterDepth is
/// WriterTooDeep. The writer does not look for duplicate keys (that would need memory or
/// quadratic time; the caller's keys are its own).
/// Ownership: `out` belongs to the caller and must outlive the writer and the view `finish()`
/// returns. Thread safety: none (one thread at a time).
class Writer : public doc::detail::WriterBase<Writer> {
 public:
  explicit Writer(std::span<std::byte> out) noexcept
      : core_(reinterpret_cast<unsigned char*>(out.data()), out.size()) {}

  Writer& begin_object() noexcept;
  Writer& end_object() noexcept;
  Writer& begin_array() noexcept;
  Writer& end_array() noexcept;
  /// A text key; only directly inside a map, before each value.
  Writer& key(std::string_view k) noexcept;
  /// A text string.
  Writer& string(std::string_view s) noexcept;
  Writer& bytes(std::span<const std::byte> b) noexcept;
  Writer& int64(std::int64_t v) noexcept;
  Writer& uint64(std::uint64_t v) noexcept;
  Writer& boolean(bool v) noexcept;
  Writer& null() noexcept;
  /// An item from a parsed document, copied verbatim (valid and preferred by construction).
  Writer& value(const Value& v) noexcept;
  using WriterBase::member;  // member(key, string | bool | integer)
  /// `key(k)` then a byte string.
  Writer& member(std::string_view k, std::span<const std::byte> v) noexcept {
    return key(k).bytes(v);
  }

  /// The finished item: a view of the written part of `out`. Errors: the first error of any
  /// earlier call, or WriterMisuse when no item or an unclosed container was written.
  [[nodiscard]] Result<std::span<const std::byte>> finish() const noexcept;
  /// The first error so far (`Errc::Ok` when none).
  [[nodiscard]] Error error() const noexcept { return core_.error(); }
  /// Bytes written so far.
  [[nodiscard]] std::size_t size() const noexcept { return core_.size(); }

 private:
  Writer& open(bool is_object) noexcept;
  Writer& close(bool is_object) noexcept;
  Writer& put_string(std::uint8_t major, const void* data, std::size_t n, bool is_key) noexcept;
  bool put_head(std::uint8_t major, std::uint64_t arg) noexcept;

  doc::detail::WriterCore core_;
};

}  // namespace edgekit::doc::cbor
