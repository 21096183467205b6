#include "edgekit/provisioning/topics.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string_view>

#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::provisioning {
namespace {

using namespace std::string_view_literals;
using ProvisioningTopics = edgekit::testing::PureTest;
using ProvisioningErrc = edgekit::testing::PureTest;

std::string_view build(Api api, Format f, TopicKind k, std::span<char> buf,
                       std::string_view tmpl = {}) {
  auto t = topic(api, f, k, buf, tmpl);
  EXPECT_TRUE(t.has_value());
  return t ? *t : std::string_view{};
}

TEST_F(ProvisioningTopics, BuildsEveryRequestAndReplyTopicExactly) {
  std::array<char, kMaxTopicLength> b{};
  EXPECT_EQ(build(Api::CreateKeysAndCertificate, Format::Json, TopicKind::Request, b),
            "$aws/certificates/create/json");
  EXPECT_EQ(build(Api::CreateKeysAndCertificate, Format::Cbor, TopicKind::Accepted, b),
            "$aws/certificates/create/cbor/accepted");
  EXPECT_EQ(build(Api::CreateKeysAndCertificate, Format::Json, TopicKind::Rejected, b),
            "$aws/certificates/create/json/rejected");
  EXPECT_EQ(build(Api::CreateCertificateFromCsr, Format::Json, TopicKind::Request, b),
            "$aws/certificates/create-from-csr/json");
  EXPECT_EQ(build(Api::CreateCertificateFromCsr, Format::Cbor, TopicKind::Rejected, b),
            "$aws/certificates/create-from-csr/cbor/rejected");
  EXPECT_EQ(build(Api::RegisterThing, Format::Json, TopicKind::Request, b, "FleetTemplate"),
            "$aws/provisioning-templates/FleetTemplate/provision/json");
  EXPECT_EQ(build(Api::RegisterThing, Format::Cbor, TopicKind::Accepted, b, "t-1_x"),
            "$aws/provisioning-templates/t-1_x/provision/cbor/accepted");
}

TEST_F(ProvisioningTopics, LongestTopicFitsTheAdvertisedMaximum) {
  std::array<char, kMaxTopicLength> b{};
  const std::string_view tmpl = "abcdefghijklmnopqrstuvwxyz0123456789";  // 36
  auto t = topic(Api::RegisterThing, Format::Json, TopicKind::Rejected, b, tmpl);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->size(), 88u);
}

TEST_F(ProvisioningTopics, RefusesABufferTooSmall) {
  std::array<char, 20> b{};
  auto t = topic(Api::CreateKeysAndCertificate, Format::Json, TopicKind::Request, b);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error(), Errc::BufferTooSmall);
  std::array<char, 29> exact{};  // "$aws/certificates/create/json" is 29 bytes
  EXPECT_TRUE(topic(Api::CreateKeysAndCertificate, Format::Json, TopicKind::Request, exact));
}

TEST_F(ProvisioningTopics, RefusesInvalidTemplateNames) {
  std::array<char, kMaxTopicLength> b{};
  for (std::string_view bad : {""sv, "a/b"sv, "a+"sv, "#"sv, "with space"sv, "a:b"sv,
                               "abcdefghijklmnopqrstuvwxyz01234567890"sv /* 37 */}) {
    auto t = topic(Api::RegisterThing, Format::Json, TopicKind::Request, b, bad);
    ASSERT_FALSE(t) << bad;
    EXPECT_EQ(t.error(), Errc::InvalidArgument) << bad;
  }
}

TEST_F(ProvisioningTopics, MatchesEveryTopicItBuilds) {
  std::array<char, kMaxTopicLength> b{};
  for (Api api :
       {Api::CreateKeysAndCertificate, Api::CreateCertificateFromCsr, Api::RegisterThing}) {
    for (Format f : {Format::Json, Format::Cbor}) {
      for (TopicKind k : {TopicKind::Request, TopicKind::Accepted, TopicKind::Rejected}) {
        const std::string_view t = build(api, f, k, b, "Tmpl");
        auto m = match_topic(t);
        ASSERT_TRUE(m) << t;
        EXPECT_EQ(m->api, api);
        EXPECT_EQ(m->format, f);
        EXPECT_EQ(m->kind, k);
        EXPECT_EQ(m->template_name, api == Api::RegisterThing ? "Tmpl" : "");
        if (k != TopicKind::Request) {
          EXPECT_TRUE(is_reply_topic(t, api, f, k, "Tmpl"));
        }
      }
    }
  }
}

TEST_F(ProvisioningTopics, MatchRefusesNearMisses) {
  for (std::string_view t :
       {"$aws/certificates/create"sv, "$aws/certificates/create/"sv,
        "$aws/certificates/create/xml"sv, "$aws/certificates/create/json/"sv,
        "$aws/certificates/create/json/accepted/x"sv, "$aws/certificates/create/jsonaccepted"sv,
        "$aws/certificates/create/json/accepte"sv, "$aws/certificates/create-from-csr"sv,
        "$aws/provisioning-templates//provision/json"sv,
        "$aws/provisioning-templates/t/provision"sv, "$aws/provisioning-templates/t/json"sv,
        "$aws/provisioning-templates/t/provision/json/accepted/"sv, "$aws/things/t/shadow/get"sv,
        ""sv, "aws/certificates/create/json"sv}) {
    auto m = match_topic(t);
    ASSERT_FALSE(m) << t;
    EXPECT_EQ(m.error(), Errc::TopicMismatch);
  }
}

TEST_F(ProvisioningTopics, ReplyTopicOfAnotherTemplateOrFormatIsNotOurs) {
  EXPECT_FALSE(is_reply_topic("$aws/provisioning-templates/B/provision/json/accepted",
                              Api::RegisterThing, Format::Json, TopicKind::Accepted, "A"));
  EXPECT_FALSE(is_reply_topic("$aws/certificates/create/cbor/accepted",
                              Api::CreateKeysAndCertificate, Format::Json, TopicKind::Accepted));
  EXPECT_FALSE(is_reply_topic("$aws/certificates/create/json/rejected",
                              Api::CreateKeysAndCertificate, Format::Json, TopicKind::Accepted));
}

struct RejectionCase {
  std::int64_t status;
  std::string_view code;
  Errc expected;
};

void expect_mapping(std::span<const RejectionCase> cases) {
  for (const RejectionCase& c : cases) {
    EXPECT_EQ(rejection_errc(c.status, c.code), c.expected) << c.status << " " << c.code;
  }
}

TEST_F(ProvisioningErrc, NamesEveryDocumentedRejection) {
  constexpr RejectionCase kCases[] = {
      {400, "InvalidCertificateOwnershipToken", Errc::InvalidCertificateOwnershipToken},
      {400, "InvalidParameters", Errc::InvalidParameters},
      {403, "ACCESS_DENIED", Errc::AccessDenied},
      {409, "ResourceConflictsException", Errc::ResourceConflict},
      {400, "ThrottlingException", Errc::Throttled},
      {500, "InternalFailure", Errc::ServiceFailure},
      {503, "ServiceUnavailable", Errc::ServiceFailure},
      // fleetd's codes where the fact sheet is silent.
      {404, "ResourceNotFound", Errc::ResourceNotFound},
      {400, "InvalidRequest", Errc::InvalidRequest},
      {400, "InvalidPayload", Errc::InvalidRequest},
      {400, "InvalidCertificateSigningRequest", Errc::InvalidRequest},
  };
  expect_mapping(kCases);
}

TEST_F(ProvisioningErrc, MapsUnknownCodesByStatus) {
  constexpr RejectionCase kCases[] = {
      {403, "Forbidden", Errc::AccessDenied},
      {401, "", Errc::AccessDenied},
      {429, "TooMany", Errc::Throttled},
      {502, "x", Errc::ServiceFailure},
      {400, "SomethingNew", Errc::RejectedOther},
      {404, "Gone", Errc::ResourceNotFound},
      {0, "", Errc::RejectedOther},
      // Codes are exact: AWS strings are case-sensitive.
      {400, "invalidparameters", Errc::RejectedOther},
  };
  expect_mapping(kCases);
}

TEST_F(ProvisioningErrc, RetryableOnlyForTransientFailures) {
  EXPECT_TRUE(is_retryable(Errc::Throttled));
  EXPECT_TRUE(is_retryable(Errc::ServiceFailure));
  EXPECT_TRUE(is_retryable(Errc::Timeout));
  EXPECT_FALSE(is_retryable(Errc::InvalidParameters));
  EXPECT_FALSE(is_retryable(Errc::InvalidCertificateOwnershipToken));
  EXPECT_FALSE(is_retryable(Errc::AccessDenied));
  EXPECT_FALSE(is_retryable(Errc::MalformedReply));
  EXPECT_TRUE(is_rejection(Errc::RejectedOther));
  EXPECT_FALSE(is_rejection(Errc::MalformedReply));
}

}  // namespace
}  // namespace edgekit::provisioning
