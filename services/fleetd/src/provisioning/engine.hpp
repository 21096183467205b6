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
#include <optional>
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
  /// Set when the store refused a write or failed: its error, so that a caller can pass a Busy
  /// failure on to `Store::transact`, which reruns the transaction (the rejection itself is
  /// then a 500 InternalFailure, or 400/409 when the store refused a value the template made).
  /// Initialised, so that `Rejection{400, "Code", "message"}` draws no missing-initializer
  /// warning (warnings are errors).
  std::optional<Error> store_error = std::nullopt;
};

template <class T>
using Outcome = edgekit::Result<T, Rejection>;

/// `return fail(rejection);` from a function returning an `Outcome`; fleetd's own `fail`
/// overloads (for `Res`) stay visible beside it.
inline Unexpected<Rejection> fail(Rejection r) { return Unexpected<Rejection>{std::move(r)}; }
using fleetd::fail;

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

/// The rejection for a store failure `e`: InvalidArgument / NotFound → 400 InvalidParameters
/// (a value the template produced: a thing name AWS refuses, a thing group or policy that does
/// not exist), AlreadyExists / Conflict → 409 ResourceConflictsException, anything else → 500
/// InternalFailure; the message is the store's, `store_error` is `e`.
[[nodiscard]] Unexpected<Rejection> rejection_from(Error e);

/// Runs `tmpl` (validated when stored) with `parameters` (the request's, after any
/// pre-provisioning hook overrides) for `cert`, in `tx`. Parameters missing from the request
/// take their Default; a reference that cannot be resolved is 400 InvalidParameters "Cannot
/// resolve reference value: <name>". A conflict under OverrideSettings FAIL and other refusals
/// carry their AWS codes.
///
/// What it does, in order (everything is resolved before the first write):
/// - Values: `Ref` to a declared parameter (request value, else its Default); the
///   AWS::IoT::Certificate::* pseudo parameters come from `cert` only (a request cannot supply
///   them; a subject field the certificate lacks falls back to a declared Default, else the run
///   fails); Fn::Join, Fn::Select (index a number or a string of digits), Fn::Split,
///   Fn::FindInMap (Mappings), Fn::Sub (string, or [string, variables]; "${!X}" is a literal
///   "${X}"). Numbers and booleans become their JSON text.
/// - AWS::IoT::Thing: created with ThingName, AttributePayload, ThingTypeName (free text: the
///   store has no thing-type records) and ThingGroups (which must exist: 400 otherwise).
///   BillingGroup is ignored (fleetd has no billing groups). On an existing thing each property
///   follows its OverrideSettings: DO_NOTHING (also when absent) keeps it, REPLACE sets the
///   template's value (groups: exactly the template's), MERGE adds attributes (the template's
///   value wins a key) or groups, FAIL is 409 ResourceConflictsException when the thing's value
///   differs (an equal value is no conflict, so provisioning a device again is idempotent).
/// - AWS::IoT::Certificate: CertificateId must resolve to `cert.certificate_id` (400 otherwise;
///   CertificatePem / CertificateSigningRequest are refused: bulk registration is not built);
///   its Status (ACTIVE by default, or INACTIVE) is set and it is attached to the thing. A
///   REVOKED certificate cannot change status: 409.
/// - AWS::IoT::Policy: PolicyName attaches an existing policy (400 if missing); PolicyDocument
///   (validated) creates a policy named by the lower-case hex SHA-256 of the resolved document,
///   reused when it exists, and attaches it — one policy per distinct document, as AWS's
///   provisioning names the policies it makes from documents.
/// - DeviceConfiguration: each value resolved to a string (flat).
/// The caller commits `tx` on success and must roll it back on a rejection (the engine may
/// have written part of the run).
[[nodiscard]] Outcome<Provisioned> run_template(Tx& tx, const ProvisioningTemplate& tmpl,
                                                const std::map<std::string, std::string>& parameters,
                                                const CertificateContext& cert);

}  // namespace edgekit::fleetd::provisioning
