#include "edgekit/shadow/topics.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string_view>

#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::shadow {
namespace {

using ShadowTopics = edgekit::testing::PureTest;

std::string_view build(std::string_view thing, std::string_view shadow, Operation op,
                       TopicKind kind, std::span<char> buf) {
  auto t = topic(thing, shadow, op, kind, buf);
  EXPECT_TRUE(t.has_value());
  return t ? *t : std::string_view{};
}

// 128 and 64 bytes: the longest names AWS allows (aws-iot-protocols.md 0).
constexpr std::string_view kLongThing =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-"
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
constexpr std::string_view kLongShadow =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_";

TEST_F(ShadowTopics, BuildsEveryClassicShadowTopicExactly) {
  std::array<char, kMaxTopicLength> b{};
  struct Case {
    Operation op;
    TopicKind kind;
    std::string_view expected;
  };
  for (const Case& c : {
           Case{Operation::Get, TopicKind::Request, "$aws/things/lamp-1/shadow/get"},
           Case{Operation::Get, TopicKind::Accepted, "$aws/things/lamp-1/shadow/get/accepted"},
           Case{Operation::Get, TopicKind::Rejected, "$aws/things/lamp-1/shadow/get/rejected"},
           Case{Operation::Update, TopicKind::Request, "$aws/things/lamp-1/shadow/update"},
           Case{Operation::Update, TopicKind::Accepted,
                "$aws/things/lamp-1/shadow/update/accepted"},
           Case{Operation::Update, TopicKind::Rejected,
                "$aws/things/lamp-1/shadow/update/rejected"},
           Case{Operation::Update, TopicKind::Delta, "$aws/things/lamp-1/shadow/update/delta"},
           Case{Operation::Update, TopicKind::Documents,
                "$aws/things/lamp-1/shadow/update/documents"},
           Case{Operation::Delete, TopicKind::Request, "$aws/things/lamp-1/shadow/delete"},
           Case{Operation::Delete, TopicKind::Accepted,
                "$aws/things/lamp-1/shadow/delete/accepted"},
           Case{Operation::Delete, TopicKind::Rejected,
                "$aws/things/lamp-1/shadow/delete/rejected"},
       }) {
    EXPECT_EQ(build("lamp-1", "", c.op, c.kind, b), c.expected);
  }
}

TEST_F(ShadowTopics, BuildsNamedShadowTopicsWithSevenSlashesForUpdateReplies) {
  std::array<char, kMaxTopicLength> b{};
  EXPECT_EQ(build("lamp-1", "config", Operation::Get, TopicKind::Request, b),
            "$aws/things/lamp-1/shadow/name/config/get");
  EXPECT_EQ(build("lamp-1", "config", Operation::Delete, TopicKind::Accepted, b),
            "$aws/things/lamp-1/shadow/name/config/delete/accepted");
  const std::string_view delta = build("lamp-1", "config", Operation::Update, TopicKind::Delta, b);
  EXPECT_EQ(delta, "$aws/things/lamp-1/shadow/name/config/update/delta");
  std::size_t slashes = 0;
  for (char c : delta) slashes += c == '/' ? 1 : 0;
  EXPECT_EQ(slashes, 7u);  // the broker's maximum (aws-iot-protocols.md 1.1, 6)
}

TEST_F(ShadowTopics, BuildsReplyFilters) {
  std::array<char, kMaxTopicLength> b{};
  auto f = reply_filter("t", "", Operation::Get, b);
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, "$aws/things/t/shadow/get/+");
  f = reply_filter("t", "s", Operation::Update, b);
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, "$aws/things/t/shadow/name/s/update/+");
  EXPECT_EQ(reply_filter("", "", Operation::Get, b).error(), Errc::InvalidArgument);
}

TEST_F(ShadowTopics, LongestTopicFillsTheAdvertisedMaximumExactly) {
  ASSERT_EQ(kLongThing.size(), kMaxThingNameLength);
  ASSERT_EQ(kLongShadow.size(), kMaxShadowNameLength);
  std::array<char, kMaxTopicLength> b{};
  auto t = topic(kLongThing, kLongShadow, Operation::Update, TopicKind::Documents, b);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->size(), kMaxTopicLength);
}

TEST_F(ShadowTopics, EnforcesAwsNameLimits) {
  std::array<char, kMaxTopicLength> b{};
  EXPECT_TRUE(valid_thing_name(kLongThing));
  // One byte over each limit.
  std::array<char, kMaxThingNameLength + 1> thing{};
  thing.fill('a');
  EXPECT_FALSE(valid_thing_name({thing.data(), thing.size()}));
  EXPECT_TRUE(valid_thing_name({thing.data(), thing.size() - 1}));
  std::array<char, kMaxShadowNameLength + 1> shadow{};
  shadow.fill('b');
  EXPECT_FALSE(valid_shadow_name({shadow.data(), shadow.size()}));
  EXPECT_TRUE(valid_shadow_name({shadow.data(), shadow.size() - 1}));
  EXPECT_EQ(topic({thing.data(), thing.size()}, "", Operation::Get, TopicKind::Request, b).error(),
            Errc::InvalidArgument);
  EXPECT_EQ(
      topic("t", {shadow.data(), shadow.size()}, Operation::Get, TopicKind::Request, b).error(),
      Errc::InvalidArgument);
  // Characters outside [a-zA-Z0-9:_-], among them the ones that would break the topic.
  for (std::string_view bad : {"", "a/b", "a+", "a#", "a b", "a.b", "caf\xC3\xA9", "a$"}) {
    EXPECT_FALSE(valid_thing_name(bad)) << bad;
    EXPECT_FALSE(valid_shadow_name(bad)) << bad;
    EXPECT_EQ(topic(bad, "", Operation::Get, TopicKind::Request, b).error(), Errc::InvalidArgument);
    if (!bad.empty()) {
      EXPECT_EQ(topic("t", bad, Operation::Get, TopicKind::Request, b).error(),
                Errc::InvalidArgument);
    }
  }
  EXPECT_TRUE(valid_thing_name("A:b_c-9"));
}

TEST_F(ShadowTopics, DeltaAndDocumentsBelongToUpdateOnly) {
  std::array<char, kMaxTopicLength> b{};
  for (Operation op : {Operation::Get, Operation::Delete}) {
    EXPECT_EQ(topic("t", "", op, TopicKind::Delta, b).error(), Errc::InvalidArgument);
    EXPECT_EQ(topic("t", "s", op, TopicKind::Documents, b).error(), Errc::InvalidArgument);
  }
}

TEST_F(ShadowTopics, RefusesABufferTooSmallAtEveryLengthWithoutWritingPastIt) {
  for (std::string_view shadow : {std::string_view{}, std::string_view{"config"}}) {
    std::array<char, kMaxTopicLength> full{};
    auto whole = topic("lamp-1", shadow, Operation::Update, TopicKind::Documents, full);
    ASSERT_TRUE(whole);
    for (std::size_t n = 0; n < whole->size(); ++n) {
      std::array<char, kMaxTopicLength + 8> b{};
      b.fill('#');
      auto t = topic("lamp-1", shadow, Operation::Update, TopicKind::Documents, {b.data(), n});
      ASSERT_FALSE(t);
      EXPECT_EQ(t.error(), Errc::BufferTooSmall);
      EXPECT_TRUE(b[n] == '#');  // guard byte
      auto f = reply_filter("lamp-1", shadow, Operation::Update, {b.data(), n < 5 ? n : 5});
      EXPECT_FALSE(f);
    }
    std::array<char, kMaxTopicLength> exact{};
    auto t = topic("lamp-1", shadow, Operation::Update, TopicKind::Documents,
                   {exact.data(), whole->size()});
    ASSERT_TRUE(t);
    EXPECT_EQ(*t, *whole);
  }
}

TEST_F(ShadowTopics, MatchesEveryTopicItBuilds) {
  std::array<char, kMaxTopicLength> b{};
  for (std::string_view shadow : {std::string_view{}, std::string_view{"cfg"}, kLongShadow}) {
    for (Operation op : {Operation::Get, Operation::Update, Operation::Delete}) {
      for (TopicKind kind : {TopicKind::Request, TopicKind::Accepted, TopicKind::Rejected,
                             TopicKind::Delta, TopicKind::Documents}) {
        const bool update_only = kind == TopicKind::Delta || kind == TopicKind::Documents;
        if (update_only && op != Operation::Update) continue;
        auto t = topic(kLongThing, shadow, op, kind, b);
        ASSERT_TRUE(t);
        auto m = match_topic(*t);
        ASSERT_TRUE(m) << *t;
        EXPECT_EQ(m->thing, kLongThing);
        EXPECT_EQ(m->shadow, shadow);
        EXPECT_EQ(m->op, op);
        EXPECT_EQ(m->kind, kind);
      }
    }
  }
}

TEST_F(ShadowTopics, MatchRefusesEverythingElse) {
  for (std::string_view t : {
           "",
           "$aws/things/",
           "$aws/things/t/shadow",
           "$aws/things/t/shadow/",
           "$aws/things/t/shadow/get/",
           "$aws/things/t/shadow/get/accepted/",
           "$aws/things/t/shadow/get/delta",
           "$aws/things/t/shadow/delete/documents",
           "$aws/things/t/shadow/update/deltas",
           "$aws/things/t/shadow/Update",
           "$aws/things/t/shadow/list",
           "$aws/things/t/shadow/name//get",
           "$aws/things/t/shadow/name/s",
           "$aws/things/t/shadow/name/s/",
           "$aws/things/t/shadow/name/s/x/get",
           "$aws/things//shadow/get",
           "$aws/things/a+b/shadow/get",
           "$aws/things/t/jobs/get",
           "$AWS/things/t/shadow/get",
           "$aws/things/t/shadow/update/+",
           "$aws/things/t/shadow/#",
       }) {
    auto m = match_topic(t);
    EXPECT_FALSE(m) << t;
    if (!m) {
      EXPECT_EQ(m.error(), Errc::TopicMismatch);
    }
  }
  // A name one byte over its limit.
  std::array<char, 12 + kMaxThingNameLength + 1 + 11> t{};
  std::size_t n = 0;
  for (char c : std::string_view("$aws/things/")) t[n++] = c;
  for (std::size_t i = 0; i <= kMaxThingNameLength; ++i) t[n++] = 'a';
  for (char c : std::string_view("/shadow/get")) t[n++] = c;
  EXPECT_FALSE(match_topic({t.data(), n}));
}

}  // namespace
}  // namespace edgekit::shadow
