// Device Shadow request writers and response readers (aws-iot-protocols.md 1.2, 1.3) over
// edgekit::doc's JSON reader and writer.
#include "edgekit/shadow/documents.hpp"

#include <array>

namespace edgekit::shadow {
namespace {

using doc::json::Value;

// Member names, exactly as AWS spells them (1.2, 1.3).
constexpr std::string_view kState = "state";
constexpr std::string_view kDesired = "desired";
constexpr std::string_view kReported = "reported";
constexpr std::string_view kDelta = "delta";
constexpr std::string_view kMetadata = "metadata";
constexpr std::string_view kVersion = "version";
constexpr std::string_view kTimestamp = "timestamp";
constexpr std::string_view kClientToken = "clientToken";
constexpr std::string_view kPrevious = "previous";
constexpr std::string_view kCurrent = "current";
constexpr std::string_view kCode = "code";
constexpr std::string_view kMessage = "message";

constexpr std::uint8_t kDesiredBit = 1;
constexpr std::uint8_t kReportedBit = 2;

// The doc writer fails for text that is not UTF-8 or a call out of sequence (the caller's
// section was not one value), or for room.
Errc writer_errc(doc::Errc e) noexcept {
  return e == doc::Errc::BufferTooSmall ? Errc::BufferTooSmall : Errc::InvalidArgument;
}

Result<std::string_view, Errc> token_only(std::string_view client_token,
                                          std::span<char> out) noexcept {
  if (client_token.size() > kMaxClientTokenLength) return fail(Errc::InvalidArgument);
  doc::json::Writer w(out);
  w.begin_object();
  if (!client_token.empty()) w.member(kClientToken, client_token);
  w.end_object();
  auto done = w.finish();
  if (!done) return fail(writer_errc(done.error().code));
  return *done;
}

// Which JSON types a member may have.
enum Allow : std::uint8_t { kObject = 1, kNull = 2, kString = 4, kInteger = 8 };

bool allowed(const Value& v, std::uint8_t allow) noexcept {
  return ((allow & kObject) != 0 && v.is_object()) || ((allow & kNull) != 0 && v.is_null()) ||
         ((allow & kString) != 0 && v.is_string()) || ((allow & kInteger) != 0 && v.is_number());
}

// An optional member: absent, or present with one of the allowed types.
Result<std::optional<Value>, Errc> optional_member(const Value& object, std::string_view key,
                                                   std::uint8_t allow) noexcept {
  auto v = object.find(key);
  if (!v) return std::optional<Value>{};
  if (!allowed(*v, allow)) return fail(Errc::MalformedDocument);
  return std::optional<Value>(*v);
}

// `clientToken`: a string, or a Null Value when absent.
Result<Value, Errc> client_token(const Value& object) noexcept {
  auto v = optional_member(object, kClientToken, kString);
  if (!v) return fail(v.error());
  return v->value_or(Value{});
}

// A required non-negative integer (`version`): a fraction, a negative number or one beyond
// 2^64-1 is malformed, never rounded or wrapped.
Result<std::uint64_t, Errc> required_version(const Value& object) noexcept {
  auto v = object.find(kVersion);
  if (!v) return fail(Errc::MalformedDocument);
  auto n = v->as_uint64();
  if (!n) return fail(Errc::MalformedDocument);
  return *n;
}

Result<std::int64_t, Errc> required_int(const Value& object, std::string_view key) noexcept {
  auto v = object.find(key);
  if (!v) return fail(Errc::MalformedDocument);
  auto n = v->as_int64();
  if (!n) return fail(Errc::MalformedDocument);
  return *n;
}

// The root object of a reply.
Result<Value, Errc> root_object(std::string_view payload) noexcept {
  auto root = doc::json::parse(payload);
  if (!root || !root->is_object()) return fail(Errc::MalformedDocument);
  return *root;
}

Result<Snapshot, Errc> read_snapshot(const Value& v) noexcept {
  if (!v.is_object()) return fail(Errc::MalformedDocument);
  Snapshot s;
  auto state = optional_member(v, kState, kObject | kNull);
  if (!state) return fail(state.error());
  auto metadata = optional_member(v, kMetadata, kObject | kNull);
  if (!metadata) return fail(metadata.error());
  auto version = required_version(v);
  if (!version) return fail(version.error());
  s.state = *state;
  s.metadata = *metadata;
  s.version = *version;
  return s;
}

// The members every accepted, delta and delete reply ends with: `version` and `timestamp`
// (required) and `clientToken` (optional), into `out`'s fields of those names.
template <class Reply>
Result<void, Errc> read_version_timestamp_token(const Value& root, Reply& out) noexcept {
  auto version = required_version(root);
  if (!version) return fail(version.error());
  auto timestamp = required_int(root, kTimestamp);
  if (!timestamp) return fail(timestamp.error());
  auto token = client_token(root);
  if (!token) return fail(token.error());
  out.version = *version;
  out.timestamp = *timestamp;
  out.client_token = *token;
  return {};
}

}  // namespace

Result<std::string_view, Errc> write_get_request(std::string_view client_token,
                                                 std::span<char> out) noexcept {
  return token_only(client_token, out);
}

Result<std::string_view, Errc> write_delete_request(std::string_view client_token,
                                                    std::span<char> out) noexcept {
  return token_only(client_token, out);
}

UpdateWriter::UpdateWriter(std::span<char> out) noexcept : out_(out), w_(out) {
  w_.begin_object().key(kState).begin_object();
}

doc::json::Writer& UpdateWriter::desired() noexcept {
  return section(kDesired, kDesiredBit);
}

doc::json::Writer& UpdateWriter::reported() noexcept {
  return section(kReported, kReportedBit);
}

doc::json::Writer& UpdateWriter::section(std::string_view key, std::uint8_t bit) noexcept {
  check_section();
  // A section twice would be a duplicate key, which the service (and edgekit::doc) refuses.
  if ((sections_ & bit) != 0 && error_ == Errc::Ok) error_ = Errc::InvalidArgument;
  sections_ |= bit;
  w_.key(key);
  section_at_ = w_.size();
  open_ = true;
  return w_;
}

// Whether the section just written was one object or null (1.2): the compact writer puts the
// ':' first, then the value's first byte. An earlier writer error says nothing about the value.
void UpdateWriter::check_section() noexcept {
  if (!open_) return;
  open_ = false;
  if (error_ != Errc::Ok || w_.error().code != doc::Errc::Ok) return;
  const std::size_t at = section_at_ + 1;
  if (w_.size() <= at || (out_[at] != '{' && out_[at] != 'n')) error_ = Errc::InvalidArgument;
}

Result<std::string_view, Errc> UpdateWriter::finish(std::string_view client_token,
                                                    std::optional<std::uint64_t> version) noexcept {
  check_section();
  if (error_ == Errc::Ok && sections_ == 0) error_ = Errc::InvalidArgument;
  if (client_token.size() > kMaxClientTokenLength && error_ == Errc::Ok) {
    error_ = Errc::InvalidArgument;
  }
  if (error_ != Errc::Ok) return fail(error_);
  w_.end_object();
  if (!client_token.empty()) w_.member(kClientToken, client_token);
  if (version) w_.member(kVersion, *version);
  w_.end_object();
  auto done = w_.finish();
  if (!done) return fail(writer_errc(done.error().code));
  return *done;
}

Result<std::string_view, Errc> write_update_request(const UpdateRequest& request,
                                                    std::span<char> out) noexcept {
  if (request.desired.empty() && request.reported.empty()) return fail(Errc::InvalidArgument);
  UpdateWriter u(out);
  const std::string_view texts[] = {request.desired, request.reported};
  for (std::size_t i = 0; i < 2; ++i) {
    if (texts[i].empty()) continue;
    auto v = doc::json::parse(texts[i]);
    if (!v || !(v->is_object() || v->is_null())) return fail(Errc::InvalidArgument);
    (i == 0 ? u.desired() : u.reported()).value(*v);
  }
  return u.finish(request.client_token, request.version);
}

Result<Accepted, Errc> read_accepted(std::string_view payload) noexcept {
  auto root = root_object(payload);
  if (!root) return fail(root.error());
  Accepted a;
  auto state = root->find(kState);
  if (!state || !(state->is_object() || state->is_null())) return fail(Errc::MalformedDocument);
  a.state = *state;
  if (state->is_object()) {
    auto desired = optional_member(*state, kDesired, kObject | kNull);
    if (!desired) return fail(desired.error());
    auto reported = optional_member(*state, kReported, kObject | kNull);
    if (!reported) return fail(reported.error());
    auto delta = optional_member(*state, kDelta, kObject);
    if (!delta) return fail(delta.error());
    a.desired = *desired;
    a.reported = *reported;
    a.delta = *delta;
  }
  auto metadata = optional_member(*root, kMetadata, kObject);
  if (!metadata) return fail(metadata.error());
  a.metadata = *metadata;
  if (auto common = read_version_timestamp_token(*root, a); !common) return fail(common.error());
  return a;
}

Result<Delta, Errc> read_delta(std::string_view payload) noexcept {
  auto root = root_object(payload);
  if (!root) return fail(root.error());
  Delta d;
  auto state = root->find(kState);
  if (!state || !state->is_object()) return fail(Errc::MalformedDocument);
  d.state = *state;
  auto metadata = optional_member(*root, kMetadata, kObject);
  if (!metadata) return fail(metadata.error());
  d.metadata = *metadata;
  if (auto common = read_version_timestamp_token(*root, d); !common) return fail(common.error());
  return d;
}

Result<Documents, Errc> read_documents(std::string_view payload) noexcept {
  auto root = root_object(payload);
  if (!root) return fail(root.error());
  Documents d;
  auto current = root->find(kCurrent);
  if (!current) return fail(Errc::MalformedDocument);
  auto cur = read_snapshot(*current);
  if (!cur) return fail(cur.error());
  d.current = *cur;
  if (auto previous = root->find(kPrevious); previous && !previous->is_null()) {
    auto prev = read_snapshot(*previous);
    if (!prev) return fail(prev.error());
    d.previous = *prev;
  }
  auto timestamp = required_int(*root, kTimestamp);
  if (!timestamp) return fail(timestamp.error());
  d.timestamp = *timestamp;
  auto token = client_token(*root);
  if (!token) return fail(token.error());
  d.client_token = *token;
  return d;
}

Result<DeleteAccepted, Errc> read_delete_accepted(std::string_view payload) noexcept {
  auto root = root_object(payload);
  if (!root) return fail(root.error());
  DeleteAccepted d;
  if (auto common = read_version_timestamp_token(*root, d); !common) return fail(common.error());
  return d;
}

Result<Rejected, Errc> read_rejected(std::string_view payload) noexcept {
  auto root = root_object(payload);
  if (!root) return fail(root.error());
  Rejected r;
  auto code = required_int(*root, kCode);
  if (!code) return fail(code.error());
  r.code = *code;
  auto message = optional_member(*root, kMessage, kString);
  if (!message) return fail(message.error());
  r.message = message->value_or(Value{});
  if (auto t = root->find(kTimestamp)) {
    auto n = t->as_int64();
    if (!n) return fail(Errc::MalformedDocument);
    r.timestamp = *n;
  }
  auto token = client_token(*root);
  if (!token) return fail(token.error());
  r.client_token = *token;
  // Map on the unescaped message. Every message the mapping names is shorter than 64 bytes, so
  // a longer one maps by its code alone, as an unknown message would.
  std::string_view text;
  std::array<char, 64> unescaped{};
  if (r.message.is_string()) {
    if (auto copied = r.message.copy_string(unescaped)) text = *copied;
  }
  r.errc = rejection_errc(r.code, text);
  return r;
}

}  // namespace edgekit::shadow
