// run_command: the command gets the simulator's standard streams and nothing else.

#include "command.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace edgekit::sim {
namespace {

TEST(RunCommand, TheCommandDoesNotInheritTheSimulatorsDescriptors) {
  // A socket without close-on-exec, as Asio makes them.
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(s, 3);
  ASSERT_EQ(::fcntl(s, F_GETFD) & FD_CLOEXEC, 0);
  const std::string fd = std::to_string(s);
  // The shell looks at its own descriptors ($$ is the shell itself).
  EXPECT_EQ(run_command("test ! -e /proc/$$/fd/" + fd), 0) << "descriptor " << fd << " inherited";
  EXPECT_EQ(run_command("test -e /proc/$$/fd/1"), 0);  // standard output kept
  ::close(s);
}

TEST(RunCommand, ReturnsTheExitStatus) {
  EXPECT_EQ(run_command("exit 0"), 0);
  EXPECT_EQ(run_command("exit 7"), 7);
  EXPECT_EQ(run_command("kill -9 $$"), -1);  // ended by a signal
}

}  // namespace
}  // namespace edgekit::sim
