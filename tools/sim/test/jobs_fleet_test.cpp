// The real jobs::Runner, unchanged, in one fiber per simulated device on one io_context thread,
// against a real Mosquitto and the Jobs service model (testing/fake_jobs_service.hpp: one model
// per thing, behind one service connection on the same loop, on AWS's topics and documents).
// Each thing has one queued job; each device's runner takes it with start-next, its handler
// reports progress and SUCCEEDED, and the runner asks again and finds nothing. Every job must
// end SUCCEEDED with the device's progress recorded, each handler run exactly once.
// Scale: EDGEKIT_SIM_JOB_DEVICES (default 200).
#include <gtest/gtest.h>

#include <array>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <edgekit/jobs/runner.hpp>
#include <edgekit/testing/fake_jobs_service.hpp>
#include <edgekit/testing/mosquitto.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "loop_channel.hpp"
#include "sync.hpp"

namespace edgekit::sim {
namespace {

using namespace std::chrono_literals;
using jobs::testing::FakeJobsService;

constexpr std::string_view kJob = R"({"operation":"install","url":"https://example.com/fw"})";

struct JobDevice {
  JobDevice(Fibers& f, mqtt_asio::Driver& d) : link(f, d) {}
  Device<2048, 2> link;
  jobs::testing::MemoryStore store;
  std::array<char, 1024> request{};
  std::array<char, 2048> reply{};
  std::array<char, 512> document{};
  int runs = 0;
  std::string error;
};

// The handler: one progress report, then SUCCEEDED.
void install(void* context, jobs::Runner& runner, const jobs::Job& job) {
  auto* d = static_cast<JobDevice*>(context);
  ++d->runs;
  if (!job.document.find("url")) d->error = "document without url";
  const jobs::StatusDetail step[] = {{"step", "1"}};
  if (auto p = runner.progress(step, 5, 1); !p)
    d->error = std::string("progress: ") + jobs::to_string(p.error());
  const jobs::StatusDetail done[] = {{"result", "ok"}};
  if (auto f = runner.finish(jobs::JobStatus::Succeeded, done); !f) {
    d->error = std::string("finish: ") + jobs::to_string(f.error());
  }
}

TEST(JobsFleet, RunnersRunUnchangedInFibersOnOneThread) {
  const char* env = std::getenv("EDGEKIT_SIM_JOB_DEVICES");
  const std::size_t n = env != nullptr ? std::strtoul(env, nullptr, 10) : 200;
  testing::Mosquitto broker;
  ASSERT_TRUE(broker.start()) << broker.error();
  asio::io_context io;
  mqtt_asio::Driver driver(io);
  Fibers fibers(io);
  const mqtt_asio::Endpoint endpoint(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), broker.port()));
  Semaphore connecting(fibers, 32);
  Gate gate(fibers);
  SteadyClock clock;

  // The service: one model per thing, answering from the service connection's handler.
  std::deque<std::string> things;
  std::map<std::string, std::unique_ptr<FakeJobsService>, std::less<>> models;
  for (std::size_t i = 0; i < n; ++i) {
    things.push_back("sim-job-" + std::to_string(i));
    auto m = std::make_unique<FakeJobsService>(things.back());
    m->add("fw-1", kJob);
    models.emplace(things.back(), std::move(m));
  }
  Device<4096, 2> service(fibers, driver);
  std::deque<std::string> replies;  // QoS 0 payloads: valid until written, so kept to the end
  struct Service {
    std::map<std::string, std::unique_ptr<FakeJobsService>, std::less<>>* models;
    std::deque<std::string>* replies;
    Device<4096, 2>* link;
    std::size_t unserved = 0;
  } served{&models, &replies, &service};
  service.channel().set_message_handler(
      {[](void* c, const reqres::Message& m) {
         auto* s = static_cast<Service*>(c);
         // $aws/things/<thing>/jobs/...
         const std::string_view rest = m.topic.substr(std::string_view("$aws/things/").size());
         auto model = s->models->find(rest.substr(0, rest.find('/')));
         if (model == s->models->end()) {
           ++s->unserved;
           return;
         }
         auto reply = model->second->handle(
             m.topic, {reinterpret_cast<const char*>(m.payload.data()), m.payload.size()});
         if (!reply) {
           ++s->unserved;
           return;
         }
         s->replies->emplace_back(reply->payload);
         mqtt::Publish p;
         p.topic = reply->topic;  // encoded into the send buffer by publish
         p.payload = mqtt::as_bytes(std::string_view(s->replies->back()));
         if (!s->link->connection().publish(p)) ++s->unserved;
       },
       &served});
  bool service_ready = false;
  fibers.spawn([&] {
    mqtt::ConnectOptions o;
    o.version = mqtt::Version::V5;
    o.client_id = "jobs-service";
    ASSERT_TRUE(service.channel().connect(endpoint, o, Duration{10000}));
    const std::string_view filters[] = {"$aws/things/+/jobs/start-next", "$aws/things/+/jobs/+/get",
                                        "$aws/things/+/jobs/+/update"};
    ASSERT_TRUE(service.channel().subscribe(filters, Duration{10000}));
    service_ready = true;
    if (!gate.pass(1)) return;
    service.channel().close(Duration{5000});
  });

  std::vector<std::unique_ptr<JobDevice>> devices;
  std::size_t finished = 0;
  for (std::size_t i = 0; i < n; ++i)
    devices.push_back(std::make_unique<JobDevice>(fibers, driver));
  const auto t0 = std::chrono::steady_clock::now();
  const auto run_until = [&](const std::function<bool()>& done, std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
      io.restart();
      io.run_for(20ms);
    }
    return done();
  };
  ASSERT_TRUE(run_until([&] { return service_ready; }, 20s));
  for (std::size_t i = 0; i < n; ++i) {
    fibers.spawn([&, i] {
      JobDevice& d = *devices[i];
      struct Count {
        std::size_t& n;
        ~Count() { ++n; }
      } count{finished};
      if (!connecting.acquire()) return;
      mqtt::ConnectOptions o;
      o.version = mqtt::Version::V5;
      o.client_id = things[i];
      auto c = d.link.channel().connect(endpoint, o, Duration{20000});
      connecting.release();
      if (!c) {
        d.error = std::string("connect: ") + mqtt::to_string(c.error());
        return;
      }
      const jobs::JobHandler handlers[] = {{"install", jobs::RebootPolicy::FailJob, &install, &d}};
      jobs::RunnerConfig config;
      config.thing = things[i];
      config.handlers = handlers;
      config.token_prefix = "d";
      config.token_seed = static_cast<std::uint32_t>(i);
      config.request_timeout = Duration{15000};
      config.retry_delay = Duration{200};
      jobs::Runner runner(d.link.channel(), d.store, clock, config,
                          jobs::RunnerBuffers{d.request, d.reply, d.document});
      // start: subscribes, asks for the next job, runs it, asks again, finds none.
      if (auto s = runner.start(Duration{15000}); !s) {
        d.error = std::string("start: ") + jobs::to_string(s.error());
      }
      d.link.channel().close(Duration{5000});
    });
  }
  ASSERT_TRUE(run_until([&] { return finished == n; }, 120s));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  gate.open(1);
  ASSERT_TRUE(run_until([&] { return fibers.live() == 0; }, 20s));

  std::size_t succeeded = 0, ran_once = 0;
  std::string first_error;
  for (std::size_t i = 0; i < n; ++i) {
    FakeJobsService& m = *models.find(things[i])->second;
    const jobs::testing::FakeJob* job = m.find("fw-1");
    if (job != nullptr && job->status == jobs::JobStatus::Succeeded &&
        job->status_details().find("\"result\":\"ok\"") != std::string_view::npos) {
      ++succeeded;
    }
    ran_once += devices[i]->runs == 1 ? 1 : 0;
    if (first_error.empty() && !devices[i]->error.empty()) {
      first_error = things[i] + ": " + devices[i]->error;
    }
  }
  EXPECT_EQ(succeeded, n) << first_error;
  EXPECT_EQ(ran_once, n) << first_error;
  EXPECT_TRUE(first_error.empty()) << first_error;
  EXPECT_EQ(served.unserved, 0u);
  std::printf(
      "%zu jobs runners on one thread: every job SUCCEEDED in %.2f s, %zu requests "
      "served, %llu context switches\n",
      n, secs, replies.size(), static_cast<unsigned long long>(fibers.switches()));
}

}  // namespace
}  // namespace edgekit::sim
