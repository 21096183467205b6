#pragma once
/// \file
/// A throw-away PKI for TLS tests and benchmarks, made with OpenSSL's C API into a directory the
/// caller owns: a CA, certificates for servers (localhost / 127.0.0.1) and clients, expired ones,
/// certificates for a public key whose private half lives elsewhere (a PKCS#11 token), and CRLs.
/// Keys are EC P-256 unless asked otherwise. Thread safety: none.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace edgekit::testing {

enum class KeyType { EcP256, EcP384, Rsa2048 };

struct CertOptions {
  std::string common_name = "edgekit-test";
  /// More subject attributes after "O=edgekit tests, CN=<common_name>", by OpenSSL short name
  /// ("C", "ST", "serialNumber").
  std::vector<std::pair<std::string, std::string>> subject_fields;
  std::vector<std::string> dns_names;     ///< subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  ///< subjectAltName IP entries
  std::chrono::seconds not_before{-3600};      ///< relative to now
  std::chrono::seconds not_after{30 * 86400};  ///< relative to now (negative: already expired)
  bool server = false;  ///< extendedKeyUsage serverAuth (else clientAuth)
  KeyType key_type = KeyType::EcP256;
};

/// What `TestCa::issue` wrote. `key_file` is empty for `issue_for_public_key`.
struct Issued {
  std::string cert_file;
  std::string key_file;
  long serial = 0;
};

/// A self-signed CA (EC P-256) whose certificate and key are written to `<dir>/<name>.crt/.key`.
/// Every failure is reported by `ok()` / `error()` (no exceptions), and an issue call on a
/// failed CA returns an empty `Issued`.
class TestCa {
 public:
  TestCa(std::string dir, std::string name);
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  [[nodiscard]] bool ok() const { return error_.empty(); }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] const std::string& cert_file() const { return cert_file_; }

  /// A new key and a certificate for it: `<dir>/<stem>.crt` and `<dir>/<stem>.key` (PEM).
  Issued issue(const std::string& stem, const CertOptions& options);
  /// A certificate for `public_key` (not owned; only its public half is used).
  Issued issue_for_public_key(const std::string& stem, EVP_PKEY* public_key,
                              const CertOptions& options);
  /// Adds `serial` to the revoked list of later `write_crl` calls.
  void revoke(long serial) { revoked_.push_back(serial); }
  /// Writes a CRL (valid from an hour ago for a day) listing the revoked serials; returns its path.
  std::string write_crl(const std::string& stem);

 private:
  Issued sign_and_write(const std::string& stem, EVP_PKEY* key, bool write_key,
                        const CertOptions& options);
  std::string dir_;
  std::string name_;
  std::string cert_file_;
  std::string error_;
  EVP_PKEY* key_ = nullptr;
  X509* cert_ = nullptr;
  long next_serial_ = 2;
  std::vector<long> revoked_;
};

/// Makes a new key pair of `type` (the caller frees it with EVP_PKEY_free).
EVP_PKEY* generate_key(KeyType type);

}  // namespace edgekit::testing
