#include "edgekit/provisioning/errc.hpp"

namespace edgekit::provisioning {

Errc rejection_errc(std::int64_t status_code, std::string_view error_code) noexcept {
  // The exact errorCode strings first (aws-iot-protocols.md 4.1 and 4.3; fleetd's engine).
  if (error_code == "InvalidCertificateOwnershipToken")
    return Errc::InvalidCertificateOwnershipToken;
  if (error_code == "InvalidParameters") return Errc::InvalidParameters;
  if (error_code == "ACCESS_DENIED") return Errc::AccessDenied;
  if (error_code == "ResourceConflictsException") return Errc::ResourceConflict;
  if (error_code == "ThrottlingException") return Errc::Throttled;
  if (error_code == "InternalFailure" || error_code == "ServiceUnavailable") {
    return Errc::ServiceFailure;
  }
  // fleetd's codes for what the fact sheet leaves open (its 9.5).
  if (error_code == "ResourceNotFound") return Errc::ResourceNotFound;
  if (error_code == "InvalidRequest" || error_code == "InvalidPayload" ||
      error_code == "InvalidCertificateSigningRequest") {
    return Errc::InvalidRequest;
  }
  // Codes the fact sheet does not confirm (its 9.5, e.g. the exact 403 string): by status.
  if (status_code == 401 || status_code == 403) return Errc::AccessDenied;
  if (status_code == 429) return Errc::Throttled;
  if (status_code == 404) return Errc::ResourceNotFound;
  if (status_code >= 500 && status_code <= 599) return Errc::ServiceFailure;
  return Errc::RejectedOther;
}

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::Ok:
      return "success";
    case Errc::InvalidCertificateOwnershipToken:
      return "rejected: InvalidCertificateOwnershipToken";
    case Errc::InvalidParameters:
      return "rejected: InvalidParameters";
    case Errc::AccessDenied:
      return "rejected: access denied";
    case Errc::ResourceConflict:
      return "rejected: ResourceConflictsException";
    case Errc::Throttled:
      return "rejected: throttled";
    case Errc::ServiceFailure:
      return "rejected: service failure";
    case Errc::ResourceNotFound:
      return "rejected: ResourceNotFound";
    case Errc::InvalidRequest:
      return "rejected: invalid request";
    case Errc::RejectedOther:
      return "rejected";
    case Errc::MalformedReply:
      return "malformed reply";
    case Errc::ReplyTooLarge:
      return "reply too large for the buffer";
    case Errc::BufferTooSmall:
      return "buffer too small";
    case Errc::InvalidArgument:
      return "invalid argument";
    case Errc::TopicMismatch:
      return "not a provisioning topic";
    case Errc::Timeout:
      return "no reply in time";
    case Errc::NotConnected:
      return "not connected";
    case Errc::SubscribeFailed:
      return "subscription to the reply topics refused";
    case Errc::PublishFailed:
      return "request could not be published";
    case Errc::Busy:
      return "a request is already in flight";
    case Errc::TokenFailed:
      return "PKCS#11 token operation failed";
    case Errc::CertificateMismatch:
      return "certificate does not match the device key or its id";
    case Errc::StateStoreFailed:
      return "provisioning state store failed";
    case Errc::StateCorrupted:
      return "provisioning state corrupted";
    case Errc::AlreadyProvisioned:
      return "already provisioned";
    case Errc::CsrFailed:
      return "CSR could not be made";
  }
  return "unknown provisioning error";
}

}  // namespace edgekit::provisioning
