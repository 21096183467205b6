#pragma once
/// \file
/// The store's OTA records (aws-iot-protocols.md 2.6 and 3): images and streams.
///
/// An image is one firmware file as uploaded: its name and version (together its key), the
/// device type it is for, its bytes, size and SHA-256, and — once signed by fleetd's code-signing
/// key or uploaded pre-signed — its ECDSA P-256 / SHA-256 signature (DER, kept as base64: what the
/// AFR_OTA job document carries) and the signer's certificate (PEM). The bytes never change;
/// only the signature may be added later.
///
/// A stream is AWS's CreateStream: an id, a version (1 at creation), a description, a block
/// size hint (what fleetd's OTA updates tell devices to ask for), and up to kMaxStreamFiles
/// files, each a file id (0-255, the `f` of stream requests) naming an image. An image a stream
/// names cannot be deleted (Conflict).
///
/// Kept beside the registry's operations (store.hpp), over the same transaction, in the tables
/// of schema migration 8. Thread safety: that of `Tx`.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"

namespace edgekit::fleetd {

/// The largest image: AWS's 24 MB stream file limit (98304 blocks of 256 bytes, 3.4) would be
/// 24 MiB; fleetd keeps to 16 MiB so that an image, its base64 form and a decoded copy fit a
/// request's memory comfortably.
inline constexpr std::size_t kMaxImageSize = 16 * 1024 * 1024;
/// AWS's CreateStream limits: 50 files, a description of 2028 characters.
inline constexpr std::size_t kMaxStreamFiles = 50;
inline constexpr std::size_t kMaxStreamDescription = 2028;
/// Stream block sizes (3.2, `l`).
inline constexpr std::int64_t kMinBlockSize = 256;
inline constexpr std::int64_t kMaxBlockSize = 131072;

struct OtaImage {
  std::string name;     ///< 1-128 of [a-zA-Z0-9_.-]
  std::string version;  ///< 1-64 of [a-zA-Z0-9_.+-], e.g. "1.2.0"
  std::string device_type;  ///< free text (at most 128 bytes); empty: any
  std::string bytes;    ///< the image; empty when read without its bytes
  std::int64_t size = 0;
  std::string sha256;   ///< lower-case hex of the bytes' SHA-256
  std::string signature;  ///< base64 of the DER ECDSA signature; empty: unsigned
  std::string signer_certificate;  ///< PEM; empty: unsigned
  std::int64_t created_at = 0;
};

struct StreamFile {
  std::int64_t file_id = 0;  ///< 0-255
  std::string image_name;
  std::string image_version;
};

struct OtaStream {
  std::string stream_id;  ///< 1-128 of [a-zA-Z0-9_-] (AWS's StreamId)
  std::int64_t version = 1;
  std::string description;
  std::int64_t block_size = 4096;  ///< kMinBlockSize..kMaxBlockSize
  std::vector<StreamFile> files;   ///< by file id
  std::int64_t created_at = 0;
};

/// Records a new image (created_at now). InvalidArgument (name, version, device type, size
/// over kMaxImageSize or not that of the bytes, a signature without a certificate or the other
/// way round); AlreadyExists (same name and version).
[[nodiscard]] Res<OtaImage> create_image(Tx& tx, const OtaImage& image);
/// The image, with its bytes when `with_bytes`. NotFound.
[[nodiscard]] Res<OtaImage> get_image(Tx& tx, std::string_view name, std::string_view version,
                                      bool with_bytes = true);
/// Images without their bytes in (name, version) order; `page.after` is "name/version".
[[nodiscard]] Res<Page<OtaImage>> list_images(Tx& tx, const PageRequest& page);
/// Sets the image's signature (base64 DER) and signer certificate (PEM), replacing any.
/// NotFound.
[[nodiscard]] Res<OtaImage> set_image_signature(Tx& tx, std::string_view name,
                                                std::string_view version,
                                                std::string_view signature,
                                                std::string_view certificate);
/// NotFound; Conflict while a stream names it.
[[nodiscard]] Res<void> delete_image(Tx& tx, std::string_view name, std::string_view version);

/// Records a new stream at version 1. InvalidArgument (id, description, block size, no files
/// or more than kMaxStreamFiles, a file id outside 0-255 or given twice); NotFound (an image);
/// AlreadyExists.
[[nodiscard]] Res<OtaStream> create_stream(Tx& tx, OtaStream stream);
/// The stream with its files. NotFound.
[[nodiscard]] Res<OtaStream> get_stream(Tx& tx, std::string_view stream_id);
/// Streams with their files, in id order.
[[nodiscard]] Res<Page<OtaStream>> list_streams(Tx& tx, const PageRequest& page);
/// NotFound.
[[nodiscard]] Res<void> delete_stream(Tx& tx, std::string_view stream_id);

}  // namespace edgekit::fleetd
