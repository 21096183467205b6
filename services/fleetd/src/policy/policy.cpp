#include "edgekit/json/json.hpp"
#include "policy/policy.hpp"

namespace edgekit::fleetd::policy {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxDocument = 20 * 1024;
constexpr std::string_view kThingVar = "${iot:Connection.Thing.ThingName}";
constexpr std::string_view kClientVar = "${iot:ClientId}";

Res<std::vector<Action>> parse_actions(const json& j, std::size_t index) {
  std::vector<Action> out;
  auto one = [&](const json& a) -> Res<void> {
    if (!a.is_string()) {
      return fail(Errc::InvalidArgument, "Statement[" + std::to_string(index) + "].Action: not a string");
    }
    const auto& s = a.get_ref<const std::string&>();
    if (s == "iot:*") {
      out.insert(out.end(), {Action::Connect, Action::Publish, Action::Subscribe, Action::Receive});
    } else if (s == "iot:Connect") {
      out.push_back(Action::Connect);
    } else if (s == "iot:Publish") {
      out.push_back(Action::Publish);
    } else if (s == "iot:Subscribe") {
      out.push_back(Action::Subscribe);
    } else if (s == "iot:Receive") {
      out.push_back(Action::Receive);
    } else {
      return fail(Errc::InvalidArgument, "Statement[" + std::to_string(index) +
                                             "].Action: unsupported action '" + s + "'");
    }
    return {};
  };
  if (j.is_array()) {
    for (const auto& a : j) {
      if (auto r = one(a); !r) return fail(r.error());
    }
  } else if (auto r = one(j); !r) {
    return fail(r.error());
  }
  if (out.empty()) {
    return fail(Errc::InvalidArgument, "Statement[" + std::to_string(index) + "].Action: empty");
  }
  return out;
}

Res<void> check_variables(std::string_view r, std::size_t index) {
  for (std::size_t p = r.find("${"); p != std::string_view::npos; p = r.find("${", p + 2)) {
    auto rest = r.substr(p);
    if (rest.substr(0, kThingVar.size()) != kThingVar &&
        rest.substr(0, kClientVar.size()) != kClientVar) {
      auto end = rest.find('}');
      return fail(Errc::InvalidArgument,
                  "Statement[" + std::to_string(index) + "].Resource: unsupported policy variable '" +
                      std::string(rest.substr(0, end == std::string_view::npos ? rest.size() : end + 1)) +
                      "' (supported: ${iot:Connection.Thing.ThingName}, ${iot:ClientId})");
    }
  }
  return {};
}

Res<std::string> parse_resource(const json& j, std::size_t index) {
  if (!j.is_string()) {
    return fail(Errc::InvalidArgument, "Statement[" + std::to_string(index) + "].Resource: not a string");
  }
  const std::string& s = j.get_ref<const std::string&>();
  if (s == "*") return s;
  // arn:aws:iot:<region>:<account>:<type>/<rest>; the rest may itself hold ':'.
  std::size_t pos = 0;
  for (int colons = 0; colons < 5; ++colons) {
    pos = s.find(':', pos);
    if (pos == std::string::npos) break;
    ++pos;
  }
  if (s.rfind("arn:aws:iot:", 0) != 0 || pos == std::string::npos) {
    return fail(Errc::InvalidArgument, "Statement[" + std::to_string(index) + "].Resource '" + s +
                                           "': not an arn:aws:iot:<region>:<account>:<type>/... ARN");
  }
  std::string rest = s.substr(pos);
  if (rest.rfind("client/", 0) != 0 && rest.rfind("topic/", 0) != 0 &&
      rest.rfind("topicfilter/", 0) != 0) {
    return fail(Errc::InvalidArgument, "Statement[" + std::to_string(index) + "].Resource '" + s +
                                           "': the type must be client, topic or topicfilter");
  }
  if (auto v = check_variables(rest, index); !v) return fail(v.error());
  return rest;
}

// Escapes the pattern characters of a variable's value, so that it matches only itself.
std::string literal(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '*' || c == '?' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Replaces the variables; false when one has no value (the statement then does not apply).
bool substitute(std::string_view in, const Context& ctx, std::string& out) {
  out.clear();
  std::size_t i = 0;
  while (i < in.size()) {
    auto rest = in.substr(i);
    if (rest.substr(0, kThingVar.size()) == kThingVar) {
      if (ctx.thing_name.empty()) return false;
      out += literal(ctx.thing_name);
      i += kThingVar.size();
    } else if (rest.substr(0, kClientVar.size()) == kClientVar) {
      if (ctx.client_id.empty()) return false;
      out += literal(ctx.client_id);
      i += kClientVar.size();
    } else {
      out += in[i++];
    }
  }
  return true;
}

const char* prefix_of(Action a) {
  switch (a) {
    case Action::Connect: return "client/";
    case Action::Publish:
    case Action::Receive: return "topic/";
    case Action::Subscribe: return "topicfilter/";
  }
  return "";
}

}  // namespace

const char* to_string(Action a) noexcept {
  switch (a) {
    case Action::Connect: return "connect";
    case Action::Publish: return "publish";
    case Action::Subscribe: return "subscribe";
    case Action::Receive: return "receive";
  }
  return "?";
}

Res<Document> parse(std::string_view text) {
  if (text.size() > kMaxDocument) {
    return fail(Errc::InvalidArgument, "policy document larger than 20 KB");
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(Errc::InvalidArgument, "policy document is not valid JSON");
  if (!j.is_object()) return fail(Errc::InvalidArgument, "policy document is not a JSON object");
  auto st = j.find("Statement");
  if (st == j.end()) return fail(Errc::InvalidArgument, "policy document has no Statement");
  json statements = st->is_array() ? *st : json::array({*st});
  if (statements.empty()) return fail(Errc::InvalidArgument, "policy document has no Statement");
  Document doc;
  for (std::size_t i = 0; i < statements.size(); ++i) {
    const json& s = statements[i];
    const std::string where = "Statement[" + std::to_string(i) + "]";
    if (!s.is_object()) return fail(Errc::InvalidArgument, where + " is not an object");
    Statement out;
    auto effect = s.find("Effect");
    if (effect == s.end() || !effect->is_string() ||
        (*effect != "Allow" && *effect != "Deny")) {
      return fail(Errc::InvalidArgument, where + ".Effect must be \"Allow\" or \"Deny\"");
    }
    out.allow = *effect == "Allow";
    auto action = s.find("Action");
    if (action == s.end()) return fail(Errc::InvalidArgument, where + " has no Action");
    auto actions = parse_actions(*action, i);
    if (!actions) return fail(actions.error());
    out.actions = std::move(actions.value());
    auto resource = s.find("Resource");
    if (resource == s.end()) return fail(Errc::InvalidArgument, where + " has no Resource");
    json resources = resource->is_array() ? *resource : json::array({*resource});
    if (resources.empty()) return fail(Errc::InvalidArgument, where + ".Resource is empty");
    for (const auto& r : resources) {
      auto parsed = parse_resource(r, i);
      if (!parsed) return fail(parsed.error());
      out.resources.push_back(std::move(parsed.value()));
    }
    doc.statements.push_back(std::move(out));
  }
  return doc;
}

const Document& default_thing_policy() {
  static const Document doc = [] {
    Document d;
    d.statements.push_back(Statement{true, {Action::Connect}, {"client/" + std::string(kThingVar)}});
    std::vector<std::string> topics{"topic/$aws/things/" + std::string(kThingVar) + "/*",
                                    "topic/" + std::string(kThingVar) + "/*"};
    d.statements.push_back(Statement{true, {Action::Publish, Action::Receive}, topics});
    d.statements.push_back(Statement{true,
                                     {Action::Subscribe},
                                     {"topicfilter/$aws/things/" + std::string(kThingVar) + "/*",
                                      "topicfilter/" + std::string(kThingVar) + "/*"}});
    return d;
  }();
  return doc;
}

std::vector<Rule> resolve(std::span<const Document> documents, const Context& context) {
  std::vector<Rule> rules;
  std::string value;
  for (const Document& d : documents) {
    for (const Statement& s : d.statements) {
      for (const std::string& r : s.resources) {
        if (!substitute(r, context, value)) continue;
        for (Action a : s.actions) {
          if (value == "*") {
            rules.push_back(Rule{s.allow, a, "*"});
            continue;
          }
          std::string_view prefix = prefix_of(a);
          if (value.rfind(prefix, 0) != 0) continue;  // e.g. a topic resource for Subscribe
          rules.push_back(Rule{s.allow, a, value.substr(prefix.size())});
        }
      }
    }
  }
  return rules;
}

bool glob_match(std::string_view p, std::string_view t) noexcept {
  // Classic wildcard matching with one backtrack point (the last '*'): O(|p|·|t|) worst case,
  // no recursion.
  std::size_t pi = 0, ti = 0;
  std::size_t star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
      continue;
    }
    if (pi < p.size()) {
      bool escaped = p[pi] == '\\' && pi + 1 < p.size();
      char pc = escaped ? p[pi + 1] : p[pi];
      if ((!escaped && pc == '?') || pc == t[ti]) {
        pi += escaped ? 2 : 1;
        ++ti;
        continue;
      }
    }
    if (star == std::string_view::npos) return false;
    pi = star + 1;
    ti = ++mark;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool allowed(std::span<const Rule> rules, Action action, std::string_view resource) noexcept {
  bool allow = false;
  for (const Rule& r : rules) {
    if (r.action != action || !glob_match(r.pattern, resource)) continue;
    if (!r.allow) return false;
    allow = true;
  }
  return allow;
}

std::string rules_to_json(std::span<const Rule> rules) {
  json a = json::array();
  for (const Rule& r : rules) {
    a.push_back({{"permission", r.allow ? "allow" : "deny"},
                 {"action", to_string(r.action)},
                 {"topic", r.pattern}});
  }
  return a.dump(-1, ' ', false, json::error_handler_t::replace);
}

Res<std::vector<Rule>> rules_from_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array()) {
    return fail(Errc::InvalidArgument, "rules: not a JSON array");
  }
  std::vector<Rule> out;
  for (const auto& r : j) {
    if (!r.is_object()) return fail(Errc::InvalidArgument, "rules: an entry is not an object");
    auto perm = r.find("permission");
    auto act = r.find("action");
    auto topic = r.find("topic");
    if (perm == r.end() || act == r.end() || topic == r.end() || !perm->is_string() ||
        !act->is_string() || !topic->is_string()) {
      return fail(Errc::InvalidArgument, "rules: an entry lacks permission, action or topic");
    }
    Rule rule;
    if (*perm == "allow") rule.allow = true;
    else if (*perm == "deny") rule.allow = false;
    else return fail(Errc::InvalidArgument, "rules: permission must be allow or deny");
    bool known = false;
    for (Action a : {Action::Connect, Action::Publish, Action::Subscribe, Action::Receive}) {
      if (*act == to_string(a)) {
        rule.action = a;
        known = true;
      }
    }
    if (!known) return fail(Errc::InvalidArgument, "rules: unknown action");
    rule.pattern = topic->get<std::string>();
    out.push_back(std::move(rule));
  }
  return out;
}

}  // namespace edgekit::fleetd::policy
