#include "edgekit/jobs/documents.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string_view>

#include "edgekit/jobs/topics.hpp"
#include "edgekit/testing/alloc_guard.hpp"

namespace edgekit::jobs {
namespace {

using JobsDocuments = edgekit::testing::PureTest;
using JobsRejections = edgekit::testing::PureTest;

// 64 bytes: the longest clientToken the service accepts (aws-iot-protocols.md 0).
constexpr std::string_view kToken64 =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
constexpr std::string_view kToken65 =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefX";

std::string_view str(const doc::json::Value& v) {
  auto s = v.as_string_view();
  return s ? *s : std::string_view{"<not a plain string>"};
}

// --- Requests ------------------------------------------------------------------------------------

TEST_F(JobsDocuments, WritesGetPendingWithAndWithoutClientToken) {
  std::array<char, 128> out{};
  auto g = write_get_pending_request("tok-1", out);
  ASSERT_TRUE(g);
  EXPECT_EQ(*g, R"({"clientToken":"tok-1"})");
  g = write_get_pending_request("", out);
  ASSERT_TRUE(g);
  EXPECT_EQ(*g, "{}");
  EXPECT_TRUE(write_get_pending_request(kToken64, out));
  EXPECT_EQ(write_get_pending_request(kToken65, out).error(), Errc::InvalidArgument);
  EXPECT_EQ(write_get_pending_request("\xFF", out).error(), Errc::InvalidArgument);
}

TEST_F(JobsDocuments, WritesStartNextWithStatusDetailsAndStepTimeout) {
  std::array<char, 256> out{};
  const StatusDetail details[] = {{"step", "download"}, {"progress:pct", "10"}};
  StartNextRequest r;
  r.status_details = details;
  r.step_timeout_in_minutes = 5;
  r.client_token = "c1";
  auto doc = write_start_next_request(r, out);
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc, R"({"statusDetails":{"step":"download","progress:pct":"10"},)"
                  R"("stepTimeoutInMinutes":5,"clientToken":"c1"})");
  doc = write_start_next_request(StartNextRequest{}, out);
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc, "{}");
  r = StartNextRequest{};
  r.status_details = std::span<const StatusDetail>{};  // present and empty: sent as {}
  r.step_timeout_in_minutes = -1;                      // discards the step timer (2.5)
  doc = write_start_next_request(r, out);
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc, R"({"statusDetails":{},"stepTimeoutInMinutes":-1})");
  r.step_timeout_in_minutes = -2;
  EXPECT_EQ(write_start_next_request(r, out).error(), Errc::InvalidArgument);
}

TEST_F(JobsDocuments, WritesDescribe) {
  std::array<char, 128> out{};
  DescribeRequest r;
  r.execution_number = 3;
  r.include_job_document = false;
  r.client_token = "d";
  auto doc = write_describe_request(r, out);
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc, R"({"executionNumber":3,"includeJobDocument":false,"clientToken":"d"})");
  doc = write_describe_request(DescribeRequest{}, out);
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc, "{}");
  r.client_token = kToken65;
  EXPECT_EQ(write_describe_request(r, out).error(), Errc::InvalidArgument);
}

TEST_F(JobsDocuments, WritesUpdateWithEveryField) {
  std::array<char, 512> out{};
  const StatusDetail details[] = {{"reason", "rebooted during step"}};
  UpdateRequest r;
  r.status = JobStatus::Failed;
  r.status_details = details;
  r.expected_version = 4;
  r.execution_number = 1;
  r.include_job_execution_state = true;
  r.include_job_document = false;
  r.step_timeout_in_minutes = 10;
  r.client_token = kToken64;
  auto doc = write_update_request(r, out);
  ASSERT_TRUE(doc);
  EXPECT_EQ(
      *doc,
      R"({"status":"FAILED","statusDetails":{"reason":"rebooted during step"},)"
      R"("executionNumber":1,"includeJobExecutionState":true,)"
      R"("includeJobDocument":false,"stepTimeoutInMinutes":10,"expectedVersion":4,"clientToken":)"
      R"("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})");
  UpdateRequest minimal;
  doc = write_update_request(minimal, out);
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc, R"({"status":"IN_PROGRESS"})");
  for (JobStatus s :
       {JobStatus::InProgress, JobStatus::Succeeded, JobStatus::Failed, JobStatus::Rejected}) {
    minimal.status = s;
    EXPECT_TRUE(write_update_request(minimal, out)) << to_string(s);
  }
  // The statuses only the service sets (2.4).
  for (JobStatus s :
       {JobStatus::Queued, JobStatus::TimedOut, JobStatus::Removed, JobStatus::Canceled}) {
    minimal.status = s;
    EXPECT_EQ(write_update_request(minimal, out).error(), Errc::InvalidArgument) << to_string(s);
  }
}

TEST_F(JobsDocuments, StatusDetailsLimits) {
  // Keys: 1-128 of [a-zA-Z0-9:_-]; values: 1-1024 characters, no control characters (2.5).
  char key129[129];
  for (char& c : key129) c = 'k';
  const std::string_view key128(key129, 128);
  char value1024[1024 * 2];  // 1024 two-byte characters (U+00E9)
  for (std::size_t i = 0; i < 1024 * 2; i += 2) {
    value1024[i] = '\xC3';
    value1024[i + 1] = '\xA9';
  }
  EXPECT_TRUE(valid_status_detail_key(key128));
  EXPECT_FALSE(valid_status_detail_key({key129, 129}));
  EXPECT_FALSE(valid_status_detail_key(""));
  EXPECT_FALSE(valid_status_detail_key("a b"));
  EXPECT_FALSE(valid_status_detail_key("a.b"));
  EXPECT_TRUE(valid_status_detail_key("a:b_c-D9"));
  EXPECT_TRUE(valid_status_detail_value({value1024, 2048}));  // 1024 characters in 2048 bytes
  char ascii1025[1025];
  for (char& c : ascii1025) c = 'v';
  EXPECT_TRUE(valid_status_detail_value({ascii1025, 1024}));
  EXPECT_FALSE(valid_status_detail_value({ascii1025, 1025}));
  EXPECT_FALSE(valid_status_detail_value(""));
  EXPECT_FALSE(valid_status_detail_value("line\nbreak"));
  EXPECT_FALSE(valid_status_detail_value("tab\t"));
  EXPECT_FALSE(valid_status_detail_value("del\x7F"));
  EXPECT_FALSE(valid_status_detail_value("c1 \xC2\x85"));  // U+0085 NEXT LINE
  EXPECT_TRUE(valid_status_detail_value("caf\xC3\xA9 \"quoted\" \\ /"));

  std::array<char, 4096> out{};
  auto with = [&](StatusDetail d) {
    const StatusDetail one[] = {d};
    UpdateRequest r;
    r.status_details = one;
    return write_update_request(r, out);
  };
  EXPECT_TRUE(with({key128, {value1024, 2048}}));
  EXPECT_EQ(with({{key129, 129}, "v"}).error(), Errc::InvalidArgument);
  EXPECT_EQ(with({"", "v"}).error(), Errc::InvalidArgument);
  EXPECT_EQ(with({"k", ""}).error(), Errc::InvalidArgument);
  EXPECT_EQ(with({"k", {ascii1025, 1025}}).error(), Errc::InvalidArgument);
  EXPECT_EQ(with({"k", "\x01"}).error(), Errc::InvalidArgument);
  EXPECT_EQ(with({"k", "\xFF"}).error(), Errc::InvalidArgument);  // not UTF-8 (the writer)
  const StatusDetail twice[] = {{"k", "1"}, {"k", "2"}};
  UpdateRequest r;
  r.status_details = twice;
  EXPECT_EQ(write_update_request(r, out).error(), Errc::InvalidArgument);
  StartNextRequest s;
  s.status_details = twice;
  EXPECT_EQ(write_start_next_request(s, out).error(), Errc::InvalidArgument);
  // A value with quotes and backslashes is escaped, so the document stays valid JSON.
  auto doc = with({"note", "say \"hi\" \\ now"});
  ASSERT_TRUE(doc);
  auto parsed = doc::json::parse(*doc);
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->at_path("statusDetails.note")->equals("say \"hi\" \\ now"));
}

// Every request at every buffer length: BufferTooSmall below the document's size, never a byte
// written past the buffer, the exact document at its size.
TEST_F(JobsDocuments, EveryWriterRefusesABufferTooSmallAtEveryLength) {
  const StatusDetail details[] = {{"step", "2/3"}, {"reason", "caf\xC3\xA9"}};
  for (int which = 0; which < 4; ++which) {
    auto write = [&](std::span<char> b) -> Result<std::string_view, Errc> {
      switch (which) {
        case 0:
          return write_get_pending_request(kToken64, b);
        case 1: {
          StartNextRequest r;
          r.status_details = details;
          r.step_timeout_in_minutes = 30;
          r.client_token = kToken64;
          return write_start_next_request(r, b);
        }
        case 2: {
          DescribeRequest r;
          r.execution_number = 12;
          r.include_job_document = true;
          r.client_token = kToken64;
          return write_describe_request(r, b);
        }
        default: {
          UpdateRequest r;
          r.status = JobStatus::Succeeded;
          r.status_details = details;
          r.expected_version = 18446744073709551615u;
          r.execution_number = 9;
          r.include_job_execution_state = true;
          r.include_job_document = true;
          r.step_timeout_in_minutes = -1;
          r.client_token = kToken64;
          return write_update_request(r, b);
        }
      }
    };
    std::array<char, 512> big{};
    auto whole = write(big);
    ASSERT_TRUE(whole) << which;
    ASSERT_TRUE(doc::json::parse(*whole)) << which;
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

// --- Replies: documents as AWS sends them (aws-iot-protocols.md 2.3; the AWS developer guide's
// examples) --------------------------------------------------------------------------------------

TEST_F(JobsDocuments, ReadsGetPendingAccepted) {
  auto p = read_get_pending_accepted(
      R"({"inProgressJobs":[{"jobId":"job-2","queuedAt":1489096123,"startedAt":1489096124,)"
      R"("lastUpdatedAt":1489096125,"versionNumber":2,"executionNumber":1}],)"
      R"("queuedJobs":[{"jobId":"job-3","queuedAt":1489096200,"lastUpdatedAt":1489096200,)"
      R"("versionNumber":1,"executionNumber":1},{"jobId":"job-4","queuedAt":1489096300,)"
      R"("lastUpdatedAt":1489096300,"versionNumber":1,"executionNumber":2}],)"
      R"("timestamp":1489096425,"clientToken":"client-001"})");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->timestamp, 1489096425);
  EXPECT_TRUE(p->client_token.equals("client-001"));
  EXPECT_EQ(p->in_progress.size(), 1u);
  ASSERT_EQ(p->queued.size(), 2u);
  std::size_t i = 0;
  for (const JobExecutionSummary& s : p->queued) {
    EXPECT_EQ(s.job_id, i == 0 ? "job-3" : "job-4");
    EXPECT_EQ(*s.execution_number, i == 0 ? 1 : 2);
    EXPECT_FALSE(s.started_at);
    ++i;
  }
  EXPECT_EQ(i, 2u);
  const JobExecutionSummary running = *p->in_progress.begin();
  EXPECT_EQ(running.job_id, "job-2");
  EXPECT_EQ(*running.started_at, 1489096124);
  EXPECT_EQ(*running.version_number, 2u);
  // Nothing pending: the lists may be empty or absent.
  auto none = read_get_pending_accepted(R"({"inProgressJobs":[],"timestamp":1})");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->in_progress.empty() && none->queued.empty());
  EXPECT_TRUE(none->client_token.is_null());
}

TEST_F(JobsDocuments, ReadsNotify) {
  auto n = read_notify(
      R"({"timestamp":1517016948,"jobs":{"QUEUED":[{"jobId":"job1","queuedAt":1517016947,)"
      R"("lastUpdatedAt":1517016947,"executionNumber":1,"versionNumber":1}]}})");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->timestamp, 1517016948);
  EXPECT_TRUE(n->in_progress.empty());
  ASSERT_EQ(n->queued.size(), 1u);
  EXPECT_EQ((*n->queued.begin()).job_id, "job1");
  auto empty = read_notify(R"({"timestamp":1517016950,"jobs":{}})");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->queued.empty() && empty->in_progress.empty());
}

TEST_F(JobsDocuments, ReadsNotifyNextWithTheJobDocumentAsAJsonView) {
  auto n = read_execution_reply(
      R"({"timestamp":1517016948,"execution":{"jobId":"job1","status":"QUEUED",)"
      R"("queuedAt":1517016947,"lastUpdatedAt":1517016947,"versionNumber":1,)"
      R"("executionNumber":1,"jobDocument":{"operation":"test","files":[{"url":"u"}]}}})");
  ASSERT_TRUE(n);
  ASSERT_TRUE(n->execution);
  const JobExecution& e = *n->execution;
  EXPECT_EQ(e.job_id, "job1");
  EXPECT_EQ(e.status, JobStatus::Queued);
  ASSERT_TRUE(e.job_document);
  EXPECT_EQ(str(*e.job_document->find("operation")), "test");
  EXPECT_EQ(str(*e.job_document->at_path("files.0.url")), "u");
  EXPECT_EQ(e.job_document->text(), R"({"operation":"test","files":[{"url":"u"}]})");
  EXPECT_EQ(*e.version_number, 1u);
  EXPECT_EQ(*e.execution_number, 1);
  EXPECT_FALSE(e.started_at);
  EXPECT_TRUE(e.thing_name.is_null());
  // The queue emptied: only the timestamp.
  auto empty = read_execution_reply(R"({"timestamp":1517016950})");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->execution);
}

TEST_F(JobsDocuments, ReadsStartNextAndDescribeAccepted) {
  auto r = read_execution_reply(
      R"({"execution":{"jobId":"fw-update-42","thingName":"lamp-1","jobDocument":)"
      R"({"operation":"install","version":"1.2.3"},"status":"IN_PROGRESS","statusDetails":)"
      R"({"step":"download"},"queuedAt":1700000000,"startedAt":1700000100,)"
      R"("lastUpdatedAt":1700000100,"versionNumber":2,"executionNumber":1},)"
      R"("timestamp":1700000100,"clientToken":"tok-9"})");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->execution);
  const JobExecution& e = *r->execution;
  EXPECT_EQ(e.job_id, "fw-update-42");
  EXPECT_TRUE(e.thing_name.equals("lamp-1"));
  EXPECT_EQ(e.status, JobStatus::InProgress);
  EXPECT_EQ(str(*e.status_details->find("step")), "download");
  EXPECT_EQ(*e.started_at, 1700000100);
  EXPECT_EQ(*e.version_number, 2u);
  EXPECT_TRUE(r->client_token.equals("tok-9"));
  // Nothing pending: no execution (2.3).
  auto none = read_execution_reply(R"({"timestamp":1700000100,"clientToken":"tok-10"})");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->execution);
  // Every status reads.
  const std::string_view statuses[] = {
      R"({"timestamp":1,"execution":{"jobId":"j","status":"QUEUED"}})",
      R"({"timestamp":1,"execution":{"jobId":"j","status":"IN_PROGRESS"}})",
      R"({"timestamp":1,"execution":{"jobId":"j","status":"SUCCEEDED"}})",
      R"({"timestamp":1,"execution":{"jobId":"j","status":"FAILED"}})",
      R"({"timestamp":1,"execution":{"jobId":"j","status":"REJECTED"}})",
      R"({"timestamp":1,"execution":{"jobId":"j","status":"TIMED_OUT"}})",
      R"({"timestamp":1,"execution":{"jobId":"j","status":"REMOVED"}})",
      R"({"timestamp":1,"execution":{"jobId":"j","status":"CANCELED"}})",
  };
  for (std::size_t i = 0; i < std::size(statuses); ++i) {
    auto s = read_execution_reply(statuses[i]);
    ASSERT_TRUE(s) << statuses[i];
    EXPECT_EQ(s->execution->status, static_cast<JobStatus>(i));
    EXPECT_EQ(is_terminal(s->execution->status), i >= 2);
  }
  // The NUL terminator AWS's C demos send is tolerated (edgekit::doc).
  constexpr char kWithNul[] = "{\"timestamp\":1}";
  EXPECT_TRUE(read_execution_reply(std::string_view(kWithNul, sizeof kWithNul)));
}

TEST_F(JobsDocuments, ReadsUpdateAccepted) {
  auto u = read_update_accepted(
      R"({"executionState":{"status":"SUCCEEDED","statusDetails":{"result":"ok"},)"
      R"("versionNumber":4},"jobDocument":{"operation":"reboot"},"timestamp":1700000200,)"
      R"("clientToken":"u-1"})");
  ASSERT_TRUE(u);
  ASSERT_TRUE(u->execution_state);
  EXPECT_EQ(u->execution_state->status, JobStatus::Succeeded);
  EXPECT_EQ(*u->execution_state->version_number, 4u);
  EXPECT_EQ(str(*u->execution_state->status_details->find("result")), "ok");
  EXPECT_EQ(str(*u->job_document->find("operation")), "reboot");
  EXPECT_TRUE(u->client_token.equals("u-1"));
  auto bare = read_update_accepted(R"({"timestamp":1700000200})");
  ASSERT_TRUE(bare);
  EXPECT_FALSE(bare->execution_state || bare->job_document);
}

TEST_F(JobsDocuments, RefusesMalformedDocuments) {
  for (std::string_view bad : {
           "",
           "not json",
           "[]",
           "null",
           R"({})",  // no timestamp
           R"({"timestamp":"1"})",
           R"({"timestamp":1.5})",
           R"({"timestamp":1,"clientToken":7})",
           R"({"timestamp":1,"execution":[]})",
           R"({"timestamp":1,"execution":{"status":"QUEUED"}})",  // no jobId
           R"({"timestamp":1,"execution":{"jobId":"j"}})",        // no status
           R"({"timestamp":1,"execution":{"jobId":"j","status":"queued"}})",
           R"({"timestamp":1,"execution":{"jobId":"j","status":"PAUSED"}})",
           R"({"timestamp":1,"execution":{"jobId":"j","status":1}})",
           R"({"timestamp":1,"execution":{"jobId":"a b","status":"QUEUED"}})",
           R"({"timestamp":1,"execution":{"jobId":"$next","status":"QUEUED"}})",
           R"({"timestamp":1,"execution":{"jobId":"j\u002D1","status":"QUEUED"}})",
           R"({"timestamp":1,"execution":{"jobId":"","status":"QUEUED"}})",
           R"({"timestamp":1,"execution":{"jobId":7,"status":"QUEUED"}})",
           R"({"timestamp":1,"execution":{"jobId":"j","status":"QUEUED","jobDocument":"{}"}})",
           R"({"timestamp":1,"execution":{"jobId":"j","status":"QUEUED","jobDocument":[]}})",
           R"({"timestamp":1,"execution":{"jobId":"j","status":"QUEUED","statusDetails":[]}})",
           R"({"timestamp":1,"execution":{"jobId":"j","status":"QUEUED","statusDetails":{"a":1}}})",
           R"({"timestamp":1,"execution":{"jobId":"j","status":"QUEUED","versionNumber":-1}})",
           R"({"timestamp":1,"execution":{"jobId":"j","status":"QUEUED","executionNumber":"1"}})",
           R"({"timestamp":1,"execution":{"jobId":"j","status":"QUEUED","queuedAt":1.0}})",
           R"({"timestamp":1,"execution":{"jobId":"j","status":"QUEUED","thingName":1}})",
           R"({"timestamp":1,"timestamp":2})",  // duplicate key
       }) {
    auto r = read_execution_reply(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error(), Errc::MalformedDocument) << bad;
    }
  }
  EXPECT_EQ(read_notify(R"({"timestamp":1})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_notify(R"({"jobs":{}})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_notify(R"({"jobs":[],"timestamp":1})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_notify(R"({"jobs":{"QUEUED":{}},"timestamp":1})").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_notify(R"({"jobs":{"QUEUED":[{"queuedAt":1}]},"timestamp":1})").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_notify(R"({"jobs":{"QUEUED":[1]},"timestamp":1})").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_get_pending_accepted(R"({"queuedJobs":{},"timestamp":1})").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_get_pending_accepted(R"({"inProgressJobs":[{"jobId":"j","versionNumber":)"
                                      R"("2"}],"timestamp":1})")
                .error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_update_accepted(R"({"executionState":{"versionNumber":1},"timestamp":1})").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_update_accepted(R"({"jobDocument":1,"timestamp":1})").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_rejected(R"({"message":"no code"})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_rejected(R"({"code":400})").error(), Errc::MalformedDocument);
  EXPECT_EQ(read_rejected(R"({"code":"InvalidJson","message":1})").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_rejected(R"({"code":"InvalidJson","timestamp":"x"})").error(),
            Errc::MalformedDocument);
  EXPECT_EQ(read_rejected(R"({"code":"VersionMismatch","executionState":{"status":"X"}})").error(),
            Errc::MalformedDocument);
}

// --- Rejections: every code of aws-iot-protocols.md 2.3 ------------------------------------------

TEST_F(JobsRejections, EveryDocumentedCodeHasItsOwnErrc) {
  struct Case {
    std::string_view code;
    Errc errc;
    bool retryable;
  };
  for (const Case& c : {
           Case{"InvalidTopic", Errc::InvalidTopic, false},
           Case{"InvalidJson", Errc::InvalidJson, false},
           Case{"InvalidRequest", Errc::InvalidRequest, false},
           Case{"InvalidStateTransition", Errc::InvalidStateTransition, false},
           Case{"ResourceNotFound", Errc::ResourceNotFound, true},
           Case{"VersionMismatch", Errc::VersionMismatch, false},
           Case{"InternalError", Errc::InternalError, true},
           Case{"RequestThrottled", Errc::RequestThrottled, true},
           Case{"TerminalStateReached", Errc::TerminalStateReached, false},
           Case{"SomethingNew", Errc::RejectedOther, false},
           Case{"invalidjson", Errc::RejectedOther, false},
           Case{"", Errc::RejectedOther, false},
       }) {
    EXPECT_EQ(rejection_errc(c.code), c.errc) << c.code;
    EXPECT_TRUE(is_rejection(c.errc));
    EXPECT_EQ(is_retryable(c.errc), c.retryable) << c.code;
    // The same through the reader, with a message, token and timestamp as AWS sends them.
    std::array<char, 256> doc{};
    doc::json::Writer w(doc);
    w.begin_object()
        .member("code", c.code)
        .member("message", "some message")
        .member("timestamp", 1489096425)
        .member("clientToken", "tok-9")
        .end_object();
    auto text = w.finish();
    ASSERT_TRUE(text);
    auto r = read_rejected(*text);
    ASSERT_TRUE(r) << *text;
    EXPECT_EQ(r->errc, c.errc);
    EXPECT_TRUE(r->code.equals(c.code));
    EXPECT_TRUE(r->message.equals("some message"));
    EXPECT_EQ(*r->timestamp, 1489096425);
    EXPECT_TRUE(r->client_token.equals("tok-9"));
    EXPECT_FALSE(r->execution_state);
  }
  EXPECT_FALSE(is_rejection(Errc::MalformedDocument));
  EXPECT_FALSE(is_rejection(Errc::Ok));
  EXPECT_FALSE(is_rejection(Errc::Busy));
}

TEST_F(JobsRejections, ReadsTheExecutionStateOfAVersionMismatch) {
  auto r = read_rejected(R"({"clientToken":"client-001","code":"VersionMismatch","message":"...",)"
                         R"("timestamp":1489096425,"executionState":{"status":"IN_PROGRESS",)"
                         R"("statusDetails":{"step":"2"},"versionNumber":7}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->errc, Errc::VersionMismatch);
  ASSERT_TRUE(r->execution_state);
  EXPECT_EQ(r->execution_state->status, JobStatus::InProgress);
  EXPECT_EQ(*r->execution_state->version_number, 7u);
  // Optional members may be missing; an escaped code maps the same.
  r = read_rejected(R"({"code":"Invalid\u0053tateTransition"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->errc, Errc::InvalidStateTransition);
  EXPECT_TRUE(r->message.is_null() && r->client_token.is_null());
  EXPECT_FALSE(r->timestamp);
  // A code longer than any known one.
  r = read_rejected(R"({"code":"TerminalStateReachedTerminalStateReachedTerminalStateReached"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->errc, Errc::RejectedOther);
}

TEST_F(JobsRejections, EveryErrcAndStatusHasAName) {
  for (int v = 0; v < 64; ++v) {
    EXPECT_TRUE(to_string(static_cast<Errc>(v))[0] != '\0');
  }
  EXPECT_EQ(to_string(JobStatus::InProgress), "IN_PROGRESS");
  EXPECT_EQ(to_string(JobStatus::TimedOut), "TIMED_OUT");
  EXPECT_EQ(to_string(JobStatus::Canceled), "CANCELED");
}

// The pure part's example of docs/jobs.md, kept compiling and true.
TEST_F(JobsDocuments, TheUserGuideExampleWorks) {
  namespace jb = edgekit::jobs;
  char topic[jb::kMaxTopicLength], body[256];
  auto t = jb::topic("lamp-1", jb::Operation::Update, jb::TopicKind::Request, "fw-42", topic);
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, "$aws/things/lamp-1/jobs/fw-42/update");
  const jb::StatusDetail details[] = {{"step", "flashing"}};
  jb::UpdateRequest u;
  u.status = jb::JobStatus::InProgress;
  u.status_details = details;
  u.expected_version = 2;
  u.client_token = "tok-1";
  auto doc = jb::write_update_request(u, body);
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc, R"({"status":"IN_PROGRESS","statusDetails":{"step":"flashing"},)"
                  R"("expectedVersion":2,"clientToken":"tok-1"})");
  const std::string_view payload =
      R"({"execution":{"jobId":"fw-42","jobDocument":{"operation":"install"},)"
      R"("status":"IN_PROGRESS","versionNumber":2,"executionNumber":1},"timestamp":1})";
  auto r = jb::read_execution_reply(payload);
  ASSERT_TRUE(r && r->execution);
  auto op = r->execution->job_document->find("operation");
  ASSERT_TRUE(op);
  EXPECT_TRUE(op->equals("install"));
}

}  // namespace
}  // namespace edgekit::jobs
