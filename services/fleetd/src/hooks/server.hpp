#pragma once
/// \file
/// The decision interface over HTTP (loopback by default): POST /hooks/v1/authenticate and
/// POST /hooks/v1/authorize, JSON in and out (wire.hpp), each request carrying
/// `Authorization: Bearer <token>` (the token file is shared with the broker plugin; a wrong or
/// missing token is 401 and logged). Decisions read the store on the io_context thread that owns
/// it: the HTTP threads post the work there and wait (up to 3 s, then 503, which the plugin
/// treats as deny — fleetd never fails open).
///
/// Thread safety: start/stop from the owning thread; the handlers run on the server's threads.

#include <asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "hooks/decisions.hpp"
#include "http/common.hpp"
#include "log.hpp"
#include "store/store.hpp"

namespace httplib {
class Server;
}

namespace edgekit::fleetd {

class HooksServer {
 public:
  HooksServer(asio::io_context& io, Store& store, Logger& log, std::string token);
  ~HooksServer();
  HooksServer(const HooksServer&) = delete;
  HooksServer& operator=(const HooksServer&) = delete;

  /// Where registration events of just-in-time registration go (decisions.hpp); called on the
  /// io thread. Set it before that thread runs (it is read there, not on the HTTP threads).
  void on_registration(RegistrationSink sink) { events_ = std::move(sink); }

  /// Binds `host:port` (0: any free port) and starts serving. Errors: Unavailable with the
  /// reason (address in use, bad address).
  [[nodiscard]] Res<std::uint16_t> start(const std::string& host, std::uint16_t port);
  /// Stops accepting new connections (returns at once; call from any thread).
  void begin_stop();
  /// begin_stop, then waits for the requests in flight and joins the thread. Idempotent. A
  /// request waiting for the io thread when that thread has stopped gets 503 after 3 s.
  void stop();

 private:
  asio::io_context& io_;
  Store& store_;
  Logger& log_;
  std::string token_;
  RegistrationSink events_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace edgekit::fleetd
