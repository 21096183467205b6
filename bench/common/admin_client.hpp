// fleetd's admin API for the benchmarks that set up their own fleet (jobs_bench, ota_bench): one
// keep-alive HTTP connection with the bearer token. Not part of the test suite. Thread safety:
// none (one object per thread).
#pragma once

#include <httplib.h>

#include <fstream>
#include <string>
#include <utility>

namespace edgekit::bench {

class Admin {
 public:
  Admin(const std::string& url, const std::string& token) : client_(url) {
    client_.set_keep_alive(true);
    client_.set_read_timeout(60, 0);
    headers_ = {{"Authorization", "Bearer " + token}};
  }
  // The reply's status (0: no reply) and body.
  std::pair<int, std::string> call(const std::string& method, const std::string& path,
                                   const std::string& body = {}) {
    httplib::Result r = method == "POST"  ? client_.Post(path, headers_, body, "application/json")
                        : method == "PUT" ? client_.Put(path, headers_, body, "application/json")
                                          : client_.Get(path, headers_);
    if (!r) return {0, httplib::to_string(r.error())};
    return {r->status, r->body};
  }
  // True on a 2xx answer; else sets `failure` (when still empty) to the request and its answer.
  bool ok(const std::string& method, const std::string& path, const std::string& body,
          std::string& failure) {
    auto [status, reply] = call(method, path, body);
    if (status >= 200 && status < 300) return true;
    if (failure.empty()) failure = method + " " + path + ": " + std::to_string(status) + " " + reply;
    return false;
  }

 private:
  httplib::Client client_;
  httplib::Headers headers_;
};

// The first word of a file (the admin token), empty when unreadable.
inline std::string read_word(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  f >> s;
  return s;
}

}  // namespace edgekit::bench
