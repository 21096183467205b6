// The std:: / POSIX implementation of the OS seam's non-inline parts.
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "edgekit/agent/os.hpp"

namespace edgekit::agent::os {

void* Thread::trampoline(void* self) noexcept {
  auto* t = static_cast<Thread*>(self);
  while (!t->go_.wait(Duration{1000})) {
  }
  t->entry_(t->context_);
  return nullptr;
}

bool Thread::start(Entry entry, void* context, const char* name) noexcept {
  if (started_.load()) return false;
  entry_ = entry;
  context_ = context;
  // pthreads, not std::thread: the library is built without exceptions, and std::thread reports
  // a failure to create a thread only by throwing.
  pthread_t t{};
  if (pthread_create(&t, nullptr, &Thread::trampoline, this) != 0) return false;
  if (name != nullptr) {
    char n[16] = {};
    std::strncpy(n, name, sizeof n - 1);
    (void)pthread_setname_np(t, n);
  }
  handle_ = t;
  started_.store(true, std::memory_order_release);
  go_.set();
  return true;
}

void Thread::join() noexcept {
  if (!started_.load(std::memory_order_acquire)) return;
  (void)pthread_join(handle_, nullptr);
  started_.store(false, std::memory_order_release);
}

bool Thread::is_current() const noexcept {
  // The thread itself may run before start() has stored handle_: compare with pthread_self()
  // only once started_ is published (the agent never asks this before start() returns).
  return started_.load(std::memory_order_acquire) && pthread_equal(pthread_self(), handle_) != 0;
}

Wakeup::Wakeup() noexcept { fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

Wakeup::~Wakeup() {
  if (fd_ >= 0) ::close(fd_);
}

WaitOutcome Wakeup::wait(int handle, Duration timeout, std::size_t low_water) noexcept {
  WaitOutcome out;
  if (low_water == 0) low_water = 1;
  // A handle not seen before is a fresh socket (the agent's connection is new): at the default
  // of 1. A handle number reused by a new socket may get one setsockopt too many, never one too
  // few in the direction that matters (a new socket is never above 1).
  const std::size_t current = handle == low_water_handle_ ? low_water_ : 1;
  if (handle >= 0 && low_water != current) {
    const int v = static_cast<int>(std::min<std::size_t>(low_water, 0x7fffffff));
    (void)::setsockopt(handle, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v);
  }
  low_water_handle_ = handle;
  low_water_ = low_water;
  pollfd fds[2] = {};
  fds[0].fd = fd_;
  fds[0].events = POLLIN;
  fds[1].fd = handle;
  fds[1].events = POLLIN;
  const nfds_t n = handle >= 0 ? 2 : 1;
  long long ms = timeout.count();
  if (ms < 0) ms = 0;
  if (ms > 0x7fffffff) ms = 0x7fffffff;
  int r = ::poll(fds, n, static_cast<int>(ms));
  if (r < 0 && errno == EINTR) r = 0;
  armed_.store(false, std::memory_order_seq_cst);
  if (r > 0) {
    if ((fds[0].revents & POLLIN) != 0) {
      std::uint64_t v = 0;
      (void)!::read(fd_, &v, sizeof v);
      out.woken = true;
    }
    if (n == 2 && fds[1].revents != 0) out.readable = true;
  }
  return out;
}

void Wakeup::wake() noexcept {
  if (!armed_.exchange(false, std::memory_order_seq_cst)) return;
  const std::uint64_t one = 1;
  (void)!::write(fd_, &one, sizeof one);
}

}  // namespace edgekit::agent::os
