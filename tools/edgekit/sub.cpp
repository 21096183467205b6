// edgekit sub: subscribe and print what arrives, like mosquitto_sub.
#include <csignal>
#include <cstdio>
#include <memory>
#include <vector>

#include "commands.hpp"

namespace edgekit::tools {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct SubOptions {
  BrokerOptions broker;
  std::string version_text = "5";
  std::vector<std::string> topics;
  int qos = 0;
  int count = 0;          // 0: forever
  int timeout_s = 0;      // 0: none
  bool verbose = false;   // print the topic before the payload
  bool no_newline = false;
  bool print_properties = false;
  bool persistent = false;  // -c: keep the session (clean start off)
  bool debug = false;
};

struct Printer {
  const SubOptions* options;
  int received = 0;
  void operator()(mqtt::Client&, const mqtt::Event& e) {
    if (e.type == mqtt::EventType::ServerDisconnected) {
      std::fprintf(stderr, "edgekit sub: the broker disconnected us: %s\n", describe(e.reason_code).c_str());
      return;
    }
    if (e.type != mqtt::EventType::MessageReceived || e.message == nullptr) return;
    const mqtt::Publish& m = *e.message;
    ++received;
    if (options->verbose) std::printf("%.*s ", static_cast<int>(m.topic.size()), m.topic.data());
    std::fwrite(m.payload.data(), 1, m.payload.size(), stdout);
    if (options->print_properties) {
#if EDGEKIT_MQTT_ENABLE_V5  // without MQTT 5, Properties is empty
      const auto& p = m.properties;
      if (p.content_type) std::printf(" [content-type=%.*s]", static_cast<int>(p.content_type->size()), p.content_type->data());
      if (p.response_topic) std::printf(" [response-topic=%.*s]", static_cast<int>(p.response_topic->size()), p.response_topic->data());
      if (p.correlation_data) std::printf(" [correlation-data=%.*s]", static_cast<int>(p.correlation_data->size()),
                                          reinterpret_cast<const char*>(p.correlation_data->data()));
      if (p.message_expiry_interval) std::printf(" [message-expiry=%u]", static_cast<unsigned>(*p.message_expiry_interval));
      for (const mqtt::UserProperty up : p.user_properties) {
        std::printf(" [%.*s=%.*s]", static_cast<int>(up.key.size()), up.key.data(), static_cast<int>(up.value.size()), up.value.data());
      }
#endif
      std::printf(" [qos=%d%s]", static_cast<int>(m.qos), m.retain ? " retained" : "");
    }
    if (!options->no_newline) std::fputc('\n', stdout);
    std::fflush(stdout);
  }
};

int run_sub(SubOptions& o) {
  if (!finish_broker_options("sub", o.broker, o.version_text)) return 2;
  o.broker.clean_start = !o.persistent;
  if (o.persistent && o.broker.version == mqtt::Version::V5 && o.broker.session_expiry == 0) {
    o.broker.session_expiry = 3600;  // a kept session needs an expiry in MQTT 5
  }
  Printer printer{&o};
  auto conn = std::make_unique<Connection>(mqtt::EventHandler::bind(printer));
  if (!conn->open(o.broker)) {
    std::fprintf(stderr, "edgekit sub: %s\n", conn->error().c_str());
    return 1;
  }
  std::vector<mqtt::Subscription> subs;
  for (const auto& t : o.topics) subs.push_back({t, {static_cast<mqtt::QoS>(o.qos)}});
  std::vector<mqtt::ReasonCode> codes(subs.size());
  auto r = conn->client().subscribe(subs, codes, Duration{10000});
  if (!r) {
    std::fprintf(stderr, "edgekit sub: subscribe failed: %s\n", mqtt::to_string(r.error()));
    return 1;
  }
  for (std::size_t i = 0; i < subs.size(); ++i) {
    if (mqtt::is_error(codes[i])) {
      std::fprintf(stderr, "edgekit sub: broker refused '%s': %s\n", o.topics[i].c_str(), describe(codes[i]).c_str());
      return 1;
    }
    if (o.debug) {
      std::fprintf(stderr, "edgekit sub: subscribed to '%s' with %s (granted QoS %u)\n", o.topics[i].c_str(),
                   version_name(o.broker.version), static_cast<unsigned>(codes[i]));
    }
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  const Instant start = conn->clock().now();
  while (g_stop == 0 && (o.count == 0 || printer.received < o.count)) {
    Duration slice{200};
    if (o.timeout_s > 0) {
      Duration left = Duration{o.timeout_s * 1000} - (conn->clock().now() - start);
      if (left <= Duration{0}) {
        std::fprintf(stderr, "edgekit sub: timed out after %d s with %d message(s)\n", o.timeout_s, printer.received);
        (void)conn->client().disconnect();
        return 3;
      }
      if (left < slice) slice = left;
    }
    auto loop = conn->client().process_loop(slice);
    if (!loop) {
      std::fprintf(stderr, "edgekit sub: connection lost: %s\n", mqtt::to_string(loop.error()));
      return 1;
    }
  }
  (void)conn->client().disconnect();
  return 0;
}

}  // namespace

void add_sub_command(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<SubOptions>();
  CLI::App* sub = app.add_subcommand("sub", "subscribe and print messages");
  sub->set_help_flag("--help", "print this help and exit");
  add_broker_options(*sub, opts->broker, opts->version_text);
  sub->add_option("-t,--topic", opts->topics, "topic filter (repeatable)")->required();
  sub->add_option("-q,--qos", opts->qos, "maximum QoS to subscribe with")->check(CLI::Range(0, 2))->capture_default_str();
  sub->add_option("-C,--count", opts->count, "exit after this many messages");
  sub->add_option("-W,--timeout", opts->timeout_s, "exit with status 3 after this many seconds");
  sub->add_flag("-v,--verbose", opts->verbose, "print the topic before each payload");
  sub->add_flag("-N,--no-newline", opts->no_newline, "no newline after each payload");
  sub->add_flag("-F,--properties", opts->print_properties, "print MQTT 5 properties, QoS and retain");
  sub->add_flag("-c,--persistent", opts->persistent, "keep the session when disconnected (clean start off)");
  sub->add_option("-x,--session-expiry", opts->broker.session_expiry, "MQTT 5 session expiry interval (s)");
  sub->add_flag("-d,--debug", opts->debug, "print what happens on standard error");
  sub->callback([opts, &exit_code] { exit_code = run_sub(*opts); });
}

}  // namespace edgekit::tools
