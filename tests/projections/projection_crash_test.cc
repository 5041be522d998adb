// Kill a process that runs the order status projection live (while it also writes orders) at
// random moments, at least 20 times. After each kill the projection, reopened, must equal a fresh
// fold of the log at its checkpoint (nothing skipped, nothing applied twice), and again at the
// head after catching up.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "ledger_fixture.h"
#include "projections/history.h"

extern char** environ;

namespace ledger::projections {
namespace {

using namespace std::chrono_literals;

// Starts the worker and waits until it says it is ready (the ledger is open and the runner live).
pid_t StartWorker(const testing::LedgerFixture& ledger, uint64_t seed, const std::string& prefix) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  const std::string seed_text = std::to_string(seed);
  std::vector<std::string> arguments = {LEDGER_PROJECTION_CRASH_WORKER, ledger.log_path(),
                                        ledger.state_path(), seed_text, prefix};
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  pid_t child = 0;
  const int spawned =
      posix_spawn(&child, LEDGER_PROJECTION_CRASH_WORKER, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  REQUIRE(spawned == 0);
  char ready[6] = {};
  const ssize_t got = ::read(pipe_fds[0], ready, 6);
  ::close(pipe_fds[0]);
  REQUIRE(got == 6);
  return child;
}

void CheckAgainstFold(testing::LedgerFixture& ledger, ProjectionRunner& runner) {
  auto report = CheckOrderStatus(ledger.store(), runner.View());
  REQUIRE(report.has_value());
  for (const std::string& difference : report->differences) UNSCOPED_INFO(difference);
  REQUIRE(report->ok());
}

TEST_CASE("a projection killed at random moments equals a fresh fold after restart",
          "[projections][crash]") {
  testing::LedgerFixture ledger;
  ledger.Close();
  std::mt19937_64 random(20261122);
  const int rounds = 22;
  uint64_t checkpoints_behind_head = 0;
  for (int round = 0; round < rounds; ++round) {
    const pid_t child = StartWorker(ledger, random(), "R" + std::to_string(round));
    const auto run_for = std::chrono::milliseconds(
        eventstore::testing::Scaled(30, 120) + random() % eventstore::testing::Scaled(250, 500));
    std::this_thread::sleep_for(run_for);
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));

    ledger.Open();
    {
      auto runner = ledger.OrderStatusRunner({.batch_events_max = 64, .idle_wait = 5ms});
      INFO("round " << round << ", checkpoint " << runner->checkpoint() << ", head "
                    << ledger.store().HeadPosition());
      REQUIRE(runner->checkpoint() <= ledger.store().HeadPosition());
      if (runner->checkpoint() < ledger.store().HeadPosition()) ++checkpoints_behind_head;
      CheckAgainstFold(ledger, *runner);  // At the checkpoint the kill left.
      REQUIRE(runner->CatchUp().has_value());
      CheckAgainstFold(ledger, *runner);  // At the head.
    }
    ledger.Close();
  }
  // The kills must have caught the projection behind the log at least sometimes, or the test
  // proved little.
  CHECK(checkpoints_behind_head > 0);
}

}  // namespace
}  // namespace ledger::projections
