#pragma once
/// \file
/// Fleet provisioning by claim in the simulator (scenario `"identity": "claim"`): each device
/// starts with nothing but the fleet's claim certificate, connects with it, runs the SDK's
/// `provisioning::Provisioner` unchanged over its `LoopChannel` (CreateCertificateFromCsr: key
/// pair generated and CSR signed in a PKCS#11 token, then RegisterThing), and reconnects as the
/// thing with the key that never left the token (`tls::ClientIdentity::from_token`).
///
/// The token: "one token holding all keys". One edgekit token (libedgekit-pkcs11.so, loaded in
/// this process) in a folder of its own, initialised for the run, holds every device's key pair
/// and certificate under the device's label (its serial number, `<prefix>-<i>`); one session,
/// logged in, serves every device: the Provisioner's token calls run in the device's fiber, the
/// handshakes' C_Sign on the loop's stack, all on the one loop thread (a PKCS#11 session is
/// single-threaded). The folder is on tmpfs (/dev/shm) unless told otherwise: the token fsyncs
/// every object it writes (three per device), which on a disk would measure the disk. Each
/// device also keeps its provisioning state (`FileStateStore`) there, as a device keeps it in
/// flash. A made folder is removed when the `ClaimProvisioning` is destroyed.
///
/// Thread safety: one thread (the loop's). Errors: text naming the step and the cause.
#include <edgekit/core/result.hpp>
#include <edgekit/tls/tls.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace edgekit::reqres {
class Channel;
}
namespace edgekit::pkcs11 {
class Session;
}

namespace edgekit::sim {

class Fibers;

struct ClaimOptions {
  std::string claim_certificate_file;  ///< PEM (`edgekit fleet claims create`'s claim.crt)
  std::string claim_key_file;          ///< PEM (claim.key)
  std::string template_name;           ///< the fleet provisioning template the claim is bound to
  std::string module_path;             ///< libedgekit-pkcs11.so
  /// The token folder; empty: a new one under /dev/shm (or $TMPDIR), removed at the end. A
  /// given folder must be empty or absent (the token is initialised in it).
  std::string token_dir;
  std::size_t reply_timeout_ms = 30000;  ///< per provisioning request (fleetd may be busy)
};

/// What a device has after provisioning.
struct Provisioned {
  std::string thing_name;     ///< from RegisterThing's reply
  tls::ClientIdentity identity;  ///< the key in the token, the certificate fleetd issued
};

/// The CPU one device by claim costs here (µs of thread CPU, medians): what the token does on
/// the device (key pair, the CSR made and signed in it), what fleetd does with the CSR (parse
/// and verify); the certificate signing and handshakes come from `measure_device_crypto`.
struct ClaimCryptoCost {
  double token_keygen_us = 0;  ///< P-256 key pair generated in the token
  double csr_make_us = 0;      ///< CSR built and signed in the token (pki::make_csr)
  double csr_verify_us = 0;    ///< CSR parsed and its signature checked (pki::parse_csr)
  std::size_t rounds = 0;
};

class ClaimProvisioning {
 public:
  /// Loads the claim identity, makes the token folder, loads the module, initialises the token
  /// and logs in. Errors: a file that cannot be read, the module or the token refusing.
  [[nodiscard]] static edgekit::Result<std::unique_ptr<ClaimProvisioning>, std::string> open(
      ClaimOptions options);
  ~ClaimProvisioning();
  ClaimProvisioning(const ClaimProvisioning&) = delete;
  ClaimProvisioning& operator=(const ClaimProvisioning&) = delete;

  /// The claim certificate and key every device connects with first.
  [[nodiscard]] const tls::ClientIdentity& claim_identity() const noexcept;
  /// The token folder (for the report).
  [[nodiscard]] const std::string& token_dir() const noexcept;

  /// Provisions device `serial` (its token label and the template's SerialNumber) over
  /// `channel`, connected with the claim identity; in the device's fiber (retries back off
  /// there). Errors: "<Errc>: <the provisioner's detail>" (a rejection names fleetd's code and
  /// message), or the token identity that cannot be made.
  [[nodiscard]] edgekit::Result<Provisioned, std::string> provision(reqres::Channel& channel,
                                                                   Fibers& fibers,
                                                                   const std::string& serial);

  /// Measures `ClaimCryptoCost` with this token (session objects, destroyed again).
  [[nodiscard]] edgekit::Result<ClaimCryptoCost, std::string> measure(std::size_t rounds);

  struct Impl;

 private:
  explicit ClaimProvisioning(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgekit::sim
