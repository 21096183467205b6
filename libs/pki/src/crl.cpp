// CRLs (RFC 5280 5): made with the CA's Signer, read, verified.
#include <edgekit/pki/crl.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "openssl.hpp"

namespace edgekit::pki {

using detail::make_error;
using detail::openssl_error;

namespace {

// Lower case, leading zeros dropped: serials compare as numbers.
std::string normal_serial(std::string_view hex) {
  std::string out;
  for (char c : hex) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  const auto first = out.find_first_not_of('0');
  return first == std::string::npos ? "0" : out.substr(first);
}

}  // namespace

bool CrlInfo::lists(std::string_view serial_hex) const {
  const std::string wanted = normal_serial(serial_hex);
  return std::any_of(revoked.begin(), revoked.end(), [&](const RevokedCertificate& r) {
    return normal_serial(r.serial_hex) == wanted;
  });
}

std::string CrlInfo::pem() const { return detail::pem_text("X509 CRL", der); }

namespace {

Result<CrlInfo> info_of(X509_CRL* crl) {
  CrlInfo out;
  out.der = detail::der_of([&](unsigned char** p) { return i2d_X509_CRL(crl, p); });
  if (out.der.empty()) return fail(openssl_error(Errc::Malformed, "the CRL cannot be encoded again"));
  out.issuer = detail::from_x509_name(X509_CRL_get_issuer(crl));
  if (!detail::epoch_of(X509_CRL_get0_lastUpdate(crl), out.this_update)) {
    return fail(make_error(Errc::Malformed, "the CRL's thisUpdate is no time"));
  }
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl)) {
    std::int64_t t = 0;
    if (!detail::epoch_of(next, t)) return fail(make_error(Errc::Malformed, "the CRL's nextUpdate is no time"));
    out.next_update = t;
  }
  int critical = 0;
  auto* number = static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, NID_crl_number, &critical, nullptr));
  std::uint64_t n = 0;
  if (number != nullptr && ASN1_INTEGER_get_uint64(&n, number) == 1) out.crl_number = n;
  ASN1_INTEGER_free(number);
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl);
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    const X509_REVOKED* r = sk_X509_REVOKED_value(revoked, i);
    RevokedCertificate entry;
    entry.serial_hex = detail::integer_hex(X509_REVOKED_get0_serialNumber(r));
    if (entry.serial_hex.empty() || !detail::epoch_of(X509_REVOKED_get0_revocationDate(r), entry.revoked_at)) {
      return fail(make_error(Errc::Malformed, "revoked entry " + std::to_string(i + 1) +
                                                  " of the CRL has a bad serial or time"));
    }
    out.revoked.push_back(std::move(entry));
  }
  ERR_clear_error();
  return out;
}

Result<detail::CrlPtr> crl_of(std::span<const std::uint8_t> der) {
  const unsigned char* p = der.data();
  detail::CrlPtr crl(der.empty() ? nullptr : d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!crl) return fail(openssl_error(Errc::Malformed, "not a DER X.509 CRL"));
  if (p != der.data() + der.size()) {
    return fail(make_error(Errc::Malformed, std::to_string(der.data() + der.size() - p) +
                                                " bytes after the CRL"));
  }
  return crl;
}

}  // namespace

Result<CrlInfo> make_crl(const CertificateInfo& issuer, Signer& issuer_key, const CrlOptions& o) {
  const std::string who = detail::quote(issuer.subject.to_string());
  auto issuer_cert = detail::x509_of(issuer);
  if (!issuer_cert) return fail(issuer_cert.error());
  // [RFC 5280 4.2.1.3] a CRL issuer that states key usages must state cRLSign.
  if (!issuer.is_ca || (X509_get_key_usage(issuer_cert->get()) & KU_CRL_SIGN) == 0) {
    return fail(make_error(Errc::NotCa, "the issuer " + who + " may not sign CRLs (basicConstraints "
                                                              "cA and keyUsage cRLSign)"));
  }
  if (!detail::same_key(issuer_key.public_key_der(), issuer.public_key_der)) {
    return fail(make_error(Errc::KeyMismatch, "the signer's key is not the key of the issuer " + who));
  }
  if (o.next_update <= o.this_update) {
    return fail(make_error(Errc::InvalidArgument, "nextUpdate " + detail::time_text(o.next_update) +
                                                      " is not after thisUpdate " +
                                                      detail::time_text(o.this_update)));
  }
  const Bytes issuer_name = detail::der_of([&](unsigned char** p) {
    return i2d_X509_NAME(X509_get_subject_name(issuer_cert->get()), p);
  });
  const Bytes this_update = detail::time_der(o.this_update);
  const Bytes next_update = detail::time_der(o.next_update);
  if (issuer_name.empty() || this_update.empty() || next_update.empty()) {
    return fail(make_error(Errc::InvalidArgument, "a CRL time out of range"));
  }
  // [RFC 5280 5.1.2.6] SEQUENCE OF SEQUENCE { userCertificate, revocationDate }; left out when
  // nothing is revoked.
  Bytes entries;
  for (const auto& r : o.revoked) {
    auto serial = detail::serial_der(r.serial_hex);
    if (!serial) return fail(serial.error());
    const Bytes when = detail::time_der(r.revoked_at);
    if (when.empty()) return fail(make_error(Errc::InvalidArgument, "a revocation time out of range"));
    const Bytes entry = detail::sequence({*serial, when});
    entries.insert(entries.end(), entry.begin(), entry.end());
  }
  // [RFC 5280 5.2.3, 5.2.1] cRLNumber and authorityKeyIdentifier, both required of a CA.
  Bytes exts;
  std::unique_ptr<ASN1_INTEGER, detail::Deleter<ASN1_INTEGER_free>> number(ASN1_INTEGER_new());
  const Bytes key_id = issuer.subject_key_id.empty() ? detail::key_identifier(issuer.public_key_der)
                                                     : issuer.subject_key_id;
  if (!number || ASN1_INTEGER_set_uint64(number.get(), o.crl_number) != 1 ||
      !detail::append_extension(exts, NID_crl_number, false, number.get()) || key_id.empty() ||
      !detail::append_authority_key_id(exts, key_id)) {
    return fail(openssl_error(Errc::Crypto, "cannot encode the CRL extensions"));
  }
  // [RFC 5280 5.1] TBSCertList, assembled in DER for the reason given in certificate.cpp.
  static constexpr std::uint8_t kVersion2[] = {0x02, 0x01, 0x01};
  const SignatureAlgorithm algorithm = signature_algorithm_for(issuer_key.key_algorithm());
  Bytes tagged_exts;
  detail::append_tlv(tagged_exts, 0xa0, detail::sequence({exts}));
  const Bytes revoked = o.revoked.empty() ? Bytes{} : detail::sequence({entries});
  const Bytes tbs = detail::sequence({kVersion2, detail::algorithm_identifier(algorithm), issuer_name,
                                      this_update, next_update, revoked, tagged_exts});
  auto signature = issuer_key.sign(tbs);
  if (!signature) return fail(signature.error());
  auto crl = crl_of(detail::signed_structure(tbs, *signature));
  if (!crl) return fail(make_error(Errc::Crypto, "OpenSSL cannot read the CRL made: " + crl.error().message));
  if (X509_CRL_verify(crl->get(), X509_get0_pubkey(issuer_cert->get())) != 1) {
    return fail(openssl_error(Errc::BadSignature, "the CRL's signature made by the signer does not "
                                                  "verify with the issuer's public key"));
  }
  return info_of(crl->get());
}

Result<CrlInfo> parse_crl(std::span<const std::uint8_t> input) {
  auto der = detail::der_body(input, {"X509 CRL"}, "CRL");
  if (!der) return fail(der.error());
  auto crl = crl_of(*der);
  if (!crl) return fail(crl.error());
  return info_of(crl->get());
}

Status verify_crl(const CrlInfo& crl_info, const CertificateInfo& issuer) {
  auto crl = crl_of(crl_info.der);
  if (!crl) return fail(crl.error());
  auto cert = detail::x509_of(issuer);
  if (!cert) return fail(cert.error());
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl->get()), X509_get_subject_name(cert->get())) != 0) {
    return fail(make_error(Errc::UnknownIssuer, "the CRL was issued by '" +
                                                    crl_info.issuer.to_string() + "', not by '" +
                                                    issuer.subject.to_string() + "'"));
  }
  if (X509_CRL_verify(crl->get(), X509_get0_pubkey(cert->get())) != 1) {
    return fail(make_error(Errc::BadSignature, "the CRL's signature does not verify with the key "
                                               "of '" + issuer.subject.to_string() + "'"));
  }
  ERR_clear_error();
  return {};
}

}  // namespace edgekit::pki
