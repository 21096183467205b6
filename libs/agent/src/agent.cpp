// The thread driver: one thread steps the `AgentCore` (core.cpp), waiting between steps on the
// connection's socket, a wake-up that the posting threads trigger, and the core's next deadline.
// Other threads post commands into the core's pool and, for the `*_and_wait` calls, wait there
// for the outcome. The TCP factory lives here as well.
#include "edgekit/agent/agent.hpp"

#include <algorithm>
#include <cstring>

#include "edgekit/agent/core.hpp"
#include "edgekit/agent/os.hpp"
#include "edgekit/transport/tcp.hpp"

namespace edgekit::agent {

const char* to_string(Errc e) noexcept {
  switch (e) {
    case Errc::Ok:
      return "Ok";
    case Errc::QueueFull:
      return "QueueFull";
    case Errc::OfflineQueueFull:
      return "OfflineQueueFull";
    case Errc::Dropped:
      return "Dropped";
    case Errc::MessageTooLarge:
      return "MessageTooLarge";
    case Errc::Rejected:
      return "Rejected";
    case Errc::Stopped:
      return "Stopped";
    case Errc::PermanentFailure:
      return "PermanentFailure";
    case Errc::Timeout:
      return "Timeout";
    case Errc::WouldDeadlock:
      return "WouldDeadlock";
    case Errc::NotSubscribed:
      return "NotSubscribed";
    case Errc::RouterFull:
      return "RouterFull";
    case Errc::InvalidArgument:
      return "InvalidArgument";
    case Errc::PersistenceFailed:
      return "PersistenceFailed";
    case Errc::Lost:
      return "Lost";
    case Errc::NotStarted:
      return "NotStarted";
    case Errc::DeliveryUncertain:
      return "DeliveryUncertain";
  }
  return "?";
}

// --- TCP factory ---------------------------------------------------------------------------------

struct TcpTransportFactory::Impl {
  char host[254] = {};
  Duration timeout{5000};
  transport::TcpTransport tcp;
};

TcpTransportFactory::TcpTransportFactory(std::string_view host, std::uint16_t port,
                                         Duration timeout) noexcept
    : impl_(new Impl), port_(port) {
  const std::size_t n = std::min(host.size(), sizeof impl_->host - 1);
  std::memcpy(impl_->host, host.data(), n);
  impl_->timeout = timeout;
}

TcpTransportFactory::~TcpTransportFactory() = default;

edgekit::Result<TransportConnection, TransportFailure> TcpTransportFactory::connect() noexcept {
  impl_->tcp.close();
  auto r = transport::TcpTransport::connect(impl_->host, port_.load(), impl_->timeout);
  if (!r) {
    TransportFailure f;
    f.system_error = r.error().system_error;
    f.detail = r.error().detail;
    f.transport_error = r.error().code;
    switch (r.error().code) {
      case transport::TcpErrc::HostNotFound:
        f.error = mqtt::Errc::HostNotFound;
        break;
      case transport::TcpErrc::InvalidArgument:
        f.error = mqtt::Errc::ConnectFailed;
        f.permanent = true;
        break;
      case transport::TcpErrc::Timeout:
        f.error = mqtt::Errc::Timeout;
        break;
      default:
        f.error = mqtt::Errc::ConnectFailed;
        break;
    }
    return fail(f);
  }
  impl_->tcp = std::move(*r);
  return TransportConnection{&impl_->tcp, impl_->tcp.native_handle()};
}

// --- The thread driver ---------------------------------------------------------------------------

namespace {
// The longest the thread sleeps without a deadline (a bound, not a poll: every event wakes it).
constexpr Duration kMaxSleep{1000};
// While output waits for a socket that takes nothing, the thread waits for writability in
// slices this long, so that new commands are still taken in between.
constexpr std::uint32_t kWriteWaitSliceMs = 50;
}  // namespace

struct Agent::Impl {
  Impl(const Config& c, const mqtt::ConnectOptions& o, TransportFactory& f, const Clock& clk,
       Persistence p)
      : clock(clk), core(c, o, f, p) {
    core.set_wake(&Impl::wake, this);
  }

  const Clock& clock;
  AgentCore core;
  os::Wakeup wakeup;
  os::Thread thread;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> started{false};

  static void wake(void* self) noexcept { static_cast<Impl*>(self)->wakeup.wake(); }

  void run() noexcept {
    while (!stop_requested.load()) {
      core.step(clock.now());
      if (core.has_work()) continue;
      wakeup.arm();
      if (core.has_work() || stop_requested.load()) {
        wakeup.disarm();
        continue;
      }
      Duration wait = kMaxSleep;
      if (auto due = core.next_deadline()) {
        wait = std::clamp(*due - clock.now(), Duration{0}, kMaxSleep);
      }
      if (core.wants_write() && core.transport() != nullptr) {
        wakeup.disarm();
        const auto slice = std::min<std::int64_t>(wait.count(), kWriteWaitSliceMs);
        (void)core.transport()->wait(transport::Interest::Write, static_cast<std::uint32_t>(slice));
        continue;
      }
      // Acks that are sure to come are let gather in the socket (read_low_water): one wake-up
      // per batch instead of one per ack segment.
      (void)wakeup.wait(core.poll_handle(), wait, core.read_low_water());
    }
    core.stop();
  }

  static void thread_main(void* ctx) noexcept { static_cast<Impl*>(ctx)->run(); }

  Result<Outcome> wait(Result<AgentCore::Ticket> ticket, Duration timeout) noexcept {
    if (!ticket) return fail(ticket.error());
    return core.wait_outcome(*ticket, clock, deadline_after(clock.now(), timeout));
  }
};

Agent::Agent(const Config& config, const mqtt::ConnectOptions& connect, TransportFactory& factory,
             const Clock& clock, Persistence persistence) noexcept
    : impl_(new Impl(config, connect, factory, clock, persistence)) {}

Agent::~Agent() {
  stop();
}

void Agent::set_status_handler(StatusHandler handler) noexcept {
  impl_->core.set_status_handler(handler);
}

bool Agent::start() noexcept {
  if (impl_->started.load() || !impl_->wakeup.ok()) return false;
  if (!impl_->core.start()) return false;
  impl_->started.store(true);
  if (!impl_->thread.start(&Impl::thread_main, impl_.get(), "edgekit-agent")) {
    impl_->core.stop();
    return false;
  }
  return true;
}

void Agent::stop() noexcept {
  if (!impl_->started.load()) return;
  impl_->stop_requested.store(true);
  impl_->wakeup.arm();  // make sure the wake reaches a waiter that is about to sleep
  impl_->wakeup.wake();
  impl_->thread.join();
}

void Agent::reconnect() noexcept {
  impl_->core.reconnect();
}

Result<void> Agent::publish(const mqtt::Publish& message, CompletionHandler done) noexcept {
  return impl_->core.publish(message, done);
}

Result<void> Agent::publish(const mqtt::Publish& message, CompletionHandler done,
                            PublishWait wait) noexcept {
  Admission admission;
  if (wait.timeout > Duration::zero()) {
    // The agent thread is the one that frees slots and connects: it must not wait for them.
    if (impl_->thread.is_current()) return fail(Error{Errc::WouldDeadlock});
    admission.clock = &impl_->clock;
    admission.deadline = deadline_after(impl_->clock.now(), wait.timeout);
    admission.until_connected = wait.until_connected;
  }
  EDGEKIT_TRY(impl_->core.post_publish(message, done, false, admission));
  return {};
}

Result<Outcome> Agent::publish_and_wait(const mqtt::Publish& message, Duration timeout) noexcept {
  if (impl_->thread.is_current()) return fail(Error{Errc::WouldDeadlock});
  return impl_->wait(impl_->core.post_publish(message, {}, true, {}), timeout);
}

Result<void> Agent::subscribe(std::string_view filter, mqtt::SubscribeOptions options,
                              MessageHandler handler, CompletionHandler done) noexcept {
  return impl_->core.subscribe(filter, options, handler, done);
}

Result<Outcome> Agent::subscribe_and_wait(std::string_view filter, mqtt::SubscribeOptions options,
                                          MessageHandler handler, Duration timeout) noexcept {
  if (impl_->thread.is_current()) return fail(Error{Errc::WouldDeadlock});
  return impl_->wait(impl_->core.post_subscribe(filter, options, handler, {}, true), timeout);
}

Result<void> Agent::unsubscribe(std::string_view filter, CompletionHandler done) noexcept {
  return impl_->core.unsubscribe(filter, done);
}

Result<Outcome> Agent::unsubscribe_and_wait(std::string_view filter, Duration timeout) noexcept {
  if (impl_->thread.is_current()) return fail(Error{Errc::WouldDeadlock});
  return impl_->wait(impl_->core.post_unsubscribe(filter, {}, true), timeout);
}

Result<void> Agent::disconnect(CompletionHandler done) noexcept {
  return impl_->core.disconnect(done);
}

Result<Outcome> Agent::disconnect_and_wait(Duration timeout) noexcept {
  if (impl_->thread.is_current()) return fail(Error{Errc::WouldDeadlock});
  return impl_->wait(impl_->core.post_disconnect({}, true), timeout);
}

Result<void> Agent::expect_response(std::string_view correlation, Duration timeout,
                                    ResponseHandler handler) noexcept {
  return impl_->core.expect_response(correlation, timeout, handler);
}

bool Agent::deliver_response(std::string_view correlation, const mqtt::Publish& response) noexcept {
  return impl_->core.deliver_response(correlation, response);
}

ConnectionState Agent::state() const noexcept {
  return impl_->core.state();
}

Stats Agent::stats() const noexcept {
  return impl_->core.stats();
}

}  // namespace edgekit::agent
