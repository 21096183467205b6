// The client over the edgekit token, end to end, and the token's failure modes as an application
// sees them: wrong PIN and lockout, a tampered or truncated token file or object file, a key
// removed from the token. Each test has its own token folder; reloading the module re-reads it.

#include <edgekit/pkcs11/client.hpp>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace edgekit::pkcs11 {
namespace {

namespace fs = std::filesystem;
constexpr char kSoPin[] = "so-secret";
constexpr char kPin[] = "1234";

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

class TokenClient : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/edgekit-token-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::setenv("EDGEKIT_TOKEN_DIR", (dir_ + "/token").c_str(), 1);
    ::setenv("EDGEKIT_TOKEN_PBKDF2_ITERATIONS", "2000", 1);
    ::setenv("EDGEKIT_TOKEN_QUIET", "1", 1);
    reload();
    ASSERT_TRUE(module_->init_token(0, kSoPin, "client-test"));
    auto so = module_->open_session(0, true);
    ASSERT_TRUE(so) << so.error().message();
    ASSERT_TRUE(so->login(UserType::SecurityOfficer, kSoPin));
    ASSERT_TRUE(so->init_pin(kPin));
  }
  void TearDown() override {
    module_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Finalises and loads the module again: what a reboot of the device does.
  void reload() {
    module_.reset();
    auto m = Module::load(EDGEKIT_TOKEN_MODULE);
    ASSERT_TRUE(m) << m.error().message();
    module_.emplace(std::move(*m));
  }

  Session user_session() {
    auto s = module_->open_session(0, true);
    EXPECT_TRUE(s) << s.error().message();
    auto login = s->login(UserType::User, kPin);
    EXPECT_TRUE(login) << login.error().message();
    return std::move(*s);
  }

  std::vector<fs::path> object_files() {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_ + "/token")) {
      if (e.path().extension() == ".eko") out.push_back(e.path());
    }
    return out;
  }

  static void flip_byte(const fs::path& p, std::size_t offset_from_end) {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto size = static_cast<std::size_t>(f.tellg());
    const auto pos = static_cast<std::streamoff>(size - 1 - offset_from_end);
    f.seekg(pos);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    f.seekp(pos);
    f.write(&c, 1);
  }

  std::string dir_;
  std::optional<Module> module_;
};

TEST_F(TokenClient, SignsVerifiesDigestsAndFindsByLabelAndId) {
  Session s = user_session();
  auto kp = s.generate_ec_key_pair(Curve::P256, {"device", {0x01}, true});
  ASSERT_TRUE(kp) << kp.error().message();
  auto key = s.find_one({CKO_PRIVATE_KEY, "device", std::nullopt});
  ASSERT_TRUE(key) << key.error().message();
  EXPECT_EQ(*key, kp->private_key);
  auto pub = s.find_one({CKO_PUBLIC_KEY, std::nullopt, Bytes{0x01}});
  ASSERT_TRUE(pub);
  const Bytes data = bytes_of("hello token");
  auto sig = s.sign(*key, {CKM_ECDSA_SHA256, {}}, data);
  ASSERT_TRUE(sig) << sig.error().message();
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(s.verify(*pub, {CKM_ECDSA_SHA256, {}}, data, *sig));
  (*sig)[0] ^= 1;
  auto bad = s.verify(*pub, {CKM_ECDSA_SHA256, {}}, data, *sig);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().rv, CKR_SIGNATURE_INVALID);
  EXPECT_EQ(bad.error().message(), "C_Verify: CKR_SIGNATURE_INVALID (0xc0)");
  auto digest = s.digest({CKM_SHA256, {}}, bytes_of("abc"));
  ASSERT_TRUE(digest);
  EXPECT_EQ((*digest)[0], 0xba);
  auto rnd = s.random(16);
  ASSERT_TRUE(rnd);
  EXPECT_EQ(rnd->size(), 16u);
  auto value = s.attribute(*key, CKA_VALUE);
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().rv, CKR_ATTRIBUTE_SENSITIVE);
}

TEST_F(TokenClient, RsaPssThroughTheClient) {
  Session s = user_session();
  auto kp = s.generate_rsa_key_pair(2048, {"rsa", {0x02}, false});
  ASSERT_TRUE(kp) << kp.error().message();
  const Bytes data = bytes_of("manifest");
  auto sig = s.sign(kp->private_key, Mechanism::sha256_rsa_pss(), data);
  ASSERT_TRUE(sig) << sig.error().message();
  EXPECT_EQ(sig->size(), 256u);
  EXPECT_TRUE(s.verify(kp->public_key, Mechanism::sha256_rsa_pss(), data, *sig));
}

TEST_F(TokenClient, KeysSurviveARestartAndStayEncryptedAtRest) {
  {
    Session s = user_session();
    ASSERT_TRUE(s.generate_ec_key_pair(Curve::P384, {"persist", {0x07}, true}));
  }
  reload();
  Session s = user_session();
  auto key = s.find_one({CKO_PRIVATE_KEY, "persist", std::nullopt});
  ASSERT_TRUE(key) << key.error().message();
  auto sig = s.sign(*key, {CKM_ECDSA_SHA256, {}}, bytes_of("after reboot"));
  ASSERT_TRUE(sig);
  EXPECT_EQ(sig->size(), 96u);
  // The label of a private object is inside its ciphertext, not in the file in clear.
  for (const auto& f : object_files()) {
    std::ifstream in(f, std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (content[9] == 1) {
      EXPECT_EQ(content.find("persist"), std::string::npos) << f;
    }
  }
}

TEST_F(TokenClient, WrongPinLocksAfterFiveTriesAndTheLockSurvivesARestart) {
  {
    auto s = module_->open_session(0, false);
    ASSERT_TRUE(s);
    for (int i = 0; i < 5; ++i) {
      auto r = s->login(UserType::User, "0000");
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().rv, CKR_PIN_INCORRECT) << "try " << i;
      if (i == 0) {
        EXPECT_EQ(r.error().message(), "C_Login: CKR_PIN_INCORRECT (0xa0)");
      }
    }
    auto info = module_->token_info(0);
    ASSERT_TRUE(info);
    EXPECT_TRUE(info->flags & CKF_USER_PIN_LOCKED);
    auto r = s->login(UserType::User, kPin);  // even the right PIN
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().rv, CKR_PIN_LOCKED);
  }
  reload();
  {
    auto s = module_->open_session(0, true);
    ASSERT_TRUE(s);
    auto r = s->login(UserType::User, kPin);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().rv, CKR_PIN_LOCKED);
    // The SO sets a new user PIN, which unlocks it.
    ASSERT_TRUE(s->login(UserType::SecurityOfficer, kSoPin));
    ASSERT_TRUE(s->init_pin("5678"));
    ASSERT_TRUE(s->logout());
    EXPECT_TRUE(s->login(UserType::User, "5678"));
  }
}

TEST_F(TokenClient, FlagsWarnBeforeTheLastTry) {
  auto s = module_->open_session(0, false);
  ASSERT_TRUE(s);
  for (int i = 0; i < 4; ++i) ASSERT_FALSE(s->login(UserType::User, "9999"));
  auto info = module_->token_info(0);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->flags & CKF_USER_PIN_FINAL_TRY);
  EXPECT_FALSE(info->flags & CKF_USER_PIN_LOCKED);
  ASSERT_TRUE(s->login(UserType::User, kPin));  // a right PIN resets the count
  info = module_->token_info(0);
  EXPECT_FALSE(info->flags & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY));
}

TEST_F(TokenClient, TamperedTokenFileIsNotRecognised) {
  flip_byte(dir_ + "/token/token.ekt", 40);
  reload();
  auto info = module_->token_info(0);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().rv, CKR_TOKEN_NOT_RECOGNIZED);
  auto s = module_->open_session(0, false);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message(), "C_OpenSession: CKR_TOKEN_NOT_RECOGNIZED (0xe1)");
}

TEST_F(TokenClient, TruncatedTokenFileIsNotRecognised) {
  const fs::path p = dir_ + "/token/token.ekt";
  fs::resize_file(p, fs::file_size(p) / 2);
  reload();
  auto s = module_->open_session(0, false);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().rv, CKR_TOKEN_NOT_RECOGNIZED);
  // Re-initialising recovers the slot (the SO PIN cannot be checked against a damaged file).
  ASSERT_TRUE(module_->init_token(0, kSoPin, "fresh"));
  EXPECT_TRUE(module_->open_session(0, false));
}

TEST_F(TokenClient, TamperedOrTruncatedObjectFilesAreNeverLoaded) {
  {
    Session s = user_session();
    ASSERT_TRUE(s.generate_ec_key_pair(Curve::P256, {"victim", {0x09}, true}));
  }
  auto files = object_files();
  ASSERT_EQ(files.size(), 2u);  // public and private key
  flip_byte(files[0], 3);
  fs::resize_file(files[1], fs::file_size(files[1]) - 1);
  reload();
  Session s = user_session();
  auto any = s.find({std::nullopt, "victim", std::nullopt});
  ASSERT_TRUE(any);
  EXPECT_TRUE(any->empty());
  auto key = s.find_one({CKO_PRIVATE_KEY, "victim", std::nullopt});
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().cause, Cause::NotFound);
  // The token is still usable for new keys.
  EXPECT_TRUE(s.generate_ec_key_pair(Curve::P256, {"next", {0x0a}, true}));
}

TEST_F(TokenClient, KeyRemovedFromTheTokenIsAClearError) {
  CK_OBJECT_HANDLE stale;
  {
    Session s = user_session();
    auto kp = s.generate_ec_key_pair(Curve::P256, {"gone", {0x0b}, true});
    ASSERT_TRUE(kp);
    stale = kp->private_key;
    // Through the API: the handle dies with the object.
    ASSERT_TRUE(s.destroy(kp->private_key));
    auto sig = s.sign(stale, {CKM_ECDSA_SHA256, {}}, bytes_of("x"));
    ASSERT_FALSE(sig);
    EXPECT_EQ(sig.error().message(), "C_SignInit: CKR_KEY_HANDLE_INVALID (0x60)");
    ASSERT_TRUE(s.generate_ec_key_pair(Curve::P256, {"removed", {0x0c}, true}));
  }
  // Behind the token's back: its file deleted while the device was off.
  for (const auto& f : object_files()) fs::remove(f);
  reload();
  Session s = user_session();
  auto key = s.find_one({CKO_PRIVATE_KEY, "removed", std::nullopt});
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().message(), "no object matches class=3 label=\"removed\"");
}

TEST_F(TokenClient, LeftoverTemporaryFileFromACrashIsIgnored) {
  {
    Session s = user_session();
    ASSERT_TRUE(s.generate_ec_key_pair(Curve::P256, {"kept", {0x0d}, true}));
  }
  // A write interrupted before its rename leaves a temporary file; the old state is intact.
  std::ofstream(dir_ + "/token/obj-00000000000000aa.eko.tmp") << "half written";
  std::ofstream(dir_ + "/token/token.ekt.tmp") << "half";
  reload();
  Session s = user_session();
  EXPECT_TRUE(s.find_one({CKO_PRIVATE_KEY, "kept", std::nullopt}));
}

TEST_F(TokenClient, ImportsACertificate) {
  Session s = user_session();
  // Not a certificate: refused with the spec's code.
  auto bad = s.import_certificate(bytes_of("not DER"), {"cert", {0x01}, true});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().rv, CKR_ATTRIBUTE_VALUE_INVALID);
}

TEST(ModuleLoad, MissingModuleIsALoadError) {
  auto m = Module::load("/nonexistent/libnothing.so");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().cause, Cause::LoadFailed);
  EXPECT_NE(m.error().message().find("cannot load PKCS#11 module"), std::string::npos);
}

TEST(RvNames, NameTheSpecCode) {
  EXPECT_EQ(rv_to_string(CKR_PIN_LOCKED), "CKR_PIN_LOCKED");
  EXPECT_EQ(rv_to_string(CKR_OK), "CKR_OK");
  EXPECT_EQ(rv_to_string(CKR_VENDOR_DEFINED + 5), "CKR_VENDOR_DEFINED");
  EXPECT_EQ(mechanism_to_string(CKM_ECDSA_SHA256), "CKM_ECDSA_SHA256");
}

}  // namespace
}  // namespace edgekit::pkcs11
