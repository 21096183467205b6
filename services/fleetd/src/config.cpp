#include "config.hpp"

#include <CLI/CLI.hpp>

#include <map>

namespace edgekit::fleetd {

ConfigOutcome parse_config(int argc, const char* const* argv) {
  Config c;
  CLI::App app{
      "fleetd: the local fleet service of edgekit. It keeps the registry of things and "
      "certificates and answers the devices' AWS IoT requests through a Mosquitto broker.\n"
      "Every option may also be given in the file named by --config (key = value per line)."};
  app.set_config("--config", "", "Read options from this file (flags given too win)");
  app.allow_config_extras(false);  // an unknown key in the file is an error, not ignored
  app.footer(
      "Exit codes: 0 stopped by SIGTERM/SIGINT (or --init-ca done); 1 failed while running; 2 bad "
      "flags or configuration; 3 the store refused (locked, corrupt, too new, unreachable); 4 the "
      "state folder cannot be created or written; 5 the configured CA is missing or unusable "
      "(the log line ca.refused says why). See docs/fleetd.md.");
  app.get_formatter()->column_width(34);

  app.add_option("--state-dir", c.state_dir,
                 "Folder for fleetd's state: the SQLite store fleetd.db (created if missing), "
                 "the CA's certificates and CRL in ca/; one fleetd per folder")
      ->required();
  std::map<std::string, Config::StoreKind> stores{{"sqlite", Config::StoreKind::Sqlite},
                                                   {"postgres", Config::StoreKind::Postgres}};
  app.add_option("--store", c.store,
                 "Where the registry lives: sqlite (a file in --state-dir) or postgres "
                 "(--postgres)")
      ->transform(CLI::CheckedTransformer(stores, CLI::ignore_case).description(""))
      ->type_name("sqlite|postgres")
      ->default_str("sqlite");
  app.add_option("--postgres", c.postgres,
                 "libpq connection string for --store postgres, e.g. \"host=db port=5432 "
                 "dbname=fleetd user=fleetd\"");
  app.add_option("--broker-host", c.broker_host, "Broker address for fleetd's own MQTT link")
      ->capture_default_str();
  app.add_option("--broker-port", c.broker_port, "Broker port for fleetd's own MQTT link")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535).description(""))
      ->type_name("PORT");
  app.add_option("--broker-client-id", c.broker_client_id, "Client id of fleetd's MQTT link")
      ->capture_default_str();
  app.add_option("--broker-username", c.broker_username,
                 "User name of the link; the password sent is the hooks token, which the "
                 "plugin checks (empty: send none, for a broker without the plugin)")
      ->capture_default_str();
  app.add_option("--broker-keep-alive", c.broker_keep_alive,
                 "MQTT keep-alive of the link, seconds (0: none)")
      ->capture_default_str();
  app.add_option("--broker-max-queued", c.broker_max_queued,
                 "Backpressure: while more replies than this wait to reach the broker, fleetd "
                 "stops acknowledging requests (the broker keeps them queued) until half are out")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1'000'000u).description(""))
      ->type_name("N");
  app.add_option("--broker-receive-maximum", c.broker_receive_maximum,
                 "MQTT 5 Receive Maximum of the link: requests the broker may send fleetd "
                 "unacknowledged (at most 64)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64).description(""))
      ->type_name("N");
  app.add_option("--reconnect-base-ms", c.reconnect_base_ms,
                 "First reconnect window after the broker link drops, ms (doubles per attempt, "
                 "full jitter)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3'600'000u).description(""))
      ->type_name("MS");
  app.add_option("--jobs-minute-seconds", c.jobs_minute_seconds,
                 "Length of a Jobs minute, seconds (the unit of job timeouts and rollout rates); "
                 "shorter only in tests and demos")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{60}).description(""))
      ->type_name("S");
  app.add_option("--reconnect-cap-ms", c.reconnect_cap_ms, "Largest reconnect window, ms")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3'600'000u).description(""))
      ->type_name("MS");
  app.add_option("--hooks-host", c.hooks_host,
                 "Address of the decision interface the broker plugin asks (HTTP; keep it on "
                 "loopback or a private network)")
      ->capture_default_str();
  app.add_option("--hooks-port", c.hooks_port,
                 "Port of the decision interface; 0 picks a free one and writes it to "
                 "<state-dir>/hooks.port")
      ->capture_default_str()
      ->type_name("PORT");
  app.add_option("--hooks-token-file", c.hooks_token_file,
                 "Bearer token the plugin must present (mode 600); default "
                 "<state-dir>/hooks.token, created if missing");
  app.add_option("--admin-host", c.admin_host,
                 "Address of the admin API (HTTP JSON, bearer token; keep it on loopback, or use "
                 "--admin-tls-cert/--admin-tls-key beyond)")
      ->capture_default_str();
  app.add_option("--admin-port", c.admin_port,
                 "Port of the admin API; 0 picks a free one and writes it to "
                 "<state-dir>/admin.port")
      ->capture_default_str()
      ->type_name("PORT");
  app.add_option("--admin-token-file", c.admin_token_file,
                 "Bearer token admin callers must present (mode 600, not the hooks token); "
                 "default <state-dir>/admin.token, created if missing");
  app.add_option("--admin-tls-cert", c.admin_tls_cert,
                 "Certificate (PEM) for HTTPS on the admin API; needs --admin-tls-key");
  app.add_option("--admin-tls-key", c.admin_tls_key,
                 "Private key (PEM) of --admin-tls-cert");
  app.add_option("--ota-signer-ca", c.ota_signer_ca,
                 "PEM bundle of the CAs that pre-signed OTA images' signers must chain to "
                 "(fleetd's own CA is trusted too)");
  app.add_option("--ota-http-host", c.ota_http_host,
                 "Address of the OTA image download endpoint (HTTPS, presigned URLs)")
      ->capture_default_str();
  app.add_option("--ota-http-port", c.ota_http_port,
                 "Port of the OTA download endpoint; 0 picks a free one and writes it to "
                 "<state-dir>/ota-http.port")
      ->capture_default_str()
      ->type_name("PORT");
  app.add_option("--ota-http-tls-cert", c.ota_http_tls_cert,
                 "Certificate (PEM) of the OTA download endpoint; with --ota-http-tls-key it runs, "
                 "and updates may offer HTTP");
  app.add_option("--ota-http-tls-key", c.ota_http_tls_key,
                 "Private key (PEM) of --ota-http-tls-cert");
  app.add_option("--ota-http-url", c.ota_http_url,
                 "Base URL devices reach the OTA download endpoint at (default "
                 "https://<ota-http-host>:<port>)");
  app.add_option("--ca-pin-file", c.ca_pin_file,
                 "Run fleetd's own CA (root + issuing CA, keys in a PKCS#11 token): the token's "
                 "user PIN is in this file, which group and others must not be able to read. "
                 "Without it fleetd has no CA of its own");
  app.add_option("--ca-module", c.ca_module,
                 "PKCS#11 module holding the CA's keys (default: edgekit's own, the copy beside "
                 "fleetd if there is one, else found by the dynamic loader)")
      ->capture_default_str();
  app.add_option("--ca-token-label", c.ca_token_label,
                 "Label of the token holding the CA's keys; initialise it first (edgekit token "
                 "init --label fleetd-ca)")
      ->capture_default_str();
  app.add_option("--ca-token-dir", c.ca_token_dir,
                 "For edgekit's own module: the folder of its tokens (sets EDGEKIT_TOKEN_DIR; "
                 "default: the module's own default)");
  app.add_flag("--init-ca", c.init_ca,
               "Create the CA (two P-256 keys generated in the token, certificates in "
               "<state-dir>/ca), register it in the store, and exit: 0 done, 5 refused (a CA "
               "exists already, or the token cannot be used)");
  app.add_flag("--ca-create-if-missing", c.ca_create_if_missing,
               "At start, create the CA when <state-dir> has none, then run (otherwise a "
               "missing CA stops fleetd with exit code 5)");
  std::map<std::string, LogFormat> formats{{"json", LogFormat::Json}, {"text", LogFormat::Text}};
  app.add_option("--log-format", c.log_format, "Log records as json lines or key=value text")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case).description(""))
      ->type_name("json|text")
      ->default_str("json");
  std::map<std::string, LogLevel> levels{{"debug", LogLevel::Debug},
                                         {"info", LogLevel::Info},
                                         {"warn", LogLevel::Warn},
                                         {"error", LogLevel::Error}};
  app.add_option("--log-level", c.log_level, "Least severe level logged")
      ->transform(CLI::CheckedTransformer(levels, CLI::ignore_case).description(""))
      ->type_name("debug|info|warn|error")
      ->default_str("info");

  ConfigOutcome out;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out.message = app.help();
    return out;
  } catch (const CLI::ParseError& e) {
    out.exit_code = 2;
    out.message = std::string("fleetd: ") + e.what() + "\nRun fleetd --help for the options.";
    return out;
  }
  if (c.store == Config::StoreKind::Postgres && c.postgres.empty()) {
    out.exit_code = 2;
    out.message = "fleetd: --store postgres needs --postgres (a libpq connection string)";
    return out;
  }
  if (c.reconnect_cap_ms < c.reconnect_base_ms) {
    out.exit_code = 2;
    out.message = "fleetd: --reconnect-cap-ms must be at least --reconnect-base-ms";
    return out;
  }
  if ((c.init_ca || c.ca_create_if_missing) && c.ca_pin_file.empty()) {
    out.exit_code = 2;
    out.message = "fleetd: --init-ca and --ca-create-if-missing need --ca-pin-file";
    return out;
  }
  if (c.admin_tls_cert.empty() != c.admin_tls_key.empty()) {
    out.exit_code = 2;
    out.message = "fleetd: --admin-tls-cert and --admin-tls-key go together";
    return out;
  }
  if (c.ota_http_tls_cert.empty() != c.ota_http_tls_key.empty()) {
    out.exit_code = 2;
    out.message = "fleetd: --ota-http-tls-cert and --ota-http-tls-key go together";
    return out;
  }
  out.config = std::move(c);
  return out;
}

}  // namespace edgekit::fleetd
