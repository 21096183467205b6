#include "http/common.hpp"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <fstream>

#include "http/json_body.hpp"

namespace edgekit::fleetd {

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

namespace http {

bool bearer_matches(const std::string& header, const std::string& token) {
  const std::string prefix = "Bearer ";
  if (token.empty()) return false;
  if (header.size() != prefix.size() + token.size() || header.rfind(prefix, 0) != 0) return false;
  return CRYPTO_memcmp(header.data() + prefix.size(), token.data(), token.size()) == 0;
}

std::string error_json(std::string_view code, std::string_view message) {
  return dump(nlohmann::json{{"code", std::string(code)}, {"message", std::string(message)}});
}

void reply(httplib::Response& res, int status, std::string body) {
  res.status = status;
  res.set_content(std::move(body), "application/json");
}

void reply_error(httplib::Response& res, int status, std::string_view code,
                 std::string_view message) {
  reply(res, status, error_json(code, message));
}

Res<std::uint16_t> bind(httplib::Server& server, const std::string& host, std::uint16_t port,
                        std::string_view what) {
  // httplib writes a response's head and body separately; with Nagle on, the body waits for the
  // ACK of the head, which a keep-alive client delays by 40 ms: each decision took ~45-90 ms
  // instead of well under one (measured by scripts/bench-fleetd).
  server.set_tcp_nodelay(true);
  // httplib's default socket options set SO_REUSEPORT on Linux, which lets any other process of
  // the same user bind the same port and take a share of its connections (a test run saw another
  // server answer one of fleetd's admin requests with a 404 that fleetd never logged).
  // SO_REUSEADDR alone still lets fleetd restart while old connections are in TIME_WAIT.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  int bound = port == 0 ? server.bind_to_any_port(host)
                        : (server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return fail(Errc::Unavailable, "cannot listen on " + host + ":" + std::to_string(port) +
                                       " for " + std::string(what));
  }
  return static_cast<std::uint16_t>(bound);
}

Res<std::thread> serve(httplib::Server& server, std::string_view what) {
  auto ended = std::make_shared<std::atomic<bool>>(false);
  std::thread t([&server, ended] {
    (void)server.listen_after_bind();  // its failure shows as `ended` before running, below
    ended->store(true);
  });
  while (!server.is_running() && !ended->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (ended->load() && !server.is_running()) {
    t.join();
    return fail(Errc::Unavailable, "the listener for " + std::string(what) + " stopped at once");
  }
  return t;
}

}  // namespace http
}  // namespace edgekit::fleetd
