#pragma once
/// \file
/// AWS IoT policies as fleetd enforces them: the policy document (JSON, AWS's grammar), its
/// variables resolved for one connection, and the decision for one action on one resource.
///
/// Grammar (the subset of AWS IoT Core's that device policies use):
///   {"Version": "2012-10-17",
///    "Statement": [{"Effect": "Allow" | "Deny",
///                   "Action": "iot:Publish" | [...],    iot:Connect, iot:Publish, iot:Subscribe,
///                                                       iot:Receive, or "iot:*"
///                   "Resource": "arn:aws:iot:<region>:<account>:topic/<pattern>" | [...]}]}
/// Resources: `client/<client id>` (Connect), `topic/<topic>` (Publish, Receive),
/// `topicfilter/<filter>` (Subscribe), or "*". Region and account are not checked (one local
/// fleet). Patterns use AWS's wildcards: `*` any run of characters (including '/'), `?` one
/// character; MQTT's `+` and `#` are ordinary characters in a pattern, so a topicfilter resource
/// allows exactly the filters it spells out (a policy for `$aws/things/t1/*` allows the filter
/// `$aws/things/t1/#` but never `$aws/things/+/...` or `#`).
/// Variables: `${iot:Connection.Thing.ThingName}` (the thing the certificate is attached to),
/// `${iot:ClientId}`. Their values are inserted literally (a `*` in a client id is escaped, so it
/// can never widen a policy); a statement whose variable has no value (no thing attached) does not
/// apply, as in AWS.
/// Decision: Deny wins over Allow; nothing allowed is denied.
///
/// Pure: no I/O. Thread safety: values; safe to share read-only.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/errc.hpp"

namespace edgekit::fleetd::policy {

enum class Action { Connect, Publish, Subscribe, Receive };
const char* to_string(Action a) noexcept;  ///< "connect", "publish", "subscribe", "receive"

struct Statement {
  bool allow = true;
  std::vector<Action> actions;
  /// "client/...", "topic/...", "topicfilter/..." (ARN prefix removed) or "*"; variables kept.
  std::vector<std::string> resources;
};

struct Document {
  std::vector<Statement> statements;
};

/// Parses and checks a policy document. Errors (InvalidArgument, the message says where): not
/// JSON, no Statement, an Effect other than Allow/Deny, an unknown action, a resource that is not
/// an iot ARN of a known type, an unsupported `${...}` variable, more than 2,048 bytes of
/// resources per statement (AWS's document limit is 2,048 characters; fleetd allows 20 KB
/// documents, the limit of an AWS policy version), an empty statement list.
[[nodiscard]] Res<Document> parse(std::string_view json);

/// The policy fleetd applies to a certificate that has none attached: a thing may connect with
/// its own name as client id, publish, subscribe and receive on `$aws/things/<name>/*` and
/// `<name>/*` (and nothing else).
[[nodiscard]] const Document& default_thing_policy();

/// Who is connecting: the values of the policy variables.
struct Context {
  std::string_view thing_name;  ///< empty: no thing attached
  std::string_view client_id;
};

/// One resolved rule: variables replaced, wildcards as in a pattern.
struct Rule {
  bool allow = true;
  Action action = Action::Publish;
  std::string pattern;  ///< the resource without its type prefix, e.g. "$aws/things/t1/*"
  friend bool operator==(const Rule&, const Rule&) = default;
};

/// The rules of `documents` for `context`.
[[nodiscard]] std::vector<Rule> resolve(std::span<const Document> documents, const Context& context);

/// AWS pattern match: `*` any run (also empty, also across '/'), `?` one character, `\` makes
/// the next character literal. Iterative (no recursion, linear-ish: no blow-up on `*a*a*a`).
[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view text) noexcept;

/// May `action` be done on `resource` (a client id, topic or topic filter)? Deny wins.
[[nodiscard]] bool allowed(std::span<const Rule> rules, Action action,
                           std::string_view resource) noexcept;

/// Rules as the decision interface carries them (EMQX's ACL rule shape):
/// [{"permission":"allow","action":"publish","topic":"<pattern>"}, ...].
[[nodiscard]] std::string rules_to_json(std::span<const Rule> rules);
/// The inverse. Errors: InvalidArgument for anything malformed (the plugin then denies).
[[nodiscard]] Res<std::vector<Rule>> rules_from_json(std::string_view json);

}  // namespace edgekit::fleetd::policy
