#include "token/objects.hpp"

#include <cstring>
#include <vector>

namespace edgekit::pkcs11::token {
namespace {

void set_default_bool(AttributeMap& m, CK_ATTRIBUTE_TYPE t, bool v) {
  if (m.count(t) == 0) set_bool(m, t, v);
}
void set_default_ulong(AttributeMap& m, CK_ATTRIBUTE_TYPE t, CK_ULONG v) {
  if (m.count(t) == 0) set_ulong(m, t, v);
}
void set_default_empty(AttributeMap& m, CK_ATTRIBUTE_TYPE t) {
  if (m.count(t) == 0) m[t] = Bytes{};
}

void storage_defaults(AttributeMap& m, bool private_default) {
  set_default_bool(m, CKA_TOKEN, false);
  set_default_bool(m, CKA_PRIVATE, private_default);
  set_default_bool(m, CKA_MODIFIABLE, true);
  set_default_bool(m, CKA_COPYABLE, true);
  set_default_bool(m, CKA_DESTROYABLE, true);
  set_default_empty(m, CKA_LABEL);
}

void key_defaults(AttributeMap& m) {
  set_default_empty(m, CKA_ID);
  set_default_empty(m, CKA_START_DATE);
  set_default_empty(m, CKA_END_DATE);
  set_default_bool(m, CKA_DERIVE, false);
  set_default_bool(m, CKA_LOCAL, false);
  set_default_ulong(m, CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION);
}

void public_key_defaults(AttributeMap& m) {
  storage_defaults(m, false);
  key_defaults(m);
  set_default_empty(m, CKA_SUBJECT);
  set_default_bool(m, CKA_ENCRYPT, false);
  set_default_bool(m, CKA_VERIFY, true);
  set_default_bool(m, CKA_VERIFY_RECOVER, false);
  set_default_bool(m, CKA_WRAP, false);
  set_default_bool(m, CKA_TRUSTED, false);
}

void private_key_defaults(AttributeMap& m) {
  storage_defaults(m, true);
  key_defaults(m);
  set_default_empty(m, CKA_SUBJECT);
  set_default_bool(m, CKA_SENSITIVE, true);
  set_default_bool(m, CKA_DECRYPT, false);
  set_default_bool(m, CKA_SIGN, true);
  set_default_bool(m, CKA_SIGN_RECOVER, false);
  set_default_bool(m, CKA_UNWRAP, false);
  set_default_bool(m, CKA_EXTRACTABLE, false);
  set_default_bool(m, CKA_WRAP_WITH_TRUSTED, false);
  set_default_bool(m, CKA_ALWAYS_AUTHENTICATE, false);
}

bool has(std::span<const CK_ATTRIBUTE> tmpl, CK_ATTRIBUTE_TYPE t) {
  for (const CK_ATTRIBUTE& a : tmpl) {
    if (a.type == t) return true;
  }
  return false;
}

// Attributes whose value the token alone decides [v2.40 4.2, table 10 footnotes 2 and 4].
CK_RV refuse_token_set(std::span<const CK_ATTRIBUTE> tmpl) {
  for (CK_ATTRIBUTE_TYPE t : {CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE,
                              CKA_KEY_GEN_MECHANISM, CKA_MODULUS_BITS, CKA_VALUE_LEN}) {
    if (has(tmpl, t)) return CKR_ATTRIBUTE_READ_ONLY;
  }
  return CKR_OK;
}

// Attributes that belong to other classes or key types make a template inconsistent.
CK_RV allow_only(const AttributeMap& m, std::initializer_list<CK_ATTRIBUTE_TYPE> extra) {
  static constexpr CK_ATTRIBUTE_TYPE kStorage[] = {
      CKA_CLASS, CKA_TOKEN, CKA_PRIVATE, CKA_MODIFIABLE, CKA_COPYABLE, CKA_DESTROYABLE, CKA_LABEL};
  for (const auto& [type, value] : m) {
    bool ok = false;
    for (CK_ATTRIBUTE_TYPE t : kStorage) ok = ok || t == type;
    for (CK_ATTRIBUTE_TYPE t : extra) ok = ok || t == type;
    if (!ok) return CKR_ATTRIBUTE_TYPE_INVALID;
  }
  return CKR_OK;
}

constexpr std::initializer_list<CK_ATTRIBUTE_TYPE> kKeyCommon = {
    CKA_KEY_TYPE, CKA_ID, CKA_START_DATE, CKA_END_DATE, CKA_DERIVE, CKA_LOCAL,
    CKA_KEY_GEN_MECHANISM};

CK_RV check_allowed(const AttributeMap& m, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt) {
  std::vector<CK_ATTRIBUTE_TYPE> extra(kKeyCommon);
  switch (cls) {
    case CKO_DATA:
      return allow_only(m, {CKA_APPLICATION, CKA_OBJECT_ID, CKA_VALUE});
    case CKO_CERTIFICATE:
      return allow_only(m, {CKA_CERTIFICATE_TYPE, CKA_TRUSTED, CKA_CERTIFICATE_CATEGORY,
                            CKA_CHECK_VALUE, CKA_START_DATE, CKA_END_DATE, CKA_PUBLIC_KEY_INFO,
                            CKA_SUBJECT, CKA_ID, CKA_ISSUER, CKA_SERIAL_NUMBER, CKA_VALUE, CKA_URL,
                            CKA_HASH_OF_SUBJECT_PUBLIC_KEY, CKA_HASH_OF_ISSUER_PUBLIC_KEY,
                            CKA_JAVA_MIDP_SECURITY_DOMAIN, CKA_NAME_HASH_ALGORITHM});
    case CKO_PUBLIC_KEY:
      extra.insert(extra.end(), {CKA_SUBJECT, CKA_ENCRYPT, CKA_VERIFY, CKA_VERIFY_RECOVER,
                                 CKA_WRAP, CKA_TRUSTED, CKA_PUBLIC_KEY_INFO});
      if (kt == CKK_EC) extra.insert(extra.end(), {CKA_EC_PARAMS, CKA_EC_POINT});
      if (kt == CKK_RSA) extra.insert(extra.end(), {CKA_MODULUS, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT});
      break;
    case CKO_PRIVATE_KEY:
      extra.insert(extra.end(), {CKA_SUBJECT, CKA_SENSITIVE, CKA_DECRYPT, CKA_SIGN,
                                 CKA_SIGN_RECOVER, CKA_UNWRAP, CKA_EXTRACTABLE,
                                 CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE,
                                 CKA_WRAP_WITH_TRUSTED, CKA_ALWAYS_AUTHENTICATE,
                                 CKA_PUBLIC_KEY_INFO});
      if (kt == CKK_EC) extra.insert(extra.end(), {CKA_EC_PARAMS, CKA_VALUE});
      if (kt == CKK_RSA) {
        extra.insert(extra.end(), {CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT,
                                   CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2,
                                   CKA_COEFFICIENT});
      }
      break;
    case CKO_SECRET_KEY:
      extra.insert(extra.end(), {CKA_SENSITIVE, CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY,
                                 CKA_WRAP, CKA_UNWRAP, CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE,
                                 CKA_NEVER_EXTRACTABLE, CKA_CHECK_VALUE, CKA_WRAP_WITH_TRUSTED,
                                 CKA_TRUSTED, CKA_VALUE, CKA_VALUE_LEN});
      break;
    default:
      return CKR_ATTRIBUTE_VALUE_INVALID;
  }
  for (const auto& [type, value] : m) {
    bool ok = false;
    for (CK_ATTRIBUTE_TYPE t : {CKA_CLASS, CKA_TOKEN, CKA_PRIVATE, CKA_MODIFIABLE, CKA_COPYABLE,
                                CKA_DESTROYABLE, CKA_LABEL}) {
      ok = ok || t == type;
    }
    for (CK_ATTRIBUTE_TYPE t : extra) ok = ok || t == type;
    if (!ok) return CKR_TEMPLATE_INCONSISTENT;
  }
  return CKR_OK;
}

CK_RV ec_parts(const AttributeMap& m, bool priv, EcKeyParts& parts) {
  const Bytes* params = find_attribute(m, CKA_EC_PARAMS);
  if (params == nullptr) return CKR_TEMPLATE_INCOMPLETE;
  parts.curve = curve_from_params(view(*params));
  if (parts.curve == nullptr) return CKR_CURVE_NOT_SUPPORTED;
  if (priv) {
    const Bytes* v = find_attribute(m, CKA_VALUE);
    if (v == nullptr) return CKR_TEMPLATE_INCOMPLETE;
    parts.scalar = *v;
    if (parts.scalar.size() < parts.curve->field_bytes) {
      parts.scalar.insert(parts.scalar.begin(), parts.curve->field_bytes - parts.scalar.size(), 0);
    }
  } else {
    const Bytes* point = find_attribute(m, CKA_EC_POINT);
    if (point == nullptr) return CKR_TEMPLATE_INCOMPLETE;
    if (!point_from_ec_point_attribute(view(*point), parts.point)) {
      return CKR_ATTRIBUTE_VALUE_INVALID;
    }
  }
  return CKR_OK;
}

CK_RV rsa_parts(const AttributeMap& m, bool priv, RsaKeyParts& parts) {
  const Bytes* n = find_attribute(m, CKA_MODULUS);
  const Bytes* e = find_attribute(m, CKA_PUBLIC_EXPONENT);
  if (n == nullptr || e == nullptr) return CKR_TEMPLATE_INCOMPLETE;
  parts.n = *n;
  parts.e = *e;
  if (priv) {
    const Bytes* d = find_attribute(m, CKA_PRIVATE_EXPONENT);
    if (d == nullptr) return CKR_TEMPLATE_INCOMPLETE;
    parts.d = *d;
    const std::pair<CK_ATTRIBUTE_TYPE, Bytes*> crt[] = {
        {CKA_PRIME_1, &parts.p},      {CKA_PRIME_2, &parts.q},
        {CKA_EXPONENT_1, &parts.dp},  {CKA_EXPONENT_2, &parts.dq},
        {CKA_COEFFICIENT, &parts.qinv}};
    for (const auto& [t, dst] : crt) {
      if (const Bytes* v = find_attribute(m, t)) *dst = *v;
    }
  }
  return CKR_OK;
}

CK_RV check_key_material(AttributeMap& m, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt) {
  const bool priv = cls == CKO_PRIVATE_KEY;
  if (kt == CKK_EC) {
    EcKeyParts parts;
    if (CK_RV rv = ec_parts(m, priv, parts); rv != CKR_OK) return rv;
    return import_ec(parts) ? CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID;
  }
  RsaKeyParts parts;
  if (CK_RV rv = rsa_parts(m, priv, parts); rv != CKR_OK) return rv;
  Pkey key = import_rsa(parts);
  if (!key) return CKR_ATTRIBUTE_VALUE_INVALID;
  const int bits = key_bits(key.get());
  if (bits < 1024 || bits > 8192) return CKR_ATTRIBUTE_VALUE_INVALID;
  if (!priv) set_ulong(m, CKA_MODULUS_BITS, static_cast<CK_ULONG>(bits));
  return CKR_OK;
}

}  // namespace

CK_RV object_from_template(std::span<const CK_ATTRIBUTE> tmpl, LoginState login,
                           AttributeMap& out) {
  if (CK_RV rv = validate_template(tmpl); rv != CKR_OK) return rv;
  if (CK_RV rv = refuse_token_set(tmpl); rv != CKR_OK) return rv;
  AttributeMap m;
  merge_template(m, tmpl);
  const auto cls = get_ulong(m, CKA_CLASS);
  if (!cls) return CKR_TEMPLATE_INCOMPLETE;
  if (bool_or(m, CKA_TRUSTED, false) && login != LoginState::SecurityOfficer) {
    return CKR_ATTRIBUTE_READ_ONLY;  // [v2.40 4.6.3] only the SO sets CKA_TRUSTED
  }
  CK_KEY_TYPE kt = CKK_VENDOR_DEFINED;
  switch (*cls) {
    case CKO_DATA:
      if (CK_RV rv = check_allowed(m, *cls, kt); rv != CKR_OK) return rv;
      storage_defaults(m, false);
      set_default_empty(m, CKA_APPLICATION);
      set_default_empty(m, CKA_OBJECT_ID);
      set_default_empty(m, CKA_VALUE);
      break;
    case CKO_CERTIFICATE: {
      const auto ct = get_ulong(m, CKA_CERTIFICATE_TYPE);
      if (!ct) return CKR_TEMPLATE_INCOMPLETE;
      if (*ct != CKC_X_509) return CKR_ATTRIBUTE_VALUE_INVALID;
      if (CK_RV rv = check_allowed(m, *cls, kt); rv != CKR_OK) return rv;
      const Bytes* value = find_attribute(m, CKA_VALUE);
      if (value == nullptr) return CKR_TEMPLATE_INCOMPLETE;
      Bytes subject, issuer, serial;
      if (!parse_certificate(view(*value), subject, issuer, serial)) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
      }
      if (m.count(CKA_SUBJECT) == 0) m[CKA_SUBJECT] = subject;
      if (m.count(CKA_ISSUER) == 0) m[CKA_ISSUER] = issuer;
      if (m.count(CKA_SERIAL_NUMBER) == 0) m[CKA_SERIAL_NUMBER] = serial;
      storage_defaults(m, false);
      set_default_bool(m, CKA_TRUSTED, false);
      set_default_ulong(m, CKA_CERTIFICATE_CATEGORY, 0);
      set_default_empty(m, CKA_ID);
      set_default_empty(m, CKA_START_DATE);
      set_default_empty(m, CKA_END_DATE);
      set_default_empty(m, CKA_URL);
      set_default_ulong(m, CKA_JAVA_MIDP_SECURITY_DOMAIN, 0);
      break;
    }
    case CKO_PUBLIC_KEY:
    case CKO_PRIVATE_KEY: {
      const auto k = get_ulong(m, CKA_KEY_TYPE);
      if (!k) return CKR_TEMPLATE_INCOMPLETE;
      kt = *k;
      if (kt != CKK_EC && kt != CKK_RSA) return CKR_ATTRIBUTE_VALUE_INVALID;
      if (CK_RV rv = check_allowed(m, *cls, kt); rv != CKR_OK) return rv;
      if (CK_RV rv = check_key_material(m, *cls, kt); rv != CKR_OK) return rv;
      if (*cls == CKO_PUBLIC_KEY) {
        public_key_defaults(m);
      } else {
        private_key_defaults(m);
        set_bool(m, CKA_ALWAYS_SENSITIVE, false);  // it was outside the token before
        set_bool(m, CKA_NEVER_EXTRACTABLE, false);
      }
      break;
    }
    case CKO_SECRET_KEY: {
      const auto k = get_ulong(m, CKA_KEY_TYPE);
      if (!k) return CKR_TEMPLATE_INCOMPLETE;
      kt = *k;
      if (kt != CKK_GENERIC_SECRET && kt != CKK_SHA256_HMAC) return CKR_ATTRIBUTE_VALUE_INVALID;
      if (CK_RV rv = check_allowed(m, *cls, kt); rv != CKR_OK) return rv;
      const Bytes* value = find_attribute(m, CKA_VALUE);
      if (value == nullptr) return CKR_TEMPLATE_INCOMPLETE;
      if (value->empty()) return CKR_ATTRIBUTE_VALUE_INVALID;
      set_ulong(m, CKA_VALUE_LEN, static_cast<CK_ULONG>(value->size()));
      storage_defaults(m, true);
      key_defaults(m);
      set_default_bool(m, CKA_SENSITIVE, true);
      set_default_bool(m, CKA_ENCRYPT, false);
      set_default_bool(m, CKA_DECRYPT, false);
      set_default_bool(m, CKA_SIGN, true);
      set_default_bool(m, CKA_VERIFY, true);
      set_default_bool(m, CKA_WRAP, false);
      set_default_bool(m, CKA_UNWRAP, false);
      set_default_bool(m, CKA_EXTRACTABLE, false);
      set_default_bool(m, CKA_TRUSTED, false);
      set_default_bool(m, CKA_WRAP_WITH_TRUSTED, false);
      set_bool(m, CKA_ALWAYS_SENSITIVE, false);
      set_bool(m, CKA_NEVER_EXTRACTABLE, false);
      break;
    }
    default:
      return CKR_ATTRIBUTE_VALUE_INVALID;
  }
  if (CK_RV rv = check_key_privacy(m); rv != CKR_OK) return rv;
  out = std::move(m);
  return CKR_OK;
}

CK_RV generate_key_pair(const CK_MECHANISM& mechanism, std::span<const CK_ATTRIBUTE> public_tmpl,
                        std::span<const CK_ATTRIBUTE> private_tmpl, AttributeMap& public_key,
                        AttributeMap& private_key) {
  if (CK_RV rv = validate_template(public_tmpl); rv != CKR_OK) return rv;
  if (CK_RV rv = validate_template(private_tmpl); rv != CKR_OK) return rv;
  if (mechanism.ulParameterLen != 0) return CKR_MECHANISM_PARAM_INVALID;
  CK_KEY_TYPE kt;
  if (mechanism.mechanism == CKM_EC_KEY_PAIR_GEN) {
    kt = CKK_EC;
  } else if (mechanism.mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN) {
    kt = CKK_RSA;
  } else {
    return CKR_MECHANISM_INVALID;
  }
  AttributeMap pub, priv;
  merge_template(pub, public_tmpl);
  merge_template(priv, private_tmpl);
  // Class and key type may be given, but must be the ones the mechanism makes.
  if (get_ulong(pub, CKA_CLASS).value_or(CKO_PUBLIC_KEY) != CKO_PUBLIC_KEY ||
      get_ulong(priv, CKA_CLASS).value_or(CKO_PRIVATE_KEY) != CKO_PRIVATE_KEY ||
      get_ulong(pub, CKA_KEY_TYPE).value_or(kt) != kt ||
      get_ulong(priv, CKA_KEY_TYPE).value_or(kt) != kt) {
    return CKR_TEMPLATE_INCONSISTENT;
  }
  for (CK_ATTRIBUTE_TYPE t : {CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE,
                              CKA_KEY_GEN_MECHANISM, CKA_VALUE, CKA_EC_POINT, CKA_MODULUS,
                              CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1,
                              CKA_EXPONENT_2, CKA_COEFFICIENT}) {
    if (pub.count(t) != 0 || priv.count(t) != 0) return CKR_ATTRIBUTE_READ_ONLY;
  }
  // Policy of this token: generated private keys never leave it.
  if (!bool_or(priv, CKA_SENSITIVE, true) || bool_or(priv, CKA_EXTRACTABLE, false)) {
    return CKR_ATTRIBUTE_VALUE_INVALID;
  }
  set_ulong(pub, CKA_CLASS, CKO_PUBLIC_KEY);
  set_ulong(priv, CKA_CLASS, CKO_PRIVATE_KEY);
  // Checked before the (slow) generation: a non-private private key is never made.
  if (CK_RV rv = check_key_privacy(priv); rv != CKR_OK) return rv;
  set_ulong(pub, CKA_KEY_TYPE, kt);
  set_ulong(priv, CKA_KEY_TYPE, kt);
  if (CK_RV rv = check_allowed(pub, CKO_PUBLIC_KEY, kt); rv != CKR_OK) return rv;
  if (CK_RV rv = check_allowed(priv, CKO_PRIVATE_KEY, kt); rv != CKR_OK) return rv;

  if (kt == CKK_EC) {
    const Bytes* params = find_attribute(pub, CKA_EC_PARAMS);
    if (params == nullptr) params = find_attribute(priv, CKA_EC_PARAMS);
    if (params == nullptr) return CKR_TEMPLATE_INCOMPLETE;
    const Bytes* other = find_attribute(priv, CKA_EC_PARAMS);
    if (other != nullptr && *other != *params) return CKR_TEMPLATE_INCONSISTENT;
    const Curve* curve = curve_from_params(view(*params));
    if (curve == nullptr) return CKR_CURVE_NOT_SUPPORTED;
    Pkey key = generate_ec(*curve);
    EcKeyParts parts;
    if (!key || !export_ec(key.get(), parts) || parts.scalar.empty()) return CKR_FUNCTION_FAILED;
    set_bytes(pub, CKA_EC_PARAMS, curve->oid);
    set_bytes(priv, CKA_EC_PARAMS, curve->oid);
    pub[CKA_EC_POINT] = der_octet_string(view(parts.point));
    priv[CKA_VALUE] = parts.scalar;
  } else {
    if (priv.count(CKA_MODULUS_BITS) != 0) return CKR_TEMPLATE_INCONSISTENT;
    const auto bits = get_ulong(pub, CKA_MODULUS_BITS);
    if (!bits) return CKR_TEMPLATE_INCOMPLETE;
    if (*bits < 2048 || *bits > 4096 || *bits % 8 != 0) return CKR_KEY_SIZE_RANGE;
    const Bytes* e = find_attribute(pub, CKA_PUBLIC_EXPONENT);
    Pkey key = generate_rsa(static_cast<unsigned>(*bits), e == nullptr
                                                              ? std::span<const std::uint8_t>{}
                                                              : view(*e));
    RsaKeyParts parts;
    if (!key || !export_rsa(key.get(), parts) || parts.d.empty()) {
      return e != nullptr ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_FUNCTION_FAILED;
    }
    pub[CKA_MODULUS] = parts.n;
    pub[CKA_PUBLIC_EXPONENT] = parts.e;
    priv[CKA_MODULUS] = parts.n;
    priv[CKA_PUBLIC_EXPONENT] = parts.e;
    priv[CKA_PRIVATE_EXPONENT] = parts.d;
    priv[CKA_PRIME_1] = parts.p;
    priv[CKA_PRIME_2] = parts.q;
    priv[CKA_EXPONENT_1] = parts.dp;
    priv[CKA_EXPONENT_2] = parts.dq;
    priv[CKA_COEFFICIENT] = parts.qinv;
  }
  for (AttributeMap* m : {&pub, &priv}) {
    set_bool(*m, CKA_LOCAL, true);
    set_ulong(*m, CKA_KEY_GEN_MECHANISM, mechanism.mechanism);
  }
  set_bool(priv, CKA_SENSITIVE, true);
  set_bool(priv, CKA_EXTRACTABLE, false);
  set_bool(priv, CKA_ALWAYS_SENSITIVE, true);
  set_bool(priv, CKA_NEVER_EXTRACTABLE, true);
  public_key_defaults(pub);
  private_key_defaults(priv);
  public_key = std::move(pub);
  private_key = std::move(priv);
  return CKR_OK;
}

Pkey key_from_object(const AttributeMap& obj) {
  const auto cls = get_ulong(obj, CKA_CLASS);
  const auto kt = get_ulong(obj, CKA_KEY_TYPE);
  if (!cls || !kt || (*cls != CKO_PUBLIC_KEY && *cls != CKO_PRIVATE_KEY)) return nullptr;
  const bool priv = *cls == CKO_PRIVATE_KEY;
  if (*kt == CKK_EC) {
    EcKeyParts parts;
    if (ec_parts(obj, priv, parts) != CKR_OK) return nullptr;
    return import_ec(parts);
  }
  if (*kt == CKK_RSA) {
    RsaKeyParts parts;
    if (rsa_parts(obj, priv, parts) != CKR_OK) return nullptr;
    return import_rsa(parts);
  }
  return nullptr;
}

}  // namespace edgekit::pkcs11::token
