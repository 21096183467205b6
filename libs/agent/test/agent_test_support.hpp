#pragma once
// Helpers for the agent's tests: a status recorder, a message recorder, completion counters.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edgekit/agent/agent.hpp"

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

}  // namespace edgekit::agent::test
