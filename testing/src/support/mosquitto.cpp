#include "edgekit/testing/mosquitto.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "edgekit/testing/child_process.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool is_executable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

// Runs `argv` to completion with stdout/stderr appended to `log_fd`; returns the exit status
// (-1 when it could not run).
int run_to_completion(const std::vector<std::string>& args, int log_fd) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "ended";
}

}  // namespace

std::string Mosquitto::find_binary() {
  if (const char* env = std::getenv("EDGEKIT_MOSQUITTO"); env != nullptr && *env != '\0') {
    return is_executable(env) ? std::string(env) : std::string();
  }
  if (is_executable("/usr/sbin/mosquitto")) return "/usr/sbin/mosquitto";
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
      if (dir.empty()) continue;
      std::string candidate = dir + "/mosquitto";
      if (is_executable(candidate)) return candidate;
    }
  }
  return {};
}

Mosquitto::Mosquitto(MosquittoOptions options) : options_(std::move(options)) {}

Mosquitto::~Mosquitto() {
  stop();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string Mosquitto::log() const { return read_text_file(log_path_); }

bool Mosquitto::prepare() {
  if (!dir_.empty()) return true;
  binary_ = find_binary();
  if (binary_.empty()) {
    error_ =
        "mosquitto not found (install the Debian package 'mosquitto', or set EDGEKIT_MOSQUITTO)";
    return false;
  }
  std::error_code ec;
  std::string tmpl = (fs::temp_directory_path(ec) / "edgekit-mosquitto-XXXXXX").string();
  if (ec) tmpl = "/tmp/edgekit-mosquitto-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    error_ = std::string("mkdtemp failed: ") + std::strerror(errno);
    return false;
  }
  dir_ = buf.data();
  config_path_ = dir_ + "/mosquitto.conf";
  log_path_ = dir_ + "/mosquitto.log";
  if (options_.persistence) fs::create_directories(dir_ + "/data", ec);

  if (!options_.users.empty()) {
    int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    bool first = true;
    std::string passwd = dir_ + "/passwd";
    for (const auto& u : options_.users) {
      std::vector<std::string> args{"mosquitto_passwd", "-b"};
      if (first) args.emplace_back("-c");
      args.insert(args.end(), {passwd, u.name, u.password});
      if (run_to_completion(args, log_fd) != 0) {
        if (log_fd >= 0) ::close(log_fd);
        error_ = "mosquitto_passwd failed for user " + u.name;
        return false;
      }
      first = false;
    }
    if (log_fd >= 0) ::close(log_fd);
  }
  return true;
}

bool Mosquitto::write_config() {
  std::ofstream out(config_path_, std::ios::trunc);
  out << "# written by edgekit's test fixture\n";
  // As root, mosquitto 2 drops privileges to the 'mosquitto' user, which could not write the
  // private temp dir; keep the current user instead.
  if (::geteuid() == 0) out << "user root\n";
  out << "per_listener_settings false\n";
  out << "listener " << port_ << " " << host_ << "\n";
  if (options_.max_connections) out << "max_connections " << *options_.max_connections << "\n";
  out << "allow_anonymous " << (options_.allow_anonymous ? "true" : "false") << "\n";
  // Without it Mosquitto's Nagle delay meets the client's delayed ACK: 40 ms stalls on loopback.
  out << "set_tcp_nodelay true\n";
  if (!options_.users.empty()) out << "password_file " << dir_ << "/passwd\n";
  if (options_.persistence) {
    out << "persistence true\n";
    out << "persistence_location " << dir_ << "/data/\n";
    out << "autosave_interval 1\n";
  } else {
    out << "persistence false\n";
  }
  out << "log_dest stderr\n";
  if (options_.verbose_log) {
    out << "log_type all\n";
  } else {
    out << "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n";
  }
  out << "log_timestamp_format %H:%M:%S\n";
  out << "connection_messages true\n";
  for (const std::string& line : options_.extra_lines) out << line << "\n";
  if (options_.tls) {
    // Listener options follow their `listener` line (per_listener_settings false still keeps
    // the TLS options per listener).
    const auto& t = *options_.tls;
    out << "listener " << tls_port_ << " " << host_ << "\n";
    if (options_.max_connections) out << "max_connections " << *options_.max_connections << "\n";
    if (!t.cafile.empty()) out << "cafile " << t.cafile << "\n";
    if (!t.capath.empty()) out << "capath " << t.capath << "\n";
    if (!t.certfile.empty()) out << "certfile " << t.certfile << "\n";
    if (!t.keyfile.empty()) out << "keyfile " << t.keyfile << "\n";
    if (!t.crlfile.empty()) out << "crlfile " << t.crlfile << "\n";
    if (!t.tls_version.empty()) out << "tls_version " << t.tls_version << "\n";
    if (!t.ciphers.empty()) out << "ciphers " << t.ciphers << "\n";
    if (!t.ciphers_tls13.empty()) out << "ciphers_tls1.3 " << t.ciphers_tls13 << "\n";
    out << "require_certificate " << (t.require_certificate ? "true" : "false") << "\n";
    if (t.use_identity_as_username) out << "use_identity_as_username true\n";
  }
  out.flush();
  if (!out) {
    error_ = "cannot write " + config_path_;
    return false;
  }
  return true;
}

bool Mosquitto::launch() {
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    error_ = "cannot open " + log_path_ + ": " + std::strerror(errno);
    return false;
  }
  std::vector<std::string> args{binary_, "-c", config_path_};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment is prepared before fork: the child may only make async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) env_strings.emplace_back(*e);
  for (const std::string& e : options_.environment) env_strings.push_back(e);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    error_ = std::string("fork failed: ") + std::strerror(errno);
    ::close(log_fd);
    return false;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    // If the test process dies without running destructors, the broker dies with it.
    if (!die_with_parent(parent)) ::_exit(126);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = pid;

  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      error_ = "mosquitto " + describe_status(status) + " before accepting connections";
      return false;
    }
    auto t = transport::TcpTransport::connect(host_, port_, edgekit::Duration{200});
    if (t && (tls_port_ == 0 || transport::TcpTransport::connect(host_, tls_port_, edgekit::Duration{200}))) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  error_ = "mosquitto did not accept connections on port " + std::to_string(port_) + " within " +
           std::to_string(options_.start_timeout.count()) + " ms";
  kill();
  return false;
}

bool Mosquitto::start() {
  if (running()) return true;
  error_.clear();
  if (!prepare()) return false;
  // Another process may grab the free port between our probe and the broker's bind: try again
  // with another port a few times.
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = free_loopback_port();
    if (options_.tls) {
      do {
        tls_port_ = free_loopback_port();
      } while (tls_port_ != 0 && tls_port_ == port_);
    }
    if (port_ == 0 || (options_.tls && tls_port_ == 0)) {
      error_ = "no free loopback port";
      return false;
    }
    if (!write_config()) return false;
    if (launch()) return true;
    if (log().find("in use") == std::string::npos) return false;
  }
  return false;
}

bool Mosquitto::restart() {
  stop();
  if (dir_.empty() || port_ == 0) return start();
  error_.clear();
  return launch();
}

void Mosquitto::stop() {
  // Generous: a loaded CI machine can take seconds to let Mosquitto write its persistence file.
  stop_child(pid_, SIGTERM, 10s);
}

void Mosquitto::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

void MosquittoFixture::SetUp() {
  broker_ = std::make_unique<Mosquitto>(broker_options());
  ASSERT_TRUE(broker_->start()) << "cannot start mosquitto: " << broker_->error()
                                << "\n--- mosquitto log ---\n"
                                << broker_->log();
}

void MosquittoFixture::TearDown() {
  if (broker_ && HasFailure()) {
    std::cerr << "--- mosquitto log (" << broker_->log_path() << ") ---\n"
              << broker_->log() << "--- end of mosquitto log ---\n";
  }
  broker_.reset();
}

}  // namespace edgekit::testing
