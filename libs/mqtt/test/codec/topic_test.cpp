// Topic names, filters and matching (spec 4.7, 4.8.2) and UTF-8 validation (1.5.4).
#include "codec_test_support.hpp"

namespace edgekit::mqtt::test {
namespace {

using Topics = edgekit::testing::PureTest;

Errc filter_error(std::string_view f) {
  auto r = validate_topic_filter(f);
  return r ? Errc::Ok : r.error();
}
Errc name_error(std::string_view t) {
  auto r = validate_topic_name(t);
  return r ? Errc::Ok : r.error();
}
Errc utf8_error(std::string_view s) {
  auto r = validate_utf8(s);
  return r ? Errc::Ok : r.error();
}

TEST_F(Topics, FilterValidationTable) {
  struct Row {
    std::string_view filter;
    Errc expected;
  };
  constexpr Row rows[] = {
      {"sport/tennis/player1", Errc::Ok},
      {"sport/tennis/#", Errc::Ok},
      {"#", Errc::Ok},
      {"+", Errc::Ok},
      {"+/tennis/#", Errc::Ok},
      {"sport/+/player1", Errc::Ok},
      {"/", Errc::Ok},
      {"//", Errc::Ok},
      {"/+", Errc::Ok},
      {"$SYS/#", Errc::Ok},
      {"$share/group/a/b", Errc::Ok},
      {"$share/group/#", Errc::Ok},
      {"$share/g/+", Errc::Ok},
      {"$shared/x", Errc::Ok},  // not the $share/ prefix: an ordinary filter
      {"$share", Errc::Ok},
      {"", Errc::EmptyTopic},                        // [MQTT-4.7.3-1]
      {"sport/tennis#", Errc::InvalidTopicFilter},   // [MQTT-4.7.1-2]
      {"sport/tennis/#/ranking", Errc::InvalidTopicFilter},
      {"##", Errc::InvalidTopicFilter},
      {"sport+", Errc::InvalidTopicFilter},          // [MQTT-4.7.1-3]
      {"sport/+tennis", Errc::InvalidTopicFilter},
      {"++", Errc::InvalidTopicFilter},
      {"$share/group", Errc::InvalidTopicFilter},    // [MQTT-4.8.2-2] needs "/" and a filter
      {"$share/group/", Errc::InvalidTopicFilter},
      {"$share//a", Errc::InvalidTopicFilter},       // [MQTT-4.8.2-1] ShareName not empty
      {"$share/gr+oup/a", Errc::InvalidTopicFilter}, // [MQTT-4.8.2-2] no wildcards in ShareName
      {"$share/#/a", Errc::InvalidTopicFilter},
      {"$share/g/a#", Errc::InvalidTopicFilter},
      {"a\xC0\xAF", Errc::InvalidUtf8},
      {std::string_view("a\0b", 3), Errc::NullCharacterInString},
  };
  for (const Row& r : rows) EXPECT_EQ(filter_error(r.filter), r.expected) << r.filter;
}

TEST_F(Topics, NameValidationTable) {
  EXPECT_EQ(name_error("a/b/c"), Errc::Ok);
  EXPECT_EQ(name_error("/"), Errc::Ok);
  EXPECT_EQ(name_error("$SYS/x"), Errc::Ok);
  EXPECT_EQ(name_error(""), Errc::EmptyTopic);                 // [MQTT-4.7.3-1]
  EXPECT_EQ(name_error("a/+"), Errc::WildcardInTopicName);     // [MQTT-3.3.2-2]
  EXPECT_EQ(name_error("a/#"), Errc::WildcardInTopicName);
  EXPECT_EQ(name_error("a\xED\xBF\xBF"), Errc::InvalidUtf8);  // U+DFFF
}

TEST_F(Topics, Utf8Table) {
  EXPECT_EQ(utf8_error(""), Errc::Ok);
  EXPECT_EQ(utf8_error("plain ascii"), Errc::Ok);
  EXPECT_EQ(utf8_error("\xC2\x80"), Errc::Ok);              // U+0080
  EXPECT_EQ(utf8_error("\xDF\xBF"), Errc::Ok);              // U+07FF
  EXPECT_EQ(utf8_error("\xE0\xA0\x80"), Errc::Ok);          // U+0800
  EXPECT_EQ(utf8_error("\xED\x9F\xBF"), Errc::Ok);          // U+D7FF
  EXPECT_EQ(utf8_error("\xEE\x80\x80"), Errc::Ok);          // U+E000
  EXPECT_EQ(utf8_error("\xEF\xBB\xBF"), Errc::Ok);          // U+FEFF (BOM is allowed)
  EXPECT_EQ(utf8_error("\xF0\x90\x80\x80"), Errc::Ok);      // U+10000
  EXPECT_EQ(utf8_error("\xF4\x8F\xBF\xBF"), Errc::Ok);      // U+10FFFF
  // [MQTT-1.5.4-1] ill-formed sequences
  EXPECT_EQ(utf8_error("\xC1\xBF"), Errc::InvalidUtf8);      // overlong
  EXPECT_EQ(utf8_error("\xE0\x9F\xBF"), Errc::InvalidUtf8);  // overlong
  EXPECT_EQ(utf8_error("\xF0\x8F\xBF\xBF"), Errc::InvalidUtf8);  // overlong
  EXPECT_EQ(utf8_error("\xED\xA0\x80"), Errc::InvalidUtf8);  // U+D800
  EXPECT_EQ(utf8_error("\xED\xBF\xBF"), Errc::InvalidUtf8);  // U+DFFF
  EXPECT_EQ(utf8_error("\xF4\x90\x80\x80"), Errc::InvalidUtf8);  // U+110000
  EXPECT_EQ(utf8_error("\xF5\x80\x80\x80"), Errc::InvalidUtf8);
  EXPECT_EQ(utf8_error("\xFF"), Errc::InvalidUtf8);
  EXPECT_EQ(utf8_error("\x80"), Errc::InvalidUtf8);
  EXPECT_EQ(utf8_error("\xE2\x82"), Errc::InvalidUtf8);      // truncated
  EXPECT_EQ(utf8_error("\xE2\x28\xA1"), Errc::InvalidUtf8);  // bad continuation
  // [MQTT-1.5.4-2] U+0000
  EXPECT_EQ(utf8_error(std::string_view("\0", 1)), Errc::NullCharacterInString);
}

// 65,536 bytes, static (not heap): one more than a UTF-8 string can hold.
std::array<char, 65536> g_long = [] {
  std::array<char, 65536> a{};
  a.fill('x');
  return a;
}();

TEST_F(Topics, StringTooLong) {
  // 1.5.4: a UTF-8 Encoded String is at most 65,535 bytes.
  EXPECT_EQ(utf8_error(std::string_view(g_long.data(), 65535)), Errc::Ok);
  EXPECT_EQ(utf8_error(std::string_view(g_long.data(), 65536)), Errc::StringTooLong);
  EXPECT_EQ(name_error(std::string_view(g_long.data(), 65536)), Errc::StringTooLong);
  Publish p;
  p.topic = std::string_view(g_long.data(), 65536);
  EXPECT_EQ(encoded_size(p, Version::V5).error(), Errc::StringTooLong);
  p.topic = "t";
  p.properties.set_content_type(std::string_view(g_long.data(), 65536));
  EXPECT_EQ(encoded_size(p, Version::V5).error(), Errc::StringTooLong);
}

TEST_F(Topics, MatchingTable) {
  struct Row {
    std::string_view filter;
    std::string_view topic;
    bool match;
  };
  constexpr Row rows[] = {
      // 4.7.1.2 multi-level wildcard
      {"sport/tennis/player1/#", "sport/tennis/player1", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"sport/#", "sport", true},
      {"#", "sport/tennis", true},
      {"#", "/", true},
      {"sport/tennis/#", "sport/tennisplayer", false},
      // 4.7.1.3 single-level wildcard
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player1/ranking", false},
      {"sport/tennis/+", "sport/tennis", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},
      {"+", "sport", true},
      {"+/+", "/finance", true},
      {"/+", "/finance", true},
      {"+", "/finance", false},
      {"+/tennis/#", "sport/tennis", true},
      {"+/#", "a", true},
      // exact
      {"a/b", "a/b", true},
      {"a/b", "a/bc", false},
      {"a/bc", "a/b", false},
      {"a/b", "a", false},
      {"a", "a/b", false},
      {"a//b", "a//b", true},
      {"a/+/b", "a//b", true},
      // [MQTT-4.7.2-1] wildcards at the first level do not match $ topics
      {"#", "$SYS/broker", false},
      {"+/monitor/Clients", "$SYS/monitor/Clients", false},
      {"$SYS/#", "$SYS/monitor/Clients", true},
      {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
      // 4.8.2 shared subscriptions match like the filter after $share/{ShareName}/
      {"$share/g/sport/#", "sport/tennis", true},
      {"$share/g/a/+", "a/b", true},
      {"$share/g/a/+", "g/a/b", false},
      {"$share/g/#", "$SYS/x", false},
  };
  for (const Row& r : rows)
    EXPECT_EQ(topic_matches(r.filter, r.topic), r.match) << r.filter << " vs " << r.topic;
}

}  // namespace
}  // namespace edgekit::mqtt::test
