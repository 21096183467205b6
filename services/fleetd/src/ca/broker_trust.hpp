#pragma once
/// \file
/// The broker's trust in registered CAs. A device's TLS handshake reaches the plugin (and so
/// fleetd, and just-in-time registration) only if Mosquitto already trusts the CA that issued
/// the device's certificate. fleetd therefore keeps a folder of every ACTIVE registered CA
/// certificate — its own root and issuing CA included — named as OpenSSL's hashed-folder lookup
/// wants them (`<subject hash>.<n>`, as `openssl rehash` names them), for the listener's
/// `capath`.
///
/// Why a folder and not a file: Mosquitto 2.0.11 reads `cafile` once, when the listener starts,
/// and a SIGHUP does not reload it (measured: a CA appended to the cafile was still refused
/// after SIGHUP). OpenSSL looks a CA up in a `capath` folder during each handshake, so a CA
/// written there is trusted from the next connection on, without a reload (measured). The limit
/// is the other way round: OpenSSL keeps the CAs it has loaded in memory, so a CA removed from the
/// folder (deactivated) stays trusted for the TLS handshake until the broker restarts — fleetd
/// still refuses its certificates at the plugin, so this widens only who may complete a handshake.
///
/// Thread safety: none; call from the thread that owns the store.

#include <string>

#include "store/store.hpp"

namespace edgekit::fleetd::ca {

/// The folder's name inside the state folder.
inline constexpr const char* kBrokerTrustDir = "broker-cas";

/// Writes `dir` (created, mode 0755: CA certificates are public and the broker may run as
/// another user) with one file per ACTIVE registered CA and removes the hash-named files of
/// CAs that are no longer ACTIVE or registered. Files are replaced atomically (written beside,
/// renamed), so a handshake never reads half a certificate. Returns how many CAs it holds.
/// Errors: the store's; Internal naming the file that could not be written.
[[nodiscard]] Res<std::size_t> write_broker_trust(Store& store, const std::string& dir);

}  // namespace edgekit::fleetd::ca
