// Fuzz target: the fleet simulator's report reader (tools/sim/report.hpp: a JSON report read
// back, e.g. to draw it again) and the HTML drawn from what it accepts; beside them the /proc
// text parsers of tools/sim/metrics.hpp on the same bytes. Input: the JSON text. Oracles:
//  - no crash, hang or sanitizer report; a refusal says why;
//  - an accepted report is drawn into a complete page in which no input string escaped:
//    the page has no "<script" (it never writes one; only an unescaped string could);
//  - round trip: to_json of an accepted report reads back into an equal report.
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "metrics.hpp"
#include "report.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace edgekit::sim;
  if (size > 65536) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  (void)parse_proc_stat_cpu(text);
  (void)parse_status_kb(text, "VmRSS");
  (void)parse_loadavg(text);
  (void)parse_cpuinfo_model(text);

  const auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                       /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  std::string error;
  const auto report = report_from_json(j, &error);
  if (!report) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  const std::string html = to_html(*report);
  FUZZ_CHECK(html.starts_with("<!DOCTYPE html>"));
  FUZZ_CHECK(html.ends_with("</body></html>\n"));
  FUZZ_CHECK(html.find("<script") == std::string::npos);

  const auto again = report_from_json(to_json(*report), &error);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *report);
  return 0;
}
