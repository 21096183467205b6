#include "edgekit/ota/topics.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string_view>

#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::ota {
namespace {

using OtaTopics = edgekit::testing::PureTest;

struct Case {
  StreamTopic kind;
  Format format;
  std::string_view expected;
};

// Every topic of aws-iot-protocols.md 3.1 for thing "lamp-1" and stream "AFR_OTA-42".
constexpr Case kEveryTopic[] = {
    {StreamTopic::Get, Format::Json, "$aws/things/lamp-1/streams/AFR_OTA-42/get/json"},
    {StreamTopic::Get, Format::Cbor, "$aws/things/lamp-1/streams/AFR_OTA-42/get/cbor"},
    {StreamTopic::Data, Format::Json, "$aws/things/lamp-1/streams/AFR_OTA-42/data/json"},
    {StreamTopic::Data, Format::Cbor, "$aws/things/lamp-1/streams/AFR_OTA-42/data/cbor"},
    {StreamTopic::Describe, Format::Json, "$aws/things/lamp-1/streams/AFR_OTA-42/describe/json"},
    {StreamTopic::Describe, Format::Cbor, "$aws/things/lamp-1/streams/AFR_OTA-42/describe/cbor"},
    {StreamTopic::Description, Format::Json,
     "$aws/things/lamp-1/streams/AFR_OTA-42/description/json"},
    {StreamTopic::Description, Format::Cbor,
     "$aws/things/lamp-1/streams/AFR_OTA-42/description/cbor"},
    {StreamTopic::Rejected, Format::Json, "$aws/things/lamp-1/streams/AFR_OTA-42/rejected/json"},
    {StreamTopic::Rejected, Format::Cbor, "$aws/things/lamp-1/streams/AFR_OTA-42/rejected/cbor"},
};

TEST_F(OtaTopics, BuildsAndMatchesEveryStreamTopic) {
  for (const Case& c : kEveryTopic) {
    std::array<char, kMaxTopicLength> buf{};
    auto t = stream_topic("lamp-1", "AFR_OTA-42", c.kind, c.format, buf);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(*t, c.expected);
    auto m = match_stream_topic(c.expected);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->thing, "lamp-1");
    EXPECT_EQ(m->stream_id, "AFR_OTA-42");
    EXPECT_TRUE(m->kind == c.kind);
    EXPECT_TRUE(m->format == c.format);
  }
}

TEST_F(OtaTopics, TheLongestTopicFitsKMaxTopicLengthExactly) {
  std::array<char, 128> thing{};
  std::array<char, 128> stream{};
  thing.fill('t');
  stream.fill('s');
  const std::string_view th(thing.data(), thing.size());
  const std::string_view st(stream.data(), stream.size());
  std::array<char, kMaxTopicLength> buf{};
  auto t = stream_topic(th, st, StreamTopic::Description, Format::Json, buf);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->size(), kMaxTopicLength);
  auto small = stream_topic(th, st, StreamTopic::Description, Format::Json,
                            std::span<char>(buf).first(kMaxTopicLength - 1));
  ASSERT_FALSE(small.has_value());
  EXPECT_EQ(small.error(), Errc::BufferTooSmall);
}

TEST_F(OtaTopics, RefusesNamesThatAreNotTopicLevels) {
  std::array<char, kMaxTopicLength> buf{};
  std::array<char, 129> long_name{};
  long_name.fill('a');
  const std::string_view too_long(long_name.data(), long_name.size());
  for (std::string_view bad : {std::string_view{}, std::string_view("a/b"), std::string_view("+"),
                               std::string_view("#"), too_long}) {
    auto a = stream_topic(bad, "s", StreamTopic::Get, Format::Json, buf);
    ASSERT_FALSE(a.has_value());
    EXPECT_EQ(a.error(), Errc::InvalidArgument);
    auto b = stream_topic("t", bad, StreamTopic::Get, Format::Json, buf);
    ASSERT_FALSE(b.has_value());
    EXPECT_EQ(b.error(), Errc::InvalidArgument);
  }
  // Stream ids have no ':' (CreateStream's pattern); thing names may.
  EXPECT_FALSE(stream_topic("t", "a:b", StreamTopic::Get, Format::Json, buf).has_value());
  EXPECT_TRUE(stream_topic("a:b", "s", StreamTopic::Get, Format::Json, buf).has_value());
}

TEST_F(OtaTopics, MatcherRefusesAnythingButAnExactStreamTopic) {
  for (std::string_view t : {
           "$aws/things/lamp-1/streams/s/get",
           "$aws/things/lamp-1/streams/s/get/",
           "$aws/things/lamp-1/streams/s/get/xml",
           "$aws/things/lamp-1/streams/s/get/json/accepted",
           "$aws/things/lamp-1/streams/s/put/json",
           "$aws/things/lamp-1/streams//get/json",
           "$aws/things//streams/s/get/json",
           "$aws/things/lamp-1/stream/s/get/json",
           "$aws/things/lamp-1/jobs/get",
           "aws/things/lamp-1/streams/s/get/json",
       }) {
    auto m = match_stream_topic(t);
    ASSERT_FALSE(m.has_value()) << t;
    EXPECT_EQ(m.error(), Errc::TopicMismatch);
  }
}

}  // namespace
}  // namespace edgekit::ota
