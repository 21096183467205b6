// The OTA download endpoint (ota/http.hpp). Ranges are cut by cpp-httplib from the whole image
// (set_content): 206 with Content-Range for one range, multipart/byteranges for several, 416
// for a range it cannot satisfy.

#include "ota/http.hpp"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <charconv>
#include <chrono>

#include "http/common.hpp"
#include "edgekit/pki/keys.hpp"
#include "store/ota.hpp"

namespace edgekit::fleetd::ota {
namespace {

constexpr std::chrono::milliseconds kStoreTimeout{5000};

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string download_path(std::string_view name, std::string_view version) {
  return "/ota/v1/images/" + std::string(name) + "/" + std::string(version);
}

std::string url_signature(std::string_view secret, std::string_view name, std::string_view version,
                          std::int64_t expires) {
  const std::string data =
      std::string(name) + "\n" + std::string(version) + "\n" + std::to_string(expires);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len) == nullptr) {
    return {};
  }
  return pki::to_hex(std::span<const std::uint8_t>(out, len));
}

std::string presigned_url(std::string_view base_url, std::string_view secret, std::string_view name,
                          std::string_view version, std::int64_t expires) {
  return std::string(base_url) + download_path(name, version) + "?expires=" +
         std::to_string(expires) + "&signature=" + url_signature(secret, name, version, expires);
}

HttpServer::HttpServer(asio::io_context& io, Store& store, Logger& log)
    : io_(io), store_(store), log_(log) {}

HttpServer::~HttpServer() { stop(); }

std::shared_ptr<const std::string> HttpServer::bytes(const std::string& name,
                                                     const std::string& version, int& status) {
  const std::string key = name + "/" + version;
  {
    std::lock_guard lock(mutex_);
    if (cached_ && cached_key_ == key) return cached_;
  }
  auto image = http::run_on(io_, [store = &store_, name, version]() -> Res<OtaImage> {
    return store->transact([&](Tx& tx) { return get_image(tx, name, version, true); });
  }, kStoreTimeout);
  if (!image) {
    status = 503;
    return nullptr;
  }
  if (!*image) {
    status = image->error().code == Errc::NotFound ? 404 : 500;
    return nullptr;
  }
  auto shared = std::make_shared<const std::string>(std::move(image->value().bytes));
  std::lock_guard lock(mutex_);
  cached_key_ = key;
  cached_ = shared;
  return shared;
}

Res<std::uint16_t> HttpServer::start(const HttpOptions& o) {
  if (o.secret.empty()) return fail(Errc::InvalidArgument, "the OTA URL key is empty");
  if (o.tls_cert.empty() || o.tls_key.empty()) {
    return fail(Errc::InvalidArgument, "the OTA download endpoint needs a TLS certificate and key");
  }
  secret_ = o.secret;
  auto tls = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
  if (!tls->is_valid()) {
    return fail(Errc::InvalidArgument, "cannot load the OTA TLS certificate " + o.tls_cert +
                                           " or its key " + o.tls_key);
  }
  server_ = std::move(tls);
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(30, 0);
  // A device downloads by ranges on one kept connection; cpp-httplib's default of 5 requests
  // per connection made it do a TLS handshake every 5 ranges (docs/benchmarks.md, OTA). A kept
  // connection holds a worker thread while it lasts (up to the 5 s idle keep-alive timeout), so
  // the count is not unbounded either: after kKeepAliveRequests ranges the connection closes
  // and a device waiting for a thread gets its turn.
  constexpr std::size_t kKeepAliveRequests = 100;
  server_->set_keep_alive_max_count(kKeepAliveRequests);
  // A fixed pool (cpp-httplib's default is max(8, cores - 1)): connections beyond it wait.
  constexpr std::size_t kWorkerThreads = 16;
  server_->new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  server_->Get("/ota/v1/images/([^/]+)/([^/]+)", [this](const httplib::Request& req,
                                                        httplib::Response& res) {
    const std::string name = req.matches[1].str();
    const std::string version = req.matches[2].str();
    const std::string expires_text = req.get_param_value("expires");
    const std::string given = req.get_param_value("signature");
    std::int64_t expires = 0;
    const auto [end, ec] =
        std::from_chars(expires_text.data(), expires_text.data() + expires_text.size(), expires);
    if (ec != std::errc() || end != expires_text.data() + expires_text.size()) expires = 0;
    const std::string expected = url_signature(secret_, name, version, expires);
    const bool signed_ok = !expected.empty() && given.size() == expected.size() &&
                           CRYPTO_memcmp(given.data(), expected.data(), given.size()) == 0;
    if (!signed_ok || expires <= now_seconds()) {
      log_.warn("ota.http_refused", {{"image", name}, {"version", version},
                                     {"peer", req.remote_addr}, {"expired", signed_ok}});
      return http::reply_error(res, 403, "forbidden",
                               signed_ok ? "the URL has expired" : "the URL's signature is wrong");
    }
    int status = 200;
    auto file = bytes(name, version, status);
    if (!file) {
      return http::reply_error(res, status, status == 404 ? "not_found" : "unavailable",
                               status == 404 ? "no such image" : "the store did not answer");
    }
    // httplib applies the request's Range to the content (206 / 416).
    res.set_content(*file, "application/octet-stream");
  });
  auto bound = http::bind(*server_, o.host, o.port, "the OTA download endpoint");
  if (!bound) return bound;
  auto serving = http::serve(*server_, "the OTA download endpoint");
  if (!serving) return fail(serving.error());
  thread_ = std::move(serving.value());
  return bound;
}

void HttpServer::begin_stop() {
  if (server_) server_->stop();
}

void HttpServer::stop() {
  begin_stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace edgekit::fleetd::ota
