// The token's storage codecs and access rules, tested without a module around them.

#include "token/access.hpp"
#include "token/attributes.hpp"
#include "token/crypto.hpp"
#include "token/store.hpp"

#include <edgekit/pkcs11/cryptoki.hpp>
#include <gtest/gtest.h>

#include <cstring>

namespace edgekit::pkcs11::token {
namespace {

AttributeMap sample_object() {
  AttributeMap m;
  set_ulong(m, CKA_CLASS, CKO_PRIVATE_KEY);
  set_ulong(m, CKA_KEY_TYPE, CKK_EC);
  set_bool(m, CKA_PRIVATE, true);
  set_bool(m, CKA_SENSITIVE, true);
  set_bytes(m, CKA_LABEL, std::vector<std::uint8_t>{'k', 'e', 'y'});
  set_bytes(m, CKA_VALUE, std::vector<std::uint8_t>(32, 7));
  return m;
}

TEST(AttributeCodec, RoundTrips) {
  const AttributeMap m = sample_object();
  Bytes enc;
  encode_attributes(m, enc);
  AttributeMap back;
  ASSERT_TRUE(decode_attributes(view(enc), back));
  EXPECT_EQ(back, m);
}

TEST(AttributeCodec, RejectsEveryTruncationAndTrailingBytes) {
  Bytes enc;
  encode_attributes(sample_object(), enc);
  AttributeMap out;
  for (std::size_t n = 0; n < enc.size(); ++n) {
    EXPECT_FALSE(decode_attributes({enc.data(), n}, out)) << "length " << n;
  }
  enc.push_back(0);
  EXPECT_FALSE(decode_attributes(view(enc), out));
}

TEST(AttributeCodec, RejectsUnknownDuplicateAndMalformedValues) {
  auto one = [](std::uint64_t type, std::vector<std::uint8_t> value, int copies = 1) {
    Bytes b = {static_cast<std::uint8_t>(copies), 0, 0, 0};
    for (int c = 0; c < copies; ++c) {
      for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(type >> (8 * i)));
      const auto len = static_cast<std::uint32_t>(value.size());
      for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(len >> (8 * i)));
      b.insert(b.end(), value.begin(), value.end());
    }
    return b;
  };
  AttributeMap out;
  EXPECT_TRUE(decode_attributes(view(one(CKA_TOKEN, {1})), out));
  EXPECT_FALSE(decode_attributes(view(one(CKA_TOKEN, {2})), out));        // not a CK_BBOOL
  EXPECT_FALSE(decode_attributes(view(one(CKA_TOKEN, {1, 1})), out));     // wrong size
  EXPECT_FALSE(decode_attributes(view(one(CKA_CLASS, {1, 2, 3})), out));  // not 64 bits
  EXPECT_FALSE(decode_attributes(view(one(0x7fff1234, {1})), out));       // unknown type
  EXPECT_FALSE(decode_attributes(view(one(CKA_LABEL, {'a'}, 2)), out));   // twice
}

TEST(TemplateRules, ValidateTemplate) {
  CK_BBOOL yes = CK_TRUE;
  CK_ULONG cls = CKO_DATA;
  CK_ULONG other = CKO_CERTIFICATE;
  CK_ATTRIBUTE ok[] = {{CKA_TOKEN, &yes, 1}, {CKA_CLASS, &cls, sizeof cls}};
  EXPECT_EQ(validate_template(ok), CKR_OK);
  CK_ATTRIBUTE bad_bool[] = {{CKA_TOKEN, &cls, sizeof cls}};
  EXPECT_EQ(validate_template(bad_bool), CKR_ATTRIBUTE_VALUE_INVALID);
  CK_ATTRIBUTE unknown[] = {{CKA_VENDOR_DEFINED | 7, &yes, 1}};
  EXPECT_EQ(validate_template(unknown), CKR_ATTRIBUTE_TYPE_INVALID);
  CK_ATTRIBUTE conflicting[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_CLASS, &other, sizeof other}};
  EXPECT_EQ(validate_template(conflicting), CKR_TEMPLATE_INCONSISTENT);
  CK_ATTRIBUTE null_value[] = {{CKA_LABEL, nullptr, 4}};
  EXPECT_EQ(validate_template(null_value), CKR_ARGUMENTS_BAD);
}

TEST(AccessRules, KeyMaterialOfSensitiveOrUnextractableKeysIsNeverRead) {
  AttributeMap key = sample_object();
  EXPECT_EQ(check_read(key, CKA_VALUE), CKR_ATTRIBUTE_SENSITIVE);
  EXPECT_EQ(check_read(key, CKA_LABEL), CKR_OK);
  EXPECT_EQ(check_read(key, CKA_MODULUS), CKR_ATTRIBUTE_TYPE_INVALID);
  set_bool(key, CKA_SENSITIVE, false);
  set_bool(key, CKA_EXTRACTABLE, false);
  EXPECT_EQ(check_read(key, CKA_VALUE), CKR_ATTRIBUTE_SENSITIVE);
  set_bool(key, CKA_EXTRACTABLE, true);
  EXPECT_EQ(check_read(key, CKA_VALUE), CKR_OK);
  AttributeMap data;
  set_ulong(data, CKA_CLASS, CKO_DATA);
  set_bytes(data, CKA_VALUE, std::vector<std::uint8_t>{1});
  EXPECT_EQ(check_read(data, CKA_VALUE), CKR_OK);
}

TEST(AccessRules, SetAttributeRules) {
  AttributeMap key = sample_object();
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ULONG cls = CKO_DATA;
  EXPECT_EQ(check_set(key, {CKA_LABEL, &yes, 1}, LoginState::User), CKR_OK);
  EXPECT_EQ(check_set(key, {CKA_SENSITIVE, &no, 1}, LoginState::User), CKR_ATTRIBUTE_READ_ONLY);
  EXPECT_EQ(check_set(key, {CKA_SENSITIVE, &yes, 1}, LoginState::User), CKR_OK);
  EXPECT_EQ(check_set(key, {CKA_EXTRACTABLE, &yes, 1}, LoginState::User), CKR_ATTRIBUTE_READ_ONLY);
  EXPECT_EQ(check_set(key, {CKA_CLASS, &cls, sizeof cls}, LoginState::User),
            CKR_ATTRIBUTE_READ_ONLY);
  EXPECT_EQ(check_set(key, {CKA_TRUSTED, &yes, 1}, LoginState::User), CKR_ATTRIBUTE_READ_ONLY);
  set_bool(key, CKA_MODIFIABLE, false);
  EXPECT_EQ(check_set(key, {CKA_LABEL, &yes, 1}, LoginState::User), CKR_ACTION_PROHIBITED);
}

TEST(AccessRules, WritesAndVisibility) {
  EXPECT_EQ(check_write(true, false, false, LoginState::User), CKR_SESSION_READ_ONLY);
  EXPECT_EQ(check_write(false, true, false, LoginState::Public), CKR_USER_NOT_LOGGED_IN);
  EXPECT_EQ(check_write(false, true, false, LoginState::SecurityOfficer), CKR_USER_NOT_LOGGED_IN);
  EXPECT_EQ(check_write(true, true, true, LoginState::User), CKR_OK);
  AttributeMap key = sample_object();
  EXPECT_FALSE(object_visible(key, LoginState::Public));
  EXPECT_FALSE(object_visible(key, LoginState::SecurityOfficer));
  EXPECT_TRUE(object_visible(key, LoginState::User));
  EXPECT_EQ(session_state(LoginState::User, false), CKS_RO_USER_FUNCTIONS);
  EXPECT_EQ(session_state(LoginState::SecurityOfficer, true), CKS_RW_SO_FUNCTIONS);
}

TEST(AccessRules, PrivateAndSecretKeysAreAlwaysPrivateObjects) {
  AttributeMap key = sample_object();
  EXPECT_EQ(check_key_privacy(key), CKR_OK);
  set_bool(key, CKA_PRIVATE, false);
  EXPECT_EQ(check_key_privacy(key), CKR_TEMPLATE_INCONSISTENT);
  set_ulong(key, CKA_CLASS, CKO_SECRET_KEY);
  EXPECT_EQ(check_key_privacy(key), CKR_TEMPLATE_INCONSISTENT);
  key.erase(CKA_PRIVATE);  // the default is private
  EXPECT_EQ(check_key_privacy(key), CKR_OK);
  set_ulong(key, CKA_CLASS, CKO_PUBLIC_KEY);
  set_bool(key, CKA_PRIVATE, false);
  EXPECT_EQ(check_key_privacy(key), CKR_OK);
}

TokenRecord sample_record() {
  TokenRecord r;
  std::memset(r.label, 'L', sizeof r.label);
  std::memset(r.serial, '0', sizeof r.serial);
  r.iterations = 2000;
  r.so_salt.assign(16, 1);
  r.so_sealed_key.assign(32 + kSealOverhead, 2);
  r.user_pin_initialized = true;
  r.user_salt.assign(16, 3);
  r.user_sealed_key.assign(32 + kSealOverhead, 4);
  r.user_failures = 2;
  r.integrity_key.assign(32, 5);
  return r;
}

TEST(TokenFile, RoundTripsAndRejectsAnyFlippedByteOrTruncation) {
  Bytes enc;
  encode_token_record(sample_record(), enc);
  TokenRecord back;
  ASSERT_TRUE(decode_token_record(view(enc), back));
  EXPECT_EQ(back.user_failures, 2u);
  EXPECT_EQ(back.user_sealed_key, sample_record().user_sealed_key);
  for (std::size_t i = 0; i < enc.size(); ++i) {
    Bytes bad = enc;
    bad[i] ^= 0x01;
    EXPECT_FALSE(decode_token_record(view(bad), back)) << "byte " << i;
  }
  for (std::size_t n = 0; n < enc.size(); ++n) {
    EXPECT_FALSE(decode_token_record({enc.data(), n}, back)) << "length " << n;
  }
}

TEST(TokenFile, CarriesTheGenerationAndStillReadsVersionOne) {
  TokenRecord r = sample_record();
  r.generation = 0x0102030405060708ULL;
  Bytes v2;
  encode_token_record(r, v2);
  TokenRecord back;
  ASSERT_TRUE(decode_token_record(view(v2), back));
  EXPECT_EQ(back.generation, r.generation);
  // A version 1 file, as tokens made before the generation counter have: no counter, version 1.
  Bytes v1(v2.begin(), v2.end() - 32 - 8);
  v1[8] = 1;
  std::uint8_t digest[32];
  ASSERT_TRUE(sha256(view(v1), digest));
  v1.insert(v1.end(), digest, digest + sizeof digest);
  ASSERT_TRUE(decode_token_record(view(v1), back));
  EXPECT_EQ(back.generation, 0u);
  EXPECT_EQ(back.user_failures, 2u);
  EXPECT_EQ(back.integrity_key, r.integrity_key);
  v1[8] = 3;  // a version this code does not know
  EXPECT_FALSE(decode_token_record(view(v1), back));
}

TEST(ObjectFile, PublicAndPrivateFilesDetectEveryFlippedByte) {
  Bytes integrity(32, 9), master(32, 8), wrong(32, 7);
  for (ObjectKind kind : {ObjectKind::Public, ObjectKind::Private}) {
    StoredObject obj;
    obj.id = 0x1122334455667788ULL;
    obj.kind = kind;
    obj.attributes = sample_object();
    set_bool(obj.attributes, CKA_PRIVATE, kind == ObjectKind::Private);
    Bytes file;
    ASSERT_TRUE(encode_object_file(obj, view(integrity), view(master), file));
    StoredObject back;
    ASSERT_EQ(load_object_file(view(file), obj.id, view(integrity), view(master), false, back),
              LoadStatus::Ok);
    EXPECT_EQ(back.attributes, obj.attributes);
    // Another file's name (id), another key, any flipped byte or cut: never loaded.
    EXPECT_EQ(load_object_file(view(file), obj.id + 1, view(integrity), view(master), false, back),
              LoadStatus::Corrupt);
    EXPECT_EQ(load_object_file(view(file), obj.id, view(wrong), view(wrong), false, back),
              LoadStatus::Corrupt);
    for (std::size_t i = 0; i < file.size(); ++i) {
      Bytes bad = file;
      bad[i] ^= 0x20;
      EXPECT_NE(load_object_file(view(bad), obj.id, view(integrity), view(master), false, back),
                LoadStatus::Ok)
          << "byte " << i;
    }
    for (std::size_t n = 0; n < file.size(); ++n) {
      EXPECT_NE(load_object_file({file.data(), n}, obj.id, view(integrity), view(master), false,
                                 back),
                LoadStatus::Ok)
          << "length " << n;
    }
    if (kind == ObjectKind::Private) {
      // Private files are ciphertext: the key's value does not appear in them.
      const Bytes& secret = obj.attributes.at(CKA_VALUE);
      EXPECT_EQ(std::search(file.begin(), file.end(), secret.begin(), secret.end()), file.end());
    }
  }
}

}  // namespace
}  // namespace edgekit::pkcs11::token
