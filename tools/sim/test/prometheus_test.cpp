// The Prometheus endpoint: the exposition text checked by a strict parser written here (the
// text format 0.0.4's rules: HELP/TYPE, names, labels and their escapes, values, one family's
// samples together, histograms' cumulative buckets ending in +Inf equal to _count), the text
// served by a real server over HTTP, and snapshots published while scrapers read them (run
// under ThreadSanitizer by scripts/test).

#include "prometheus.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace edgekit::sim {
namespace {

using namespace std::chrono_literals;

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses a sample value as Prometheus does (Go's ParseFloat, plus NaN and ±Inf).
bool parse_value(const std::string& s, double& out) {
  if (s == "NaN") {
    out = NAN;
    return true;
  }
  if (s == "+Inf" || s == "Inf") {
    out = INFINITY;
    return true;
  }
  if (s == "-Inf") {
    out = -INFINITY;
    return true;
  }
  static const std::regex number(R"([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)");
  if (!std::regex_match(s, number)) return false;
  out = std::stod(s);
  return true;
}

// A strict reader of the text exposition format. Returns "" when `text` is valid, else the
// first problem with its line number.
std::string check_exposition(const std::string& text) {
  static const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::regex label_name_re("[a-zA-Z_][a-zA-Z0-9_]*");
  if (text.empty() || text.back() != '\n') return "does not end in a newline";
  std::map<std::string, std::string> type_of;
  std::set<std::string> helped, finished_families, seen_series;
  std::string current_family;
  std::map<std::string, std::vector<Sample>> by_family;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  // The family a sample belongs to, given the TYPE lines so far.
  auto family_of = [&](const std::string& name) -> std::string {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s = suffix;
      if (name.size() > s.size() && name.ends_with(s)) {
        std::string base = name.substr(0, name.size() - s.size());
        if (type_of.count(base) && type_of[base] == "histogram") return base;
      }
    }
    return name;
  };
  while (std::getline(in, line)) {
    ++n;
    std::string where = "line " + std::to_string(n) + " (" + line + "): ";
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream ls(line);
      std::string hash, kw, name;
      ls >> hash >> kw >> name;
      if (kw != "HELP" && kw != "TYPE") continue;  // a plain comment
      if (!std::regex_match(name, name_re)) return where + "bad metric name";
      if (finished_families.count(name)) return where + "family appears again after others";
      if (kw == "HELP") {
        if (!helped.insert(name).second) return where + "second HELP";
        std::string help = line.substr(line.find(name) + name.size());
        for (std::size_t i = 0; i < help.size(); ++i) {
          if (help[i] == '\\' &&
              (i + 1 >= help.size() || (help[i + 1] != '\\' && help[i + 1] != 'n'))) {
            return where + "bad escape in HELP";
          }
          if (help[i] == '\\') ++i;
        }
      } else {
        std::string type;
        ls >> type;
        if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
            type != "untyped") {
          return where + "unknown type";
        }
        if (type_of.count(name)) return where + "second TYPE";
        if (by_family.count(name)) return where + "TYPE after samples";
        type_of[name] = type;
      }
      if (name != current_family) {
        if (!current_family.empty()) finished_families.insert(current_family);
        current_family = name;
      }
      continue;
    }
    // name{label="value",...} value
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    Sample s;
    s.name = line.substr(0, i);
    if (!std::regex_match(s.name, name_re)) return where + "bad sample name";
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        std::size_t eq = line.find('=', i);
        if (eq == std::string::npos) return where + "label without =";
        std::string lname = line.substr(i, eq - i);
        if (!std::regex_match(lname, label_name_re)) return where + "bad label name";
        i = eq + 1;
        if (i >= line.size() || line[i] != '"') return where + "label value not quoted";
        ++i;
        std::string value;
        while (true) {
          if (i >= line.size()) return where + "unterminated label value";
          char c = line[i++];
          if (c == '"') break;
          if (c == '\\') {
            if (i >= line.size()) return where + "dangling backslash";
            char e = line[i++];
            if (e == 'n')
              value += '\n';
            else if (e == '\\' || e == '"')
              value += e;
            else
              return where + "bad escape in label value";
          } else {
            value += c;
          }
        }
        if (!s.labels.emplace(lname, value).second) return where + "label twice";
        if (i < line.size() && line[i] == ',')
          ++i;
        else if (i >= line.size() || line[i] != '}')
          return where + "expected , or }";
      }
    }
    if (i >= line.size() || line[i] != ' ') return where + "no space before value";
    std::string rest = line.substr(i + 1);
    std::string value_text = rest.substr(0, rest.find(' '));
    if (!parse_value(value_text, s.value)) return where + "bad value";
    if (rest.find(' ') != std::string::npos) {
      std::string ts = rest.substr(rest.find(' ') + 1);
      if (!std::regex_match(ts, std::regex("-?\\d+"))) return where + "bad timestamp";
    }
    std::string family = family_of(s.name);
    if (!type_of.count(family)) return where + "sample before (or without) its TYPE";
    if (finished_families.count(family) || family != current_family) {
      return where + "family's samples are not together";
    }
    std::string type = type_of[family];
    if (type == "counter" && (s.value < 0 || std::isnan(s.value))) return where + "bad counter";
    if (type == "histogram") {
      if (s.name == family) return where + "histogram sample without suffix";
      if (s.name.ends_with("_bucket") != (s.labels.count("le") == 1)) {
        return where + "le belongs on _bucket lines only";
      }
    }
    std::string key = s.name;
    for (const auto& [k, v] : s.labels) key += "|" + k + "=" + v;
    if (!seen_series.insert(key).second) return where + "duplicate series";
    by_family[family].push_back(s);
  }
  // Histograms: per label set, le ascending, counts cumulative, +Inf last and equal to _count,
  // and a _sum.
  for (const auto& [family, samples] : by_family) {
    if (type_of[family] != "histogram") continue;
    std::map<std::string, std::vector<const Sample*>> buckets;
    std::map<std::string, double> counts;
    std::set<std::string> sums;
    for (const auto& s : samples) {
      std::string key;
      for (const auto& [k, v] : s.labels) {
        if (k != "le") key += k + "=" + v + ",";
      }
      if (s.name == family + "_bucket") buckets[key].push_back(&s);
      if (s.name == family + "_count") counts[key] = s.value;
      if (s.name == family + "_sum") sums.insert(key);
    }
    if (buckets.empty()) return family + ": no buckets";
    for (const auto& [key, list] : buckets) {
      double last_le = -INFINITY, last_count = 0;
      for (const Sample* b : list) {
        double le = 0;
        if (!parse_value(b->labels.at("le"), le)) return family + ": bad le";
        if (!(le > last_le)) return family + ": le not ascending";
        if (b->value < last_count) return family + ": buckets not cumulative";
        last_le = le;
        last_count = b->value;
      }
      if (!std::isinf(last_le)) return family + ": no +Inf bucket";
      if (!counts.count(key) || counts[key] != last_count) return family + ": +Inf != _count";
      if (!sums.count(key)) return family + ": no _sum";
    }
  }
  return "";
}

Snapshot sample_snapshot() {
  Metrics::TimePoint t0{};
  Metrics m(t0, false);
  m.counter(metric::kConnects, "sessions established").add(1234);
  m.counter("ota bytes/x", "odd name").add(5);
  m.gauge(metric::kDevicesConnected, "live sessions\nand a \\ backslash").set(987);
  m.gauge("nan_gauge").set(NAN);
  auto& h = m.histogram(metric::kConnack, "CONNECT to CONNACK");
  for (std::uint64_t b : LatencyHistogram::kCoarseBoundsNs) h.record_ns(b);
  h.record_ns(500);
  h.record_ns(300'000'000'000);
  m.histogram(metric::kSuback, "empty");
  m.error("broker said \"no\"\nthen \\ closed", "x");
  m.error("tls: timeout", "y");
  return m.snapshot(t0 + 12s);
}

TEST(PrometheusText, PassesTheStrictChecker) {
  std::string text = render_prometheus(sample_snapshot());
  EXPECT_EQ(check_exposition(text), "") << text;
}

TEST(PrometheusText, NamesTypesBucketsAndEscapes) {
  std::string text = render_prometheus(sample_snapshot());
  EXPECT_NE(
      text.find("# TYPE edgekit_sim_connects_total counter\nedgekit_sim_connects_total 1234\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("edgekit_sim_ota_bytes_x_total 5\n"), std::string::npos);
  EXPECT_NE(
      text.find("# HELP edgekit_sim_devices_connected live sessions\\nand a \\\\ backslash\n"),
      std::string::npos);
  EXPECT_NE(text.find("edgekit_sim_nan_gauge NaN\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE edgekit_sim_connack_seconds histogram\n"), std::string::npos);
  // One value at each bound and one below 1 µs: le="1e-06" holds two; one above 100 s only in
  // +Inf.
  EXPECT_NE(text.find("edgekit_sim_connack_seconds_bucket{le=\"1e-06\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("edgekit_sim_connack_seconds_bucket{le=\"0.001\"} 11\n"), std::string::npos);
  EXPECT_NE(text.find("edgekit_sim_connack_seconds_bucket{le=\"100\"} 26\n"), std::string::npos);
  EXPECT_NE(text.find("edgekit_sim_connack_seconds_bucket{le=\"+Inf\"} 27\n"), std::string::npos);
  EXPECT_NE(text.find("edgekit_sim_connack_seconds_count 27\n"), std::string::npos);
  EXPECT_NE(text.find("edgekit_sim_suback_seconds_count 0\n"), std::string::npos);
  EXPECT_NE(text.find("edgekit_sim_error_causes_total{cause=\"broker said \\\"no\\\"\\nthen \\\\ "
                      "closed\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("edgekit_sim_elapsed_seconds 12\n"), std::string::npos);
}

TEST(PrometheusText, TheCheckerRejectsWhatPrometheusWould) {
  EXPECT_NE(check_exposition("x 1"), "");    // no final newline
  EXPECT_NE(check_exposition("x 1\n"), "");  // no TYPE
  EXPECT_NE(check_exposition("# TYPE x gauge\nx{a=\"\\q\"} 1\n"), "");
  EXPECT_NE(check_exposition("# TYPE x gauge\nx{a=b} 1\n"), "");
  EXPECT_NE(check_exposition("# TYPE x gauge\nx one\n"), "");
  EXPECT_NE(check_exposition("# TYPE x gauge\nx 1\nx 2\n"), "");
  EXPECT_NE(check_exposition("# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\n# TYPE x gauge\n"), "");
  EXPECT_NE(check_exposition("# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 4\n"
                             "h_bucket{le=\"+Inf\"} 5\nh_sum 1\nh_count 5\n"),
            "");
  EXPECT_NE(check_exposition("# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_sum 1\nh_count 5\n"), "");
  EXPECT_NE(check_exposition("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 5\nh_sum 1\nh_count 6\n"),
            "");
  EXPECT_EQ(check_exposition("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 4\n"
                             "h_bucket{le=\"+Inf\"} 5\nh_sum 1.5\nh_count 5\n"),
            "");
}

std::string http_get(std::uint16_t port, const std::string& path, int* status,
                     std::string* content_type = nullptr) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto res = client.Get(path.c_str());
  if (!res) {
    *status = -1;
    return {};
  }
  *status = res->status;
  if (content_type) *content_type = res->get_header_value("Content-Type");
  return res->body;
}

TEST(PrometheusEndpoint, ServesTheLatestSnapshotOverHttp) {
  SnapshotBoard board;
  PrometheusServer server(board);
  std::string error;
  std::uint16_t port = server.start(std::string(kDefaultPrometheusHost), 0, &error);
  ASSERT_NE(port, 0) << error;
  EXPECT_EQ(server.port(), port);

  int status = 0;
  http_get(port, "/metrics", &status);
  EXPECT_EQ(status, 503);  // nothing published yet

  Snapshot s = sample_snapshot();
  board.publish(s);
  std::string type;
  std::string body = http_get(port, "/metrics", &status, &type);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(body, render_prometheus(s));
  EXPECT_EQ(check_exposition(body), "");

  http_get(port, "/other", &status);
  EXPECT_EQ(status, 404);

  // A second server cannot take the same port.
  PrometheusServer second(board);
  EXPECT_EQ(second.start("127.0.0.1", port, &error), 0);
  EXPECT_NE(error.find("cannot listen"), std::string::npos);

  server.stop();
  http_get(port, "/metrics", &status);
  EXPECT_EQ(status, -1);
}

// The loop thread records, ticks and publishes while two scrapers read: ThreadSanitizer (the
// tsan preset, in scripts/test) proves that the HTTP threads touch only the board.
TEST(PrometheusEndpoint, SnapshotsPublishedWhileScrapedStayConsistent) {
  SnapshotBoard board;
  PrometheusServer server(board);
  std::uint16_t port = server.start("127.0.0.1", 0);
  ASSERT_NE(port, 0);
  std::atomic<bool> done{false};
  std::thread loop([&] {
    Metrics::TimePoint t0{};
    Metrics m(t0, false);
    auto& messages = m.counter(metric::kMessages);
    auto& rtt = m.histogram(metric::kShadowDeltaRoundTrip);
    for (int i = 1; i <= 200; ++i) {
      messages.add(10);
      rtt.record_ns(static_cast<std::uint64_t>(1000 * i));
      if (i % 7 == 0) m.error("cause " + std::to_string(i % 3), "e");
      auto now = t0 + std::chrono::milliseconds(10 * i);
      m.tick(now);
      board.publish(m.snapshot(now));
      std::this_thread::sleep_for(1ms);
    }
    done = true;
  });
  std::vector<std::thread> scrapers;
  std::atomic<int> scrapes{0};
  std::atomic<int> failures{0};
  for (int k = 0; k < 2; ++k) {
    scrapers.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      double last = -1;
      while (!done) {
        auto res = client.Get("/metrics");
        if (!res || res->status == 503) continue;
        if (res->status != 200 || !check_exposition(res->body).empty()) {
          ++failures;
          continue;
        }
        // The counter never goes back between scrapes.
        const std::string key = "\nedgekit_sim_messages_total ";
        auto p = res->body.find(key);
        double v = -1;
        if (p == std::string::npos ||
            !parse_value(
                res->body.substr(p + key.size(), res->body.find('\n', p + 1) - p - key.size()),
                v)) {
          ++failures;
          continue;
        }
        if (v < last) ++failures;
        last = v;
        ++scrapes;
      }
    });
  }
  loop.join();
  for (auto& t : scrapers) t.join();
  server.stop();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(scrapes, 0);
  EXPECT_EQ(board.generation(), 200u);
}

}  // namespace
}  // namespace edgekit::sim
