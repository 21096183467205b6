#include "edgekit/ota/download.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <string_view>

#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::ota {
namespace {

using OtaDownload = edgekit::testing::PureTest;

TEST_F(OtaDownload, BitmapIsLsbFirstByteZeroFirstWithTheTailClear) {
  std::array<std::uint8_t, 3> bytes{};
  auto d = Download::start(20 * 256 - 7, 256, bytes);  // 20 blocks, the last one short
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->block_count(), 20u);
  EXPECT_EQ(bytes[0], 0xff);
  EXPECT_EQ(bytes[1], 0xff);
  EXPECT_EQ(bytes[2], 0x0f);  // blocks 16-19; bits 4-7 are the tail
  EXPECT_EQ(d->block_length(19), 256u - 7);
  EXPECT_EQ(d->block_length(18), 256u);
  ASSERT_TRUE(d->accept_block(0, 256).has_value());
  ASSERT_TRUE(d->accept_block(9, 256).has_value());
  EXPECT_EQ(bytes[0], 0xfe);
  EXPECT_EQ(bytes[1], 0xfd);
}

TEST_F(OtaDownload, TheDocumentationsWindowExample) {
  // 44 blocks, all received but 20, 21, 24 and 43: the request is o = 20, b = 13 00 80 (3.3).
  std::array<std::uint8_t, 6> bytes{};
  auto d = Download::start(44 * 256, 256, bytes);
  ASSERT_TRUE(d.has_value());
  for (std::uint32_t i = 0; i < 44; ++i) {
    if (i != 20 && i != 21 && i != 24 && i != 43) {
      ASSERT_TRUE(d->accept_block(i, 256).has_value());
    }
  }
  std::array<std::uint8_t, 16> window{};
  auto w = d->next_stream_request(100, window);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->offset, 20u);
  EXPECT_EQ(w->block_count, 4u);
  ASSERT_EQ(w->bitmap.size(), 3u);
  EXPECT_EQ(w->bitmap[0], 0x13);
  EXPECT_EQ(w->bitmap[1], 0x00);
  EXPECT_EQ(w->bitmap[2], 0x80);
}

TEST_F(OtaDownload, WindowAsksForAtMostNBlocksAnd128KiB) {
  std::array<std::uint8_t, 64> bytes{};
  auto d = Download::start(400 * 1024, 1024, bytes);  // 400 blocks of 1 KiB
  ASSERT_TRUE(d.has_value());
  std::array<std::uint8_t, 64> window{};
  auto w = d->next_stream_request(3, window);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->offset, 0u);
  EXPECT_EQ(w->block_count, 3u);
  ASSERT_EQ(w->bitmap.size(), 1u);
  EXPECT_EQ(w->bitmap[0], 0x07);
  // 128 KiB / 1 KiB = 128 blocks however many are asked for.
  w = d->next_stream_request(100000, window);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->block_count, 128u);
  EXPECT_EQ(w->bitmap.size(), 16u);
  // A smaller window buffer: as many as its bits reach.
  w = d->next_stream_request(100000, std::span(window).first(2));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->block_count, 16u);
}

TEST_F(OtaDownload, OffsetStopsAtTheServicesCeilingAndTheBitmapReachesPastIt) {
  // 98,400 blocks of 256 bytes; everything up to block 98,350 received.
  static std::array<std::uint8_t, 12300> bytes{};
  auto d = Download::start(98400u * 256, 256, bytes);
  ASSERT_TRUE(d.has_value());
  for (std::uint32_t i = 0; i < 98350; ++i) ASSERT_TRUE(d->accept_block(i, 256).has_value());
  std::array<std::uint8_t, 16> window{};
  auto w = d->next_stream_request(2, window);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->offset, kMaxBlockOffset);
  EXPECT_EQ(w->block_count, 2u);
  // Blocks 98350 and 98351 are bits 46 and 47 from 98304.
  ASSERT_EQ(w->bitmap.size(), 6u);
  EXPECT_EQ(w->bitmap[5], 0xc0);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(w->bitmap[i], 0);
}

TEST_F(OtaDownload, AcceptsEachBlockOnceAndCountsDuplicates) {
  std::array<std::uint8_t, 1> bytes{};
  auto d = Download::start(1000, 256, bytes);  // 4 blocks, the last 232 bytes
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(*d->accept_block(3, 232), BlockOutcome::New);
  EXPECT_EQ(*d->accept_block(3, 232), BlockOutcome::Duplicate);
  EXPECT_EQ(d->duplicate_blocks(), 1u);
  EXPECT_EQ(d->received_blocks(), 1u);
  auto wrong = d->accept_block(3, 256);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error(), Errc::BlockLengthMismatch);
  wrong = d->accept_block(0, 255);
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error(), Errc::BlockLengthMismatch);
  auto beyond = d->accept_block(4, 256);
  ASSERT_FALSE(beyond.has_value());
  EXPECT_EQ(beyond.error(), Errc::BlockOutOfRange);
  DataBlock other;
  other.file_id = 2;
  other.block_id = 0;
  auto mismatch = d->accept(other, 1);
  ASSERT_FALSE(mismatch.has_value());
  EXPECT_EQ(mismatch.error(), Errc::FileIdMismatch);
  EXPECT_EQ(d->received_blocks(), 1u);
  std::array<char, 24> text{};
  EXPECT_EQ(*d->progress(text), "1/4");
  for (std::uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(d->accept_block(i, 256).has_value());
  EXPECT_TRUE(d->complete());
  EXPECT_EQ(*d->progress(text), "4/4");
  auto none = d->next_stream_request(1, bytes);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error(), Errc::InvalidArgument);
  d->forget_block(2);
  EXPECT_FALSE(d->complete());
  EXPECT_EQ(d->first_missing(), 2u);
}

TEST_F(OtaDownload, ResumesFromAPersistedBitmapAtTheFirstMissingBlock) {
  std::array<std::uint8_t, 2> bytes{};
  auto d = Download::start(12 * 512, 512, bytes);
  ASSERT_TRUE(d.has_value());
  for (std::uint32_t i : {0u, 1u, 2u, 5u}) ASSERT_TRUE(d->accept_block(i, 512).has_value());
  // The caller persisted the bitmap; after a reboot it reads it back into another buffer.
  std::array<std::uint8_t, 2> stored = bytes;
  auto r = Download::resume(12 * 512, 512, stored);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->received_blocks(), 4u);
  EXPECT_EQ(r->first_missing(), 3u);
  std::array<std::uint8_t, 4> window{};
  auto w = r->next_stream_request(3, window);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->offset, 3u);
  EXPECT_EQ(w->block_count, 3u);  // 3, 4 and 6 (5 is there)
  ASSERT_EQ(w->bitmap.size(), 1u);
  EXPECT_EQ(w->bitmap[0], 0x0b);
  EXPECT_EQ(*r->accept_block(5, 512), BlockOutcome::Duplicate);
  // A tail bit set: not a bitmap of this download.
  stored[1] |= 0x80;
  auto bad = Download::resume(12 * 512, 512, stored);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error(), Errc::BitmapMismatch);
}

TEST_F(OtaDownload, DrivesHttpRangesFromTheSameBitmap) {
  std::array<std::uint8_t, 2> bytes{};
  auto d = Download::start(10 * 256 + 100, 256, bytes);  // 11 blocks
  ASSERT_TRUE(d.has_value());
  ASSERT_TRUE(d->accept_block(3, 256).has_value());
  auto r = d->next_range(1024);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first_block, 0u);
  EXPECT_EQ(r->block_count, 3u);  // stops at block 3, which is there
  EXPECT_EQ(r->first_byte, 0u);
  EXPECT_EQ(r->byte_count, 768u);
  for (std::uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(d->accept_block(i, 256).has_value());
  r = d->next_range(100000);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first_block, 4u);
  EXPECT_EQ(r->block_count, 7u);
  EXPECT_EQ(r->first_byte, 1024u);
  EXPECT_EQ(r->byte_count, 6u * 256 + 100);  // the last block is short
  r = d->next_range(10);                     // less than a block: still one block
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->block_count, 1u);
}

TEST_F(OtaDownload, RefusesShapesTheServiceRefuses) {
  std::array<std::uint8_t, 4> bytes{};
  for (auto [size, block] :
       {std::pair<std::uint32_t, std::uint32_t>{0, 256}, {100, 255}, {100, 131073}}) {
    auto d = Download::start(size, block, bytes);
    ASSERT_FALSE(d.has_value());
    EXPECT_EQ(d.error(), Errc::InvalidArgument);
    EXPECT_EQ(Download::bitmap_size(size, block), 0u);
  }
  EXPECT_EQ(Download::bitmap_size(33 * 256, 256), 5u);
  auto small = Download::start(33 * 256, 256, bytes);
  ASSERT_FALSE(small.has_value());
  EXPECT_EQ(small.error(), Errc::BufferTooSmall);
  // The largest file: 2^32-1 bytes in 128 KiB blocks.
  EXPECT_EQ(Download::bitmap_size(0xFFFFFFFFu, kMaxBlockSize), 4096u);
}

}  // namespace
}  // namespace edgekit::ota
