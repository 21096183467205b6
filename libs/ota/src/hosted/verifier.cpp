// Digest and ECDSA verification of an OTA file in the PKCS#11 token (verifier.hpp).
#include "edgekit/ota/verifier.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "edgekit/ota/signature.hpp"

namespace edgekit::ota {
namespace {

// [PKCS#11 v2.40 2.3.3] CKA_EC_PARAMS of P-256: the DER OID prime256v1.
constexpr std::uint8_t kP256Params[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::size_t kPointSize = 65;  // 04 || X || Y

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};

// The uncompressed point of a P-256 key given as a certificate or SubjectPublicKeyInfo (DER).
Result<std::array<std::uint8_t, kPointSize>, Errc> p256_point(std::span<const std::uint8_t> der) {
  const unsigned char* p = der.data();
  std::unique_ptr<X509, X509Free> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  std::unique_ptr<EVP_PKEY, PkeyFree> owned;
  EVP_PKEY* key = nullptr;
  if (cert && p == der.data() + der.size()) {
    key = X509_get0_pubkey(cert.get());
  } else {
    p = der.data();
    owned.reset(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
    if (!owned || p != der.data() + der.size()) return fail(Errc::InvalidArgument);
    key = owned.get();
  }
  char group[32] = {};
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
      EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                     nullptr) != 1 ||
      std::string(group) != "prime256v1") {
    return fail(Errc::InvalidArgument);
  }
  std::array<std::uint8_t, kPointSize> point{};
  std::size_t n = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size(),
                                      &n) != 1 ||
      n != kPointSize || point[0] != 0x04) {
    return fail(Errc::InvalidArgument);
  }
  return point;
}

}  // namespace

Result<CK_OBJECT_HANDLE, Errc> import_code_signing_key(pkcs11::Session& session,
                                                       std::span<const std::uint8_t> der,
                                                       std::string_view label, bool token_object) {
  auto point = p256_point(der);
  if (!point) return fail(point.error());
  // CKA_EC_POINT is the point inside a DER OCTET STRING (v2.40 2.3.3).
  std::vector<std::uint8_t> ec_point{0x04, static_cast<std::uint8_t>(kPointSize)};
  ec_point.insert(ec_point.end(), point->begin(), point->end());
  CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
  CK_KEY_TYPE type = CKK_EC;
  CK_BBOOL yes = CK_TRUE;
  CK_BBOOL no = CK_FALSE;
  CK_BBOOL token = token_object ? CK_TRUE : CK_FALSE;
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &cls, sizeof cls},
      {CKA_KEY_TYPE, &type, sizeof type},
      {CKA_TOKEN, &token, sizeof token},
      {CKA_PRIVATE, &no, sizeof no},
      {CKA_VERIFY, &yes, sizeof yes},
      {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
      {CKA_EC_PARAMS, const_cast<std::uint8_t*>(kP256Params), sizeof kP256Params},
      {CKA_EC_POINT, ec_point.data(), ec_point.size()},
  };
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  if (session.functions().C_CreateObject(session.handle(), tmpl, std::size(tmpl), &handle) !=
      CKR_OK) {
    return fail(Errc::TokenFailed);
  }
  return handle;
}

Result<Verifier, Errc> Verifier::find(pkcs11::Session& session, std::string_view label) {
  pkcs11::ObjectQuery q;
  q.object_class = CKO_PUBLIC_KEY;
  q.label = std::string(label);
  auto key = session.find_one(q);
  if (!key) {
    const auto cause = key.error().cause;
    return fail(cause == pkcs11::Cause::NotFound || cause == pkcs11::Cause::Ambiguous
                    ? Errc::KeyNotFound
                    : Errc::TokenFailed);
  }
  return Verifier(session, *key);
}

void Verifier::abandon() noexcept {
  if (!digesting_) return;
  // PKCS#11 2.40 has no cancel: finish the digest into a throwaway buffer, so that the session
  // can start another one. Its result is ignored on purpose. The buffer holds a SHA-256, so the
  // one failure that leaves the operation active (CKR_BUFFER_TOO_SMALL, C_DigestFinal in 2.40)
  // cannot happen, and any other ends it (a broken session, a removed token). Were it still
  // active, the next `begin`'s C_DigestInit would fail (CKR_OPERATION_ACTIVE) and report
  // TokenFailed where a caller looks; and `verify`, the other caller, already returns the read
  // error that made it give up, which is the cause worth naming.
  CK_BYTE discard[32];
  CK_ULONG len = sizeof discard;
  (void)session_->functions().C_DigestFinal(session_->handle(), discard, &len);
  digesting_ = false;
}

Result<void, Errc> Verifier::begin() {
  abandon();
  CK_MECHANISM sha256{CKM_SHA256, nullptr, 0};
  if (session_->functions().C_DigestInit(session_->handle(), &sha256) != CKR_OK) {
    return fail(Errc::TokenFailed);
  }
  digesting_ = true;
  return {};
}

Result<void, Errc> Verifier::update(std::span<const std::byte> part) {
  if (!digesting_) return fail(Errc::TokenFailed);
  auto* data = reinterpret_cast<CK_BYTE*>(const_cast<std::byte*>(part.data()));
  if (session_->functions().C_DigestUpdate(session_->handle(), data, part.size()) != CKR_OK) {
    digesting_ = false;  // a failed update ends the operation (spec 5.2)
    return fail(Errc::TokenFailed);
  }
  return {};
}

Result<void, Errc> Verifier::finish(std::span<const std::byte> signature) {
  if (!digesting_) return fail(Errc::TokenFailed);
  const auto& f = session_->functions();
  CK_BYTE digest[32];
  CK_ULONG digest_len = sizeof digest;
  const CK_RV rv = f.C_DigestFinal(session_->handle(), digest, &digest_len);
  digesting_ = false;
  if (rv != CKR_OK || digest_len != sizeof digest) return fail(Errc::TokenFailed);
  std::array<std::byte, kRawSignatureSize> raw{};
  if (auto r = raw_p256_signature(signature, raw); !r) return fail(r.error());
  CK_MECHANISM ecdsa{CKM_ECDSA, nullptr, 0};
  if (f.C_VerifyInit(session_->handle(), &ecdsa, key_) != CKR_OK) return fail(Errc::TokenFailed);
  const CK_RV verified = f.C_Verify(session_->handle(), digest, digest_len,
                                    reinterpret_cast<CK_BYTE*>(raw.data()), raw.size());
  if (verified == CKR_SIGNATURE_INVALID || verified == CKR_SIGNATURE_LEN_RANGE) {
    return fail(Errc::SignatureInvalid);
  }
  if (verified != CKR_OK) return fail(Errc::TokenFailed);
  return {};
}

Result<void, Errc> Verifier::verify(const ImageReader& read, std::uint64_t size,
                                    std::span<const std::byte> signature, std::size_t chunk) {
  std::vector<std::byte> buffer(chunk == 0 ? 4096 : chunk);
  // The port's form of `read`: a plain function with the std::function as its context.
  const ImageSource source{
      [](void* context, std::uint64_t offset, std::span<std::byte> out) noexcept {
        return (*static_cast<const ImageReader*>(context))(offset, out);
      },
      const_cast<ImageReader*>(&read)};
  return verify(source, size, signature, buffer);
}

Result<void, Errc> Verifier::verify(ImageSource source, std::uint64_t size,
                                    std::span<const std::byte> signature,
                                    std::span<std::byte> buffer) noexcept {
  if (buffer.empty() || source.read == nullptr) return fail(Errc::InvalidArgument);
  if (auto r = begin(); !r) return r;
  for (std::uint64_t at = 0; at < size;) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size - at));
    auto n = source.read(source.context, at, buffer.first(want));
    if (!n || *n == 0) {
      abandon();
      return fail(n ? Errc::ImageTruncated : n.error());
    }
    if (auto r = update(buffer.first(*n)); !r) return r;
    at += *n;
  }
  return finish(signature);
}

}  // namespace edgekit::ota
