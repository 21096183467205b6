#pragma once
/// \file
/// The Jobs service model (fake_jobs_service.hpp) behind an MQTT client of a real broker, on
/// AWS's request topics, for the integration tests of what runs in a `jobs::Runner` (the runner
/// itself, the OTA agent):
///
///   JobsService service(broker().port(), "lamp-1");
///   ASSERT_TRUE(service.start());
///   service.with([](FakeJobsService& m) { return &m.add("fw-1", R"({"operation":"x"})"); });
///
/// Each request gets the model's reply; `drop(n)` loses the next n replies. Header-only; the test
/// links `edgekit::jobs`, `edgekit::tcp` and `edgekit::testing_support`. Thread safety: the model
/// is used on the service's agent thread and by `with`, under one lock.

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>

#include "edgekit/testing/blocking_device.hpp"
#include "edgekit/testing/fake_jobs_service.hpp"

namespace edgekit::jobs::testing {

class JobsService {
 public:
  /// The service of `thing` (a view: must outlive the service) on 127.0.0.1:`port`.
  JobsService(std::uint16_t port, std::string_view thing)
      : device_(port, "fake-jobs-service", config()), model_(thing) {}
  ~JobsService() { device_.agent.stop(); }
  JobsService(const JobsService&) = delete;
  JobsService& operator=(const JobsService&) = delete;

  /// Connects and subscribes to the request topics of every thing.
  bool start() {
    using namespace std::chrono_literals;
    if (!device_.start()) return false;
    for (const char* filter : {"$aws/things/+/jobs/start-next", "$aws/things/+/jobs/+/get",
                               "$aws/things/+/jobs/+/update"}) {
      auto r = device_.agent.subscribe_and_wait(filter, {.qos = mqtt::QoS::AtLeastOnce},
                                                agent::MessageHandler{&on_request, this}, 5s);
      if (!r || !r->ok()) return false;
    }
    return true;
  }
  /// Runs `f` on the model, under the lock the agent thread takes too.
  template <class F>
  auto with(F&& f) {
    std::lock_guard lock(mutex_);
    return f(model_);
  }
  /// Loses the next `replies` replies (the requests still reach the model).
  void drop(int replies) {
    std::lock_guard lock(mutex_);
    drop_ = replies;
  }
  /// Publishes notify-next for the next pending execution.
  void publish_notify_next() {
    std::string topic, payload;
    {
      std::lock_guard lock(mutex_);
      const Message m = model_.notify_next();
      topic.assign(m.topic);
      payload.assign(m.payload);
    }
    publish(topic, payload);
  }

 private:
  static agent::Config config() {
    agent::Config c;
    c.slot_size = 2048;
    return c;
  }
  void publish(const std::string& topic, const std::string& payload) {
    mqtt::Publish p;
    p.topic = topic;
    p.payload = mqtt::Bytes(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
    p.qos = mqtt::QoS::AtLeastOnce;
    (void)device_.agent.publish(p);  // a lost reply is what the device's timeouts are for
  }
  static void on_request(void* ctx, const mqtt::Publish& m) {
    auto* s = static_cast<JobsService*>(ctx);
    std::string topic, payload;
    {
      std::lock_guard lock(s->mutex_);
      auto reply = s->model_.handle(m.topic, mqtt::as_string(m.payload));
      if (!reply) return;
      if (s->drop_ > 0) {
        --s->drop_;
        return;
      }
      topic.assign(reply->topic);
      payload.assign(reply->payload);
    }
    s->publish(topic, payload);
  }

  edgekit::testing::AgentDevice device_;
  std::mutex mutex_;
  FakeJobsService model_;
  int drop_ = 0;
};

}  // namespace edgekit::jobs::testing
