// edgekit fleet: fleetd's admin API from the command line (docs/fleetd.md, "Admin API"). Each
// subcommand is one or a few HTTP calls; lists follow `next` until the last page. Output is a
// table for people or, with --json, the API's own JSON for scripts.
//
// The token is read from EDGEKIT_FLEET_TOKEN or a file (--token-file / EDGEKIT_FLEET_TOKEN_FILE),
// never from a flag: command lines are visible to every user of the machine.
#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "edgekit/json/json.hpp"
#include "edgekit/pki/csr.hpp"
#include "edgekit/pki/keys.hpp"
#include "edgekit/pki/name.hpp"
#include "input.hpp"

namespace edgekit::tools {
// This file's helpers, in a namespace of their own: a unity build (EDGEKIT_UNITY_BUILD) compiles
// several command files as one translation unit.
namespace cmd_fleet {
namespace {

using nlohmann::json;

constexpr const char* kDefaultUrl = "http://127.0.0.1:8767";

enum Exit { kOk = 0, kApiError = 1, kUsage = 2, kUnreachable = 3 };

struct FleetOptions {
  std::string url;
  std::string token_file;
  std::string ca_file;
  bool json = false;
  // Arguments of the subcommands.
  std::string name;
  std::string id;
  std::string file;
  std::string type;
  std::string status;
  std::string ca_id;
  std::string description;
  std::vector<std::string> attributes;
  std::string out;
  int days = 0;
  bool enabled = false;
  bool active = false;
  bool auto_registration = false;
  // shadow update
  std::string desired;
  std::string reported;
  std::int64_t version = -1;
  // jobs
  std::vector<std::string> things;
  std::vector<std::string> groups;
  bool continuous = false;
  bool force = false;
  int timeout_minutes = 0;
  // ota
  std::string image_version;
  std::string signature;
  std::string certificate;
  std::string stream;
  std::vector<std::string> protocols;
  int block_size = 0;
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// At most 64 MiB (documents and tokens are far smaller); a directory is refused, not thrown on.
bool read_file(const std::string& path, std::string& out) {
  std::string error;
  return read_input(path, 64U << 20U, out, error);
}

class Api {
 public:
  explicit Api(const FleetOptions& o) : o_(o) {}

  // Resolves the URL and token; prints why not and returns false when it cannot.
  bool ready() {
    url_ = !o_.url.empty() ? o_.url : !env("EDGEKIT_FLEET_URL").empty() ? env("EDGEKIT_FLEET_URL")
                                                                        : kDefaultUrl;
    while (!url_.empty() && url_.back() == '/') url_.pop_back();
    token_ = env("EDGEKIT_FLEET_TOKEN");
    std::string file = !o_.token_file.empty() ? o_.token_file : env("EDGEKIT_FLEET_TOKEN_FILE");
    if (token_.empty() && !file.empty()) {
      if (!read_file(file, token_)) {
        std::fprintf(stderr, "edgekit fleet: cannot read the token file %s\n", file.c_str());
        return false;
      }
      while (!token_.empty() && (token_.back() == '\n' || token_.back() == '\r')) token_.pop_back();
    }
    if (token_.empty()) {
      std::fprintf(stderr,
                   "edgekit fleet: no admin token: set EDGEKIT_FLEET_TOKEN, or give "
                   "--token-file / EDGEKIT_FLEET_TOKEN_FILE (fleetd's <state-dir>/admin.token)\n");
      return false;
    }
    client_ = std::make_unique<httplib::Client>(url_);
    if (!client_->is_valid()) {
      std::fprintf(stderr, "edgekit fleet: unusable URL %s\n", url_.c_str());
      return false;
    }
    if (!o_.ca_file.empty()) client_->set_ca_cert_path(o_.ca_file.c_str());
    client_->set_connection_timeout(5, 0);
    client_->set_read_timeout(10, 0);
    client_->set_bearer_token_auth(token_.c_str());
    return true;
  }

  // One call. On success `out` holds the parsed answer (null for 204) and kOk is returned;
  // otherwise the error is printed and its exit code returned.
  int call(const std::string& method, const std::string& path, const json* body, json& out) {
    const std::string full = "/admin/v1" + path;
    const std::string text = body ? body->dump() : std::string();
    auto r = [&] {
      if (method == "GET") return client_->Get(full.c_str());
      if (method == "POST") return client_->Post(full.c_str(), text, "application/json");
      if (method == "PUT") return client_->Put(full.c_str(), text, "application/json");
      if (method == "PATCH") return client_->Patch(full.c_str(), text, "application/json");
      return client_->Delete(full.c_str());
    }();
    if (!r) {
      std::fprintf(stderr, "edgekit fleet: cannot reach fleetd at %s: %s\n", url_.c_str(),
                   httplib::to_string(r.error()).c_str());
      return kUnreachable;
    }
    out = r->body.empty() ? json() : json::parse(r->body, nullptr, false);
    if (r->status >= 200 && r->status < 300) return kOk;
    std::string code = "error";
    std::string message = r->body;
    if (out.is_object()) {
      code = out.value("code", code);
      message = out.value("message", message);
    }
    std::fprintf(stderr, "edgekit fleet: %s: %s (HTTP %d)\n", code.c_str(), message.c_str(),
                 r->status);
    return kApiError;
  }

  // Every page of a list.
  int list(const std::string& path, json& items) {
    items = json::array();
    std::string next;
    for (int pages = 0; pages < 10'000; ++pages) {
      json page;
      std::string q = path + (path.find('?') == std::string::npos ? "?" : "&") + "limit=1000";
      if (!next.empty()) q += "&next=" + httplib::detail::encode_query_param(next);
      if (int rc = call("GET", q, nullptr, page); rc != kOk) return rc;
      for (auto& i : page["items"]) items.push_back(std::move(i));
      next = page.value("next", "");
      if (next.empty()) break;
    }
    return kOk;
  }

 private:
  const FleetOptions& o_;
  std::string url_;
  std::string token_;
  std::unique_ptr<httplib::Client> client_;
};

std::string cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : ",") + cell(e);
    return s;
  }
  if (v.is_object()) {
    std::string s;
    for (auto it = v.begin(); it != v.end(); ++it) {
      s += (s.empty() ? "" : ",") + it.key() + "=" + cell(it.value());
    }
    return s;
  }
  return v.dump();
}

// A table: a header of column names, rows of the items' members, columns padded.
void print_table(const json& items, const std::vector<std::pair<std::string, std::string>>& cols) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> width;
  std::vector<std::string> head;
  for (const auto& [title, key] : cols) {
    head.push_back(title);
    width.push_back(title.size());
  }
  for (const auto& item : items) {
    std::vector<std::string> row;
    for (std::size_t c = 0; c < cols.size(); ++c) {
      row.push_back(item.is_object() ? cell(item.value(cols[c].second, json())) : cell(item));
      width[c] = std::max(width[c], row.back().size());
    }
    rows.push_back(std::move(row));
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (std::size_t c = 0; c < r.size(); ++c) {
      s += r[c];
      if (c + 1 < r.size()) s += std::string(width[c] - r[c].size() + 2, ' ');
    }
    std::printf("%s\n", s.c_str());
  };
  line(head);
  for (const auto& r : rows) line(r);
}

// One record as `key: value` lines.
void print_record(const json& j) {
  if (!j.is_object()) return;
  std::size_t w = 0;
  for (auto it = j.begin(); it != j.end(); ++it) w = std::max(w, it.key().size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string v = cell(it.value());
    if (v.find('\n') != std::string::npos) {
      std::printf("%s:\n%s%s", it.key().c_str(), v.c_str(), v.back() == '\n' ? "" : "\n");
    } else {
      std::printf("%-*s  %s\n", static_cast<int>(w + 1), (it.key() + ":").c_str(), v.c_str());
    }
  }
}

using Columns = std::vector<std::pair<std::string, std::string>>;
const Columns kThingCols{{"NAME", "thingName"}, {"TYPE", "thingTypeName"}, {"VERSION", "version"},
                         {"ATTRIBUTES", "attributes"}};
const Columns kCertCols{{"CERTIFICATE ID", "certificateId"}, {"STATUS", "status"},
                        {"CA", "caCertificateId"}, {"NOT AFTER", "notAfter"}};
const Columns kCaCols{{"CA CERTIFICATE ID", "caCertificateId"}, {"STATUS", "status"},
                      {"AUTO-REGISTRATION", "autoRegistration"},
                      {"TEMPLATE", "registrationTemplate"}};
const Columns kTemplateCols{{"NAME", "templateName"}, {"TYPE", "type"}, {"ENABLED", "enabled"},
                            {"VERSION", "version"}, {"DESCRIPTION", "description"}};
const Columns kPolicyCols{{"NAME", "policyName"}, {"VERSION", "version"}};
const Columns kShadowCols{{"NAME", "shadowName"}, {"VERSION", "version"},
                          {"LAST UPDATED", "lastUpdated"}};
const Columns kExecutionCols{{"THING", "thingName"},
                             {"STATUS", "status"},
                             {"EXECUTION", "executionNumber"},
                             {"VERSION", "versionNumber"},
                             {"UPDATED", "lastUpdatedAt"}};
const Columns kResultCols{{"THING", "thingName"},
                          {"TEMPLATE", "templateName"},
                          {"CERTIFICATE", "certificateId"},
                          {"CLIENT", "clientId"},
                          {"AT", "provisionedAt"}};

// Runs a list and prints it.
int run_list(const FleetOptions& o, const std::string& path, const Columns& cols) {
  Api api(o);
  if (!api.ready()) return kUsage;
  json items;
  if (int rc = api.list(path, items); rc != kOk) return rc;
  if (o.json) {
    std::printf("%s\n", json{{"items", items}}.dump(2).c_str());
  } else {
    print_table(items, cols);
  }
  return kOk;
}

// Runs one call and prints its answer (`done` when there is none).
int run_one(const FleetOptions& o, const std::string& method, const std::string& path,
            const json* body, const std::string& done = "") {
  Api api(o);
  if (!api.ready()) return kUsage;
  json out;
  if (int rc = api.call(method, path, body, out); rc != kOk) return rc;
  if (o.json) {
    std::printf("%s\n", out.is_null() ? "{}" : out.dump(2).c_str());
  } else if (out.is_null()) {
    std::printf("%s\n", done.c_str());
  } else {
    print_record(out);
  }
  return kOk;
}

// One call whose answer the caller prints itself: `out` holds it when kOk is returned.
int call_api(const FleetOptions& o, const std::string& method, const std::string& path,
             const json* body, json& out) {
  Api api(o);
  if (!api.ready()) return kUsage;
  return api.call(method, path, body, out);
}

// A file's text, or exit 2 with a message.
bool file_text(const std::string& path, std::string& out) {
  if (read_file(path, out)) return true;
  std::fprintf(stderr, "edgekit fleet: cannot read %s\n", path.c_str());
  return false;
}

// A JSON document from a file: inlined when it parses (the API takes both), else sent as text
// so that the API names what is wrong with it.
json document(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

// The members of a --config file (a JSON object) into `body`; true when there is none.
bool config_members(const std::string& path, json& body) {
  if (path.empty()) return true;
  std::string text;
  if (!file_text(path, text)) return false;
  body = json::parse(text, nullptr, false);
  if (body.is_object()) return true;
  std::fprintf(stderr, "edgekit: %s is not a JSON object\n", path.c_str());
  return false;
}

// Bytes as base64 (the admin API's form of images and signatures).
std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// The options every command over the admin API takes (`edgekit fleet`, `edgekit ota`).
void add_api_options(CLI::App* c, FleetOptions& o) {
  c->add_option("--url", o.url,
                std::string("admin API URL (default: EDGEKIT_FLEET_URL, else ") + kDefaultUrl + ")");
  c->add_option("--token-file", o.token_file,
                "file holding the admin token (default: EDGEKIT_FLEET_TOKEN, then "
                "EDGEKIT_FLEET_TOKEN_FILE)");
  c->add_option("--cacert", o.ca_file, "CA certificate to verify an https URL with");
  c->add_flag("--json", o.json, "print the API's JSON instead of a table");
}

}  // namespace
}  // namespace cmd_fleet

void add_fleet_command(CLI::App& app, int& exit_code) {
  using namespace cmd_fleet;
  auto o = std::make_shared<FleetOptions>();
  CLI::App* fleet = app.add_subcommand(
      "fleet", "manage fleetd's registry over its admin API (things, certificates, CAs, "
               "fleetd's own CA, provisioning templates, claim credentials, policies, "
               "shadows, jobs)");
  fleet->require_subcommand(1);
  fleet->fallthrough();
  add_api_options(fleet, *o);

  auto set = [&exit_code](CLI::App* c, std::function<int()> f) {
    c->callback([&exit_code, f] { exit_code = f(); });
  };
  auto group = [fleet](const char* name, const char* what) {
    CLI::App* g = fleet->add_subcommand(name, what);
    g->require_subcommand(1);
    g->fallthrough();
    return g;
  };

  // things
  CLI::App* things = group("things", "things: list, describe, create, delete, attach a certificate");
  set(things->add_subcommand("list", "list things"),
      [o] { return run_list(*o, "/things", kThingCols); });
  auto* td = things->add_subcommand("describe", "a thing with its certificates and groups");
  td->add_option("name", o->name, "thing name")->required();
  set(td, [o] { return run_one(*o, "GET", "/things/" + o->name, nullptr); });
  auto* tc = things->add_subcommand("create", "create a thing");
  tc->add_option("name", o->name, "thing name")->required();
  tc->add_option("--type", o->type, "thing type name");
  tc->add_option("--attr", o->attributes, "attribute name=value (repeatable)");
  set(tc, [o] {
    json body{{"thingName", o->name}};
    if (!o->type.empty()) body["thingTypeName"] = o->type;
    json attrs = json::object();
    for (const auto& a : o->attributes) {
      const auto eq = a.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::fprintf(stderr, "edgekit fleet: --attr takes name=value, not '%s'\n", a.c_str());
        return static_cast<int>(kUsage);
      }
      attrs[a.substr(0, eq)] = a.substr(eq + 1);
    }
    if (!attrs.empty()) body["attributes"] = attrs;
    return run_one(*o, "POST", "/things", &body);
  });
  auto* tdel = things->add_subcommand("delete", "delete a thing");
  tdel->add_option("name", o->name, "thing name")->required();
  set(tdel, [o] { return run_one(*o, "DELETE", "/things/" + o->name, nullptr, "deleted"); });
  auto* ta = things->add_subcommand("attach", "attach a certificate to a thing");
  ta->add_option("name", o->name, "thing name")->required();
  ta->add_option("certificate-id", o->id, "certificate id")->required();
  set(ta, [o] {
    return run_one(*o, "PUT", "/things/" + o->name + "/certificates/" + o->id, nullptr, "attached");
  });

  // certificates
  CLI::App* certs = group("certificates",
                          "certificates: list, describe, register, create-from-csr, activate, "
                          "deactivate, revoke");
  set(certs->add_subcommand("list", "list certificates"),
      [o] { return run_list(*o, "/certificates", kCertCols); });
  auto* cd = certs->add_subcommand("describe", "a certificate with its PEM, things and policies");
  cd->add_option("certificate-id", o->id, "certificate id")->required();
  set(cd, [o] { return run_one(*o, "GET", "/certificates/" + o->id, nullptr); });
  for (const char* action : {"activate", "deactivate", "revoke"}) {
    auto* c = certs->add_subcommand(
        action, std::string(action) + " a certificate" +
                    (std::string(action) == "activate" ? ""
                                                       : " (its live connections are dropped)"));
    c->add_option("certificate-id", o->id, "certificate id")->required();
    const std::string a = action;
    set(c, [o, a] { return run_one(*o, "POST", "/certificates/" + o->id + "/" + a, nullptr); });
  }
  auto* cr = certs->add_subcommand("register", "register an existing certificate (PEM file)");
  cr->add_option("--pem", o->file, "the certificate, PEM")->required();
  cr->add_option("--status", o->status, "ACTIVE, INACTIVE (default) or PENDING_ACTIVATION");
  cr->add_option("--ca", o->ca_id, "id of the registered CA that issued it (default: found)");
  set(cr, [o] {
    std::string pem;
    if (!file_text(o->file, pem)) return static_cast<int>(kUsage);
    json body{{"certificatePem", pem}};
    if (!o->status.empty()) body["status"] = o->status;
    if (!o->ca_id.empty()) body["caCertificateId"] = o->ca_id;
    return run_one(*o, "POST", "/certificates", &body);
  });

  auto* cfc = certs->add_subcommand(
      "create-from-csr", "issue a certificate from a PKCS#10 request with fleetd's own CA");
  cfc->add_option("--csr", o->file, "the request, PEM (e.g. from edgekit token csr)")->required();
  cfc->add_flag("--active", o->active, "make it ACTIVE (default INACTIVE, as AWS)");
  cfc->add_option("--thing", o->name, "attach it to this existing thing");
  cfc->add_option("--days", o->days, "validity in days (1-3650; default 365)");
  cfc->add_option("--out", o->out, "write the certificate PEM to this file");
  set(cfc, [o] {
    std::string csr;
    if (!file_text(o->file, csr)) return static_cast<int>(kUsage);
    json body{{"certificateSigningRequest", csr}, {"setAsActive", o->active}};
    if (!o->name.empty()) body["thingName"] = o->name;
    if (o->days != 0) body["validityDays"] = o->days;
    json out;
    if (int rc = call_api(*o, "POST", "/certificates/from-csr", &body, out); rc != kOk) return rc;
    if (!o->out.empty()) {
      std::ofstream f(o->out, std::ios::binary | std::ios::trunc);
      f << out.value("certificatePem", "");
      f.close();
      if (!f) {
        // Issued and registered, but the caller has no copy: say so, with where to get it.
        std::fprintf(stderr,
                     "edgekit fleet: cannot write %s; the certificate %s is issued and "
                     "registered (edgekit fleet certificates describe shows its PEM)\n",
                     o->out.c_str(), out.value("certificateId", "").c_str());
        return static_cast<int>(kUsage);
      }
      if (!o->json) out.erase("certificatePem");
    }
    if (o->json) {
      std::printf("%s\n", out.dump(2).c_str());
    } else {
      print_record(out);
    }
    return static_cast<int>(kOk);
  });

  // fleetd's own CA
  CLI::App* own = group("ca", "fleetd's own CA: its certificates, its CRL");
  set(own->add_subcommand("show", "print the issuing and root CA certificates (PEM, usable as a "
                                  "cafile); --json: the API's answer"),
      [o] {
        json out;
        if (int rc = call_api(*o, "GET", "/ca", nullptr, out); rc != kOk) return rc;
        if (o->json) {
          std::printf("%s\n", out.dump(2).c_str());
        } else {
          // Text outside the PEM blocks is a comment to OpenSSL: the output is a cafile as is.
          std::printf("# fleetd issuing CA %s\n%s# fleetd root CA %s\n%s",
                      out.value("issuingCertificateId", "").c_str(),
                      out.value("issuingCertificatePem", "").c_str(),
                      out.value("rootCertificateId", "").c_str(),
                      out.value("rootCertificatePem", "").c_str());
        }
        return static_cast<int>(kOk);
      });
  set(own->add_subcommand("crl", "print the current CRL (PEM, usable as a crlfile); --json: the "
                                 "API's answer with its serials"),
      [o] {
        json out;
        if (int rc = call_api(*o, "GET", "/ca/crl", nullptr, out); rc != kOk) return rc;
        std::printf("%s", o->json ? (out.dump(2) + "\n").c_str()
                                  : out.value("crlPem", "").c_str());
        return static_cast<int>(kOk);
      });

  add_fleet_external_ca_command(*fleet, exit_code);
  // shadows: the documents are AWS's JSON, printed as such (a table would hide their nesting)
  CLI::App* shadow = group("shadow", "Device Shadows: get, update (desired or reported), delete, "
                                     "list a thing's named shadows");
  auto shadow_path = [o] {
    return "/things/" + o->name + "/shadow" + (o->id.empty() ? "" : "?name=" + o->id);
  };
  auto print_document = [o](const std::string& method, const std::string& path, const json* body) {
    json out;
    if (int rc = call_api(*o, method, path, body, out); rc != kOk) return rc;
    std::printf("%s\n", out.dump(2).c_str());
    return static_cast<int>(kOk);
  };
  for (const char* op : {"get", "delete"}) {
    auto* c = shadow->add_subcommand(op, std::string(op) + " a thing's classic shadow, or a "
                                                            "named one with --name");
    c->add_option("thing", o->name, "thing name")->required();
    c->add_option("--name", o->id, "a named shadow (default: the classic shadow)");
    const std::string method = std::string(op) == "get" ? "GET" : "DELETE";
    set(c, [method, shadow_path, print_document] {
      return print_document(method, shadow_path(), nullptr);
    });
  }
  auto* su = shadow->add_subcommand(
      "update", "update a shadow as a device would: devices subscribed to it get the accepted, "
                "documents and delta messages");
  su->add_option("thing", o->name, "thing name")->required();
  su->add_option("--name", o->id, "a named shadow (default: the classic shadow)");
  su->add_option("--desired", o->desired, "state.desired: a JSON object (null deletes a key) or null");
  su->add_option("--reported", o->reported, "state.reported: likewise");
  su->add_option("--file", o->file, "the whole update document (JSON), instead of the above");
  su->add_option("--version", o->version, "apply only if the shadow is at this version (else 409)");
  set(su, [o, shadow_path, print_document] {
    json body;
    if (!o->file.empty()) {
      std::string text;
      if (!file_text(o->file, text)) return static_cast<int>(kUsage);
      body = document(text);
    } else {
      if (o->desired.empty() && o->reported.empty()) {
        std::fprintf(stderr, "edgekit fleet shadow update: give --desired, --reported or --file\n");
        return static_cast<int>(kUsage);
      }
      body = json{{"state", json::object()}};
      for (const auto& [key, text] : {std::pair{"desired", o->desired},
                                      std::pair{"reported", o->reported}}) {
        if (text.empty()) continue;
        json v = json::parse(text, nullptr, false);
        if (v.is_discarded()) {
          std::fprintf(stderr, "edgekit fleet shadow update: --%s is not JSON\n", key);
          return static_cast<int>(kUsage);
        }
        body["state"][key] = v;
      }
    }
    if (o->version >= 0) body["version"] = o->version;
    return print_document("POST", shadow_path(), &body);
  });
  auto* sl = shadow->add_subcommand("list", "list a thing's named shadows");
  sl->add_option("thing", o->name, "thing name")->required();
  set(sl, [o] { return run_list(*o, "/things/" + o->name + "/shadows", kShadowCols); });


  // cas
  CLI::App* cas = group("cas", "CA certificates: register, list");
  set(cas->add_subcommand("list", "list CA certificates"),
      [o] { return run_list(*o, "/cas", kCaCols); });
  auto* car = cas->add_subcommand("register", "register a CA certificate (PEM file)");
  car->add_option("--pem", o->file, "the CA certificate, PEM")->required();
  car->add_flag("--active", o->active, "register it ACTIVE (default INACTIVE, as AWS)");
  car->add_flag("--auto-registration", o->auto_registration,
                "register device certificates it issued at their first connect (JITP)");
  car->add_option("--template", o->name, "provisioning template for its devices");
  set(car, [o] {
    std::string pem;
    if (!file_text(o->file, pem)) return static_cast<int>(kUsage);
    json body{{"caCertificatePem", pem},
              {"status", o->active ? "ACTIVE" : "INACTIVE"},
              {"autoRegistration", o->auto_registration}};
    if (!o->name.empty()) body["registrationTemplate"] = o->name;
    return run_one(*o, "POST", "/cas", &body);
  });

  // templates
  CLI::App* templates = group("templates", "provisioning templates: create, validate, list");
  set(templates->add_subcommand("list", "list provisioning templates"),
      [o] { return run_list(*o, "/provisioning-templates", kTemplateCols); });
  auto* tpc = templates->add_subcommand("create", "create a provisioning template");
  tpc->add_option("name", o->name, "template name")->required();
  tpc->add_option("--body", o->file, "the template body, a JSON file")->required();
  tpc->add_option("--type", o->type, "FLEET_PROVISIONING (default) or JITP");
  tpc->add_option("--description", o->description, "description");
  tpc->add_flag("--enabled", o->enabled, "enable it");
  set(tpc, [o] {
    std::string text;
    if (!file_text(o->file, text)) return static_cast<int>(kUsage);
    json body{{"templateName", o->name}, {"templateBody", document(text)}, {"enabled", o->enabled}};
    if (!o->type.empty()) body["type"] = o->type;
    if (!o->description.empty()) body["description"] = o->description;
    return run_one(*o, "POST", "/provisioning-templates", &body);
  });
  auto* tpv = templates->add_subcommand("validate", "validate a template body; stores nothing");
  tpv->add_option("--body", o->file, "the template body, a JSON file")->required();
  tpv->add_option("--type", o->type, "FLEET_PROVISIONING (default) or JITP");
  set(tpv, [o] {
    std::string text;
    if (!file_text(o->file, text)) return static_cast<int>(kUsage);
    json body{{"templateBody", document(text)}};
    if (!o->type.empty()) body["type"] = o->type;
    Api api(*o);
    if (!api.ready()) return static_cast<int>(kUsage);
    json out;
    int rc = api.call("POST", "/provisioning-templates/validate", &body, out);
    if (rc == kOk) std::printf("%s\n", o->json ? out.dump(2).c_str() : "valid");
    return rc;
  });

  auto* tph = templates->add_subcommand(
      "hook", "set (--target) or remove (--remove) a fleet template's pre-provisioning hook");
  tph->add_option("name", o->name, "template name")->required();
  tph->add_option("--target", o->file,
                  "an http(s):// URL, or the absolute path of an executable (input JSON on "
                  "stdin, answer on stdout); 5 s limit, a failure denies");
  tph->add_flag("--remove", o->enabled, "remove the hook");
  set(tph, [o] {
    const std::string path = "/provisioning-templates/" + o->name + "/pre-provisioning-hook";
    if (o->enabled) return run_one(*o, "DELETE", path, nullptr, "removed");
    if (o->file.empty()) {
      std::fprintf(stderr, "edgekit fleet: give --target or --remove\n");
      return static_cast<int>(kUsage);
    }
    json body{{"targetArn", o->file}, {"payloadVersion", "2020-04-01"}};
    return run_one(*o, "PUT", path, &body);
  });

  // fleet provisioning by claim
  CLI::App* claims =
      group("claims", "fleet provisioning by claim: claim credentials, provisioning results");
  auto* cc = claims->add_subcommand(
      "create", "a claim credential for a template: a key and a certificate from fleetd's CA "
                "whose policy allows only the create calls and that template's provision topics");
  cc->add_option("template", o->name, "the fleet provisioning template")->required();
  cc->add_option("--out-dir", o->out, "write claim.crt (and claim.key, mode 0600) here")->required();
  cc->add_option("--csr", o->file,
                 "certify this request (its key stays where it was made, e.g. in a token) "
                 "instead of generating a key here");
  cc->add_option("--days", o->days, "validity in days (1-3650; default 365)");
  set(cc, [o] {
    std::string csr, key_pem;
    if (!o->file.empty()) {
      if (!file_text(o->file, csr)) return static_cast<int>(kUsage);
    } else {
      // EC P-256: what AWS's embedded demos (mbedTLS) can use, like fleetd's own CA.
      auto key = pki::SoftwareSigner::generate(pki::KeyAlgorithm::EcP256);
      auto subject = pki::Name::parse("/CN=claim-" + o->name);
      if (!key || !subject) {
        std::fprintf(stderr, "edgekit fleet: cannot make a key\n");
        return static_cast<int>(kUsage);
      }
      auto made = pki::make_csr(key.value(), subject.value());
      if (!made) {
        std::fprintf(stderr, "edgekit fleet: %s\n", made.error().message.c_str());
        return static_cast<int>(kUsage);
      }
      csr = made.value();
      key_pem = key.value().private_key_pem();
    }
    json body{{"certificateSigningRequest", csr}};
    if (o->days != 0) body["validityDays"] = o->days;
    json out;
    const std::string path = "/provisioning-templates/" + o->name + "/claim-certificates";
    if (int rc = call_api(*o, "POST", path, &body, out); rc != kOk) return rc;
    const std::filesystem::path dir(o->out);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    bool written = !ec;
    if (written && !key_pem.empty()) {
      const mode_t old = ::umask(077);  // the key is never readable by others, not even briefly
      std::ofstream k(dir / "claim.key", std::ios::binary | std::ios::trunc);
      k << key_pem;
      k.close();
      ::umask(old);
      written = static_cast<bool>(k);
    }
    OPENSSL_cleanse(key_pem.data(), key_pem.size());
    std::ofstream c(dir / "claim.crt", std::ios::binary | std::ios::trunc);
    c << out.value("certificatePem", "");
    c.close();
    if (!written || !c) {
      std::fprintf(stderr,
                   "edgekit fleet: cannot write to %s; the claim certificate %s is issued and "
                   "ACTIVE (revoke it with edgekit fleet certificates revoke)\n",
                   o->out.c_str(), out.value("certificateId", "").c_str());
      return static_cast<int>(kUsage);
    }
    if (o->json) {
      std::printf("%s\n", out.dump(2).c_str());
    } else {
      out.erase("certificatePem");
      print_record(out);
    }
    return static_cast<int>(kOk);
  });
  set(claims->add_subcommand("results", "list the things provisioned by RegisterThing"),
      [o] { return run_list(*o, "/provisioning-results", kResultCols); });

  // jobs
  CLI::App* jobs = group("jobs", "jobs: create, describe, list-executions, cancel, pause, resume");
  auto* jc = jobs->add_subcommand("create", "create a job for things and thing groups");
  jc->add_option("id", o->id, "job id")->required();
  jc->add_option("--document", o->file, "the job document, a JSON file")->required();
  jc->add_option("--thing", o->things, "a target thing (repeatable)");
  jc->add_option("--group", o->groups, "a target thing group (repeatable)");
  jc->add_flag("--continuous", o->continuous,
               "targetSelection CONTINUOUS: things that join a target group later get it too");
  jc->add_option("--timeout-minutes", o->timeout_minutes, "in-progress timeout (1-10080)");
  jc->add_option("--config", o->out,
                 "a JSON file with more of CreateJob's members (jobExecutionsRetryConfig, "
                 "abortConfig, jobExecutionsRolloutConfig, rolloutGroups)");
  set(jc, [o] {
    std::string text;
    if (!file_text(o->file, text)) return static_cast<int>(kUsage);
    json body = json::object();
    if (!config_members(o->out, body)) return static_cast<int>(kUsage);
    body["jobId"] = o->id;
    body["document"] = document(text);
    body["targets"] = {{"things", o->things}, {"thingGroups", o->groups}};
    body["targetSelection"] = o->continuous ? "CONTINUOUS" : "SNAPSHOT";
    if (o->timeout_minutes > 0) {
      body["timeoutConfig"] = {{"inProgressTimeoutInMinutes", o->timeout_minutes}};
    }
    return run_one(*o, "POST", "/jobs", &body);
  });
  auto* jd = jobs->add_subcommand("describe", "a job with its execution counts by status");
  jd->add_option("id", o->id, "job id")->required();
  set(jd, [o] { return run_one(*o, "GET", "/jobs/" + o->id, nullptr); });
  auto* jl = jobs->add_subcommand("list-executions", "the job's execution on each thing");
  jl->add_option("id", o->id, "job id")->required();
  jl->add_option("--status", o->status, "only executions with this status (QUEUED, ...)");
  set(jl, [o] {
    const std::string q = o->status.empty() ? "" : "?status=" + o->status;
    return run_list(*o, "/jobs/" + o->id + "/executions" + q, kExecutionCols);
  });
  auto* jx = jobs->add_subcommand("cancel", "cancel a job (queued executions; running ones with --force)");
  jx->add_option("id", o->id, "job id")->required();
  jx->add_flag("--force", o->force, "also cancel executions that are IN_PROGRESS");
  jx->add_option("--reason", o->description, "a reason code to record");
  set(jx, [o] {
    json body{{"force", o->force}};
    if (!o->description.empty()) body["reasonCode"] = o->description;
    return run_one(*o, "POST", "/jobs/" + o->id + "/cancel", &body);
  });

  for (const char* verb : {"pause", "resume"}) {
    auto* jp = jobs->add_subcommand(verb, std::string(verb) + " a job's rollout");
    jp->add_option("id", o->id, "job id")->required();
    set(jp, [o, verb] { return run_one(*o, "POST", "/jobs/" + o->id + "/" + verb, nullptr); });
  }

  // policies
  CLI::App* policies = group("policies", "policies: create, attach, list");
  set(policies->add_subcommand("list", "list policies"),
      [o] { return run_list(*o, "/policies", kPolicyCols); });
  auto* pc = policies->add_subcommand("create", "create a policy (validated)");
  pc->add_option("name", o->name, "policy name")->required();
  pc->add_option("--document", o->file, "the policy document, a JSON file")->required();
  set(pc, [o] {
    std::string text;
    if (!file_text(o->file, text)) return static_cast<int>(kUsage);
    json body{{"policyName", o->name}, {"policyDocument", text}};
    return run_one(*o, "POST", "/policies", &body);
  });
  auto* pa = policies->add_subcommand("attach", "attach a policy to a certificate");
  pa->add_option("name", o->name, "policy name")->required();
  pa->add_option("certificate-id", o->id, "certificate id")->required();
  set(pa, [o] {
    return run_one(*o, "PUT", "/policies/" + o->name + "/certificates/" + o->id, nullptr,
                   "attached");
  });

  // --url, --json, ... may follow the subcommands too (`edgekit fleet things list --json`).
  for (CLI::App* g : fleet->get_subcommands({})) {
    for (CLI::App* leaf : g->get_subcommands({})) leaf->fallthrough();
  }
}

void add_ota_command(CLI::App& app, int& exit_code) {
  using namespace cmd_fleet;
  auto o = std::make_shared<FleetOptions>();
  CLI::App* ota = app.add_subcommand(
      "ota", "OTA updates over fleetd's admin API: upload and sign images, roll an image out as "
             "an AFR_OTA job, follow its status");
  ota->require_subcommand(1);
  ota->fallthrough();
  add_api_options(ota, *o);
  auto set = [&exit_code](CLI::App* c, std::function<int()> f) {
    c->callback([&exit_code, f] { exit_code = f(); });
    c->fallthrough();
  };

  auto* up = ota->add_subcommand("upload", "upload an image (pre-signed with --signature and "
                                           "--certificate, else sign it with `edgekit ota sign`)");
  up->add_option("name", o->name, "image name")->required();
  up->add_option("version", o->image_version, "image version, e.g. 2.0.0")->required();
  up->add_option("--file", o->file, "the image file")->required();
  up->add_option("--device-type", o->type, "the device type it is for");
  up->add_option("--signature", o->signature,
                 "pre-signed: the DER ECDSA P-256/SHA-256 signature of the file");
  up->add_option("--certificate", o->certificate,
                 "pre-signed: the signer's certificate (codeSigning), then intermediates, PEM");
  set(up, [o] {
    std::string bytes;
    if (!file_text(o->file, bytes)) return static_cast<int>(kUsage);
    json body{{"name", o->name}, {"version", o->image_version}, {"image", base64(bytes)}};
    if (!o->type.empty()) body["deviceType"] = o->type;
    if (o->signature.empty() != o->certificate.empty()) {
      std::fprintf(stderr, "edgekit ota: --signature and --certificate go together\n");
      return static_cast<int>(kUsage);
    }
    if (!o->signature.empty()) {
      std::string sig, pem;
      if (!file_text(o->signature, sig) || !file_text(o->certificate, pem)) {
        return static_cast<int>(kUsage);
      }
      body["signature"] = base64(sig);
      body["certificate"] = pem;
    }
    return run_one(*o, "POST", "/ota/images", &body);
  });

  auto* sg = ota->add_subcommand("sign", "sign an image with fleetd's code-signing key (in its "
                                         "CA's token)");
  sg->add_option("name", o->name, "image name")->required();
  sg->add_option("version", o->image_version, "image version")->required();
  set(sg, [o] {
    return run_one(*o, "POST", "/ota/images/" + o->name + "/" + o->image_version + "/sign", nullptr);
  });

  auto* cu = ota->add_subcommand("create-update", "roll a signed image out: the job "
                                                  "AFR_OTA-<id> with AWS's afr_ota document");
  cu->add_option("id", o->id, "OTA update id")->required();
  cu->add_option("--image", o->name, "image name")->required();
  cu->add_option("--version", o->image_version, "image version")->required();
  cu->add_option("--protocol", o->protocols, "MQTT (default) and/or HTTP (repeatable)");
  cu->add_option("--thing", o->things, "a target thing (repeatable)");
  cu->add_option("--group", o->groups, "a target thing group (repeatable)");
  cu->add_option("--block-size", o->block_size, "block size of the update's stream (256-131072)");
  cu->add_option("--stream", o->stream, "an existing stream holding the image as file 0");
  cu->add_option("--file-path", o->description, "where the device stores it (filepath)");
  cu->add_option("--config", o->out,
                 "a JSON file with more members of the update (rolloutGroups, abortConfig, "
                 "jobExecutionsRolloutConfig, targetSelection, urlExpiresInSeconds, ...)");
  set(cu, [o] {
    json body = json::object();
    if (!config_members(o->out, body)) return static_cast<int>(kUsage);
    body["otaUpdateId"] = o->id;
    body["imageName"] = o->name;
    body["imageVersion"] = o->image_version;
    body["targets"] = {{"things", o->things}, {"thingGroups", o->groups}};
    if (!o->protocols.empty()) body["protocols"] = o->protocols;
    if (o->block_size > 0) body["blockSize"] = o->block_size;
    if (!o->stream.empty()) body["streamId"] = o->stream;
    if (!o->description.empty()) body["filePath"] = o->description;
    return run_one(*o, "POST", "/ota/updates", &body);
  });

  auto* st = ota->add_subcommand("status", "an update's job and each device's execution (status, "
                                           "progress)");
  st->add_option("id", o->id, "OTA update id")->required();
  set(st, [o] {
    json out;
    if (int rc = call_api(*o, "GET", "/ota/updates/" + o->id, nullptr, out); rc != kOk) return rc;
    if (o->json) {
      std::printf("%s\n", out.dump(2).c_str());
      return static_cast<int>(kOk);
    }
    const json& job = out["job"];
    std::printf("update %s: job %s %s", o->id.c_str(), job.value("jobId", "").c_str(),
                job.value("status", "").c_str());
    for (auto it = job["jobProcessDetails"].begin(); it != job["jobProcessDetails"].end(); ++it) {
      if (it.value() != 0) std::printf(", %s %s", it.key().c_str(), cell(it.value()).c_str());
    }
    std::printf("\n");
    print_table(out["executions"], {{"THING", "thingName"},
                                    {"STATUS", "status"},
                                    {"DETAILS", "statusDetails"},
                                    {"UPDATED", "lastUpdatedAt"}});
    return static_cast<int>(kOk);
  });

  add_ota_run_command(*ota, exit_code);  // the device side (ota_run.cpp)
}

}  // namespace edgekit::tools
