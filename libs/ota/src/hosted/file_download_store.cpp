// FileDownloadStore: the partial image written in place, the record and bitmap in one
// checksummed state file written atomically (state_file.hpp).
#include <cstring>

#include "edgekit/ota/file_ports.hpp"
#include "state_file.hpp"

namespace edgekit::ota {
namespace {

constexpr detail::Magic kMagic = {'E', 'K', 'D', 'S'};  // edgekit download state

}  // namespace

FileDownloadStore::FileDownloadStore(std::string directory, Filesystem& fs)
    : dir_(std::move(directory)), fs_(&fs) {
  detail::make_directory(dir_);
}

Result<void, Errc> FileDownloadStore::save(std::span<const std::uint8_t> record,
                                           std::span<const std::uint8_t> bitmap) {
  if (record.size() > kMaxDownloadRecordSize) return fail(Errc::InvalidArgument);
  // The blocks the bitmap claims must be durable before the bitmap is.
  const std::string image = dir_ + "/download.img";
  if (fs_->size(image) && !fs_->sync(image)) return fail(Errc::StoreFailed);
  if (!detail::write_state(*fs_, dir_, dir_ + "/download.state", kMagic, record, bitmap)) {
    return fail(Errc::StoreFailed);
  }
  return {};
}

Result<StoredDownload, Errc> FileDownloadStore::load(std::span<std::uint8_t> record,
                                                     std::span<std::uint8_t> bitmap) {
  auto parts = detail::read_state(*fs_, dir_ + "/download.state", kMagic, Errc::NoDownload,
                                  Errc::StoreFailed);
  if (!parts) return fail(parts.error());
  if (parts->first.size() > kMaxDownloadRecordSize) return fail(Errc::RecordCorrupted);
  if (parts->first.size() > record.size() || parts->second.size() > bitmap.size()) {
    return fail(Errc::BufferTooSmall);
  }
  if (!parts->first.empty()) std::memcpy(record.data(), parts->first.data(), parts->first.size());
  if (!parts->second.empty()) {
    std::memcpy(bitmap.data(), parts->second.data(), parts->second.size());
  }
  return StoredDownload{parts->first.size(), parts->second.size()};
}

Result<void, Errc> FileDownloadStore::write_block(std::uint64_t offset,
                                                  std::span<const std::byte> data) {
  if (!fs_->write_at(dir_ + "/download.img", offset, data)) return fail(Errc::StoreFailed);
  return {};
}

Result<std::size_t, Errc> FileDownloadStore::read_image(std::uint64_t offset,
                                                        std::span<std::byte> out) {
  const std::string image = dir_ + "/download.img";
  if (!fs_->size(image)) return std::size_t{0};  // no block written yet
  auto n = fs_->read_at(image, offset, out);
  if (!n) return fail(Errc::StoreFailed);
  return *n;
}

Result<void, Errc> FileDownloadStore::clear() {
  // The state goes first: an image without a state is never trusted; a state without its image
  // would claim blocks that are gone.
  if (!fs_->remove(dir_ + "/download.state") || !fs_->sync(dir_) ||
      !fs_->remove(dir_ + "/download.img")) {
    return fail(Errc::StoreFailed);
  }
  return {};
}

}  // namespace edgekit::ota
