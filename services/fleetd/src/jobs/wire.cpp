// Jobs requests and replies on the wire (aws-iot-protocols.md 2.1-2.3). Every member a device
// sends is checked for its type before it is used: the payload is untrusted, and a wrong type
// gets InvalidRequest naming the member rather than an exception or a silent default.

#include "jobs/wire.hpp"

#include <algorithm>
#include <charconv>

#include "store/jobs.hpp"

namespace edgekit::fleetd::jobs {
namespace {

using nlohmann::json;

constexpr std::string_view kPrefix = "$aws/things/";
constexpr std::size_t kMaxClientToken = 64;
constexpr std::size_t kMaxStatusDetails = 10;
constexpr std::int64_t kMaxStepTimeoutMinutes = 10080;  // 7 days, as the in-progress timer

bool name_char(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || (colon && c == ':');
}
bool name_ok(std::string_view s, std::size_t max, bool colon) {
  return !s.empty() && s.size() <= max &&
         std::all_of(s.begin(), s.end(), [colon](char c) { return name_char(c, colon); });
}

Rejection invalid(std::string message) {
  return Rejection{ErrorCode::InvalidRequest, std::move(message)};
}

// A number member that may also be a numeric string (the embedded Jobs library sends
// expectedVersion as "2").
std::optional<std::int64_t> integer_of(const json& v, bool allow_string) {
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (allow_string && v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    std::int64_t out = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return out;
  }
  return std::nullopt;
}

bool control_free(const std::string& s) {
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::optional<Rejection> read_details(const json& v, std::map<std::string, std::string>& out) {
  if (!v.is_object()) return invalid("statusDetails must be an object of strings");
  if (v.size() > kMaxStatusDetails) {
    return invalid("statusDetails has more than " + std::to_string(kMaxStatusDetails) +
                   " entries");
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!name_ok(it.key(), 128, true)) {
      return invalid("statusDetails keys must be 1-128 characters of [a-zA-Z0-9:_-]");
    }
    if (!it.value().is_string()) return invalid("statusDetails values must be strings");
    const auto& s = it.value().get_ref<const std::string&>();
    if (s.empty() || s.size() > 1024 || !control_free(s)) {
      return invalid("statusDetails values must be 1-1024 characters without control characters");
    }
    out[it.key()] = s;
  }
  return std::nullopt;
}

}  // namespace

const char* to_string(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::InvalidTopic: return "InvalidTopic";
    case ErrorCode::InvalidJson: return "InvalidJson";
    case ErrorCode::InvalidRequest: return "InvalidRequest";
    case ErrorCode::InvalidStateTransition: return "InvalidStateTransition";
    case ErrorCode::ResourceNotFound: return "ResourceNotFound";
    case ErrorCode::VersionMismatch: return "VersionMismatch";
    case ErrorCode::InternalError: return "InternalError";
    case ErrorCode::RequestThrottled: return "RequestThrottled";
    case ErrorCode::TerminalStateReached: return "TerminalStateReached";
  }
  return "InternalError";
}

std::optional<TopicReading> read_topic(std::string_view topic) {
  if (topic.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view rest = topic.substr(kPrefix.size());
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  TopicReading out;
  out.topic.thing = rest.substr(0, slash);
  rest.remove_prefix(slash + 1);
  constexpr std::string_view kJobs = "jobs/";
  if (rest.substr(0, kJobs.size()) != kJobs) return std::nullopt;
  rest.remove_prefix(kJobs.size());
  if (rest == "get") {
    out.topic.operation = Operation::GetPending;
  } else if (rest == "start-next") {
    out.topic.operation = Operation::StartNext;
  } else {
    const auto s = rest.find('/');
    if (s == std::string_view::npos) return std::nullopt;
    const std::string_view op = rest.substr(s + 1);
    if (op == "get") {
      out.topic.operation = Operation::Describe;
    } else if (op == "update") {
      out.topic.operation = Operation::Update;
    } else {
      return std::nullopt;
    }
    out.topic.job_id = rest.substr(0, s);
    const bool next_ok = out.topic.operation == Operation::Describe && out.topic.job_id == "$next";
    if (!next_ok && !name_ok(out.topic.job_id, 64, false)) {
      out.rejection = Rejection{ErrorCode::InvalidTopic,
                                "invalid job id in topic: 1-64 characters of [a-zA-Z0-9_-]"};
    }
  }
  if (!name_ok(out.topic.thing, 128, true)) {
    out.rejection = Rejection{ErrorCode::InvalidTopic,
                              "invalid thing name in topic: 1-128 characters of [a-zA-Z0-9:_-]"};
  }
  return out;
}

RequestReading read_request(Operation op, std::string_view payload) {
  RequestReading out;
  json j = payload.empty() ? json::object() : json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    out.rejection = Rejection{ErrorCode::InvalidJson, "the payload is not a JSON object"};
    return out;
  }
  if (auto it = j.find("clientToken"); it != j.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>().size() > kMaxClientToken) {
      out.rejection = invalid("clientToken must be a string of at most 64 bytes");
      return out;
    }
    out.client_token = it->get<std::string>();
  }
  Request rq;
  rq.client_token = out.client_token;
  rq.include_job_document = op == Operation::Describe;
  auto reject = [&](Rejection r) {
    out.rejection = std::move(r);
    return out;
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (k == "clientToken") continue;
    if (k == "statusDetails" && (op == Operation::StartNext || op == Operation::Update)) {
      std::map<std::string, std::string> d;
      if (auto r = read_details(v, d)) return reject(*r);
      rq.status_details = std::move(d);
    } else if (k == "stepTimeoutInMinutes" &&
               (op == Operation::StartNext || op == Operation::Update)) {
      auto n = integer_of(v, false);
      if (!n || (*n != -1 && (*n < 1 || *n > kMaxStepTimeoutMinutes))) {
        return reject(invalid("stepTimeoutInMinutes must be -1 or 1-10080"));
      }
      rq.step_timeout_minutes = *n;
    } else if (k == "expectedVersion" && op == Operation::Update) {
      auto n = integer_of(v, true);
      if (!n || *n < 1) return reject(invalid("expectedVersion must be a positive number"));
      rq.expected_version = *n;
    } else if (k == "executionNumber" && (op == Operation::Update || op == Operation::Describe)) {
      auto n = integer_of(v, true);
      if (!n || *n < 1) return reject(invalid("executionNumber must be a positive number"));
      rq.execution_number = *n;
    } else if (k == "status" && op == Operation::Update) {
      const auto s = v.is_string() ? execution_status_from(v.get_ref<const std::string&>())
                                   : std::nullopt;
      if (!s || !device_may_report(*s)) {
        return reject(invalid("status must be one of IN_PROGRESS, SUCCEEDED, FAILED, REJECTED"));
      }
      rq.status = *s;
    } else if (k == "includeJobDocument" &&
               (op == Operation::Update || op == Operation::Describe)) {
      if (!v.is_boolean()) return reject(invalid("includeJobDocument must be a boolean"));
      rq.include_job_document = v.get<bool>();
    } else if (k == "includeJobExecutionState" && op == Operation::Update) {
      if (!v.is_boolean()) return reject(invalid("includeJobExecutionState must be a boolean"));
      rq.include_execution_state = v.get<bool>();
    }
    // Other members are ignored, as AWS's service does for members it does not model.
  }
  if (op == Operation::Update && !rq.status) {
    // AWS's own wording (aws-iot-device-sdk-cpp-v2#95).
    return reject(invalid(
        "1 validation error detected: Value null at 'status' failed to satisfy constraint: "
        "Member must not be null"));
  }
  out.request = std::move(rq);
  return out;
}

std::string reply_topic(std::string_view request_topic, bool accepted) {
  return std::string(request_topic) + (accepted ? "/accepted" : "/rejected");
}

std::string notify_topic(std::string_view thing) {
  return std::string(kPrefix) + std::string(thing) + "/jobs/notify";
}

std::string notify_next_topic(std::string_view thing) {
  return std::string(kPrefix) + std::string(thing) + "/jobs/notify-next";
}

json summary_json(const JobExecution& e) {
  json j{{"jobId", e.job_id},
         {"queuedAt", e.queued_at},
         {"lastUpdatedAt", e.last_updated_at},
         {"versionNumber", e.version_number},
         {"executionNumber", e.execution_number}};
  if (e.started_at > 0) j["startedAt"] = e.started_at;
  return j;
}

json state_json(const JobExecution& e) {
  json j{{"status", to_string(e.status)}, {"versionNumber", e.version_number}};
  if (!e.status_details.empty()) j["statusDetails"] = e.status_details;
  return j;
}

json execution_json(const JobExecution& e, const std::string* job_document) {
  json j{{"jobId", e.job_id},
         {"thingName", e.thing_name},
         {"status", to_string(e.status)},
         {"queuedAt", e.queued_at},
         {"lastUpdatedAt", e.last_updated_at},
         {"versionNumber", e.version_number},
         {"executionNumber", e.execution_number}};
  if (e.started_at > 0) j["startedAt"] = e.started_at;
  if (!e.status_details.empty()) j["statusDetails"] = e.status_details;
  if (job_document) {
    // Stored only after it was checked to be a JSON object (store/jobs.cpp).
    j["jobDocument"] = json::parse(*job_document, nullptr, false);
  }
  return j;
}

json rejection_json(const Rejection& r, std::int64_t now,
                    const std::optional<std::string>& client_token, const JobExecution* state) {
  json j{{"code", to_string(r.code)}, {"message", r.message}, {"timestamp", now}};
  if (client_token) j["clientToken"] = *client_token;
  if (state) j["executionState"] = state_json(*state);
  return j;
}

json pending_json(const std::vector<JobExecution>& pending, std::int64_t now,
                  const std::optional<std::string>& client_token) {
  json in_progress = json::array();
  json queued = json::array();
  for (const auto& e : pending) {
    (e.status == ExecutionStatus::InProgress ? in_progress : queued).push_back(summary_json(e));
  }
  json j{{"inProgressJobs", in_progress}, {"queuedJobs", queued}, {"timestamp", now}};
  if (client_token) j["clientToken"] = *client_token;
  return j;
}

json notify_json(const std::vector<JobExecution>& pending, std::int64_t now) {
  json jobs = json::object();
  std::size_t n = 0;
  for (const auto& e : pending) {
    if (n++ == 10) break;
    jobs[to_string(e.status)].push_back(summary_json(e));
  }
  return json{{"timestamp", now}, {"jobs", jobs}};
}

}  // namespace edgekit::fleetd::jobs
