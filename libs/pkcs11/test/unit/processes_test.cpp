// Issue 11, point 2: one token folder used by several processes at once. Each test forks worker
// processes that load the module themselves (as separate applications would), start together,
// and write what they saw to a file of their own; the parent then checks the totals and the token
// left behind: no damaged object, no reverted PIN, no more wrong guesses than the lockout allows,
// no CKR_DEVICE_ERROR.

#include "token_fixture.hpp"

#include <edgekit/pkcs11/client.hpp>
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace edgekit::pkcs11 {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr char kSoPin[] = "so-secret";
constexpr char kPinA[] = "pin-a";
constexpr char kPinB[] = "pin-b";
constexpr auto kChangeEvery = std::chrono::milliseconds(2500);

std::string rv_name(CK_RV rv) { return std::string(rv_to_string(rv)); }

class TokenProcesses : public ::testing::Test {
 protected:
  void SetUp() override {
    // Workers report on stderr (kept in a file each): any "damaged" there fails the test.
    dir_ = testing::provision_token("edgekit-token-procs", "processes", kSoPin, kPinA, false);
    ASSERT_FALSE(dir_.empty());
    // The parent keeps no module loaded while workers run: each is its own application.
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs `work(k, out)` in `n` forked processes that start at the same moment; each writes its
  // findings to `out`. Returns what each wrote; fails the test if one did not exit 0.
  std::vector<std::string> run_workers(int n, const std::function<void(int, std::ostream&)>& work) {
    int gate[2];
    EXPECT_EQ(::pipe(gate), 0);
    std::vector<pid_t> pids;
    for (int k = 0; k < n; ++k) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::close(gate[1]);
        char c;
        while (::read(gate[0], &c, 1) < 0) {
        }
        std::ofstream out(dir_ + "/worker-" + std::to_string(k) + ".txt");
        if (!freopen((dir_ + "/worker-" + std::to_string(k) + ".err").c_str(), "w", stderr)) {
          ::_exit(3);
        }
        work(k, out);
        out.close();
        std::fflush(stderr);
        ::_exit(0);
      }
      pids.push_back(pid);
    }
    ::close(gate[0]);
    ::close(gate[1]);  // EOF: every worker starts now
    std::vector<std::string> results;
    for (int k = 0; k < n; ++k) {
      int status = 0;
      EXPECT_EQ(::waitpid(pids[static_cast<std::size_t>(k)], &status, 0), pids[static_cast<std::size_t>(k)]);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker " << k << " status " << status;
      results.push_back(testing::read_whole_file(dir_ + "/worker-" + std::to_string(k) + ".txt"));
      const std::string err = testing::read_whole_file(dir_ + "/worker-" + std::to_string(k) + ".err");
      EXPECT_EQ(err.find("damaged"), std::string::npos) << "worker " << k << " stderr: " << err;
    }
    return results;
  }

  // Counts words ("incorrect", "locked", "unexpected ...") in the workers' output.
  static int count(const std::vector<std::string>& results, const std::string& word) {
    int n = 0;
    for (const std::string& r : results) {
      std::istringstream in(r);
      std::string line;
      while (std::getline(in, line)) n += line.rfind(word, 0) == 0 ? 1 : 0;
    }
    return n;
  }
  static std::string unexpected(const std::vector<std::string>& results) {
    std::string all;
    for (const std::string& r : results) {
      std::istringstream in(r);
      std::string line;
      while (std::getline(in, line)) {
        if (line.rfind("unexpected", 0) == 0) all += line + "\n";
      }
    }
    return all;
  }

  std::string dir_;
};

// A login with whichever of the two PINs is current (the PIN changer may have changed it): the
// last one that worked first, then the other, then the first again. A change costs a worker one
// wrong attempt, so three workers do not make the five wrong attempts in a row that lock the PIN;
// the changer waits between changes (kChangeEvery) so that a worker's attempts (each may wait
// for the folder's lock on a loaded machine) rarely straddle a change, and never two.
CK_RV login_current(Session& s, std::ostream& out, std::string& last_good) {
  const std::string other = last_good == kPinA ? kPinB : kPinA;
  for (const std::string& pin : {last_good, other, last_good}) {
    auto r = s.login(UserType::User, pin);
    if (r) {
      last_good = pin;
      return CKR_OK;
    }
    if (r.error().rv != CKR_PIN_INCORRECT) {
      out << "unexpected login " << r.error().message() << "\n";
      return r.error().rv;
    }
  }
  out << "unexpected login: no PIN works (" << last_good << " first) at "
      << std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count() % 100000 << "\n";
  return CKR_PIN_INCORRECT;
}

// One login with a wrong PIN, its answer written as "incorrect", "locked" or "unexpected ...".
void wrong_guess(Session& s, UserType user, std::ostream& out) {
  auto r = s.login(user, "not-the-pin");
  const CK_RV rv = r ? CKR_OK : r.error().rv;
  if (rv == CKR_PIN_INCORRECT) {
    out << "incorrect\n";
  } else if (rv == CKR_PIN_LOCKED) {
    out << "locked\n";
  } else {
    out << "unexpected login " << rv_name(rv) << "\n";
  }
}

TEST_F(TokenProcesses, LockoutHoldsWhateverTheNumberOfProcesses) {
  constexpr int kWorkers = 4, kTries = 6;
  auto results = run_workers(kWorkers, [](int, std::ostream& out) {
    auto m = Module::load(EDGEKIT_TOKEN_MODULE);
    if (!m) return void(out << "unexpected load " << m.error().message() << "\n");
    auto s = m->open_session(0, false);
    if (!s) return void(out << "unexpected open " << s.error().message() << "\n");
    for (int i = 0; i < kTries; ++i) {
      wrong_guess(*s, UserType::User, out);
    }
  });
  EXPECT_EQ(unexpected(results), "");
  // Five wrong guesses in all, not five per process.
  EXPECT_EQ(count(results, "incorrect"), 5);
  EXPECT_EQ(count(results, "locked"), kWorkers * kTries - 5);
  auto m = Module::load(EDGEKIT_TOKEN_MODULE);
  ASSERT_TRUE(m);
  auto info = m->token_info(0);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->flags & CKF_USER_PIN_LOCKED);
  auto s = m->open_session(0, false);
  ASSERT_TRUE(s);
  auto r = s->login(UserType::User, kPinA);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rv, CKR_PIN_LOCKED);
}

TEST_F(TokenProcesses, SimultaneousLoginsAndKeyGenerationNeverFailOrDamage) {
  constexpr int kWorkers = 4, kRounds = 10;
  auto results = run_workers(kWorkers, [](int k, std::ostream& out) {
    auto m = Module::load(EDGEKIT_TOKEN_MODULE);
    if (!m) return void(out << "unexpected load " << m.error().message() << "\n");
    auto s = m->open_session(0, true);
    if (!s) return void(out << "unexpected open " << s.error().message() << "\n");
    for (int i = 0; i < kRounds; ++i) {
      if (auto r = s->login(UserType::User, kPinA); !r) {
        out << "unexpected login " << r.error().message() << "\n";
        continue;
      }
      const Bytes id{static_cast<std::uint8_t>(k), static_cast<std::uint8_t>(i)};
      auto kp = s->generate_ec_key_pair(Curve::P256, {"k", id, true});
      if (!kp) out << "unexpected keygen " << kp.error().message() << "\n";
      if (auto r = s->logout(); !r) out << "unexpected logout " << r.error().message() << "\n";
    }
  });
  EXPECT_EQ(unexpected(results), "");
  auto m = Module::load(EDGEKIT_TOKEN_MODULE);
  ASSERT_TRUE(m);
  auto s = m->open_session(0, true);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->login(UserType::User, kPinA));
  auto keys = s->find({CKO_PRIVATE_KEY, "k", std::nullopt});
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->size(), static_cast<std::size_t>(kWorkers * kRounds));
}

// The acceptance test of issue 11: processes doing logins, key generation, signing, PIN changes
// and wrong-PIN attempts at once for EDGEKIT_TOKEN_STRESS_SECONDS (30 by default). Afterwards
// every key a process was told exists works, the PIN is what the last successful change set, and
// the SO PIN's lockout held (5 wrong guesses in total).
TEST_F(TokenProcesses, ManyProcessesAtOnceLoseNothing) {
  double seconds = 30;
  if (const char* v = std::getenv("EDGEKIT_TOKEN_STRESS_SECONDS")) seconds = std::atof(v);
  const auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  constexpr int kWorkers = 5;
  auto results = run_workers(kWorkers, [&](int k, std::ostream& out) {
    auto m = Module::load(EDGEKIT_TOKEN_MODULE);
    if (!m) return void(out << "unexpected load " << m.error().message() << "\n");
    auto s = m->open_session(0, true);
    if (!s) return void(out << "unexpected open " << s.error().message() << "\n");
    std::string last_good = kPinA;
    if (k == 0) {
      // The PIN changer: alternates the user PIN; the last change it saw succeed is the PIN.
      // Only this process changes the PIN, so it is still the first one.
      std::string current = kPinA;
      if (auto r = s->login(UserType::User, current); !r) {
        out << "unexpected changer login " << r.error().message() << "\n";
        return;
      }
      while (Clock::now() < deadline) {
        const std::string next = current == kPinA ? kPinB : kPinA;
        if (auto r = s->set_pin(current, next); !r) {
          out << "unexpected set_pin " << r.error().message() << "\n";
        } else {
          current = next;
          out << "pin " << current << " at "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch()).count() % 100000 << "\n";
        }
        std::this_thread::sleep_for(kChangeEvery);
      }
      out << "final " << current << "\n";
    } else if (k == 4) {
      // The attacker: wrong SO PINs, as fast as it can.
      while (Clock::now() < deadline) {
        wrong_guess(*s, UserType::SecurityOfficer, out);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    } else {
      // Key makers and users: log in, generate, sign with a key found again by its id, and
      // now and then log out and in again.
      for (int i = 0; Clock::now() < deadline; ++i) {
        if (login_current(*s, out, last_good) != CKR_OK) return;
        const Bytes id{static_cast<std::uint8_t>(k), static_cast<std::uint8_t>(i >> 8),
                       static_cast<std::uint8_t>(i)};
        if (k != 3 || i % 4 == 0) {
          auto kp = s->generate_ec_key_pair(Curve::P256, {"stress", id, true});
          if (!kp) {
            out << "unexpected keygen " << kp.error().message() << "\n";
          } else {
            out << "key " << static_cast<int>(id[0]) << " " << static_cast<int>(id[1]) << " "
                << static_cast<int>(id[2]) << "\n";
            const Bytes data{'d', 'a', 't', 'a'};
            auto key = s->find_one({CKO_PRIVATE_KEY, std::nullopt, id});
            if (!key) {
              out << "unexpected find_one " << key.error().message() << "\n";
            } else if (auto sig = s->sign(*key, {CKM_ECDSA_SHA256, {}}, data); !sig) {
              out << "unexpected sign " << sig.error().message() << "\n";
            }
          }
        }
        auto all = s->find({CKO_PRIVATE_KEY, "stress", std::nullopt});
        if (!all) out << "unexpected find " << all.error().message() << "\n";
        if (auto r = s->logout(); !r) out << "unexpected logout " << r.error().message() << "\n";
      }
    }
  });
  EXPECT_EQ(unexpected(results), "") << "PIN changes:\n" << results[0];
  // The SO PIN lockout held against a process trying all the time.
  EXPECT_EQ(count(results, "incorrect"), 5);
  EXPECT_GT(count(results, "locked"), 0);

  // The PIN is the last one the changer set, and every key reported made works.
  const std::string& changer = results[0];
  const auto at = changer.rfind("final ");
  ASSERT_NE(at, std::string::npos) << changer;
  const std::string final_pin = changer.substr(at + 6, changer.find('\n', at) - at - 6);
  auto m = Module::load(EDGEKIT_TOKEN_MODULE);
  ASSERT_TRUE(m);
  auto info = m->token_info(0);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->flags & CKF_SO_PIN_LOCKED);
  EXPECT_FALSE(info->flags & CKF_USER_PIN_LOCKED);
  auto s = m->open_session(0, true);
  ASSERT_TRUE(s);
  const std::string other = final_pin == kPinA ? kPinB : kPinA;
  auto wrong = s->login(UserType::User, other);
  ASSERT_FALSE(wrong) << "the PIN reverted to " << other;
  auto r = s->login(UserType::User, final_pin);
  ASSERT_TRUE(r) << r.error().message();
  int keys = 0;
  for (const std::string& out : results) {
    std::istringstream in(out);
    std::string word;
    while (in >> word) {
      if (word != "key") continue;
      int a = 0, b = 0, c = 0;
      in >> a >> b >> c;
      const Bytes id{static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b),
                     static_cast<std::uint8_t>(c)};
      ++keys;
      auto priv = s->find_one({CKO_PRIVATE_KEY, std::nullopt, id});
      auto pub = s->find_one({CKO_PUBLIC_KEY, std::nullopt, id});
      ASSERT_TRUE(priv && pub) << "key " << a << " " << b << " " << c << " is gone";
      const Bytes data{'c', 'h', 'e', 'c', 'k'};
      auto sig = s->sign(*priv, {CKM_ECDSA_SHA256, {}}, data);
      ASSERT_TRUE(sig) << sig.error().message();
      EXPECT_TRUE(s->verify(*pub, {CKM_ECDSA_SHA256, {}}, data, *sig));
    }
  }
  EXPECT_GT(keys, 0);
  auto all = s->find({CKO_PRIVATE_KEY, "stress", std::nullopt});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), static_cast<std::size_t>(keys));
  std::printf("%d keys made, %d PIN changes, %d wrong SO PINs refused as locked\n", keys,
              count(results, "pin "), count(results, "locked"));
}

}  // namespace
}  // namespace edgekit::pkcs11
