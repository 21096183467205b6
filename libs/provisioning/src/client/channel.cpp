// The provisioning Channel over edgekit::reqres: topic-only matching and the wiping of replies.
#include "edgekit/provisioning/channel.hpp"

#include <array>

namespace edgekit::provisioning {
namespace {

// The reqres tags of the two reply kinds (0 is "not the reply").
constexpr std::uint8_t kAcceptedTag = 1;
constexpr std::uint8_t kRejectedTag = 2;

// Fleet provisioning replies carry no clientToken: the reply is whichever of the two topics
// asked about comes first (one request in flight, so it cannot be another request's).
std::uint8_t match_reply(void* context, const reqres::Message& message) {
  const auto* topics = static_cast<const ReplyTopics*>(context);
  if (message.topic == topics->accepted) return kAcceptedTag;
  if (message.topic == topics->rejected) return kRejectedTag;
  return 0;
}

// Every message no request took. A provisioning reply among them (late, after its request
// timed out, or a duplicate delivery) may still hold a private key: wipe it where it arrived.
void on_unsolicited(void*, const reqres::Message& message) {
  auto m = match_topic(message.topic);
  if (m && m->kind != TopicKind::Request) reqres::wipe_in_place(message.payload);
}

Errc errc_of(reqres::Errc e) {
  switch (e) {
    case reqres::Errc::Ok:
      return Errc::Ok;
    case reqres::Errc::SubscribeFailed:
      return Errc::SubscribeFailed;
    case reqres::Errc::PublishFailed:
      return Errc::PublishFailed;
    case reqres::Errc::Timeout:
      return Errc::Timeout;
    case reqres::Errc::ReplyTooLarge:
      return Errc::ReplyTooLarge;
    case reqres::Errc::Busy:
      return Errc::Busy;
    case reqres::Errc::InvalidArgument:
      return Errc::InvalidArgument;
    case reqres::Errc::NotConnected:
    case reqres::Errc::WouldDeadlock:  // the agent's own thread: it cannot serve the request
      return Errc::NotConnected;
  }
  return Errc::NotConnected;
}

}  // namespace

void wipe(std::span<std::uint8_t> bytes) noexcept {
  reqres::wipe(bytes);
}

void wipe(std::span<char> bytes) noexcept {
  reqres::wipe(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()));
}

ReqresChannel::ReqresChannel(reqres::Channel& inner) noexcept : inner_(&inner) {
  inner_->set_message_handler(reqres::MessageHandler{&on_unsolicited, nullptr});
}

ReqresChannel::~ReqresChannel() {
  inner_->set_message_handler({});
}

Result<void, Errc> ReqresChannel::subscribe(ReplyTopics topics, Duration timeout) {
  const std::array<std::string_view, 2> filters{topics.accepted, topics.rejected};
  if (auto r = inner_->subscribe(filters, timeout); !r) return fail(errc_of(r.error()));
  return {};
}

void ReqresChannel::unsubscribe(ReplyTopics topics, Duration timeout) {
  const std::array<std::string_view, 2> filters{topics.accepted, topics.rejected};
  inner_->unsubscribe(filters, timeout);
}

Result<Reply, Errc> ReqresChannel::request(std::string_view request_topic,
                                           std::span<const std::uint8_t> payload,
                                           ReplyTopics topics, std::span<std::uint8_t> reply,
                                           Duration timeout) {
  // `topics` outlives the wait: the matcher runs only while this call waits.
  const reqres::Matcher matcher{&match_reply, &topics, /*wipe_reply=*/true};
  auto r = inner_->request(request_topic, payload, matcher, reply, timeout);
  if (!r) return fail(errc_of(r.error()));
  return Reply{r->tag == kAcceptedTag ? TopicKind::Accepted : TopicKind::Rejected, r->size};
}

ClientChannel::ClientChannel(mqtt::Client& client, const Clock& clock) noexcept
    : Holder(client, clock), ReqresChannel(inner) {}

ClientChannel::~ClientChannel() = default;

AgentChannel::AgentChannel(agent::Agent& agent) noexcept : Holder(agent), ReqresChannel(inner) {}

AgentChannel::~AgentChannel() = default;

}  // namespace edgekit::provisioning
