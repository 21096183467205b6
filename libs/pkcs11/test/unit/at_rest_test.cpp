// Issue 11, point 3: no private or secret key is ever stored in clear. After every call that
// creates a key, the test recovers the key material itself (generated keys: by opening the
// token's files with the PIN, as the token does; imported keys: it chose them) and scans every file
// in the token folder for those bytes. A template asking for a non-private private or secret key
// is refused with CKR_TEMPLATE_INCONSISTENT (the choice documented in docs/pkcs11.md).

#include "token/crypto.hpp"
#include "token/store.hpp"
#include "token_fixture.hpp"

#include <edgekit/pkcs11/client.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace edgekit::pkcs11 {
namespace {

namespace fs = std::filesystem;
constexpr char kSoPin[] = "so-secret";
constexpr char kPin[] = "1234";
constexpr std::uint8_t kUserAad[] = {'e', 'd', 'g', 'e', 'k', 'i', 't', ' ', 'u', 's', 'e', 'r'};
constexpr CK_BYTE kP256Oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

using Secret = std::vector<std::uint8_t>;

class KeysAtRest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::provision_token("edgekit-at-rest", "at-rest", kSoPin, kPin, true);
    ASSERT_FALSE(dir_.empty());
    auto m = Module::load(EDGEKIT_TOKEN_MODULE);
    ASSERT_TRUE(m) << m.error().message();
    module_.emplace(std::move(*m));
    auto s = module_->open_session(0, true);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->login(UserType::User, kPin));
    session_.emplace(std::move(*s));
  }
  void TearDown() override {
    session_.reset();
    module_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  const CK_FUNCTION_LIST& f() const { return module_->functions(); }

  // Every secret value on the token, read the way the token reads it: the master key opened
  // with the user PIN, then every object file (public ones by their MAC, private ones sealed).
  std::vector<Secret> stored_secrets() {
    using namespace token;
    TokenStore store(dir_ + "/token");
    TokenRecord record;
    EXPECT_EQ(store.load_record(record), LoadStatus::Ok);
    token::Bytes kek, master;
    EXPECT_TRUE(pbkdf2(kPin, view(record.user_salt), record.iterations, kek));
    EXPECT_TRUE(token::open(view(kek), kUserAad, view(record.user_sealed_key), master));
    std::vector<StoredObject> objects;
    std::vector<std::string> damaged;
    store.load_objects(view(record.integrity_key), view(master), true, objects, damaged);
    EXPECT_TRUE(damaged.empty());
    std::vector<Secret> out;
    for (const StoredObject& o : objects) {
      const auto cls = get_ulong(o.attributes, CKA_CLASS);
      if (cls != CKO_PRIVATE_KEY && cls != CKO_SECRET_KEY) continue;
      for (CK_ATTRIBUTE_TYPE t : {CKA_VALUE, CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2,
                                  CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT}) {
        if (const token::Bytes* v = find_attribute(o.attributes, t); v != nullptr && !v->empty()) {
          out.emplace_back(v->begin(), v->end());
        }
      }
    }
    return out;
  }

  // Fails the test if any file of the token folder holds one of `secrets` in clear.
  void expect_nothing_in_clear(const std::vector<Secret>& secrets, const std::string& after) {
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir_ + "/token")) {
      std::ifstream in(e.path(), std::ios::binary);
      const std::string content((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
      ++files;
      for (const Secret& s : secrets) {
        ASSERT_GE(s.size(), 16u);
        const auto hit = std::search(content.begin(), content.end(), s.begin(), s.end(),
                                     [](char a, std::uint8_t b) {
                                       return static_cast<std::uint8_t>(a) == b;
                                     });
        EXPECT_EQ(hit, content.end())
            << "after " << after << ": key material in clear in " << e.path().filename();
      }
    }
    EXPECT_GT(files, 1u) << after;
  }

  void check_after(const std::string& call, std::vector<Secret> also = {}) {
    std::vector<Secret> all = stored_secrets();
    all.insert(all.end(), also.begin(), also.end());
    EXPECT_FALSE(all.empty()) << call;
    expect_nothing_in_clear(all, call);
  }

  CK_RV generate_ec(CK_BBOOL priv_private, bool give_private) {
    CK_MECHANISM mech{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub[] = {{CKA_TOKEN, &yes, 1},
                          {CKA_EC_PARAMS, const_cast<CK_BYTE*>(kP256Oid), sizeof kP256Oid}};
    CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, 1}, {CKA_SIGN, &yes, 1},
                           {CKA_PRIVATE, &priv_private, 1}};
    CK_OBJECT_HANDLE hp = 0, hk = 0;
    return f().C_GenerateKeyPair(session_->handle(), &mech, pub, 2, priv, give_private ? 3 : 2,
                                 &hp, &hk);
  }

  CK_RV import_secret(const Secret& value, CK_BBOOL priv_private, bool give_private) {
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},
                        {CKA_KEY_TYPE, &kt, sizeof kt},
                        {CKA_TOKEN, &yes, 1},
                        {CKA_VALUE, const_cast<std::uint8_t*>(value.data()), value.size()},
                        {CKA_PRIVATE, &priv_private, 1}};
    CK_OBJECT_HANDLE h = 0;
    return f().C_CreateObject(session_->handle(), t, give_private ? 5 : 4, &h);
  }

  CK_RV import_ec_private(const Secret& scalar, CK_BBOOL priv_private, bool give_private) {
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls},
                        {CKA_KEY_TYPE, &kt, sizeof kt},
                        {CKA_TOKEN, &yes, 1},
                        {CKA_EC_PARAMS, const_cast<CK_BYTE*>(kP256Oid), sizeof kP256Oid},
                        {CKA_VALUE, const_cast<std::uint8_t*>(scalar.data()), scalar.size()},
                        {CKA_PRIVATE, &priv_private, 1}};
    CK_OBJECT_HANDLE h = 0;
    return f().C_CreateObject(session_->handle(), t, give_private ? 6 : 5, &h);
  }

  std::string dir_;
  std::optional<Module> module_;
  std::optional<Session> session_;
};

Secret random_secret(std::size_t n) {
  token::Bytes b(n);
  EXPECT_TRUE(token::random_bytes({b.data(), b.size()}));
  return Secret(b.begin(), b.end());
}

Secret fresh_p256_scalar() {
  token::Pkey key = token::generate_ec(token::supported_curves()[0]);
  token::EcKeyParts parts;
  EXPECT_TRUE(key && token::export_ec(key.get(), parts));
  return Secret(parts.scalar.begin(), parts.scalar.end());
}

TEST_F(KeysAtRest, GeneratedKeyPairsNeverLeaveKeyMaterialInTheFolder) {
  ASSERT_EQ(generate_ec(CK_TRUE, false), CKR_OK);
  check_after("C_GenerateKeyPair (EC, default template)");
  ASSERT_EQ(generate_ec(CK_TRUE, true), CKR_OK);
  check_after("C_GenerateKeyPair (EC, CKA_PRIVATE=true)");
  auto rsa = session_->generate_rsa_key_pair(2048, {"rsa", {0x05}, true});
  ASSERT_TRUE(rsa) << rsa.error().message();
  check_after("C_GenerateKeyPair (RSA 2048)");
}

TEST_F(KeysAtRest, NonPrivatePrivateKeyIsRefusedAndNothingReachesTheFolder) {
  ASSERT_EQ(generate_ec(CK_TRUE, false), CKR_OK);
  check_after("C_GenerateKeyPair (EC, default template)");
  // Today's bug: accepted, and its scalar written in clear.
  EXPECT_EQ(generate_ec(CK_FALSE, true), CKR_TEMPLATE_INCONSISTENT);
  check_after("C_GenerateKeyPair (EC, CKA_PRIVATE=false)");
}

TEST_F(KeysAtRest, ImportedPrivateAndSecretKeysAreSealedAndNonPrivateOnesRefused) {
  const Secret scalar = fresh_p256_scalar();
  EXPECT_EQ(import_ec_private(scalar, CK_FALSE, true), CKR_TEMPLATE_INCONSISTENT);
  ASSERT_EQ(generate_ec(CK_TRUE, false), CKR_OK);  // so that the folder holds some key
  check_after("C_CreateObject (EC private key, CKA_PRIVATE=false)", {scalar});
  ASSERT_EQ(import_ec_private(scalar, CK_TRUE, false), CKR_OK);
  check_after("C_CreateObject (EC private key)", {scalar});

  const Secret secret = random_secret(32);
  EXPECT_EQ(import_secret(secret, CK_FALSE, true), CKR_TEMPLATE_INCONSISTENT);
  check_after("C_CreateObject (secret key, CKA_PRIVATE=false)", {secret});
  ASSERT_EQ(import_secret(secret, CK_TRUE, true), CKR_OK);
  check_after("C_CreateObject (secret key)", {secret});
}

}  // namespace
}  // namespace edgekit::pkcs11
