// fleetd's Jobs service: its readers of a device's request topics and payloads (untrusted bytes,
// jobs/wire.hpp). The first byte picks the reader: bit 0 set reads the rest as a topic; else
// (byte >> 1) % 4 is the operation whose payload the rest is. Oracles: no crash or hang; every
// rejection names an AWS code and a message, and its document (echoing the clientToken) dumps;
// an accepted request keeps the documented limits; an accepted topic names a valid thing.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "jobs/wire.hpp"

namespace j = edgekit::fleetd::jobs;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    auto t = j::read_topic(rest);
    if (!t) return 0;
    if (t->rejection) {
      if (t->rejection->code != j::ErrorCode::InvalidTopic || t->rejection->message.empty()) {
        std::abort();
      }
      return 0;
    }
    if (t->topic.thing.empty() || t->topic.thing.size() > 128) std::abort();
    if (t->topic.operation == j::Operation::Update && t->topic.job_id == "$next") std::abort();
    return 0;
  }
  const auto op = static_cast<j::Operation>((data[0] >> 1) % 4);
  auto r = j::read_request(op, rest);
  if (!r.request) {
    if (r.rejection.message.empty()) std::abort();
    (void)j::rejection_json(r.rejection, 0, r.client_token, nullptr).dump();
    return 0;
  }
  const j::Request& rq = *r.request;
  if (rq.client_token && rq.client_token->size() > 64) std::abort();
  if (rq.status_details && rq.status_details->size() > 10) std::abort();
  if (op == j::Operation::Update && (!rq.status || !j::device_may_report(*rq.status))) std::abort();
  if (rq.step_timeout_minutes && *rq.step_timeout_minutes != -1 &&
      (*rq.step_timeout_minutes < 1 || *rq.step_timeout_minutes > 10080)) {
    std::abort();
  }
  (void)j::rejection_json({j::ErrorCode::InvalidRequest, "m"}, 0, rq.client_token, nullptr).dump();
  return 0;
}
