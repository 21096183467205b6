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
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "edgekit/transport/tcp.hpp"

namespace edgekit::testing {

namespace {

// The kernel's range for ephemeral ports (bind to port 0, and the source port of every outgoing
// connection); {0, 0} when it cannot be read.
std::pair<unsigned, unsigned> ephemeral_range() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned low = 0, high = 0;
  if (!(in >> low >> high)) return {0, 0};
  return {low, high};
}

}  // namespace

std::uint16_t free_loopback_port() {
  // Two things made the old "bind port 0 and close" pick collide, seen in CI: the kernel may hand
  // the same port to two picks in a row of one process (a fixture's hooks port was then also
  // Mosquitto's listener), and any outgoing connection of a parallel test (stress tests open
  // thousands) may take an ephemeral port between the pick and the server's bind. So: never the
  // same port twice in one process, and ports below the ephemeral range, where no outgoing
  // connection lands, chosen at random so that parallel test processes rarely meet.
  static std::mutex mutex;
  static std::set<std::uint16_t> handed_out;
  static std::mt19937 random(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  const std::lock_guard lock(mutex);
  const unsigned low = ephemeral_range().first;
  const bool below = low > 12000;  // room for a range of our own below the ephemeral one
  for (int attempt = 0; attempt < 200; ++attempt) {
    std::uint16_t port = 0;
    if (below) {
      port = static_cast<std::uint16_t>(std::uniform_int_distribution<unsigned>(10000, low - 1)(random));
      if (handed_out.count(port) != 0) continue;
      auto l = transport::TcpListener::bind("127.0.0.1", port);
      if (!l) continue;
    } else {
      auto l = transport::TcpListener::bind("127.0.0.1", 0);
      if (!l) continue;
      port = l->port();
      if (handed_out.count(port) != 0) continue;
    }
    handed_out.insert(port);
    return port;
  }
  return 0;
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
