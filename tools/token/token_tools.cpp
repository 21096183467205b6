#include "token_tools.hpp"

#include <edgekit/pki/csr.hpp>
#include <edgekit/pki/token.hpp>

#include <openssl/crypto.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

namespace edgekit::tools::token {
namespace {

ToolError error(Exit exit, std::string message) { return ToolError{exit, std::move(message)}; }

std::string padded_text(const CK_UTF8CHAR* s, std::size_t n) {
  std::string v(reinterpret_cast<const char*>(s), n);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\0')) v.pop_back();
  return v;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

pki::KeyAlgorithm key_algorithm(KeyType t) {
  switch (t) {
    case KeyType::EcP256: return pki::KeyAlgorithm::EcP256;
    case KeyType::EcP384: return pki::KeyAlgorithm::EcP384;
    case KeyType::Rsa2048: return pki::KeyAlgorithm::Rsa2048;
    case KeyType::Rsa3072: return pki::KeyAlgorithm::Rsa3072;
  }
  return pki::KeyAlgorithm::EcP256;
}

/// A ToolError from a pki error: a token's refusal is explained as any PKCS#11 failure (its
/// CKR code and advice, under `context`); the rest keep pki's words.
ToolError from_pki(const pki::Error& e, std::string_view context) {
  if (e.token && e.code == pki::Errc::Token) return explain(*e.token, context);
  Exit exit = Exit::Failure;
  switch (e.code) {
    case pki::Errc::NotFound: exit = Exit::NotFound; break;
    case pki::Errc::InvalidArgument:
    case pki::Errc::Malformed:
    case pki::Errc::UnsupportedKey:
    case pki::Errc::KeyMismatch: exit = Exit::Usage; break;
    default: break;
  }
  return error(exit, std::string(context) + ": " + e.message);
}

std::optional<CK_ULONG> ulong_of(const Bytes& b) {
  if (b.size() != sizeof(CK_ULONG)) return std::nullopt;
  CK_ULONG v = 0;
  std::memcpy(&v, b.data(), sizeof v);
  return v;
}

std::optional<bool> bool_of(const Bytes& b) {
  if (b.size() != 1) return std::nullopt;
  return b[0] != 0;
}

std::optional<Bytes> try_attribute(pkcs11::Session& s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t) {
  auto v = s.attribute(o, t);
  if (!v) return std::nullopt;
  return std::move(*v);
}

ToolResult<Bytes> need_attribute(pkcs11::Session& s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t,
                                 const char* what) {
  auto v = s.attribute(o, t);
  if (!v) return fail(explain(v.error(), std::string("read ") + what));
  return std::move(*v);
}

const char* class_name(CK_OBJECT_CLASS c) {
  switch (c) {
    case CKO_PRIVATE_KEY: return "private-key";
    case CKO_PUBLIC_KEY: return "public-key";
    case CKO_SECRET_KEY: return "secret-key";
    case CKO_CERTIFICATE: return "certificate";
    case CKO_DATA: return "data";
    default: return "object";
  }
}

std::string mechanism_name(CK_MECHANISM_TYPE m) {
  const auto name = pkcs11::mechanism_to_string(m);
  if (name != "CKM_<unknown>") return std::string(name);
  char buf[32];
  std::snprintf(buf, sizeof buf, "mechanism 0x%lx", static_cast<unsigned long>(m));
  return buf;
}

}  // namespace

// --- errors ----------------------------------------------------------------------------------

ToolError explain(const pkcs11::Error& e, std::string_view context) {
  ToolError out;
  out.exit = e.cause == pkcs11::Cause::NotFound ? Exit::NotFound : Exit::Failure;
  std::string advice;
  if (e.cause == pkcs11::Cause::Module) {
    switch (e.rv) {
      case CKR_PIN_INCORRECT:
        out.exit = Exit::PinRefused;
        advice = "wrong PIN; the token counts failed logins and locks the PIN after its limit";
        break;
      case CKR_PIN_LOCKED:
        out.exit = Exit::PinRefused;
        advice = "the PIN is locked after too many wrong tries; the security officer must set a "
                 "new user PIN (C_InitPIN, e.g. pkcs11-tool --init-pin) or re-initialise the "
                 "token with `edgekit token init --force`";
        break;
      case CKR_USER_PIN_NOT_INITIALIZED:
        out.exit = Exit::PinRefused;
        advice = "the token has no user PIN yet; run `edgekit token init`";
        break;
      case CKR_PIN_LEN_RANGE:
      case CKR_PIN_INVALID:
        out.exit = Exit::Usage;
        advice = "the token does not accept a PIN of this length or these characters (see "
                 "`edgekit token info` for its PIN lengths)";
        break;
      case CKR_TOKEN_NOT_RECOGNIZED:
      case CKR_TOKEN_NOT_PRESENT:
        advice = "the token is not initialised (or its files are damaged); run `edgekit token "
                 "init --label <label>`";
        break;
      case CKR_MECHANISM_INVALID:
      case CKR_MECHANISM_PARAM_INVALID:
        advice = "the module does not offer this mechanism or key size (see `edgekit token info`)";
        break;
      case CKR_USER_NOT_LOGGED_IN:
        advice = "this needs a login; give the PIN";
        break;
      case CKR_TOKEN_WRITE_PROTECTED:
      case CKR_SESSION_READ_ONLY:
        advice = "the token is write-protected";
        break;
      case CKR_DEVICE_MEMORY:
        advice = "the token is full";
        break;
      case CKR_KEY_HANDLE_INVALID:
      case CKR_OBJECT_HANDLE_INVALID:
        advice = "the object disappeared while in use (another program removed it?)";
        break;
      case CKR_USER_ALREADY_LOGGED_IN:
      case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
        advice = "another application holds a login on this token";
        break;
      case CKR_SESSION_EXISTS:
        advice = "another application has sessions open on this token; close it first";
        break;
      default:
        break;
    }
  }
  out.message = std::string(context) + ": " + e.message();
  if (!advice.empty()) out.message += " — " + advice;
  return out;
}

// --- secrets, parsing ------------------------------------------------------------------------

void wipe(std::string& s) noexcept {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

Secret::Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.clear(); }
Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    clear();
    value_ = std::move(other.value_);
    other.clear();
  }
  return *this;
}
Secret::~Secret() { clear(); }
void Secret::clear() noexcept { wipe(value_); }

std::optional<KeyType> parse_key_type(std::string_view t) {
  if (t == "ec-p256") return KeyType::EcP256;
  if (t == "ec-p384") return KeyType::EcP384;
  if (t == "rsa-2048") return KeyType::Rsa2048;
  if (t == "rsa-3072") return KeyType::Rsa3072;
  return std::nullopt;
}

const char* key_type_name(KeyType t) {
  switch (t) {
    case KeyType::EcP256: return "ec-p256";
    case KeyType::EcP384: return "ec-p384";
    case KeyType::Rsa2048: return "rsa-2048";
    case KeyType::Rsa3072: return "rsa-3072";
  }
  return "?";
}

ToolResult<Bytes> parse_id(std::string_view hex) {
  const std::string original(hex);
  if (hex.starts_with("0x") || hex.starts_with("0X")) hex.remove_prefix(2);
  std::string digits;
  for (char c : hex) {
    if (c != ':') digits.push_back(c);
  }
  if (digits.empty() || digits.size() % 2 != 0 || digits.size() > 128) {
    return fail(error(Exit::Usage, "--id " + quoted(original) +
                                       ": want an even number of hex digits (1 to 64 bytes)"));
  }
  auto bytes = pki::from_hex(digits);
  if (!bytes) return fail(error(Exit::Usage, "--id " + quoted(original) + ": not hex"));
  return std::move(*bytes);
}

ToolResult<std::vector<std::pair<std::string, std::string>>> parse_subject(std::string_view text) {
  auto name = pki::Name::parse(text);
  if (!name) return fail(error(Exit::Usage, "--subject: " + name.error().message));
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& e : name->entries) out.emplace_back(std::move(e.field), std::move(e.value));
  return out;
}

// --- module, slots ---------------------------------------------------------------------------

std::string default_module_path(const std::string& exe) {
  const std::string name = "libedgekit-pkcs11.so";
  const auto slash = exe.rfind('/');
  if (slash != std::string::npos) {
    const std::string dir = exe.substr(0, slash);
    std::vector<std::string> candidates{dir + "/" + name};
#ifdef EDGEKIT_INSTALL_LIBDIR
    candidates.push_back(dir + "/../" EDGEKIT_INSTALL_LIBDIR "/" + name);
#endif
    candidates.push_back(dir + "/../lib/" + name);
    for (const auto& c : candidates) {
      if (::access(c.c_str(), R_OK) == 0) return c;
    }
  }
  return name;  // the dynamic loader's search path
}

ToolResult<pkcs11::Module> load_module(const std::string& path) {
  auto m = pkcs11::Module::load(path);
  if (!m) {
    auto e = explain(m.error(), "load module");
    if (m.error().cause == pkcs11::Cause::LoadFailed) {
      e.message += " — give the module's path with --module";
    }
    return fail(std::move(e));
  }
  return std::move(*m);
}

ToolResult<CK_SLOT_ID> select_token(const pkcs11::Module& module,
                                    const std::optional<std::string>& label) {
  auto slots = module.slots(true);
  if (!slots) return fail(explain(slots.error(), "list slots"));
  std::vector<std::pair<CK_SLOT_ID, std::string>> initialised;
  bool any_uninitialised = false;
  for (CK_SLOT_ID slot : *slots) {
    auto info = module.token_info(slot);
    if (!info) continue;
    if ((info->flags & CKF_TOKEN_INITIALIZED) == 0) {
      any_uninitialised = true;
      continue;
    }
    initialised.emplace_back(slot, padded_text(info->label, sizeof info->label));
  }
  if (initialised.empty()) {
    return fail(error(Exit::NotFound,
                      std::string("no initialised token") +
                          (any_uninitialised ? " (the token is not initialised)" : "") +
                          "; run `edgekit token init --label <label> --so-pin <so-pin> --pin "
                          "<pin>` first"));
  }
  std::string names;
  for (const auto& [slot, name] : initialised) names += (names.empty() ? "" : ", ") + quoted(name);
  if (label) {
    for (const auto& [slot, name] : initialised) {
      if (name == *label) return slot;
    }
    return fail(error(Exit::NotFound, "no initialised token labelled " + quoted(*label) +
                                          " (initialised tokens: " + names +
                                          "); run `edgekit token init --label " + *label +
                                          "` to make one"));
  }
  if (initialised.size() > 1) {
    return fail(error(Exit::NotFound, "several tokens (" + names + "); choose one with --label"));
  }
  return initialised.front().first;
}

ToolResult<CK_SLOT_ID> init_token(const pkcs11::Module& module, std::optional<CK_SLOT_ID> slot,
                                  const std::string& label, std::string_view so_pin,
                                  std::string_view user_pin, bool force) {
  if (label.empty() || label.size() > 32) {
    return fail(error(Exit::Usage, "--label: a token label has 1 to 32 bytes"));
  }
  if (so_pin.empty() || user_pin.empty()) {
    return fail(error(Exit::Usage, "both the SO PIN and the user PIN are needed"));
  }
  auto slots = module.slots(true);
  if (!slots) return fail(explain(slots.error(), "list slots"));
  if (!slot) {
    // A second token with the same label would make every later --label ambiguous: the label
    // names the token to re-initialise (with --force), else the first free slot takes it.
    std::optional<CK_SLOT_ID> same_label, free_slot;
    for (CK_SLOT_ID s : *slots) {
      auto info = module.token_info(s);
      if (!info) continue;
      if ((info->flags & CKF_TOKEN_INITIALIZED) == 0) {
        if (!free_slot) free_slot = s;
      } else if (padded_text(info->label, sizeof info->label) == label) {
        same_label = s;
      }
    }
    if (same_label) {
      if (!force) {
        return fail(error(Exit::Usage, "token " + quoted(label) +
                                           " is already initialised; re-initialising erases "
                                           "every object on it: add --force (with its SO PIN)"));
      }
      slot = same_label;
    } else if (free_slot) {
      slot = free_slot;
    } else {
      return fail(error(Exit::NotFound, "no slot holds an uninitialised token; choose one with "
                                        "--slot (and --force to erase it)"));
    }
  } else {
    if (std::find(slots->begin(), slots->end(), *slot) == slots->end()) {
      return fail(error(Exit::NotFound, "no token in slot " + std::to_string(*slot)));
    }
    auto info = module.token_info(*slot);
    if (!info) return fail(explain(info.error(), "read token info"));
    if ((info->flags & CKF_TOKEN_INITIALIZED) != 0 && !force) {
      return fail(error(Exit::Usage, "the token in slot " + std::to_string(*slot) +
                                         " is already initialised; re-initialising erases every "
                                         "object on it: add --force (with its SO PIN)"));
    }
  }
  // Both PINs are checked against the token's limits before C_InitToken erases anything: a user
  // PIN that C_InitPIN refuses afterwards would leave a wiped token without one (issue 11, point
  // 5). The SO PIN itself is verified by C_InitToken before it erases.
  if (auto limits = module.token_info(*slot); limits) {
    for (const auto& [pin, what] : {std::pair{so_pin, "SO PIN"}, std::pair{user_pin, "user PIN"}}) {
      if (pin.size() < limits->ulMinPinLen || pin.size() > limits->ulMaxPinLen) {
        return fail(error(Exit::PinRefused,
                          std::string("the ") + what + " must have " +
                              std::to_string(limits->ulMinPinLen) + " to " +
                              std::to_string(limits->ulMaxPinLen) +
                              " bytes on this token; nothing was changed"));
      }
    }
  }
  if (auto st = module.init_token(*slot, so_pin, label); !st) {
    return fail(explain(st.error(), "initialise the token"));
  }
  // Some modules (SoftHSM2) move an initialised token to a new slot id: find it again.
  auto now = module.find_token(label);
  const CK_SLOT_ID at = now ? *now : *slot;
  auto session = module.open_session(at, true);
  if (!session) return fail(explain(session.error(), "open a session"));
  if (auto st = session->login(pkcs11::UserType::SecurityOfficer, so_pin); !st) {
    return fail(explain(st.error(), "log in as security officer"));
  }
  if (auto st = session->init_pin(user_pin); !st) return fail(explain(st.error(), "set the user PIN"));
  (void)session->logout();
  return at;
}

ToolResult<pkcs11::Session> open_user_session(const pkcs11::Module& module, CK_SLOT_ID slot,
                                              const std::optional<std::string_view>& pin,
                                              bool read_write) {
  auto session = module.open_session(slot, read_write);
  if (!session) return fail(explain(session.error(), "open a session"));
  if (pin) {
    if (auto st = session->login(pkcs11::UserType::User, *pin); !st) {
      // A login left over from another session of this process is a login all the same.
      if (st.error().rv != CKR_USER_ALREADY_LOGGED_IN) return fail(explain(st.error(), "log in"));
    }
  }
  return std::move(*session);
}

// --- keys --------------------------------------------------------------------------------

ToolResult<GeneratedKey> generate_key(pkcs11::Session& session, KeyType type,
                                      const std::string& key_label, Bytes id) {
  if (key_label.empty()) return fail(error(Exit::Usage, "--key-label must not be empty"));
  auto clash = session.find({CKO_PRIVATE_KEY, key_label, std::nullopt});
  if (!clash) return fail(explain(clash.error(), "look for existing keys"));
  if (!clash->empty()) {
    return fail(error(Exit::Usage, "a private key labelled " + quoted(key_label) +
                                       " exists already; choose another --key-label"));
  }
  if (id.empty()) {
    auto r = session.random(8);
    if (!r) return fail(explain(r.error(), "draw a random key id"));
    id = std::move(*r);
  } else {
    auto same_id = session.find({CKO_PRIVATE_KEY, std::nullopt, id});
    if (!same_id) return fail(explain(same_id.error(), "look for existing keys"));
    if (!same_id->empty()) {
      return fail(error(Exit::Usage, "a private key with id " + to_hex(id) +
                                         " exists already; choose another --id"));
    }
  }

  GeneratedKey out;
  auto pair = pki::generate_token_key(session, key_algorithm(type), key_label, id);
  if (!pair) {
    return fail(from_pki(pair.error(), std::string("generate an ") + key_type_name(type) + " key pair"));
  }
  out.handles = *pair;
  out.id = std::move(id);
  auto spki = public_key_der(session, out.handles.private_key);
  if (!spki) return fail(spki.error());
  auto pem = pki::public_key_pem(*spki);
  if (!pem) return fail(from_pki(pem.error(), "write the public key"));
  out.public_key_pem = std::move(*pem);
  return out;
}

ToolResult<CK_OBJECT_HANDLE> find_private_key(pkcs11::Session& session,
                                              const std::string& key_label) {
  auto found = session.find({CKO_PRIVATE_KEY, key_label, std::nullopt});
  if (!found) return fail(explain(found.error(), "look for the key"));
  if (found->empty()) {
    return fail(error(Exit::NotFound, "key label " + quoted(key_label) +
                                          " not found: no private key with that label on the "
                                          "token (see `edgekit token list`; a login is needed "
                                          "to see private keys)"));
  }
  if (found->size() > 1) {
    return fail(error(Exit::Usage, std::to_string(found->size()) + " private keys are labelled " +
                                       quoted(key_label) + "; remove the extra ones"));
  }
  return found->front();
}

ToolResult<Bytes> public_key_der(pkcs11::Session& session, CK_OBJECT_HANDLE private_key) {
  auto spki = pki::token_public_key(session, private_key);
  if (!spki) return fail(from_pki(spki.error(), "read the key's public key"));
  return std::move(*spki);
}

// --- CSR -------------------------------------------------------------------------------------

ToolResult<std::string> make_csr(pkcs11::Session& session, const std::string& key_label,
                                 std::string_view subject) {
  auto name = pki::Name::parse(subject);
  if (!name) return fail(error(Exit::Usage, "--subject: " + name.error().message));
  auto key = find_private_key(session, key_label);
  if (!key) return fail(key.error());
  auto signer = pki::TokenSigner::create(session, *key);
  if (!signer) return fail(from_pki(signer.error(), "read the key's public key"));
  auto pem = pki::make_csr(*signer, *name);
  if (!pem) return fail(from_pki(pem.error(), "sign the request in the token"));
  return std::move(*pem);
}

// --- certificates ----------------------------------------------------------------------------

ToolResult<ImportedCertificate> import_certificate(pkcs11::Session& session,
                                                   const std::string& label, std::string_view pem,
                                                   std::optional<Bytes> id) {
  auto cert = pki::parse_certificate(pem);
  if (!cert) {
    // A file without a PEM header that is no DER certificate either: say it plainly.
    const bool pem_like = pem.find("-----BEGIN ") != std::string_view::npos;
    return fail(error(Exit::Usage, pem_like ? "--cert: " + cert.error().message
                                            : "--cert: not a PEM certificate (nor a DER one)"));
  }
  if (label.empty()) return fail(error(Exit::Usage, "--label must not be empty"));
  const Bytes& cert_spki = cert->public_key_der;

  // Which key does the certificate belong to?
  std::optional<CK_OBJECT_HANDLE> key;
  if (id) {
    auto k = session.find({CKO_PRIVATE_KEY, std::nullopt, *id});
    if (!k) return fail(explain(k.error(), "look for the key"));
    if (k->size() == 1) key = k->front();
  } else {
    auto k = session.find({CKO_PRIVATE_KEY, label, std::nullopt});
    if (!k) return fail(explain(k.error(), "look for the key"));
    if (k->size() > 1) {
      return fail(error(Exit::Usage, "several private keys are labelled " + quoted(label) +
                                         "; say which with --id"));
    }
    if (k->empty()) {
      // Any private key whose public key is the certificate's.
      auto all = session.find({CKO_PRIVATE_KEY, std::nullopt, std::nullopt});
      if (!all) return fail(explain(all.error(), "look for the key"));
      for (auto h : *all) {
        auto spki = pki::token_public_key(session, h);
        if (spki && pki::same_public_key(*spki, cert_spki)) {
          key = h;
          break;
        }
      }
      if (!key) {
        return fail(error(Exit::NotFound, "no private key labelled " + quoted(label) +
                                              " or matching the certificate's public key; give "
                                              "the key's id with --id (see `edgekit token list`)"));
      }
    } else {
      key = k->front();
    }
    auto key_id = need_attribute(session, *key, CKA_ID, "CKA_ID");
    if (!key_id) return fail(key_id.error());
    id = std::move(*key_id);
  }

  ImportedCertificate out;
  if (key) {
    auto spki = public_key_der(session, *key);
    if (!spki) return fail(spki.error());
    if (!pki::same_public_key(*spki, cert_spki)) {
      return fail(error(Exit::Usage, "the certificate's public key is not the public key of the "
                                     "private key with id " + pki::to_hex(*id) +
                                     " (was the CSR made from another key?)"));
    }
    out.matches_key = true;
  }
  auto existing = session.find({CKO_CERTIFICATE, label, *id});
  if (!existing) return fail(explain(existing.error(), "look for certificates"));
  if (!existing->empty()) {
    return fail(error(Exit::Usage, "a certificate labelled " + quoted(label) + " with id " +
                                       pki::to_hex(*id) + " is on the token already"));
  }
  auto handle = pki::store_certificate(session, *cert, label, *id);
  if (!handle) return fail(from_pki(handle.error(), "store the certificate"));
  out.handle = *handle;
  out.id = std::move(*id);
  out.subject = cert->subject.to_string();
  return out;
}

// --- list, info ------------------------------------------------------------------------------

ToolResult<std::vector<ObjectSummary>> list_objects(pkcs11::Session& session) {
  auto handles = session.find({});
  if (!handles) return fail(explain(handles.error(), "list objects"));
  std::vector<ObjectSummary> out;
  for (auto h : *handles) {
    ObjectSummary o;
    auto cls = try_attribute(session, h, CKA_CLASS);
    if (!cls || !ulong_of(*cls)) continue;
    o.object_class = *ulong_of(*cls);
    if (auto v = try_attribute(session, h, CKA_LABEL)) o.label.assign(v->begin(), v->end());
    if (auto v = try_attribute(session, h, CKA_ID)) o.id = std::move(*v);
    if (auto v = try_attribute(session, h, CKA_PRIVATE)) o.is_private = bool_of(*v);
    if (o.object_class == CKO_PRIVATE_KEY || o.object_class == CKO_PUBLIC_KEY ||
        o.object_class == CKO_SECRET_KEY) {
      const auto kt = try_attribute(session, h, CKA_KEY_TYPE);
      const auto key_type = kt ? ulong_of(*kt) : std::nullopt;
      if (key_type == CKK_EC) {
        auto params = try_attribute(session, h, CKA_EC_PARAMS);
        o.key_type = "EC " + (params ? pki::ec_curve_name(*params) : std::string("unknown curve"));
      } else if (key_type == CKK_RSA) {
        std::size_t bits = 0;
        if (auto mb = try_attribute(session, h, CKA_MODULUS_BITS); mb && ulong_of(*mb)) {
          bits = *ulong_of(*mb);
        } else if (auto n = try_attribute(session, h, CKA_MODULUS)) {
          bits = n->size() * 8;
        }
        o.key_type = "RSA " + std::to_string(bits);
      } else if (key_type == CKK_GENERIC_SECRET) {
        o.key_type = "generic secret";
      } else if (key_type == CKK_AES) {
        o.key_type = "AES";
      } else {
        o.key_type = "key type " + std::to_string(key_type.value_or(~0UL));
      }
      if (o.object_class != CKO_PUBLIC_KEY) {
        if (auto v = try_attribute(session, h, CKA_SENSITIVE)) o.sensitive = bool_of(*v);
        if (auto v = try_attribute(session, h, CKA_EXTRACTABLE)) o.extractable = bool_of(*v);
      }
    } else if (o.object_class == CKO_CERTIFICATE) {
      if (auto v = try_attribute(session, h, CKA_VALUE)) {
        auto cert = pki::parse_certificate(std::span<const std::uint8_t>(*v));
        if (cert) {
          o.subject = cert->subject.to_string();
          o.not_after = pki::utc_time_text(cert->not_after);
        } else {
          o.subject = "(not an X.509 certificate)";
        }
      }
    }
    out.push_back(std::move(o));
  }
  // A plain loop: GCC 12 at -O3 misreads vector<uint8_t>'s operator< as a memcmp overread.
  auto id_less = [](const Bytes& a, const Bytes& b) {
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (a[i] != b[i]) return a[i] < b[i];
    }
    return a.size() < b.size();
  };
  std::sort(out.begin(), out.end(), [&](const ObjectSummary& a, const ObjectSummary& b) {
    if (a.id != b.id) return id_less(a.id, b.id);
    return a.object_class < b.object_class;
  });
  return out;
}

std::string format_object(const ObjectSummary& o) {
  auto yes_no = [](bool b) { return b ? "yes" : "no"; };
  char head[16];
  std::snprintf(head, sizeof head, "%-12s", class_name(o.object_class));
  std::string line = head;
  line += " id=" + (o.id.empty() ? std::string("-") : pki::to_hex(o.id));
  line += " label=\"" + o.label + "\"";
  if (!o.key_type.empty()) line += " " + o.key_type;
  if (o.sensitive) line += std::string(" sensitive=") + yes_no(*o.sensitive);
  if (o.extractable) line += std::string(" extractable=") + yes_no(*o.extractable);
  if (o.object_class == CKO_CERTIFICATE) {
    line += " subject=\"" + o.subject + "\"";
    if (!o.not_after.empty()) line += " expires=" + o.not_after;
  }
  return line;
}

ToolResult<std::string> describe_module(const pkcs11::Module& module) {
  std::string out;
  char buf[256];
  auto info = module.info();
  if (!info) return fail(explain(info.error(), "read module info"));
  std::snprintf(buf, sizeof buf, "module: %s (%s) version %u.%u, Cryptoki %u.%u\n",
                padded_text(info->libraryDescription, sizeof info->libraryDescription).c_str(),
                padded_text(info->manufacturerID, sizeof info->manufacturerID).c_str(),
                info->libraryVersion.major, info->libraryVersion.minor,
                info->cryptokiVersion.major, info->cryptokiVersion.minor);
  out += buf;
  auto slots = module.slots(false);
  if (!slots) return fail(explain(slots.error(), "list slots"));
  const auto& f = module.functions();
  for (CK_SLOT_ID slot : *slots) {
    CK_SLOT_INFO si{};
    if (f.C_GetSlotInfo(slot, &si) != CKR_OK) continue;
    std::snprintf(buf, sizeof buf, "slot %lu: %s\n", static_cast<unsigned long>(slot),
                  padded_text(si.slotDescription, sizeof si.slotDescription).c_str());
    out += buf;
    if ((si.flags & CKF_TOKEN_PRESENT) == 0) {
      out += "  no token\n";
      continue;
    }
    auto ti = module.token_info(slot);
    if (!ti) {
      out += "  token: " + explain(ti.error(), "read token info").message + "\n";
      continue;
    }
    if ((ti->flags & CKF_TOKEN_INITIALIZED) == 0) {
      out += "  token: not initialised (run `edgekit token init`)\n";
    } else {
      out += "  token: label=\"" + padded_text(ti->label, sizeof ti->label) + "\"\n";
    }
    std::snprintf(buf, sizeof buf, "  manufacturer: %s, model: %s, serial: %s\n",
                  padded_text(ti->manufacturerID, sizeof ti->manufacturerID).c_str(),
                  padded_text(ti->model, sizeof ti->model).c_str(),
                  padded_text(ti->serialNumber, sizeof ti->serialNumber).c_str());
    out += buf;
    std::string flags;
    const std::pair<CK_FLAGS, const char*> kFlags[] = {
        {CKF_TOKEN_INITIALIZED, "initialised"},   {CKF_USER_PIN_INITIALIZED, "user-PIN-set"},
        {CKF_LOGIN_REQUIRED, "login-required"},   {CKF_RNG, "rng"},
        {CKF_WRITE_PROTECTED, "write-protected"}, {CKF_USER_PIN_COUNT_LOW, "user-PIN-count-low"},
        {CKF_USER_PIN_FINAL_TRY, "user-PIN-final-try"}, {CKF_USER_PIN_LOCKED, "user-PIN-LOCKED"},
        {CKF_SO_PIN_COUNT_LOW, "SO-PIN-count-low"}, {CKF_SO_PIN_LOCKED, "SO-PIN-LOCKED"},
    };
    for (const auto& [bit, name] : kFlags) {
      if ((ti->flags & bit) != 0) flags += (flags.empty() ? "" : ", ") + std::string(name);
    }
    std::snprintf(buf, sizeof buf, "  flags: %s; PIN length %lu..%lu\n", flags.c_str(),
                  static_cast<unsigned long>(ti->ulMinPinLen),
                  static_cast<unsigned long>(ti->ulMaxPinLen));
    out += buf;
    auto mechs = module.mechanisms(slot);
    if (!mechs) {
      out += "  mechanisms: " + explain(mechs.error(), "list").message + "\n";
      continue;
    }
    out += "  mechanisms:\n";
    for (auto m : *mechs) {
      CK_MECHANISM_INFO mi{};
      std::string what;
      if (f.C_GetMechanismInfo(slot, m, &mi) == CKR_OK) {
        const std::pair<CK_FLAGS, const char*> kUses[] = {
            {CKF_GENERATE_KEY_PAIR, "keygen"}, {CKF_SIGN, "sign"},   {CKF_VERIFY, "verify"},
            {CKF_DIGEST, "digest"},            {CKF_ENCRYPT, "encrypt"}, {CKF_DECRYPT, "decrypt"},
            {CKF_GENERATE, "generate"},        {CKF_DERIVE, "derive"},
        };
        for (const auto& [bit, name] : kUses) {
          if ((mi.flags & bit) != 0) what += (what.empty() ? "" : ",") + std::string(name);
        }
        if (mi.ulMaxKeySize != 0) {
          what += " keys " + std::to_string(mi.ulMinKeySize) + ".." + std::to_string(mi.ulMaxKeySize);
        }
      }
      std::snprintf(buf, sizeof buf, "    %-28s %s\n", mechanism_name(m).c_str(), what.c_str());
      out += buf;
    }
  }
  return out;
}

}  // namespace edgekit::tools::token
