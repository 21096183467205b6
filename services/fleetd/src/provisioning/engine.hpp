#pragma once
/// \file
/// The provisioning template engine shared by fleet provisioning by claim (RegisterThing) and
/// just-in-time provisioning (aws-iot-protocols.md 4.3 and 5): it resolves a template's
/// parameters and intrinsic functions, then creates or updates the resources the template names
/// (thing, thing groups, policies, the certificate's status and attachments) inside the caller's
/// store transaction, so that a provisioning run is whole or not at all.
///
/// Failures are AWS rejections (`Rejection`): the status code, error code and message that a
/// device receives on `…/provision/<fmt>/rejected` (or that fleetd logs for JITP). A store
/// failure is a 500 InternalFailure whose message names the cause.
///
/// Thread safety: none needed; the functions are stateless and run in the caller's transaction.

#include <map>
#include <string>
#include <vector>

#include "edgekit/core/result.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::provisioning {

/// An AWS rejection document: {"statusCode":…, "errorCode":"…", "errorMessage":"…"}.
struct Rejection {
  int status_code = 400;
  std::string error_code;     ///< e.g. "InvalidParameters", "InvalidCertificateOwnershipToken"
  std::string error_message;  ///< e.g. "Cannot resolve reference value: SerialNumber"
};

template <class T>
using Outcome = edgekit::Result<T, Rejection>;

/// What the certificate side brings to a run.
struct CertificateContext {
  std::string certificate_id;  ///< AWS::IoT::Certificate::Id (must exist in the store)
  /// The certificate subject for the AWS::IoT::Certificate::* pseudo parameters, keyed by the
  /// part after the last "::": "CommonName", "Country", "Organization", "OrganizationalUnit",
  /// "DistinguishedNameQualifier", "StateName", "SerialNumber". Empty for fleet provisioning.
  std::map<std::string, std::string> subject;
};

/// What a successful run produced.
struct Provisioned {
  std::string thing_name;
  bool thing_created = false;  ///< false: an existing thing was kept or updated per OverrideSettings
  std::map<std::string, std::string> device_configuration;  ///< resolved, flat (fleet only)
  std::vector<std::string> policies;  ///< names attached to the certificate
  CertificateStatus certificate_status = CertificateStatus::Active;
};

/// Runs `tmpl` (validated when stored) with `parameters` (the request's, after any
/// pre-provisioning hook overrides) for `cert`, in `tx`. Parameters missing from the request
/// take their Default; a reference that cannot be resolved is 400 InvalidParameters "Cannot
/// resolve reference value: <name>". A conflict under OverrideSettings FAIL and other refusals
/// carry their AWS codes.
[[nodiscard]] Outcome<Provisioned> run_template(Tx& tx, const ProvisioningTemplate& tmpl,
                                                const std::map<std::string, std::string>& parameters,
                                                const CertificateContext& cert);

}  // namespace edgekit::fleetd::provisioning
