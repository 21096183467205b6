#include "scenario.hpp"

#include <cmath>
#include <initializer_list>
#include <limits>

#include "edgekit/json/json.hpp"

namespace edgekit::sim {
namespace {

using nlohmann::json;

// Reads the members of one JSON object into plain fields; the first problem wins, named by its
// path. An unknown member is an error too: a misspelt "cuts_per_sec" must not silently become
// "no cuts".
class Reader {
 public:
  Reader(const json& object, std::string path, std::string& error)
      : object_(object), path_(std::move(path)), error_(error) {
    if (!object_.is_object()) fail("", "must be an object");
  }

  [[nodiscard]] bool ok() const { return error_.empty(); }

  void only(std::initializer_list<const char*> names) {
    if (!ok() || !object_.is_object()) return;
    for (const auto& [key, value] : object_.items()) {
      bool known = false;
      for (const char* n : names) known = known || key == n;
      if (!known) {
        fail(key, "unknown member");
        return;
      }
    }
  }

  // A number in [min, max]; `positive`: strictly above min.
  void number(const char* name, double& out, double min, double max, bool positive = false) {
    if (!ok() || !object_.contains(name)) return;
    const json& v = object_[name];
    if (!v.is_number()) return fail(name, "must be a number");
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < min || d > max || (positive && d <= min)) {
      return fail(name, "must be a number " + std::string(positive ? "> " : ">= ") +
                            trim(min) + " and <= " + trim(max));
    }
    out = d;
  }

  void boolean(const char* name, bool& out) {
    if (!ok() || !object_.contains(name)) return;
    const json& v = object_[name];
    if (!v.is_boolean()) return fail(name, "must be true or false");
    out = v.get<bool>();
  }

  template <typename T>
  void integer(const char* name, T& out, std::uint64_t min, std::uint64_t max) {
    if (!ok() || !object_.contains(name)) return;
    const json& v = object_[name];
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
      return fail(name, "must be a whole number");
    }
    const auto n = v.get<std::uint64_t>();
    if (n < min || n > max) {
      return fail(name, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    out = static_cast<T>(n);
  }

  void string(const char* name, std::string& out) {
    if (!ok() || !object_.contains(name)) return;
    const json& v = object_[name];
    if (!v.is_string()) return fail(name, "must be a string");
    out = v.get<std::string>();
  }

  void fail(std::string_view name, const std::string& why) {
    if (!ok()) return;
    error_ = path_;
    if (!name.empty()) error_ += (path_.empty() ? "" : ".") + std::string(name);
    error_ += (error_.empty() ? "" : ": ") + why;
  }

  [[nodiscard]] const json& object() const { return object_; }
  [[nodiscard]] std::string path(const char* name) const {
    return path_.empty() ? std::string(name) : path_ + "." + name;
  }

 private:
  static std::string trim(double d) {
    if (d == std::numeric_limits<double>::max()) return "any";
    std::string s = std::to_string(d);
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  const json& object_;
  std::string path_;
  std::string& error_;
};

constexpr double kDay = 86400;

// "stall_s": a length in seconds, or [min, max] to draw each stall's length from.
void read_stall_length(Reader& r, const json& j, FaultSpec& f) {
  if (!r.ok() || !j.contains("stall_s")) return;
  const json& v = j["stall_s"];
  if (v.is_array()) {
    if (v.size() != 2 || !v[0].is_number() || !v[1].is_number()) {
      return r.fail("stall_s", "must be a number or [min, max] of seconds");
    }
    f.stall_min_s = v[0].get<double>();
    f.stall_max_s = v[1].get<double>();
  } else {
    r.number("stall_s", f.stall_min_s, 0, kDay, true);
    f.stall_max_s = f.stall_min_s;
  }
  if (r.ok() && !(f.stall_min_s > 0 && f.stall_min_s <= f.stall_max_s && f.stall_max_s <= kDay)) {
    r.fail("stall_s", "must be > 0, min <= max, and at most a day");
  }
}

void read_phase(const json& j, const std::string& path, Phase& p, std::string& error) {
  Reader r(j, path, error);
  if (!r.ok()) return;
  std::string kind;
  r.string("kind", kind);
  if (!r.ok()) return;
  if (kind == "telemetry") {
    p.kind = Phase::Kind::Telemetry;
    r.only({"kind", "seconds", "rate", "qos", "bytes", "messages"});
    r.number("seconds", p.telemetry.seconds, 0, kDay, true);
    r.number("rate", p.telemetry.rate, 0, 1e7);
    r.integer("qos", p.telemetry.qos, 0, 1);
    r.integer("bytes", p.telemetry.bytes, 0, 128 * 1024);
    r.integer("messages", p.telemetry.messages, 0, std::uint64_t{1} << 40);
    if (r.ok() && p.telemetry.rate == 0 && p.telemetry.qos != 1) {
      r.fail("rate", "0 (as fast as acknowledgements allow) needs qos 1");
    }
  } else if (kind == "shadow") {
    p.kind = Phase::Kind::Shadow;
    r.only({"kind", "rounds", "timeout_s"});
    r.integer("rounds", p.shadow.rounds, 1, 1000);
    r.number("timeout_s", p.shadow.timeout_s, 0, kDay, true);
  } else if (kind == "jobs") {
    p.kind = Phase::Kind::Jobs;
    r.only({"kind", "timeout_s", "rollout_per_minute", "group"});
    r.string("group", p.jobs.group);
    r.number("timeout_s", p.jobs.timeout_s, 0, kDay, true);
    r.number("rollout_per_minute", p.jobs.rollout_per_minute, 0, 1e6);
  } else if (kind == "faults") {
    p.kind = Phase::Kind::Faults;
    r.only({"kind", "seconds", "rate", "cuts_per_s", "reboots_per_s", "broker_restart_at_s",
            "stalls_per_s", "stall_s"});
    r.number("seconds", p.faults.seconds, 0, kDay, true);
    r.number("rate", p.faults.rate, 0, 1e7);
    r.number("cuts_per_s", p.faults.cuts_per_s, 0, 1e5);
    r.number("reboots_per_s", p.faults.reboots_per_s, 0, 1e5);
    r.number("stalls_per_s", p.faults.stalls_per_s, 0, 1e5);
    read_stall_length(r, j, p.faults);
    if (j.contains("broker_restart_at_s")) {
      double at = 0;
      r.number("broker_restart_at_s", at, 0, kDay);
      if (r.ok() && at >= p.faults.seconds) {
        r.fail("broker_restart_at_s", "must be within the phase's seconds");
      }
      p.faults.broker_restart_at_s = at;
    }
  } else if (kind == "ota") {
    p.kind = Phase::Kind::Ota;
    r.only({"kind", "image_bytes", "block_bytes", "timeout_s", "group", "rollout_per_minute",
            "format"});
    // At least the edgekit header plus one payload byte; at most 16 MB (fleetd's admin API takes
    // the image base64 in one JSON body).
    r.integer("image_bytes", p.ota.image_bytes, 65, 16u * 1024 * 1024);
    // fleetd's and the agent's 256 at least; 1024 at most: a data message (a block in CBOR or
    // base64 in JSON, plus its topic) must fit a simulated device's 2 KB receive buffer.
    r.integer("block_bytes", p.ota.block_bytes, 256, 1024);
    r.number("timeout_s", p.ota.timeout_s, 0, kDay, true);
    r.string("group", p.ota.group);
    r.number("rollout_per_minute", p.ota.rollout_per_minute, 0, 1e6);
    std::string format = "cbor";
    r.string("format", format);
    if (r.ok() && format != "cbor" && format != "json") {
      r.fail("format", "must be \"cbor\" or \"json\"");
    }
    p.ota.json = format == "json";
  } else if (kind.empty()) {
    r.fail("kind", "missing (telemetry, shadow, jobs, faults or ota)");
  } else {
    r.fail("kind", "unknown phase '" + kind + "' (telemetry, shadow, jobs, faults or ota)");
  }
}

}  // namespace

std::optional<Scenario> parse_scenario(std::string_view text, std::string& error) {
  error.clear();
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    error = "not valid JSON";
    return std::nullopt;
  }
  Scenario s;
  Reader r(j, "", error);
  r.only({"devices", "identity", "prefix", "connect", "phases", "hold_s"});
  r.integer("devices", s.devices, 1, 1'000'000);
  std::string identity = "jitp";
  r.string("identity", identity);
  if (r.ok()) {
    if (identity == "jitp") {
      s.identity = IdentityMode::Jitp;
    } else if (identity == "claim") {
      s.identity = IdentityMode::Claim;
    } else {
      r.fail("identity", "must be \"jitp\" or \"claim\"");
    }
  }
  r.string("prefix", s.prefix);
  // The prefix becomes part of client ids, thing names and topics: keep it to what all three
  // allow (AWS thing names: [a-zA-Z0-9:_-]).
  if (r.ok() && (s.prefix.empty() || s.prefix.size() > 64 ||
                 s.prefix.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789_-") != std::string::npos)) {
    r.fail("prefix", "must be 1 to 64 of [a-zA-Z0-9_-]");
  }
  r.number("hold_s", s.hold_s, 0, kDay);
  if (r.ok() && j.contains("connect")) {
    Reader c(j["connect"], "connect", error);
    c.only({"rate", "in_flight", "keep_alive_s", "timeout_s", "attempts", "clean_start"});
    c.number("rate", s.connect.rate, 0, 1e6);
    c.integer("in_flight", s.connect.in_flight, 1, 100'000);
    c.integer("keep_alive_s", s.connect.keep_alive_s, 0, 65535);
    double timeout_s = s.connect.timeout_ms / 1000.0;
    c.number("timeout_s", timeout_s, 0, 3600, true);
    s.connect.timeout_ms = static_cast<std::uint32_t>(timeout_s * 1000);
    c.integer("attempts", s.connect.attempts, 1, 100);
    c.boolean("clean_start", s.connect.clean_start);
  }
  if (r.ok() && j.contains("phases")) {
    const json& phases = j["phases"];
    if (!phases.is_array()) {
      r.fail("phases", "must be an array");
    } else {
      for (std::size_t i = 0; i < phases.size() && error.empty(); ++i) {
        Phase p;
        read_phase(phases[i], "phases[" + std::to_string(i) + "]", p, error);
        s.phases.push_back(p);
      }
    }
  }
  if (!error.empty()) return std::nullopt;
  return s;
}

const char* to_string(Phase::Kind kind) noexcept {
  switch (kind) {
    case Phase::Kind::Telemetry: return "telemetry";
    case Phase::Kind::Shadow: return "shadow";
    case Phase::Kind::Jobs: return "jobs";
    case Phase::Kind::Faults: return "faults";
    case Phase::Kind::Ota: return "ota";
  }
  return "?";
}

}  // namespace edgekit::sim
