#pragma once
/// \file
/// The block bitmap and the download state machine, for MQTT streams and HTTP ranges alike.
///
/// A file of `file_size` bytes is cut into blocks of `block_size` bytes (the last one shorter
/// when the size is not a multiple). The bitmap has one bit per block, in the layout of
/// aws-iot-protocols.md 3.3: block k is bit `k % 8` (mask `1 << (k % 8)`, LSB first) of byte
/// `k / 8`, byte 0 first; a set bit means "still wanted", the unused tail bits of the last byte
/// are clear. That is the FreeRTOS OTA agent's layout, and the layout of a GetStream `b`.
///
/// `Download` keeps no memory of its own: the bitmap lives in the caller's buffer, which is also
/// what the caller persists (DownloadStore) so that a download resumes after a reboot at the
/// first missing block and no block is fetched twice. The data of a block never passes through
/// it: the caller writes an accepted block at `block_offset(i)` itself.
///
///   auto d = Download::start(file_size, 4096, bitmap_buffer);   // or resume(...)
///   while (!d->complete()) {
///     auto w = d->next_stream_request(max_blocks, window);   // o, n, b of a GetStream
///     ... publish, then for each data message:
///     auto outcome = d->accept(block, file_id);              // checks f, i, l
///     if (outcome == BlockOutcome::New) { store.write_block(...); store.save(bitmap); }
///   }
///
/// Pure: no heap, no I/O, no clock. Thread safety: none (one owner at a time).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/ota/errc.hpp"
#include "edgekit/ota/stream.hpp"

namespace edgekit::ota {

/// A bitmap of `blocks` bits over the caller's bytes (see the file comment for the layout).
/// Thread safety: none. Ownership: views the caller's memory, which must outlive it.
class BlockBitmap {
 public:
  /// Bytes needed for `blocks` bits.
  [[nodiscard]] static constexpr std::size_t bytes_for(std::uint32_t blocks) noexcept {
    return (static_cast<std::size_t>(blocks) + 7) / 8;
  }

  BlockBitmap() = default;
  /// Views the first `bytes_for(blocks)` bytes of `bytes` (the caller checks the size).
  BlockBitmap(std::span<std::uint8_t> bytes, std::uint32_t blocks) noexcept
      : bytes_(bytes.first(bytes_for(blocks))), blocks_(blocks) {}

  [[nodiscard]] std::uint32_t blocks() const noexcept { return blocks_; }
  /// Every block wanted: all bits set, tail bits clear.
  void set_all() noexcept;
  [[nodiscard]] bool test(std::uint32_t k) const noexcept {
    return (bytes_[k / 8] & (1u << (k % 8))) != 0;
  }
  void set(std::uint32_t k) noexcept { bytes_[k / 8] |= static_cast<std::uint8_t>(1u << (k % 8)); }
  void clear(std::uint32_t k) noexcept {
    bytes_[k / 8] &= static_cast<std::uint8_t>(~(1u << (k % 8)));
  }
  /// Whether the unused bits of the last byte are clear (a stored bitmap's sanity check).
  [[nodiscard]] bool tail_clear() const noexcept;
  /// Set bits.
  [[nodiscard]] std::uint32_t count() const noexcept;
  /// The first set bit at or after `from`, or `blocks()` when there is none.
  [[nodiscard]] std::uint32_t find_next(std::uint32_t from) const noexcept;
  /// The bytes.
  [[nodiscard]] std::span<const std::uint8_t> bytes() const noexcept { return bytes_; }

 private:
  std::span<std::uint8_t> bytes_;
  std::uint32_t blocks_ = 0;
};

/// What accepting a block did.
enum class BlockOutcome : std::uint8_t {
  New,        ///< first time: its bit was cleared; write the data, then persist the bitmap
  Duplicate,  ///< already received: ignored (counted in `duplicate_blocks()`)
};

/// The `o`, `n` and `b` of the next GetStream request.
struct StreamWindow {
  std::uint32_t offset = 0;              ///< `o`
  std::uint32_t block_count = 0;         ///< `n`: the wanted blocks in `bitmap`
  std::span<const std::uint8_t> bitmap;  ///< `b`, relative to `offset`, in the caller's buffer
};

/// The next HTTP range: `block_count` consecutive missing blocks from `first_block`, which are
/// bytes `first_byte` .. `first_byte + byte_count - 1` of the file (HTTP `Range: bytes=a-b`).
struct ByteRange {
  std::uint32_t first_block = 0;
  std::uint32_t block_count = 0;
  std::uint32_t first_byte = 0;
  std::uint32_t byte_count = 0;
};

/// The state of one file's download. A value type over the caller's bitmap buffer.
class Download {
 public:
  /// The bitmap bytes a download of `file_size` bytes in `block_size` blocks needs (0 for
  /// arguments `start` refuses).
  [[nodiscard]] static std::size_t bitmap_size(std::uint32_t file_size,
                                               std::uint32_t block_size) noexcept;

  /// A new download: every block wanted (the first `bitmap_size()` bytes of `bitmap` are set).
  /// Errors: InvalidArgument (file size 0; block size outside 256-131072), BufferTooSmall
  /// (`bitmap` smaller than `bitmap_size()`).
  [[nodiscard]] static Result<Download, Errc> start(std::uint32_t file_size,
                                                    std::uint32_t block_size,
                                                    std::span<std::uint8_t> bitmap) noexcept;
  /// Continues a download whose bitmap the caller stored: `bitmap` holds it (its first
  /// `bitmap_size()` bytes). Errors: as `start`, and BitmapMismatch (a tail bit set: not a
  /// bitmap of this download).
  [[nodiscard]] static Result<Download, Errc> resume(std::uint32_t file_size,
                                                     std::uint32_t block_size,
                                                     std::span<std::uint8_t> bitmap) noexcept;

  [[nodiscard]] std::uint32_t file_size() const noexcept { return file_size_; }
  [[nodiscard]] std::uint32_t block_size() const noexcept { return block_size_; }
  [[nodiscard]] std::uint32_t block_count() const noexcept { return bits_.blocks(); }
  /// Distinct blocks received (restored by `resume`).
  [[nodiscard]] std::uint32_t received_blocks() const noexcept { return received_; }
  /// Blocks received again since this object was made (not persisted: a diagnostic).
  [[nodiscard]] std::uint32_t duplicate_blocks() const noexcept { return duplicates_; }
  [[nodiscard]] bool complete() const noexcept { return received_ == bits_.blocks(); }
  /// The first missing block (`block_count()` when complete).
  [[nodiscard]] std::uint32_t first_missing() const noexcept { return bits_.find_next(0); }
  /// Where block `i` starts in the file, and its length (the last block may be shorter).
  [[nodiscard]] std::uint32_t block_offset(std::uint32_t i) const noexcept {
    return i * block_size_;
  }
  [[nodiscard]] std::uint32_t block_length(std::uint32_t i) const noexcept;
  /// The bitmap, as the caller persists it.
  [[nodiscard]] std::span<const std::uint8_t> bitmap() const noexcept { return bits_.bytes(); }
  [[nodiscard]] bool missing(std::uint32_t i) const noexcept {
    return i < block_count() && bits_.test(i);
  }

  /// The next GetStream window: `o` is the first missing block (capped at 98304, the service's
  /// limit: blocks past it are then reached through the bitmap), `n` the missing blocks asked
  /// for: at most `max_blocks`, at most 128 KB of data (131072 / block size), and only as many
  /// as a bitmap of `window_buffer`'s size (and under 12,288 bytes) reaches. `b` is written into
  /// `window_buffer`: the missing blocks asked for set, everything else (received blocks, tail)
  /// clear; it ends at the last block asked for.
  /// Errors: InvalidArgument (complete: nothing to ask for; `max_blocks` 0), BufferTooSmall
  /// (`window_buffer` empty, or too small to reach the first missing block from `o`).
  [[nodiscard]] Result<StreamWindow, Errc> next_stream_request(
      std::uint32_t max_blocks, std::span<std::uint8_t> window_buffer) const noexcept;

  /// The next HTTP range: the run of consecutive missing blocks from the first missing one, at
  /// most `max_bytes` (rounded down to whole blocks, but always at least one block).
  /// Errors: InvalidArgument (complete).
  [[nodiscard]] Result<ByteRange, Errc> next_range(std::uint32_t max_bytes) const noexcept;

  /// Takes block `block_id` of `length` bytes: New (its bit cleared) or Duplicate (counted,
  /// nothing else changes). Errors (nothing changes): BlockOutOfRange (beyond the last block),
  /// BlockLengthMismatch (not `block_length(block_id)`).
  [[nodiscard]] Result<BlockOutcome, Errc> accept_block(std::uint32_t block_id,
                                                        std::size_t length) noexcept;
  /// `accept_block` for a stream data message, after checking that it is for `file_id`.
  /// Errors: FileIdMismatch, then as `accept_block`.
  [[nodiscard]] Result<BlockOutcome, Errc> accept(const DataBlock& block,
                                                  std::uint32_t file_id) noexcept;
  /// Marks block `i` missing again (its data could not be stored). No-op when out of range or
  /// already missing.
  void forget_block(std::uint32_t i) noexcept;

  /// "<received>/<total>", the FreeRTOS agent's `receive` progress text, written into `out`.
  /// Errors: BufferTooSmall (22 bytes always suffice).
  [[nodiscard]] Result<std::string_view, Errc> progress(std::span<char> out) const noexcept;

 private:
  // A download over `bitmap` with its bits as they are (shape and size checked).
  static Result<Download, Errc> over(std::uint32_t file_size, std::uint32_t block_size,
                                     std::span<std::uint8_t> bitmap) noexcept;
  Download(std::uint32_t file_size, std::uint32_t block_size, BlockBitmap bits) noexcept
      : file_size_(file_size), block_size_(block_size), bits_(bits) {}

  std::uint32_t file_size_ = 0;
  std::uint32_t block_size_ = 0;
  BlockBitmap bits_;
  std::uint32_t received_ = 0;
  std::uint32_t duplicates_ = 0;
};

}  // namespace edgekit::ota
