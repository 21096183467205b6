// Seeds for fuzz_pki, written by fuzz_seeds with edgekit::pki itself: a root CA and device and
// server certificates for every key type (PEM and DER), a bundle, CSRs and CRLs.
#include <edgekit/pki/certificate.hpp>
#include <edgekit/pki/crl.hpp>
#include <edgekit/pki/csr.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "seeds.hpp"

namespace edgekit::fuzz {
namespace {

using Seed = std::vector<std::uint8_t>;
using WriteSeed = void (*)(const char*, const Seed&);

template <class T>
T need(pki::Result<T> r) {
  if (!r) {
    std::fprintf(stderr, "fuzz_seeds: pki: %s\n", r.error().message.c_str());
    std::exit(1);
  }
  return std::move(*r);
}

Seed bytes(const std::string& s) { return Seed(s.begin(), s.end()); }

}  // namespace

void pki_seeds(WriteSeed write) {
  constexpr std::int64_t kNow = 1'800'000'000;
  const char* target = "fuzz_pki";
  auto ca_key = need(pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256));
  pki::IssueOptions o;
  o.profile = pki::Profile::Ca;
  o.subject = need(pki::Name::parse("/CN=seed root/O=edgekit/C=DE"));
  o.not_before = kNow;
  o.not_after = kNow + 86'400;
  o.path_length = 0;
  const auto ca = need(pki::issue_certificate(ca_key.public_key_der(), o, nullptr, ca_key));
  write(target, ca.der);
  write(target, bytes(ca.pem()));
  std::string bundle = ca.pem();
  for (auto algorithm : {pki::KeyAlgorithm::EcP256, pki::KeyAlgorithm::EcP384, pki::KeyAlgorithm::Rsa2048}) {
    auto key = need(pki::SoftwareSigner::generate(algorithm));
    const auto csr = need(pki::make_csr(key, need(pki::Name::parse("/CN=seed device/OU=fuzz"))));
    write(target, bytes(csr));
    write(target, need(pki::parse_csr(csr)).der);
    pki::IssueOptions d;
    d.profile = algorithm == pki::KeyAlgorithm::Rsa2048 ? pki::Profile::Server : pki::Profile::Device;
    d.subject = need(pki::Name::parse("/CN=seed device"));
    d.not_before = kNow;
    d.not_after = kNow + 3600;
    if (d.profile == pki::Profile::Server) {
      d.dns_names = {"broker.example.com"};
      d.ip_addresses = {"127.0.0.1", "::1"};
    }
    const auto cert = need(pki::issue_certificate(key.public_key_der(), d, &ca, ca_key));
    write(target, cert.der);
    bundle += cert.pem();
  }
  write(target, bytes(bundle));
  pki::CrlOptions c;
  c.this_update = kNow;
  c.next_update = kNow + 86'400;
  c.revoked = {{"0a1b2c", kNow}, {"7f", kNow + 1}};
  const auto crl = need(pki::make_crl(ca, ca_key, c));
  write(target, crl.der);
  write(target, bytes(crl.pem()));
  c.revoked.clear();
  write(target, need(pki::make_crl(ca, ca_key, c)).der);
}

}  // namespace edgekit::fuzz
