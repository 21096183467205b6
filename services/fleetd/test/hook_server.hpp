#pragma once
/// \file
/// A pre-provisioning hook over HTTP for tests: an httplib server on a free loopback port whose
/// POST routes answer as the test says, stopped when it goes out of scope.
/// Thread safety: handlers run on the server's thread; register them before `start`.

#include <httplib.h>

#include <chrono>
#include <string>
#include <thread>

namespace edgekit::fleetd::test {

class HookServer {
 public:
  /// Answers POST `path` with `answer` (200, JSON) and keeps the last body it received.
  void answer(const std::string& path, std::string answer) {
    server_.Post(path, [this, answer](const httplib::Request& req, httplib::Response& res) {
      received_ = req.body;
      res.set_content(answer, "application/json");
    });
  }
  httplib::Server& server() { return server_; }
  /// Starts listening; returns the base URL (http://127.0.0.1:<port>).
  std::string start() {
    // Without httplib's default SO_REUSEPORT: with it, bind-to-any-port may pick a port that
    // another test process's server holds with the same option, and the two share its requests.
    server_.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    const int port = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return "http://127.0.0.1:" + std::to_string(port);
  }
  /// The body of the last request an `answer` route received.
  std::string received() const { return received_; }
  ~HookServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  std::string received_;
};

}  // namespace edgekit::fleetd::test
