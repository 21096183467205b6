// The CBOR reader and writer: RFC 8949 Appendix A examples in the supported subset (decoded,
// then encoded again to the same bytes), the rest of Appendix A refused with a named error,
// lookups, the writer's preferred encodings, misuse and overflow at every buffer length.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "edgekit/doc/cbor.hpp"
#include "edgekit/doc/json.hpp"
#include "edgekit/testing/alloc_guard.hpp"
#include "support.hpp"

namespace edgekit::doc::test {
namespace {

using namespace std::string_view_literals;
using CborParse = edgekit::testing::PureTest;
using CborLookup = edgekit::testing::PureTest;
using CborWriter = edgekit::testing::PureTest;

// Bytes from hex digits, on the stack.
struct Hex {
  explicit Hex(std::string_view hex) {
    for (std::size_t k = 0; k + 1 < hex.size(); k += 2) {
      const auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
      bytes[n++] = static_cast<std::byte>(nibble(hex[k]) * 16 + nibble(hex[k + 1]));
    }
  }
  [[nodiscard]] std::span<const std::byte> span() const { return {bytes, n}; }
  std::byte bytes[256]{};
  std::size_t n = 0;
};

bool same(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// Decodes `hex` and encodes the result again; the bytes must be the same (preferred encoding).
void expect_round_trip(std::string_view hex) {
  const Hex in(hex);
  const auto item = cbor::parse(in.span());
  ASSERT_TRUE(item.has_value()) << hex << ": " << item.error();
  std::byte out[256];
  cbor::Writer w(out);
  ASSERT_TRUE(copy_value(*item, w)) << hex;
  const auto encoded = w.finish();
  ASSERT_TRUE(encoded.has_value()) << hex << ": " << encoded.error();
  EXPECT_TRUE(same(*encoded, in.span())) << hex;
}

TEST_F(CborParse, Rfc8949AppendixAExamplesOfTheSubsetDecodeAndEncodeAgain) {
  struct Int {
    std::string_view hex;
    std::int64_t value;
  };
  const Int kInts[] = {{"00", 0},         {"01", 1},          {"0a", 10},
                       {"17", 23},        {"1818", 24},       {"1819", 25},
                       {"1864", 100},     {"1903e8", 1000},   {"1a000f4240", 1000000},
                       {"1b000000e8d4a51000", 1000000000000}, {"20", -1},
                       {"29", -10},       {"3863", -100},     {"3903e7", -1000}};
  for (const Int& c : kInts) {
    const Hex in(c.hex);
    const auto v = cbor::parse(in.span());
    ASSERT_TRUE(v.has_value()) << c.hex;
    EXPECT_EQ(*v->as_int64(), c.value) << c.hex;
    expect_round_trip(c.hex);
  }
  const Hex max("1bffffffffffffffff");
  EXPECT_EQ(*cbor::parse(max.span())->as_uint64(), UINT64_MAX);
  EXPECT_EQ(cbor::parse(max.span())->as_int64().error().code, Errc::IntegerOutOfRange);
  const Hex min("3bffffffffffffffff");  // -18446744073709551616
  EXPECT_EQ(cbor::parse(min.span())->as_int64().error().code, Errc::IntegerOutOfRange);
  EXPECT_EQ(cbor::parse(min.span())->as_uint64().error().code, Errc::IntegerOutOfRange);
  const Hex int64_min("3b7fffffffffffffff");
  EXPECT_EQ(*cbor::parse(int64_min.span())->as_int64(), INT64_MIN);
  const Hex beyond("3b8000000000000000");
  EXPECT_EQ(cbor::parse(beyond.span())->as_int64().error().code, Errc::IntegerOutOfRange);

  EXPECT_FALSE(*cbor::parse(Hex("f4").span())->as_bool());
  EXPECT_TRUE(*cbor::parse(Hex("f5").span())->as_bool());
  EXPECT_TRUE(cbor::parse(Hex("f6").span())->is_null());
  EXPECT_EQ(cbor::parse(Hex("40").span())->as_bytes()->size(), 0u);
  const Hex four("4401020304");
  EXPECT_EQ(cbor::parse(four.span())->as_bytes()->size(), 4u);
  EXPECT_EQ(*cbor::parse(Hex("60").span())->as_string_view(), "");
  EXPECT_EQ(*cbor::parse(Hex("6161").span())->as_string_view(), "a");
  EXPECT_EQ(*cbor::parse(Hex("6449455446").span())->as_string_view(), "IETF");
  EXPECT_EQ(*cbor::parse(Hex("62225c").span())->as_string_view(), "\"\\");
  EXPECT_EQ(*cbor::parse(Hex("62c3bc").span())->as_string_view(), "\xc3\xbc");
  EXPECT_EQ(*cbor::parse(Hex("63e6b0b4").span())->as_string_view(), "\xe6\xb0\xb4");
  EXPECT_EQ(*cbor::parse(Hex("64f0908591").span())->as_string_view(), "\xf0\x90\x85\x91");
  for (const std::string_view hex :
       {"1bffffffffffffffff", "f4", "f5", "f6", "40", "4401020304", "60",
        "6161", "6449455446", "62225c", "62c3bc", "63e6b0b4", "64f0908591", "80", "83010203",
        "8301820203820405",
        "98190102030405060708090a0b0c0d0e0f101112131415161718181819", "a0",
        "a26161016162820203", "826161a161626163",
        "a56161614161626142616361436164614461656145"}) {
    expect_round_trip(hex);
  }
}

TEST_F(CborParse, RefusesTheRestOfAppendixAWithANamedError) {
  const Reject kRejected[] = {
      {"a201020304", Errc::NonTextKey, 1},                    // {1: 2, 3: 4}
      {"f90000", Errc::UnsupportedFloat, 0},                  // 0.0 (half)
      {"f93c00", Errc::UnsupportedFloat, 0},
      {"fa47c35000", Errc::UnsupportedFloat, 0},              // 100000.0 (single)
      {"fb3ff199999999999a", Errc::UnsupportedFloat, 0},      // 1.1 (double)
      {"f97e00", Errc::UnsupportedFloat, 0},                  // NaN
      {"f7", Errc::UnsupportedSimpleValue, 0},                // undefined
      {"f0", Errc::UnsupportedSimpleValue, 0},                // simple(16)
      {"f8ff", Errc::UnsupportedSimpleValue, 0},              // simple(255)
      {"f818", Errc::UnsupportedSimpleValue, 0},              // malformed two-byte simple(24)
      {"c249010000000000000000", Errc::UnsupportedTag, 0},    // bignum 2^64
      {"c074323031332d30332d32315432303a30343a30305a", Errc::UnsupportedTag, 0},
      {"d74401020304", Errc::UnsupportedTag, 0},
      {"5f42010243030405ff", Errc::IndefiniteLength, 0},
      {"7f657374726561646d696e67ff", Errc::IndefiniteLength, 0},
      {"9fff", Errc::IndefiniteLength, 0},
      {"bf61610161629f0203ffff", Errc::IndefiniteLength, 0},
      {"826161bf61626163ff", Errc::IndefiniteLength, 3},
      {"ff", Errc::IndefiniteLength, 0},                      // a break with nothing to end
      {"1f", Errc::ReservedAdditionalInfo, 0},
      {"3f", Errc::ReservedAdditionalInfo, 0},
      {"df", Errc::ReservedAdditionalInfo, 0},
      {"1c", Errc::ReservedAdditionalInfo, 0},
      {"5d", Errc::ReservedAdditionalInfo, 0},
      {"fe", Errc::ReservedAdditionalInfo, 0},
      {"1817", Errc::NonPreferredEncoding, 0},                // 23 in two bytes
      {"190017", Errc::NonPreferredEncoding, 0},
      {"1a0000ffff", Errc::NonPreferredEncoding, 0},
      {"1b00000000ffffffff", Errc::NonPreferredEncoding, 0},
      {"3800", Errc::NonPreferredEncoding, 0},
      {"5800", Errc::NonPreferredEncoding, 0},
      {"780161", Errc::NonPreferredEncoding, 0},
      {"8180", Errc::Ok, 0},                                  // (accepted: see below)
      {"", Errc::Empty, 0},
      {"18", Errc::UnexpectedEnd, 1},
      {"1b0000", Errc::UnexpectedEnd, 3},
      {"6261", Errc::UnexpectedEnd, 2},
      {"8201", Errc::UnexpectedEnd, 2},
      {"a16161", Errc::UnexpectedEnd, 3},
      {"9bffffffffffffffff", Errc::UnexpectedEnd, 9},         // a count no document can hold
      {"5bffffffffffffffff", Errc::UnexpectedEnd, 9},
      {"0101", Errc::TrailingData, 1},
      {"8001", Errc::TrailingData, 1},
      {"62c328", Errc::InvalidUtf8, 1},
      {"6461eda080", Errc::InvalidUtf8, 2},                   // an encoded surrogate
      {"a2616101616102", Errc::DuplicateKey, 4},
      {"81a3616101616202616103", Errc::DuplicateKey, 8},
      {"a14101", Errc::NonTextKey, 1},                        // a byte-string key
      {"a1f601", Errc::NonTextKey, 1},
  };
  for (const Reject& r : kRejected) {
    const Hex in(r.input);
    const auto item = cbor::parse(in.span());
    if (r.code == Errc::Ok) {
      EXPECT_TRUE(item.has_value()) << r.input;
      continue;
    }
    ASSERT_FALSE(item.has_value()) << "accepted: " << r.input;
    EXPECT_EQ(item.error(), (Error{r.code, r.offset})) << r.input;
  }
}

TEST_F(CborParse, NestingDeeperThanTheCallersLimitIsTooDeep) {
  std::byte deep[40];
  for (std::size_t d = 0; d < 40; ++d) deep[d] = std::byte{0x81};
  const auto nested = [&](std::size_t depth) {
    for (std::size_t d = 0; d < 40; ++d) deep[d] = std::byte{0x81};
    deep[depth] = std::byte{0x01};
    return std::span<const std::byte>(deep, depth + 1);
  };
  EXPECT_TRUE(cbor::parse(nested(16)).has_value());
  EXPECT_EQ(cbor::parse(nested(17)).error(), (Error{Errc::TooDeep, 16}));
  EXPECT_EQ(cbor::parse(nested(3), {.max_depth = 2}).error(), (Error{Errc::TooDeep, 2}));
  EXPECT_TRUE(cbor::parse(nested(kMaxParseDepth), {.max_depth = 100}).has_value());
  EXPECT_EQ(cbor::parse(nested(kMaxParseDepth + 1), {.max_depth = 100}).error().code,
            Errc::TooDeep);
  const Hex empty_array("80");
  EXPECT_EQ(cbor::parse(empty_array.span(), {.max_depth = 0}).error(), (Error{Errc::TooDeep, 0}));
}

// AWS IoT Fleet Provisioning's CreateKeysAndCertificate response, as CBOR.
void write_keys_response(cbor::Writer& w) {
  const std::byte cert_der[] = {std::byte{0x30}, std::byte{0x82}, std::byte{0x01}};
  w.begin_object()
      .member("certificateId", "abc123")
      .member("certificatePem", "-----BEGIN CERTIFICATE-----")
      .member("privateKey", "-----BEGIN RSA PRIVATE KEY-----")
      .member("certificateOwnershipToken", "tok")
      .key("parameters")
      .begin_object()
      .member("SerialNumber", 12345u)
      .member("Offset", -2)
      .member("der", std::span<const std::byte>(cert_der))
      .key("list")
      .begin_array()
      .boolean(true)
      .null()
      .end_array()
      .end_object()
      .end_object();
}

TEST_F(CborLookup, FindsByKeyAndPathAndIterates) {
  std::byte buf[256];
  cbor::Writer w(buf);
  write_keys_response(w);
  const auto encoded = w.finish();
  ASSERT_TRUE(encoded.has_value()) << encoded.error();
  const auto doc = cbor::parse(*encoded);
  ASSERT_TRUE(doc.has_value()) << doc.error();
  EXPECT_EQ(*doc->find("certificateId")->as_string_view(), "abc123");
  EXPECT_EQ(*doc->at_path("parameters.SerialNumber")->as_uint64(), 12345u);
  EXPECT_EQ(*doc->at_path("parameters.Offset")->as_int64(), -2);
  EXPECT_EQ(doc->at_path("parameters.der")->as_bytes()->size(), 3u);
  EXPECT_TRUE(*doc->at_path("parameters.list.0")->as_bool());
  EXPECT_TRUE(doc->at_path("parameters.list.1")->is_null());
  EXPECT_EQ(doc->at_path("parameters.list.2").error().code, Errc::NotFound);
  EXPECT_EQ(doc->find("nope").error(), (Error{Errc::NotFound, 0}));
  EXPECT_EQ(doc->find("certificateId")->find("x").error().code, Errc::WrongType);
  EXPECT_EQ(doc->find("certificateId")->as_bytes().error().code, Errc::WrongType);
  EXPECT_EQ(doc->at_path("parameters.der")->as_string_view().error().code, Errc::WrongType);
  EXPECT_EQ(doc->at_path("a..b").error().code, Errc::InvalidPath);
  EXPECT_EQ(doc->size(), 5u);
  const char* keys[] = {"certificateId", "certificatePem", "privateKey",
                        "certificateOwnershipToken", "parameters"};
  std::size_t k = 0;
  for (const cbor::Member& m : doc->members()) {
    ASSERT_LT(k, 5u);
    EXPECT_TRUE(m.key.equals(keys[k]));
    ++k;
  }
  EXPECT_EQ(k, 5u);
  k = 0;
  for ([[maybe_unused]] const cbor::Value& e : doc->at_path("parameters.list")->elements()) ++k;
  EXPECT_EQ(k, 2u);
  EXPECT_TRUE(doc->elements().empty());
  EXPECT_EQ(doc->find("certificateId")->size(), 0u);
  EXPECT_TRUE(doc->find("certificateId")->members().empty());
  EXPECT_EQ(cbor::Value().size(), 0u);
  EXPECT_TRUE(cbor::Value().elements().empty());
  char text[8];
  EXPECT_EQ(*doc->find("certificateId")->copy_string(text), "abc123");
  EXPECT_EQ(doc->find("certificatePem")->copy_string(text).error().code, Errc::BufferTooSmall);
  // A sub-map copied verbatim.
  std::byte out[128];
  cbor::Writer v(out);
  v.value(*doc->find("parameters"));
  EXPECT_TRUE(same(*v.finish(), doc->find("parameters")->encoded()));
}

TEST_F(CborWriter, WidensContainerHeadsToTheShortestDefiniteLength) {
  std::byte buf[2048];
  for (const std::size_t count : {0u, 1u, 23u, 24u, 255u, 256u}) {
    cbor::Writer w(buf);
    w.begin_array();
    for (std::size_t k = 0; k < count; ++k) w.begin_object().member("k", k % 2 == 0).end_object();
    w.end_array();
    const auto item = w.finish();
    ASSERT_TRUE(item.has_value()) << count << ": " << item.error();
    const std::size_t head = count < 24 ? 1 : count < 256 ? 2 : 3;
    EXPECT_EQ(item->size(), head + count * 4) << count;
    const auto back = cbor::parse(*item);
    ASSERT_TRUE(back.has_value()) << count << ": " << back.error();
    EXPECT_EQ(back->size(), count);
    if (count > 0) {
      EXPECT_EQ(*back->at(count - 1)->find("k")->as_bool(), (count - 1) % 2 == 0);
    }
  }
}

TEST_F(CborWriter, EncodesIntegersAndStringsInTheirShortestForm) {
  struct Case {
    std::int64_t v;
    std::string_view hex;
  };
  const Case kCases[] = {{0, "00"},         {23, "17"},           {24, "1818"},
                         {255, "18ff"},     {256, "190100"},      {65535, "19ffff"},
                         {65536, "1a00010000"},                   {-1, "20"},
                         {-24, "37"},       {-25, "3818"},        {-256, "38ff"},
                         {-257, "390100"},  {INT64_MIN, "3b7fffffffffffffff"},
                         {INT64_MAX, "1b7fffffffffffffff"},       {4294967296, "1b0000000100000000"}};
  for (const Case& c : kCases) {
    std::byte buf[16];
    cbor::Writer w(buf);
    w.int64(c.v);
    EXPECT_TRUE(same(*w.finish(), Hex(c.hex).span())) << c.v;
  }
  std::byte buf[64];
  cbor::Writer w(buf);
  w.begin_array().string("IETF").bytes({}).uint64(UINT64_MAX).boolean(false).null().end_array();
  EXPECT_TRUE(same(*w.finish(), Hex("85644945544640" "1bffffffffffffffff" "f4f6").span()));
}

TEST_F(CborWriter, CallsOutOfSequenceAndBadTextAreRefused) {
  std::byte buf[64];
  const auto code = [&](auto&& calls) {
    cbor::Writer w(buf);
    calls(w);
    return w.finish().error().code;
  };
  EXPECT_EQ(code([](cbor::Writer& w) { w.begin_object().int64(1); }), Errc::WriterMisuse);
  EXPECT_EQ(code([](cbor::Writer& w) { w.begin_object().string("k"); }), Errc::WriterMisuse);
  EXPECT_EQ(code([](cbor::Writer& w) { w.begin_array().key("a"); }), Errc::WriterMisuse);
  EXPECT_EQ(code([](cbor::Writer& w) { w.begin_object().key("a").end_object(); }),
            Errc::WriterMisuse);
  EXPECT_EQ(code([](cbor::Writer& w) { w.begin_array().end_object(); }), Errc::WriterMisuse);
  EXPECT_EQ(code([](cbor::Writer& w) { w.null().null(); }), Errc::WriterMisuse);
  EXPECT_EQ(code([](cbor::Writer& w) { w.begin_object(); }), Errc::WriterMisuse);
  EXPECT_EQ(code([](cbor::Writer&) {}), Errc::WriterMisuse);
  EXPECT_EQ(code([](cbor::Writer& w) { w.string("\xed\xa0\x80"); }), Errc::InvalidArgument);
  EXPECT_EQ(code([](cbor::Writer& w) { w.begin_object().key("\xff"); }), Errc::InvalidArgument);
  EXPECT_EQ(code([](cbor::Writer& w) {
              for (std::size_t d = 0; d <= kMaxWriterDepth; ++d) w.begin_object().key("k");
            }),
            Errc::WriterTooDeep);
}

TEST_F(CborWriter, OverflowAtEveryBufferLengthIsReportedNeverTruncated) {
  // 31 elements: the array's head is widened at the end, which needs room of its own.
  const auto sample = [](cbor::Writer& w) {
    w.begin_array();
    for (int k = 0; k < 30; ++k) w.int64(k * 1000);
    w.begin_object().member("x", "y").end_object();
    w.end_array();
  };
  std::byte full[512];
  cbor::Writer ref(full);
  sample(ref);
  const auto expected = ref.finish();
  ASSERT_TRUE(expected.has_value());
  for (std::size_t len = 0; len < expected->size(); ++len) {
    std::byte buf[512];
    std::memset(buf, 0xAA, sizeof buf);
    cbor::Writer w(std::span<std::byte>(buf, len));
    sample(w);
    const auto r = w.finish();
    ASSERT_FALSE(r.has_value()) << len;
    EXPECT_EQ(r.error().code, Errc::BufferTooSmall) << len;
    EXPECT_EQ(w.size(), r.error().offset) << len;
    EXPECT_LE(w.size(), len);
    for (std::size_t k = len; k < sizeof buf; ++k) ASSERT_EQ(buf[k], std::byte{0xAA}) << len;
  }
  std::byte exact[512];
  cbor::Writer w(std::span<std::byte>(exact, expected->size()));
  sample(w);
  EXPECT_TRUE(same(*w.finish(), *expected));
}

TEST_F(CborWriter, OneTemplateWritesTheSameMessageInJsonAndCbor) {
  const auto request = [](auto& w) {
    w.begin_object().member("certificateOwnershipToken", "tok").key("parameters").begin_object();
    w.member("SerialNumber", "SN-1").member("Count", 3).end_object().end_object();
  };
  char text[128];
  json::Writer jw(text);
  request(jw);
  EXPECT_EQ(*jw.finish(),
            R"({"certificateOwnershipToken":"tok","parameters":{"SerialNumber":"SN-1","Count":3}})");
  std::byte bytes[128];
  cbor::Writer cw(bytes);
  request(cw);
  const auto item = cbor::parse(*cw.finish());
  ASSERT_TRUE(item.has_value());
  // And the JSON text, read and copied into a CBOR writer, gives the same bytes.
  std::byte again[128];
  cbor::Writer from_json(again);
  ASSERT_TRUE(copy_value(*json::parse(*jw.finish()), from_json));
  EXPECT_TRUE(same(*from_json.finish(), *cw.finish()));
}

}  // namespace
}  // namespace edgekit::doc::test
