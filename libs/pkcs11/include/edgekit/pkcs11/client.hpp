#pragma once
/// \file
/// A PKCS#11 client for any module: loads it at run time, opens sessions that close themselves,
/// finds objects by label or id, signs, verifies, digests, generates key pairs and imports
/// certificates. Every failure names the PKCS#11 function and its CKR code.
///
/// Thread safety: a Module may be shared by threads (modules are initialised with
/// CKF_OS_LOCKING_OK); a Session is used by one thread at a time, as PKCS#11 asks.

#include <edgekit/core/result.hpp>
#include <edgekit/pkcs11/cryptoki.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace edgekit::pkcs11 {

using Bytes = std::vector<std::uint8_t>;

/// Why a call failed: the pkcs11 client's error enum, wired into `std::error_code`
/// (`pkcs11_category()`; value 0 is left out, since a `std::error_code` of 0 means "no error").
/// The CKR code of a Module failure is in `Error::rv`, not in the error_code.
enum class Cause {
  Module = 1,    ///< a PKCS#11 function returned `rv`
  LoadFailed,    ///< dlopen/dlsym failed (`detail` says why)
  NotFound,      ///< no object matched the query
  Ambiguous,     ///< more than one object matched a query that needs one
  BadArgument,   ///< the caller's input cannot be expressed in PKCS#11 (e.g. empty PIN)
};

/// A short static description of `cause`, e.g. "no object matches" (never allocates).
[[nodiscard]] const char* to_string(Cause cause) noexcept;

/// The `std::error_category` of `Cause` (name "edgekit.pkcs11", messages from `to_string`).
/// Thread safe.
[[nodiscard]] const std::error_category& pkcs11_category() noexcept;

/// Wires `Cause` into `std::error_code`: `std::error_code ec = error.cause;`.
[[nodiscard]] inline std::error_code make_error_code(Cause cause) noexcept {
  return {static_cast<int>(cause), pkcs11_category()};
}

/// A failure: the cause, and for Cause::Module the function and its CKR code.
struct Error {
  Cause cause = Cause::Module;
  CK_RV rv = CKR_OK;
  const char* function = "";  ///< e.g. "C_Login" (static storage)
  std::string detail;         ///< extra words for LoadFailed / NotFound

  /// E.g. "C_Login: CKR_PIN_INCORRECT (0xa0)" or "no object matches label=\"device\"".
  [[nodiscard]] std::string message() const;
};

template <class T>
using Result = edgekit::Result<T, Error>;
using Status = edgekit::Result<void, Error>;

/// A mechanism with its parameter bytes.
struct Mechanism {
  CK_MECHANISM_TYPE type = 0;
  Bytes parameter;
  /// CKM_SHA256_RSA_PKCS_PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
  static Mechanism sha256_rsa_pss();
  /// CKM_RSA_PKCS_PSS over a caller-computed SHA-256 hash (same parameters).
  static Mechanism rsa_pss_sha256();
};

enum class UserType : CK_USER_TYPE { User = CKU_USER, SecurityOfficer = CKU_SO };
enum class Curve { P256, P384 };

/// What to look for; unset fields match anything.
struct ObjectQuery {
  std::optional<CK_OBJECT_CLASS> object_class;
  std::optional<std::string> label;
  std::optional<Bytes> id;
};

/// Attributes given to new objects.
struct ObjectOptions {
  std::string label;
  Bytes id;
  bool token = true;  ///< persistent (CKA_TOKEN) or a session object
};

struct KeyPair {
  CK_OBJECT_HANDLE public_key = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE private_key = CK_INVALID_HANDLE;
};

class Session;

/// A loaded, initialised PKCS#11 module. Move-only; the destructor calls C_Finalize (if this
/// object initialised the module) and unloads it. Sessions must not outlive their Module.
class Module {
 public:
  /// dlopen()s `path`, fetches C_GetFunctionList and calls C_Initialize with OS locking.
  /// Errors: LoadFailed; Module (C_GetFunctionList, C_Initialize).
  static Result<Module> load(const std::string& path);

  Module(Module&& other) noexcept;
  Module& operator=(Module&& other) noexcept;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  ~Module();

  /// The raw function list, for what this class does not wrap. Valid while the Module lives.
  [[nodiscard]] const CK_FUNCTION_LIST& functions() const { return *functions_; }

  Result<CK_INFO> info() const;
  /// Slots (with a token present, by default).
  Result<std::vector<CK_SLOT_ID>> slots(bool token_present = true) const;
  Result<CK_TOKEN_INFO> token_info(CK_SLOT_ID slot) const;
  /// The slot whose token has this label (blank padding ignored). NotFound if none.
  Result<CK_SLOT_ID> find_token(std::string_view label) const;
  Result<std::vector<CK_MECHANISM_TYPE>> mechanisms(CK_SLOT_ID slot) const;
  /// C_InitToken: (re)initialises the token, erasing its objects. `label` is at most 32 bytes.
  Status init_token(CK_SLOT_ID slot, std::string_view so_pin, std::string_view label) const;
  /// C_OpenSession (serial; read/write on request).
  Result<Session> open_session(CK_SLOT_ID slot, bool read_write = false) const;

 private:
  Module(void* handle, CK_FUNCTION_LIST* functions, bool owns_init)
      : handle_(handle), functions_(functions), owns_init_(owns_init) {}
  void reset() noexcept;
  void* handle_ = nullptr;
  CK_FUNCTION_LIST* functions_ = nullptr;
  bool owns_init_ = false;
};

/// An open session; the destructor closes it. Move-only.
class Session {
 public:
  Session(Session&& other) noexcept;
  Session& operator=(Session&& other) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  [[nodiscard]] CK_SESSION_HANDLE handle() const { return handle_; }
  /// The module's function list, for calls this class does not wrap (with handle()). Valid
  /// while the Module lives.
  [[nodiscard]] const CK_FUNCTION_LIST& functions() const { return *functions_; }

  Status login(UserType user, std::string_view pin);
  Status logout();
  /// C_InitPIN (in an SO session): sets the user PIN.
  Status init_pin(std::string_view pin);
  /// C_SetPIN: the logged-in user's (or SO's) PIN.
  Status set_pin(std::string_view old_pin, std::string_view new_pin);

  /// Every object matching the query (that this session may see).
  Result<std::vector<CK_OBJECT_HANDLE>> find(const ObjectQuery& query);
  /// Exactly one object: NotFound or Ambiguous otherwise.
  Result<CK_OBJECT_HANDLE> find_one(const ObjectQuery& query);
  /// One attribute's value. Module errors as C_GetAttributeValue reports them
  /// (CKR_ATTRIBUTE_SENSITIVE for secret key material).
  Result<Bytes> attribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type);

  Result<Bytes> sign(CK_OBJECT_HANDLE key, const Mechanism& mechanism,
                     std::span<const std::uint8_t> data);
  /// Succeeds only for a valid signature; otherwise Module with CKR_SIGNATURE_INVALID (or
  /// CKR_SIGNATURE_LEN_RANGE).
  Status verify(CK_OBJECT_HANDLE key, const Mechanism& mechanism,
                std::span<const std::uint8_t> data, std::span<const std::uint8_t> signature);
  Result<Bytes> digest(const Mechanism& mechanism, std::span<const std::uint8_t> data);

  Result<KeyPair> generate_ec_key_pair(Curve curve, const ObjectOptions& options);
  Result<KeyPair> generate_rsa_key_pair(unsigned bits, const ObjectOptions& options);
  /// Imports a DER X.509 certificate (CKO_CERTIFICATE, CKC_X_509).
  Result<CK_OBJECT_HANDLE> import_certificate(std::span<const std::uint8_t> der,
                                              const ObjectOptions& options);
  Status destroy(CK_OBJECT_HANDLE object);
  Result<Bytes> random(std::size_t length);

 private:
  friend class Module;
  Session(const CK_FUNCTION_LIST* functions, CK_SESSION_HANDLE handle)
      : functions_(functions), handle_(handle) {}
  const CK_FUNCTION_LIST* functions_ = nullptr;
  CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
};

}  // namespace edgekit::pkcs11

template <>
struct std::is_error_code_enum<edgekit::pkcs11::Cause> : std::true_type {};
