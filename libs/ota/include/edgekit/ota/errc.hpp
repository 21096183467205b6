#pragma once
/// \file
/// Errors of the OTA library: the stream service's rejections (each of the 13 codes of
/// aws-iot-protocols.md 3.4 with a value of its own), a job document that cannot be used (one
/// value per missing or invalid field, so that the FAILED reason names it), stream messages and
/// blocks that do not fit the download, image headers that are refused, caller errors, and the
/// hosted part's storage, slot and verification failures.
/// Pure: no heap; `to_string` returns static text.

#include <cstdint>
#include <string_view>
#include <system_error>

#include "edgekit/core/result.hpp"

namespace edgekit::ota {

/// Every error the OTA library returns. Values are stable; new ones go at the end of a group.
enum class Errc : std::uint8_t {
  Ok = 0,

  // --- The stream service rejected a request (…/rejected, field `o`; 3.4). --------------------
  InvalidTopic = 1,          ///< "InvalidTopic"
  InvalidJson,               ///< "InvalidJson"
  InvalidCbor,               ///< "InvalidCbor"
  InvalidRequest,            ///< "InvalidRequest" (e.g. a clientToken over 64 bytes)
  Unauthorized,              ///< "Unauthorized"
  BlockSizeOutOfBounds,      ///< "BlockSizeOutOfBounds": `l` outside 256-131072
  OffsetOutOfBounds,         ///< "OffsetOutOfBounds": `o` beyond the file or above 98304
  BlockCountLimitExceeded,   ///< "BlockCountLimitExceeded"
  BlockBitmapLimitExceeded,  ///< "BlockBitmapLimitExceeded": `b` of 12,288 bytes or more
  ResourceNotFound,          ///< "ResourceNotFound": no such stream or file
  VersionMismatch,           ///< "VersionMismatch": `s` is not the stream's version
  ETagMismatch,              ///< "ETagMismatch"
  InternalError,             ///< "InternalError"
  RejectedOther,             ///< a code that is none of the 13 above

  // --- The job document (afr_ota, 2.6). -------------------------------------------------------
  NotOtaJob = 30,        ///< the job document has no `afr_ota` object
  InvalidProtocols,      ///< `protocols` missing, not an array of "MQTT"/"HTTP", or empty
  InvalidStreamName,     ///< `streamname` missing for MQTT, not a string, or not a topic
                         ///< level of 1-128 bytes of `[a-zA-Z0-9:_-]`
  InvalidFiles,          ///< `files` missing, not an array, empty, or an entry not an object
  InvalidFilePath,       ///< `filepath` not a string, or longer than the caller's buffer
  InvalidFileSize,       ///< `filesize` missing, not an integer, 0 or above 2^32-1
  InvalidFileId,         ///< `fileid` missing, not an integer or outside 0-255
  InvalidCertFile,       ///< `certfile` not a string, or longer than the caller's buffer
  InvalidSignature,      ///< `sig-sha256-ecdsa` not a string, not base64, or longer
                         ///< than the caller's signature buffer
  InvalidAttr,           ///< `attr` not an integer in 0-2^32-1
  InvalidFileType,       ///< `fileType` not an integer in 0-255
  InvalidUpdateDataUrl,  ///< `update_data_url` missing for HTTP, or not a string
  InvalidAuthScheme,     ///< `auth_scheme` not a string
  MalformedJobDocument,  ///< `afr_ota` (or the document) is not an object

  // --- Stream messages and blocks. ------------------------------------------------------------
  MalformedMessage = 60,  ///< not a document of the format, not an object, a required field
                          ///< missing or of another type (JSON `p` not base64, CBOR `p` not a
                          ///< byte string, an integer where a string is due, ...)
  FileIdMismatch,         ///< a data block for another file id than the download's
  BlockOutOfRange,        ///< a block id at or beyond the file's block count
  BlockLengthMismatch,    ///< a block whose length is not the block size (or, for the last
                          ///< block, the file's remainder), or `l` not equal to `p`'s length
  BitmapMismatch,         ///< a persisted bitmap that does not fit the download (size, tail)

  // --- Image header (docs/ota.md). ------------------------------------------------------------
  BadMagic = 70,             ///< the first 4 bytes are not "EKOI"
  UnsupportedHeaderVersion,  ///< a header version this reader does not know
  MalformedHeader,           ///< flags, header size, device type or reserved bytes invalid
  ImageSizeMismatch,         ///< 64 + payload size is not the file size
  WrongDeviceType,           ///< the image is for another device type
  Downgrade,                 ///< the image's version is not greater than the running one

  // --- Caller errors (pure part). -------------------------------------------------------------
  BufferTooSmall = 90,  ///< the caller's buffer cannot hold the topic, document or value
  InvalidArgument,      ///< a thing or stream name that is not a valid topic level, a block
                        ///< size outside 256-131072, a zero file size, a file id above 255
  TopicMismatch,        ///< the topic is none of the stream topics asked about

  // --- Hosted part: storage, slots, verification. ---------------------------------------------
  StoreFailed = 110,   ///< the download store could not read or write (I/O error)
  RecordCorrupted,     ///< a stored record failed its checksum or layout check (torn write)
  NoDownload,          ///< no download state stored
  SlotFailed,          ///< the slot store could not read or write (I/O error)
  SlotStateInvalid,    ///< the slot operation does not fit the boot state (e.g. confirm
                       ///< with no image under test, mark_pending without a written image)
  NoImage,             ///< the slot holds no image
  TokenFailed,         ///< a PKCS#11 call failed (session, digest, find)
  KeyNotFound,         ///< no code-signing public key with the label/id asked for
  SignatureInvalid,    ///< the signature does not verify with the code-signing key
  MalformedSignature,  ///< a signature that is neither DER ECDSA nor raw 64-byte r||s
  ImageTruncated,      ///< the image is shorter than the size it must have
};

/// True for the values that stand for a …/rejected reply of the stream service.
[[nodiscard]] constexpr bool is_rejection(Errc e) noexcept {
  return e >= Errc::InvalidTopic && e <= Errc::RejectedOther;
}

/// The `Errc` of a stream error code (`o` of a …/rejected message; exact, case-sensitive strings
/// of aws-iot-protocols.md 3.4). Unknown codes are RejectedOther. Never returns Ok.
[[nodiscard]] Errc stream_errc(std::string_view code) noexcept;

/// A short, static, human-readable description of `e` (never allocates).
[[nodiscard]] const char* to_string(Errc e) noexcept;

/// The `std::error_category` of `Errc` (name "edgekit.ota"). Thread safe. Not pure
/// (std::string): in its own target, `edgekit::ota_error_category`.
[[nodiscard]] const std::error_category& ota_category() noexcept;

/// Wires `Errc` into `std::error_code`.
[[nodiscard]] inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), ota_category()};
}

}  // namespace edgekit::ota

template <>
struct std::is_error_code_enum<edgekit::ota::Errc> : std::true_type {};

/// `Errc::Ok` is zero: a `Result<void, Errc>` is the error alone (result.hpp).
template <>
inline constexpr bool edgekit::kZeroErrorMeansSuccess<edgekit::ota::Errc> = true;
