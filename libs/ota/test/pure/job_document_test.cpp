#include "edgekit/ota/job_document.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <string_view>

#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::ota {
namespace {

using OtaJobDocument = edgekit::testing::PureTest;

// The job document of the FreeRTOS OTA agent's unit tests (aws-iot-protocols.md 2.6), with a
// base64 signature of 8 bytes and both protocols.
constexpr std::string_view kFullJob =
    R"({"afr_ota":{"protocols":["MQTT","HTTP"],"streamname":"AFR_OTA-1b2c3d",)"
    R"("files":[{"filepath":"\/device\/fw.bin","filesize":181,"fileid":7,)"
    R"("certfile":"codesign.crt","sig-sha256-ecdsa":"AQIDBAUGBwg=","attr":3,"fileType":0,)"
    R"("update_data_url":"https:\/\/example.com\/fw?X-Amz=1","auth_scheme":"aws.s3.presigned"},)"
    R"({"filepath":"second","filesize":10,"fileid":8,"update_data_url":"u2"}]}})";

struct Buffers {
  std::array<char, 256> scratch{};
  std::array<std::byte, kMaxSignatureSize> signature{};
};

Result<OtaJob, Errc> read(std::string_view text, Buffers& b, std::size_t index = 0) {
  return read_ota_job(text, index, b.scratch, b.signature);
}

TEST_F(OtaJobDocument, ReadsEveryFieldOfTheAgentsJobDocument) {
  Buffers b;
  auto job = read(kFullJob, b);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->protocols, kProtocolMqtt | kProtocolHttp);
  EXPECT_EQ(job->stream_name, "AFR_OTA-1b2c3d");
  EXPECT_EQ(job->file_count, 2u);
  const OtaFile& f = job->file;
  EXPECT_EQ(f.path, "/device/fw.bin");  // unescaped into scratch
  EXPECT_EQ(f.size, 181u);
  EXPECT_EQ(f.id, 7);
  EXPECT_EQ(f.cert_file, "codesign.crt");
  ASSERT_EQ(f.signature.size(), 8u);
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(f.signature[i], static_cast<std::byte>(i + 1));
  EXPECT_EQ(f.attr, 3u);
  EXPECT_EQ(f.file_type, 0);
  EXPECT_EQ(f.update_data_url, "https://example.com/fw?X-Amz=1");
  EXPECT_EQ(f.auth_scheme, "aws.s3.presigned");
}

TEST_F(OtaJobDocument, ReadsTheFileAskedForAndTheOptionalFieldsAsEmpty) {
  Buffers b;
  auto job = read(kFullJob, b, 1);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->file.path, "second");
  EXPECT_EQ(job->file.size, 10u);
  EXPECT_EQ(job->file.id, 8);
  EXPECT_TRUE(job->file.signature.empty());
  EXPECT_TRUE(job->file.cert_file.empty());
  auto beyond = read(kFullJob, b, 2);
  ASSERT_FALSE(beyond.has_value());
  EXPECT_EQ(beyond.error(), Errc::InvalidFiles);
}

TEST_F(OtaJobDocument, ReadsFromAParsedJobDocumentValue) {
  Buffers b;
  auto root = doc::json::parse(kFullJob);
  ASSERT_TRUE(root.has_value());
  auto job = read_ota_job(*root, 0, b.scratch, b.signature);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->file.size, 181u);
}

struct BadCase {
  std::string_view text;
  Errc expected;
};

// One case per named error.
constexpr BadCase kBad[] = {
    {R"([1])", Errc::MalformedJobDocument},
    {R"({"afr_ota":)", Errc::MalformedJobDocument},
    {R"({"operation":"install"})", Errc::NotOtaJob},
    {R"({"afr_ota":[]})", Errc::MalformedJobDocument},
    {R"({"afr_ota":{"streamname":"s","files":[{"filesize":1,"fileid":0}]}})",
     Errc::InvalidProtocols},
    {R"({"afr_ota":{"protocols":[],"streamname":"s","files":[{"filesize":1,"fileid":0}]}})",
     Errc::InvalidProtocols},
    {R"({"afr_ota":{"protocols":["FTP"],"streamname":"s","files":[{"filesize":1,"fileid":0}]}})",
     Errc::InvalidProtocols},
    {R"({"afr_ota":{"protocols":["MQTT"],"files":[{"filesize":1,"fileid":0}]}})",
     Errc::InvalidStreamName},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"a/b","files":[{"filesize":1,"fileid":0}]}})",
     Errc::InvalidStreamName},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":7,"files":[{"filesize":1,"fileid":0}]}})",
     Errc::InvalidStreamName},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s"}})", Errc::InvalidFiles},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[]}})", Errc::InvalidFiles},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[3]}})", Errc::InvalidFiles},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"filesize":1,"fileid":0},3]}})",
     Errc::InvalidFiles},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"fileid":0}]}})",
     Errc::InvalidFileSize},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"filesize":0,"fileid":0}]}})",
     Errc::InvalidFileSize},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"filesize":4294967296,"fileid":0}]}})",
     Errc::InvalidFileSize},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"filesize":1.5,"fileid":0}]}})",
     Errc::InvalidFileSize},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"filesize":1}]}})",
     Errc::InvalidFileId},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"filesize":1,"fileid":256}]}})",
     Errc::InvalidFileId},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"filesize":1,"fileid":-1}]}})",
     Errc::InvalidFileId},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"filepath":1,"filesize":1,"fileid":0}]}})",
     Errc::InvalidFilePath},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"certfile":[],"filesize":1,"fileid":0}]}})",
     Errc::InvalidCertFile},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"sig-sha256-ecdsa":"AQI","filesize":1,"fileid":0}]}})",
     Errc::InvalidSignature},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"sig-sha256-ecdsa":5,"filesize":1,"fileid":0}]}})",
     Errc::InvalidSignature},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"attr":"x","filesize":1,"fileid":0}]}})",
     Errc::InvalidAttr},
    {R"({"afr_ota":{"protocols":["MQTT"],"streamname":"s","files":[{"fileType":300,"filesize":1,"fileid":0}]}})",
     Errc::InvalidFileType},
    {R"({"afr_ota":{"protocols":["HTTP"],"files":[{"filesize":1,"fileid":0}]}})",
     Errc::InvalidUpdateDataUrl},
    {R"({"afr_ota":{"protocols":["HTTP"],"files":[{"update_data_url":"","filesize":1,"fileid":0}]}})",
     Errc::InvalidUpdateDataUrl},
    {R"({"afr_ota":{"protocols":["HTTP"],"files":[{"update_data_url":"u","auth_scheme":false,"filesize":1,"fileid":0}]}})",
     Errc::InvalidAuthScheme},
};

TEST_F(OtaJobDocument, NamesEachMissingOrInvalidField) {
  for (const BadCase& c : kBad) {
    Buffers b;
    auto job = read(c.text, b);
    ASSERT_FALSE(job.has_value()) << c.text;
    EXPECT_EQ(job.error(), c.expected) << c.text;
  }
}

TEST_F(OtaJobDocument, HttpOnlyJobNeedsNoStreamName) {
  Buffers b;
  auto job = read(
      R"({"afr_ota":{"protocols":["HTTP"],"files":[{"update_data_url":"https://h/f","filesize":9,"fileid":0}]}})",
      b);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->protocols, kProtocolHttp);
  EXPECT_TRUE(job->stream_name.empty());
}

TEST_F(OtaJobDocument, ASignatureOrEscapedStringLargerThanTheCallersBufferIsThatFieldsError) {
  std::array<std::byte, 4> small_sig{};
  std::array<char, 256> scratch{};
  auto job = read_ota_job(kFullJob, 0, scratch, small_sig);
  ASSERT_FALSE(job.has_value());
  EXPECT_EQ(job.error(), Errc::InvalidSignature);
  std::array<std::byte, kMaxSignatureSize> sig{};
  std::array<char, 4> small_scratch{};
  job = read_ota_job(kFullJob, 0, small_scratch, sig);
  ASSERT_FALSE(job.has_value());
  EXPECT_EQ(job.error(), Errc::InvalidFilePath);  // "\/device\/fw.bin" must be unescaped
}

}  // namespace
}  // namespace edgekit::ota
