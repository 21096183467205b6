#include "revocation.hpp"

#include <algorithm>

#include "http/json_body.hpp"

namespace edgekit::fleetd {

Revoker::Revoker(asio::io_context& io, BrokerLink& link, Logger& log, StillRefused still_refused)
    : link_(link), log_(log), retry_(io), still_refused_(std::move(still_refused)) {}

bool Revoker::send(const std::string& certificate_id) {
  const std::string payload =
      http::dump(nlohmann::json{{"command", "kick"}, {"certificate_id", certificate_id}});
  auto r = link_.publish(kControlTopic, mqtt::as_bytes(payload), mqtt::QoS::AtLeastOnce);
  if (!r) return false;
  const auto now = std::chrono::steady_clock::now();
  while (!recent_.empty() && now - recent_.front().at > kResendWindow) recent_.pop_front();
  recent_.push_back(Sent{certificate_id, now});
  log_.info("revocation.kick_sent", {{"certificate_id", certificate_id}});
  return true;
}

void Revoker::kick(const std::string& certificate_id) {
  if (std::find(pending_.begin(), pending_.end(), certificate_id) == pending_.end()) {
    pending_.push_back(certificate_id);
  }
  flush();
  if (!pending_.empty()) {
    log_.warn("revocation.kick_pending",
              {{"certificate_id", certificate_id},
               {"pending", static_cast<std::int64_t>(pending_.size())}});
  }
}

void Revoker::kick_at_start(std::vector<std::string> certificate_ids) {
  if (certificate_ids.empty()) return;
  log_.info("revocation.reasserting",
            {{"certificates", static_cast<std::int64_t>(certificate_ids.size())}});
  for (auto& id : certificate_ids) pending_.push_back(std::move(id));
  flush();
}

void Revoker::flush() {
  while (!pending_.empty() && link_.up()) {
    if (!send(pending_.front())) {
      // The session's in-flight window is full (many kicks at once) or the link just dropped:
      // try again shortly; a dropped link flushes by itself when it is back (on_link).
      if (!retry_armed_) {
        retry_armed_ = true;
        retry_.expires_after(kRetry);
        retry_.async_wait([this](const asio::error_code& ec) {
          retry_armed_ = false;
          if (!ec) flush();
        });
      }
      return;
    }
    pending_.pop_front();
  }
}

void Revoker::on_link(bool up) {
  if (!up) return;
  // What went out just before the link dropped may not have reached the broker; send it again
  // unless the certificate was allowed back meanwhile.
  const auto now = std::chrono::steady_clock::now();
  std::deque<std::string> queue;
  auto add = [&](const std::string& id) {
    if (std::find(queue.begin(), queue.end(), id) != queue.end()) return;
    if (still_refused_ && !still_refused_(id)) return;
    queue.push_back(id);
  };
  for (const auto& s : recent_) {
    if (now - s.at <= kResendWindow) add(s.certificate_id);
  }
  for (const auto& id : pending_) add(id);
  recent_.clear();
  pending_ = std::move(queue);
  flush();
}

}  // namespace edgekit::fleetd
