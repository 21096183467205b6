#pragma once
// Access rules of PKCS#11 v2.40 as pure functions of the object, the attribute and who is logged
// in. The token asks these before it reads, writes, shows or uses anything.

#include "token/attributes.hpp"

#include <edgekit/pkcs11/cryptoki.hpp>

namespace edgekit::pkcs11::token {

enum class LoginState { Public, User, SecurityOfficer };

/// The session state of [PKCS#11 v2.40 5.6.1] for a login state and a session's R/W flag.
CK_STATE session_state(LoginState login, bool read_write);

/// Private objects are visible to the normal user only [v2.40 4.4].
bool object_visible(const AttributeMap& obj, LoginState login);

/// May the attribute's value be revealed? CKR_OK, CKR_ATTRIBUTE_SENSITIVE (key material of a
/// sensitive or non-extractable key), or CKR_ATTRIBUTE_TYPE_INVALID (absent).
CK_RV check_read(const AttributeMap& obj, CK_ATTRIBUTE_TYPE type);

/// Creating, changing or destroying an object: token objects need a R/W session
/// (CKR_SESSION_READ_ONLY), private objects the user (CKR_USER_NOT_LOGGED_IN).
CK_RV check_write(bool token_object, bool private_object, bool session_read_write,
                  LoginState login);

/// May C_SetAttributeValue change `type` to `value`? CKR_OK, CKR_ACTION_PROHIBITED (object not
/// modifiable), CKR_ATTRIBUTE_READ_ONLY, CKR_ATTRIBUTE_VALUE_INVALID (SENSITIVE back to false,
/// EXTRACTABLE back to true), CKR_ATTRIBUTE_TYPE_INVALID.
CK_RV check_set(const AttributeMap& obj, const CK_ATTRIBUTE& attr, LoginState login);

/// Private and secret keys are always private objects, so that their material is only ever
/// stored sealed under the master key (issue 11, point 3): CKR_TEMPLATE_INCONSISTENT when `obj`
/// is a CKO_PRIVATE_KEY or CKO_SECRET_KEY with CKA_PRIVATE=false, CKR_OK otherwise (an absent
/// CKA_PRIVATE is the default, true).
CK_RV check_key_privacy(const AttributeMap& obj);

/// Is the key allowed to do `usage` (CKA_SIGN, CKA_VERIFY)? CKR_KEY_FUNCTION_NOT_PERMITTED if not.
CK_RV check_key_usage(const AttributeMap& key, CK_ATTRIBUTE_TYPE usage);

}  // namespace edgekit::pkcs11::token
