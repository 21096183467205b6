#include "service.hpp"

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string_view>

#include "admin/server.hpp"
#include "ca/authority.hpp"
#include "ca/broker_trust.hpp"
#include "broker_link.hpp"
#include "edgekit/json/json.hpp"
#include "hooks/decisions.hpp"
#include "hooks/server.hpp"
#include "jobs/service.hpp"
#include "ota/http.hpp"
#include "ota/streams.hpp"
#include "plugin_logic.hpp"
#include "provisioning/claim.hpp"
#include "revocation.hpp"
#include "shadow/service.hpp"
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

// A user property the plugin stamped on a device's request ("" when absent).
std::string_view stamp(const Message& m, std::string_view key) {
  for (auto up : m.publish->properties.user_properties) {
    if (up.key == key) return up.value;
  }
  return {};
}

const char* store_name(Config::StoreKind k) {
  return k == Config::StoreKind::Sqlite ? "sqlite" : "postgres";
}

std::int64_t epoch_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// fleetd's own CA, when configured: created (--init-ca, --ca-create-if-missing) or opened and
// checked, registered in the store, its CRL re-issued. Null with `exit` set when fleetd must
// not start; null without when no CA is configured.
std::unique_ptr<ca::Authority> open_ca(const Config& config, Store& store, Logger& log,
                                       std::optional<Exit>& exit) {
  const bool in_state = ca::exists(config.state_dir);
  if (config.ca_pin_file.empty()) {
    if (in_state) {
      // Running on without it would quietly stop issuing and publishing CRLs.
      log.error("ca.refused", {{"problem", "unconfigured"},
                               {"error", "the state folder holds a CA (ca/ca.json) but no "
                                         "--ca-pin-file was given"}});
      exit = Exit::CaRefused;
    }
    return nullptr;
  }
  std::string module = config.ca_module;
  if (module.find('/') == std::string::npos) {
    // edgekit's module by its bare name: the copy beside fleetd (a build tree, a bundle) wins
    // over the dynamic loader's search path (an installed system).
    std::error_code e;
    const fs::path beside = fs::read_symlink("/proc/self/exe", e).parent_path() / module;
    if (!e && fs::exists(beside)) module = beside.string();
  }
  const ca::TokenConfig token{module, config.ca_token_label, config.ca_pin_file,
                              config.ca_token_dir};
  const bool create = config.init_ca || (config.ca_create_if_missing && !in_state);
  auto opened = create ? ca::Authority::create(token, config.state_dir, epoch_now())
                       : ca::Authority::open(token, config.state_dir, epoch_now());
  if (!opened) {
    const ca::Problem p = opened.error().problem;
    log.error("ca.refused", {{"problem", p == ca::Problem::Missing  ? "missing"
                                         : p == ca::Problem::Exists ? "exists"
                                                                    : "unusable"},
                             {"error", opened.error().message}});
    exit = Exit::CaRefused;
    return nullptr;
  }
  std::unique_ptr<ca::Authority> authority = std::move(opened.value());
  if (auto r = store.transact([&](Tx& tx) { return authority->register_in(tx); }); !r) {
    log.error("ca.refused", {{"problem", "store"}, {"error", r.error().message}});
    exit = Exit::CaRefused;
    return nullptr;
  }
  if (auto crl = ca::refresh_crl(*authority, store); !crl) {
    log.error("ca.refused", {{"problem", "crl"}, {"error", crl.error().message}});
    exit = Exit::CaRefused;
    return nullptr;
  }
  log.info(create ? "ca.created" : "ca.opened",
           {{"root_id", authority->root().id},
            {"issuing_id", authority->issuing().id},
            {"dir", ca::ca_dir(config.state_dir)},
            {"token", config.ca_token_label}});
  if (config.init_ca) exit = Exit::Ok;
  return authority;
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

  std::optional<Exit> ca_exit;
  std::unique_ptr<ca::Authority> authority = open_ca(config, *store.value(), log, ca_exit);
  if (ca_exit) return *ca_exit;

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
  lo.max_queued = config.broker_max_queued;
  lo.receive_maximum = config.broker_receive_maximum;
  lo.reconnect = backoff::Policy{Duration{config.reconnect_base_ms},
                                 Duration{config.reconnect_cap_ms}};
  BrokerLink link(io, lo, log);
  // Group commit (broker_link.hpp): the device requests of one read of the link share one
  // store transaction, and their replies and PUBACKs wait for its commit.
  Store& registry = *store.value();
  batch_in(link, registry);

  // Revocation on live connections: a kick is sent again after a reconnect only while the
  // certificate is still refused (the same decision the broker would get).
  Revoker revoker(io, link, log, [&registry](const std::string& id) {
    auto refused = certificate_refused(registry, id);
    return !refused || refused.value();  // when the store cannot say, kicking is the safe side
  });
  link.on_state([&revoker](bool up) { revoker.on_link(up); });
  // A revocation committed just before a crash may never have reached the broker (pending kicks
  // live only in memory): assert every refusal again before anything else goes out.
  if (auto refused = refused_certificates(registry); refused) {
    revoker.kick_at_start(std::move(refused.value()));
  } else {
    log.error("revocation.unreadable", {{"error", refused.error().message}});
    return Exit::StoreRefused;
  }
  // Just-in-time registration: the decision runs on this io thread (the hooks server posts it
  // here), so the link may be used; the publish is posted once more so that the broker gets its
  // answer before the event goes out.
  hooks.on_registration([&io, &link, &log](const provisioning::RegistrationEvent& e) {
    asio::post(io, [&link, &log, e] {
      const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
      const std::string payload = provisioning::registration_json(e, now_ms);
      auto sent = link.publish(provisioning::registration_topic(e), mqtt::as_bytes(payload),
                               mqtt::QoS::AtLeastOnce);
      log.log(sent ? LogLevel::Info : LogLevel::Warn,
              sent ? "jit.event_published" : "jit.event_unsent",
              {{"certificate_id", e.certificate_id},
               {"ca_id", e.ca_certificate_id},
               {"status", to_string(e.status)},
               {"error", sent ? "" : mqtt::to_string(sent.error())}});
    });
  });
  // The broker's trust in registered CAs (its device listener's `capath`): written now and
  // after every change of the registered CAs.
  const std::string trust_dir = (fs::path(config.state_dir) / ca::kBrokerTrustDir).string();
  auto write_trust = [&registry, &log, trust_dir] {
    auto n = ca::write_broker_trust(registry, trust_dir);
    if (!n) {
      log.error("ca.broker_trust_failed", {{"dir", trust_dir}, {"error", n.error().message}});
    } else {
      log.info("ca.broker_trust_written",
               {{"dir", trust_dir}, {"cas", static_cast<std::int64_t>(n.value())}});
    }
    return static_cast<bool>(n);
  };
  if (!write_trust()) return Exit::StateDir;

  // Presence: the plugin publishes AWS's lifecycle events; fleetd logs them (the broker-neutral
  // equivalent of EMQX's webhooks). Only the plugin can publish there: devices are refused on
  // `$aws/events/...` unless a policy grants it, so the client id is taken from the topic and the
  // payload's fields are only reported, never trusted for a decision.
  link.subscribe("$aws/events/presence/+/+", mqtt::QoS::AtLeastOnce, [&log](const Message& m) {
    log_presence(log, m);
  });

  // Fleet provisioning by claim. Its token secret stays in the state folder (several fleetd
  // instances on one PostgreSQL store must share this file to accept each other's tokens).
  auto claim_secret = load_or_create_token((fs::path(config.state_dir) / "claim-token.key").string());
  if (!claim_secret) {
    log.error("claim.secret_unusable", {{"error", claim_secret.error().message}});
    return Exit::StateDir;
  }
  provisioning::ClaimService claims(
      io, registry, authority.get(), std::move(claim_secret.value()), log,
      [&link, &log](const std::string& topic, const std::string& payload,
                    std::string_view client_id) {
        // Private: the plugin delivers it to `client_id` alone (it may carry a private key).
        const std::array<mqtt::UserProperty, 1> to{
            mqtt::UserProperty{plugin::kReplyToProperty, client_id}};
        if (auto r = link.publish(topic, mqtt::as_bytes(payload), mqtt::QoS::AtLeastOnce, to); !r) {
          log.warn("claim.reply_failed",
                   {{"topic", topic}, {"client_id", client_id}, {"error", mqtt::to_string(r.error())}});
        }
      },
      &provisioning::run_template);
  for (std::string_view filter : {provisioning::kCreateFilter, provisioning::kCreateFromCsrFilter,
                                  provisioning::kProvisionFilter}) {
    link.subscribe(std::string(filter), mqtt::QoS::AtLeastOnce, [&claims](const Message& m) {
      provisioning::ClaimRequest rq;
      rq.topic = m.topic;
      rq.payload = mqtt::as_string(m.payload);
      rq.client_id = stamp(m, plugin::kClientIdProperty);
      rq.certificate_id = stamp(m, plugin::kCertificateIdProperty);
      claims.handle(rq);
    });
  }
  // Device Shadow: replies are ordinary publishes (any authorized subscriber sees them, as on
  // AWS); who may send a request for a thing is the broker's policy decision. No `Defer` of its
  // own: each request is decided as it arrives, inside the link's batch (group commit above),
  // so that its PUBACK, not only its reply, waits for the commit (a deferred decision ran after
  // the PUBACK had gone).
  shadow::ShadowService shadows(
      registry, log,
      [&link, &log](const std::string& topic, const std::string& payload) {
        if (auto r = link.publish(topic, mqtt::as_bytes(payload), mqtt::QoS::AtLeastOnce); !r) {
          log.warn("shadow.reply_failed", {{"topic", topic}, {"error", mqtt::to_string(r.error())}});
        }
      },
      shadow::ShadowOptions{});
  for (std::string_view filter : shadow::kRequestFilters) {
    link.subscribe(std::string(filter), mqtt::QoS::AtLeastOnce, [&shadows](const Message& m) {
      shadows.handle(m.topic, mqtt::as_string(m.payload));
    });
  }

  // Jobs (jobs/service.hpp): replies private to the requester, notify and notify-next to
  // every subscriber of the thing's topics.
  jobs::JobsService jobs_service(
      registry, log,
      [&link, &log](const std::string& topic, const std::string& payload,
                    std::string_view client_id) {
        const std::array<mqtt::UserProperty, 1> to{
            mqtt::UserProperty{plugin::kReplyToProperty, client_id}};
        auto r = link.publish(topic, mqtt::as_bytes(payload), mqtt::QoS::AtLeastOnce,
                              client_id.empty() ? std::span<const mqtt::UserProperty>{}
                                                : std::span<const mqtt::UserProperty>(to));
        if (!r) {
          log.warn("jobs.publish_failed",
                   {{"topic", topic}, {"client_id", client_id}, {"error", mqtt::to_string(r.error())}});
        }
      },
      jobs::JobsOptions{config.jobs_minute_seconds});
  for (std::string_view filter : {jobs::kGetPendingFilter, jobs::kStartNextFilter,
                                  jobs::kDescribeFilter, jobs::kUpdateFilter}) {
    link.subscribe(std::string(filter), mqtt::QoS::AtLeastOnce, [&jobs_service](const Message& m) {
      jobs_service.handle({m.topic, mqtt::as_string(m.payload), stamp(m, plugin::kClientIdProperty)});
    });
  }
  // OTA streams (ota/streams.hpp): every reply private to the requester, so that a stream's
  // blocks never fan out to other devices.
  ota::StreamsService streams(registry, log, [&link, &log](const std::string& topic,
                                                           const std::string& payload,
                                                           std::string_view client_id) {
    const std::array<mqtt::UserProperty, 1> to{mqtt::UserProperty{plugin::kReplyToProperty, client_id}};
    if (auto r = link.publish(topic, mqtt::as_bytes(payload), mqtt::QoS::AtLeastOnce, to); !r) {
      log.warn("ota.reply_failed",
               {{"topic", topic}, {"client_id", client_id}, {"error", mqtt::to_string(r.error())}});
    }
  });
  for (std::string_view filter : {ota::kGetFilter, ota::kDescribeFilter}) {
    link.subscribe(std::string(filter), mqtt::QoS::AtLeastOnce, [&streams](const Message& m) {
      streams.handle({m.topic, mqtt::as_string(m.payload), stamp(m, plugin::kClientIdProperty),
                      stamp(m, plugin::kThingNameProperty)});
    });
  }
  // Certificates whose ownership token expired unused are removed: at start (tokens that
  // expired while fleetd was down) and every minute.
  asio::steady_timer sweep_timer(io);
  std::function<void()> sweep = [&] {
    if (auto r = claims.sweep(); !r) log.error("claim.sweep_failed", {{"error", r.error().message}});
    sweep_timer.expires_after(std::chrono::minutes(1));
    sweep_timer.async_wait([&](const asio::error_code& e) {
      if (!e) sweep();
    });
  };
  sweep();
  // The Jobs timers and rollouts (their state is in the store: a restart resumes them).
  asio::steady_timer jobs_timer(io);
  std::function<void()> jobs_tick = [&] {
    if (auto r = jobs_service.tick(); !r) log.error("jobs.tick_failed", {{"error", r.error().message}});
    jobs_timer.expires_after(std::chrono::milliseconds(500));
    jobs_timer.async_wait([&](const asio::error_code& e) {
      if (!e) jobs_tick();
    });
  };
  jobs_tick();

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
  // OTA: the trust anchors of pre-signed images' signers, and the download endpoint.
  ota::Settings ota_settings;
  if (authority) ota_settings.anchors = {authority->root(), authority->issuing()};
  if (!config.ota_signer_ca.empty()) {
    std::ifstream in(config.ota_signer_ca);
    std::stringstream text;
    text << in.rdbuf();
    auto cas = pki::parse_certificates(text.str());
    if (!in || !cas) {
      log.error("ota.signer_ca_unusable", {{"path", config.ota_signer_ca},
                                           {"error", cas ? "unreadable" : cas.error().message}});
      return Exit::Usage;
    }
    for (auto& c : *cas) ota_settings.anchors.push_back(std::move(c));
  }
  ota::HttpServer ota_http(io, registry, log);
  if (!config.ota_http_tls_cert.empty()) {
    auto secret = load_or_create_token((fs::path(config.state_dir) / "ota-url.key").string());
    if (!secret) {
      log.error("ota.url_key_unusable", {{"error", secret.error().message}});
      return Exit::StateDir;
    }
    ota::HttpOptions ho;
    ho.host = config.ota_http_host;
    ho.port = config.ota_http_port;
    ho.tls_cert = config.ota_http_tls_cert;
    ho.tls_key = config.ota_http_tls_key;
    ho.secret = secret.value();
    auto port = ota_http.start(ho);
    if (!port) {
      log.error("ota.http_listen_failed", {{"error", port.error().message}});
      return port.error().code == Errc::InvalidArgument ? Exit::Usage : Exit::Failure;
    }
    if (!write_port_file(fs::path(config.state_dir) / "ota-http.port", port.value(), log)) {
      return Exit::StateDir;
    }
    ota_settings.url_secret = secret.value();
    ota_settings.http_base_url = config.ota_http_url.empty()
                                     ? "https://" + config.ota_http_host + ":" +
                                           std::to_string(port.value())
                                     : config.ota_http_url;
    log.info("ota.http_listening", {{"host", config.ota_http_host},
                                    {"port", port.value()},
                                    {"url", ota_settings.http_base_url}});
  }

  AdminServer admin(io, registry, log, [&revoker](const std::string& id) { revoker.kick(id); });
  admin.set_ota(&ota_settings);
  admin.set_ca(authority.get());
  admin.set_jobs(&jobs_service);
  admin.on_cas_changed([&write_trust] { (void)write_trust(); });
  admin.set_shadows(&shadows);

  // The CRL is valid for a week; re-issued daily so that relying parties never hold an expired
  // one while fleetd runs (revocations re-issue it at once).
  asio::steady_timer crl_timer(io);
  std::function<void()> schedule_crl = [&] {
    crl_timer.expires_after(std::chrono::hours(24));
    crl_timer.async_wait([&](const asio::error_code& e) {
      if (e) return;
      if (auto crl = ca::refresh_crl(*authority, registry); !crl) {
        log.error("ca.crl_failed", {{"error", crl.error().message}});
      } else {
        log.info("ca.crl_published", {{"revoked", static_cast<std::int64_t>(crl.value().revoked.size())}});
      }
      schedule_crl();
    });
  };
  if (authority) schedule_crl();
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
    ota_http.begin_stop();
    crl_timer.cancel();
    sweep_timer.cancel();
    jobs_timer.cancel();
    link.shutdown([&] { io.stop(); });
  });

  link.start();
  log.info("fleetd.started", {{"state_dir", config.state_dir},
                              {"store", store_name(config.store)},
                              {"broker", config.broker_host + ":" + std::to_string(config.broker_port)}});
  io.run();
  hooks.stop();
  admin.stop();
  ota_http.stop();
  store.value().reset();
  // Group commit's effect, for an operator or a benchmark reading the log.
  log.info("fleetd.stopped", {{"clean", stopping},
                              {"batches", static_cast<std::int64_t>(link.batches())},
                              {"peak_batch", static_cast<std::int64_t>(link.peak_batch())}});
  return stopping ? Exit::Ok : Exit::Failure;
}

}  // namespace edgekit::fleetd
