#pragma once
// The token: one slot, its token folder, sessions, objects and operations. Every method is one
// PKCS#11 function with the same arguments and the CK_RV it returns; abi.cpp only forwards.
//
// Thread safety: every public method takes the token's mutex, so any number of threads may call
// into any sessions at once (the spec's CKF_OS_LOCKING_OK model). Handles, not pointers, cross
// the API: sessions and objects live in maps keyed by handles that are never reused while the
// library stays initialised.
//
// Processes: any number may use one token folder. Each call that depends on the token's state
// first compares the token file with the bytes it last saw (under a shared flock of the folder)
// and takes another process's change in: a new PIN or counter, new, changed or removed objects
// (by the record's generation counter), a re-initialised token. Every change is a
// read-modify-write under the exclusive flock, so no process writes stale state; the PIN failure
// counter lives in the shared record and is counted under that lock, so no number of processes
// gets more guesses.

#include "token/access.hpp"
#include "token/attributes.hpp"
#include "token/crypto.hpp"
#include "token/mechanisms.hpp"
#include "token/store.hpp"

#include <edgekit/pkcs11/cryptoki.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <unordered_set>
#include <string>
#include <vector>

namespace edgekit::pkcs11::token {

/// Wrong PINs in a row before the PIN locks (CKR_PIN_LOCKED). The count survives restarts.
constexpr std::uint32_t kMaxPinFailures = 5;
constexpr std::size_t kMinPinLength = 4;
constexpr std::size_t kMaxPinLength = 255;
/// The token's one slot.
constexpr CK_SLOT_ID kSlotId = 0;

class Token {
 public:
  Token() = default;
  Token(const Token&) = delete;
  Token& operator=(const Token&) = delete;

  CK_RV initialize(CK_VOID_PTR init_args);
  CK_RV finalize(CK_VOID_PTR reserved);
  CK_RV get_info(CK_INFO_PTR info);
  CK_RV get_slot_list(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count);
  CK_RV get_slot_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info);
  CK_RV get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info);
  CK_RV get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count);
  CK_RV get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info);
  CK_RV init_token(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label);
  CK_RV init_pin(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len);
  CK_RV set_pin(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len);
  CK_RV open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE_PTR out);
  CK_RV close_session(CK_SESSION_HANDLE h);
  CK_RV close_all_sessions(CK_SLOT_ID slot);
  CK_RV get_session_info(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info);
  CK_RV login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len);
  CK_RV logout(CK_SESSION_HANDLE h);
  CK_RV create_object(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                      CK_OBJECT_HANDLE_PTR out);
  CK_RV destroy_object(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE object);
  CK_RV get_object_size(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE object, CK_ULONG_PTR size);
  CK_RV get_attribute_value(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR tmpl,
                            CK_ULONG count);
  CK_RV set_attribute_value(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR tmpl,
                            CK_ULONG count);
  CK_RV find_objects_init(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count);
  CK_RV find_objects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out, CK_ULONG max,
                     CK_ULONG_PTR count);
  CK_RV find_objects_final(CK_SESSION_HANDLE h);
  CK_RV digest_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism);
  CK_RV digest(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR out,
               CK_ULONG_PTR out_len);
  CK_RV digest_update(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len);
  CK_RV digest_final(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
  CK_RV sign_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key);
  CK_RV sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
             CK_ULONG_PTR sig_len);
  CK_RV sign_update(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len);
  CK_RV sign_final(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len);
  CK_RV verify_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key);
  CK_RV verify(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
               CK_ULONG sig_len);
  CK_RV verify_update(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len);
  CK_RV verify_final(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG sig_len);
  CK_RV generate_key_pair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism,
                          CK_ATTRIBUTE_PTR pub_tmpl, CK_ULONG pub_count, CK_ATTRIBUTE_PTR priv_tmpl,
                          CK_ULONG priv_count, CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv);
  CK_RV seed_random(CK_SESSION_HANDLE h, CK_BYTE_PTR seed, CK_ULONG len);
  CK_RV generate_random(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG len);

  /// Object files the token refused to load (tampered, truncated, unreadable), by file name.
  std::vector<std::string> damaged_files();
  /// The last diagnostic the token reported (also on stderr unless EDGEKIT_TOKEN_QUIET), naming
  /// its cause: damage, permission denied, read-only folder, ... Empty if none.
  std::string last_diagnostic();

 private:
  struct Object {
    std::uint64_t persistent_id = 0;       // 0: a session object
    CK_SESSION_HANDLE owner = 0;           // the session that made a session object
    AttributeMap attributes;
    Pkey key;                              // built on first use
  };
  // The objects by handle, plus an index of what applications look objects up by (CKA_LABEL,
  // CKA_ID) and of the persistent ids in use. One token may hold the keys of ten thousand devices
  // (the fleet simulator); without the index every C_FindObjectsInit and every new token object
  // scanned all of them. Attributes change only through set_attributes, so the index stays true.
  class ObjectTable {
   public:
    using Map = std::map<CK_OBJECT_HANDLE, Object>;
    using Handles = std::set<CK_OBJECT_HANDLE>;
    Object* find(CK_OBJECT_HANDLE h);
    const Map& all() const { return objects_; }
    void insert(CK_OBJECT_HANDLE h, Object obj);
    void erase(CK_OBJECT_HANDLE h);
    template <class Pred>
    void erase_if(Pred pred) {
      for (auto it = objects_.begin(); it != objects_.end();) {
        if (pred(it->second)) {
          unindex(it->first, it->second);
          it = objects_.erase(it);
        } else {
          ++it;
        }
      }
    }
    void clear();
    // Replaces an object's attributes (and drops its key built from the old ones).
    void set_attributes(CK_OBJECT_HANDLE h, AttributeMap attributes);
    bool has_persistent_id(std::uint64_t id) const { return persistent_ids_.count(id) != 0; }
    static bool indexed(CK_ATTRIBUTE_TYPE type) { return type == CKA_LABEL || type == CKA_ID; }
    // The objects whose `type` (an indexed one) has exactly this value, in handle order.
    const Handles& with(CK_ATTRIBUTE_TYPE type, std::span<const std::uint8_t> value) const;

   private:
    void index(CK_OBJECT_HANDLE h, const Object& obj);
    void unindex(CK_OBJECT_HANDLE h, const Object& obj);
    Map objects_;
    std::map<std::pair<CK_ATTRIBUTE_TYPE, Bytes>, Handles> by_value_;
    std::unordered_set<std::uint64_t> persistent_ids_;
  };
  struct FindState {
    std::vector<CK_OBJECT_HANDLE> results;
    std::size_t next = 0;
  };
  struct Session {
    CK_FLAGS flags = 0;
    std::optional<FindState> find;
    std::unique_ptr<SignatureOp> sign;
    std::unique_ptr<SignatureOp> verify;
    std::unique_ptr<DigestOp> digest;
  };
  // Absent: no token file; Corrupt: it fails its checks; Unreadable: this process may not read
  // the folder or file (or reading failed); Ready: a token.
  enum class TokenState { Absent, Corrupt, Unreadable, Ready };
  // Holds the folder's exclusive lock for one read-modify-write; nested takers share it.
  struct WriteLock {
    FolderLock lock;
    bool* flag = nullptr;
    ~WriteLock() {
      if (flag != nullptr) *flag = false;
    }
  };

  CK_RV session_for(CK_SESSION_HANDLE h, Session*& out);
  CK_RV visible_object(CK_OBJECT_HANDLE h, Object*& out);
  CK_RV check_pin_length(CK_ULONG len) const;
  CK_RV verify_pin(bool so, std::string_view pin, Bytes* master_key);
  CK_RV persist_record(bool objects_changed = false);
  CK_RV sync();
  CK_RV sync_locked();
  CK_RV lock_for_write(WriteLock& lock, bool need_ready = true);
  CK_RV state_rv() const;
  CK_RV store_rv(StoreStatus s, const char* what);
  void reload_objects();
  void report(const char* what, const std::string& detail);
  CK_RV add_object(Session& s, CK_SESSION_HANDLE sh, AttributeMap attrs, CK_OBJECT_HANDLE* out);
  CK_RV store_object(Object& obj);
  void note_unreadable(const std::vector<std::string>& names);
  void drop_objects(bool private_only);
  void logout_locked();
  void close_session_locked(CK_SESSION_HANDLE h);
  std::uint64_t fresh_object_id();
  CK_RV signature_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key,
                       bool sign);
  CK_RV sign_output(std::unique_ptr<SignatureOp>& op, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len);

  std::mutex mu_;
  bool initialized_ = false;
  TokenStore store_;
  TokenState state_ = TokenState::Absent;
  TokenRecord record_;
  Bytes record_bytes_;        // the token file as last read or written by this process
  bool write_locked_ = false;  // this thread holds the folder's exclusive lock
  std::string last_diagnostic_;
  LoginState login_ = LoginState::Public;
  Bytes master_key_;  // present while the user or SO is logged in
  std::map<CK_SESSION_HANDLE, Session> sessions_;
  ObjectTable objects_;
  CK_SESSION_HANDLE next_session_ = 1;
  CK_OBJECT_HANDLE next_object_ = 1;
  std::vector<std::string> damaged_;
};

/// The folder a token lives in: $EDGEKIT_TOKEN_DIR, else $XDG_DATA_HOME/edgekit/token, else
/// $HOME/.local/share/edgekit/token, else /var/lib/edgekit/token.
std::string default_token_dir();

}  // namespace edgekit::pkcs11::token
