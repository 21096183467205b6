#pragma once
// The command pool: the part of the agent that the posting threads and the core share. Fixed
// slots (bookkeeping plus `slot_size` bytes of data each, taken at construction), their free
// list, the offline count, the command queue, the intake (open or not) and the connection state
// as the callers see it. Everything shared is behind one mutex (`EDGEKIT_GUARDED_BY`); a slot's
// data and its core-only fields belong to whoever holds the slot: the caller until it is queued,
// the core from then on (the queue's hand-over orders the two).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "edgekit/agent/core.hpp"
#include "edgekit/agent/os.hpp"
#include "edgekit/agent/thread_annotations.hpp"
#include "router.hpp"

namespace edgekit::agent::detail {

enum class Kind : std::uint8_t { Free, Publish, Subscribe, Unsubscribe, Disconnect, Expect };
/// Where a slot is: free, in the command queue, in the core's pending FIFO, or carried out and
/// waiting for its answer (ack, write, response).
enum class Where : std::uint8_t { Free, Queued, Pending, Sent };
/// Whether a caller collects the outcome (`wait_outcome`) instead of a handler.
enum class Waiter : std::uint8_t { None, Waiting, Done, Abandoned };
/// Whether the intake takes commands.
enum class Intake : std::uint8_t { NotStarted, Open, Stopped };

struct Slot {
  // Pool mutex (a caller and the core both touch these).
  Kind kind = Kind::Free;
  Where where = Where::Free;
  Waiter waiter = Waiter::None;
  bool dropped = false;  // DropOldestQoS0 chose it
  bool counted = false;  // counts against the offline limit (publish not yet in the session)
  mqtt::QoS qos = mqtt::QoS::AtMostOnce;
  std::uint32_t sequence = 0;
  CompletionHandler handler{};
  Outcome outcome{};
  // Written by the caller before queuing, then the core's.
  bool persisted = false;  // in the outbox under key index + 1
  std::uint32_t length = 0;
  mqtt::SubscribeOptions options{};
  MessageHandler message_handler{};
  ResponseHandler response{};
  Duration timeout{0};
  // Core only.
  bool existed = false;  // subscribe in flight: the route was there before (else freed again)
  std::uint16_t packet_id = 0;
  std::uint32_t next = kNone;      // link in the pending FIFO, the unwritten list or the expects
  std::uint64_t written_mark = 0;  // QoS 0: written once the connection's written_total() is here
  std::uint32_t ack_link = 0;      // QoS 1/2: the link it was handed over on (its ack is due)
  Instant deadline{};              // Expect: when it times out
  MessageHandler old_handler{};    // subscribe in flight: what it replaced, restored if it fails
  mqtt::SubscribeOptions old_options{};
};

class CommandPool {
 public:
  explicit CommandPool(const Config& c)
      : slots_(new Slot[c.command_slots]),
        data_(new std::byte[c.command_slots * c.slot_size]),
        free_list_(new std::uint32_t[c.command_slots]),
        queue_(c.command_slots),
        size_(c.command_slots),
        slot_size_(c.slot_size),
        offline_limit_(c.offline_queue_limit),
        policy_(c.offline_policy) {
    for (std::size_t i = 0; i < size_; ++i) {
      free_list_[i] = static_cast<std::uint32_t>(size_ - 1 - i);
    }
    free_count_ = size_;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t slot_size() const noexcept { return slot_size_; }
  Slot& operator[](std::uint32_t i) noexcept { return slots_[i]; }
  const Slot& operator[](std::uint32_t i) const noexcept { return slots_[i]; }
  [[nodiscard]] std::byte* data(std::uint32_t i) const noexcept {
    return data_.get() + static_cast<std::size_t>(i) * slot_size_;
  }

  // --- The intake and the state the callers see (any thread) -------------------------------------

  [[nodiscard]] Intake intake() const noexcept { return intake_.load(); }
  void open() noexcept { intake_.store(Intake::Open); }
  /// Closes the intake for good and wakes callers waiting for room (they see Stopped). Returns
  /// what the intake was.
  Intake close() noexcept {
    const Intake was = intake_.exchange(Intake::Stopped);
    os::LockGuard l(mutex_);
    space_.notify_all();
    return was;
  }
  [[nodiscard]] ConnectionState state() const noexcept { return state_.load(); }
  /// Publishes the core's state; callers waiting for the connection or for offline room look
  /// again.
  void set_state(ConnectionState st) noexcept {
    if (state_.exchange(st) == st) return;
    os::LockGuard l(mutex_);
    if (space_waiters_ > 0) space_.notify_all();
  }
  /// `reconnect()` from any thread: Failed reads Disconnected at once (publishes are accepted).
  void leave_failed() noexcept {
    ConnectionState failed = ConnectionState::Failed;
    (void)state_.compare_exchange_strong(failed, ConnectionState::Disconnected);
  }

  // --- Callers -----------------------------------------------------------------------------------

  /// A free slot for a command of `kind` (state Queued), or why there is none: NotStarted,
  /// Stopped, PermanentFailure, OfflineQueueFull, QueueFull — or, waiting as `admission` allows,
  /// Timeout.
  Result<std::uint32_t> take(Kind kind, mqtt::QoS qos, const Admission& admission) noexcept {
    const bool is_publish = kind == Kind::Publish;
    os::LockGuard l(mutex_);
    for (;;) {
      const Intake in = intake_.load();
      if (in == Intake::NotStarted) return fail(Error{Errc::NotStarted});
      if (in == Intake::Stopped) return fail(Error{Errc::Stopped});
      const ConnectionState st = state_.load();
      if (st == ConnectionState::Failed) return fail(Error{Errc::PermanentFailure});
      const bool may_wait = admission.clock != nullptr;
      Errc refused = Errc::Ok;
      if (may_wait && admission.until_connected && st != ConnectionState::Connected) {
        refused = Errc::Timeout;  // not connected yet
      } else if (is_publish && st != ConnectionState::Connected &&
                 offline_count_ >= offline_limit_ &&
                 !(policy_ == OfflinePolicy::DropOldestQoS0 && drop_oldest_qos0_locked())) {
        refused = Errc::OfflineQueueFull;
      } else if (free_count_ == 0) {
        refused = Errc::QueueFull;
      }
      if (refused == Errc::Ok) break;
      if (!may_wait) return fail(Error{refused});
      const Instant now = admission.clock->now();
      if (now >= admission.deadline) return fail(Error{Errc::Timeout});
      ++space_waiters_;
      space_.wait_for(mutex_, admission.deadline - now);
      --space_waiters_;
    }
    const std::uint32_t i = claim_locked(kind, Where::Queued, qos);
    slots_[i].counted = is_publish;
    if (is_publish) ++offline_count_;
    return i;
  }

  /// Queues slot `i` (filled by the caller) for the core.
  Result<std::uint32_t> enqueue(std::uint32_t i, CompletionHandler done, bool waiter) noexcept {
    {
      os::LockGuard l(mutex_);
      slots_[i].handler = done;
      slots_[i].waiter = waiter ? Waiter::Waiting : Waiter::None;
    }
    if (!queue_.try_push(i)) {  // cannot happen: the queue holds every slot
      give_back(i);
      return fail(Error{Errc::QueueFull});
    }
    return i;
  }

  /// Blocks the caller until slot `i`'s outcome is there (then frees the slot) or `deadline`.
  Result<Outcome> wait_outcome(std::uint32_t i, const Clock& clock, Instant deadline) noexcept {
    Slot& s = slots_[i];
    os::LockGuard l(mutex_);
    for (;;) {
      if (s.waiter == Waiter::Done) {
        const Outcome o = s.outcome;
        release_locked(i);
        return o;
      }
      const Instant now = clock.now();
      if (now >= deadline) {
        s.waiter = Waiter::Abandoned;
        return fail(Error{Errc::Timeout});
      }
      finished_.wait_for(mutex_, deadline - now);
    }
  }

  void give_back(std::uint32_t i) noexcept {
    os::LockGuard l(mutex_);
    release_locked(i);
  }

  // --- The core ----------------------------------------------------------------------------------

  /// The next queued command (now Pending, or Sent for an expectation); false when none.
  bool pop(std::uint32_t& i, Kind& kind) noexcept {
    if (!queue_.try_pop(i)) return false;
    os::LockGuard l(mutex_);
    kind = slots_[i].kind;
    slots_[i].where = kind == Kind::Expect ? Where::Sent : Where::Pending;
    return true;
  }
  /// Up to `max` queued commands at once, as `pop` but with one lock of the queue and one of the
  /// pool for the lot; returns how many (their indexes in `out`, kinds in `kinds`).
  std::size_t pop_many(std::uint32_t* out, Kind* kinds, std::size_t max) noexcept {
    const std::size_t n = queue_.try_pop_many(out, max);
    if (n == 0) return 0;
    os::LockGuard l(mutex_);
    for (std::size_t k = 0; k < n; ++k) {
      Slot& s = slots_[out[k]];
      kinds[k] = s.kind;
      s.where = s.kind == Kind::Expect ? Where::Sent : Where::Pending;
    }
    return n;
  }
  [[nodiscard]] bool has_queued() noexcept { return !queue_.empty(); }

  /// A free slot taken by the core itself for a publish (restored from the outbox, or restored
  /// in the session and forgotten by the broker), state Pending, or kNone. With `want` (not
  /// kNone) that slot if it is free; `first`: sequence 0, ahead of every queued command.
  std::uint32_t claim(std::uint32_t want, mqtt::QoS qos, bool counted, bool first) noexcept {
    os::LockGuard l(mutex_);
    if (free_count_ == 0) return kNone;
    if (want != kNone) {
      for (std::size_t f = 0; f < free_count_; ++f) {
        if (free_list_[f] != want) continue;
        // Move it to the end of the free list, where claim_locked takes from.
        free_list_[f] = free_list_[free_count_ - 1];
        free_list_[free_count_ - 1] = want;
        break;
      }
    }
    const std::uint32_t i = claim_locked(Kind::Publish, Where::Pending, qos);
    slots_[i].counted = counted;
    if (counted) ++offline_count_;
    if (first) slots_[i].sequence = 0;
    return i;
  }

  void set_where(std::uint32_t i, Where w) noexcept {
    os::LockGuard l(mutex_);
    slots_[i].where = w;
  }
  void set_qos(std::uint32_t i, mqtt::QoS qos) noexcept {
    os::LockGuard l(mutex_);
    slots_[i].qos = qos;
  }
  [[nodiscard]] bool dropped(std::uint32_t i) const noexcept {
    // Only DropOldestQoS0 ever sets the flag (policy_ never changes): under any other policy
    // the core asks without taking the lock for every command it carries out.
    if (policy_ != OfflinePolicy::DropOldestQoS0) return false;
    os::LockGuard l(mutex_);
    return slots_[i].dropped;
  }
  /// A publish handed to the session (or, QoS 0, to the connection): it no longer counts
  /// against the offline limit.
  void handed_over(std::uint32_t i) noexcept {
    os::LockGuard l(mutex_);
    uncount_locked(slots_[i]);
    slots_[i].where = Where::Sent;
  }

  /// Ends slot `i` with `o`: a waiting caller gets it (and frees the slot), else the slot is
  /// freed and its handler returned for the core to call.
  CompletionHandler finish(std::uint32_t i, const Outcome& o) noexcept {
    Slot& s = slots_[i];
    os::LockGuard l(mutex_);
    if (s.waiter == Waiter::Waiting) {
      s.outcome = o;
      s.waiter = Waiter::Done;
      s.where = Where::Free;  // carried out; the caller frees the slot
      uncount_locked(s);
      finished_.notify_all();
      return {};
    }
    const CompletionHandler h = s.handler;
    release_locked(i);
    return h;
  }

  /// Whether slot `i` is carried out and waiting for its answer (ack, write, response).
  [[nodiscard]] bool sent(std::uint32_t i) const noexcept {
    os::LockGuard l(mutex_);
    return slots_[i].kind != Kind::Free && slots_[i].where == Where::Sent;
  }

 private:
  void uncount_locked(Slot& s) noexcept EDGEKIT_REQUIRES(mutex_) {
    if (!s.counted) return;
    s.counted = false;
    --offline_count_;
    if (space_waiters_ > 0) space_.notify_all();
  }

  // DropOldestQoS0: makes room in the offline queue by dropping the oldest queued QoS 0 publish.
  bool drop_oldest_qos0_locked() noexcept EDGEKIT_REQUIRES(mutex_) {
    Slot* oldest = nullptr;
    for (std::size_t i = 0; i < size_; ++i) {
      Slot& s = slots_[i];
      if (s.kind == Kind::Publish && s.counted && !s.dropped && s.qos == mqtt::QoS::AtMostOnce &&
          (s.where == Where::Queued || s.where == Where::Pending) &&
          (oldest == nullptr || s.sequence < oldest->sequence)) {
        oldest = &s;
      }
    }
    if (oldest == nullptr) return false;
    oldest->dropped = true;
    oldest->counted = false;
    --offline_count_;
    return true;
  }

  std::uint32_t claim_locked(Kind kind, Where where, mqtt::QoS qos) noexcept
      EDGEKIT_REQUIRES(mutex_) {
    const std::uint32_t i = free_list_[--free_count_];
    Slot& s = slots_[i];
    s.kind = kind;
    s.where = where;
    s.waiter = Waiter::None;
    s.dropped = s.persisted = s.counted = false;
    s.qos = qos;
    s.packet_id = 0;
    s.sequence = next_sequence_++;
    s.next = kNone;
    s.handler = {};
    s.outcome = {};
    s.length = 0;
    return i;
  }

  void release_locked(std::uint32_t i) noexcept EDGEKIT_REQUIRES(mutex_) {
    Slot& s = slots_[i];
    uncount_locked(s);
    s.kind = Kind::Free;
    s.where = Where::Free;
    s.waiter = Waiter::None;
    free_list_[free_count_++] = i;
    if (space_waiters_ > 0) space_.notify_all();
  }

  mutable os::Mutex mutex_;
  std::unique_ptr<Slot[]> slots_;  // the first group of each slot's fields: mutex_
  std::unique_ptr<std::byte[]> data_;
  std::unique_ptr<std::uint32_t[]> free_list_ EDGEKIT_GUARDED_BY(mutex_);
  std::size_t free_count_ EDGEKIT_GUARDED_BY(mutex_) = 0;
  std::size_t offline_count_ EDGEKIT_GUARDED_BY(mutex_) = 0;  // publishes not in the session
  std::uint32_t next_sequence_ EDGEKIT_GUARDED_BY(mutex_) = 1;
  std::size_t space_waiters_ EDGEKIT_GUARDED_BY(mutex_) = 0;  // callers waiting to post
  os::Condition space_;     // a slot or offline room was freed, or the state changed
  os::Condition finished_;  // an outcome is ready for a waiting caller
  os::Queue<std::uint32_t> queue_;
  std::atomic<Intake> intake_{Intake::NotStarted};
  std::atomic<ConnectionState> state_{ConnectionState::Idle};
  std::size_t size_;
  std::size_t slot_size_;
  std::size_t offline_limit_;
  OfflinePolicy policy_;
};

}  // namespace edgekit::agent::detail
