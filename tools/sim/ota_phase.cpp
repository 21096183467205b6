#include "ota_phase.hpp"

#include <edgekit/jobs/executor.hpp>
#include <edgekit/jobs/runner.hpp>
#include <edgekit/ota/agent.hpp>
#include <edgekit/ota/image.hpp>
#include <edgekit/ota/signature.hpp>
#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <random>

#include "edgekit/json/json.hpp"

namespace edgekit::sim {
namespace {

using nlohmann::json;
using ota::Errc;

constexpr std::string_view kVersion = "2.0.0";
constexpr ota::ImageVersion kUpdateVersion{2, 0, 0};
constexpr ota::ImageVersion kFactoryVersion{1, 0, 0};
constexpr Duration kCall{30000};      // a jobs request (fleetd may be busy with the whole fleet)
constexpr Duration kBlockCall{10000};  // one GetStream; the agent sends it up to 3 times
constexpr int kMaxBoots = 4;          // the update needs 2; more is a loop, ended as a failure

// The agent's buffers, sized for this phase (agent.hpp, AgentBuffers): a data message is at most
// the device's receive buffer (2 KB, fleet.cpp), the chunk is the unit of the slot copy and of
// the verifier's reads.
constexpr std::size_t kRequest = 512, kReply = 2048, kWindow = 16, kChunk = 1024, kDocument = 1024;
// The runner's (as the jobs phase's).
constexpr std::size_t kJobsRequest = 1024, kJobsReply = 4096, kJobsDocument = 1024;

std::string http_failure(const httplib::Result& r) {
  return r ? std::to_string(r->status) + " " + r->body.substr(0, 300)
           : httplib::to_string(r.error());
}

std::string base64(const std::vector<std::byte>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::shared_ptr<const std::vector<std::byte>> image_of(ota::ImageVersion v, std::size_t size) {
  auto bytes = std::make_shared<std::vector<std::byte>>(size);
  ota::ImageHeader h;
  h.version = v;
  h.device_type = kOtaDeviceType;
  h.payload_size = static_cast<std::uint32_t>(size - ota::kImageHeaderSize);
  (void)ota::write_image_header(h, *bytes);  // valid by construction (size >= 64, type valid)
  std::mt19937 random(20240601);
  for (std::size_t i = ota::kImageHeaderSize; i < size; ++i) {
    (*bytes)[i] = static_cast<std::byte>(random() & 0xff);
  }
  return bytes;
}

}  // namespace

// --- the operator ---------------------------------------------------------------------------

OtaRelease make_ota_images(const OtaSpec& spec) {
  OtaRelease r;
  r.image = image_of(kUpdateVersion, std::max<std::size_t>(spec.image_bytes, ota::kImageHeaderSize + 1));
  r.factory = image_of(kFactoryVersion, ota::kImageHeaderSize);
  return r;
}

std::shared_ptr<EVP_PKEY> public_key_of(std::string_view pem, std::string& error) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, X509_free);
  ERR_clear_error();
  if (!cert) {
    error = "no PEM certificate";
    return nullptr;
  }
  std::shared_ptr<EVP_PKEY> key(X509_get_pubkey(cert.get()), EVP_PKEY_free);
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) {
    error = "the certificate's key is not an EC key";
    return nullptr;
  }
  return key;
}

std::string prepare_ota_release(const std::string& admin_url, const std::string& admin_token,
                                const std::string& prefix, OtaRelease& release) {
  httplib::Client admin(admin_url);
  admin.set_read_timeout(120, 0);
  const httplib::Headers headers{{"Authorization", "Bearer " + admin_token}};
  // A name of this run's own: images are kept by fleetd, and a version is uploaded once.
  const std::string stamp = std::to_string(std::time(nullptr));
  release.image_name = prefix + "-ota-" + stamp;
  release.update_id = prefix + "-ota-" + stamp;
  const json upload{{"name", release.image_name}, {"version", kVersion},
                    {"deviceType", kOtaDeviceType}, {"image", base64(*release.image)}};
  auto up = admin.Post("/admin/v1/ota/images", headers, upload.dump(), "application/json");
  if (!up || up->status / 100 != 2) return "upload: " + http_failure(up);
  auto sign = admin.Post("/admin/v1/ota/images/" + release.image_name + "/" + std::string(kVersion) +
                             "/sign",
                         headers, "", "application/json");
  if (!sign || sign->status / 100 != 2) return "sign: " + http_failure(sign);
  const json signed_image = json::parse(sign->body, nullptr, false);
  if (!signed_image.is_object() || !signed_image.contains("certificate") ||
      !signed_image["certificate"].is_string()) {
    return "sign: no certificate in the answer";
  }
  std::string error;
  release.signer = public_key_of(signed_image["certificate"].get<std::string>(), error);
  if (!release.signer) return "the signer's certificate: " + error;
  return {};
}

std::string create_ota_update(const std::string& admin_url, const std::string& admin_token,
                              const OtaSpec& spec, const OtaRelease& release,
                              std::span<const std::string> things) {
  json body{{"otaUpdateId", release.update_id},
            {"imageName", release.image_name},
            {"imageVersion", kVersion},
            {"protocols", {"MQTT"}},
            {"blockSize", spec.block_bytes}};
  if (spec.group.empty()) {
    body["targets"] = {{"things", things}};
  } else {
    body["targets"] = {{"thingGroups", {spec.group}}};
  }
  if (spec.rollout_per_minute > 0) {
    body["jobExecutionsRolloutConfig"] = {
        {"maximumPerMinute", static_cast<std::int64_t>(spec.rollout_per_minute)}};
  }
  httplib::Client admin(admin_url);
  admin.set_read_timeout(120, 0);
  const httplib::Headers headers{{"Authorization", "Bearer " + admin_token}};
  auto r = admin.Post("/admin/v1/ota/updates", headers, body.dump(), "application/json");
  if (!r || r->status / 100 != 2) return "create update: " + http_failure(r);
  return {};
}

// --- SparseImage ----------------------------------------------------------------------------

void SparseImage::reset(std::shared_ptr<const std::vector<std::byte>> reference) {
  reference_ = std::move(reference);
  same_.clear();
  same_.shrink_to_fit();
  own_.clear();
  size_ = 0;
}

void SparseImage::write(std::uint64_t offset, std::span<const std::byte> data) {
  if (data.empty()) return;
  size_ = std::max<std::uint64_t>(size_, offset + data.size());
  const std::size_t grains = static_cast<std::size_t>((size_ + kGrain - 1) / kGrain);
  if (same_.empty() && reference_) {
    // The bits for the whole reference at once: growing by doubling would hold up to twice.
    same_.reserve((reference_->size() + kGrain * 8 - 1) / (kGrain * 8));
  }
  if (same_.size() < (grains + 7) / 8) same_.resize((grains + 7) / 8);
  const std::uint64_t ref_size = reference_ ? reference_->size() : 0;
  for (std::size_t pos = 0; pos < data.size();) {
    const std::uint64_t at = offset + pos;
    const std::uint64_t g = at / kGrain;
    const std::size_t in = static_cast<std::size_t>(at % kGrain);
    const std::size_t n = std::min(kGrain - in, data.size() - pos);
    const auto piece = data.subspan(pos, n);
    const std::uint8_t bit = static_cast<std::uint8_t>(1u << (g % 8));
    // The whole grain (or all of it that the reference has) written with the reference's bytes.
    const bool whole = in == 0 && (n == kGrain || at + n == ref_size);
    if (whole && at + n <= ref_size &&
        std::memcmp(reference_->data() + at, piece.data(), n) == 0) {
      same_[g / 8] |= bit;
      own_.erase(g);
    } else {
      auto [it, fresh] = own_.try_emplace(g);
      Own& own = it->second;
      if (fresh && (same_[g / 8] & bit) != 0) {
        // It matched before: the reference's bytes of the grain are what was written then.
        const std::uint64_t start = g * kGrain;
        const std::size_t have = static_cast<std::size_t>(std::min<std::uint64_t>(kGrain, ref_size - start));
        std::memcpy(own.bytes.data(), reference_->data() + start, have);
        own.written = have == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << have) - 1;
      }
      same_[g / 8] &= static_cast<std::uint8_t>(~bit);
      std::memcpy(own.bytes.data() + in, piece.data(), n);
      own.written |= (n == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << n) - 1)) << in;
    }
    pos += n;
  }
}

std::size_t SparseImage::read(std::uint64_t offset, std::span<std::byte> out) const {
  if (offset >= size_) return 0;
  const std::size_t total = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), size_ - offset));
  const std::uint64_t ref_size = reference_ ? reference_->size() : 0;
  for (std::size_t pos = 0; pos < total;) {
    const std::uint64_t at = offset + pos;
    const std::uint64_t g = at / kGrain;
    const std::size_t in = static_cast<std::size_t>(at % kGrain);
    const std::size_t n = std::min(kGrain - in, total - pos);
    std::byte* to = out.data() + pos;
    std::memset(to, 0, n);  // never written: a hole reads as 0
    if (g / 8 < same_.size() && (same_[g / 8] & (1u << (g % 8))) != 0) {
      if (at < ref_size) {
        std::memcpy(to, reference_->data() + at, std::min<std::uint64_t>(n, ref_size - at));
      }
    } else if (auto it = own_.find(g); it != own_.end()) {
      for (std::size_t i = 0; i < n; ++i) {
        if ((it->second.written >> (in + i)) & 1u) to[i] = it->second.bytes[in + i];
      }
    }
    pos += n;
  }
  return total;
}

std::size_t SparseImage::private_grains() const noexcept { return own_.size(); }

std::size_t SparseImage::memory_bytes() const noexcept {
  // A map node: the value and about four pointers' worth of tree links and colour.
  return same_.capacity() + own_.size() * (sizeof(std::pair<const std::uint64_t, Own>) + 32);
}

// --- MemoryDownloadStore --------------------------------------------------------------------

MemoryDownloadStore::MemoryDownloadStore(std::shared_ptr<const std::vector<std::byte>> reference)
    : reference_(std::move(reference)) {
  image_.reset(reference_);
}

edgekit::Result<void, Errc> MemoryDownloadStore::save(std::span<const std::uint8_t> record,
                                             std::span<const std::uint8_t> bitmap) {
  if (record.size() > ota::kMaxDownloadRecordSize) return fail(Errc::InvalidArgument);
  record_.assign(record.begin(), record.end());
  bitmap_.assign(bitmap.begin(), bitmap.end());
  saved_ = true;
  return {};
}

edgekit::Result<ota::StoredDownload, Errc> MemoryDownloadStore::load(std::span<std::uint8_t> record,
                                                            std::span<std::uint8_t> bitmap) {
  if (!saved_) return fail(Errc::NoDownload);
  if (record.size() < record_.size() || bitmap.size() < bitmap_.size()) {
    return fail(Errc::BufferTooSmall);
  }
  std::copy(record_.begin(), record_.end(), record.begin());
  std::copy(bitmap_.begin(), bitmap_.end(), bitmap.begin());
  return ota::StoredDownload{record_.size(), bitmap_.size()};
}

edgekit::Result<void, Errc> MemoryDownloadStore::write_block(std::uint64_t offset,
                                                    std::span<const std::byte> data) {
  image_.write(offset, data);
  return {};
}

edgekit::Result<std::size_t, Errc> MemoryDownloadStore::read_image(std::uint64_t offset,
                                                          std::span<std::byte> out) {
  return image_.read(offset, out);
}

edgekit::Result<void, Errc> MemoryDownloadStore::clear() {
  saved_ = false;
  record_ = {};
  bitmap_ = {};
  image_.reset(reference_);
  return {};
}

// --- MemorySlots ----------------------------------------------------------------------------

MemorySlots::MemorySlots(std::shared_ptr<const std::vector<std::byte>> factory,
                         std::shared_ptr<const std::vector<std::byte>> update)
    : update_(std::move(update)) {
  slots_[0].reset(factory);
  if (factory) slots_[0].write(0, *factory);
}

edgekit::Result<ota::BootStatus, Errc> MemorySlots::status() { return status_; }

edgekit::Result<ota::BootStatus, Errc> MemorySlots::boot() {
  using ota::BootState;
  if (status_.state == BootState::PendingTest) {
    status_ = {ota::other(status_.active), BootState::Testing};
  } else if (status_.state == BootState::Testing) {
    status_ = {ota::other(status_.active), BootState::RolledBack};
  }
  writing_ = finished_ = false;  // what a reset forgets: an unfinished write is abandoned
  return status_;
}

edgekit::Result<void, Errc> MemorySlots::begin_write() {
  using ota::BootState;
  if (status_.state == BootState::PendingTest || status_.state == BootState::Testing) {
    return fail(Errc::SlotStateInvalid);
  }
  slots_[static_cast<std::size_t>(ota::other(status_.active))].reset(update_);
  writing_ = true;
  finished_ = false;
  return {};
}

edgekit::Result<void, Errc> MemorySlots::write(std::uint64_t offset, std::span<const std::byte> data) {
  if (!writing_) return fail(Errc::SlotStateInvalid);
  slots_[static_cast<std::size_t>(ota::other(status_.active))].write(offset, data);
  return {};
}

edgekit::Result<void, Errc> MemorySlots::finish_write() {
  if (!writing_) return fail(Errc::SlotStateInvalid);
  writing_ = false;
  finished_ = true;
  return {};
}

edgekit::Result<void, Errc> MemorySlots::mark_pending() {
  using ota::BootState;
  if (!finished_) return fail(Errc::NoImage);
  if (status_.state != BootState::Normal && status_.state != BootState::RolledBack) {
    return fail(Errc::SlotStateInvalid);
  }
  status_.state = BootState::PendingTest;
  finished_ = false;
  return {};
}

edgekit::Result<void, Errc> MemorySlots::confirm() {
  if (status_.state != ota::BootState::Testing) return fail(Errc::SlotStateInvalid);
  status_.state = ota::BootState::Normal;
  return {};
}

edgekit::Result<void, Errc> MemorySlots::roll_back() {
  using ota::BootState;
  if (status_.state == BootState::Testing) {
    status_ = {ota::other(status_.active), BootState::RolledBack};
  } else if (status_.state == BootState::PendingTest) {
    status_.state = BootState::RolledBack;
  } else {
    return fail(Errc::SlotStateInvalid);
  }
  return {};
}

edgekit::Result<void, Errc> MemorySlots::acknowledge() {
  if (status_.state != ota::BootState::RolledBack) return fail(Errc::SlotStateInvalid);
  status_.state = ota::BootState::Normal;
  return {};
}

edgekit::Result<std::size_t, Errc> MemorySlots::read(ota::Slot slot, std::uint64_t offset,
                                            std::span<std::byte> out) {
  const SparseImage& image = slots_[static_cast<std::size_t>(slot)];
  if (image.size() == 0) return fail(Errc::NoImage);
  return image.read(offset, out);
}

// --- OpenSslImageVerifier -------------------------------------------------------------------

edgekit::Result<void, Errc> OpenSslImageVerifier::verify(ota::ImageSource source, std::uint64_t size,
                                                std::span<const std::byte> signature,
                                                std::span<std::byte> buffer) noexcept {
  if (buffer.empty() || source.read == nullptr || !key_) return fail(Errc::InvalidArgument);
  std::array<std::byte, ota::kRawSignatureSize> raw{};
  if (auto s = ota::raw_p256_signature(signature, raw); !s) return fail(s.error());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!md || EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr) != 1) {
    ERR_clear_error();
    return fail(Errc::TokenFailed);
  }
  for (std::uint64_t at = 0; at < size;) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size - at));
    auto n = source.read(source.context, at, buffer.first(want));
    if (!n) return fail(n.error());
    if (*n == 0) return fail(Errc::ImageTruncated);
    if (EVP_DigestUpdate(md.get(), buffer.data(), *n) != 1) {
      ERR_clear_error();
      return fail(Errc::TokenFailed);
    }
    at += *n;
  }
  unsigned char digest[32];
  unsigned int digest_length = 0;
  if (EVP_DigestFinal_ex(md.get(), digest, &digest_length) != 1 || digest_length != 32) {
    ERR_clear_error();
    return fail(Errc::TokenFailed);
  }
  // OpenSSL verifies DER: the raw r || s made into an ECDSA-Sig-Value.
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ERR_clear_error();
    return fail(Errc::TokenFailed);
  }
  unsigned char der[80];
  unsigned char* p = der;
  const int der_length = i2d_ECDSA_SIG(sig.get(), nullptr) <= static_cast<int>(sizeof der)
                             ? i2d_ECDSA_SIG(sig.get(), &p)
                             : -1;
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new(key_.get(), nullptr), EVP_PKEY_CTX_free);
  if (der_length <= 0 || !ctx || EVP_PKEY_verify_init(ctx.get()) != 1) {
    ERR_clear_error();
    return fail(Errc::TokenFailed);
  }
  const int verified = EVP_PKEY_verify(ctx.get(), der, static_cast<std::size_t>(der_length),
                                       digest, sizeof digest);
  ERR_clear_error();
  if (verified == 1) return {};
  return fail(verified == 0 ? Errc::SignatureInvalid : Errc::TokenFailed);
}

// --- one device -----------------------------------------------------------------------------

namespace {

// What the agent's hooks see (their context).
struct AgentContext {
  const OtaDeviceHooks* hooks;
  Counter* bytes;
  std::uint64_t file_size;
  std::uint32_t block_bytes;
  OtaDeviceOutcome* outcome;
  bool reboot_asked = false;
  bool succeeded = false;  // the agent's "SUCCEEDED": the runner's update was accepted
  std::string failed;  // the agent's "FAILED: <reason>"
};

std::size_t buffer_bytes(const OtaSpec& spec) {
  const std::size_t blocks = (spec.image_bytes + spec.block_bytes - 1) / spec.block_bytes;
  return kRequest + kReply + spec.block_bytes + (blocks + 7) / 8 + kWindow + kChunk + kDocument +
         kJobsRequest + kJobsReply + kJobsDocument;
}

}  // namespace

std::size_t ota_device_bytes(const OtaSpec& spec) {
  return sizeof(ota::Agent) + sizeof(jobs::Runner) + sizeof(jobs::RamRecordSlot) +
         sizeof(MemoryDownloadStore) + sizeof(MemorySlots) + sizeof(OpenSslImageVerifier) +
         buffer_bytes(spec);
}

OtaDeviceOutcome run_ota_device(reqres::Channel& channel, std::string_view thing,
                                std::uint32_t index, const OtaSpec& spec, const OtaRelease& release,
                                Counter& ota_bytes, std::chrono::steady_clock::time_point deadline,
                                const OtaDeviceHooks& hooks) {
  OtaDeviceOutcome outcome;
  // The device's persistent storage (it outlives the simulated reboot) and its buffers, on the
  // heap: a fiber's stack is 64 KB.
  auto store = std::make_unique<MemoryDownloadStore>(release.image);
  auto slots = std::make_unique<MemorySlots>(release.factory, release.image);
  OpenSslImageVerifier verifier(release.signer);
  auto record_slot = std::make_unique<jobs::RamRecordSlot>();
  jobs::RamRecordStore records(*record_slot);
  edgekit::SteadyClock clock;
  const std::size_t blocks = (spec.image_bytes + spec.block_bytes - 1) / spec.block_bytes;
  std::vector<std::byte> memory(buffer_bytes(spec));
  std::size_t used = 0;
  auto take = [&](std::size_t n) {
    std::span<std::byte> s(memory.data() + used, n);
    used += n;
    return s;
  };
  auto as_u8 = [](std::span<std::byte> s) {
    return std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(s.data()), s.size());
  };
  auto as_char = [](std::span<std::byte> s) {
    return std::span<char>(reinterpret_cast<char*>(s.data()), s.size());
  };
  ota::AgentBuffers buffers;
  buffers.request = as_u8(take(kRequest));
  buffers.reply = as_u8(take(kReply));
  buffers.block = take(spec.block_bytes);
  buffers.bitmap = as_u8(take((blocks + 7) / 8));
  buffers.window = as_u8(take(kWindow));
  buffers.chunk = take(kChunk);
  buffers.document = as_char(take(kDocument));
  const jobs::RunnerBuffers runner_buffers{as_char(take(kJobsRequest)), as_char(take(kJobsReply)),
                                           as_char(take(kJobsDocument))};

  AgentContext context{&hooks, &ota_bytes, release.image->size(), spec.block_bytes, &outcome,
                       false, false, {}};
  ota::AgentHooks agent_hooks;
  agent_hooks.context = &context;
  agent_hooks.reboot = [](void* c) { static_cast<AgentContext*>(c)->reboot_asked = true; };
  agent_hooks.on_block = [](void* c, std::uint32_t block, bool fresh) {
    auto* ctx = static_cast<AgentContext*>(c);
    if (!fresh) {
      ++ctx->outcome->duplicates;
      return;
    }
    ++ctx->outcome->blocks;
    const std::uint64_t start = std::uint64_t{block} * ctx->block_bytes;
    ctx->bytes->add(std::min<std::uint64_t>(ctx->block_bytes, ctx->file_size - start));
  };
  agent_hooks.on_event = [](void* c, std::string_view what) {
    auto* ctx = static_cast<AgentContext*>(c);
    if (what == "SUCCEEDED") ctx->succeeded = true;
    if (what.starts_with("FAILED: ")) ctx->failed = std::string(what.substr(8));
  };
  agent_hooks.wait = [](void* c, Duration d) { static_cast<AgentContext*>(c)->hooks->sleep(d); };

  ota::AgentConfig config;
  config.thing = thing;
  config.device_type = kOtaDeviceType;
  config.format = spec.json ? ota::Format::Json : ota::Format::Cbor;
  config.block_size = spec.block_bytes;
  config.request_timeout = kBlockCall;

  for (int boot = 0; boot < kMaxBoots; ++boot) {
    auto agent = std::make_unique<ota::Agent>(channel, *store, *slots, verifier, clock, config,
                                              buffers, agent_hooks);
    if (auto b = agent->boot(); !b) {
      outcome.cause = "ota: boot";
      outcome.detail = ota::to_string(b.error());
      break;
    }
    const jobs::JobHandler handlers[] = {agent->handler()};
    jobs::RunnerConfig rc;
    rc.thing = thing;
    rc.handlers = handlers;
    rc.token_prefix = "ota";
    rc.token_seed = index * kMaxBoots + static_cast<std::uint32_t>(boot);
    rc.request_timeout = kCall;
    auto runner = std::make_unique<jobs::Runner>(channel, records, clock, rc, runner_buffers);
    auto started = runner->start(kCall);
    if (boot == 0 && hooks.ready) hooks.ready();
    if (!started) {
      outcome.cause = "ota: jobs start";
      outcome.detail = jobs::to_string(started.error());
      break;
    }
    // Until the agent reports an outcome or asks for a reboot. The agent's SUCCEEDED is the
    // runner's accepted update; a FAILED carries the agent's reason.
    while (!context.succeeded && context.failed.empty() && !context.reboot_asked &&
           std::chrono::steady_clock::now() < deadline && hooks.keep_going()) {
      auto r = runner->run_for(Duration{500});
      if (!r && r.error() != jobs::Errc::Timeout) {
        outcome.cause = "ota: jobs run";
        outcome.detail = jobs::to_string(r.error());
        break;
      }
    }
    if (context.succeeded || !outcome.cause.empty()) break;
    if (!context.failed.empty()) {
      outcome.cause = "ota: FAILED: " + context.failed;
      outcome.detail = "agent error " + std::string(ota::to_string(agent->last_error()));
      break;
    }
    if (!context.reboot_asked) {
      if (std::chrono::steady_clock::now() >= deadline) {
        outcome.cause = agent->blocks_stored() > 0 || boot > 0
                            ? "ota: not SUCCEEDED before the phase's timeout"
                            : "ota: no update before the phase's timeout";
        outcome.detail = std::to_string(outcome.blocks) + " of " + std::to_string(blocks) +
                         " blocks, " + std::to_string(boot) + " reboots";
      }
      break;  // stopped, or timed out
    }
    // The reset: the runner and the agent are gone (their RAM), the ports and the runner's
    // record stay (the device's flash); the connection drops and comes back clean.
    context.reboot_asked = false;
    runner.reset();
    agent.reset();
    outcome.rebooted = true;
    if (!hooks.reboot()) {
      outcome.cause = "ota: no reconnect after the reboot";
      break;
    }
  }
  outcome.succeeded = context.succeeded;
  if (outcome.succeeded) {
    // What runs now is slot B: it must be the uploaded file, byte for byte.
    const SparseImage& b = slots->image(ota::Slot::B);
    std::array<std::byte, kChunk> chunk{};
    outcome.image_matches = b.size() == release.image->size();
    for (std::uint64_t at = 0; outcome.image_matches && at < b.size(); at += kChunk) {
      const std::size_t n = b.read(at, chunk);
      outcome.image_matches = std::memcmp(chunk.data(), release.image->data() + at, n) == 0;
    }
  }
  outcome.port_bytes = store->image().memory_bytes() + slots->image(ota::Slot::A).memory_bytes() +
                       slots->image(ota::Slot::B).memory_bytes();
  return outcome;
}

}  // namespace edgekit::sim
