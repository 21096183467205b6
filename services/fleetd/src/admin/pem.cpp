#include "admin/pem.hpp"

#include "edgekit/pki/certificate.hpp"

namespace edgekit::fleetd::admin {

Res<CertificateFacts> read_certificate(std::string_view pem) {
  if (pem.size() > kMaxPem) {
    return fail(Errc::InvalidArgument, "certificate PEM larger than 16 KB");
  }
  // Every CERTIFICATE block, so that a second one is refused rather than silently dropped.
  auto all = pki::parse_certificates(pem);
  if (!all) {
    return fail(Errc::InvalidArgument,
                "not a PEM certificate (expected -----BEGIN CERTIFICATE-----): " +
                    all.error().message);
  }
  if (all.value().size() != 1) {
    return fail(Errc::InvalidArgument, "more than one certificate in the PEM");
  }
  const pki::CertificateInfo& c = all.value().front();
  return CertificateFacts{c.id, c.serial_hex, c.subject.to_string(), c.not_before, c.not_after,
                          c.is_ca};
}

bool issued_by(std::string_view pem, std::string_view ca_pem) {
  auto cert = pki::parse_certificate(pem);
  auto ca = pki::parse_certificate(ca_pem);
  return cert && ca && pki::verify_issued_by(*cert, *ca);
}

}  // namespace edgekit::fleetd::admin
