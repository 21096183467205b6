#pragma once
// Helpers for the agent's tests: a status recorder, a message recorder, completion counters.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "edgekit/agent/agent.hpp"
#include "edgekit/testing/mosquitto.hpp"

namespace edgekit::agent::test {

using namespace std::chrono_literals;

struct StatusLog {
  std::mutex m;
  std::vector<Status> all;
  static void on(void* ctx, const Status& s) {
    auto* self = static_cast<StatusLog*>(ctx);
    std::lock_guard<std::mutex> l(self->m);
    self->all.push_back(s);
  }
  StatusHandler handler() { return {&StatusLog::on, this}; }
  std::size_t count(ConnectionState st) {
    std::lock_guard<std::mutex> l(m);
    std::size_t n = 0;
    for (auto& s : all) n += s.state == st ? 1 : 0;
    return n;
  }
  std::size_t count_reason(StatusReason r) {
    std::lock_guard<std::mutex> l(m);
    std::size_t n = 0;
    for (auto& s : all) n += s.reason == r ? 1 : 0;
    return n;
  }
  std::vector<Status> snapshot() {
    std::lock_guard<std::mutex> l(m);
    return all;
  }
};

struct Message {
  std::string topic;
  std::string payload;
  mqtt::QoS qos = mqtt::QoS::AtMostOnce;
  bool retain = false;
};

struct Inbox {
  std::mutex m;
  std::condition_variable cv;
  std::vector<Message> messages;
  static void on(void* ctx, const mqtt::Publish& p) {
    auto* self = static_cast<Inbox*>(ctx);
    {
      std::lock_guard<std::mutex> l(self->m);
      self->messages.push_back({std::string(p.topic), std::string(mqtt::as_string(p.payload)),
                                p.qos, p.retain});
    }
    self->cv.notify_all();
  }
  MessageHandler handler() { return {&Inbox::on, this}; }
  bool wait_for(std::size_t n, std::chrono::milliseconds t = 5s) {
    std::unique_lock<std::mutex> l(m);
    return cv.wait_for(l, t, [&] { return messages.size() >= n; });
  }
  std::size_t size() {
    std::lock_guard<std::mutex> l(m);
    return messages.size();
  }
  std::vector<Message> snapshot() {
    std::lock_guard<std::mutex> l(m);
    return messages;
  }
};

struct Completions {
  std::mutex m;
  std::condition_variable cv;
  std::vector<Outcome> outcomes;
  static void on(void* ctx, const Outcome& o) {
    auto* self = static_cast<Completions*>(ctx);
    {
      std::lock_guard<std::mutex> l(self->m);
      self->outcomes.push_back(o);
    }
    self->cv.notify_all();
  }
  CompletionHandler handler() { return {&Completions::on, this}; }
  bool wait_for(std::size_t n, std::chrono::milliseconds t = 5s) {
    std::unique_lock<std::mutex> l(m);
    return cv.wait_for(l, t, [&] { return outcomes.size() >= n; });
  }
  std::vector<Outcome> snapshot() {
    std::lock_guard<std::mutex> l(m);
    return outcomes;
  }
};

inline bool wait_until(const std::function<bool()>& f, std::chrono::milliseconds t = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + t;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

inline mqtt::Publish message(std::string_view topic, std::string_view payload,
                             mqtt::QoS qos = mqtt::QoS::AtMostOnce) {
  mqtt::Publish p;
  p.topic = topic;
  p.payload = mqtt::as_bytes(payload);
  p.qos = qos;
  return p;
}

// Agent tests against a real Mosquitto, once per protocol version.
class AgentBrokerTest : public edgekit::testing::MosquittoFixture,
                        public ::testing::WithParamInterface<mqtt::Version> {
 protected:
  mqtt::ConnectOptions options(std::string_view id) {
    mqtt::ConnectOptions o;
    o.version = GetParam();
    o.client_id = id;
    o.keep_alive_seconds = 30;
    return o;
  }
  SteadyClock clock_;
};

// A TransportFactory over TCP whose connection, once armed, is cut right after the client has
// written a chunk that `matches` accepts: the broker gets that packet, the client never sees the
// answer. With `block_after_cut`, reconnecting then fails until `open()`. One cut per `arm()`.
// Each chunk the client hands the transport is tested from its start, so a packet that follows
// queued acks in the same write is not seen.
class CutAfterWrite final : public TransportFactory {
 public:
  using Match = bool (*)(transport::ConstBuffer chunk);
  CutAfterWrite(std::uint16_t port, Match matches, bool block_after_cut = false)
      : tcp_("127.0.0.1", port), matches_(matches), block_after_cut_(block_after_cut) {}
  edgekit::Result<TransportConnection, TransportFailure> connect() noexcept override {
    if (blocked_.load()) {
      TransportFailure f;
      f.detail = "blocked by the test";
      return fail(f);
    }
    auto c = tcp_.connect();
    if (!c) return c;
    wrap_.inner = c->transport;
    wrap_.owner = this;
    wrap_.cut = false;
    return TransportConnection{&wrap_, c->poll_handle};
  }
  void arm() { armed_.store(true); }
  void open() { blocked_.store(false); }
  int cuts() const { return cuts_.load(); }

 private:
  struct Wrap final : transport::Transport {
    transport::Transport* inner = nullptr;
    CutAfterWrite* owner = nullptr;
    bool cut = false;
    void seen(transport::ConstBuffer b) {
      if (!b.empty() && owner->matches_(b) && owner->armed_.exchange(false)) {
        if (owner->block_after_cut_) owner->blocked_.store(true);
        cut = true;
        owner->cuts_.fetch_add(1);
      }
    }
    transport::IoResult send(transport::ConstBuffer data) noexcept override {
      if (cut) return {transport::IoStatus::Closed};
      auto r = inner->send(data);
      if (r.status == transport::IoStatus::Ok && r.bytes == data.size()) seen(data);
      return r;
    }
    transport::IoResult writev(std::span<const transport::ConstBuffer> buffers) noexcept override {
      if (cut) return {transport::IoStatus::Closed};
      auto r = inner->writev(buffers);
      for (auto b : buffers) seen(b);
      return r;
    }
    transport::IoResult recv(std::span<std::byte> buffer) noexcept override {
      if (cut) return {transport::IoStatus::Closed};
      return inner->recv(buffer);
    }
    transport::WaitStatus wait(transport::Interest i, std::uint32_t timeout_ms) noexcept override {
      if (cut) return transport::WaitStatus::Ready;
      return inner->wait(i, timeout_ms);
    }
    void close() noexcept override { inner->close(); }
  };
  TcpTransportFactory tcp_;
  Match matches_;
  bool block_after_cut_;
  Wrap wrap_;
  std::atomic<bool> armed_{false};
  std::atomic<bool> blocked_{false};
  std::atomic<int> cuts_{0};
};

}  // namespace edgekit::agent::test
