// The device program of the Device Shadow size measurement: what a device links of
// edgekit::shadow_pure to keep a shadow in sync (aws-iot-protocols.md 1). It builds the topics of
// its classic shadow and of a named one, tells which topic a message came in on, writes get,
// update (reported state through the doc writer) and delete requests, reads get/accepted,
// update/accepted, update/delta (through the delta ordering), update/documents,
// delete/accepted and rejected documents, and maps the rejections to Errc; and it keeps its
// fields in sync through a binding table (a delta applied to them, the changed ones reported).
//
// Messages arrive in a receive buffer copied byte by byte from a volatile source, and the thing
// name is read the same way, so nothing is known to the compiler at build time: the image links
// what a device that gets them from the network and its storage links.
//
// It is also a runnable check: under QEMU (mps2-an386) it returns 0 only when every result is
// the expected one, and a step number otherwise.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "edgekit/shadow/bindings.hpp"
#include "edgekit/shadow/delta_order.hpp"
#include "edgekit/shadow/documents.hpp"
#include "edgekit/shadow/errc.hpp"
#include "edgekit/shadow/topics.hpp"

namespace {

using namespace edgekit::shadow;
using namespace std::string_view_literals;

// --- Buffers a device keeps (static RAM) ---------------------------------------------------------
char g_message[2048];  // the payload as received
std::size_t g_message_size = 0;
char g_request[512];
char g_topic[kMaxTopicLength];
char g_thing[kMaxThingNameLength];
DeltaOrder g_order;  // the last applied version (a device would keep it in flash)

// The application's fields and where they live in the shadow.
struct Lamp {
  bool power = false;
  std::int32_t level = 0;
  char color[8] = "";
} g_lamp;
const Binding g_table[] = {bind("power", g_lamp.power), bind("led.level", g_lamp.level),
                           bind("led.color", g_lamp.color)};

// Bytes "from the network": read through a volatile pointer, so they are not constants.
std::string_view receive(std::string_view message) {
  const volatile char* in = message.data();
  for (std::size_t i = 0; i < message.size(); ++i) g_message[i] = in[i];
  g_message_size = message.size();
  return {g_message, g_message_size};
}

// The thing name "from storage", likewise.
std::string_view stored_thing(std::string_view name) {
  const volatile char* in = name.data();
  for (std::size_t i = 0; i < name.size(); ++i) g_thing[i] = in[i];
  return {g_thing, name.size()};
}

int topics(std::string_view thing) {
  auto t = topic(thing, {}, Operation::Update, TopicKind::Request, g_topic);
  if (!t || *t != "$aws/things/lamp-1/shadow/update"sv) return 1;
  t = reply_filter(thing, "config"sv, Operation::Get, g_topic);
  if (!t || *t != "$aws/things/lamp-1/shadow/name/config/get/+"sv) return 2;
  // An incoming message's topic: which shadow, which reply?
  auto m = match_topic(receive("$aws/things/lamp-1/shadow/name/config/update/delta"sv));
  if (!m || m->thing != thing || m->shadow != "config"sv || m->op != Operation::Update ||
      m->kind != TopicKind::Delta)
    return 3;
  if (match_topic(receive("$aws/things/lamp-1/jobs/notify"sv))) return 4;
  return 0;
}

int requests() {
  auto g = write_get_request("tok-1"sv, g_request);
  if (!g || *g != R"({"clientToken":"tok-1"})"sv) return 10;
  UpdateWriter u(g_request);
  u.reported().begin_object().member("power", true).member("level", 7).end_object();
  auto up = u.finish("tok-2"sv);
  if (!up || *up != R"({"state":{"reported":{"power":true,"level":7}},"clientToken":"tok-2"})"sv)
    return 11;
  auto d = write_delete_request({}, g_request);
  if (!d || *d != "{}"sv) return 12;
  return 0;
}

int replies() {
  auto a = read_accepted(receive(
      R"({"state":{"desired":{"level":9},"reported":{"level":7},"delta":{"level":9}},)"
      R"("metadata":{"desired":{"level":{"timestamp":1700000000}},"reported":{"level":)"
      R"({"timestamp":1700000000}}},"version":4,"timestamp":1700000001,"clientToken":"tok-1"})"sv));
  if (!a || a->version != 4 || !a->client_token.equals("tok-1"sv) || !a->delta) return 20;
  g_order.applied_document(a->version);
  // A delta: applied once, then a redelivery and an older one are ignored.
  auto d =
      read_delta(receive(R"({"state":{"level":11},"metadata":{"level":{"timestamp":1700000005}},)"
                         R"("version":5,"timestamp":1700000005})"sv));
  if (!d || g_order.accept(d->version) != DeltaDecision::Apply) return 21;
  auto level = d->state.find("level"sv);
  if (!level || level->as_int64().value_or(0) != 11) return 22;
  if (g_order.accept(5) != DeltaDecision::IgnoreDuplicate) return 23;
  if (g_order.accept(3) != DeltaDecision::IgnoreStale) return 24;
  auto u = read_accepted(receive(
      R"({"state":{"reported":{"level":11}},"metadata":{"reported":{"level":)"
      R"({"timestamp":1700000006}}},"version":6,"timestamp":1700000006,"clientToken":"tok-2"})"sv));
  if (!u || u->version != 6 || !u->reported) return 25;
  auto docs = read_documents(
      receive(R"({"previous":{"state":{"reported":{"level":7}},"metadata":{},"version":5},)"
              R"("current":{"state":{"reported":{"level":11}},"metadata":{},"version":6},)"
              R"("timestamp":1700000006})"sv));
  if (!docs || !docs->previous || docs->current.version != 6) return 26;
  auto del = read_delete_accepted(receive(R"({"version":7,"timestamp":1700000010})"sv));
  if (!del || del->version != 7) return 27;
  g_order.reset();
  struct Case {
    std::string_view doc;
    Errc errc;
  };
  const Case rejections[] = {
      {R"({"code":409,"message":"Version conflict","clientToken":"tok-2"})"sv,
       Errc::VersionConflict},
      {R"({"code":404,"message":"No shadow exists with name: 'lamp-1'"})"sv, Errc::ShadowNotFound},
      {R"({"code":400,"message":"JSON contains too many levels of nesting; maximum is 6"})"sv,
       Errc::TooDeeplyNested},
      {R"({"code":429,"message":"Too Many Requests"})"sv, Errc::Throttled},
  };
  int step = 30;
  for (const Case& c : rejections) {
    auto r = read_rejected(receive(c.doc));
    if (!r || r->errc != c.errc) return step;
    ++step;
  }
  if (read_accepted(receive("not json"sv)).error() != Errc::MalformedDocument) return 40;
  return 0;
}

int bindings() {
  auto d = read_delta(receive(R"({"state":{"power":true,"led":{"level":12,"color":"red"}},)"
                              R"("version":8,"timestamp":1700000020})"sv));
  if (!d) return 60;
  auto changed = apply_state(d->state, g_table);
  if (!changed || *changed != 0b111 || !g_lamp.power || g_lamp.level != 12) return 61;
  auto bad = read_delta(receive(R"({"state":{"led":{"level":"high"}},"version":9,"timestamp":1})"sv));
  if (!bad) return 62;
  auto wrong = apply_state(bad->state, g_table);
  if (wrong || wrong.error().errc != Errc::FieldTypeMismatch || g_lamp.level != 12) return 63;
  UpdateWriter u(g_request);
  if (!write_fields(u.reported(), g_table, 0b110)) return 64;
  auto up = u.finish("tok-3"sv);
  if (!up ||
      *up != R"({"state":{"reported":{"led":{"level":12,"color":"red"}}},"clientToken":"tok-3"})"sv)
    return 65;
  return 0;
}

}  // namespace

int main() {
  const std::string_view thing = stored_thing("lamp-1"sv);
  if (int s = topics(thing)) return s;
  if (int s = requests()) return s;
  if (int s = replies()) return s;
  if (int s = bindings()) return s;
  // Which rejections the device retries (inline: no code of the library).
  if (!is_retryable(Errc::Throttled) || is_retryable(Errc::VersionConflict)) return 50;
  return 0;
}
