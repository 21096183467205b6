#include "edgekit/testing/memory_transport.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>

#include "edgekit/testing/manual_clock.hpp"

namespace edgekit::testing {

using transport::ConstBuffer;
using transport::Interest;
using transport::WaitStatus;

MemoryTransport::IoResult MemoryTransport::send(ConstBuffer data) noexcept {
  std::unique_lock lock(mu_);
  ++stats_.send_calls;
  ConstBuffer one[1] = {data};
  return write_locked(one, false, lock);
}

MemoryTransport::IoResult MemoryTransport::writev(std::span<const ConstBuffer> buffers) noexcept {
  std::unique_lock lock(mu_);
  ++stats_.writev_calls;
  return write_locked(buffers, true, lock);
}

MemoryTransport::IoResult MemoryTransport::write_locked(std::span<const ConstBuffer> buffers,
                                                        bool /*is_writev*/,
                                                        std::unique_lock<std::mutex>& lock) {
  if (client_closed_) return {IoStatus::Closed, 0, 0};
  if (failed_errno_ != 0) return {IoStatus::Error, 0, failed_errno_};
  if (!send_script_.empty()) {
    IoStatus s = send_script_.front();
    send_script_.pop_front();
    if (s != IoStatus::Ok) return {s, 0, s == IoStatus::Error ? EIO : 0};
  }
  if (peer_closed_) return {IoStatus::Closed, 0, 0};
  std::size_t cap = send_cap_ == 0 ? SIZE_MAX : send_cap_;
  std::size_t moved = 0;
  for (ConstBuffer b : buffers) {
    std::size_t n = std::min(b.size(), cap - moved);
    outbound_.insert(outbound_.end(), b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    moved += n;
    if (moved == cap) break;
  }
  stats_.bytes_sent += moved;
  if (moved > 0 && on_outbound_) {
    // Run the hook without the lock: the broker it drives pushes inbound bytes.
    auto hook = on_outbound_;
    std::vector<std::byte> fresh(outbound_.end() - static_cast<std::ptrdiff_t>(moved),
                                 outbound_.end());
    lock.unlock();
    hook(fresh);
    lock.lock();
  }
  return {IoStatus::Ok, moved, 0};
}

MemoryTransport::IoResult MemoryTransport::recv(std::span<std::byte> buffer) noexcept {
  std::lock_guard lock(mu_);
  ++stats_.recv_calls;
  if (client_closed_) return {IoStatus::Closed, 0, 0};
  if (!recv_script_.empty()) {
    IoStatus s = recv_script_.front();
    recv_script_.pop_front();
    if (s != IoStatus::Ok) return {s, 0, s == IoStatus::Error ? EIO : 0};
  }
  if (failed_errno_ != 0) return {IoStatus::Error, 0, failed_errno_};
  if (buffer.empty()) return {IoStatus::Ok, 0, 0};
  if (inbound_.empty()) {
    return {peer_closed_ ? IoStatus::Closed : IoStatus::WouldBlock, 0, 0};
  }
  std::size_t n = std::min(buffer.size(), inbound_.size());
  if (recv_chunk_ != 0) n = std::min(n, recv_chunk_);
  std::copy_n(inbound_.begin(), n, buffer.begin());
  inbound_.erase(inbound_.begin(), inbound_.begin() + static_cast<std::ptrdiff_t>(n));
  stats_.bytes_received += n;
  return {IoStatus::Ok, n, 0};
}

WaitStatus MemoryTransport::wait(Interest interest, std::uint32_t timeout_ms) noexcept {
  std::function<void(Interest, std::uint32_t)> hook;
  {
    std::lock_guard lock(mu_);
    ++stats_.wait_calls;
    hook = on_wait_;
  }
  if (hook) hook(interest, timeout_ms);

  std::unique_lock lock(mu_);
  if (client_closed_) return WaitStatus::Error;
  const bool want_read =
      (static_cast<unsigned>(interest) & static_cast<unsigned>(Interest::Read)) != 0;
  const bool want_write =
      (static_cast<unsigned>(interest) & static_cast<unsigned>(Interest::Write)) != 0;
  auto ready = [&] {
    if (failed_errno_ != 0) return true;
    if (want_read && (!inbound_.empty() || peer_closed_ || !recv_script_.empty())) return true;
    // Scripted send outcomes are consumed by the sends themselves, so writing is always possible.
    return want_write;
  };
  if (ready()) return WaitStatus::Ready;
  if (blocking_wait_ && timeout_ms > 0) {
    if (cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready)) return WaitStatus::Ready;
    return WaitStatus::Timeout;
  }
  if (clock_ != nullptr) clock_->advance(Duration{timeout_ms});
  return WaitStatus::Timeout;
}

void MemoryTransport::close() noexcept {
  std::lock_guard lock(mu_);
  ++stats_.close_calls;
  client_closed_ = true;
  cv_.notify_all();
}

void MemoryTransport::push_inbound(std::span<const std::byte> bytes) {
  std::lock_guard lock(mu_);
  inbound_.insert(inbound_.end(), bytes.begin(), bytes.end());
  cv_.notify_all();
}

void MemoryTransport::push_inbound(std::string_view bytes) {
  push_inbound(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
}

void MemoryTransport::close_inbound() {
  std::lock_guard lock(mu_);
  peer_closed_ = true;
  cv_.notify_all();
}

void MemoryTransport::fail(int system_error) {
  std::lock_guard lock(mu_);
  failed_errno_ = system_error == 0 ? EIO : system_error;
  cv_.notify_all();
}

void MemoryTransport::set_recv_chunk(std::size_t n) {
  std::lock_guard lock(mu_);
  recv_chunk_ = n;
}

void MemoryTransport::set_send_cap(std::size_t n) {
  std::lock_guard lock(mu_);
  send_cap_ = n;
}

void MemoryTransport::script_recv(std::initializer_list<IoStatus> outcomes) {
  std::lock_guard lock(mu_);
  recv_script_.insert(recv_script_.end(), outcomes.begin(), outcomes.end());
}

void MemoryTransport::script_send(std::initializer_list<IoStatus> outcomes) {
  std::lock_guard lock(mu_);
  send_script_.insert(send_script_.end(), outcomes.begin(), outcomes.end());
}

void MemoryTransport::attach_clock(ManualClock* clock) {
  std::lock_guard lock(mu_);
  clock_ = clock;
}

void MemoryTransport::set_blocking_wait(bool on) {
  std::lock_guard lock(mu_);
  blocking_wait_ = on;
}

void MemoryTransport::on_outbound(std::function<void(std::span<const std::byte>)> hook) {
  std::lock_guard lock(mu_);
  on_outbound_ = std::move(hook);
}

void MemoryTransport::on_wait(std::function<void(Interest, std::uint32_t)> hook) {
  std::lock_guard lock(mu_);
  on_wait_ = std::move(hook);
}

std::vector<std::byte> MemoryTransport::outbound() const {
  std::lock_guard lock(mu_);
  return outbound_;
}

std::vector<std::byte> MemoryTransport::take_outbound() {
  std::lock_guard lock(mu_);
  std::vector<std::byte> out;
  out.swap(outbound_);
  return out;
}

std::size_t MemoryTransport::inbound_pending() const {
  std::lock_guard lock(mu_);
  return inbound_.size();
}

TransportStats MemoryTransport::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void MemoryTransport::reset_stats() {
  std::lock_guard lock(mu_);
  stats_ = {};
}

bool MemoryTransport::closed_by_client() const {
  std::lock_guard lock(mu_);
  return client_closed_;
}

}  // namespace edgekit::testing
