#pragma once
// Private helpers of the pki sources: OpenSSL ownership, DER in and out, PEM blocks, errors.

#include <edgekit/pki/certificate.hpp>
#include <edgekit/pki/error.hpp>
#include <edgekit/pki/keys.hpp>
#include <edgekit/pki/name.hpp>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace edgekit::pki::detail {

template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ_free>>;
using CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;
using AsnTimePtr = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME_free>>;
using AsnIntPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER_free>>;

/// An error with `code` and `message`; OpenSSL's error queue is cleared, so that a failure here
/// does not show up in an unrelated later call on this thread.
Error make_error(Errc code, std::string message);
/// Same, with OpenSSL's last reason appended (": <reason>") when it has one.
Error openssl_error(Errc code, std::string message);

/// The bytes an i2d-style encoder writes (`encode(nullptr)` gives the length); empty on failure.
template <class F>
Bytes der_of(F&& encode) {
  const int len = encode(nullptr);
  if (len <= 0) return {};
  Bytes out(static_cast<std::size_t>(len));
  unsigned char* p = out.data();
  if (encode(&p) != len) return {};
  return out;
}

/// A memory BIO's contents.
std::string bio_text(BIO* bio);
/// `der` as a PEM block labelled `label` ("CERTIFICATE"); "" on failure.
std::string pem_text(const char* label, std::span<const std::uint8_t> der);

/// `text` in single quotes, for messages.
std::string quote(std::string_view text);
/// "'CN=thing-1'" (RFC 2253, quoted) for messages.
std::string quoted_name(const X509_NAME* name);
/// "2026-01-01 00:00:00 UTC"; "?" for a time that is none.
std::string time_text(std::int64_t epoch_seconds);
/// Epoch seconds of an ASN1_TIME; false for a time that is none.
bool epoch_of(const ASN1_TIME* t, std::int64_t& out);

/// The DER body of `input`: with PEM, the first block whose label is one of `labels`
/// (e.g. "CERTIFICATE"); else the input itself. `what` names the thing in errors.
/// Errors: Malformed ("no PEM CERTIFICATE block").
Result<Bytes> der_body(std::span<const std::uint8_t> input,
                       std::initializer_list<std::string_view> labels, const char* what);
/// The bodies of up to `max` PEM blocks whose label is one of `labels`, in order; blocks of
/// other labels are skipped. Errors: Malformed (a damaged block, naming its position; none).
Result<std::vector<Bytes>> pem_bodies(std::span<const std::uint8_t> input,
                                      std::initializer_list<std::string_view> labels,
                                      std::size_t max);
/// Whether two DER SPKIs hold the same key (compared as keys, not as bytes).
bool same_key(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b);
/// Expired / NotYetValid naming the certificate when `now` is outside its validity.
Status valid_at(const CertificateInfo& certificate, std::int64_t now);
/// DER of one X.509 extension from its OpenSSL structure (X509V3_EXT_i2d), appended to `out`.
bool append_extension(Bytes& out, int nid, bool critical, void* value);
/// [RFC 5280 4.2.1.1] authorityKeyIdentifier with a keyIdentifier, appended to `out`.
bool append_authority_key_id(Bytes& out, std::span<const std::uint8_t> key_id);

/// Name <-> X509_NAME.
Result<NamePtr> to_x509_name(const Name& name);
Name from_x509_name(const X509_NAME* name);

/// A public key from DER SPKI (the whole input). nullptr for bytes that are none.
PkeyPtr pkey_of_spki(std::span<const std::uint8_t> spki);
/// An unencrypted PEM private key (PKCS#8 or traditional). No passphrase callback: an encrypted
/// key fails instead of prompting on a terminal. Errors: Malformed.
Result<PkeyPtr> read_private_key_pem(std::string_view pem);
/// The KeyAlgorithm of an OpenSSL key; nullopt for others.
std::optional<KeyAlgorithm> key_algorithm_of(const EVP_PKEY* key);
/// DER SPKI of a key (its public half).
Bytes spki_of(EVP_PKEY* key);

/// The AlgorithmIdentifier of a signature algorithm, DER. [RFC 5758 3.2] ecdsa-with-SHA256/384
/// have no parameters; [RFC 4055 5] sha256WithRSAEncryption has NULL.
std::span<const std::uint8_t> algorithm_identifier(SignatureAlgorithm algorithm);
int signature_nid(SignatureAlgorithm algorithm);
std::optional<SignatureAlgorithm> signature_algorithm_of_nid(int nid);

/// DER writing: a TLV of `tag` around `content`, appended to `out`.
void append_tlv(Bytes& out, std::uint8_t tag, std::span<const std::uint8_t> content);
/// A SEQUENCE (0x30) of the concatenated parts.
Bytes sequence(std::initializer_list<std::span<const std::uint8_t>> parts);
/// [RFC 5280 4.1.1.3] a signed structure: SEQUENCE { tbs, algorithm, BIT STRING signature }.
Bytes signed_structure(std::span<const std::uint8_t> tbs, const Signature& signature);
/// DER of an X.509 Time for `epoch` (UTCTime through 2049, then GeneralizedTime: RFC 5280
/// 4.1.2.5). Empty on failure.
Bytes time_der(std::int64_t epoch);
/// DER INTEGER of a positive serial given in hex (at most 20 bytes: RFC 5280 4.1.2.2).
/// Errors: InvalidArgument.
Result<Bytes> serial_der(std::string_view hex);
/// Lower-case hex of an INTEGER, whole bytes; a negative one starts with '-'.
std::string integer_hex(const ASN1_INTEGER* value);

/// [RFC 5280 4.2.1.2 (1)] the SHA-1 of the subjectPublicKey bits of a DER SPKI.
Bytes key_identifier(std::span<const std::uint8_t> spki);

/// Fills a CertificateInfo from a parsed certificate. Errors: Malformed.
Result<CertificateInfo> info_of(X509* cert);
/// Parses `info.der` again (values built by the library, or copied by a caller).
Result<X509Ptr> x509_of(const CertificateInfo& info);

}  // namespace edgekit::pki::detail
