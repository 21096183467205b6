#pragma once
// A file system for the tests that cuts the power after a given number of mutating operations
// (write, truncate, sync, rename, remove): the cut operation and every later one fail and do
// nothing, and every file written or truncated since its last fsync goes back to what it held
// at that fsync (what a real power cut does to data still in the page cache). A rename of a
// file whose data was never synced leaves the target with the source's last synced content
// (the classic empty-file-after-rename of a missing fsync). A temporary directory per test.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "edgekit/ota/file_ports.hpp"

namespace edgekit::ota::test {

class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "edgekit-ota-XXXXXX").string();
    if (::mkdtemp(t.data()) != nullptr) path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class PowerCutFilesystem final : public Filesystem {
 public:
  // `operations`: how many mutating operations happen before the power is cut.
  explicit PowerCutFilesystem(std::uint32_t operations) : budget_(operations) {}

  [[nodiscard]] bool cut() const { return dead_; }
  [[nodiscard]] std::uint32_t operations_done() const { return done_; }

  bool write_at(const std::string& path, std::uint64_t offset,
                std::span<const std::byte> data) override {
    if (!step()) return false;
    remember(path);
    return real().write_at(path, offset, data);
  }
  bool truncate(const std::string& path) override {
    if (!step()) return false;
    remember(path);
    return real().truncate(path);
  }
  // fsync and the directory fsync after a rename are modelled (what they make durable is what
  // `power_cut` keeps), not made: the simulation needs no disk flush, and the tests stay fast.
  bool sync(const std::string& path) override {
    if (!step()) return false;
    if (!std::filesystem::exists(path)) return false;
    unsynced_.erase(path);
    return true;
  }
  bool replace(const std::string& from, const std::string& to, const std::string&) override {
    if (!step()) return false;
    std::error_code ec;
    std::filesystem::rename(from, to, ec);
    if (ec) return false;
    unsynced_.erase(to);
    if (auto it = unsynced_.find(from); it != unsynced_.end()) {
      unsynced_[to] = it->second;  // the name is durable, the data is not
      unsynced_.erase(it);
    }
    return true;
  }
  bool remove(const std::string& path) override {
    if (!step()) return false;
    unsynced_.erase(path);
    return real().remove(path);
  }
  std::optional<std::size_t> read_at(const std::string& path, std::uint64_t offset,
                                     std::span<std::byte> out) override {
    if (dead_) return std::nullopt;
    return real().read_at(path, offset, out);
  }
  std::optional<std::uint64_t> size(const std::string& path) override {
    if (dead_) return std::nullopt;
    return real().size(path);
  }

 private:
  static Filesystem& real() { return posix_filesystem(); }

  bool step() {
    if (dead_) return false;
    if (budget_ == 0) {
      power_cut();
      return false;
    }
    --budget_;
    ++done_;
    return true;
  }
  // The content at the last sync, kept before the first unsynced change.
  void remember(const std::string& path) {
    if (unsynced_.count(path) != 0) return;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      unsynced_[path] = std::nullopt;
      return;
    }
    unsynced_[path] = std::vector<char>((std::istreambuf_iterator<char>(in)), {});
  }
  void power_cut() {
    dead_ = true;
    for (const auto& [path, content] : unsynced_) {
      if (!content) {
        std::filesystem::remove(path);
        continue;
      }
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(content->data(), static_cast<std::streamsize>(content->size()));
    }
    unsynced_.clear();
  }

  std::uint32_t budget_;
  std::uint32_t done_ = 0;
  bool dead_ = false;
  std::map<std::string, std::optional<std::vector<char>>> unsynced_;
};

}  // namespace edgekit::ota::test
