// edgekit pub: publish one message (or the same one several times), like mosquitto_pub.
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "edgekit/mqtt/codec.hpp"
#include "input.hpp"

namespace edgekit::tools {
// This file's helpers, in a namespace of their own: a unity build (EDGEKIT_UNITY_BUILD) compiles
// several command files as one translation unit.
namespace cmd_pub {
namespace {

struct PubOptions {
  BrokerOptions broker;
  std::string version_text = "5";
  std::string topic;
  std::string message;
  std::string file;
  bool null_message = false;
  bool from_stdin = false;
  int qos = 0;
  bool retain = false;
  int repeat = 1;
  int repeat_delay_ms = 0;
  int timeout_ms = 10000;
  std::uint32_t max_packet_size = kDefaultMaxPacketSize;
  std::vector<std::string> user_properties;
  std::string content_type;
  std::string response_topic;
  std::string correlation_data;
  std::uint32_t message_expiry = 0;
  bool debug = false;
};

// The payload from -f FILE or -s (standard input), at most --max-packet-size bytes: checked
// before connecting, with a sentence naming the cause.
bool read_payload(const PubOptions& o, std::string& payload) {
  std::string error;
  if (read_input(o.file, o.max_packet_size, payload, error)) return true;
  const std::string what = o.file.empty() ? "standard input" : o.file;
  if (error.rfind("more than", 0) == 0) {
    std::fprintf(stderr,
                 "edgekit pub: cannot send %s: %s, the most one packet can carry with "
                 "--max-packet-size %u (at most %u, the protocol's limit)\n",
                 what.c_str(), error.c_str(), static_cast<unsigned>(o.max_packet_size),
                 static_cast<unsigned>(kProtocolMaxPacketSize));
  } else {
    std::fprintf(stderr, "edgekit pub: cannot read %s: %s\n", what.c_str(), error.c_str());
  }
  return false;
}

int run_pub(PubOptions& o) {
  if (!finish_broker_options("pub", o.broker, o.version_text)) return 2;
  // Checked before reading any input and before connecting: a bad topic never costs a
  // connection (and an MQTT 5 broker would end it with 0x90).
  if (auto v = mqtt::validate_topic_name(o.topic); !v) {
    std::fprintf(stderr, "edgekit pub: '%s' is not a topic name to publish to: %s\n", o.topic.c_str(),
                 mqtt::to_string(v.error()));
    return 2;
  }
  std::string payload = o.message;
  if (!o.file.empty() || o.from_stdin) {
    if (!read_payload(o, payload)) return 2;
  } else if (o.null_message) {
    payload.clear();
  }

  std::vector<mqtt::UserProperty> user_props;
  for (const auto& kv : o.user_properties) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "edgekit pub: --user-property wants key=value, got '%s'\n", kv.c_str());
      return 2;
    }
    user_props.push_back({std::string_view(kv).substr(0, eq), std::string_view(kv).substr(eq + 1)});
  }
  const bool has_props = !user_props.empty() || !o.content_type.empty() ||
                         !o.response_topic.empty() || !o.correlation_data.empty() ||
                         o.message_expiry != 0;
  if (has_props && o.broker.version != mqtt::Version::V5) {
    std::fprintf(stderr, "edgekit pub: message properties need MQTT 5 (-V 5)\n");
    return 2;
  }

  mqtt::Publish msg;
  msg.topic = o.topic;
  msg.payload = mqtt::as_bytes(payload);
  msg.qos = static_cast<mqtt::QoS>(o.qos);
  msg.retain = o.retain;
#if EDGEKIT_MQTT_ENABLE_V5  // without MQTT 5, Properties is empty
  if (!user_props.empty()) msg.properties.user_properties = mqtt::UserProperties(user_props);
  if (!o.content_type.empty()) msg.properties.set_content_type(o.content_type);
  if (!o.response_topic.empty()) msg.properties.set_response_topic(o.response_topic);
  if (!o.correlation_data.empty()) msg.properties.set_correlation_data(mqtt::as_bytes(o.correlation_data));
  if (o.message_expiry != 0) msg.properties.set_message_expiry_interval(o.message_expiry);
#endif
  // The whole packet, measured and validated by the codec before connecting.
  msg.packet_id = o.qos > 0 ? 1 : 0;
  const auto size = mqtt::encoded_size(msg, o.broker.version);
  msg.packet_id = 0;
  if (!size) {
    std::fprintf(stderr, "edgekit pub: the message cannot be sent: %s\n", mqtt::to_string(size.error()));
    return 2;
  }
  if (*size > o.max_packet_size) {
    std::fprintf(stderr,
                 "edgekit pub: the message needs a %zu-byte packet, more than --max-packet-size %u "
                 "(at most %u, the protocol's limit)\n",
                 *size, static_cast<unsigned>(o.max_packet_size), static_cast<unsigned>(kProtocolMaxPacketSize));
    return 2;
  }

  // A pub receives only acknowledgements: a small receive buffer is enough.
  auto conn = std::make_unique<Connection>(mqtt::EventHandler{}, 64 * 1024);
  if (!conn->open(o.broker)) {
    std::fprintf(stderr, "edgekit pub: %s\n", conn->error().c_str());
    return 1;
  }
  if (o.debug) {
    std::fprintf(stderr, "edgekit pub: connected to %s:%u with %s as '%s'\n", o.broker.host.c_str(),
                 o.broker.port, version_name(o.broker.version),
                 std::string(conn->session().client_id()).c_str());
  }

  report_assigned_id("pub", *conn, o.broker, o.debug);

  int failures = 0;
  for (int i = 0; i < o.repeat; ++i) {
    auto r = conn->client().publish_and_wait(msg, Duration{o.timeout_ms});
    if (!r) {
      if (r.error() == mqtt::Errc::PacketTooLarge) {
        // MQTT 5: the broker's Maximum Packet Size from CONNACK [MQTT-3.1.2-24].
        std::fprintf(stderr,
                     "edgekit pub: publish to '%s' refused: the broker accepts packets of at most %u "
                     "bytes, this message needs %zu\n",
                     o.topic.c_str(), static_cast<unsigned>(conn->session().server_maximum_packet_size()),
                     *size);
      } else {
        std::fprintf(stderr, "edgekit pub: publish to '%s' failed: %s\n", o.topic.c_str(),
                     mqtt::to_string(r.error()));
      }
      return 1;  // the Connection's destructor ends the connection with DISCONNECT
    }
    if (mqtt::is_error(*r)) {
      std::fprintf(stderr, "edgekit pub: broker refused the message: %s\n", describe(*r).c_str());
      ++failures;
    } else if (o.debug) {
      std::fprintf(stderr, "edgekit pub: sent %zu bytes to '%s' at QoS %d%s\n", payload.size(),
                   o.topic.c_str(), o.qos, o.qos > 0 ? (" → " + describe(*r)).c_str() : "");
    }
    if (o.repeat_delay_ms > 0 && i + 1 < o.repeat) {
      std::this_thread::sleep_for(std::chrono::milliseconds(o.repeat_delay_ms));
    }
  }
  (void)conn->client().disconnect();
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace cmd_pub

void add_pub_command(CLI::App& app, int& exit_code) {
  using namespace cmd_pub;
  auto opts = std::make_shared<PubOptions>();
  CLI::App* pub = app.add_subcommand("pub", "publish a message");
  pub->set_help_flag("--help", "print this help and exit");
  add_broker_options(*pub, opts->broker, opts->version_text);
  pub->add_option("-t,--topic", opts->topic, "topic to publish to")->required();
  auto* m = pub->add_option("-m,--message", opts->message, "message payload");
  auto* f = pub->add_option("-f,--file", opts->file, "send the contents of a file");
  auto* n = pub->add_flag("-n,--null-message", opts->null_message, "send an empty message");
  auto* s = pub->add_flag("-s,--stdin-file", opts->from_stdin, "send all of standard input");
  m->excludes(f)->excludes(n)->excludes(s);
  f->excludes(n)->excludes(s);
  n->excludes(s);
  pub->add_option("-q,--qos", opts->qos, "quality of service")->check(CLI::Range(0, 2))->capture_default_str();
  pub->add_flag("-r,--retain", opts->retain, "ask the broker to retain the message");
  pub->add_option("--repeat", opts->repeat, "send the message this many times")->check(CLI::PositiveNumber);
  pub->add_option("--repeat-delay", opts->repeat_delay_ms, "milliseconds between repeats (at most a day)")
      ->check(CLI::Range(0, 86400 * 1000));
  pub->add_option("--timeout", opts->timeout_ms, "milliseconds to wait for each acknowledgement (1 ms to a day)")
      ->check(CLI::Range(1, 86400 * 1000))
      ->capture_default_str();
  pub->add_option("--max-packet-size", opts->max_packet_size,
                  "largest packet to send, in bytes; a larger input is refused before connecting")
      ->check(CLI::Range(kMinMaxPacketSize, kProtocolMaxPacketSize))
      ->capture_default_str();
  pub->add_option("--user-property", opts->user_properties, "MQTT 5 user property key=value (repeatable)");
  pub->add_option("--content-type", opts->content_type, "MQTT 5 content type");
  pub->add_option("--response-topic", opts->response_topic, "MQTT 5 response topic");
  pub->add_option("--correlation-data", opts->correlation_data, "MQTT 5 correlation data");
  pub->add_option("--message-expiry", opts->message_expiry, "MQTT 5 message expiry interval (s)");
  pub->add_flag("-d,--debug", opts->debug, "print what happens on standard error");
  pub->callback([opts, &exit_code] { exit_code = run_pub(*opts); });
}

}  // namespace edgekit::tools
