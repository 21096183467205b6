// Acceptance: the device process is killed (SIGKILL) with messages queued and unacknowledged,
// restarted with the same persisted session, and every message is still delivered (QoS 2 ones
// exactly once).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include "agent_test_support.hpp"
#include "edgekit/agent/agent.hpp"
#include "edgekit/testing/fault_proxy.hpp"
#include "edgekit/testing/mosquitto.hpp"

namespace edgekit::agent::test {
namespace {

// A child process with its stdin and stdout piped.
struct Child {
  pid_t pid = -1;
  int in = -1;
  FILE* out = nullptr;
  bool spawn(const std::vector<std::string>& args) {
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0) return false;
    pid = fork();
    if (pid == 0) {
      dup2(to[0], 0);
      dup2(from[1], 1);
      close(to[1]);
      close(from[0]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(to[0]);
    close(from[1]);
    in = to[1];
    out = fdopen(from[0], "r");
    return pid > 0;
  }
  std::string line() {
    char buf[256];
    if (fgets(buf, sizeof buf, out) == nullptr) return "";
    std::string s(buf);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
  void say(const char* s) { (void)!write(in, s, std::strlen(s)); }
  void kill9() {
    ::kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    close(in);
    fclose(out);
    pid = -1;
  }
  void finish() {
    if (pid < 0) return;
    close(in);
    int st = 0;
    waitpid(pid, &st, 0);
    fclose(out);
    pid = -1;
  }
};

class AgentKill : public edgekit::testing::MosquittoFixture {};

TEST_F(AgentKill, QueuedAndUnackedMessagesSurviveSigkillOfTheDeviceProcess) {
  constexpr int kCount = 60;
  SteadyClock clock;
  edgekit::testing::FaultProxy proxy(broker().port());
  ASSERT_TRUE(proxy.start());
  const std::string dir =
      std::filesystem::temp_directory_path() / ("edgekit-kill-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  // The receiver: subscribed before the device publishes, QoS 2.
  std::mutex m;
  std::map<std::string, int> got;
  struct Sink {
    std::mutex* m;
    std::map<std::string, int>* got;
    static void on(void* ctx, const mqtt::Publish& p) {
      auto* s = static_cast<Sink*>(ctx);
      std::lock_guard<std::mutex> l(*s->m);
      ++(*s->got)[std::string(p.topic)];
    }
  } sink{&m, &got};
  TcpTransportFactory rx_factory("127.0.0.1", broker().port());
  mqtt::ConnectOptions rx_opts;
  rx_opts.version = mqtt::Version::V5;
  rx_opts.client_id = "kill-sub";
  Agent receiver(Config{}, rx_opts, rx_factory, clock);
  ASSERT_TRUE(receiver.start());
  ASSERT_TRUE(receiver.subscribe_and_wait("kill/#", {mqtt::QoS::ExactlyOnce}, {&Sink::on, &sink}, 5s));

  const std::string id = "kill-dev-" + std::to_string(getpid());
  const std::string port = std::to_string(proxy.port());
  Child dev;
  ASSERT_TRUE(dev.spawn({EDGEKIT_AGENT_TEST_DEVICE, port, dir, id, std::to_string(kCount)}));
  ASSERT_EQ(dev.line(), "connected");
  proxy.stall();  // from now on nothing the device sends is acknowledged
  dev.say("go\n");
  ASSERT_EQ(dev.line(), "queued");
  std::this_thread::sleep_for(300ms);  // some publishes leave (into the stall), the rest wait
  dev.kill9();
  {
    std::lock_guard<std::mutex> l(m);
    ASSERT_TRUE(got.empty()) << "the stall let messages through";
  }
  auto records = [&](const std::string& sub) {
    std::size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(dir + "/" + sub)) {
      n += e.path().filename().string().rfind("p-", 0) == 0 ? 1 : 0;
    }
    return n;
  };
  const std::size_t unacked = records("session"), queued = records("outbox");
  std::printf("[   INFO   ] killed with %zu unacknowledged (session) and %zu queued (outbox) on disk\n",
              unacked, queued);
  EXPECT_GE(unacked, 1u);  // sent into the stall, never acknowledged
  EXPECT_GE(queued, 1u);   // held back by the broker's Receive Maximum, never sent
  EXPECT_EQ(unacked + queued, static_cast<std::size_t>(kCount));

  // What was stalled is gone with the connection; the restarted device resumes.
  proxy.cut();
  proxy.pass();
  Child again;
  ASSERT_TRUE(again.spawn({EDGEKIT_AGENT_TEST_DEVICE, port, dir, id, "0"}));
  ASSERT_EQ(again.line(), "connected");
  const bool all = wait_until(
      [&] {
        std::lock_guard<std::mutex> l(m);
        return got.size() == static_cast<std::size_t>(kCount);
      },
      15s);
  std::this_thread::sleep_for(300ms);  // late duplicates would show up now
  again.finish();
  receiver.stop();
  EXPECT_TRUE(all);
  std::lock_guard<std::mutex> l(m);
  EXPECT_EQ(got.size(), static_cast<std::size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    const int n = got["kill/" + std::to_string(i)];
    if (i % 2 == 1) {
      EXPECT_EQ(n, 1) << "QoS 2 message " << i;
    } else {
      EXPECT_GE(n, 1) << "QoS 1 message " << i;
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgekit::agent::test
