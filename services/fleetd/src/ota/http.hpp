#pragma once
/// \file
/// The device-facing HTTPS endpoint of OTA images (the `HTTP` protocol of the AFR_OTA job
/// document, aws-iot-protocols.md 2.6): `GET /ota/v1/images/{name}/{version}` serves the image's
/// bytes, whole (200) or the `Range: bytes=a-b` asked (206; 416 for a range outside the image),
/// so that a device resumes a cut download where it stopped.
///
/// Authorization is the URL itself, as S3's presigned URLs (`auth_scheme` "aws.s3.presigned" in
/// the job document, which AWS's OTA agents pass through without adding credentials): the
/// query carries `expires` (epoch seconds) and `signature`, the lower-case hex HMAC-SHA256 under
/// fleetd's URL key (<state>/ota-url.key) of "<name>\n<version>\n<expires>". Past `expires`, or
/// with a wrong signature: 403. The device needs no client certificate here (a device that can
/// read its job document was already admitted by the broker's mutual TLS), and the URL names one
/// image only. Like AWS's, the URL is written into the job document when the update is created,
/// so its validity must cover the rollout (CreateOTAUpdate's `urlExpiresInSeconds`).
///
/// Thread safety: start/stop from the owning thread; requests run on the server's threads and
/// read the store on the io thread (http::run_on).

#include <asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "edgekit/pki/certificate.hpp"

#include "log.hpp"
#include "store/store.hpp"

namespace httplib {
class Server;
}

namespace edgekit::fleetd::ota {

/// The path of an image on the endpoint.
[[nodiscard]] std::string download_path(std::string_view name, std::string_view version);
/// The signature of a download URL (see the file comment).
[[nodiscard]] std::string url_signature(std::string_view secret, std::string_view name,
                                        std::string_view version, std::int64_t expires);
/// `base_url` + path + "?expires=…&signature=…".
[[nodiscard]] std::string presigned_url(std::string_view base_url, std::string_view secret,
                                        std::string_view name, std::string_view version,
                                        std::int64_t expires);

/// What the admin API needs of OTA beyond the store: the trust anchors of pre-signed images
/// signers and how to write download URLs into update documents.
struct Settings {
  /// Certificates a pre-signed image's signer must chain to (fleetd's own CA, when it runs
  /// one, and the --ota-signer-ca file).
  std::vector<pki::CertificateInfo> anchors;
  /// The endpoint's base URL as devices reach it ("https://host:port"); empty: the endpoint is
  /// off and updates offer MQTT only.
  std::string http_base_url;
  std::string url_secret;
};

struct HttpOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  ///< 0: any free port
  std::string tls_cert;    ///< PEM; required (devices fetch firmware over TLS only)
  std::string tls_key;
  std::string secret;      ///< the URL key
};

class HttpServer {
 public:
  HttpServer(asio::io_context& io, Store& store, Logger& log);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds and serves. Errors: InvalidArgument (no secret, unusable TLS files), Unavailable.
  [[nodiscard]] Res<std::uint16_t> start(const HttpOptions& options);
  void begin_stop();
  void stop();

 private:
  /// The image's bytes (the last one read is kept: a device's range requests ask for the same
  /// image one after the other); nullptr with the HTTP `status` to answer (404 no such image,
  /// 503 the store did not answer in time, 500 it failed).
  std::shared_ptr<const std::string> bytes(const std::string& name, const std::string& version,
                                           int& status);

  asio::io_context& io_;
  Store& store_;
  Logger& log_;
  std::string secret_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::mutex mutex_;
  std::string cached_key_;
  std::shared_ptr<const std::string> cached_;
};

}  // namespace edgekit::fleetd::ota
