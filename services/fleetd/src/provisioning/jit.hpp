#pragma once
/// \file
/// Just-in-time registration (JITR) and provisioning (JITP) of a device certificate that fleetd
/// does not know yet, at the device's first connection (aws-iot-protocols.md 5): when an ACTIVE
/// registered CA with auto-registration issued it (signature and validity checked at the
/// transaction's time), the certificate is registered — and, when the CA names an enabled JITP
/// template, provisioned by it (provisioning/engine.hpp) with the AWS::IoT::Certificate::*
/// parameters taken from the certificate's subject.
///
/// Unlike AWS, which refuses the first connection of a JITP device while it provisions, fleetd
/// provisions within the connection's own decision, so that first connection is admitted when
/// the template activates the certificate. JITR (a CA without a template) registers the
/// certificate PENDING_ACTIVATION and the connection is refused until an operator activates it.
///
/// Thread safety: none needed; stateless functions over the caller's transaction.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "provisioning/engine.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd::provisioning {

/// The account id in registration events: fleetd has no AWS account; twelve zeros keep the
/// field's AWS shape.
inline constexpr std::string_view kAccountId = "000000000000";

/// `$aws/events/certificates/registered/<caCertificateId>`: published when a certificate is
/// registered just in time, and again whenever a still-PENDING_ACTIVATION certificate of a CA is
/// presented (as AWS does, so that a registration handler that missed the first one gets
/// another chance).
struct RegistrationEvent {
  std::string certificate_id;
  std::string ca_certificate_id;
  CertificateStatus status = CertificateStatus::PendingActivation;
  std::int64_t registered_at = 0;  ///< epoch seconds, when the store registered it
};
[[nodiscard]] std::string registration_topic(const RegistrationEvent& e);
/// AWS's fields: certificateId, caCertificateId, timestamp, certificateStatus, awsAccountId,
/// certificateRegistrationTimestamp. Both times are epoch milliseconds, as in AWS's other
/// `$aws/events/...` documents (the registration event's unit is not stated in AWS's text).
[[nodiscard]] std::string registration_json(const RegistrationEvent& e, std::int64_t now_ms);

/// What `register_just_in_time` made of an unknown certificate.
struct JitOutcome {
  /// The certificate is now registered in `tx` (JITR: PENDING_ACTIVATION; JITP: as the template
  /// set it). When false, `reason` says why and nothing was kept worth committing.
  bool registered = false;
  /// The template wrote part of a run and then refused: the caller must roll `tx` back.
  bool roll_back = false;
  std::string reason;
  std::optional<RegistrationEvent> event;  ///< to publish once `tx` is committed
  std::optional<Provisioned> provisioned;  ///< JITP only
};

/// Registers `pem` (whose SHA-256 must be `certificate_id`: the certificate the device
/// presented) when an ACTIVE registered CA with auto-registration issued it, directly or through
/// the intermediates in `chain` (PEM, may be empty). Not registered (with a reason): an
/// unreadable PEM, no such CA, a certificate outside its validity, a CA template that is
/// missing, disabled or not of type JITP, a template run that is rejected (a subject lacking one
/// of its parameters: "Cannot resolve reference value: AWS::IoT::Certificate::..."). Errors: the
/// store's (Busy: the caller's transaction may be rerun).
[[nodiscard]] Res<JitOutcome> register_just_in_time(Tx& tx, const std::string& certificate_id,
                                                    std::string_view pem, std::string_view chain);

}  // namespace edgekit::fleetd::provisioning
