#pragma once
// Private declarations shared by the TLS sources.

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>
#include <string_view>

#include "edgekit/tls/tls.hpp"

namespace edgekit::tls::detail {

// A token signature failure is pushed on OpenSSL's (thread-local) error queue under this library
// code, with the CKR code as reason and the client's message as data, so that the handshake that
// asked for the signature can name it.
inline constexpr int kTokenErrorLib = ERR_LIB_USER;

// Owns an EVP_PKEY reference.
struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// An Error of `cause` with `detail`.
Error make_error(Cause cause, std::string detail);

// The first error on OpenSSL's queue as text ("no details from OpenSSL" if none); clears the
// queue.
std::string openssl_reason();

// What a ClientIdentity holds: one reference on each object.
struct IdentityState {
  X509* certificate = nullptr;
  EVP_PKEY* key = nullptr;
  STACK_OF(X509)* chain = nullptr;  // intermediates after the leaf; null when none
  IdentityState() = default;
  IdentityState(const IdentityState&) = delete;
  IdentityState& operator=(const IdentityState&) = delete;
  ~IdentityState();
};

// Sets `identity` as the client certificate, chain and key of `ssl` (references taken) and
// checks that key and certificate belong together.
// Errors: CertificateLoadFailed, PrivateKeyLoadFailed, KeyCertificateMismatch.
Result<void> apply_identity(const IdentityState& identity, SSL* ssl);

// Loads the module, logs in and finds the key; returns an EVP_PKEY carrying the public key whose
// private operations (ECDSA) run as C_Sign in the token. The EVP_PKEY owns the module and the
// session: they live until the last reference (context or connection) is freed.
Result<PkeyPtr> load_token_key(const TokenKey& key);

// As load_token_key, through a session the caller opened and logged in (borrowed: it must
// outlive the EVP_PKEY), the key found by label.
Result<PkeyPtr> session_token_key(pkcs11::Session& session, std::string_view key_label);

}  // namespace edgekit::tls::detail
