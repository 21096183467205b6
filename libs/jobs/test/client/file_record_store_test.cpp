// FileRecordStore: round trip, no record, a record replaced atomically and removed, and every
// kind of damage a torn write or a bad medium leaves (truncated, extended, altered, another
// format, fields out of range) reported as Corrupt with its reason, never loaded.
#include "edgekit/jobs/file_record_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace edgekit::jobs {
namespace {

using Problem = FileRecordStore::Problem;

class FileRecordStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/edgekit-jobs-record-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path() const { return dir_ + "/job.record"; }

  static JobRecord sample() {
    JobRecord r;
    const std::string_view id = "fw-2_rollout-7";
    std::copy(id.begin(), id.end(), r.job_id.begin());
    r.job_id_length = static_cast<std::uint8_t>(id.size());
    r.execution_number = 3;
    r.version = 0x1'0000'0007;  // over 32 bits: all eight bytes count
    r.status = JobStatus::Failed;
    r.step = 0xFFFF'FFFE;
    r.reason = OutcomeReason::RebootedDuringStep;
    return r;
  }

  std::vector<char> file_bytes() const {
    std::ifstream in(path(), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  void write_bytes(const std::vector<char>& bytes) const {
    std::ofstream out(path(), std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  std::string dir_;
};

void expect_same(const JobRecord& a, const JobRecord& b) {
  EXPECT_EQ(a.job(), b.job());
  EXPECT_EQ(a.execution_number, b.execution_number);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.reason, b.reason);
}

TEST_F(FileRecordStoreTest, NoFileIsNoRecord) {
  FileRecordStore store(path());
  JobRecord r;
  EXPECT_EQ(store.load(r), RecordLoad::None);
  EXPECT_EQ(store.last_problem(), Problem::None);
  EXPECT_TRUE(store.clear());  // nothing to remove is fine
}

TEST_F(FileRecordStoreTest, RoundTripsEveryFieldAndReplacesAtomically) {
  FileRecordStore store(path());
  const JobRecord saved = sample();
  ASSERT_TRUE(store.save(saved));
  JobRecord back;
  ASSERT_EQ(store.load(back), RecordLoad::Loaded);
  expect_same(back, saved);
  // Another store on the same file (the next boot) reads the same.
  FileRecordStore next_boot(path());
  ASSERT_EQ(next_boot.load(back), RecordLoad::Loaded);
  expect_same(back, saved);

  JobRecord longest;
  longest.job_id.fill('z');
  longest.job_id_length = kMaxJobIdLength;
  longest.status = JobStatus::InProgress;
  ASSERT_TRUE(store.save(longest));
  ASSERT_EQ(store.load(back), RecordLoad::Loaded);
  expect_same(back, longest);
  EXPECT_EQ(file_bytes().size(), kRecordFileSize);
  // No temporary left behind; not readable by others.
  EXPECT_FALSE(std::filesystem::exists(path() + ".tmp"));
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);

  ASSERT_TRUE(store.clear());
  EXPECT_FALSE(std::filesystem::exists(path()));
  EXPECT_EQ(store.load(back), RecordLoad::None);
}

TEST_F(FileRecordStoreTest, ALeftoverTemporaryFromACrashedWriteIsIgnored) {
  FileRecordStore store(path());
  ASSERT_TRUE(store.save(sample()));
  // A crash between writing the temporary and the rename: the record is the old one.
  std::ofstream(path() + ".tmp", std::ios::binary) << "half a rec";
  JobRecord back;
  ASSERT_EQ(store.load(back), RecordLoad::Loaded);
  expect_same(back, sample());
  ASSERT_TRUE(store.save(JobRecord{sample()}));  // and the next write goes through
}

TEST_F(FileRecordStoreTest, ATruncatedFileIsCorrupt) {
  FileRecordStore store(path());
  ASSERT_TRUE(store.save(sample()));
  const std::vector<char> whole = file_bytes();
  for (std::size_t keep :
       {std::size_t{0}, std::size_t{4}, kRecordFileSize / 2, kRecordFileSize - 1}) {
    write_bytes({whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(keep)});
    JobRecord back;
    EXPECT_EQ(store.load(back), RecordLoad::Corrupt) << keep;
    EXPECT_EQ(store.last_problem(), Problem::WrongSize) << keep;
  }
  std::vector<char> longer = whole;
  longer.push_back('\n');  // an appended byte is damage too
  write_bytes(longer);
  JobRecord back;
  EXPECT_EQ(store.load(back), RecordLoad::Corrupt);
  EXPECT_EQ(store.last_problem(), Problem::WrongSize);
}

TEST_F(FileRecordStoreTest, EveryAlteredByteIsFound) {
  FileRecordStore store(path());
  ASSERT_TRUE(store.save(sample()));
  const std::vector<char> whole = file_bytes();
  for (std::size_t i = 0; i < whole.size(); ++i) {
    std::vector<char> bad = whole;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    write_bytes(bad);
    JobRecord back;
    EXPECT_EQ(store.load(back), RecordLoad::Corrupt) << "byte " << i;
    const Problem expected = i < 5 ? Problem::BadHeader : Problem::BadChecksum;
    EXPECT_EQ(store.last_problem(), expected) << "byte " << i;
  }
  // Saving over a corrupt file replaces it.
  ASSERT_TRUE(store.save(sample()));
  JobRecord back;
  EXPECT_EQ(store.load(back), RecordLoad::Loaded);
}

TEST_F(FileRecordStoreTest, FieldsOutOfRangeAreCorruptEvenWithAGoodChecksum) {
  FileRecordStore store(path());
  JobRecord r = sample();
  JobRecord back;
  auto write_record = [&](const JobRecord& rec) {
    const auto bytes = FileRecordStore::encode(rec);
    write_bytes({reinterpret_cast<const char*>(bytes.data()),
                 reinterpret_cast<const char*>(bytes.data()) + bytes.size()});
  };
  r.status = JobStatus::Canceled;  // the service's status, never the device's record
  write_record(r);
  EXPECT_EQ(store.load(back), RecordLoad::Corrupt);
  EXPECT_EQ(store.last_problem(), Problem::BadField);
  r = sample();
  r.reason = static_cast<OutcomeReason>(9);
  write_record(r);
  EXPECT_EQ(store.load(back), RecordLoad::Corrupt);
  EXPECT_EQ(store.last_problem(), Problem::BadField);
  r = sample();
  r.job_id[0] = '/';  // not a job id character
  write_record(r);
  EXPECT_EQ(store.load(back), RecordLoad::Corrupt);
  EXPECT_EQ(store.last_problem(), Problem::BadField);
  r = sample();
  r.job_id_length = 0;
  write_record(r);
  EXPECT_EQ(store.load(back), RecordLoad::Corrupt);
  EXPECT_EQ(store.last_problem(), Problem::BadField);
}

TEST_F(FileRecordStoreTest, AnUnreadableOrUnwritablePlaceIsReported) {
  // A directory where the file should be: it exists, cannot be read as a record.
  std::filesystem::create_directory(path());
  FileRecordStore store(path());
  JobRecord back;
  EXPECT_EQ(store.load(back), RecordLoad::Corrupt);
  EXPECT_EQ(store.last_problem(), Problem::ReadFailed);
  EXPECT_FALSE(store.save(sample()));
  EXPECT_EQ(store.last_problem(), Problem::WriteFailed);
  // A missing directory: nothing was ever stored there, and nothing can be.
  FileRecordStore nowhere(dir_ + "/missing/job.record");
  EXPECT_EQ(nowhere.load(back), RecordLoad::None);
  EXPECT_FALSE(nowhere.save(sample()));
  EXPECT_EQ(nowhere.last_problem(), Problem::WriteFailed);
  // A path too long to hold.
  FileRecordStore too_long(std::string(file::kMaxPathLength + 1, 'a'));
  EXPECT_EQ(too_long.load(back), RecordLoad::Corrupt);
  EXPECT_EQ(too_long.last_problem(), Problem::InvalidPath);
  EXPECT_FALSE(too_long.save(sample()));
  EXPECT_FALSE(too_long.clear());
  EXPECT_STREQ(to_string(Problem::BadChecksum), "BadChecksum");
}

}  // namespace
}  // namespace edgekit::jobs
