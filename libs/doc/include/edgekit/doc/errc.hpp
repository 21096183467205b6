#pragma once
/// \file
/// Errors of the document codecs (JSON and CBOR). Every failure is an `Error`: the cause (`Errc`)
/// and the byte offset in the document or output buffer where it was found, so that a device log
/// line such as "InvalidEscape at 117" is enough to find the fault in a captured payload.

#include <cstddef>
#include <cstdint>
#include <system_error>

#include "edgekit/core/result.hpp"

namespace edgekit::doc {

/// Every cause a codec call can report. Values are stable; new ones are added at the end of a
/// group. Where a value enforces a rule of RFC 8259 (JSON) or RFC 8949 (CBOR) its comment cites it.
enum class Errc : std::uint8_t {
  Ok = 0,

  // --- Malformed input: the document breaks its format (both readers) --------------------------
  Empty = 1,                  ///< no value at all (empty input or whitespace only)
  UnexpectedEnd,              ///< the document stops inside a value
  UnexpectedCharacter,        ///< JSON: a byte the grammar does not allow here (RFC 8259 §2)
  TrailingData,               ///< bytes after the one top-level value (JSON allows one NUL byte)
  TooDeep,                    ///< arrays/objects nested deeper than the caller's `max_depth`
  TrailingComma,              ///< JSON: `,` before `]` or `}` (RFC 8259 §4, §5)
  LeadingZero,                ///< JSON: a number such as `01` or `-00` (RFC 8259 §6)
  InvalidNumber,              ///< JSON: `-`, `1.`, `1e`, `.5`, `+1` and the like (RFC 8259 §6)
  ControlCharacterInString,   ///< JSON: an unescaped byte below 0x20 in a string (RFC 8259 §7)
  InvalidEscape,              ///< JSON: `\` followed by anything but `"\/bfnrtu` (RFC 8259 §7)
  InvalidUnicodeEscape,       ///< JSON: `\u` not followed by four hex digits (RFC 8259 §7)
  UnpairedSurrogate,          ///< JSON: a `\uD800`-`\uDFFF` escape that is not a proper pair
  InvalidUtf8,                ///< a string is not well-formed UTF-8 (RFC 8259 §8.1, RFC 8949 §3.1)
  DuplicateKey,               ///< the same key twice in one object/map (RFC 8949 §5.6; see below)
  ReservedAdditionalInfo,     ///< CBOR: additional information 28-30 (RFC 8949 §3)
  IndefiniteLength,           ///< CBOR: an indefinite-length item (refused, see cbor.hpp)
  UnsupportedTag,             ///< CBOR: a tag, major type 6 (refused, see cbor.hpp)
  UnsupportedFloat,           ///< CBOR: a half, single or double float (refused, see cbor.hpp)
  UnsupportedSimpleValue,     ///< CBOR: a simple value other than false, true, null
  NonPreferredEncoding,       ///< CBOR: an argument not in its shortest form (RFC 8949 §4.2.1)
  NonTextKey,                 ///< CBOR: a map key that is not a text string
  DocumentTooLarge,           ///< the document is longer than the reader's offsets can hold

  // --- Reading a valid document: what the caller asked for is not there ------------------------
  NotFound = 40,              ///< no member with that key, no element at that index
  WrongType,                  ///< e.g. `as_bool()` on a string; `find()` on an array
  StringHasEscapes,           ///< JSON: a zero-copy view was asked of a string with escapes
  NotAnInteger,               ///< JSON: the number has a fraction or an exponent
  IntegerOutOfRange,          ///< the integer does not fit the requested type (never wrapped)
  InvalidPath,                ///< an empty segment in a dotted path (`a..b`, `.a`, `a.`)
  InvalidBase64,              ///< JSON: a string that is not padded RFC 4648 §4 base64

  // --- Writers: the caller's buffer or call sequence -------------------------------------------
  BufferTooSmall = 60,        ///< the output (or copy-out) buffer cannot hold the result
  WriterMisuse,               ///< a call out of sequence: a value where a key is due, an end
                              ///< that matches no begin, a key outside an object, finish() with
                              ///< open containers, a second top-level value
  WriterTooDeep,              ///< more than `kMaxWriterDepth` nested containers
  InvalidArgument,            ///< text given to a writer is not well-formed UTF-8
};

/// A failure: its cause and where. `offset` counts bytes from the start of the document (readers)
/// or of the output buffer (writers): the position of the offending byte for malformed input, the
/// start of the value that was asked for for lookups, the number of bytes written so far for
/// writer errors.
struct Error {
  Errc code = Errc::Ok;
  std::size_t offset = 0;
  friend constexpr bool operator==(const Error&, const Error&) = default;
};

/// Shorthand: every fallible call of this library returns `Result<T>`.
template <class T>
using Result = edgekit::Result<T, Error>;

/// A short, static, human-readable description of `e` (never allocates).
[[nodiscard]] const char* to_string(Errc e) noexcept;

/// The `std::error_category` of `Errc` ("edgekit.doc"), for code that wants `std::error_code`.
/// Defined in its own translation unit (target edgekit::doc_error_category) so that a bare-metal
/// image that never builds a `std::error_code` does not link `std::string`.
[[nodiscard]] const std::error_category& doc_category() noexcept;

/// Wires `Errc` into `std::error_code` (the offset is not carried: log it beside the code).
[[nodiscard]] inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), doc_category()};
}

}  // namespace edgekit::doc

template <>
struct std::is_error_code_enum<edgekit::doc::Errc> : std::true_type {};

/// `Error{}` (Ok at offset 0) means success: `Result<T>` then holds no extra flag (result.hpp).
template <>
inline constexpr bool edgekit::kZeroErrorMeansSuccess<edgekit::doc::Error> = true;
