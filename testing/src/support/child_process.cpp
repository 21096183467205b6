#include "edgekit/testing/child_process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "edgekit/transport/tcp.hpp"

namespace edgekit::testing {

std::uint16_t free_loopback_port() {
  auto l = transport::TcpListener::bind("127.0.0.1", 0);
  return l ? l->port() : 0;
}

bool die_with_parent(pid_t parent) {
#if defined(__linux__)
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return false;
  // The parent may have died between fork() and prctl(): the child was then re-parented and no
  // signal will ever come.
  return ::getppid() == parent;
#else
  (void)parent;
  return true;
#endif
}

void stop_child(pid_t& pid, int signal, std::chrono::milliseconds grace) {
  if (pid <= 0) return;
  ::kill(pid, signal);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      pid = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  pid = -1;
}

std::string wait_child(pid_t& pid, std::chrono::steady_clock::time_point deadline) {
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (done != pid) {
    stop_child(pid, SIGKILL, std::chrono::seconds(1));
    return "hung";
  }
  pid = -1;
  return WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                             : "exit " + std::to_string(WEXITSTATUS(status));
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandRun run_command(const std::string& command) {
  CommandRun r;
  const std::string cmd = command + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace edgekit::testing
