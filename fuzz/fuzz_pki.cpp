// Fuzzes edgekit::pki's readers of untrusted bytes: certificates (PEM or DER, and PEM bundles),
// PKCS#10 requests and CRLs — what the CA reads from devices and registrants, and the token
// tools read from files. Every input goes to every reader.
// Oracles: whatever parses encodes again to DER that parses to the same DER (and PEM that does
// too); a certificate's id is the SHA-256 of that DER; a CRL lists each serial it holds; a
// request that parsed had a valid signature, so its re-encoding still verifies.
#include <edgekit/pki/certificate.hpp>
#include <edgekit/pki/crl.hpp>
#include <edgekit/pki/csr.hpp>

#include <string_view>

#include "fuzz_support.hpp"

namespace pki = edgekit::pki;

namespace {

void check_certificate(const pki::CertificateInfo& c) {
  FUZZ_CHECK(c.id == pki::sha256_hex(c.der));
  auto again = pki::parse_certificate(std::span<const std::uint8_t>(c.der));
  FUZZ_CHECK(again);
  FUZZ_CHECK(again->der == c.der);
  FUZZ_CHECK(again->serial_hex == c.serial_hex);
  FUZZ_CHECK(again->subject == c.subject);
  auto from_pem = pki::parse_certificate(c.pem());
  FUZZ_CHECK(from_pem && from_pem->der == c.der);
  (void)c.subject.to_string();
  (void)c.issuer.to_string();
  (void)pki::verify_issued_by(c, c);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  if (auto c = pki::parse_certificate(in)) check_certificate(*c);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto all = pki::parse_certificates(text)) {
    FUZZ_CHECK(!all->empty());
    for (const auto& c : *all) check_certificate(c);
  }
  if (auto r = pki::parse_csr(in)) {
    auto again = pki::parse_csr(std::span<const std::uint8_t>(r->der));
    FUZZ_CHECK(again);
    FUZZ_CHECK(again->der == r->der);
    FUZZ_CHECK(again->public_key_der == r->public_key_der);
  }
  if (auto l = pki::parse_crl(in)) {
    auto again = pki::parse_crl(std::span<const std::uint8_t>(l->der));
    FUZZ_CHECK(again);
    FUZZ_CHECK(again->der == l->der);
    FUZZ_CHECK(again->revoked.size() == l->revoked.size());
    for (const auto& r : l->revoked) FUZZ_CHECK(l->lists(r.serial_hex));
    auto from_pem = pki::parse_crl(l->pem());
    FUZZ_CHECK(from_pem && from_pem->der == l->der);
  }
  return 0;
}
