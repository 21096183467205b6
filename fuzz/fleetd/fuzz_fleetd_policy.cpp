// fleetd's AWS IoT policy documents (written by administrators through the admin API, so
// untrusted) and the rules the decision interface carries: parse, resolve, decide, round-trip.
// Oracles: no crash or hang; resolved rules survive the JSON round trip unchanged; a decision
// never allows what a Deny rule of the same action matches.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policy/policy.hpp"

namespace p = edgekit::fleetd::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The first line (up to 128 bytes) is the client id and thing name; the rest the document.
  auto nl = text.find('\n');
  std::string_view who = nl == std::string_view::npos ? std::string_view() : text.substr(0, nl);
  if (who.size() > 128) who = who.substr(0, 128);
  std::string_view doc = nl == std::string_view::npos ? text : text.substr(nl + 1);

  auto parsed = p::parse(doc);
  if (parsed) {
    std::vector<p::Document> docs{parsed.value(), p::default_thing_policy()};
    auto rules = p::resolve(docs, p::Context{who, who});
    auto back = p::rules_from_json(p::rules_to_json(rules));
    if (!back || back.value() != rules) std::abort();
    for (const auto& r : rules) {
      // A topic spelled like the pattern itself, with its wildcards taken literally.
      for (auto a : {p::Action::Connect, p::Action::Publish, p::Action::Subscribe, p::Action::Receive}) {
        bool allowed = p::allowed(rules, a, r.pattern);
        if (!r.allow && r.action == a && p::glob_match(r.pattern, r.pattern) && allowed) std::abort();
      }
    }
  }
  (void)p::rules_from_json(doc);
  (void)p::glob_match(who, doc.substr(0, 512));
  return 0;
}
