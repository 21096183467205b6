// FileDownloadStore: the record and bitmap round trip, damage is reported and never read, and a
// power cut between any two file operations of a download leaves a bitmap that claims only
// blocks whose bytes are stored, so the download resumes at the first missing block.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "edgekit/ota/download.hpp"
#include "edgekit/ota/file_ports.hpp"
#include "power_cut_filesystem.hpp"

namespace edgekit::ota {
namespace {

using test::PowerCutFilesystem;
using test::TempDir;

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

TEST(FileDownloadStore, SavesLoadsAndClears) {
  TempDir dir;
  FileDownloadStore store(dir.path() + "/dl");
  std::array<std::uint8_t, 64> record{};
  std::array<std::uint8_t, 8> bitmap{};
  auto none = store.load(record, bitmap);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error(), Errc::NoDownload);

  const std::uint8_t bits[] = {0xf0, 0x01};
  ASSERT_TRUE(store.save(bytes_of("job-1"), bits).has_value());
  const std::byte block[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
  ASSERT_TRUE(store.write_block(512, block).has_value());
  auto loaded = store.load(record, bitmap);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->record_size, 5u);
  EXPECT_EQ(loaded->bitmap_size, 2u);
  EXPECT_EQ(std::memcmp(record.data(), "job-1", 5), 0);
  EXPECT_EQ(bitmap[0], 0xf0);
  EXPECT_EQ(bitmap[1], 0x01);
  std::array<std::byte, 8> back{};
  auto n = store.read_image(511, back);
  ASSERT_TRUE(n.has_value());
  ASSERT_EQ(*n, 4u);  // the image ends after the block
  EXPECT_EQ(back[1], std::byte{1});
  EXPECT_EQ(back[3], std::byte{3});

  auto small = store.load(std::span(record).first(4), bitmap);
  ASSERT_FALSE(small.has_value());
  EXPECT_EQ(small.error(), Errc::BufferTooSmall);
  std::vector<std::uint8_t> huge(kMaxDownloadRecordSize + 1);
  auto too_large = store.save(huge, bits);
  ASSERT_FALSE(too_large.has_value());
  EXPECT_EQ(too_large.error(), Errc::InvalidArgument);

  ASSERT_TRUE(store.clear().has_value());
  none = store.load(record, bitmap);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error(), Errc::NoDownload);
  EXPECT_EQ(*store.read_image(0, back), 0u);
}

TEST(FileDownloadStore, ReportsATornOrDamagedRecordAsCorrupted) {
  TempDir dir;
  FileDownloadStore store(dir.path());
  const std::uint8_t bits[] = {0x0f};
  ASSERT_TRUE(store.save(bytes_of("job-1"), bits).has_value());
  const std::string path = dir.path() + "/download.state";
  std::vector<char> good;
  {
    std::ifstream in(path, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_EQ(good.size(), 16u + 5 + 1 + 4);
  // Every byte flipped, and every shorter prefix (a torn write), is refused.
  std::array<std::uint8_t, 16> record{};
  std::array<std::uint8_t, 4> bitmap{};
  for (std::size_t cut = 0; cut <= good.size(); ++cut) {
    for (int flip = -1; flip < static_cast<int>(std::min(cut, good.size())); ++flip) {
      if (cut == good.size() && flip < 0) continue;  // the intact file
      std::vector<char> bad(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut));
      if (flip >= 0) bad[static_cast<std::size_t>(flip)] ^= 0x10;
      {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(bad.data(), static_cast<std::streamsize>(bad.size()));
      }
      auto r = store.load(record, bitmap);
      ASSERT_FALSE(r.has_value()) << "cut " << cut << " flip " << flip;
      EXPECT_EQ(r.error(), Errc::RecordCorrupted) << "cut " << cut << " flip " << flip;
    }
  }
}

// The file of the tests: 8 blocks of 256 bytes, the last 100 bytes short.
constexpr std::uint32_t kBlock = 256;
constexpr std::uint32_t kSize = 7 * kBlock + 156;

std::vector<std::byte> source_file() {
  std::vector<std::byte> f(kSize);
  for (std::size_t i = 0; i < f.size(); ++i) f[i] = static_cast<std::byte>(i * 7 + i / 256);
  return f;
}

// Downloads the blocks of `order` into `store` as the agent does: write the block, mark it in
// the bitmap, save the record and bitmap. Stops at the first failure (the power is cut).
// Returns how many blocks were written.
std::uint32_t run(DownloadStore& store, const std::vector<std::byte>& file,
                  std::span<const std::uint32_t> order, std::span<std::uint8_t> bitmap,
                  bool resume) {
  auto d =
      resume ? Download::resume(kSize, kBlock, bitmap) : Download::start(kSize, kBlock, bitmap);
  if (!d) return 0;
  if (!resume && !store.save(bytes_of("job-1"), d->bitmap())) return 0;
  std::uint32_t written = 0;
  for (std::uint32_t i : order) {
    if (!d->missing(i)) continue;
    const auto data = std::span(file).subspan(d->block_offset(i), d->block_length(i));
    if (!store.write_block(d->block_offset(i), data)) return written;
    ++written;
    if (!d->accept_block(i, data.size())) return written;
    if (!store.save(bytes_of("job-1"), d->bitmap())) return written;
  }
  return written;
}

TEST(FileDownloadStore, APowerCutAtAnyWriteNeverLosesOrInventsABlock) {
  const auto file = source_file();
  const std::uint32_t order[] = {3, 0, 7, 1, 2, 6, 5, 4};
  // How many file operations a whole download makes.
  std::uint32_t total = 0;
  {
    TempDir dir;
    PowerCutFilesystem fs(1000000);
    FileDownloadStore store(dir.path(), fs);
    std::array<std::uint8_t, 1> bitmap{};
    ASSERT_EQ(run(store, file, order, bitmap, false), 8u);
    total = fs.operations_done();
  }
  ASSERT_GT(total, 40u);
  for (std::uint32_t k = 0; k <= total; ++k) {
    SCOPED_TRACE("power cut after operation " + std::to_string(k));
    TempDir dir;
    std::uint32_t first_run = 0;
    {
      PowerCutFilesystem fs(k);
      FileDownloadStore store(dir.path(), fs);
      std::array<std::uint8_t, 1> bitmap{};
      first_run = run(store, file, order, bitmap, false);
      ASSERT_EQ(fs.cut(), k < total);
    }
    // Reboot: a new store over the same directory (through the model again, without a cut:
    // real fsyncs would only make the test slow; SavesLoadsAndClears runs on POSIX itself).
    PowerCutFilesystem after(1000000);
    FileDownloadStore store(dir.path(), after);
    std::array<std::uint8_t, 16> record{};
    std::array<std::uint8_t, 1> bitmap{};
    auto loaded = store.load(record, bitmap);
    bool resume = true;
    if (!loaded) {
      ASSERT_EQ(loaded.error(), Errc::NoDownload);  // never corrupted
      resume = false;
    } else {
      ASSERT_EQ(loaded->bitmap_size, 1u);
      ASSERT_EQ(std::string_view(reinterpret_cast<const char*>(record.data()), loaded->record_size),
                "job-1");
      // Every block the bitmap says is there is there, byte for byte.
      auto d = Download::resume(kSize, kBlock, bitmap);
      ASSERT_TRUE(d.has_value());
      for (std::uint32_t i = 0; i < d->block_count(); ++i) {
        if (d->missing(i)) continue;
        std::vector<std::byte> got(d->block_length(i));
        ASSERT_EQ(*store.read_image(d->block_offset(i), got), got.size());
        ASSERT_EQ(std::memcmp(got.data(), file.data() + d->block_offset(i), got.size()), 0)
            << "block " << i;
      }
    }
    // Resume to the end: at most the one block in flight at the cut is fetched again.
    const std::uint32_t second_run = run(store, file, order, bitmap, resume);
    EXPECT_LE(first_run + second_run, 8u + 1u);
    std::vector<std::byte> image(kSize);
    ASSERT_EQ(*store.read_image(0, image), image.size());
    EXPECT_EQ(image, file);
  }
}

}  // namespace
}  // namespace edgekit::ota
