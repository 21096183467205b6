#include "provisioning/engine.hpp"

#include <algorithm>
#include <set>
#include <span>

#include "edgekit/json/json.hpp"
#include "edgekit/pki/keys.hpp"
#include "policy/policy.hpp"
#include "provisioning/template_language.hpp"

namespace edgekit::fleetd::provisioning {
namespace {

using nlohmann::json;

// Templates are validated (and their nesting bounded) when stored; the engine keeps its own bound
// so that a body written past the validator (an older fleetd, a direct store write) cannot
// exhaust the stack.
constexpr int kMaxDepth = 16;

Unexpected<Rejection> reject(int status, std::string code, std::string message) {
  return Unexpected<Rejection>{Rejection{status, std::move(code), std::move(message), {}}};
}
Unexpected<Rejection> invalid(std::string message) {
  return reject(400, "InvalidParameters", std::move(message));
}
// The message AWS sends for a parameter that neither the request, its Default nor the
// certificate supplies (aws-iot-protocols.md 4.1).
Unexpected<Rejection> unresolved(std::string_view name) {
  return invalid("Cannot resolve reference value: " + std::string(name));
}
Unexpected<Rejection> conflict(std::string message) {
  return reject(409, "ResourceConflictsException", std::move(message));
}

}  // namespace

Unexpected<Rejection> rejection_from(Error e) {
  Rejection r;
  switch (e.code) {
    // Refusals caused by the values the template resolved to (a thing name AWS would refuse, a
    // thing group or policy that does not exist) are the request's fault.
    case Errc::InvalidArgument:
    case Errc::NotFound:
      r.status_code = 400;
      r.error_code = "InvalidParameters";
      break;
    case Errc::AlreadyExists:
    case Errc::Conflict:
      r.status_code = 409;
      r.error_code = "ResourceConflictsException";
      break;
    default:
      r.status_code = 500;
      r.error_code = "InternalFailure";
      break;
  }
  r.error_message = e.message;
  r.store_error = std::move(e);
  return Unexpected<Rejection>{std::move(r)};
}

namespace {

// Numbers and booleans (from Mappings, or literal in a template) are used as their JSON text,
// because every property they can reach (names, attributes, device configuration) is a string.
Outcome<std::string> text(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return invalid(where + " is not a string");
}

// Resolves the values of one template run: Ref, the AWS::IoT::Certificate::* pseudo parameters
// and the intrinsic functions. Pure: reads the template, the request and the certificate only.
class Resolver {
 public:
  Resolver(const json& tmpl, const std::map<std::string, std::string>& request,
           const CertificateContext& cert)
      : tmpl_(tmpl), request_(request), cert_(cert) {}

  // A parameter's value. Pseudo parameters come from the certificate only: a request cannot
  // name its own certificate id or subject. Declared parameters come from the request, else
  // their Default (also the fallback of a pseudo parameter the certificate lacks, as in
  // CloudFormation; without one the run fails, as JITP does for a missing subject field).
  Outcome<std::string> ref(std::string_view name) const {
    if (is_certificate_pseudo(name)) {
      const std::string_view field = name.substr(kCertificatePseudoPrefix.size());
      if (field == "Id") {
        if (!cert_.certificate_id.empty()) return cert_.certificate_id;
      } else if (auto it = cert_.subject.find(std::string(field)); it != cert_.subject.end()) {
        return it->second;
      }
    }
    const json* declared = parameter(name);
    if (declared == nullptr) return unresolved(name);
    if (!is_certificate_pseudo(name)) {
      if (auto it = request_.find(std::string(name)); it != request_.end()) return it->second;
    }
    if (auto d = declared->find("Default"); d != declared->end() && d->is_string()) {
      return d->get<std::string>();
    }
    return unresolved(name);
  }

  // The value of `v` with every Ref and function replaced.
  Outcome<json> eval(const json& v, const std::string& where, int depth = 0) const {
    if (depth > kMaxDepth) return invalid(where + " nests too deeply");
    if (v.is_object() && v.size() == 1) {
      const std::string& key = v.begin().key();
      const json& arg = v.begin().value();
      if (key == "Ref") {
        if (!arg.is_string()) return invalid(where + ": Ref takes a parameter name");
        auto r = ref(arg.get_ref<const std::string&>());
        if (!r) return fail(r.error());
        return json(std::move(r.value()));
      }
      if (is_function(key)) return call(key, arg, where + "." + key, depth + 1);
    }
    if (v.is_object()) {
      json out = json::object();
      for (auto it = v.begin(); it != v.end(); ++it) {
        auto r = eval(it.value(), where + "." + it.key(), depth + 1);
        if (!r) return r;
        out[it.key()] = std::move(r.value());
      }
      return out;
    }
    if (v.is_array()) {
      json out = json::array();
      for (std::size_t i = 0; i < v.size(); ++i) {
        auto r = eval(v[i], where + "[" + std::to_string(i) + "]", depth + 1);
        if (!r) return r;
        out.push_back(std::move(r.value()));
      }
      return out;
    }
    return v;
  }

  // eval, then text.
  Outcome<std::string> eval_text(const json& v, const std::string& where, int depth = 0) const {
    auto r = eval(v, where, depth);
    if (!r) return fail(r.error());
    return text(r.value(), where);
  }

 private:
  const json* parameter(std::string_view name) const {
    auto ps = tmpl_.find("Parameters");
    if (ps == tmpl_.end() || !ps->is_object()) return nullptr;
    auto p = ps->find(std::string(name));
    return p == ps->end() || !p->is_object() ? nullptr : &*p;
  }

  Outcome<json> call(const std::string& fn, const json& arg, const std::string& where,
                     int depth) const {
    if (fn == "Fn::Sub") return sub(arg, where, depth);
    const std::size_t n = fn == "Fn::FindInMap" ? 3 : 2;
    if (!arg.is_array() || arg.size() != n) {
      return invalid(where + " takes " + std::to_string(n) + " arguments");
    }
    if (fn == "Fn::FindInMap") return find_in_map(arg, where, depth);
    if (fn == "Fn::Split") {
      auto delimiter = eval_text(arg[0], where + "[0]", depth);
      if (!delimiter) return fail(delimiter.error());
      auto source = eval_text(arg[1], where + "[1]", depth);
      if (!source) return fail(source.error());
      if (delimiter->empty()) return invalid(where + ": the delimiter is empty");
      json out = json::array();
      std::size_t from = 0;
      for (;;) {
        const std::size_t at = source->find(*delimiter, from);
        out.push_back(
            source->substr(from, at == std::string::npos ? std::string::npos : at - from));
        if (at == std::string::npos) break;
        from = at + delimiter->size();
      }
      return out;
    }
    // Fn::Join and Fn::Select take a list, possibly made by another function (Fn::Split).
    auto list = eval(arg[1], where + "[1]", depth);
    if (!list) return list;
    if (!list->is_array()) return invalid(where + ": the second argument is not a list");
    if (fn == "Fn::Join") {
      auto delimiter = eval_text(arg[0], where + "[0]", depth);
      if (!delimiter) return fail(delimiter.error());
      std::string out;
      for (std::size_t i = 0; i < list->size(); ++i) {
        auto item = text((*list)[i], where + "[1][" + std::to_string(i) + "]");
        if (!item) return fail(item.error());
        if (i > 0) out += *delimiter;
        out += *item;
      }
      return json(std::move(out));
    }
    // Fn::Select: the index is a number or a string of digits, as CloudFormation accepts.
    auto index = eval(arg[0], where + "[0]", depth);
    if (!index) return index;
    std::size_t i = 0;
    if (index->is_number_unsigned() ||
        (index->is_number_integer() && index->get<long long>() >= 0)) {
      i = index->get<std::size_t>();
    } else if (index->is_string() && !index->get_ref<const std::string&>().empty() &&
               index->get_ref<const std::string&>().size() < 10 &&
               std::all_of(index->get_ref<const std::string&>().begin(),
                           index->get_ref<const std::string&>().end(),
                           [](char c) { return c >= '0' && c <= '9'; })) {
      i = std::stoul(index->get<std::string>());
    } else {
      return invalid(where + ": the index is not a number");
    }
    if (i >= list->size()) {
      return invalid(where + ": index " + std::to_string(i) + " is beyond the list's " +
                     std::to_string(list->size()) + " items");
    }
    return (*list)[i];
  }

  Outcome<json> find_in_map(const json& arg, const std::string& where, int depth) const {
    std::string keys[3];
    for (std::size_t i = 0; i < 3; ++i) {
      auto k = eval_text(arg[i], where + "[" + std::to_string(i) + "]", depth);
      if (!k) return fail(k.error());
      keys[i] = std::move(k.value());
    }
    const json* node = &tmpl_;
    for (const std::string& k : {std::string("Mappings"), keys[0], keys[1], keys[2]}) {
      auto it = node->is_object() ? node->find(k) : node->end();
      if (!node->is_object() || it == node->end()) {
        return invalid(where + ": no value in Mappings for " + keys[0] + "/" + keys[1] + "/" +
                       keys[2]);
      }
      node = &*it;
    }
    return *node;
  }

  // Fn::Sub: "text ${Name} text" (Name a parameter or pseudo parameter), or [text, {Name:
  // value, ...}] whose variables win over parameters. "${!Name}" stands for a literal "${Name}".
  Outcome<json> sub(const json& arg, const std::string& where, int depth) const {
    const json* source = &arg;
    std::map<std::string, std::string> vars;
    if (arg.is_array()) {
      if (arg.size() != 2 || !arg[1].is_object()) {
        return invalid(where + " takes a string, or a string and a map of variables");
      }
      source = &arg[0];
      for (auto it = arg[1].begin(); it != arg[1].end(); ++it) {
        auto v = eval_text(it.value(), where + "[1]." + it.key(), depth);
        if (!v) return fail(v.error());
        vars[it.key()] = std::move(v.value());
      }
    }
    if (!source->is_string()) return invalid(where + ": the text is not a string");
    const std::string& s = source->get_ref<const std::string&>();
    std::string out;
    std::size_t from = 0;
    for (;;) {
      const std::size_t open = s.find("${", from);
      if (open == std::string::npos) {
        out.append(s, from);
        break;
      }
      const std::size_t close = s.find('}', open + 2);
      if (close == std::string::npos) return invalid(where + ": an unclosed ${ in the text");
      out.append(s, from, open - from);
      const std::string name = s.substr(open + 2, close - open - 2);
      if (!name.empty() && name[0] == '!') {
        out += "${" + name.substr(1) + "}";
      } else if (auto v = vars.find(name); v != vars.end()) {
        out += v->second;
      } else {
        auto r = ref(name);
        if (!r) return fail(r.error());
        out += r.value();
      }
      from = close + 1;
    }
    return json(std::move(out));
  }

  const json& tmpl_;
  const std::map<std::string, std::string>& request_;
  const CertificateContext& cert_;
};

enum class Override { DoNothing, Replace, Fail, Merge };

// A property's OverrideSettings; DO_NOTHING when absent, which leaves an existing thing as it is.
Override override_of(const json& resource, std::string_view property) {
  auto o = resource.find("OverrideSettings");
  if (o == resource.end() || !o->is_object()) return Override::DoNothing;
  auto s = o->find(std::string(property));
  if (s == o->end() || !s->is_string()) return Override::DoNothing;
  if (*s == "REPLACE") return Override::Replace;
  if (*s == "FAIL") return Override::Fail;
  if (*s == "MERGE") return Override::Merge;
  return Override::DoNothing;
}

struct ThingSpec {
  std::string name;
  std::optional<Attributes> attributes;
  std::optional<std::string> type;
  std::optional<std::vector<std::string>> groups;
};

Outcome<ThingSpec> thing_spec(const json& props, const Resolver& r, const std::string& where) {
  ThingSpec spec;
  auto name = r.eval_text(props.at("ThingName"), where + ".ThingName");
  if (!name) return fail(name.error());
  spec.name = std::move(name.value());
  if (auto a = props.find("AttributePayload"); a != props.end()) {
    auto v = r.eval(*a, where + ".AttributePayload");
    if (!v) return fail(v.error());
    if (!v->is_object()) return invalid(where + ".AttributePayload is not an object");
    Attributes attrs;
    for (auto it = v->begin(); it != v->end(); ++it) {
      auto t = text(it.value(), where + ".AttributePayload." + it.key());
      if (!t) return fail(t.error());
      attrs[it.key()] = std::move(t.value());
    }
    spec.attributes = std::move(attrs);
  }
  if (auto t = props.find("ThingTypeName"); t != props.end()) {
    auto v = r.eval_text(*t, where + ".ThingTypeName");
    if (!v) return fail(v.error());
    spec.type = std::move(v.value());
  }
  if (auto g = props.find("ThingGroups"); g != props.end()) {
    auto v = r.eval(*g, where + ".ThingGroups");
    if (!v) return fail(v.error());
    if (!v->is_array()) return invalid(where + ".ThingGroups is not a list");
    std::vector<std::string> groups;
    for (std::size_t i = 0; i < v->size(); ++i) {
      auto t = text((*v)[i], where + ".ThingGroups[" + std::to_string(i) + "]");
      if (!t) return fail(t.error());
      groups.push_back(std::move(t.value()));
    }
    spec.groups = std::move(groups);
  }
  // BillingGroup is accepted by the validator (AWS defines it) and ignored: fleetd keeps no
  // billing groups.
  return spec;
}

Outcome<void> add_groups(Tx& tx, const std::string& thing, const std::vector<std::string>& groups) {
  for (const auto& g : groups) {
    if (auto a = tx.add_to_group(g, thing); !a) return rejection_from(a.error());
  }
  return {};
}

// Creates the thing, or applies the resource's OverrideSettings to the existing one. FAIL
// refuses only a value that differs from the thing's: provisioning the same device again with
// the same values succeeds.
Outcome<bool> provision_thing(Tx& tx, const json& resource, const ThingSpec& spec) {
  auto existing = tx.get_thing(spec.name);
  if (!existing) {
    if (existing.error().code != Errc::NotFound) return rejection_from(existing.error());
    Thing t;
    t.name = spec.name;
    t.type = spec.type.value_or("");
    t.attributes = spec.attributes.value_or(Attributes{});
    if (auto c = tx.create_thing(t); !c) return rejection_from(c.error());
    if (spec.groups) {
      if (auto g = add_groups(tx, spec.name, *spec.groups); !g) return fail(g.error());
    }
    return true;
  }
  Thing thing = std::move(existing.value());
  const std::string who = "thing '" + spec.name + "' exists with other ";
  bool changed = false;
  if (spec.attributes) {
    switch (override_of(resource, "AttributePayload")) {
      case Override::DoNothing:
        break;
      case Override::Fail:
        if (thing.attributes != *spec.attributes) return conflict(who + "attributes");
        break;
      case Override::Replace:
        changed = thing.attributes != *spec.attributes;
        thing.attributes = *spec.attributes;
        break;
      case Override::Merge:
        for (const auto& [k, v] : *spec.attributes) {
          auto it = thing.attributes.find(k);
          if (it != thing.attributes.end() && it->second == v) continue;
          thing.attributes[k] = v;
          changed = true;
        }
        break;
    }
  }
  if (spec.type) {
    switch (override_of(resource, "ThingTypeName")) {
      case Override::DoNothing:
      case Override::Merge:  // refused by the validator: a type is one value
        break;
      case Override::Fail:
        if (thing.type != *spec.type) return conflict(who + "thing type");
        break;
      case Override::Replace:
        changed = changed || thing.type != *spec.type;
        thing.type = *spec.type;
        break;
    }
  }
  if (spec.groups) {
    const Override o = override_of(resource, "ThingGroups");
    if (o != Override::DoNothing) {
      auto current = tx.groups_of(spec.name);
      if (!current) return rejection_from(current.error());
      const std::set<std::string> have(current->begin(), current->end());
      const std::set<std::string> want(spec.groups->begin(), spec.groups->end());
      if (o == Override::Fail && have != want) return conflict(who + "thing groups");
      if (o == Override::Replace) {
        for (const auto& g : have) {
          if (want.count(g) != 0) continue;
          if (auto rm = tx.remove_from_group(g, spec.name); !rm) {
            return rejection_from(rm.error());
          }
        }
      }
      if (o == Override::Replace || o == Override::Merge) {
        if (auto g = add_groups(tx, spec.name, *spec.groups); !g) return fail(g.error());
      }
    }
  }
  if (changed) {
    if (auto u = tx.update_thing(thing); !u) return rejection_from(u.error());
  }
  return false;
}

Outcome<CertificateStatus> provision_certificate(Tx& tx, const json& props, const Resolver& r,
                                                 const std::string& where,
                                                 const CertificateContext& cert,
                                                 const std::string& thing) {
  if (!props.contains("CertificateId")) {
    // Templates that bring their own certificate (CertificatePem, CertificateSigningRequest) are
    // AWS's bulk registration; fleet provisioning and JITP always name the request's.
    return invalid(where + ": fleetd provisions only with CertificateId");
  }
  auto id = r.eval_text(props.at("CertificateId"), where + ".CertificateId");
  if (!id) return fail(id.error());
  if (*id != cert.certificate_id) {
    return invalid(where + ".CertificateId is not the certificate being provisioned");
  }
  CertificateStatus status = CertificateStatus::Active;
  if (auto s = props.find("Status"); s != props.end()) {
    auto v = r.eval_text(*s, where + ".Status");
    if (!v) return fail(v.error());
    if (*v == "INACTIVE") {
      status = CertificateStatus::Inactive;
    } else if (*v != "ACTIVE") {
      return invalid(where + ".Status must be ACTIVE or INACTIVE");
    }
  }
  if (auto c = tx.set_certificate_status(*id, status); !c) {
    return rejection_from(c.error());
  }
  if (auto a = tx.attach_thing_principal(thing, *id); !a) {
    return rejection_from(a.error());
  }
  return status;
}

// PolicyName attaches an existing policy. PolicyDocument creates one named after the SHA-256 of
// the resolved document (hex, 64 characters), as AWS names the policies its provisioning creates
// from a document: the same document makes the same policy, shared by every device provisioned
// with it, instead of one policy per device.
Outcome<std::string> provision_policy(Tx& tx, const json& props, const Resolver& r,
                                      const std::string& where, const std::string& cert_id) {
  std::string name;
  if (auto n = props.find("PolicyName"); n != props.end()) {
    auto v = r.eval_text(*n, where + ".PolicyName");
    if (!v) return fail(v.error());
    name = std::move(v.value());
    if (auto p = tx.get_policy(name); !p) return rejection_from(p.error());
  } else {
    auto doc = r.eval(props.at("PolicyDocument"), where + ".PolicyDocument");
    if (!doc) return fail(doc.error());
    const std::string document = doc->is_string() ? doc->get<std::string>() : doc->dump();
    if (auto parsed = policy::parse(document); !parsed) {
      return invalid(where + ".PolicyDocument: " + parsed.error().message);
    }
    name = pki::sha256_hex(std::span<const std::uint8_t>(
        reinterpret_cast<const std::uint8_t*>(document.data()), document.size()));
    auto existing = tx.get_policy(name);
    if (!existing) {
      if (existing.error().code != Errc::NotFound) {
        return rejection_from(existing.error());
      }
      Policy p;
      p.name = name;
      p.document = document;
      if (auto c = tx.create_policy(p); !c) return rejection_from(c.error());
    }
  }
  if (auto a = tx.attach_policy(name, cert_id); !a) return rejection_from(a.error());
  return name;
}

}  // namespace

Outcome<Provisioned> run_template(Tx& tx, const ProvisioningTemplate& tmpl,
                                  const std::map<std::string, std::string>& parameters,
                                  const CertificateContext& cert) {
  const json t = json::parse(tmpl.body, nullptr, /*allow_exceptions=*/false);
  if (!t.is_object() || !t.contains("Resources") || !t["Resources"].is_object()) {
    return reject(500, "InternalFailure", "template '" + tmpl.name + "' is not a valid template");
  }
  const Resolver r(t, parameters, cert);
  const json* thing_resource = nullptr;
  const json* cert_resource = nullptr;
  std::string thing_key;
  std::string cert_key;
  std::vector<std::pair<std::string, const json*>> policies;
  for (auto it = t["Resources"].begin(); it != t["Resources"].end(); ++it) {
    const json& res = it.value();
    if (!res.is_object() || !res.contains("Type") || !res.contains("Properties") ||
        !res["Properties"].is_object()) {
      return reject(500, "InternalFailure",
                    "template '" + tmpl.name + "': resource '" + it.key() + "' is malformed");
    }
    const json& type = res["Type"];
    if (type == "AWS::IoT::Thing") {
      thing_resource = &res;
      thing_key = it.key();
    } else if (type == "AWS::IoT::Certificate") {
      cert_resource = &res;
      cert_key = it.key();
    } else if (type == "AWS::IoT::Policy") {
      policies.emplace_back(it.key(), &res);
    }
  }
  if (thing_resource == nullptr || cert_resource == nullptr) {
    return reject(500, "InternalFailure",
                  "template '" + tmpl.name + "' lacks its thing or certificate resource");
  }

  Provisioned out;
  // Everything is resolved before anything is written, so that a missing parameter is reported
  // as such rather than as whatever write came first.
  auto spec = thing_spec((*thing_resource)["Properties"], r, "Resources." + thing_key);
  if (!spec) return fail(spec.error());
  if (auto d = t.find("DeviceConfiguration"); d != t.end() && d->is_object()) {
    for (auto it = d->begin(); it != d->end(); ++it) {
      auto v = r.eval_text(it.value(), "DeviceConfiguration." + it.key());
      if (!v) return fail(v.error());
      out.device_configuration[it.key()] = std::move(v.value());
    }
  }

  auto created = provision_thing(tx, *thing_resource, *spec);
  if (!created) return fail(created.error());
  out.thing_name = spec->name;
  out.thing_created = *created;

  auto status = provision_certificate(tx, (*cert_resource)["Properties"], r,
                                      "Resources." + cert_key, cert, spec->name);
  if (!status) return fail(status.error());
  out.certificate_status = *status;

  for (const auto& [key, res] : policies) {
    auto name =
        provision_policy(tx, (*res)["Properties"], r, "Resources." + key, cert.certificate_id);
    if (!name) return fail(name.error());
    out.policies.push_back(std::move(name.value()));
  }
  return out;
}

}  // namespace edgekit::fleetd::provisioning
