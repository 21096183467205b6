#include "edgekit/shadow/topics.hpp"

#include "edgekit/core/text.hpp"

namespace edgekit::shadow {
namespace {

// aws-iot-protocols.md 1.1.
constexpr std::string_view kThings = "$aws/things/";
constexpr std::string_view kShadow = "/shadow";
constexpr std::string_view kName = "/name/";

// The next topic level, up to (not including) the next '/' or the end.
std::string_view level(std::string_view& s) noexcept {
  std::size_t end = s.find('/');
  if (end == std::string_view::npos) end = s.size();
  const std::string_view out(s.data(), end);
  s.remove_prefix(end);
  return out;
}

std::string_view suffix(TopicKind kind) noexcept {
  switch (kind) {
    case TopicKind::Request:
      return {};
    case TopicKind::Accepted:
      return "/accepted";
    case TopicKind::Rejected:
      return "/rejected";
    case TopicKind::Delta:
      return "/delta";
    case TopicKind::Documents:
      return "/documents";
  }
  return {};
}

// Writes P/<op> and returns the appender for what follows, or the error.
Result<void, Errc> prefix(TextAppender& w, std::string_view thing, std::string_view shadow,
                          Operation op) noexcept {
  if (!valid_thing_name(thing)) return fail(Errc::InvalidArgument);
  if (!shadow.empty() && !valid_shadow_name(shadow)) return fail(Errc::InvalidArgument);
  w.put(kThings);
  w.put(thing);
  w.put(kShadow);
  if (!shadow.empty()) {
    w.put(kName);
    w.put(shadow);
  }
  w.put("/");
  w.put(to_string(op));
  return {};
}

}  // namespace

std::string_view to_string(Operation op) noexcept {
  switch (op) {
    case Operation::Get:
      return "get";
    case Operation::Update:
      return "update";
    case Operation::Delete:
      return "delete";
  }
  return "?";
}

bool valid_thing_name(std::string_view name) noexcept {
  return is_aws_name(name, kMaxThingNameLength, /*allow_colon=*/true);
}

bool valid_shadow_name(std::string_view name) noexcept {
  return is_aws_name(name, kMaxShadowNameLength, /*allow_colon=*/true);
}

Result<std::string_view, Errc> topic(std::string_view thing, std::string_view shadow, Operation op,
                                     TopicKind kind, std::span<char> buffer) noexcept {
  // Only an update has a delta and a documents topic (1.1).
  if ((kind == TopicKind::Delta || kind == TopicKind::Documents) && op != Operation::Update) {
    return fail(Errc::InvalidArgument);
  }
  TextAppender w{buffer};
  if (auto p = prefix(w, thing, shadow, op); !p) return fail(p.error());
  w.put(suffix(kind));
  if (w.overflow) return fail(Errc::BufferTooSmall);
  return std::string_view(buffer.data(), w.used);
}

Result<std::string_view, Errc> reply_filter(std::string_view thing, std::string_view shadow,
                                            Operation op, std::span<char> buffer) noexcept {
  TextAppender w{buffer};
  if (auto p = prefix(w, thing, shadow, op); !p) return fail(p.error());
  w.put("/+");
  if (w.overflow) return fail(Errc::BufferTooSmall);
  return std::string_view(buffer.data(), w.used);
}

Result<TopicMatch, Errc> match_topic(std::string_view t) noexcept {
  TopicMatch m;
  if (!consume_prefix(t, kThings)) return fail(Errc::TopicMismatch);
  m.thing = level(t);
  if (!valid_thing_name(m.thing) || !consume_prefix(t, kShadow)) return fail(Errc::TopicMismatch);
  if (consume_prefix(t, kName)) {
    m.shadow = level(t);
    if (!valid_shadow_name(m.shadow)) return fail(Errc::TopicMismatch);
  }
  if (!consume_prefix(t, "/")) return fail(Errc::TopicMismatch);
  const std::string_view op = level(t);
  if (op == "get") {
    m.op = Operation::Get;
  } else if (op == "update") {
    m.op = Operation::Update;
  } else if (op == "delete") {
    m.op = Operation::Delete;
  } else {
    return fail(Errc::TopicMismatch);
  }
  for (TopicKind kind : {TopicKind::Request, TopicKind::Accepted, TopicKind::Rejected,
                         TopicKind::Delta, TopicKind::Documents}) {
    if (t != suffix(kind)) continue;
    if ((kind == TopicKind::Delta || kind == TopicKind::Documents) && m.op != Operation::Update) {
      return fail(Errc::TopicMismatch);
    }
    m.kind = kind;
    return m;
  }
  return fail(Errc::TopicMismatch);
}

}  // namespace edgekit::shadow
