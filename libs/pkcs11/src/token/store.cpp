#include "token/store.hpp"

#include "token/crypto.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace edgekit::pkcs11::token {
namespace {

constexpr std::uint8_t kTokenMagic[8] = {'E', 'K', 'P', '1', '1', 'T', 'O', 'K'};
constexpr const char* kTokenFile = "token.ekt";
constexpr std::size_t kMaxFileSize = 1024 * 1024;

constexpr std::uint8_t kRecordVersion = 2;

void put_u32(Bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_u64(Bytes& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// errno of a failed read (open, read, opendir) or write (create, write, rename, unlink) as a
// cause. A write refused for permissions means the folder is read-only to this process.
LoadStatus read_errno(int e) {
  if (e == ENOENT || e == ENOTDIR) return LoadStatus::Missing;
  if (e == EACCES || e == EPERM) return LoadStatus::NoAccess;
  return LoadStatus::IoError;
}
StoreStatus write_errno(int e) {
  if (e == EROFS || e == EACCES || e == EPERM) return StoreStatus::ReadOnly;
  if (e == ENOSPC || e == EDQUOT) return StoreStatus::NoSpace;
  return StoreStatus::IoError;
}
void put_blob(Bytes& out, std::span<const std::uint8_t> b) {
  out.push_back(static_cast<std::uint8_t>(b.size()));
  out.push_back(static_cast<std::uint8_t>(b.size() >> 8));
  out.insert(out.end(), b.begin(), b.end());
}

struct Reader {
  std::span<const std::uint8_t> in;
  std::size_t pos = 0;
  bool ok = true;
  const std::uint8_t* take(std::size_t n) {
    if (!ok || in.size() - pos < n) {
      ok = false;
      return nullptr;
    }
    const std::uint8_t* p = in.data() + pos;
    pos += n;
    return p;
  }
  std::uint32_t u32() {
    const std::uint8_t* p = take(4);
    return p == nullptr ? 0 : (std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 |
                               std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24);
  }
  std::uint64_t u64() {
    const std::uint64_t lo = u32();
    return lo | std::uint64_t{u32()} << 32;
  }
  void blob(Bytes& out, std::size_t max) {
    const std::uint8_t* p = take(2);
    if (p == nullptr) return;
    const std::size_t n = p[0] | (std::size_t{p[1]} << 8);
    if (n > max) {
      ok = false;
      return;
    }
    const std::uint8_t* v = take(n);
    if (v != nullptr) out.assign(v, v + n);
  }
};

StoreStatus fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return write_errno(errno);
  const bool ok = ::fsync(fd) == 0;
  const int e = errno;
  ::close(fd);
  return ok ? StoreStatus::Ok : write_errno(e);
}

}  // namespace

void encode_token_record(const TokenRecord& r, Bytes& out) {
  out.assign(kTokenMagic, kTokenMagic + sizeof kTokenMagic);
  out.push_back(kRecordVersion);
  out.insert(out.end(), r.label, r.label + sizeof r.label);
  out.insert(out.end(), r.serial, r.serial + sizeof r.serial);
  put_u32(out, r.iterations);
  put_blob(out, view(r.so_salt));
  put_blob(out, view(r.so_sealed_key));
  out.push_back(r.user_pin_initialized ? 1 : 0);
  put_blob(out, view(r.user_salt));
  put_blob(out, view(r.user_sealed_key));
  put_u32(out, r.so_failures);
  put_u32(out, r.user_failures);
  put_blob(out, view(r.integrity_key));
  put_u64(out, r.generation);
  std::uint8_t digest[32];
  if (!sha256(view(out), digest)) {
    out.clear();
    return;
  }
  out.insert(out.end(), digest, digest + sizeof digest);
}

bool decode_token_record(std::span<const std::uint8_t> in, TokenRecord& out) {
  if (in.size() < sizeof kTokenMagic + 1 + 32) return false;
  const auto body = in.first(in.size() - 32);
  std::uint8_t digest[32];
  if (!sha256(body, digest) || CRYPTO_memcmp(digest, in.data() + body.size(), 32) != 0) {
    return false;
  }
  Reader r{body};
  const std::uint8_t* magic = r.take(sizeof kTokenMagic);
  if (magic == nullptr || std::memcmp(magic, kTokenMagic, sizeof kTokenMagic) != 0) return false;
  const std::uint8_t* version = r.take(1);
  if (version == nullptr || *version == 0 || *version > kRecordVersion) return false;
  const std::uint8_t* label = r.take(sizeof out.label);
  const std::uint8_t* serial = r.take(sizeof out.serial);
  if (label == nullptr || serial == nullptr) return false;
  std::memcpy(out.label, label, sizeof out.label);
  std::memcpy(out.serial, serial, sizeof out.serial);
  out.iterations = r.u32();
  r.blob(out.so_salt, 64);
  r.blob(out.so_sealed_key, 64 + kSealOverhead);
  const std::uint8_t* init = r.take(1);
  out.user_pin_initialized = init != nullptr && *init == 1;
  if (init != nullptr && *init > 1) return false;
  r.blob(out.user_salt, 64);
  r.blob(out.user_sealed_key, 64 + kSealOverhead);
  out.so_failures = r.u32();
  out.user_failures = r.u32();
  r.blob(out.integrity_key, 64);
  out.generation = *version >= 2 ? r.u64() : 0;
  if (!r.ok || r.pos != body.size()) return false;
  // Values no writer of ours produces are corruption, not configuration.
  return out.iterations >= 1000 && out.so_salt.size() >= 16 && out.integrity_key.size() == 32 &&
         out.so_sealed_key.size() == 32 + kSealOverhead &&
         (!out.user_pin_initialized || out.user_sealed_key.size() == 32 + kSealOverhead);
}

LoadStatus load_object_file(std::span<const std::uint8_t> file, std::uint64_t expected_id,
                            std::span<const std::uint8_t> integrity_key,
                            std::span<const std::uint8_t> master_key, bool skip_private,
                            StoredObject& out) {
  ObjectFrame frame;
  if (!parse_object_frame(file, frame) || frame.id != expected_id) return LoadStatus::Corrupt;
  out.id = frame.id;
  out.kind = frame.kind;
  if (frame.kind == ObjectKind::Public) {
    Bytes signed_part(frame.header.begin(), frame.header.end());
    signed_part.insert(signed_part.end(), frame.payload.begin(), frame.payload.end());
    std::uint8_t mac[32];
    if (!hmac_sha256(integrity_key, view(signed_part), mac) ||
        CRYPTO_memcmp(mac, frame.trailer.data(), kMacSize) != 0) {
      return LoadStatus::Corrupt;
    }
    if (!decode_attributes(frame.payload, out.attributes)) return LoadStatus::Corrupt;
  } else {
    if (skip_private) return LoadStatus::Missing;
    Bytes plain;
    if (!open(master_key, frame.header, frame.payload, plain)) return LoadStatus::Corrupt;
    if (!decode_attributes(view(plain), out.attributes)) return LoadStatus::Corrupt;
  }
  // The kind in the header must agree with the object's own CKA_PRIVATE.
  const bool is_private = bool_or(out.attributes, CKA_PRIVATE, true);
  if (is_private != (frame.kind == ObjectKind::Private)) return LoadStatus::Corrupt;
  if (!get_ulong(out.attributes, CKA_CLASS)) return LoadStatus::Corrupt;
  return LoadStatus::Ok;
}

bool encode_object_file(const StoredObject& obj, std::span<const std::uint8_t> integrity_key,
                        std::span<const std::uint8_t> master_key, Bytes& out) {
  std::uint8_t header[kObjectHeaderSize];
  make_object_header(obj.kind, obj.id, header);
  Bytes payload;
  encode_attributes(obj.attributes, payload);
  out.assign(header, header + sizeof header);
  if (obj.kind == ObjectKind::Public) {
    out.insert(out.end(), payload.begin(), payload.end());
    std::uint8_t mac[32];
    if (!hmac_sha256(integrity_key, view(out), mac)) return false;
    out.insert(out.end(), mac, mac + sizeof mac);
    return true;
  }
  Bytes sealed;
  if (!seal(master_key, header, view(payload), sealed)) return false;
  out.insert(out.end(), sealed.begin(), sealed.end());
  return true;
}

std::string TokenStore::object_file_name(std::uint64_t id) {
  char name[40];
  std::snprintf(name, sizeof name, "obj-%016llx.eko", static_cast<unsigned long long>(id));
  return name;
}

bool TokenStore::ensure_dir() const {
  // mkdir -p, each level private to the owner.
  std::string path;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir_.find('/', pos + 1);
    path = dir_.substr(0, pos);
    if (path.empty()) continue;
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  struct stat st{};
  return ::stat(dir_.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

StoreStatus TokenStore::write_atomic(const std::string& name,
                                     std::span<const std::uint8_t> data) const {
  const std::string final_path = dir_ + "/" + name;
  // A unique name per writer: two processes (or a crash's leftover) never share a temporary file.
  std::string tmp_path = final_path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp_path.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) return write_errno(errno);
  std::size_t done = 0;
  int e = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      e = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (done == data.size() && ::fsync(fd) != 0) e = errno;
  ::close(fd);
  if (e == 0 && ::rename(tmp_path.c_str(), final_path.c_str()) != 0) e = errno;
  if (e != 0) {
    ::unlink(tmp_path.c_str());
    return write_errno(e);
  }
  return fsync_dir(dir_);
}

LoadStatus TokenStore::read_file(const std::string& name, Bytes& out) const {
  const std::string path = dir_ + "/" + name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return read_errno(errno);
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<std::size_t>(st.st_size) > kMaxFileSize) {
    ::close(fd);
    return LoadStatus::Corrupt;
  }
  out.assign(static_cast<std::size_t>(st.st_size), 0);
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  // A file that ends early changed under us or is damaged; an error is the device's.
  if (done != out.size()) return LoadStatus::IoError;
  return LoadStatus::Ok;
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

StoreStatus TokenStore::lock(bool exclusive, FolderLock& out) const {
  if (out.fd_ >= 0) {
    ::close(out.fd_);
    out.fd_ = -1;
  }
  // The folder itself is locked: it exists whenever there is a token, and flock() needs no
  // write permission, so a read-only folder can still be read consistently. flock() locks are
  // per open file description, so each lock is its own open(): threads of this process are
  // serialised by the token's mutex first, and a fork()ed child never shares its parent's lock.
  const int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return read_errno(errno);
  int rc;
  do {
    rc = ::flock(fd, exclusive ? LOCK_EX : LOCK_SH);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int e = errno;
    ::close(fd);
    return e == ENOLCK ? StoreStatus::IoError : read_errno(e);
  }
  out.fd_ = fd;
  return StoreStatus::Ok;
}

LoadStatus TokenStore::read_record_bytes(Bytes& out) const { return read_file(kTokenFile, out); }

LoadStatus TokenStore::load_record(TokenRecord& out) const {
  Bytes data;
  const LoadStatus s = read_file(kTokenFile, data);
  if (s != LoadStatus::Ok) return s;
  return decode_token_record(view(data), out) ? LoadStatus::Ok : LoadStatus::Corrupt;
}

StoreStatus TokenStore::save_record(const TokenRecord& r, Bytes* written) const {
  Bytes data;
  encode_token_record(r, data);
  if (data.empty()) return StoreStatus::IoError;
  const StoreStatus s = write_atomic(kTokenFile, view(data));
  if (s == StoreStatus::Ok && written != nullptr) *written = std::move(data);
  return s;
}

void TokenStore::load_objects(std::span<const std::uint8_t> integrity_key,
                              std::span<const std::uint8_t> master_key, bool want_private,
                              std::vector<StoredObject>& out, std::vector<std::string>& damaged,
                              std::vector<std::string>* unreadable) const {
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return;
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() == 24 && name.compare(0, 4, "obj-") == 0 &&
        name.compare(20, 4, ".eko") == 0) {
      names.push_back(name);
    }
  }
  ::closedir(d);
  for (const std::string& name : names) {
    char* end = nullptr;
    const unsigned long long id = std::strtoull(name.c_str() + 4, &end, 16);
    if (end != name.c_str() + 20) {
      damaged.push_back(name);
      continue;
    }
    Bytes data;
    StoredObject obj;
    LoadStatus s = read_file(name, data);
    if (s == LoadStatus::Ok) {
      s = load_object_file(view(data), id, integrity_key, master_key, !want_private, obj);
    }
    if (s == LoadStatus::Ok) {
      out.push_back(std::move(obj));
    } else if (s == LoadStatus::NoAccess && unreadable != nullptr) {
      unreadable->push_back(name);
    } else if (s != LoadStatus::Missing) {  // Missing: removed since the listing, or private
      damaged.push_back(name);
    }
  }
}

StoreStatus TokenStore::save_object(const StoredObject& obj,
                                    std::span<const std::uint8_t> integrity_key,
                                    std::span<const std::uint8_t> master_key) const {
  Bytes data;
  if (!encode_object_file(obj, integrity_key, master_key, data)) return StoreStatus::IoError;
  return write_atomic(object_file_name(obj.id), view(data));
}

StoreStatus TokenStore::remove_object(std::uint64_t id) const {
  const std::string path = dir_ + "/" + object_file_name(id);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return write_errno(errno);
  return fsync_dir(dir_);
}

StoreStatus TokenStore::remove_all_objects() const {
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return errno == ENOENT ? StoreStatus::Ok : read_errno(errno);
  StoreStatus result = StoreStatus::Ok;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.compare(0, 4, "obj-") == 0 && ::unlink((dir_ + "/" + name).c_str()) != 0 &&
        errno != ENOENT && result == StoreStatus::Ok) {
      result = write_errno(errno);
    }
  }
  ::closedir(d);
  if (result != StoreStatus::Ok) return result;
  return fsync_dir(dir_);
}

const char* describe(LoadStatus s) {
  switch (s) {
    case LoadStatus::Ok: return "ok";
    case LoadStatus::Missing: return "not found";
    case LoadStatus::Corrupt: return "damaged (fails its checksum or format checks)";
    case LoadStatus::NoAccess: return "permission denied (the token folder or file belongs to another user, or its mode forbids this user)";
    case LoadStatus::ReadOnly: return "read-only (the token folder cannot be written by this process: read-only file system or no write permission)";
    case LoadStatus::NoSpace: return "no space left on the device";
    case LoadStatus::IoError: return "input/output error";
  }
  return "unknown";
}

}  // namespace edgekit::pkcs11::token
