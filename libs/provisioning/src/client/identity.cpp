// tls_config_for: the certificate out of the token into the PEM file TLS loads.
#include "edgekit/provisioning/identity.hpp"

#include <edgekit/pki/certificate.hpp>
#include <fstream>

namespace edgekit::provisioning {

Result<tls::Config, Errc> tls_config_for(pkcs11::Session& session, const TokenLocation& token,
                                         std::string_view label, const std::string& ca_file,
                                         const std::string& certificate_path) {
  pkcs11::ObjectQuery q;
  q.label = std::string(label);
  q.object_class = CKO_CERTIFICATE;
  auto handle = session.find_one(q);
  if (!handle) return fail(Errc::TokenFailed);
  q.object_class = CKO_PRIVATE_KEY;
  if (!session.find_one(q)) return fail(Errc::TokenFailed);
  auto der = session.attribute(*handle, CKA_VALUE);
  if (!der) return fail(Errc::TokenFailed);
  auto certificate = pki::parse_certificate(std::span<const std::uint8_t>(*der));
  if (!certificate) return fail(Errc::TokenFailed);
  {
    std::ofstream out(certificate_path, std::ios::binary | std::ios::trunc);
    out << certificate->pem();
    if (!out.flush()) return fail(Errc::StateStoreFailed);
  }
  tls::Config config;
  config.ca_file = ca_file;
  config.certificate_file = certificate_path;
  config.token_key =
      tls::TokenKey{token.module_path, token.token_label, token.pin, std::string(label), {}};
  return config;
}

}  // namespace edgekit::provisioning
