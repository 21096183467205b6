#pragma once
// The token folder: one token file and one file per token object. Every write goes to a temporary
// file of a unique name (mkstemp) that is fsync'd, renamed over the old one, and followed by an
// fsync of the folder, so a crash leaves either the old or the new file, never a torn one.
//
// Several processes share a folder: every read-modify-write of it happens under an exclusive
// flock() of the folder itself (a lock file could not be made in a read-only folder), reads under
// a shared one, and the token record carries a generation counter, bumped by every change of the
// object files, so another process knows when to load them again.

#include "token/attributes.hpp"
#include "token/secure_bytes.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace edgekit::pkcs11::token {

/// What the token file holds. The master key encrypts private objects; it is stored twice,
/// sealed under a key derived from the user PIN and under one derived from the SO PIN, so that
/// the SO can set a new user PIN without losing the user's keys.
struct TokenRecord {
  char label[32] = {};
  char serial[16] = {};
  std::uint32_t iterations = 0;  // PBKDF2-HMAC-SHA256 rounds for both PINs
  Bytes so_salt;
  Bytes so_sealed_key;
  bool user_pin_initialized = false;
  Bytes user_salt;
  Bytes user_sealed_key;
  std::uint32_t so_failures = 0;
  std::uint32_t user_failures = 0;
  Bytes integrity_key;  // HMAC key of public object files (see docs: corruption, not an adversary)
  /// Bumped by every change of the object files (version 2 of the file; 0 in a version 1 file).
  std::uint64_t generation = 0;
};

/// Token file encoding: "EKP11TOK" | u8 version (2) | fields | u64 generation | SHA-256 of
/// everything before. Version 1 files (no generation) are read too.
void encode_token_record(const TokenRecord& r, Bytes& out);
/// False unless `in` is a complete, checksum-valid record.
bool decode_token_record(std::span<const std::uint8_t> in, TokenRecord& out);

/// What a read or write of the folder met. The causes are kept apart so that the token can name
/// them (issue 11, point 5): damage is not a permission problem, nor a read-only folder.
enum class LoadStatus {
  Ok,
  Missing,   // no such file (or folder)
  Corrupt,   // the content fails its checks: real damage
  NoAccess,  // EACCES/EPERM reading: the folder or file belongs to another user, or its mode
  ReadOnly,  // EROFS, or EACCES/EPERM writing: this process may read but not write the folder
  NoSpace,   // ENOSPC/EDQUOT
  IoError,   // anything else (EIO, ...)
};
/// Writes report the same causes.
using StoreStatus = LoadStatus;
/// The cause named in words, for diagnostics ("permission denied", "read-only", ...).
const char* describe(LoadStatus s);

/// An flock() of the token folder, released when destroyed. Move-only.
class FolderLock {
 public:
  FolderLock() = default;
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  ~FolderLock();
  bool held() const { return fd_ >= 0; }

 private:
  friend class TokenStore;
  int fd_ = -1;
};

struct StoredObject {
  std::uint64_t id = 0;
  ObjectKind kind = ObjectKind::Public;
  AttributeMap attributes;
};

/// Decodes and authenticates one object file. `master_key` may be empty (private files then fail
/// with Corrupt unless `skip_private`). Returns Ok, Corrupt, or Missing when the file is private
/// and `skip_private` is set.
LoadStatus load_object_file(std::span<const std::uint8_t> file, std::uint64_t expected_id,
                            std::span<const std::uint8_t> integrity_key,
                            std::span<const std::uint8_t> master_key, bool skip_private,
                            StoredObject& out);
/// Encodes an object file (MAC'd if public, sealed if private).
bool encode_object_file(const StoredObject& obj, std::span<const std::uint8_t> integrity_key,
                        std::span<const std::uint8_t> master_key, Bytes& out);

/// A token folder on disk. Not thread safe: the token serialises access.
class TokenStore {
 public:
  TokenStore() = default;
  explicit TokenStore(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }
  /// Creates the folder (mode 0700) if needed.
  bool ensure_dir() const;
  /// Locks the folder (shared or exclusive; blocks until granted). Missing when there is no
  /// folder yet, NoAccess when it cannot be opened.
  StoreStatus lock(bool exclusive, FolderLock& out) const;
  /// The token file's bytes as they are on disk (to notice another process's change).
  LoadStatus read_record_bytes(Bytes& out) const;
  LoadStatus load_record(TokenRecord& out) const;
  /// Writes the record; `written` (if given) receives the bytes written.
  StoreStatus save_record(const TokenRecord& r, Bytes* written = nullptr) const;

  /// Loads every object file. Public files always; private ones only when `master_key` is given.
  /// Files that fail to decode or authenticate go to `damaged` (their names) and are skipped;
  /// files this process may not read go to `unreadable` (when given), else to `damaged`.
  void load_objects(std::span<const std::uint8_t> integrity_key,
                    std::span<const std::uint8_t> master_key, bool want_private,
                    std::vector<StoredObject>& out, std::vector<std::string>& damaged,
                    std::vector<std::string>* unreadable = nullptr) const;
  StoreStatus save_object(const StoredObject& obj, std::span<const std::uint8_t> integrity_key,
                          std::span<const std::uint8_t> master_key) const;
  StoreStatus remove_object(std::uint64_t id) const;
  StoreStatus remove_all_objects() const;

  static std::string object_file_name(std::uint64_t id);

 private:
  StoreStatus write_atomic(const std::string& name, std::span<const std::uint8_t> data) const;
  LoadStatus read_file(const std::string& name, Bytes& out) const;
  std::string dir_;
};

}  // namespace edgekit::pkcs11::token
