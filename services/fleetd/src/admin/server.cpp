#include "admin/server.hpp"

#include <asio/post.hpp>
#include <httplib.h>

#include <charconv>
#include <chrono>

#include "admin/pem.hpp"
#include "admin/templates.hpp"
#include "admin/wire.hpp"
#include "ca/authority.hpp"
#include "http/common.hpp"
#include "http/json_body.hpp"
#include "provisioning/claim_wire.hpp"
#include "store/claims.hpp"

namespace edgekit::fleetd {
namespace {

using nlohmann::json;
using Req = httplib::Request;
using Resp = httplib::Response;

constexpr std::chrono::milliseconds kStoreTimeout{5000};

struct Status {
  int http;
  const char* code;
};

Status status_of(Errc e) {
  switch (e) {
    case Errc::NotFound: return {404, "not_found"};
    case Errc::AlreadyExists: return {409, "already_exists"};
    case Errc::Conflict: return {409, "conflict"};
    case Errc::InvalidArgument: return {400, "invalid_argument"};
    case Errc::Busy:
    case Errc::Unavailable:
    case Errc::StoreLocked: return {503, "unavailable"};
    default: return {500, "internal"};
  }
}

Status status_for_http(int status) {
  switch (status) {
    case 400: return {400, "bad_request"};
    case 401: return {401, "unauthorized"};
    case 404: return {404, "not_found"};
    case 405: return {405, "method_not_allowed"};
    case 413: return {413, "payload_too_large"};
    case 414: return {414, "uri_too_long"};
    case 503: return {503, "unavailable"};
    default: return {status, status >= 500 ? "internal" : "bad_request"};
  }
}

// The i-th path parameter of the route's pattern.
std::string param(const Req& req, std::size_t i) {
  return i < req.matches.size() ? req.matches[i].str() : std::string();
}

// An OpenAPI path (/things/{thingName}) as the pattern httplib matches (/things/([^/]+)).
std::string pattern_of(std::string_view path) {
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '{') {
      out += "([^/]+)";
      i = path.find('}', i);
    } else {
      out += path[i];
    }
  }
  return out;
}

// The request's Content-Length (0 when absent or unreadable: httplib then reads no body).
std::uint64_t content_length(const Req& req) {
  const std::string v = req.get_header_value("Content-Length");
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return ec == std::errc() && end == v.data() + v.size() ? n : 0;
}

}  // namespace

AdminServer::AdminServer(asio::io_context& io, Store& store, Logger& log, Kick kick)
    : io_(io), store_(store), log_(log), kick_(std::move(kick)) {}

AdminServer::~AdminServer() { stop(); }

const std::vector<AdminServer::Route>& AdminServer::table() {
  static const std::vector<Route> routes{
      {"post", "/admin/v1/things", &AdminServer::create_thing},
      {"get", "/admin/v1/things", &AdminServer::list_things},
      {"get", "/admin/v1/things/{thingName}", &AdminServer::describe_thing},
      {"patch", "/admin/v1/things/{thingName}", &AdminServer::update_thing},
      {"delete", "/admin/v1/things/{thingName}", &AdminServer::delete_thing},
      {"put", "/admin/v1/things/{thingName}/certificates/{certificateId}",
       &AdminServer::attach_certificate},
      {"delete", "/admin/v1/things/{thingName}/certificates/{certificateId}",
       &AdminServer::detach_certificate},
      {"post", "/admin/v1/thing-groups", &AdminServer::create_group},
      {"get", "/admin/v1/thing-groups", &AdminServer::list_groups},
      {"get", "/admin/v1/thing-groups/{groupName}", &AdminServer::describe_group},
      {"get", "/admin/v1/thing-groups/{groupName}/things", &AdminServer::list_group_things},
      {"put", "/admin/v1/thing-groups/{groupName}/things/{thingName}", &AdminServer::add_to_group},
      {"delete", "/admin/v1/thing-groups/{groupName}/things/{thingName}",
       &AdminServer::remove_from_group},
      {"post", "/admin/v1/certificates", &AdminServer::register_certificate},
      {"get", "/admin/v1/certificates", &AdminServer::list_certificates},
      {"get", "/admin/v1/certificates/{certificateId}", &AdminServer::describe_certificate},
      {"delete", "/admin/v1/certificates/{certificateId}", &AdminServer::delete_certificate},
      {"post", "/admin/v1/certificates/{certificateId}/activate",
       &AdminServer::activate_certificate},
      {"post", "/admin/v1/certificates/{certificateId}/deactivate",
       &AdminServer::deactivate_certificate},
      {"post", "/admin/v1/certificates/{certificateId}/revoke", &AdminServer::revoke_certificate},
      {"post", "/admin/v1/certificates/from-csr", &AdminServer::create_certificate_from_csr},
      {"get", "/admin/v1/ca", &AdminServer::describe_own_ca},
      {"get", "/admin/v1/ca/crl", &AdminServer::get_crl},
      {"post", "/admin/v1/policies", &AdminServer::create_policy},
      {"get", "/admin/v1/policies", &AdminServer::list_policies},
      {"get", "/admin/v1/policies/{policyName}", &AdminServer::get_policy},
      {"delete", "/admin/v1/policies/{policyName}", &AdminServer::delete_policy},
      {"put", "/admin/v1/policies/{policyName}/certificates/{certificateId}",
       &AdminServer::attach_policy},
      {"delete", "/admin/v1/policies/{policyName}/certificates/{certificateId}",
       &AdminServer::detach_policy},
      {"post", "/admin/v1/cas", &AdminServer::register_ca},
      {"get", "/admin/v1/cas", &AdminServer::list_cas},
      {"get", "/admin/v1/cas/{caCertificateId}", &AdminServer::describe_ca},
      {"patch", "/admin/v1/cas/{caCertificateId}", &AdminServer::update_ca},
      {"post", "/admin/v1/cas/{caCertificateId}/activate", &AdminServer::activate_ca},
      {"post", "/admin/v1/cas/{caCertificateId}/deactivate", &AdminServer::deactivate_ca},
      {"post", "/admin/v1/provisioning-templates", &AdminServer::create_template},
      {"post", "/admin/v1/provisioning-templates/validate", &AdminServer::validate_template},
      {"get", "/admin/v1/provisioning-templates", &AdminServer::list_templates},
      {"get", "/admin/v1/provisioning-templates/{templateName}", &AdminServer::describe_template},
      {"patch", "/admin/v1/provisioning-templates/{templateName}", &AdminServer::update_template},
      {"delete", "/admin/v1/provisioning-templates/{templateName}",
       &AdminServer::delete_template},
      {"get", "/admin/v1/provisioning-templates/{templateName}/pre-provisioning-hook",
       &AdminServer::get_template_hook},
      {"put", "/admin/v1/provisioning-templates/{templateName}/pre-provisioning-hook",
       &AdminServer::set_template_hook},
      {"delete", "/admin/v1/provisioning-templates/{templateName}/pre-provisioning-hook",
       &AdminServer::delete_template_hook},
      {"post", "/admin/v1/provisioning-templates/{templateName}/claim-certificates",
       &AdminServer::create_claim_certificate},
      {"get", "/admin/v1/provisioning-results", &AdminServer::list_provisioning_results},
      {"get", "/admin/v1/things/{thingName}/shadows", &AdminServer::list_shadows},
      {"get", "/admin/v1/things/{thingName}/shadow", &AdminServer::get_shadow},
      {"post", "/admin/v1/things/{thingName}/shadow", &AdminServer::update_shadow},
      {"delete", "/admin/v1/things/{thingName}/shadow", &AdminServer::delete_shadow},
      {"post", "/admin/v1/jobs", &AdminServer::create_job},
      {"get", "/admin/v1/jobs", &AdminServer::list_jobs},
      {"get", "/admin/v1/jobs/{jobId}", &AdminServer::describe_job},
      {"get", "/admin/v1/jobs/{jobId}/executions", &AdminServer::list_job_executions},
      {"post", "/admin/v1/jobs/{jobId}/cancel", &AdminServer::cancel_job},
      {"post", "/admin/v1/jobs/{jobId}/pause", &AdminServer::pause_job},
      {"post", "/admin/v1/jobs/{jobId}/resume", &AdminServer::resume_job},
      {"post", "/admin/v1/ota/images", &AdminServer::upload_image},
      {"get", "/admin/v1/ota/images", &AdminServer::list_images},
      {"get", "/admin/v1/ota/images/{imageName}/{imageVersion}", &AdminServer::describe_image},
      {"post", "/admin/v1/ota/images/{imageName}/{imageVersion}/sign", &AdminServer::sign_image},
      {"post", "/admin/v1/ota/streams", &AdminServer::create_stream},
      {"get", "/admin/v1/ota/streams", &AdminServer::list_streams},
      {"get", "/admin/v1/ota/streams/{streamId}", &AdminServer::describe_stream},
      {"post", "/admin/v1/ota/updates", &AdminServer::create_update},
      {"get", "/admin/v1/ota/updates/{otaUpdateId}", &AdminServer::describe_update},
  };
  return routes;
}

std::vector<AdminServer::RouteInfo> AdminServer::routes() {
  std::vector<RouteInfo> out;
  for (const auto& r : table()) out.push_back({r.method, r.path});
  return out;
}

Res<std::uint16_t> AdminServer::start(const AdminOptions& o) {
  if (o.token.empty()) return fail(Errc::InvalidArgument, "the admin token is empty");
  token_ = o.token;
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return fail(Errc::InvalidArgument, "admin TLS needs both a certificate and a key");
  }
  if (!o.tls_cert.empty()) {
    auto tls = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
    if (!tls->is_valid()) {
      return fail(Errc::InvalidArgument, "cannot load the admin TLS certificate " + o.tls_cert +
                                             " or its key " + o.tls_key);
    }
    server_ = std::move(tls);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  // Image uploads may be large; every other route keeps to kMaxBody (checked before routing).
  server_->set_payload_max_length(admin::kMaxUploadBody);
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_keep_alive_timeout(1);
  // No handler lets an exception escape to httplib; this is the backstop if one ever does.
  server_->set_exception_handler([this](const Req& req, Resp& res, std::exception_ptr) {
    log_.error("admin.internal_error", {{"method", req.method}, {"path", req.path}});
    http::reply_error(res, 500, "internal", "internal error; see fleetd's log");
  });
  // Answers httplib produces itself (404 no route, 413 oversized, 400 unreadable) get the same
  // JSON error shape as ours.
  server_->set_error_handler(httplib::Server::HandlerWithResponse([](const Req&, Resp& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const Status s = status_for_http(res.status);
    const char* message = res.status == 413   ? "request body larger than 64 KB"
                          : res.status == 404 ? "no such route"
                                              : "request refused";
    http::reply_error(res, s.http, s.code, message);
    return httplib::Server::HandlerResponse::Handled;
  }));
  // The token is checked before routing: without it nothing, not even which routes exist, is
  // revealed.
  server_->set_pre_routing_handler([this](const Req& req, Resp& res) {
    if (http::bearer_matches(req.get_header_value("Authorization"), token_)) {
      const bool upload = req.method == "POST" && req.path == admin::kUploadPath;
      if (!upload && content_length(req) > admin::kMaxBody) {
        http::reply_error(res, 413, "payload_too_large", "request body larger than 64 KB");
        return httplib::Server::HandlerResponse::Handled;
      }
      // A chunked body has no length to check before it is read: only the upload route, whose
      // limit is httplib's own, takes one.
      if (!upload && req.has_header("Transfer-Encoding")) {
        http::reply_error(res, 411, "length_required", "send the body with a Content-Length");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    }
    log_.warn("admin.unauthorized",
              {{"method", req.method}, {"path", req.path}, {"peer", req.remote_addr}});
    http::reply_error(res, 401, "unauthorized", "missing or wrong bearer token");
    res.set_header("WWW-Authenticate", "Bearer");
    return httplib::Server::HandlerResponse::Handled;
  });
  // One line per request (never a body or a header: they may carry secrets).
  server_->set_logger([this](const Req& req, const Resp& res) {
    log_.log(res.status >= 500 ? LogLevel::Error : LogLevel::Info, "admin.request",
             {{"method", req.method}, {"path", req.path}, {"status", res.status}});
  });

  for (const Route& r : table()) {
    const std::string pattern = pattern_of(r.path);
    auto h = [this, handler = r.handler](const Req& req, Resp& res) { (this->*handler)(req, res); };
    const std::string_view m = r.method;
    if (m == "get") server_->Get(pattern, h);
    else if (m == "post") server_->Post(pattern, h);
    else if (m == "put") server_->Put(pattern, h);
    else if (m == "patch") server_->Patch(pattern, h);
    else server_->Delete(pattern, h);
  }

  auto bound = http::bind(*server_, o.host, o.port, "the admin API");
  if (!bound) return bound;
  auto serving = http::serve(*server_, "the admin API");
  if (!serving) return fail(serving.error());
  thread_ = std::move(serving.value());
  return bound;
}

void AdminServer::begin_stop() {
  if (server_) server_->stop();
}

void AdminServer::stop() {
  begin_stop();
  if (thread_.joinable()) thread_.join();
}

template <class F>
void AdminServer::run(Resp& res, int ok_status, F f) {
  // Everything the task touches is owned by it or outlives the io_context (store, kick): after a
  // timeout it may still run once this handler has returned.
  auto out = http::run_on(
      io_,
      [store = &store_, kick = &kick_, f = std::move(f)]() mutable -> Res<json> {
        std::vector<std::string> kicks;
        auto r = store->transact([&](Tx& tx) -> Res<json> {
          kicks.clear();  // a retried transaction starts again
          return f(tx, kicks);
        });
        if (r && *kick) {
          for (const auto& id : kicks) (*kick)(id);
        }
        return r;
      },
      kStoreTimeout);
  answer(res, ok_status, out);
}

void AdminServer::answer(Resp& res, int ok_status, const std::optional<Res<json>>& out) {
  if (!out) {
    http::reply_error(res, 503, "unavailable", "the store did not answer within 5 s");
    return;
  }
  if (!*out) {
    const Error& e = out->error();
    const Status s = status_of(e.code);
    if (s.http >= 500) {
      log_.error("admin.store_failed", {{"code", to_string(e.code)}, {"error", e.message}});
      http::reply_error(res, s.http, s.code,
                        s.http == 503 ? "the store is busy or unreachable; retry"
                                      : "internal error; see fleetd's log");
    } else {
      http::reply_error(res, s.http, s.code, e.message);
    }
    return;
  }
  if (ok_status == 204) {
    res.status = 204;
    return;
  }
  http::reply(res, ok_status, http::dump(out->value()));
}

namespace {

// A refusal of the request itself (before any store work).
void bad_request(Resp& res, const Error& e) {
  const Status s = status_of(e.code);
  http::reply_error(res, s.http, s.code, e.message);
}

Res<PageRequest> page_of(const Req& req) {
  return admin::parse_page(req.get_param_value("limit"), req.get_param_value("next"));
}

using Kicks = std::vector<std::string>;

}  // namespace

// ---- things -------------------------------------------------------------------------------

void AdminServer::create_thing(const Req& req, Resp& res) {
  auto t = admin::parse_create_thing(req.body);
  if (!t) return bad_request(res, t.error());
  run(res, 201, [t = std::move(t.value())](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.create_thing(t);
    if (!r) return fail(r.error());
    return admin::to_json(r.value());
  });
}

void AdminServer::list_things(const Req& req, Resp& res) {
  auto p = page_of(req);
  if (!p) return bad_request(res, p.error());
  run(res, 200, [p = p.value()](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.list_things(p);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(), [](const Thing& t) { return admin::to_json(t); });
  });
}

void AdminServer::describe_thing(const Req& req, Resp& res) {
  run(res, 200, [name = param(req, 1)](Tx& tx, Kicks&) -> Res<json> {
    auto t = tx.get_thing(name);
    if (!t) return fail(t.error());
    auto certs = tx.principals_of(name);
    if (!certs) return fail(certs.error());
    auto groups = tx.groups_of(name);
    if (!groups) return fail(groups.error());
    json j = admin::to_json(t.value());
    j["certificates"] = certs.value();
    j["groups"] = groups.value();
    return j;
  });
}

void AdminServer::update_thing(const Req& req, Resp& res) {
  auto u = admin::parse_update_thing(req.body);
  if (!u) return bad_request(res, u.error());
  run(res, 200, [name = param(req, 1), u = std::move(u.value())](Tx& tx, Kicks&) -> Res<json> {
    auto t = tx.get_thing(name);
    if (!t) return fail(t.error());
    auto r = tx.update_thing(admin::apply(u, std::move(t.value())), u.expected_version);
    if (!r) return fail(r.error());
    return admin::to_json(r.value());
  });
}

void AdminServer::delete_thing(const Req& req, Resp& res) {
  auto v = admin::parse_version_query(req.get_param_value("expectedVersion"));
  if (!v) return bad_request(res, v.error());
  run(res, 204, [name = param(req, 1), v = v.value()](Tx& tx, Kicks&) -> Res<json> {
    if (auto r = tx.delete_thing(name, v); !r) return fail(r.error());
    return json();
  });
}

// Attaching or detaching changes what ${iot:Connection.Thing.ThingName} resolves to for
// connections using the certificate; their rules were fixed at connect, so they are dropped and
// reconnect under the new ones.
void AdminServer::attach_certificate(const Req& req, Resp& res) {
  run(res, 204, [thing = param(req, 1), cert = param(req, 2)](Tx& tx, Kicks& k) -> Res<json> {
    if (auto r = tx.attach_thing_principal(thing, cert); !r) return fail(r.error());
    k.push_back(cert);
    return json();
  });
}

void AdminServer::detach_certificate(const Req& req, Resp& res) {
  run(res, 204, [thing = param(req, 1), cert = param(req, 2)](Tx& tx, Kicks& k) -> Res<json> {
    if (auto r = tx.detach_thing_principal(thing, cert); !r) return fail(r.error());
    k.push_back(cert);
    return json();
  });
}

void AdminServer::create_group(const Req& req, Resp& res) {
  auto g = admin::parse_create_group(req.body);
  if (!g) return bad_request(res, g.error());
  run(res, 201, [g = std::move(g.value())](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.create_group(g);
    if (!r) return fail(r.error());
    return admin::to_json(r.value());
  });
}

void AdminServer::list_groups(const Req& req, Resp& res) {
  auto p = page_of(req);
  if (!p) return bad_request(res, p.error());
  run(res, 200, [p = p.value()](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.list_groups(p);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(), [](const ThingGroup& g) { return admin::to_json(g); });
  });
}

void AdminServer::describe_group(const Req& req, Resp& res) {
  run(res, 200, [name = param(req, 1)](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.get_group(name);
    if (!r) return fail(r.error());
    return admin::to_json(r.value());
  });
}

void AdminServer::list_group_things(const Req& req, Resp& res) {
  auto p = page_of(req);
  if (!p) return bad_request(res, p.error());
  run(res, 200, [name = param(req, 1), p = p.value()](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.things_in_group(name, p);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(), [](const std::string& s) { return json(s); });
  });
}

void AdminServer::add_to_group(const Req& req, Resp& res) {
  run(res, 204, [group = param(req, 1), thing = param(req, 2)](Tx& tx, Kicks&) -> Res<json> {
    if (auto r = tx.add_to_group(group, thing); !r) return fail(r.error());
    return json();
  });
  if (res.status == 204) thing_joined_group(param(req, 1), param(req, 2));
}

void AdminServer::remove_from_group(const Req& req, Resp& res) {
  run(res, 204, [group = param(req, 1), thing = param(req, 2)](Tx& tx, Kicks&) -> Res<json> {
    if (auto r = tx.remove_from_group(group, thing); !r) return fail(r.error());
    return json();
  });
  if (res.status == 204) thing_left_group(param(req, 1), param(req, 2));
}

// ---- certificates -------------------------------------------------------------------------

void AdminServer::register_certificate(const Req& req, Resp& res) {
  auto reg = admin::parse_register_certificate(req.body);
  if (!reg) return bad_request(res, reg.error());
  auto facts = admin::read_certificate(reg.value().pem);
  if (!facts) return bad_request(res, facts.error());
  run(res, 201, [reg = std::move(reg.value()), f = std::move(facts.value())](
                    Tx& tx, Kicks&) -> Res<json> {
    Certificate c;
    c.id = f.id;
    c.pem = reg.pem;
    c.status = reg.status;
    c.serial = f.serial;
    c.not_before = f.not_before;
    c.not_after = f.not_after;
    if (!reg.ca_id.empty()) {
      auto ca = tx.get_ca(reg.ca_id);
      if (!ca) {
        if (ca.error().code == Errc::NotFound) {
          return fail(Errc::InvalidArgument, "caCertificateId names no registered CA");
        }
        return fail(ca.error());
      }
      if (!admin::issued_by(reg.pem, ca.value().pem)) {
        return fail(Errc::InvalidArgument,
                    "the certificate was not issued by CA " + reg.ca_id);
      }
      c.ca_id = reg.ca_id;
    } else {
      // The issuer among the registered CAs, when there is one (its status then governs the
      // certificate's, as in AWS).
      PageRequest page;
      page.limit = 1000;
      for (;;) {
        auto cas = tx.list_cas(page);
        if (!cas) return fail(cas.error());
        for (const auto& ca : cas.value().items) {
          if (c.ca_id.empty() && admin::issued_by(reg.pem, ca.pem)) c.ca_id = ca.id;
        }
        if (cas.value().next.empty() || !c.ca_id.empty()) break;
        page.after = cas.value().next;
      }
    }
    auto r = tx.create_certificate(c);
    if (!r) return fail(r.error());
    return admin::to_json(r.value(), false);
  });
}

void AdminServer::list_certificates(const Req& req, Resp& res) {
  auto p = page_of(req);
  if (!p) return bad_request(res, p.error());
  run(res, 200, [p = p.value()](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.list_certificates(p);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(),
                            [](const Certificate& c) { return admin::to_json(c, false); });
  });
}

void AdminServer::describe_certificate(const Req& req, Resp& res) {
  run(res, 200, [id = param(req, 1)](Tx& tx, Kicks&) -> Res<json> {
    auto c = tx.get_certificate(id);
    if (!c) return fail(c.error());
    auto things = tx.things_of(id);
    if (!things) return fail(things.error());
    auto policies = tx.policies_of(id);
    if (!policies) return fail(policies.error());
    json j = admin::to_json(c.value(), true);
    j["things"] = things.value();
    j["policies"] = policies.value();
    return j;
  });
}

void AdminServer::delete_certificate(const Req& req, Resp& res) {
  run(res, 204, [id = param(req, 1)](Tx& tx, Kicks&) -> Res<json> {
    if (auto r = tx.delete_certificate(id); !r) return fail(r.error());
    return json();
  });
}

void AdminServer::set_certificate_status(const Req& req, Resp& res, CertificateStatus s) {
  run(res, 200, [id = param(req, 1), s](Tx& tx, Kicks& k) -> Res<json> {
    auto r = tx.set_certificate_status(id, s);
    if (!r) return fail(r.error());
    if (s != CertificateStatus::Active) k.push_back(id);
    return admin::to_json(r.value(), false);
  });
}

void AdminServer::activate_certificate(const Req& req, Resp& res) {
  set_certificate_status(req, res, CertificateStatus::Active);
}
void AdminServer::deactivate_certificate(const Req& req, Resp& res) {
  set_certificate_status(req, res, CertificateStatus::Inactive);
}
void AdminServer::revoke_certificate(const Req& req, Resp& res) {
  set_certificate_status(req, res, CertificateStatus::Revoked);
  if (res.status != 200 || ca_ == nullptr) return;
  // The CRL names every certificate the CA issued and that is now REVOKED: re-issued (and
  // written for the broker's crlfile) at once. The registry already refuses the certificate, so
  // a CRL that cannot be made is logged, not a failed revocation.
  http::run_on(
      io_,
      [ca = ca_, store = &store_, log = &log_] {
        if (auto crl = ca::refresh_crl(*ca, *store); !crl) {
          log->error("ca.crl_failed", {{"error", crl.error().message}});
        } else {
          log->info("ca.crl_published", {{"revoked", static_cast<std::int64_t>(crl.value().revoked.size())}});
        }
        return 0;
      },
      kStoreTimeout);
}

namespace {

const Error kNoCa{Errc::NotFound,
                  "fleetd has no CA of its own; start it with --ca-pin-file (docs/fleetd.md)"};

}  // namespace

// AWS's CreateCertificateFromCsr, signed by fleetd's issuing CA inside its token. The thing is
// looked up before anything is signed; the certificate, its status and the attachment are then
// stored in one transaction, so a certificate is returned only once it is registered.
void AdminServer::create_certificate_from_csr(const Req& req, Resp& res) {
  if (ca_ == nullptr) return bad_request(res, kNoCa);
  auto r = admin::parse_certificate_from_csr(req.body);
  if (!r) return bad_request(res, r.error());
  auto out = http::run_on(
      io_,
      [ca = ca_, store = &store_, r = std::move(r.value())]() -> Res<json> {
        if (!r.thing_name.empty()) {
          auto t = store->transact([&](Tx& tx) { return tx.get_thing(r.thing_name); });
          if (!t) return fail(t.error());
        }
        return store->transact([&](Tx& tx) -> Res<json> {
          auto cert = ca->issue(r.csr, r.validity_days, tx.now(), tx);
          if (!cert) return fail(cert.error());
          const Certificate c = ca::record_of(
              *ca, cert.value(),
              r.set_as_active ? CertificateStatus::Active : CertificateStatus::Inactive);
          auto stored = tx.create_certificate(c);
          if (!stored) return fail(stored.error());
          if (!r.thing_name.empty()) {
            if (auto a = tx.attach_thing_principal(r.thing_name, c.id); !a) return fail(a.error());
          }
          json j = admin::to_json(stored.value(), true);
          if (!r.thing_name.empty()) j["thingName"] = r.thing_name;
          return j;
        });
      },
      kStoreTimeout);
  answer(res, 201, out);
}

// ---- fleetd's own CA ----------------------------------------------------------------------

void AdminServer::describe_own_ca(const Req&, Resp& res) {
  if (ca_ == nullptr) return bad_request(res, kNoCa);
  // The certificates never change while fleetd runs: no io-thread hop needed.
  const auto& root = ca_->root();
  const auto& issuing = ca_->issuing();
  json j{{"rootCertificateId", root.id},
         {"rootCertificatePem", root.pem()},
         {"issuingCertificateId", issuing.id},
         {"issuingCertificatePem", issuing.pem()},
         {"issuingNotAfter", issuing.not_after},
         {"keyAlgorithm", pki::to_string(pki::KeyAlgorithm::EcP256)},
         {"signatureAlgorithm", pki::to_string(pki::SignatureAlgorithm::EcdsaSha256)}};
  http::reply(res, 200, http::dump(j));
}

void AdminServer::get_crl(const Req& req, Resp& res) {
  if (ca_ == nullptr) return bad_request(res, kNoCa);
  // The CRL is replaced on the io thread; read it there.
  auto pem = http::run_on(io_, [ca = ca_] { return ca->crl_pem(); }, kStoreTimeout);
  if (!pem) return http::reply_error(res, 503, "unavailable", "fleetd did not answer within 5 s");
  // A relying party may ask for the PEM itself (curl -H 'Accept: application/x-pem-file').
  const std::string accept = req.get_header_value("Accept");
  if (accept.find("application/x-pem-file") != std::string::npos ||
      accept.find("application/pkix-crl") != std::string::npos) {
    res.status = 200;
    res.set_content(*pem, "application/x-pem-file");
    return;
  }
  auto crl = pki::parse_crl(*pem);
  json j{{"crlPem", *pem}};
  if (crl) {
    j["thisUpdate"] = crl->this_update;
    if (crl->next_update) j["nextUpdate"] = *crl->next_update;
    if (crl->crl_number) j["crlNumber"] = *crl->crl_number;
    json serials = json::array();
    for (const auto& r : crl->revoked) serials.push_back(r.serial_hex);
    j["revokedSerials"] = serials;
  }
  http::reply(res, 200, http::dump(j));
}

// ---- policies -----------------------------------------------------------------------------

void AdminServer::create_policy(const Req& req, Resp& res) {
  auto p = admin::parse_create_policy(req.body);
  if (!p) return bad_request(res, p.error());
  run(res, 201, [p = std::move(p.value())](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.create_policy(p);
    if (!r) return fail(r.error());
    return admin::to_json(r.value());
  });
}

void AdminServer::list_policies(const Req& req, Resp& res) {
  auto p = page_of(req);
  if (!p) return bad_request(res, p.error());
  run(res, 200, [p = p.value()](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.list_policies(p);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(), [](const Policy& x) { return admin::to_json(x); });
  });
}

void AdminServer::get_policy(const Req& req, Resp& res) {
  run(res, 200, [name = param(req, 1)](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.get_policy(name);
    if (!r) return fail(r.error());
    return admin::to_json(r.value());
  });
}

void AdminServer::delete_policy(const Req& req, Resp& res) {
  run(res, 204, [name = param(req, 1)](Tx& tx, Kicks&) -> Res<json> {
    if (auto r = tx.delete_policy(name); !r) return fail(r.error());
    return json();
  });
}

// The policies of a certificate decide its connections' rules, fixed at connect: a change drops
// them so that they reconnect under the new rules (or are refused).
void AdminServer::attach_policy(const Req& req, Resp& res) {
  run(res, 204, [name = param(req, 1), cert = param(req, 2)](Tx& tx, Kicks& k) -> Res<json> {
    if (auto r = tx.attach_policy(name, cert); !r) return fail(r.error());
    k.push_back(cert);
    return json();
  });
}

void AdminServer::detach_policy(const Req& req, Resp& res) {
  run(res, 204, [name = param(req, 1), cert = param(req, 2)](Tx& tx, Kicks& k) -> Res<json> {
    if (auto r = tx.detach_policy(name, cert); !r) return fail(r.error());
    k.push_back(cert);
    return json();
  });
}

// ---- CAs ----------------------------------------------------------------------------------

namespace {

Res<void> template_exists(Tx& tx, const std::string& name) {
  if (name.empty()) return {};
  auto t = tx.get_template(name);
  if (t) return {};
  if (t.error().code == Errc::NotFound) {
    return fail(Errc::InvalidArgument, "registration template '" + name + "' does not exist");
  }
  return fail(t.error());
}

}  // namespace

void AdminServer::register_ca(const Req& req, Resp& res) {
  auto reg = admin::parse_register_ca(req.body);
  if (!reg) return bad_request(res, reg.error());
  auto facts = admin::read_certificate(reg.value().pem);
  if (!facts) return bad_request(res, facts.error());
  if (!facts.value().is_ca) {
    return bad_request(res, Error{Errc::InvalidArgument,
                                  "not a CA certificate (basicConstraints CA:TRUE is missing)"});
  }
  run(res, 201, [reg = std::move(reg.value()), id = facts.value().id](Tx& tx,
                                                                       Kicks&) -> Res<json> {
    if (auto t = template_exists(tx, reg.registration_template); !t) {
      return fail(t.error());
    }
    auto r = tx.register_ca({id, reg.pem, reg.status, reg.auto_registration,
                             reg.registration_template, 0});
    if (!r) return fail(r.error());
    return admin::to_json(r.value(), false);
  });
  cas_changed(res);
}

void AdminServer::cas_changed(const Resp& res) {
  // On the io thread, after the change committed (the answer is already made); `this` outlives
  // the io_context's run.
  if (res.status >= 200 && res.status < 300 && cas_changed_) {
    asio::post(io_, [this] { cas_changed_(); });
  }
}

void AdminServer::list_cas(const Req& req, Resp& res) {
  auto p = page_of(req);
  if (!p) return bad_request(res, p.error());
  run(res, 200, [p = p.value()](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.list_cas(p);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(), [](const CaRecord& c) { return admin::to_json(c, false); });
  });
}

void AdminServer::describe_ca(const Req& req, Resp& res) {
  run(res, 200, [id = param(req, 1)](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.get_ca(id);
    if (!r) return fail(r.error());
    return admin::to_json(r.value(), true);
  });
}

void AdminServer::update_ca(const Req& req, Resp& res) {
  auto u = admin::parse_update_ca(req.body);
  if (!u) return bad_request(res, u.error());
  run(res, 200, [id = param(req, 1), u = std::move(u.value())](Tx& tx, Kicks&) -> Res<json> {
    auto ca = tx.get_ca(id);
    if (!ca) return fail(ca.error());
    CaRecord c = std::move(ca.value());
    if (u.auto_registration) c.auto_registration = *u.auto_registration;
    if (u.registration_template) {
      if (auto t = template_exists(tx, *u.registration_template); !t) {
        return fail(t.error());
      }
      c.registration_template = *u.registration_template;
    }
    auto r = tx.update_ca(c);
    if (!r) return fail(r.error());
    return admin::to_json(r.value(), false);
  });
}

void AdminServer::set_ca_status(const Req& req, Resp& res, CaStatus s) {
  run(res, 200, [id = param(req, 1), s](Tx& tx, Kicks& k) -> Res<json> {
    auto ca = tx.get_ca(id);
    if (!ca) return fail(ca.error());
    CaRecord c = std::move(ca.value());
    c.status = s;
    auto r = tx.update_ca(c);
    if (!r) return fail(r.error());
    if (s == CaStatus::Inactive) {
      // Every certificate it issued is refused from now on: drop their live connections.
      auto certs = tx.certificates_of_ca(id);
      if (!certs) return fail(certs.error());
      k = std::move(certs.value());
    }
    return admin::to_json(r.value(), false);
  });
  cas_changed(res);
}

void AdminServer::activate_ca(const Req& req, Resp& res) {
  set_ca_status(req, res, CaStatus::Active);
}
void AdminServer::deactivate_ca(const Req& req, Resp& res) {
  set_ca_status(req, res, CaStatus::Inactive);
}

// ---- provisioning templates ---------------------------------------------------------------

namespace {

// A template's hook set with it (fleet provisioning templates only, as AWS's), and the answer
// naming it.
Res<json> with_hook(Tx& tx, const ProvisioningTemplate& t,
                    const std::optional<PreProvisioningHook>& hook) {
  json j = admin::to_json(t);
  if (hook) {
    if (t.type != "FLEET_PROVISIONING") {
      return fail(Errc::InvalidArgument, "a pre-provisioning hook is for fleet provisioning "
                                         "templates only");
    }
    if (auto r = set_pre_provisioning_hook(tx, t.name, *hook); !r) return fail(r.error());
  }
  auto h = get_pre_provisioning_hook(tx, t.name);
  if (!h) return fail(h.error());
  if (h.value()) {
    j["preProvisioningHook"] = {{"targetArn", h.value()->target},
                                {"payloadVersion", h.value()->payload_version}};
  }
  return j;
}

}  // namespace

void AdminServer::create_template(const Req& req, Resp& res) {
  auto t = admin::parse_create_template(req.body);
  if (!t) return bad_request(res, t.error());
  auto hook = admin::template_hook_member(req.body);
  if (!hook) return bad_request(res, hook.error());
  run(res, 201, [t = std::move(t.value()), hook = std::move(hook.value())](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.create_template(t);
    if (!r) return fail(r.error());
    return with_hook(tx, r.value(), hook);
  });
}

void AdminServer::validate_template(const Req& req, Resp& res) {
  // Pure: nothing is stored, so the store is not involved.
  if (auto v = admin::parse_and_validate_template(req.body); !v) {
    return bad_request(res, v.error());
  }
  http::reply(res, 200, R"({"valid":true})");
}

void AdminServer::list_templates(const Req& req, Resp& res) {
  auto p = page_of(req);
  if (!p) return bad_request(res, p.error());
  run(res, 200, [p = p.value()](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.list_templates(p);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(),
                            [](const ProvisioningTemplate& t) { return admin::to_json(t); });
  });
}

void AdminServer::describe_template(const Req& req, Resp& res) {
  run(res, 200, [name = param(req, 1)](Tx& tx, Kicks&) -> Res<json> {
    auto r = tx.get_template(name);
    if (!r) return fail(r.error());
    return with_hook(tx, r.value(), std::nullopt);
  });
}

void AdminServer::update_template(const Req& req, Resp& res) {
  auto u = admin::parse_update_template(req.body);
  if (!u) return bad_request(res, u.error());
  auto hook = admin::template_hook_member(req.body);
  if (!hook) return bad_request(res, hook.error());
  run(res, 200, [name = param(req, 1), u = std::move(u.value()),
                 hook = std::move(hook.value())](Tx& tx, Kicks&) -> Res<json> {
    auto cur = tx.get_template(name);
    if (!cur) return fail(cur.error());
    ProvisioningTemplate t = std::move(cur.value());
    if (u.body) {
      if (auto v = admin::validate_template(*u.body, t.type); !v) return fail(v.error());
      t.body = *u.body;
    }
    if (u.description) t.description = *u.description;
    if (u.enabled) t.enabled = *u.enabled;
    auto r = tx.update_template(t);
    if (!r) return fail(r.error());
    return with_hook(tx, r.value(), hook);
  });
}

void AdminServer::delete_template(const Req& req, Resp& res) {
  run(res, 204, [name = param(req, 1)](Tx& tx, Kicks&) -> Res<json> {
    if (auto r = tx.delete_template(name); !r) return fail(r.error());
    return json();
  });
}

// ---- fleet provisioning by claim ------------------------------------------------------------

namespace {

json hook_json(const std::string& name, const PreProvisioningHook& h) {
  return json{{"templateName", name},
              {"preProvisioningHook", {{"targetArn", h.target}, {"payloadVersion", h.payload_version}}}};
}

}  // namespace

void AdminServer::get_template_hook(const Req& req, Resp& res) {
  run(res, 200, [name = param(req, 1)](Tx& tx, Kicks&) -> Res<json> {
    if (auto t = tx.get_template(name); !t) return fail(t.error());
    auto h = get_pre_provisioning_hook(tx, name);
    if (!h) return fail(h.error());
    if (!h.value()) return fail(Errc::NotFound, "template '" + name + "' has no pre-provisioning hook");
    return hook_json(name, *h.value());
  });
}

void AdminServer::set_template_hook(const Req& req, Resp& res) {
  auto h = admin::parse_pre_provisioning_hook(req.body);
  if (!h) return bad_request(res, h.error());
  run(res, 200, [name = param(req, 1), h = std::move(h.value())](Tx& tx, Kicks&) -> Res<json> {
    if (auto t = tx.get_template(name); !t) return fail(t.error());
    if (auto r = set_pre_provisioning_hook(tx, name, h); !r) return fail(r.error());
    return hook_json(name, h);
  });
}

void AdminServer::delete_template_hook(const Req& req, Resp& res) {
  run(res, 204, [name = param(req, 1)](Tx& tx, Kicks&) -> Res<json> {
    if (auto r = set_pre_provisioning_hook(tx, name, {"", ""}); !r) return fail(r.error());
    return json();
  });
}

void AdminServer::create_claim_certificate(const Req& req, Resp& res) {
  if (ca_ == nullptr) return bad_request(res, kNoCa);
  auto r = admin::parse_certificate_from_csr(req.body);
  if (!r) return bad_request(res, r.error());
  if (!r.value().thing_name.empty()) {
    return bad_request(res, Error{Errc::InvalidArgument,
                                  "a claim certificate is attached to no thing: drop thingName"});
  }
  run(res, 201, [ca = ca_, name = param(req, 1), r = std::move(r.value())](Tx& tx, Kicks&) -> Res<json> {
    auto tmpl = tx.get_template(name);
    if (!tmpl) return fail(tmpl.error());
    if (tmpl.value().type != "FLEET_PROVISIONING") {
      return fail(Errc::InvalidArgument,
                  "template '" + name + "' is not a fleet provisioning template");
    }
    // One policy per template, made on first use: the template's provision topics and the two
    // create calls, nothing else (aws-iot-protocols.md 4.2).
    const std::string policy = provisioning::claim_policy_name(name);
    if (auto p = tx.get_policy(policy); !p) {
      if (p.error().code != Errc::NotFound) return fail(p.error());
      if (auto c = tx.create_policy({policy, provisioning::claim_policy_document(name), 0, 0}); !c) {
        return fail(c.error());
      }
    }
    auto cert = ca->issue(r.csr, r.validity_days, tx.now(), tx);
    if (!cert) return fail(cert.error());
    const Certificate c = ca::record_of(*ca, cert.value(), CertificateStatus::Active);
    auto stored = tx.create_certificate(c);
    if (!stored) return fail(stored.error());
    if (auto a = tx.attach_policy(policy, c.id); !a) return fail(a.error());
    json j = admin::to_json(stored.value(), true);
    j["policyName"] = policy;
    j["templateName"] = name;
    return j;
  });
}

void AdminServer::list_provisioning_results(const Req& req, Resp& res) {
  auto p = page_of(req);
  if (!p) return bad_request(res, p.error());
  run(res, 200, [p = p.value()](Tx& tx, Kicks&) -> Res<json> {
    auto r = fleetd::list_provisioning_results(tx, p);
    if (!r) return fail(r.error());
    return admin::page_json(r.value(), [](const ProvisioningResult& x) {
      return json{{"certificateId", x.certificate_id},   {"thingName", x.thing_name},
                  {"templateName", x.template_name},     {"claimCertificateId", x.claim_certificate_id},
                  {"clientId", x.client_id},             {"provisionedAt", x.provisioned_at}};
    });
  });
}

}  // namespace edgekit::fleetd
