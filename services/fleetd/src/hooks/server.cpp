#include "hooks/server.hpp"

#include <asio/post.hpp>
#include <httplib.h>

#include <chrono>
#include <optional>

#include "hooks/wire.hpp"

namespace edgekit::fleetd {
namespace {

constexpr std::chrono::milliseconds kDecisionTimeout{3000};

}  // namespace

HooksServer::HooksServer(asio::io_context& io, Store& store, Logger& log, std::string token)
    : io_(io), store_(store), log_(log), token_(std::move(token)) {}

HooksServer::~HooksServer() { stop(); }

Res<std::uint16_t> HooksServer::start(const std::string& host, std::uint16_t port) {
  server_ = std::make_unique<httplib::Server>();
  server_->set_payload_max_length(hooks::kMaxBody);
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  // The plugin keeps its connection open between connects; a short idle limit lets shutdown
  // finish quickly (the server's workers wait out the idle time of open connections).
  server_->set_keep_alive_timeout(1);
  // Malformed or oversized input is answered, never thrown through.
  server_->set_exception_handler([this](const httplib::Request& req, httplib::Response& res,
                                        std::exception_ptr) {
    log_.error("hooks.internal_error", {{"path", req.path}});
    http::reply(res, 500, http::error_json("internal", "internal error"));
  });

  auto authorized = [this](const httplib::Request& req, httplib::Response& res) {
    if (http::bearer_matches(req.get_header_value("Authorization"), token_)) return true;
    log_.warn("hooks.unauthorized", {{"path", req.path}, {"peer", req.remote_addr}});
    http::reply(res, 401, http::error_json("unauthorized", "missing or wrong bearer token"));
    return false;
  };

  server_->Post("/hooks/v1/authenticate", [this, authorized](const httplib::Request& req,
                                                             httplib::Response& res) {
    if (!authorized(req, res)) return;
    auto request = hooks::parse_auth_request(req.body);
    if (!request) {
      http::reply(res, 400, http::error_json("bad_request", request.error().message));
      return;
    }
    // By value: after a timeout the task may still run, after this handler returned.
    auto decided = http::run_on(
        io_, [this, r = request.value()] { return authenticate(store_, r, events_); },
        kDecisionTimeout);
    if (!decided) {
      http::reply(res, 503, http::error_json("busy", "no decision within 3 s"));
      return;
    }
    if (!*decided) {
      log_.error("hooks.store_failed", {{"error", decided->error().message}});
      http::reply(res, 503, http::error_json("store", decided->error().message));
      return;
    }
    const AuthDecision& d = decided->value();
    log_.log(d.allow ? LogLevel::Info : LogLevel::Warn,
             d.allow ? "auth.allowed" : "auth.denied",
             {{"clientid", request.value().client_id},
              {"certificate_id", request.value().certificate_id},
              {"peer", request.value().peer},
              {"reason", d.reason}});
    http::reply(res, 200, hooks::to_json(d));
  });

  server_->Post("/hooks/v1/authorize", [this, authorized](const httplib::Request& req,
                                                          httplib::Response& res) {
    if (!authorized(req, res)) return;
    auto request = hooks::parse_authorize_request(req.body);
    if (!request) {
      http::reply(res, 400, http::error_json("bad_request", request.error().message));
      return;
    }
    const auto& r = request.value();
    auto decided = http::run_on(
        io_,
        [this, who = AuthRequest{r.client_id, {}, {}, r.certificate_id, {}, {}}] {
          return authenticate(store_, who);
        },
        kDecisionTimeout);
    if (!decided || !*decided) {
      http::reply(res, 503, http::error_json("busy", "no decision"));
      return;
    }
    const AuthDecision& d = decided->value();
    bool allow = d.allow && policy::allowed(d.rules, r.action, r.topic);
    http::reply(res, 200, hooks::decision_json(allow, allow ? "ok" : d.allow ? "not allowed by policy"
                                                                      : d.reason));
  });

  auto bound = http::bind(*server_, host, port, "the broker hooks");
  if (!bound) return bound;
  auto serving = http::serve(*server_, "the broker hooks");
  if (!serving) return fail(serving.error());
  thread_ = std::move(serving.value());
  return bound;
}

void HooksServer::begin_stop() {
  if (server_) server_->stop();
}

void HooksServer::stop() {
  begin_stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace edgekit::fleetd
