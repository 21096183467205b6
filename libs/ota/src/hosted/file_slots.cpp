// FileSlots: slot-a.img, slot-b.img and boot.state (the active slot and the state) in a
// directory; images are written to slot-x.img.part and renamed into place.
#include "edgekit/ota/file_ports.hpp"
#include "state_file.hpp"

namespace edgekit::ota {
namespace {

constexpr detail::Magic kMagic = {'E', 'K', 'B', 'S'};  // edgekit boot state

}  // namespace

FileSlots::FileSlots(std::string directory, Filesystem& fs) : dir_(std::move(directory)), fs_(&fs) {
  detail::make_directory(dir_);
}

std::string FileSlots::image_path(Slot slot) const {
  return dir_ + (slot == Slot::A ? "/slot-a.img" : "/slot-b.img");
}

Result<BootStatus, Errc> FileSlots::status() {
  auto parts =
      detail::read_state(*fs_, dir_ + "/boot.state", kMagic, Errc::NoImage, Errc::SlotFailed);
  if (!parts) {
    // No boot record yet: the factory state.
    if (parts.error() == Errc::NoImage) return BootStatus{};
    return fail(parts.error());
  }
  const auto& b = parts->first;
  if (b.size() != 2 || b[0] > 1 || b[1] > static_cast<std::uint8_t>(BootState::RolledBack)) {
    return fail(Errc::RecordCorrupted);
  }
  return BootStatus{static_cast<Slot>(b[0]), static_cast<BootState>(b[1])};
}

Result<void, Errc> FileSlots::store(BootStatus s) {
  const std::uint8_t b[2] = {static_cast<std::uint8_t>(s.active),
                             static_cast<std::uint8_t>(s.state)};
  if (!detail::write_state(*fs_, dir_, dir_ + "/boot.state", kMagic, b, {})) {
    return fail(Errc::SlotFailed);
  }
  return {};
}

Result<BootStatus, Errc> FileSlots::boot() {
  auto s = status();
  if (!s) return s;
  BootStatus next = *s;
  if (s->state == BootState::PendingTest) {
    next = {other(s->active), BootState::Testing};
  } else if (s->state == BootState::Testing) {
    // Reset while under test without a confirm: the self-test failed to finish in time.
    next = {other(s->active), BootState::RolledBack};
  } else {
    return next;
  }
  if (auto r = store(next); !r) return fail(r.error());
  return next;
}

Result<void, Errc> FileSlots::begin_write() {
  auto s = status();
  if (!s) return fail(s.error());
  if (s->state != BootState::Normal && s->state != BootState::RolledBack) {
    return fail(Errc::SlotStateInvalid);
  }
  if (!fs_->truncate(image_path(other(s->active)) + ".part")) return fail(Errc::SlotFailed);
  // The slot is fixed here: the writes that follow need not read the boot record again.
  writing_ = other(s->active);
  finished_ = false;
  return {};
}

Result<void, Errc> FileSlots::write(std::uint64_t offset, std::span<const std::byte> data) {
  if (!writing_) return fail(Errc::SlotStateInvalid);
  if (!fs_->write_at(image_path(*writing_) + ".part", offset, data)) return fail(Errc::SlotFailed);
  return {};
}

Result<void, Errc> FileSlots::finish_write() {
  if (!writing_) return fail(Errc::SlotStateInvalid);
  const std::string image = image_path(*writing_);
  const std::string part = image + ".part";
  if (!fs_->sync(part) || !fs_->replace(part, image, dir_)) return fail(Errc::SlotFailed);
  writing_.reset();
  finished_ = true;
  return {};
}

Result<void, Errc> FileSlots::mark_pending() {
  auto s = status();
  if (!s) return fail(s.error());
  if (s->state != BootState::Normal && s->state != BootState::RolledBack) {
    return fail(Errc::SlotStateInvalid);
  }
  if (writing_) return fail(Errc::SlotStateInvalid);
  // Only an image this object finished: after a reboot the inactive slot may still hold an older
  // complete image (the one rolled back, or the firmware before the running one), which must
  // never be booted by mistake; the agent writes the verified image again.
  if (!finished_ || !fs_->size(image_path(other(s->active)))) return fail(Errc::NoImage);
  if (auto r = store({s->active, BootState::PendingTest}); !r) return r;
  finished_ = false;
  return {};
}

Result<void, Errc> FileSlots::confirm() {
  auto s = status();
  if (!s) return fail(s.error());
  if (s->state != BootState::Testing) return fail(Errc::SlotStateInvalid);
  return store({s->active, BootState::Normal});
}

Result<void, Errc> FileSlots::roll_back() {
  auto s = status();
  if (!s) return fail(s.error());
  if (s->state == BootState::Testing) return store({other(s->active), BootState::RolledBack});
  if (s->state == BootState::PendingTest) return store({s->active, BootState::RolledBack});
  return fail(Errc::SlotStateInvalid);
}

Result<void, Errc> FileSlots::acknowledge() {
  auto s = status();
  if (!s) return fail(s.error());
  if (s->state != BootState::RolledBack) return fail(Errc::SlotStateInvalid);
  return store({s->active, BootState::Normal});
}

Result<std::size_t, Errc> FileSlots::read(Slot slot, std::uint64_t offset,
                                          std::span<std::byte> out) {
  const std::string image = image_path(slot);
  if (!fs_->size(image)) return fail(Errc::NoImage);
  auto n = fs_->read_at(image, offset, out);
  if (!n) return fail(Errc::SlotFailed);
  return *n;
}

}  // namespace edgekit::ota
