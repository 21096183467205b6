// The OTA agent (agent.hpp): one update from the AFR_OTA job to its outcome, its state in the
// DownloadStore (record + bitmap) and the Slots' boot record, so that a cut or a reboot at any
// point continues where the update stands.
#include "edgekit/ota/agent.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>

#include "edgekit/ota/stream.hpp"

namespace edgekit::ota {
namespace {

// A NUL-terminated line in a caller's buffer that cuts what does not fit, as snprintf does.
// Not snprintf itself: on a device newlib's printf family links its whole formatter and, through
// its string streams, malloc.
class Line {
 public:
  explicit Line(std::span<char> out) noexcept : out_(out) { out_[0] = '\0'; }  // never empty
  Line& put(std::string_view s) noexcept {
    const std::size_t n = std::min(s.size(), out_.size() - 1 - used_);
    if (n > 0) std::memcpy(out_.data() + used_, s.data(), n);
    used_ += n;
    out_[used_] = '\0';
    return *this;
  }
  Line& number(std::uint32_t v, int base = 10) noexcept {
    std::array<char, 12> digits{};
    const auto r = std::to_chars(digits.data(), digits.data() + digits.size(), v, base);
    return put({digits.data(), static_cast<std::size_t>(r.ptr - digits.data())});
  }
  [[nodiscard]] std::string_view view() const noexcept { return {out_.data(), used_}; }

 private:
  std::span<char> out_;
  std::size_t used_ = 0;
};

// The text of a refusal: the stream service's codes read "rejected: <code>" already.
void reason_of(Errc e, std::span<char> out) {
  Line line(out);
  if (!is_rejection(e)) line.put("rejected: ");
  line.put(to_string(e));
}

// download() and fetch_block() use it for "interrupted: continue later" (a cut, a job the
// service ended, no reply); they never meet a missing download otherwise.
constexpr Errc kInterrupted = Errc::NoDownload;

// Resets a record in place: `record = {}` builds the whole record (820 bytes on a Cortex-M) as a
// temporary on the stack first and copies it.
void reset(AgentRecord& record) noexcept {
  std::construct_at(&record);
}

std::span<const std::uint8_t> record_bytes(const AgentRecord& r) {
  return {reinterpret_cast<const std::uint8_t*>(&r), sizeof r};
}

}  // namespace

Agent::Agent(reqres::Channel& channel, DownloadStore& store, Slots& slots, ImageVerifier& verifier,
             const Clock& clock, const AgentConfig& config, AgentBuffers buffers,
             AgentHooks hooks) noexcept
    : channel_(channel),
      store_(store),
      slots_(slots),
      verifier_(verifier),
      clock_(clock),
      config_(config),
      buffers_(buffers),
      hooks_(hooks) {}

Result<BootStatus, Errc> Agent::boot() noexcept { return slots_.boot(); }

void Agent::run(void* self, jobs::Runner& runner, const jobs::Job& job) noexcept {
  static_cast<Agent*>(self)->take(runner, job);
}

void Agent::event(std::string_view what) noexcept {
  if (hooks_.on_event) hooks_.on_event(hooks_.context, what);
}

void Agent::reboot() noexcept {
  event("rebooting");
  if (hooks_.reboot) hooks_.reboot(hooks_.context);
}

std::string_view Agent::updated_by() noexcept {
  return Line(updated_by_).put("0x").number(record_.from_version, 16).view();
}

Result<void, Errc> Agent::save(std::span<const std::uint8_t> bitmap) noexcept {
  return store_.save(record_bytes(record_), bitmap);
}

// A port call failed where the agent carries on (or refuses with a reason of its own): the
// line names the call and its error, so that the failure is never silent.
void Agent::port_failed(std::string_view call, Errc e) noexcept {
  std::array<char, 128> line{};
  event(Line(line).put(call).put(" failed: ").put(to_string(e)).view());
}

// The record of a job the store holds nothing of: its id and the version it starts from.
void Agent::new_record(const jobs::Job& job) noexcept {
  reset(record_);
  const std::size_t id_length = std::min(job.job_id.size(), record_.job_id.size());
  std::memcpy(record_.job_id.data(), job.job_id.data(), id_length);
  record_.job_id_length = static_cast<std::uint8_t>(id_length);
  auto running = slots_.active_version();
  record_.from_version = running ? running->packed() : 0;
}

// The outcome was reported: the update is forgotten. A store that cannot clear keeps the record,
// marked Reported so that no later run takes it for a live update (a retried execution of this
// job starts afresh instead of resuming a refused download); the next job clears it again, and
// is refused while the store cannot. The outcome stands either way: this is only an event.
void Agent::forget() noexcept {
  auto c = store_.clear();
  if (c) return;
  port_failed("DownloadStore::clear", c.error());
  record_.phase = AgentRecord::Phase::Reported;
  if (auto s = save({}); !s) port_failed("DownloadStore::save", s.error());
}

void Agent::take(jobs::Runner& runner, const jobs::Job& job) noexcept {
  last_error_ = Errc::Ok;
  // What the store holds: this job's update (continue it), another job's (abandoned: the
  // service moved on, e.g. canceled it), a finished one's it could not clear (Reported), or
  // nothing.
  AgentRecord stored{};
  auto loaded = store_.load(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(&stored),
                                                    sizeof stored),
                            buffers_.bitmap);
  const bool ours = loaded && loaded->record_size == sizeof stored &&
                    stored.magic == AgentRecord::kMagic && stored.job() == job.job_id &&
                    stored.phase != AgentRecord::Phase::Reported;
  if (ours) {
    record_ = stored;
  } else {
    new_record(job);
  }
  if (!ours && !(!loaded && loaded.error() == Errc::NoDownload)) {
    // A store that cannot forget the old download is refused rather than written over: `clear`
    // is where a port may erase (flash pages), so blocks written over an uncleared download may
    // be wrong, and the job would then fail as "signature invalid", naming the wrong cause.
    if (auto c = store_.clear(); !c) {
      port_failed("DownloadStore::clear", c.error());
      return refuse(runner, "rejected: store failed", c.error());
    }
  }
  auto status = slots_.status();
  if (!status) return refuse(runner, "rejected: slots unreadable", status.error());

  if (ours) {
    if (record_.phase != AgentRecord::Phase::Downloading || status->state != BootState::Normal) {
      return after_boot(runner, *status);
    }
  } else {
    if (status->state == BootState::RolledBack) {
      // The rolled-back update was reported when its job ended; its acknowledge failed or was
      // cut. Slots that cannot write their boot record now could not mark the new image pending
      // either: refuse before downloading it. The old image runs on, whatever happens here.
      if (auto a = slots_.acknowledge(); !a) {
        port_failed("Slots::acknowledge", a.error());
        return refuse(runner, "rejected: slots unwritable", a.error());
      }
    }
    if (status->state == BootState::Testing || status->state == BootState::PendingTest) {
      // An image under test that no record explains: not this job's; leave it to its own.
      return refuse(runner, "rejected: another update is under test", Errc::SlotStateInvalid);
    }
    std::array<std::byte, kMaxSignatureSize> signature{};
    auto parsed = read_ota_job(job.document, 0, buffers_.document, signature);
    if (!parsed) {
      reason_of(parsed.error(), text_);
      return refuse(runner, text_.data(), parsed.error());
    }
    const bool mqtt = (parsed->protocols & kProtocolMqtt) != 0;
    const bool http = (parsed->protocols & kProtocolHttp) != 0 && config_.http != nullptr;
    record_.http = http && (config_.prefer_http || !mqtt);
    if (!mqtt && !record_.http) {
      return refuse(runner, "rejected: no MQTT stream and no HTTP client", Errc::InvalidProtocols);
    }
    if (record_.http) {
      const auto url = parsed->file.update_data_url;
      if (url.size() > record_.url.size()) {
        return refuse(runner, "rejected: update_data_url too long", Errc::InvalidUpdateDataUrl);
      }
      std::memcpy(record_.url.data(), url.data(), url.size());
      record_.url_length = static_cast<std::uint16_t>(url.size());
    }
    record_.format = config_.format;
    record_.file_id = parsed->file.id;
    record_.file_size = parsed->file.size;
    record_.block_size = config_.block_size;
    record_.signature_length = static_cast<std::uint8_t>(parsed->file.signature.size());
    std::memcpy(record_.signature.data(), parsed->file.signature.data(),
                parsed->file.signature.size());
    record_.stream_length = static_cast<std::uint8_t>(parsed->stream_name.size());
    std::memcpy(record_.stream.data(), parsed->stream_name.data(), parsed->stream_name.size());
  }

  // The download: resumed from the stored bitmap, or started.
  auto d = ours ? Download::resume(record_.file_size, record_.block_size, buffers_.bitmap)
                : Download::start(record_.file_size, record_.block_size, buffers_.bitmap);
  if (!d && ours) {  // a bitmap that does not fit its record: start again
    d = Download::start(record_.file_size, record_.block_size, buffers_.bitmap);
  }
  if (!d) return refuse(runner, "rejected: cannot download this file", d.error());
  if (!ours) {
    if (auto s = save(d->bitmap()); !s) return refuse(runner, "rejected: store failed", s.error());
  }
  if (!d->complete()) {
    text_[0] = '\0';
    event(record_.http ? "downloading over HTTP ranges" : "downloading over the MQTT stream");
    auto got = record_.http ? download_ranges(runner, *d) : download(runner, *d);
    if (!got) {
      if (got.error() == kInterrupted) return;  // a cut, a job the service ended: continue later
      if (text_[0] == '\0') reason_of(got.error(), text_);
      return refuse(runner, text_.data(), got.error());
    }
  }
  event("download complete");
  if (auto v = verify_and_install(); !v) {
    reason_of(v.error(), text_);
    return refuse(runner, text_.data(), v.error());
  }
  record_.phase = AgentRecord::Phase::Installed;
  if (auto s = save(d->bitmap()); !s) return refuse(runner, "rejected: store failed", s.error());
  const jobs::StatusDetail ready[] = {{"self_test", "ready"}, {"updatedBy", updated_by()}};
  if (auto p = runner.progress(ready); !p) return;  // reported again after the reboot
  reboot();
}

// The reply to a GetStream: a message on the stream's data or rejected topic (one request at a
// time; a late block of an earlier request is still a block, which `Download` sorts out).
std::uint8_t Agent::match_reply(void* self, const reqres::Message& m) noexcept {
  auto* a = static_cast<Agent*>(self);
  return m.topic == std::string_view(a->data_topic_.data(), a->data_length_) ||
                 m.topic == std::string_view(a->rejected_topic_.data(), a->rejected_length_)
             ? 1
             : 0;
}

// Interrupted (a cut, a job the service ended): Errc::Ok as the error. Refused: the errc, with
// its reason in text_.
Result<void, Errc> Agent::download(jobs::Runner& runner, Download& d) noexcept {
  const auto stream = record_.stream_id();
  const auto format = record_.format;
  auto topic = [&](StreamTopic kind, std::array<char, kMaxTopicLength>& buf, std::size_t& len) {
    auto t = stream_topic(config_.thing, stream, kind, format, buf);
    len = t ? t->size() : 0;
    return t.has_value();
  };
  if (!topic(StreamTopic::Get, get_topic_, get_length_) ||
      !topic(StreamTopic::Data, data_topic_, data_length_) ||
      !topic(StreamTopic::Rejected, rejected_topic_, rejected_length_)) {
    Line(text_).put("rejected: invalid stream name");
    return edgekit::fail(Errc::InvalidStreamName);
  }
  const std::string_view filters[] = {{data_topic_.data(), data_length_},
                                      {rejected_topic_.data(), rejected_length_}};
  if (!channel_.subscribe(filters, config_.request_timeout)) return edgekit::fail(kInterrupted);
  std::uint32_t this_run = 0;
  while (!d.complete()) {
    const std::uint32_t before = d.received_blocks();
    if (auto r = fetch_block(d); !r) return r;
    if (d.received_blocks() == before) continue;
    if (auto p = report_receive(runner, d, ++this_run); !p) return p;
  }
  return {};
}

// `receive` "<received>/<total>": at the first block of a run, every `progress_every` blocks and
// at the last. A report the service refuses (the job was ended) interrupts the download.
Result<void, Errc> Agent::report_receive(jobs::Runner& runner, const Download& d,
                                         std::uint32_t this_run) noexcept {
  if (this_run != 1 && d.received_blocks() % config_.progress_every != 0 && !d.complete()) {
    return {};
  }
  std::array<char, 24> progress{};
  auto text = d.progress(progress);
  if (!text) return {};
  const jobs::StatusDetail receive[] = {{"receive", *text}};
  if (auto p = runner.progress(receive); !p) return edgekit::fail(kInterrupted);
  return {};
}

// HTTP ranges: the run of missing blocks from the first one, as much as `chunk` holds, each
// block then stored as a stream block is.
Result<void, Errc> Agent::download_ranges(jobs::Runner& runner, Download& d) noexcept {
  std::uint32_t this_run = 0;
  while (!d.complete()) {
    auto range = d.next_range(static_cast<std::uint32_t>(buffers_.chunk.size()));
    if (!range) return edgekit::fail(range.error());
    if (range->byte_count > buffers_.chunk.size()) return edgekit::fail(Errc::BufferTooSmall);
    const auto bytes = buffers_.chunk.first(range->byte_count);
    bool got = false;
    for (std::uint32_t attempt = 0; attempt < config_.max_attempts && !got; ++attempt) {
      got = config_.http->fetch(record_.url_text(), range->first_byte, bytes);
    }
    if (!got) return edgekit::fail(kInterrupted);
    for (std::uint32_t i = range->first_block; i < range->first_block + range->block_count; ++i) {
      const std::uint32_t length = d.block_length(i);
      auto outcome = d.accept_block(i, length);
      if (!outcome) return edgekit::fail(outcome.error());
      if (*outcome == BlockOutcome::Duplicate) continue;
      const auto data = bytes.subspan(d.block_offset(i) - range->first_byte, length);
      if (auto s = store_block(d, i, data); !s) return s;
      if (auto p = report_receive(runner, d, ++this_run); !p) return p;
    }
  }
  return {};
}

Result<void, Errc> Agent::fetch_block(Download& d) noexcept {
  for (std::uint32_t attempt = 0; attempt < config_.max_attempts; ++attempt) {
    auto window = d.next_stream_request(1, buffers_.window);
    if (!window) return edgekit::fail(window.error());
    std::array<char, 16> token{};
    GetStreamRequest request;
    request.client_token = Line(token).put("ota-").number(++token_).view();
    request.file_id = record_.file_id;
    request.block_size = record_.block_size;
    request.offset = window->offset;
    request.block_count = window->block_count;
    request.bitmap = window->bitmap;
    auto size = write_get_stream_request(record_.format, request, buffers_.request);
    if (!size) return edgekit::fail(size.error());
    auto reply = channel_.request({get_topic_.data(), get_length_},
                                  std::span<const std::uint8_t>(buffers_.request.data(), *size),
                                  {&match_reply, this}, buffers_.reply, config_.request_timeout);
    if (!reply) {
      if (reply.error() == reqres::Errc::Timeout) continue;
      return edgekit::fail(kInterrupted);  // not connected: continue after the reconnect
    }
    // Which reply: the rejected topic's is shorter than the data topic's only by its name.
    const auto message = std::span<const std::uint8_t>(buffers_.reply.data(), reply->size);
    std::array<char, 80> scratch{};
    auto data = read_data(record_.format, message, buffers_.block, scratch);
    if (!data) {
      auto rejected = read_stream_rejected(record_.format, message, scratch);
      if (rejected) {
        reason_of(rejected->errc, text_);
        return edgekit::fail(rejected->errc);
      }
      continue;  // malformed: ask again
    }
    auto outcome = d.accept(*data, record_.file_id);
    if (!outcome) continue;
    if (*outcome == BlockOutcome::Duplicate) {
      ++duplicates_;
      if (hooks_.on_block) hooks_.on_block(hooks_.context, data->block_id, false);
      return {};
    }
    return store_block(d, data->block_id, data->payload);
  }
  return edgekit::fail(kInterrupted);  // no reply: continue later
}

// A block `Download` accepted as new: the bytes first, then the bitmap that claims them
// (DownloadStore's guarantee). A block that could not be stored is wanted again.
Result<void, Errc> Agent::store_block(Download& d, std::uint32_t block,
                                      std::span<const std::byte> data) noexcept {
  auto written = store_.write_block(d.block_offset(block), data);
  if (written) written = save(d.bitmap());
  if (!written) {
    d.forget_block(block);
    Line(text_).put("rejected: store failed");
    return written;
  }
  ++stored_;
  if (hooks_.on_block) hooks_.on_block(hooks_.context, block, true);
  return {};
}

// Writes the stored image into the inactive slot, then checks what the slot holds — the bytes
// that will boot —: its signature in the token, then its header. Only then is it marked pending.
Result<void, Errc> Agent::verify_and_install() noexcept {
  auto status = slots_.status();
  if (!status) return edgekit::fail(status.error());
  const Slot target = other(status->active);
  if (auto b = slots_.begin_write(); !b) return b;
  for (std::uint64_t offset = 0; offset < record_.file_size;) {
    auto n = store_.read_image(offset, buffers_.chunk);
    if (!n) return edgekit::fail(n.error());
    if (*n == 0) break;  // the stored image is short: the verification says so
    if (auto w = slots_.write(offset, buffers_.chunk.first(*n)); !w) return w;
    offset += *n;
  }
  if (auto f = slots_.finish_write(); !f) return f;
  // The verifier reads the target slot in `chunk`-sized parts, into `chunk`.
  struct Target {
    Slots* slots;
    Slot slot;
  } target_slot{&slots_, target};
  const ImageSource source{
      [](void* context, std::uint64_t offset, std::span<std::byte> out) noexcept {
        auto* t = static_cast<Target*>(context);
        return t->slots->read(t->slot, offset, out);
      },
      &target_slot};
  const auto signature = std::span<const std::byte>(record_.signature.data(),
                                                    record_.signature_length);
  if (auto v = verifier_.verify(source, record_.file_size, signature, buffers_.chunk); !v) {
    return v;
  }
  event("signature verified");
  auto n = slots_.read(target, 0, buffers_.chunk.first(kImageHeaderSize));
  if (!n) return edgekit::fail(n.error());
  auto header = read_image_header(buffers_.chunk.first(*n));
  if (!header) return edgekit::fail(header.error());
  if (auto c = check_image(*header, record_.file_size, config_.device_type,
                           ImageVersion::unpack(record_.from_version));
      !c) {
    return c;
  }
  record_.to_version = header->version.packed();
  return slots_.mark_pending();
}

// The update was installed: where the boot left it.
void Agent::after_boot(jobs::Runner& runner, BootStatus status) noexcept {
  switch (status.state) {
    case BootState::PendingTest:  // installed, not yet booted (the reboot did not happen)
      return reboot();
    case BootState::Normal: {
      auto running = slots_.active_version();
      if (record_.phase == AgentRecord::Phase::Installed && running &&
          running->packed() == record_.to_version) {
        return succeed(runner);  // confirmed before a reset that cut the report
      }
      return refuse(runner, "rejected: install lost", Errc::NoImage);
    }
    case BootState::RolledBack:
      return refuse(runner,
                  record_.phase == AgentRecord::Phase::SelfTestFailed ? "self-test failed"
                                                                      : "self-test not confirmed",
                  Errc::SlotStateInvalid);
    case BootState::Testing:
      break;
  }
  if (record_.phase == AgentRecord::Phase::Downloading) {
    // Pending was marked and the device reset before the record said so: it is installed.
    auto running = slots_.active_version();
    record_.phase = AgentRecord::Phase::Installed;
    record_.to_version = running ? running->packed() : 0;
  }
  const jobs::StatusDetail active[] = {{"self_test", "active"}, {"updatedBy", updated_by()}};
  if (auto p = runner.progress(active); !p) return;  // asked again at the next start
  event("self-test running");
  const Instant start = clock_.now();
  for (;;) {
    const SelfTest t = hooks_.self_test ? hooks_.self_test(hooks_.context) : SelfTest::Pass;
    if (t == SelfTest::Pass) {
      if (auto c = slots_.confirm(); !c) return refuse(runner, "rejected: confirm failed", c.error());
      return succeed(runner);
    }
    if (t == SelfTest::Fail) {
      record_.phase = AgentRecord::Phase::SelfTestFailed;
      if (auto s = save({}); !s) {
        // The image failed its test: it is rolled back whatever the store says. The reason goes
        // out now; only if that report is cut too does the next run, finding the record not
        // SelfTestFailed, report "self-test not confirmed" instead.
        port_failed("DownloadStore::save", s.error());
      }
      if (auto r = slots_.roll_back(); !r) {
        return refuse(runner, "rejected: roll back failed", r.error());
      }
      refuse(runner, "self-test failed", Errc::SlotStateInvalid);
      return reboot();  // into the old image
    }
    if (clock_.now() - start >= config_.self_test_timeout) {
      // The application never decided: the watchdog's reset. The bootloader rolls back.
      event("self-test not confirmed in time");
      return reboot();
    }
    if (!channel_.poll(config_.self_test_poll) && hooks_.wait) {
      hooks_.wait(hooks_.context, config_.self_test_poll);
    }
  }
}

void Agent::succeed(jobs::Runner& runner) noexcept {
  const auto v = ImageVersion::unpack(record_.to_version);
  const auto reason = Line(text_)
                          .put("accepted v")
                          .number(v.major)
                          .put(".")
                          .number(v.minor)
                          .put(".")
                          .number(v.build)
                          .view();
  const jobs::StatusDetail details[] = {{"reason", reason}, {"updatedBy", updated_by()}};
  last_error_ = Errc::Ok;
  if (auto f = runner.finish(jobs::JobStatus::Succeeded, details); !f) return;
  event("SUCCEEDED");
  forget();
}

void Agent::refuse(jobs::Runner& runner, std::string_view reason, Errc why) noexcept {
  last_error_ = why;
  // The reason may be text_ itself: copy it out of the way of updated_by().
  std::array<char, 96> copy{};
  const std::size_t n = std::min(reason.size(), copy.size());
  std::memcpy(copy.data(), reason.data(), n);
  const jobs::StatusDetail details[] = {{"reason", {copy.data(), n}},
                                        {"updatedBy", updated_by()}};
  const auto shown = std::span<const jobs::StatusDetail>(details, record_.magic ? 2 : 1);
  std::array<char, 128> line{};
  event(Line(line).put("FAILED: ").put({copy.data(), n}).view());
  if (auto f = runner.finish(jobs::JobStatus::Failed, shown); !f) return;  // kept: sent again
  // Reported: a rolled-back update is acknowledged. Slots that cannot acknowledge stay RolledBack,
  // which is safe (the old image runs; the next job acknowledges again before it downloads).
  if (auto s = slots_.status(); !s) {
    port_failed("Slots::status", s.error());
  } else if (s->state == BootState::RolledBack) {
    if (auto a = slots_.acknowledge(); !a) port_failed("Slots::acknowledge", a.error());
  }
  forget();
}

}  // namespace edgekit::ota
