#pragma once
/// \file
/// Device identities for the fleet simulator: a throw-away CA (EC P-256) and, per simulated
/// device, an EC P-256 key and a certificate that CA signs, with CN `<prefix>-<index>`, so that
/// fleetd's just-in-time provisioning (JITP) turns each into a thing of that name at its first
/// connection (docs/fleetd.md: register `ca_certificate_pem()` with a JITP template and
/// auto-registration; the template reads `AWS::IoT::Certificate::CommonName`).
///
/// Keys live in memory (`tls::ClientIdentity`); one `tls::TlsContext` holding only the broker's
/// CA serves every device through `mqtt_asio::Endpoint::identity`. With a cache directory the
/// CA and every identity made are also written there (`ca.crt`, `ca.key`, `<prefix>-<i>.pem`
/// holding the certificate and the unencrypted SEC1 key, mode 0600 in a 0700 directory), and a rerun
/// loads them instead of making them again: these are test keys of a simulation, never a
/// device's. An identity in the cache that this CA did not issue, whose CN is not its name or
/// that expires within a day is made again (and rewritten).
///
/// `measure_device_crypto` states the CPU one device's cryptography costs (key generation,
/// certificate signing, one full mutual-TLS handshake on each side): the "physical limit" a
/// simulation run is set beside.
///
/// Memory: an identity is about 4.8 KB of heap when made, 7.5 KB when loaded from the cache
/// (OpenSSL's X509 and EVP_PKEY), plus its name.
/// Thread safety: an IdentityFactory is used by one thread at a time; the identities it returns
/// are immutable and may be used by any thread. Errors: a message naming the cause and the file.

#include <edgekit/core/result.hpp>
#include <edgekit/tls/tls.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace edgekit::sim {

/// A failure of the identity factory: what failed and why ("ca.key: cannot read: No such file or
/// directory", "sign: ...OpenSSL's reason...").
/// (Named apart from edgekit::Result, which an alias `Result` in namespace sim would hide.)
template <class T>
using IdentityResult = edgekit::Result<T, std::string>;

/// One simulated device's identity.
struct DeviceIdentity {
  std::string thing_name;  ///< the certificate's CN: `<prefix>-<index>`
  tls::ClientIdentity tls;  ///< its key and certificate, for `mqtt_asio::Endpoint::identity`
};

struct IdentityOptions {
  /// Thing names are `<prefix>-<index>`; a thing name allows [a-zA-Z0-9:_-] (AWS IoT), so does
  /// the prefix.
  std::string prefix = "sim";
  /// Where the CA and the identities are kept between runs; empty: in memory only.
  std::string cache_dir;
  /// Validity of the CA and of new device certificates, from an hour ago (clock skew).
  std::chrono::seconds validity{std::chrono::hours(24 * 365)};
  /// More attributes of each device's subject after CN, by OpenSSL short name (e.g. {"C", "DE"}),
  /// for JITP templates that read them (`AWS::IoT::Certificate::Country`).
  std::vector<std::pair<std::string, std::string>> subject_fields;
};

/// What a factory has done so far.
struct IdentityCounters {
  std::size_t made = 0;    ///< new keys and certificates
  std::size_t loaded = 0;  ///< taken from the cache
};

/// The CPU one device's cryptography costs on this machine, in microseconds of thread CPU time
/// per operation (averages over `rounds`), all EC P-256 / ECDSA-SHA256 as the simulator's
/// devices use:
struct DeviceCryptoCost;
[[nodiscard]] IdentityResult<DeviceCryptoCost> measure_device_crypto(std::size_t rounds);

struct DeviceCryptoCost {
  double keygen_us = 0;        ///< a new key pair
  double cert_sign_us = 0;     ///< building and signing one device certificate (the CA's part)
  double handshake_client_us = 0;  ///< one full TLS 1.3 mutual-auth handshake, client side
  double handshake_server_us = 0;  ///< the same handshake, server side (the broker's CPU)
  std::size_t rounds = 0;
};

/// Makes (or loads) the CA and the device identities.
class IdentityFactory {
 public:
  /// Loads the CA from `options.cache_dir` when it holds one that is still valid for a day,
  /// else makes a new one (and writes it there, if set: every cached identity of an older CA
  /// is then made again as it is asked for).
  /// Errors: an invalid prefix or subject field; the cache directory or a CA file that cannot be
  /// made, read or written; OpenSSL failures.
  [[nodiscard]] static IdentityResult<IdentityFactory> create(IdentityOptions options);

  IdentityFactory(IdentityFactory&&) noexcept;
  IdentityFactory& operator=(IdentityFactory&&) noexcept;
  ~IdentityFactory();

  /// The CA's certificate, PEM: what fleetd registers (`edgekit fleet cas register --pem`) and
  /// what a broker listener that trusts the devices names in its `cafile` / `capath`.
  [[nodiscard]] const std::string& ca_certificate_pem() const noexcept;
  /// Writes `ca_certificate_pem()` to `path`. Errors: the file cannot be written.
  [[nodiscard]] IdentityResult<void> write_ca_certificate(const std::string& path) const;

  /// The identity of device `index` (CN `<prefix>-<index>`): from the cache when it holds a good
  /// one, else new (and then cached). Errors: a cache file that cannot be written; OpenSSL.
  [[nodiscard]] IdentityResult<DeviceIdentity> identity(std::size_t index);
  /// Identities `first` .. `first + count - 1`, in order. Errors: the first failure.
  [[nodiscard]] IdentityResult<std::vector<DeviceIdentity>> identities(std::size_t count,
                                                               std::size_t first = 0);

  [[nodiscard]] const IdentityCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] const IdentityOptions& options() const noexcept { return options_; }

 private:
  friend IdentityResult<DeviceCryptoCost> measure_device_crypto(std::size_t rounds);
  struct Impl;
  IdentityFactory(IdentityOptions options, std::unique_ptr<Impl> impl) noexcept;
  [[nodiscard]] IdentityResult<DeviceIdentity> make(const std::string& name);
  [[nodiscard]] IdentityResult<DeviceIdentity> load(const std::string& path, const std::string& name);

  IdentityOptions options_;
  std::unique_ptr<Impl> impl_;
  IdentityCounters counters_;
};

/// Measures `DeviceCryptoCost` in this thread: `rounds` key generations and certificates, then
/// `rounds` handshakes between an in-memory client and server (a BIO pair: no sockets, so only
/// the cryptography and TLS are counted; each side's CPU counted apart). No session resumption:
/// each handshake is a device's first. Errors: OpenSSL failures, naming the step.
[[nodiscard]] IdentityResult<DeviceCryptoCost> measure_device_crypto(std::size_t rounds);

}  // namespace edgekit::sim
