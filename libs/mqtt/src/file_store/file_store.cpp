// FileSessionStore: one checksummed file per record, written with temp file + fsync + rename +
// directory fsync, so that a crash leaves each record either old or new, never torn.
#include "edgekit/mqtt/file_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>

#include "edgekit/mqtt/codec.hpp"

namespace edgekit::mqtt {

namespace {

// File header layout (little endian):
//   [0..3] "EKS1"  [4] kind  [5] state  [6] version  [7] zero  [8..9] packet id  [10..11] zero
//   [12..15] sequence  [16..19] body length  [20..23] zero
// then the body, then the CRC-32 of header and body.
constexpr std::size_t kHeader = 24;
constexpr std::size_t kTrailer = 4;
constexpr std::uint8_t kKindMeta = 1;
constexpr std::uint8_t kKindPublish = 2;
constexpr std::uint8_t kKindReleased = 3;
constexpr std::uint8_t kKindIncoming = 4;
constexpr std::size_t kNameMax = 32;

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

void make_header(std::byte (&h)[kHeader], std::uint8_t kind, std::uint8_t state, Version version,
                 std::uint16_t packet_id, std::uint32_t sequence, std::uint32_t body) noexcept {
  std::memset(h, 0, kHeader);
  std::memcpy(h, "EKS1", 4);
  h[4] = std::byte{kind};
  h[5] = std::byte{state};
  h[6] = std::byte{static_cast<std::uint8_t>(version)};
  put16(h + 8, packet_id);
  put32(h + 12, sequence);
  put32(h + 16, body);
}

// "p-123" etc.
std::string_view record_name(char (&buf)[kNameMax], char prefix, std::uint16_t id) noexcept {
  const int n = std::snprintf(buf, sizeof buf, "%c-%u", prefix, static_cast<unsigned>(id));
  return {buf, static_cast<std::size_t>(n)};
}

// Parses "p-123" → 'p', 123. Returns false for any other name, also for "p-0123": a record is
// addressed by the name the store makes from its id (record_name), so a name that is not that
// one is a foreign file, never loaded (loading it would hand out a record that set_aside_publish
// and remove_publish could not find).
bool parse_name(const char* name, char& prefix, std::uint16_t& id) noexcept {
  if (name[0] == '\0' || name[1] != '-' || name[2] == '\0' || name[2] == '0') return false;
  prefix = name[0];
  std::uint32_t v = 0;
  for (const char* p = name + 2; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + static_cast<std::uint32_t>(*p - '0');
    if (v > 65535) return false;
  }
  if (v == 0) return false;
  id = static_cast<std::uint16_t>(v);
  return true;
}

// Puts the name of publish `id`'s record into `name`. Errors: NotConnected, UnknownPacketId (no
// such record), PersistenceFailed.
Result<void> find_publish(int dir_fd, char (&name)[kNameMax], std::uint16_t id) noexcept {
  if (dir_fd < 0) return fail(Errc::NotConnected);
  record_name(name, 'p', id);
  struct stat st;
  if (::fstatat(dir_fd, name, &st, 0) != 0) {
    return fail(errno == ENOENT ? Errc::UnknownPacketId : Errc::PersistenceFailed);
  }
  return {};
}

bool ends_with(const char* s, const char* suffix) noexcept {
  const std::size_t a = std::strlen(s), b = std::strlen(suffix);
  return a >= b && std::memcmp(s + a - b, suffix, b) == 0;
}

bool write_all(int fd, iovec* iov, int count) noexcept {
  while (count > 0) {
    const ssize_t n = ::writev(fd, iov, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    std::size_t left = static_cast<std::size_t>(n);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return true;
}

}  // namespace

FileSessionStore::~FileSessionStore() {
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

Result<void> FileSessionStore::open(std::string_view directory) noexcept {
  if (directory.empty()) return fail(Errc::InvalidArgument);
  if (directory.size() > kMaxPathLength) return fail(Errc::StringTooLong);
  std::memcpy(dir_, directory.data(), directory.size());
  dir_[directory.size()] = '\0';
  dir_length_ = directory.size();
  if (::mkdir(dir_, 0700) != 0 && errno != EEXIST) return fail(Errc::PersistenceFailed);
  if (dir_fd_ >= 0) ::close(dir_fd_);
  dir_fd_ = ::open(dir_, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return fail(Errc::PersistenceFailed);
  return {};
}

namespace {

// Writes `name` atomically inside the directory `dir_fd`: temp file, fsync, rename, fsync of
// the directory (so that the rename itself is durable).
Result<void> write_record(int dir_fd, std::string_view name, const std::byte (&header)[kHeader],
                          std::span<const Bytes> body_parts) noexcept {
  if (dir_fd < 0) return fail(Errc::NotConnected);
  char tmp[kNameMax + 8];
  std::snprintf(tmp, sizeof tmp, "%.*s.tmp", static_cast<int>(name.size()), name.data());
  char final_name[kNameMax];
  std::snprintf(final_name, sizeof final_name, "%.*s", static_cast<int>(name.size()), name.data());

  std::uint32_t crc = crc32(Bytes(header, kHeader));
  for (Bytes part : body_parts) crc = crc32(part, crc);
  std::byte trailer[kTrailer];
  put32(trailer, crc);

  iovec iov[8];
  int count = 0;
  iov[count++] = {const_cast<std::byte*>(header), kHeader};
  for (Bytes part : body_parts) {
    if (count >= 7) return fail(Errc::InvalidArgument);
    if (!part.empty()) iov[count++] = {const_cast<std::byte*>(part.data()), part.size()};
  }
  iov[count++] = {trailer, kTrailer};

  const int fd = ::openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail(Errc::PersistenceFailed);
  const bool ok = write_all(fd, iov, count) && ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!ok || !closed || ::renameat(dir_fd, tmp, dir_fd, final_name) != 0) {
    (void)::unlinkat(dir_fd, tmp, 0);
    return fail(Errc::PersistenceFailed);
  }
  if (::fsync(dir_fd) != 0) return fail(Errc::PersistenceFailed);
  return {};
}

Result<void> remove_record(int dir_fd, std::string_view name) noexcept {
  if (dir_fd < 0) return fail(Errc::NotConnected);
  char n[kNameMax];
  std::snprintf(n, sizeof n, "%.*s", static_cast<int>(name.size()), name.data());
  if (::unlinkat(dir_fd, n, 0) != 0) {
    if (errno == ENOENT) return {};
    return fail(Errc::PersistenceFailed);
  }
  if (::fsync(dir_fd) != 0) return fail(Errc::PersistenceFailed);
  return {};
}

}  // namespace

Result<void> FileSessionStore::save_publish(std::uint32_t sequence, const Publish& publish,
                                            Version version) noexcept {
  if (dir_fd_ < 0) return fail(Errc::NotConnected);
  auto total = encoded_size(publish, version);
  if (!total) return fail(total.error());
  // The publish header (topic, properties) is encoded into a stack buffer; the payload is
  // written straight from the caller's memory (writev), never copied.
  std::byte stack_buf[2048];
  std::unique_ptr<std::byte[]> heap_buf;
  std::span<std::byte> hbuf(stack_buf);
  const std::size_t header_need = *total - publish.payload.size();
  if (header_need > sizeof stack_buf) {
    heap_buf.reset(new (std::nothrow) std::byte[header_need]);
    if (!heap_buf) return fail(Errc::PersistenceFailed);
    hbuf = std::span<std::byte>(heap_buf.get(), header_need);
  }
  auto hlen = encode_publish_header(publish, version, hbuf);
  if (!hlen) return fail(hlen.error());
  std::byte header[kHeader];
  make_header(header, kKindPublish, static_cast<std::uint8_t>(StoredPublishState::AwaitAck),
              version, publish.packet_id, sequence,
              static_cast<std::uint32_t>(*hlen + publish.payload.size()));
  const Bytes parts[] = {Bytes(hbuf.data(), *hlen), publish.payload};
  char name[kNameMax];
  // A stale release marker of an earlier publish with this id must not apply to this one.
  EDGEKIT_TRY(remove_record(dir_fd_, record_name(name, 'r', publish.packet_id)));
  return write_record(dir_fd_, record_name(name, 'p', publish.packet_id), header, parts);
}

Result<void> FileSessionStore::mark_publish_released(std::uint16_t packet_id,
                                                     std::uint32_t sequence) noexcept {
  char name[kNameMax];
  EDGEKIT_TRY(find_publish(dir_fd_, name, packet_id));
  std::byte header[kHeader];
  make_header(header, kKindReleased, static_cast<std::uint8_t>(StoredPublishState::AwaitPubComp),
              Version::V5, packet_id, sequence, 0);
  return write_record(dir_fd_, record_name(name, 'r', packet_id), header, {});
}

Result<void> FileSessionStore::remove_publish(std::uint16_t packet_id) noexcept {
  char name[kNameMax];
  // The publish first: a crash in between leaves only an orphan marker, which load discards.
  EDGEKIT_TRY(remove_record(dir_fd_, record_name(name, 'p', packet_id)));
  return remove_record(dir_fd_, record_name(name, 'r', packet_id));
}

Result<void> FileSessionStore::save_incoming_qos2(std::uint16_t packet_id) noexcept {
  if (packet_id == 0) return fail(Errc::PacketIdZero);
  std::byte header[kHeader];
  make_header(header, kKindIncoming, 0, Version::V5, packet_id, 0, 0);
  char name[kNameMax];
  return write_record(dir_fd_, record_name(name, 'q', packet_id), header, {});
}

Result<void> FileSessionStore::remove_incoming_qos2(std::uint16_t packet_id) noexcept {
  char name[kNameMax];
  return remove_record(dir_fd_, record_name(name, 'q', packet_id));
}

Result<void> FileSessionStore::save_meta(const SessionMeta& meta) noexcept {
  if (meta.client_id.size() > 65535) return fail(Errc::StringTooLong);
  std::byte body[6];
  put32(body, meta.session_expiry_interval);
  put16(body + 4, static_cast<std::uint16_t>(meta.client_id.size()));
  std::byte header[kHeader];
  make_header(header, kKindMeta, 0, meta.version, 0, 0,
              static_cast<std::uint32_t>(6 + meta.client_id.size()));
  const Bytes parts[] = {Bytes(body, 6), as_bytes(meta.client_id)};
  return write_record(dir_fd_, "meta", header, parts);
}

Result<void> FileSessionStore::clear_session() noexcept {
  if (dir_fd_ < 0) return fail(Errc::NotConnected);
  const int fd = ::dup(dir_fd_);
  if (fd < 0) return fail(Errc::PersistenceFailed);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return fail(Errc::PersistenceFailed);
  }
  ::rewinddir(d);
  bool ok = true;
  while (dirent* e = ::readdir(d)) {
    char prefix = 0;
    std::uint16_t id = 0;
    const bool record = parse_name(e->d_name, prefix, id) &&
                        (prefix == 'p' || prefix == 'r' || prefix == 'q');
    if (record || ends_with(e->d_name, ".tmp")) {
      if (::unlinkat(dir_fd_, e->d_name, 0) != 0 && errno != ENOENT) ok = false;
    }
  }
  ::closedir(d);
  if (::fsync(dir_fd_) != 0) ok = false;
  return ok ? Result<void>{} : fail(Errc::PersistenceFailed);
}

namespace {

enum class ReadStatus { Ok, Missing, Corrupt, Failed, NoRoom };

// Reads and verifies one record file into `buf`. On Ok, `header` points at its header in `buf`
// and `body` at its body.
ReadStatus read_record(int dir_fd, const char* name, std::uint8_t kind, std::uint16_t packet_id,
                       std::span<std::byte> buf, std::size_t& used, const std::byte*& header,
                       Bytes& body) noexcept {
  const int fd = ::openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? ReadStatus::Missing : ReadStatus::Failed;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return ReadStatus::Failed;
  }
  const std::size_t size = static_cast<std::size_t>(st.st_size);
  if (size < kHeader + kTrailer) {
    ::close(fd);
    return ReadStatus::Corrupt;  // truncated
  }
  if (size > buf.size() - used) {
    ::close(fd);
    return ReadStatus::NoRoom;
  }
  std::byte* p = buf.data() + used;
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::read(fd, p + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got != size) return ReadStatus::Failed;
  const std::uint32_t body_len = get32(p + 16);
  const std::uint8_t version = std::to_integer<std::uint8_t>(p[6]);
  if (std::memcmp(p, "EKS1", 4) != 0 || std::size_t{body_len} + kHeader + kTrailer != size ||
      std::to_integer<std::uint8_t>(p[4]) != kind || get16(p + 8) != packet_id ||
      (version != 4 && version != 5) ||
      crc32(Bytes(p, kHeader + body_len)) != get32(p + kHeader + body_len)) {
    return ReadStatus::Corrupt;
  }
  header = p;
  body = Bytes(p + kHeader, body_len);
  used += size;
  return ReadStatus::Ok;
}

// A record that failed its check, or that the session could not restore, is renamed aside: kept
// for inspection and recovery, never loaded again (a `.bad` name never parses as a record), and
// never replaced: an existing `.bad` of the same record (an earlier one set aside under the same
// packet id) is left alone and the next free `<name>.N.bad` is taken. If it cannot be renamed it
// stays where it is and the caller fails: deleting it would lose the message silently.
// (One store per directory, so nothing else creates names between the check and the rename.)
bool set_aside(int dir_fd, const char* name) noexcept {
  char bad[kNameMax + 16];
  for (unsigned n = 1; n < 10'000; ++n) {
    if (n == 1) {
      std::snprintf(bad, sizeof bad, "%s.bad", name);
    } else {
      std::snprintf(bad, sizeof bad, "%s.%u.bad", name, n);
    }
    struct stat st;
    if (::fstatat(dir_fd, bad, &st, AT_SYMLINK_NOFOLLOW) == 0) continue;
    if (errno != ENOENT) return false;
    if (::renameat(dir_fd, name, dir_fd, bad) != 0) return false;
    return ::fsync(dir_fd) == 0;
  }
  return false;
}

}  // namespace

Result<void> FileSessionStore::load(SessionStoreVisitor& visitor) noexcept {
  if (dir_fd_ < 0) return fail(Errc::NotConnected);
  std::size_t used = 0;
  const std::byte* header = nullptr;
  Bytes body;

  switch (read_record(dir_fd_, "meta", kKindMeta, 0, load_buffer_, used, header, body)) {
    case ReadStatus::Ok: {
      if (body.size() < 6 || std::size_t{get16(body.data() + 4)} + 6 != body.size()) {
        if (!set_aside(dir_fd_, "meta")) return fail(Errc::PersistenceFailed);
        EDGEKIT_TRY(visitor.on_corrupt(
            CorruptRecord{"meta", Errc::PersistenceCorrupted, StoredRecordKind::Meta}));
        break;
      }
      SessionMeta meta;
      meta.version = static_cast<Version>(std::to_integer<std::uint8_t>(header[6]));
      meta.session_expiry_interval = get32(body.data());
      meta.client_id = as_string(body.subspan(6));
      EDGEKIT_TRY(visitor.on_meta(meta));
      break;
    }
    case ReadStatus::Missing: break;
    case ReadStatus::Corrupt:
      if (!set_aside(dir_fd_, "meta")) return fail(Errc::PersistenceFailed);
      EDGEKIT_TRY(visitor.on_corrupt(
          CorruptRecord{"meta", Errc::PersistenceCorrupted, StoredRecordKind::Meta}));
      break;
    case ReadStatus::NoRoom: return fail(Errc::BufferTooSmall);
    case ReadStatus::Failed: return fail(Errc::PersistenceFailed);
  }

  const int fd = ::dup(dir_fd_);
  if (fd < 0) return fail(Errc::PersistenceFailed);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return fail(Errc::PersistenceFailed);
  }
  ::rewinddir(d);
  Result<void> result;
  while (dirent* e = ::readdir(d)) {
    const char* name = e->d_name;
    if (ends_with(name, ".tmp")) {
      // A write that a crash interrupted before its rename: the record it was replacing (if
      // any) is still intact under its real name.
      (void)::unlinkat(dir_fd_, name, 0);
      continue;
    }
    char prefix = 0;
    std::uint16_t id = 0;
    if (!parse_name(name, prefix, id)) continue;  // meta, *.bad, foreign files
    char other[kNameMax];
    if (prefix == 'r') {
      // An orphan release marker (its publish was removed, a crash came before the marker).
      struct stat st;
      if (::fstatat(dir_fd_, record_name(other, 'p', id).data(), &st, 0) != 0 && errno == ENOENT) {
        (void)::unlinkat(dir_fd_, name, 0);
      }
      continue;
    }
    const std::uint8_t kind = prefix == 'p' ? kKindPublish : prefix == 'q' ? kKindIncoming : 0;
    if (kind == 0) continue;
    const ReadStatus st = read_record(dir_fd_, name, kind, id, load_buffer_, used, header, body);
    if (st == ReadStatus::Missing) continue;
    if (st == ReadStatus::NoRoom) {
      result = fail(Errc::BufferTooSmall);
      break;
    }
    if (st == ReadStatus::Failed) {
      result = fail(Errc::PersistenceFailed);
      break;
    }
    if (st == ReadStatus::Corrupt) {
      if (!set_aside(dir_fd_, name)) {
        result = fail(Errc::PersistenceFailed);
        break;
      }
      result = visitor.on_corrupt(CorruptRecord{
          name, Errc::PersistenceCorrupted,
          kind == kKindPublish ? StoredRecordKind::Publish : StoredRecordKind::IncomingQoS2});
      if (!result) break;
      continue;
    }
    if (kind == kKindIncoming) {
      result = visitor.on_incoming_qos2(id);
      if (!result) break;
      continue;
    }
    StoredPublish p;
    p.packet_id = id;
    p.version = static_cast<Version>(std::to_integer<std::uint8_t>(header[6]));
    p.sequence = get32(header + 12);
    p.state = StoredPublishState::AwaitAck;
    p.packet = body;
    // The release marker, if any, carries the state and the new sequence.
    const std::byte* rh = nullptr;
    Bytes rbody;
    std::size_t rused = used;
    const char* rname = record_name(other, 'r', id).data();
    const ReadStatus rs = read_record(dir_fd_, rname, kKindReleased, id, load_buffer_, rused, rh, rbody);
    if (rs == ReadStatus::Ok) {
      p.state = StoredPublishState::AwaitPubComp;
      p.sequence = get32(rh + 12);
      used = rused;
    } else if (rs == ReadStatus::Corrupt) {
      // Without a trustworthy marker the publish is resent as a PUBLISH (DUP): the server
      // answers PUBREC again, so nothing is lost or duplicated.
      if (!set_aside(dir_fd_, rname)) {
        result = fail(Errc::PersistenceFailed);
        break;
      }
      result = visitor.on_corrupt(
          CorruptRecord{rname, Errc::PersistenceCorrupted, StoredRecordKind::Released});
      if (!result) break;
    } else if (rs == ReadStatus::NoRoom) {
      result = fail(Errc::BufferTooSmall);
      break;
    } else if (rs == ReadStatus::Failed) {
      result = fail(Errc::PersistenceFailed);
      break;
    }
    result = visitor.on_publish(p);
    if (!result) break;
  }
  ::closedir(d);
  return result;
}

Result<void> FileSessionStore::set_aside_publish(std::uint16_t packet_id) noexcept {
  char name[kNameMax];
  EDGEKIT_TRY(find_publish(dir_fd_, name, packet_id));
  // The marker first: should the publish's rename then fail, the publish is still a record
  // (the caller fails, nothing is lost but its state); the other order could leave the
  // marker behind for a later publish under this id.
  char marker[kNameMax];
  record_name(marker, 'r', packet_id);
  struct stat st;
  if (::fstatat(dir_fd_, marker, &st, 0) == 0 && !set_aside(dir_fd_, marker)) {
    return fail(Errc::PersistenceFailed);
  }
  if (!set_aside(dir_fd_, name)) return fail(Errc::PersistenceFailed);
  return {};
}

}  // namespace edgekit::mqtt
