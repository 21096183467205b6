#include "edgekit/ota/download.hpp"

#include <algorithm>
#include <charconv>

namespace edgekit::ota {
namespace {

std::uint32_t blocks_of(std::uint32_t file_size, std::uint32_t block_size) noexcept {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(file_size) + block_size - 1) /
                                    block_size);
}

bool valid_shape(std::uint32_t file_size, std::uint32_t block_size) noexcept {
  return file_size > 0 && block_size >= kMinBlockSize && block_size <= kMaxBlockSize;
}

// The mask of the used bits of the last byte of a bitmap of `blocks` bits.
std::uint8_t last_byte_mask(std::uint32_t blocks) noexcept {
  const unsigned used = blocks % 8;
  return used == 0 ? 0xFF : static_cast<std::uint8_t>((1u << used) - 1);
}

}  // namespace

void BlockBitmap::set_all() noexcept {
  if (bytes_.empty()) return;
  std::fill(bytes_.begin(), bytes_.end(), std::uint8_t{0xFF});
  bytes_.back() = last_byte_mask(blocks_);
}

bool BlockBitmap::tail_clear() const noexcept {
  return bytes_.empty() || (bytes_.back() & ~last_byte_mask(blocks_)) == 0;
}

std::uint32_t BlockBitmap::count() const noexcept {
  std::uint32_t n = 0;
  for (std::uint8_t b : bytes_) n += static_cast<std::uint32_t>(__builtin_popcount(b));
  return n;
}

std::uint32_t BlockBitmap::find_next(std::uint32_t from) const noexcept {
  std::uint32_t k = from;
  while (k < blocks_) {
    const std::uint8_t b = static_cast<std::uint8_t>(bytes_[k / 8] >> (k % 8));
    if (b != 0) return k + static_cast<std::uint32_t>(__builtin_ctz(b));
    k = (k / 8 + 1) * 8;  // the rest of this byte is clear: next byte
  }
  return blocks_;
}

std::size_t Download::bitmap_size(std::uint32_t file_size, std::uint32_t block_size) noexcept {
  if (!valid_shape(file_size, block_size)) return 0;
  return BlockBitmap::bytes_for(blocks_of(file_size, block_size));
}

Result<Download, Errc> Download::over(std::uint32_t file_size, std::uint32_t block_size,
                                      std::span<std::uint8_t> bitmap) noexcept {
  if (!valid_shape(file_size, block_size)) return fail(Errc::InvalidArgument);
  const std::uint32_t blocks = blocks_of(file_size, block_size);
  if (bitmap.size() < BlockBitmap::bytes_for(blocks)) return fail(Errc::BufferTooSmall);
  return Download(file_size, block_size, BlockBitmap(bitmap, blocks));
}

Result<Download, Errc> Download::start(std::uint32_t file_size, std::uint32_t block_size,
                                       std::span<std::uint8_t> bitmap) noexcept {
  auto d = over(file_size, block_size, bitmap);
  if (d) d->bits_.set_all();
  return d;
}

Result<Download, Errc> Download::resume(std::uint32_t file_size, std::uint32_t block_size,
                                        std::span<std::uint8_t> bitmap) noexcept {
  auto d = over(file_size, block_size, bitmap);
  if (!d) return d;
  if (!d->bits_.tail_clear()) return fail(Errc::BitmapMismatch);
  d->received_ = d->block_count() - d->bits_.count();
  return d;
}

std::uint32_t Download::block_length(std::uint32_t i) const noexcept {
  if (i + 1 < block_count()) return block_size_;
  return file_size_ - block_offset(i);
}

Result<StreamWindow, Errc> Download::next_stream_request(
    std::uint32_t max_blocks, std::span<std::uint8_t> window_buffer) const noexcept {
  if (complete() || max_blocks == 0) return fail(Errc::InvalidArgument);
  const std::uint32_t first = first_missing();
  const std::uint32_t offset = std::min(first, kMaxBlockOffset);
  // The bits the window may span: the caller's buffer, and under 12,288 bytes (3.3).
  const std::uint64_t max_bits =
      static_cast<std::uint64_t>(std::min(window_buffer.size(), kMaxBitmapBytes)) * 8;
  if (first - offset >= max_bits) return fail(Errc::BufferTooSmall);
  const std::uint32_t cap = std::min(max_blocks, kMaxBytesPerRequest / block_size_);
  // Collect up to `cap` missing blocks from `first`, within the reach of the window.
  std::uint32_t n = 0;
  std::uint32_t last = first;
  for (std::uint32_t k = first; k < block_count() && n < cap && k - offset < max_bits;
       k = bits_.find_next(k + 1)) {
    last = k;
    ++n;
  }
  const std::size_t bytes = BlockBitmap::bytes_for(last - offset + 1);
  BlockBitmap window(window_buffer, last - offset + 1);
  std::fill(window_buffer.begin(), window_buffer.begin() + static_cast<std::ptrdiff_t>(bytes),
            std::uint8_t{0});
  for (std::uint32_t k = first; k <= last; k = bits_.find_next(k + 1)) window.set(k - offset);
  return StreamWindow{offset, n, window_buffer.first(bytes)};
}

Result<ByteRange, Errc> Download::next_range(std::uint32_t max_bytes) const noexcept {
  if (complete()) return fail(Errc::InvalidArgument);
  const std::uint32_t first = first_missing();
  const std::uint32_t cap = std::max<std::uint32_t>(1, max_bytes / block_size_);
  ByteRange r{first, 0, block_offset(first), 0};
  for (std::uint32_t k = first; k < block_count() && bits_.test(k) && r.block_count < cap; ++k) {
    ++r.block_count;
    r.byte_count += block_length(k);
  }
  return r;
}

Result<BlockOutcome, Errc> Download::accept_block(std::uint32_t block_id,
                                                  std::size_t length) noexcept {
  if (block_id >= block_count()) return fail(Errc::BlockOutOfRange);
  if (length != block_length(block_id)) return fail(Errc::BlockLengthMismatch);
  if (!bits_.test(block_id)) {
    ++duplicates_;
    return BlockOutcome::Duplicate;
  }
  bits_.clear(block_id);
  ++received_;
  return BlockOutcome::New;
}

Result<BlockOutcome, Errc> Download::accept(const DataBlock& block,
                                            std::uint32_t file_id) noexcept {
  if (block.file_id != file_id) return fail(Errc::FileIdMismatch);
  return accept_block(block.block_id, block.payload.size());
}

void Download::forget_block(std::uint32_t i) noexcept {
  if (i >= block_count() || bits_.test(i)) return;
  bits_.set(i);
  --received_;
}

Result<std::string_view, Errc> Download::progress(std::span<char> out) const noexcept {
  char* const begin = out.data();
  char* const end = begin + out.size();
  auto r = std::to_chars(begin, end, received_);
  if (r.ec != std::errc{} || r.ptr == end) return fail(Errc::BufferTooSmall);
  *r.ptr++ = '/';
  r = std::to_chars(r.ptr, end, block_count());
  if (r.ec != std::errc{}) return fail(Errc::BufferTooSmall);
  return std::string_view(begin, static_cast<std::size_t>(r.ptr - begin));
}

}  // namespace edgekit::ota
