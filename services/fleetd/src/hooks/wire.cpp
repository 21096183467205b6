#include "hooks/wire.hpp"

#include "http/json_body.hpp"

namespace edgekit::fleetd::hooks {
namespace {

using nlohmann::json;

Res<json> object_of(std::string_view body) { return http::object_of(body, kMaxBody); }

Res<std::string> member(const json& j, const char* name, bool required, std::size_t max) {
  return http::string_member(j, name, required, max);
}

}  // namespace

Res<AuthRequest> parse_auth_request(std::string_view body) {
  auto j = object_of(body);
  if (!j) return fail(j.error());
  AuthRequest r;
  auto c = member(j.value(), "clientid", true, 128);
  if (!c) return fail(c.error());
  r.client_id = std::move(c.value());
  auto u = member(j.value(), "username", false, 1024);
  if (!u) return fail(u.error());
  r.username = std::move(u.value());
  auto p = member(j.value(), "peerhost", false, 64);
  if (!p) return fail(p.error());
  r.peer = std::move(p.value());
  auto id = member(j.value(), "certificate_id", false, 64);
  if (!id) return fail(id.error());
  r.certificate_id = std::move(id.value());
  // PEM text; the body limit (kMaxBody) bounds them together.
  auto pem = member(j.value(), "certificate_pem", false, kMaxBody);
  if (!pem) return fail(pem.error());
  r.certificate_pem = std::move(pem.value());
  auto chain = member(j.value(), "certificate_chain", false, kMaxBody);
  if (!chain) return fail(chain.error());
  r.certificate_chain = std::move(chain.value());
  return r;
}

Res<AuthorizeRequest> parse_authorize_request(std::string_view body) {
  auto j = object_of(body);
  if (!j) return fail(j.error());
  AuthorizeRequest r;
  auto c = member(j.value(), "clientid", true, 128);
  if (!c) return fail(c.error());
  r.client_id = std::move(c.value());
  auto id = member(j.value(), "certificate_id", false, 64);
  if (!id) return fail(id.error());
  r.certificate_id = std::move(id.value());
  auto a = member(j.value(), "action", true, 16);
  if (!a) return fail(a.error());
  if (a.value() == "publish") r.action = policy::Action::Publish;
  else if (a.value() == "subscribe") r.action = policy::Action::Subscribe;
  else if (a.value() == "receive") r.action = policy::Action::Receive;
  else return fail(Errc::InvalidArgument, "member 'action' must be publish, subscribe or receive");
  // 256 bytes is AWS's topic limit; the $share/<name>/ prefix may come on top.
  auto t = member(j.value(), "topic", true, 512);
  if (!t) return fail(t.error());
  r.topic = std::move(t.value());
  return r;
}

std::string to_json(const AuthDecision& d) {
  json j;
  j["result"] = d.allow ? "allow" : "deny";
  j["reason"] = d.reason;
  j["is_superuser"] = false;
  if (d.allow) {
    j["acl"] = json::parse(policy::rules_to_json(d.rules));
    j["client_attrs"] = {{"thing_name", d.thing_name}, {"certificate_id", d.certificate_id}};
  }
  return http::dump(j);
}

std::string decision_json(bool allow, std::string_view reason) {
  json j{{"result", allow ? "allow" : "deny"}, {"reason", std::string(reason)}};
  return http::dump(j);
}

}  // namespace edgekit::fleetd::hooks
