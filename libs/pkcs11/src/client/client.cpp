#include "edgekit/pkcs11/client.hpp"

#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <utility>

namespace edgekit::pkcs11 {
namespace {

Error module_error(const char* function, CK_RV rv) {
  Error e;
  e.cause = Cause::Module;
  e.rv = rv;
  e.function = function;
  return e;
}
Error other_error(Cause cause, std::string detail) {
  Error e;
  e.cause = cause;
  e.detail = std::move(detail);
  return e;
}

#define EDGEKIT_P11_CALL(fl, fn, ...)                                            \
  do {                                                                           \
    const CK_RV rv_ = (fl)->fn(__VA_ARGS__);                                     \
    if (rv_ != CKR_OK) return edgekit::fail(module_error(#fn, rv_));             \
  } while (false)

std::string_view trim_padded(const CK_UTF8CHAR* s, std::size_t n) {
  std::string_view v(reinterpret_cast<const char*>(s), n);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\0')) v.remove_suffix(1);
  return v;
}

CK_UTF8CHAR_PTR pin_ptr(std::string_view pin) {
  return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.data()));
}

// [v2.40 2.3.3] CKA_EC_PARAMS as a DER OBJECT IDENTIFIER of the named curve.
constexpr std::uint8_t kP256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::uint8_t kP384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

Bytes pss_params(CK_MECHANISM_TYPE hash, CK_RSA_PKCS_MGF_TYPE mgf, CK_ULONG salt) {
  CK_RSA_PKCS_PSS_PARAMS p{};
  p.hashAlg = hash;
  p.mgf = mgf;
  p.sLen = salt;
  Bytes out(sizeof p);
  std::memcpy(out.data(), &p, sizeof p);
  return out;
}

CK_MECHANISM raw(const Mechanism& m) {
  CK_MECHANISM out{};
  out.mechanism = m.type;
  out.pParameter = m.parameter.empty() ? nullptr : const_cast<std::uint8_t*>(m.parameter.data());
  out.ulParameterLen = m.parameter.size();
  return out;
}

CK_BYTE_PTR data_ptr(std::span<const std::uint8_t> d) {
  return const_cast<CK_BYTE_PTR>(d.data());
}

}  // namespace

std::string Error::message() const {
  char buf[64];
  switch (cause) {
    case Cause::Module:
      std::snprintf(buf, sizeof buf, " (0x%lx)", static_cast<unsigned long>(rv));
      return std::string(function) + ": " + std::string(rv_to_string(rv)) + buf +
             (detail.empty() ? "" : ": " + detail);
    case Cause::LoadFailed:
      return "cannot load PKCS#11 module: " + detail;
    case Cause::NotFound:
      return "no object matches " + detail;
    case Cause::Ambiguous:
      return "more than one object matches " + detail;
    case Cause::BadArgument:
      return "bad argument: " + detail;
  }
  return detail;
}

Mechanism Mechanism::sha256_rsa_pss() {
  return Mechanism{CKM_SHA256_RSA_PKCS_PSS, pss_params(CKM_SHA256, CKG_MGF1_SHA256, 32)};
}
Mechanism Mechanism::rsa_pss_sha256() {
  return Mechanism{CKM_RSA_PKCS_PSS, pss_params(CKM_SHA256, CKG_MGF1_SHA256, 32)};
}

// ---------------------------------------------------------------------------------------------

Result<Module> Module::load(const std::string& path) {
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return fail(other_error(Cause::LoadFailed, path + ": " + (why ? why : "dlopen failed")));
  }
  auto get = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle, "C_GetFunctionList"));
  if (get == nullptr) {
    ::dlclose(handle);
    return fail(other_error(Cause::LoadFailed, path + ": no C_GetFunctionList"));
  }
  CK_FUNCTION_LIST* functions = nullptr;
  if (const CK_RV rv = get(&functions); rv != CKR_OK || functions == nullptr) {
    ::dlclose(handle);
    return fail(module_error("C_GetFunctionList", rv == CKR_OK ? CKR_GENERAL_ERROR : rv));
  }
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  const CK_RV rv = functions->C_Initialize(&args);
  // Another part of the process may have initialised the module already: share it, but leave
  // C_Finalize to its owner.
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    ::dlclose(handle);
    return fail(module_error("C_Initialize", rv));
  }
  return Module(handle, functions, rv == CKR_OK);
}

Module::Module(Module&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      functions_(std::exchange(other.functions_, nullptr)),
      owns_init_(std::exchange(other.owns_init_, false)) {}

Module& Module::operator=(Module&& other) noexcept {
  if (this != &other) {
    reset();
    handle_ = std::exchange(other.handle_, nullptr);
    functions_ = std::exchange(other.functions_, nullptr);
    owns_init_ = std::exchange(other.owns_init_, false);
  }
  return *this;
}

Module::~Module() { reset(); }

void Module::reset() noexcept {
  if (functions_ != nullptr && owns_init_) (void)functions_->C_Finalize(nullptr);
  if (handle_ != nullptr) ::dlclose(handle_);
  handle_ = nullptr;
  functions_ = nullptr;
  owns_init_ = false;
}

Result<CK_INFO> Module::info() const {
  CK_INFO info{};
  EDGEKIT_P11_CALL(functions_, C_GetInfo, &info);
  return info;
}

Result<std::vector<CK_SLOT_ID>> Module::slots(bool token_present) const {
  for (;;) {
    CK_ULONG count = 0;
    EDGEKIT_P11_CALL(functions_, C_GetSlotList, token_present ? CK_TRUE : CK_FALSE, nullptr,
                     &count);
    std::vector<CK_SLOT_ID> list(count);
    const CK_RV rv = functions_->C_GetSlotList(token_present ? CK_TRUE : CK_FALSE, list.data(),
                                               &count);
    if (rv == CKR_BUFFER_TOO_SMALL) continue;  // a slot appeared between the two calls
    if (rv != CKR_OK) return fail(module_error("C_GetSlotList", rv));
    list.resize(count);
    return list;
  }
}

Result<CK_TOKEN_INFO> Module::token_info(CK_SLOT_ID slot) const {
  CK_TOKEN_INFO info{};
  EDGEKIT_P11_CALL(functions_, C_GetTokenInfo, slot, &info);
  return info;
}

Result<CK_SLOT_ID> Module::find_token(std::string_view label) const {
  auto list = slots(true);
  if (!list) return fail(list.error());
  for (CK_SLOT_ID slot : *list) {
    CK_TOKEN_INFO info{};
    if (functions_->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    if (trim_padded(info.label, sizeof info.label) == label) return slot;
  }
  return fail(other_error(Cause::NotFound, "token label=\"" + std::string(label) + "\""));
}

Result<std::vector<CK_MECHANISM_TYPE>> Module::mechanisms(CK_SLOT_ID slot) const {
  CK_ULONG count = 0;
  EDGEKIT_P11_CALL(functions_, C_GetMechanismList, slot, nullptr, &count);
  std::vector<CK_MECHANISM_TYPE> list(count);
  EDGEKIT_P11_CALL(functions_, C_GetMechanismList, slot, list.data(), &count);
  list.resize(count);
  return list;
}

Status Module::init_token(CK_SLOT_ID slot, std::string_view so_pin, std::string_view label) const {
  if (label.size() > 32) return fail(other_error(Cause::BadArgument, "token label over 32 bytes"));
  CK_UTF8CHAR padded[32];
  std::memset(padded, ' ', sizeof padded);
  std::memcpy(padded, label.data(), label.size());
  EDGEKIT_P11_CALL(functions_, C_InitToken, slot, pin_ptr(so_pin), so_pin.size(), padded);
  return {};
}

Result<Session> Module::open_session(CK_SLOT_ID slot, bool read_write) const {
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  const CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
  EDGEKIT_P11_CALL(functions_, C_OpenSession, slot, flags, nullptr, nullptr, &h);
  return Session(functions_, h);
}

// ---------------------------------------------------------------------------------------------

Session::Session(Session&& other) noexcept
    : functions_(std::exchange(other.functions_, nullptr)),
      handle_(std::exchange(other.handle_, CK_INVALID_HANDLE)) {}

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    if (functions_ != nullptr) (void)functions_->C_CloseSession(handle_);
    functions_ = std::exchange(other.functions_, nullptr);
    handle_ = std::exchange(other.handle_, CK_INVALID_HANDLE);
  }
  return *this;
}

Session::~Session() {
  if (functions_ != nullptr) (void)functions_->C_CloseSession(handle_);
}

Status Session::login(UserType user, std::string_view pin) {
  EDGEKIT_P11_CALL(functions_, C_Login, handle_, static_cast<CK_USER_TYPE>(user), pin_ptr(pin),
                   pin.size());
  return {};
}

Status Session::logout() {
  EDGEKIT_P11_CALL(functions_, C_Logout, handle_);
  return {};
}

Status Session::init_pin(std::string_view pin) {
  EDGEKIT_P11_CALL(functions_, C_InitPIN, handle_, pin_ptr(pin), pin.size());
  return {};
}

Status Session::set_pin(std::string_view old_pin, std::string_view new_pin) {
  EDGEKIT_P11_CALL(functions_, C_SetPIN, handle_, pin_ptr(old_pin), old_pin.size(),
                   pin_ptr(new_pin), new_pin.size());
  return {};
}

Result<std::vector<CK_OBJECT_HANDLE>> Session::find(const ObjectQuery& query) {
  CK_OBJECT_CLASS cls = query.object_class.value_or(0);
  std::vector<CK_ATTRIBUTE> tmpl;
  if (query.object_class) tmpl.push_back({CKA_CLASS, &cls, sizeof cls});
  if (query.label) {
    tmpl.push_back({CKA_LABEL, const_cast<char*>(query.label->data()), query.label->size()});
  }
  if (query.id) tmpl.push_back({CKA_ID, const_cast<std::uint8_t*>(query.id->data()), query.id->size()});
  EDGEKIT_P11_CALL(functions_, C_FindObjectsInit, handle_, tmpl.empty() ? nullptr : tmpl.data(),
                   tmpl.size());
  std::vector<CK_OBJECT_HANDLE> found;
  CK_OBJECT_HANDLE batch[32];
  for (;;) {
    CK_ULONG n = 0;
    const CK_RV rv = functions_->C_FindObjects(handle_, batch, 32, &n);
    if (rv != CKR_OK) {
      (void)functions_->C_FindObjectsFinal(handle_);
      return fail(module_error("C_FindObjects", rv));
    }
    found.insert(found.end(), batch, batch + n);
    if (n == 0) break;
  }
  EDGEKIT_P11_CALL(functions_, C_FindObjectsFinal, handle_);
  return found;
}

Result<CK_OBJECT_HANDLE> Session::find_one(const ObjectQuery& query) {
  auto found = find(query);
  if (!found) return fail(found.error());
  if (found->size() == 1) return found->front();
  std::string what;
  if (query.object_class) what += "class=" + std::to_string(*query.object_class) + " ";
  if (query.label) what += "label=\"" + *query.label + "\" ";
  if (query.id) what += "id of " + std::to_string(query.id->size()) + " bytes ";
  if (!what.empty()) what.pop_back();
  return fail(other_error(found->empty() ? Cause::NotFound : Cause::Ambiguous,
                          what.empty() ? "any" : what));
}

Result<Bytes> Session::attribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
  CK_ATTRIBUTE a{type, nullptr, 0};
  EDGEKIT_P11_CALL(functions_, C_GetAttributeValue, handle_, object, &a, 1);
  Bytes value(a.ulValueLen);
  a.pValue = value.data();
  EDGEKIT_P11_CALL(functions_, C_GetAttributeValue, handle_, object, &a, 1);
  value.resize(a.ulValueLen);
  return value;
}

Result<Bytes> Session::sign(CK_OBJECT_HANDLE key, const Mechanism& mechanism,
                            std::span<const std::uint8_t> data) {
  CK_MECHANISM m = raw(mechanism);
  EDGEKIT_P11_CALL(functions_, C_SignInit, handle_, &m, key);
  // One call for the common case: 512 bytes hold any signature up to RSA-4096. A short buffer
  // leaves the operation active [v2.40 5.2], so a retry with the size asked for is allowed.
  Bytes sig(512);
  CK_ULONG len = sig.size();
  CK_RV rv = functions_->C_Sign(handle_, data_ptr(data), data.size(), sig.data(), &len);
  if (rv == CKR_BUFFER_TOO_SMALL) {
    sig.resize(len);
    rv = functions_->C_Sign(handle_, data_ptr(data), data.size(), sig.data(), &len);
  }
  if (rv != CKR_OK) return fail(module_error("C_Sign", rv));
  sig.resize(len);
  return sig;
}

Status Session::verify(CK_OBJECT_HANDLE key, const Mechanism& mechanism,
                       std::span<const std::uint8_t> data,
                       std::span<const std::uint8_t> signature) {
  CK_MECHANISM m = raw(mechanism);
  EDGEKIT_P11_CALL(functions_, C_VerifyInit, handle_, &m, key);
  EDGEKIT_P11_CALL(functions_, C_Verify, handle_, data_ptr(data), data.size(),
                   data_ptr(signature), signature.size());
  return {};
}

Result<Bytes> Session::digest(const Mechanism& mechanism, std::span<const std::uint8_t> data) {
  CK_MECHANISM m = raw(mechanism);
  EDGEKIT_P11_CALL(functions_, C_DigestInit, handle_, &m);
  Bytes out(64);
  CK_ULONG len = out.size();
  CK_RV rv = functions_->C_Digest(handle_, data_ptr(data), data.size(), out.data(), &len);
  if (rv == CKR_BUFFER_TOO_SMALL) {
    out.resize(len);
    rv = functions_->C_Digest(handle_, data_ptr(data), data.size(), out.data(), &len);
  }
  if (rv != CKR_OK) return fail(module_error("C_Digest", rv));
  out.resize(len);
  return out;
}

namespace {

struct KeyTemplates {
  CK_BBOOL yes = CK_TRUE;
  CK_BBOOL token = CK_FALSE;
  std::vector<CK_ATTRIBUTE> pub, priv;
  void common(const ObjectOptions& o) {
    token = o.token ? CK_TRUE : CK_FALSE;
    for (auto* t : {&pub, &priv}) {
      t->push_back({CKA_TOKEN, &token, sizeof token});
      t->push_back({CKA_LABEL, const_cast<char*>(o.label.data()), o.label.size()});
      t->push_back({CKA_ID, const_cast<std::uint8_t*>(o.id.data()), o.id.size()});
    }
    pub.push_back({CKA_VERIFY, &yes, sizeof yes});
    priv.push_back({CKA_SIGN, &yes, sizeof yes});
    priv.push_back({CKA_PRIVATE, &yes, sizeof yes});
    priv.push_back({CKA_SENSITIVE, &yes, sizeof yes});
  }
};

}  // namespace

Result<KeyPair> Session::generate_ec_key_pair(Curve curve, const ObjectOptions& options) {
  KeyTemplates t;
  t.common(options);
  const std::span<const std::uint8_t> params =
      curve == Curve::P256 ? std::span<const std::uint8_t>(kP256) : std::span<const std::uint8_t>(kP384);
  t.pub.push_back({CKA_EC_PARAMS, const_cast<std::uint8_t*>(params.data()), params.size()});
  CK_MECHANISM m{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  KeyPair kp;
  EDGEKIT_P11_CALL(functions_, C_GenerateKeyPair, handle_, &m, t.pub.data(), t.pub.size(),
                   t.priv.data(), t.priv.size(), &kp.public_key, &kp.private_key);
  return kp;
}

Result<KeyPair> Session::generate_rsa_key_pair(unsigned bits, const ObjectOptions& options) {
  KeyTemplates t;
  t.common(options);
  CK_ULONG modulus_bits = bits;
  CK_BYTE exponent[] = {0x01, 0x00, 0x01};
  t.pub.push_back({CKA_MODULUS_BITS, &modulus_bits, sizeof modulus_bits});
  t.pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof exponent});
  CK_MECHANISM m{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
  KeyPair kp;
  EDGEKIT_P11_CALL(functions_, C_GenerateKeyPair, handle_, &m, t.pub.data(), t.pub.size(),
                   t.priv.data(), t.priv.size(), &kp.public_key, &kp.private_key);
  return kp;
}

Result<CK_OBJECT_HANDLE> Session::import_certificate(std::span<const std::uint8_t> der,
                                                     const ObjectOptions& options) {
  CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
  CK_CERTIFICATE_TYPE type = CKC_X_509;
  CK_BBOOL token = options.token ? CK_TRUE : CK_FALSE;
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &cls, sizeof cls},
      {CKA_CERTIFICATE_TYPE, &type, sizeof type},
      {CKA_TOKEN, &token, sizeof token},
      {CKA_LABEL, const_cast<char*>(options.label.data()), options.label.size()},
      {CKA_ID, const_cast<std::uint8_t*>(options.id.data()), options.id.size()},
      {CKA_VALUE, data_ptr(der), der.size()},
  };
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  EDGEKIT_P11_CALL(functions_, C_CreateObject, handle_, tmpl, sizeof tmpl / sizeof tmpl[0], &h);
  return h;
}

Status Session::destroy(CK_OBJECT_HANDLE object) {
  EDGEKIT_P11_CALL(functions_, C_DestroyObject, handle_, object);
  return {};
}

Result<Bytes> Session::random(std::size_t length) {
  Bytes out(length);
  EDGEKIT_P11_CALL(functions_, C_GenerateRandom, handle_, out.data(), out.size());
  return out;
}

}  // namespace edgekit::pkcs11
