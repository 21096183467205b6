// Names of the codec errors (static strings: no allocation, usable on a microcontroller).
#include "edgekit/doc/errc.hpp"

namespace edgekit::doc {

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::Ok: return "ok";
    case Errc::Empty: return "empty document";
    case Errc::UnexpectedEnd: return "unexpected end of document";
    case Errc::UnexpectedCharacter: return "unexpected character";
    case Errc::TrailingData: return "data after the document";
    case Errc::TooDeep: return "nested too deep";
    case Errc::TrailingComma: return "trailing comma";
    case Errc::LeadingZero: return "number with a leading zero";
    case Errc::InvalidNumber: return "invalid number";
    case Errc::ControlCharacterInString: return "control character in string";
    case Errc::InvalidEscape: return "invalid escape";
    case Errc::InvalidUnicodeEscape: return "invalid \\u escape";
    case Errc::UnpairedSurrogate: return "unpaired surrogate";
    case Errc::InvalidUtf8: return "invalid UTF-8";
    case Errc::DuplicateKey: return "duplicate key";
    case Errc::ReservedAdditionalInfo: return "reserved additional information";
    case Errc::IndefiniteLength: return "indefinite length not supported";
    case Errc::UnsupportedTag: return "tag not supported";
    case Errc::UnsupportedFloat: return "float not supported";
    case Errc::UnsupportedSimpleValue: return "simple value not supported";
    case Errc::NonPreferredEncoding: return "not the shortest encoding";
    case Errc::NonTextKey: return "map key is not text";
    case Errc::DocumentTooLarge: return "document too large";
    case Errc::NotFound: return "not found";
    case Errc::WrongType: return "wrong type";
    case Errc::StringHasEscapes: return "string has escapes";
    case Errc::NotAnInteger: return "not an integer";
    case Errc::IntegerOutOfRange: return "integer out of range";
    case Errc::InvalidPath: return "invalid path";
    case Errc::InvalidBase64: return "invalid base64";
    case Errc::BufferTooSmall: return "buffer too small";
    case Errc::WriterMisuse: return "writer call out of sequence";
    case Errc::WriterTooDeep: return "writer nested too deep";
    case Errc::InvalidArgument: return "invalid argument";
  }
  return "unknown error";
}

}  // namespace edgekit::doc
