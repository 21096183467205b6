#pragma once
/// \file
/// The OS seam of the agent: everything it needs from an operating system, and nothing more —
/// a mutex, an auto-reset event, a thread, a bounded queue, a wake-up that interrupts a wait on
/// the network, and the `edgekit::Clock` (clock.hpp). The agent uses nothing else (no other
/// std:: threading, no sleeping, no allocation after construction).
///
/// This header is the std:: / POSIX implementation (std::mutex, std::condition_variable,
/// std::thread, eventfd + poll). To port the agent to an RTOS, provide these same classes with
/// the same members for it, e.g. on FreeRTOS: Mutex → xSemaphoreCreateMutexStatic, Event →
/// a binary semaphore or a task notification, Thread → xTaskCreateStatic, Queue → a ring under
/// the Mutex (or xQueueCreateStatic), Wakeup → lwIP select() on the socket and a loopback
/// socket, or a short poll slice when the stack has no select.
///
/// Thread safety: every member may be called from any thread unless its comment says otherwise.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <pthread.h>

#include "edgekit/agent/thread_annotations.hpp"
#include "edgekit/core/clock.hpp"

namespace edgekit::agent::os {

/// A non-recursive mutex.
class EDGEKIT_CAPABILITY("mutex") Mutex {
 public:
  void lock() noexcept EDGEKIT_ACQUIRE() { m_.lock(); }
  void unlock() noexcept EDGEKIT_RELEASE() { m_.unlock(); }

 private:
  friend class Event;
  friend class Condition;
  std::mutex m_;
};

/// Holds a Mutex for a scope.
class EDGEKIT_SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(Mutex& m) noexcept EDGEKIT_ACQUIRE(m) : m_(m) { m_.lock(); }
  ~LockGuard() EDGEKIT_RELEASE() { m_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Mutex& m_;
};

/// An auto-reset event (a binary semaphore): `set` wakes one `wait`er, or the next one to come;
/// several `set`s before a `wait` count once.
class Event {
 public:
  /// Signals the event.
  void set() noexcept {
    {
      std::lock_guard<std::mutex> l(m_);
      signalled_ = true;
    }
    cv_.notify_one();
  }
  /// Waits until the event is signalled (and resets it) or `timeout` passes. Returns true when
  /// signalled. A negative or zero timeout only checks.
  [[nodiscard]] bool wait(Duration timeout) noexcept {
    std::unique_lock<std::mutex> l(m_);
    if (timeout > Duration::zero()) {
      cv_.wait_for(l, timeout, [&] { return signalled_; });
    }
    const bool s = signalled_;
    signalled_ = false;
    return s;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool signalled_ = false;
};

/// A condition variable over a `Mutex`: several threads wait for a state that the Mutex
/// guards; `notify_all` wakes them to check it again. FreeRTOS: an event group, or a list of
/// waiting tasks notified under the mutex.
class Condition {
 public:
  /// Waits (with `m` held by the caller; released while waiting) until notified or `timeout`
  /// passes; may wake spuriously. Returns with `m` held.
  void wait_for(Mutex& m, Duration timeout) noexcept EDGEKIT_REQUIRES(m) {
    if (timeout <= Duration::zero()) return;
    std::unique_lock<std::mutex> l(m.m_, std::adopt_lock);
    cv_.wait_for(l, timeout);
    l.release();
  }
  /// Wakes every waiter.
  void notify_all() noexcept { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

/// A thread running `entry(context)`. Not movable.
class Thread {
 public:
  using Entry = void (*)(void* context);
  Thread() noexcept = default;
  ~Thread() { join(); }
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;

  /// Starts the thread. `name` is for debuggers (at most 15 characters are used). Returns false
  /// when a thread is already running or could not be created.
  [[nodiscard]] bool start(Entry entry, void* context, const char* name) noexcept;
  /// Waits for the thread to end. Idempotent; must not be called from the thread itself.
  void join() noexcept;
  /// True when called from this thread.
  [[nodiscard]] bool is_current() const noexcept;

 private:
  static void* trampoline(void* self) noexcept;
  Entry entry_ = nullptr;
  void* context_ = nullptr;
  pthread_t handle_{};
  std::atomic<bool> started_{false};
  Event go_;  // the new thread runs `entry` only once start() has published handle_
};

/// A bounded FIFO of `T` (trivially copyable), its storage allocated once at construction.
/// `try_push` / `try_pop` never block.
template <class T>
class Queue {
 public:
  explicit Queue(std::size_t capacity) : items_(new T[capacity == 0 ? 1 : capacity]),
                                         capacity_(capacity == 0 ? 1 : capacity) {}
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  /// Appends `item`; false when full.
  [[nodiscard]] bool try_push(const T& item) noexcept {
    LockGuard l(m_);
    if (size_ == capacity_) return false;
    items_[(head_ + size_) % capacity_] = item;
    ++size_;
    return true;
  }
  /// Takes the oldest item; false when empty.
  [[nodiscard]] bool try_pop(T& out) noexcept {
    LockGuard l(m_);
    if (size_ == 0) return false;
    out = items_[head_];
    head_ = (head_ + 1) % capacity_;
    --size_;
    return true;
  }
  /// Takes up to `max` of the oldest items, in order, into `out`; returns how many (0: empty).
  /// One lock for the lot: the consumer of a busy queue does not contend once per item.
  [[nodiscard]] std::size_t try_pop_many(T* out, std::size_t max) noexcept {
    LockGuard l(m_);
    const std::size_t n = size_ < max ? size_ : max;
    for (std::size_t k = 0; k < n; ++k) {
      out[k] = items_[head_];
      head_ = (head_ + 1) % capacity_;
    }
    size_ -= n;
    return n;
  }
  [[nodiscard]] bool empty() noexcept {
    LockGuard l(m_);
    return size_ == 0;
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  Mutex m_;
  std::unique_ptr<T[]> items_;
  std::size_t capacity_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

/// What `Wakeup::wait` saw.
struct WaitOutcome {
  bool readable = false;  ///< the I/O handle is readable (or has an error or hang-up)
  bool woken = false;     ///< `wake` was called
};

/// Lets one thread (the agent's) wait on a network handle and be woken promptly by others.
/// The waiting thread calls `arm`, then checks its queues, then `wait` (or `disarm` when it
/// found work). `wake` costs a system call only when the waiter is armed, so a busy agent is not
/// woken once per command.
class Wakeup {
 public:
  /// Creates the wake-up channel (an eventfd). `ok()` tells whether that worked.
  Wakeup() noexcept;
  ~Wakeup();
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  [[nodiscard]] bool ok() const noexcept { return fd_ >= 0; }
  /// Waiter thread: from now on a `wake` interrupts the next `wait`.
  void arm() noexcept { armed_.store(true, std::memory_order_seq_cst); }
  /// Waiter thread: found work after `arm`; will not wait.
  void disarm() noexcept { armed_.store(false, std::memory_order_seq_cst); }
  /// Waiter thread: waits until `handle` (a pollable descriptor; -1: none) is readable, `wake`
  /// is called, or `timeout` passes. Disarms.
  ///
  /// `low_water`: the handle counts as readable only once at least that many bytes wait in it
  /// (1: any byte). The caller must pass a count that is sure to arrive without anything being
  /// sent, so the wait cannot hang on it (and `timeout` still bounds it); an end of stream or an
  /// error ends the wait at once whatever the count. POSIX: `SO_RCVLOWAT` on the socket, set
  /// only when the count changes (a fresh socket is at 1; on a handle that is not a socket it
  /// has no effect). A port without such an option ignores it: it only saves wake-ups.
  WaitOutcome wait(int handle, Duration timeout, std::size_t low_water = 1) noexcept;
  /// Any thread: interrupts the armed waiter, if any.
  void wake() noexcept;

 private:
  int fd_ = -1;
  std::atomic<bool> armed_{false};
  // Waiter thread: the handle whose low-water mark was set last, and to what.
  int low_water_handle_ = -1;
  std::size_t low_water_ = 1;
};

}  // namespace edgekit::agent::os
