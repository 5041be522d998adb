// Child processes for the crash tests: spawned with a pipe to report on, and killed with
// SIGKILL at a moment of the test's choosing. Catch2 assertions report every failed system call.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

extern char** environ;

namespace ledger::testing {

struct SpawnedChild {
  pid_t pid = 0;
  int pipe_read_fd = -1;  // The read end of the child's `report_fd`; the caller closes it.
};

// Starts `arguments[0]` with `arguments` as its argv and the write end of a fresh pipe as its
// file descriptor `report_fd` (STDOUT_FILENO, or 3 to keep its output apart). The child
// inherits nothing else of the pipe.
inline SpawnedChild SpawnReporting(std::vector<std::string> arguments, int report_fd) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t actions;
  REQUIRE(posix_spawn_file_actions_init(&actions) == 0);
  // dup2 clears close-on-exec on the copy: the child gets the write end as report_fd only.
  REQUIRE(posix_spawn_file_actions_adddup2(&actions, fds[1], report_fd) == 0);
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  SpawnedChild child;
  const int spawned = posix_spawn(&child.pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (spawned != 0) ::close(fds[0]);
  REQUIRE(spawned == 0);
  child.pipe_read_fd = fds[0];
  return child;
}

// Starts a worker and waits until it writes "ready\n" on its standard output.
inline pid_t SpawnWhenReady(std::vector<std::string> arguments) {
  const SpawnedChild child = SpawnReporting(std::move(arguments), STDOUT_FILENO);
  char ready[6] = {};
  const ssize_t got = ::read(child.pipe_read_fd, ready, sizeof ready);
  ::close(child.pipe_read_fd);
  REQUIRE(got == 6);
  return child.pid;
}

// SIGKILLs `child` and reaps it; true when the kill is what ended it (it may have exited
// first).
inline bool KillAndReap(pid_t child) {
  ::kill(child, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

}  // namespace ledger::testing
