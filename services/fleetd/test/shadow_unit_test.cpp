// The shadow document model (src/shadow/document.hpp) against aws-iot-protocols.md 1.2-1.7.

#include <gtest/gtest.h>

#include <string>

#include "shadow/document.hpp"

namespace edgekit::fleetd::shadow {
namespace {

using nlohmann::json;

constexpr std::int64_t kT0 = 1'700'000'000;
constexpr std::int64_t kT1 = 1'700'000'100;

UpdateRequest update(std::string_view text) {
  auto r = parse_update(text);
  EXPECT_TRUE(r) << text << ": " << (r ? "" : r.error().message);
  return r ? r.value() : UpdateRequest{};
}

Shadow applied(const std::optional<Shadow>& s, std::string_view text, std::int64_t now = kT0) {
  auto a = apply_update(s, 0, update(text), now);
  EXPECT_TRUE(a) << (a ? "" : a.error().message);
  return a ? a.value().current : Shadow{};
}

Rejection refused(std::string_view text) {
  auto r = parse_update(text);
  EXPECT_FALSE(r) << text;
  return r ? Rejection{} : r.error();
}

TEST(ShadowRequest, RefusesWithAwsExactMessages) {
  EXPECT_EQ(refused("{").message, "Invalid JSON");
  EXPECT_EQ(refused("[1]").message, "Invalid JSON");
  EXPECT_EQ(refused("").message, "Invalid JSON");
  EXPECT_EQ(refused(R"({"clientToken":"a"})").message, "Missing required node: state");
  EXPECT_EQ(refused(R"({"state":1})").message, "State node must be an object");
  EXPECT_EQ(refused(R"({"state":{"desired":[1]}})").message, "Desired node must be an object");
  EXPECT_EQ(refused(R"({"state":{"reported":"x"}})").message, "Reported node must be an object");
  EXPECT_EQ(refused(R"({"state":{},"version":"3"})").message, "Invalid version");
  EXPECT_EQ(refused(R"({"state":{},"version":-1})").message, "Invalid version");
  EXPECT_EQ(refused(R"({"state":{},"version":1.5})").message, "Invalid version");
  EXPECT_EQ(refused(R"({"state":{},"clientToken":7})").message, "Invalid clientToken");
  EXPECT_EQ(refused(R"({"state":{},"clientToken":")" + std::string(65, 'a') + "\"}").message,
            "Invalid clientToken");
  EXPECT_EQ(refused(R"({"state":{"reported":{"a":[1,null]}}})").message,
            "State contains an invalid node");
  for (const auto& text : {"{", R"({"state":1})"}) EXPECT_EQ(refused(text).code, 400);
}

TEST(ShadowRequest, EchoesTheTokenInRejectionsWhenItCouldBeRead) {
  auto r = refused(R"({"clientToken":"tok-1","state":5})");
  EXPECT_EQ(r.client_token, "tok-1");
  EXPECT_FALSE(refused(R"({"clientToken":"tok-1","state")").client_token);
}

TEST(ShadowRequest, NestingOfSixLevelsIsTheLimit) {
  // desired is level 1; six levels of objects under it hold a scalar at the deepest.
  EXPECT_TRUE(parse_update(R"({"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}})"));
  auto deep = refused(R"({"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}})");
  EXPECT_EQ(deep.code, 400);
  EXPECT_EQ(deep.message, "JSON contains too many levels of nesting; maximum is 6");
  // Arrays are levels too; an empty container at level 7 is no deeper node.
  EXPECT_EQ(refused(R"({"state":{"reported":{"a":{"b":{"c":{"d":{"e":[[1]]}}}}}}})").message,
            "JSON contains too many levels of nesting; maximum is 6");
  EXPECT_TRUE(parse_update(R"({"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{}}}}}}}}})"));
  // Raw nesting far beyond any valid section is refused before it is parsed.
  EXPECT_EQ(refused(std::string(10'000, '[') + std::string(10'000, ']')).message,
            "JSON contains too many levels of nesting; maximum is 6");
}

TEST(ShadowRequest, AcceptsOneTrailingNulAndEmptyGetOrDelete) {
  std::string with_nul = R"({"state":{"reported":{"on":true}},"clientToken":"c"})";
  with_nul.push_back('\0');
  auto u = parse_update(with_nul);
  ASSERT_TRUE(u);
  EXPECT_EQ(u.value().client_token, "c");
  EXPECT_FALSE(parse_update(with_nul + std::string(1, '\0')));  // only one
  auto empty = parse_token_request("");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty.value().client_token);
  auto nul = parse_token_request(std::string_view("\0", 1));
  ASSERT_TRUE(nul);
  auto tok = parse_token_request(R"({"clientToken":"g1"})");
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok.value().client_token, "g1");
  EXPECT_EQ(parse_token_request("nope").error().message, "Invalid JSON");
}

TEST(ShadowRequest, RefusesOversizedAndNonUtf8Payloads) {
  auto big = parse_update(std::string(kMaxRequestBytes + 1, ' '));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, 413);
  EXPECT_EQ(big.error().message, "The payload exceeds the maximum size allowed");
  auto latin1 = parse_update("{\"state\":{\"reported\":{\"x\":\"\xE9\"}}}");
  ASSERT_FALSE(latin1);
  EXPECT_EQ(latin1.error().code, 415);
  EXPECT_EQ(latin1.error().message, "Unsupported documented encoding; supported encoding is UTF-8");
  EXPECT_TRUE(parse_update("{\"state\":{\"reported\":{\"x\":\"\xC3\xA9\xE2\x82\xAC\"}}}"));
}

TEST(ShadowUpdate, MergesPartiallyAndNullDeletes) {
  auto s = applied(std::nullopt, R"({"state":{"desired":{"color":"red","mode":{"a":1,"b":2}}}})");
  EXPECT_EQ(s.version, 1);
  s = applied(s, R"({"state":{"desired":{"color":null,"mode":{"b":3,"c":[1,2]}}}})", kT1);
  EXPECT_EQ(s.state, json::parse(R"({"desired":{"mode":{"a":1,"b":3,"c":[1,2]}}})"));
  EXPECT_EQ(s.version, 2);
  EXPECT_EQ(s.metadata, json::parse(R"({"desired":{"mode":{"a":{"timestamp":1700000000},
      "b":{"timestamp":1700000100},"c":[{"timestamp":1700000100},{"timestamp":1700000100}]}}})"));
  // Arrays are replaced whole, never merged.
  s = applied(s, R"({"state":{"desired":{"mode":{"c":[9]}}}})");
  EXPECT_EQ(s.state["desired"]["mode"]["c"], json::parse("[9]"));
  // Deleting every key of an object removes the object, and an empty section goes too.
  s = applied(s, R"({"state":{"desired":{"mode":{"a":null,"b":null,"c":null}}}})");
  EXPECT_EQ(s.state, json::object());
  EXPECT_EQ(s.metadata, json::object());
}

TEST(ShadowUpdate, SectionNullAndStateNullClear) {
  auto s = applied(std::nullopt, R"({"state":{"desired":{"a":1},"reported":{"a":2}}})");
  s = applied(s, R"({"state":{"desired":null}})");
  EXPECT_EQ(s.state, json::parse(R"({"reported":{"a":2}})"));
  EXPECT_FALSE(s.metadata.contains("desired"));
  s = applied(s, R"({"state":null})");
  EXPECT_EQ(s.state, json::object());
  EXPECT_EQ(s.version, 3);  // the version still increments
}

TEST(ShadowUpdate, AcceptedEchoesTheRequestStateWithMetadataOfTouchedLeaves) {
  auto a =
      apply_update(std::nullopt, 0, update(R"({"state":{"desired":{"x":1,"y":null},"delta":{"z":1}},
                                   "clientToken":"t"})"),
                   kT0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a.value().accepted, json::parse(R"({"state":{"desired":{"x":1,"y":null}},
      "metadata":{"desired":{"x":{"timestamp":1700000000},"y":{"timestamp":1700000000}}},
      "version":1,"timestamp":1700000000,"clientToken":"t"})"));
  EXPECT_FALSE(a.value().previous);
  EXPECT_FALSE(a.value().documents.contains("previous"));
  EXPECT_EQ(a.value().documents["current"]["state"], json::parse(R"({"desired":{"x":1}})"));
}

TEST(ShadowUpdate, VersionConflictAndVersionForAMissingShadow) {
  auto s = applied(std::nullopt, R"({"state":{"reported":{"a":1}}})");
  auto conflict = apply_update(s, 0, update(R"({"state":{"reported":{"a":2}},"version":7,
                                              "clientToken":"k"})"),
                               kT0);
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code, 409);
  EXPECT_EQ(conflict.error().message, "Version conflict");
  EXPECT_EQ(conflict.error().client_token, "k");
  EXPECT_TRUE(apply_update(s, 0, update(R"({"state":{"reported":{"a":2}},"version":1})"), kT0));
  auto missing = apply_update(std::nullopt, 0, update(R"({"state":{},"version":1})"), kT0);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "Invalid version");
}

TEST(ShadowUpdate, ARecreatedShadowContinuesTheDeletedOnesVersion) {
  auto a = apply_update(std::nullopt, 41, update(R"({"state":{"reported":{"a":1}}})"), kT0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a.value().current.version, 42);
}

TEST(ShadowUpdate, RefusesAStateOverEightKilobytes) {
  const std::string fill(4000, 'x');
  auto s = applied(std::nullopt, R"({"state":{"desired":{"a":")" + fill + "\"}}}");
  auto over = apply_update(s, 0,
                           update(R"({"state":{"reported":{"b":")" + fill + R"(","c":")" +
                                  std::string(300, 'y') + "\"}}}"),
                           kT0);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, 413);
  EXPECT_EQ(over.error().message, "The payload exceeds the maximum size allowed");
  EXPECT_TRUE(apply_update(s, 0, update(R"({"state":{"reported":{"b":")" + fill + "\"}}}"), kT0));
}

TEST(ShadowDelta, IsExactlyTheDesiredKeysThatDiffer) {
  const json state = json::parse(R"({
    "desired":{"same":1,"num":1,"only_desired":"x","nested":{"a":1,"b":{"c":2,"d":3}},
               "arr":[1,2],"arr_same":[1],"obj_vs_scalar":{"k":1}},
    "reported":{"same":1,"num":1.0,"only_reported":true,"nested":{"a":1,"b":{"c":2,"d":4}},
               "arr":[1,3],"arr_same":[1],"obj_vs_scalar":5}})");
  EXPECT_EQ(delta_of(state), json::parse(R"({"only_desired":"x","nested":{"b":{"d":3}},
      "arr":[1,2],"obj_vs_scalar":{"k":1}})"));
  EXPECT_EQ(delta_of(json::parse(R"({"reported":{"a":1}})")), json::object());
}

TEST(ShadowDelta, PublishedWithAllDifferingKeysAndDesiredMetadata) {
  auto s = applied(std::nullopt, R"({"state":{"desired":{"a":1,"b":{"c":2}},"reported":{"a":0}}})");
  auto a = apply_update(s, 0, update(R"({"state":{"desired":{"d":4}},"clientToken":"q"})"), kT1);
  ASSERT_TRUE(a);
  ASSERT_TRUE(a.value().delta);
  EXPECT_EQ(*a.value().delta, json::parse(R"({"state":{"a":1,"b":{"c":2},"d":4},
      "metadata":{"a":{"timestamp":1700000000},"b":{"c":{"timestamp":1700000000}},
                  "d":{"timestamp":1700000100}},
      "version":2,"timestamp":1700000100,"clientToken":"q"})"));
  // Reported catching up leaves no delta, and desired stays (the service never clears it).
  auto caught = apply_update(a.value().current, 0,
                             update(R"({"state":{"reported":{"a":1,"b":{"c":2},"d":4}}})"), kT1);
  ASSERT_TRUE(caught);
  EXPECT_FALSE(caught.value().delta);
  EXPECT_TRUE(caught.value().current.state.contains("desired"));
  // A key deleted from reported but still desired comes back in the delta.
  auto dropped =
      apply_update(caught.value().current, 0, update(R"({"state":{"reported":{"d":null}}})"), kT1);
  ASSERT_TRUE(dropped);
  ASSERT_TRUE(dropped.value().delta);
  EXPECT_EQ((*dropped.value().delta)["state"], json::parse(R"({"d":4})"));
}

TEST(ShadowDocuments, ReplyDocumentsCarryAwsMembers) {
  auto s = applied(std::nullopt, R"({"state":{"desired":{"a":1}}})");
  auto a = apply_update(s, 0, update(R"({"state":{"reported":{"a":1}},"clientToken":"z"})"), kT1);
  ASSERT_TRUE(a);
  const json& docs = a.value().documents;
  EXPECT_EQ(docs["previous"]["version"], 1);
  EXPECT_EQ(docs["previous"]["state"], json::parse(R"({"desired":{"a":1}})"));
  EXPECT_EQ(docs["current"]["version"], 2);
  EXPECT_EQ(docs["current"]["state"], json::parse(R"({"desired":{"a":1},"reported":{"a":1}})"));
  EXPECT_EQ(docs["timestamp"], kT1);
  EXPECT_EQ(docs["clientToken"], "z");

  auto g = get_accepted(applied(s, R"({"state":{"reported":{"a":2}}})"), kT1, "g");
  EXPECT_EQ(g["state"]["delta"], json::parse(R"({"a":1})"));
  EXPECT_EQ(g["version"], 2);
  EXPECT_EQ(g["clientToken"], "g");
  EXPECT_TRUE(g["metadata"]["reported"].contains("a"));
  EXPECT_FALSE(get_accepted(s, kT1, std::nullopt).contains("clientToken"));

  EXPECT_EQ(delete_accepted(5, kT1, "d"),
            json::parse(R"({"version":5,"timestamp":1700000100,"clientToken":"d"})"));
  EXPECT_EQ(rejected(not_found("t1", "", "x"), kT1),
            json::parse(R"({"code":404,"message":"No shadow exists with name: 't1'",
                            "timestamp":1700000100,"clientToken":"x"})"));
  EXPECT_EQ(not_found("t1", "cfg", std::nullopt).message, "No shadow exists with name: 'cfg'");
}

}  // namespace
}  // namespace edgekit::fleetd::shadow
