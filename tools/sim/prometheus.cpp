#include "prometheus.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>

namespace edgekit::sim {
namespace {

constexpr std::string_view kPrefix = "edgekit_sim_";

std::string metric_name(std::string_view name, std::string_view suffix = {}) {
  std::string out(kPrefix);
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':';
    out += ok ? c : '_';
  }
  if (!suffix.empty() && !std::string_view(out).ends_with(suffix)) out += suffix;
  return out;
}

// HELP text: backslash and newline escaped (exposition format 0.0.4).
std::string escape_help(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// A label value: backslash, double quote and newline escaped.
std::string escape_label(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// A sample value as Go's ParseFloat reads it: shortest round-trip digits, NaN, +Inf, -Inf.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::array<char, 32> buf{};
  auto [p, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return ec == std::errc{} ? std::string(buf.data(), p) : std::string("NaN");
}

void header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += escape_help(help.empty() ? std::string_view("edgekit sim metric") : help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace

std::string render_prometheus(const Snapshot& s) {
  std::string out;
  out.reserve(4096);
  {
    std::string name = metric_name("elapsed_seconds");
    header(out, name, "Seconds since the simulation started (at the last snapshot)", "gauge");
    out += name + ' ' + number(s.elapsed_seconds) + '\n';
  }
  for (const auto& c : s.counters) {
    std::string name = metric_name(c.name, "_total");
    header(out, name, c.help, "counter");
    out += name + ' ' + std::to_string(c.value) + '\n';
  }
  for (const auto& g : s.gauges) {
    std::string name = metric_name(g.name);
    header(out, name, g.help, "gauge");
    out += name + ' ' + number(g.value) + '\n';
  }
  for (const auto& h : s.histograms) {
    std::string name = metric_name(h.name, "_seconds");
    header(out, name, h.help, "histogram");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < LatencyHistogram::kCoarseBoundsNs.size(); ++i) {
      cumulative += h.coarse[i];
      out += name + "_bucket{le=\"" +
             number(static_cast<double>(LatencyHistogram::kCoarseBoundsNs[i]) / 1e9) + "\"} " +
             std::to_string(cumulative) + '\n';
    }
    cumulative += h.coarse.back();
    out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + '\n';
    out += name + "_sum " + number(h.sum_seconds) + '\n';
    out += name + "_count " + std::to_string(h.count) + '\n';
  }
  {
    std::string name = metric_name("error_causes_total");
    header(out, name, "Errors by cause (the report keeps the first example of each)", "counter");
    for (const auto& [cause, count] : s.errors) {
      out += name + "{cause=\"" + escape_label(cause) + "\"} " + std::to_string(count) + '\n';
    }
  }
  return out;
}

void SnapshotBoard::publish(Snapshot s) {
  std::lock_guard lock(mutex_);
  snapshot_ = std::move(s);
  ++generation_;
}

Snapshot SnapshotBoard::latest() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

std::uint64_t SnapshotBoard::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

struct PrometheusServer::Impl {
  httplib::Server server;
};

PrometheusServer::PrometheusServer(const SnapshotBoard& board) : board_(board) {}

PrometheusServer::~PrometheusServer() {
  stop();
}

std::uint16_t PrometheusServer::start(const std::string& host, std::uint16_t port,
                                      std::string* error) {
  stop();
  impl_ = std::make_unique<Impl>();
  auto& server = impl_->server;
  // Two workers: a scraper or two and a person's browser; httplib's default (8 or more) would
  // be idle threads beside the loop thread.
  server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  server.set_keep_alive_timeout(2);
  // Nagle would hold the body behind the head's ACK (see fleetd's http/common.cpp); and only
  // SO_REUSEADDR, not httplib's default SO_REUSEPORT, which would let another process share
  // the port.
  server.set_tcp_nodelay(true);
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  const SnapshotBoard& board = board_;
  server.Get("/metrics", [&board](const httplib::Request&, httplib::Response& res) {
    if (board.generation() == 0) {
      res.status = 503;
      res.set_content("no snapshot yet\n", "text/plain; charset=utf-8");
      return;
    }
    res.set_content(render_prometheus(board.latest()), "text/plain; version=0.0.4; charset=utf-8");
  });
  int bound =
      port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    if (error) *error = "cannot listen on " + host + ":" + std::to_string(port);
    impl_.reset();
    return 0;
  }
  auto ended = std::make_shared<std::atomic<bool>>(false);
  thread_ = std::thread([&server, ended] {
    (void)server.listen_after_bind();  // a failure shows as `ended` below
    ended->store(true);
  });
  while (!server.is_running() && !ended->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (ended->load() && !server.is_running()) {
    thread_.join();
    impl_.reset();
    if (error) *error = "the metrics listener on " + host + " stopped at once";
    return 0;
  }
  port_ = static_cast<std::uint16_t>(bound);
  return port_;
}

void PrometheusServer::stop() {
  if (!impl_) return;
  impl_->server.stop();
  if (thread_.joinable()) thread_.join();
  impl_.reset();
  port_ = 0;
}

}  // namespace edgekit::sim
