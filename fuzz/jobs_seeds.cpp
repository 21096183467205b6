// Seeds for fuzz_jobs: Jobs documents as AWS sends them (aws-iot-protocols.md 2.3), jobs
// topics written by the library's own builder, and job record files (FileRecordStore: whole and
// torn).
#include <algorithm>
#include <array>
#include <cstdint>
#include <edgekit/jobs/file_record_store.hpp>
#include <edgekit/jobs/topics.hpp>
#include <string_view>
#include <vector>

#include "seeds.hpp"

namespace edgekit::fuzz {

// Declared in seeds.hpp; seeds.cpp calls it.
void jobs_seeds(void (*write)(const char*, const std::vector<std::uint8_t>&)) {
  const char* t = "fuzz_jobs";
  auto bytes = [](std::string_view s) { return std::vector<std::uint8_t>(s.begin(), s.end()); };
  for (std::string_view doc : {
           // notify
           R"({"timestamp":1517016948,"jobs":{"QUEUED":[{"jobId":"job1","queuedAt":1517016947,)"
           R"("lastUpdatedAt":1517016947,"executionNumber":1,"versionNumber":1}]}})",
           R"({"timestamp":1517016950,"jobs":{}})",
           // notify-next, start-next/accepted, {jobId}/get/accepted
           R"({"timestamp":1517016948,"execution":{"jobId":"job1","status":"QUEUED",)"
           R"("queuedAt":1517016947,"lastUpdatedAt":1517016947,"versionNumber":1,)"
           R"("executionNumber":1,"jobDocument":{"operation":"test"}}})",
           R"({"execution":{"jobId":"fw-update-42","thingName":"lamp-1","jobDocument":)"
           R"({"operation":"install","version":"1.2.3"},"status":"IN_PROGRESS","statusDetails":)"
           R"({"step":"download","note":"caf\u00e9"},"queuedAt":1700000000,)"
           R"("startedAt":1700000100,"lastUpdatedAt":1700000100,"versionNumber":2,)"
           R"("executionNumber":1},"timestamp":1700000100,"clientToken":"tok-9"})",
           R"({"timestamp":1700000100,"clientToken":"tok-10"})",
           // get/accepted
           R"({"inProgressJobs":[{"jobId":"job-2","queuedAt":1489096123,"startedAt":1489096124,)"
           R"("lastUpdatedAt":1489096125,"versionNumber":2,"executionNumber":1}],)"
           R"("queuedJobs":[{"jobId":"job-3","queuedAt":1489096200,"lastUpdatedAt":1489096200,)"
           R"("versionNumber":1,"executionNumber":1}],"timestamp":1489096425,)"
           R"("clientToken":"client-001"})",
           // update/accepted
           R"({"executionState":{"status":"SUCCEEDED","statusDetails":{"result":"ok"},)"
           R"("versionNumber":4},"jobDocument":{"operation":"reboot"},"timestamp":1700000200,)"
           R"("clientToken":"u-1"})",
           // rejected
           R"({"clientToken":"client-001","code":"VersionMismatch","message":"...",)"
           R"("timestamp":1489096425,"executionState":{"status":"IN_PROGRESS",)"
           R"("statusDetails":{"step":"2"},"versionNumber":7}})",
           R"({"code":"InvalidStateTransition","executionState":{"status":"SUCCEEDED"}})",
           R"({"code":"TerminalStateReached","message":"Job is in terminal state"})",
           R"({"code":"InvalidRequest","message":"Value null at 'status' failed to satisfy )"
           R"(constraint: Member must not be null"})",
           // replies that correlate with the executor's requests ("@T@": its token)
           R"({"execution":{"jobId":"fw-1","jobDocument":{"operation":"install"},)"
           R"("status":"IN_PROGRESS","versionNumber":2,"executionNumber":1},"timestamp":1,)"
           R"("clientToken":"@T@","executionState":{"status":"IN_PROGRESS","versionNumber":3}})",
           R"({"execution":{"jobId":"cfg-2","jobDocument":{"operation":"configure"},)"
           R"("status":"IN_PROGRESS","versionNumber":5},"timestamp":1,"clientToken":"@T@",)"
           R"("code":"VersionMismatch","executionState":{"status":"IN_PROGRESS",)"
           R"("versionNumber":9}})",
           R"({"execution":{"jobId":"x-3","jobDocument":{"operation":"dance"},)"
           R"("status":"IN_PROGRESS"},"timestamp":1,"clientToken":"@T@",)"
           R"("code":"InvalidStateTransition","executionState":{"status":"IN_PROGRESS"}})",
       }) {
    write(t, bytes(doc));
  }
  std::array<char, jobs::kMaxTopicLength> buf{};
  struct Topic {
    jobs::Operation op;
    jobs::TopicKind kind;
    std::string_view job;
  };
  for (const Topic& x : {Topic{jobs::Operation::Notify, jobs::TopicKind::Request, ""},
                         Topic{jobs::Operation::NotifyNext, jobs::TopicKind::Request, ""},
                         Topic{jobs::Operation::StartNext, jobs::TopicKind::Accepted, ""},
                         Topic{jobs::Operation::GetPending, jobs::TopicKind::Rejected, ""},
                         Topic{jobs::Operation::Describe, jobs::TopicKind::Accepted, "$next"},
                         Topic{jobs::Operation::Update, jobs::TopicKind::Rejected, "job-7"}}) {
    if (auto topic = jobs::topic("lamp-1", x.op, x.kind, x.job, buf)) write(t, bytes(*topic));
  }
  jobs::JobRecord record;
  const std::string_view id = "fw-update-42";
  std::copy(id.begin(), id.end(), record.job_id.begin());
  record.job_id_length = static_cast<std::uint8_t>(id.size());
  record.execution_number = 2;
  record.version = 5;
  record.step = 1;
  const auto file = jobs::FileRecordStore::encode(record);
  std::vector<std::uint8_t> whole(file.size());
  std::transform(file.begin(), file.end(), whole.begin(),
                 [](std::byte b) { return std::to_integer<std::uint8_t>(b); });
  write(t, whole);
  write(t, std::vector<std::uint8_t>(whole.begin(), whole.begin() + 50));  // a torn write
}

}  // namespace edgekit::fuzz
