// to_string(Errc), in a file of its own: its strings share one mergeable .rodata section per
// object file, which --gc-sections keeps whole when any string in it is used; apart from
// stream_errc's codes, a device that never prints an Errc links none of them.
#include "edgekit/ota/errc.hpp"

namespace edgekit::ota {

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::Ok:
      return "success";
    case Errc::InvalidTopic:
      return "rejected: InvalidTopic";
    case Errc::InvalidJson:
      return "rejected: InvalidJson";
    case Errc::InvalidCbor:
      return "rejected: InvalidCbor";
    case Errc::InvalidRequest:
      return "rejected: InvalidRequest";
    case Errc::Unauthorized:
      return "rejected: Unauthorized";
    case Errc::BlockSizeOutOfBounds:
      return "rejected: BlockSizeOutOfBounds";
    case Errc::OffsetOutOfBounds:
      return "rejected: OffsetOutOfBounds";
    case Errc::BlockCountLimitExceeded:
      return "rejected: BlockCountLimitExceeded";
    case Errc::BlockBitmapLimitExceeded:
      return "rejected: BlockBitmapLimitExceeded";
    case Errc::ResourceNotFound:
      return "rejected: ResourceNotFound";
    case Errc::VersionMismatch:
      return "rejected: VersionMismatch";
    case Errc::ETagMismatch:
      return "rejected: ETagMismatch";
    case Errc::InternalError:
      return "rejected: InternalError";
    case Errc::RejectedOther:
      return "rejected";
    case Errc::NotOtaJob:
      return "job document has no afr_ota";
    case Errc::InvalidProtocols:
      return "afr_ota.protocols missing or invalid";
    case Errc::InvalidStreamName:
      return "afr_ota.streamname missing or invalid";
    case Errc::InvalidFiles:
      return "afr_ota.files missing or invalid";
    case Errc::InvalidFilePath:
      return "files[].filepath invalid";
    case Errc::InvalidFileSize:
      return "files[].filesize missing or invalid";
    case Errc::InvalidFileId:
      return "files[].fileid missing or invalid";
    case Errc::InvalidCertFile:
      return "files[].certfile invalid";
    case Errc::InvalidSignature:
      return "files[].sig-sha256-ecdsa invalid";
    case Errc::InvalidAttr:
      return "files[].attr invalid";
    case Errc::InvalidFileType:
      return "files[].fileType invalid";
    case Errc::InvalidUpdateDataUrl:
      return "files[].update_data_url missing or invalid";
    case Errc::InvalidAuthScheme:
      return "files[].auth_scheme invalid";
    case Errc::MalformedJobDocument:
      return "job document is not an object";
    case Errc::MalformedMessage:
      return "malformed stream message";
    case Errc::FileIdMismatch:
      return "block of another file";
    case Errc::BlockOutOfRange:
      return "block id out of range";
    case Errc::BlockLengthMismatch:
      return "block length mismatch";
    case Errc::BitmapMismatch:
      return "stored bitmap does not fit the download";
    case Errc::BadMagic:
      return "not an edgekit image";
    case Errc::UnsupportedHeaderVersion:
      return "unsupported image header version";
    case Errc::MalformedHeader:
      return "malformed image header";
    case Errc::ImageSizeMismatch:
      return "image size does not match the file size";
    case Errc::WrongDeviceType:
      return "image for another device type";
    case Errc::Downgrade:
      return "image version not newer than the running one";
    case Errc::BufferTooSmall:
      return "buffer too small";
    case Errc::InvalidArgument:
      return "invalid argument";
    case Errc::TopicMismatch:
      return "not a stream topic";
    case Errc::StoreFailed:
      return "download store failed";
    case Errc::RecordCorrupted:
      return "stored record corrupted";
    case Errc::NoDownload:
      return "no download stored";
    case Errc::SlotFailed:
      return "slot store failed";
    case Errc::SlotStateInvalid:
      return "operation does not fit the boot state";
    case Errc::NoImage:
      return "slot holds no image";
    case Errc::TokenFailed:
      return "PKCS#11 token operation failed";
    case Errc::KeyNotFound:
      return "code-signing key not found";
    case Errc::SignatureInvalid:
      return "signature invalid";
    case Errc::MalformedSignature:
      return "malformed signature";
    case Errc::ImageTruncated:
      return "image truncated";
  }
  return "unknown ota error";
}

}  // namespace edgekit::ota
