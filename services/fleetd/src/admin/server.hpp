#pragma once
/// \file
/// fleetd's admin API: HTTP JSON on loopback by default, optionally over TLS, every request
/// carrying `Authorization: Bearer <admin token>` (a secret of its own, not the hooks token: the
/// broker holds that one). Routes are listed in `AdminServer::routes()` and described in
/// services/fleetd/openapi.yaml (a test keeps the two equal). Errors are {"code","message"}
/// with 400 (bad input), 401, 404, 409 (conflict with the registry's state), 413 (body over
/// 64 KB; an OTA image upload may be up to kMaxUploadBody), 411 (a chunked body anywhere but an
/// upload), 503 (store busy or fleetd stopping), 500. Lists paginate with `?limit=&next=`.
///
/// Store work runs on the io_context thread that owns the store: handlers post it there and
/// wait (5 s, then 503). When a change refuses a certificate (REVOKED, INACTIVE, or its CA
/// INACTIVE) the `kick` callback runs on that thread after the commit, so that live connections
/// are dropped (revocation.hpp).
///
/// Thread safety: start/stop from the owning thread; handlers run on the server's threads.

#include <asio/io_context.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "edgekit/json/json.hpp"
#include "log.hpp"
#include "store/store.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace edgekit::fleetd {

namespace ca {
class Authority;
}
namespace shadow {
class ShadowService;
}
namespace jobs {
class JobsService;
}
namespace ota {
struct Settings;
}

struct AdminOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  ///< 0: any free port
  std::string token;
  /// Both set: HTTPS with this certificate and key (PEM files).
  std::string tls_cert;
  std::string tls_key;
};

class AdminServer {
 public:
  /// Called on the io thread with each certificate that a committed change refused.
  using Kick = std::function<void(const std::string& certificate_id)>;

  AdminServer(asio::io_context& io, Store& store, Logger& log, Kick kick);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  /// fleetd's own CA (owned by the caller, used on the io thread), or null: then the CA routes
  /// answer 404 "fleetd has no CA of its own". Call before start.
  void set_ca(ca::Authority* authority) { ca_ = authority; }
  /// fleetd's Jobs service (used on the io thread), or null: then the jobs routes answer 404.
  /// Call before start.
  void set_jobs(jobs::JobsService* jobs) { jobs_ = jobs; }

  /// Called on the io thread after a request that may have changed which CAs are registered
  /// and ACTIVE (register, activate, deactivate) succeeded: fleetd rewrites the broker's CA
  /// folder (ca/broker_trust.hpp). Call before start.
  void on_cas_changed(std::function<void()> f) { cas_changed_ = std::move(f); }

  /// The Device Shadow service (owned by the caller, used on the io thread), or null: then the
  /// shadow routes answer 404 "fleetd runs no shadow service". Call before start.
  void set_shadows(shadow::ShadowService* shadows) { shadows_ = shadows; }

  /// OTA's trust anchors and download URLs (owned by the caller), or null: then pre-signed
  /// images are refused and updates offer MQTT only. Call before start.
  void set_ota(const ota::Settings* settings) { ota_ = settings; }

  /// Binds and starts serving. Errors: InvalidArgument (empty token, unusable TLS files),
  /// Unavailable (address in use, bad address).
  [[nodiscard]] Res<std::uint16_t> start(const AdminOptions& options);
  /// Stops accepting (returns at once; any thread).
  void begin_stop();
  /// begin_stop, then joins the server thread. Idempotent.
  void stop();

  struct RouteInfo {
    std::string_view method;  ///< lower case, as OpenAPI writes it
    std::string_view path;    ///< OpenAPI form: /admin/v1/things/{thingName}
  };
  /// Every route the server registers.
  [[nodiscard]] static std::vector<RouteInfo> routes();

 private:
  using Handler = void (AdminServer::*)(const httplib::Request&, httplib::Response&);
  struct Route {
    const char* method;
    const char* path;
    Handler handler;
  };
  static const std::vector<Route>& table();

  // Things and groups.
  void create_thing(const httplib::Request&, httplib::Response&);
  void list_things(const httplib::Request&, httplib::Response&);
  void describe_thing(const httplib::Request&, httplib::Response&);
  void update_thing(const httplib::Request&, httplib::Response&);
  void delete_thing(const httplib::Request&, httplib::Response&);
  void attach_certificate(const httplib::Request&, httplib::Response&);
  void detach_certificate(const httplib::Request&, httplib::Response&);
  void create_group(const httplib::Request&, httplib::Response&);
  void list_groups(const httplib::Request&, httplib::Response&);
  void describe_group(const httplib::Request&, httplib::Response&);
  void list_group_things(const httplib::Request&, httplib::Response&);
  void add_to_group(const httplib::Request&, httplib::Response&);
  void remove_from_group(const httplib::Request&, httplib::Response&);
  // Certificates.
  void register_certificate(const httplib::Request&, httplib::Response&);
  void list_certificates(const httplib::Request&, httplib::Response&);
  void describe_certificate(const httplib::Request&, httplib::Response&);
  void delete_certificate(const httplib::Request&, httplib::Response&);
  void activate_certificate(const httplib::Request&, httplib::Response&);
  void deactivate_certificate(const httplib::Request&, httplib::Response&);
  void revoke_certificate(const httplib::Request&, httplib::Response&);
  void create_certificate_from_csr(const httplib::Request&, httplib::Response&);
  // fleetd's own CA.
  void describe_own_ca(const httplib::Request&, httplib::Response&);
  void get_crl(const httplib::Request&, httplib::Response&);
  // Policies.
  void create_policy(const httplib::Request&, httplib::Response&);
  void list_policies(const httplib::Request&, httplib::Response&);
  void get_policy(const httplib::Request&, httplib::Response&);
  void delete_policy(const httplib::Request&, httplib::Response&);
  void attach_policy(const httplib::Request&, httplib::Response&);
  void detach_policy(const httplib::Request&, httplib::Response&);
  // CAs.
  void register_ca(const httplib::Request&, httplib::Response&);
  void list_cas(const httplib::Request&, httplib::Response&);
  void describe_ca(const httplib::Request&, httplib::Response&);
  void update_ca(const httplib::Request&, httplib::Response&);
  void activate_ca(const httplib::Request&, httplib::Response&);
  void deactivate_ca(const httplib::Request&, httplib::Response&);
  // Provisioning templates.
  void create_template(const httplib::Request&, httplib::Response&);
  void validate_template(const httplib::Request&, httplib::Response&);
  void list_templates(const httplib::Request&, httplib::Response&);
  void describe_template(const httplib::Request&, httplib::Response&);
  void update_template(const httplib::Request&, httplib::Response&);
  void delete_template(const httplib::Request&, httplib::Response&);
  // Fleet provisioning by claim: a template's pre-provisioning hook, claim certificates limited
  // to one template's topics, the results of RegisterThing.
  void get_template_hook(const httplib::Request&, httplib::Response&);
  void set_template_hook(const httplib::Request&, httplib::Response&);
  void delete_template_hook(const httplib::Request&, httplib::Response&);
  void create_claim_certificate(const httplib::Request&, httplib::Response&);
  void list_provisioning_results(const httplib::Request&, httplib::Response&);
  // Device Shadow (admin/shadows.cpp): AWS's data-plane GetThingShadow / UpdateThingShadow /
  // DeleteThingShadow / ListNamedShadowsForThing, with `?name=` for a named shadow.
  void list_shadows(const httplib::Request&, httplib::Response&);
  void get_shadow(const httplib::Request&, httplib::Response&);
  void update_shadow(const httplib::Request&, httplib::Response&);
  void delete_shadow(const httplib::Request&, httplib::Response&);
  // Jobs (admin/jobs.cpp).
  void create_job(const httplib::Request&, httplib::Response&);
  void list_jobs(const httplib::Request&, httplib::Response&);
  void describe_job(const httplib::Request&, httplib::Response&);
  void list_job_executions(const httplib::Request&, httplib::Response&);
  void cancel_job(const httplib::Request&, httplib::Response&);
  void pause_job(const httplib::Request&, httplib::Response&);
  void resume_job(const httplib::Request&, httplib::Response&);
  void set_job_paused(const httplib::Request&, httplib::Response&, bool paused);
  /// A thing joined a group: its continuous jobs are queued for it (on the io thread).
  void thing_joined_group(std::string group, std::string thing);
  /// A thing left a group: its executions of continuous jobs that no longer target it are
  /// REMOVED (on the io thread).
  void thing_left_group(std::string group, std::string thing);
  void membership_changed(std::string group, std::string thing, bool joined);
  // OTA (admin/ota.cpp): images (upload, sign), streams, updates (an AFR_OTA job).
  void upload_image(const httplib::Request&, httplib::Response&);
  void list_images(const httplib::Request&, httplib::Response&);
  void describe_image(const httplib::Request&, httplib::Response&);
  void sign_image(const httplib::Request&, httplib::Response&);
  void create_stream(const httplib::Request&, httplib::Response&);
  void list_streams(const httplib::Request&, httplib::Response&);
  void describe_stream(const httplib::Request&, httplib::Response&);
  void create_update(const httplib::Request&, httplib::Response&);
  void describe_update(const httplib::Request&, httplib::Response&);

  /// Runs `f(Tx&, kicks)` in one transaction on the io thread; answers `ok_status` with the JSON
  /// it returns (204: no body) or the error; then kicks the certificates it listed.
  template <class F>
  void run(httplib::Response& res, int ok_status, F f);
  /// Answers with the outcome of io-thread work: 503 when it did not run in time, the error's
  /// status, or `ok_status` with the JSON (204: no body).
  void answer(httplib::Response& res, int ok_status, const std::optional<Res<nlohmann::json>>& out);

  void set_certificate_status(const httplib::Request&, httplib::Response&, CertificateStatus s);
  void set_ca_status(const httplib::Request&, httplib::Response&, CaStatus s);
  void cas_changed(const httplib::Response& res);

  asio::io_context& io_;
  Store& store_;
  Logger& log_;
  Kick kick_;
  std::function<void()> cas_changed_;
  ca::Authority* ca_ = nullptr;
  shadow::ShadowService* shadows_ = nullptr;
  jobs::JobsService* jobs_ = nullptr;
  const ota::Settings* ota_ = nullptr;
  std::string token_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace edgekit::fleetd
