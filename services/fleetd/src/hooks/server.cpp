#include "hooks/server.hpp"

#include <asio/post.hpp>
#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <optional>

#include "hooks/wire.hpp"

namespace edgekit::fleetd {
namespace {

constexpr auto kDecisionTimeout = std::chrono::seconds(3);

bool token_matches(const std::string& header, const std::string& token) {
  const std::string prefix = "Bearer ";
  if (header.size() != prefix.size() + token.size() || header.rfind(prefix, 0) != 0) return false;
  return CRYPTO_memcmp(header.data() + prefix.size(), token.data(), token.size()) == 0;
}

void reply(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

}  // namespace

HooksServer::HooksServer(asio::io_context& io, Store& store, Logger& log, std::string token)
    : io_(io), store_(store), log_(log), token_(std::move(token)) {}

HooksServer::~HooksServer() { stop(); }

template <class F>
auto HooksServer::on_io(F&& f) -> std::optional<decltype(f())> {
  using R = decltype(f());
  auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
  auto result = task->get_future();
  asio::post(io_, [task] { (*task)(); });
  if (result.wait_for(kDecisionTimeout) != std::future_status::ready) return std::nullopt;
  return result.get();
}

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
    reply(res, 500, hooks::error_json("internal", "internal error"));
  });

  auto authorized = [this](const httplib::Request& req, httplib::Response& res) {
    if (token_matches(req.get_header_value("Authorization"), token_)) return true;
    log_.warn("hooks.unauthorized", {{"path", req.path}, {"peer", req.remote_addr}});
    reply(res, 401, hooks::error_json("unauthorized", "missing or wrong bearer token"));
    return false;
  };

  server_->Post("/hooks/v1/authenticate", [this, authorized](const httplib::Request& req,
                                                             httplib::Response& res) {
    if (!authorized(req, res)) return;
    auto request = hooks::parse_auth_request(req.body);
    if (!request) {
      reply(res, 400, hooks::error_json("bad_request", request.error().message));
      return;
    }
    auto decided = on_io([&] { return authenticate(store_, request.value()); });
    if (!decided) {
      reply(res, 503, hooks::error_json("busy", "no decision within 3 s"));
      return;
    }
    if (!*decided) {
      log_.error("hooks.store_failed", {{"error", decided->error().message}});
      reply(res, 503, hooks::error_json("store", decided->error().message));
      return;
    }
    const AuthDecision& d = decided->value();
    log_.log(d.allow ? LogLevel::Info : LogLevel::Warn,
             d.allow ? "auth.allowed" : "auth.denied",
             {{"clientid", request.value().client_id},
              {"certificate_id", request.value().certificate_id},
              {"peer", request.value().peer},
              {"reason", d.reason}});
    reply(res, 200, hooks::to_json(d));
  });

  server_->Post("/hooks/v1/authorize", [this, authorized](const httplib::Request& req,
                                                          httplib::Response& res) {
    if (!authorized(req, res)) return;
    auto request = hooks::parse_authorize_request(req.body);
    if (!request) {
      reply(res, 400, hooks::error_json("bad_request", request.error().message));
      return;
    }
    const auto& r = request.value();
    auto decided = on_io([&] {
      return authenticate(store_, AuthRequest{r.client_id, {}, {}, r.certificate_id});
    });
    if (!decided || !*decided) {
      reply(res, 503, hooks::error_json("busy", "no decision"));
      return;
    }
    const AuthDecision& d = decided->value();
    bool allow = d.allow && policy::allowed(d.rules, r.action, r.topic);
    reply(res, 200, hooks::decision_json(allow, allow ? "ok" : d.allow ? "not allowed by policy"
                                                                      : d.reason));
  });

  int bound = port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return fail(Errc::Unavailable,
                "cannot listen on " + host + ":" + std::to_string(port) + " for the broker hooks");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return static_cast<std::uint16_t>(bound);
}

void HooksServer::begin_stop() {
  if (server_) server_->stop();
}

void HooksServer::stop() {
  begin_stop();
  if (thread_.joinable()) thread_.join();
}

Res<std::string> load_or_create_token(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0) {
    if ((st.st_mode & 077) != 0) {
      return fail(Errc::InvalidArgument, "token file " + path +
                                             " is readable by others; chmod 600 it");
    }
    std::ifstream in(path);
    std::string token;
    std::getline(in, token);
    if (token.empty()) return fail(Errc::InvalidArgument, "token file " + path + " is empty");
    return token;
  }
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return fail(Errc::Internal, "no randomness for the token");
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (unsigned char b : raw) {
    token += hex[b >> 4];
    token += hex[b & 15];
  }
  OPENSSL_cleanse(raw, sizeof raw);
  mode_t old = ::umask(077);
  std::FILE* f = std::fopen(path.c_str(), "w");
  ::umask(old);
  if (!f) return fail(Errc::Unavailable, "cannot write token file " + path);
  std::fputs((token + "\n").c_str(), f);
  std::fclose(f);
  return token;
}

}  // namespace edgekit::fleetd
