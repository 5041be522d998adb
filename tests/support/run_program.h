// Running one of our programs to completion as a shell would: its standard output and error
// captured, and its exit code. For the tests of ledgerctl and of ledgerd's start-up.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ledger::testing {

struct ProgramRun {
  int exit_code = -1;  // 128 + the signal when a signal ended it.
  std::string out;
  std::string err;
};

// Environment changes for the child: a variable set to a value, or unset (nullopt).
using EnvironmentChanges = std::vector<std::pair<std::string, std::optional<std::string>>>;

// Runs `program` with `args` and waits for it to end. Kills it (SIGKILL) after `timeout`, or as
// soon as `stop_when` returns true for its standard output so far.
inline ProgramRun RunProgram(const std::string& program, const std::vector<std::string>& args,
                             const EnvironmentChanges& environment = {},
                             std::chrono::milliseconds timeout = std::chrono::seconds(20),
                             const std::function<bool(const std::string&)>& stop_when = {}) {
  int out[2], err[2];
  REQUIRE(::pipe(out) == 0);
  REQUIRE(::pipe(err) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    for (int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    for (const auto& [name, value] : environment) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
    std::vector<char*> argv{const_cast<char*>(program.c_str())};
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  ProgramRun run;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool out_open = true, err_open = true, killed = false;
  while (out_open || err_open) {
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    ::poll(fds, 2, 50);
    char buffer[4096];
    if (out_open && (fds[0].revents & (POLLIN | POLLHUP)) != 0) {
      const ssize_t n = ::read(out[0], buffer, sizeof(buffer));
      if (n <= 0) out_open = false;
      if (n > 0) run.out.append(buffer, static_cast<size_t>(n));
    }
    if (err_open && (fds[1].revents & (POLLIN | POLLHUP)) != 0) {
      const ssize_t n = ::read(err[0], buffer, sizeof(buffer));
      if (n <= 0) err_open = false;
      if (n > 0) run.err.append(buffer, static_cast<size_t>(n));
    }
    const bool stop = stop_when && stop_when(run.out);
    if (!killed && (stop || std::chrono::steady_clock::now() > deadline)) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

}  // namespace ledger::testing
