#pragma once
/// \file
/// Pre-provisioning hooks (aws-iot-protocols.md 4.3): before RegisterThing runs a template that
/// names one, fleetd asks the hook whether to provision and with which parameter overrides. AWS
/// calls a Lambda; fleetd calls a local executable (input on stdin, answer on stdout) or an
/// HTTP(S) URL (input POSTed as JSON, answer in the body), with AWS's input fields
/// (claimCertificateId, certificateId, certificatePem, templateArn, clientId, parameters) and
/// output (allowProvisioning, parameterOverrides).
///
/// AWS's rule: a hook that fails, answers late (over 5 s) or does not answer allowProvisioning
/// true denies provisioning. Each call runs on a worker thread so that fleetd's event loop never
/// waits for it; the verdict is posted back to the loop.
///
/// Thread safety: `HookRunner` is used from the io thread; its workers touch only their own data
/// and post their result to the io_context.

#include <asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace edgekit::fleetd::provisioning {

/// AWS's limit on a hook's answer time.
inline constexpr std::chrono::milliseconds kHookTimeLimit{5000};
/// The largest answer read from a hook.
inline constexpr std::size_t kMaxHookAnswer = 64 * 1024;

struct HookInput {
  std::string claim_certificate_id;
  std::string certificate_id;
  std::string certificate_pem;
  std::string template_arn;  ///< arn:aws:iot:local:000000000000:provisioningtemplate/<name>
  std::string client_id;
  std::map<std::string, std::string> parameters;
};

struct HookVerdict {
  bool allow = false;
  std::map<std::string, std::string> parameter_overrides;
  std::string problem;  ///< why it denied (for the log), empty when allowed
};

/// The JSON document a hook receives.
[[nodiscard]] std::string hook_input_json(const HookInput& in);
/// Reads a hook's answer: allowed only with `"allowProvisioning": true`; parameterOverrides
/// must be a map of strings when present. Anything else denies, naming why.
[[nodiscard]] HookVerdict read_hook_answer(std::string_view body);

/// Calls `target` (an http:// or https:// URL, or an absolute path to an executable) with
/// `input`, waiting at most `limit`. Blocking: call it from a worker thread only. A child that
/// outlives `limit` is killed.
[[nodiscard]] HookVerdict call_hook(const std::string& target, const std::string& input,
                                    std::chrono::milliseconds limit = kHookTimeLimit);

/// Runs hook calls on worker threads and delivers each verdict on the io_context's thread.
class HookRunner {
 public:
  using Done = std::function<void(HookVerdict)>;
  explicit HookRunner(asio::io_context& io, std::chrono::milliseconds limit = kHookTimeLimit)
      : io_(io), limit_(limit) {}
  /// Waits for the workers still running (each ends within the time limit); their verdicts are
  /// dropped.
  ~HookRunner();
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;

  /// Starts the call; `done` runs later on the io thread (never inside `run`). A verdict that
  /// comes after the runner is destroyed is dropped.
  void run(std::string target, std::string input, Done done);

 private:
  // Shared with the (detached) workers: the runner's destructor waits until none is running.
  struct Shared {
    std::mutex mutex;
    std::condition_variable idle;
    std::size_t running = 0;
    bool alive = true;
  };
  asio::io_context& io_;
  std::chrono::milliseconds limit_;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

}  // namespace edgekit::fleetd::provisioning
