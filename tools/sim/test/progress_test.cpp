// The progress line: its content, in-place updates on a terminal, plain lines elsewhere.

#include "progress.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace edgekit::sim {
namespace {

using namespace std::chrono_literals;

TEST(Progress, FiguresComeFromTheStandardNamesAndTheLastTick) {
  Metrics::TimePoint t0{};
  Metrics m(t0, false);
  m.counter(metric::kConnects).add(1500);
  m.counter(metric::kProvisioned).add(1000);
  m.counter(metric::kMessages).add(20000);
  m.gauge(metric::kDevicesConnected).set(1480);
  m.error("tls: timeout", "device 3");
  m.tick(t0 + 2s);
  ProgressFigures f = progress_figures(m, t0 + 2500ms);
  EXPECT_DOUBLE_EQ(f.elapsed_s, 2.5);
  EXPECT_EQ(f.connected, 1480);
  EXPECT_EQ(f.provisioned, 1000u);
  EXPECT_EQ(f.errors, 1u);
  EXPECT_DOUBLE_EQ(f.connects_per_s, 750);
  EXPECT_DOUBLE_EQ(f.provisioned_per_s, 500);
  EXPECT_DOUBLE_EQ(f.messages_per_s, 10000);
  EXPECT_EQ(format_progress(f),
            "[    2 s] connected 1,480  provisioned 1,000  errors 1  |  750 conn/s  500 prov/s  "
            "10,000 msg/s");
}

TEST(Progress, OtaBytesAndTheirRateOnlyOnceAnImageIsBeingStored) {
  Metrics::TimePoint t0{};
  Metrics m(t0, false);
  m.counter(metric::kOtaBytes);
  m.tick(t0 + 1s);
  EXPECT_EQ(format_progress(progress_figures(m, t0 + 1s)).find("OTA"), std::string::npos);
  m.counter(metric::kOtaBytes).add(3 * 262144);
  m.tick(t0 + 2s);
  ProgressFigures f = progress_figures(m, t0 + 2s);
  EXPECT_EQ(f.ota_bytes, 786432u);
  EXPECT_DOUBLE_EQ(f.ota_bytes_per_s, 786432);
  const std::string line = format_progress(f);
  EXPECT_NE(line.find("  |  OTA 768 KB at 768 KB/s"), std::string::npos) << line;
}

std::string written(bool tty, int updates, bool finish) {
  char* data = nullptr;
  std::size_t size = 0;
  std::FILE* f = ::open_memstream(&data, &size);
  {
    ProgressWriter w(f, tty);
    ProgressFigures fig;
    for (int i = 0; i < updates; ++i) {
      fig.elapsed_s = i;
      fig.connected = 10000.0 * i;
      w.update(fig);
    }
    if (finish) w.finish();
  }
  std::fclose(f);
  std::string out(data, size);
  std::free(data);
  return out;
}

TEST(Progress, RewritesOneLineOnATerminal) {
  std::string out = written(true, 2, false);  // the destructor finishes the line
  EXPECT_EQ(out,
            "\r[    0 s] connected 0  provisioned 0  errors 0  |  0 conn/s  0 prov/s  0 msg/s"
            "\x1b[K\r[    1 s] connected 10,000  provisioned 0  errors 0  |  0 conn/s  "
            "0 prov/s  0 msg/s\x1b[K\n");
  EXPECT_EQ(written(true, 1, true).back(), '\n');
  EXPECT_EQ(written(true, 0, true), "");
}

TEST(Progress, WritesPlainLinesElsewhere) {
  std::string out = written(false, 2, true);
  EXPECT_EQ(out,
            "[    0 s] connected 0  provisioned 0  errors 0  |  0 conn/s  0 prov/s  0 msg/s\n"
            "[    1 s] connected 10,000  provisioned 0  errors 0  |  0 conn/s  0 prov/s  "
            "0 msg/s\n");
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
}

}  // namespace
}  // namespace edgekit::sim
