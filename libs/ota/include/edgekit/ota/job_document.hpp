#pragma once
/// \file
/// The AWS OTA job document (`afr_ota`, aws-iot-protocols.md 2.6), read into caller-owned storage:
///
///   {"afr_ota": {"protocols": ["MQTT"], "streamname": "AFR_OTA-1b2c...",
///                "files": [{"filepath": "/fw", "filesize": 181, "fileid": 0,
///                           "certfile": "codesign.crt", "sig-sha256-ecdsa": "MEUCIQ...",
///                           "attr": 0, "fileType": 0,
///                           "update_data_url": "https://...", "auth_scheme":
///                           "aws.s3.presigned"}]}}
///
/// Keys exactly as the FreeRTOS OTA agent reads them. Each missing or invalid field has its own
/// `Errc` (errc.hpp), so that the job's FAILED reason names it.
/// Pure: no heap, no I/O. Strings are views into the document where they can be read in place
/// (JSON strings without escapes) or into the caller's `scratch` where they must be unescaped;
/// the signature is decoded from base64 into the caller's `signature` buffer. Views stay valid
/// while the document text, `scratch` and `signature` are unchanged. Unknown keys are ignored.
/// Thread safety: none needed (no state).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/doc/json.hpp"
#include "edgekit/ota/errc.hpp"

namespace edgekit::ota {

/// The transports a job allows (`protocols`), as bits.
enum Protocol : std::uint8_t { kProtocolMqtt = 1, kProtocolHttp = 2 };

/// The longest DER ECDSA P-256 signature (72 bytes) with room to spare: what a signature buffer
/// needs for `sig-sha256-ecdsa`.
inline constexpr std::size_t kMaxSignatureSize = 80;

/// One entry of `files`. Optional fields read empty / 0 when absent.
struct OtaFile {
  std::string_view path;       ///< `filepath` (optional)
  std::uint32_t size = 0;      ///< `filesize` (required, 1 .. 2^32-1)
  std::uint8_t id = 0;         ///< `fileid` (required, 0-255): `f` of stream requests
  std::string_view cert_file;  ///< `certfile` (optional)
  std::span<const std::byte>
      signature;                     ///< `sig-sha256-ecdsa`, decoded (optional; empty if absent)
  std::uint32_t attr = 0;            ///< `attr` (optional)
  std::uint8_t file_type = 0;        ///< `fileType` (optional; 0 = firmware)
  std::string_view update_data_url;  ///< `update_data_url` (required when HTTP is allowed)
  std::string_view auth_scheme;      ///< `auth_scheme` (optional)
};

/// What a device needs of an OTA job: its transports, its stream and one of its files.
struct OtaJob {
  std::uint8_t protocols = 0;    ///< Protocol bits, at least one
  std::string_view stream_name;  ///< `streamname` (required when MQTT is allowed)
  std::size_t file_count = 0;    ///< entries in `files`
  OtaFile file;                  ///< the entry asked for (`file_index`)
};

/// Reads the OTA part of `job_document` (the job document object, which holds `afr_ota`), and
/// its file `file_index` (the agent processes one file at a time).
/// Rules: `protocols` a non-empty array of "MQTT" / "HTTP" (nothing else); `streamname` a valid
/// stream id when MQTT is allowed; `files` a non-empty array of objects, `file_index` in range;
/// the file's `filesize` and `fileid` integers in range; `update_data_url` a string when HTTP is
/// allowed; present optional fields of their types.
/// Errors: MalformedJobDocument (`job_document` or `afr_ota` not an object), NotOtaJob,
/// InvalidProtocols, InvalidStreamName, InvalidFiles (also `file_index` out of range),
/// InvalidFilePath, InvalidFileSize, InvalidFileId, InvalidCertFile, InvalidSignature,
/// InvalidAttr, InvalidFileType, InvalidUpdateDataUrl, InvalidAuthScheme (a string field that
/// does not fit `scratch` is that field's error; a signature that does not fit `signature` is
/// InvalidSignature).
[[nodiscard]] Result<OtaJob, Errc> read_ota_job(const doc::json::Value& job_document,
                                                std::size_t file_index, std::span<char> scratch,
                                                std::span<std::byte> signature) noexcept;

/// The same from the job document's JSON text (parsed here; the views point into `text`).
/// Errors: MalformedJobDocument (not JSON), then as above.
[[nodiscard]] Result<OtaJob, Errc> read_ota_job(std::string_view text, std::size_t file_index,
                                                std::span<char> scratch,
                                                std::span<std::byte> signature) noexcept;

}  // namespace edgekit::ota
