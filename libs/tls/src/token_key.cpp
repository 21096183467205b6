// A private key held in a PKCS#11 token, as an OpenSSL EVP_PKEY whose ECDSA signatures are C_Sign
// calls in the token.
//
// Why the deprecated EC_KEY_METHOD API: OpenSSL 3.0 on Debian 12 has no pkcs11 provider package,
// and an in-process provider (keymgmt + signature + their parameter plumbing) is several hundred
// lines. OpenSSL 3.0 still routes an EVP_PKEY whose EC_KEY carries a non-default method through
// the legacy code path ("foreign" keys, crypto/evp/p_lib.c), libssl included, so a sign_sig
// callback is all it takes. This file is the only place that uses the deprecated API; it says so
// with OPENSSL_SUPPRESS_DEPRECATED instead of turning warnings off for the library. When the
// EC_KEY_METHOD API goes away (OpenSSL 4), this file becomes a small provider.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>

#include <edgekit/pkcs11/client.hpp>
#include <edgekit/pki/token.hpp>

#include <cstring>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "internal.hpp"

namespace edgekit::tls::detail {
namespace {

// What the EC_KEY carries (ex_data): a logged-in session (with the module, when the key owns
// them: TokenKey) and the key's handle. PKCS#11 sessions are single-threaded; the mutex
// serialises handshakes that share the key (a borrowed session's other users are the caller's
// to serialise: ClientIdentity::from_token).
struct TokenSigner {
  TokenSigner(pkcs11::Module m, pkcs11::Session s)
      : module(std::move(m)), owned(std::move(s)), session(&*owned) {}
  explicit TokenSigner(pkcs11::Session& borrowed) : session(&borrowed) {}
  std::optional<pkcs11::Module> module;  // declared first: destroyed after the session
  std::optional<pkcs11::Session> owned;
  pkcs11::Session* session;
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  std::size_t order_bytes = 32;
  std::mutex mutex;
};

void free_signer(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<TokenSigner*>(ptr);
}

int signer_index() {
  static const int index =
      EC_KEY_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_signer);
  return index;
}

void push_token_error(const pkcs11::Error& e) {
  // The reason field holds 23 bits; standard CKR codes fit, vendor codes are named in the text.
  ERR_raise_data(kTokenErrorLib, static_cast<int>(e.rv & 0x7fffff), "%s", e.message().c_str());
}

// ECDSA over `digest` in the token (CKM_ECDSA signs a caller-computed hash). The token returns
// r || s, each the size of the group order (PKCS#11 v2.40 section 2.3.1).
ECDSA_SIG* token_sign_sig(const unsigned char* digest, int digest_len, const BIGNUM*,
                          const BIGNUM*, EC_KEY* ec) {
  auto* signer = static_cast<TokenSigner*>(EC_KEY_get_ex_data(ec, signer_index()));
  if (signer == nullptr || digest_len < 0) return nullptr;
  // ECDSA uses the leftmost bits of the hash as long as the order (SEC 1, 4.1.3 step 5); the
  // supported orders are whole bytes, so a longer hash (TLS 1.2 may pair P-256 with SHA-384) is
  // truncated here and the token sees the size it expects.
  std::size_t n = static_cast<std::size_t>(digest_len);
  if (n > signer->order_bytes) n = signer->order_bytes;
  pkcs11::Result<pkcs11::Bytes> sig = [&] {
    std::lock_guard<std::mutex> lock(signer->mutex);
    return signer->session->sign(signer->key, pkcs11::Mechanism{CKM_ECDSA, {}},
                                std::span<const std::uint8_t>(digest, n));
  }();
  if (!sig) {
    push_token_error(sig.error());
    return nullptr;
  }
  const std::size_t half = signer->order_bytes;
  if (sig->size() != 2 * half) {
    pkcs11::Error e;
    e.cause = pkcs11::Cause::Module;
    e.rv = CKR_GENERAL_ERROR;
    e.function = "C_Sign";
    push_token_error(e);
    return nullptr;
  }
  BIGNUM* r = BN_bin2bn(sig->data(), static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(sig->data() + half, static_cast<int>(half), nullptr);
  ECDSA_SIG* out = ECDSA_SIG_new();
  if (r == nullptr || s == nullptr || out == nullptr || ECDSA_SIG_set0(out, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(out);
    return nullptr;
  }
  return out;
}

const EC_KEY_METHOD* token_method() {
  static EC_KEY_METHOD* method = [] {
    EC_KEY_METHOD* m = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    if (m == nullptr) return m;
    int (*sign)(int, const unsigned char*, int, unsigned char*, unsigned int*, const BIGNUM*,
                const BIGNUM*, EC_KEY*) = nullptr;
    int (*setup)(EC_KEY*, BN_CTX*, BIGNUM**, BIGNUM**) = nullptr;
    ECDSA_SIG* (*sig)(const unsigned char*, int, const BIGNUM*, const BIGNUM*, EC_KEY*) = nullptr;
    EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), &sign, &setup, &sig);
    // The default `sign` DER-encodes what `sign_sig` returns; only `sign_sig` goes to the token.
    EC_KEY_METHOD_set_sign(m, sign, setup, &token_sign_sig);
    return m;
  }();
  return method;
}

Error token_error(Cause cause, const pkcs11::Error& e) {
  Error out;
  out.cause = cause;
  out.detail = e.message();
  out.ck_rv = e.rv;
  return out;
}

Error plain_error(Cause cause, std::string detail) {
  Error out;
  out.cause = cause;
  out.detail = std::move(detail);
  return out;
}

Result<PkeyPtr> signer_key(std::unique_ptr<TokenSigner> signer, const std::string& key_label,
                           const std::vector<std::uint8_t>& key_id);

}  // namespace

Result<PkeyPtr> load_token_key(const TokenKey& cfg) {
  auto module = pkcs11::Module::load(cfg.module_path);
  if (!module) return fail(token_error(Cause::TokenUnavailable, module.error()));
  auto slot = module->find_token(cfg.token_label);
  if (!slot) {
    Error e = token_error(slot.error().cause == pkcs11::Cause::NotFound ? Cause::TokenUnavailable
                                                                        : Cause::TokenError,
                          slot.error());
    // A damaged token has no label to match: say what the module reported for each slot that
    // could not be read (e.g. CKR_TOKEN_NOT_RECOGNIZED for a tampered token file).
    if (auto slots = module->slots(true)) {
      for (CK_SLOT_ID s : *slots) {
        if (auto info = module->token_info(s); !info) {
          e.detail += "; slot " + std::to_string(s) + ": " + info.error().message();
          if (e.ck_rv == 0) e.ck_rv = info.error().rv;
        }
      }
    }
    return fail(e);
  }
  auto session = module->open_session(*slot, false);
  if (!session) return fail(token_error(Cause::TokenError, session.error()));
  if (auto login = session->login(pkcs11::UserType::User, cfg.pin); !login) {
    // Another session of this process may have logged in already: login state is per
    // application (PKCS#11 v2.40 section 5.6), so that is success.
    if (login.error().rv != CKR_USER_ALREADY_LOGGED_IN) {
      return fail(token_error(Cause::TokenLoginFailed, login.error()));
    }
  }
  auto* signer = new (std::nothrow) TokenSigner(std::move(*module), std::move(*session));
  if (signer == nullptr) return fail(plain_error(Cause::TokenError, "out of memory"));
  return signer_key(std::unique_ptr<TokenSigner>(signer), cfg.key_label, cfg.key_id);
}

Result<PkeyPtr> session_token_key(pkcs11::Session& session, std::string_view key_label) {
  auto* signer = new (std::nothrow) TokenSigner(session);
  if (signer == nullptr) return fail(plain_error(Cause::TokenError, "out of memory"));
  return signer_key(std::unique_ptr<TokenSigner>(signer), std::string(key_label), {});
}

// Finds the private key (by label and/or id) through the signer's session and returns an
// EVP_PKEY carrying its public key, whose ECDSA signatures are C_Sign calls there. The EVP_PKEY
// takes the signer.
namespace {
Result<PkeyPtr> signer_key(std::unique_ptr<TokenSigner> signer, const std::string& key_label,
                           const std::vector<std::uint8_t>& key_id) {
  pkcs11::Session* session = signer->session;
  pkcs11::ObjectQuery query;
  query.object_class = CKO_PRIVATE_KEY;
  if (!key_label.empty()) query.label = key_label;
  if (!key_id.empty()) query.id = pkcs11::Bytes(key_id.begin(), key_id.end());
  auto key = session->find_one(query);
  if (!key) {
    return fail(token_error(key.error().cause == pkcs11::Cause::Module ? Cause::TokenError
                                                                       : Cause::TokenKeyNotFound,
                            key.error()));
  }
  // The public key, read from the token as edgekit::pki reads it for CSRs and certificates: the
  // pair's public key object (same CKA_ID, else label), else CKA_EC_POINT on the private key.
  auto spki = pki::token_public_key(*session, *key);
  if (!spki) {
    const pki::Error& pe = spki.error();
    Error e;
    e.cause = pe.code == pki::Errc::NotFound  ? Cause::TokenKeyNotFound
              : pe.code == pki::Errc::Token   ? Cause::TokenError
                                              : Cause::TokenKeyUnsupported;
    e.detail = pe.message;
    if (pe.token) e.ck_rv = pe.token->rv;
    return fail(e);
  }
  const auto algorithm = pki::key_algorithm_of(*spki);
  if (algorithm != pki::KeyAlgorithm::EcP256 && algorithm != pki::KeyAlgorithm::EcP384) {
    return fail(plain_error(Cause::TokenKeyUnsupported,
                            "the token's key is not an EC P-256/P-384 key (only EC P-256/P-384 "
                            "keys in a token are supported)"));
  }
  // A legacy EC_KEY copy of the public key, to carry the token's method.
  const unsigned char* p = spki->data();
  EVP_PKEY* pub = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki->size()));
  EC_KEY* ec = pub != nullptr ? EVP_PKEY_get1_EC_KEY(pub) : nullptr;
  EVP_PKEY_free(pub);
  if (ec == nullptr) {
    ERR_clear_error();
    return fail(plain_error(Cause::TokenKeyUnsupported, "the token's EC public key is invalid"));
  }
  const std::size_t order_bytes = algorithm == pki::KeyAlgorithm::EcP384 ? 48 : 32;

  signer->key = *key;
  signer->order_bytes = order_bytes;
  if (token_method() == nullptr || EC_KEY_set_method(ec, token_method()) != 1 ||
      EC_KEY_set_ex_data(ec, signer_index(), signer.get()) != 1) {
    EC_KEY_free(ec);
    return fail(plain_error(Cause::TokenError, "cannot attach the token to an OpenSSL key"));
  }
  // From here the EC_KEY owns the signer (freed by free_signer with the key).
  (void)signer.release();
  EVP_PKEY* pkey = EVP_PKEY_new();
  if (pkey == nullptr || EVP_PKEY_assign_EC_KEY(pkey, ec) != 1) {
    EVP_PKEY_free(pkey);
    EC_KEY_free(ec);
    return fail(plain_error(Cause::TokenError, "cannot make an OpenSSL key"));
  }
  return PkeyPtr(pkey);
}
}  // namespace

}  // namespace edgekit::tls::detail
