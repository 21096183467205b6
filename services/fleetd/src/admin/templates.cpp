#include "admin/templates.hpp"

#include <algorithm>
#include <array>
#include <set>

#include "edgekit/json/json.hpp"
#include "policy/policy.hpp"
#include "provisioning/template_language.hpp"

namespace edgekit::fleetd::admin {
namespace {

using nlohmann::json;

// Deeper than any real template; bounds the recursion below (an attacker's nesting must not
// exhaust the stack).
constexpr int kMaxDepth = 16;

using provisioning::is_certificate_pseudo;
using provisioning::is_function;

Unexpected<Error> bad(std::string message) {
  return fail(Errc::InvalidArgument, "invalid template: " + std::move(message));
}

std::string clip(const std::string& s) { return s.substr(0, 64); }

struct Checker {
  std::set<std::string> parameters;
  bool has_mappings = false;

  // A value: a literal, a {"Ref": ...}, an intrinsic function, or a list/object of values.
  Res<void> value(const json& v, const std::string& where, int depth) {
    if (depth > kMaxDepth) return bad(where + " nests too deeply");
    if (v.is_object() && v.size() == 1) {
      const std::string& key = v.begin().key();
      const json& arg = v.begin().value();
      if (key == "Ref") {
        if (!arg.is_string()) return bad(where + ": Ref takes a parameter name");
        const auto& name = arg.get_ref<const std::string&>();
        if (parameters.count(name) == 0 && !is_certificate_pseudo(name)) {
          return bad(where + ": Ref to '" + clip(name) + "', which is not a declared parameter");
        }
        return {};
      }
      if (key.rfind("Fn::", 0) == 0) {
        if (!is_function(key)) {
          return bad(where + ": unknown function '" + clip(key) + "'");
        }
        if (key == "Fn::FindInMap" && !has_mappings) {
          return bad(where + ": Fn::FindInMap without a Mappings section");
        }
        if (key != "Fn::Sub" && !arg.is_array()) {
          return bad(where + ": " + key + " takes a list of arguments");
        }
        if (key == "Fn::Sub" && !arg.is_string() && !arg.is_array()) {
          return bad(where + ": Fn::Sub takes a string or a list");
        }
        return value(arg, where + "." + key, depth + 1);
      }
    }
    if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (auto r = value(it.value(), where + "." + clip(it.key()), depth + 1); !r) return r;
      }
    } else if (v.is_array()) {
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (auto r = value(v[i], where + "[" + std::to_string(i) + "]", depth + 1); !r) return r;
      }
    }
    return {};
  }

  Res<void> only(const json& props, const std::string& where,
                 std::initializer_list<std::string_view> allowed) {
    for (auto it = props.begin(); it != props.end(); ++it) {
      if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
        return bad(where + ": unknown property '" + clip(it.key()) + "'");
      }
    }
    return {};
  }
};

bool is_literal_or_ref(const json& v) { return v.is_string() || v.is_object(); }

}  // namespace

Res<void> validate_template(std::string_view body, std::string_view type) {
  const bool jitp = type == "JITP";
  if (!jitp && type != "FLEET_PROVISIONING") {
    return fail(Errc::InvalidArgument, "template type must be FLEET_PROVISIONING or JITP");
  }
  if (body.size() > kMaxTemplateBody) return bad("the body is larger than 10,240 bytes");
  json t = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (t.is_discarded()) return bad("the body is not valid JSON");
  if (!t.is_object()) return bad("the body is not a JSON object");
  Checker c;
  for (auto it = t.begin(); it != t.end(); ++it) {
    const std::string& k = it.key();
    if (k == "DeviceConfiguration" && jitp) {
      return bad("DeviceConfiguration is for fleet provisioning templates only");
    }
    if (k != "Parameters" && k != "Resources" && k != "Mappings" && k != "DeviceConfiguration") {
      return bad("unknown section '" + clip(k) + "'");
    }
  }

  if (auto p = t.find("Parameters"); p != t.end()) {
    if (!p->is_object()) return bad("Parameters is not an object");
    for (auto it = p->begin(); it != p->end(); ++it) {
      const std::string where = "parameter '" + clip(it.key()) + "'";
      if (it.key().empty()) return bad("a parameter without a name");
      if (!it.value().is_object()) return bad(where + " is not an object");
      auto ty = it.value().find("Type");
      if (ty == it.value().end() || *ty != "String") return bad(where + " needs \"Type\": \"String\"");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (m.key() != "Type" && m.key() != "Default") {
          return bad(where + ": unknown member '" + clip(m.key()) + "'");
        }
      }
      if (auto d = it.value().find("Default"); d != it.value().end() && !d->is_string()) {
        return bad(where + ": Default is not a string");
      }
      c.parameters.insert(it.key());
    }
  }

  if (auto m = t.find("Mappings"); m != t.end()) {
    if (jitp) return bad("Mappings is for fleet provisioning templates only");
    if (!m->is_object()) return bad("Mappings is not an object");
    for (auto it = m->begin(); it != m->end(); ++it) {
      if (!it.value().is_object()) return bad("mapping '" + clip(it.key()) + "' is not an object");
      for (auto k = it.value().begin(); k != it.value().end(); ++k) {
        if (!k.value().is_object()) {
          return bad("mapping '" + clip(it.key()) + "." + clip(k.key()) + "' is not an object");
        }
        for (auto v = k.value().begin(); v != k.value().end(); ++v) {
          if (v.value().is_object() || v.value().is_array()) {
            return bad("mapping values are strings, numbers or booleans");
          }
        }
      }
    }
    c.has_mappings = true;
  }

  if (auto d = t.find("DeviceConfiguration"); d != t.end()) {
    if (!d->is_object()) return bad("DeviceConfiguration is not an object");
    for (auto it = d->begin(); it != d->end(); ++it) {
      if (it.value().is_array() ||
          (it.value().is_object() && !(it.value().size() == 1 &&
                                       (it.value().contains("Ref") ||
                                        it.value().begin().key().rfind("Fn::", 0) == 0)))) {
        return bad("DeviceConfiguration is flat: '" + clip(it.key()) + "' is nested");
      }
      if (auto r = c.value(it.value(), "DeviceConfiguration." + clip(it.key()), 1); !r) return r;
    }
  }

  auto res = t.find("Resources");
  if (res == t.end() || !res->is_object() || res->empty()) {
    return bad("Resources is missing or empty");
  }
  int things = 0;
  int certificates = 0;
  for (auto it = res->begin(); it != res->end(); ++it) {
    const std::string where = "resource '" + clip(it.key()) + "'";
    const json& r = it.value();
    if (!r.is_object()) return bad(where + " is not an object");
    if (auto o = c.only(r, where, {"Type", "Properties", "OverrideSettings"}); !o) return o;
    auto ty = r.find("Type");
    if (ty == r.end() || !ty->is_string()) return bad(where + " has no Type");
    auto pr = r.find("Properties");
    if (pr == r.end() || !pr->is_object()) return bad(where + " has no Properties object");
    const json& props = *pr;
    if (auto v = c.value(props, where, 1); !v) return v;
    const std::string& type_name = ty->get_ref<const std::string&>();
    if (type_name == "AWS::IoT::Thing") {
      ++things;
      if (auto o = c.only(props, where,
                          {"ThingName", "AttributePayload", "ThingTypeName", "ThingGroups",
                           "BillingGroup"});
          !o) {
        return o;
      }
      auto n = props.find("ThingName");
      if (n == props.end() || !is_literal_or_ref(*n)) return bad(where + " needs a ThingName");
      if (auto a = props.find("AttributePayload"); a != props.end() && !a->is_object()) {
        return bad(where + ": AttributePayload is not an object");
      }
      if (auto g = props.find("ThingGroups"); g != props.end() && !g->is_array()) {
        return bad(where + ": ThingGroups is not a list");
      }
    } else if (type_name == "AWS::IoT::Certificate") {
      ++certificates;
      if (auto o = c.only(props, where,
                          {"CertificateId", "CertificateSigningRequest", "CertificatePem",
                           "CACertificatePem", "Status"});
          !o) {
        return o;
      }
      const int sources = static_cast<int>(props.contains("CertificateId")) +
                          static_cast<int>(props.contains("CertificateSigningRequest")) +
                          static_cast<int>(props.contains("CertificatePem"));
      if (sources != 1) {
        return bad(where + " needs exactly one of CertificateId, CertificateSigningRequest, "
                           "CertificatePem");
      }
      if (props.contains("CACertificatePem") && !props.contains("CertificatePem")) {
        return bad(where + ": CACertificatePem goes only with CertificatePem");
      }
      if (jitp && !props.contains("CertificateId")) {
        return bad(where + ": a JITP template's certificate must use CertificateId");
      }
      if (auto s = props.find("Status"); s != props.end() && s->is_string() && *s != "ACTIVE" &&
                                         *s != "INACTIVE") {
        return bad(where + ": Status must be ACTIVE or INACTIVE");
      }
    } else if (type_name == "AWS::IoT::Policy") {
      if (auto o = c.only(props, where, {"PolicyName", "PolicyDocument"}); !o) return o;
      if (props.contains("PolicyName") == props.contains("PolicyDocument")) {
        return bad(where + " needs exactly one of PolicyName and PolicyDocument");
      }
      if (auto d = props.find("PolicyDocument"); d != props.end() && d->is_string()) {
        if (auto p = policy::parse(d->get_ref<const std::string&>()); !p) {
          return bad(where + ": PolicyDocument: " + p.error().message);
        }
      }
    } else {
      return bad(where + ": unsupported Type '" + clip(type_name) +
                 "' (AWS::IoT::Thing, AWS::IoT::Certificate, AWS::IoT::Policy)");
    }
    if (auto o = r.find("OverrideSettings"); o != r.end()) {
      if (!o->is_object()) return bad(where + ": OverrideSettings is not an object");
      for (auto s = o->begin(); s != o->end(); ++s) {
        if (!s.value().is_string()) return bad(where + ": OverrideSettings values are strings");
        const auto& v = s.value().get_ref<const std::string&>();
        if (v != "DO_NOTHING" && v != "REPLACE" && v != "FAIL" && v != "MERGE") {
          return bad(where + ": OverrideSettings '" + clip(s.key()) +
                     "' must be DO_NOTHING, REPLACE, FAIL or MERGE");
        }
        if (v == "MERGE" && s.key() != "ThingGroups" && s.key() != "AttributePayload") {
          return bad(where + ": MERGE applies to ThingGroups and AttributePayload only");
        }
      }
    }
  }
  if (things != 1) return bad("Resources needs exactly one AWS::IoT::Thing");
  if (certificates != 1) return bad("Resources needs exactly one AWS::IoT::Certificate");
  return {};
}

}  // namespace edgekit::fleetd::admin
