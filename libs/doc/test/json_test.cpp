// The JSON reader and writer: RFC 8259 accept/reject cases (in the manner of JSONTestSuite's
// y_/n_ files, written for this library), lookups, and the writer's escaping, misuse and overflow.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "support.hpp"
#include "edgekit/doc/json.hpp"
#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::doc::test {
namespace {

using namespace std::string_view_literals;
using JsonParse = edgekit::testing::PureTest;
using JsonLookup = edgekit::testing::PureTest;
using JsonWriter = edgekit::testing::PureTest;

TEST_F(JsonParse, AcceptsWhatRfc8259Allows) {
  constexpr std::string_view kAccepted[] = {
      "[]", "{}", "0", "-0", "1", "-1", "123456789", "0.5", "-0.0e0", "1.5e+10", "-1E-2", "1e5",
      "12e0003", R"("")", "true", "false", "null", " \t\n\r[ 1 , 2 ] \r\n\t ", "[[[]]]",
      R"({"a":{"b":[1,{"c":null}]}})", R"(["\"\\\/\b\f\n\r\t"])", R"("\u00e9\u00E9")",
      R"("\ud83d\ude00")", R"("\u0000")", "\"\xc3\xa9\xe6\xb0\xb4\xf0\x9f\x98\x80\"",
      "\"\x7f\"", R"({"a":1,"b":2})", R"({"a":1,"\u0062":2})", R"({"":0})",
      R"([1,"x",true,null,{},[]])", "123\0"sv, "{}  \0"sv, "\"a/b\"",
      "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"",  // U+FFFF and U+10FFFF
  };
  for (const std::string_view text : kAccepted) {
    const auto doc = json::parse(text);
    EXPECT_TRUE(doc.has_value()) << "refused: " << text << " ("
                                 << (doc ? "" : to_string(doc.error().code)) << ")";
  }
}

TEST_F(JsonParse, RefusesWhatRfc8259DoesNotAllowNamingCauseAndOffset) {
  const Reject kRejected[] = {
      {"", Errc::Empty, 0},
      {"  \n", Errc::Empty, 3},
      {"\0"sv, Errc::Empty, 0},
      {"[1,]", Errc::TrailingComma, 2},
      {R"({"a":1,})", Errc::TrailingComma, 6},
      {"[1,,2]", Errc::UnexpectedCharacter, 3},
      {"[,1]", Errc::UnexpectedCharacter, 1},
      {"{,}", Errc::UnexpectedCharacter, 1},
      {"01", Errc::LeadingZero, 0},
      {"-01", Errc::LeadingZero, 1},
      {"[00]", Errc::LeadingZero, 1},
      {"-", Errc::UnexpectedEnd, 1},
      {"-a", Errc::InvalidNumber, 1},
      {"1.", Errc::UnexpectedEnd, 2},
      {"1.e1", Errc::InvalidNumber, 2},
      {"[1.]", Errc::InvalidNumber, 3},
      {".5", Errc::UnexpectedCharacter, 0},
      {"+1", Errc::UnexpectedCharacter, 0},
      {"1e", Errc::UnexpectedEnd, 2},
      {"1e+", Errc::UnexpectedEnd, 3},
      {"[1e]", Errc::InvalidNumber, 3},
      {"[0x1]", Errc::UnexpectedCharacter, 2},
      {"[1.5.3]", Errc::UnexpectedCharacter, 4},
      {"NaN", Errc::UnexpectedCharacter, 0},
      {"[-Infinity]", Errc::InvalidNumber, 2},
      {"[1 2]", Errc::UnexpectedCharacter, 3},
      {"tru", Errc::UnexpectedEnd, 3},
      {"trUe", Errc::UnexpectedCharacter, 2},
      {"nulll", Errc::TrailingData, 4},
      {"True", Errc::UnexpectedCharacter, 0},
      {"\"a\tb\"", Errc::ControlCharacterInString, 2},
      {"\"a\nb\"", Errc::ControlCharacterInString, 2},
      {"\"\0\""sv, Errc::ControlCharacterInString, 1},
      {R"("\x")", Errc::InvalidEscape, 1},
      {R"("\')", Errc::InvalidEscape, 1},
      {R"("\u12")", Errc::InvalidUnicodeEscape, 1},
      {R"("\u12G4")", Errc::InvalidUnicodeEscape, 1},
      {R"("\u12)", Errc::UnexpectedEnd, 5},
      {R"("\ud800")", Errc::UnpairedSurrogate, 1},
      {R"("\udc00")", Errc::UnpairedSurrogate, 1},
      {R"("\ude00\ud83d")", Errc::UnpairedSurrogate, 1},
      {R"("\ud800\u0041")", Errc::UnpairedSurrogate, 1},
      {R"("\ud800x")", Errc::UnpairedSurrogate, 1},
      {R"("\ud800\ud800")", Errc::UnpairedSurrogate, 1},
      {R"("\ud800\n")", Errc::UnpairedSurrogate, 1},
      {"\"\xff\"", Errc::InvalidUtf8, 1},
      {"\"\x80\"", Errc::InvalidUtf8, 1},
      {"\"a\xc0\xaf\"", Errc::InvalidUtf8, 2},          // overlong '/'
      {"\"\xe0\x80\xaf\"", Errc::InvalidUtf8, 1},       // overlong, 3 bytes
      {"\"\xed\xa0\x80\"", Errc::InvalidUtf8, 1},       // an encoded surrogate
      {"\"\xf4\x90\x80\x80\"", Errc::InvalidUtf8, 1},   // above U+10FFFF
      {"\"\xe2\x82\"", Errc::InvalidUtf8, 1},           // cut short
      {"\"\xf8\x88\x80\x80\x80\"", Errc::InvalidUtf8, 1},
      {"\xef\xbb\xbf[]", Errc::UnexpectedCharacter, 0},  // a byte order mark
      {"[\xc3\xa9]", Errc::UnexpectedCharacter, 1},
      {"[1]]", Errc::TrailingData, 3},
      {"1 2", Errc::TrailingData, 2},
      {"{}x", Errc::TrailingData, 2},
      {"1\0\0"sv, Errc::TrailingData, 1},
      {"1\0 "sv, Errc::TrailingData, 1},
      {"1\0x"sv, Errc::TrailingData, 1},
      {"[1\0]"sv, Errc::UnexpectedCharacter, 2},
      {"[", Errc::UnexpectedEnd, 1},
      {"[1", Errc::UnexpectedEnd, 2},
      {R"({"a")", Errc::UnexpectedEnd, 4},
      {R"({"a":)", Errc::UnexpectedEnd, 5},
      {R"("abc)", Errc::UnexpectedEnd, 4},
      {R"({"a" 1})", Errc::UnexpectedCharacter, 5},
      {"{1:2}", Errc::UnexpectedCharacter, 1},
      {"{a:2}", Errc::UnexpectedCharacter, 1},
      {R"(["a":1])", Errc::UnexpectedCharacter, 4},
      {"[1}", Errc::UnexpectedCharacter, 2},
      {R"({"a":1])", Errc::UnexpectedCharacter, 6},
      {"'a'", Errc::UnexpectedCharacter, 0},
      {"/* c */ 1", Errc::UnexpectedCharacter, 0},
      {"[\f]", Errc::UnexpectedCharacter, 1},             // form feed is no JSON whitespace
      {"[\v1]", Errc::UnexpectedCharacter, 1},
      {"\xc2\xa0 1", Errc::UnexpectedCharacter, 0},       // no-break space
      {R"({"a":1,"a":2})", Errc::DuplicateKey, 7},
      {R"({"a":1,"\u0061":2})", Errc::DuplicateKey, 7},
      {R"({"ab":1,"b":0,"a\u0062":2})", Errc::DuplicateKey, 14},
      {R"([{"x":{"k":1,"k":2}}])", Errc::DuplicateKey, 13},
  };
  for (const Reject& r : kRejected) {
    const auto doc = json::parse(r.input);
    ASSERT_FALSE(doc.has_value()) << "accepted: " << r.input;
    EXPECT_EQ(doc.error(), (Error{r.code, r.offset})) << r.input;
  }
}

// `depth` nested arrays around 1.
std::string_view nested(std::size_t depth, std::array<char, 128>& buf) {
  std::size_t k = 0;
  for (std::size_t d = 0; d < depth; ++d) buf[k++] = '[';
  buf[k++] = '1';
  for (std::size_t d = 0; d < depth; ++d) buf[k++] = ']';
  return {buf.data(), k};
}

TEST_F(JsonParse, NestingDeeperThanTheCallersLimitIsTooDeep) {
  std::array<char, 128> buf{};
  EXPECT_TRUE(json::parse(nested(16, buf)).has_value());
  const auto deep = json::parse(nested(17, buf));
  ASSERT_FALSE(deep.has_value());
  EXPECT_EQ(deep.error(), (Error{Errc::TooDeep, 16}));
  EXPECT_TRUE(json::parse(nested(4, buf), {.max_depth = 4}).has_value());
  EXPECT_EQ(json::parse(nested(5, buf), {.max_depth = 4}).error(), (Error{Errc::TooDeep, 4}));
  EXPECT_TRUE(json::parse("1", {.max_depth = 0}).has_value());
  EXPECT_EQ(json::parse("{}", {.max_depth = 0}).error(), (Error{Errc::TooDeep, 0}));
  // Above kMaxParseDepth the limit is kMaxParseDepth.
  EXPECT_TRUE(json::parse(nested(kMaxParseDepth, buf), {.max_depth = 1000}).has_value());
  EXPECT_EQ(json::parse(nested(kMaxParseDepth + 1, buf), {.max_depth = 1000}).error().code,
            Errc::TooDeep);
}

TEST_F(JsonParse, OneTrailingNulIsNotPartOfTheValue) {
  const auto doc = json::parse("{\"a\":1} \0"sv);
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->text(), R"({"a":1})");
  EXPECT_EQ(*doc->find("a")->as_int64(), 1);
}

TEST_F(JsonParse, ScalarsAtTopLevel) {
  EXPECT_EQ(*json::parse(" -12 ")->as_int64(), -12);
  EXPECT_EQ(json::parse(" -12 ")->text(), "-12");
  EXPECT_EQ(*json::parse("\"x\"")->as_string_view(), "x");
  EXPECT_TRUE(json::parse("null")->is_null());
  EXPECT_FALSE(*json::parse("false")->as_bool());
}

constexpr std::string_view kShadow = R"({
  "state": {"desired": {"color": "red", "power": true, "level": 7}},
  "metadata": {},
  "version": 42,
  "clientToken": "tok-1",
  "jobs": [{"id": "a"}, {"id": "b", "step": -3}],
  "esc": "line\nnext \u00e9 \"q\"",
  "big": 18446744073709551616,
  "ratio": 0.25
})";

TEST_F(JsonLookup, FindsByKeyAndByDottedPath) {
  const auto doc = json::parse(kShadow);
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(*doc->at_path("state.desired.color")->as_string_view(), "red");
  EXPECT_TRUE(*doc->at_path("state.desired.power")->as_bool());
  EXPECT_EQ(*doc->find("version")->as_int64(), 42);
  EXPECT_EQ(*doc->find("version")->as_uint64(), 42u);
  EXPECT_EQ(*doc->at_path("jobs.1.id")->as_string_view(), "b");
  EXPECT_EQ(*doc->at_path("jobs.1.step")->as_int64(), -3);
  EXPECT_EQ(doc->find("state")->text(),
            R"({"desired": {"color": "red", "power": true, "level": 7}})");
  EXPECT_EQ(doc->find("jobs")->size(), 2u);
  EXPECT_EQ(doc->size(), 8u);
  EXPECT_EQ(doc->find("metadata")->size(), 0u);
  EXPECT_TRUE(doc->find("metadata")->members().empty());
}

TEST_F(JsonLookup, LookupErrorsNameTheValueWhereTheyStopped) {
  const auto doc = json::parse(kShadow);
  ASSERT_TRUE(doc.has_value());
  const std::size_t state = kShadow.find("{\"desired\"");
  const std::size_t jobs = kShadow.find("[{");
  EXPECT_EQ(doc->find("nope").error(), (Error{Errc::NotFound, 0}));
  EXPECT_EQ(doc->at_path("state.nope").error(), (Error{Errc::NotFound, state}));
  EXPECT_EQ(doc->at_path("state.desired.color.x").error().code, Errc::WrongType);
  EXPECT_EQ(doc->at_path("jobs.x").error(), (Error{Errc::WrongType, jobs}));
  EXPECT_EQ(doc->at_path("jobs.2").error(), (Error{Errc::NotFound, jobs}));
  EXPECT_EQ(doc->at_path("jobs.99999999999999999999999").error(), (Error{Errc::NotFound, jobs}));
  EXPECT_EQ(doc->at_path("").error().code, Errc::InvalidPath);
  EXPECT_EQ(doc->at_path("state..desired").error(), (Error{Errc::InvalidPath, 0}));
  EXPECT_EQ(doc->at_path(".state").error().code, Errc::InvalidPath);
  EXPECT_EQ(doc->at_path("state.").error().code, Errc::InvalidPath);
  EXPECT_EQ(doc->find("jobs")->find("id").error(), (Error{Errc::WrongType, jobs}));
  EXPECT_EQ(doc->at(0).error().code, Errc::WrongType);
  EXPECT_EQ(doc->find("version")->as_bool().error().code, Errc::WrongType);
  EXPECT_EQ(doc->find("version")->as_string_view().error().code, Errc::WrongType);
  EXPECT_EQ(doc->find("clientToken")->as_int64().error().code, Errc::WrongType);
  EXPECT_EQ(doc->find("big")->as_int64().error().code, Errc::IntegerOutOfRange);
  EXPECT_EQ(doc->find("big")->as_uint64().error().code, Errc::IntegerOutOfRange);
  EXPECT_EQ(*doc->find("big")->number_text(), "18446744073709551616");
  EXPECT_EQ(doc->find("ratio")->as_int64().error().code, Errc::NotAnInteger);
  EXPECT_EQ(*doc->find("ratio")->number_text(), "0.25");
}

TEST_F(JsonLookup, IntegersAtTheEdgesOfInt64AndUint64AreExactOrReported) {
  struct Case {
    std::string_view text;
    bool int_ok;
    std::int64_t i;
    bool uint_ok;
    std::uint64_t u;
  };
  const Case kCases[] = {
      {"9223372036854775807", true, INT64_MAX, true, 9223372036854775807u},
      {"9223372036854775808", false, 0, true, 9223372036854775808u},
      {"-9223372036854775808", true, INT64_MIN, false, 0},
      {"-9223372036854775809", false, 0, false, 0},
      {"18446744073709551615", false, 0, true, UINT64_MAX},
      {"18446744073709551616", false, 0, false, 0},
      {"99999999999999999999999", false, 0, false, 0},
      {"-0", true, 0, true, 0},
      {"-1", true, -1, false, 0},
      {"0", true, 0, true, 0},
  };
  for (const Case& c : kCases) {
    const auto v = json::parse(c.text);
    ASSERT_TRUE(v.has_value()) << c.text;
    const auto i = v->as_int64();
    const auto u = v->as_uint64();
    ASSERT_EQ(i.has_value(), c.int_ok) << c.text;
    ASSERT_EQ(u.has_value(), c.uint_ok) << c.text;
    if (c.int_ok) EXPECT_EQ(*i, c.i) << c.text;
    else EXPECT_EQ(i.error().code, Errc::IntegerOutOfRange) << c.text;
    if (c.uint_ok) EXPECT_EQ(*u, c.u) << c.text;
    else EXPECT_EQ(u.error().code, Errc::IntegerOutOfRange) << c.text;
  }
  EXPECT_EQ(json::parse("1.0")->as_int64().error().code, Errc::NotAnInteger);
  EXPECT_EQ(json::parse("1e2")->as_uint64().error().code, Errc::NotAnInteger);
}

TEST_F(JsonLookup, StringsAreViewsWithoutEscapesAndUnescapedIntoTheCallersBuffer) {
  const auto doc = json::parse(kShadow);
  ASSERT_TRUE(doc.has_value());
  const json::Value esc = *doc->find("esc");
  EXPECT_EQ(esc.as_string_view().error().code, Errc::StringHasEscapes);
  const std::string_view expected = "line\nnext \xc3\xa9 \"q\"";
  EXPECT_EQ(*esc.string_length(), expected.size());
  char buf[64];
  const auto copied = esc.copy_string(buf);
  ASSERT_TRUE(copied.has_value());
  EXPECT_EQ(*copied, expected);
  EXPECT_EQ(copied->data(), buf);
  EXPECT_TRUE(esc.equals(expected));
  EXPECT_FALSE(esc.equals("line\nnext"));
  EXPECT_FALSE(esc.equals("line\nnext \xc3\xa9 \"q\"!"));
  for (std::size_t len = 0; len < expected.size(); ++len) {
    EXPECT_EQ(esc.copy_string(std::span<char>(buf, len)).error().code, Errc::BufferTooSmall);
  }
  const auto pair = json::parse(R"("\ud83d\ude00\u0000A")");
  EXPECT_EQ(*pair->copy_string(buf), "\xf0\x9f\x98\x80\0A"sv);
  const auto plain = *doc->find("clientToken");
  EXPECT_EQ(*plain.as_string_view(), "tok-1");
  EXPECT_EQ(plain.as_string_view()->data(), kShadow.data() + kShadow.find("tok-1"));
  EXPECT_EQ(*plain.copy_string(buf), "tok-1");
}

TEST_F(JsonLookup, IteratesMembersAndElementsInOrder) {
  const auto doc = json::parse(R"({"b":1, "a" : [true, null, "x"], "c\u0021":{}})");
  ASSERT_TRUE(doc.has_value());
  const char* keys[] = {"b", "a", "c!"};
  std::size_t k = 0;
  for (const json::Member& m : doc->members()) {
    ASSERT_LT(k, 3u);
    EXPECT_TRUE(m.key.equals(keys[k])) << k;
    ++k;
  }
  EXPECT_EQ(k, 3u);
  const json::Value arr = *doc->find("a");
  json::Type types[3];
  k = 0;
  for (const json::Value& e : arr.elements()) types[k++] = e.type();
  ASSERT_EQ(k, 3u);
  EXPECT_EQ(types[0], Type::Bool);
  EXPECT_EQ(types[1], Type::Null);
  EXPECT_EQ(types[2], Type::String);
  EXPECT_EQ(*arr.at(2)->as_string_view(), "x");
  EXPECT_TRUE(arr.members().empty());
  EXPECT_TRUE(doc->elements().empty());
  EXPECT_TRUE(json::parse("[]")->elements().empty());
  EXPECT_TRUE(json::Value().is_null());
  EXPECT_EQ(json::Value().text(), "null");
  // Scalars (and a Value of no document) have no children. (Found by fuzz_json: size() of a
  // scalar once loaded a child from a null document.)
  EXPECT_EQ(json::Value().size(), 0u);
  EXPECT_TRUE(json::Value().members().empty());
  EXPECT_EQ(json::Value().members().begin(), json::Value().members().end());
  EXPECT_EQ(arr.at(2)->size(), 0u);
  EXPECT_TRUE(arr.at(2)->elements().empty());
  EXPECT_EQ(json::parse("7")->size(), 0u);
}

TEST_F(JsonLookup, DecodesBase64Strings) {
  std::byte out[16];
  const auto hello = json::parse(R"("aGVsbG8=")");
  const auto bytes = hello->copy_base64(out);
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()), "hello");
  EXPECT_EQ(json::parse(R"("")")->copy_base64(out)->size(), 0u);
  EXPECT_EQ(json::parse(R"("Zm9vYmFy")")->copy_base64(out)->size(), 6u);
  EXPECT_EQ(json::parse(R"("Zm8\/")")->copy_base64(out)->size(), 3u);  // "\/" is '/'
  for (const std::string_view bad :
       {R"("aGVsbG8")", R"("aGVsbG9=")", R"("aG=sbG8=")", R"("aGVs bG8=")", R"("Zg==Zg==")",
        R"("Zh==")", R"("=AAA")"}) {
    EXPECT_EQ(json::parse(bad)->copy_base64(out).error().code, Errc::InvalidBase64) << bad;
  }
  EXPECT_EQ(hello->copy_base64(std::span<std::byte>(out, 4)).error().code, Errc::BufferTooSmall);
  EXPECT_EQ(json::parse("1")->copy_base64(out).error().code, Errc::WrongType);
}

TEST_F(JsonWriter, WritesCompactJsonIntoTheCallersBuffer) {
  char buf[256];
  json::Writer w(buf);
  w.begin_object()
      .member("clientToken", "tok")
      .key("state")
      .begin_object()
      .key("reported")
      .begin_object()
      .member("version", 3)
      .member("big", UINT64_MAX)
      .member("min", INT64_MIN)
      .member("on", true)
      .key("none")
      .null()
      .key("list")
      .begin_array()
      .int64(-1)
      .string("")
      .begin_array()
      .end_array()
      .begin_object()
      .end_object()
      .end_array()
      .end_object()
      .end_object()
      .end_object();
  const auto doc = w.finish();
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(*doc, R"({"clientToken":"tok","state":{"reported":{"version":3,)"
                  R"("big":18446744073709551615,"min":-9223372036854775808,"on":true,)"
                  R"("none":null,"list":[-1,"",[],{}]}}})");
  EXPECT_EQ(doc->data(), buf);
  EXPECT_EQ(w.size(), doc->size());
}

TEST_F(JsonWriter, EscapesStringsPerRfc8259) {
  char buf[128];
  json::Writer w(buf);
  w.string("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f \xc3\xa9\xf0\x9f\x98\x80"sv);
  EXPECT_EQ(*w.finish(), "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f \xc3\xa9\xf0\x9f\x98\x80\"");
  char buf2[16];
  json::Writer nul(buf2);
  nul.string("a\0b"sv);
  EXPECT_EQ(*nul.finish(), "\"a\\u0000b\"");
  // What it writes, the reader reads back unchanged.
  char back[64];
  const auto again = json::parse(*w.finish());
  EXPECT_EQ(*again->copy_string(back), "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f \xc3\xa9\xf0\x9f\x98\x80"sv);
}

TEST_F(JsonWriter, RefusesTextThatIsNotUtf8) {
  char buf[32];
  json::Writer w(buf);
  w.begin_array().string("ok").string("\xff").string("later");
  EXPECT_EQ(w.finish().error(), (Error{Errc::InvalidArgument, 5}));
  EXPECT_EQ(w.size(), 5u);  // the refused call left nothing behind
  json::Writer k(buf);
  k.begin_object().key("\xc0\x80");
  EXPECT_EQ(k.error().code, Errc::InvalidArgument);
}

TEST_F(JsonWriter, WritesBytesAsPaddedBase64) {
  // RFC 4648 §10.
  const std::pair<std::string_view, std::string_view> kVectors[] = {
      {"", R"("")"},         {"f", R"("Zg==")"},         {"fo", R"("Zm8=")"},
      {"foo", R"("Zm9v")"},  {"foob", R"("Zm9vYg==")"},  {"fooba", R"("Zm9vYmE=")"},
      {"foobar", R"("Zm9vYmFy")"}};
  for (const auto& [in, out] : kVectors) {
    char buf[32];
    json::Writer w(buf);
    w.bytes(std::as_bytes(std::span<const char>(in.data(), in.size())));
    EXPECT_EQ(*w.finish(), out);
    std::byte back[8];
    const auto decoded = json::parse(out)->copy_base64(back);
    ASSERT_TRUE(decoded.has_value()) << out;
    EXPECT_EQ(decoded->size(), in.size());
    EXPECT_EQ(std::memcmp(decoded->data(), in.data(), in.size()), 0);
  }
}

TEST_F(JsonWriter, CallsOutOfSequenceAreWriterMisuse) {
  char buf[64];
  const auto misuse = [&](auto&& calls) {
    json::Writer w(buf);
    calls(w);
    return w.finish().error().code;
  };
  EXPECT_EQ(misuse([](json::Writer& w) { w.begin_object().int64(1); }), Errc::WriterMisuse);
  EXPECT_EQ(misuse([](json::Writer& w) { w.begin_array().key("a"); }), Errc::WriterMisuse);
  EXPECT_EQ(misuse([](json::Writer& w) { w.key("a"); }), Errc::WriterMisuse);
  EXPECT_EQ(misuse([](json::Writer& w) { w.begin_object().end_array(); }), Errc::WriterMisuse);
  EXPECT_EQ(misuse([](json::Writer& w) { w.begin_object().key("a").end_object(); }),
            Errc::WriterMisuse);
  EXPECT_EQ(misuse([](json::Writer& w) { w.end_object(); }), Errc::WriterMisuse);
  EXPECT_EQ(misuse([](json::Writer& w) { w.int64(1).int64(2); }), Errc::WriterMisuse);
  EXPECT_EQ(misuse([](json::Writer& w) { w.begin_array(); }), Errc::WriterMisuse);
  EXPECT_EQ(misuse([](json::Writer&) {}), Errc::WriterMisuse);
  EXPECT_EQ(misuse([](json::Writer& w) {
              for (std::size_t d = 0; d <= kMaxWriterDepth; ++d) w.begin_array();
            }),
            Errc::WriterTooDeep);
  // The first error stays; later calls change nothing.
  json::Writer w(buf);
  w.begin_array().key("x").int64(5).end_array();
  EXPECT_EQ(w.finish().error(), (Error{Errc::WriterMisuse, 1}));
  EXPECT_EQ(w.size(), 1u);
}

// A document that uses every kind of call.
void write_sample(json::Writer& w) {
  const std::byte raw[] = {std::byte{1}, std::byte{2}, std::byte{0xff}};
  w.begin_object()
      .member("s", "a\"\n\xc3\xa9")
      .member("n", -1234567)
      .member("u", 18446744073709551615u)
      .member("t", false)
      .key("z")
      .null()
      .key("b")
      .bytes(raw)
      .key("a")
      .begin_array()
      .int64(0)
      .begin_object()
      .end_object()
      .end_array()
      .end_object();
}

TEST_F(JsonWriter, OverflowAtEveryBufferLengthIsReportedNeverTruncated) {
  char full[256];
  json::Writer ref(full);
  write_sample(ref);
  const auto expected = ref.finish();
  ASSERT_TRUE(expected.has_value());
  for (std::size_t len = 0; len < expected->size(); ++len) {
    char buf[256];
    std::memset(buf, '#', sizeof buf);
    json::Writer w(std::span<char>(buf, len));
    write_sample(w);
    const auto r = w.finish();
    ASSERT_FALSE(r.has_value()) << len;
    EXPECT_EQ(r.error().code, Errc::BufferTooSmall) << len;
    EXPECT_LE(r.error().offset, len);
    EXPECT_EQ(w.size(), r.error().offset);
    // What was written is a prefix of the document, and nothing past the buffer was touched.
    EXPECT_EQ(std::string_view(buf, w.size()), expected->substr(0, w.size())) << len;
    for (std::size_t k = len; k < sizeof buf; ++k) ASSERT_TRUE(buf[k] == '#') << len;
  }
  char exact[256];
  json::Writer w(std::span<char>(exact, expected->size()));
  write_sample(w);
  EXPECT_EQ(*w.finish(), *expected);
}

TEST_F(JsonWriter, RoundTripsWhatTheReaderAccepts) {
  constexpr std::string_view kCompact =
      R"({"a":[1,-2,{"b":null,"c":true}],"d":"x\ny","e":{},"f":[],"g":"\u0001"})";
  const auto doc = json::parse(R"( { "a" : [ 1 , -2 , { "b" : null , "c" : true } ] ,
      "d" : "x\ny" , "e" : { } , "f" : [ ] , "g" : "\u0001" } )");
  ASSERT_TRUE(doc.has_value());
  char buf[128];
  json::Writer w(buf);
  ASSERT_TRUE(copy_value(*doc, w));
  EXPECT_EQ(*w.finish(), kCompact);
  // value() copies a sub-document verbatim.
  json::Writer v(buf);
  v.begin_object().key("copy").value(*doc->find("a")).end_object();
  EXPECT_EQ(*v.finish(), R"({"copy":[ 1 , -2 , { "b" : null , "c" : true } ]})");
}

}  // namespace
}  // namespace edgekit::doc::test
