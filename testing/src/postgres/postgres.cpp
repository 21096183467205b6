#include "edgekit/testing/postgres.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "edgekit/testing/child_process.hpp"

namespace edgekit::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Identity {
  bool drop = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

// PostgreSQL refuses to run as root; as root, run it as the `postgres` user the package made.
Identity server_identity() {
  Identity id;
  if (::geteuid() != 0) return id;
  if (const passwd* pw = ::getpwnam("postgres")) {
    id.drop = true;
    id.uid = pw->pw_uid;
    id.gid = pw->pw_gid;
  }
  return id;
}

pid_t spawn(const std::vector<std::string>& args, const Identity& id, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Child: async-signal-safe calls only until exec.
  if (!die_with_parent(parent)) ::_exit(126);
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
  }
  if (id.drop && (::setgid(id.gid) != 0 || ::setuid(id.uid) != 0)) ::_exit(126);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}


}  // namespace

std::string Postgres::find_bindir() {
  if (const char* env = std::getenv("EDGEKIT_PG_BINDIR"); env != nullptr && *env != '\0') {
    return env;
  }
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    int v = std::atoi(e.path().filename().c_str());
    if (v > best_version && fs::exists(e.path() / "bin" / "postgres")) {
      best_version = v;
      best = (e.path() / "bin").string();
    }
  }
  return best;
}

Postgres::~Postgres() {
  stop();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string Postgres::connection_string(const std::string& database) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + database +
         " user=edgekit connect_timeout=5";
}

bool Postgres::start() {
  bindir_ = find_bindir();
  if (bindir_.empty()) {
    error_ = "PostgreSQL not found (install the Debian package 'postgresql', or set "
             "EDGEKIT_PG_BINDIR)";
    return false;
  }
  std::string tmpl = (fs::temp_directory_path() / "edgekit-pg-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    error_ = std::string("mkdtemp failed: ") + std::strerror(errno);
    return false;
  }
  dir_ = buf.data();
  Identity id = server_identity();
  if (id.drop && ::chown(dir_.c_str(), id.uid, id.gid) != 0) {
    error_ = std::string("chown of the temp dir failed: ") + std::strerror(errno);
    return false;
  }
  const std::string data = dir_ + "/data";
  const std::string log = dir_ + "/server.log";
  int rc = wait_exit(spawn({bindir_ + "/initdb", "-D", data, "-U", "edgekit", "--auth=trust",
                            "-E", "UTF8", "--no-sync", "--no-instructions"},
                           id, log));
  if (rc != 0) {
    error_ = "initdb failed (" + std::to_string(rc) + "): " + read_text_file(log);
    return false;
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_loopback_port();
    pid_ = spawn({bindir_ + "/postgres", "-D", data, "-p", std::to_string(port_), "-k", dir_,
                  "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c",
                  "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                  "max_connections=50"},
                 id, log);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;  // exited: maybe the port was taken meanwhile; try another
      }
      // Ready when a TCP connect succeeds and the log says so (the port opens a moment before
      // the server accepts logins).
      if (read_text_file(log).find("database system is ready to accept connections") !=
          std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    if (pid_ > 0) break;  // running but never ready: give up
  }
  error_ = "postgres did not start: " + read_text_file(log);
  stop();
  return false;
}

void Postgres::stop() {
  stop_child(pid_, SIGINT, 10s);  // SIGINT: fast shutdown (abort sessions, checkpoint, exit)
}

}  // namespace edgekit::testing
