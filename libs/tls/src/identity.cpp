// Per-connection client identities. See ClientIdentity in tls.hpp for the contract.
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include <edgekit/pkcs11/client.hpp>

#include "edgekit/tls/tls.hpp"
#include "internal.hpp"

namespace edgekit::tls {

namespace detail {

IdentityState::~IdentityState() {
  // EVP_PKEY_free wipes the private scalar (OpenSSL frees key material with OPENSSL_clear_free).
  EVP_PKEY_free(key);
  X509_free(certificate);
  sk_X509_pop_free(chain, X509_free);
}

Result<void> apply_identity(const IdentityState& identity, SSL* ssl) {
  ERR_clear_error();
  // Each call takes a reference (nothing is copied): thousands of connections of one device, or
  // of thousands of devices, cost no more than their identities.
  if (SSL_use_certificate(ssl, identity.certificate) != 1) {
    return fail(make_error(Cause::CertificateLoadFailed, openssl_reason()));
  }
  if (identity.chain != nullptr && SSL_set1_chain(ssl, identity.chain) != 1) {
    return fail(make_error(Cause::CertificateLoadFailed, "chain: " + openssl_reason()));
  }
  if (SSL_use_PrivateKey(ssl, identity.key) != 1) {
    return fail(make_error(Cause::PrivateKeyLoadFailed, openssl_reason()));
  }
  if (SSL_check_private_key(ssl) != 1) {
    ERR_clear_error();
    return fail(make_error(Cause::KeyCertificateMismatch,
                           "the identity's private key does not match its certificate"));
  }
  return {};
}

}  // namespace detail

namespace {

using detail::IdentityState;
using detail::make_error;
using detail::openssl_reason;

struct BioDeleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr memory_bio(std::string_view bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

// Reads a whole file into `out`, sized once so that no copy of a key is left behind in freed
// memory by a growing string. Errors: the reason as text.
bool read_file(const std::string& path, std::string& out, std::string& why) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    why = path + ": " + std::strerror(errno);
    return false;
  }
  const std::streamoff size = in.tellg();
  in.seekg(0);
  out.resize(size > 0 ? static_cast<std::size_t>(size) : 0);
  if (size < 0 || !in.read(out.data(), static_cast<std::streamsize>(out.size()))) {
    why = path + ": read failed";
    return false;
  }
  return true;
}

void wipe(std::string& s) noexcept {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// An unencrypted SEC1 key ("EC PRIVATE KEY", what `openssl ecparam -genkey` writes) read
// straight as EC, else null (then the caller reads it the general way). Why: OpenSSL 3.0's
// general reader tries every decoder it has, about 1 ms per key; this takes about a quarter of
// that, which counts when a simulator loads ten thousand keys.
EVP_PKEY* read_sec1_key(std::string_view pem) {
  BioPtr in = memory_bio(pem);
  if (!in) return nullptr;
  EVP_PKEY* key = nullptr;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long length = 0;
    if (PEM_read_bio(in.get(), &name, &header, &data, &length) != 1) break;
    const bool sec1 = std::strcmp(name, "EC PRIVATE KEY") == 0 && header[0] == '\0';
    const bool other_key = std::strstr(name, "PRIVATE KEY") != nullptr;
    if (sec1) {
      const unsigned char* p = data;
      key = d2i_PrivateKey(EVP_PKEY_EC, nullptr, &p, length);
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(data, static_cast<std::size_t>(length));
    if (sec1 || other_key) break;  // the first key decides
  }
  ERR_clear_error();
  return key;
}

}  // namespace

// The last step of every factory: key and certificate must belong together.
Result<ClientIdentity> ClientIdentity::checked(std::unique_ptr<detail::IdentityState> state) {
  if (X509_check_private_key(state->certificate, state->key) != 1) {
    ERR_clear_error();
    return fail(make_error(Cause::KeyCertificateMismatch,
                           "the private key does not match the client certificate"));
  }
  return ClientIdentity(std::move(state));
}

ClientIdentity::ClientIdentity() noexcept = default;
ClientIdentity::ClientIdentity(std::unique_ptr<detail::IdentityState> state) noexcept
    : state_(std::move(state)) {}
ClientIdentity::ClientIdentity(ClientIdentity&&) noexcept = default;
ClientIdentity& ClientIdentity::operator=(ClientIdentity&&) noexcept = default;
ClientIdentity::~ClientIdentity() = default;

x509_st* ClientIdentity::certificate() const noexcept {
  return state_ != nullptr ? state_->certificate : nullptr;
}

std::string ClientIdentity::common_name() const {
  if (state_ == nullptr) return {};
  const X509_NAME* subject = X509_get_subject_name(state_->certificate);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) return {};
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

Result<ClientIdentity> ClientIdentity::from_pem(std::string_view certificate_chain_pem,
                                                std::string_view private_key_pem,
                                                std::string_view passphrase) {
  ERR_clear_error();
  auto state = std::make_unique<IdentityState>();
  BioPtr certs = memory_bio(certificate_chain_pem);
  if (!certs) return fail(make_error(Cause::CertificateLoadFailed, openssl_reason()));
  state->certificate = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr);
  if (state->certificate == nullptr) {
    return fail(make_error(Cause::CertificateLoadFailed, "no certificate: " + openssl_reason()));
  }
  // The rest of the bundle is the chain; the end of the input is the only acceptable stop.
  while (X509* extra = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
    if (state->chain == nullptr) state->chain = sk_X509_new_null();
    if (state->chain == nullptr || sk_X509_push(state->chain, extra) == 0) {
      X509_free(extra);
      return fail(make_error(Cause::CertificateLoadFailed, openssl_reason()));
    }
  }
  const unsigned long last = ERR_peek_last_error();
  if (ERR_GET_LIB(last) != ERR_LIB_PEM || ERR_GET_REASON(last) != PEM_R_NO_START_LINE) {
    return fail(make_error(Cause::CertificateLoadFailed, "chain: " + openssl_reason()));
  }
  ERR_clear_error();

  state->key = read_sec1_key(private_key_pem);
  if (state->key == nullptr) {
    BioPtr key = memory_bio(private_key_pem);
    if (!key) return fail(make_error(Cause::PrivateKeyLoadFailed, openssl_reason()));
    // The passphrase is passed even when empty, so that an encrypted key fails instead of
    // prompting on the terminal.
    std::string pass(passphrase);
    state->key = PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, pass.data());
    wipe(pass);
  }
  if (state->key == nullptr) {
    return fail(make_error(Cause::PrivateKeyLoadFailed, openssl_reason()));
  }
  return checked(std::move(state));
}

Result<ClientIdentity> ClientIdentity::from_files(const std::string& certificate_chain_file,
                                                  const std::string& private_key_file,
                                                  std::string_view passphrase) {
  std::string certs;
  std::string key;
  std::string why;
  if (!read_file(certificate_chain_file, certs, why)) {
    return fail(make_error(Cause::CertificateLoadFailed, why));
  }
  if (!read_file(private_key_file, key, why)) {
    return fail(make_error(Cause::PrivateKeyLoadFailed, why));
  }
  auto identity = from_pem(certs, key, passphrase);
  wipe(key);
  return identity;
}

Result<ClientIdentity> ClientIdentity::from_openssl(x509_st* certificate, evp_pkey_st* private_key,
                                                    std::span<x509_st* const> chain) {
  if (certificate == nullptr || private_key == nullptr) {
    return fail(make_error(Cause::InvalidConfig, "a client identity needs a certificate and a key"));
  }
  auto state = std::make_unique<IdentityState>();
  // References, not copies: the caller keeps (and frees) its own.
  if (X509_up_ref(certificate) != 1) return fail(make_error(Cause::CertificateLoadFailed, openssl_reason()));
  state->certificate = certificate;
  if (EVP_PKEY_up_ref(private_key) != 1) return fail(make_error(Cause::PrivateKeyLoadFailed, openssl_reason()));
  state->key = private_key;
  if (!chain.empty()) {
    state->chain = sk_X509_new_reserve(nullptr, static_cast<int>(chain.size()));
    if (state->chain == nullptr) return fail(make_error(Cause::CertificateLoadFailed, openssl_reason()));
    for (X509* c : chain) {
      if (c == nullptr || X509_up_ref(c) != 1) {
        return fail(make_error(Cause::InvalidConfig, "a null or unusable chain certificate"));
      }
      (void)sk_X509_push(state->chain, c);  // cannot fail: reserved
    }
  }
  return checked(std::move(state));
}

Result<ClientIdentity> ClientIdentity::from_token(pkcs11::Session& session,
                                                  std::string_view key_label,
                                                  std::span<const std::uint8_t> certificate_der) {
  if (key_label.empty()) {
    return fail(make_error(Cause::InvalidConfig, "a token identity needs the key's label"));
  }
  ERR_clear_error();
  auto state = std::make_unique<IdentityState>();
  pkcs11::Bytes stored;
  if (certificate_der.empty()) {
    pkcs11::ObjectQuery query;
    query.object_class = CKO_CERTIFICATE;
    query.label = std::string(key_label);
    auto object = session.find_one(query);
    pkcs11::Result<pkcs11::Bytes> value = object ? session.attribute(*object, CKA_VALUE)
                                                 : fail(object.error());
    if (!value) {
      Error e = make_error(value.error().cause == pkcs11::Cause::Module ? Cause::TokenError
                                                                         : Cause::TokenKeyNotFound,
                           "certificate \"" + std::string(key_label) +
                               "\" in the token: " + value.error().message());
      e.ck_rv = value.error().rv;
      return fail(e);
    }
    stored = std::move(*value);
    certificate_der = stored;
  }
  const unsigned char* p = certificate_der.data();
  state->certificate = d2i_X509(nullptr, &p, static_cast<long>(certificate_der.size()));
  if (state->certificate == nullptr || p != certificate_der.data() + certificate_der.size()) {
    return fail(make_error(Cause::CertificateLoadFailed, "the certificate (DER): " + openssl_reason()));
  }
  auto key = detail::session_token_key(session, key_label);
  if (!key) return fail(key.error());
  state->key = key->release();
  return checked(std::move(state));
}

}  // namespace edgekit::tls
