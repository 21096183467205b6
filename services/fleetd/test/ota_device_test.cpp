// The OTA device end to end: `edgekit ota run` (ota::Agent in a jobs::Runner, key and
// code-signing key in edgekit's token, state in files) as device t9, a process of its own that
// "reboots" by exiting 3 and is started again, against the real Mosquitto with edgekit's plugin
// and the fleetd binary with its own CA (which signs the images in its token). Updates are AWS
// AFR_OTA jobs allowing MQTT and HTTP; blocks come over the MQTT stream in JSON, in CBOR, or as
// HTTP ranges of the presigned URL (the test's parameter: the same suite for each).
//
// What is counted: the device prints "block <i>" once a block is stored with its bitmap, and
// "duplicate <i>" for a block that arrived again. A block stored is never asked for again, so
// across every process of a download each block is printed at most once; a kill can lose only
// the one block in flight (received, not yet stored), which is asked for again.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "edgekit/json/json.hpp"
#include "edgekit/testing/child_process.hpp"
#include "edgekit/testing/fault_proxy.hpp"
#include "edgekit_image.hpp"
#include "ota/base64.hpp"
#include "token_device.hpp"

namespace edgekit::fleetd::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kReboot = 3;
constexpr int kUpdateFailed = 4;

// An edgekit image (docs/ota.md) of `payload_size` bytes of a pattern.
std::string image(int major, int minor, int build, const std::string& type,
                  std::size_t payload_size, int seed = 1) {
  std::string payload(payload_size, '\0');
  for (std::size_t i = 0; i < payload_size; ++i) {
    payload[i] = static_cast<char>((i * 31 + static_cast<std::size_t>(seed) * 7 + i / 251) % 256);
  }
  return edgekit_image(major, minor, build, type, payload);
}

void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// The "block <i>" lines of a device's output: how many times each block was stored.
std::map<int, int> stored_blocks(const std::string& out, int* duplicates = nullptr) {
  std::map<int, int> seen;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("block ", 0) == 0) ++seen[std::stoi(line.substr(6))];
    if (duplicates && line.rfind("duplicate ", 0) == 0) ++*duplicates;
  }
  return seen;
}

// Whether an installed image is `expected` byte for byte (else where they first differ).
::testing::AssertionResult same_bytes(const std::string& got, const std::string& expected) {
  if (got == expected) return ::testing::AssertionSuccess();
  const auto diff = std::mismatch(got.begin(), got.end(), expected.begin(), expected.end());
  return ::testing::AssertionFailure()
         << "installed " << got.size() << " bytes, source " << expected.size()
         << ", first difference at " << (diff.first - got.begin());
}

class OtaDevice : public TokenDeviceBroker, public ::testing::WithParamInterface<std::string> {
 protected:
  OtaDevice() {
    own_ca_ = true;
    // fleetd's HTTPS download endpoint (presigned URLs, ranges) on a free port with the broker's
    // server certificate (the fixture's PKI is made in SetUp, at these paths).
    const auto pki = std::filesystem::temp_directory_path() /
                     ("edgekit-secured-" + std::to_string(::getpid())) / "pki";
    fleetd_flags_ = {"--ota-http-tls-cert", (pki / "server.crt").string(), "--ota-http-tls-key",
                     (pki / "server.key").string(), "--ota-http-port", "0"};
  }

  void SetUp() override {
    SecuredBroker::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(fleetd_logged("broker.subscribed", 1, 10s)) << "fleetd never subscribed";
    make_token_device("t9");
    state_ = dir_ / "device";
    // The device runs 1.0.0 in slot A (what the factory installed).
    write_file(state_ / "slots" / "slot-a.img", image(1, 0, 0, "sensor", 3000, 0));
  }

  json call(const std::string& method, const std::string& path, const json& body, int status) {
    auto r = admin(method, "/admin/v1" + path, body.is_null() ? "" : body.dump());
    EXPECT_TRUE(r) << path;
    if (!r) return {};
    EXPECT_EQ(r->status, status) << method << " " << path << " -> " << r->body;
    return json::parse(r->body, nullptr, false);
  }

  // Uploads `bytes` as image app `version`, has fleetd sign it, rolls it out to t9 as update
  // `id` (MQTT stream, `block_size` blocks); keeps the signer's certificate for the device.
  void roll_out(const std::string& id, const std::string& version, const std::string& bytes,
                int block_size = 1024) {
    call("POST", "/ota/images",
         {{"name", "app"}, {"version", version}, {"image", ota::base64_encode(bytes)}}, 201);
    const json s = call("POST", "/ota/images/app/" + version + "/sign", json(), 200);
    if (!std::filesystem::exists(signer_)) {
      signer_ = (dir_ / "code-signer.pem").string();
      std::ofstream(signer_) << s.value("certificate", "");
    }
    call("POST", "/ota/updates",
         {{"otaUpdateId", id},
          {"imageName", "app"},
          {"imageVersion", version},
          {"protocols", {"MQTT", "HTTP"}},
          {"blockSize", block_size},
          {"targets", {{"things", {"t9"}}}}},
         201);
  }

  // fleetd's record of t9's execution of update `id`.
  json execution(const std::string& id) { return job_execution("AFR_OTA-" + id, "t9"); }

  std::string args(int port, int block_size, const std::string& extra) const {
    return "ota run --thing t9 -h 127.0.0.1 -p " + std::to_string(port) + " --cafile " +
           ca_->cert_file() + " --cert " + token_cert_ + " --key-label t9 --token " + kTokenLabel +
           " --state-dir " + state_.string() + " --device-type sensor --code-signing-cert " +
           (signer_override_.empty() ? signer_ : signer_override_) +
           (GetParam() == "http" ? " --protocol http" : " --format " + GetParam()) +
           " --block-size " + std::to_string(block_size) + " --timeout 2000 " + extra;
  }

  // One boot of the device, to its exit.
  testing::CommandRun boot(const std::string& extra = "--once", int block_size = 1024) {
    auto r = edgekit(args(broker_->tls_port(), block_size, extra) + " 2>&1");
    all_out_ += r.out;
    return r;
  }

  std::string slot_image(char slot) const {
    return testing::read_text_file((state_ / "slots" / (std::string("slot-") + slot + ".img")).string());
  }

  std::filesystem::path state_;
  std::string signer_;
  std::string signer_override_;
  std::string all_out_;
};

// 1.0.0 → 2.0.0: download, verify, install, reboot, self-test, SUCCEEDED; the new image in
// slot B byte for byte, every block stored once.
TEST_P(OtaDevice, UpdatesFromOneToTwoWithEveryBlockOnce) {
  const std::string v2 = image(2, 0, 0, "sensor", 9000, 2);
  roll_out("u1", "2.0.0", v2);
  auto first = boot();
  ASSERT_EQ(first.code, kReboot) << first.out;
  EXPECT_NE(first.out.find("running v1.0.0 (slot A)"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("ota: signature verified"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find(GetParam() == "http" ? "ota: downloading over HTTP ranges"
                                                : "ota: downloading over the MQTT stream"),
            std::string::npos)
      << first.out;
  json e = execution("u1");
  EXPECT_EQ(e["status"], "IN_PROGRESS") << e.dump();
  EXPECT_EQ(e["statusDetails"]["self_test"], "ready") << e.dump();
  EXPECT_EQ(e["statusDetails"]["updatedBy"], "0x1000000") << e.dump();
  auto second = boot();
  ASSERT_EQ(second.code, 0) << second.out;
  EXPECT_NE(second.out.find("running v2.0.0 (slot B)"), std::string::npos) << second.out;
  e = execution("u1");
  EXPECT_EQ(e["status"], "SUCCEEDED") << e.dump();
  EXPECT_EQ(e["statusDetails"]["reason"], "accepted v2.0.0") << e.dump();
  EXPECT_EQ(e["statusDetails"]["updatedBy"], "0x1000000") << e.dump();
  EXPECT_TRUE(same_bytes(slot_image('b'), v2));
  int duplicates = 0;
  const auto blocks = stored_blocks(all_out_, &duplicates);
  EXPECT_EQ(blocks.size(), (v2.size() + 1023) / 1024);
  for (const auto& [b, n] : blocks) EXPECT_EQ(n, 1) << "block " << b;
  EXPECT_EQ(duplicates, 0);
  // The next boot runs 2.0.0 and has nothing to do.
  auto third = boot();
  EXPECT_EQ(third.code, 0) << third.out;
  EXPECT_NE(third.out.find("no pending update for t9"), std::string::npos) << third.out;
}

// Blocks larger than the tool's 4 KB default chunk and fleetd's former 16 KB message copies:
// 16,384 bytes (an HTTP range of one block needs a chunk that holds it; a data message over the
// broker link of 16 KB and more was never delivered) and 65,536 (a JSON data message of ~87 KB).
// The last block is a partial one. Each size from a fresh device (1.0.0 in slot A).
TEST_P(OtaDevice, LargeBlocksDeliverEveryBlockOnce) {
  const std::string original = slot_image('a');
  int round = 0;
  for (int block_size : {16384, 65536}) {
    SCOPED_TRACE("block size " + std::to_string(block_size));
    std::filesystem::remove_all(state_);
    write_file(state_ / "slots" / "slot-a.img", original);
    all_out_.clear();
    ++round;
    const std::string version = "2.0." + std::to_string(round);
    const std::string v2 = image(2, 0, round, "sensor", 2 * static_cast<std::size_t>(block_size) + 777, round);
    roll_out("big" + std::to_string(round), version, v2, block_size);
    auto first = boot("--once", block_size);
    ASSERT_EQ(first.code, kReboot) << first.out;
    auto second = boot("--once", block_size);
    ASSERT_EQ(second.code, 0) << second.out;
    EXPECT_NE(second.out.find("running v" + version + " (slot B)"), std::string::npos) << second.out;
    EXPECT_EQ(execution("big" + std::to_string(round))["status"], "SUCCEEDED");
    EXPECT_TRUE(same_bytes(slot_image('b'), v2));
    int duplicates = 0;
    const auto blocks = stored_blocks(all_out_, &duplicates);
    EXPECT_EQ(blocks.size(), (v2.size() + block_size - 1) / block_size);
    for (const auto& [b, n] : blocks) EXPECT_EQ(n, 1) << "block " << b;
    EXPECT_EQ(duplicates, 0);
  }
}

// Each refusal is FAILED with its reason, and the device keeps running 1.0.0.
TEST_P(OtaDevice, RefusalsAreFailedWithTheirReasonAndKeepTheOldVersion) {
  const auto refused = [&](const std::string& id, const std::string& reason) {
    auto r = boot();
    EXPECT_EQ(r.code, kUpdateFailed) << r.out;
    const json e = execution(id);
    EXPECT_EQ(e["status"], "FAILED") << id << " " << e.dump();
    EXPECT_EQ(e["statusDetails"]["reason"], reason) << id << " " << e.dump();
    EXPECT_NE(r.out.find("running v1.0.0 (slot A)"), std::string::npos) << r.out;
  };
  // A downgrade (equal counts as one) and an image for another device type.
  roll_out("same", "1.0.0", image(1, 0, 0, "sensor", 2000, 3));
  refused("same", "rejected: image version not newer than the running one");
  roll_out("other", "2.0.1", image(2, 0, 1, "pump", 2000, 4));
  refused("other", "rejected: image for another device type");
  // Another signer: the device trusts a key that did not sign the image.
  signer_override_ = token_cert_;
  roll_out("signer", "2.0.2", image(2, 0, 2, "sensor", 2000, 5));
  refused("signer", "rejected: signature invalid");
  signer_override_.clear();
  // Tampered while stored: a power cut after 2 blocks, a byte of block 0 changed in the
  // device's storage, then the download resumes and the whole file fails its signature.
  roll_out("tampered", "2.0.3", image(2, 0, 3, "sensor", 5000, 6));
  auto cut = boot("--once --exit-after-blocks 2");
  ASSERT_NE(cut.out.find("ota: power cut after 2 blocks"), std::string::npos) << cut.out;
  {
    std::fstream f(state_ / "download" / "download.img", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  refused("tampered", "rejected: signature invalid");
  // Truncated in storage: cut right after the last block, the stored file shortened.
  const std::string v4 = image(2, 0, 4, "sensor", 5000, 7);
  roll_out("truncated", "2.0.4", v4);
  auto last = boot("--once --exit-after-blocks " + std::to_string((v4.size() + 1023) / 1024));
  ASSERT_NE(last.out.find("ota: power cut after"), std::string::npos) << last.out;
  std::filesystem::resize_file(state_ / "download" / "download.img", v4.size() - 10);
  refused("truncated", "rejected: image truncated");
  EXPECT_TRUE(same_bytes(slot_image('a'), image(1, 0, 0, "sensor", 3000, 0)));
  auto again = boot();  // still 1.0.0 in slot A, nothing pending
  EXPECT_EQ(again.code, 0) << again.out;
  EXPECT_NE(again.out.find("running v1.0.0 (slot A)"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("no pending update for t9"), std::string::npos) << again.out;
}

// A failed self-test rolls back and reports FAILED; a self-test that never decides resets the
// device, which rolls back at the next boot and reports FAILED then.
TEST_P(OtaDevice, SelfTestFailureAndTimeoutRollBack) {
  roll_out("bad", "2.0.0", image(2, 0, 0, "sensor", 2000, 8));
  ASSERT_EQ(boot().code, kReboot);
  auto tested = boot("--once --self-test fail");
  EXPECT_EQ(tested.code, kReboot) << tested.out;  // back into the old image
  EXPECT_NE(tested.out.find("running v2.0.0 (slot B)"), std::string::npos) << tested.out;
  json e = execution("bad");
  EXPECT_EQ(e["status"], "FAILED") << e.dump();
  EXPECT_EQ(e["statusDetails"]["reason"], "self-test failed") << e.dump();
  auto old = boot();
  EXPECT_EQ(old.code, 0) << old.out;
  EXPECT_NE(old.out.find("running v1.0.0 (slot A)"), std::string::npos) << old.out;

  roll_out("silent", "2.0.1", image(2, 0, 1, "sensor", 2000, 9));
  ASSERT_EQ(boot().code, kReboot);
  auto hung = boot("--once --self-test never --self-test-timeout 300");
  EXPECT_EQ(hung.code, kReboot) << hung.out;
  EXPECT_NE(hung.out.find("ota: self-test not confirmed in time"), std::string::npos) << hung.out;
  EXPECT_EQ(execution("silent")["statusDetails"]["self_test"], "active");
  auto after = boot();
  EXPECT_EQ(after.code, kUpdateFailed) << after.out;
  EXPECT_NE(after.out.find("running v1.0.0 (slot A)"), std::string::npos) << after.out;
  e = execution("silent");
  EXPECT_EQ(e["status"], "FAILED") << e.dump();
  EXPECT_EQ(e["statusDetails"]["reason"], "self-test not confirmed") << e.dump();
}

// Connection cuts (a proxy between the device and the broker closes both sides) and SIGKILLs of
// the device at random blocks: each boot of the device dies right after storing 1 or 2 blocks
// (--exit-after-blocks), or earlier from the test's SIGKILL once it stored one (wherever the
// process then is), and a third of the boots also lose their MQTT connection once. About 20
// kill points per transport, over 50 in the loop of the three: the download completes with no block
// stored twice, at most one block asked for again per kill or cut, and the image byte for byte.
// EDGEKIT_AGENT_STRESS_SCALE=n runs n updates in a row.
TEST_P(OtaDevice, CutsAndKillsAtRandomBlocksNeverStoreABlockTwice) {
  int scale = 1;
  if (const char* s = std::getenv("EDGEKIT_AGENT_STRESS_SCALE")) scale = std::max(1, std::atoi(s));
  testing::FaultProxy proxy(broker_->tls_port());
  ASSERT_TRUE(proxy.start());
  const unsigned seed =
      static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(std::hash<std::string>{}(GetParam()));
  std::mt19937 random(seed);
  constexpr int kBlocks = 24;
  int kills = 0, cuts = 0;
  for (int round = 0; round < scale; ++round) {
    const std::string id = "r" + std::to_string(round);
    const std::string v =
        image(2, 0, static_cast<int>(round), "sensor", kBlocks * 256 - 64, 10 + round);
    if (round > 0) {  // the device runs the previous round's image: start again from 1.0.0
      std::filesystem::remove_all(state_);
      write_file(state_ / "slots" / "slot-a.img", image(1, 0, 0, "sensor", 3000, 0));
    }
    roll_out(id, "2.0." + std::to_string(round), v, 256);
    std::string out;
    int code = -1;
    for (int run = 0; run < 4 * kBlocks && code != kReboot; ++run) {
      const std::string log = (dir_ / ("ota-" + id + "-" + std::to_string(run) + ".out")).string();
      const int limit = 1 + static_cast<int>(random() % 2);
      const bool cut = random() % 3 == 0;
      const bool kill = !cut && random() % 4 == 0;
      const pid_t pid = spawn({"/bin/sh", "-c",
                               token_env() + "exec " + EDGEKIT_CLI + " " +
                                   args(proxy.port(), 256,
                                        "--once --exit-after-blocks " + std::to_string(limit))},
                              log, "w", STDOUT_FILENO);
      ASSERT_GT(pid, 0);
      int status = 0;
      bool acted = !(cut || kill), ended = false;
      const auto deadline = std::chrono::steady_clock::now() + 20s;
      while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          ended = true;
          break;
        }
        if (!acted && !stored_blocks(testing::read_text_file(log)).empty()) {
          acted = true;
          if (cut) {
            proxy.cut();
            ++cuts;
          } else {
            ::kill(pid, SIGKILL);
          }
        }
        std::this_thread::sleep_for(2ms);
      }
      if (!ended) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ADD_FAILURE() << "device run did not end\n" << testing::read_text_file(log);
        break;
      }
      out += testing::read_text_file(log);
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        ++kills;
      } else if (WIFEXITED(status)) {
        code = WEXITSTATUS(status);
        if (code != kReboot) {
          ADD_FAILURE() << "device exited " << code << "\n" << testing::read_text_file(log);
          break;
        }
      }
    }
    ASSERT_EQ(code, kReboot) << out.substr(out.size() > 4000 ? out.size() - 4000 : 0);
    auto done = boot();
    ASSERT_EQ(done.code, 0) << done.out;
    const json e = execution(id);
    EXPECT_EQ(e["status"], "SUCCEEDED") << e.dump();
    EXPECT_EQ(e["statusDetails"]["reason"], "accepted v2.0." + std::to_string(round)) << e.dump();
    EXPECT_TRUE(same_bytes(slot_image('b'), v));
    int duplicates = 0;
    const auto blocks = stored_blocks(out, &duplicates);
    for (const auto& [b, n] : blocks) EXPECT_EQ(n, 1) << "block " << b << " stored twice";
    // A kill between storing a block and printing it hides that block from the count.
    EXPECT_GE(static_cast<int>(blocks.size()), kBlocks - kills);
    EXPECT_LE(duplicates, kills + cuts);
  }
  std::printf("kill points (%s, seed %u): %d SIGKILLs, %d connection cuts\n", GetParam().c_str(),
              seed, kills, cuts);
  EXPECT_GE(kills + cuts, 15 * scale);
}

INSTANTIATE_TEST_SUITE_P(Transports, OtaDevice, ::testing::Values("json", "cbor", "http"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace edgekit::fleetd::test
