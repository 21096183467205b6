#pragma once
/// \file
/// `edgekit::ota::Agent`: the device's OTA agent (docs/ota.md, "The agent"). It is the handler of
/// AFR_OTA jobs in a `jobs::Runner` (operation `afr_ota`: the executor hands it every job whose
/// document holds an `afr_ota` object), and takes one update from the job document to its
/// outcome:
///
///   download (MQTT stream, JSON or CBOR, one GetStream per block; or HTTP ranges) → verify
///   (signature in the token, then the header:
///   size, device type, newer) → write the inactive slot → mark pending → report
///   self_test "ready" → reboot (the application's hook) → [next boot: `boot()`] → report
///   self_test "active" → the application's self-test → confirm → SUCCEEDED "accepted vX.Y.Z"
///                                                    → roll back → FAILED
///
///   Slots slots(...);  FileDownloadStore store(...);  Verifier verifier(...);  // an ImageVerifier
///   ota::Agent agent(channel, store, slots, verifier, clock, config, buffers, hooks);
///   agent.boot();                                   // once per boot, before the runner starts
///   const jobs::JobHandler handlers[] = {agent.handler()};
///   jobs::Runner runner(channel, record_store, clock, {.thing = ..., .handlers = handlers}, ...);
///   runner.start(5s);  for (;;) runner.run_for(1s);
///
/// Persistence: everything the agent must remember across a cut or a reboot is in the
/// `DownloadStore`: the record (job id, stream, file id, sizes, signature, phase, the version
/// the update started from) and the block bitmap, saved after every block stored. A new process
/// given the same job (start-next returns the IN_PROGRESS execution; or the runner resumes it)
/// continues at the first missing block; a block whose bitmap bit is clear is never asked for
/// again. After a reboot into the new image the slots' boot state says where the update stands.
///
/// Outcomes (statusDetails, aws-iot-protocols.md 3.5): `receive` "<received>/<total>" (first
/// block, then every `progress_every` blocks), `self_test` "ready"/"active" with `updatedBy`
/// "0x<hex>" (the version the update started from), SUCCEEDED with `reason`
/// "accepted v<maj>.<min>.<build>", FAILED with `reason` naming the refusal: the stream service's
/// code ("rejected: ResourceNotFound"), the verification's ("rejected: signature invalid",
/// "rejected: image truncated", "rejected: image version not newer than the running one",
/// "rejected: image for another device type", ...), "self-test failed", "self-test not
/// confirmed" (the device reset during its self-test: rolled back at the next boot), "rejected:
/// store failed" / "rejected: slots unwritable" (a port call failed, below). After every refusal
/// the running image is untouched.
///
/// Port failures (docs/ota.md, "When a port call fails"): none is ignored. Each is an `on_event`
/// line "<Port>::<call> failed: <Errc text>", and the agent either refuses the job (`last_error`
/// is then the port's Errc) or carries on where the device stays safe:
///  - `DownloadStore::clear` of another job's download (or an unreadable record) fails: the new
///    job is refused "rejected: store failed" before anything is downloaded (blocks written over
///    a download a port could not clear, e.g. not erase, may be wrong);
///  - `Slots::acknowledge` of a RolledBack state before a new job fails: refused "rejected: slots
///    unwritable" before downloading (the slots could not mark the new image pending either);
///  - after SUCCEEDED or FAILED was reported, `clear` or `acknowledge` fails: the outcome and
///    `last_error` stand; the record is kept with phase Reported, which no run resumes (the next
///    job clears it; a retried execution starts afresh), and the slots stay RolledBack (safe: the
///    old image runs) until the next job acknowledges;
///  - `save` of phase SelfTestFailed fails: the image is rolled back all the same and "self-test
///    failed" reported (if that report is cut too, the next run says "self-test not confirmed").
///
/// Memory: the caller's buffers (`AgentBuffers`) and about 2 KB of its own (2,016 B on a
/// Cortex-M4: the record and the stream's three topics); no heap, no thread, no clock of its own
/// (time is the `Clock`'s, waiting is the `wait` hook's): it builds for Cortex-M (docs/sizes.md).
/// Thread safety: one thread (the runner's) calls the agent.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "edgekit/core/clock.hpp"
#include "edgekit/jobs/runner.hpp"
#include "edgekit/ota/download.hpp"
#include "edgekit/ota/errc.hpp"
#include "edgekit/ota/image_verifier.hpp"
#include "edgekit/ota/job_document.hpp"
#include "edgekit/ota/ports.hpp"
#include "edgekit/ota/topics.hpp"
#include "edgekit/reqres/channel.hpp"

namespace edgekit::ota {

/// The operation name the jobs executor gives to a document holding `afr_ota`.
inline constexpr std::string_view kOtaOperation = "afr_ota";

/// The HTTP half of the agent's transport (a port: the agent has no HTTP client of its own). A
/// job whose document allows HTTP gives the file's `update_data_url` (a presigned HTTPS URL: the
/// URL is the credential); the agent asks for whole blocks with ranges. `edgekit ota run`
/// implements it with cpp-httplib over OpenSSL, verifying the server against a CA file.
/// Thread safety: called on the agent's thread only.
class RangeFetcher {
 public:
  /// Reads bytes [`first`, `first` + `out.size()`) of the file at `url` into `out` (an HTTP
  /// `Range: bytes=first-last` answered 206 with exactly that many bytes). Returns false when
  /// it could not (connection, TLS, status, length): the agent asks again later.
  virtual bool fetch(std::string_view url, std::uint64_t first, std::span<std::byte> out) = 0;

 protected:
  ~RangeFetcher() = default;
};

/// What the application's self-test says, each time the agent asks.
enum class SelfTest : std::uint8_t { Pass, Fail, Pending };

/// The application's side. Every hook runs on the agent's (the runner's) thread.
struct AgentHooks {
  /// The self-test of the image under test; asked every `self_test_poll` until it is not
  /// Pending or `self_test_timeout` passed. Empty: Pass.
  SelfTest (*self_test)(void* context) = nullptr;
  /// Resets the device (into the pending image, back to the old one, or after a self-test that
  /// never ended). Normally does not return; when it does, the handler returns and the job
  /// stays IN_PROGRESS until the next boot.
  void (*reboot)(void* context) = nullptr;
  /// A block of the running download was stored (`fresh`) or arrived again (not stored). For
  /// progress output and tests. May be empty.
  void (*on_block)(void* context, std::uint32_t block, bool fresh) = nullptr;
  /// One line about what the agent does (e.g. "signature verified", "FAILED: ..."), and one for
  /// each port call that failed ("DownloadStore::clear failed: download store failed"). May be
  /// empty.
  void (*on_event)(void* context, std::string_view what) = nullptr;
  void* context = nullptr;
  /// Waits `d` (`self_test_poll`) between two questions to the self-test when the channel cannot
  /// receive meanwhile (not connected): a thread's sleep on a host, the RTOS's delay on a device.
  /// Empty: the agent asks again at once, until `self_test_timeout`.
  void (*wait)(void* context, Duration d) = nullptr;
};

struct AgentConfig {
  std::string_view thing;        ///< the thing name (a view: must outlive the agent)
  std::string_view device_type;  ///< compared with the image header's
  Format format = Format::Cbor;  ///< of the stream's requests and replies
  std::uint32_t block_size = 1024;  ///< `l` (256-131072; the reply buffer must hold a block)
  Duration request_timeout{5000};   ///< for one block
  std::uint32_t max_attempts = 3;   ///< GetStream sends for one block before giving up
  std::uint32_t progress_every = 64;  ///< blocks between `receive` reports
  Duration self_test_timeout{16000};  ///< the FreeRTOS agent's default
  Duration self_test_poll{100};
  std::string_view code_signer;  ///< informative: the code-signing key's label
  /// HTTP ranges: used for a job whose document allows HTTP when `prefer_http` is set, or when
  /// it does not allow MQTT. Null: MQTT only. Ranges are whole blocks of `block_size`, at most
  /// `AgentBuffers::chunk` bytes each.
  RangeFetcher* http = nullptr;
  bool prefer_http = false;
};

/// The caller's buffers: `request` holds a GetStream request (512 bytes suffice), `reply` a
/// data message (a block as base64 plus 256 bytes in JSON), `block` a decoded block,
/// `bitmap` the download's bitmap (file size / block size / 8, rounded up), `window` a
/// GetStream `b` (16 bytes suffice), `chunk` the unit of copying the image into the slot
/// (4096 bytes, say), `document` the job document's strings (1 KB).
struct AgentBuffers {
  std::span<std::uint8_t> request;
  std::span<std::uint8_t> reply;
  std::span<std::byte> block;
  std::span<std::uint8_t> bitmap;
  std::span<std::uint8_t> window;
  std::span<std::byte> chunk;
  std::span<char> document;
};

/// What the agent persists beside the bitmap (the `DownloadStore` record). Trivially copyable;
/// written and read back by the same firmware only.
struct AgentRecord {
  static constexpr std::uint32_t kMagic = 0x414F4B45;  // "EKOA"
  /// Reported: the job's outcome was reported but the store could not be cleared; such a
  /// record is never taken for a live update (the next job clears it).
  enum class Phase : std::uint8_t {
    Downloading = 1,
    Installed = 2,
    SelfTestFailed = 3,
    Reported = 4
  };
  std::uint32_t magic = kMagic;
  Phase phase = Phase::Downloading;
  Format format = Format::Cbor;
  std::uint8_t file_id = 0;
  std::uint8_t job_id_length = 0;
  std::uint32_t file_size = 0;
  std::uint32_t block_size = 0;
  std::uint32_t from_version = 0;  ///< packed ImageVersion the update started from
  std::uint32_t to_version = 0;    ///< packed, once verified
  std::uint8_t signature_length = 0;
  std::uint8_t stream_length = 0;
  std::array<char, 64> job_id{};
  std::array<std::byte, kMaxSignatureSize> signature{};
  std::array<char, kMaxStreamIdLength> stream{};
  bool http = false;  ///< the download uses `url` (HTTP ranges) instead of the stream
  std::uint16_t url_length = 0;
  std::array<char, 512> url{};
  [[nodiscard]] std::string_view url_text() const noexcept { return {url.data(), url_length}; }
  [[nodiscard]] std::string_view job() const noexcept { return {job_id.data(), job_id_length}; }
  [[nodiscard]] std::string_view stream_id() const noexcept {
    return {stream.data(), stream_length};
  }
};

/// See the file comment.
class Agent {
 public:
  /// Borrows everything; it must outlive the agent.
  Agent(reqres::Channel& channel, DownloadStore& store, Slots& slots, ImageVerifier& verifier,
        const Clock& clock, const AgentConfig& config, AgentBuffers buffers,
        AgentHooks hooks) noexcept;

  /// What a bootloader does at reset (`Slots::boot`): call once per boot, before the runner
  /// starts. Returns the boot record. Errors: those of `Slots::boot`.
  [[nodiscard]] Result<BootStatus, Errc> boot() noexcept;

  /// The jobs handler (operation `afr_ota`, resumed after a reboot).
  [[nodiscard]] jobs::JobHandler handler() noexcept {
    return {kOtaOperation, jobs::RebootPolicy::Resume, &Agent::run, this};
  }

  /// Blocks stored, and blocks that arrived again, by this object (diagnostics).
  [[nodiscard]] std::uint32_t blocks_stored() const noexcept { return stored_; }
  [[nodiscard]] std::uint32_t duplicate_blocks() const noexcept { return duplicates_; }
  /// Why the last job ended (Ok: SUCCEEDED, or still running): the refusal's Errc, e.g.
  /// StoreFailed or SlotFailed when a failing port call refused it. A port call that fails after
  /// the outcome was reported leaves it as it is (an `on_event` line says so).
  [[nodiscard]] Errc last_error() const noexcept { return last_error_; }

 private:
  static void run(void* self, jobs::Runner& runner, const jobs::Job& job) noexcept;
  void take(jobs::Runner& runner, const jobs::Job& job) noexcept;
  Result<void, Errc> download(jobs::Runner& runner, Download& d) noexcept;
  Result<void, Errc> fetch_block(Download& d) noexcept;
  Result<void, Errc> download_ranges(jobs::Runner& runner, Download& d) noexcept;
  Result<void, Errc> store_block(Download& d, std::uint32_t block,
                                 std::span<const std::byte> data) noexcept;
  Result<void, Errc> report_receive(jobs::Runner& runner, const Download& d,
                                    std::uint32_t this_run) noexcept;
  Result<void, Errc> verify_and_install() noexcept;
  void after_boot(jobs::Runner& runner, BootStatus status) noexcept;
  void refuse(jobs::Runner& runner, std::string_view reason, Errc why) noexcept;
  static std::uint8_t match_reply(void* self, const reqres::Message& m) noexcept;
  void succeed(jobs::Runner& runner) noexcept;
  void forget() noexcept;
  void new_record(const jobs::Job& job) noexcept;
  void port_failed(std::string_view call, Errc e) noexcept;
  Result<void, Errc> save(std::span<const std::uint8_t> bitmap) noexcept;
  void event(std::string_view what) noexcept;
  void reboot() noexcept;
  std::string_view updated_by() noexcept;

  reqres::Channel& channel_;
  DownloadStore& store_;
  Slots& slots_;
  ImageVerifier& verifier_;
  const Clock& clock_;
  AgentConfig config_;
  AgentBuffers buffers_;
  AgentHooks hooks_;
  AgentRecord record_{};
  std::array<char, kMaxTopicLength> get_topic_{};
  std::array<char, kMaxTopicLength> data_topic_{};
  std::array<char, kMaxTopicLength> rejected_topic_{};
  std::size_t get_length_ = 0, data_length_ = 0, rejected_length_ = 0;
  std::array<char, 96> text_{};  // a reason or a status detail value being sent
  std::array<char, 16> updated_by_{};
  std::uint32_t token_ = 0;
  std::uint32_t stored_ = 0;
  std::uint32_t duplicates_ = 0;
  Errc last_error_ = Errc::Ok;
};

}  // namespace edgekit::ota
