// The shadow document model (aws-iot-protocols.md 1.2-1.7). nlohmann-json holds the documents;
// every walk over request data is bounded by the nesting check first, so recursion stays within
// kMaxDepth levels of desired/reported (and kMaxScanDepth for the raw bytes).

#include "shadow/document.hpp"

namespace edgekit::fleetd::shadow {
namespace {

using nlohmann::json;

// Deeper raw nesting than this is refused before parsing: no shadow section can be valid then,
// and nothing unbounded is built from untrusted bytes.
constexpr int kMaxScanDepth = 64;

Unexpected<Rejection> reject(int code, std::string_view message,
                             std::optional<std::string> token = std::nullopt) {
  return Unexpected<Rejection>{Rejection{code, std::string(message), std::move(token)}};
}

std::string_view strip_nul(std::string_view payload) {
  // AWS's C shadow demo publishes the document with its terminating NUL (fact sheet 8).
  if (!payload.empty() && payload.back() == '\0') payload.remove_suffix(1);
  return payload;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 (RFC 3629).
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// Nesting of the raw text outside strings.
bool shallow_enough(std::string_view s) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxScanDepth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

// Common to every request: size, encoding, JSON, token. An empty payload is `null` here.
Outcome<json> parse_common(std::string_view payload, std::optional<std::string>& token) {
  if (payload.size() > kMaxRequestBytes) return reject(413, msg::kTooLarge);
  payload = strip_nul(payload);
  if (!valid_utf8(payload)) return reject(415, msg::kNotUtf8);
  if (payload.find_first_not_of(" \t\r\n") == std::string_view::npos) return json();
  // Only one terminating NUL is the demo's; any other is no JSON (nlohmann would stop there).
  if (payload.find('\0') != std::string_view::npos) return reject(400, msg::kInvalidJson);
  if (!shallow_enough(payload)) return reject(400, msg::kTooDeep);
  json doc = json::parse(payload, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return reject(400, msg::kInvalidJson);
  if (auto t = doc.find("clientToken"); t != doc.end()) {
    if (!t->is_string() || t->get_ref<const std::string&>().size() > kMaxClientToken) {
      return reject(400, msg::kInvalidClientToken);
    }
    token = t->get<std::string>();
  }
  return doc;
}

// `node` sits at `level` (a section itself is level 1). Arrays count as levels too.
std::optional<std::string_view> check_node(const json& node, int level) {
  if (!node.is_structured() || node.empty()) return std::nullopt;
  if (level > kMaxDepth) return msg::kTooDeep;
  for (const json& child : node) {
    if (node.is_array() && child.is_null()) return msg::kInvalidNode;
    if (auto e = check_node(child, level + 1)) return e;
  }
  return std::nullopt;
}

// Metadata of a value as written: {"timestamp": now} per leaf (a null leaf too: the request's
// deletions are stamped in update/accepted), arrays element by element.
json metadata_of(const json& v, std::int64_t now) {
  if (v.is_object()) {
    json m = json::object();
    for (auto it = v.begin(); it != v.end(); ++it) m[it.key()] = metadata_of(it.value(), now);
    return m;
  }
  if (v.is_array()) {
    json m = json::array();
    for (const json& e : v) m.push_back(metadata_of(e, now));
    return m;
  }
  return json{{"timestamp", now}};
}

// Partial merge (1.2): named keys change, null deletes, objects merge, everything else
// (arrays included) is replaced whole. An object left empty by deletions goes too.
void merge(json& target, json& meta, const json& patch, std::int64_t now) {
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (v.is_null()) {
      target.erase(k);
      meta.erase(k);
    } else if (v.is_object()) {
      if (!target.contains(k) || !target[k].is_object()) {
        target[k] = json::object();
        meta[k] = json::object();
      }
      if (!meta[k].is_object()) meta[k] = json::object();
      merge(target[k], meta[k], v, now);
      if (target[k].empty()) {
        target.erase(k);
        meta.erase(k);
      }
    } else {
      target[k] = v;
      meta[k] = metadata_of(v, now);
    }
  }
}

json delta_between(const json& desired, const json& reported) {
  json out = json::object();
  for (auto it = desired.begin(); it != desired.end(); ++it) {
    const std::string& k = it.key();
    const json& d = it.value();
    const auto r = reported.is_object() ? reported.find(k) : reported.end();
    if (!reported.is_object() || r == reported.end()) {
      out[k] = d;
    } else if (d.is_object() && r->is_object()) {
      json sub = delta_between(d, *r);
      if (!sub.empty()) out[k] = std::move(sub);
    } else if (d != *r) {  // nlohmann compares numbers by value: 1 == 1.0 (1.4)
      out[k] = d;
    }
  }
  return out;
}

// The desired-side metadata of the delta's paths.
json delta_metadata(const json& delta, const json& meta) {
  json out = json::object();
  if (!meta.is_object()) return out;
  for (auto it = delta.begin(); it != delta.end(); ++it) {
    const auto m = meta.find(it.key());
    if (m == meta.end()) continue;
    // A nested object's metadata is an object of the same keys; a leaf's is {"timestamp": T}.
    const bool nested = it.value().is_object() && m->is_object() && !m->contains("timestamp");
    out[it.key()] = nested ? delta_metadata(it.value(), *m) : *m;
  }
  return out;
}

void put_token(json& doc, const std::optional<std::string>& token) {
  if (token) doc["clientToken"] = *token;
}

json snapshot(const Shadow& s) {
  return json{{"state", s.state}, {"metadata", s.metadata}, {"version", s.version}};
}

std::size_t state_bytes(const json& state) {
  std::size_t n = 0;
  for (const char* section : {"desired", "reported"}) {
    if (auto it = state.find(section); it != state.end()) n += to_payload(*it).size();
  }
  return n;
}

}  // namespace

Outcome<TokenRequest> parse_token_request(std::string_view payload) {
  TokenRequest rq;
  auto doc = parse_common(payload, rq.client_token);
  if (!doc) return Unexpected<Rejection>{doc.error()};
  return rq;
}

Outcome<UpdateRequest> parse_update(std::string_view payload) {
  UpdateRequest rq;
  auto parsed = parse_common(payload, rq.client_token);
  if (!parsed) return Unexpected<Rejection>{parsed.error()};
  const json& doc = parsed.value();
  const auto& token = rq.client_token;
  if (doc.is_null()) return reject(400, msg::kInvalidJson);
  if (auto v = doc.find("version"); v != doc.end()) {
    if (v->is_number_unsigned() && v->get<std::uint64_t>() <= INT64_MAX) {
      rq.version = static_cast<std::int64_t>(v->get<std::uint64_t>());
    } else if (v->is_number_integer() && v->get<std::int64_t>() >= 0) {
      rq.version = v->get<std::int64_t>();
    } else {
      return reject(400, msg::kInvalidVersion, token);
    }
  }
  const auto state = doc.find("state");
  if (state == doc.end()) return reject(400, msg::kMissingState, token);
  if (state->is_null()) {
    rq.state = nullptr;
    return rq;
  }
  if (!state->is_object()) return reject(400, msg::kStateNotObject, token);
  rq.state = json::object();
  for (const auto& [key, message] : {std::pair{"desired", msg::kDesiredNotObject},
                                     std::pair{"reported", msg::kReportedNotObject}}) {
    const auto section = state->find(key);
    if (section == state->end()) continue;
    if (!section->is_object() && !section->is_null()) return reject(400, message, token);
    if (auto e = check_node(*section, 1)) return reject(400, *e, token);
    rq.state[key] = *section;
  }
  return rq;
}

Outcome<Applied> apply_update(const std::optional<Shadow>& existing, std::int64_t last_version,
                              const UpdateRequest& request, std::int64_t now) {
  const auto& token = request.client_token;
  if (request.version) {
    if (!existing) return reject(400, msg::kInvalidVersion, token);
    if (*request.version != existing->version) return reject(409, msg::kVersionConflict, token);
  }
  Applied a;
  a.previous = existing;
  a.current = existing ? *existing : Shadow{};
  a.current.version = (existing ? existing->version : last_version) + 1;
  json accepted_meta = json::object();
  if (request.state.is_null()) {
    a.current.state = json::object();
    a.current.metadata = json::object();
  } else {
    for (const char* key : {"desired", "reported"}) {
      const auto section = request.state.find(key);
      if (section == request.state.end()) continue;
      accepted_meta[key] = metadata_of(*section, now);
      if (section->is_null()) {
        a.current.state.erase(key);
        a.current.metadata.erase(key);
        continue;
      }
      json& target = a.current.state[key];
      json& meta = a.current.metadata[key];
      if (!target.is_object()) target = json::object();
      if (!meta.is_object()) meta = json::object();
      merge(target, meta, *section, now);
      if (target.empty()) {
        a.current.state.erase(key);
        a.current.metadata.erase(key);
      }
    }
  }
  if (state_bytes(a.current.state) > kMaxStateBytes) return reject(413, msg::kTooLarge, token);

  a.accepted = json{{"state", request.state}};
  if (!request.state.is_null()) a.accepted["metadata"] = std::move(accepted_meta);
  a.accepted["version"] = a.current.version;
  a.accepted["timestamp"] = now;
  put_token(a.accepted, token);

  a.documents = json::object();
  if (a.previous) a.documents["previous"] = snapshot(*a.previous);
  a.documents["current"] = snapshot(a.current);
  a.documents["timestamp"] = now;
  put_token(a.documents, token);

  json d = delta_of(a.current.state);
  if (!d.empty()) {
    json delta{{"state", d}};
    delta["metadata"] = delta_metadata(d, a.current.metadata.value("desired", json::object()));
    delta["version"] = a.current.version;
    delta["timestamp"] = now;
    put_token(delta, token);
    a.delta = std::move(delta);
  }
  return a;
}

json delta_of(const json& state) {
  const auto desired = state.find("desired");
  if (desired == state.end() || !desired->is_object()) return json::object();
  const auto reported = state.find("reported");
  return delta_between(*desired, reported == state.end() ? json::object() : *reported);
}

json get_accepted(const Shadow& s, std::int64_t now, const std::optional<std::string>& token) {
  json state = s.state;
  if (json d = delta_of(s.state); !d.empty()) state["delta"] = std::move(d);
  json doc{{"state", std::move(state)},
           {"metadata", s.metadata},
           {"version", s.version},
           {"timestamp", now}};
  put_token(doc, token);
  return doc;
}

json delete_accepted(std::int64_t version, std::int64_t now,
                     const std::optional<std::string>& token) {
  json doc{{"version", version}, {"timestamp", now}};
  put_token(doc, token);
  return doc;
}

json rejected(const Rejection& r, std::int64_t now) {
  json doc{{"code", r.code}, {"message", r.message}, {"timestamp", now}};
  put_token(doc, r.client_token);
  return doc;
}

Rejection not_found(std::string_view thing, std::string_view shadow_name,
                    std::optional<std::string> token) {
  const std::string_view name = shadow_name.empty() ? thing : shadow_name;
  return Rejection{404, "No shadow exists with name: '" + std::string(name) + "'",
                   std::move(token)};
}

std::string to_payload(const json& doc) {
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace edgekit::fleetd::shadow
