// fleetd's AWS IoT policy documents (written by administrators through the admin API, so
// untrusted) and the rules the decision interface carries: parse, resolve, decide, round-trip.
// Oracles: no crash or hang; resolved rules survive the JSON round trip unchanged; a decision
// never allows what a Deny rule of the same action matches.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policy/policy.hpp"

namespace p = edgekit::fleetd::policy;

namespace {
// MQTT client ids are UTF-8 (the broker refuses others), so the round-trip oracle holds for
// them only: invalid bytes are replaced when rules are written as JSON, which can only make a
// pattern match less (deny), never more.
bool valid_utf8(std::string_view s) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  for (std::size_t i = 0; i < s.size();) {
    const unsigned c = byte(i);
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // range of the second byte (RFC 3629 section 4)
    if (c < 0x80) n = 0;
    else if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + n >= s.size() && n > 0) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const unsigned b = byte(i + k);
      if (k == 1 ? (b < lo || b > hi) : (b >> 6) != 2) return false;
    }
    i += n + 1;
  }
  return true;
}
}  // namespace

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
    if (!back || (valid_utf8(who) && valid_utf8(doc) && back.value() != rules)) std::abort();
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
