#include "edgekit/shadow/documents.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string_view>

#include "edgekit/shadow/delta_order.hpp"
#include "edgekit/shadow/topics.hpp"
#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::shadow {
namespace {

using ShadowDocuments = edgekit::testing::PureTest;
using ShadowRejections = edgekit::testing::PureTest;

// 64 bytes: the longest clientToken the service accepts (aws-iot-protocols.md 0).
constexpr std::string_view kToken64 =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string_view str(const doc::json::Value& v) {
  auto s = v.as_string_view();
  return s ? *s : std::string_view{"<not a plain string>"};
}

// --- Requests ------------------------------------------------------------------------------------

TEST_F(ShadowDocuments, WritesGetAndDeleteWithAndWithoutClientToken) {
  std::array<char, 128> out{};
  auto g = write_get_request("tok-1", out);
  ASSERT_TRUE(g);
  EXPECT_EQ(*g, R"({"clientToken":"tok-1"})");
  auto d = write_delete_request("", out);
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, "{}");
  EXPECT_TRUE(write_get_request(kToken64, out));
  const std::string_view token65 =
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefX";
  EXPECT_EQ(write_get_request(token65, out).error(), Errc::InvalidArgument);
  EXPECT_EQ(write_delete_request(token65, out).error(), Errc::InvalidArgument);
  EXPECT_EQ(write_get_request("\xFF", out).error(), Errc::InvalidArgument);  // not UTF-8
}

TEST_F(ShadowDocuments, WritesAnUpdateThroughTheDocWriter) {
  std::array<char, 256> out{};
  UpdateWriter u(out);
  u.reported().begin_object().member("color", "GREEN").member("level", 7).end_object();
  u.desired().null();
  auto doc = u.finish("tok", std::uint64_t{12});
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc, R"({"state":{"reported":{"color":"GREEN","level":7},"desired":null},)"
                  R"("clientToken":"tok","version":12})");
}

TEST_F(ShadowDocuments, WritesAnUpdateFromPreWrittenJson) {
  std::array<char, 256> out{};
  UpdateRequest r;
  r.desired = R"({ "color" : "RED", "sequence": ["RED","GREEN","BLUE"], "old": null })";
  auto doc = write_update_request(r, out);
  ASSERT_TRUE(doc);
  // Copied verbatim: the application's spacing is kept, the meaning is unchanged.
  EXPECT_EQ(*doc, R"({"state":{"desired":{ "color" : "RED", "sequence": ["RED","GREEN","BLUE"], )"
                  R"("old": null }}})");
  r.reported = "null";
  r.client_token = "c";
  r.version = 0;
  doc = write_update_request(r, out);
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->ends_with(R"("reported":null},"clientToken":"c","version":0})"));
  auto parsed = doc::json::parse(*doc);
  ASSERT_TRUE(parsed);
}

TEST_F(ShadowDocuments, UpdateRefusesWhatTheServiceWouldReject) {
  std::array<char, 256> out{};
  // No section at all (1.2: state needs desired or reported to mean anything).
  EXPECT_EQ(write_update_request(UpdateRequest{}, out).error(), Errc::InvalidArgument);
  // Sections that are not an object or null ("Desired node must be an object").
  for (std::string_view bad : {"1", "\"x\"", "[1]", "true", "{", "{\"a\":1,\"a\":2}", "{} {}"}) {
    UpdateRequest r;
    r.desired = bad;
    EXPECT_EQ(write_update_request(r, out).error(), Errc::InvalidArgument) << bad;
    r.desired = {};
    r.reported = bad;
    EXPECT_EQ(write_update_request(r, out).error(), Errc::InvalidArgument) << bad;
  }
  UpdateRequest r;
  r.reported = "{}";
  r.client_token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef!";
  EXPECT_EQ(write_update_request(r, out).error(), Errc::InvalidArgument);
  {
    UpdateWriter u(out);
    u.desired().string("RED");  // a scalar where an object is due
    EXPECT_EQ(u.finish().error(), Errc::InvalidArgument);
  }
  {
    UpdateWriter u(out);
    u.desired().begin_object().end_object();
    u.desired().begin_object().end_object();  // the same section twice
    EXPECT_EQ(u.finish().error(), Errc::InvalidArgument);
  }
  {
    UpdateWriter u(out);
    (void)u.desired();  // nothing written into it
    EXPECT_EQ(u.finish().error(), Errc::InvalidArgument);
  }
  {
    UpdateWriter u(out);
    u.reported().begin_object();  // left open
    EXPECT_EQ(u.finish().error(), Errc::InvalidArgument);
  }
  {
    UpdateWriter u(out);
    u.reported().null();
    EXPECT_TRUE(u.finish());
    EXPECT_EQ(u.finish().error(), Errc::InvalidArgument);  // finished already
  }
}

// Every request at every buffer length: BufferTooSmall below the document's size, never a byte
// written past the buffer, the exact document at its size.
TEST_F(ShadowDocuments, EveryWriterRefusesABufferTooSmallAtEveryLength) {
  UpdateRequest r;
  r.desired = R"({"color":"RED"})";
  r.reported = R"({"color":"GREEN","n":[1,2]})";
  r.client_token = kToken64;
  r.version = 123456789;
  for (int which = 0; which < 4; ++which) {
    auto write = [&](std::span<char> b) -> Result<std::string_view, Errc> {
      switch (which) {
        case 0:
          return write_get_request(kToken64, b);
        case 1:
          return write_delete_request("t", b);
        case 2:
          return write_update_request(r, b);
        default: {
          UpdateWriter u(b);
          u.reported().begin_object().member("on", true).end_object();
          return u.finish(kToken64, std::uint64_t{7});
        }
      }
    };
    std::array<char, 512> big{};
    auto whole = write(big);
    ASSERT_TRUE(whole) << which;
    std::array<char, 512> expected{};
    for (std::size_t i = 0; i < whole->size(); ++i) expected[i] = (*whole)[i];
    for (std::size_t n = 0; n < whole->size(); ++n) {
      std::array<char, 520> b{};
      b.fill('#');
      auto t = write({b.data(), n});
      ASSERT_FALSE(t) << which << " at " << n;
      EXPECT_EQ(t.error(), Errc::BufferTooSmall) << which << " at " << n;
      for (std::size_t g = n; g < b.size(); ++g) ASSERT_TRUE(b[g] == '#') << which << " at " << n;
    }
    std::array<char, 512> exact{};
    auto t = write({exact.data(), whole->size()});
    ASSERT_TRUE(t) << which;
    EXPECT_EQ(*t, std::string_view(expected.data(), whole->size()));
  }
}

// --- Responses: documents as AWS sends them (aws-iot-protocols.md 1.3) ---------------------------

TEST_F(ShadowDocuments, ReadsGetAccepted) {
  const std::string_view payload =
      R"({"state":{"desired":{"color":"RED","sequence":["RED","GREEN","BLUE"]},)"
      R"("reported":{"color":"GREEN"},"delta":{"color":"RED","sequence":["RED","GREEN","BLUE"]}},)"
      R"("metadata":{"desired":{"color":{"timestamp":12345},"sequence":[{"timestamp":12345},)"
      R"({"timestamp":12345},{"timestamp":12345}]},"reported":{"color":{"timestamp":12345}}},)"
      R"("version":10,"clientToken":"UniqueClientToken","timestamp":123456789})";
  auto a = read_accepted(payload);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->version, 10u);
  EXPECT_EQ(a->timestamp, 123456789);
  EXPECT_TRUE(a->client_token.equals("UniqueClientToken"));
  ASSERT_TRUE(a->desired && a->reported && a->delta && a->metadata);
  EXPECT_EQ(str(*a->desired->find("color")), "RED");
  EXPECT_EQ(str(*a->reported->find("color")), "GREEN");
  EXPECT_EQ(a->delta->find("sequence")->size(), 3u);
  EXPECT_EQ(*a->metadata->at_path("reported.color.timestamp")->as_int64(), 12345);
  EXPECT_TRUE(a->state.is_object());
}

TEST_F(ShadowDocuments, ReadsUpdateAcceptedWithNullsAsSentAndAClearedState) {
  auto a = read_accepted(
      R"({"state":{"reported":{"color":null,"level":3},"desired":null},)"
      R"("metadata":{"reported":{"color":{"timestamp":1469564492},"level":{"timestamp":1469564492}}},)"
      R"("version":27,"timestamp":1469564492})");
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->desired);
  EXPECT_TRUE(a->desired->is_null());
  EXPECT_TRUE(a->reported->find("color")->is_null());
  EXPECT_FALSE(a->delta);
  EXPECT_TRUE(a->client_token.is_null());  // no token sent, none echoed
  EXPECT_FALSE(a->client_token.equals(""));
  // "state": null clears both sections (1.2); the accepted echo keeps the null.
  auto cleared = read_accepted(R"({"state":null,"metadata":{},"version":28,"timestamp":1})");
  ASSERT_TRUE(cleared);
  EXPECT_TRUE(cleared->state.is_null());
  EXPECT_FALSE(cleared->desired || cleared->reported);
  // The NUL terminator AWS's C demos send is tolerated (edgekit::doc).
  constexpr char kWithNul[] = "{\"state\":{},\"version\":1,\"timestamp\":2}";
  EXPECT_TRUE(read_accepted(std::string_view(kWithNul, sizeof kWithNul)));  // the NUL included
}

TEST_F(ShadowDocuments, ReadsAnEscapedClientTokenWithoutCopying) {
  auto a = read_accepted(R"({"state":{},"version":1,"timestamp":2,"clientToken":"a\u002Db"})");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->client_token.equals("a-b"));
}

TEST_F(ShadowDocuments, ReadsDelta) {
  auto d = read_delta(
      R"({"state":{"color":"RED","lights":{"front":"on"}},)"
      R"("metadata":{"color":{"timestamp":1469564492},"lights":{"front":{"timestamp":1469564492}}},)"
      R"("version":26,"timestamp":1469564492,"clientToken":"admin-7"})");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->version, 26u);
  EXPECT_EQ(d->timestamp, 1469564492);
  EXPECT_EQ(str(*d->state.at_path("lights.front")), "on");
  EXPECT_TRUE(d->client_token.equals("admin-7"));
  ASSERT_TRUE(d->metadata);
  // Without metadata and token it still reads.
  auto bare = read_delta(R"({"state":{"x":1},"version":2,"timestamp":3})");
  ASSERT_TRUE(bare);
  EXPECT_FALSE(bare->metadata);
}

TEST_F(ShadowDocuments, ReadsDocuments) {
  auto d = read_documents(
      R"({"previous":{"state":{"desired":{"color":"RED"},"reported":{"color":"GREEN"}},)"
      R"("metadata":{"desired":{"color":{"timestamp":12345}},"reported":{"color":{"timestamp":12345}}},)"
      R"("version":1},)"
      R"("current":{"state":{"desired":{"color":"DOUBLE RED"},"reported":{"color":"GREEN"}},)"
      R"("metadata":{"desired":{"color":{"timestamp":123456}},"reported":{"color":{"timestamp":12345}}},)"
      R"("version":2},"timestamp":123456,"clientToken":"x"})");
  ASSERT_TRUE(d);
  ASSERT_TRUE(d->previous);
  EXPECT_EQ(d->previous->version, 1u);
  EXPECT_EQ(d->current.version, 2u);
  EXPECT_EQ(str(*d->current.state->at_path("desired.color")), "DOUBLE RED");
  EXPECT_EQ(d->timestamp, 123456);
  EXPECT_TRUE(d->client_token.equals("x"));
  // The first update of a shadow: no previous document (absent or null).
  auto first = read_documents(R"({"current":{"state":{"reported":{}},"version":1},"timestamp":5})");
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->previous);
  auto null_prev =
      read_documents(R"({"previous":null,"current":{"state":null,"version":1},"timestamp":5})");
  ASSERT_TRUE(null_prev);
  EXPECT_FALSE(null_prev->previous);
  EXPECT_TRUE(null_prev->current.state->is_null());
}

TEST_F(ShadowDocuments, ReadsDeleteAccepted) {
  auto d = read_delete_accepted(R"({"version":42,"timestamp":1700000000,"clientToken":"del-1"})");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->version, 42u);
  EXPECT_EQ(d->timestamp, 1700000000);
  EXPECT_TRUE(d->client_token.equals("del-1"));
}

TEST_F(ShadowDocuments, RefusesMalformedDocuments) {
  for (std::string_view bad : {
           "",
           "not json",
           "[]",
           "null",
           R"({"state":{},"version":1})",     // no timestamp
           R"({"state":{},"timestamp":1})",   // no version
           R"({"version":1,"timestamp":1})",  // no state
           R"({"state":[],"version":1,"timestamp":1})",
           R"({"state":{"desired":1},"version":1,"timestamp":1})",
           R"({"state":{"reported":"x"},"version":1,"timestamp":1})",
           R"({"state":{"delta":null},"version":1,"timestamp":1})",
           R"({"state":{},"metadata":[],"version":1,"timestamp":1})",
           R"({"state":{},"version":-1,"timestamp":1})",
           R"({"state":{},"version":1.0,"timestamp":1})",
           R"({"state":{},"version":"1","timestamp":1})",
           R"({"state":{},"version":18446744073709551616,"timestamp":1})",
           R"({"state":{},"version":1,"timestamp":1.5})",
           R"({"state":{},"version":1,"timestamp":1,"clientToken":7})",
           R"({"state":{},"version":1,"version":2,"timestamp":1})",  // duplicate key
       }) {
    auto a = read_accepted(bad);
    EXPECT_FALSE(a) << bad;
    if (!a) {
      EXPECT_EQ(a.error(), Errc::MalformedDocument) << bad;
    }
  }
  EXPECT_EQ(read_delta(R"({"state":null,"version":1,"timestamp":1})").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_delta(R"({"state":{},"version":1})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_documents(R"({"current":{"state":{}},"timestamp":1})").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_documents(R"({"current":{"version":1},"previous":[],"timestamp":1})").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_documents(R"({"current":{"version":1}})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_delete_accepted(R"({"version":1})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_delete_accepted(R"({"timestamp":1})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_rejected(R"({"message":"Version conflict"})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_rejected(R"({"code":"409"})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_rejected(R"({"code":409,"message":409})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_rejected(R"({"code":409,"timestamp":"x"})").error(), Errc::MalformedDocument);
}

// --- Rejections: every code and message of aws-iot-protocols.md 1.6
// -------------------------------

TEST_F(ShadowRejections, EveryDocumentedRejectionHasItsOwnErrc) {
  struct Case {
    std::int64_t code;
    std::string_view message;
    Errc errc;
  };
  for (const Case& c : {
           Case{400, "Invalid JSON", Errc::InvalidJson},
           Case{400, "Missing required node: state", Errc::MissingState},
           Case{400, "State node must be an object", Errc::StateNotObject},
           Case{400, "Desired node must be an object", Errc::DesiredNotObject},
           Case{400, "Reported node must be an object", Errc::ReportedNotObject},
           Case{400, "Invalid version", Errc::InvalidVersion},
           Case{400, "Invalid clientToken", Errc::InvalidClientToken},
           Case{400, "JSON contains too many levels of nesting; maximum is 6",
                Errc::TooDeeplyNested},
           Case{400, "State contains an invalid node", Errc::InvalidStateNode},
           Case{400, "Something new", Errc::BadRequest},
           Case{401, "Unauthorized", Errc::Unauthorized},
           Case{403, "Forbidden", Errc::Forbidden},
           Case{404, "Thing not found", Errc::ThingNotFound},
           Case{404, "No shadow exists with name: 'lamp-1'", Errc::ShadowNotFound},
           Case{404, "No shadow exists with name: 'config'", Errc::ShadowNotFound},
           Case{404, "No shadow exists with name: 'lamp-1~config'", Errc::ShadowNotFound},
           Case{409, "Version conflict", Errc::VersionConflict},
           Case{413, "The payload exceeds the maximum size allowed", Errc::PayloadTooLarge},
           Case{415, "Unsupported documented encoding; supported encoding is UTF-8",
                Errc::UnsupportedEncoding},
           Case{429, "Too Many Requests", Errc::Throttled},
           Case{500, "Internal service failure", Errc::ServiceFailure},
           Case{503, "", Errc::ServiceFailure},
           Case{418, "I'm a teapot", Errc::RejectedOther},
           Case{0, "", Errc::RejectedOther},
       }) {
    EXPECT_EQ(rejection_errc(c.code, c.message), c.errc) << c.code << " " << c.message;
    EXPECT_TRUE(is_rejection(c.errc));
    // The same through the reader, with a token and a timestamp as AWS sends them.
    std::array<char, 256> doc{};
    doc::json::Writer w(doc);
    w.begin_object()
        .member("code", c.code)
        .member("message", c.message)
        .member("timestamp", 1469564492)
        .member("clientToken", "tok-9")
        .end_object();
    auto text = w.finish();
    ASSERT_TRUE(text);
    auto r = read_rejected(*text);
    ASSERT_TRUE(r) << *text;
    EXPECT_EQ(r->errc, c.errc) << *text;
    EXPECT_EQ(r->code, c.code);
    EXPECT_TRUE(r->message.equals(c.message));
    ASSERT_TRUE(r->timestamp);
    EXPECT_EQ(*r->timestamp, 1469564492);
    EXPECT_TRUE(r->client_token.equals("tok-9"));
  }
  EXPECT_TRUE(is_retryable(Errc::Throttled));
  EXPECT_TRUE(is_retryable(Errc::ServiceFailure));
  EXPECT_FALSE(is_retryable(Errc::VersionConflict));
  EXPECT_FALSE(is_rejection(Errc::MalformedDocument));
  EXPECT_FALSE(is_rejection(Errc::Ok));
}

TEST_F(ShadowRejections, ToleratesMissingOptionalMembersAndEscapedMessages) {
  auto r = read_rejected(R"({"code":409})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->errc, Errc::VersionConflict);
  EXPECT_TRUE(r->message.is_null());
  EXPECT_FALSE(r->timestamp);
  EXPECT_TRUE(r->client_token.is_null());
  // An escaped spelling of a known message maps the same.
  r = read_rejected(R"({"code":400,"message":"Invalid\u0020version"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->errc, Errc::InvalidVersion);
  // A long message maps by code.
  r = read_rejected(
      R"({"code":404,"message":"No shadow exists with name: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-~cfg'"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->errc, Errc::ShadowNotFound);
}

TEST_F(ShadowRejections, EveryErrcHasADescription) {
  for (int v = 0; v < 64; ++v) {
    EXPECT_TRUE(to_string(static_cast<Errc>(v))[0] != '\0');
  }
}

// The example of docs/shadow.md, kept compiling and true.
TEST_F(ShadowDocuments, TheUserGuideExampleWorks) {
  namespace sh = edgekit::shadow;
  char topic_buf[sh::kMaxTopicLength], doc_buf[512];
  auto t = sh::topic("lamp-1", "", sh::Operation::Update, sh::TopicKind::Request, topic_buf);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, "$aws/things/lamp-1/shadow/update");
  sh::UpdateWriter u(doc_buf);
  u.reported().begin_object().member("power", true).member("level", 7).end_object();
  auto body = u.finish("tok-17");
  ASSERT_TRUE(body);
  EXPECT_EQ(*body, R"({"state":{"reported":{"power":true,"level":7}},"clientToken":"tok-17"})");

  sh::DeltaOrder order;
  std::int64_t applied_level = 0;
  for (std::string_view payload : {R"({"state":{"level":9},"version":5,"timestamp":1})",
                                   R"({"state":{"level":3},"version":4,"timestamp":1})"}) {
    if (auto d = sh::read_delta(payload);
        d && order.accept(d->version) == sh::DeltaDecision::Apply) {
      if (auto level = d->state.find("level")) applied_level = *level->as_int64();
    }
  }
  EXPECT_EQ(applied_level, 9);  // version 4 came late and was ignored
  auto r = sh::read_rejected(R"({"code":409,"message":"Version conflict","clientToken":"tok-17"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->errc, sh::Errc::VersionConflict);
  EXPECT_TRUE(r->client_token.equals("tok-17"));
}

}  // namespace
}  // namespace edgekit::shadow
