#pragma once
/// \file
/// JSON (RFC 8259) for devices: a strict, zero-copy, allocation-free reader and a writer into a
/// caller-owned buffer. What the Shadow, Jobs, OTA and Fleet Provisioning clients read and write.
///
/// Reading is two steps. `parse()` checks the whole document once against RFC 8259 (so a device
/// never acts on half a document) and returns its root `Value`. A `Value` is a small view into
/// the caller's text: `find`, `at_path`, `at`, `members()` and `elements()` walk the already
/// checked text again, so they cannot meet malformed input and fail only with "not there" or
/// "wrong type". Nothing is copied except where the caller asks for it (`copy_string`).
///
///   auto doc = json::parse(payload);                       // payload: the caller's bytes
///   if (!doc) log("bad JSON: %s at %zu", to_string(doc.error().code), doc.error().offset);
///   auto version = doc->at_path("state.desired.version");  // Result<Value>
///   if (version) { auto v = version->as_int64(); ... }     // Result<std::int64_t>
///   auto token = doc->find("clientToken");                 // Result<Value>
///   for (const json::Member& m : doc->find("execution")->members()) { m.key ... m.value ... }
///
/// The API is the same as cbor.hpp's (value kinds, lookups, writer calls), so a client that
/// speaks both formats can be one template over the format.
/// Ownership: every `Value`, every view returned by a `Value`, and every `Member` points into the
/// text passed to `parse()`; they stay valid exactly as long as that text is unchanged and alive.
/// `copy_string` / `copy_base64` results point into the caller's output buffer instead.
/// Thread safety: `parse()` is reentrant; a `Value` is immutable, so any number of threads may read
/// the same document at once. A `Writer` is a plain object: one thread at a time.
/// No call allocates, throws, reads a clock or does I/O.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/doc/detail/children.hpp"
#include "edgekit/doc/detail/value_base.hpp"
#include "edgekit/doc/detail/writer_base.hpp"
#include "edgekit/doc/detail/writer_core.hpp"
#include "edgekit/doc/errc.hpp"

namespace edgekit::doc::json {

/// The kinds of value (detail/value_base.hpp), also reachable by this namespace.
using Type = doc::Type;

class Value;
struct Member;

/// Internal: a position among a container's children (detail/children.hpp).
using ChildCursor = doc::detail::ChildCursor<char>;

/// The members of an object, for range-for: `begin()`, `end()`, `empty()`; its `iterator` is a
/// forward iterator whose `operator*` gives a `const Member&`, and `end()` a sentinel it compares
/// with. Holds two positions, not the members: cheap to copy, no state.
using MemberRange = doc::detail::ChildRange<Member, ChildCursor>;
/// The elements of an array, likewise (`operator*` gives a `const Value&`).
using ElementRange = doc::detail::ChildRange<Value, ChildCursor>;

/// A JSON value inside a parsed document (a view: see the file comment for lifetime). Its kind
/// (`type()`, `is_object()`, ...), `offset()` and lookups (`find`, `at_path`, `at`) are
/// documented in detail/value_base.hpp. Never `Type::Bytes`.
/// A default-constructed `Value` is a `Type::Null` that belongs to no document.
class Value : public doc::detail::ValueBase<Value> {
 public:
  Value() noexcept : ValueBase(0, 4, Type::Null) {}

  /// The value's JSON text exactly as it appears in the document (a string keeps its quotes and
  /// escapes, an object its braces and inner whitespace). Why: a client can forward a
  /// sub-document (a shadow's `desired` state, a job document) without re-encoding it.
  [[nodiscard]] std::string_view text() const noexcept { return {doc_ + begin_, end_ - begin_}; }
  /// Members of an object or elements of an array (linear time: counted on each call); 0 for a
  /// scalar.
  [[nodiscard]] std::size_t size() const noexcept;

  /// Errors: WrongType.
  [[nodiscard]] Result<bool> as_bool() const noexcept;
  /// An integer number. Errors: WrongType (not a number), NotAnInteger (a fraction or an
  /// exponent, even `1.0` or `1e2`: a device should not guess what a float means as a count),
  /// IntegerOutOfRange (outside int64: reported, never wrapped or clamped).
  [[nodiscard]] Result<std::int64_t> as_int64() const noexcept;
  /// As `as_int64`, for 0 .. 2^64-1; a negative number is IntegerOutOfRange.
  [[nodiscard]] Result<std::uint64_t> as_uint64() const noexcept;
  /// The text of a number exactly as written (e.g. "-1.5e3"), for callers that need a fraction:
  /// this library parses no floating point (code size on small devices). Errors: WrongType.
  [[nodiscard]] Result<std::string_view> number_text() const noexcept;

  /// A zero-copy view of a string's content (without the quotes). Errors: WrongType,
  /// StringHasEscapes (the string contains a `\` escape, so its content differs from its text:
  /// use `copy_string()`, which works for every string).
  [[nodiscard]] Result<std::string_view> as_string_view() const noexcept;
  /// Unescapes a string into `out` (UTF-8, no terminating NUL) and returns the view of `out` that
  /// holds it, valid as long as `out` is. Errors: WrongType, BufferTooSmall (`out` then holds
  /// nothing useful; `string_length()` says how much is needed).
  [[nodiscard]] Result<std::string_view> copy_string(std::span<char> out) const noexcept;
  /// The length in bytes of the unescaped string (what `copy_string` needs). Errors: WrongType.
  [[nodiscard]] Result<std::size_t> string_length() const noexcept;
  /// True when this is a string whose unescaped content equals `s` byte for byte (no copy).
  [[nodiscard]] bool equals(std::string_view s) const noexcept;
  /// Decodes a string holding padded base64 (RFC 4648 §4, the form AWS uses for binary data in
  /// JSON, e.g. OTA stream blocks) into `out`; returns the filled part of `out`. Errors:
  /// WrongType, InvalidBase64 (a character outside the alphabet, bad padding, a length that is
  /// not a multiple of 4; escapes such as `\/` are read as what they stand for), BufferTooSmall.
  [[nodiscard]] Result<std::span<const std::byte>> copy_base64(
      std::span<std::byte> out) const noexcept;

  /// The members of an object, in document order; empty for anything but an object.
  [[nodiscard]] MemberRange members() const noexcept;
  /// The elements of an array, in order; empty for anything but an array.
  [[nodiscard]] ElementRange elements() const noexcept;

 private:
  friend Result<Value> parse(std::string_view, ParseOptions) noexcept;
  friend struct doc::detail::ChildCursor<char>;
  friend struct Access;
  Value(const char* doc, std::size_t begin, std::size_t end, Type type, std::uint8_t flags) noexcept
      : ValueBase(begin, end, type), doc_(doc), flags_(flags) {}

  const char* doc_ = "null";
  std::uint8_t flags_ = 0;  // String: has escapes. Number: integer syntax.
};

/// One member of an object: its key (a string `Value`; compare it with `key.equals(...)`, read it
/// with `as_string_view()` / `copy_string()`) and its value.
struct Member {
  Value key;
  Value value;
};

/// Checks `text` against RFC 8259 and returns its one top-level value (any type, per RFC 8259 §2).
/// Strict: no trailing commas, no leading zeros, no comments, no single quotes, no NaN/Infinity,
/// no control characters in strings, only the escapes of §7 with surrogates properly paired,
/// well-formed UTF-8 everywhere (§8.1; a byte order mark is refused), whitespace only
/// `' ' \t \n \r` between tokens, and no duplicate keys within one object (compared unescaped).
/// Why refuse duplicates, which RFC 8259 only discourages: two readers that disagree on which one
/// counts is a classic way to make a device act on a value the service never checked.
/// After the value and its trailing whitespace, exactly one NUL byte is tolerated (AWS's C demos
/// send their string terminator); anything after it, or a second NUL, is TrailingData.
/// Numbers are checked against the grammar only: a huge integer parses and is reported by
/// `as_int64()` as IntegerOutOfRange.
/// Errors (offset = the offending byte): Empty, UnexpectedEnd, UnexpectedCharacter, TrailingData,
/// TooDeep, TrailingComma, LeadingZero, InvalidNumber, ControlCharacterInString, InvalidEscape,
/// InvalidUnicodeEscape, UnpairedSurrogate, InvalidUtf8, DuplicateKey.
/// Cost: linear in the size of the text, plus, per object, quadratic in its number of keys for
/// the duplicate check (fine for device documents; bounded by the text length). No recursion.
[[nodiscard]] Result<Value> parse(std::string_view text, ParseOptions options = {}) noexcept;

/// Writes one JSON document into a caller-owned buffer, compactly (no whitespace), e.g.
///
///   char buf[256];
///   json::Writer w(buf);
///   w.begin_object().member("clientToken", token).key("state").begin_object()
///    .key("reported").begin_object().member("version", 3).end_object().end_object().end_object();
///   auto doc = w.finish();   // Result<std::string_view>: a view into buf, or the first error
///
/// Errors are sticky: the first failure is kept, later calls do nothing, and `finish()` returns
/// it. Nothing is ever truncated silently: when the buffer is too small the result is
/// BufferTooSmall (offset: the bytes written before the failing call) and no document.
/// Strings are escaped per RFC 8259 §7 (`"`, `\`, and control characters; `/` and non-ASCII are
/// written as they are) and must be well-formed UTF-8 (else InvalidArgument), so the output is
/// always valid JSON. Call-sequence errors (a value where a key is due, ...) are WriterMisuse;
/// nesting deeper than kMaxWriterDepth is WriterTooDeep.
/// Ownership: `out` belongs to the caller and must outlive the writer and the view `finish()`
/// returns. Thread safety: none (one thread at a time).
class Writer : public doc::detail::WriterBase<Writer> {
 public:
  explicit Writer(std::span<char> out) noexcept
      : core_(reinterpret_cast<unsigned char*>(out.data()), out.size()) {}

  Writer& begin_object() noexcept;
  Writer& end_object() noexcept;
  Writer& begin_array() noexcept;
  Writer& end_array() noexcept;
  /// The key of the next member; only directly inside an object, before each value.
  Writer& key(std::string_view k) noexcept;
  Writer& string(std::string_view s) noexcept;
  Writer& int64(std::int64_t v) noexcept;
  Writer& uint64(std::uint64_t v) noexcept;
  Writer& boolean(bool v) noexcept;
  Writer& null() noexcept;
  /// A byte string, written as a padded base64 string (RFC 4648 §4), JSON's usual form for bytes.
  Writer& bytes(std::span<const std::byte> b) noexcept;
  /// A value from a parsed document, copied verbatim (it is valid JSON by construction).
  Writer& value(const Value& v) noexcept;
  using WriterBase::member;  // member(key, string | bool | integer)

  /// The finished document: a view of the written part of `out`. Errors: the first error of any
  /// earlier call, or WriterMisuse when no value or an unclosed container was written.
  [[nodiscard]] Result<std::string_view> finish() const noexcept;
  /// The first error so far (`Errc::Ok` when none).
  [[nodiscard]] Error error() const noexcept { return core_.error(); }
  /// Bytes written so far.
  [[nodiscard]] std::size_t size() const noexcept { return core_.size(); }

 private:
  Writer& open(bool is_object) noexcept;
  Writer& close(bool is_object) noexcept;
  bool prefix(bool is_key) noexcept;
  bool put_string(std::string_view s) noexcept;

  doc::detail::WriterCore core_;
};

}  // namespace edgekit::doc::json
