#include "plugin_logic.hpp"

#include <mosquitto.h>
#include <openssl/sha.h>

#include "edgekit/json/json.hpp"

namespace edgekit::fleetd::plugin {

using nlohmann::json;

bool permitted(const ClientState& c, Access access, std::string_view topic, bool retain) noexcept {
  if (access == Access::Unsubscribe) return true;
  if (c.trusted) return true;
  // `$edgekit/` carries the originals of private replies (plugin.cpp): never a device's.
  if (topic.rfind("$CONTROL/", 0) == 0 || topic.rfind("$edgekit/", 0) == 0) return false;
  if (access == Access::Publish && retain && topic.rfind("$aws/", 0) == 0) return false;
  policy::Action a = access == Access::Subscribe ? policy::Action::Subscribe
                     : access == Access::Publish ? policy::Action::Publish
                                                 : policy::Action::Receive;
  return policy::allowed(c.rules, a, topic);
}

std::optional<Verdict> parse_verdict(std::string_view body, std::string& error) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = "fleetd's answer is not a JSON object";
    return std::nullopt;
  }
  auto result = j.find("result");
  if (result == j.end() || !result->is_string() || (*result != "allow" && *result != "deny")) {
    error = "fleetd's answer has no result allow|deny";
    return std::nullopt;
  }
  Verdict v;
  v.allow = *result == "allow";
  if (auto r = j.find("reason"); r != j.end() && r->is_string()) v.reason = r->get<std::string>();
  if (!v.allow) return v;
  auto acl = j.find("acl");
  if (acl == j.end()) {
    error = "fleetd allowed without acl rules";
    return std::nullopt;
  }
  auto rules = policy::rules_from_json(acl->dump());
  if (!rules) {
    error = "fleetd's acl: " + rules.error().message;
    return std::nullopt;
  }
  v.rules = std::move(rules.value());
  if (auto a = j.find("client_attrs"); a != j.end() && a->is_object()) {
    if (auto t = a->find("thing_name"); t != a->end() && t->is_string()) {
      v.thing_name = t->get<std::string>();
    }
  }
  return v;
}

const char* disconnect_reason(int r) noexcept {
  switch (r) {
    case MOSQ_ERR_SUCCESS: return "CLIENT_INITIATED_DISCONNECT";
    case MOSQ_ERR_KEEPALIVE: return "MQTT_KEEP_ALIVE_TIMEOUT";
    case MOSQ_ERR_CONN_LOST: return "CONNECTION_LOST";
    case MOSQ_ERR_ADMINISTRATIVE_ACTION: return "API_INITIATED_DISCONNECT";
    case MOSQ_ERR_AUTH: return "AUTH_ERROR";
    case MOSQ_ERR_ACL_DENIED: return "FORBIDDEN_ACCESS";
    case MOSQ_ERR_PROTOCOL:
    case MOSQ_ERR_MALFORMED_PACKET:
    case MOSQ_ERR_OVERSIZE_PACKET:
    case MOSQ_ERR_PAYLOAD_SIZE:
    case MOSQ_ERR_MALFORMED_UTF8:
    case MOSQ_ERR_DUPLICATE_PROPERTY:
    case MOSQ_ERR_TOPIC_ALIAS_INVALID:
    case MOSQ_ERR_QOS_NOT_SUPPORTED:
    case MOSQ_ERR_RETAIN_NOT_SUPPORTED: return "CLIENT_ERROR";
    case MOSQ_ERR_NOMEM: return "SERVER_ERROR";
    case kTakenOver: return "DUPLICATE_CLIENTID";
    default: return "CONNECTION_LOST";
  }
}

namespace {
json base_event(const ClientState& c, std::int64_t ts, const char* type) {
  json j;
  j["clientId"] = c.client_id;
  j["timestamp"] = ts;
  j["eventType"] = type;
  j["sessionIdentifier"] = c.session_id;
  j["principalIdentifier"] = c.certificate_id;
  if (!c.thing_name.empty()) j["thingName"] = c.thing_name;
  j["versionNumber"] = c.version;
  return j;
}
}  // namespace

std::string connected_event(const ClientState& c, std::int64_t ts) {
  json j = base_event(c, ts, "connected");
  j["ipAddress"] = c.peer;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string disconnected_event(const ClientState& c, std::int64_t ts, int reason) {
  json j = base_event(c, ts, "disconnected");
  j["clientInitiatedDisconnect"] = reason == MOSQ_ERR_SUCCESS;
  j["disconnectReason"] = disconnect_reason(reason);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sha256_hex(const unsigned char* der, std::size_t size) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(der, size, d);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : d) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

void PrivateReplies::add(const std::string& key, std::string client_id, Clock::time_point now) {
  const Clock::time_point expires = now + lifetime_;
  by_key_[key] = Entry{std::move(client_id), expires};
  order_.emplace_back(expires, key);
}

const std::string* PrivateReplies::addressee(const std::string& key, Clock::time_point now) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end() || it->second.expires <= now) return nullptr;
  return &it->second.client_id;
}

void PrivateReplies::expire(Clock::time_point now) {
  while (!order_.empty() && order_.front().first <= now) {
    auto it = by_key_.find(order_.front().second);
    // Only the pair of the key's latest add removes it; a renewed key lives on.
    if (it != by_key_.end() && it->second.expires == order_.front().first) by_key_.erase(it);
    order_.pop_front();
  }
}

}  // namespace edgekit::fleetd::plugin
