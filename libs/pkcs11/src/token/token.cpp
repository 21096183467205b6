#include "token/token.hpp"

#include "token/objects.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace edgekit::pkcs11::token {
namespace {

constexpr std::uint32_t kDefaultIterations = 100000;
constexpr std::size_t kMaxSessions = 4096;
constexpr std::uint8_t kUserAad[] = {'e', 'd', 'g', 'e', 'k', 'i', 't', ' ', 'u', 's', 'e', 'r'};
constexpr std::uint8_t kSoAad[] = {'e', 'd', 'g', 'e', 'k', 'i', 't', ' ', 's', 'o'};

void pad(CK_UTF8CHAR* dst, std::size_t n, std::string_view src) {
  std::memset(dst, ' ', n);
  std::memcpy(dst, src.data(), std::min(n, src.size()));
}


std::string_view as_pin(CK_UTF8CHAR_PTR pin, CK_ULONG len) {
  return {reinterpret_cast<const char*>(pin), static_cast<std::size_t>(len)};
}

std::uint32_t iterations_from_env() {
  if (const char* v = std::getenv("EDGEKIT_TOKEN_PBKDF2_ITERATIONS")) {
    const unsigned long n = std::strtoul(v, nullptr, 10);
    if (n >= 1000 && n <= 10000000) return static_cast<std::uint32_t>(n);
  }
  return kDefaultIterations;
}

CK_RV seal_under_pin(std::string_view pin, std::span<const std::uint8_t> aad,
                     std::uint32_t iterations, const Bytes& master_key, Bytes& salt,
                     Bytes& sealed) {
  salt.assign(16, 0);
  Bytes kek;
  if (!random_bytes({salt.data(), salt.size()}) || !pbkdf2(pin, view(salt), iterations, kek) ||
      !seal(view(kek), aad, view(master_key), sealed)) {
    return CKR_FUNCTION_FAILED;
  }
  return CKR_OK;
}

// C_DigestUpdate / C_SignUpdate / C_VerifyUpdate: any failure ends the operation (spec 5.2).
template <class Op>
CK_RV update_operation(std::unique_ptr<Op>& op, CK_BYTE_PTR data, CK_ULONG len) {
  if (!op) return CKR_OPERATION_NOT_INITIALIZED;
  if (data == nullptr && len != 0) {
    op.reset();
    return CKR_ARGUMENTS_BAD;
  }
  const CK_RV rv = op->update({data, len});
  if (rv != CKR_OK) op.reset();
  return rv;
}

}  // namespace

std::string default_token_dir() {
  if (const char* d = std::getenv("EDGEKIT_TOKEN_DIR"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x != nullptr && *x == '/') {
    return std::string(x) + "/edgekit/token";
  }
  if (const char* h = std::getenv("HOME"); h != nullptr && *h == '/') {
    return std::string(h) + "/.local/share/edgekit/token";
  }
  return "/var/lib/edgekit/token";
}

#define EDGEKIT_LOCKED()                          \
  std::lock_guard<std::mutex> guard_(mu_);        \
  if (!initialized_) return CKR_CRYPTOKI_NOT_INITIALIZED

// Locked, and brought up to date with what other processes did to the folder.
#define EDGEKIT_SYNCED()                          \
  EDGEKIT_LOCKED();                               \
  if (CK_RV sync_rv_ = sync(); sync_rv_ != CKR_OK) return sync_rv_

void Token::report(const char* what, const std::string& detail) {
  last_diagnostic_ = std::string(what) + ": " + detail;
  if (std::getenv("EDGEKIT_TOKEN_QUIET") != nullptr) return;
  std::fprintf(stderr, "edgekit-pkcs11: %s\n", last_diagnostic_.c_str());
}

std::string Token::last_diagnostic() {
  std::lock_guard<std::mutex> guard(mu_);
  return last_diagnostic_;
}

CK_RV Token::state_rv() const {
  switch (state_) {
    case TokenState::Ready: return CKR_OK;
    case TokenState::Unreadable: return CKR_TOKEN_NOT_PRESENT;
    case TokenState::Absent:
    case TokenState::Corrupt: break;
  }
  return CKR_TOKEN_NOT_RECOGNIZED;
}

// A failed write or lock as the CKR code that names its cause, with a diagnostic.
CK_RV Token::store_rv(StoreStatus st, const char* what) {
  if (st == StoreStatus::Ok) return CKR_OK;
  report(what, store_.dir() + ": " + describe(st));
  switch (st) {
    case StoreStatus::ReadOnly: return CKR_TOKEN_WRITE_PROTECTED;
    case StoreStatus::NoAccess:
    case StoreStatus::Missing: return CKR_TOKEN_NOT_PRESENT;
    case StoreStatus::NoSpace: return CKR_DEVICE_MEMORY;
    case StoreStatus::Corrupt: return CKR_TOKEN_NOT_RECOGNIZED;
    case StoreStatus::Ok:
    case StoreStatus::IoError: break;
  }
  return CKR_DEVICE_ERROR;
}

CK_RV Token::sync() {
  if (write_locked_) return sync_locked();
  FolderLock lock;
  // No folder (yet): nothing to lock, and the read below finds no token. A folder this process
  // may not open is reported by the read as well.
  (void)store_.lock(false, lock);
  return sync_locked();
}

CK_RV Token::sync_locked() {
  Bytes data;
  const LoadStatus st = store_.read_record_bytes(data);
  if (st == LoadStatus::Ok && state_ == TokenState::Ready && data == record_bytes_) return CKR_OK;
  TokenRecord fresh;
  TokenState next = TokenState::Ready;
  if (st == LoadStatus::Ok && !decode_token_record(view(data), fresh)) next = TokenState::Corrupt;
  if (st == LoadStatus::Missing) next = TokenState::Absent;
  if (st == LoadStatus::NoAccess || st == LoadStatus::IoError) next = TokenState::Unreadable;
  if (st == LoadStatus::Corrupt) next = TokenState::Corrupt;  // not a regular file, too large
  if (next != TokenState::Ready) {
    if (next != state_ || data != record_bytes_) {
      if (next == TokenState::Corrupt) {
        report("token file is damaged, token not recognised (re-initialise it or restore a backup)",
               store_.dir());
      } else if (next == TokenState::Unreadable) {
        report("cannot read the token file", store_.dir() + ": " + describe(st));
      }
    }
    if (state_ == TokenState::Ready) {  // it was a token a moment ago: nothing of it stays
      logout_locked();
      drop_objects(false);
    }
    state_ = next;
    record_ = TokenRecord{};
    record_bytes_ = std::move(data);
    return CKR_OK;
  }
  // The same token (C_InitToken draws a new serial and integrity key) with other counters, PINs
  // or objects; or another one.
  const bool same_token = state_ == TokenState::Ready &&
                          std::memcmp(fresh.serial, record_.serial, sizeof fresh.serial) == 0 &&
                          fresh.integrity_key == record_.integrity_key;
  const bool objects_changed = !same_token || fresh.generation != record_.generation;
  if (!same_token && state_ == TokenState::Ready) {
    // Re-initialised by another process: its master key, and so any login, is gone.
    logout_locked();
    drop_objects(false);
  }
  record_ = std::move(fresh);
  record_bytes_ = std::move(data);
  state_ = TokenState::Ready;
  if (objects_changed) reload_objects();
  return CKR_OK;
}

CK_RV Token::lock_for_write(WriteLock& lock, bool need_ready) {
  if (!write_locked_) {
    if (CK_RV rv = store_rv(store_.lock(true, lock.lock), "cannot lock the token folder");
        rv != CKR_OK) {
      return rv;
    }
    write_locked_ = true;
    lock.flag = &write_locked_;
  }
  if (CK_RV rv = sync_locked(); rv != CKR_OK) return rv;
  return need_ready ? state_rv() : CKR_OK;
}

// ---------------------------------------------------------------------------------------------
// General purpose, slots and tokens

CK_RV Token::initialize(CK_VOID_PTR init_args) {
  std::lock_guard<std::mutex> guard(mu_);
  if (initialized_) return CKR_CRYPTOKI_ALREADY_INITIALIZED;
  if (init_args != nullptr) {
    const auto* args = static_cast<const CK_C_INITIALIZE_ARGS*>(init_args);
    if (args->pReserved != nullptr) return CKR_ARGUMENTS_BAD;
    const int given = (args->CreateMutex != nullptr) + (args->DestroyMutex != nullptr) +
                      (args->LockMutex != nullptr) + (args->UnlockMutex != nullptr);
    if (given != 0 && given != 4) return CKR_ARGUMENTS_BAD;
    // [v2.40 5.4] we lock with the OS's primitives; an application that only offers its own
    // mutexes and forbids OS locking cannot be served.
    if (given == 4 && (args->flags & CKF_OS_LOCKING_OK) == 0) return CKR_CANT_LOCK;
  }
  store_ = TokenStore(default_token_dir());
  record_ = TokenRecord{};
  record_bytes_.clear();
  damaged_.clear();
  objects_.clear();
  state_ = TokenState::Absent;
  login_ = LoginState::Public;
  initialized_ = true;
  (void)sync();
  return CKR_OK;
}

CK_RV Token::finalize(CK_VOID_PTR reserved) {
  if (reserved != nullptr) return CKR_ARGUMENTS_BAD;
  EDGEKIT_LOCKED();
  sessions_.clear();
  objects_.clear();
  master_key_.clear();
  record_ = TokenRecord{};
  record_bytes_.clear();
  login_ = LoginState::Public;
  initialized_ = false;
  return CKR_OK;
}

CK_RV Token::get_info(CK_INFO_PTR info) {
  EDGEKIT_LOCKED();
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  *info = CK_INFO{};
  info->cryptokiVersion = {2, 40};
  pad(info->manufacturerID, sizeof info->manufacturerID, "edgekit");
  info->flags = 0;
  pad(info->libraryDescription, sizeof info->libraryDescription, "edgekit PKCS#11 token");
  info->libraryVersion = {0, 1};
  return CKR_OK;
}

CK_RV Token::get_slot_list(CK_BBOOL, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) {
  EDGEKIT_LOCKED();
  if (count == nullptr) return CKR_ARGUMENTS_BAD;
  // The token folder is always "inserted": one slot with a token present.
  if (list == nullptr) {
    *count = 1;
    return CKR_OK;
  }
  if (*count < 1) {
    *count = 1;
    return CKR_BUFFER_TOO_SMALL;
  }
  list[0] = kSlotId;
  *count = 1;
  return CKR_OK;
}

CK_RV Token::get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info) {
  EDGEKIT_SYNCED();
  if (slot != kSlotId) return CKR_SLOT_ID_INVALID;
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  *info = CK_SLOT_INFO{};
  pad(info->slotDescription, sizeof info->slotDescription, "edgekit token folder");
  pad(info->manufacturerID, sizeof info->manufacturerID, "edgekit");
  // A token this process may not read is not present for it (CKR_TOKEN_NOT_PRESENT).
  info->flags = state_ == TokenState::Unreadable ? 0 : CKF_TOKEN_PRESENT;
  info->hardwareVersion = {0, 0};
  info->firmwareVersion = {0, 1};
  return CKR_OK;
}

CK_RV Token::get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
  EDGEKIT_SYNCED();
  if (slot != kSlotId) return CKR_SLOT_ID_INVALID;
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  if (state_ == TokenState::Corrupt || state_ == TokenState::Unreadable) return state_rv();
  *info = CK_TOKEN_INFO{};
  pad(info->manufacturerID, sizeof info->manufacturerID, "edgekit");
  pad(info->model, sizeof info->model, "edgekit token");
  info->flags = CKF_RNG | CKF_LOGIN_REQUIRED;
  if (state_ == TokenState::Ready) {
    std::memcpy(info->label, record_.label, sizeof info->label);
    std::memcpy(info->serialNumber, record_.serial, sizeof info->serialNumber);
    info->flags |= CKF_TOKEN_INITIALIZED;
    // Writes (and so logins, which count attempts on disk) are refused in such a folder.
    if (::faccessat(AT_FDCWD, store_.dir().c_str(), W_OK, AT_EACCESS) != 0 && errno != ENOENT) {
      info->flags |= CKF_WRITE_PROTECTED;
    }
    if (record_.user_pin_initialized) info->flags |= CKF_USER_PIN_INITIALIZED;
    const std::uint32_t u = record_.user_failures, s = record_.so_failures;
    if (u > 0 && u < kMaxPinFailures) info->flags |= CKF_USER_PIN_COUNT_LOW;
    if (u + 1 == kMaxPinFailures) info->flags |= CKF_USER_PIN_FINAL_TRY;
    if (u >= kMaxPinFailures) info->flags |= CKF_USER_PIN_LOCKED;
    if (s > 0 && s < kMaxPinFailures) info->flags |= CKF_SO_PIN_COUNT_LOW;
    if (s + 1 == kMaxPinFailures) info->flags |= CKF_SO_PIN_FINAL_TRY;
    if (s >= kMaxPinFailures) info->flags |= CKF_SO_PIN_LOCKED;
  } else {
    pad(info->label, sizeof info->label, "");
    pad(info->serialNumber, sizeof info->serialNumber, "");
  }
  info->ulMaxSessionCount = kMaxSessions;
  info->ulSessionCount = sessions_.size();
  info->ulMaxRwSessionCount = kMaxSessions;
  info->ulRwSessionCount = static_cast<CK_ULONG>(std::count_if(
      sessions_.begin(), sessions_.end(),
      [](const auto& s) { return (s.second.flags & CKF_RW_SESSION) != 0; }));
  info->ulMaxPinLen = kMaxPinLength;
  info->ulMinPinLen = kMinPinLength;
  info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
  info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
  info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
  info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
  info->hardwareVersion = {0, 0};
  info->firmwareVersion = {0, 1};
  std::memset(info->utcTime, ' ', sizeof info->utcTime);
  return CKR_OK;
}

CK_RV Token::get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count) {
  EDGEKIT_LOCKED();
  if (slot != kSlotId) return CKR_SLOT_ID_INVALID;
  if (count == nullptr) return CKR_ARGUMENTS_BAD;
  const auto all = mechanisms();
  if (list == nullptr) {
    *count = all.size();
    return CKR_OK;
  }
  if (*count < all.size()) {
    *count = all.size();
    return CKR_BUFFER_TOO_SMALL;
  }
  for (std::size_t i = 0; i < all.size(); ++i) list[i] = all[i].type;
  *count = all.size();
  return CKR_OK;
}

CK_RV Token::get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                CK_MECHANISM_INFO_PTR info) {
  EDGEKIT_LOCKED();
  if (slot != kSlotId) return CKR_SLOT_ID_INVALID;
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  const MechanismSpec* m = find_mechanism(type);
  if (m == nullptr) return CKR_MECHANISM_INVALID;
  info->ulMinKeySize = m->min_key;
  info->ulMaxKeySize = m->max_key;
  info->flags = m->flags;
  return CKR_OK;
}

CK_RV Token::check_pin_length(CK_ULONG len) const {
  return len < kMinPinLength || len > kMaxPinLength ? CKR_PIN_LEN_RANGE : CKR_OK;
}

CK_RV Token::persist_record(bool objects_changed) {
  // Callers hold the exclusive lock and synced under it, so record_ is the newest record.
  if (objects_changed) ++record_.generation;
  Bytes written;
  const StoreStatus st = store_.save_record(record_, &written);
  if (st != StoreStatus::Ok) {
    if (objects_changed) --record_.generation;
    return store_rv(st, "cannot write the token file");
  }
  record_bytes_ = std::move(written);
  return CKR_OK;
}

CK_RV Token::verify_pin(bool so, std::string_view pin, Bytes* master_key) {
  // Count, check and reset happen in one hold of the folder's exclusive lock, against the shared
  // record: no number of processes gets more than kMaxPinFailures guesses, and the count is
  // exactly the wrong attempts in a row (were the check made unlocked, right PINs still being
  // checked in other processes would count as failures meanwhile and lock out a rightful user).
  // Logins are serialised for the length of one PBKDF2.
  WriteLock lock;
  if (CK_RV rv = lock_for_write(lock); rv != CKR_OK) return rv;
  std::uint32_t& failures = so ? record_.so_failures : record_.user_failures;
  if (failures >= kMaxPinFailures) return CKR_PIN_LOCKED;
  // Count the attempt on disk before checking it: pulling the power during the check must not
  // give an attacker a free guess.
  ++failures;
  if (CK_RV rv = persist_record(); rv != CKR_OK) {
    --failures;
    return rv;
  }
  Bytes kek, key;
  const Bytes& salt = so ? record_.so_salt : record_.user_salt;
  const Bytes& sealed = so ? record_.so_sealed_key : record_.user_sealed_key;
  const std::span<const std::uint8_t> aad = so ? std::span<const std::uint8_t>(kSoAad)
                                               : std::span<const std::uint8_t>(kUserAad);
  if (!pbkdf2(pin, view(salt), record_.iterations, kek)) return CKR_FUNCTION_FAILED;
  if (!open(view(kek), aad, view(sealed), key)) return CKR_PIN_INCORRECT;
  failures = 0;
  if (CK_RV rv = persist_record(); rv != CKR_OK) return rv;
  if (master_key != nullptr) *master_key = std::move(key);
  return CKR_OK;
}

CK_RV Token::init_token(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len,
                        CK_UTF8CHAR_PTR label) {
  EDGEKIT_LOCKED();
  if (slot != kSlotId) return CKR_SLOT_ID_INVALID;
  if (pin == nullptr || label == nullptr) return CKR_ARGUMENTS_BAD;
  if (CK_RV rv = check_pin_length(pin_len); rv != CKR_OK) return rv;
  if (!sessions_.empty()) return CKR_SESSION_EXISTS;
  if (!store_.ensure_dir()) {
    const int e = errno;
    return store_rv(e == EROFS || e == EACCES || e == EPERM ? StoreStatus::ReadOnly
                                                             : StoreStatus::IoError,
                    "cannot create the token folder");
  }
  // The whole re-initialisation is one change under the folder's lock: no other process writes
  // between the SO PIN check and the new token.
  WriteLock lock;
  if (CK_RV rv = lock_for_write(lock, false); rv != CKR_OK) return rv;
  if (state_ == TokenState::Unreadable) return state_rv();
  if (state_ == TokenState::Ready) {
    // Re-initialising needs the SO PIN. A damaged token file cannot be checked and may be
    // replaced: whoever can damage the folder can delete it too.
    if (CK_RV rv = verify_pin(true, as_pin(pin, pin_len), nullptr); rv != CKR_OK) return rv;
  }
  TokenRecord r;
  std::memcpy(r.label, label, sizeof r.label);
  std::uint8_t serial[8];
  Bytes master(32);
  r.integrity_key.assign(32, 0);
  if (!random_bytes(serial) || !random_bytes({master.data(), master.size()}) ||
      !random_bytes({r.integrity_key.data(), r.integrity_key.size()})) {
    return CKR_FUNCTION_FAILED;
  }
  for (int i = 0; i < 8; ++i) std::snprintf(&r.serial[2 * i], 3, "%02x", serial[i]);
  r.iterations = iterations_from_env();
  r.generation = record_.generation;  // persist_record bumps it: others reload
  if (CK_RV rv = seal_under_pin(as_pin(pin, pin_len), kSoAad, r.iterations, master, r.so_salt,
                                r.so_sealed_key);
      rv != CKR_OK) {
    return rv;
  }
  // The new record first: if it cannot be written (a read-only folder), nothing is wiped. Old
  // object files that then fail to go would fail their checks under the new keys.
  TokenRecord old = std::move(record_);
  record_ = std::move(r);
  if (CK_RV rv = persist_record(true); rv != CKR_OK) {
    record_ = std::move(old);
    return rv;
  }
  objects_.clear();
  damaged_.clear();
  state_ = TokenState::Ready;
  if (CK_RV rv = store_rv(store_.remove_all_objects(), "cannot remove the old token's objects");
      rv != CKR_OK) {
    return rv;
  }
  return CKR_OK;
}

CK_RV Token::init_pin(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len) {
  EDGEKIT_SYNCED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (login_ != LoginState::SecurityOfficer) return CKR_USER_NOT_LOGGED_IN;
  if (pin == nullptr) return CKR_ARGUMENTS_BAD;
  if (CK_RV rv = check_pin_length(pin_len); rv != CKR_OK) return rv;
  WriteLock lock;
  if (CK_RV rv = lock_for_write(lock); rv != CKR_OK) return rv;
  Bytes salt, sealed;
  if (CK_RV rv = seal_under_pin(as_pin(pin, pin_len), kUserAad, record_.iterations, master_key_,
                                salt, sealed);
      rv != CKR_OK) {
    return rv;
  }
  TokenRecord old = record_;
  record_.user_salt = std::move(salt);
  record_.user_sealed_key = std::move(sealed);
  record_.user_pin_initialized = true;
  record_.user_failures = 0;  // the SO's way to unlock a locked user PIN
  if (CK_RV rv = persist_record(); rv != CKR_OK) {
    record_ = std::move(old);
    return rv;
  }
  return CKR_OK;
}

CK_RV Token::set_pin(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                     CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len) {
  EDGEKIT_SYNCED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if ((s->flags & CKF_RW_SESSION) == 0) return CKR_SESSION_READ_ONLY;
  if (old_pin == nullptr || new_pin == nullptr) return CKR_ARGUMENTS_BAD;
  if (CK_RV rv = check_pin_length(new_len); rv != CKR_OK) return rv;
  // One change under the folder's lock from the check of the old PIN to the new PIN on disk:
  // two processes changing the PIN at once cannot both succeed from the same old PIN.
  WriteLock lock;
  if (CK_RV rv = lock_for_write(lock); rv != CKR_OK) return rv;
  // [v2.40 5.6] the SO's PIN in an SO session, the user's PIN otherwise.
  const bool so = login_ == LoginState::SecurityOfficer;
  if (!so && !record_.user_pin_initialized) return CKR_USER_PIN_NOT_INITIALIZED;
  Bytes master;
  if (CK_RV rv = verify_pin(so, as_pin(old_pin, old_len), &master); rv != CKR_OK) return rv;
  Bytes salt, sealed;
  if (CK_RV rv = seal_under_pin(as_pin(new_pin, new_len), so ? std::span<const std::uint8_t>(kSoAad)
                                                             : std::span<const std::uint8_t>(kUserAad),
                                record_.iterations, master, salt, sealed);
      rv != CKR_OK) {
    return rv;
  }
  TokenRecord old = record_;
  (so ? record_.so_salt : record_.user_salt) = std::move(salt);
  (so ? record_.so_sealed_key : record_.user_sealed_key) = std::move(sealed);
  if (CK_RV rv = persist_record(); rv != CKR_OK) {
    record_ = std::move(old);
    return rv;
  }
  return CKR_OK;
}

// ---------------------------------------------------------------------------------------------
// Sessions and login

CK_RV Token::session_for(CK_SESSION_HANDLE h, Session*& out) {
  auto it = sessions_.find(h);
  if (it == sessions_.end()) return CKR_SESSION_HANDLE_INVALID;
  out = &it->second;
  return CKR_OK;
}

CK_RV Token::open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE_PTR out) {
  EDGEKIT_SYNCED();
  if (slot != kSlotId) return CKR_SLOT_ID_INVALID;
  if (out == nullptr) return CKR_ARGUMENTS_BAD;
  // [v2.40 5.6] CKF_SERIAL_SESSION must always be set, for legacy reasons.
  if ((flags & CKF_SERIAL_SESSION) == 0) return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
  if (state_ != TokenState::Ready) return state_rv();
  if ((flags & CKF_RW_SESSION) == 0 && login_ == LoginState::SecurityOfficer) {
    return CKR_SESSION_READ_WRITE_SO_EXISTS;
  }
  if (sessions_.size() >= kMaxSessions) return CKR_SESSION_COUNT;
  const CK_SESSION_HANDLE h = next_session_++;
  sessions_[h].flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
  *out = h;
  return CKR_OK;
}

void Token::close_session_locked(CK_SESSION_HANDLE h) {
  sessions_.erase(h);
  // Session objects die with their session [v2.40 4.4].
  objects_.erase_if([h](const Object& obj) { return obj.owner == h; });
  // Closing the last session logs the application out [v2.40 5.6, C_CloseSession].
  if (sessions_.empty()) logout_locked();
}

CK_RV Token::close_session(CK_SESSION_HANDLE h) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  close_session_locked(h);
  return CKR_OK;
}

CK_RV Token::close_all_sessions(CK_SLOT_ID slot) {
  EDGEKIT_LOCKED();
  if (slot != kSlotId) return CKR_SLOT_ID_INVALID;
  while (!sessions_.empty()) close_session_locked(sessions_.begin()->first);
  logout_locked();
  return CKR_OK;
}

CK_RV Token::get_session_info(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  info->slotID = kSlotId;
  info->state = session_state(login_, (s->flags & CKF_RW_SESSION) != 0);
  info->flags = s->flags;
  info->ulDeviceError = 0;
  return CKR_OK;
}

CK_RV Token::login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len) {
  EDGEKIT_SYNCED();
  if (state_ != TokenState::Ready) return state_rv();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (user == CKU_CONTEXT_SPECIFIC) return CKR_OPERATION_NOT_INITIALIZED;  // no such keys here
  if (user != CKU_USER && user != CKU_SO) return CKR_USER_TYPE_INVALID;
  if (pin == nullptr) return CKR_ARGUMENTS_BAD;  // no protected authentication path
  const LoginState wanted = user == CKU_SO ? LoginState::SecurityOfficer : LoginState::User;
  if (login_ == wanted) return CKR_USER_ALREADY_LOGGED_IN;
  if (login_ != LoginState::Public) return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
  if (wanted == LoginState::SecurityOfficer) {
    for (const auto& [handle, session] : sessions_) {
      if ((session.flags & CKF_RW_SESSION) == 0) return CKR_SESSION_READ_ONLY_EXISTS;
    }
  } else if (!record_.user_pin_initialized) {
    return CKR_USER_PIN_NOT_INITIALIZED;
  }
  if (pin_len < kMinPinLength || pin_len > kMaxPinLength) return CKR_PIN_INCORRECT;
  Bytes master;
  if (CK_RV rv = verify_pin(wanted == LoginState::SecurityOfficer, as_pin(pin, pin_len), &master);
      rv != CKR_OK) {
    return rv;
  }
  master_key_ = std::move(master);
  login_ = wanted;
  if (wanted == LoginState::User) reload_objects();
  return CKR_OK;
}

void Token::logout_locked() {
  if (login_ == LoginState::User) drop_objects(true);
  login_ = LoginState::Public;
  master_key_.clear();
  master_key_.shrink_to_fit();
  // Operations may have used private keys; none outlives the login [v2.40 5.6, C_Logout].
  for (auto& [handle, session] : sessions_) {
    session.sign.reset();
    session.verify.reset();
    session.find.reset();
  }
}

CK_RV Token::logout(CK_SESSION_HANDLE h) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (login_ == LoginState::Public) return CKR_USER_NOT_LOGGED_IN;
  logout_locked();
  return CKR_OK;
}

// ---------------------------------------------------------------------------------------------
// Objects

Token::Object* Token::ObjectTable::find(CK_OBJECT_HANDLE h) {
  auto it = objects_.find(h);
  return it == objects_.end() ? nullptr : &it->second;
}

void Token::ObjectTable::insert(CK_OBJECT_HANDLE h, Object obj) {
  auto [it, fresh] = objects_.insert_or_assign(h, std::move(obj));
  (void)fresh;  // handles are never reused, so this is always a new one
  index(h, it->second);
}

void Token::ObjectTable::erase(CK_OBJECT_HANDLE h) {
  auto it = objects_.find(h);
  if (it == objects_.end()) return;
  unindex(h, it->second);
  objects_.erase(it);
}

void Token::ObjectTable::clear() {
  objects_.clear();
  by_value_.clear();
  persistent_ids_.clear();
}

void Token::ObjectTable::set_attributes(CK_OBJECT_HANDLE h, AttributeMap attributes) {
  auto it = objects_.find(h);
  if (it == objects_.end()) return;
  unindex(h, it->second);
  it->second.attributes = std::move(attributes);
  it->second.key.reset();
  index(h, it->second);
}

const Token::ObjectTable::Handles& Token::ObjectTable::with(
    CK_ATTRIBUTE_TYPE type, std::span<const std::uint8_t> value) const {
  static const Handles none;
  auto it = by_value_.find({type, Bytes(value.begin(), value.end())});
  return it == by_value_.end() ? none : it->second;
}

void Token::ObjectTable::index(CK_OBJECT_HANDLE h, const Object& obj) {
  if (obj.persistent_id != 0) persistent_ids_.insert(obj.persistent_id);
  for (CK_ATTRIBUTE_TYPE type : {CKA_LABEL, CKA_ID}) {
    if (const Bytes* v = find_attribute(obj.attributes, type)) by_value_[{type, *v}].insert(h);
  }
}

void Token::ObjectTable::unindex(CK_OBJECT_HANDLE h, const Object& obj) {
  if (obj.persistent_id != 0) persistent_ids_.erase(obj.persistent_id);
  for (CK_ATTRIBUTE_TYPE type : {CKA_LABEL, CKA_ID}) {
    const Bytes* v = find_attribute(obj.attributes, type);
    if (v == nullptr) continue;
    auto it = by_value_.find({type, *v});
    if (it == by_value_.end()) continue;
    it->second.erase(h);
    if (it->second.empty()) by_value_.erase(it);
  }
}

void Token::reload_objects() {
  // Merged by persistent id, so that handles this process gave out stay valid for objects that
  // are still there; objects another process added get new handles, removed ones lose theirs.
  std::vector<StoredObject> loaded;
  std::vector<std::string> damaged, unreadable;
  const bool want_private = login_ == LoginState::User && !master_key_.empty();
  store_.load_objects(view(record_.integrity_key), view(master_key_), want_private, loaded,
                      damaged, &unreadable);
  std::map<std::uint64_t, StoredObject*> by_id;
  for (StoredObject& o : loaded) {
    if (o.kind == ObjectKind::Private && !want_private) continue;
    by_id[o.id] = &o;
  }
  std::vector<CK_OBJECT_HANDLE> gone;
  std::vector<std::pair<CK_OBJECT_HANDLE, StoredObject*>> changed;
  for (const auto& [handle, obj] : objects_.all()) {
    if (obj.persistent_id == 0) continue;  // session objects live in this process only
    auto found = by_id.find(obj.persistent_id);
    if (found == by_id.end()) {
      gone.push_back(handle);
      continue;
    }
    if (found->second->attributes != obj.attributes) changed.emplace_back(handle, found->second);
    by_id.erase(found);
  }
  for (CK_OBJECT_HANDLE h : gone) objects_.erase(h);
  for (auto& [h, stored] : changed) objects_.set_attributes(h, std::move(stored->attributes));
  for (auto& [id, stored] : by_id) {
    Object obj;
    obj.persistent_id = id;
    obj.attributes = std::move(stored->attributes);
    objects_.insert(next_object_++, std::move(obj));
  }
  for (const std::string& name : damaged) {
    if (std::find(damaged_.begin(), damaged_.end(), name) == damaged_.end()) {
      report("object file damaged, not loaded", store_.dir() + "/" + name);
      damaged_.push_back(name);
    }
  }
  note_unreadable(unreadable);
}

void Token::note_unreadable(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    report("object file not loaded", store_.dir() + "/" + name + ": " +
                                         describe(LoadStatus::NoAccess));
  }
}

void Token::drop_objects(bool private_only) {
  objects_.erase_if([private_only](const Object& obj) {
    return !private_only || bool_or(obj.attributes, CKA_PRIVATE, true);
  });
}

std::vector<std::string> Token::damaged_files() {
  std::lock_guard<std::mutex> guard(mu_);
  return damaged_;
}

std::uint64_t Token::fresh_object_id() {
  for (;;) {
    std::uint64_t id = 0;
    if (!random_bytes({reinterpret_cast<std::uint8_t*>(&id), sizeof id})) return 0;
    if (id != 0 && !objects_.has_persistent_id(id)) return id;
  }
}

CK_RV Token::store_object(Object& obj) {
  // The last line of defence for point 3 of issue 11: key material is never written in clear.
  if (CK_RV rv = check_key_privacy(obj.attributes); rv != CKR_OK) return rv;
  StoredObject so;
  so.id = obj.persistent_id;
  so.kind = bool_or(obj.attributes, CKA_PRIVATE, true) ? ObjectKind::Private : ObjectKind::Public;
  so.attributes = obj.attributes;
  if (so.kind == ObjectKind::Private && master_key_.empty()) return CKR_USER_NOT_LOGGED_IN;
  return store_rv(store_.save_object(so, view(record_.integrity_key), view(master_key_)),
                  "cannot write an object file");
}

CK_RV Token::add_object(Session&, CK_SESSION_HANDLE sh, AttributeMap attrs,
                        CK_OBJECT_HANDLE* out) {
  Object obj;
  obj.attributes = std::move(attrs);
  if (bool_or(obj.attributes, CKA_TOKEN, false)) {
    obj.persistent_id = fresh_object_id();
    if (obj.persistent_id == 0) return CKR_FUNCTION_FAILED;
    if (CK_RV rv = store_object(obj); rv != CKR_OK) return rv;
  } else {
    obj.owner = sh;
  }
  const CK_OBJECT_HANDLE h = next_object_++;
  objects_.insert(h, std::move(obj));
  if (out != nullptr) *out = h;
  return CKR_OK;
}

CK_RV Token::visible_object(CK_OBJECT_HANDLE h, Object*& out) {
  Object* obj = objects_.find(h);
  if (obj == nullptr || !object_visible(obj->attributes, login_)) return CKR_OBJECT_HANDLE_INVALID;
  out = obj;
  return CKR_OK;
}

CK_RV Token::create_object(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                           CK_OBJECT_HANDLE_PTR out) {
  EDGEKIT_SYNCED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if ((tmpl == nullptr && count != 0) || out == nullptr) return CKR_ARGUMENTS_BAD;
  AttributeMap attrs;
  if (CK_RV rv = object_from_template({tmpl, count}, login_, attrs); rv != CKR_OK) return rv;
  if (CK_RV rv = check_write(bool_or(attrs, CKA_TOKEN, false), bool_or(attrs, CKA_PRIVATE, true),
                             (s->flags & CKF_RW_SESSION) != 0, login_);
      rv != CKR_OK) {
    return rv;
  }
  if (!bool_or(attrs, CKA_TOKEN, false)) return add_object(*s, h, std::move(attrs), out);
  WriteLock lock;
  if (CK_RV rv = lock_for_write(lock); rv != CKR_OK) return rv;
  if (CK_RV rv = add_object(*s, h, std::move(attrs), out); rv != CKR_OK) return rv;
  return persist_record(true);
}

CK_RV Token::destroy_object(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE object) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  Object* obj = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  WriteLock lock;
  if (CK_RV rv = lock_for_write(lock); rv != CKR_OK) return rv;
  if (CK_RV rv = visible_object(object, obj); rv != CKR_OK) return rv;
  if (!bool_or(obj->attributes, CKA_DESTROYABLE, true)) return CKR_ACTION_PROHIBITED;
  if (CK_RV rv = check_write(obj->persistent_id != 0, bool_or(obj->attributes, CKA_PRIVATE, true),
                             (s->flags & CKF_RW_SESSION) != 0, login_);
      rv != CKR_OK) {
    return rv;
  }
  if (obj->persistent_id == 0) {
    objects_.erase(object);
    return CKR_OK;
  }
  if (CK_RV rv = store_rv(store_.remove_object(obj->persistent_id), "cannot remove an object file");
      rv != CKR_OK) {
    return rv;
  }
  objects_.erase(object);
  return persist_record(true);
}

CK_RV Token::get_object_size(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE object, CK_ULONG_PTR size) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  Object* obj = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (CK_RV rv = visible_object(object, obj); rv != CKR_OK) return rv;
  if (size == nullptr) return CKR_ARGUMENTS_BAD;
  Bytes encoded;
  encode_attributes(obj->attributes, encoded);
  *size = encoded.size();
  return CKR_OK;
}

CK_RV Token::get_attribute_value(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE object,
                                 CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  EDGEKIT_SYNCED();
  Session* s = nullptr;
  Object* obj = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (CK_RV rv = visible_object(object, obj); rv != CKR_OK) return rv;
  if (tmpl == nullptr && count != 0) return CKR_ARGUMENTS_BAD;
  // [v2.40 5.7, C_GetAttributeValue] every attribute is processed; the call reports one of the
  // errors met, and each failed entry gets CK_UNAVAILABLE_INFORMATION.
  CK_RV result = CKR_OK;
  for (CK_ULONG i = 0; i < count; ++i) {
    CK_ATTRIBUTE& a = tmpl[i];
    const CK_RV rv = check_read(obj->attributes, a.type);
    if (rv != CKR_OK) {
      a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
      result = rv;
      continue;
    }
    const Bytes& v = obj->attributes.at(a.type);
    if (a.pValue == nullptr) {
      a.ulValueLen = v.size();
    } else if (a.ulValueLen >= v.size()) {
      if (!v.empty()) std::memcpy(a.pValue, v.data(), v.size());
      a.ulValueLen = v.size();
    } else {
      a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
      result = CKR_BUFFER_TOO_SMALL;
    }
  }
  return result;
}

CK_RV Token::set_attribute_value(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE object,
                                 CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  Object* obj = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  WriteLock lock;
  if (CK_RV rv = lock_for_write(lock); rv != CKR_OK) return rv;
  if (CK_RV rv = visible_object(object, obj); rv != CKR_OK) return rv;
  if (tmpl == nullptr && count != 0) return CKR_ARGUMENTS_BAD;
  if (CK_RV rv = validate_template({tmpl, count}); rv != CKR_OK) return rv;
  if (CK_RV rv = check_write(obj->persistent_id != 0, bool_or(obj->attributes, CKA_PRIVATE, true),
                             (s->flags & CKF_RW_SESSION) != 0, login_);
      rv != CKR_OK) {
    return rv;
  }
  for (CK_ULONG i = 0; i < count; ++i) {
    if (CK_RV rv = check_set(obj->attributes, tmpl[i], login_); rv != CKR_OK) return rv;
  }
  Object updated;
  updated.persistent_id = obj->persistent_id;
  updated.owner = obj->owner;
  updated.attributes = obj->attributes;
  merge_template(updated.attributes, {tmpl, count});
  if (updated.persistent_id != 0) {
    if (CK_RV rv = store_object(updated); rv != CKR_OK) return rv;
  }
  objects_.set_attributes(object, std::move(updated.attributes));
  return updated.persistent_id != 0 ? persist_record(true) : CKR_OK;
}

CK_RV Token::find_objects_init(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  EDGEKIT_SYNCED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (tmpl == nullptr && count != 0) return CKR_ARGUMENTS_BAD;
  if (s->find) return CKR_OPERATION_ACTIVE;
  for (CK_ULONG i = 0; i < count; ++i) {
    if (tmpl[i].pValue == nullptr && tmpl[i].ulValueLen != 0) return CKR_ARGUMENTS_BAD;
  }
  // Looked up by label or id (as applications do) through the index; anything else is a scan.
  const ObjectTable::Handles* candidates = nullptr;
  for (CK_ULONG i = 0; i < count; ++i) {
    if (!ObjectTable::indexed(tmpl[i].type)) continue;
    const auto* value = static_cast<const std::uint8_t*>(tmpl[i].pValue);
    const ObjectTable::Handles& with = objects_.with(tmpl[i].type, {value, tmpl[i].ulValueLen});
    if (candidates == nullptr || with.size() < candidates->size()) candidates = &with;
  }
  FindState f;
  const auto consider = [&](CK_OBJECT_HANDLE handle, const Object& obj) {
    if (object_visible(obj.attributes, login_) && matches(obj.attributes, {tmpl, count})) {
      f.results.push_back(handle);
    }
  };
  if (candidates != nullptr) {
    for (CK_OBJECT_HANDLE handle : *candidates) consider(handle, *objects_.find(handle));
  } else {
    for (const auto& [handle, obj] : objects_.all()) consider(handle, obj);
  }
  s->find = std::move(f);
  return CKR_OK;
}

CK_RV Token::find_objects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out, CK_ULONG max,
                          CK_ULONG_PTR count) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if ((out == nullptr && max != 0) || count == nullptr) return CKR_ARGUMENTS_BAD;
  if (!s->find) return CKR_OPERATION_NOT_INITIALIZED;
  FindState& f = *s->find;
  CK_ULONG n = 0;
  while (n < max && f.next < f.results.size()) {
    const CK_OBJECT_HANDLE candidate = f.results[f.next++];
    // Objects destroyed since C_FindObjectsInit are no longer reported.
    const Object* obj = objects_.find(candidate);
    if (obj != nullptr && object_visible(obj->attributes, login_)) out[n++] = candidate;
  }
  *count = n;
  return CKR_OK;
}

CK_RV Token::find_objects_final(CK_SESSION_HANDLE h) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (!s->find) return CKR_OPERATION_NOT_INITIALIZED;
  s->find.reset();
  return CKR_OK;
}

// ---------------------------------------------------------------------------------------------
// Digest, sign, verify

CK_RV Token::digest_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (mechanism == nullptr) return CKR_ARGUMENTS_BAD;
  if (s->digest) return CKR_OPERATION_ACTIVE;
  return DigestOp::start(*mechanism, s->digest);
}

CK_RV Token::digest(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR out,
                    CK_ULONG_PTR out_len) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (!s->digest) return CKR_OPERATION_NOT_INITIALIZED;
  if ((data == nullptr && len != 0) || out_len == nullptr) {
    s->digest.reset();
    return CKR_ARGUMENTS_BAD;
  }
  if (s->digest->updated()) return CKR_OPERATION_ACTIVE;  // finish with C_DigestFinal
  const CK_ULONG need = s->digest->length();
  // [v2.40 5.2] a length query or a short buffer leaves the operation active.
  if (out == nullptr || *out_len < need) {
    const bool query = out == nullptr;
    *out_len = need;
    return query ? CKR_OK : CKR_BUFFER_TOO_SMALL;
  }
  std::unique_ptr<DigestOp> op = std::move(s->digest);
  CK_RV rv = op->update({data, len});
  if (rv == CKR_OK) rv = op->finish({out, need});
  if (rv == CKR_OK) *out_len = need;
  return rv;
}

CK_RV Token::digest_update(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  return update_operation(s->digest, data, len);
}

CK_RV Token::digest_final(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (!s->digest) return CKR_OPERATION_NOT_INITIALIZED;
  if (out_len == nullptr) {
    s->digest.reset();
    return CKR_ARGUMENTS_BAD;
  }
  const CK_ULONG need = s->digest->length();
  if (out == nullptr || *out_len < need) {
    const bool query = out == nullptr;
    *out_len = need;
    return query ? CKR_OK : CKR_BUFFER_TOO_SMALL;
  }
  std::unique_ptr<DigestOp> op = std::move(s->digest);
  const CK_RV rv = op->finish({out, need});
  if (rv == CKR_OK) *out_len = need;
  return rv;
}

CK_RV Token::signature_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key,
                            bool sign) {
  EDGEKIT_SYNCED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (mechanism == nullptr) return CKR_ARGUMENTS_BAD;
  std::unique_ptr<SignatureOp>& slot = sign ? s->sign : s->verify;
  if (slot) return CKR_OPERATION_ACTIVE;
  Object* obj = nullptr;
  if (visible_object(key, obj) != CKR_OK) return CKR_KEY_HANDLE_INVALID;
  const CK_OBJECT_CLASS cls = get_ulong(obj->attributes, CKA_CLASS).value_or(CKO_DATA);
  if (!obj->key && (cls == CKO_PRIVATE_KEY || cls == CKO_PUBLIC_KEY)) {
    obj->key = key_from_object(obj->attributes);
  }
  return SignatureOp::start(*mechanism, obj->attributes, obj->key.get(), sign, slot);
}

CK_RV Token::sign_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key) {
  return signature_init(h, mechanism, key, true);
}

CK_RV Token::verify_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key) {
  return signature_init(h, mechanism, key, false);
}

CK_RV Token::sign_output(std::unique_ptr<SignatureOp>& op, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len) {
  const CK_ULONG need = op->signature_length();
  if (sig == nullptr || *sig_len < need) {
    const bool query = sig == nullptr;
    *sig_len = need;
    return query ? CKR_OK : CKR_BUFFER_TOO_SMALL;
  }
  std::unique_ptr<SignatureOp> done = std::move(op);
  const CK_RV rv = done->sign({sig, need});
  if (rv == CKR_OK) *sig_len = need;
  return rv;
}

CK_RV Token::sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                  CK_ULONG_PTR sig_len) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (!s->sign) return CKR_OPERATION_NOT_INITIALIZED;
  if ((data == nullptr && len != 0) || sig_len == nullptr) {
    s->sign.reset();
    return CKR_ARGUMENTS_BAD;
  }
  if (s->sign->updated()) return CKR_OPERATION_ACTIVE;  // finish with C_SignFinal
  if (sig != nullptr && *sig_len >= s->sign->signature_length()) {
    if (CK_RV rv = s->sign->update({data, len}); rv != CKR_OK) {
      s->sign.reset();
      return rv;
    }
  }
  return sign_output(s->sign, sig, sig_len);
}

CK_RV Token::sign_update(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  return update_operation(s->sign, data, len);
}

CK_RV Token::sign_final(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (!s->sign) return CKR_OPERATION_NOT_INITIALIZED;
  if (sig_len == nullptr) {
    s->sign.reset();
    return CKR_ARGUMENTS_BAD;
  }
  return sign_output(s->sign, sig, sig_len);
}

CK_RV Token::verify(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                    CK_ULONG sig_len) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (!s->verify) return CKR_OPERATION_NOT_INITIALIZED;
  std::unique_ptr<SignatureOp> op = std::move(s->verify);
  if ((data == nullptr && len != 0) || (sig == nullptr && sig_len != 0)) return CKR_ARGUMENTS_BAD;
  if (op->updated()) return CKR_OPERATION_ACTIVE;
  if (CK_RV rv = op->update({data, len}); rv != CKR_OK) return rv;
  return op->verify({sig, sig_len});
}

CK_RV Token::verify_update(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  return update_operation(s->verify, data, len);
}

CK_RV Token::verify_final(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG sig_len) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (!s->verify) return CKR_OPERATION_NOT_INITIALIZED;
  std::unique_ptr<SignatureOp> op = std::move(s->verify);
  if (sig == nullptr && sig_len != 0) return CKR_ARGUMENTS_BAD;
  return op->verify({sig, sig_len});
}

// ---------------------------------------------------------------------------------------------
// Key generation and random numbers

CK_RV Token::generate_key_pair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism,
                               CK_ATTRIBUTE_PTR pub_tmpl, CK_ULONG pub_count,
                               CK_ATTRIBUTE_PTR priv_tmpl, CK_ULONG priv_count,
                               CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv) {
  EDGEKIT_SYNCED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (mechanism == nullptr || pub == nullptr || priv == nullptr ||
      (pub_tmpl == nullptr && pub_count != 0) || (priv_tmpl == nullptr && priv_count != 0)) {
    return CKR_ARGUMENTS_BAD;
  }
  if (find_mechanism(mechanism->mechanism) == nullptr ||
      (find_mechanism(mechanism->mechanism)->flags & CKF_GENERATE_KEY_PAIR) == 0) {
    return CKR_MECHANISM_INVALID;
  }
  // Check the session may write both objects before spending time on the key.
  AttributeMap pt, kt;
  if (CK_RV rv = validate_template({pub_tmpl, pub_count}); rv != CKR_OK) return rv;
  if (CK_RV rv = validate_template({priv_tmpl, priv_count}); rv != CKR_OK) return rv;
  merge_template(pt, {pub_tmpl, pub_count});
  merge_template(kt, {priv_tmpl, priv_count});
  const bool rw = (s->flags & CKF_RW_SESSION) != 0;
  if (CK_RV rv = check_write(bool_or(pt, CKA_TOKEN, false), bool_or(pt, CKA_PRIVATE, false), rw,
                             login_);
      rv != CKR_OK) {
    return rv;
  }
  if (CK_RV rv = check_write(bool_or(kt, CKA_TOKEN, false), bool_or(kt, CKA_PRIVATE, true), rw,
                             login_);
      rv != CKR_OK) {
    return rv;
  }
  AttributeMap public_key, private_key;
  if (CK_RV rv = token::generate_key_pair(*mechanism, {pub_tmpl, pub_count},
                                          {priv_tmpl, priv_count}, public_key, private_key);
      rv != CKR_OK) {
    return rv;
  }
  // The key is made unlocked (RSA takes a while); the objects are stored as one change.
  const bool on_token = bool_or(public_key, CKA_TOKEN, false) || bool_or(private_key, CKA_TOKEN, false);
  WriteLock lock;
  if (on_token) {
    if (CK_RV rv = lock_for_write(lock); rv != CKR_OK) return rv;
    if (login_ != LoginState::User && bool_or(private_key, CKA_PRIVATE, true)) {
      return CKR_USER_NOT_LOGGED_IN;  // logged out meanwhile (e.g. re-initialised elsewhere)
    }
  }
  CK_OBJECT_HANDLE ph = 0;
  if (CK_RV rv = add_object(*s, h, std::move(public_key), &ph); rv != CKR_OK) return rv;
  if (CK_RV rv = add_object(*s, h, std::move(private_key), priv); rv != CKR_OK) {
    if (const Object* p = objects_.find(ph); p != nullptr && p->persistent_id != 0) {
      (void)store_.remove_object(p->persistent_id);
    }
    objects_.erase(ph);
    return rv;
  }
  *pub = ph;
  return on_token ? persist_record(true) : CKR_OK;
}

CK_RV Token::seed_random(CK_SESSION_HANDLE h, CK_BYTE_PTR seed, CK_ULONG len) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (seed == nullptr && len != 0) return CKR_ARGUMENTS_BAD;
  // Mixed into OpenSSL's DRBG as additional input; it never replaces the system's entropy.
  RAND_seed(seed, static_cast<int>(len));
  return CKR_OK;
}

CK_RV Token::generate_random(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG len) {
  EDGEKIT_LOCKED();
  Session* s = nullptr;
  if (CK_RV rv = session_for(h, s); rv != CKR_OK) return rv;
  if (out == nullptr && len != 0) return CKR_ARGUMENTS_BAD;
  return random_bytes({out, len}) ? CKR_OK : CKR_FUNCTION_FAILED;
}

}  // namespace edgekit::pkcs11::token
