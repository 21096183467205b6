// FileStateStore: round trip, no state yet, corruption detected, atomic replacement.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <edgekit/provisioning/state.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace edgekit::provisioning {
namespace {

class FileStateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/edgekit-provisioning-state-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path() const { return dir_ + "/state"; }
  std::string dir_;
};

TEST_F(FileStateStoreTest, NoFileIsNoState) {
  FileStateStore store(path());
  auto s = store.load();
  ASSERT_TRUE(s);
  EXPECT_FALSE(*s);
  EXPECT_TRUE(store.clear());  // nothing to remove is fine
}

TEST_F(FileStateStoreTest, RoundTripsEveryFieldIncludingAnyTokenByte) {
  FileStateStore store(path());
  State s;
  s.step = Step::CertificateReceived;
  s.certificate_id = std::string(64, 'a');
  s.ownership_token = std::string("tok\n=\0x\xff", 8);
  s.expires_at = 1'800'003'600;
  ASSERT_TRUE(store.save(s));
  auto back = store.load();
  ASSERT_TRUE(back && *back);
  EXPECT_EQ(**back, s);
  // Replaced, not appended; no temporary file left behind; not readable by others.
  s.step = Step::Registered;
  s.thing_name = "thing-1";
  s.ownership_token.clear();
  ASSERT_TRUE(store.save(s));
  back = store.load();
  ASSERT_TRUE(back && *back);
  EXPECT_EQ(**back, s);
  EXPECT_FALSE(std::filesystem::exists(path() + ".tmp"));
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
  ASSERT_TRUE(store.clear());
  back = store.load();
  ASSERT_TRUE(back);
  EXPECT_FALSE(*back);
}

TEST_F(FileStateStoreTest, AnyChangedByteIsCorruption) {
  FileStateStore store(path());
  State s;
  s.step = Step::Registered;
  s.certificate_id = std::string(64, 'b');
  s.thing_name = "t";
  ASSERT_TRUE(store.save(s));
  std::stringstream raw;
  raw << std::ifstream(path()).rdbuf();
  const std::string good = raw.str();
  for (std::size_t i = 0; i < good.size(); i += 7) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    std::ofstream(path(), std::ios::trunc) << bad;
    auto r = store.load();
    ASSERT_FALSE(r) << "byte " << i;
    EXPECT_EQ(r.error(), Errc::StateCorrupted);
  }
  std::ofstream(path(), std::ios::trunc) << good.substr(0, good.size() / 2);
  auto r = store.load();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::StateCorrupted);
}

TEST_F(FileStateStoreTest, UnwritableDirectoryIsAStoreFailure) {
  FileStateStore store(dir_ + "/missing/state");
  EXPECT_EQ(store.save(State{}).error(), Errc::StateStoreFailed);
}

}  // namespace
}  // namespace edgekit::provisioning
