// The Device Shadow client over a reqres::Channel.
#include "edgekit/shadow/client.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "edgekit/doc/json.hpp"

namespace edgekit::shadow {
namespace {

constexpr std::uint8_t kAccepted = 1;
constexpr std::uint8_t kRejected = 2;

bool token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
         c == '_' || c == '-';
}

// Copies `s` into `out` when it fits; false otherwise.
template <std::size_t N>
bool copy_name(std::string_view s, char (&out)[N], std::size_t& size) {
  if (s.size() > N) return false;
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  size = s.size();
  return true;
}

Errc errc_of(reqres::Errc e) {
  switch (e) {
    case reqres::Errc::Timeout:
      return Errc::Timeout;
    case reqres::Errc::NotConnected:
      return Errc::NotConnected;
    case reqres::Errc::Busy:
      return Errc::Busy;
    case reqres::Errc::ReplyTooLarge:
      return Errc::ReplyTooLarge;
    case reqres::Errc::SubscribeFailed:
      return Errc::SubscribeFailed;
    case reqres::Errc::WouldDeadlock:
      return Errc::WouldDeadlock;
    case reqres::Errc::InvalidArgument:
      return Errc::InvalidArgument;
    case reqres::Errc::Ok:
    case reqres::Errc::PublishFailed:
      break;
  }
  return Errc::PublishFailed;
}

Unexpected<Error> failure(Errc e) {
  return fail(Error{e, Rejected{}});
}

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

// Marks a request in flight for its scope: a second one (another thread, or a handler running
// inside the request over the blocking client) must not replace the token the first one waits
// for.
class Client::InFlight {
 public:
  explicit InFlight(Client& c) noexcept : c_(c), taken_(!c.in_request_.exchange(true)) {}
  ~InFlight() {
    if (taken_) c_.in_request_.store(false);
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  [[nodiscard]] bool taken() const noexcept { return taken_; }

 private:
  Client& c_;
  bool taken_;
};

// What the request's matcher needs: which replies are ours.
struct Client::Access {
  Client* client;
  Operation op;

  std::string_view thing() const { return {client->thing_, client->thing_size_}; }
  std::string_view shadow() const { return {client->shadow_, client->shadow_size_}; }

  // A reply to this client's current request: on `op`'s accepted or rejected topic of this
  // shadow, echoing the current token.
  static std::uint8_t match(void* context, const reqres::Message& m) {
    const auto* a = static_cast<const Access*>(context);
    auto t = match_topic(m.topic);
    if (!t || t->thing != a->thing() || t->shadow != a->shadow() || t->op != a->op) return 0;
    if (t->kind != TopicKind::Accepted && t->kind != TopicKind::Rejected) return 0;
    auto root = doc::json::parse(
        std::string_view(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()));
    if (!root || !root->is_object()) return 0;
    auto token = root->find("clientToken");
    if (!token || !token->equals(a->client->last_token())) return 0;
    return t->kind == TopicKind::Accepted ? kAccepted : kRejected;
  }

  // Unsolicited: deltas through the order, the rest counted and dropped.
  static void on_message(void* context, const reqres::Message& m) {
    auto* c = static_cast<Client*>(context);
    auto t = match_topic(m.topic);
    const bool ours = t && t->thing == std::string_view(c->thing_, c->thing_size_) &&
                      t->shadow == std::string_view(c->shadow_, c->shadow_size_);
    if (!ours || t->kind != TopicKind::Delta) {
      std::lock_guard lock(c->mutex_);
      ++c->stats_.ignored;
      return;
    }
    auto d = read_delta(
        std::string_view(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()));
    DeltaDecision decision = DeltaDecision::IgnoreStale;
    {
      std::lock_guard lock(c->mutex_);
      if (!d) {
        ++c->stats_.malformed;
        return;
      }
      decision = c->order_.accept(d->version);
      switch (decision) {
        case DeltaDecision::Apply:
          ++c->stats_.deltas_applied;
          break;
        case DeltaDecision::IgnoreStale:
          ++c->stats_.deltas_stale;
          break;
        case DeltaDecision::IgnoreDuplicate:
          ++c->stats_.deltas_duplicate;
          break;
      }
    }
    if (decision != DeltaDecision::Apply) return;
    if (c->delta_handler_.function != nullptr) {
      c->delta_handler_.function(c->delta_handler_.context, *d);
    }
    c->changed_order();
  }
};

Client::Client(reqres::Channel& channel, const ClientConfig& config, std::span<char> request,
               std::span<char> reply) noexcept
    : channel_(&channel),
      request_(request),
      reply_(reply),
      counter_(config.token_seed),
      order_(config.order) {
  std::string_view prefix = config.token_prefix;
  if (prefix.empty()) prefix = config.thing.substr(0, kMaxTokenPrefixLength);
  bool ok = valid_thing_name(config.thing) && copy_name(config.thing, thing_, thing_size_);
  ok = ok && (config.shadow.empty() || valid_shadow_name(config.shadow)) &&
       copy_name(config.shadow, shadow_, shadow_size_);
  ok = ok && !prefix.empty() &&
       std::all_of(prefix.begin(), prefix.end(), token_char) &&
       copy_name(prefix, prefix_, prefix_size_);
  if (!ok) config_error_ = Errc::InvalidArgument;
}

Client::~Client() {
  if (took_handler_) channel_->set_message_handler({});
}

Result<void, Errc> Client::start(Duration timeout) noexcept {
  if (config_error_ != Errc::Ok) return fail(config_error_);
  channel_->set_message_handler(reqres::MessageHandler{&Access::on_message, this});
  took_handler_ = true;
  std::array<std::array<char, kMaxTopicLength>, 3> buffers{};
  std::array<std::string_view, 3> filters{};
  const std::array<Operation, 3> ops{Operation::Get, Operation::Update, Operation::Delete};
  for (std::size_t i = 0; i < ops.size(); ++i) {
    auto f = reply_filter({thing_, thing_size_}, {shadow_, shadow_size_}, ops[i], buffers[i]);
    if (!f) return fail(f.error());
    filters[i] = *f;
  }
  auto r = channel_->subscribe(filters, timeout);
  if (!r) return fail(errc_of(r.error()));
  return {};
}

void Client::stop(Duration timeout) noexcept {
  std::array<std::array<char, kMaxTopicLength>, 3> buffers{};
  std::array<std::string_view, 3> filters{};
  const std::array<Operation, 3> ops{Operation::Get, Operation::Update, Operation::Delete};
  for (std::size_t i = 0; i < ops.size(); ++i) {
    auto f = reply_filter({thing_, thing_size_}, {shadow_, shadow_size_}, ops[i], buffers[i]);
    if (!f) return;
    filters[i] = *f;
  }
  channel_->unsubscribe(filters, timeout);
}

std::string_view Client::next_token() noexcept {
  std::memcpy(token_, prefix_, prefix_size_);
  token_[prefix_size_] = '-';
  auto [end, ec] = std::to_chars(token_ + prefix_size_ + 1, token_ + sizeof(token_), counter_++);
  (void)ec;  // 40 + 1 + 10 digits always fit 64 bytes
  token_size_ = static_cast<std::size_t>(end - token_);
  return last_token();
}

ClientResult<std::string_view> Client::exchange(Operation op, std::string_view document,
                                                Duration timeout) noexcept {
  if (config_error_ != Errc::Ok) return failure(config_error_);
  std::array<char, kMaxTopicLength> topic_buffer{};
  auto t = topic({thing_, thing_size_}, {shadow_, shadow_size_}, op, TopicKind::Request,
                 topic_buffer);
  if (!t) return failure(t.error());
  Access access{this, op};
  auto r = channel_->request(
      *t, bytes_of(document), reqres::Matcher{&Access::match, &access},
      std::span(reinterpret_cast<std::uint8_t*>(reply_.data()), reply_.size()), timeout);
  if (!r) return failure(errc_of(r.error()));
  const std::string_view payload(reply_.data(), r->size);
  if (r->tag == kAccepted) return payload;
  auto rejected = read_rejected(payload);
  if (!rejected) return failure(Errc::MalformedDocument);
  return fail(Error{rejected->errc, *rejected});
}

ClientResult<Accepted> Client::accepted_reply(Operation op,
                                              Result<std::string_view, Errc> document,
                                              Duration timeout) noexcept {
  if (!document) return failure(document.error());
  auto reply = exchange(op, *document, timeout);
  if (!reply) return fail(reply.error());
  auto accepted = read_accepted(*reply);
  if (!accepted) return failure(Errc::MalformedDocument);
  return *accepted;
}

ClientResult<Accepted> Client::get(Duration timeout) noexcept {
  InFlight busy(*this);
  if (!busy.taken()) return failure(Errc::Busy);
  return accepted_reply(Operation::Get, write_get_request(next_token(), request_), timeout);
}

ClientResult<Accepted> Client::finish_update(UpdateWriter& u, std::optional<std::uint64_t> version,
                                             Duration timeout) noexcept {
  InFlight busy(*this);
  if (!busy.taken()) return failure(Errc::Busy);
  return accepted_reply(Operation::Update, u.finish(next_token(), version), timeout);
}

ClientResult<Accepted> Client::update(const UpdateRequest& request, Duration timeout) noexcept {
  InFlight busy(*this);
  if (!busy.taken()) return failure(Errc::Busy);
  UpdateRequest r = request;
  r.client_token = next_token();
  return accepted_reply(Operation::Update, write_update_request(r, request_), timeout);
}

ClientResult<Accepted> Client::clear(std::optional<std::uint64_t> version,
                                     Duration timeout) noexcept {
  InFlight busy(*this);
  if (!busy.taken()) return failure(Errc::Busy);
  // {"state":null,...}: UpdateWriter insists on a section, so the document is written here.
  doc::json::Writer w(request_);
  w.begin_object().key("state").null().member("clientToken", next_token());
  if (version) w.key("version").uint64(*version);
  w.end_object();
  auto document = w.finish();
  return accepted_reply(Operation::Update,
                        document ? Result<std::string_view, Errc>(*document)
                                 : Result<std::string_view, Errc>(fail(Errc::BufferTooSmall)),
                        timeout);
}

ClientResult<DeleteAccepted> Client::remove(Duration timeout) noexcept {
  InFlight busy(*this);
  if (!busy.taken()) return failure(Errc::Busy);
  const std::string_view token = next_token();
  auto doc = write_delete_request(token, request_);
  if (!doc) return failure(doc.error());
  auto reply = exchange(Operation::Delete, *doc, timeout);
  if (!reply) return fail(reply.error());
  auto deleted = read_delete_accepted(*reply);
  if (!deleted) return failure(Errc::MalformedDocument);
  {
    std::lock_guard lock(mutex_);
    order_.reset();
  }
  changed_order();
  return *deleted;
}

Result<void, Errc> Client::poll(Duration timeout) noexcept {
  auto r = channel_->poll(timeout);
  if (!r) return fail(errc_of(r.error()));
  return {};
}

void Client::document_applied(std::uint64_t version) noexcept {
  {
    std::lock_guard lock(mutex_);
    order_.applied_document(version);
  }
  changed_order();
}

void Client::changed_order() noexcept {
  if (version_handler_.function == nullptr) return;
  version_handler_.function(version_handler_.context, order());
}

DeltaOrder Client::order() const noexcept {
  std::lock_guard lock(mutex_);
  return order_;
}

ClientStats Client::stats() const noexcept {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace edgekit::shadow
