// MemorySessionStore: fixed slots in a caller-supplied arena, each checked by a CRC-32.
#include <algorithm>
#include <cstring>

#include "edgekit/mqtt/codec.hpp"
#include "edgekit/mqtt/session_store.hpp"

namespace edgekit::mqtt {

namespace {

// Slot header layout (little endian):
//   [0] magic  [1] kind  [2] state  [3] version  [4..5] packet id  [6..7] zero
//   [8..11] sequence  [12..15] body length  [16..19] CRC-32 of bytes 0..15 and the body
constexpr std::byte kMagic{0xE5};
constexpr std::uint8_t kKindFree = 0;
constexpr std::uint8_t kKindMeta = 1;
constexpr std::uint8_t kKindPublish = 2;
// A slot kept aside (corrupt, or a publish the session could not restore): its bytes are kept for
// the application and the slot is neither loaded nor reused until discard_set_aside.
constexpr std::uint8_t kKindSetAside = 3;
constexpr std::size_t kHeader = MemorySessionStore::kSlotHeaderSize;

void put16(std::byte* p, std::uint16_t v) noexcept {
  p[0] = std::byte(v & 0xFF);
  p[1] = std::byte(v >> 8);
}
void put32(std::byte* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = std::byte((v >> (8 * i)) & 0xFF);
}
std::uint16_t get16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) |
                                    (std::to_integer<unsigned>(p[1]) << 8));
}
std::uint32_t get32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::to_integer<std::uint32_t>(p[i]) << (8 * i);
  return v;
}

std::uint32_t slot_crc(const std::byte* slot, std::uint32_t body_length) noexcept {
  const std::uint32_t c = crc32(Bytes(slot, 16));
  return crc32(Bytes(slot + kHeader, body_length), c);
}

void seal(std::byte* slot) noexcept { put32(slot + 16, slot_crc(slot, get32(slot + 12))); }

// Formats "slot N" for CorruptRecord::name without the C library.
std::string_view slot_name(char (&buf)[24], std::size_t n) noexcept {
  const char prefix[] = "slot ";
  std::memcpy(buf, prefix, 5);
  char digits[20];
  std::size_t d = 0;
  do {
    digits[d++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0 && d < sizeof digits);
  for (std::size_t i = 0; i < d; ++i) buf[5 + i] = digits[d - 1 - i];
  return {buf, 5 + d};
}

}  // namespace

MemorySessionStore::MemorySessionStore(std::span<std::byte> arena, std::size_t slot_size,
                                       std::span<std::uint16_t> incoming_ids,
                                       bool adopt_existing) noexcept
    : arena_(arena), slot_size_(slot_size < kHeader ? kHeader : slot_size), incoming_(incoming_ids) {
  if (!adopt_existing) {
    std::fill(arena_.begin(), arena_.end(), std::byte{0});
    std::fill(incoming_.begin(), incoming_.end(), std::uint16_t{0});
  }
}

std::size_t MemorySessionStore::slot_count() const noexcept { return arena_.size() / slot_size_; }

std::byte* MemorySessionStore::slot(std::size_t i) noexcept { return arena_.data() + i * slot_size_; }

std::ptrdiff_t MemorySessionStore::find_publish(std::uint16_t packet_id) noexcept {
  for (std::size_t i = 1; i < slot_count(); ++i) {
    const std::byte* s = slot(i);
    if (s[0] == kMagic && std::to_integer<std::uint8_t>(s[1]) == kKindPublish &&
        get16(s + 4) == packet_id) {
      return static_cast<std::ptrdiff_t>(i);
    }
  }
  return -1;
}

Result<void> MemorySessionStore::save_publish(std::uint32_t sequence, const Publish& publish,
                                              Version version) noexcept {
  auto size = encoded_size(publish, version);
  if (!size) return fail(size.error());
  if (*size > slot_size_ - kHeader) return fail(Errc::BufferTooSmall);
  std::ptrdiff_t at = find_publish(publish.packet_id);
  if (at < 0) {
    for (std::size_t i = 1; i < slot_count(); ++i) {
      if (std::to_integer<std::uint8_t>(slot(i)[1]) == kKindFree) {
        at = static_cast<std::ptrdiff_t>(i);
        break;
      }
    }
  }
  if (at < 0) return fail(Errc::SessionStateFull);
  std::byte* s = slot(static_cast<std::size_t>(at));
  // Body first, header last: a reset in between leaves a slot whose CRC does not match.
  auto written = encode(publish, version, MutableBytes(s + kHeader, slot_size_ - kHeader));
  if (!written) {
    std::memset(s, 0, kHeader);
    return fail(written.error());
  }
  s[0] = kMagic;
  s[1] = std::byte{kKindPublish};
  s[2] = std::byte{static_cast<std::uint8_t>(StoredPublishState::AwaitAck)};
  s[3] = std::byte{static_cast<std::uint8_t>(version)};
  put16(s + 4, publish.packet_id);
  put16(s + 6, 0);
  put32(s + 8, sequence);
  put32(s + 12, static_cast<std::uint32_t>(*written));
  seal(s);
  return {};
}

Result<void> MemorySessionStore::mark_publish_released(std::uint16_t packet_id,
                                                       std::uint32_t sequence) noexcept {
  const std::ptrdiff_t at = find_publish(packet_id);
  if (at < 0) return fail(Errc::UnknownPacketId);
  std::byte* s = slot(static_cast<std::size_t>(at));
  s[2] = std::byte{static_cast<std::uint8_t>(StoredPublishState::AwaitPubComp)};
  put32(s + 8, sequence);
  seal(s);
  return {};
}

Result<void> MemorySessionStore::remove_publish(std::uint16_t packet_id) noexcept {
  const std::ptrdiff_t at = find_publish(packet_id);
  if (at >= 0) std::memset(slot(static_cast<std::size_t>(at)), 0, kHeader);
  return {};
}

Result<void> MemorySessionStore::save_incoming_qos2(std::uint16_t packet_id) noexcept {
  if (packet_id == 0) return fail(Errc::PacketIdZero);
  std::uint16_t* free_id = nullptr;
  for (std::uint16_t& id : incoming_) {
    if (id == packet_id) return {};
    if (id == 0 && free_id == nullptr) free_id = &id;
  }
  if (free_id == nullptr) return fail(Errc::SessionStateFull);
  *free_id = packet_id;
  return {};
}

Result<void> MemorySessionStore::remove_incoming_qos2(std::uint16_t packet_id) noexcept {
  for (std::uint16_t& id : incoming_) {
    if (id == packet_id) id = 0;
  }
  return {};
}

Result<void> MemorySessionStore::save_meta(const SessionMeta& meta) noexcept {
  if (slot_count() == 0) return fail(Errc::SessionStateFull);
  if (meta.client_id.size() > 65535) return fail(Errc::StringTooLong);
  if (kHeader + 6 + meta.client_id.size() > slot_size_) return fail(Errc::StringTooLong);
  std::byte* s = slot(0);
  put32(s + kHeader, meta.session_expiry_interval);
  put16(s + kHeader + 4, static_cast<std::uint16_t>(meta.client_id.size()));
  std::memcpy(s + kHeader + 6, meta.client_id.data(), meta.client_id.size());
  s[0] = kMagic;
  s[1] = std::byte{kKindMeta};
  s[2] = std::byte{0};
  s[3] = std::byte{static_cast<std::uint8_t>(meta.version)};
  put16(s + 4, 0);
  put16(s + 6, 0);
  put32(s + 8, 0);
  put32(s + 12, static_cast<std::uint32_t>(6 + meta.client_id.size()));
  seal(s);
  return {};
}

Result<void> MemorySessionStore::set_aside_publish(std::uint16_t packet_id) noexcept {
  // From inside `load`: the slot being visited, even if a damaged arena holds the id twice.
  std::ptrdiff_t at = -1;
  if (visiting_ != 0 && get16(slot(visiting_) + 4) == packet_id) {
    at = static_cast<std::ptrdiff_t>(visiting_);
  } else {
    at = find_publish(packet_id);
  }
  if (at < 0) return fail(Errc::UnknownPacketId);
  slot(static_cast<std::size_t>(at))[1] = std::byte{kKindSetAside};
  return {};
}

namespace {
bool kept_aside(const std::byte* s) noexcept {
  return s[0] == kMagic && std::to_integer<std::uint8_t>(s[1]) == kKindSetAside;
}
}  // namespace

std::size_t MemorySessionStore::set_aside_count() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 1; i < slot_count(); ++i) n += kept_aside(arena_.data() + i * slot_size_);
  return n;
}

void MemorySessionStore::discard_set_aside() noexcept {
  for (std::size_t i = 1; i < slot_count(); ++i) {
    if (kept_aside(slot(i))) std::memset(slot(i), 0, kHeader);
  }
}

Result<void> MemorySessionStore::clear_session() noexcept {
  // Slots kept aside are not the session's: only the application discards them.
  for (std::size_t i = 1; i < slot_count(); ++i) {
    if (!kept_aside(slot(i))) std::memset(slot(i), 0, kHeader);
  }
  std::fill(incoming_.begin(), incoming_.end(), std::uint16_t{0});
  return {};
}

Result<void> MemorySessionStore::load(SessionStoreVisitor& visitor) noexcept {
  char name_buf[24];
  for (std::size_t i = 0; i < slot_count(); ++i) {
    std::byte* s = slot(i);
    const bool all_zero = std::all_of(s, s + kHeader, [](std::byte b) { return b == std::byte{0}; });
    if (all_zero || (i != 0 && kept_aside(s))) continue;
    const std::uint8_t kind = std::to_integer<std::uint8_t>(s[1]);
    const std::uint8_t version = std::to_integer<std::uint8_t>(s[3]);
    const std::uint32_t length = get32(s + 12);
    const bool ok = s[0] == kMagic && kind == (i == 0 ? kKindMeta : kKindPublish) &&
                    (version == 4 || version == 5) && length <= slot_size_ - kHeader &&
                    (i == 0 || s[2] == std::byte{1} || s[2] == std::byte{2}) &&
                    get32(s + 16) == slot_crc(s, length);
    if (!ok) {
      // Never loaded, never reported twice. A publish slot keeps its bytes (the message may
      // still be recoverable by hand); only its first two header bytes, which failed the check
      // anyway, are overwritten to mark it. The meta holds no message: it is freed.
      if (i == 0) {
        std::memset(s, 0, kHeader);
      } else {
        s[0] = kMagic;
        s[1] = std::byte{kKindSetAside};
      }
      EDGEKIT_TRY(visitor.on_corrupt(
          CorruptRecord{slot_name(name_buf, i), Errc::PersistenceCorrupted,
                        i == 0 ? StoredRecordKind::Meta : StoredRecordKind::Publish}));
      continue;
    }
    if (i == 0) {
      SessionMeta meta;
      meta.version = static_cast<Version>(version);
      meta.session_expiry_interval = get32(s + kHeader);
      const std::uint16_t id_len = get16(s + kHeader + 4);
      if (std::size_t{id_len} + 6 != length) {
        std::memset(s, 0, kHeader);
        EDGEKIT_TRY(visitor.on_corrupt(CorruptRecord{
            slot_name(name_buf, i), Errc::PersistenceCorrupted, StoredRecordKind::Meta}));
        continue;
      }
      meta.client_id = std::string_view(reinterpret_cast<const char*>(s + kHeader + 6), id_len);
      EDGEKIT_TRY(visitor.on_meta(meta));
    }
  }
  for (std::size_t i = 1; i < slot_count(); ++i) {
    std::byte* s = slot(i);
    if (s[0] != kMagic || std::to_integer<std::uint8_t>(s[1]) != kKindPublish) continue;
    StoredPublish p;
    p.packet_id = get16(s + 4);
    p.sequence = get32(s + 8);
    p.state = static_cast<StoredPublishState>(std::to_integer<std::uint8_t>(s[2]));
    p.version = static_cast<Version>(std::to_integer<std::uint8_t>(s[3]));
    p.packet = Bytes(s + kHeader, get32(s + 12));
    visiting_ = i;
    auto visited = visitor.on_publish(p);
    visiting_ = 0;
    EDGEKIT_TRY(visited);
  }
  for (std::uint16_t id : incoming_) {
    if (id != 0) EDGEKIT_TRY(visitor.on_incoming_qos2(id));
  }
  return {};
}

std::size_t MemorySessionStore::publish_count() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 1; i < arena_.size() / slot_size_; ++i) {
    n += arena_[i * slot_size_ + 1] == std::byte{kKindPublish};
  }
  return n;
}

std::size_t MemorySessionStore::incoming_qos2_count() const noexcept {
  std::size_t n = 0;
  for (std::uint16_t id : incoming_) n += id != 0;
  return n;
}

}  // namespace edgekit::mqtt
