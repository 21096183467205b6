// edgekit shadow sync: a device keeping its Device Shadow in sync from the command line, with
// edgekit::shadow::Client over the blocking client. The application's fields are a small state
// file of `key=value` lines (values are JSON: 22, true, "eco"; a value that is not JSON is taken
// as a string). The device connects as its thing (mutual TLS, key in the token, like `edgekit
// provision`), takes the whole desired state once (get), reports its fields, then applies each
// delta (in version order, once: the library's DeltaOrder) to the file and reports what changed.
// The protocol work is the library's; this file reads options, keeps the file, and prints.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "edgekit/json/json.hpp"
#include "edgekit/reqres/channel.hpp"
#include "edgekit/shadow/client.hpp"
#include "token_tools.hpp"

namespace edgekit::tools {
// This file's helpers, in a namespace of their own: a unity build (EDGEKIT_UNITY_BUILD) compiles
// several command files as one translation unit.
namespace cmd_shadow {
namespace {

using nlohmann::json;
namespace sh = edgekit::shadow;

enum Exit { kOk = 0, kFailed = 1, kUsage = 2 };

struct ShadowOptions {
  BrokerOptions broker;
  std::string version_text = "5";
  std::string thing;
  std::string name;
  std::string state_file;
  std::vector<std::string> reports;
  bool once = false;
  int seconds = 0;
  int timeout_ms = 5000;
};

int fail(const std::string& why) {
  std::fprintf(stderr, "edgekit shadow: %s\n", why.c_str());
  return kFailed;
}

// A value of the state file or of --report: JSON when it parses as JSON, else a string.
json value_of(const std::string& text) {
  json v = json::parse(text, nullptr, false);
  return v.is_discarded() ? json(text) : v;
}

// The application's fields: an ordered map kept in the state file.
struct Fields {
  std::map<std::string, json> values;

  bool load(const std::string& path) {
    std::ifstream in(path);
    if (!in) return true;  // no file yet: no fields yet
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      const auto eq = line.find('=');
      if (eq == std::string::npos || eq == 0) return false;
      values[line.substr(0, eq)] = value_of(line.substr(eq + 1));
    }
    return true;
  }
  bool save(const std::string& path) const {
    // Written aside and renamed, so that a crash leaves the old file or the new one.
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      for (const auto& [k, v] : values) out << k << '=' << v.dump() << '\n';
      if (!out) return false;
    }
    return std::rename(tmp.c_str(), path.c_str()) == 0;
  }
  // Takes the members of a desired state or a delta; the keys whose value changed.
  std::vector<std::string> apply(const json& state) {
    std::vector<std::string> changed;
    if (!state.is_object()) return changed;
    for (const auto& [k, v] : state.items()) {
      if (v.is_null()) continue;  // AWS deletes such keys from desired; the field stays
      auto it = values.find(k);
      if (it != values.end() && it->second == v) continue;
      values[k] = v;
      changed.push_back(k);
    }
    return changed;
  }
  json as_object(const std::vector<std::string>* only = nullptr) const {
    json o = json::object();
    if (only == nullptr) {
      for (const auto& [k, v] : values) o[k] = v;
    } else {
      for (const auto& k : *only) o[k] = values.at(k);
    }
    return o;
  }
};

std::string describe(const sh::Error& e) {
  std::string s = sh::to_string(e.errc);
  if (sh::is_rejection(e.errc)) {
    s += " (" + std::to_string(e.rejection.code) + " " +
         std::string(e.rejection.message.is_string() ? e.rejection.message.text() : "") + ")";
  }
  return s;
}

std::string join(const json& fields) {
  std::string s;
  for (const auto& [k, v] : fields.items()) s += (s.empty() ? "" : " ") + k + "=" + v.dump();
  return s;
}

// The delta handler's context: it runs inside `poll` on this task (blocking client).
struct Sync {
  Fields* fields;
  std::vector<std::string> pending;  // keys changed by deltas, not reported yet
  static void on_delta(void* self, const sh::Delta& d) {
    auto* s = static_cast<Sync*>(self);
    const json state = json::parse(d.state.text(), nullptr, false);
    const auto changed = s->fields->apply(state);
    std::printf("delta version %llu: %s\n", static_cast<unsigned long long>(d.version),
                join(state).c_str());
    std::fflush(stdout);
    for (const auto& k : changed) s->pending.push_back(k);
  }
};

int run_sync(ShadowOptions& o) {
  if (o.state_file.empty()) return fail("--state is required (the device's fields)");
  if (o.once && o.seconds > 0) {
    std::fprintf(stderr, "edgekit shadow: --once or --for, not both\n");
    return kUsage;
  }
  if (!finish_broker_options("shadow", o.broker, o.version_text)) return kUsage;
  if (o.broker.client_id.empty()) o.broker.client_id = o.thing;  // the thing's own client id

  Fields fields;
  if (!fields.load(o.state_file)) return fail(o.state_file + ": want key=value lines");
  for (const auto& kv : o.reports) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "edgekit shadow: --report wants key=value, got '%s'\n", kv.c_str());
      return kUsage;
    }
    fields.values[kv.substr(0, eq)] = value_of(kv.substr(eq + 1));
  }

  auto connection = std::make_unique<Connection>(mqtt::EventHandler{}, 64 * 1024);
  const bool open = connection->open(o.broker);
  token::wipe(o.broker.pin);  // the TLS context holds what it needs
  if (!open) return fail("cannot connect: " + connection->error());
  reqres::ClientChannel channel(connection->client(), connection->clock());
  std::vector<char> request(16 * 1024), reply(64 * 1024);
  sh::ClientConfig config;
  config.thing = o.thing;
  config.shadow = o.name;
  config.token_seed =
      static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  sh::Client client(channel, config, request, reply);
  Sync sync{&fields, {}};
  client.set_delta_handler({&Sync::on_delta, &sync});
  const Duration timeout{o.timeout_ms};
  if (auto started = client.start(timeout); !started) {
    return fail(std::string("cannot subscribe to the shadow's topics: ") +
                sh::to_string(started.error()));
  }
  const std::string which =
      "thing " + o.thing + (o.name.empty() ? " (classic shadow)" : ", shadow " + o.name);

  // What the fleet wants, once, as a whole: older deltas then count as stale.
  auto doc = client.get(timeout);
  if (doc) {
    if (doc->desired && doc->desired->is_object()) {
      const json desired = json::parse(doc->desired->text(), nullptr, false);
      (void)fields.apply(desired);
      std::printf("desired (version %llu): %s\n", static_cast<unsigned long long>(doc->version),
                  join(desired).c_str());
    }
    client.document_applied(doc->version);
  } else if (doc.error().errc != sh::Errc::ShadowNotFound) {
    return fail("get: " + describe(doc.error()));
  } else {
    std::printf("no shadow yet for %s\n", which.c_str());
  }

  auto report = [&](const std::vector<std::string>* only) -> bool {
    const json reported = fields.as_object(only);
    const std::string text = reported.dump();
    sh::UpdateRequest u;
    u.reported = text;
    auto up = client.update(u, timeout);
    if (!up) {
      std::fprintf(stderr, "edgekit shadow: update: %s\n", describe(up.error()).c_str());
      return false;
    }
    std::printf("reported (version %llu): %s\n", static_cast<unsigned long long>(up->version),
                join(reported).c_str());
    std::fflush(stdout);
    return true;
  };
  if (!fields.save(o.state_file)) return fail("cannot write " + o.state_file);
  if (fields.values.empty()) {
    std::printf("nothing to report (%s has no fields)\n", o.state_file.c_str());
  } else if (!report(nullptr)) {
    return kFailed;
  }
  if (o.once) return kOk;

  // Deltas until the time is up (--for), or until interrupted.
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(o.seconds);
  std::printf("in sync with %s; waiting for deltas%s\n", which.c_str(),
              o.seconds > 0 ? (" for " + std::to_string(o.seconds) + " s").c_str() : "");
  std::fflush(stdout);
  while (o.seconds == 0 || std::chrono::steady_clock::now() < end) {
    if (auto p = client.poll(Duration{200}); !p) {
      return fail(std::string("connection: ") + sh::to_string(p.error()));
    }
    if (sync.pending.empty()) continue;
    std::vector<std::string> keys;
    keys.swap(sync.pending);
    if (!fields.save(o.state_file)) return fail("cannot write " + o.state_file);
    if (!report(&keys)) return kFailed;
  }
  client.stop(timeout);
  return kOk;
}

}  // namespace
}  // namespace cmd_shadow

void add_shadow_command(CLI::App& app, int& exit_code) {
  using namespace cmd_shadow;
  auto o = std::make_shared<ShadowOptions>();
  CLI::App* shadow = app.add_subcommand(
      "shadow", "a device's Device Shadow: keep a state file in sync with it (as the thing)");
  shadow->require_subcommand(1);
  CLI::App* c = shadow->add_subcommand(
      "sync",
      "connect as the thing, take its desired state, report the state file's fields, then apply "
      "each delta to the file and report it back");
  c->set_help_flag("--help", "print this help and exit");
  add_broker_options(*c, o->broker, o->version_text);
  c->add_option("--thing", o->thing, "the thing name (also the client id unless -i)")->required();
  c->add_option("--name", o->name, "a named shadow (default: the classic shadow)");
  c->add_option("--state", o->state_file,
                "the device's fields: key=value lines, values JSON (created when missing)")
      ->required();
  c->add_option("--report", o->reports, "set a field before reporting: key=value (repeatable)");
  c->add_flag("--once", o->once, "report and exit (no waiting for deltas)");
  c->add_option("--for", o->seconds,
                "wait for deltas this many seconds, then exit (default: "
                "until interrupted)")
      ->check(CLI::Range(1, 86'400));
  c->add_option("--timeout", o->timeout_ms, "milliseconds to wait for each reply")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  c->callback([o, &exit_code] { exit_code = run_sync(*o); });
}

}  // namespace edgekit::tools
