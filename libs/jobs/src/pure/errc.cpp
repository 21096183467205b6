#include "edgekit/jobs/errc.hpp"

namespace edgekit::jobs {
namespace {

// aws-iot-protocols.md 2.3: the error codes of …/rejected, exactly as AWS spells them.
struct Code {
  std::string_view text;
  Errc errc;
};
constexpr Code kCodes[] = {
    {"InvalidTopic", Errc::InvalidTopic},
    {"InvalidJson", Errc::InvalidJson},
    {"InvalidRequest", Errc::InvalidRequest},
    {"InvalidStateTransition", Errc::InvalidStateTransition},
    {"ResourceNotFound", Errc::ResourceNotFound},
    {"VersionMismatch", Errc::VersionMismatch},
    {"InternalError", Errc::InternalError},
    {"RequestThrottled", Errc::RequestThrottled},
    {"TerminalStateReached", Errc::TerminalStateReached},
};

}  // namespace

Errc rejection_errc(std::string_view code) noexcept {
  for (const Code& c : kCodes) {
    if (code == c.text) return c.errc;
  }
  return Errc::RejectedOther;
}

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::Ok:
      return "success";
    case Errc::InvalidTopic:
      return "rejected: InvalidTopic";
    case Errc::InvalidJson:
      return "rejected: InvalidJson";
    case Errc::InvalidRequest:
      return "rejected: InvalidRequest";
    case Errc::InvalidStateTransition:
      return "rejected: InvalidStateTransition";
    case Errc::ResourceNotFound:
      return "rejected: ResourceNotFound";
    case Errc::VersionMismatch:
      return "rejected: VersionMismatch";
    case Errc::InternalError:
      return "rejected: InternalError";
    case Errc::RequestThrottled:
      return "rejected: RequestThrottled";
    case Errc::TerminalStateReached:
      return "rejected: TerminalStateReached";
    case Errc::RejectedOther:
      return "rejected";
    case Errc::MalformedDocument:
      return "malformed jobs document";
    case Errc::BufferTooSmall:
      return "buffer too small";
    case Errc::InvalidArgument:
      return "invalid argument";
    case Errc::TopicMismatch:
      return "not a jobs topic";
    case Errc::Busy:
      return "a jobs request is in flight";
    case Errc::NoJobRunning:
      return "no job is running";
    case Errc::StoreFailed:
      return "the job record could not be stored";
    case Errc::Timeout:
      return "no reply in time";
    case Errc::NotConnected:
      return "not connected";
    case Errc::PublishFailed:
      return "publish failed";
    case Errc::SubscribeFailed:
      return "subscribe failed";
    case Errc::ReplyTooLarge:
      return "reply too large for the buffer";
    case Errc::WouldDeadlock:
      return "a waiting call on the agent thread";
  }
  return "unknown jobs error";
}

}  // namespace edgekit::jobs
