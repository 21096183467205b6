#include "edgekit/ota/topics.hpp"

#include "edgekit/core/text.hpp"

namespace edgekit::ota {
namespace {

// aws-iot-protocols.md 3.1.
constexpr std::string_view kThings = "$aws/things/";
constexpr std::string_view kStreams = "/streams/";
// The kind levels, in the order of StreamTopic.
constexpr std::string_view kKinds[] = {"get", "data", "describe", "description", "rejected"};

// Splits off the next topic level (up to '/' or the end) from `t`.
std::string_view take_level(std::string_view& t) noexcept {
  const std::size_t end = t.find('/');
  const std::size_t n = end == std::string_view::npos ? t.size() : end;
  const std::string_view level(t.data(), n);
  t.remove_prefix(n);
  return level;
}

}  // namespace

std::string_view to_string(Format format) noexcept {
  return format == Format::Cbor ? "cbor" : "json";
}

bool valid_stream_id(std::string_view id) noexcept {
  return is_aws_name(id, kMaxStreamIdLength, /*allow_colon=*/false);
}

bool valid_thing_name(std::string_view name) noexcept {
  return is_aws_name(name, kMaxThingNameLength, /*allow_colon=*/true);
}

Result<std::string_view, Errc> stream_topic(std::string_view thing, std::string_view stream_id,
                                            StreamTopic kind, Format format,
                                            std::span<char> buffer) noexcept {
  if (!valid_thing_name(thing) || !valid_stream_id(stream_id)) return fail(Errc::InvalidArgument);
  TextAppender w{buffer};
  w.put(kThings);
  w.put(thing);
  w.put(kStreams);
  w.put(stream_id);
  w.put("/");
  w.put(kKinds[static_cast<std::size_t>(kind)]);
  w.put("/");
  w.put(to_string(format));
  if (w.overflow) return fail(Errc::BufferTooSmall);
  return w.view();
}

Result<StreamTopicMatch, Errc> match_stream_topic(std::string_view t) noexcept {
  StreamTopicMatch m;
  if (!consume_prefix(t, kThings)) return fail(Errc::TopicMismatch);
  m.thing = take_level(t);
  if (!valid_thing_name(m.thing) || !consume_prefix(t, kStreams)) return fail(Errc::TopicMismatch);
  m.stream_id = take_level(t);
  if (!valid_stream_id(m.stream_id) || !consume_prefix(t, "/")) return fail(Errc::TopicMismatch);
  const std::string_view kind = take_level(t);
  bool known = false;
  for (std::size_t i = 0; i < std::size(kKinds); ++i) {
    if (kind == kKinds[i]) {
      m.kind = static_cast<StreamTopic>(i);
      known = true;
    }
  }
  if (!known || !consume_prefix(t, "/")) return fail(Errc::TopicMismatch);
  if (t == "json") {
    m.format = Format::Json;
  } else if (t == "cbor") {
    m.format = Format::Cbor;
  } else {
    return fail(Errc::TopicMismatch);
  }
  return m;
}

}  // namespace edgekit::ota
