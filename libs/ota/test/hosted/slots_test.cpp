// FileSlots: the A/B state machine, its refusals, a damaged boot record, and a power cut between
// any two file operations of an update that never leaves the device without a complete image to
// boot.
#include <gtest/gtest.h>

#include <array>
#include <fstream>
#include <string>
#include <vector>

#include "edgekit/ota/file_ports.hpp"
#include "edgekit/ota/image.hpp"
#include "power_cut_filesystem.hpp"

namespace edgekit::ota {
namespace {

using test::PowerCutFilesystem;
using test::TempDir;

// An edgekit image of `version` with a payload of `payload` bytes.
std::vector<std::byte> image(ImageVersion version, std::size_t payload) {
  std::vector<std::byte> img(kImageHeaderSize + payload);
  ImageHeader h;
  h.version = version;
  h.device_type = "sensor-v1";
  h.payload_size = static_cast<std::uint32_t>(payload);
  EXPECT_TRUE(write_image_header(h, img).has_value());
  for (std::size_t i = kImageHeaderSize; i < img.size(); ++i) {
    img[i] = static_cast<std::byte>(i * 13 + version.major);
  }
  return img;
}

const std::vector<std::byte> kV1 = image({1, 0, 0}, 700);
const std::vector<std::byte> kV2 = image({2, 0, 0}, 900);

// The factory state: slot A holds v1, no boot record.
void factory(const std::string& dir) {
  FileSlots slots(dir);
  std::ofstream out(slots.image_path(Slot::A), std::ios::binary);
  out.write(reinterpret_cast<const char*>(kV1.data()), static_cast<std::streamsize>(kV1.size()));
}

std::vector<std::byte> slot_image(Slots& slots, Slot s) {
  std::vector<std::byte> out(4096);
  auto n = slots.read(s, 0, out);
  if (!n) return {};
  out.resize(*n);
  return out;
}

// Writes v2 into the inactive slot in chunks of 256 bytes and marks it pending.
Result<void, Errc> install(Slots& slots) {
  if (auto r = slots.begin_write(); !r) return r;
  for (std::size_t at = 0; at < kV2.size(); at += 256) {
    const auto chunk = std::span(kV2).subspan(at, std::min<std::size_t>(256, kV2.size() - at));
    if (auto r = slots.write(at, chunk); !r) return r;
  }
  if (auto r = slots.finish_write(); !r) return r;
  return slots.mark_pending();
}

TEST(FileSlots, BootsTheNewImageInTestAndKeepsItOnConfirm) {
  TempDir dir;
  factory(dir.path());
  FileSlots slots(dir.path());
  EXPECT_EQ(*slots.status(), (BootStatus{Slot::A, BootState::Normal}));
  EXPECT_EQ(*slots.active_version(), (ImageVersion{1, 0, 0}));
  ASSERT_TRUE(install(slots).has_value());
  EXPECT_EQ(*slots.status(), (BootStatus{Slot::A, BootState::PendingTest}));
  EXPECT_EQ(*slots.active_version(), (ImageVersion{1, 0, 0}));  // still running v1
  EXPECT_EQ(*slots.boot(), (BootStatus{Slot::B, BootState::Testing}));
  EXPECT_EQ(*slots.active_version(), (ImageVersion{2, 0, 0}));
  EXPECT_EQ(slot_image(slots, Slot::B), kV2);
  ASSERT_TRUE(slots.confirm().has_value());
  EXPECT_EQ(*slots.status(), (BootStatus{Slot::B, BootState::Normal}));
  EXPECT_EQ(*slots.boot(), (BootStatus{Slot::B, BootState::Normal}));  // stays
  // A new object over the same directory (a reboot) sees the same.
  FileSlots again(dir.path());
  EXPECT_EQ(*again.status(), (BootStatus{Slot::B, BootState::Normal}));
}

TEST(FileSlots, RollsBackWhenTheImageUnderTestIsNotConfirmedBeforeTheNextBoot) {
  TempDir dir;
  factory(dir.path());
  FileSlots slots(dir.path());
  ASSERT_TRUE(install(slots).has_value());
  ASSERT_EQ(*slots.boot(), (BootStatus{Slot::B, BootState::Testing}));
  // The self-test hung and the watchdog reset the device.
  EXPECT_EQ(*slots.boot(), (BootStatus{Slot::A, BootState::RolledBack}));
  EXPECT_EQ(*slots.active_version(), (ImageVersion{1, 0, 0}));
  EXPECT_EQ(*slots.boot(), (BootStatus{Slot::A, BootState::RolledBack}));  // reported once
  ASSERT_TRUE(slots.acknowledge().has_value());
  EXPECT_EQ(*slots.status(), (BootStatus{Slot::A, BootState::Normal}));
}

TEST(FileSlots, RollsBackOnAFailedSelfTestAndRefusesOutOfOrderCalls) {
  TempDir dir;
  factory(dir.path());
  FileSlots slots(dir.path());
  auto no_image = slots.mark_pending();
  ASSERT_FALSE(no_image.has_value());
  EXPECT_EQ(no_image.error(), Errc::NoImage);
  for (auto r : {slots.confirm(), slots.roll_back(), slots.acknowledge(), slots.finish_write(),
                 slots.write(0, kV2)}) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), Errc::SlotStateInvalid);
  }
  ASSERT_TRUE(install(slots).has_value());
  auto again = slots.begin_write();  // an image is pending: the slot is not free
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error(), Errc::SlotStateInvalid);
  ASSERT_TRUE(slots.boot().has_value());
  ASSERT_TRUE(slots.roll_back().has_value());  // the self-test failed
  EXPECT_EQ(*slots.status(), (BootStatus{Slot::A, BootState::RolledBack}));
  EXPECT_EQ(slot_image(slots, Slot::A), kV1);
  // A new image may be written after a rollback (into B again).
  ASSERT_TRUE(install(slots).has_value());
  EXPECT_EQ(*slots.status(), (BootStatus{Slot::A, BootState::PendingTest}));
  // And a pending image can be dropped before it is tried.
  ASSERT_TRUE(slots.roll_back().has_value());
  EXPECT_EQ(*slots.status(), (BootStatus{Slot::A, BootState::RolledBack}));
}

TEST(FileSlots, NeverMarksAnImageItDidNotFinishItself) {
  TempDir dir;
  factory(dir.path());
  {
    FileSlots slots(dir.path());
    ASSERT_TRUE(install(slots).has_value());
    ASSERT_TRUE(slots.roll_back().has_value());  // B holds v2, rolled back
    ASSERT_TRUE(slots.acknowledge().has_value());
  }
  // After a reboot, B still holds the complete v2 that was rolled back: it is not pending again
  // unless an image is written anew. A write cut short leaves B's old image as it was.
  FileSlots slots(dir.path());
  auto r = slots.mark_pending();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::NoImage);
  ASSERT_TRUE(slots.begin_write().has_value());
  ASSERT_TRUE(slots.write(0, std::span(kV1).first(100)).has_value());
  r = slots.mark_pending();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), Errc::SlotStateInvalid);  // still writing
  EXPECT_EQ(slot_image(slots, Slot::B), kV2);
  ASSERT_TRUE(install(slots).has_value());
  EXPECT_EQ(*slots.status(), (BootStatus{Slot::A, BootState::PendingTest}));
}

TEST(FileSlots, ADamagedBootRecordIsReportedNotGuessed) {
  TempDir dir;
  factory(dir.path());
  FileSlots slots(dir.path());
  ASSERT_TRUE(install(slots).has_value());
  {
    std::fstream f(dir.path() + "/boot.state", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(16);
    f.put('\x07');  // the active slot byte
  }
  auto s = slots.status();
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error(), Errc::RecordCorrupted);
  auto b = slots.boot();
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error(), Errc::RecordCorrupted);
}

// install, boot, confirm: what the agent and the bootloader do for one update.
bool update(Slots& slots) {
  return install(slots).has_value() && slots.boot().has_value() && slots.confirm().has_value();
}

TEST(FileSlots, APowerCutAtAnyWriteLeavesACompleteImageToBoot) {
  std::uint32_t total = 0;
  {
    TempDir dir;
    factory(dir.path());
    PowerCutFilesystem fs(1000000);
    FileSlots slots(dir.path(), fs);
    ASSERT_TRUE(update(slots));
    total = fs.operations_done();
  }
  ASSERT_GT(total, 15u);
  for (std::uint32_t k = 0; k <= total; ++k) {
    SCOPED_TRACE("power cut after operation " + std::to_string(k));
    TempDir dir;
    factory(dir.path());
    {
      PowerCutFilesystem fs(k);
      FileSlots slots(dir.path(), fs);
      (void)update(slots);
      ASSERT_EQ(fs.cut(), k < total);
    }
    PowerCutFilesystem after(1000000);  // no cut: the model without real fsyncs
    FileSlots slots(dir.path(), after);
    auto s = slots.status();
    ASSERT_TRUE(s.has_value());  // never a torn record
    const auto active = slot_image(slots, s->active);
    ASSERT_TRUE(active == kV1 || active == kV2);
    if (s->state == BootState::PendingTest) {
      ASSERT_EQ(slot_image(slots, other(s->active)), kV2);
    }
    if (s->state == BootState::Testing) {
      ASSERT_EQ(active, kV2);
    }
    // The bootloader runs: whatever it picks is complete.
    auto booted = slots.boot();
    ASSERT_TRUE(booted.has_value());
    const auto runs = slot_image(slots, booted->active);
    ASSERT_TRUE(runs == kV1 || runs == kV2);
    // The device finishes the update from where it stands.
    if (booted->state == BootState::Testing) {
      ASSERT_TRUE(slots.confirm().has_value());
    } else {
      ASSERT_TRUE(update(slots));
    }
    EXPECT_EQ(*slots.active_version(), (ImageVersion{2, 0, 0}));
    EXPECT_EQ(slots.status()->state, BootState::Normal);
  }
}

}  // namespace
}  // namespace edgekit::ota
