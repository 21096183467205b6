// Issue 11, point 5: a read-only token folder, a folder this user may not read, and real damage
// are three different answers, each with its own CKR code and a diagnostic that names the cause.
// The module runs in a forked child whose stderr is kept; run as root (CI), the child gives up
// root for the nobody user, since permissions do not stop root.

#include "token_fixture.hpp"

#include <edgekit/pkcs11/client.hpp>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

namespace edgekit::pkcs11 {
namespace {

namespace fs = std::filesystem;
constexpr char kSoPin[] = "so-secret";
constexpr char kPin[] = "1234";
constexpr uid_t kNobody = 65534;

class FolderErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::provision_token("edgekit-token-errors", "errors", kSoPin, kPin, false);
    ASSERT_FALSE(dir_.empty());
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);  // nobody must reach the token folder inside
    token_ = dir_ + "/token";
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(token_, fs::perms::owner_all, ec);
    fs::remove_all(dir_, ec);
  }

  // Sets the folder's mode, and (as root) hands the folder and its files to the user the child
  // becomes when `owned` (a read-only folder of one's own), or leaves them root's (no access).
  void prepare(mode_t mode, bool owned) {
    if (::geteuid() == 0 && owned) {
      for (const auto& e : fs::directory_iterator(token_)) {
        ASSERT_EQ(::chown(e.path().c_str(), kNobody, kNobody), 0);
      }
      ASSERT_EQ(::chown(token_.c_str(), kNobody, kNobody), 0);
    }
    ASSERT_EQ(::chmod(token_.c_str(), mode), 0);
  }

  // Runs `check` in a child (as nobody when root); its lines of findings and its stderr.
  std::pair<std::string, std::string> in_child(
      const std::function<void(std::ostream&)>& check) {
    const std::string out_path = dir_ + "/child.out", err_path = dir_ + "/child.err";
    for (const std::string& p : {out_path, err_path}) {  // made here: nobody may write, not create
      std::ofstream{p};
      EXPECT_EQ(::chmod(p.c_str(), 0666), 0);
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (::geteuid() == 0 && (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)) ::_exit(3);
      std::ofstream out(out_path);
      if (!freopen(err_path.c_str(), "w", stderr)) ::_exit(4);
      check(out);
      out.close();
      std::fflush(stderr);
      ::_exit(0);
    }
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    return {testing::read_whole_file(out_path), testing::read_whole_file(err_path)};
  }

  std::string dir_, token_;
};

std::string rv_of(const Error& e) { return std::string(rv_to_string(e.rv)); }

// What an application sees: token info, a session, a login.
void probe(std::ostream& out) {
  auto m = Module::load(EDGEKIT_TOKEN_MODULE);
  if (!m) {
    out << "load " << m.error().message() << "\n";
    return;
  }
  auto info = m->token_info(0);
  out << "info " << (info ? "CKR_OK" : rv_of(info.error())) << "\n";
  if (info) out << "write-protected " << ((info->flags & CKF_WRITE_PROTECTED) != 0) << "\n";
  auto s = m->open_session(0, false);
  out << "open " << (s ? "CKR_OK" : rv_of(s.error())) << "\n";
  if (s) {
    auto r = s->login(UserType::User, kPin);
    out << "login " << (r ? "CKR_OK" : rv_of(r.error())) << "\n";
  }
}

TEST_F(FolderErrors, ReadOnlyFolderIsWriteProtectedNotDamaged) {
  prepare(0500, true);
  auto [out, err] = in_child(probe);
  EXPECT_NE(out.find("info CKR_OK"), std::string::npos) << out;
  EXPECT_NE(out.find("write-protected 1"), std::string::npos) << out;
  EXPECT_NE(out.find("open CKR_OK"), std::string::npos) << out;
  // A login must count its attempt on disk first: it cannot, and says why.
  EXPECT_NE(out.find("login CKR_TOKEN_WRITE_PROTECTED"), std::string::npos) << out;
  EXPECT_NE(err.find("read-only"), std::string::npos) << err;
  EXPECT_EQ(err.find("damaged"), std::string::npos) << err;
}

TEST_F(FolderErrors, UnreadableFolderIsAPermissionErrorNotDamage) {
  prepare(::geteuid() == 0 ? 0700 : 0000, false);
  auto [out, err] = in_child(probe);
  EXPECT_NE(out.find("info CKR_TOKEN_NOT_PRESENT"), std::string::npos) << out;
  EXPECT_NE(out.find("open CKR_TOKEN_NOT_PRESENT"), std::string::npos) << out;
  EXPECT_NE(err.find("permission denied"), std::string::npos) << err;
  EXPECT_EQ(err.find("damaged"), std::string::npos) << err;
}

TEST_F(FolderErrors, DamagedTokenFileIsNamedAsDamage) {
  {
    std::fstream f(token_ + "/token.ekt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x5a');
  }
  prepare(0700, true);
  auto [out, err] = in_child(probe);
  EXPECT_NE(out.find("info CKR_TOKEN_NOT_RECOGNIZED"), std::string::npos) << out;
  EXPECT_NE(out.find("open CKR_TOKEN_NOT_RECOGNIZED"), std::string::npos) << out;
  EXPECT_NE(err.find("damaged"), std::string::npos) << err;
  EXPECT_EQ(err.find("permission denied"), std::string::npos) << err;
  EXPECT_EQ(err.find("read-only"), std::string::npos) << err;
}

}  // namespace
}  // namespace edgekit::pkcs11
