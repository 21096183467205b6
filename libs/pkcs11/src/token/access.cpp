#include "token/access.hpp"

namespace edgekit::pkcs11::token {
namespace {

bool is_key_material(CK_OBJECT_CLASS cls, CK_ATTRIBUTE_TYPE type) {
  if (cls == CKO_PRIVATE_KEY) {
    switch (type) {
      case CKA_VALUE: case CKA_PRIVATE_EXPONENT: case CKA_PRIME_1: case CKA_PRIME_2:
      case CKA_EXPONENT_1: case CKA_EXPONENT_2: case CKA_COEFFICIENT:
        return true;
      default:
        return false;
    }
  }
  return cls == CKO_SECRET_KEY && type == CKA_VALUE;
}

}  // namespace

CK_STATE session_state(LoginState login, bool read_write) {
  switch (login) {
    case LoginState::User:
      return read_write ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    case LoginState::SecurityOfficer:
      return CKS_RW_SO_FUNCTIONS;
    case LoginState::Public:
      break;
  }
  return read_write ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
}

bool object_visible(const AttributeMap& obj, LoginState login) {
  return !bool_or(obj, CKA_PRIVATE, true) || login == LoginState::User;
}

CK_RV check_read(const AttributeMap& obj, CK_ATTRIBUTE_TYPE type) {
  if (find_attribute(obj, type) == nullptr) return CKR_ATTRIBUTE_TYPE_INVALID;
  const CK_OBJECT_CLASS cls = get_ulong(obj, CKA_CLASS).value_or(CKO_DATA);
  // [v2.40 4.9] sensitive or unextractable key material is never revealed in plaintext.
  if (is_key_material(cls, type) &&
      (bool_or(obj, CKA_SENSITIVE, true) || !bool_or(obj, CKA_EXTRACTABLE, false))) {
    return CKR_ATTRIBUTE_SENSITIVE;
  }
  return CKR_OK;
}

CK_RV check_write(bool token_object, bool private_object, bool session_read_write,
                  LoginState login) {
  if (token_object && !session_read_write) return CKR_SESSION_READ_ONLY;
  if (private_object && login != LoginState::User) return CKR_USER_NOT_LOGGED_IN;
  return CKR_OK;
}

CK_RV check_set(const AttributeMap& obj, const CK_ATTRIBUTE& attr, LoginState login) {
  if (!bool_or(obj, CKA_MODIFIABLE, true)) return CKR_ACTION_PROHIBITED;
  const CK_OBJECT_CLASS cls = get_ulong(obj, CKA_CLASS).value_or(CKO_DATA);
  const bool is_key = cls == CKO_PRIVATE_KEY || cls == CKO_PUBLIC_KEY || cls == CKO_SECRET_KEY;
  const bool new_true =
      attr.ulValueLen == 1 && *static_cast<const CK_BBOOL*>(attr.pValue) != CK_FALSE;
  switch (attr.type) {
    case CKA_LABEL: case CKA_ID: case CKA_START_DATE: case CKA_END_DATE: case CKA_APPLICATION:
    case CKA_SUBJECT:
      return CKR_OK;
    case CKA_SIGN: case CKA_VERIFY: case CKA_ENCRYPT: case CKA_DECRYPT: case CKA_WRAP:
    case CKA_UNWRAP: case CKA_SIGN_RECOVER: case CKA_VERIFY_RECOVER: case CKA_DERIVE:
      return is_key ? CKR_OK : CKR_ATTRIBUTE_TYPE_INVALID;
    case CKA_SENSITIVE:
      // [v2.40 4.9] may only be switched on.
      if (cls != CKO_PRIVATE_KEY && cls != CKO_SECRET_KEY) return CKR_ATTRIBUTE_READ_ONLY;
      return new_true || !bool_or(obj, CKA_SENSITIVE, true) ? CKR_OK : CKR_ATTRIBUTE_READ_ONLY;
    case CKA_EXTRACTABLE:
      // [v2.40 4.9] may only be switched off.
      if (cls != CKO_PRIVATE_KEY && cls != CKO_SECRET_KEY) return CKR_ATTRIBUTE_READ_ONLY;
      return !new_true || bool_or(obj, CKA_EXTRACTABLE, false) ? CKR_OK : CKR_ATTRIBUTE_READ_ONLY;
    case CKA_TRUSTED:
      // Only the SO may mark a certificate or key trusted [v2.40 4.6.3].
      return login == LoginState::SecurityOfficer ? CKR_OK : CKR_ATTRIBUTE_READ_ONLY;
    default:
      return attribute_kind(attr.type) == AttributeKind::Unknown ? CKR_ATTRIBUTE_TYPE_INVALID
                                                                 : CKR_ATTRIBUTE_READ_ONLY;
  }
}

CK_RV check_key_privacy(const AttributeMap& obj) {
  const CK_OBJECT_CLASS cls = get_ulong(obj, CKA_CLASS).value_or(CKO_DATA);
  // A non-private object is stored in clear (only MAC'd) and usable without a login; key
  // material must never be either. Refused rather than silently made private, so that what the
  // application asked for and what it got never differ.
  if ((cls == CKO_PRIVATE_KEY || cls == CKO_SECRET_KEY) && !bool_or(obj, CKA_PRIVATE, true)) {
    return CKR_TEMPLATE_INCONSISTENT;
  }
  return CKR_OK;
}

CK_RV check_key_usage(const AttributeMap& key, CK_ATTRIBUTE_TYPE usage) {
  return bool_or(key, usage, false) ? CKR_OK : CKR_KEY_FUNCTION_NOT_PERMITTED;
}

}  // namespace edgekit::pkcs11::token
