#include "edgekit/jobs/topics.hpp"

#include "edgekit/core/text.hpp"

namespace edgekit::jobs {
namespace {

// aws-iot-protocols.md 2.1.
constexpr std::string_view kThings = "$aws/things/";
constexpr std::string_view kJobs = "/jobs/";

// The levels after J/ that name each operation's request (Describe and Update follow the job id).
std::string_view request_level(Operation op) noexcept {
  switch (op) {
    case Operation::GetPending:
    case Operation::Describe:
      return "get";
    case Operation::StartNext:
      return "start-next";
    case Operation::Update:
      return "update";
    case Operation::Notify:
      return "notify";
    case Operation::NotifyNext:
      return "notify-next";
  }
  return {};
}

bool has_job_id(Operation op) noexcept {
  return op == Operation::Describe || op == Operation::Update;
}

bool job_id_allowed(Operation op, std::string_view job_id) noexcept {
  if (!has_job_id(op)) return job_id.empty();
  return valid_job_id(job_id) || (op == Operation::Describe && job_id == kNextJobId);
}

// Writes J/[jobId/]<op> (the request topic, or the notification topic itself).
Result<void, Errc> request_topic(TextAppender& w, std::string_view thing, Operation op,
                                 std::string_view job_id) noexcept {
  if (!valid_thing_name(thing) || !job_id_allowed(op, job_id)) return fail(Errc::InvalidArgument);
  w.put(kThings);
  w.put(thing);
  w.put(kJobs);
  if (has_job_id(op)) {
    w.put(job_id);
    w.put("/");
  }
  w.put(request_level(op));
  return {};
}

Result<std::string_view, Errc> finished(const TextAppender& w) noexcept {
  if (w.overflow) return fail(Errc::BufferTooSmall);
  return w.view();
}

// The next topic level, up to (not including) the next '/' or the end; consumes the '/'.
std::string_view next_level(std::string_view& s, bool& more) noexcept {
  std::size_t end = s.find('/');
  more = end != std::string_view::npos;
  if (!more) end = s.size();
  const std::string_view out(s.data(), end);
  s.remove_prefix(more ? end + 1 : end);
  return out;
}

}  // namespace

bool valid_thing_name(std::string_view name) noexcept {
  return is_aws_name(name, kMaxThingNameLength, true);
}

bool valid_job_id(std::string_view id) noexcept {
  return is_aws_name(id, kMaxJobIdLength, false);
}

Result<std::string_view, Errc> topic(std::string_view thing, Operation op, TopicKind kind,
                                     std::string_view job_id, std::span<char> buffer) noexcept {
  if (kind != TopicKind::Request && (op == Operation::Notify || op == Operation::NotifyNext)) {
    return fail(Errc::InvalidArgument);
  }
  TextAppender w{buffer};
  EDGEKIT_TRY(request_topic(w, thing, op, job_id));
  if (kind == TopicKind::Accepted) w.put("/accepted");
  if (kind == TopicKind::Rejected) w.put("/rejected");
  return finished(w);
}

Result<std::string_view, Errc> reply_filter(std::string_view thing, Operation op,
                                            std::string_view job_id,
                                            std::span<char> buffer) noexcept {
  if (op == Operation::Notify || op == Operation::NotifyNext) return fail(Errc::InvalidArgument);
  TextAppender w{buffer};
  EDGEKIT_TRY(request_topic(w, thing, op, job_id));
  w.put("/+");
  return finished(w);
}

Result<TopicMatch, Errc> match_topic(std::string_view t) noexcept {
  TopicMatch m;
  if (!consume_prefix(t, kThings)) return fail(Errc::TopicMismatch);
  const std::size_t slash = t.find('/');
  if (slash == std::string_view::npos) return fail(Errc::TopicMismatch);
  m.thing = std::string_view(t.data(), slash);  // not substr: no throwing path on a device
  t.remove_prefix(slash);
  if (!valid_thing_name(m.thing) || !consume_prefix(t, kJobs)) return fail(Errc::TopicMismatch);
  // At most three levels follow: [jobId/]<op>[/accepted|/rejected].
  std::string_view levels[3];
  std::size_t n = 0;
  bool more = true;
  while (more) {
    if (n == 3) return fail(Errc::TopicMismatch);
    levels[n++] = next_level(t, more);
  }
  // The kind: a last level of accepted/rejected after an operation that has replies.
  auto kind_of = [](std::string_view level, TopicKind& kind) {
    if (level == "accepted") {
      kind = TopicKind::Accepted;
      return true;
    }
    if (level == "rejected") {
      kind = TopicKind::Rejected;
      return true;
    }
    return false;
  };
  if (levels[0] == "get" || levels[0] == "start-next") {
    m.op = levels[0] == "get" ? Operation::GetPending : Operation::StartNext;
    if (n == 1 || (n == 2 && kind_of(levels[1], m.kind))) return m;
  } else if (levels[0] == "notify" || levels[0] == "notify-next") {
    m.op = levels[0] == "notify" ? Operation::Notify : Operation::NotifyNext;
    if (n == 1) return m;
  }
  // Otherwise the first level is a job id (even "get": J/get/get is Describe of job "get").
  m.kind = TopicKind::Request;
  if (n < 2 || (n == 3 && !kind_of(levels[2], m.kind))) return fail(Errc::TopicMismatch);
  if (levels[1] == "get") {
    m.op = Operation::Describe;
  } else if (levels[1] == "update") {
    m.op = Operation::Update;
  } else {
    return fail(Errc::TopicMismatch);
  }
  m.job_id = levels[0];
  if (!job_id_allowed(m.op, m.job_id)) return fail(Errc::TopicMismatch);
  return m;
}

}  // namespace edgekit::jobs
