#pragma once
/// \file
/// The store's records of fleet provisioning by claim (aws-iot-protocols.md 4): certificate
/// ownership tokens (so that a token is used once, and a certificate nobody registered is
/// removed when its token expires, across restarts), the pre-provisioning hook of a template,
/// and the results of RegisterThing (what `edgekit fleet provisioning results` lists).
///
/// Kept beside the registry's operations (store.hpp), over the same transaction, in tables of
/// schema migration 3. Thread safety: that of `Tx`.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"

namespace edgekit::fleetd {

/// A certificate ownership token as the store knows it (the token itself is never stored: only
/// its random id, so a copy of the database gives no usable token).
struct OwnershipToken {
  std::string token_id;              ///< hex of the token's random part
  std::string certificate_id;        ///< the certificate it proves ownership of
  std::string claim_certificate_id;  ///< the certificate of the device that asked for it
  std::int64_t expires_at = 0;       ///< epoch seconds
  std::int64_t used_at = 0;          ///< epoch seconds of the RegisterThing that used it; 0: unused
};

/// Records a new, unused token. AlreadyExists for an id that is taken.
[[nodiscard]] Res<void> record_ownership_token(Tx& tx, const OwnershipToken& t);
/// NotFound when no such token was issued (or its record was swept).
[[nodiscard]] Res<OwnershipToken> get_ownership_token(Tx& tx, std::string_view token_id);
/// Marks the token used at `tx.now()`. Conflict when it was already used (a second
/// RegisterThing with the same token, even one racing this one on another fleetd instance).
[[nodiscard]] Res<void> use_ownership_token(Tx& tx, std::string_view token_id);
/// Removes the records of tokens that expired before `tx.now()` and, for those never used, their
/// certificate while it is still PENDING_ACTIVATION and attached to nothing (AWS deletes a
/// certificate that was not activated within the token's hour). Returns the ids of the
/// certificates removed.
[[nodiscard]] Res<std::vector<std::string>> sweep_expired_ownership_tokens(Tx& tx);

/// A template's pre-provisioning hook (AWS's preProvisioningHook): `target` is fleetd's stand-in
/// for a Lambda ARN, an http(s):// URL or the absolute path of a local executable.
struct PreProvisioningHook {
  std::string target;
  std::string payload_version = "2020-04-01";
};
/// Sets (or with an empty target, removes) the hook of template `name`. NotFound when the
/// template does not exist.
[[nodiscard]] Res<void> set_pre_provisioning_hook(Tx& tx, std::string_view name,
                                                  const PreProvisioningHook& hook);
/// nullopt when the template has none.
[[nodiscard]] Res<std::optional<PreProvisioningHook>> get_pre_provisioning_hook(
    Tx& tx, std::string_view name);

/// One successful RegisterThing, and what it answered (so that an identical repeat gets the same
/// answer: claim.hpp).
struct ProvisioningResult {
  std::string certificate_id;  ///< the device's new certificate
  std::string thing_name;
  std::string template_name;
  std::string claim_certificate_id;
  std::string client_id;
  std::int64_t provisioned_at = 0;
  /// The request's `parameters` as a JSON object (before a hook's overrides); "" for results
  /// recorded before schema version 4, which no repeat matches.
  std::string request_parameters{};
  /// The reply's `deviceConfiguration` as a JSON object ("" before schema version 4).
  std::string device_configuration{};
};
[[nodiscard]] Res<void> record_provisioning_result(Tx& tx, const ProvisioningResult& r);
/// The result recorded for `certificate_id`; nullopt when it was never provisioned by claim.
[[nodiscard]] Res<std::optional<ProvisioningResult>> get_provisioning_result(
    Tx& tx, std::string_view certificate_id);
/// In certificate id order, keyset-paginated like the registry's lists.
[[nodiscard]] Res<Page<ProvisioningResult>> list_provisioning_results(Tx& tx,
                                                                      const PageRequest& page);

}  // namespace edgekit::fleetd
