#pragma once
/// \file
/// `FileSessionStore`: a `SessionStore` in a POSIX directory that survives a crash or power loss
/// at any point (hosted builds only; target `edgekit::mqtt_file_store`).
///
/// Layout: one file per record — `meta`, `p-<packet id>` (outgoing publish), `r-<packet id>`
/// (that publish was released: PUBREC received, awaiting PUBCOMP; a small marker so the publish
/// itself is never rewritten), `q-<packet id>` (inbound QoS 2 id). Each file is a 24-byte header
/// (magic "EKS1", record kind, state, protocol version, packet id, sequence, body length), the
/// body (the encoded PUBLISH, or the meta fields), and a CRC-32 of everything before it.
/// Every write goes to `<name>.tmp`, is fsync'ed, renamed over `<name>`, and the directory is
/// fsync'ed; a removal unlinks and fsyncs the directory. So after a crash a record is either its
/// old or its new content, never a mix. `load` deletes leftover `*.tmp` files (writes a crash
/// interrupted) and checks every record: a truncated or corrupted file (CRC, length, magic) is
/// reported through `SessionStoreVisitor::on_corrupt`, renamed to `<name>.bad` for inspection,
/// and never loaded. A publish the session cannot restore (`set_aside_publish`) is renamed the
/// same way. A `.bad` file is never replaced: when `<name>.bad` exists already the next is
/// `<name>.2.bad`, then `.3.bad`, ... They stay until the application removes them (no call of
/// the store deletes or reads them), so a message that could not be restored can still be
/// recovered by hand; a record that cannot be renamed makes `load` fail (PersistenceFailed)
/// rather than being deleted. A record file that someone else deletes leaves no trace: the
/// store cannot tell it from one that was never written.
///
/// Memory: no heap use by the store itself (the C library's directory functions may allocate).
/// `load` reads records into the caller's `load_buffer`; the views it hands out stay valid until
/// the next `load` or the store's destruction.
/// Thread safety: none; one session uses a store from one thread. Two stores must not share a
/// directory.

#include <cstddef>
#include <span>
#include <string_view>

#include "edgekit/mqtt/session_store.hpp"

namespace edgekit::mqtt {

class FileSessionStore final : public SessionStore {
 public:
  /// Longest directory path accepted.
  static constexpr std::size_t kMaxPathLength = 240;

  /// A store that is not yet usable; call `open`. `load_buffer` receives loaded records (it must hold the
  /// sum of the stored publishes' sizes; `load` fails with BufferTooSmall otherwise) and must
  /// outlive the store.
  FileSessionStore(std::span<std::byte> load_buffer) noexcept : load_buffer_(load_buffer) {}

  /// Selects (and creates, mode 0700, if missing) the directory. Call once before use.
  /// Errors: StringTooLong (path longer than kMaxPathLength), PersistenceFailed.
  [[nodiscard]] Result<void> open(std::string_view directory) noexcept;

  /// Errors: PersistenceFailed, NotConnected (not opened), codec encode errors.
  [[nodiscard]] Result<void> save_publish(std::uint32_t sequence, const Publish& publish,
                                          Version version) noexcept override;
  /// Errors: PersistenceFailed, UnknownPacketId, PersistenceCorrupted (the stored file is bad).
  [[nodiscard]] Result<void> mark_publish_released(std::uint16_t packet_id,
                                                   std::uint32_t sequence) noexcept override;
  [[nodiscard]] Result<void> remove_publish(std::uint16_t packet_id) noexcept override;
  [[nodiscard]] Result<void> save_incoming_qos2(std::uint16_t packet_id) noexcept override;
  [[nodiscard]] Result<void> remove_incoming_qos2(std::uint16_t packet_id) noexcept override;
  /// Errors: PersistenceFailed, StringTooLong (client id over 65535 bytes).
  [[nodiscard]] Result<void> save_meta(const SessionMeta& meta) noexcept override;
  [[nodiscard]] Result<void> clear_session() noexcept override;
  /// Errors: PersistenceFailed (a read failed, or a corrupt record could not be renamed aside),
  /// BufferTooSmall (load_buffer too small for the records: nothing was changed but the records
  /// already set aside), and any error the visitor returns.
  [[nodiscard]] Result<void> load(SessionStoreVisitor& visitor) noexcept override;
  /// Renames `p-<id>` (and `r-<id>`) to the first free `.bad` name (see the file comment).
  /// Errors: NotConnected (not opened), UnknownPacketId, PersistenceFailed.
  [[nodiscard]] Result<void> set_aside_publish(std::uint16_t packet_id) noexcept override;

  /// The directory in use (empty before `open`).
  [[nodiscard]] std::string_view directory() const noexcept { return {dir_, dir_length_}; }

 private:
  std::span<std::byte> load_buffer_;
  char dir_[kMaxPathLength + 1] = {};
  std::size_t dir_length_ = 0;
  int dir_fd_ = -1;

 public:
  ~FileSessionStore();
  FileSessionStore(const FileSessionStore&) = delete;
  FileSessionStore& operator=(const FileSessionStore&) = delete;
};

}  // namespace edgekit::mqtt
