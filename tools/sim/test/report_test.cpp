// The reports: the JSON schema round trip, and the HTML page checked by a real parser
// (libxml2's xmllint, in XML mode: the page must be well formed, which also proves every string
// was escaped) with every plot present and nothing fetched from outside.

#include "report.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace edgekit::sim {
namespace {

using namespace std::chrono_literals;

const char* const kNasty = "<script>alert('x')</script> & \"q\" \x01 ]]> --> \\n";

// A run's worth of figures in simulated time: 30 ticks of connects, provisioning, messages,
// the machine's gauges set by hand (so the test does not depend on this machine), every
// latency of the issue, and errors with text that must be escaped.
ReportData sample_report() {
  Metrics::TimePoint t0{};
  Metrics m(t0, /*sample_machine=*/false);
  auto& connects = m.counter(metric::kConnects, "TCP+TLS+MQTT sessions established");
  auto& provisioned = m.counter(metric::kProvisioned, "devices provisioned by claim");
  auto& messages = m.counter(metric::kMessages, "PUBLISH packets sent and received");
  auto& connected = m.gauge(metric::kDevicesConnected, "devices with a live session");
  auto& cpu = m.gauge(metric::kProcessCpuPercent, "process CPU");
  auto& cpu_seconds = m.gauge(metric::kProcessCpuSeconds, "process CPU time");
  auto& machine_cpu = m.gauge(metric::kMachineCpuPercent, "machine CPU");
  auto& rss = m.gauge(metric::kProcessRssBytes, "RSS");
  auto& hwm = m.gauge(metric::kProcessRssPeakBytes, "HWM");
  auto& load = m.gauge(metric::kMachineLoad1, "load");
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> lat(std::log(400'000.0), 0.8);
  for (auto name :
       {metric::kTcpConnect, metric::kTlsHandshake, metric::kConnack, metric::kSuback,
        metric::kProvisioning, metric::kShadowDeltaRoundTrip, metric::kJobNotifyToSucceeded}) {
    auto& h = m.histogram(name, std::string(name) + " latency");
    for (int i = 0; i < 5'000; ++i) h.record_ns(static_cast<std::uint64_t>(lat(rng)));
  }
  m.histogram("never_used");  // left out of the report: nothing to show
  for (int s = 1; s <= 30; ++s) {
    connects.add(static_cast<std::uint64_t>(300 + 10 * s));
    provisioned.add(static_cast<std::uint64_t>(s < 20 ? 500 : 0));
    messages.add(1000);
    connected.set(std::min(10'000.0, 330.0 * s));
    cpu.set(80 + s % 7);
    cpu_seconds.set(0.8 * s);
    machine_cpu.set(60 + s % 5);
    rss.set(200e6 + 1e6 * s);
    hwm.set(200e6 + 1e6 * s);
    load.set(1.5);
    if (s % 10 == 0) m.error(kNasty, std::string("example ") + kNasty);
    m.tick(t0 + std::chrono::seconds(s));
  }
  m.error("tls: certificate expired", "device-0042: X509_V_ERR_CERT_HAS_EXPIRED");
  ReportData r = build_report(m, t0 + 30s, "connect storm <10k>", "2026-12-03T20:30:00Z");
  r.machine = MachineInfo{2, "Example CPU & friends", 8ull << 30, "Linux 6.1"};
  r.rss_at_start_bytes = 131'000'000;
  return r;
}

TEST(ReportJson, RoundTripsThroughTextAndKeepsTheSchema) {
  ReportData r = sample_report();
  nlohmann::json j = to_json(r);
  EXPECT_EQ(j["schema"], 1);
  std::string text = j.dump(2);
  std::string error;
  auto back = report_from_json(nlohmann::json::parse(text), &error);
  ASSERT_TRUE(back) << error;
  EXPECT_TRUE(*back == r);
  EXPECT_EQ(to_json(*back).dump(), j.dump());
}

TEST(ReportJson, HoldsWhatTheDocsSay) {
  ReportData r = sample_report();
  nlohmann::json j = to_json(r);
  ASSERT_EQ(j["t_s"].size(), 30u);
  for (const auto& s : j["series"]) ASSERT_EQ(s["values"].size(), 30u) << s["name"];
  ASSERT_EQ(j["histograms"].size(), 7u);
  const auto& h = j["histograms"][0];
  EXPECT_EQ(h["name"], "tcp_connect");
  EXPECT_EQ(h["count"], 5000);
  EXPECT_LE(h["p50_us"].get<double>(), h["p90_us"].get<double>());
  EXPECT_LE(h["p90_us"].get<double>(), h["p99_us"].get<double>());
  EXPECT_LE(h["p99_us"].get<double>(), h["p999_us"].get<double>());
  EXPECT_LE(h["p999_us"].get<double>(), h["max_us"].get<double>());
  std::uint64_t total = 0;
  for (const auto& b : h["buckets"]) total += b[2].get<std::uint64_t>();
  EXPECT_EQ(total, 5000u);
  // Errors most frequent first.
  ASSERT_EQ(j["errors"].size(), 2u);
  EXPECT_EQ(j["errors"][0]["count"], 3);
  EXPECT_EQ(j["errors"][1]["cause"], "tls: certificate expired");
  const auto& connects = j["counters"][1];
  EXPECT_EQ(connects["name"], "connects");
  EXPECT_EQ(connects["total"], 300 * 30 + 10 * 465);
}

TEST(ReportJson, RejectsWhatIsNotAReportWithAReason) {
  nlohmann::json good = to_json(sample_report());
  std::string error;
  EXPECT_FALSE(report_from_json(nlohmann::json::array(), &error));
  EXPECT_FALSE(error.empty());

  auto broken = good;
  broken["schema"] = 2;
  EXPECT_FALSE(report_from_json(broken, &error));
  EXPECT_NE(error.find("schema 2"), std::string::npos) << error;

  broken = good;
  broken.erase("t_s");
  EXPECT_FALSE(report_from_json(broken, &error));
  EXPECT_NE(error.find("t_s"), std::string::npos) << error;

  broken = good;
  broken["series"][0]["values"].push_back(1.0);
  EXPECT_FALSE(report_from_json(broken, &error));
  EXPECT_NE(error.find("31 values for 30 times"), std::string::npos) << error;

  broken = good;
  broken["histograms"][0]["count"] = "many";
  EXPECT_FALSE(report_from_json(broken, &error));

  broken = good;
  broken["histograms"][0]["count"] = -1;  // nlohmann's plain get would make it 2^64-1
  EXPECT_FALSE(report_from_json(broken, &error));
  EXPECT_NE(error.find("count is not an unsigned integer"), std::string::npos) << error;

  broken = good;
  broken["histograms"][0]["count"] = 4999;
  EXPECT_FALSE(report_from_json(broken, &error));
  EXPECT_NE(error.find("do not add up"), std::string::npos) << error;

  // rss_at_start_bytes came later within schema 1: a report without it still reads (as 0).
  auto older = good;
  older.erase("rss_at_start_bytes");
  auto read = report_from_json(older, &error);
  ASSERT_TRUE(read) << error;
  EXPECT_EQ(read->rss_at_start_bytes, 0u);

  // A reader ignores keys it does not know.
  auto extended = good;
  extended["added_later"] = {{"x", 1}};
  EXPECT_TRUE(report_from_json(extended, &error)) << error;
}

struct LintResult {
  int status = -1;
  std::string err;
};

// Runs xmllint on `html` (written to a file) and returns its exit status and stderr.
LintResult xmllint(const std::string& html, const std::string& mode) {
  static int n = 0;
  std::string base =
      ::testing::TempDir() + "sim_report_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
  { std::ofstream(base + ".html", std::ios::binary) << html; }
  std::string cmd = std::string(EDGEKIT_XMLLINT) + " " + mode + " --noout --nonet " + base +
                    ".html 2>" + base + ".err";
  int rc = std::system(cmd.c_str());
  LintResult r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream in(base + ".err");
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::remove((base + ".html").c_str());
  std::remove((base + ".err").c_str());
  return r;
}

TEST(ReportHtml, ParsesAsWellFormedXmlAndAsHtml) {
  std::string html = to_html(sample_report());
  LintResult xml = xmllint(html, "");
  EXPECT_EQ(xml.status, 0) << xml.err;
  EXPECT_EQ(xml.err, "");
  LintResult as_html = xmllint(html, "--html");
  EXPECT_EQ(as_html.status, 0) << as_html.err;
}

TEST(ReportHtml, TheCheckerFailsOnBrokenMarkup) {
  std::string html = to_html(sample_report());
  std::string broken = html;
  broken.insert(broken.find("</body>"), "<p>a & b < c</p>");
  EXPECT_NE(xmllint(broken, "").status, 0);
}

TEST(ReportHtml, HasEveryPlotAndTable) {
  std::string html = to_html(sample_report());
  for (const char* id :
       {"summary-counters", "summary-latency", "summary-cost", "plot-series-connects",
        "plot-series-provisioned", "plot-series-messages", "plot-series-devices-connected",
        "plot-series-errors", "plot-hist-tcp-connect", "plot-hist-tls-handshake",
        "plot-hist-connack", "plot-hist-suback", "plot-hist-provisioning",
        "plot-hist-shadow-delta-round-trip", "plot-hist-job-notify-to-succeeded", "errors-table",
        "plot-machine-cpu", "plot-machine-memory", "plot-machine-load"}) {
    EXPECT_NE(html.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  }
  EXPECT_EQ(html.find("plot-hist-never-used"), std::string::npos);
  // Seven histograms, each with its four percentile markers.
  std::size_t marks = 0;
  for (std::size_t p = 0; (p = html.find("class=\"pct\"", p)) != std::string::npos; ++p) ++marks;
  EXPECT_EQ(marks, 7u * 4);
  EXPECT_NE(html.find(">p99.9 "), std::string::npos);
  // Connects first, errors last among the fleet's counters and series.
  EXPECT_LT(html.find("\">connects</td>"), html.find("\">errors</td>"));
  auto first_plot = html.find("<figure id=\"plot-series-");
  EXPECT_EQ(html.compare(first_plot, 34, "<figure id=\"plot-series-connects\">"), 0);
  EXPECT_GT(html.find("id=\"plot-series-errors\""), html.find("id=\"plot-series-messages\""));
  // The simulator's cost: 24 s of CPU for 30,000 messages and 13,950 connects; peak RSS
  // 230 MB over 9,900 devices (22.7 KiB each).
  EXPECT_NE(html.find("<td>CPU per message (all CPU time / messages)</td><td>800 \xC2\xB5s</td>"),
            std::string::npos);
  EXPECT_NE(html.find("at the most devices connected (9900)</td><td>22.7 KiB</td>"),
            std::string::npos);
  // (230 MB - 131 MB) / 9,900 = 10,000 B.
  EXPECT_NE(html.find("at start)</td><td>9.8 KiB</td>"), std::string::npos);
  // Machine series are drawn in the machine section only, not again as fleet series.
  EXPECT_EQ(html.find("plot-series-process-cpu-percent"), std::string::npos);
}

TEST(ReportHtml, EscapesEveryStringAndFetchesNothing) {
  std::string html = to_html(sample_report());
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"),
            std::string::npos);
  EXPECT_NE(html.find("connect storm &lt;10k&gt;"), std::string::npos);
  EXPECT_NE(html.find("Example CPU &amp; friends"), std::string::npos);
  // Self-contained: no script, no link, no source; the only URL is SVG's namespace name.
  for (const char* banned : {"src=", "href=", "<link", "@import", "url("}) {
    EXPECT_EQ(html.find(banned), std::string::npos) << banned;
  }
  std::string rest = html;
  for (std::size_t p; (p = rest.find("http://www.w3.org/2000/svg")) != std::string::npos;) {
    rest.erase(p, 26);
  }
  EXPECT_EQ(rest.find("http://"), std::string::npos);
  EXPECT_EQ(rest.find("https://"), std::string::npos);
}

TEST(ReportHtml, AnEmptyRunStillMakesAPage) {
  Metrics m(Metrics::TimePoint{}, false);
  ReportData r = build_report(m, Metrics::TimePoint{}, "nothing", "2026-12-03T00:00:00Z");
  std::string html = to_html(r);
  LintResult xml = xmllint(html, "");
  EXPECT_EQ(xml.status, 0) << xml.err;
  EXPECT_NE(html.find("No latency was recorded."), std::string::npos);
  EXPECT_NE(html.find("no samples"), std::string::npos);
  EXPECT_NE(html.find("not sampled"), std::string::npos);
}

TEST(FormatDuration, PicksTheUnitPeopleRead) {
  EXPECT_EQ(format_duration_us(0.5), "500 ns");
  EXPECT_EQ(format_duration_us(12.34), "12.3 \xC2\xB5s");
  EXPECT_EQ(format_duration_us(4560), "4.56 ms");
  EXPECT_EQ(format_duration_us(2.1e6), "2.1 s");
}

TEST(ReportFiles, WritesBothFilesThatReadBack) {
  ReportData r = sample_report();
  std::string base = ::testing::TempDir() + "sim_report_files_" + std::to_string(::getpid());
  EXPECT_EQ(write_report_files(r, base + ".json", base + ".html"), "");
  std::ifstream json_in(base + ".json");
  auto back = report_from_json(nlohmann::json::parse(json_in), nullptr);
  ASSERT_TRUE(back);
  EXPECT_TRUE(*back == r);
  std::ifstream html_in(base + ".html");
  std::string html((std::istreambuf_iterator<char>(html_in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(html, to_html(r));
  std::remove((base + ".json").c_str());
  std::remove((base + ".html").c_str());
}

TEST(ReportFiles, SaysWhichFileFailedAndStillWritesTheOther) {
  ReportData r = sample_report();
  std::string html_path =
      ::testing::TempDir() + "sim_report_other_" + std::to_string(::getpid()) + ".html";
  std::string error = write_report_files(r, "/nonexistent-dir/x/report.json", html_path);
  EXPECT_NE(error.find("cannot write /nonexistent-dir/x/report.json"), std::string::npos) << error;
  std::ifstream html_in(html_path);
  EXPECT_TRUE(html_in.good());
  std::remove(html_path.c_str());
}

}  // namespace
}  // namespace edgekit::sim
