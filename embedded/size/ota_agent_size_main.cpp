// The device program of the OTA agent's size measurement: what a device links to take one
// update from an AFR_OTA job to SUCCEEDED with `ota::Agent` as the handler of a `jobs::Runner`
// (docs/ota.md, "The agent"). One whole update runs: the runner subscribes and takes the job
// (start-next), the agent downloads the image's three blocks from the stream (CBOR GetStream,
// one block per request) into a download store in RAM, reports progress, copies the image into
// the inactive slot (slots in RAM), has the verifier port check its signature, reads and checks
// its header, marks it pending, reports self_test "ready" and asks for a reboot; then the next
// boot (the slots' boot step, a new runner and agent over the same RAM): the runner describes
// the job the reboot interrupted and resumes the agent, which reports self_test "active", runs
// the self-test, confirms the image and reports SUCCEEDED. Then a second job whose image arrives
// with one byte changed: the verifier port refuses it, the job is FAILED ("rejected: signature
// invalid") and the running image stays.
//
// What is the program's and not counted in the agent's figure: the scripted channel below (it
// plays the Jobs service and the stream service: a device's channel would sit on its MQTT
// client, whose code is the MQTT core's figure), the download store, the slots and the verifier
// port (CRC-32 in place of the token's SHA-256 + ECDSA: a device's port drives its secure
// element or crypto accelerator), the clock and the hooks.
//
// Every message arrives in the caller's buffer copied byte by byte through a volatile pointer,
// so nothing is folded at build time. It is also a runnable check: under QEMU (mps2-an386) it
// returns 0 only when every result is the expected one, and a step number otherwise.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <string_view>

#include "edgekit/core/clock.hpp"
#include "edgekit/jobs/executor.hpp"
#include "edgekit/jobs/runner.hpp"
#include "edgekit/ota/agent.hpp"
#include "edgekit/ota/image_verifier.hpp"
#include "edgekit/ota/ports.hpp"
#include "edgekit/reqres/channel.hpp"
#include "tick_clock.hpp"

namespace {

using namespace edgekit;
using namespace std::string_view_literals;
using ota::Errc;

constexpr std::string_view kThing = "dev-1";
constexpr std::string_view kDeviceType = "sensor-v1";
constexpr std::uint32_t kBlockSize = 256;
constexpr std::uint32_t kPayloadSize = 600;
constexpr std::uint32_t kFileSize = ota::kImageHeaderSize + kPayloadSize;  // 664: 3 blocks
constexpr std::uint32_t kBlocks = (kFileSize + kBlockSize - 1) / kBlockSize;
constexpr std::size_t kSlotSize = 1024;

// --- The program's text helpers (its own, so that no library code is counted for them) ---------
struct Out {
  char* data;
  std::size_t capacity;
  std::size_t size = 0;
  bool overflow = false;
  Out& put(std::string_view s) {
    if (s.size() > capacity - size) {
      overflow = true;
      return *this;
    }
    std::memcpy(data + size, s.data(), s.size());
    size += s.size();
    return *this;
  }
  Out& number(std::uint32_t v) {
    char digits[10];
    std::size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0 && !overflow) put({&digits[--n], 1});
    return *this;
  }
  [[nodiscard]] std::string_view view() const { return {data, size}; }
};

std::string_view text_of(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// The JSON string value of `"key":"` in `text` (the requests are the executor's compact JSON).
std::string_view string_after(std::string_view text, std::string_view key) {
  const std::size_t at = text.find(key);
  if (at == std::string_view::npos) return {};
  const std::size_t begin = at + key.size();
  const std::size_t end = text.find('"', begin);
  // Views made by hand, not `substr`: its range check links libstdc++'s throwing path.
  return end == std::string_view::npos ? std::string_view{}
                                       : std::string_view(text.data() + begin, end - begin);
}

std::uint32_t crc32(std::span<const std::byte> data, std::uint32_t crc) {
  crc = ~crc;
  for (std::byte b : data) {
    crc ^= static_cast<std::uint8_t>(b);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// --- The images (what fleetd builds: a 64-byte edgekit header, then the payload) ----------------
void put_header(std::span<std::byte> out, std::uint8_t major, std::uint8_t minor) {
  std::memset(out.data(), 0, ota::kImageHeaderSize);
  std::memcpy(out.data(), "EKOI", 4);
  out[4] = std::byte{1};   // header version
  out[6] = std::byte{64};  // header size, little-endian
  out[8] = std::byte{major};
  out[9] = std::byte{minor};
  out[12] = std::byte{kPayloadSize & 0xFF};
  out[13] = std::byte{kPayloadSize >> 8};
  std::memcpy(out.data() + 16, kDeviceType.data(), kDeviceType.size());
}

std::array<std::byte, kFileSize> g_new_image;  // v1.1.0, served by the stream
std::array<char, 12> g_signature_base64;       // the job's sig-sha256-ecdsa (a CRC-32 here)

void make_images() {
  put_header(g_new_image, 1, 1);
  for (std::uint32_t i = 0; i < kPayloadSize; ++i) {
    g_new_image[ota::kImageHeaderSize + i] = std::byte(i * 7 + 3);
  }
  const std::uint32_t crc = crc32(g_new_image, 0);
  const std::uint8_t sig[4] = {static_cast<std::uint8_t>(crc >> 24),
                               static_cast<std::uint8_t>(crc >> 16),
                               static_cast<std::uint8_t>(crc >> 8), static_cast<std::uint8_t>(crc)};
  constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::uint32_t hi = std::uint32_t{sig[0]} << 16 | std::uint32_t{sig[1]} << 8 | sig[2];
  const std::uint32_t lo = std::uint32_t{sig[3]} << 16;
  const char text[8] = {kAlphabet[hi >> 18],
                        kAlphabet[(hi >> 12) & 63],
                        kAlphabet[(hi >> 6) & 63],
                        kAlphabet[hi & 63],
                        kAlphabet[lo >> 18],
                        kAlphabet[(lo >> 12) & 63],
                        '=',
                        '='};
  std::memcpy(g_signature_base64.data(), text, sizeof text);
}

// --- The scripted channel: the Jobs service and the stream service of one thing -----------------
class ScriptedChannel final : public reqres::Channel {
 public:
  void set_message_handler(reqres::MessageHandler handler) noexcept override { handler_ = handler; }
  Result<void, reqres::Errc> subscribe(std::span<const std::string_view> filters,
                                       Duration) noexcept override {
    for (std::string_view f : filters) {
      if (f == "$aws/things/dev-1/streams/AFR_OTA-7/data/cbor"sv) stream_subscribed = true;
      if (f == "$aws/things/dev-1/jobs/notify-next"sv) jobs_subscribed = true;
    }
    return {};
  }
  void unsubscribe(std::span<const std::string_view>, Duration) noexcept override {}
  Result<reqres::Reply, reqres::Errc> request(std::string_view topic,
                                              std::span<const std::uint8_t> payload,
                                              reqres::Matcher matcher,
                                              std::span<std::uint8_t> reply,
                                              Duration) noexcept override {
    Out t{topic_.data(), topic_.size()};
    Out m{rx_.data(), rx_.size()};
    if (!answer(topic, payload, t, m) || t.overflow || m.overflow) {
      return fail(reqres::Errc::Timeout);  // a request no service answers
    }
    const reqres::Message message{t.view(),
                                  {reinterpret_cast<const std::uint8_t*>(rx_.data()), m.size}};
    const std::uint8_t tag = matcher.function(matcher.context, message);
    if (tag == 0) {
      ++unmatched;
      return fail(reqres::Errc::Timeout);
    }
    if (m.size > reply.size()) return fail(reqres::Errc::ReplyTooLarge);
    // "From the network": byte by byte through a volatile pointer.
    const volatile char* in = rx_.data();
    for (std::size_t i = 0; i < m.size; ++i) reply[i] = static_cast<std::uint8_t>(in[i]);
    return reqres::Reply{tag, m.size};
  }
  Result<void, reqres::Errc> poll(Duration) noexcept override { return {}; }

  // What the services saw.
  bool stream_subscribed = false;
  bool jobs_subscribed = false;
  int start_next = 0, describe = 0, gets = 0, unmatched = 0, bad_version = 0;
  int updates = 0;
  std::array<std::array<char, 256>, 8> update_text{};  // each update request, NUL-terminated
  // The one job the service has: its id, its state, and whether the stream serves its image
  // with one byte changed (the signature then does not hold).
  std::string_view job = "ota-7";
  std::string_view status = "QUEUED";
  std::uint32_t version = 1;
  bool tamper = false;
  void queue(std::string_view id, bool tampered) {
    job = id;
    status = "QUEUED";
    version = 1;
    tamper = tampered;
  }

 private:
  bool answer(std::string_view topic, std::span<const std::uint8_t> payload, Out& t, Out& m) {
    const std::string_view jobs = "$aws/things/dev-1/jobs/";
    const std::string_view stream_get = "$aws/things/dev-1/streams/AFR_OTA-7/get/cbor";
    if (topic == stream_get) return stream_block(payload, t, m);
    if (!topic.starts_with(jobs)) return false;
    std::string_view op(topic.data() + jobs.size(), topic.size() - jobs.size());
    const bool this_job = op.starts_with(job) && op.size() > job.size() && op[job.size()] == '/';
    if (this_job) op.remove_prefix(job.size());  // "/get", "/update"
    const std::string_view request = text_of(payload);
    const std::string_view token = string_after(request, R"("clientToken":")");
    if (op == "start-next") {
      ++start_next;
      t.put(topic).put("/accepted");
      m.put("{");
      if (status == "QUEUED"sv) {
        status = "IN_PROGRESS";
        ++version;
        execution(m);
        m.put(",");
      }
      m.put(R"("timestamp":1700000000,"clientToken":")").put(token).put("\"}");
      return true;
    }
    if ((this_job && op == "/get") || op == "$next/get") {  // describe (after a reboot)
      ++describe;
      t.put(topic).put("/accepted");
      m.put("{");
      if (status == "IN_PROGRESS"sv) {
        execution(m);
        m.put(",");
      }
      m.put(R"("timestamp":1700000000,"clientToken":")").put(token).put("\"}");
      return true;
    }
    if (this_job && op == "/update") {
      if (updates < static_cast<int>(update_text.size())) {
        Out keep{update_text[static_cast<std::size_t>(updates)].data(), update_text[0].size()};
        keep.put({request.data(), std::min(request.size(), update_text[0].size() - 1)});
      }
      ++updates;
      Out expected{expected_.data(), expected_.size()};
      expected.put(R"("expectedVersion":)").number(version).put(",");
      if (request.find(expected.view()) == std::string_view::npos) ++bad_version;
      const std::string_view s = string_after(request, R"("status":")");
      for (std::string_view known : {"IN_PROGRESS"sv, "SUCCEEDED"sv, "FAILED"sv}) {
        if (s == known) status = known;
      }
      ++version;
      t.put(topic).put("/accepted");
      m.put(R"({"executionState":{"status":")").put(status).put(R"(","versionNumber":)");
      m.number(version).put(R"(},"timestamp":1700000000,"clientToken":")").put(token).put("\"}");
      return true;
    }
    return false;
  }

  // The execution of the job, with its AFR_OTA document.
  void execution(Out& m) const {
    m.put(R"("execution":{"jobId":")").put(job).put(R"(","thingName":"dev-1","jobDocument":)");
    m.put(R"({"afr_ota":{"protocols":["MQTT"],"streamname":"AFR_OTA-7","files":[)");
    m.put(R"({"filepath":"firmware.bin","filesize":)").number(kFileSize);
    m.put(R"(,"fileid":0,"certfile":"code-signer.crt","sig-sha256-ecdsa":")");
    m.put({g_signature_base64.data(), 8}).put(R"("}]}},"status":")").put(status);
    m.put(R"(","queuedAt":1699999990,"lastUpdatedAt":1700000000,"versionNumber":)");
    m.number(version).put(R"(,"executionNumber":1})");
  }

  // A GetStream request (CBOR: ... "o": first block, "n": count ...): the data message of its
  // first block, {"f": 0, "i": block, "l": length, "p": bytes}.
  bool stream_block(std::span<const std::uint8_t> request, Out& t, Out& m) {
    ++gets;
    std::uint32_t block = kBlocks;
    for (std::size_t i = 0; i + 2 < request.size(); ++i) {
      if (request[i] == 0x61 && request[i + 1] == 'o') {  // text(1) "o", then a small uint
        const std::uint8_t head = request[i + 2];
        if (head < 0x18) block = head;
        if (head == 0x18 && i + 3 < request.size()) block = request[i + 3];
        break;
      }
    }
    if (block >= kBlocks) return false;
    const std::uint32_t first = block * kBlockSize;
    const std::uint32_t length = std::min(kBlockSize, kFileSize - first);
    t.put("$aws/things/dev-1/streams/AFR_OTA-7/data/cbor");
    m.put("\xA4\x61\x66\x00\x61\x69"sv);  // map(4), "f": 0, "i":
    cbor_head(m, 0, block);
    m.put("\x61\x6C"sv);  // "l":
    cbor_head(m, 0, length);
    m.put("\x61\x70"sv);  // "p": bytes(length)
    cbor_head(m, 2, length);
    m.put({reinterpret_cast<const char*>(g_new_image.data()) + first, length});
    if (tamper && block == 1 && !m.overflow) rx_[m.size - 1] ^= 0x01;
    return true;
  }

  // A CBOR head in its shortest form (major type, value below 65536).
  static void cbor_head(Out& m, std::uint8_t major, std::uint32_t v) {
    const char type = static_cast<char>(major << 5);
    if (v < 24) {
      const char h = static_cast<char>(type | v);
      m.put({&h, 1});
    } else if (v < 256) {
      const char h[] = {static_cast<char>(type | 24), static_cast<char>(v)};
      m.put({h, 2});
    } else {
      const char h[] = {static_cast<char>(type | 25), static_cast<char>(v >> 8),
                        static_cast<char>(v & 0xFF)};
      m.put({h, 3});
    }
  }

  reqres::MessageHandler handler_;
  std::array<char, 128> topic_{};
  std::array<char, 1024> rx_{};  // the "driver's receive buffer"
  std::array<char, 32> expected_{};
};

// --- The ports, in RAM ---------------------------------------------------------------------------
// The download store: the record, the bitmap and the partial image. RAM here; on a device,
// flash pages (or the inactive slot itself).
class RamDownloadStore final : public ota::DownloadStore {
 public:
  Result<void, Errc> save(std::span<const std::uint8_t> record,
                          std::span<const std::uint8_t> bitmap) override {
    if (record.size() > record_.size() || bitmap.size() > bitmap_.size()) {
      return fail(Errc::StoreFailed);
    }
    std::memcpy(record_.data(), record.data(), record.size());
    if (!bitmap.empty()) std::memcpy(bitmap_.data(), bitmap.data(), bitmap.size());
    record_size_ = record.size();
    bitmap_size_ = bitmap.size();
    saved_ = true;
    ++saves;
    return {};
  }
  Result<ota::StoredDownload, Errc> load(std::span<std::uint8_t> record,
                                         std::span<std::uint8_t> bitmap) override {
    if (!saved_) return fail(Errc::NoDownload);
    if (record.size() < record_size_ || bitmap.size() < bitmap_size_) {
      return fail(Errc::BufferTooSmall);
    }
    std::memcpy(record.data(), record_.data(), record_size_);
    if (bitmap_size_ > 0) std::memcpy(bitmap.data(), bitmap_.data(), bitmap_size_);
    return ota::StoredDownload{record_size_, bitmap_size_};
  }
  Result<void, Errc> write_block(std::uint64_t offset, std::span<const std::byte> data) override {
    if (offset > image_.size() || data.size() > image_.size() - offset) {
      return fail(Errc::StoreFailed);
    }
    std::memcpy(image_.data() + offset, data.data(), data.size());
    end_ = std::max<std::size_t>(end_, static_cast<std::size_t>(offset) + data.size());
    return {};
  }
  Result<std::size_t, Errc> read_image(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= end_) return std::size_t{0};
    const std::size_t n = std::min(out.size(), end_ - static_cast<std::size_t>(offset));
    std::memcpy(out.data(), image_.data() + offset, n);
    return n;
  }
  Result<void, Errc> clear() override {
    saved_ = false;
    end_ = 0;
    return {};
  }
  [[nodiscard]] bool saved() const { return saved_; }
  int saves = 0;

 private:
  std::array<std::uint8_t, sizeof(ota::AgentRecord)> record_{};
  std::array<std::uint8_t, 16> bitmap_{};
  std::array<std::byte, kSlotSize> image_{};
  std::size_t record_size_ = 0, bitmap_size_ = 0, end_ = 0;
  bool saved_ = false;
};

// The A/B slots and their boot record (ports.hpp's state machine), in RAM.
class RamSlots final : public ota::Slots {
 public:
  using Slot = ota::Slot;
  using BootState = ota::BootState;

  Result<ota::BootStatus, Errc> status() override { return boot_; }
  Result<ota::BootStatus, Errc> boot() override {
    if (boot_.state == BootState::PendingTest) {
      boot_ = {ota::other(boot_.active), BootState::Testing};
    } else if (boot_.state == BootState::Testing) {
      boot_ = {ota::other(boot_.active), BootState::RolledBack};
    }
    return boot_;
  }
  Result<void, Errc> begin_write() override {
    if (boot_.state == BootState::PendingTest || boot_.state == BootState::Testing) {
      return fail(Errc::SlotStateInvalid);
    }
    writing_ = true;
    finished_ = false;
    size_[index(ota::other(boot_.active))] = 0;
    return {};
  }
  Result<void, Errc> write(std::uint64_t offset, std::span<const std::byte> data) override {
    if (!writing_) return fail(Errc::SlotStateInvalid);
    if (offset > kSlotSize || data.size() > kSlotSize - offset) return fail(Errc::SlotFailed);
    const std::size_t i = index(ota::other(boot_.active));
    std::memcpy(image_[i].data() + offset, data.data(), data.size());
    size_[i] = std::max<std::size_t>(size_[i], static_cast<std::size_t>(offset) + data.size());
    return {};
  }
  Result<void, Errc> finish_write() override {
    if (!writing_) return fail(Errc::SlotStateInvalid);
    writing_ = false;
    finished_ = true;
    return {};
  }
  Result<void, Errc> mark_pending() override {
    if (!finished_) return fail(Errc::NoImage);
    if (boot_.state != BootState::Normal && boot_.state != BootState::RolledBack) {
      return fail(Errc::SlotStateInvalid);
    }
    boot_.state = BootState::PendingTest;
    finished_ = false;
    return {};
  }
  Result<void, Errc> confirm() override {
    if (boot_.state != BootState::Testing) return fail(Errc::SlotStateInvalid);
    boot_.state = BootState::Normal;
    return {};
  }
  Result<void, Errc> roll_back() override {
    if (boot_.state == BootState::Testing) {
      boot_ = {ota::other(boot_.active), BootState::RolledBack};
    } else if (boot_.state == BootState::PendingTest) {
      boot_.state = BootState::RolledBack;
    } else {
      return fail(Errc::SlotStateInvalid);
    }
    return {};
  }
  Result<void, Errc> acknowledge() override {
    if (boot_.state != BootState::RolledBack) return fail(Errc::SlotStateInvalid);
    boot_.state = BootState::Normal;
    return {};
  }
  Result<std::size_t, Errc> read(Slot slot, std::uint64_t offset,
                                 std::span<std::byte> out) override {
    const std::size_t i = index(slot);
    if (size_[i] == 0) return fail(Errc::NoImage);
    if (offset >= size_[i]) return std::size_t{0};
    const std::size_t n = std::min(out.size(), size_[i] - static_cast<std::size_t>(offset));
    std::memcpy(out.data(), image_[i].data() + offset, n);
    return n;
  }

  // The factory image: v1.0.0 in slot A.
  void flash_factory_image() {
    put_header(image_[0], 1, 0);
    size_[0] = ota::kImageHeaderSize + kPayloadSize;
  }
  [[nodiscard]] std::span<const std::byte> image(Slot slot) const {
    return {image_[index(slot)].data(), size_[index(slot)]};
  }

 private:
  static std::size_t index(Slot s) { return s == Slot::A ? 0 : 1; }
  ota::BootStatus boot_{};
  std::array<std::array<std::byte, kSlotSize>, 2> image_{};
  std::array<std::size_t, 2> size_{};
  bool writing_ = false, finished_ = false;
};

// The verification port: CRC-32 (big-endian, 4 bytes) in place of SHA-256 + ECDSA P-256. It
// reads the image through the agent's source into the agent's buffer, as a token's port does.
class CrcVerifier final : public ota::ImageVerifier {
 public:
  Result<void, Errc> verify(ota::ImageSource source, std::uint64_t size,
                            std::span<const std::byte> signature,
                            std::span<std::byte> buffer) noexcept override {
    ++calls;
    if (buffer.empty()) return fail(Errc::InvalidArgument);
    if (signature.size() != 4) return fail(Errc::MalformedSignature);
    std::uint32_t crc = 0;
    for (std::uint64_t at = 0; at < size;) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size - at));
      auto n = source.read(source.context, at, buffer.first(want));
      if (!n) return fail(n.error());
      if (*n == 0) return fail(Errc::ImageTruncated);
      crc = crc32(buffer.first(*n), crc);
      at += *n;
    }
    std::uint32_t expected = 0;
    for (std::byte b : signature) expected = expected << 8 | static_cast<std::uint8_t>(b);
    if (crc != expected) return fail(Errc::SignatureInvalid);
    return {};
  }
  int calls = 0;
};

using size_program::TickClock;

// The application's hooks.
struct Device {
  int reboots = 0, self_tests = 0, fresh_blocks = 0, waits = 0;
  static ota::SelfTest self_test(void* self) {
    ++static_cast<Device*>(self)->self_tests;
    return ota::SelfTest::Pass;
  }
  static void reboot(void* self) { ++static_cast<Device*>(self)->reboots; }
  static void on_block(void* self, std::uint32_t, bool fresh) {
    if (fresh) ++static_cast<Device*>(self)->fresh_blocks;
  }
  static void wait(void* self, Duration) { ++static_cast<Device*>(self)->waits; }
};

// --- What survives a reboot (the ports' "flash", the record's RAM) and the buffers --------------
ScriptedChannel g_channel;
RamDownloadStore g_store;
RamSlots g_slots;
CrcVerifier g_verifier;
TickClock g_clock;
Device g_device;
jobs::RamRecordSlot g_record_slot;
// The caller's buffers for 256-byte blocks (agent.hpp's AgentBuffers; runner.hpp's).
std::uint8_t g_ota_request[64];             // a CBOR GetStream request
std::uint8_t g_ota_reply[kBlockSize + 64];  // a CBOR data message: a block and its keys
std::byte g_ota_block[kBlockSize];  // a decoded block (JSON streams only; CBOR is read in place)
std::uint8_t g_ota_bitmap[(kSlotSize / kBlockSize + 7) / 8];  // one bit per block
std::uint8_t g_ota_window[16];                                // a GetStream `b`
std::byte g_ota_chunk[kBlockSize];  // copying into the slot, and the verifier's reads
char g_ota_document[256];           // the job document's strings
char g_jobs_request[512];           // an update with its statusDetails
char g_jobs_reply[1024];            // start-next/accepted with the job document
char g_jobs_document[512];          // the job document handed to the handler
// The agent and the runner of the boot that runs (made again at each boot).
alignas(ota::Agent) std::byte g_agent[sizeof(ota::Agent)];
alignas(jobs::Runner) std::byte g_runner[sizeof(jobs::Runner)];

// One boot of the device: the bootloader's step, the agent and the runner, and the jobs that
// are due. Returns 0 (nothing left to run), -1 (a job still runs: the agent asked for a reboot)
// or a step number; `why` is why the agent's last job ended (Ok: SUCCEEDED, or still running).
int boot(int step, Errc& why) {
  if (!g_slots.boot()) return step;
  ota::AgentConfig config;
  config.thing = kThing;
  config.device_type = kDeviceType;
  config.format = ota::Format::Cbor;
  config.block_size = kBlockSize;
  const ota::AgentBuffers buffers{g_ota_request, g_ota_reply, g_ota_block,   g_ota_bitmap,
                                  g_ota_window,  g_ota_chunk, g_ota_document};
  const ota::AgentHooks hooks{&Device::self_test, &Device::reboot, &Device::on_block, nullptr,
                              &g_device,          &Device::wait};
  auto* agent = new (g_agent)
      ota::Agent(g_channel, g_store, g_slots, g_verifier, g_clock, config, buffers, hooks);
  const jobs::JobHandler handlers[] = {agent->handler()};
  static jobs::RamRecordStore records(g_record_slot);
  jobs::RunnerConfig rc;
  rc.thing = kThing;
  rc.handlers = handlers;
  rc.token_prefix = "ota";
  auto* runner = new (g_runner) jobs::Runner(g_channel, records, g_clock, rc,
                                             {g_jobs_request, g_jobs_reply, g_jobs_document});
  const bool started = runner->start(Duration{1000}).has_value();
  const bool idle = runner->state() == jobs::ExecutorState::Idle;
  why = agent->last_error();
  runner->~Runner();
  if (!started) return step + 1;
  return idle ? 0 : -1;
}

bool sent(int update, std::string_view status, std::string_view detail) {
  const std::string_view text(g_channel.update_text[static_cast<std::size_t>(update)].data());
  return text.find(status) != std::string_view::npos && text.find(detail) != std::string_view::npos;
}

}  // namespace

int main() {
  make_images();
  g_slots.flash_factory_image();

  // First boot: the job is taken, the image downloaded, verified and installed; the agent
  // reports self_test "ready" and asks for the reboot (the job stays IN_PROGRESS).
  Errc why = Errc::Ok;
  if (int s = boot(10, why); s != -1) return s == 0 ? 12 : s;
  if (why != Errc::Ok) return 13;
  if (!g_channel.jobs_subscribed || !g_channel.stream_subscribed) return 14;
  if (g_channel.start_next != 1 || g_channel.gets != static_cast<int>(kBlocks)) return 15;
  if (g_device.fresh_blocks != static_cast<int>(kBlocks) || g_device.reboots != 1) return 16;
  if (g_verifier.calls != 1 || !g_store.saved()) return 17;
  auto pending = g_slots.status();
  if (!pending || pending->state != ota::BootState::PendingTest) return 18;

  // Second boot: the new image under test; the runner resumes the agent, whose self-test
  // passes: the image is confirmed and the job SUCCEEDED.
  if (int s = boot(20, why); s != 0) return s == -1 ? 22 : s;
  if (why != Errc::Ok) return 23;
  auto done = g_slots.status();
  if (!done || done->state != ota::BootState::Normal || done->active != ota::Slot::B) return 24;
  const auto installed = g_slots.image(ota::Slot::B);
  if (installed.size() != kFileSize ||
      std::memcmp(installed.data(), g_new_image.data(), kFileSize) != 0)
    return 25;
  if (g_device.self_tests != 1 || g_device.reboots != 1 || g_store.saved()) return 26;
  if (g_channel.describe != 1 || g_channel.status != "SUCCEEDED"sv) return 27;
  if (g_channel.bad_version != 0 || g_channel.unmatched != 0) return 28;

  // The reports, in order: receive at the first and the last block, self_test ready (updatedBy
  // v1.0.0 packed), self_test active, and the outcome.
  if (g_channel.updates != 5) return 30;
  if (!sent(0, R"("status":"IN_PROGRESS")", R"("receive":"1/3")")) return 31;
  if (!sent(1, R"("status":"IN_PROGRESS")", R"("receive":"3/3")")) return 32;
  if (!sent(2, R"("status":"IN_PROGRESS")", R"("self_test":"ready","updatedBy":"0x1000000")"))
    return 33;
  if (!sent(3, R"("status":"IN_PROGRESS")", R"("self_test":"active","updatedBy":"0x1000000")"))
    return 34;
  if (!sent(4, R"("status":"SUCCEEDED")", R"("reason":"accepted v1.1.0","updatedBy":"0x1000000")"))
    return 35;
  if (g_record_slot.mark == jobs::RamRecordStore::kMark) return 36;  // the job record cleared

  // A second job whose image arrives with one byte changed: the verifier refuses it, the job is
  // FAILED with the reason, and the running image stays (v1.1.0 in slot B, confirmed).
  g_channel.queue("ota-8", true);
  if (int s = boot(40, why); s != 0) return s == -1 ? 42 : s;
  if (why != Errc::SignatureInvalid || g_verifier.calls != 2) return 43;
  if (g_channel.status != "FAILED"sv || g_channel.updates != 8 || g_store.saved()) return 44;
  if (!sent(5, R"("status":"IN_PROGRESS")", R"("receive":"1/3")")) return 45;
  if (!sent(7, R"("status":"FAILED")",
            R"("reason":"rejected: signature invalid","updatedBy":"0x1010000")"))
    return 46;
  auto after = g_slots.status();
  if (!after || after->state != ota::BootState::Normal || after->active != ota::Slot::B ||
      g_device.reboots != 1)
    return 47;
  if (std::memcmp(g_slots.image(ota::Slot::B).data(), g_new_image.data(), kFileSize) != 0)
    return 48;
  return 0;
}
