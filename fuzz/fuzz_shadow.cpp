// Fuzzes the Device Shadow readers (edgekit::shadow, pure): what a device reads from
// …/get/accepted, …/update/accepted, …/update/delta, …/update/documents, …/delete/accepted and
// …/rejected, and the topic matcher. Every input is tried as each payload and as a topic.
// Oracles: no reader reads outside the payload (ASan); every Value a reader returns lies inside
// the payload and has the type its header promises; a state section read from an accepted
// document is written back into an update request that never fails on a large enough buffer,
// and reads back as the same text; a rejection's errc is the mapping of its code and message;
// a delta's version is applied once (the second time a duplicate); a matched topic is rebuilt
// byte for byte from what the matcher returned; a binding table applied to a delta either
// fails leaving every field as it was, or succeeds and its fields, written out and applied to
// fresh fields, give the same values.
#include <cstring>
#include <edgekit/shadow/bindings.hpp>
#include <edgekit/shadow/delta_order.hpp>
#include <edgekit/shadow/documents.hpp>
#include <edgekit/shadow/topics.hpp>
#include <array>
#include <optional>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"

namespace shadow = edgekit::shadow;
using edgekit::doc::json::Value;

namespace {

bool inside(const Value& v, std::string_view payload) {
  const std::string_view t = v.text();
  if (v.is_null() && t == "null" && t.data() != payload.data()) return true;  // a default Value
  return t.data() >= payload.data() && t.data() + t.size() <= payload.data() + payload.size();
}

bool inside(const std::optional<Value>& v, std::string_view payload) {
  return !v || inside(*v, payload);
}

bool object_or_null(const std::optional<Value>& v) {
  return !v || v->is_object() || v->is_null();
}

// A state section read from a reply, written back into an update request, reads back the same.
void round_trip(const std::optional<Value>& desired, const std::optional<Value>& reported) {
  const bool d = desired && (desired->is_object() || desired->is_null());
  const bool r = reported && (reported->is_object() || reported->is_null());
  if (!d && !r) return;
  shadow::UpdateRequest req;
  if (d) req.desired = desired->text();
  if (r) req.reported = reported->text();
  req.client_token = "fuzz";
  req.version = 1;
  std::vector<char> out(req.desired.size() + req.reported.size() + 128);
  auto doc = shadow::write_update_request(req, out);
  FUZZ_CHECK(doc.has_value());
  // Two levels deeper than where the section was read (a delta's state sits at level 1).
  auto parsed = edgekit::doc::json::parse(*doc, {.max_depth = 32});
  FUZZ_CHECK(parsed.has_value());
  if (d) FUZZ_CHECK(parsed->at_path("state.desired")->text() == req.desired);
  if (r) FUZZ_CHECK(parsed->at_path("state.reported")->text() == req.reported);
}

// The fields of a device, bound at nested and top-level paths of each type.
struct Fields {
  bool power = false;
  std::int32_t level = 0;
  std::int64_t energy = 0;
  char name[8] = "x";
  bool on = false;
  std::array<shadow::Binding, 5> table() {
    return {shadow::bind("power", power), shadow::bind("led.level", level),
            shadow::bind("led.on", on), shadow::bind("energy", energy), shadow::bind("name", name)};
  }
  bool operator==(const Fields& o) const {
    return power == o.power && level == o.level && energy == o.energy && on == o.on &&
           std::strcmp(name, o.name) == 0;
  }
};

void bindings(const Value& state) {
  Fields f;
  const Fields before;
  auto changed = shadow::apply_state(state, f.table());
  if (!changed) {
    FUZZ_CHECK(f == before);  // all or nothing
    return;
  }
  char out[256];
  edgekit::doc::json::Writer w(out);
  FUZZ_CHECK(shadow::write_fields(w, f.table()).has_value());
  auto written = w.finish();
  FUZZ_CHECK(written.has_value());
  auto parsed = edgekit::doc::json::parse(*written);
  FUZZ_CHECK(parsed.has_value());
  Fields again;
  FUZZ_CHECK(shadow::apply_state(*parsed, again.table()).has_value());
  FUZZ_CHECK(again == f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);

  if (auto a = shadow::read_accepted(payload)) {
    FUZZ_CHECK(a->state.is_object() || a->state.is_null());
    FUZZ_CHECK(inside(a->state, payload) && inside(a->desired, payload) &&
               inside(a->reported, payload) && inside(a->delta, payload) &&
               inside(a->metadata, payload) && inside(a->client_token, payload));
    FUZZ_CHECK(object_or_null(a->desired) && object_or_null(a->reported));
    FUZZ_CHECK(!a->delta || a->delta->is_object());
    FUZZ_CHECK(!a->metadata || a->metadata->is_object());
    FUZZ_CHECK(a->client_token.is_null() || a->client_token.is_string());
    round_trip(a->desired, a->reported);
  }
  if (auto d = shadow::read_delta(payload)) {
    FUZZ_CHECK(d->state.is_object() && inside(d->state, payload));
    FUZZ_CHECK(inside(d->metadata, payload) && inside(d->client_token, payload));
    shadow::DeltaOrder order;
    FUZZ_CHECK(order.accept(d->version) == shadow::DeltaDecision::Apply);
    FUZZ_CHECK(order.accept(d->version) == shadow::DeltaDecision::IgnoreDuplicate);
    round_trip(d->state, std::nullopt);
    bindings(d->state);
  }
  if (auto d = shadow::read_documents(payload)) {
    FUZZ_CHECK(object_or_null(d->current.state) && object_or_null(d->current.metadata));
    FUZZ_CHECK(inside(d->current.state, payload) && inside(d->current.metadata, payload));
    if (d->previous) {
      FUZZ_CHECK(object_or_null(d->previous->state) && object_or_null(d->previous->metadata));
      FUZZ_CHECK(inside(d->previous->state, payload));
    }
    FUZZ_CHECK(inside(d->client_token, payload));
  }
  if (auto d = shadow::read_delete_accepted(payload)) {
    FUZZ_CHECK(inside(d->client_token, payload));
  }
  if (auto r = shadow::read_rejected(payload)) {
    FUZZ_CHECK(shadow::is_rejection(r->errc));
    FUZZ_CHECK(r->message.is_null() || r->message.is_string());
    FUZZ_CHECK(inside(r->message, payload) && inside(r->client_token, payload));
    char text[64];
    std::string_view message;
    if (r->message.is_string()) {
      if (auto m = r->message.copy_string(text)) message = *m;
    }
    FUZZ_CHECK(r->errc == shadow::rejection_errc(r->code, message));
  }

  if (auto m = shadow::match_topic(payload)) {
    char buf[shadow::kMaxTopicLength];
    auto t = shadow::topic(m->thing, m->shadow, m->op, m->kind, buf);
    FUZZ_CHECK(t.has_value() && *t == payload);
  }
  return 0;
}
