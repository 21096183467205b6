// X.509 certificates: read, issued with a Signer, checked.
#include <edgekit/pki/certificate.hpp>
#include <edgekit/pki/crl.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <algorithm>
#include <utility>

#include "openssl.hpp"

namespace edgekit::pki {

using detail::make_error;
using detail::openssl_error;

bool same_public_key(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return detail::same_key(a, b);
}

std::string utc_time_text(std::int64_t epoch_seconds) { return detail::time_text(epoch_seconds); }

namespace detail {

bool same_key(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  // The same DER is the same key; different DER may still be (another encoding of the point).
  if (!a.empty() && std::equal(a.begin(), a.end(), b.begin(), b.end())) return true;
  auto ka = pkey_of_spki(a);
  auto kb = pkey_of_spki(b);
  const bool same = ka && kb && EVP_PKEY_eq(ka.get(), kb.get()) == 1;
  ERR_clear_error();
  return same;
}

Status valid_at(const CertificateInfo& c, std::int64_t now) {
  if (now < c.not_before) {
    return fail(make_error(Errc::NotYetValid, "certificate '" + c.subject.to_string() +
                                                  "' is not valid before " +
                                                  time_text(c.not_before)));
  }
  if (now > c.not_after) {
    return fail(make_error(Errc::Expired, "certificate '" + c.subject.to_string() +
                                              "' expired at " + time_text(c.not_after)));
  }
  return {};
}

bool append_extension(Bytes& out, int nid, bool critical, void* value) {
  X509_EXTENSION* ext = X509V3_EXT_i2d(nid, critical ? 1 : 0, value);
  if (ext == nullptr) return false;
  const Bytes der = der_of([&](unsigned char** p) { return i2d_X509_EXTENSION(ext, p); });
  X509_EXTENSION_free(ext);
  out.insert(out.end(), der.begin(), der.end());
  return !der.empty();
}

bool append_authority_key_id(Bytes& out, std::span<const std::uint8_t> key_id) {
  AUTHORITY_KEYID* akid = AUTHORITY_KEYID_new();
  ASN1_OCTET_STRING* id = ASN1_OCTET_STRING_new();
  bool ok = akid != nullptr && id != nullptr &&
            ASN1_OCTET_STRING_set(id, key_id.data(), static_cast<int>(key_id.size())) == 1;
  if (ok) {
    akid->keyid = id;
    id = nullptr;
    ok = append_extension(out, NID_authority_key_identifier, false, akid);
  }
  ASN1_OCTET_STRING_free(id);
  AUTHORITY_KEYID_free(akid);
  return ok;
}

Result<CertificateInfo> info_of(X509* cert) {
  const std::uint32_t flags = X509_get_extension_flags(cert);
  if ((flags & EXFLAG_INVALID) != 0) {
    return fail(make_error(Errc::Malformed, "the certificate's extensions are invalid (one "
                                            "undecodable or present twice)"));
  }
  CertificateInfo out;
  out.der = der_of([&](unsigned char** p) { return i2d_X509(cert, p); });
  if (out.der.empty()) return fail(openssl_error(Errc::Malformed, "the certificate cannot be encoded again"));
  out.subject = from_x509_name(X509_get_subject_name(cert));
  out.issuer = from_x509_name(X509_get_issuer_name(cert));
  out.serial_hex = integer_hex(X509_get0_serialNumber(cert));
  if (out.serial_hex.empty()) return fail(make_error(Errc::Malformed, "the certificate's serial cannot be read"));
  if (!epoch_of(X509_get0_notBefore(cert), out.not_before) ||
      !epoch_of(X509_get0_notAfter(cert), out.not_after)) {
    return fail(make_error(Errc::Malformed, "the certificate's validity holds a time that is none"));
  }
  out.is_ca = (flags & EXFLAG_CA) != 0;
  if (const long pathlen = X509_get_pathlen(cert); out.is_ca && pathlen >= 0) {
    out.path_length = static_cast<int>(std::min<long>(pathlen, 1 << 30));
  }
  out.can_sign_certificates = X509_check_ca(cert) == 1;
  out.public_key_der = der_of([&](unsigned char** p) {
    return i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), p);
  });
  if (out.public_key_der.empty()) return fail(openssl_error(Errc::Malformed, "the certificate's public key cannot be encoded"));
  out.key_algorithm = key_algorithm_of(X509_get0_pubkey(cert));
  out.signature_algorithm = signature_algorithm_of_nid(X509_get_signature_nid(cert));
  if (const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert)) {
    const auto* d = ASN1_STRING_get0_data(ski);
    out.subject_key_id.assign(d, d + ASN1_STRING_length(ski));
  }
  if (const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(cert)) {
    const auto* d = ASN1_STRING_get0_data(aki);
    out.authority_key_id.assign(d, d + ASN1_STRING_length(aki));
  }
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS) {
      const auto* d = ASN1_STRING_get0_data(g->d.dNSName);
      out.dns_names.emplace_back(reinterpret_cast<const char*>(d),
                                 static_cast<std::size_t>(ASN1_STRING_length(g->d.dNSName)));
    } else if (g->type == GEN_IPADD) {
      const int len = ASN1_STRING_length(g->d.iPAddress);
      char text[INET6_ADDRSTRLEN] = {};
      if ((len == 4 || len == 16) &&
          ::inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress), text,
                      sizeof text) != nullptr) {
        out.ip_addresses.emplace_back(text);
      }
    }
  }
  GENERAL_NAMES_free(names);
  out.id = sha256_hex(out.der);
  ERR_clear_error();
  return out;
}

Result<X509Ptr> x509_of(const CertificateInfo& info) {
  const unsigned char* p = info.der.data();
  X509Ptr cert(info.der.empty() ? nullptr : d2i_X509(nullptr, &p, static_cast<long>(info.der.size())));
  if (!cert || p != info.der.data() + info.der.size()) {
    return fail(make_error(Errc::Malformed, "CertificateInfo::der is not a DER certificate"));
  }
  return cert;
}

}  // namespace detail

namespace {

Result<CertificateInfo> parse_der(std::span<const std::uint8_t> der) {
  const unsigned char* p = der.data();
  detail::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return fail(openssl_error(Errc::Malformed, "not a DER X.509 certificate"));
  if (p != der.data() + der.size()) {
    return fail(make_error(Errc::Malformed, std::to_string(der.data() + der.size() - p) +
                                                " bytes after the certificate"));
  }
  return detail::info_of(cert.get());
}

std::string quoted(const Name& name) { return detail::quote(name.to_string()); }

}  // namespace

std::string CertificateInfo::pem() const { return detail::pem_text("CERTIFICATE", der); }

Result<CertificateInfo> parse_certificate(std::span<const std::uint8_t> input) {
  auto der = detail::der_body(input, {"CERTIFICATE"}, "certificate");
  if (!der) return fail(der.error());
  return parse_der(*der);
}

Result<std::vector<CertificateInfo>> parse_certificates(std::string_view pem) {
  auto bodies = detail::pem_bodies(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(pem.data()), pem.size()),
      {"CERTIFICATE"}, SIZE_MAX);
  if (!bodies) return fail(bodies.error());
  std::vector<CertificateInfo> out;
  for (const auto& der : *bodies) {
    auto info = parse_der(der);
    if (!info) {
      Error e = info.error();
      e.message = "certificate " + std::to_string(out.size() + 1) + " of the bundle: " + e.message;
      return fail(std::move(e));
    }
    out.push_back(std::move(*info));
  }
  return out;
}

// --- issuing -------------------------------------------------------------------------------

namespace {

using BasicConstraintsPtr = std::unique_ptr<BASIC_CONSTRAINTS, detail::Deleter<BASIC_CONSTRAINTS_free>>;
using BitStringPtr = std::unique_ptr<ASN1_BIT_STRING, detail::Deleter<ASN1_BIT_STRING_free>>;
using OctetPtr = std::unique_ptr<ASN1_OCTET_STRING, detail::Deleter<ASN1_OCTET_STRING_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, detail::Deleter<GENERAL_NAMES_free>>;
using EkuPtr = std::unique_ptr<EXTENDED_KEY_USAGE, detail::Deleter<EXTENDED_KEY_USAGE_free>>;

// [RFC 5280 4.2.1.6] a DNS name: letters, digits, '-', '.', and a leading "*." wildcard label.
bool plausible_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  if (name.starts_with("*.")) name.remove_prefix(2);
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return !name.empty();
}

Result<Bytes> subject_alt_name(const IssueOptions& o) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) return fail(make_error(Errc::Crypto, "out of memory"));
  for (const auto& dns : o.dns_names) {
    if (!plausible_dns_name(dns)) {
      return fail(make_error(Errc::InvalidArgument, detail::quote(dns) + " is not a DNS name"));
    }
    GENERAL_NAME* g = GENERAL_NAME_new();
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (g == nullptr || s == nullptr || ASN1_STRING_set(s, dns.data(), static_cast<int>(dns.size())) != 1) {
      GENERAL_NAME_free(g);
      ASN1_IA5STRING_free(s);
      return fail(make_error(Errc::Crypto, "out of memory"));
    }
    GENERAL_NAME_set0_value(g, GEN_DNS, s);
    sk_GENERAL_NAME_push(names.get(), g);
  }
  for (const auto& ip : o.ip_addresses) {
    ASN1_OCTET_STRING* bytes = a2i_IPADDRESS(ip.c_str());
    if (bytes == nullptr) {
      return fail(make_error(Errc::InvalidArgument, detail::quote(ip) + " is not an IPv4 or IPv6 address"));
    }
    GENERAL_NAME* g = GENERAL_NAME_new();
    if (g == nullptr) {
      ASN1_OCTET_STRING_free(bytes);
      return fail(make_error(Errc::Crypto, "out of memory"));
    }
    GENERAL_NAME_set0_value(g, GEN_IPADD, bytes);
    sk_GENERAL_NAME_push(names.get(), g);
  }
  Bytes out;
  if (!detail::append_extension(out, NID_subject_alt_name, false, names.get())) {
    return fail(openssl_error(Errc::Crypto, "cannot encode subjectAltName"));
  }
  return out;
}

Result<Bytes> extensions(const IssueOptions& o, KeyAlgorithm subject_key,
                         std::span<const std::uint8_t> ski, std::span<const std::uint8_t> aki) {
  Bytes exts;
  const bool ca = o.profile == Profile::Ca;
  // [RFC 5280 4.2.1.9] critical; a CA with its path length, an end entity cA FALSE.
  BasicConstraintsPtr bc(BASIC_CONSTRAINTS_new());
  if (!bc) return fail(make_error(Errc::Crypto, "out of memory"));
  bc->ca = ca ? 0xff : 0;
  if (ca && o.path_length) {
    bc->pathlen = ASN1_INTEGER_new();
    if (bc->pathlen == nullptr || ASN1_INTEGER_set(bc->pathlen, *o.path_length) != 1) {
      return fail(make_error(Errc::Crypto, "out of memory"));
    }
  }
  // [RFC 5280 4.2.1.3] critical. Bits: 0 digitalSignature, 2 keyEncipherment, 5 keyCertSign,
  // 6 cRLSign. An RSA end entity may also be a TLS 1.2 RSA key-exchange server.
  BitStringPtr ku(ASN1_BIT_STRING_new());
  if (!ku) return fail(make_error(Errc::Crypto, "out of memory"));
  const bool rsa = subject_key != KeyAlgorithm::EcP256 && subject_key != KeyAlgorithm::EcP384;
  bool ok = true;
  if (ca) {
    ok = ASN1_BIT_STRING_set_bit(ku.get(), 5, 1) == 1 && ASN1_BIT_STRING_set_bit(ku.get(), 6, 1) == 1;
  } else {
    ok = ASN1_BIT_STRING_set_bit(ku.get(), 0, 1) == 1 &&
         (!rsa || ASN1_BIT_STRING_set_bit(ku.get(), 2, 1) == 1);
  }
  ok = ok && detail::append_extension(exts, NID_basic_constraints, true, bc.get()) &&
       detail::append_extension(exts, NID_key_usage, true, ku.get());
  if (ok && !ca) {
    // [RFC 5280 4.2.1.12] what the key is for: a TLS side, or signing code (OTA images).
    const int purpose = o.profile == Profile::Server        ? NID_server_auth
                        : o.profile == Profile::CodeSigning ? NID_code_sign
                                                            : NID_client_auth;
    EkuPtr eku(sk_ASN1_OBJECT_new_null());
    ok = eku && sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(purpose)) > 0 &&
         detail::append_extension(exts, NID_ext_key_usage, false, eku.get());
  }
  if (!ok) return fail(openssl_error(Errc::Crypto, "cannot encode the extensions"));
  if (!o.dns_names.empty() || !o.ip_addresses.empty()) {
    auto san = subject_alt_name(o);
    if (!san) return fail(san.error());
    exts.insert(exts.end(), san->begin(), san->end());
  }
  OctetPtr ski_value(ASN1_OCTET_STRING_new());
  if (!ski_value || ASN1_OCTET_STRING_set(ski_value.get(), ski.data(), static_cast<int>(ski.size())) != 1 ||
      !detail::append_extension(exts, NID_subject_key_identifier, false, ski_value.get()) ||
      !detail::append_authority_key_id(exts, aki)) {
    return fail(openssl_error(Errc::Crypto, "cannot encode the key identifiers"));
  }
  return exts;
}

Result<Bytes> random_serial() {
  std::uint8_t bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return fail(openssl_error(Errc::Crypto, "the random generator failed"));
  }
  // Positive (RFC 5280 4.1.2.2: top bit clear) and always 16 bytes long: with the next bit set,
  // the DER integer never loses a leading zero byte (a 15-byte serial in 1 of 128 certificates
  // before), and 126 random bits remain.
  bytes[0] = static_cast<std::uint8_t>((bytes[0] & 0x7f) | 0x40);
  return detail::serial_der(to_hex(bytes));
}

}  // namespace

Result<CertificateInfo> issue_certificate(std::span<const std::uint8_t> subject_public_key,
                                          const IssueOptions& o, const CertificateInfo* issuer,
                                          Signer& issuer_key) {
  auto subject_pkey = detail::pkey_of_spki(subject_public_key);
  if (!subject_pkey) {
    return fail(make_error(Errc::Malformed, "the subject public key is no DER SubjectPublicKeyInfo"));
  }
  const auto subject_algorithm = detail::key_algorithm_of(subject_pkey.get());
  if (!subject_algorithm) {
    return fail(make_error(Errc::UnsupportedKey, "the subject key is not EC P-256/P-384 or RSA "
                                                 "2048/3072/4096"));
  }
  const Bytes spki = detail::spki_of(subject_pkey.get());
  if (o.subject.empty()) return fail(make_error(Errc::InvalidArgument, "a certificate needs a subject"));
  if (o.not_after <= o.not_before) {
    return fail(make_error(Errc::InvalidArgument, "notAfter " + detail::time_text(o.not_after) +
                                                      " is not after notBefore " +
                                                      detail::time_text(o.not_before)));
  }
  if (o.path_length && (o.profile != Profile::Ca || *o.path_length < 0)) {
    return fail(make_error(Errc::InvalidArgument, "a path length is for a CA, and not negative"));
  }
  auto subject_name = detail::to_x509_name(o.subject);
  if (!subject_name) return fail(subject_name.error());
  const Bytes subject_der = detail::der_of([&](unsigned char** p) { return i2d_X509_NAME(subject_name->get(), p); });
  const Bytes ski = detail::key_identifier(spki);

  Bytes issuer_name_der;
  Bytes aki;
  detail::PkeyPtr issuer_pkey;
  if (issuer != nullptr) {
    if (!issuer->can_sign_certificates) {
      return fail(make_error(Errc::NotCa, "the issuer " + quoted(issuer->subject) +
                                              " is not a CA that may sign certificates "
                                              "(basicConstraints cA and keyUsage keyCertSign)"));
    }
    if (o.profile == Profile::Ca && issuer->path_length && *issuer->path_length == 0) {
      return fail(make_error(Errc::NotCa, "the issuer " + quoted(issuer->subject) +
                                              " has path length 0: it may not issue CAs"));
    }
    if (!detail::same_key(issuer_key.public_key_der(), issuer->public_key_der)) {
      return fail(make_error(Errc::KeyMismatch, "the signer's key is not the key of the issuer " +
                                                    quoted(issuer->subject)));
    }
    auto issuer_cert = detail::x509_of(*issuer);
    if (!issuer_cert) return fail(issuer_cert.error());
    // The issuer's name exactly as its certificate encodes it (RFC 5280 4.1.2.4: chains are
    // built by comparing names).
    issuer_name_der = detail::der_of([&](unsigned char** p) {
      return i2d_X509_NAME(X509_get_subject_name(issuer_cert->get()), p);
    });
    aki = issuer->subject_key_id.empty() ? detail::key_identifier(issuer->public_key_der)
                                         : issuer->subject_key_id;
    issuer_pkey = detail::pkey_of_spki(issuer->public_key_der);
  } else {
    if (!detail::same_key(issuer_key.public_key_der(), spki)) {
      return fail(make_error(Errc::KeyMismatch, "a self-signed certificate must be signed with "
                                                "the subject's own key"));
    }
    issuer_name_der = subject_der;
    aki = ski;
    issuer_pkey = detail::pkey_of_spki(spki);
  }
  if (subject_der.empty() || issuer_name_der.empty() || ski.empty() || aki.empty() || !issuer_pkey) {
    return fail(openssl_error(Errc::Crypto, "cannot encode the names or key identifiers"));
  }

  auto serial = o.serial_hex.empty() ? random_serial() : detail::serial_der(o.serial_hex);
  if (!serial) return fail(serial.error());
  const Bytes not_before = detail::time_der(o.not_before);
  const Bytes not_after = detail::time_der(o.not_after);
  if (not_before.empty() || not_after.empty()) {
    return fail(make_error(Errc::InvalidArgument, "a validity time out of range"));
  }
  auto exts = extensions(o, *subject_algorithm, ski, aki);
  if (!exts) return fail(exts.error());

  // [RFC 5280 4.1] TBSCertificate, assembled in DER: OpenSSL 3.0 sets a certificate's signature
  // algorithm only while signing with an EVP_PKEY, and this signature is made by a Signer (in a
  // token). OpenSSL reads the result back and verifies it below.
  const SignatureAlgorithm algorithm = signature_algorithm_for(issuer_key.key_algorithm());
  static constexpr std::uint8_t kVersion3[] = {0xa0, 0x03, 0x02, 0x01, 0x02};
  Bytes tagged_exts;
  detail::append_tlv(tagged_exts, 0xa3, detail::sequence({*exts}));
  const Bytes tbs = detail::sequence({kVersion3, *serial, detail::algorithm_identifier(algorithm),
                                      issuer_name_der, detail::sequence({not_before, not_after}),
                                      subject_der, spki, tagged_exts});
  auto signature = issuer_key.sign(tbs);
  if (!signature) return fail(signature.error());
  if (signature->algorithm != algorithm) {
    return fail(make_error(Errc::Crypto, "the signer used another signature algorithm than its "
                                         "key's"));
  }
  const Bytes der = detail::signed_structure(tbs, *signature);
  const unsigned char* p = der.data();
  detail::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return fail(openssl_error(Errc::Crypto, "OpenSSL cannot read the certificate made"));
  if (X509_verify(cert.get(), issuer_pkey.get()) != 1) {
    return fail(openssl_error(Errc::BadSignature, "the certificate's signature made by the signer "
                                                  "does not verify with the issuer's public key"));
  }
  return detail::info_of(cert.get());
}

// --- checking ------------------------------------------------------------------------------

Status verify_issued_by(const CertificateInfo& certificate, const CertificateInfo& issuer) {
  auto cert = detail::x509_of(certificate);
  if (!cert) return fail(cert.error());
  auto ca = detail::x509_of(issuer);
  if (!ca) return fail(ca.error());
  const std::string who = quoted(certificate.subject);
  switch (const int rc = X509_check_issued(ca->get(), cert->get())) {
    case X509_V_OK: break;
    case X509_V_ERR_SUBJECT_ISSUER_MISMATCH:
      return fail(make_error(Errc::UnknownIssuer, "certificate " + who + " was issued by " +
                                                      quoted(certificate.issuer) + ", not by " +
                                                      quoted(issuer.subject)));
    case X509_V_ERR_AKID_SKID_MISMATCH:
    case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
      return fail(make_error(Errc::UnknownIssuer, "certificate " + who + " names another key of " +
                                                      quoted(issuer.subject) +
                                                      " (authorityKeyIdentifier)"));
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
      return fail(make_error(Errc::NotCa, quoted(issuer.subject) +
                                              " may not sign certificates (keyUsage lacks keyCertSign)"));
    default:
      return fail(make_error(Errc::UnknownIssuer, "certificate " + who + " was not issued by " +
                                                      quoted(issuer.subject) + ": " +
                                                      X509_verify_cert_error_string(rc)));
  }
  if (!issuer.is_ca && certificate.der != issuer.der) {
    return fail(make_error(Errc::NotCa, quoted(issuer.subject) + " is not a CA (basicConstraints)"));
  }
  if (X509_verify(cert->get(), X509_get0_pubkey(ca->get())) != 1) {
    return fail(make_error(Errc::BadSignature, "the signature of certificate " + who +
                                                   " does not verify with the key of " +
                                                   quoted(issuer.subject)));
  }
  ERR_clear_error();
  return {};
}

Status verify_chain(const CertificateInfo& leaf, std::span<const CertificateInfo> intermediates,
                    std::span<const CertificateInfo> trusted, std::int64_t now,
                    std::span<const CrlInfo> crls) {
  using StorePtr = std::unique_ptr<X509_STORE, detail::Deleter<X509_STORE_free>>;
  using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, detail::Deleter<X509_STORE_CTX_free>>;
  struct StackFree {
    void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // the elements are `keep`'s
  };
  using StackPtr = std::unique_ptr<STACK_OF(X509), StackFree>;
  auto cert = detail::x509_of(leaf);
  if (!cert) return fail(cert.error());
  StorePtr store(X509_STORE_new());
  StackPtr untrusted(sk_X509_new_null());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !untrusted || !ctx) return fail(make_error(Errc::Crypto, "out of memory"));
  // The store and the stack take references of their own.
  for (const auto& t : trusted) {
    auto x = detail::x509_of(t);
    if (!x) return fail(x.error());
    if (X509_STORE_add_cert(store.get(), x->get()) != 1) ERR_clear_error();  // duplicates
  }
  std::vector<detail::X509Ptr> keep;
  for (const auto& i : intermediates) {
    auto x = detail::x509_of(i);
    if (!x) return fail(x.error());
    if (sk_X509_push(untrusted.get(), x->get()) <= 0) return fail(make_error(Errc::Crypto, "out of memory"));
    keep.push_back(std::move(*x));
  }
  unsigned long flags = X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN;
  for (const auto& c : crls) {
    const unsigned char* p = c.der.data();
    detail::CrlPtr crl(c.der.empty() ? nullptr : d2i_X509_CRL(nullptr, &p, static_cast<long>(c.der.size())));
    if (!crl) return fail(make_error(Errc::Malformed, "CrlInfo::der is not a DER CRL"));
    if (X509_STORE_add_crl(store.get(), crl.get()) != 1) ERR_clear_error();
    flags |= X509_V_FLAG_CRL_CHECK;
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), untrusted.get()) != 1) {
    return fail(openssl_error(Errc::Crypto, "cannot set up the chain check"));
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_flags(param, flags);
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(now));
  if (X509_verify_cert(ctx.get()) == 1) {
    ERR_clear_error();
    return {};
  }
  const int rc = X509_STORE_CTX_get_error(ctx.get());
  X509* at = X509_STORE_CTX_get_current_cert(ctx.get());
  if (at == nullptr) at = cert->get();
  const std::string who = "certificate " + detail::quoted_name(X509_get_subject_name(at));
  std::int64_t t = 0;
  switch (rc) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      detail::epoch_of(X509_get0_notAfter(at), t);
      return fail(make_error(Errc::Expired, who + " expired at " + detail::time_text(t)));
    case X509_V_ERR_CERT_NOT_YET_VALID:
      detail::epoch_of(X509_get0_notBefore(at), t);
      return fail(make_error(Errc::NotYetValid, who + " is not valid before " + detail::time_text(t)));
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return fail(make_error(Errc::UnknownIssuer,
                             "no trusted issuer " + detail::quoted_name(X509_get_issuer_name(at)) +
                                 " for " + who));
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return fail(make_error(Errc::BadSignature, "the signature of " + who + " does not verify"));
    case X509_V_ERR_CERT_REVOKED:
      return fail(make_error(Errc::Revoked, who + " (serial " +
                                                detail::integer_hex(X509_get0_serialNumber(at)) +
                                                ") is revoked"));
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
      return fail(make_error(Errc::NotCa, who + ": " + X509_verify_cert_error_string(rc)));
    default:
      return fail(make_error(Errc::Untrusted, who + ": " + X509_verify_cert_error_string(rc)));
  }
}

Status verify_ca_registration(const CertificateInfo& ca, const CertificateInfo& verification,
                              std::string_view registration_code, std::int64_t now) {
  if (!ca.can_sign_certificates) {
    return fail(make_error(Errc::NotCa, quoted(ca.subject) + " is not a CA that may sign "
                                                             "certificates (basicConstraints cA "
                                                             "and keyUsage keyCertSign)"));
  }
  if (auto st = detail::valid_at(ca, now); !st) return st;
  auto ca_cert = detail::x509_of(ca);
  if (!ca_cert) return fail(ca_cert.error());
  if (X509_check_issued(ca_cert->get(), ca_cert->get()) == X509_V_OK &&
      X509_verify(ca_cert->get(), X509_get0_pubkey(ca_cert->get())) != 1) {
    return fail(make_error(Errc::BadSignature, "the self-signature of " + quoted(ca.subject) +
                                                   " does not verify"));
  }
  if (auto st = verify_issued_by(verification, ca); !st) return st;
  if (auto st = detail::valid_at(verification, now); !st) return st;
  if (verification.subject.common_name() != registration_code) {
    return fail(make_error(Errc::InvalidArgument,
                           "the verification certificate's common name '" +
                               verification.subject.common_name() +
                               "' is not the registration code"));
  }
  return {};
}

}  // namespace edgekit::pki
