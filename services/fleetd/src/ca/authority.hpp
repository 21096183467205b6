#pragma once
/// \file
/// fleetd's own certificate authority: a root CA and an issuing CA whose private keys are
/// generated inside a PKCS#11 token (edgekit's module by default, any module by configuration)
/// and never leave it. The issuing CA signs device certificates from CSRs and the revocation
/// list; the root CA signs only the issuing CA. Both are EC P-256 and sign with ecdsa-with-SHA256:
/// AWS's embedded demos (mbedTLS) accept nothing else from a P-256 chain, and reject SHA-384.
///
/// What lives where (docs/fleetd.md, "fleetd's CA"):
///   token:                 the two private keys (and their public halves), CKA_ID in ca.json
///   <state>/ca/root.pem     the root CA certificate (self-signed)
///   <state>/ca/issuing.pem  the issuing CA certificate (signed by the root)
///   <state>/ca/chain.pem    issuing then root: what a broker's `cafile` needs
///   <state>/ca/crl.pem      the current CRL of the issuing CA (for Mosquitto's `crlfile`)
///   <state>/ca/ca.json      module-independent facts: key ids, token label, subjects
///   <state>/ca/code-signing.pem / .json  the OTA code-signing certificate and its key's id
///                          (made at the first sign_code; the key is in the token)
///   store                  both certificates as CA records (the issuing CA ACTIVE)
///
/// Thread safety: none. The token session is used by one thread (fleetd's io thread).

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "edgekit/pki/certificate.hpp"
#include "edgekit/pki/crl.hpp"
#include "edgekit/pki/csr.hpp"
#include "store/errc.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::ca {

/// Where the CA's keys are and how to reach them.
struct TokenConfig {
  std::string module_path;  ///< the PKCS#11 module to load
  std::string token_label;  ///< the token holding the keys (initialised beforehand)
  std::string pin_file;     ///< the user PIN; the file must not be readable by group or others
  std::string token_dir;    ///< edgekit's module only: its token folder (EDGEKIT_TOKEN_DIR)
};

/// Why the CA cannot be used: the process exits with fleetd's CA exit code and this message.
/// Missing: no CA in the state folder; Unusable: the token, PIN, keys or certificates fail.
enum class Problem { Missing, Unusable, Exists };
struct CaError {
  Problem problem = Problem::Unusable;
  std::string message;
};
template <class T>
using CaRes = edgekit::Result<T, CaError>;

/// Validity of what the CA issues.
inline constexpr std::int64_t kDay = 86'400;
inline constexpr std::int64_t kRootValidityDays = 20 * 365;
inline constexpr std::int64_t kIssuingValidityDays = 10 * 365;
inline constexpr std::int64_t kDefaultDeviceValidityDays = 365;
inline constexpr std::int64_t kMaxDeviceValidityDays = 3650;
/// A CRL is valid for a week and re-issued daily (and at every revocation): a relying party
/// that stops receiving CRLs (a broker that is never reloaded) fails closed after a week.
inline constexpr std::int64_t kCrlValidity = 7 * kDay;

/// The folder of the CA's files in `state_dir`.
[[nodiscard]] std::string ca_dir(const std::string& state_dir);
/// Whether `state_dir` holds a CA (its ca.json).
[[nodiscard]] bool exists(const std::string& state_dir);

class Authority {
 public:
  /// Makes a new CA: two P-256 key pairs generated in the token, the root certificate
  /// (self-signed, path length 1) and the issuing certificate (path length 0), written to the
  /// state folder with an empty CRL. Refuses (Exists) when the state folder already has one.
  /// Nothing is registered in the store here (see register_in).
  static CaRes<std::unique_ptr<Authority>> create(const TokenConfig& token,
                                                  const std::string& state_dir, std::int64_t now);
  /// Opens the CA of the state folder and checks it: the module loads, the token is there, the
  /// PIN logs in, both private keys are in the token, each certificate's public key is its
  /// key's, the root issued the issuing CA, and both are valid at `now`.
  /// Problem::Missing when the state folder has no CA; Unusable for every other failure, the
  /// message naming it.
  static CaRes<std::unique_ptr<Authority>> open(const TokenConfig& token,
                                                const std::string& state_dir, std::int64_t now);
  ~Authority();
  Authority(const Authority&) = delete;
  Authority& operator=(const Authority&) = delete;

  [[nodiscard]] const pki::CertificateInfo& root() const;
  [[nodiscard]] const pki::CertificateInfo& issuing() const;

  /// Registers both certificates as CA records in the store unless they are there: the issuing
  /// CA ACTIVE (device certificates it issues are then admitted by the broker plugin), the root
  /// ACTIVE. A record that exists keeps its status (an operator may have deactivated it).
  [[nodiscard]] Res<void> register_in(Tx& tx) const;

  /// Issues a device certificate for a request whose signature was checked (pki::parse_csr):
  /// subject copied from the request, clientAuth, a random positive serial of 16 bytes that no
  /// certificate of this CA in `tx` has, valid from 5 minutes before `now` for `validity_days`
  /// (at most to the issuing CA's own end). Signed in the token.
  /// Errors: InvalidArgument (an empty subject, a key the CA does not issue for), Internal (the
  /// token refused; the message has its CKR code).
  [[nodiscard]] Res<pki::CertificateInfo> issue(const pki::CsrInfo& csr, std::int64_t validity_days,
                                                std::int64_t now, Tx& tx);

  /// Makes the issuing CA's CRL listing `revoked` (valid kCrlValidity from `now`, cRLNumber
  /// growing: at least the previous one + 1) and writes it to <state>/ca/crl.pem (atomically:
  /// a relying party never reads half a file).
  [[nodiscard]] Res<pki::CrlInfo> publish_crl(const std::vector<RevokedSerial>& revoked,
                                              std::int64_t now);
  /// The last CRL published (or read at open), as PEM.
  [[nodiscard]] const std::string& crl_pem() const;

  /// Signs an OTA image with fleetd's code-signing key: ECDSA P-256 over its SHA-256, the
  /// signature in DER (the `sig-sha256-ecdsa` of the AFR_OTA job document, base64, is what the
  /// FreeRTOS OTA agent verifies). The key pair is generated in the CA's token at the first
  /// call (label "fleetd code signing"; its id in <state>/ca/code-signing.json) and its
  /// certificate issued by the issuing CA with the codeSigning extended key usage
  /// (<state>/ca/code-signing.pem), re-issued for the same key once it expired. `certificate`
  /// is set to that certificate.
  /// Errors: Internal (the token refused, or the files cannot be written or read; the message
  /// names which).
  [[nodiscard]] Res<pki::Signature> sign_code(std::span<const std::uint8_t> image,
                                              std::int64_t now,
                                              pki::CertificateInfo& certificate);

 private:
  struct Impl;
  explicit Authority(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The registry record of a device certificate `ca` issued (id, PEM, serial, validity, the
/// issuing CA's id) with `status`.
[[nodiscard]] Certificate record_of(const Authority& ca, const pki::CertificateInfo& issued,
                                    CertificateStatus status);

/// Re-issues the CA's CRL from the store: every REVOKED certificate the issuing CA issued, at
/// the store's time. Run at start, after each revocation, and daily.
[[nodiscard]] Res<pki::CrlInfo> refresh_crl(Authority& ca, Store& store);

/// Whether the CA issues certificates for keys of this algorithm (EC P-256, EC P-384, RSA
/// 2048); the message for the others names the key.
[[nodiscard]] Res<void> check_device_key(const pki::CsrInfo& csr);

}  // namespace edgekit::fleetd::ca
