#include "edgekit/shadow/errc.hpp"

namespace edgekit::shadow {
namespace {

// aws-iot-protocols.md 1.6: the exact messages of a 400.
struct Message {
  std::string_view text;
  Errc errc;
};
constexpr Message kBadRequests[] = {
    {"Invalid JSON", Errc::InvalidJson},
    {"Missing required node: state", Errc::MissingState},
    {"State node must be an object", Errc::StateNotObject},
    {"Desired node must be an object", Errc::DesiredNotObject},
    {"Reported node must be an object", Errc::ReportedNotObject},
    {"Invalid version", Errc::InvalidVersion},
    {"Invalid clientToken", Errc::InvalidClientToken},
    {"JSON contains too many levels of nesting; maximum is 6", Errc::TooDeeplyNested},
    {"State contains an invalid node", Errc::InvalidStateNode},
};

}  // namespace

Errc rejection_errc(std::int64_t code, std::string_view message) noexcept {
  switch (code) {
    case 400:
      for (const Message& m : kBadRequests) {
        if (message == m.text) return m.errc;
      }
      return Errc::BadRequest;
    case 401:
      return Errc::Unauthorized;
    case 403:
      return Errc::Forbidden;
    case 404:
      // The other 404 is "No shadow exists with name: '<name>'", whose name varies (1.6).
      return message == "Thing not found" ? Errc::ThingNotFound : Errc::ShadowNotFound;
    case 409:
      return Errc::VersionConflict;
    case 413:
      return Errc::PayloadTooLarge;
    case 415:
      return Errc::UnsupportedEncoding;
    case 429:
      return Errc::Throttled;
    default:
      break;
  }
  if (code >= 500 && code <= 599) return Errc::ServiceFailure;
  return Errc::RejectedOther;
}

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::Ok:
      return "success";
    case Errc::InvalidJson:
      return "rejected: Invalid JSON";
    case Errc::MissingState:
      return "rejected: Missing required node: state";
    case Errc::StateNotObject:
      return "rejected: State node must be an object";
    case Errc::DesiredNotObject:
      return "rejected: Desired node must be an object";
    case Errc::ReportedNotObject:
      return "rejected: Reported node must be an object";
    case Errc::InvalidVersion:
      return "rejected: Invalid version";
    case Errc::InvalidClientToken:
      return "rejected: Invalid clientToken";
    case Errc::TooDeeplyNested:
      return "rejected: JSON contains too many levels of nesting; maximum is 6";
    case Errc::InvalidStateNode:
      return "rejected: State contains an invalid node";
    case Errc::BadRequest:
      return "rejected: bad request (400)";
    case Errc::Unauthorized:
      return "rejected: Unauthorized";
    case Errc::Forbidden:
      return "rejected: Forbidden";
    case Errc::ThingNotFound:
      return "rejected: Thing not found";
    case Errc::ShadowNotFound:
      return "rejected: no such shadow";
    case Errc::VersionConflict:
      return "rejected: Version conflict";
    case Errc::PayloadTooLarge:
      return "rejected: The payload exceeds the maximum size allowed";
    case Errc::UnsupportedEncoding:
      return "rejected: unsupported encoding (UTF-8 only)";
    case Errc::Throttled:
      return "rejected: throttled (429)";
    case Errc::ServiceFailure:
      return "rejected: service failure";
    case Errc::RejectedOther:
      return "rejected";
    case Errc::MalformedDocument:
      return "malformed shadow document";
    case Errc::BufferTooSmall:
      return "buffer too small";
    case Errc::InvalidArgument:
      return "invalid argument";
    case Errc::TopicMismatch:
      return "not a shadow topic";
    case Errc::FieldTypeMismatch:
      return "a value of the wrong type for the field";
    case Errc::FieldOverflow:
      return "a value too large for the field";
    case Errc::Timeout:
      return "no reply in time";
    case Errc::NotConnected:
      return "not connected";
    case Errc::Busy:
      return "a request is in flight";
    case Errc::ReplyTooLarge:
      return "reply too large for the buffer";
    case Errc::SubscribeFailed:
      return "subscription failed";
    case Errc::PublishFailed:
      return "publish failed";
    case Errc::WouldDeadlock:
      return "would deadlock (called from the agent thread)";
  }
  return "unknown shadow error";
}

}  // namespace edgekit::shadow
