#pragma once
// Building objects: the attributes a C_CreateObject or C_GenerateKeyPair template leaves out are
// filled with the spec's defaults, key material is checked by building the key, and attributes
// only the token may set are refused. Pure apart from OpenSSL's key code (fuzzed as such).

#include "token/access.hpp"
#include "token/attributes.hpp"
#include "token/crypto.hpp"

#include <edgekit/pkcs11/cryptoki.hpp>

#include <span>

namespace edgekit::pkcs11::token {

/// Completes a C_CreateObject template. Objects: data, X.509 certificates, EC and RSA public and
/// private keys, generic-secret and SHA-256 HMAC keys. Errors: CKR_TEMPLATE_INCOMPLETE,
/// CKR_TEMPLATE_INCONSISTENT, CKR_ATTRIBUTE_VALUE_INVALID, CKR_ATTRIBUTE_TYPE_INVALID,
/// CKR_ATTRIBUTE_READ_ONLY, CKR_CURVE_NOT_SUPPORTED.
CK_RV object_from_template(std::span<const CK_ATTRIBUTE> tmpl, LoginState login, AttributeMap& out);

/// Generates a key pair (CKM_EC_KEY_PAIR_GEN on P-256/P-384, CKM_RSA_PKCS_KEY_PAIR_GEN 2048-4096
/// bits) and builds both objects. A generated private key is always sensitive and never
/// extractable: a template asking otherwise fails with CKR_ATTRIBUTE_VALUE_INVALID.
CK_RV generate_key_pair(const CK_MECHANISM& mechanism, std::span<const CK_ATTRIBUTE> public_tmpl,
                        std::span<const CK_ATTRIBUTE> private_tmpl, AttributeMap& public_key,
                        AttributeMap& private_key);

/// The OpenSSL key behind a public or private key object; nullptr for other objects.
Pkey key_from_object(const AttributeMap& obj);

}  // namespace edgekit::pkcs11::token
