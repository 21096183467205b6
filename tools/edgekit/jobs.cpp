// edgekit jobs run: a device running its jobs from the command line, with edgekit::jobs::Runner
// over the blocking client. It connects as its thing (mutual TLS, key in the token, like
// `edgekit shadow sync`) and knows a few operations, enough to try a rollout by hand or in the
// demo:
//   echo   SUCCEEDED, statusDetails {"message": <the document's "message">}
//   sleep  IN_PROGRESS {"step":"sleeping"}, then SUCCEEDED after the document's "ms" (<= 60000)
//   fail   FAILED, statusDetails {"reason": <the document's "reason">}
// Any other operation is the library's: FAILED {"reason":"unsupported operation"} (no line).
// With --state FILE the job record lives in that file (jobs::FileRecordStore), so a run that is
// killed mid-job and started again resumes the job (echo, sleep) or reports it FAILED (fail) as
// the handler's RebootPolicy says; without it the record is in memory and lost with the process.
// The protocol work is the library's; this file reads options, runs the handlers and prints one
// line per job it ran.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "edgekit/jobs/file_record_store.hpp"
#include "edgekit/jobs/runner.hpp"
#include "edgekit/reqres/channel.hpp"
#include "job_runner.hpp"
#include "token_tools.hpp"

namespace edgekit::tools {
// This file's helpers, in a namespace of their own: a unity build (EDGEKIT_UNITY_BUILD) compiles
// several command files as one translation unit.
namespace cmd_jobs {
namespace {

namespace jb = edgekit::jobs;

enum Exit { kOk = 0, kFailed = 1, kUsage = 2 };

struct JobsOptions {
  BrokerOptions broker;
  std::string version_text = "5";
  std::string thing;
  std::string state_file;
  bool once = false;
  int seconds = 0;
  int timeout_ms = 5000;
};

int fail(const std::string& why) {
  std::fprintf(stderr, "edgekit jobs: %s\n", why.c_str());
  return kFailed;
}

// A string member of the job document ("" when absent or not a plain string: the library reads
// escape-free strings in place, which is all these operations need).
std::string_view member(const jb::Job& job, std::string_view name) {
  auto v = job.document.find(name);
  if (!v) return {};
  auto s = v->as_string_view();
  return s ? *s : std::string_view{};
}

// What the handlers share: how many jobs ran (for --once) and the last error of a report.
struct Handlers {
  int ran = 0;
  bool report_failed = false;

  // Prints the job's line, then reports the outcome. The job id is copied first: the runner's
  // views of the job do not outlive a report (the record behind `job_id` moves on to the next
  // job once the service accepted the outcome).
  Result<void, jb::Errc> line(const std::string& job_id, const std::string& what,
                              Result<void, jb::Errc> sent) {
    ++ran;
    if (!sent) {
      report_failed = true;
      std::printf("job %s: %s (not reported: %s)\n", job_id.c_str(), what.c_str(),
                  jb::to_string(sent.error()));
    } else {
      std::printf("job %s: %s\n", job_id.c_str(), what.c_str());
    }
    std::fflush(stdout);
    return sent;
  }

  static void echo(void* self, jb::Runner& r, const jb::Job& job) {
    const std::string id(job.job_id);
    const std::string message(member(job, "message"));
    const jb::StatusDetail details[] = {{"message", message}};
    const std::string what = "echo \"" + message + "\": SUCCEEDED";
    (void)static_cast<Handlers*>(self)->line(id, what, r.finish(jb::JobStatus::Succeeded, details));
  }

  static void sleep(void* self, jb::Runner& r, const jb::Job& job) {
    auto* h = static_cast<Handlers*>(self);
    const std::string id(job.job_id);
    std::int64_t ms = 0;
    if (auto v = job.document.find("ms")) {
      if (auto n = v->as_int64()) ms = *n;
    }
    if (ms < 0 || ms > 60'000) {
      const jb::StatusDetail why[] = {{"reason", "ms must be 0-60000"}};
      (void)h->line(id, "sleep: REJECTED (ms must be 0-60000)",
                    r.finish(jb::JobStatus::Rejected, why));
      return;
    }
    const jb::StatusDetail step[] = {{"step", "sleeping"}};
    // Step 1 is saved in the record: a run killed while sleeping resumes the sleep (a Resume
    // handler: sleeping again from the start is harmless).
    if (auto p = r.progress(step, {}, 1); !p) {
      // NoJobRunning: the service ended the job (canceled): nothing more to report.
      (void)h->line(id, "sleep: stopped", p);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));  // the job's work
    const std::string slept = std::to_string(ms);
    const jb::StatusDetail done[] = {{"slept_ms", slept}};
    const std::string what =
        "sleep " + slept + " ms: SUCCEEDED" + (job.resumed ? " (resumed after a restart)" : "");
    (void)h->line(id, what, r.finish(jb::JobStatus::Succeeded, done));
  }

  static void failing(void* self, jb::Runner& r, const jb::Job& job) {
    const std::string id(job.job_id);
    std::string reason(member(job, "reason"));
    if (reason.empty()) reason = "asked to fail";
    const jb::StatusDetail why[] = {{"reason", reason}};
    const std::string what = "fail: FAILED (" + reason + ")";
    (void)static_cast<Handlers*>(self)->line(id, what, r.finish(jb::JobStatus::Failed, why));
  }
};

int run_jobs(JobsOptions& o) {
  if (o.once && o.seconds > 0) {
    std::fprintf(stderr, "edgekit jobs: --once or --for, not both\n");
    return kUsage;
  }
  if (!finish_broker_options("jobs", o.broker, o.version_text)) return kUsage;
  if (o.broker.client_id.empty()) o.broker.client_id = o.thing;  // the thing's own client id

  auto connection = std::make_unique<Connection>(mqtt::EventHandler{}, 64 * 1024);
  const bool open = connection->open(o.broker);
  token::wipe(o.broker.pin);  // the TLS context holds what it needs
  if (!open) return fail("cannot connect: " + connection->error());
  reqres::ClientChannel channel(connection->client(), connection->clock());

  Handlers handlers;
  const jb::JobHandler table[] = {
      {"echo", jb::RebootPolicy::Resume, &Handlers::echo, &handlers},
      {"sleep", jb::RebootPolicy::Resume, &Handlers::sleep, &handlers},
      {"fail", jb::RebootPolicy::FailJob, &Handlers::failing, &handlers}};
  // Without --state a process keeps no record across runs: a job a killed run left IN_PROGRESS
  // is started again by start-next (the service's view), not resumed.
  std::optional<jb::FileRecordStore> file;
  jb::RecordStore* store = nullptr;  // the runner's RAM record
  if (!o.state_file.empty()) {
    file.emplace(o.state_file);
    store = &*file;
    // What the last run left (the runner reads it again in start): said here, for the operator.
    jb::JobRecord left;
    switch (file->load(left)) {
      case jb::RecordLoad::Loaded:
        std::printf("%s: job %.*s was running (step %u): asking the service about it\n",
                    o.state_file.c_str(), static_cast<int>(left.job().size()), left.job().data(),
                    static_cast<unsigned>(left.step));
        break;
      case jb::RecordLoad::Corrupt:
        std::fprintf(stderr,
                     "edgekit jobs: %s: the job record is unreadable (%s), not used: the "
                     "service's in-progress job counts as interrupted\n",
                     o.state_file.c_str(), jb::to_string(file->last_problem()));
        break;
      case jb::RecordLoad::None:
        break;
    }
    std::fflush(stdout);
  }
  CommandRunner command(channel, connection->clock(), o.thing, table, o.timeout_ms, store);
  jb::Runner& runner = command.runner;

  // start runs what is pending already (one job after the other) before it returns.
  if (auto s = runner.start(Duration{o.timeout_ms}); !s) {
    if (s.error() == jb::Errc::StoreFailed && file) {
      return fail("start: cannot save the job record in " + o.state_file + " (" +
                  jb::to_string(file->last_problem()) + ")");
    }
    return fail(std::string("start: ") + jb::to_string(s.error()));
  }
  if (o.once) {
    if (handlers.ran == 0) std::printf("no pending jobs for %s\n", o.thing.c_str());
    return handlers.report_failed ? kFailed : kOk;
  }
  std::printf("waiting for jobs for %s%s\n", o.thing.c_str(),
              o.seconds > 0 ? (" for " + std::to_string(o.seconds) + " s").c_str() : "");
  std::fflush(stdout);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(o.seconds);
  while (o.seconds == 0 || std::chrono::steady_clock::now() < end) {
    if (auto s = runner.run_for(Duration{200}); !s) {
      // A request that went unanswered is asked again at the next run_for; a lost connection
      // is not (this command does not reconnect).
      if (s.error() == jb::Errc::NotConnected) return fail("connection lost");
      std::fprintf(stderr, "edgekit jobs: %s (trying again)\n", jb::to_string(s.error()));
    }
  }
  return handlers.report_failed ? kFailed : kOk;
}

}  // namespace
}  // namespace cmd_jobs

void add_jobs_command(CLI::App& app, int& exit_code) {
  using namespace cmd_jobs;
  auto o = std::make_shared<JobsOptions>();
  CLI::App* jobs = app.add_subcommand("jobs", "a device's jobs (as the thing)");
  jobs->require_subcommand(1);
  CLI::App* c = jobs->add_subcommand(
      "run",
      "connect as the thing and run its jobs: echo (SUCCEEDED with the document's message), "
      "sleep (progress, then SUCCEEDED after the document's ms), fail (FAILED with the "
      "document's reason); other operations are reported FAILED (unsupported)");
  c->set_help_flag("--help", "print this help and exit");
  add_broker_options(*c, o->broker, o->version_text);
  c->add_option("--thing", o->thing, "the thing name (also the client id unless -i)")->required();
  c->add_option("--state", o->state_file,
                "keep the running job's record in this file (its folder must exist), so that "
                "a run killed mid-job resumes it or reports it FAILED when started again");
  c->add_flag("--once", o->once, "run the pending jobs and exit");
  c->add_option("--for", o->seconds,
                "wait for jobs this many seconds, then exit (default: until interrupted)")
      ->check(CLI::Range(1, 86'400));
  c->add_option("--timeout", o->timeout_ms, "milliseconds to wait for each reply")
      ->check(CLI::Range(1, 600'000))
      ->capture_default_str();
  c->callback([o, &exit_code] { exit_code = run_jobs(*o); });
}

}  // namespace edgekit::tools
