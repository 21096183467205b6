#pragma once
/// \file
/// Verifies an OTA file's signature (`sig-sha256-ecdsa`, signature.hpp) in the device's PKCS#11
/// token: the SHA-256 of the whole file is computed by the token (C_DigestInit with CKM_SHA256,
/// C_DigestUpdate per part, C_DigestFinal), and the signature is checked by the token with the
/// code-signing public key it holds (C_VerifyInit with CKM_ECDSA, C_Verify over the digest and
/// the raw r || s). Neither the digest nor the key is computed or held by the application, so an
/// attacker who can change the application's memory cannot make a forged image pass without
/// also controlling the token.
///
/// It is the hosted `ImageVerifier` (image_verifier.hpp) that the OTA agent takes.
///
/// Thread safety: one thread at a time (as the pkcs11::Session it uses). The session must stay
/// open while the Verifier is used; no login is needed for a public key object.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "edgekit/ota/errc.hpp"
#include "edgekit/ota/image_verifier.hpp"
#include "edgekit/pkcs11/client.hpp"

namespace edgekit::ota {

/// Imports a code-signing public key into the token as a CKO_PUBLIC_KEY (CKK_EC, CKA_VERIFY,
/// not private) labelled `label`; `token_object` makes it persistent (CKA_TOKEN, which needs a
/// read/write session logged in as the user), else a session object. `der` is an X.509
/// certificate or a SubjectPublicKeyInfo, both DER, of an EC P-256 key.
/// Errors: InvalidArgument (not a certificate or public key, or
/// not a P-256 key), TokenFailed (C_CreateObject refused).
[[nodiscard]] Result<CK_OBJECT_HANDLE, Errc> import_code_signing_key(
    pkcs11::Session& session, std::span<const std::uint8_t> der, std::string_view label,
    bool token_object);

/// Reads up to `out.size()` bytes of an image from `offset` (a DownloadStore's `read_image`, a
/// slot's `read`); returns how many, 0 at its end.
using ImageReader =
    std::function<Result<std::size_t, Errc>(std::uint64_t offset, std::span<std::byte> out)>;

/// Digest and verification in the token.
class Verifier final : public ImageVerifier {
 public:
  /// Over `session` and the code-signing public key `key` (a CKO_PUBLIC_KEY of type CKK_EC).
  Verifier(pkcs11::Session& session, CK_OBJECT_HANDLE key) noexcept
      : session_(&session), key_(key) {}

  /// The Verifier of the code-signing public key labelled `label`.
  /// Errors: KeyNotFound (none, or more than one), TokenFailed.
  [[nodiscard]] static Result<Verifier, Errc> find(pkcs11::Session& session,
                                                   std::string_view label);

  /// Starts a digest of a new file (ending one in progress). A digest begun and never finished
  /// keeps the session's digest operation busy until `begin` or `finish`; `verify` ends its own
  /// on every path. Errors: TokenFailed.
  [[nodiscard]] Result<void, Errc> begin();
  /// Adds `part` to the digest. Errors: TokenFailed (also without `begin`).
  [[nodiscard]] Result<void, Errc> update(std::span<const std::byte> part);
  /// Ends the digest and verifies `signature` (DER or raw, signature.hpp) over it.
  /// Errors: MalformedSignature, SignatureInvalid (the token says the signature does not hold:
  /// the file was changed, truncated or extended, or signed by another key), TokenFailed.
  [[nodiscard]] Result<void, Errc> finish(std::span<const std::byte> signature);

  /// The whole check of a file of `size` bytes read with `read` in chunks of `chunk` bytes (a
  /// buffer it allocates; 0: 4096): begin, update per chunk, finish.
  /// Errors: ImageTruncated (`read` ends before `size` bytes), the errors of `read`, and those
  /// of `finish`.
  [[nodiscard]] Result<void, Errc> verify(const ImageReader& read, std::uint64_t size,
                                          std::span<const std::byte> signature,
                                          std::size_t chunk = 4096);
  /// The same check through the port (`ImageVerifier`): `source` read into the caller's
  /// `buffer`, nothing allocated. Errors: InvalidArgument (empty `buffer`), and those above.
  [[nodiscard]] Result<void, Errc> verify(ImageSource source, std::uint64_t size,
                                          std::span<const std::byte> signature,
                                          std::span<std::byte> buffer) noexcept override;

 private:
  // Ends a digest in progress, if any.
  void abandon() noexcept;
  pkcs11::Session* session_;
  CK_OBJECT_HANDLE key_;
  bool digesting_ = false;
};

}  // namespace edgekit::ota
