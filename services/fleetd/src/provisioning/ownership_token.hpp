#pragma once
/// \file
/// Certificate ownership tokens (aws-iot-protocols.md 4.2): what CreateKeysAndCertificate and
/// CreateCertificateFromCsr hand the device and RegisterThing takes back as proof that the
/// device holds the new certificate's reply. A token is an HMAC-SHA256 over the certificate id,
/// a random token id and the expiry, keyed with a secret in fleetd's state folder, so it cannot
/// be forged, altered to name another certificate, or taken from another fleetd (another
/// secret). Single use and the sweep of unactivated certificates are the store's part
/// (store/claims.hpp), keyed by the token id.
///
/// Format (fleetd's own; AWS's tokens are opaque to devices too): base64url without padding of
/// version (1 byte, 1) | certificate id (32 bytes, the SHA-256) | token id (16 random bytes) |
/// expiry (8 bytes, epoch seconds, big-endian) | HMAC-SHA256 of the preceding 57 bytes —
/// 119 characters, small enough for the 2 KB reply of the CSR flow.
///
/// Thread safety: `TokenAuthority` is immutable after construction; use from any thread.

#include <cstdint>
#include <string>
#include <string_view>

#include "provisioning/claim_wire.hpp"

namespace edgekit::fleetd::provisioning {

/// AWS: the token expires after one hour.
inline constexpr std::int64_t kOwnershipTokenLifetime = 3600;

/// What a verified token says.
struct TokenClaims {
  std::string certificate_id;  ///< lowercase hex SHA-256
  std::string token_id;        ///< lowercase hex of the 16 random bytes
  std::int64_t expires_at = 0;
};

/// The rejections of RegisterThing for a token (400 InvalidCertificateOwnershipToken).
[[nodiscard]] Rejection token_rejection(std::string message);

class TokenAuthority {
 public:
  /// `secret`: the HMAC key (fleetd's: 32 random bytes, hex, in <state>/claim-token.key).
  explicit TokenAuthority(std::string secret);
  ~TokenAuthority();
  TokenAuthority(const TokenAuthority&) = delete;
  TokenAuthority& operator=(const TokenAuthority&) = delete;

  /// A new token for `certificate_id` (64 hex characters) expiring at `expires_at`; its random
  /// token id in `claims`. Empty when the id is not 64 hex characters or no randomness was
  /// available.
  [[nodiscard]] std::string issue(std::string_view certificate_id, std::int64_t expires_at,
                                  TokenClaims& claims) const;

  /// Checks a token from a device at `now`. Rejections (400 InvalidCertificateOwnershipToken):
  /// empty ("Certificate ownership token cannot be empty."), malformed or signed with another
  /// key ("... is invalid."), expired ("... has expired.").
  [[nodiscard]] Outcome<TokenClaims> verify(std::string_view token, std::int64_t now) const;

 private:
  std::string secret_;
};

}  // namespace edgekit::fleetd::provisioning
