// The OTA agent in a real jobs::Runner over a real Mosquitto, against the in-test jobs service
// (jobs_service.hpp) and a small stream service that answers GetStream in CBOR, with the file
// ports behind decorators that fail a chosen call and the Verifier in edgekit's token. What a
// failing port call does to an update, each one named in an on_event line:
//  - a store that cannot clear an abandoned download refuses the next job before downloading
//    ("rejected: store failed"); once it can, the next job downloads every block once;
//  - a clear that fails after SUCCEEDED, or after FAILED, leaves a record that no later run
//    resumes: the next job, or the retried execution of the failed one, downloads every block
//    once and installs the right image;
//  - slots that cannot acknowledge a rolled-back update refuse the next job before downloading
//    ("rejected: slots unwritable");
//  - a save of SelfTestFailed that fails does not stop the rollback, and the reason goes out;
// and the update that meets no failure.
#include "edgekit/ota/agent.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "code_signing.hpp"
#include "edgekit/doc/cbor.hpp"
#include "edgekit/doc/json.hpp"
#include "edgekit/ota/file_ports.hpp"
#include "edgekit/ota/image.hpp"
#include "edgekit/ota/stream.hpp"
#include "edgekit/ota/topics.hpp"
#include "edgekit/ota/verifier.hpp"
#include "edgekit/testing/channel_device.hpp"
#include "edgekit/testing/jobs_service.hpp"
#include "edgekit/testing/mosquitto.hpp"
#include "edgekit/testing/token_env.hpp"
#include "power_cut_filesystem.hpp"

namespace edgekit::ota {
namespace {

using jobs::JobStatus;
using jobs::testing::FakeJobsService;
using jobs::testing::JobsService;
using test::TempDir;

constexpr std::string_view kThing = "ota-device-1";
constexpr std::string_view kDeviceType = "sensor-v1";
constexpr std::uint32_t kBlockSize = 256;
constexpr std::size_t kPayloadSize = 4000;  // + the 64-byte header: 16 blocks, the last short
constexpr std::uint32_t kBlocks = (kImageHeaderSize + kPayloadSize + kBlockSize - 1) / kBlockSize;

std::vector<std::byte> make_image(ImageVersion version, unsigned seed) {
  std::vector<std::byte> image(kImageHeaderSize + kPayloadSize);
  ImageHeader h;
  h.version = version;
  h.device_type = kDeviceType;
  h.payload_size = kPayloadSize;
  EXPECT_TRUE(write_image_header(h, image).has_value());
  for (std::size_t i = kImageHeaderSize; i < image.size(); ++i) {
    image[i] = static_cast<std::byte>((i * 7 + seed) % 251);
  }
  return image;
}

// The stream service (aws-iot-protocols.md 3): GetStream in CBOR on
// $aws/things/+/streams/+/get/cbor, answered with one data message per block the request's
// window asks for (`o`, `n`, `b`), from the files added; an unknown stream is ResourceNotFound.
// It counts how often it sent each block, so that a test can say every block went out once.
class StreamService {
 public:
  explicit StreamService(std::uint16_t port) : device_(port, "fake-stream-service", config()) {}
  ~StreamService() { device_.agent.stop(); }

  bool start() {
    if (!device_.start()) return false;
    auto r = device_.agent.subscribe_and_wait(
        "$aws/things/+/streams/+/get/cbor", {.qos = mqtt::QoS::AtLeastOnce},
        agent::MessageHandler{&on_request, this}, std::chrono::seconds(5));
    return r && r->ok();
  }
  void add(const std::string& stream, std::vector<std::byte> file) {
    std::lock_guard lock(mutex_);
    files_[stream] = std::move(file);
    asked_[stream].assign(kBlocks, 0);
  }
  // How often each block of `stream` was sent.
  std::vector<int> asked(const std::string& stream) {
    std::lock_guard lock(mutex_);
    return asked_[stream];
  }
  void forget_asked(const std::string& stream) {
    std::lock_guard lock(mutex_);
    asked_[stream].assign(kBlocks, 0);
  }

 private:
  static agent::Config config() {
    agent::Config c;
    c.slot_size = 2048;
    return c;
  }
  static void on_request(void* ctx, const mqtt::Publish& m) {
    static_cast<StreamService*>(ctx)->answer(m);
  }
  void answer(const mqtt::Publish& m) {
    auto topic = match_stream_topic(m.topic);
    auto request = doc::cbor::parse(m.payload);
    if (!topic || !request) {
      ADD_FAILURE() << "not a GetStream: " << m.topic;
      return;
    }
    const std::string stream(topic->stream_id);
    std::string token;
    if (auto c = request->find("c")) token = std::string(c->as_string_view().value_or(""));
    auto number = [&](std::string_view key) -> std::uint64_t {
      auto v = request->find(key);
      return v ? v->as_uint64().value_or(0) : 0;
    };
    const std::uint64_t file_id = number("f"), size = number("l"), first = number("o");
    const std::uint64_t count = number("n");
    std::span<const std::byte> window;
    if (auto b = request->find("b")) window = b->as_bytes().value_or(std::span<const std::byte>{});
    std::vector<std::pair<std::string, std::vector<std::byte>>> replies;
    {
      std::lock_guard lock(mutex_);
      auto file = files_.find(stream);
      if (file == files_.end() || file_id != 0 || size == 0) {
        std::array<std::byte, 128> out{};
        doc::cbor::Writer w(out);
        w.begin_object().member("o", "ResourceNotFound").member("c", token).end_object();
        replies.emplace_back(topic_of(topic->thing, stream, StreamTopic::Rejected), bytes_of(w));
      } else {
        const auto& bytes = file->second;
        // Without `b`: n blocks from o; with it, the blocks whose bits are set, at most n.
        const std::uint64_t span = window.empty() ? count : window.size() * 8;
        std::uint64_t sent = 0;
        for (std::uint64_t k = 0; sent < count && k < span; ++k) {
          if (!window.empty() &&
              (std::to_integer<unsigned>(window[k / 8]) & (1u << (k % 8))) == 0) {
            continue;
          }
          const std::uint64_t block = first + k, offset = block * size;
          if (offset >= bytes.size()) break;
          const auto length = std::min<std::uint64_t>(size, bytes.size() - offset);
          std::vector<std::byte> out(length + 64);
          doc::cbor::Writer w(out);
          w.begin_object().member("c", token).member("f", file_id).member("l", length);
          w.member("i", block).member("p", std::span(bytes).subspan(offset, length)).end_object();
          replies.emplace_back(topic_of(topic->thing, stream, StreamTopic::Data), bytes_of(w));
          ++asked_[stream][block];
          ++sent;
        }
      }
    }
    for (const auto& [t, payload] : replies) {
      mqtt::Publish p;
      p.topic = t;
      p.payload = payload;
      p.qos = mqtt::QoS::AtLeastOnce;
      (void)device_.agent.publish(p);  // a lost block is asked for again after the timeout
    }
  }
  static std::string topic_of(std::string_view thing, const std::string& stream, StreamTopic kind) {
    std::array<char, kMaxTopicLength> buffer{};
    auto t = stream_topic(thing, stream, kind, Format::Cbor, buffer);
    EXPECT_TRUE(t.has_value());
    return t ? std::string(*t) : std::string();
  }
  static std::vector<std::byte> bytes_of(const doc::cbor::Writer& w) {
    auto item = w.finish();
    EXPECT_TRUE(item.has_value());
    return item ? std::vector<std::byte>(item->begin(), item->end()) : std::vector<std::byte>();
  }

  edgekit::testing::AgentDevice device_;
  std::mutex mutex_;
  std::map<std::string, std::vector<std::byte>> files_;
  std::map<std::string, std::vector<int>> asked_;
};

// Fails the next `left` calls of one kind (-1: every call), as a port whose storage broke.
struct Fault {
  int left = 0;
  bool trip() {
    if (left == 0) return false;
    if (left > 0) --left;
    return true;
  }
};

// The FileDownloadStore of this boot, with faults: `clear` and `save` fail with StoreFailed, and
// `flip_block` stores one block with a byte changed (a bit flip the next read does not see).
class FaultyStore final : public DownloadStore {
 public:
  Result<void, Errc> save(std::span<const std::uint8_t> record,
                          std::span<const std::uint8_t> bitmap) override {
    if (save_fault.trip()) return fail(Errc::StoreFailed);
    return inner->save(record, bitmap);
  }
  Result<StoredDownload, Errc> load(std::span<std::uint8_t> record,
                                    std::span<std::uint8_t> bitmap) override {
    return inner->load(record, bitmap);
  }
  Result<void, Errc> write_block(std::uint64_t offset, std::span<const std::byte> data) override {
    if (flip_block && offset == *flip_block * kBlockSize) {
      flip_block.reset();
      std::vector<std::byte> changed(data.begin(), data.end());
      changed[0] ^= std::byte{0x01};
      return inner->write_block(offset, changed);
    }
    return inner->write_block(offset, data);
  }
  Result<std::size_t, Errc> read_image(std::uint64_t offset, std::span<std::byte> out) override {
    return inner->read_image(offset, out);
  }
  Result<void, Errc> clear() override {
    if (clear_fault.trip()) return fail(Errc::StoreFailed);
    return inner->clear();
  }

  DownloadStore* inner = nullptr;
  Fault save_fault, clear_fault;
  std::optional<std::uint32_t> flip_block;
};

// The FileSlots of this boot, with `acknowledge` failing with SlotFailed.
class FaultySlots final : public Slots {
 public:
  Result<BootStatus, Errc> status() override { return inner->status(); }
  Result<BootStatus, Errc> boot() override { return inner->boot(); }
  Result<void, Errc> begin_write() override { return inner->begin_write(); }
  Result<void, Errc> write(std::uint64_t offset, std::span<const std::byte> data) override {
    return inner->write(offset, data);
  }
  Result<void, Errc> finish_write() override { return inner->finish_write(); }
  Result<void, Errc> mark_pending() override { return inner->mark_pending(); }
  Result<void, Errc> confirm() override { return inner->confirm(); }
  Result<void, Errc> roll_back() override { return inner->roll_back(); }
  Result<void, Errc> acknowledge() override {
    if (acknowledge_fault.trip()) return fail(Errc::SlotFailed);
    return inner->acknowledge();
  }
  Result<std::size_t, Errc> read(Slot slot, std::uint64_t offset,
                                 std::span<std::byte> out) override {
    return inner->read(slot, offset, out);
  }

  Slots* inner = nullptr;
  Fault acknowledge_fault;
};

class OtaAgentTest : public edgekit::testing::MosquittoFixture {
 protected:
  void SetUp() override {
    MosquittoFixture::SetUp();
    if (HasFatalFailure()) return;
    jobs_ = std::make_unique<JobsService>(broker().port(), kThing);
    ASSERT_TRUE(jobs_->start());
    streams_ = std::make_unique<StreamService>(broker().port());
    ASSERT_TRUE(streams_->start());

    // The token, with the code signer's public key (a session object) for the Verifier.
    const std::string module_path = edgekit::testing::prepare_token_env(
        edgekit::testing::TokenKind::Edgekit, dir_.path(), EDGEKIT_TOKEN_MODULE, "");
    auto module = pkcs11::Module::load(module_path);
    ASSERT_TRUE(module.has_value()) << module.error().message();
    module_.emplace(std::move(*module));
    auto slot = edgekit::testing::init_test_token(*module_, "ota", "so-pin", "user-pin");
    ASSERT_TRUE(slot.has_value());
    auto session = module_->open_session(*slot, true);
    ASSERT_TRUE(session.has_value());
    session_.emplace(std::move(*session));
    ASSERT_TRUE(session_->login(pkcs11::UserType::User, "user-pin").has_value());
    signer_ = test::p256_key();
    ASSERT_TRUE(signer_ != nullptr);
    auto key =
        import_code_signing_key(*session_, test::spki_of(signer_.get()), "code-signing", false);
    ASSERT_TRUE(key.has_value());
    verifier_.emplace(*session_, *key);

    // The factory image, v1.0.0 in slot A.
    open_ports();
    const auto factory = make_image({1, 0, 0}, 1);
    std::ofstream(file_slots_->image_path(Slot::A), std::ios::binary)
        .write(reinterpret_cast<const char*>(factory.data()),
               static_cast<std::streamsize>(factory.size()));

    config_.thing = kThing;
    config_.device_type = kDeviceType;
    config_.format = Format::Cbor;
    config_.block_size = kBlockSize;
    config_.request_timeout = Duration{2000};
    config_.self_test_timeout = Duration{2000};
    config_.self_test_poll = Duration{10};
  }
  void TearDown() override {
    power_off();
    streams_.reset();
    jobs_.reset();
    MosquittoFixture::TearDown();
  }

  // The ports of a boot: new objects over the same directories.
  void open_ports() {
    file_store_.emplace(dir_.path() + "/download");
    file_slots_.emplace(dir_.path() + "/slots");
    store_.inner = &*file_store_;
    slots_.inner = &*file_slots_;
  }
  void power_off() {
    runner_.reset();
    agent_.reset();
    device_.reset();
  }
  // A power cycle: everything but the storage, the token and the services is gone; then what the
  // bootloader does, and the runner's start (runs or resumes what is pending).
  void power_on() {
    power_off();
    open_ports();
    rebooted_ = false;
    device_ = std::make_unique<edgekit::testing::ChannelDevice>();
    ASSERT_TRUE(device_->connect(edgekit::testing::Driver::Client, broker().port(), kThing));
    const AgentBuffers buffers{request_, reply_, block_, bitmap_, window_, chunk_, document_};
    const AgentHooks hooks{&self_test_of, &on_reboot, &on_block, &on_event, this};
    agent_ = std::make_unique<Agent>(*device_->channel, store_, slots_, *verifier_, clock_, config_,
                                     buffers, hooks);
    auto booted = agent_->boot();
    ASSERT_TRUE(booted.has_value()) << to_string(booted.error());
    handlers_[0] = agent_->handler();
    jobs::RunnerConfig c;
    c.thing = kThing;
    c.handlers = handlers_;
    c.token_prefix = "ota";
    c.retry_delay = Duration{50};
    runner_ = std::make_unique<jobs::Runner>(
        *device_->channel, record_, clock_, c,
        jobs::RunnerBuffers{runner_request_, runner_reply_, runner_document_});
    auto s = runner_->start(Duration{5000});
    ASSERT_TRUE(s.has_value()) << jobs::to_string(s.error());
  }

  // Queues job `id` for `image` on stream `stream`, signed by `signer_`.
  void add_job(const std::string& id, const std::string& stream,
               const std::vector<std::byte>& image) {
    streams_->add(stream, image);
    const auto signature = test::sign(signer_.get(), image);
    std::array<char, 1024> out{};
    doc::json::Writer w(out);
    w.begin_object().key("afr_ota").begin_object();
    w.key("protocols").begin_array().string("MQTT").end_array();
    w.member("streamname", stream).key("files").begin_array().begin_object();
    w.member("filepath", "fw.bin").member("filesize", image.size()).member("fileid", 0);
    w.member("certfile", "code-signing").key("sig-sha256-ecdsa").bytes(signature);
    w.member("fileType", 0).end_object().end_array().end_object().end_object();
    auto text = w.finish();
    ASSERT_TRUE(text.has_value());
    const std::string& id_text = texts_.emplace_back(id);
    const std::string& doc_text = texts_.emplace_back(*text);
    jobs_->with([&](FakeJobsService& m) { return &m.add(id_text, doc_text); });
  }
  // Queues an ended execution of `id` again (the service's retry of a FAILED job).
  void retry_job(std::string_view id) {
    jobs_->with([&](FakeJobsService& m) {
      jobs::testing::FakeJob* j = m.find(id);
      j->status = JobStatus::Queued;
      ++j->version;
      ++j->execution_number;
      j->details_length = 0;
      return 0;
    });
  }

  JobStatus status_of(std::string_view id) {
    return jobs_->with([&](FakeJobsService& m) { return m.find(id)->status; });
  }
  std::string detail(std::string_view id, std::string_view key) {
    return jobs_->with([&](FakeJobsService& m) {
      auto d = doc::json::parse(m.find(id)->status_details());
      if (!d) return std::string("(no details)");
      auto v = d->find(key);
      if (!v) return std::string("(none)");
      return std::string(v->as_string_view().value_or("(not a string)"));
    });
  }
  // The events so far that contain `text`.
  int saw(std::string_view text) const {
    int n = 0;
    for (const auto& e : events_) n += e.find(text) != std::string::npos ? 1 : 0;
    return n;
  }
  std::string events() const {
    std::string all;
    for (const auto& e : events_) all += e + "\n";
    return all;
  }
  // The record the store holds (nullopt: none).
  std::optional<AgentRecord> stored_record() {
    AgentRecord r{};
    std::array<std::uint8_t, 64> bitmap{};
    auto loaded = file_store_->load({reinterpret_cast<std::uint8_t*>(&r), sizeof r}, bitmap);
    if (!loaded) {
      EXPECT_EQ(loaded.error(), Errc::NoDownload);
      return std::nullopt;
    }
    return r;
  }
  // The whole of `slot`'s image.
  std::vector<std::byte> slot_image(Slot slot) {
    std::vector<std::byte> out(kImageHeaderSize + kPayloadSize + 1);
    auto n = file_slots_->read(slot, 0, out);
    EXPECT_TRUE(n.has_value());
    out.resize(n ? *n : 0);
    return out;
  }
  BootStatus boot_status() {
    auto s = file_slots_->status();
    EXPECT_TRUE(s.has_value());
    return s ? *s : BootStatus{};
  }
  std::uint32_t running_version() {
    auto v = file_slots_->active_version();
    EXPECT_TRUE(v.has_value());
    return v ? v->packed() : 0;
  }
  // Every block of `stream` was sent once, and the agent stored each once since `since`.
  void expect_every_block_once(const std::string& stream, std::size_t since = 0) {
    EXPECT_EQ(streams_->asked(stream), std::vector<int>(kBlocks, 1)) << stream;
    std::vector<int> stored(kBlocks, 0);
    for (std::size_t i = since; i < stored_blocks_.size(); ++i) ++stored[stored_blocks_[i]];
    EXPECT_EQ(stored, std::vector<int>(kBlocks, 1)) << stream;
    EXPECT_EQ(duplicates_, 0);
  }
  // The update of job `id` to `image`: downloaded and installed, then confirmed after the reboot
  // into `slot`: SUCCEEDED "accepted v<version>".
  void expect_installed(const std::string& id, const std::vector<std::byte>& image, Slot slot) {
    EXPECT_TRUE(rebooted_) << events();
    EXPECT_EQ(status_of(id), JobStatus::InProgress);
    EXPECT_EQ(detail(id, "self_test"), "ready");
    power_on();
    EXPECT_EQ(status_of(id), JobStatus::Succeeded) << events();
    const auto v = read_image_header(image)->version;
    EXPECT_EQ(detail(id, "reason"), "accepted v" + std::to_string(v.major) + "." +
                                        std::to_string(v.minor) + "." + std::to_string(v.build));
    EXPECT_EQ(boot_status(), (BootStatus{slot, BootState::Normal}));
    EXPECT_EQ(slot_image(slot), image);
  }
  // The queued job `id` from its start: every block of `stream` sent and stored once, then
  // installed as above.
  void expect_whole_update(const std::string& id, const std::string& stream,
                           const std::vector<std::byte>& image, Slot slot) {
    const std::size_t since = stored_blocks_.size();
    power_on();
    expect_every_block_once(stream, since);
    expect_installed(id, image, slot);
  }

  static SelfTest self_test_of(void* self) {
    auto* t = static_cast<OtaAgentTest*>(self);
    if (t->self_test_ == SelfTest::Fail && t->fail_save_at_self_test_) {
      t->store_.save_fault.left = 1;  // the save that records SelfTestFailed
    }
    return t->self_test_;
  }
  static void on_reboot(void* self) { static_cast<OtaAgentTest*>(self)->rebooted_ = true; }
  static void on_block(void* self, std::uint32_t block, bool fresh) {
    auto* t = static_cast<OtaAgentTest*>(self);
    if (fresh) {
      t->stored_blocks_.push_back(block);
    } else {
      ++t->duplicates_;
    }
  }
  static void on_event(void* self, std::string_view what) {
    static_cast<OtaAgentTest*>(self)->events_.emplace_back(what);
  }

  TempDir dir_;
  std::unique_ptr<JobsService> jobs_;
  std::unique_ptr<StreamService> streams_;
  std::optional<pkcs11::Module> module_;
  std::optional<pkcs11::Session> session_;
  test::Pkey signer_;
  std::optional<Verifier> verifier_;
  std::deque<std::string> texts_;  // the jobs' ids and documents (the model keeps views)

  // The device's storage (survives power cycles) and the faults of its ports.
  std::optional<FileDownloadStore> file_store_;
  std::optional<FileSlots> file_slots_;
  FaultyStore store_;
  FaultySlots slots_;
  jobs::testing::MemoryStore record_;

  // What a power cycle replaces.
  SteadyClock clock_;
  AgentConfig config_;
  std::unique_ptr<edgekit::testing::ChannelDevice> device_;
  std::unique_ptr<Agent> agent_;
  std::unique_ptr<jobs::Runner> runner_;
  std::array<jobs::JobHandler, 1> handlers_{};
  std::array<std::uint8_t, 512> request_{};
  std::array<std::uint8_t, 2048> reply_{};
  std::array<std::byte, 1024> block_{};
  std::array<std::uint8_t, 64> bitmap_{};
  std::array<std::uint8_t, 16> window_{};
  std::array<std::byte, 4096> chunk_{};
  std::array<char, 1024> document_{};
  std::array<char, 1024> runner_request_{};
  std::array<char, 4096> runner_reply_{};
  std::array<char, 2048> runner_document_{};

  // What the application saw and says.
  SelfTest self_test_ = SelfTest::Pass;
  bool fail_save_at_self_test_ = false;
  bool rebooted_ = false;
  std::vector<std::uint32_t> stored_blocks_;
  int duplicates_ = 0;
  std::vector<std::string> events_;
};

TEST_F(OtaAgentTest, UpdatesToSucceededStoringEveryBlockOnce) {
  const auto v2 = make_image({2, 0, 0}, 2);
  add_job("ota-1", "s-1", v2);
  expect_whole_update("ota-1", "s-1", v2, Slot::B);
  EXPECT_EQ(detail("ota-1", "updatedBy"), "0x1000000");
  EXPECT_EQ(agent_->last_error(), Errc::Ok);
  EXPECT_FALSE(stored_record().has_value());  // forgotten once reported
  EXPECT_EQ(saw("failed"), 0) << events();
}

TEST_F(OtaAgentTest, AStoreThatCannotClearAnAbandonedDownloadRefusesTheNextJobBeforeDownloading) {
  // Another job's download, abandoned halfway (the service canceled it): a record, a bitmap with
  // the first 5 blocks stored, and their bytes (of another image).
  const auto old_image = make_image({2, 0, 0}, 9);
  AgentRecord old{};
  old.job_id_length = 7;
  std::memcpy(old.job_id.data(), "ota-old", 7);
  old.file_size = static_cast<std::uint32_t>(old_image.size());
  old.block_size = kBlockSize;
  std::array<std::uint8_t, 2> bitmap{0xe0, 0xff};
  ASSERT_TRUE(file_store_->write_block(0, std::span(old_image).first(5 * kBlockSize)).has_value());
  ASSERT_TRUE(file_store_->save({reinterpret_cast<const std::uint8_t*>(&old), sizeof old}, bitmap)
                  .has_value());

  store_.clear_fault.left = -1;
  const auto v2 = make_image({2, 0, 0}, 2);
  add_job("ota-2", "s-2", v2);
  power_on();
  EXPECT_EQ(status_of("ota-2"), JobStatus::Failed);
  EXPECT_EQ(detail("ota-2", "reason"), "rejected: store failed");
  EXPECT_EQ(detail("ota-2", "updatedBy"), "0x1000000");
  EXPECT_EQ(agent_->last_error(), Errc::StoreFailed);
  EXPECT_EQ(saw("DownloadStore::clear failed: download store failed"), 2)
      << events();                                                  // take, forget
  EXPECT_EQ(streams_->asked("s-2"), std::vector<int>(kBlocks, 0));  // nothing downloaded
  EXPECT_EQ(boot_status(), (BootStatus{Slot::A, BootState::Normal}));
  EXPECT_EQ(running_version(), 0x1000000u);
  // The outcome was reported: the store, which can still save, holds it as Reported.
  auto kept = stored_record();
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->job(), "ota-2");
  EXPECT_EQ(kept->phase, AgentRecord::Phase::Reported);

  // The store works again: the next job clears it and downloads every block once.
  store_.clear_fault.left = 0;
  add_job("ota-3", "s-3", v2);
  expect_whole_update("ota-3", "s-3", v2, Slot::B);
}

TEST_F(OtaAgentTest, AClearThatFailsAfterSucceededLeavesTheNextJobWhole) {
  const auto v2 = make_image({2, 0, 0}, 2);
  add_job("ota-1", "s-1", v2);
  power_on();
  store_.clear_fault.left = 1;  // the clear after SUCCEEDED
  expect_installed("ota-1", v2, Slot::B);
  EXPECT_EQ(saw("DownloadStore::clear failed: download store failed"), 1) << events();
  EXPECT_EQ(agent_->last_error(), Errc::Ok);  // the job succeeded: the failure is an event
  auto kept = stored_record();
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->phase, AgentRecord::Phase::Reported);

  const auto v3 = make_image({3, 0, 0}, 3);
  add_job("ota-2", "s-2", v3);
  expect_whole_update("ota-2", "s-2", v3, Slot::A);
  EXPECT_EQ(detail("ota-2", "updatedBy"), "0x2000000");
  EXPECT_FALSE(stored_record().has_value());
}

TEST_F(OtaAgentTest, AClearThatFailsAfterFailedDoesNotLetTheRetryResumeTheRefusedDownload) {
  // Block 5 is stored with a byte changed: the signature does not hold, FAILED; the clear after
  // the report fails.
  const auto v2 = make_image({2, 0, 0}, 2);
  add_job("ota-1", "s-1", v2);
  store_.flip_block = 5;
  store_.clear_fault.left = 1;
  power_on();
  EXPECT_EQ(status_of("ota-1"), JobStatus::Failed);
  EXPECT_EQ(detail("ota-1", "reason"), "rejected: signature invalid");
  EXPECT_EQ(agent_->last_error(), Errc::SignatureInvalid);  // the reason reported stays
  EXPECT_EQ(saw("DownloadStore::clear failed: download store failed"), 1) << events();
  EXPECT_FALSE(rebooted_);
  EXPECT_EQ(boot_status(), (BootStatus{Slot::A, BootState::Normal}));

  // The service retries the job: the execution starts afresh (a resumed one would find its
  // bitmap complete and verify the same changed bytes again), every block once.
  retry_job("ota-1");
  streams_->forget_asked("s-1");
  expect_whole_update("ota-1", "s-1", v2, Slot::B);
}

TEST_F(OtaAgentTest, SlotsThatCannotAcknowledgeARollbackRefuseTheNextJobBeforeDownloading) {
  const auto v2 = make_image({2, 0, 0}, 2);
  add_job("ota-1", "s-1", v2);
  power_on();
  ASSERT_TRUE(rebooted_);
  self_test_ = SelfTest::Fail;
  slots_.acknowledge_fault.left = -1;
  power_on();
  EXPECT_EQ(status_of("ota-1"), JobStatus::Failed);
  EXPECT_EQ(detail("ota-1", "reason"), "self-test failed");
  EXPECT_TRUE(rebooted_);  // into the old image
  EXPECT_EQ(saw("Slots::acknowledge failed: slot store failed"), 1) << events();
  EXPECT_EQ(boot_status(), (BootStatus{Slot::A, BootState::RolledBack}));  // safe: A runs
  EXPECT_FALSE(stored_record().has_value());

  self_test_ = SelfTest::Pass;
  add_job("ota-2", "s-2", v2);
  power_on();
  EXPECT_EQ(running_version(), 0x1000000u);
  EXPECT_EQ(status_of("ota-2"), JobStatus::Failed);
  EXPECT_EQ(detail("ota-2", "reason"), "rejected: slots unwritable");
  EXPECT_EQ(agent_->last_error(), Errc::SlotFailed);
  EXPECT_EQ(saw("Slots::acknowledge failed: slot store failed"), 3)
      << events();  // ota-1 refuse, ota-2 take + refuse
  EXPECT_EQ(streams_->asked("s-2"), std::vector<int>(kBlocks, 0));  // nothing downloaded

  // Writable again: the next job acknowledges, then updates.
  slots_.acknowledge_fault.left = 0;
  add_job("ota-3", "s-3", v2);
  expect_whole_update("ota-3", "s-3", v2, Slot::B);
}

TEST_F(OtaAgentTest, AFailingSaveBeforeTheSelfTestRollbackStillRollsBackAndReportsWhy) {
  const auto v2 = make_image({2, 0, 0}, 2);
  add_job("ota-1", "s-1", v2);
  power_on();
  ASSERT_TRUE(rebooted_);
  self_test_ = SelfTest::Fail;
  fail_save_at_self_test_ = true;
  power_on();
  EXPECT_EQ(status_of("ota-1"), JobStatus::Failed);
  EXPECT_EQ(detail("ota-1", "reason"), "self-test failed");
  EXPECT_EQ(detail("ota-1", "updatedBy"), "0x1000000");
  EXPECT_EQ(saw("DownloadStore::save failed: download store failed"), 1) << events();
  EXPECT_TRUE(rebooted_);
  EXPECT_EQ(boot_status(), (BootStatus{Slot::A, BootState::Normal}));  // rolled back, reported
  power_on();  // the reboot into the old image
  EXPECT_EQ(running_version(), 0x1000000u);
  EXPECT_EQ(runner_->state(), jobs::ExecutorState::Idle);
}

}  // namespace
}  // namespace edgekit::ota
