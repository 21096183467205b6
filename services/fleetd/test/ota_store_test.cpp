// The OTA tables (store/ota.hpp) on both stores: SQLite and a throwaway PostgreSQL.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "ota/base64.hpp"
#include "store/ota.hpp"
#include "store_backends.hpp"

namespace edgekit::fleetd {
namespace {

namespace fs = std::filesystem;
using test::Backend;

class OtaStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    static int counter = 0;
    const std::string name = "ota" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    auto db = test::open_test_database(GetParam(), name, dir_);
    ASSERT_TRUE(db) << db.error().message;
    auto s = Store::open(std::move(db.value()), [this] { return now_; });
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(s.value());
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  template <class F>
  auto tx(F&& f) {
    return store_->transact(std::forward<F>(f));
  }
  // Every byte value, NULs included: the text column must carry any binary image.
  static OtaImage image(std::string name, std::string version, std::size_t size = 1000) {
    OtaImage i;
    i.name = std::move(name);
    i.version = std::move(version);
    i.device_type = "sensor-v2";
    for (std::size_t k = 0; k < size; ++k) i.bytes += static_cast<char>(k * 7 % 256);
    i.size = static_cast<std::int64_t>(size);
    i.sha256 = std::string(64, 'a');
    return i;
  }

  std::int64_t now_ = 1'700'000'000;
  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(OtaStoreTest, KeepsAnImageByteForByteAndItsSignature) {
  const OtaImage in = image("app", "1.0.0");
  auto c = tx([&](Tx& t) { return create_image(t, in); });
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c.value().bytes.empty()) << "create answers without the bytes";
  EXPECT_EQ(c.value().created_at, now_);
  auto got = tx([](Tx& t) { return get_image(t, "app", "1.0.0"); });
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got.value().bytes, in.bytes);
  EXPECT_EQ(got.value().size, 1000);
  EXPECT_EQ(got.value().device_type, "sensor-v2");
  EXPECT_TRUE(got.value().signature.empty());
  auto s = tx([](Tx& t) { return set_image_signature(t, "app", "1.0.0", "c2ln", "PEM"); });
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s.value().signature, "c2ln");
  EXPECT_EQ(s.value().signer_certificate, "PEM");
  auto dup = tx([&](Tx& t) { return create_image(t, in); });
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Errc::AlreadyExists);
  auto missing = tx([](Tx& t) { return set_image_signature(t, "app", "9", "c2ln", "PEM"); });
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::NotFound);
}

TEST_P(OtaStoreTest, RefusesBadImages) {
  auto refused = [&](OtaImage i) {
    auto r = tx([&](Tx& t) { return create_image(t, i); });
    EXPECT_FALSE(r);
    if (!r) {
      EXPECT_EQ(r.error().code, Errc::InvalidArgument) << r.error().message;
    }
  };
  refused(image("bad/name", "1"));
  refused(image("app", "1 0"));
  refused(image("app", "1", 0));
  OtaImage wrong_size = image("app", "1");
  wrong_size.size = 5;
  refused(wrong_size);
  OtaImage half_signed = image("app", "1");
  half_signed.signature = "c2ln";
  refused(half_signed);
}

TEST_P(OtaStoreTest, StreamsNameImagesThatThenCannotBeDeleted) {
  ASSERT_TRUE(tx([&](Tx& t) { return create_image(t, image("app", "2.0.0", 5000)); }));
  ASSERT_TRUE(tx([&](Tx& t) { return create_image(t, image("cfg", "1", 300)); }));
  OtaStream s;
  s.stream_id = "fw-2";
  s.description = "app 2.0.0";
  s.block_size = 1024;
  s.files = {{1, "cfg", "1"}, {0, "app", "2.0.0"}};
  auto c = tx([&](Tx& t) { return create_stream(t, s); });
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c.value().version, 1);
  ASSERT_EQ(c.value().files.size(), 2u);
  EXPECT_EQ(c.value().files[0].file_id, 0) << "files come back by file id";
  EXPECT_EQ(c.value().files[0].image_name, "app");
  EXPECT_EQ(c.value().block_size, 1024);

  auto in_use = tx([](Tx& t) { return delete_image(t, "app", "2.0.0"); });
  ASSERT_FALSE(in_use);
  EXPECT_EQ(in_use.error().code, Errc::Conflict);
  EXPECT_NE(in_use.error().message.find("fw-2"), std::string::npos) << in_use.error().message;

  OtaStream unknown = s;
  unknown.stream_id = "fw-3";
  unknown.files = {{0, "app", "3.0.0"}};
  auto nf = tx([&](Tx& t) { return create_stream(t, unknown); });
  ASSERT_FALSE(nf);
  EXPECT_EQ(nf.error().code, Errc::NotFound);
  for (auto broken : {std::vector<StreamFile>{}, std::vector<StreamFile>{{256, "app", "2.0.0"}},
                      std::vector<StreamFile>{{0, "app", "2.0.0"}, {0, "cfg", "1"}}}) {
    OtaStream b = s;
    b.stream_id = "fw-4";
    b.files = broken;
    auto r = tx([&](Tx& t) { return create_stream(t, b); });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::InvalidArgument);
  }
  OtaStream small = s;
  small.stream_id = "fw-5";
  small.block_size = 255;
  EXPECT_FALSE(tx([&](Tx& t) { return create_stream(t, small); }));

  auto list = tx([](Tx& t) { return list_streams(t, {"", 10}); });
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list.value().items.size(), 1u);
  auto images = tx([](Tx& t) { return list_images(t, {"", 1}); });
  ASSERT_TRUE(images) << images.error().message;
  ASSERT_EQ(images.value().items.size(), 1u);
  EXPECT_EQ(images.value().items[0].name, "app");
  EXPECT_EQ(images.value().next, "app/2.0.0");
  auto rest = tx([](Tx& t) { return list_images(t, {"app/2.0.0", 10}); });
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest.value().items.size(), 1u);
  EXPECT_EQ(rest.value().items[0].name, "cfg");

  ASSERT_TRUE(tx([](Tx& t) { return delete_stream(t, "fw-2"); }));
  EXPECT_TRUE(tx([](Tx& t) { return delete_image(t, "app", "2.0.0"); }));
  auto gone = tx([](Tx& t) { return get_stream(t, "fw-2"); });
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::NotFound);
}

// Migration 9 (an image's bytes in ota_image_bytes) keeps the images a store of schema 8 held:
// a database at version 8 with an image row in the old layout (bytes before size), opened by
// this Store, serves the same bytes, and deleting the image deletes its bytes.
TEST_P(OtaStoreTest, MigrationNineKeepsTheBytesOfEarlierImages) {
  store_.reset();
  if (!dir_.empty()) fs::remove_all(dir_);
  static int counter = 0;
  const std::string name = "ota9_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  auto db = test::open_test_database(GetParam(), name, dir_);
  ASSERT_TRUE(db) << db.error().message;
  // Migration 8's tables, as it shipped (the registry's and the others play no part here).
  ASSERT_TRUE(db.value()->exec_script(
      "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,"
      " applied_at BIGINT NOT NULL);"
      "INSERT INTO schema_migrations VALUES (8, 'ota: images and streams', 0);"
      "CREATE TABLE ota_images (name TEXT NOT NULL, version TEXT NOT NULL,"
      " device_type TEXT NOT NULL DEFAULT '', bytes TEXT NOT NULL, size BIGINT NOT NULL,"
      " sha256 TEXT NOT NULL, signature TEXT NOT NULL DEFAULT '',"
      " signer_certificate TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL,"
      " PRIMARY KEY (name, version));"
      "CREATE TABLE ota_streams (stream_id TEXT PRIMARY KEY, version BIGINT NOT NULL,"
      " description TEXT NOT NULL DEFAULT '', block_size BIGINT NOT NULL,"
      " created_at BIGINT NOT NULL);"
      "CREATE TABLE ota_stream_files (stream_id TEXT NOT NULL REFERENCES ota_streams(stream_id)"
      " ON DELETE CASCADE, file_id INTEGER NOT NULL, image_name TEXT NOT NULL,"
      " image_version TEXT NOT NULL, PRIMARY KEY (stream_id, file_id),"
      " FOREIGN KEY (image_name, image_version) REFERENCES ota_images(name, version));"
      // Migration 10 indexes the job executions and 11 counts them (only the columns they
      // name, and the table 11's counts refer to).
      "CREATE TABLE jobs (job_id TEXT PRIMARY KEY);"
      "CREATE TABLE job_executions (job_id TEXT NOT NULL, thing_name TEXT NOT NULL,"
      " execution_number BIGINT NOT NULL, status TEXT NOT NULL);"));
  const OtaImage old = image("app", "1.0.0", 70'000);  // base64 over SQLite's page: overflow
  ASSERT_TRUE(db.value()->exec(
      "INSERT INTO ota_images (name, version, device_type, bytes, size, sha256, created_at)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7)",
      {std::string_view(old.name), std::string_view(old.version),
       std::string_view(old.device_type), std::string_view(ota::base64_encode(old.bytes)),
       old.size, std::string_view(old.sha256), std::int64_t{5}}));
  auto s = Store::open(std::move(db.value()), [this] { return now_; });
  ASSERT_TRUE(s) << s.error().message;
  store_ = std::move(s.value());
  EXPECT_EQ(store_->schema_version(), Store::kSchemaVersion);
  auto got = tx([](Tx& t) { return get_image(t, "app", "1.0.0"); });
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got.value().bytes, old.bytes);
  EXPECT_EQ(got.value().size, 70'000);
  EXPECT_EQ(got.value().sha256, old.sha256);
  EXPECT_EQ(got.value().created_at, 5);
  // New images go to the new layout beside it.
  ASSERT_TRUE(tx([&](Tx& t) { return create_image(t, image("app", "2.0.0", 3000)); }));
  auto fresh = tx([](Tx& t) { return get_image(t, "app", "2.0.0"); });
  ASSERT_TRUE(fresh) << fresh.error().message;
  EXPECT_EQ(fresh.value().bytes, image("app", "2.0.0", 3000).bytes);
  auto deleted = tx([](Tx& t) { return delete_image(t, "app", "1.0.0"); });
  ASSERT_TRUE(deleted) << deleted.error().message;
  auto left = tx([](Tx& t) -> Res<std::int64_t> {
    auto r = t.db().query("SELECT COUNT(*) FROM ota_image_bytes WHERE version = '1.0.0'", {});
    if (!r) return fail(r.error());
    return r.value().front().integer(0);
  });
  ASSERT_TRUE(left) << left.error().message;
  EXPECT_EQ(left.value(), 0) << "the bytes went with their image";
}

INSTANTIATE_TEST_SUITE_P(Backends, OtaStoreTest,
                         ::testing::Values(Backend::Sqlite, Backend::Postgres),
                         test::backend_name);

}  // namespace
}  // namespace edgekit::fleetd
