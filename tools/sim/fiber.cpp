// Stackful fibers on an io_context thread: ucontext switches, mmap'd stacks with a guard page,
// sanitizer annotations. See fiber.hpp for the model.
#include "fiber.hpp"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define EDGEKIT_SIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDGEKIT_SIM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define EDGEKIT_SIM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EDGEKIT_SIM_TSAN 1
#endif
#endif

#ifdef EDGEKIT_SIM_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef EDGEKIT_SIM_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace edgekit::sim {

enum class Phase : std::uint8_t { New, Running, Waiting, Done };

struct Fiber {
  Fiber(Fibers& f, std::uint64_t i, std::function<void()> function)
      : owner(&f), id(i), fn(std::move(function)), timer(f.io()) {}
  Fibers* owner;
  std::uint64_t id;
  std::function<void()> fn;
  asio::steady_timer timer;  // the deadline of the current wait
  ucontext_t context{};
  unsigned char* mapping = nullptr;  // guard page, then the stack
  std::size_t mapping_size = 0;
  unsigned char* stack = nullptr;
  std::size_t stack_size = 0;
  // Each wait gets a number: a deadline or a wake posted for an earlier wait finds another
  // number and does nothing.
  std::uint32_t wait_seq = 0;
  std::uint32_t wake_posted_seq = 0;  // the wait a wake is already posted for
  Phase phase = Phase::New;
  Wake reason = Wake::Woken;
  void* fake_stack = nullptr;  // ASan's fake stack of this fiber while it is switched out
  void* tsan = nullptr;        // TSan's fiber
};

// What posted handlers reach: they hold it by shared_ptr and find fibers by id, so a handler
// that runs after its fiber ended (a cancelled deadline, a stale wake) or after the scheduler
// went finds nothing and does nothing.
struct Fibers::State {
  Fibers* owner = nullptr;
  std::unordered_map<std::uint64_t, Fiber*> fibers;
  ucontext_t main{};                  // the io_context thread's context while a fiber runs
  const void* main_bottom = nullptr;  // ASan: the bounds of the thread's own stack
  std::size_t main_size = 0;
  void* main_fake = nullptr;
  void* main_tsan = nullptr;

  Fiber* find(std::uint64_t id) const {
    if (owner == nullptr) return nullptr;
    auto it = fibers.find(id);
    return it == fibers.end() ? nullptr : it->second;
  }
};

namespace {

thread_local Fiber* t_current = nullptr;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "edgekit::sim::Fibers: %s\n", what);
  std::abort();
}

std::size_t page_size() {
  static const auto size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

Instant now() {
  return Instant{
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch())};
}

std::chrono::steady_clock::time_point time_point_of(Instant t) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(t.since_origin));
}

}  // namespace

Fibers::Fibers(asio::io_context& io, FiberOptions options)
    : io_(io), options_(options), state_(std::make_shared<State>()) {
  const std::size_t page = page_size();
  options_.stack_size = (options_.stack_size + page - 1) / page * page;
  if (options_.stack_size == 0) options_.stack_size = page;
  state_->owner = this;
}

Fibers::~Fibers() {
  shutdown();
  state_->owner = nullptr;
}

Fiber* Fibers::current() noexcept {
  return t_current;
}

Fibers* Fibers::current_scheduler() noexcept {
  return t_current == nullptr ? nullptr : t_current->owner;
}

std::size_t Fibers::control_block_size() noexcept {
  return sizeof(Fiber);
}

std::size_t Fibers::live() const noexcept {
  return state_->fibers.size();
}

Fiber* Fibers::spawn(std::function<void()> fn) {
  if (stopping_) return nullptr;
  const std::size_t page = page_size();
  auto* f = new Fiber(*this, next_id_++, std::move(fn));
  f->mapping_size = options_.stack_size + page;
  // MAP_NORESERVE: only touched pages count; the guard page below the stack (stacks grow down
  // on every platform this builds for) turns an overflow into SIGSEGV.
  void* m = ::mmap(nullptr, f->mapping_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (m == MAP_FAILED) die("mmap of a fiber stack failed (vm.max_map_count, address space?)");
  f->mapping = static_cast<unsigned char*>(m);
  if (::mprotect(f->mapping, page, PROT_NONE) != 0) die("mprotect of a guard page failed");
  f->stack = f->mapping + page;
  f->stack_size = options_.stack_size;
  if (::getcontext(&f->context) != 0) die("getcontext failed");
  f->context.uc_stack.ss_sp = f->stack;
  f->context.uc_stack.ss_size = f->stack_size;
  f->context.uc_link = nullptr;  // entry() never returns: it switches back itself
  ::makecontext(&f->context, &Fibers::entry, 0);
#ifdef EDGEKIT_SIM_TSAN
  f->tsan = __tsan_create_fiber(0);
#endif
  state_->fibers.emplace(f->id, f);
  asio::post(io_, [st = state_, id = f->id] {
    if (Fiber* g = st->find(id); g != nullptr && g->phase == Phase::New) {
      st->owner->resume(*g, Wake::Woken);
    }
  });
  return f;
}

void Fibers::entry() {
  Fiber* f = t_current;
  State& st = *f->owner->state_;
#ifdef EDGEKIT_SIM_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &st.main_bottom, &st.main_size);
#else
  (void)st;
#endif
  f->fn();
  Fibers* owner = f->owner;
  if (owner->on_fiber_end) owner->on_fiber_end(owner->stack_touched(f));
  f->fn = nullptr;  // the captures' destructors run here, on the fiber's own stack
  f->phase = Phase::Done;
  owner->switch_out(*f, true);
  die("a finished fiber was resumed");
}

void Fibers::resume(Fiber& f, Wake reason) {
  if (t_current != nullptr) die("a fiber may only be resumed from the io_context's own stack");
  State& st = *state_;
  f.reason = reason;
  f.phase = Phase::Running;
  t_current = &f;
  ++switches_;
#ifdef EDGEKIT_SIM_ASAN
  __sanitizer_start_switch_fiber(&st.main_fake, f.stack, f.stack_size);
#endif
#ifdef EDGEKIT_SIM_TSAN
  st.main_tsan = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(f.tsan, 0);
#endif
  if (::swapcontext(&st.main, &f.context) != 0) die("swapcontext failed");
#ifdef EDGEKIT_SIM_ASAN
  __sanitizer_finish_switch_fiber(st.main_fake, nullptr, nullptr);
#endif
  t_current = nullptr;
  if (f.phase == Phase::Done) destroy(f);
}

void Fibers::switch_out(Fiber& f, bool exiting) {
  State& st = *state_;
  ++switches_;
#ifdef EDGEKIT_SIM_ASAN
  // nullptr for a fiber that ends: ASan frees its fake stack.
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f.fake_stack, st.main_bottom, st.main_size);
#else
  (void)exiting;
#endif
#ifdef EDGEKIT_SIM_TSAN
  __tsan_switch_to_fiber(st.main_tsan, 0);
#endif
  if (::swapcontext(&f.context, &st.main) != 0) die("swapcontext failed");
#ifdef EDGEKIT_SIM_ASAN
  __sanitizer_finish_switch_fiber(f.fake_stack, &st.main_bottom, &st.main_size);
#endif
}

void Fibers::destroy(Fiber& f) {
  state_->fibers.erase(f.id);
#ifdef EDGEKIT_SIM_TSAN
  if (f.tsan != nullptr) __tsan_destroy_fiber(f.tsan);
#endif
  ::munmap(f.mapping, f.mapping_size);
  delete &f;  // its timer goes with it; a pending deadline handler then finds no fiber
}

Wake Fibers::wait(std::optional<Instant> deadline) {
  Fiber* f = t_current;
  if (f == nullptr || f->owner != this) die("wait() outside a fiber of this scheduler");
  if (stopping_) return Wake::Stopping;
  if (deadline && *deadline <= now()) return Wake::TimedOut;
  const std::uint32_t seq = ++f->wait_seq;
  f->phase = Phase::Waiting;
  if (deadline) {
    f->timer.expires_at(time_point_of(*deadline));
    f->timer.async_wait([st = state_, id = f->id, seq](std::error_code ec) {
      if (ec) return;
      if (Fiber* g = st->find(id);
          g != nullptr && g->phase == Phase::Waiting && g->wait_seq == seq) {
        st->owner->resume(*g, Wake::TimedOut);
      }
    });
  }
  switch_out(*f, false);
  if (deadline && f->reason != Wake::TimedOut) f->timer.cancel();
  return f->reason;
}

Wake Fibers::sleep_for(Duration d) {
  const Instant until = now() + d;
  for (;;) {
    const Wake w = wait(until);
    if (w != Wake::Woken) return w;
  }
}

Wake Fibers::yield() {
  Fiber* f = t_current;
  if (f == nullptr || f->owner != this) die("yield() outside a fiber of this scheduler");
  if (stopping_) return Wake::Stopping;
  // A wait whose wake is posted before it suspends: handlers already queued run first.
  ++f->wait_seq;
  f->phase = Phase::Waiting;
  f->wake_posted_seq = 0;
  (void)wake(f);
  switch_out(*f, false);
  return f->reason;
}

bool Fibers::wake(Fiber* f) noexcept {
  if (f == nullptr || f->phase != Phase::Waiting || f->wake_posted_seq == f->wait_seq) return false;
  f->wake_posted_seq = f->wait_seq;
  asio::post(io_, [st = state_, id = f->id, seq = f->wait_seq] {
    if (Fiber* g = st->find(id); g != nullptr && g->phase == Phase::Waiting && g->wait_seq == seq) {
      st->owner->resume(*g, Wake::Woken);
    }
  });
  return true;
}

void Fibers::shutdown() {
  if (t_current != nullptr) die("shutdown() from inside a fiber");
  stopping_ = true;
  // Every wait now returns Stopping at once, so a resumed fiber only comes back by ending.
  while (!state_->fibers.empty()) {
    std::vector<std::uint64_t> ids;
    ids.reserve(state_->fibers.size());
    for (const auto& [id, f] : state_->fibers) ids.push_back(id);
    for (std::uint64_t id : ids) {
      Fiber* f = state_->find(id);
      if (f == nullptr) continue;
      if (f->phase == Phase::New) {
        destroy(*f);  // never started: its function object is dropped here
      } else {
        resume(*f, Wake::Stopping);
      }
    }
  }
}

std::size_t Fibers::stack_touched(const Fiber* f) const noexcept {
  if (f == nullptr) return 0;
  const std::size_t page = page_size();
  const std::size_t pages = f->stack_size / page;
  std::vector<unsigned char> resident(pages);
  if (::mincore(f->stack, f->stack_size, resident.data()) != 0) return 0;
  std::size_t n = 0;
  for (unsigned char r : resident) n += (r & 1U) != 0 ? 1 : 0;
  return n * page;
}

}  // namespace edgekit::sim
