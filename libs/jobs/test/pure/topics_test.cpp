#include "edgekit/jobs/topics.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string_view>

#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::jobs {
namespace {

using JobsTopics = edgekit::testing::PureTest;

// 128 and 64 bytes: the longest thing name and job id AWS allows (aws-iot-protocols.md 0).
constexpr std::string_view kLongThing =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-"
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
constexpr std::string_view kLongJob =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";

struct Case {
  Operation op;
  TopicKind kind;
  std::string_view job;
  std::string_view expected;
};

// Every topic of the fact sheet's table 2.1 for thing "lamp-1".
constexpr Case kEveryTopic[] = {
    {Operation::GetPending, TopicKind::Request, "", "$aws/things/lamp-1/jobs/get"},
    {Operation::GetPending, TopicKind::Accepted, "", "$aws/things/lamp-1/jobs/get/accepted"},
    {Operation::GetPending, TopicKind::Rejected, "", "$aws/things/lamp-1/jobs/get/rejected"},
    {Operation::StartNext, TopicKind::Request, "", "$aws/things/lamp-1/jobs/start-next"},
    {Operation::StartNext, TopicKind::Accepted, "", "$aws/things/lamp-1/jobs/start-next/accepted"},
    {Operation::StartNext, TopicKind::Rejected, "", "$aws/things/lamp-1/jobs/start-next/rejected"},
    {Operation::Describe, TopicKind::Request, "job-7", "$aws/things/lamp-1/jobs/job-7/get"},
    {Operation::Describe, TopicKind::Accepted, "job-7",
     "$aws/things/lamp-1/jobs/job-7/get/accepted"},
    {Operation::Describe, TopicKind::Rejected, "job-7",
     "$aws/things/lamp-1/jobs/job-7/get/rejected"},
    {Operation::Describe, TopicKind::Request, "$next", "$aws/things/lamp-1/jobs/$next/get"},
    {Operation::Describe, TopicKind::Accepted, "$next",
     "$aws/things/lamp-1/jobs/$next/get/accepted"},
    {Operation::Update, TopicKind::Request, "job-7", "$aws/things/lamp-1/jobs/job-7/update"},
    {Operation::Update, TopicKind::Accepted, "job-7",
     "$aws/things/lamp-1/jobs/job-7/update/accepted"},
    {Operation::Update, TopicKind::Rejected, "job-7",
     "$aws/things/lamp-1/jobs/job-7/update/rejected"},
    {Operation::Notify, TopicKind::Request, "", "$aws/things/lamp-1/jobs/notify"},
    {Operation::NotifyNext, TopicKind::Request, "", "$aws/things/lamp-1/jobs/notify-next"},
    // Job ids that look like operations are job ids where a job id stands.
    {Operation::Describe, TopicKind::Request, "get", "$aws/things/lamp-1/jobs/get/get"},
    {Operation::Update, TopicKind::Accepted, "notify",
     "$aws/things/lamp-1/jobs/notify/update/accepted"},
    {Operation::Describe, TopicKind::Rejected, "start-next",
     "$aws/things/lamp-1/jobs/start-next/get/rejected"},
};

TEST_F(JobsTopics, BuildsAndMatchesEveryTopicExactly) {
  std::array<char, kMaxTopicLength> b{};
  for (const Case& c : kEveryTopic) {
    auto t = topic("lamp-1", c.op, c.kind, c.job, b);
    ASSERT_TRUE(t) << c.expected;
    EXPECT_EQ(*t, c.expected);
    auto m = match_topic(c.expected);
    ASSERT_TRUE(m) << c.expected;
    EXPECT_EQ(m->thing, "lamp-1");
    EXPECT_EQ(m->op, c.op) << c.expected;
    EXPECT_EQ(m->kind, c.kind) << c.expected;
    EXPECT_EQ(m->job_id, c.job) << c.expected;
  }
}

TEST_F(JobsTopics, TheLongestNamesFitKMaxTopicLength) {
  std::array<char, kMaxTopicLength> b{};
  auto t = topic(kLongThing, Operation::Update, TopicKind::Accepted, kLongJob, b);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->size(), kMaxTopicLength);
  auto m = match_topic(*t);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->thing, kLongThing);
  EXPECT_EQ(m->job_id, kLongJob);
}

TEST_F(JobsTopics, RefusesNamesOutsideTheLimits) {
  std::array<char, kMaxTopicLength + 8> b{};
  char thing129[129];
  for (std::size_t i = 0; i < sizeof thing129; ++i) thing129[i] = 'a';
  char job65[65];
  for (std::size_t i = 0; i < sizeof job65; ++i) job65[i] = 'j';
  EXPECT_TRUE(valid_thing_name(kLongThing));
  EXPECT_FALSE(valid_thing_name({thing129, 129}));
  EXPECT_FALSE(valid_thing_name(""));
  EXPECT_FALSE(valid_thing_name("lamp/1"));
  EXPECT_FALSE(valid_thing_name("lamp+"));
  EXPECT_TRUE(valid_job_id(kLongJob));
  EXPECT_FALSE(valid_job_id({job65, 65}));
  EXPECT_FALSE(valid_job_id(""));
  EXPECT_FALSE(valid_job_id("a:b"));  // ':' is allowed in thing names, not in job ids
  EXPECT_FALSE(valid_job_id("$next"));
  EXPECT_FALSE(valid_job_id("a b"));
  const auto req = TopicKind::Request;
  EXPECT_EQ(topic({thing129, 129}, Operation::GetPending, req, "", b).error(),
            Errc::InvalidArgument);
  EXPECT_EQ(topic("t", Operation::Update, req, {job65, 65}, b).error(), Errc::InvalidArgument);
  EXPECT_EQ(topic("t", Operation::Update, req, "", b).error(), Errc::InvalidArgument);
  EXPECT_EQ(topic("t", Operation::Update, req, "$next", b).error(), Errc::InvalidArgument);
  EXPECT_EQ(topic("t", Operation::Describe, req, "", b).error(), Errc::InvalidArgument);
  EXPECT_EQ(topic("t", Operation::GetPending, req, "job", b).error(), Errc::InvalidArgument);
  EXPECT_EQ(topic("t", Operation::Notify, TopicKind::Accepted, "", b).error(),
            Errc::InvalidArgument);
  EXPECT_EQ(topic("t", Operation::NotifyNext, TopicKind::Rejected, "", b).error(),
            Errc::InvalidArgument);
}

TEST_F(JobsTopics, BuildsReplyFilters) {
  std::array<char, kMaxTopicLength + 2> b{};
  auto f = reply_filter("t", Operation::StartNext, "", b);
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, "$aws/things/t/jobs/start-next/+");
  f = reply_filter("t", Operation::Update, "j1", b);
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, "$aws/things/t/jobs/j1/update/+");
  f = reply_filter("t", Operation::Describe, "$next", b);
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, "$aws/things/t/jobs/$next/get/+");
  EXPECT_EQ(reply_filter("t", Operation::Notify, "", b).error(), Errc::InvalidArgument);
}

TEST_F(JobsTopics, MatchesNothingElse) {
  for (std::string_view bad : {
           "",
           "$aws/things/",
           "$aws/things/lamp-1",
           "$aws/things/lamp-1/jobs",
           "$aws/things/lamp-1/jobs/",
           "$aws/things/lamp-1/jobs/get/",
           "$aws/things/lamp-1/jobs/get/accepted/",
           "$aws/things/lamp-1/jobs/get/other",
           "$aws/things/lamp-1/jobs/notify/accepted",
           "$aws/things/lamp-1/jobs/notify-next/rejected",
           "$aws/things/lamp-1/jobs/start-next/update/x",
           "$aws/things/lamp-1/jobs/job/delete",
           "$aws/things/lamp-1/jobs/job/get/accepted/x",
           "$aws/things/lamp-1/jobs/$next/update",
           "$aws/things/lamp-1/jobs/$nex/get",
           "$aws/things/lamp-1/jobs/a:b/get",
           "$aws/things/lamp-1/jobs//get",
           "$aws/things/lamp-1/jobs/GET",
           "$aws/things/lamp 1/jobs/get",
           "$aws/things//jobs/get",
           "$aws/things/lamp-1/shadow/get",
           "$aws/things/lamp-1/jobs/j/get/accepted/extra/levels",
           "$AWS/things/lamp-1/jobs/get",
           "aws/things/lamp-1/jobs/get",
       }) {
    auto m = match_topic(bad);
    EXPECT_FALSE(m) << bad;
    if (!m) {
      EXPECT_EQ(m.error(), Errc::TopicMismatch) << bad;
    }
  }
}

// Every topic at every buffer length: BufferTooSmall below its size, never a byte written past
// the buffer, the exact topic at its size.
TEST_F(JobsTopics, RefusesABufferTooSmallAtEveryLength) {
  for (const Case& c : kEveryTopic) {
    for (std::size_t n = 0; n < c.expected.size(); ++n) {
      std::array<char, kMaxTopicLength + 8> b{};
      b.fill('#');
      auto t = topic("lamp-1", c.op, c.kind, c.job, {b.data(), n});
      ASSERT_FALSE(t) << c.expected << " at " << n;
      EXPECT_EQ(t.error(), Errc::BufferTooSmall);
      for (std::size_t g = n; g < b.size(); ++g) ASSERT_TRUE(b[g] == '#') << c.expected;
    }
    std::array<char, kMaxTopicLength> exact{};
    auto t = topic("lamp-1", c.op, c.kind, c.job, {exact.data(), c.expected.size()});
    ASSERT_TRUE(t);
    EXPECT_EQ(*t, c.expected);
  }
}

}  // namespace
}  // namespace edgekit::jobs
