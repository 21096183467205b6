// edgekit sub: subscribe and print what arrives, like mosquitto_sub.
#include <csignal>
#include <cstdio>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "edgekit/mqtt/codec.hpp"
#include "terminal.hpp"

namespace edgekit::tools {
// This file's helpers, in a namespace of their own: a unity build (EDGEKIT_UNITY_BUILD) compiles
// several command files as one translation unit.
namespace cmd_sub {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// Writes received text for a person at a terminal (escape_for_terminal: nothing raw).
void print_escaped(std::string_view text) {
  const std::string out = escape_for_terminal(text);
  std::fwrite(out.data(), 1, out.size(), stdout);
}

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
  std::uint32_t max_packet_size = kDefaultMaxPacketSize;
  bool debug = false;
};

struct Printer {
  const SubOptions* options;
  int received = 0;
  bool stopped = false;  ///< disconnected by -C from inside the handler
  void operator()(mqtt::Client& client, const mqtt::Event& e) {
    if (e.type == mqtt::EventType::ServerDisconnected) {
      std::fprintf(stderr, "edgekit sub: the broker disconnected us: %s\n", describe(e.reason_code).c_str());
      return;
    }
    if (e.type != mqtt::EventType::MessageReceived || e.message == nullptr) return;
    if (options->count > 0 && received >= options->count) {
      // -C: one more than asked for arrived in the same read. Disconnecting here, before it is
      // printed, leaves it (and whatever follows) unacknowledged for the broker to resend,
      // while the ack of the last one printed is already queued and leaves before DISCONNECT.
      // (Disconnecting at the last one printed would hold back its ack: a resumed session would
      // print it twice.)
      stopped = true;
      (void)client.disconnect();
      return;
    }
    const mqtt::Publish& m = *e.message;
    ++received;
    // -v prints for a person at a terminal: nothing received may reach it raw. Without -v the
    // payload is written as it came (binary-safe, for pipes), as mosquitto_sub does.
    const auto text = [](auto bytes) {
      return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    };
    if (options->verbose) {
      print_escaped(m.topic);
      std::fputc(' ', stdout);
      print_escaped(text(m.payload));
    } else {
      std::fwrite(m.payload.data(), 1, m.payload.size(), stdout);
    }
    if (options->print_properties) {
#if EDGEKIT_MQTT_ENABLE_V5  // without MQTT 5, Properties is empty
      const auto& p = m.properties;
      const auto show = [](const char* name, std::string_view value) {
        std::printf(" [%s=", name);
        print_escaped(value);
        std::fputc(']', stdout);
      };
      if (p.content_type()) show("content-type", *p.content_type());
      if (p.response_topic()) show("response-topic", *p.response_topic());
      if (p.correlation_data()) show("correlation-data", text(*p.correlation_data()));
      if (p.message_expiry_interval()) std::printf(" [message-expiry=%u]", static_cast<unsigned>(*p.message_expiry_interval()));
      for (const mqtt::UserProperty up : p.user_properties) {
        std::fputs(" [", stdout);
        print_escaped(up.key);
        std::fputc('=', stdout);
        print_escaped(up.value);
        std::fputc(']', stdout);
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
  // Checked before connecting: a bad filter never costs a connection.
  for (const auto& t : o.topics) {
    if (auto v = mqtt::validate_topic_filter(t); !v) {
      std::fprintf(stderr, "edgekit sub: '%s' is not a topic filter: %s\n", t.c_str(), mqtt::to_string(v.error()));
      return 2;
    }
  }
  if (o.persistent && o.broker.version == mqtt::Version::V5 && o.broker.session_expiry == 0) {
    o.broker.session_expiry = 3600;  // a kept session needs an expiry in MQTT 5
  }
  Printer printer{&o};
  auto conn = std::make_unique<Connection>(mqtt::EventHandler::bind(printer), o.max_packet_size);
  if (!conn->open(o.broker)) {
    std::fprintf(stderr, "edgekit sub: %s\n", conn->error().c_str());
    return 1;
  }
  report_assigned_id("sub", *conn, o.broker, o.debug);
  if (o.debug && o.broker.version == mqtt::Version::V5) {
    // An MQTT 5 broker drops a larger message without telling us [MQTT-3.1.2-25]: say so.
    std::fprintf(stderr,
                 "edgekit sub: told the broker to send packets of at most %u bytes; it drops larger "
                 "messages (--max-packet-size raises the limit)\n",
                 static_cast<unsigned>(o.max_packet_size));
  }
  std::vector<mqtt::Subscription> subs;
  for (const auto& t : o.topics) subs.push_back({t, {static_cast<mqtt::QoS>(o.qos)}});
  std::vector<mqtt::ReasonCode> codes(subs.size());
  auto r = conn->client().subscribe(subs, codes, Duration{10000});
  // A resumed session's messages may arrive before the SUBACK, and -C may be reached with them.
  if (printer.stopped) return 0;
  if (!r) {
    std::fprintf(stderr, "edgekit sub: subscribe failed: %s\n",
                 describe_loss(r.error(), o.max_packet_size).c_str());
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
      // In 64-bit milliseconds: -W is at most a year, far from overflowing.
      const Duration left =
          Duration{static_cast<std::int64_t>(o.timeout_s) * 1000} - (conn->clock().now() - start);
      if (left <= Duration{0}) {
        std::fprintf(stderr, "edgekit sub: timed out after %d s with %d message(s)\n", o.timeout_s, printer.received);
        (void)conn->client().disconnect();
        return 3;
      }
      if (left < slice) slice = left;
    }
    auto loop = conn->client().process_loop(slice);
    if (!loop) {
      std::fprintf(stderr, "edgekit sub: connection lost after %d message(s): %s\n", printer.received,
                   describe_loss(loop.error(), o.max_packet_size).c_str());
      return 1;
    }
  }
  if (conn->client().connected()) (void)conn->client().disconnect();
  return 0;
}

}  // namespace
}  // namespace cmd_sub

void add_sub_command(CLI::App& app, int& exit_code) {
  using namespace cmd_sub;
  auto opts = std::make_shared<SubOptions>();
  CLI::App* sub = app.add_subcommand("sub", "subscribe and print messages");
  sub->set_help_flag("--help", "print this help and exit");
  add_broker_options(*sub, opts->broker, opts->version_text);
  sub->add_option("-t,--topic", opts->topics, "topic filter (repeatable)")->required();
  sub->add_option("-q,--qos", opts->qos, "maximum QoS to subscribe with")->check(CLI::Range(0, 2))->capture_default_str();
  sub->add_option("-C,--count", opts->count, "exit after this many messages")
      ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  sub->add_option("-W,--timeout", opts->timeout_s, "exit with status 3 after this many seconds (at most a year)")
      ->check(CLI::Range(1, 366 * 86400));
  sub->add_option("--max-packet-size", opts->max_packet_size,
                  "largest packet to receive, in bytes (MQTT 5 brokers are told; a larger message "
                  "ends a 3.1.1 connection with a message saying so)")
      ->check(CLI::Range(kMinMaxPacketSize, kProtocolMaxPacketSize))
      ->capture_default_str();
  sub->add_flag("-v,--verbose", opts->verbose, "print the topic before each payload");
  sub->add_flag("-N,--no-newline", opts->no_newline, "no newline after each payload");
  sub->add_flag("-F,--properties", opts->print_properties, "print MQTT 5 properties, QoS and retain");
  sub->add_flag("-c,--persistent", opts->persistent, "keep the session when disconnected (clean start off)");
  sub->add_option("-x,--session-expiry", opts->broker.session_expiry, "MQTT 5 session expiry interval (s)");
  sub->add_flag("-d,--debug", opts->debug, "print what happens on standard error");
  sub->callback([opts, &exit_code] { exit_code = run_sub(*opts); });
}

}  // namespace edgekit::tools
