#pragma once
/// \file
/// `edgekit::sim::Fibers`: stackful fibers on one `asio::io_context` thread, so that code written
/// against a blocking interface (the `reqres::Channel` of the Shadow, Jobs, OTA and provisioning
/// clients) runs unchanged for thousands of simulated devices on one thread: a blocking call
/// suspends its fiber, not the thread.
///
/// Model. A fiber runs until it waits (`wait`, `sleep_for`, `yield`) or ends; then control goes
/// back to the io_context's thread, which runs other handlers. Fibers are resumed only from
/// handlers that the scheduler posts to the io_context (a wake, a deadline, the first start), so
/// a fiber never runs inside another fiber, inside an Asio handler of someone else, or inside
/// `spawn`/`wake`. Wakes are resumed in the order they were made (FIFO through `asio::post`).
///
/// Stacks: each fiber gets its own mmap'd stack of `FiberOptions::stack_size` bytes with one
/// PROT_NONE guard page below it (a fiber that overflows its stack dies with SIGSEGV instead of
/// overwriting memory), mapped without reserve so that only the pages a fiber touches cost
/// memory, and unmapped when the fiber ends. The switch is ucontext's swapcontext (one
/// rt_sigprocmask system call per switch: see docs/simulator.md for the measured cost),
/// annotated for AddressSanitizer (`__sanitizer_start/finish_switch_fiber`) and ThreadSanitizer
/// (`__tsan_create/switch_to/destroy_fiber`).
///
/// Shutdown: `shutdown()` (also run by the destructor) tells every fiber to end: each suspended
/// fiber is resumed at once with `Wake::Stopping`, and from then on every `wait`, `sleep_for` and
/// `yield` returns `Wake::Stopping` without suspending, so the code above it (e.g. a
/// `reqres::Channel` request, which then fails with NotConnected) returns and the fiber's
/// function runs to its end, its destructors included. Nothing is unwound by force: a fiber
/// function that loops forever ignoring `Wake::Stopping` keeps `shutdown` from returning.
/// Fibers not yet started when `shutdown` runs are never started (their function is destroyed).
///
/// Memory per fiber: the touched pages of its stack (`stack_touched`), plus the control block
/// (about 1.2 KB: the ucontext_t is 936 bytes on x86-64) and the function object.
///
/// Thread safety: none. Everything — spawn, wake, shutdown, and the io_context's run — happens on
/// the io_context's one thread. `shutdown` and the destructor must not be called from inside a
/// fiber. Errors: none are returned; the mmap of a stack failing aborts with a message (a
/// simulator out of address space cannot go on meaningfully).
#include <asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "edgekit/core/clock.hpp"

namespace edgekit::sim {

/// Why a `wait` returned.
enum class Wake : std::uint8_t {
  Woken,     ///< `Fibers::wake` was called for this fiber
  TimedOut,  ///< the deadline passed
  Stopping,  ///< `Fibers::shutdown` runs: end the fiber
};

struct FiberOptions {
  /// Usable stack bytes per fiber (rounded up to whole pages; a guard page is added below). The
  /// SDK clients in a fiber touch far less (docs/simulator.md has the measured high-water
  /// marks); 64 KiB leaves room for ASan's larger frames and for the application's own code.
  std::size_t stack_size = 64 * 1024;
};

class Fibers;

/// A fiber's handle, valid from `spawn` until the fiber's function returns (the scheduler frees
/// it then). Opaque: use it with `Fibers::wake`.
struct Fiber;

class Fibers {
 public:
  /// Borrows `io`, which must outlive this object; fibers run on the thread that runs it.
  explicit Fibers(asio::io_context& io, FiberOptions options = {});
  /// Runs `shutdown()`.
  ~Fibers();
  Fibers(const Fibers&) = delete;
  Fibers& operator=(const Fibers&) = delete;

  /// Creates a fiber that will run `fn` (started by a handler posted to the io_context, so never
  /// inside this call). Returns its handle. After `shutdown` it returns nullptr and drops `fn`.
  /// `fn` must not throw: an exception leaving a fiber's function terminates the process (it
  /// has no caller to unwind into).
  Fiber* spawn(std::function<void()> fn);

  /// The fiber running now, or nullptr outside any fiber (on the io_context's own stack).
  [[nodiscard]] static Fiber* current() noexcept;
  /// The scheduler of the fiber running now, or nullptr.
  [[nodiscard]] static Fibers* current_scheduler() noexcept;

  /// Inside a fiber of this scheduler: suspends it until `wake`, until `deadline` (none: no
  /// deadline) or until shutdown. A deadline already past returns TimedOut without suspending.
  /// Spurious returns do not happen, but a wake meant for an earlier wait is never carried over:
  /// callers check their condition and wait again (the usual condition-variable loop).
  Wake wait(std::optional<Instant> deadline = std::nullopt);
  /// Inside a fiber: sleeps for `d` (wakes do not end it early). Returns TimedOut, or Stopping.
  Wake sleep_for(Duration d);
  /// Inside a fiber: lets every handler ready now run, then continues. Returns Woken or Stopping.
  Wake yield();

  /// Resumes `fiber` (alive, see `Fiber`) from its current `wait` with Wake::Woken, from a
  /// handler posted now (FIFO with other wakes). Returns false when it is not waiting, or a wake
  /// is already on its way to this wait. May be called inside a fiber or from any handler.
  bool wake(Fiber* fiber) noexcept;

  /// Tells every fiber to end and returns when all have (see the file comment). Not from inside
  /// a fiber. Idempotent.
  void shutdown();
  [[nodiscard]] bool stopping() const noexcept { return stopping_; }

  /// Fibers spawned and not ended yet.
  [[nodiscard]] std::size_t live() const noexcept;
  /// Context switches made so far (each resume and each suspend counts one).
  [[nodiscard]] std::uint64_t switches() const noexcept { return switches_; }
  /// Bytes of `fiber`'s stack that are resident (touched at least once: the high-water mark,
  /// rounded to pages). 0 for nullptr.
  [[nodiscard]] std::size_t stack_touched(const Fiber* fiber) const noexcept;
  /// Bytes of a fiber's control block (heap), besides its stack and its function's captures.
  [[nodiscard]] static std::size_t control_block_size() noexcept;
  [[nodiscard]] const FiberOptions& options() const noexcept { return options_; }
  [[nodiscard]] asio::io_context& io() noexcept { return io_; }

  /// Called (on the fiber, just before its function object is destroyed) with the fiber's stack
  /// high-water mark, for measurements. Empty: not called.
  std::function<void(std::size_t touched_bytes)> on_fiber_end;

  struct State;  // the part that posted handlers share (sources)

 private:
  friend struct Fiber;
  void resume(Fiber& fiber, Wake reason);
  void switch_out(Fiber& fiber, bool exiting);
  void destroy(Fiber& fiber);
  static void entry();

  asio::io_context& io_;
  FiberOptions options_;
  std::shared_ptr<State> state_;
  std::uint64_t switches_ = 0;
  std::uint64_t next_id_ = 1;
  bool stopping_ = false;
};

}  // namespace edgekit::sim
