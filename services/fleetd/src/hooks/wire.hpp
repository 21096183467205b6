#pragma once
/// \file
/// JSON forms of the decision interface's requests and answers (see decisions.hpp). The request
/// parsers take untrusted bytes (anyone who can reach the hooks port may send them; the bearer
/// token is checked first, but the parser must hold regardless): bounded size, clear errors,
/// fuzzed (fuzz/fuzz_fleetd_hooks.cpp).

#include <string>
#include <string_view>

#include "hooks/decisions.hpp"

namespace edgekit::fleetd::hooks {

/// Largest request body accepted (413 beyond).
inline constexpr std::size_t kMaxBody = 16 * 1024;

/// {"clientid": "...", "username": "...", "peerhost": "...", "certificate_id": "...",
///  "certificate_pem": "...", "certificate_chain": "..."}.
/// clientid is required (a string of at most 128 bytes, AWS's limit, may be empty only for the
/// broker to say "none"); the others are optional strings. Unknown members are ignored (a newer
/// broker may send more). Errors: InvalidArgument naming the member.
[[nodiscard]] Res<AuthRequest> parse_auth_request(std::string_view body);

struct AuthorizeRequest {
  std::string client_id;
  std::string certificate_id;
  policy::Action action = policy::Action::Publish;
  std::string topic;
};
/// {"clientid", "certificate_id", "action": "publish"|"subscribe"|"receive", "topic"}.
[[nodiscard]] Res<AuthorizeRequest> parse_authorize_request(std::string_view body);

/// {"result":"allow"|"deny","reason":...,"is_superuser":false,"acl":[...],"client_attrs":{...}}
[[nodiscard]] std::string to_json(const AuthDecision& d);
/// {"result":"allow"|"deny","reason":...}
[[nodiscard]] std::string decision_json(bool allow, std::string_view reason);

}  // namespace edgekit::fleetd::hooks
