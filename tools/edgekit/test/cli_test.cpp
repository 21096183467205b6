// The `edgekit` command end to end: the real binary (EDGEKIT_CLI) against a real Mosquitto on a
// free loopback port, and mosquitto_pub as the third-party publisher. Issue 11, points 4 and 7:
// every input fails clearly and before connecting, and a host subscriber keeps up with a broker
// that has far more QoS 2 messages in flight than a device would keep records for.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "edgekit/testing/child_process.hpp"
#include "edgekit/testing/mosquitto.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using edgekit::testing::Mosquitto;
using edgekit::testing::MosquittoOptions;

// A private temp dir per test, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "edgekit-cli-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// One child process: stdout and stderr go to files, stdin comes from a file (or /dev/null).
class Child {
 public:
  Child(std::vector<std::string> argv, const fs::path& dir, const std::string& name,
        const std::string& stdin_path = "/dev/null")
      : out_(dir / (name + ".out")), err_(dir / (name + ".err")) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // Waits up to `limit`; false when it is still running then (it is killed).
  bool wait(std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0) {
      int status = 0;
      struct rusage ru {};
      const pid_t r = ::wait4(pid_, &status, WNOHANG, &ru);
      if (r == pid_) {
        pid_ = -1;
        status_ = status;
        max_rss_kb_ = ru.ru_maxrss;
        return true;
      }
      if (std::chrono::steady_clock::now() > end) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
  void signal(int s) const {
    if (pid_ > 0) ::kill(pid_, s);
  }
  // Waits until stderr contains `text` (false after `limit` or when the child exited first).
  bool wait_for_stderr(const std::string& text, std::chrono::milliseconds limit) const {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (err().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  bool exited_normally() const { return WIFEXITED(status_); }
  int exit_code() const { return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1; }
  int term_signal() const { return WIFSIGNALED(status_) ? WTERMSIG(status_) : 0; }
  long max_rss_kb() const { return max_rss_kb_; }
  std::string out() const { return edgekit::testing::read_text_file(out_.string()); }
  std::string err() const { return edgekit::testing::read_text_file(err_.string()); }
  bool started() const { return pid_ > 0 || status_ != -1; }

 private:
  fs::path out_;
  fs::path err_;
  pid_t pid_ = -1;
  int status_ = -1;
  long max_rss_kb_ = 0;
};

std::string cli() {
  const char* v = std::getenv("EDGEKIT_CLI");
  return v != nullptr && *v != 0 ? v : EDGEKIT_CLI;
}

// Runs `edgekit args...` to completion (at most `limit`).
struct Outcome {
  int code = -1;
  int signal = 0;
  bool finished = false;
  long max_rss_kb = 0;
  std::string out;
  std::string err;
};
Outcome run(const fs::path& dir, std::vector<std::string> args,
            std::chrono::milliseconds limit = 20s, const std::string& stdin_path = "/dev/null") {
  static int n = 0;
  args.insert(args.begin(), cli());
  Child c(args, dir, "run" + std::to_string(++n), stdin_path);
  Outcome r;
  r.finished = c.wait(limit);
  r.code = c.exit_code();
  r.signal = c.term_signal();
  r.max_rss_kb = c.max_rss_kb();
  r.out = c.out();
  r.err = c.err();
  return r;
}

std::string describe(const Outcome& r) {
  return "exit " + std::to_string(r.code) + " signal " + std::to_string(r.signal) +
         (r.finished ? "" : " (killed: did not finish)") + "\nstderr: " + r.err.substr(0, 2000) +
         "\nstdout: " + r.out.substr(0, 500);
}

// A loopback port with nothing listening: a command that connected there would say
// "cannot reach", so a different message proves the check came before connecting.
std::string dead_port() {
  return std::to_string(edgekit::testing::free_loopback_port());
}

// --- Point 4: inputs that must fail clearly, before connecting ----------------------------------

TEST(CliInput, PubRefusesADirectoryAsFile) {
  TempDir t;
  const Outcome r = run(t.path, {"pub", "-p", dead_port(), "-t", "a", "-f", t.path.string()});
  EXPECT_TRUE(r.finished) << describe(r);
  EXPECT_EQ(r.signal, 0) << describe(r);  // was SIGABRT (uncaught std::ios_failure)
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_NE(r.err.find("is a directory"), std::string::npos) << describe(r);
}

TEST(CliInput, TokenImportCertRefusesADirectory) {
  TempDir t;
  const Outcome r = run(
      t.path, {"token", "import-cert", "--pin", "1234", "--label", "x", "--cert", t.path.string()});
  EXPECT_TRUE(r.finished) << describe(r);
  EXPECT_EQ(r.signal, 0) << describe(r);
  EXPECT_NE(r.code, 0) << describe(r);
  EXPECT_NE(r.err.find("is a directory"), std::string::npos) << describe(r);
}

TEST(CliInput, PubReadsAnEndlessInputOnlyUpToTheLimit) {
  TempDir t;
  const Outcome r =
      run(t.path,
          {"pub", "-p", dead_port(), "-t", "a", "-f", "/dev/zero", "--max-packet-size", "1048576"},
          30s);
  EXPECT_TRUE(r.finished) << describe(r);  // was: reads until memory runs out
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_NE(r.err.find("more than 1048576 bytes"), std::string::npos) << describe(r);
  // From standard input too, with the default limit.
  const Outcome s = run(t.path, {"pub", "-p", dead_port(), "-t", "a", "-s"}, 30s, "/dev/zero");
  EXPECT_TRUE(s.finished) << describe(s);
  EXPECT_EQ(s.code, 2) << describe(s);
  EXPECT_NE(s.err.find("standard input"), std::string::npos) << describe(s);
}

TEST(CliInput, PubRefusesAHugeFileBeforeReadingItAll) {
  TempDir t;
  const fs::path big = t.path / "big";
  { std::ofstream f(big); }
  fs::resize_file(big, 300U << 20U);  // sparse: 300 MB that cost no disk
  const Outcome r = run(t.path, {"pub", "-p", dead_port(), "-t", "a", "-f", big.string()}, 60s);
  EXPECT_TRUE(r.finished) << describe(r);
  EXPECT_EQ(r.code, 2) << describe(r);  // was: read whole (591 MB RSS), refused after connecting
  EXPECT_NE(r.err.find("--max-packet-size"), std::string::npos) << describe(r);
  // The default limit (16 MiB) plus the sanitizers' overhead; far below the file's size.
  EXPECT_LT(r.max_rss_kb, 200L * 1024) << describe(r);
}

TEST(CliInput, NumericOptionsAreRangeChecked) {
  TempDir t;
  const std::string port = dead_port();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"sub", "-p", port, "-t", "a", "-W", "-1"},
        {"sub", "-p", port, "-t", "a", "-C", "-1"},
        {"sub", "-p", port, "-t", "a", "-C", "0"},
        {"sub", "-p", port, "-t", "a", "--max-packet-size", "10"},
        {"pub", "-p", port, "-t", "a", "-m", "x", "--timeout", "-5"},
        {"pub", "-p", port, "-t", "a", "-m", "x", "--repeat-delay", "-5"},
        {"pub", "-p", "0", "-t", "a", "-m", "x"},
        {"pub", "-p", port, "-t", "a", "-m", "x", "--max-packet-size", "300000000"}}) {
    const Outcome r = run(t.path, args, 10s);
    std::string line;
    for (const auto& a : args) line += a + " ";
    // Refused at once, with a usage error naming the option — never "cannot reach" (it did
    // not try to connect), never waiting forever, never exit 0.
    EXPECT_TRUE(r.finished) << line << describe(r);
    EXPECT_NE(r.code, 0) << line << describe(r);
    EXPECT_EQ(r.err.find("cannot reach"), std::string::npos) << line << describe(r);
  }
}

TEST(CliInput, TopicsAreCheckedBeforeConnecting) {
  TempDir t;
  const Outcome p = run(t.path, {"pub", "-p", dead_port(), "-t", "a/+/b", "-m", "x"});
  EXPECT_EQ(p.code, 2) << describe(p);
  EXPECT_NE(p.err.find("not a topic name"), std::string::npos) << describe(p);
  const Outcome s = run(t.path, {"sub", "-p", dead_port(), "-t", "a/#/b"});
  EXPECT_EQ(s.code, 2) << describe(s);
  EXPECT_NE(s.err.find("not a topic filter"), std::string::npos) << describe(s);
}

TEST(CliInput, PasswordWithoutUserNameIn311SaysSo) {
  TempDir t;
  const Outcome r =
      run(t.path, {"pub", "-p", dead_port(), "-V", "311", "-P", "secret", "-t", "a", "-m", "x"});
  EXPECT_EQ(r.code, 2) << describe(r);
  EXPECT_NE(r.err.find("needs a user name"), std::string::npos) << describe(r);
}

// --- With a broker -------------------------------------------------------------------------------

class CliBroker : public edgekit::testing::MosquittoFixture {
 protected:
  MosquittoOptions broker_options() const override {
    MosquittoOptions o;
    // Far more in flight than a device keeps records for (Mosquitto's default of 20 would hide
    // the fault), and room to queue a resumed session's messages.
    o.extra_lines = {"max_inflight_messages 1000", "max_queued_messages 100000",
                     "set_tcp_nodelay true"};
    o.verbose_log = true;
    return o;
  }
  std::string port() { return std::to_string(broker().port()); }

  // Starts `edgekit sub ... -d` and waits until it has subscribed.
  std::unique_ptr<Child> start_sub(const TempDir& t, std::vector<std::string> args,
                                   const std::string& name = "sub") {
    args.insert(args.begin(), {cli(), "sub", "-p", port(), "-d"});
    auto c = std::make_unique<Child>(args, t.path, name);
    EXPECT_TRUE(c->wait_for_stderr("subscribed to", 20s)) << c->err();
    return c;
  }
  // mosquitto_pub, to completion.
  int mosquitto_pub(const TempDir& t, std::vector<std::string> args,
                    const std::string& stdin_path = "/dev/null") {
    args.insert(args.begin(), {"mosquitto_pub", "-h", "127.0.0.1", "-p", port()});
    Child c(args, t.path, "mosquitto_pub", stdin_path);
    EXPECT_TRUE(c.wait(120s)) << "mosquitto_pub did not finish";
    EXPECT_EQ(c.exit_code(), 0) << c.err();
    return c.exit_code();
  }
};

// Lines "0".."n-1", and the file that mosquitto_pub -l sends one message a line from.
std::string numbered_lines(const fs::path& file, int from, int to) {
  std::ostringstream all;
  for (int i = from; i < to; ++i) all << i << '\n';
  std::ofstream(file) << all.str();
  return all.str();
}

TEST_F(CliBroker, SubWaitsLongTimeoutsWithoutOverflow) {
  TempDir t;
  auto sub = start_sub(t, {"-t", "w", "-W", "3000000", "-C", "1"});  // 3e9 ms overflowed an int
  mosquitto_pub(t, {"-t", "w", "-m", "hello"});
  ASSERT_TRUE(sub->wait(20s)) << sub->err();
  EXPECT_EQ(sub->exit_code(), 0) << sub->err();
  EXPECT_EQ(sub->out(), "hello\n");
}

// -C N prints exactly N even when many more arrive in one read (a resumed session's queue comes
// in one burst); what it did not print stays the broker's and comes with the next resume, once.
TEST_F(CliBroker, SubCountStopsAtExactlyThatMany) {
  TempDir t;
  const std::vector<std::string> session = {"-q", "1", "-c", "-i", "counted", "-t", "c"};
  {
    auto first = start_sub(t, session, "first");
    first->signal(SIGTERM);
    ASSERT_TRUE(first->wait(10s));
  }
  numbered_lines(t.path / "lines", 0, 50);
  mosquitto_pub(t, {"-t", "c", "-q", "1", "-l"}, (t.path / "lines").string());
  std::vector<std::string> args = {"sub", "-p", port(), "-C", "3"};
  args.insert(args.end(), session.begin(), session.end());
  const Outcome three = run(t.path, args);
  EXPECT_EQ(three.code, 0) << describe(three);
  EXPECT_EQ(three.out, "0\n1\n2\n");  // was: every message of the first read
  args[4] = "47";
  const Outcome rest = run(t.path, args);
  EXPECT_EQ(rest.code, 0) << describe(rest);
  EXPECT_EQ(rest.out, numbered_lines(t.path / "rest", 3, 50));
}

TEST_F(CliBroker, VerboseSubEscapesTerminalControls) {
  TempDir t;
  auto sub = start_sub(t, {"-t", "#", "-v", "-C", "1"});
  // A payload that would retitle the terminal and clear the screen (7-bit ESC, 8-bit CSI, and
  // CSI as UTF-8 U+009B). Topics cannot carry them through Mosquitto, which refuses control
  // characters in topics (they take the same escaping path in sub.cpp).
  mosquitto_pub(t, {"-t", "evil/t\xc3\xa9", "-m",
                    "\x1b]0;pwned\x07\x1b[2J\x9b"
                    "31m\xc2\x9b ok \xc3\xa9\\"});
  ASSERT_TRUE(sub->wait(20s)) << sub->err();
  const std::string out = sub->out();
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
  EXPECT_EQ(out.find('\x07'), std::string::npos) << out;
  EXPECT_EQ(out.find("\x9b"), std::string::npos) << out;
  EXPECT_EQ(out, "evil/t\xc3\xa9 \\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\xc2\\x9b ok \xc3\xa9\\\\\n");
}

TEST_F(CliBroker, PersistentSubReportsTheAssignedClientId) {
  TempDir t;
  const Outcome r = run(t.path, {"sub", "-p", port(), "-c", "-t", "a", "-W", "1"});
  EXPECT_EQ(r.code, 3) << describe(r);
  EXPECT_NE(r.err.find("the broker assigned client id 'auto-"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("resumes this session"), std::string::npos) << describe(r);
}

// --- Point 7 -------------------------------------------------------------------------------------

TEST_F(CliBroker, TenThousandQoS2MessagesAt311ArriveCompleteInOrderOnce) {
  TempDir t;
  const std::string expected = numbered_lines(t.path / "lines", 0, 10000);
  auto sub = start_sub(t, {"-V", "311", "-q", "2", "-t", "q2", "-C", "10000", "-W", "120"});
  const auto t0 = std::chrono::steady_clock::now();
  mosquitto_pub(t, {"-V", "311", "-q", "2", "-t", "q2", "-l"}, (t.path / "lines").string());
  ASSERT_TRUE(sub->wait(150s)) << sub->err();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_EQ(sub->exit_code(), 0) << sub->err();  // was: "session state full" after ~686
  EXPECT_TRUE(sub->out() == expected)
      << "got " << sub->out().size() << " bytes, not the " << expected.size() << " expected";
  std::printf("[ figures ] 10000 QoS 2 messages through max_inflight_messages 1000: %lld ms\n",
              static_cast<long long>(ms));
}

// The same, with the subscriber stopped (SIGSTOP) while mosquitto_pub sends: when it resumes,
// the broker has 1,000 QoS 2 messages in flight to it at once — what a subscriber that falls
// behind for a moment meets. 64 fixed records ended this with "session state full".
TEST_F(CliBroker, TenThousandQoS2MessagesAt311ReachASubscriberThatFellBehind) {
  TempDir t;
  const std::string expected = numbered_lines(t.path / "lines", 0, 10000);
  auto sub = start_sub(t, {"-V", "311", "-q", "2", "-t", "q2", "-C", "10000", "-W", "120"});
  sub->signal(SIGSTOP);
  mosquitto_pub(t, {"-V", "311", "-q", "2", "-t", "q2", "-l"}, (t.path / "lines").string());
  sub->signal(SIGCONT);
  ASSERT_TRUE(sub->wait(150s)) << sub->err();
  EXPECT_EQ(sub->exit_code(), 0) << sub->err();
  EXPECT_TRUE(sub->out() == expected)
      << "got " << sub->out().size() << " bytes, not the " << expected.size() << " expected";
}

TEST_F(CliBroker, AResumed311SessionHolding2000QoS2MessagesArrivesCompleteInOrderOnce) {
  TempDir t;
  {
    // Makes the session (clean session off), then leaves with DISCONNECT (SIGTERM).
    auto first =
        start_sub(t, {"-V", "311", "-q", "2", "-c", "-i", "resume-me", "-t", "r"}, "first");
    first->signal(SIGTERM);
    ASSERT_TRUE(first->wait(10s));
    EXPECT_EQ(first->exit_code(), 0) << first->err();
  }
  const std::string expected = numbered_lines(t.path / "lines", 0, 2000);
  mosquitto_pub(t, {"-V", "311", "-q", "2", "-t", "r", "-l"}, (t.path / "lines").string());
  // The broker holds 2,000 for the session and sends up to 1,000 at once on resume.
  const Outcome r = run(t.path,
                        {"sub", "-p", port(), "-V", "311", "-q", "2", "-c", "-i", "resume-me", "-t",
                         "r", "-C", "2000", "-W", "60"},
                        90s);
  EXPECT_EQ(r.code, 0) << describe(r);
  EXPECT_TRUE(r.out == expected) << "got " << r.out.size() << " bytes, not the " << expected.size()
                                 << " expected; stderr: " << r.err;
}

TEST_F(CliBroker, AOneMegabyteMessageReachesSub) {
  TempDir t;
  const std::string big(1U << 20U, 'm');
  std::ofstream(t.path / "big") << big;
  for (const char* version : {"5", "311"}) {
    auto sub = start_sub(t, {"-V", version, "-t", "big", "-C", "1", "-W", "20"},
                         std::string("sub") + version);
    mosquitto_pub(t, {"-t", "big", "-f", (t.path / "big").string()});
    ASSERT_TRUE(sub->wait(30s)) << sub->err();
    // Was: MQTT 5 — the broker dropped it silently (256 KiB advertised), exit 3 after -W;
    // 3.1.1 — "connection lost: IncomingPacketTooLarge".
    EXPECT_EQ(sub->exit_code(), 0) << version << ": " << sub->err();
    EXPECT_TRUE(sub->out() == big + "\n") << version << ": " << sub->out().size() << " bytes";
  }
}

TEST_F(CliBroker, SubSaysWhyAMessageWasRefused) {
  TempDir t;
  auto sub = start_sub(t, {"-V", "311", "-t", "big", "--max-packet-size", "1024", "-W", "20"});
  mosquitto_pub(t, {"-t", "big", "-m", std::string(4000, 'x')});
  ASSERT_TRUE(sub->wait(30s)) << sub->err();
  EXPECT_EQ(sub->exit_code(), 1) << sub->err();
  EXPECT_NE(sub->err().find("larger than the maximum packet size (1024 bytes)"), std::string::npos)
      << sub->err();
  EXPECT_NE(sub->err().find("--max-packet-size"), std::string::npos) << sub->err();
}

}  // namespace

// A broker with a small Maximum Packet Size: a refusal is explained, and the tool ends the
// connection it abandons with DISCONNECT (Mosquitto logs "disconnected", not "closed its
// connection"). (Mosquitto 2 grants subscriptions its ACL denies and filters at delivery, so a
// refused SUBSCRIBE cannot be provoked here.)
class CliStrictBroker : public CliBroker {
 protected:
  MosquittoOptions broker_options() const override {
    MosquittoOptions o = CliBroker::broker_options();
    o.extra_lines.push_back("max_packet_size 2000");
    return o;
  }
};

TEST_F(CliStrictBroker, PubExplainsTheBrokersLimitAndDisconnects) {
  TempDir t;
  const Outcome r = run(t.path, {"pub", "-p", port(), "-i", "too-big", "-q", "1", "-t", "allowed/x",
                                 "-m", std::string(3000, 'x')});
  EXPECT_EQ(r.code, 1) << describe(r);
  EXPECT_NE(r.err.find("the broker accepts packets of at most 2000 bytes"), std::string::npos)
      << describe(r);
  std::this_thread::sleep_for(300ms);  // the broker's log
  EXPECT_NE(broker().log().find("Client too-big disconnected"), std::string::npos)
      << broker().log();
}
