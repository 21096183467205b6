// edgekit's Mosquitto 2 plugin: a thin adapter between the broker and fleetd's decision
// interface (docs/fleetd.md). Every decision comes from fleetd; the plugin only asks at connect,
// keeps the answer (the connection's resolved policy rules) for the life of the connection, and
// applies it to each subscribe, publish and delivery. It never fails open: when fleetd cannot be
// asked, or answers something it cannot read, a connect is denied (existing connections keep
// their rules).
//
// What it adds on top of authentication and authorization:
// - trusted metadata: device messages on `$aws/...` get user properties naming the sender's
//   client id, certificate id and thing, after any a device sent under those names were removed;
// - private replies: a message fleetd publishes with `x-edgekit-reply-to: <client id>` reaches
//   that client alone, even when it subscribed to nothing (AWS answers provisioning requests
//   that way, as they carry private keys, and Jobs requests, whose embedded demo subscribes to
//   none of its reply topics);
// - revocation: fleetd publishes {"command":"kick","certificate_id":...} on `$CONTROL/edgekit/v1`
//   and the plugin disconnects every connection using that certificate at once;
// - lifecycle events on `$aws/events/presence/connected|disconnected/<clientId>`.
//
// Configuration (mosquitto.conf):
//   plugin /usr/lib/.../libedgekit_mosquitto_plugin.so
//   plugin_opt_hooks_url http://127.0.0.1:8766     fleetd's decision interface
//   plugin_opt_hooks_token_file /var/lib/fleetd/hooks.token
//   plugin_opt_timeout_ms 2000                     per request to fleetd
//   plugin_opt_fleetd_username fleetd              fleetd's own link: this user name and the
//                                                  token as password, without a certificate
//
// Threading: Mosquitto 2 calls plugins from its single main thread; nothing here locks.

#include <httplib.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>

#include "edgekit/json/json.hpp"
#include "plugin_logic.hpp"

namespace {

using edgekit::fleetd::plugin::Access;
using edgekit::fleetd::plugin::ClientState;
namespace logic = edgekit::fleetd::plugin;

constexpr const char* kControlTopic = "$CONTROL/edgekit/v1";

struct Plugin {
  mosquitto_plugin_id_t* id = nullptr;
  std::string hooks_url;
  std::string token;
  std::string fleetd_username = "fleetd";
  int timeout_ms = 2000;
  std::unique_ptr<httplib::Client> http;
  std::unordered_map<const mosquitto*, ClientState> clients;
  // The connections by client id: a connect looks up the earlier connection with its id (a
  // take-over) here instead of scanning every client — with 10,000 devices connected, that scan
  // inside the broker's one thread made each connect slower than the last.
  std::unordered_multimap<std::string, const mosquitto*> by_client_id;
  std::unordered_map<std::string, std::uint64_t> versions;  // lifecycle versionNumber per id
  logic::PrivateReplies replies{std::chrono::seconds(5)};  // by reply_key
  std::mt19937_64 random{std::random_device{}()};
};

Plugin* g_plugin = nullptr;

void remove_client_id(Plugin& p, const std::string& client_id, const mosquitto* client) {
  auto [first, last] = p.by_client_id.equal_range(client_id);
  for (auto it = first; it != last; ++it) {
    if (it->second == client) {
      p.by_client_id.erase(it);
      return;
    }
  }
}

// Every connection's state goes in through here (and out through forget_client), so that
// by_client_id always matches clients.
void remember_client(Plugin& p, const mosquitto* client, ClientState state) {
  auto it = p.clients.find(client);
  if (it != p.clients.end()) remove_client_id(p, it->second.client_id, client);
  p.by_client_id.emplace(state.client_id, client);
  p.clients[client] = std::move(state);
}

void forget_client(Plugin& p, std::unordered_map<const mosquitto*, ClientState>::iterator it) {
  remove_client_id(p, it->second.client_id, it->first);
  p.clients.erase(it);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string session_id(Plugin& p) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(p.random()),
                static_cast<unsigned long long>(p.random()));
  return buf;
}

std::string hash_of(const void* payload, std::uint32_t len) {
  return logic::sha256_hex(static_cast<const unsigned char*>(payload), len);
}

// Private replies are told apart by topic and payload: two devices provisioning at once get
// replies on one topic.
std::string reply_key(const char* topic, const void* payload, std::uint32_t len) {
  return std::string(topic ? topic : "") + '\n' + hash_of(payload, len);
}

// Where the original of a private reply goes once its copy is addressed to its client: a topic
// no client can subscribe to (`#` does not match `$` topics, and the plugin refuses `$edgekit`).
constexpr const char* kPrivateSink = "$edgekit/private-reply";

void publish_event(const std::string& topic, const std::string& doc) {
  // Lifecycle events are the broker's own messages (no client): every authorized subscriber of
  // the topic gets them, as on AWS.
  int rc = mosquitto_broker_publish_copy(nullptr, topic.c_str(), static_cast<int>(doc.size()),
                                         doc.data(), 1, false, nullptr);
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_log_printf(MOSQ_LOG_WARNING, "edgekit: lifecycle event on '%s' not published (%s)",
                         topic.c_str(), mosquitto_strerror(rc));
  }
}

bool secret_equal(const char* given, const std::string& secret) {
  if (given == nullptr || std::strlen(given) != secret.size()) return false;
  return CRYPTO_memcmp(given, secret.data(), secret.size()) == 0;
}

// ---- authentication -----------------------------------------------------------------------

int on_basic_auth(int, void* event_data, void* userdata) {
  auto& p = *static_cast<Plugin*>(userdata);
  auto* ev = static_cast<mosquitto_evt_basic_auth*>(event_data);
  const char* cid = mosquitto_client_id(ev->client);
  std::string client_id = cid ? cid : "";
  ClientState state;
  state.client_id = client_id;
  const char* addr = mosquitto_client_address(ev->client);
  state.peer = addr ? addr : "";

  X509* cert = static_cast<X509*>(mosquitto_client_certificate(ev->client));
  if (cert == nullptr) {
    // Only fleetd's own link connects without a certificate, with the shared token.
    if (ev->username && p.fleetd_username == ev->username && secret_equal(ev->password, p.token)) {
      state.trusted = true;
      remember_client(p, ev->client, std::move(state));
      mosquitto_log_printf(MOSQ_LOG_INFO, "edgekit: fleetd link '%s' connected", client_id.c_str());
      return MOSQ_ERR_SUCCESS;
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "edgekit: denied '%s': a client certificate is required",
                         client_id.c_str());
    return MOSQ_ERR_AUTH;
  }
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  // The PEM goes along so that fleetd can register a certificate it does not know yet when a
  // registered CA with auto-registration issued it (JITR / JITP). Mosquitto 2.0 gives plugins
  // the client certificate only, not the chain the client sent.
  std::string pem;
  if (BIO* bio = BIO_new(BIO_s_mem()); bio != nullptr) {
    if (PEM_write_bio_X509(bio, cert) == 1) {
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio, &data);
      if (n > 0) pem.assign(data, static_cast<std::size_t>(n));
    }
    BIO_free(bio);
  }
  X509_free(cert);
  if (len <= 0) return MOSQ_ERR_AUTH;
  state.certificate_id = logic::sha256_hex(der, static_cast<std::size_t>(len));
  OPENSSL_free(der);

  nlohmann::json req{{"clientid", client_id},
                     {"username", ev->username ? ev->username : ""},
                     {"peerhost", state.peer},
                     {"certificate_id", state.certificate_id},
                     {"certificate_pem", pem}};
  httplib::Headers headers{{"Authorization", "Bearer " + p.token}};
  auto res = p.http->Post("/hooks/v1/authenticate", headers,
                          req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                          "application/json");
  if (!res) {
    mosquitto_log_printf(MOSQ_LOG_WARNING,
                         "edgekit: denied '%s': fleetd unreachable at %s (%s); never failing open",
                         client_id.c_str(), p.hooks_url.c_str(), httplib::to_string(res.error()).c_str());
    return MOSQ_ERR_AUTH;
  }
  if (res->status != 200) {
    mosquitto_log_printf(MOSQ_LOG_WARNING, "edgekit: denied '%s': fleetd answered HTTP %d: %s",
                         client_id.c_str(), res->status, res->body.c_str());
    return MOSQ_ERR_AUTH;
  }
  std::string error;
  auto verdict = logic::parse_verdict(res->body, error);
  if (!verdict) {
    mosquitto_log_printf(MOSQ_LOG_WARNING, "edgekit: denied '%s': %s", client_id.c_str(),
                         error.c_str());
    return MOSQ_ERR_AUTH;
  }
  if (!verdict->allow) {
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "edgekit: denied '%s': %s", client_id.c_str(),
                         verdict->reason.c_str());
    return MOSQ_ERR_AUTH;
  }
  // A second connection with the same client id takes the first one over (the broker closes
  // it); its disconnect event then says DUPLICATE_CLIENTID.
  auto [first, last] = p.by_client_id.equal_range(client_id);
  for (auto it = first; it != last; ++it) {
    if (it->second == ev->client) continue;
    if (auto other = p.clients.find(it->second); other != p.clients.end()) {
      other->second.taken_over = true;
    }
  }
  state.rules = std::move(verdict->rules);
  state.thing_name = std::move(verdict->thing_name);
  state.session_id = session_id(p);
  state.version = ++p.versions[client_id];
  // Lifecycle events are not sent for client ids with wildcards (AWS does the same).
  if (client_id.find_first_of("+#") == std::string::npos) {
    publish_event("$aws/events/presence/connected/" + client_id,
                  logic::connected_event(state, now_ms()));
  }
  remember_client(p, ev->client, std::move(state));
  return MOSQ_ERR_SUCCESS;
}

// ---- authorization ------------------------------------------------------------------------

int on_acl_check(int, void* event_data, void* userdata) {
  auto& p = *static_cast<Plugin*>(userdata);
  auto* ev = static_cast<mosquitto_evt_acl_check*>(event_data);
  auto it = p.clients.find(ev->client);
  if (it == p.clients.end()) return MOSQ_ERR_ACL_DENIED;
  const ClientState& c = it->second;
  Access access;
  switch (ev->access) {
    case MOSQ_ACL_SUBSCRIBE: access = Access::Subscribe; break;
    case MOSQ_ACL_WRITE: access = Access::Publish; break;
    case MOSQ_ACL_READ: access = Access::Receive; break;
    case MOSQ_ACL_UNSUBSCRIBE: access = Access::Unsubscribe; break;
    default: return MOSQ_ERR_ACL_DENIED;
  }
  const std::string topic = ev->topic ? ev->topic : "";
  // (No replies in flight: no hash of the payload for this delivery.)
  if (access == Access::Receive && !p.replies.empty()) {
    const std::string* to = p.replies.addressee(reply_key(ev->topic, ev->payload, ev->payloadlen),
                                                std::chrono::steady_clock::now());
    if (to != nullptr) {
      // A private reply: its addressee only (fleetd's own link is not a reader of it either).
      return *to == c.client_id && !c.trusted ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
    }
  }
  if (logic::permitted(c, access, topic, ev->retain)) return MOSQ_ERR_SUCCESS;
  if (access != Access::Receive) {
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "edgekit: refused %s of '%s' on '%s'",
                         access == Access::Subscribe ? "subscribe" : "publish",
                         c.client_id.c_str(), topic.c_str());
  }
  return MOSQ_ERR_ACL_DENIED;
}

// ---- messages -----------------------------------------------------------------------------

bool reserved_name(const char* name) {
  return name && std::strncmp(name, logic::kReservedPrefix.data(), logic::kReservedPrefix.size()) == 0;
}

// Copies `in` without the user properties whose names are reserved; the reply-to value (from
// fleetd) is returned in `reply_to`. MQTT 5 PUBLISH properties only (what a broker forwards).
// Sets `ok` to false when a property could not be read or copied (out of memory): the caller
// then refuses the message rather than forward it with properties silently changed.
mosquitto_property* without_reserved(const mosquitto_property* in, std::string* reply_to,
                                     bool& ok) {
  mosquitto_property* out = nullptr;
  ok = true;
  auto check = [&](bool done) { ok = ok && done; };
  for (const mosquitto_property* p = in; p; p = mosquitto_property_next(p)) {
    int id = mosquitto_property_identifier(p);
    switch (id) {
      case MQTT_PROP_USER_PROPERTY: {
        char* name = nullptr;
        char* value = nullptr;
        check(mosquitto_property_read_string_pair(p, id, &name, &value, false) != nullptr &&
              name && value);
        if (reserved_name(name)) {
          if (reply_to && name && logic::kReplyToProperty == name && value) *reply_to = value;
        } else if (name && value) {
          check(mosquitto_property_add_string_pair(&out, id, name, value) == MOSQ_ERR_SUCCESS);
        }
        free(name);
        free(value);
        break;
      }
      case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR: {
        uint8_t v = 0;
        check(mosquitto_property_read_byte(p, id, &v, false) != nullptr);
        check(mosquitto_property_add_byte(&out, id, v) == MOSQ_ERR_SUCCESS);
        break;
      }
      case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL: {
        uint32_t v = 0;
        check(mosquitto_property_read_int32(p, id, &v, false) != nullptr);
        check(mosquitto_property_add_int32(&out, id, v) == MOSQ_ERR_SUCCESS);
        break;
      }
      case MQTT_PROP_CONTENT_TYPE:
      case MQTT_PROP_RESPONSE_TOPIC: {
        char* v = nullptr;
        check(mosquitto_property_read_string(p, id, &v, false) != nullptr && v);
        if (v) check(mosquitto_property_add_string(&out, id, v) == MOSQ_ERR_SUCCESS);
        free(v);
        break;
      }
      case MQTT_PROP_CORRELATION_DATA: {
        void* v = nullptr;
        uint16_t n = 0;
        check(mosquitto_property_read_binary(p, id, &v, &n, false) != nullptr);
        check(mosquitto_property_add_binary(&out, id, v, n) == MOSQ_ERR_SUCCESS);
        free(v);
        break;
      }
      default:
        break;  // topic alias, subscription identifiers: per-hop, not forwarded as such
    }
  }
  return out;
}

int on_message(int, void* event_data, void* userdata) {
  auto& p = *static_cast<Plugin*>(userdata);
  auto* ev = static_cast<mosquitto_evt_message*>(event_data);
  auto it = p.clients.find(ev->client);
  if (it == p.clients.end()) return MOSQ_ERR_SUCCESS;  // the broker's own messages
  const ClientState& c = it->second;
  std::string reply_to;
  bool ok = true;
  mosquitto_property* cleaned =
      without_reserved(ev->properties, c.trusted ? &reply_to : nullptr, ok);
  if (!ok) {
    // Refused, not forwarded with properties quietly lost (the broker then ends the client's
    // connection with this error, and the log says why).
    mosquitto_property_free_all(&cleaned);
    mosquitto_log_printf(MOSQ_LOG_ERR, "edgekit: refused a message of '%s' on '%s': its "
                         "properties could not be copied (out of memory)",
                         c.client_id.c_str(), ev->topic ? ev->topic : "");
    return MOSQ_ERR_NOMEM;
  }
  mosquitto_property_free_all(&ev->properties);
  ev->properties = cleaned;
  if (c.trusted) {
    if (!reply_to.empty()) {
      // The broker gets a copy addressed to that client alone (Mosquitto queues it for the
      // client directly, whatever it subscribed to), and the ACL check lets only that client
      // read it; the original goes to a topic nobody reads, so that a subscriber of the reply
      // topic, the addressee included, does not get it a second time.
      p.replies.add(reply_key(ev->topic, ev->payload, ev->payloadlen), reply_to,
                    std::chrono::steady_clock::now());
      bool copied = true;
      mosquitto_property* props = without_reserved(ev->properties, nullptr, copied);
      const int rc = copied ? mosquitto_broker_publish_copy(reply_to.c_str(), ev->topic,
                                                            static_cast<int>(ev->payloadlen),
                                                            ev->payload, ev->qos, false, props)
                            : MOSQ_ERR_NOMEM;
      if (rc != MOSQ_ERR_SUCCESS) {
        mosquitto_property_free_all(&props);  // owned by the broker only on success
        mosquitto_log_printf(MOSQ_LOG_ERR, "edgekit: could not deliver a private reply on '%s' "
                             "to '%s' (%s)", ev->topic, reply_to.c_str(), mosquitto_strerror(rc));
      }
      char* sink = mosquitto_strdup(kPrivateSink);
      if (sink == nullptr) return MOSQ_ERR_NOMEM;
      mosquitto_free(ev->topic);
      ev->topic = sink;
    }
    return MOSQ_ERR_SUCCESS;
  }
  if (ev->topic && std::strncmp(ev->topic, "$aws/", 5) == 0) {
    // fleetd answers only requests that carry all three: one missing would make the request
    // unanswerable, so a failure here refuses the message loudly instead.
    const bool stamped =
        mosquitto_property_add_string_pair(&ev->properties, MQTT_PROP_USER_PROPERTY,
                                           logic::kClientIdProperty.data(),
                                           c.client_id.c_str()) == MOSQ_ERR_SUCCESS &&
        mosquitto_property_add_string_pair(&ev->properties, MQTT_PROP_USER_PROPERTY,
                                           logic::kCertificateIdProperty.data(),
                                           c.certificate_id.c_str()) == MOSQ_ERR_SUCCESS &&
        mosquitto_property_add_string_pair(&ev->properties, MQTT_PROP_USER_PROPERTY,
                                           logic::kThingNameProperty.data(),
                                           c.thing_name.c_str()) == MOSQ_ERR_SUCCESS;
    if (!stamped) {
      mosquitto_log_printf(MOSQ_LOG_ERR, "edgekit: refused a request of '%s' on '%s': its "
                           "sender metadata could not be added (out of memory)",
                           c.client_id.c_str(), ev->topic);
      return MOSQ_ERR_NOMEM;
    }
  }
  return MOSQ_ERR_SUCCESS;
}

// ---- control, disconnect, tick ------------------------------------------------------------

int on_control(int, void* event_data, void* userdata) {
  auto& p = *static_cast<Plugin*>(userdata);
  auto* ev = static_cast<mosquitto_evt_control*>(event_data);
  auto it = p.clients.find(ev->client);
  if (it == p.clients.end() || !it->second.trusted) return MOSQ_ERR_ACL_DENIED;
  auto j = nlohmann::json::parse(
      std::string(static_cast<const char*>(ev->payload), ev->payloadlen), nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("command", "") != "kick") {
    mosquitto_log_printf(MOSQ_LOG_WARNING, "edgekit: ignored a malformed control message");
    return MOSQ_ERR_SUCCESS;
  }
  const std::string cert = j.value("certificate_id", "");
  const std::string client = j.value("clientid", "");
  std::vector<std::string> victims;
  for (const auto& [conn, state] : p.clients) {
    if (state.trusted) continue;
    if ((!cert.empty() && state.certificate_id == cert) || (!client.empty() && state.client_id == client)) {
      victims.push_back(state.client_id);
    }
  }
  for (auto& [conn, state] : p.clients) {
    if (!state.trusted && ((!cert.empty() && state.certificate_id == cert) ||
                           (!client.empty() && state.client_id == client))) {
      state.kicked = true;
    }
  }
  for (const auto& v : victims) {
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "edgekit: disconnecting '%s' at fleetd's request", v.c_str());
    int rc = mosquitto_kick_client_by_clientid(v.c_str(), false);
    if (rc != MOSQ_ERR_SUCCESS) {
      mosquitto_log_printf(MOSQ_LOG_WARNING, "edgekit: could not disconnect '%s' (%s)", v.c_str(),
                           mosquitto_strerror(rc));
    }
  }
  return MOSQ_ERR_SUCCESS;
}

int on_disconnect(int, void* event_data, void* userdata) {
  auto& p = *static_cast<Plugin*>(userdata);
  auto* ev = static_cast<mosquitto_evt_disconnect*>(event_data);
  auto it = p.clients.find(ev->client);
  if (it == p.clients.end()) return MOSQ_ERR_SUCCESS;
  const ClientState& c = it->second;
  if (!c.trusted && c.client_id.find_first_of("+#") == std::string::npos) {
    // Mosquitto 2.0 passes no reason to plugins (-1); what the plugin knows itself wins.
    int reason = c.kicked ? MOSQ_ERR_ADMINISTRATIVE_ACTION : ev->reason;
    publish_event("$aws/events/presence/disconnected/" + c.client_id,
                  c.taken_over ? logic::disconnected_event(c, now_ms(), logic::kTakenOver)
                               : logic::disconnected_event(c, now_ms(), reason));
  }
  forget_client(p, it);
  return MOSQ_ERR_SUCCESS;
}

int on_tick(int, void*, void* userdata) {
  auto& p = *static_cast<Plugin*>(userdata);
  p.replies.expire(std::chrono::steady_clock::now());
  return MOSQ_ERR_SUCCESS;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int mosquitto_plugin_version(int count, const int* versions) {
  for (int i = 0; i < count; ++i) {
    if (versions[i] == 5) return 5;
  }
  return -1;
}

__attribute__((visibility("default"))) int mosquitto_plugin_init(mosquitto_plugin_id_t* identifier,
                                                                 void** userdata,
                                                                 struct mosquitto_opt* options,
                                                                 int option_count) {
  auto p = std::make_unique<Plugin>();
  p->id = identifier;
  std::string token_file;
  for (int i = 0; i < option_count; ++i) {
    std::string key = options[i].key ? options[i].key : "";
    std::string value = options[i].value ? options[i].value : "";
    if (key == "hooks_url") p->hooks_url = value;
    else if (key == "hooks_token_file") token_file = value;
    else if (key == "timeout_ms") p->timeout_ms = std::atoi(value.c_str());
    else if (key == "fleetd_username") p->fleetd_username = value;
    else {
      mosquitto_log_printf(MOSQ_LOG_ERR, "edgekit: unknown plugin option '%s'", key.c_str());
      return MOSQ_ERR_INVAL;
    }
  }
  if (p->hooks_url.empty() || token_file.empty() || p->timeout_ms <= 0) {
    mosquitto_log_printf(MOSQ_LOG_ERR,
                         "edgekit: plugin_opt_hooks_url and plugin_opt_hooks_token_file are "
                         "required (and plugin_opt_timeout_ms > 0)");
    return MOSQ_ERR_INVAL;
  }
  std::ifstream in(token_file);
  std::getline(in, p->token);
  if (p->token.empty()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "edgekit: cannot read the token from %s", token_file.c_str());
    return MOSQ_ERR_INVAL;
  }
  p->http = std::make_unique<httplib::Client>(p->hooks_url);
  p->http->set_keep_alive(true);
  // A request goes out as head and body: without TCP_NODELAY the body waits for a delayed ACK
  // (40 ms) on every connect, on the broker's only thread.
  p->http->set_tcp_nodelay(true);
  const auto t = std::chrono::milliseconds(p->timeout_ms);
  p->http->set_connection_timeout(t);
  p->http->set_read_timeout(t);
  p->http->set_write_timeout(t);

  int rc = MOSQ_ERR_SUCCESS;
  rc |= mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, nullptr, p.get());
  rc |= mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, nullptr, p.get());
  rc |= mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, nullptr, p.get());
  rc |= mosquitto_callback_register(identifier, MOSQ_EVT_CONTROL, on_control, kControlTopic, p.get());
  rc |= mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, nullptr, p.get());
  rc |= mosquitto_callback_register(identifier, MOSQ_EVT_TICK, on_tick, nullptr, p.get());
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "edgekit: cannot register the plugin's callbacks");
    return MOSQ_ERR_UNKNOWN;
  }
  mosquitto_log_printf(MOSQ_LOG_INFO, "edgekit: plugin ready, asking fleetd at %s",
                       p->hooks_url.c_str());
  g_plugin = p.get();
  *userdata = p.release();
  return MOSQ_ERR_SUCCESS;
}

__attribute__((visibility("default"))) int mosquitto_plugin_cleanup(void* userdata,
                                                                    struct mosquitto_opt*, int) {
  auto* p = static_cast<Plugin*>(userdata);
  if (p) {
    mosquitto_callback_unregister(p->id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, nullptr);
    mosquitto_callback_unregister(p->id, MOSQ_EVT_ACL_CHECK, on_acl_check, nullptr);
    mosquitto_callback_unregister(p->id, MOSQ_EVT_MESSAGE, on_message, nullptr);
    mosquitto_callback_unregister(p->id, MOSQ_EVT_CONTROL, on_control, kControlTopic);
    mosquitto_callback_unregister(p->id, MOSQ_EVT_DISCONNECT, on_disconnect, nullptr);
    mosquitto_callback_unregister(p->id, MOSQ_EVT_TICK, on_tick, nullptr);
    OPENSSL_cleanse(p->token.data(), p->token.size());
  }
  delete p;
  g_plugin = nullptr;
  return MOSQ_ERR_SUCCESS;
}

}  // extern "C"
