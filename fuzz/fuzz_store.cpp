// Fuzz target: the session stores' loaders and Session::restore on what they load. After a crash
// or a reset, stored records are untrusted: memory may hold anything, files may be truncated,
// foreign or crafted.
// Input: [mode][...]
//   mode bit 0 clear — MemorySessionStore: [slot size byte][incoming ids: 3 × u16][arena bytes]
//   mode bit 0 set   — FileSessionStore: records [name kind][id u16][length u16][bytes], written
//                      as files into a scratch directory (`meta`, `p-N`, `r-N`, `q-N`, `*.tmp`,
//                      foreign names)
//   mode bit 1 set   — "sealed": the target fixes up magic, lengths and CRCs itself, so the
//                      fuzzer reaches what lies behind the integrity checks (records that pass
//                      them but hold hostile content).
// Oracles: no crash; every view the store hands out lies in its memory (arena / load buffer);
// restore never leaves more records than the storage holds, never a packet id 0 or a duplicate,
// never an unknown state; a restored session resumes and every resend encodes. Nothing is
// dropped silently: every publish the store handed out was restored or reported to the
// RestoreObserver (set aside); a failed restore leaves a session that refuses to connect; and
// what a restore set aside is gone from the store's records: a second restore over the same
// store finds nothing more to set aside and restores the same publishes.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <optional>

#include "edgekit/mqtt/file_store.hpp"
#include "edgekit/mqtt/session.hpp"
#include "fuzz_support.hpp"

namespace {

using namespace edgekit::fuzz;
using edgekit::Duration;
using edgekit::Instant;

constexpr std::size_t kRecords = 4;
constexpr std::size_t kIncoming = 3;

std::array<std::byte, 8 * 512> g_arena;
std::array<std::byte, 16'384> g_load;
std::array<std::byte, 16'384> g_out;
char g_dir[128];

bool within(Bytes outer, const void* p, std::size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  return n == 0 || (b >= outer.data() && b + n <= outer.data() + outer.size());
}

// Checks what a store hands out, then lets the session's own restorer see it.
class CheckingVisitor final : public SessionStoreVisitor {
 public:
  explicit CheckingVisitor(Bytes memory) : memory_(memory) {}
  Result<void> on_meta(const SessionMeta& meta) noexcept override {
    FUZZ_CHECK(!seen_other_);
    FUZZ_CHECK(++metas_ == 1);
    FUZZ_CHECK(within(memory_, meta.client_id.data(), meta.client_id.size()));
    FUZZ_CHECK(meta.version == Version::V311 || meta.version == Version::V5);
    return {};
  }
  Result<void> on_publish(const StoredPublish& p) noexcept override {
    seen_other_ = true;
    FUZZ_CHECK(within(memory_, p.packet.data(), p.packet.size()));
    FUZZ_CHECK(p.state == StoredPublishState::AwaitAck ||
               p.state == StoredPublishState::AwaitPubComp);
    FUZZ_CHECK(p.version == Version::V311 || p.version == Version::V5);
    // Decoding a stored packet is the session's business; it must at least not crash.
    (void)decode_publish(p.packet, p.version);
    return {};
  }
  Result<void> on_incoming_qos2(std::uint16_t) noexcept override {
    seen_other_ = true;
    return {};
  }

 private:
  Bytes memory_;
  int metas_ = 0;
  bool seen_other_ = false;
};

// Counts what Session::restore reports.
class CountingObserver final : public RestoreObserver {
 public:
  void on_unrestorable(const UnrestorableRecord& r) noexcept override {
    if (r.kind == StoredRecordKind::Publish) ++publishes;
  }
  std::size_t publishes = 0;
};

// Returns what the restore found (nullopt: it failed).
std::optional<RestoreSummary> check_restored_session(SessionStore& store) {
  static std::array<OutgoingRecord, kRecords> records;
  static std::array<std::uint16_t, kIncoming> incoming;
  static TopicAliasArena<2, 16> in_aliases, out_aliases;
  static std::array<char, 32> client_id;
  records.fill(OutgoingRecord{});
  incoming.fill(0);
  CountingObserver observer;
  Session s(
      SessionStorage{records, incoming, in_aliases.storage(), out_aliases.storage(), client_id},
      &store);
  auto r = s.restore(&observer);
  if (r) {
    FUZZ_CHECK(observer.publishes == r->publishes_set_aside);
  } else {
    Connect c;
    c.client_id = "d";
    const auto refused = s.prepare_connect(c);
    FUZZ_CHECK(!refused && refused.error() == r.error());
  }
  FUZZ_CHECK(s.records_in_use() <= kRecords);
  for (std::size_t i = 0; i < kRecords; ++i) {
    const OutgoingRecord& a = records[i];
    if (a.state == OutgoingState::Free) continue;
    FUZZ_CHECK(a.state == OutgoingState::AwaitPubAck || a.state == OutgoingState::AwaitPubRec ||
               a.state == OutgoingState::AwaitPubComp);
    FUZZ_CHECK(a.packet_id != 0);
    FUZZ_CHECK(a.publish.qos != QoS::AtMostOnce);
    for (std::size_t j = i + 1; j < kRecords; ++j)
      FUZZ_CHECK(records[j].state == OutgoingState::Free || records[j].packet_id != a.packet_id);
  }
  if (!r) return std::nullopt;
  FUZZ_CHECK(r->publishes <= kRecords && r->incoming_qos2 <= kIncoming);
  // Resume: every record is resent, and each resend must be a packet the codec will send.
  Connect c;
  c.version = s.version();
  c.clean_start = false;
  if (c.version == Version::V5) c.properties.set_session_expiry_interval(60);
  if (c.version == Version::V311 && s.client_id().empty()) c.client_id = "d";
  if (!s.prepare_connect(c)) return *r;
  ConnAck ack;
  ack.session_present = true;
  auto out = s.on_connack(ack);
  FUZZ_CHECK(out.has_value());
  std::size_t n = 0;
  while (auto re = s.next_resend()) {
    FUZZ_CHECK(++n <= kRecords);
    if (re->type == PacketType::Publish) {
      FUZZ_CHECK(re->publish.packet_id != 0 && re->publish.dup);
      auto wrote = encode(re->publish, s.version(), g_out);
      if (!wrote)
        std::fprintf(stderr, "resend does not encode in version %d: %s\n",
                     static_cast<int>(s.version()), to_string(wrote.error()));
      FUZZ_CHECK(wrote.has_value());
    } else {
      FUZZ_CHECK(re->type == PacketType::PubRel && re->pubrel.packet_id != 0);
      FUZZ_CHECK(encode(re->pubrel, s.version(), g_out).has_value());
    }
  }
  return *r;
}

// What a restore set aside is no record of the store any more: restoring again (the session of
// the first restore is gone: the load buffer is reused) finds nothing more to set aside and the
// same publishes.
void check_restore_again(SessionStore& store, const RestoreSummary& first) {
  static std::array<OutgoingRecord, kRecords> records;
  static std::array<std::uint16_t, kIncoming> incoming;
  static std::array<char, 32> client_id;
  records.fill(OutgoingRecord{});
  incoming.fill(0);
  Session s(SessionStorage{records, incoming, {}, {}, client_id}, &store);
  auto again = s.restore();
  if (!again) std::fprintf(stderr, "restoring again failed: %s\n", to_string(again.error()));
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->publishes_set_aside == 0 && again->corrupt == 0);
  FUZZ_CHECK(again->publishes == first.publishes);
}

void put16(std::byte* p, std::uint16_t v) {
  p[0] = std::byte(v & 0xFF);
  p[1] = std::byte(v >> 8);
}
void put32(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = std::byte((v >> (8 * i)) & 0xFF);
}

// --- Memory store ---------------------------------------------------------------------------

void run_memory(const std::uint8_t* data, std::size_t size, bool sealed) {
  if (size < 7) return;
  const std::size_t slot_size = 20 + data[0] % 200;
  std::array<std::uint16_t, kIncoming> ids{};
  for (std::size_t i = 0; i < kIncoming; ++i)
    ids[i] = static_cast<std::uint16_t>((data[1 + 2 * i] << 8) | data[2 + 2 * i]);
  data += 7;
  size -= 7;
  const std::size_t slots = std::min<std::size_t>(8, (size + slot_size - 1) / slot_size + 1);
  const std::size_t arena_size = std::min(g_arena.size(), slots * slot_size);
  std::memset(g_arena.data(), 0, g_arena.size());
  std::memcpy(g_arena.data(), data, std::min(size, arena_size));
  if (sealed) {
    // Give every slot a plausible header and a correct CRC, keeping the fuzzer's bytes
    // elsewhere: [0] magic [1] kind [3] version [12..15] length clamped to the slot.
    for (std::size_t i = 0; i * slot_size + slot_size <= arena_size; ++i) {
      std::byte* s = g_arena.data() + i * slot_size;
      if (s[0] == std::byte{0}) continue;  // leave free slots free
      s[0] = std::byte{0xE5};
      s[1] = std::byte{static_cast<std::uint8_t>(i == 0 ? 1 : 2)};
      if (i != 0)
        s[2] = std::byte{static_cast<std::uint8_t>(1 + (std::to_integer<unsigned>(s[2]) & 1))};
      s[3] = std::byte{static_cast<std::uint8_t>(4 + (std::to_integer<unsigned>(s[3]) & 1))};
      std::uint32_t len = 0;
      std::memcpy(&len, s + 12, 4);
      len %= static_cast<std::uint32_t>(slot_size - 20 + 1);
      put32(s + 12, len);
      const std::uint32_t c = crc32(Bytes(s, 16));
      put32(s + 16, crc32(Bytes(s + 20, len), c));
    }
  }
  const std::span<std::byte> arena(g_arena.data(), arena_size);
  {
    MemorySessionStore store(arena, slot_size, ids, /*adopt_existing=*/true);
    CheckingVisitor v(arena);
    (void)store.load(v);
  }
  MemorySessionStore store(arena, slot_size, ids, /*adopt_existing=*/true);
  if (auto first = check_restored_session(store)) check_restore_again(store, *first);
}

// --- File store -----------------------------------------------------------------------------

void remove_scratch() {
  char path[sizeof g_dir + sizeof(dirent::d_name) + 1];  // "<dir>/<name>", never truncated
  if (DIR* d = ::opendir(g_dir)) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
      ::unlink(path);
    }
    ::closedir(d);
  }
}

void run_files(const std::uint8_t* data, std::size_t size, bool sealed) {
  if (g_dir[0] == 0) {
    std::atexit([] {
      remove_scratch();
      ::rmdir(g_dir);
    });
    const char* base = std::getenv("TMPDIR");
    std::snprintf(g_dir, sizeof g_dir, "%s/edgekit-fuzz-store-%d", base ? base : "/tmp",
                  static_cast<int>(::getpid()));
    ::mkdir(g_dir, 0700);
  }
  // Remove what the previous input left.
  remove_scratch();
  char path[256];
  static const char* const kPrefixes[] = {"p-", "r-", "q-", "meta", "p-", "tmp", "bad", "junk"};
  std::size_t i = 0;
  int files = 0;
  while (i + 5 <= size && files < 12) {
    const std::uint8_t kind = data[i] % 8;
    const std::uint16_t id = static_cast<std::uint16_t>((data[i + 1] << 8) | data[i + 2]);
    std::size_t len = static_cast<std::size_t>((data[i + 3] << 8) | data[i + 4]);
    i += 5;
    len = std::min(len, size - i);
    const std::uint8_t* body = data + i;
    i += len;
    char name[64];
    switch (kind) {
      case 3:
        std::snprintf(name, sizeof name, "meta");
        break;
      case 5:
        std::snprintf(name, sizeof name, "p-%u.tmp", id);
        break;
      case 6:
        std::snprintf(name, sizeof name, "q-%u.bad", id);
        break;
      case 7:
        std::snprintf(name, sizeof name, "p-%05u", id);
        break;  // leading zeros
      default:
        std::snprintf(name, sizeof name, "%s%u", kPrefixes[kind], id);
        break;
    }
    std::snprintf(path, sizeof path, "%s/%s", g_dir, name);
    const int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) continue;
    ++files;
    if (sealed && len >= 2) {
      // [24-byte header][body][CRC]: kind from the name, state/version/sequence from the bytes.
      std::array<std::byte, 24> h{};
      std::memcpy(h.data(), "EKS1", 4);
      const std::uint8_t k = kind == 3 ? 1 : kind == 1 ? 3 : kind == 2 ? 4 : 2;
      h[4] = std::byte{k};
      h[5] = std::byte{static_cast<std::uint8_t>(body[0] & 3)};
      h[6] = std::byte{static_cast<std::uint8_t>(4 + (body[1] & 1))};
      put16(h.data() + 8, kind == 3 ? 0 : id);
      put32(h.data() + 12, body[0]);
      put32(h.data() + 16, static_cast<std::uint32_t>(len - 2));
      const Bytes b(reinterpret_cast<const std::byte*>(body + 2), len - 2);
      std::uint32_t crc = crc32(Bytes(h.data(), h.size()));
      crc = crc32(b, crc);
      std::array<std::byte, 4> t{};
      put32(t.data(), crc);
      (void)!::write(fd, h.data(), h.size());
      (void)!::write(fd, b.data(), b.size());
      (void)!::write(fd, t.data(), t.size());
    } else {
      (void)!::write(fd, body, len);
    }
    ::close(fd);
  }
  {
    FileSessionStore store(g_load);
    FUZZ_CHECK(store.open(g_dir).has_value());
    CheckingVisitor v(g_load);
    (void)store.load(v);
  }
  FileSessionStore store(g_load);
  FUZZ_CHECK(store.open(g_dir).has_value());
  if (auto first = check_restored_session(store)) check_restore_again(store, *first);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool files = data[0] & 1;
  const bool sealed = data[0] & 2;
  if (files) {
    run_files(data + 1, size - 1, sealed);
  } else {
    run_memory(data + 1, size - 1, sealed);
  }
  return 0;
}
