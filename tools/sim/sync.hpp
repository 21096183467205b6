#pragma once
/// \file
/// Waiting between fibers of one `sim::Fibers` scheduler without polling: `WaitList` (fibers
/// suspended until notified, FIFO), and on it `Semaphore` (e.g. connects in flight) and `Gate`
/// (a level that fibers wait to reach, e.g. the phases of a scenario). A fiber waiting here
/// costs nothing until it is woken: no timer, no periodic switch.
///
/// Memory: a waiting fiber's list node lives on its own stack; the objects are a few words and
/// allocate nothing. Thread safety: the io_context's thread only. Notifying is allowed from
/// fibers and from handlers; waiting only from a fiber of the scheduler (else it aborts, as
/// `Fibers::wait`). During `Fibers::shutdown` every wait returns Wake::Stopping.
#include <cstddef>
#include <optional>

#include "fiber.hpp"

namespace edgekit::sim {

class WaitList {
 public:
  explicit WaitList(Fibers& fibers) noexcept : fibers_(&fibers) {}
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;

  /// Suspends the calling fiber until `notify_*` picks it, `deadline`, or shutdown. Callers
  /// check their condition and wait again (a notification is not a promise that it holds).
  Wake wait(std::optional<Instant> deadline = std::nullopt) {
    Node node{Fibers::current(), tail_, nullptr};
    (tail_ != nullptr ? tail_->next : head_) = &node;
    tail_ = &node;
    const Wake w = fibers_->wait(deadline);
    unlink(node);  // still listed after a timeout or shutdown
    return w;
  }
  /// Wakes the longest waiting fiber; false when none waits.
  bool notify_one() noexcept {
    Node* n = head_;
    if (n == nullptr) return false;
    unlink(*n);
    (void)fibers_->wake(n->fiber);
    return true;
  }
  void notify_all() noexcept {
    while (notify_one()) {
    }
  }
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

 private:
  struct Node {
    Fiber* fiber;
    Node* prev;
    Node* next;
    bool listed = true;
  };
  void unlink(Node& n) noexcept {
    if (!n.listed) return;
    n.listed = false;
    (n.prev != nullptr ? n.prev->next : head_) = n.next;
    (n.next != nullptr ? n.next->prev : tail_) = n.prev;
  }

  Fibers* fibers_;
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
};

/// A counting semaphore for fibers (waiters are woken in arrival order).
class Semaphore {
 public:
  Semaphore(Fibers& fibers, std::size_t count) noexcept : waiters_(fibers), count_(count) {}
  /// In a fiber: takes one unit, waiting for it. False at shutdown (nothing taken).
  bool acquire() {
    while (count_ == 0) {
      if (waiters_.wait() == Wake::Stopping) return false;
    }
    --count_;
    return true;
  }
  void release() noexcept {
    ++count_;
    (void)waiters_.notify_one();
  }
  [[nodiscard]] std::size_t available() const noexcept { return count_; }

 private:
  WaitList waiters_;
  std::size_t count_;
};

/// A level that only rises; fibers wait until it reaches theirs.
class Gate {
 public:
  explicit Gate(Fibers& fibers) noexcept : waiters_(fibers) {}
  /// In a fiber: waits until the level is at least `level`. False at shutdown.
  bool pass(int level) {
    while (level_ < level) {
      if (waiters_.wait() == Wake::Stopping) return false;
    }
    return true;
  }
  /// Raises the level to `level` (never lowers it) and wakes every waiter.
  void open(int level) noexcept {
    if (level > level_) level_ = level;
    waiters_.notify_all();
  }
  [[nodiscard]] int level() const noexcept { return level_; }

 private:
  WaitList waiters_;
  int level_ = 0;
};

}  // namespace edgekit::sim
