// FileRecordStore (file_record_store.hpp): the job record in a checksummed file, replaced
// atomically.
#include "edgekit/jobs/file_record_store.hpp"

#include <cstring>

#include "edgekit/core/crc32.hpp"

namespace edgekit::jobs {
namespace {

// Layout (little endian):
//   [0..3] "EKJR"  [4] format  [5] job id length  [6] status  [7] reason
//   [8..15] execution number  [16..23] version  [24..27] step  [28..91] job id, zero-padded
//   [92..95] CRC-32 of bytes 0..91
constexpr std::byte kMagic[4] = {std::byte{'E'}, std::byte{'K'}, std::byte{'J'}, std::byte{'R'}};
constexpr std::uint8_t kFormat = 1;
constexpr std::size_t kJobIdAt = 28;
constexpr std::size_t kCrcAt = kJobIdAt + kMaxJobIdLength;
static_assert(kCrcAt + 4 == kRecordFileSize);

void put(std::byte* p, std::uint64_t v, int bytes) noexcept {
  for (int i = 0; i < bytes; ++i) p[i] = std::byte((v >> (8 * i)) & 0xFF);
}
std::uint64_t get(const std::byte* p, int bytes) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::to_integer<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

// The statuses a record holds: IN_PROGRESS while the handler runs, then an outcome a device
// may decide.
bool recordable(std::uint8_t status) noexcept {
  const auto s = static_cast<JobStatus>(status);
  return s == JobStatus::InProgress || s == JobStatus::Succeeded || s == JobStatus::Failed ||
         s == JobStatus::Rejected;
}

}  // namespace

FileRecordStore::FileRecordStore(std::string_view path) noexcept {
  path_valid_ = !path.empty() && path.size() <= path_.size();
  if (path_valid_) {
    std::memcpy(path_.data(), path.data(), path.size());
    path_length_ = path.size();
  }
}

std::array<std::byte, kRecordFileSize> FileRecordStore::encode(const JobRecord& r) noexcept {
  std::array<std::byte, kRecordFileSize> f{};
  std::memcpy(f.data(), kMagic, sizeof kMagic);
  f[4] = std::byte{kFormat};
  const std::size_t id_length = r.job_id_length <= kMaxJobIdLength ? r.job_id_length : 0;
  f[5] = std::byte{static_cast<std::uint8_t>(id_length)};
  f[6] = std::byte{static_cast<std::uint8_t>(r.status)};
  f[7] = std::byte{static_cast<std::uint8_t>(r.reason)};
  put(&f[8], static_cast<std::uint64_t>(r.execution_number), 8);
  put(&f[16], r.version, 8);
  put(&f[24], r.step, 4);
  std::memcpy(&f[kJobIdAt], r.job_id.data(), id_length);
  put(&f[kCrcAt], crc32(std::span<const std::byte>(f.data(), kCrcAt)), 4);
  return f;
}

RecordLoad FileRecordStore::load(JobRecord& out) noexcept {
  if (!path_valid_) {
    problem_ = Problem::InvalidPath;
    // Nothing can have been stored through this store; but a record may exist elsewhere that
    // cannot be read: the executor must not assume that no job ran.
    return RecordLoad::Corrupt;
  }
  // Exactly a record: a longer file reads as TooLarge.
  std::array<std::byte, kRecordFileSize> f{};
  const file::ReadResult r = file::read_whole(path(), f);
  problem_ = Problem::None;
  switch (r.status) {
    case file::Status::NotFound:
      return RecordLoad::None;
    case file::Status::Ok:
      break;
    case file::Status::TooLarge:
      problem_ = Problem::WrongSize;
      return RecordLoad::Corrupt;
    case file::Status::InvalidPath:
      problem_ = Problem::InvalidPath;
      return RecordLoad::Corrupt;
    case file::Status::Failed:
      problem_ = Problem::ReadFailed;
      return RecordLoad::Corrupt;
  }
  return decode(std::span<const std::byte>(f.data(), r.size), out, problem_);
}

RecordLoad FileRecordStore::decode(std::span<const std::byte> f, JobRecord& out,
                                   Problem& why) noexcept {
  why = Problem::None;
  if (f.size() != kRecordFileSize) {
    why = Problem::WrongSize;
    return RecordLoad::Corrupt;
  }
  if (std::memcmp(f.data(), kMagic, sizeof kMagic) != 0 || f[4] != std::byte{kFormat}) {
    why = Problem::BadHeader;
    return RecordLoad::Corrupt;
  }
  if (get(&f[kCrcAt], 4) != crc32(f.first(kCrcAt))) {
    why = Problem::BadChecksum;
    return RecordLoad::Corrupt;
  }
  JobRecord rec;
  rec.job_id_length = std::to_integer<std::uint8_t>(f[5]);
  const auto status = std::to_integer<std::uint8_t>(f[6]);
  const auto reason = std::to_integer<std::uint8_t>(f[7]);
  if (rec.job_id_length == 0 || rec.job_id_length > kMaxJobIdLength || !recordable(status) ||
      reason > static_cast<std::uint8_t>(OutcomeReason::UnsupportedOperation)) {
    why = Problem::BadField;
    return RecordLoad::Corrupt;
  }
  std::memcpy(rec.job_id.data(), &f[kJobIdAt], rec.job_id_length);
  bool padding_zero = true;
  for (std::size_t i = kJobIdAt + rec.job_id_length; i < kCrcAt; ++i) {
    padding_zero = padding_zero && f[i] == std::byte{0};
  }
  if (!padding_zero || !valid_job_id(rec.job())) {
    why = Problem::BadField;
    return RecordLoad::Corrupt;
  }
  rec.status = static_cast<JobStatus>(status);
  rec.reason = static_cast<OutcomeReason>(reason);
  rec.execution_number = static_cast<std::int64_t>(get(&f[8], 8));
  rec.version = get(&f[16], 8);
  rec.step = static_cast<std::uint32_t>(get(&f[24], 4));
  out = rec;
  return RecordLoad::Loaded;
}

bool FileRecordStore::save(const JobRecord& record) noexcept {
  if (!path_valid_) {
    problem_ = Problem::InvalidPath;
    return false;
  }
  const auto f = encode(record);
  const bool ok = file::write_atomically(path(), f) == file::Status::Ok;
  problem_ = ok ? Problem::None : Problem::WriteFailed;
  return ok;
}

bool FileRecordStore::clear() noexcept {
  if (!path_valid_) {
    problem_ = Problem::InvalidPath;
    return false;
  }
  const bool ok = file::remove_durably(path()) == file::Status::Ok;
  problem_ = ok ? Problem::None : Problem::RemoveFailed;
  return ok;
}

const char* to_string(FileRecordStore::Problem p) noexcept {
  using P = FileRecordStore::Problem;
  switch (p) {
    case P::None:
      return "None";
    case P::InvalidPath:
      return "InvalidPath";
    case P::ReadFailed:
      return "ReadFailed";
    case P::WrongSize:
      return "WrongSize";
    case P::BadHeader:
      return "BadHeader";
    case P::BadChecksum:
      return "BadChecksum";
    case P::BadField:
      return "BadField";
    case P::WriteFailed:
      return "WriteFailed";
    case P::RemoveFailed:
      return "RemoveFailed";
  }
  return "?";
}

}  // namespace edgekit::jobs
