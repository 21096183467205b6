#include "provisioning/hook.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <thread>

#include "edgekit/json/json.hpp"

extern char** environ;

namespace edgekit::fleetd::provisioning {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

HookVerdict deny(std::string why) {
  HookVerdict v;
  v.problem = std::move(why);
  return v;
}

long remaining_ms(Clock::time_point end) {
  return std::max<long>(
      0, static_cast<long>(
             std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count()));
}

// A local executable: the input on its stdin, its answer from stdout, killed at the deadline.
HookVerdict call_executable(const std::string& path, const std::string& input,
                            std::chrono::milliseconds limit) {
  // A hook that exits without reading its input makes the write below fail with EPIPE, which is
  // handled; but the SIGPIPE raised first would end fleetd. Ignored process-wide, once: fleetd
  // has no use for the signal, every write of it already handles EPIPE.
  static const bool sigpipe_ignored = [] { return ::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)sigpipe_ignored;
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return deny("cannot make a pipe");
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    ::close(in_pipe[0]);
    ::close(in_pipe[1]);
    return deny("cannot make a pipe");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  // A process group of its own, so that a hook killed at the limit takes its children along
  // (a shell script's `sleep` would otherwise live on holding the pipes).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, path.c_str(), &actions, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  if (rc != 0) {
    ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    return deny("cannot run " + path + ": " + std::strerror(rc));
  }
  const auto end = Clock::now() + limit;
  // A hook that never reads its stdin must not block fleetd's worker: write without blocking.
  ::fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  ::fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
  std::size_t written = 0;
  std::string answer;
  bool out_open = true, timed_out = false, too_long = false;
  int in_fd = in_pipe[1];
  while (out_open) {
    const long wait = remaining_ms(end);
    if (wait == 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
    const int n = ::poll(fds, in_fd >= 0 ? 2 : 1, static_cast<int>(wait));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (in_fd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w = ::write(in_fd, input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if (w < 0 && errno != EAGAIN) written = input.size();
      if (written == input.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      const ssize_t r = ::read(out_pipe[0], buf, sizeof buf);
      if (r > 0) {
        answer.append(buf, static_cast<std::size_t>(r));
        if (answer.size() > kMaxHookAnswer) {
          too_long = true;
          break;
        }
      } else if (r == 0 || errno != EAGAIN) {
        out_open = false;
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  ::close(out_pipe[0]);
  int status = 0;
  if (timed_out || too_long) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return deny(timed_out
                    ? "the hook did not answer within " + std::to_string(limit.count()) + " ms"
                    : "the hook's answer is larger than " + std::to_string(kMaxHookAnswer) +
                          " bytes");
  }
  // stdout closed: the child is ending; wait for it within what is left of the limit.
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (remaining_ms(end) == 0) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return deny("the hook did not exit within " + std::to_string(limit.count()) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return deny("the hook failed (exit status " +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  }
  return read_hook_answer(answer);
}

HookVerdict call_url(const std::string& url, const std::string& input,
                     std::chrono::milliseconds limit) {
  // scheme://host[:port] then the path.
  const auto scheme_end = url.find("://");
  const auto path_at = url.find('/', scheme_end + 3);
  const std::string base = url.substr(0, path_at);
  const std::string path = path_at == std::string::npos ? "/" : url.substr(path_at);
  httplib::Client client(base);
  if (!client.is_valid()) return deny("the hook URL " + url + " is unusable");
  const auto sec = static_cast<time_t>(limit.count() / 1000);
  const auto usec = static_cast<time_t>((limit.count() % 1000) * 1000);
  client.set_connection_timeout(sec, usec);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
  const auto start = Clock::now();
  auto res = client.Post(path, input, "application/json");
  if (!res)
    return deny("the hook at " + url + " did not answer (" + httplib::to_string(res.error()) + ")");
  if (Clock::now() - start > limit) {
    return deny("the hook did not answer within " + std::to_string(limit.count()) + " ms");
  }
  if (res->status != 200) return deny("the hook answered HTTP " + std::to_string(res->status));
  if (res->body.size() > kMaxHookAnswer) return deny("the hook's answer is too large");
  return read_hook_answer(res->body);
}

}  // namespace

std::string hook_input_json(const HookInput& in) {
  json params = json::object();
  for (const auto& [k, v] : in.parameters) params[k] = v;
  return json{{"claimCertificateId", in.claim_certificate_id},
              {"certificateId", in.certificate_id},
              {"certificatePem", in.certificate_pem},
              {"templateArn", in.template_arn},
              {"clientId", in.client_id},
              {"parameters", params}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

HookVerdict read_hook_answer(std::string_view body) {
  auto j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return deny("the hook's answer is not a JSON object");
  auto allow = j.find("allowProvisioning");
  if (allow == j.end() || !allow->is_boolean() || !allow->get<bool>()) {
    return deny("the hook did not allow provisioning");
  }
  HookVerdict v;
  v.allow = true;
  if (auto o = j.find("parameterOverrides"); o != j.end() && !o->is_null()) {
    if (!o->is_object()) return deny("the hook's parameterOverrides is not a map");
    for (auto it = o->begin(); it != o->end(); ++it) {
      if (!it.value().is_string()) {
        return deny("the hook's parameter override '" + it.key() + "' is not a string");
      }
      v.parameter_overrides[it.key()] = it.value().get<std::string>();
    }
  }
  return v;
}

HookVerdict call_hook(const std::string& target, const std::string& input,
                      std::chrono::milliseconds limit) {
  if (target.starts_with("http://") || target.starts_with("https://")) {
    return call_url(target, input, limit);
  }
  if (!target.starts_with("/")) return deny("the hook target " + target + " is unusable");
  return call_executable(target, input, limit);
}

HookRunner::~HookRunner() {
  std::unique_lock lock(shared_->mutex);
  shared_->alive = false;
  shared_->idle.wait(lock, [this] { return shared_->running == 0; });
}

void HookRunner::run(std::string target, std::string input, Done done) {
  {
    std::lock_guard lock(shared_->mutex);
    ++shared_->running;
  }
  std::thread([shared = shared_, &io = io_, limit = limit_, target = std::move(target),
               input = std::move(input), done = std::move(done)]() mutable {
    HookVerdict v = call_hook(target, input, limit);
    {
      std::lock_guard lock(shared->mutex);
      if (shared->alive) {
        asio::post(io, [shared, v = std::move(v), done = std::move(done)]() mutable {
          if (shared->alive) done(std::move(v));
        });
      }
      done = nullptr;  // whatever it holds goes while the runner still waits for this worker
      --shared->running;
    }
    shared->idle.notify_all();
  }).detach();
}

}  // namespace edgekit::fleetd::provisioning
