// A test-only device program for the jobs reboot test (jobs_reboot_test.cpp): one boot of a
// device running its pending jobs with jobs::Runner over the blocking client, its job record in
// a file (jobs::FileRecordStore), which can kill itself with SIGKILL at a chosen point — a real
// process dying with its record file and its TLS connection as they are at that moment, as a
// power loss leaves them.
//
//   fleetd_jobs_device --port P --ca CA --cert C --key K --thing T --state F --effects E
//       [--kill-before-save N | --kill-after-save N | --kill-after-request N |
//        --kill-on-reply N | --kill-in-step N]
//
// Its handlers run three steps each; a step's side effect is a line "<job> <step>" appended to
// the effects file E (what the test counts to see that no step ran twice when it must not),
// then `progress` with that step (saved in the record first). "install" cannot continue after
// a reboot (RebootPolicy::FailJob), "configure" can (Resume: it goes on after the last step it
// recorded). Saves of the record and requests are counted from 1 in this boot (a job: save 1
// when it starts, 2-4 at its steps, 5 its outcome; request 1 start-next, 2-4 the progress, 5
// the outcome). --kill-after-request K publishes request K and dies without its reply;
// --kill-on-reply K dies when reply K has arrived, before the runner reads it; --kill-in-step
// N dies after step N's side effect, before its progress.
//
// Runs what is pending (Runner::start) and exits 0; prints one line per handler run
// ("run <job> fresh" or "run <job> resumed <step>"); exits 1 on an error, 2 on bad arguments.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "edgekit/jobs/file_record_store.hpp"
#include "edgekit/jobs/runner.hpp"
#include "edgekit/reqres/channel.hpp"
#include "secured_broker.hpp"

namespace {

using edgekit::Duration;
using edgekit::Result;
namespace jobs = edgekit::jobs;
namespace reqres = edgekit::reqres;

constexpr std::uint32_t kSteps = 3;

[[noreturn]] void die() {
  // No clean-up of any kind: what is on disk and on the wire stays as it is.
  ::kill(::getpid(), SIGKILL);
  std::abort();
}

// Dies before or after the N-th save.
class KillingStore final : public jobs::RecordStore {
 public:
  KillingStore(jobs::RecordStore& inner, int before, int after)
      : inner_(inner), before_(before), after_(after) {}
  jobs::RecordLoad load(jobs::JobRecord& out) noexcept override { return inner_.load(out); }
  bool save(const jobs::JobRecord& r) noexcept override {
    ++saves_;
    if (saves_ == before_) die();
    const bool ok = inner_.save(r);
    if (ok && saves_ == after_) die();
    return ok;
  }
  bool clear() noexcept override { return inner_.clear(); }

 private:
  jobs::RecordStore& inner_;
  int before_, after_, saves_ = 0;
};

// Dies after publishing request K (without its reply), or when reply K has arrived.
class KillingChannel final : public reqres::Channel {
 public:
  KillingChannel(reqres::Channel& inner, int after_request, int on_reply)
      : inner_(inner), after_request_(after_request), on_reply_(on_reply) {}
  void set_message_handler(reqres::MessageHandler h) noexcept override {
    inner_.set_message_handler(h);
  }
  Result<void, reqres::Errc> subscribe(std::span<const std::string_view> f,
                                       Duration d) noexcept override {
    return inner_.subscribe(f, d);
  }
  void unsubscribe(std::span<const std::string_view> f, Duration d) noexcept override {
    inner_.unsubscribe(f, d);
  }
  Result<reqres::Reply, reqres::Errc> request(std::string_view topic,
                                              std::span<const std::uint8_t> payload,
                                              reqres::Matcher matcher,
                                              std::span<std::uint8_t> reply,
                                              Duration timeout) noexcept override {
    ++requests_;
    if (requests_ == after_request_) {
      // The publish is written to the socket before the wait; a 1 ms wait then gives up on the
      // reply, which the service sends to a device that is gone.
      (void)inner_.request(topic, payload, matcher, reply, Duration{1});
      die();
    }
    auto r = inner_.request(topic, payload, matcher, reply, timeout);
    if (r && requests_ == on_reply_) die();
    return r;
  }
  Result<void, reqres::Errc> poll(Duration d) noexcept override { return inner_.poll(d); }

 private:
  reqres::Channel& inner_;
  int after_request_, on_reply_, requests_ = 0;
};

struct App {
  int effects_fd = -1;
  int kill_in_step = 0;
  bool failed = false;

  // Appends "<job> <step>\n" (one write: a SIGKILL cannot split it).
  void effect(std::string_view job, std::uint32_t step) const {
    const std::string line = std::string(job) + " " + std::to_string(step) + "\n";
    if (::write(effects_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      std::printf("error=effects file\n");
      std::exit(1);
    }
  }

  static void steps(void* self, jobs::Runner& r, const jobs::Job& job) {
    auto* app = static_cast<App*>(self);
    const std::string id(job.job_id);  // the runner's view ends with a report
    if (job.resumed) {
      std::printf("run %s resumed %u\n", id.c_str(), static_cast<unsigned>(job.step));
    } else {
      std::printf("run %s fresh\n", id.c_str());
    }
    std::fflush(stdout);
    // Resumed after step k was recorded: steps 1..k are done.
    for (std::uint32_t i = job.resumed ? job.step + 1 : 1; i <= kSteps; ++i) {
      app->effect(id, i);
      if (static_cast<int>(i) == app->kill_in_step) die();
      const std::string n = std::to_string(i);
      const jobs::StatusDetail details[] = {{"step", n}};
      if (auto p = r.progress(details, {}, i); !p) {
        std::printf("error=progress %s: %s\n", id.c_str(), jobs::to_string(p.error()));
        app->failed = true;
        return;
      }
    }
    const jobs::StatusDetail done[] = {{"steps", "3"}};
    if (auto f = r.finish(jobs::JobStatus::Succeeded, done); !f) {
      std::printf("error=finish %s: %s\n", id.c_str(), jobs::to_string(f.error()));
      app->failed = true;
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k.rfind("--", 0) != 0) return 2;
    a[k.substr(2)] = argv[i + 1];
  }
  if (argc % 2 != 1) return 2;
  for (const char* required : {"port", "ca", "cert", "key", "thing", "state", "effects"}) {
    if (!a.count(required)) {
      std::fprintf(stderr, "missing --%s\n", required);
      return 2;
    }
  }
  auto number = [&a](const char* k) { return a.count(k) ? std::atoi(a[k].c_str()) : 0; };

  App app;
  app.kill_in_step = number("kill-in-step");
  app.effects_fd = ::open(a["effects"].c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (app.effects_fd < 0) {
    std::printf("error=cannot open the effects file\n");
    return 1;
  }

  edgekit::fleetd::test::Peer peer;
  edgekit::tls::Config tls;
  tls.ca_file = a["ca"];
  tls.certificate_file = a["cert"];
  tls.private_key_file = a["key"];
  const std::string thing = a["thing"];
  if (auto ack = peer.connect_tls(static_cast<std::uint16_t>(number("port")), tls, thing); !ack) {
    std::printf("error=connect: %s\n", edgekit::mqtt::to_string(ack.error()));
    return 1;
  }
  reqres::ClientChannel client_channel(peer.client(), peer.clock());
  KillingChannel channel(client_channel, number("kill-after-request"), number("kill-on-reply"));
  jobs::FileRecordStore file(a["state"]);
  KillingStore store(file, number("kill-before-save"), number("kill-after-save"));

  const jobs::JobHandler handlers[] = {
      {"install", jobs::RebootPolicy::FailJob, &App::steps, &app},
      {"configure", jobs::RebootPolicy::Resume, &App::steps, &app}};
  jobs::RunnerConfig config;
  config.thing = thing;
  config.handlers = handlers;
  config.token_seed = static_cast<std::uint32_t>(::getpid()) * 1000;  // differs across boots
  config.request_timeout = Duration{3000};
  config.retry_delay = Duration{100};
  static char request[1024], reply[8192], document[4096];
  jobs::Runner runner(channel, store, peer.clock(), config, {request, reply, document});
  // start runs every pending job, one after the other, before it returns.
  if (auto s = runner.start(Duration{3000}); !s) {
    std::printf("error=start: %s (record: %s)\n", jobs::to_string(s.error()),
                jobs::to_string(file.last_problem()));
    return 1;
  }
  std::printf("done\n");
  return app.failed ? 1 : 0;
}
