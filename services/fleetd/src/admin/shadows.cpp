// The admin API's Device Shadow routes, shaped like AWS's data-plane HTTP API (GetThingShadow,
// UpdateThingShadow, DeleteThingShadow with `?name=` for a named shadow; ListNamedShadowsForThing).
// The operations are the shadow service's own (shadow/service.hpp), run on the io thread: an
// update here publishes the same accepted, documents and delta messages as a device's, so that
// a subscribed device sees an operator's change at once.

#include "store/shadows.hpp"

#include <httplib.h>

#include <chrono>

#include "admin/server.hpp"
#include "admin/wire.hpp"
#include "http/common.hpp"
#include "shadow/service.hpp"

namespace edgekit::fleetd {
namespace {

using nlohmann::json;
constexpr std::chrono::milliseconds kTimeout{5000};

// The shadow service's statuses as the admin API's error codes.
const char* code_of(int status) {
  switch (status) {
    case 400:
      return "invalid_argument";
    case 404:
      return "not_found";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 415:
      return "unsupported_media_type";
    default:
      return "internal";
  }
}

// An operation's answer: the AWS document on success, {"code","message"} otherwise (the AWS
// document's integer code is the HTTP status).
void reply(httplib::Response& res, const std::optional<shadow::Answer>& a) {
  if (!a) return http::reply_error(res, 503, "unavailable", "the store did not answer within 5 s");
  if (a->accepted) return http::reply(res, 200, shadow::to_payload(a->document));
  http::reply_error(res, a->status, code_of(a->status), a->document.value("message", ""));
}

bool no_service(shadow::ShadowService* s, httplib::Response& res) {
  if (s != nullptr) return false;
  http::reply_error(res, 404, "not_found", "fleetd runs no shadow service");
  return true;
}

}  // namespace

void AdminServer::list_shadows(const httplib::Request& req, httplib::Response& res) {
  auto p = admin::parse_page(req.get_param_value("limit"), req.get_param_value("next"));
  if (!p) return http::reply_error(res, 400, "invalid_argument", p.error().message);
  auto out = http::run_on(
      io_,
      [store = &store_, thing = req.matches[1].str(), page = p.value()]() -> Res<json> {
        return store->transact([&](Tx& tx) -> Res<json> {
          auto named = fleetd::list_shadows(tx, thing, page);
          if (!named) return fail(named.error());
          auto classic = fleetd::get_shadow(tx, thing, "");
          if (!classic) return fail(classic.error());
          json j = admin::page_json(named.value(), [](const ShadowRecord& r) {
            return json{{"shadowName", r.shadow_name},
                        {"version", r.version},
                        {"lastUpdated", r.updated_at}};
          });
          j["classicShadow"] = classic.value() && !classic.value()->deleted;
          return j;
        });
      },
      kTimeout);
  if (!out)
    return http::reply_error(res, 503, "unavailable", "the store did not answer within 5 s");
  if (!*out) return http::reply_error(res, 500, "internal", "internal error; see fleetd's log");
  http::reply(res, 200, shadow::to_payload(out->value()));
}

namespace {

enum class ShadowOp { Get, Update, Delete };

// One shadow operation on the io thread (the service and the store are that thread's), answered.
void run_shadow_op(asio::io_context& io, shadow::ShadowService* s, ShadowOp op,
                   const httplib::Request& req, httplib::Response& res) {
  if (no_service(s, res)) return;
  auto task = [s, op, thing = req.matches[1].str(), name = req.get_param_value("name"),
               body = op == ShadowOp::Update ? req.body : std::string()] {
    if (op == ShadowOp::Get) return s->get(thing, name);
    if (op == ShadowOp::Update) return s->update(thing, name, body);
    return s->remove(thing, name);
  };
  reply(res, http::run_on(io, std::move(task), kTimeout));
}

}  // namespace

void AdminServer::get_shadow(const httplib::Request& req, httplib::Response& res) {
  run_shadow_op(io_, shadows_, ShadowOp::Get, req, res);
}

void AdminServer::update_shadow(const httplib::Request& req, httplib::Response& res) {
  run_shadow_op(io_, shadows_, ShadowOp::Update, req, res);
}

void AdminServer::delete_shadow(const httplib::Request& req, httplib::Response& res) {
  run_shadow_op(io_, shadows_, ShadowOp::Delete, req, res);
}

}  // namespace edgekit::fleetd
