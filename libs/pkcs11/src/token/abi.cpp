// The C ABI of the edgekit token: every PKCS#11 v2.40 entry point, each forwarding to the one
// Token of this library. Nothing else lives here. Functions the token does not offer answer
// CKR_FUNCTION_NOT_SUPPORTED, as [PKCS#11 v2.40 5.1] asks of a complete function list.
// The token is built without exceptions, so none can cross this boundary.

#include "token/token.hpp"

#define EDGEKIT_EXPORT __attribute__((visibility("default")))

namespace {
edgekit::pkcs11::token::Token g_token;  // the module's state; the C ABI has no other place for it
}  // namespace

extern "C" {

EDGEKIT_EXPORT CK_RV C_Initialize(void * init_args) {
  return g_token.initialize(init_args);
}
EDGEKIT_EXPORT CK_RV C_Finalize(void * reserved) {
  return g_token.finalize(reserved);
}
EDGEKIT_EXPORT CK_RV C_GetInfo(CK_INFO * info) {
  return g_token.get_info(info);
}
EDGEKIT_EXPORT CK_RV C_GetSlotList(unsigned char token_present, CK_SLOT_ID * slot_list, unsigned long * count) {
  return g_token.get_slot_list(token_present, slot_list, count);
}
EDGEKIT_EXPORT CK_RV C_GetSlotInfo(CK_SLOT_ID slot_id, CK_SLOT_INFO * info) {
  return g_token.get_slot_info(slot_id, info);
}
EDGEKIT_EXPORT CK_RV C_GetTokenInfo(CK_SLOT_ID slot_id, CK_TOKEN_INFO * info) {
  return g_token.get_token_info(slot_id, info);
}
EDGEKIT_EXPORT CK_RV C_WaitForSlotEvent(CK_FLAGS, CK_SLOT_ID *, void *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_GetMechanismList(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE * mechanism_list, unsigned long * count) {
  return g_token.get_mechanism_list(slot_id, mechanism_list, count);
}
EDGEKIT_EXPORT CK_RV C_GetMechanismInfo(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO * info) {
  return g_token.get_mechanism_info(slot_id, type, info);
}
EDGEKIT_EXPORT CK_RV C_InitToken(CK_SLOT_ID slot_id, unsigned char * pin, unsigned long pin_len, unsigned char * label) {
  return g_token.init_token(slot_id, pin, pin_len, label);
}
EDGEKIT_EXPORT CK_RV C_InitPIN(CK_SESSION_HANDLE session, unsigned char * pin, unsigned long pin_len) {
  return g_token.init_pin(session, pin, pin_len);
}
EDGEKIT_EXPORT CK_RV C_SetPIN(CK_SESSION_HANDLE session, unsigned char * old_pin, unsigned long old_len, unsigned char * new_pin, unsigned long new_len) {
  return g_token.set_pin(session, old_pin, old_len, new_pin, new_len);
}
// Notification callbacks are optional [v2.40 5.6]; the token never calls back.
EDGEKIT_EXPORT CK_RV C_OpenSession(CK_SLOT_ID slot_id, CK_FLAGS flags, void*, CK_NOTIFY,
                                   CK_SESSION_HANDLE* session) {
  return g_token.open_session(slot_id, flags, session);
}
EDGEKIT_EXPORT CK_RV C_CloseSession(CK_SESSION_HANDLE session) {
  return g_token.close_session(session);
}
EDGEKIT_EXPORT CK_RV C_CloseAllSessions(CK_SLOT_ID slot_id) {
  return g_token.close_all_sessions(slot_id);
}
EDGEKIT_EXPORT CK_RV C_GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO * info) {
  return g_token.get_session_info(session, info);
}
EDGEKIT_EXPORT CK_RV C_GetOperationState(CK_SESSION_HANDLE, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_SetOperationState(CK_SESSION_HANDLE, unsigned char *, unsigned long, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, unsigned char * pin, unsigned long pin_len) {
  return g_token.login(session, user_type, pin, pin_len);
}
EDGEKIT_EXPORT CK_RV C_Logout(CK_SESSION_HANDLE session) {
  return g_token.logout(session);
}
EDGEKIT_EXPORT CK_RV C_CreateObject(CK_SESSION_HANDLE session, CK_ATTRIBUTE * templ, unsigned long count, CK_OBJECT_HANDLE * object) {
  return g_token.create_object(session, templ, count, object);
}
EDGEKIT_EXPORT CK_RV C_CopyObject(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, CK_ATTRIBUTE *, unsigned long, CK_OBJECT_HANDLE *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_DestroyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object) {
  return g_token.destroy_object(session, object);
}
EDGEKIT_EXPORT CK_RV C_GetObjectSize(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, unsigned long * size) {
  return g_token.get_object_size(session, object, size);
}
EDGEKIT_EXPORT CK_RV C_GetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE * templ, unsigned long count) {
  return g_token.get_attribute_value(session, object, templ, count);
}
EDGEKIT_EXPORT CK_RV C_SetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE * templ, unsigned long count) {
  return g_token.set_attribute_value(session, object, templ, count);
}
EDGEKIT_EXPORT CK_RV C_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE * templ, unsigned long count) {
  return g_token.find_objects_init(session, templ, count);
}
EDGEKIT_EXPORT CK_RV C_FindObjects(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE * object, unsigned long max_object_count, unsigned long * object_count) {
  return g_token.find_objects(session, object, max_object_count, object_count);
}
EDGEKIT_EXPORT CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE session) {
  return g_token.find_objects_final(session);
}
EDGEKIT_EXPORT CK_RV C_EncryptInit(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_Encrypt(CK_SESSION_HANDLE, unsigned char *, unsigned long, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_EncryptUpdate(CK_SESSION_HANDLE, unsigned char *, unsigned long, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_EncryptFinal(CK_SESSION_HANDLE, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_DecryptInit(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_Decrypt(CK_SESSION_HANDLE, unsigned char *, unsigned long, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_DecryptUpdate(CK_SESSION_HANDLE, unsigned char *, unsigned long, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_DecryptFinal(CK_SESSION_HANDLE, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_DigestInit(CK_SESSION_HANDLE session, CK_MECHANISM * mechanism) {
  return g_token.digest_init(session, mechanism);
}
EDGEKIT_EXPORT CK_RV C_Digest(CK_SESSION_HANDLE session, unsigned char * data, unsigned long data_len, unsigned char * digest, unsigned long * digest_len) {
  return g_token.digest(session, data, data_len, digest, digest_len);
}
EDGEKIT_EXPORT CK_RV C_DigestUpdate(CK_SESSION_HANDLE session, unsigned char * part, unsigned long part_len) {
  return g_token.digest_update(session, part, part_len);
}
EDGEKIT_EXPORT CK_RV C_DigestKey(CK_SESSION_HANDLE, CK_OBJECT_HANDLE) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_DigestFinal(CK_SESSION_HANDLE session, unsigned char * digest, unsigned long * digest_len) {
  return g_token.digest_final(session, digest, digest_len);
}
EDGEKIT_EXPORT CK_RV C_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM * mechanism, CK_OBJECT_HANDLE key) {
  return g_token.sign_init(session, mechanism, key);
}
EDGEKIT_EXPORT CK_RV C_Sign(CK_SESSION_HANDLE session, unsigned char * data, unsigned long data_len, unsigned char * signature, unsigned long * signature_len) {
  return g_token.sign(session, data, data_len, signature, signature_len);
}
EDGEKIT_EXPORT CK_RV C_SignUpdate(CK_SESSION_HANDLE session, unsigned char * part, unsigned long part_len) {
  return g_token.sign_update(session, part, part_len);
}
EDGEKIT_EXPORT CK_RV C_SignFinal(CK_SESSION_HANDLE session, unsigned char * signature, unsigned long * signature_len) {
  return g_token.sign_final(session, signature, signature_len);
}
EDGEKIT_EXPORT CK_RV C_SignRecoverInit(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_SignRecover(CK_SESSION_HANDLE, unsigned char *, unsigned long, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_VerifyInit(CK_SESSION_HANDLE session, CK_MECHANISM * mechanism, CK_OBJECT_HANDLE key) {
  return g_token.verify_init(session, mechanism, key);
}
EDGEKIT_EXPORT CK_RV C_Verify(CK_SESSION_HANDLE session, unsigned char * data, unsigned long data_len, unsigned char * signature, unsigned long signature_len) {
  return g_token.verify(session, data, data_len, signature, signature_len);
}
EDGEKIT_EXPORT CK_RV C_VerifyUpdate(CK_SESSION_HANDLE session, unsigned char * part, unsigned long part_len) {
  return g_token.verify_update(session, part, part_len);
}
EDGEKIT_EXPORT CK_RV C_VerifyFinal(CK_SESSION_HANDLE session, unsigned char * signature, unsigned long signature_len) {
  return g_token.verify_final(session, signature, signature_len);
}
EDGEKIT_EXPORT CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_VerifyRecover(CK_SESSION_HANDLE, unsigned char *, unsigned long, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE, unsigned char *, unsigned long, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE, unsigned char *, unsigned long, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE, unsigned char *, unsigned long, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE, unsigned char *, unsigned long, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_GenerateKey(CK_SESSION_HANDLE, CK_MECHANISM *, CK_ATTRIBUTE *, unsigned long, CK_OBJECT_HANDLE *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE session, CK_MECHANISM * mechanism, CK_ATTRIBUTE * public_key_template, unsigned long public_key_attribute_count, CK_ATTRIBUTE * private_key_template, unsigned long private_key_attribute_count, CK_OBJECT_HANDLE * public_key, CK_OBJECT_HANDLE * private_key) {
  return g_token.generate_key_pair(session, mechanism, public_key_template, public_key_attribute_count, private_key_template, private_key_attribute_count, public_key, private_key);
}
EDGEKIT_EXPORT CK_RV C_WrapKey(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE, unsigned char *, unsigned long *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_UnwrapKey(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE, unsigned char *, unsigned long, CK_ATTRIBUTE *, unsigned long, CK_OBJECT_HANDLE *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_DeriveKey(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE, CK_ATTRIBUTE *, unsigned long, CK_OBJECT_HANDLE *) { return CKR_FUNCTION_NOT_SUPPORTED; }
EDGEKIT_EXPORT CK_RV C_SeedRandom(CK_SESSION_HANDLE session, unsigned char * seed, unsigned long seed_len) {
  return g_token.seed_random(session, seed, seed_len);
}
EDGEKIT_EXPORT CK_RV C_GenerateRandom(CK_SESSION_HANDLE session, unsigned char * random_data, unsigned long random_len) {
  return g_token.generate_random(session, random_data, random_len);
}
EDGEKIT_EXPORT CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE) { return CKR_FUNCTION_NOT_PARALLEL; }
EDGEKIT_EXPORT CK_RV C_CancelFunction(CK_SESSION_HANDLE) { return CKR_FUNCTION_NOT_PARALLEL; }

}  // extern "C"

namespace {
CK_FUNCTION_LIST g_functions = {
    {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR},
    C_Initialize,
    C_Finalize,
    C_GetInfo,
    C_GetFunctionList,
    C_GetSlotList,
    C_GetSlotInfo,
    C_GetTokenInfo,
    C_GetMechanismList,
    C_GetMechanismInfo,
    C_InitToken,
    C_InitPIN,
    C_SetPIN,
    C_OpenSession,
    C_CloseSession,
    C_CloseAllSessions,
    C_GetSessionInfo,
    C_GetOperationState,
    C_SetOperationState,
    C_Login,
    C_Logout,
    C_CreateObject,
    C_CopyObject,
    C_DestroyObject,
    C_GetObjectSize,
    C_GetAttributeValue,
    C_SetAttributeValue,
    C_FindObjectsInit,
    C_FindObjects,
    C_FindObjectsFinal,
    C_EncryptInit,
    C_Encrypt,
    C_EncryptUpdate,
    C_EncryptFinal,
    C_DecryptInit,
    C_Decrypt,
    C_DecryptUpdate,
    C_DecryptFinal,
    C_DigestInit,
    C_Digest,
    C_DigestUpdate,
    C_DigestKey,
    C_DigestFinal,
    C_SignInit,
    C_Sign,
    C_SignUpdate,
    C_SignFinal,
    C_SignRecoverInit,
    C_SignRecover,
    C_VerifyInit,
    C_Verify,
    C_VerifyUpdate,
    C_VerifyFinal,
    C_VerifyRecoverInit,
    C_VerifyRecover,
    C_DigestEncryptUpdate,
    C_DecryptDigestUpdate,
    C_SignEncryptUpdate,
    C_DecryptVerifyUpdate,
    C_GenerateKey,
    C_GenerateKeyPair,
    C_WrapKey,
    C_UnwrapKey,
    C_DeriveKey,
    C_SeedRandom,
    C_GenerateRandom,
    C_GetFunctionStatus,
    C_CancelFunction,
    C_WaitForSlotEvent,
};
}  // namespace

extern "C" EDGEKIT_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR function_list) {
  if (function_list == nullptr) return CKR_ARGUMENTS_BAD;
  *function_list = &g_functions;
  return CKR_OK;
}
