#include "edgekit/provisioning/documents.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string_view>

#include "edgekit/testing/alloc_guard.hpp"
#include "edgekit/testing/cbor_builder.hpp"

namespace edgekit::provisioning {
namespace {

using namespace std::string_view_literals;
using ProvisioningDocuments = edgekit::testing::PureTest;

// A CBOR item built by hand, not by the writer under test (edgekit/testing/cbor_builder.hpp).
using Cbor = edgekit::testing::CborBuilder<2048>;

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::string_view text(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

constexpr std::string_view kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF";

TEST_F(ProvisioningDocuments, WritesTheCreateKeysRequestAsAnEmptyObject) {
  std::array<std::uint8_t, 8> out{};
  auto n = write_create_keys_request(Format::Json, out);
  ASSERT_TRUE(n);
  EXPECT_EQ(text({out.data(), *n}), "{}");
  n = write_create_keys_request(Format::Cbor, out);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(out[0], 0xA0);
}

TEST_F(ProvisioningDocuments, WritesTheCsrRequestWithItsExactFieldName) {
  std::array<std::uint8_t, 256> out{};
  const std::string_view csr =
      "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";
  auto n = write_create_from_csr_request(Format::Json, csr, out);
  ASSERT_TRUE(n);
  EXPECT_EQ(
      text({out.data(), *n}),
      R"({"certificateSigningRequest":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"})");
  n = write_create_from_csr_request(Format::Cbor, csr, out);
  ASSERT_TRUE(n);
  Cbor expected;
  expected.map(1).text("certificateSigningRequest").text(csr);
  EXPECT_EQ(text({out.data(), *n}), text(expected.view()));
  EXPECT_EQ(write_create_from_csr_request(Format::Json, "", out).error(), Errc::InvalidArgument);
  std::array<std::uint8_t, 20> small{};
  EXPECT_EQ(write_create_from_csr_request(Format::Json, csr, small).error(), Errc::BufferTooSmall);
}

TEST_F(ProvisioningDocuments, WritesRegisterThingWithTokenAndParameters) {
  std::array<std::uint8_t, 256> out{};
  const std::array<KeyValue, 2> params{KeyValue{"SerialNumber", "SN-1"}, KeyValue{"Model", "m\"1"}};
  auto n = write_register_thing_request(Format::Json, "tok", params, out);
  ASSERT_TRUE(n);
  EXPECT_EQ(
      text({out.data(), *n}),
      R"({"certificateOwnershipToken":"tok","parameters":{"SerialNumber":"SN-1","Model":"m\"1"}})");
  n = write_register_thing_request(Format::Json, "tok", {}, out);
  ASSERT_TRUE(n);
  EXPECT_EQ(text({out.data(), *n}), R"({"certificateOwnershipToken":"tok"})");
  n = write_register_thing_request(Format::Cbor, "tok", params, out);
  ASSERT_TRUE(n);
  Cbor expected;
  expected.map(2)
      .text("certificateOwnershipToken")
      .text("tok")
      .text("parameters")
      .map(2)
      .text("SerialNumber")
      .text("SN-1")
      .text("Model")
      .text("m\"1");
  EXPECT_EQ(text({out.data(), *n}), text(expected.view()));
}

TEST_F(ProvisioningDocuments, RegisterThingRefusesBadArguments) {
  std::array<std::uint8_t, 256> out{};
  EXPECT_EQ(write_register_thing_request(Format::Json, "", {}, out).error(), Errc::InvalidArgument);
  const std::array<KeyValue, 2> dup{KeyValue{"A", "1"}, KeyValue{"A", "2"}};
  EXPECT_EQ(write_register_thing_request(Format::Json, "t", dup, out).error(),
            Errc::InvalidArgument);
  const std::array<KeyValue, 1> empty_key{KeyValue{"", "1"}};
  EXPECT_EQ(write_register_thing_request(Format::Cbor, "t", empty_key, out).error(),
            Errc::InvalidArgument);
  std::array<KeyValue, kMaxParameters + 1> many{};
  EXPECT_EQ(write_register_thing_request(Format::Json, "t", many, out).error(),
            Errc::InvalidArgument);
}

TEST_F(ProvisioningDocuments, ReadsKeysAcceptedInJsonUnescapingThePem) {
  const std::string_view reply =
      R"({"certificateId":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF",)"
      R"("certificatePem":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",)"
      R"("privateKey":"-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n",)"
      R"("certificateOwnershipToken":"eyJ0b2tlbiI6ImFiYyJ9","extra":[1,2]})";
  std::array<char, 512> scratch{};
  auto a =
      read_certificate_accepted(Format::Json, Api::CreateKeysAndCertificate, bytes(reply), scratch);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->certificate_id, kId);
  EXPECT_EQ(a->certificate_pem, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  EXPECT_EQ(a->private_key, "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n");
  EXPECT_EQ(a->ownership_token, "eyJ0b2tlbiI6ImFiYyJ9");
  // The CSR flow's reply has no private key and needs none.
  auto c =
      read_certificate_accepted(Format::Json, Api::CreateCertificateFromCsr, bytes(reply), scratch);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->private_key.empty());
  std::array<char, 16> tiny{};
  EXPECT_EQ(
      read_certificate_accepted(Format::Json, Api::CreateKeysAndCertificate, bytes(reply), tiny)
          .error(),
      Errc::BufferTooSmall);
}

TEST_F(ProvisioningDocuments, ReadsCsrAcceptedInCbor) {
  Cbor reply;
  reply.map(3)
      .text("certificateId")
      .text(kId)
      .text("certificatePem")
      .text("PEM\n")
      .text("certificateOwnershipToken")
      .text("tok");
  std::array<char, 64> scratch{};
  auto a =
      read_certificate_accepted(Format::Cbor, Api::CreateCertificateFromCsr, reply.view(), scratch);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->certificate_id, kId);
  EXPECT_EQ(a->certificate_pem, "PEM\n");
  EXPECT_EQ(a->ownership_token, "tok");
  // The keys flow requires privateKey.
  EXPECT_EQ(
      read_certificate_accepted(Format::Cbor, Api::CreateKeysAndCertificate, reply.view(), scratch)
          .error(),
      Errc::MalformedReply);
}

TEST_F(ProvisioningDocuments, CertificateAcceptedRefusesMalformedReplies) {
  std::array<char, 256> scratch{};
  for (
      std::string_view reply : {
          ""sv,
          "{"sv,
          "[]"sv,
          "\"x\""sv,
          "null"sv,
          R"({"certificateId":"abc","certificatePem":"P","certificateOwnershipToken":"t"})"sv,
          R"({"certificatePem":"P","certificateOwnershipToken":"t"})"sv,
          R"({"certificateId":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg","certificatePem":"P","certificateOwnershipToken":"t"})"sv,
          R"({"certificateId":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","certificatePem":"","certificateOwnershipToken":"t"})"sv,
          R"({"certificateId":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","certificatePem":7,"certificateOwnershipToken":"t"})"sv,
          R"({"certificateId":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","certificatePem":"P"})"sv,
          R"({"certificateId":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","certificatePem":"P","certificateOwnershipToken":"t","certificateOwnershipToken":"u"})"sv,
      }) {
    auto a = read_certificate_accepted(Format::Json, Api::CreateCertificateFromCsr, bytes(reply),
                                       scratch);
    ASSERT_FALSE(a) << reply;
    EXPECT_EQ(a.error(), Errc::MalformedReply) << reply;
  }
  // JSON on a CBOR topic and the other way round.
  EXPECT_FALSE(
      read_certificate_accepted(Format::Cbor, Api::CreateCertificateFromCsr, bytes("{}"), scratch));
  Cbor map;
  map.map(0);
  EXPECT_FALSE(
      read_certificate_accepted(Format::Json, Api::CreateCertificateFromCsr, map.view(), scratch));
  // CBOR: a truncated item, a non-text key, a byte string where text is due.
  Cbor truncated;
  truncated.map(1).text("certificateId");
  EXPECT_EQ(read_certificate_accepted(Format::Cbor, Api::CreateCertificateFromCsr, truncated.view(),
                                      scratch)
                .error(),
            Errc::MalformedReply);
  Cbor int_key;
  int_key.map(1).uint(1).text("x");
  EXPECT_FALSE(read_certificate_accepted(Format::Cbor, Api::CreateCertificateFromCsr,
                                         int_key.view(), scratch));
  Cbor byte_pem;
  byte_pem.map(3)
      .text("certificateId")
      .text(kId)
      .text("certificatePem")
      .raw(0x41)
      .raw('P')
      .text("certificateOwnershipToken")
      .text("t");
  EXPECT_EQ(read_certificate_accepted(Format::Cbor, Api::CreateCertificateFromCsr, byte_pem.view(),
                                      scratch)
                .error(),
            Errc::MalformedReply);
  EXPECT_EQ(
      read_certificate_accepted(Format::Json, Api::RegisterThing, bytes("{}"), scratch).error(),
      Errc::InvalidArgument);
}

TEST_F(ProvisioningDocuments, ReadsRegisterThingAcceptedInBothFormats) {
  std::array<KeyValue, 4> config{};
  std::array<char, 128> scratch{};
  const std::string_view json =
      R"({"deviceConfiguration":{"Fallback":"false","Interval":30,"On":true},"thingName":"thing:1_a-b"})";
  auto a = read_register_thing_accepted(Format::Json, bytes(json), config, scratch);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->thing_name, "thing:1_a-b");
  ASSERT_EQ(a->configuration_count, 3u);
  EXPECT_EQ(config[0].key, "Fallback");
  EXPECT_EQ(config[0].value, "false");
  EXPECT_EQ(config[1].value, "30");
  EXPECT_EQ(config[2].value, "true");
  Cbor cbor;
  cbor.map(2).text("deviceConfiguration").map(1).text("k").text("v").text("thingName").text("t1");
  a = read_register_thing_accepted(Format::Cbor, cbor.view(), config, scratch);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->thing_name, "t1");
  ASSERT_EQ(a->configuration_count, 1u);
  EXPECT_EQ(config[0].key, "k");
  EXPECT_EQ(config[0].value, "v");
  // An empty object, and no deviceConfiguration at all, are both "none".
  a = read_register_thing_accepted(
      Format::Json, bytes(R"({"deviceConfiguration":{},"thingName":"x"})"), config, scratch);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->configuration_count, 0u);
  a = read_register_thing_accepted(Format::Json, bytes(R"({"thingName":"x"})"), config, scratch);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->configuration_count, 0u);
}

TEST_F(ProvisioningDocuments, RegisterThingAcceptedRefusesMalformedReplies) {
  std::array<KeyValue, 2> config{};
  std::array<char, 64> scratch{};
  for (std::string_view reply : {
           R"({})"sv,
           R"({"thingName":""})"sv,
           R"({"thingName":"a/b"})"sv,
           R"({"thingName":1})"sv,
           R"({"thingName":"x","deviceConfiguration":"a"})"sv,
           R"({"thingName":"x","deviceConfiguration":{"a":{"b":"c"}}})"sv,
           R"({"thingName":"x","deviceConfiguration":{"a":[1]}})"sv,
           R"({"thingName":"x","deviceConfiguration":{"a":1.5}})"sv,
           R"({"thingName":"x","deviceConfiguration":{"a":"1","b":"2","c":"3"}})"sv,
       }) {
    auto a = read_register_thing_accepted(Format::Json, bytes(reply), config, scratch);
    ASSERT_FALSE(a) << reply;
    EXPECT_EQ(a.error(), Errc::MalformedReply) << reply;
  }
}

TEST_F(ProvisioningDocuments, ReadsEveryDocumentedRejectionInBothFormats) {
  struct Case {
    std::int64_t status;
    std::string_view code;
    Errc errc;
  };
  std::array<char, 128> scratch{};
  for (const Case& c :
       {Case{400, "InvalidCertificateOwnershipToken", Errc::InvalidCertificateOwnershipToken},
        Case{400, "InvalidParameters", Errc::InvalidParameters},
        Case{403, "ACCESS_DENIED", Errc::AccessDenied},
        Case{409, "ResourceConflictsException", Errc::ResourceConflict},
        Case{429, "ThrottlingException", Errc::Throttled},
        Case{500, "InternalFailure", Errc::ServiceFailure},
        Case{403, "Unknown403", Errc::AccessDenied},
        Case{404, "ResourceNotFound", Errc::ResourceNotFound},
        Case{400, "InvalidRequest", Errc::InvalidRequest},
        Case{418, "Teapot", Errc::RejectedOther}}) {
    Cbor cbor;
    cbor.map(3)
        .text("statusCode")
        .uint(static_cast<std::size_t>(c.status))
        .text("errorCode")
        .text(c.code)
        .text("errorMessage")
        .text("why");
    auto r = read_rejected(Format::Cbor, cbor.view(), scratch);
    ASSERT_TRUE(r) << c.code;
    EXPECT_EQ(r->status_code, c.status);
    EXPECT_EQ(r->error_code, c.code);
    EXPECT_EQ(r->error_message, "why");
    EXPECT_EQ(r->errc, c.errc) << c.code;
  }
  auto j =
      read_rejected(Format::Json,
                    bytes(R"({"statusCode":400,"errorCode":"InvalidCertificateOwnershipToken",)"
                          R"("errorMessage":"Certificate ownership token cannot be empty."})"),
                    scratch);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->errc, Errc::InvalidCertificateOwnershipToken);
  EXPECT_EQ(j->error_message, "Certificate ownership token cannot be empty.");
}

TEST_F(ProvisioningDocuments, RejectionReaderToleratesMissingFieldsButNotWrongTypes) {
  std::array<char, 64> scratch{};
  auto r = read_rejected(Format::Json, bytes("{}"), scratch);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status_code, 0);
  EXPECT_EQ(r->errc, Errc::RejectedOther);
  for (std::string_view bad :
       {R"({"statusCode":"400"})"sv, R"({"statusCode":4.5})"sv, R"({"errorCode":1})"sv,
        R"({"errorMessage":null})"sv, "[]"sv, "x"sv}) {
    auto b = read_rejected(Format::Json, bytes(bad), scratch);
    ASSERT_FALSE(b) << bad;
    EXPECT_EQ(b.error(), Errc::MalformedReply) << bad;
  }
}

TEST_F(ProvisioningDocuments, CertificateIdAndThingNameChecks) {
  EXPECT_TRUE(valid_certificate_id(kId));
  EXPECT_FALSE(valid_certificate_id(kId.substr(1)));
  EXPECT_TRUE(valid_thing_name("a:b_c-D9"));
  EXPECT_FALSE(valid_thing_name(""));
  EXPECT_FALSE(valid_thing_name("a b"));
}

}  // namespace
}  // namespace edgekit::provisioning
