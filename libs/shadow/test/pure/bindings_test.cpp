#include "edgekit/shadow/bindings.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "edgekit/doc/json.hpp"
#include "edgekit/shadow/documents.hpp"
#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::shadow {
namespace {

using ShadowBindings = edgekit::testing::PureTest;

struct Lamp {
  bool power = false;
  std::int32_t level = 0;
  std::int64_t energy = 0;
  char name[8] = "lamp";
  bool led_on = false;
  std::int32_t led_hue = 0;
};

struct Table {
  Lamp lamp;
  std::array<Binding, 6> bindings{
      bind("power", lamp.power),    bind("led.level", lamp.level), bind("led.color.hue", lamp.led_hue),
      bind("led.on", lamp.led_on),  bind("energy", lamp.energy),   bind("name", lamp.name)};
};

doc::json::Value parsed(std::string_view json) {
  auto v = doc::json::parse(json);
  EXPECT_TRUE(v) << json;
  return v ? *v : doc::json::Value{};
}

TEST_F(ShadowBindings, AppliesADeltaAndSaysWhichFieldsChanged) {
  Table t;
  auto changed = apply_state(
      parsed(R"({"power":true,"led":{"level":7,"color":{"hue":120}},"name":"desk","other":1})"),
      t.bindings);
  ASSERT_TRUE(changed);
  EXPECT_EQ(*changed, 0b100111u);  // power, led.level, led.color.hue, name
  EXPECT_TRUE(t.lamp.power);
  EXPECT_EQ(t.lamp.level, 7);
  EXPECT_EQ(t.lamp.led_hue, 120);
  EXPECT_EQ(std::string_view(t.lamp.name), "desk");
  EXPECT_FALSE(t.lamp.led_on);  // absent: untouched
  // The same delta again changes nothing.
  auto again = apply_state(
      parsed(R"({"power":true,"led":{"level":7,"color":{"hue":120}},"name":"desk"})"), t.bindings);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
}

TEST_F(ShadowBindings, NullLeavesTheFieldAlone) {
  Table t;
  t.lamp.level = 4;
  auto changed = apply_state(parsed(R"({"led":{"level":null},"power":null})"), t.bindings);
  ASSERT_TRUE(changed);
  EXPECT_EQ(*changed, 0u);
  EXPECT_EQ(t.lamp.level, 4);
}

TEST_F(ShadowBindings, AWrongTypeIsRejectedAndNothingIsWritten) {
  struct Case {
    std::string_view json;
    std::size_t index;
  };
  for (const Case& c : {
           Case{R"({"power":"yes","led":{"level":1}})", 0},
           Case{R"({"power":true,"led":{"level":1.5}})", 1},
           Case{R"({"power":true,"led":{"level":true}})", 1},
           Case{R"({"power":true,"led":5})", 1},  // a scalar where "led" must be an object
           Case{R"({"power":true,"energy":"1"})", 4},
           Case{R"({"power":true,"name":7})", 5},
           Case{R"({"power":true,"led":{"on":1}})", 3},
       }) {
    Table t;
    auto r = apply_state(parsed(c.json), t.bindings);
    ASSERT_FALSE(r) << c.json;
    EXPECT_EQ(r.error().errc, Errc::FieldTypeMismatch) << c.json;
    EXPECT_EQ(r.error().index, c.index) << c.json;
    EXPECT_FALSE(t.lamp.power) << c.json;  // all or nothing
    EXPECT_EQ(t.lamp.level, 0) << c.json;
  }
}

TEST_F(ShadowBindings, ValuesTooLargeForTheFieldAreFieldOverflow) {
  struct Case {
    std::string_view json;
    std::size_t index;
  };
  for (const Case& c : {
           Case{R"({"led":{"level":2147483648}})", 1},
           Case{R"({"led":{"level":-2147483649}})", 1},
           Case{R"({"energy":9223372036854775808})", 4},
           Case{R"({"name":"12345678"})", 5},  // 8 bytes + NUL do not fit char[8]
       }) {
    Table t;
    auto r = apply_state(parsed(c.json), t.bindings);
    ASSERT_FALSE(r) << c.json;
    EXPECT_EQ(r.error().errc, Errc::FieldOverflow) << c.json;
    EXPECT_EQ(r.error().index, c.index) << c.json;
  }
  // At the limits they fit.
  Table t;
  auto r = apply_state(
      parsed(R"({"led":{"level":-2147483648},"energy":-9223372036854775808,"name":"1234567"})"),
      t.bindings);
  ASSERT_TRUE(r);
  EXPECT_EQ(t.lamp.level, INT32_MIN);
  EXPECT_EQ(t.lamp.energy, INT64_MIN);
  EXPECT_EQ(std::string_view(t.lamp.name), "1234567");
}

TEST_F(ShadowBindings, AnEscapedStringIsUnescapedIntoTheField) {
  Table t;
  auto r = apply_state(parsed(R"({"name":"a\"b\u00e9"})"), t.bindings);
  ASSERT_TRUE(r);
  EXPECT_EQ(std::string_view(t.lamp.name), "a\"b\xc3\xa9");
}

TEST_F(ShadowBindings, RefusesANonObjectStateAndBadTables) {
  Table t;
  EXPECT_EQ(apply_state(parsed("[1]"), t.bindings).error().errc, Errc::InvalidArgument);
  bool b = false;
  const std::array<Binding, 1> empty_segment{bind("led..on", b)};
  EXPECT_EQ(apply_state(parsed("{}"), empty_segment).error().errc, Errc::InvalidArgument);
  const std::array<Binding, 1> no_field{Binding{"x", FieldType::Bool, nullptr, 1}};
  EXPECT_EQ(apply_state(parsed("{}"), no_field).error().errc, Errc::InvalidArgument);
}

TEST_F(ShadowBindings, WritesNestedObjectsFromDottedPaths) {
  Table t;
  t.lamp.power = true;
  t.lamp.level = 3;
  t.lamp.led_hue = 200;
  t.lamp.led_on = true;
  t.lamp.energy = -5;
  std::array<char, 256> buf{};
  doc::json::Writer w(buf);
  ASSERT_TRUE(write_fields(w, t.bindings));
  auto doc = w.finish();
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc,
            R"({"power":true,"led":{"level":3,"color":{"hue":200},"on":true},"energy":-5,"name":"lamp"})");
}

TEST_F(ShadowBindings, WritesOnlyTheChangedFields) {
  Table t;
  auto changed = apply_state(parsed(R"({"led":{"on":true},"energy":9})"), t.bindings);
  ASSERT_TRUE(changed);
  std::array<char, 128> buf{};
  doc::json::Writer w(buf);
  ASSERT_TRUE(write_fields(w, t.bindings, *changed));
  EXPECT_EQ(*w.finish(), R"({"led":{"on":true},"energy":9})");
}

TEST_F(ShadowBindings, WritesTheReportedSectionOfAnUpdate) {
  Table t;
  t.lamp.power = true;
  std::array<char, 256> buf{};
  UpdateWriter u(buf);
  ASSERT_TRUE(write_fields(u.reported(), t.bindings, 0b000001));
  auto doc = u.finish("tok-1");
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc, R"({"state":{"reported":{"power":true}},"clientToken":"tok-1"})");
}

TEST_F(ShadowBindings, RefusesTablesThatWouldRepeatAKey) {
  bool a = false, b = false;
  std::int32_t n = 0;
  std::array<char, 64> buf{};
  {
    const std::array<Binding, 2> same{bind("x", a), bind("x", b)};
    doc::json::Writer w(buf);
    auto r = write_fields(w, same);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errc, Errc::InvalidArgument);
    EXPECT_EQ(r.error().index, 1u);
  }
  {
    const std::array<Binding, 2> leaf_and_object{bind("led", a), bind("led.on", b)};
    doc::json::Writer w(buf);
    EXPECT_EQ(write_fields(w, leaf_and_object).error().errc, Errc::InvalidArgument);
  }
  {
    // "led.*" split by another entry: "led" would be written twice.
    const std::array<Binding, 3> split{bind("led.on", a), bind("power", b), bind("led.level", n)};
    doc::json::Writer w(buf);
    auto r = write_fields(w, split);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().index, 2u);
    // Without the entry in between it is fine.
    doc::json::Writer w2(buf);
    EXPECT_TRUE(write_fields(w2, split, 0b101));
  }
  {
    char unterminated[2] = {'a', 'b'};
    const std::array<Binding, 1> t{bind("s", unterminated)};
    doc::json::Writer w(buf);
    EXPECT_EQ(write_fields(w, t).error().errc, Errc::InvalidArgument);
  }
}

TEST_F(ShadowBindings, ABufferTooSmallIsReportedAtEveryLength) {
  Table t;
  std::array<char, 256> whole{};
  doc::json::Writer full(whole);
  ASSERT_TRUE(write_fields(full, t.bindings));
  const std::size_t needed = full.finish()->size();
  for (std::size_t n = 0; n < needed; ++n) {
    std::array<char, 256> buf{};
    doc::json::Writer w(std::span(buf.data(), n));
    auto r = write_fields(w, t.bindings);
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().errc, Errc::BufferTooSmall) << n;
  }
}

}  // namespace
}  // namespace edgekit::shadow
