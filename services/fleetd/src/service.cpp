#include "service.hpp"

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>

#include "admin/server.hpp"
#include "broker_link.hpp"
#include "hooks/decisions.hpp"
#include "hooks/server.hpp"
#include "revocation.hpp"
#include "store/store.hpp"

namespace edgekit::fleetd {
namespace {

namespace fs = std::filesystem;

// Scripts read these files to find a port chosen at run time; a file that could not be written
// is a start failure, not something to leave them guessing about.
bool write_port_file(const fs::path& path, std::uint16_t port, Logger& log) {
  std::ofstream out(path);
  out << port << "\n";
  out.close();
  if (!out) {
    log.error("fleetd.port_file_unwritable", {{"path", path.string()}});
    return false;
  }
  return true;
}

// `$aws/events/presence/<connected|disconnected>/<clientId>` with AWS's JSON fields.
void log_presence(Logger& log, const Message& m) {
  constexpr std::string_view kPrefix = "$aws/events/presence/";
  std::string_view rest = m.topic.substr(kPrefix.size());
  const auto slash = rest.find('/');
  const std::string_view kind = rest.substr(0, slash);
  const std::string_view client = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  auto j = nlohmann::json::parse(mqtt::as_string(m.payload), nullptr, false);
  auto text = [&j](const char* key) {
    return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>()
                                                                   : std::string();
  };
  if (kind == "connected") {
    log.info("presence.connected", {{"client_id", client}, {"thing_name", text("thingName")},
                                    {"certificate_id", text("principalIdentifier")}});
  } else if (kind == "disconnected") {
    log.info("presence.disconnected",
             {{"client_id", client}, {"reason", text("disconnectReason")}});
  } else {
    log.warn("presence.unknown_event", {{"topic", m.topic}});
  }
}

const char* store_name(Config::StoreKind k) {
  return k == Config::StoreKind::Sqlite ? "sqlite" : "postgres";
}

}  // namespace

Exit run_service(const Config& config, Logger& log) {
  std::error_code ec;
  fs::create_directories(config.state_dir, ec);
  if (ec || !fs::is_directory(config.state_dir)) {
    log.error("fleetd.state_dir_unusable",
              {{"state_dir", config.state_dir}, {"error", ec ? ec.message() : "not a folder"}});
    return Exit::StateDir;
  }

  Res<std::unique_ptr<Db>> db = config.store == Config::StoreKind::Sqlite
                                    ? open_sqlite({(fs::path(config.state_dir) / "fleetd.db").string()})
                                    : open_postgres({config.postgres});
  if (!db) {
    log.error("store.refused", {{"store", store_name(config.store)},
                                {"code", to_string(db.error().code)},
                                {"error", db.error().message}});
    return Exit::StoreRefused;
  }
  auto store = Store::open(std::move(db.value()));
  if (!store) {
    log.error("store.refused", {{"store", store_name(config.store)},
                                {"code", to_string(store.error().code)},
                                {"error", store.error().message}});
    return Exit::StoreRefused;
  }
  log.info("store.opened", {{"store", store_name(config.store)},
                            {"schema_version", store.value()->schema_version()}});

  asio::io_context io;
  const std::string token_path = config.hooks_token_file.empty()
                                     ? (fs::path(config.state_dir) / "hooks.token").string()
                                     : config.hooks_token_file;
  auto token = load_or_create_token(token_path);
  if (!token) {
    log.error("hooks.token_unusable", {{"path", token_path}, {"error", token.error().message}});
    return Exit::StateDir;
  }
  HooksServer hooks(io, *store.value(), log, token.value());
  auto hooks_port = hooks.start(config.hooks_host, config.hooks_port);
  if (!hooks_port) {
    log.error("hooks.listen_failed", {{"error", hooks_port.error().message}});
    return Exit::Failure;
  }
  if (!write_port_file(fs::path(config.state_dir) / "hooks.port", hooks_port.value(), log)) {
    return Exit::StateDir;
  }
  log.info("hooks.listening", {{"host", config.hooks_host}, {"port", hooks_port.value()}});

  BrokerLinkOptions lo;
  lo.host = config.broker_host;
  lo.port = config.broker_port;
  lo.client_id = config.broker_client_id;
  lo.username = config.broker_username;
  lo.password = token.value();
  lo.keep_alive_seconds = config.broker_keep_alive;
  lo.reconnect = backoff::Policy{Duration{config.reconnect_base_ms},
                                 Duration{config.reconnect_cap_ms}};
  BrokerLink link(io, lo, log);

  // Revocation on live connections: a kick is sent again after a reconnect only while the
  // certificate is still refused (the same decision the broker would get).
  Store& registry = *store.value();
  Revoker revoker(io, link, log, [&registry](const std::string& id) {
    auto refused = certificate_refused(registry, id);
    return !refused || refused.value();  // when the store cannot say, kicking is the safe side
  });
  link.on_state([&revoker](bool up) { revoker.on_link(up); });
  // Presence: the plugin publishes AWS's lifecycle events; fleetd logs them (the broker-neutral
  // equivalent of EMQX's webhooks). Only the plugin can publish there: devices are refused on
  // `$aws/events/...` unless a policy grants it, so the client id is taken from the topic and the
  // payload's fields are only reported, never trusted for a decision.
  link.subscribe("$aws/events/presence/+/+", mqtt::QoS::AtLeastOnce, [&log](const Message& m) {
    log_presence(log, m);
  });

  const std::string admin_token_path = config.admin_token_file.empty()
                                           ? (fs::path(config.state_dir) / "admin.token").string()
                                           : config.admin_token_file;
  auto admin_token = load_or_create_token(admin_token_path);
  if (!admin_token) {
    log.error("admin.token_unusable",
              {{"path", admin_token_path}, {"error", admin_token.error().message}});
    return Exit::StateDir;
  }
  if (admin_token.value() == token.value()) {
    // The broker holds the hooks token; it must not also open the registry to writes.
    log.error("admin.token_unusable",
              {{"path", admin_token_path}, {"error", "the admin token is the hooks token"}});
    return Exit::Usage;
  }
  AdminServer admin(io, registry, log, [&revoker](const std::string& id) { revoker.kick(id); });
  AdminOptions ao;
  ao.host = config.admin_host;
  ao.port = config.admin_port;
  ao.token = admin_token.value();
  ao.tls_cert = config.admin_tls_cert;
  ao.tls_key = config.admin_tls_key;
  auto admin_port = admin.start(ao);
  if (!admin_port) {
    log.error("admin.listen_failed", {{"error", admin_port.error().message}});
    return admin_port.error().code == Errc::InvalidArgument ? Exit::Usage : Exit::Failure;
  }
  if (!write_port_file(fs::path(config.state_dir) / "admin.port", admin_port.value(), log)) {
    return Exit::StateDir;
  }
  log.info("admin.listening", {{"host", config.admin_host},
                               {"port", admin_port.value()},
                               {"tls", !config.admin_tls_cert.empty()}});

  asio::signal_set signals(io, SIGTERM, SIGINT);
  bool stopping = false;
  signals.async_wait([&](const asio::error_code& e, int signo) {
    if (e) return;
    stopping = true;
    log.info("fleetd.stopping", {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"}});
    hooks.begin_stop();
    admin.begin_stop();
    link.shutdown([&] { io.stop(); });
  });

  link.start();
  log.info("fleetd.started", {{"state_dir", config.state_dir},
                              {"store", store_name(config.store)},
                              {"broker", config.broker_host + ":" + std::to_string(config.broker_port)}});
  io.run();
  hooks.stop();
  admin.stop();
  store.value().reset();
  log.info("fleetd.stopped", {{"clean", stopping}});
  return stopping ? Exit::Ok : Exit::Failure;
}

}  // namespace edgekit::fleetd
