#pragma once
/// \file
/// What fleetd's HTTP interfaces share (the broker's decision interface, hooks/, and the admin
/// API, admin/): bearer-token files and their constant-time check, JSON error bodies, and the
/// hand-off of store work from an HTTP thread to the io_context thread that owns the store.

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "store/errc.hpp"

namespace httplib {
class Server;
struct Response;
}  // namespace httplib

namespace edgekit::fleetd {

/// The token in `path`, created (32 random bytes, hex, mode 0600) when the file does not exist.
/// Errors: Unavailable when it cannot be read or written; InvalidArgument when it is empty or
/// readable by others than its owner (a secret that others can read is no secret).
[[nodiscard]] Res<std::string> load_or_create_token(const std::string& path);

namespace http {

/// True when `authorization` is exactly "Bearer <token>". Constant time in the token's bytes
/// (a timing difference must not reveal how much of a guess was right).
[[nodiscard]] bool bearer_matches(const std::string& authorization, const std::string& token);

/// {"code":"...","message":"..."} — the body of every error answer.
[[nodiscard]] std::string error_json(std::string_view code, std::string_view message);

/// Sets `status` and a JSON body.
void reply(httplib::Response& res, int status, std::string body);
/// An error answer: `status` and error_json(code, message).
void reply_error(httplib::Response& res, int status, std::string_view code,
                 std::string_view message);

/// Binds `server` to `host:port` (0: any free port). Returns the bound port; Unavailable with
/// `what` in the message when the address is in use or unusable.
[[nodiscard]] Res<std::uint16_t> bind(httplib::Server& server, const std::string& host,
                                      std::uint16_t port, std::string_view what);

/// Starts `server.listen_after_bind()` on a new thread and returns once the server is running
/// (or listening already ended). httplib's stop() does nothing until listen has started, so a
/// stop that came right after start would otherwise leave the listen thread running forever and
/// the join in stop() would hang. Unavailable (naming `what`) when listening ended before it
/// ran: the thread is then already joined and nothing serves.
[[nodiscard]] Res<std::thread> serve(httplib::Server& server, std::string_view what);

/// Runs `f` on `io`'s thread (which owns the store: a Store is single-threaded) and waits up to
/// `timeout` for its result. nullopt when it did not run in time (the loop is stopped or busy);
/// `f` may then still run later, so it must own what it touches (capture by value, or state that
/// outlives the io_context).
template <class F>
auto run_on(asio::io_context& io, F&& f, std::chrono::milliseconds timeout)
    -> std::optional<decltype(f())> {
  using R = decltype(f());
  auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
  auto result = task->get_future();
  asio::post(io, [task] { (*task)(); });
  if (result.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  return result.get();
}

}  // namespace http
}  // namespace edgekit::fleetd
