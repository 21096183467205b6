#pragma once
// The transport the agent's Client talks to: it forwards to the factory's current connection and
// gathers everything written between two waits in one buffer, so the packets of a batch of
// commands (and the acks of a batch of inbound packets) leave in one write. Any `wait` — the
// client waiting for data, or the agent going to sleep — flushes first, so nothing written is
// ever held back while someone waits for an answer.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>

#include "edgekit/core/clock.hpp"
#include "edgekit/transport/transport.hpp"

namespace edgekit::agent::detail {

class BatchingTransport final : public transport::Transport {
 public:
  BatchingTransport(std::size_t capacity, const Clock& clock)
      : buffer_(new std::byte[capacity]), capacity_(capacity), clock_(clock) {}

  /// A new connection (nullptr: none).
  void attach(transport::Transport* inner, int handle) noexcept {
    inner_ = inner;
    handle_ = handle;
    used_ = 0;
    broken_ = transport::IoStatus::Ok;
  }
  [[nodiscard]] int poll_handle() const noexcept { return inner_ != nullptr ? handle_ : -1; }
  void set_send_timeout(Duration d) noexcept { send_timeout_ = d; }
  [[nodiscard]] std::uint64_t writes() const noexcept { return writes_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t reads() const noexcept { return reads_.load(std::memory_order_relaxed); }
  /// Reads that returned data (agent thread only).
  [[nodiscard]] std::uint64_t data_reads() const noexcept { return data_reads_; }
  [[nodiscard]] bool pending() const noexcept { return used_ > 0; }

  transport::IoResult send(transport::ConstBuffer data) noexcept override {
    return writev(std::span<const transport::ConstBuffer>(&data, 1));
  }

  transport::IoResult writev(std::span<const transport::ConstBuffer> buffers) noexcept override {
    if (inner_ == nullptr) return {transport::IoStatus::Closed, 0, 0};
    if (broken_ != transport::IoStatus::Ok) return {broken_, 0, 0};
    std::size_t total = 0;
    for (auto b : buffers) total += b.size();
    if (total > capacity_ - used_) {
      flush();
      if (broken_ != transport::IoStatus::Ok) return {broken_, 0, 0};
    }
    if (total > capacity_) {
      // Larger than the whole buffer: straight through (the client retries partial writes).
      writes_.fetch_add(1, std::memory_order_relaxed);
      return inner_->writev(buffers);
    }
    for (auto b : buffers) {
      if (b.empty()) continue;
      std::memcpy(buffer_.get() + used_, b.data(), b.size());
      used_ += b.size();
    }
    return {transport::IoStatus::Ok, total, 0};
  }

  transport::IoResult recv(std::span<std::byte> buffer) noexcept override {
    if (inner_ == nullptr) return {transport::IoStatus::Closed, 0, 0};
    if (broken_ != transport::IoStatus::Ok) return {broken_, 0, 0};
    reads_.fetch_add(1, std::memory_order_relaxed);
    const auto r = inner_->recv(buffer);
    if (r.status == transport::IoStatus::Ok && r.bytes > 0) ++data_reads_;
    return r;
  }

  transport::WaitStatus wait(transport::Interest interest, std::uint32_t timeout_ms) noexcept override {
    if (inner_ == nullptr) return transport::WaitStatus::Error;
    flush();
    // A failed flush must reach the client: report ready, the next call returns the failure.
    if (broken_ != transport::IoStatus::Ok) return transport::WaitStatus::Ready;
    if (interest == transport::Interest::Write) return transport::WaitStatus::Ready;
    // A zero-timeout check for data (the agent asks after every batch) would cost a poll that
    // the recv behind it repeats. recv never blocks (transport.hpp: it answers WouldBlock when
    // nothing is there, which the client takes as "nothing yet"), so let the client try it
    // directly: one system call less for every read that finds data, the same count for one
    // that finds none.
    if (timeout_ms == 0) return transport::WaitStatus::Ready;
    return inner_->wait(interest, timeout_ms);
  }

  void close() noexcept override {
    if (inner_ == nullptr) return;
    // One non-blocking attempt (a DISCONNECT may be in the buffer), then close.
    if (used_ > 0 && broken_ == transport::IoStatus::Ok) {
      const transport::ConstBuffer b(buffer_.get(), used_);
      writes_.fetch_add(1, std::memory_order_relaxed);
      (void)inner_->writev(std::span<const transport::ConstBuffer>(&b, 1));
    }
    used_ = 0;
    inner_->close();
    inner_ = nullptr;
    handle_ = -1;
  }

  /// Writes what is gathered, waiting for writability up to the send timeout. A failure (or a
  /// link stalled beyond the timeout) breaks the transport: later calls report it.
  void flush() noexcept {
    if (inner_ == nullptr || used_ == 0 || broken_ != transport::IoStatus::Ok) return;
    std::size_t off = 0;
    const Instant deadline = clock_.now() + send_timeout_;
    while (off < used_) {
      const transport::ConstBuffer b(buffer_.get() + off, used_ - off);
      writes_.fetch_add(1, std::memory_order_relaxed);
      const auto r = inner_->writev(std::span<const transport::ConstBuffer>(&b, 1));
      if (r.status == transport::IoStatus::Ok) {
        off += r.bytes;
        continue;
      }
      if (r.status != transport::IoStatus::WouldBlock) {
        broken_ = r.status;
        break;
      }
      const Instant now = clock_.now();
      if (now >= deadline) {
        broken_ = transport::IoStatus::Error;
        break;
      }
      const auto left = static_cast<std::uint32_t>(std::min<long long>((deadline - now).count(), 1000));
      if (inner_->wait(transport::Interest::Write, left) == transport::WaitStatus::Error) {
        broken_ = transport::IoStatus::Error;
        break;
      }
    }
    used_ = 0;
  }

 private:
  std::unique_ptr<std::byte[]> buffer_;
  std::size_t capacity_;
  std::size_t used_ = 0;
  const Clock& clock_;
  transport::Transport* inner_ = nullptr;
  int handle_ = -1;
  transport::IoStatus broken_ = transport::IoStatus::Ok;
  Duration send_timeout_{5000};
  // Read by Agent::stats() from other threads.
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> reads_{0};
  std::uint64_t data_reads_ = 0;
};

}  // namespace edgekit::agent::detail
