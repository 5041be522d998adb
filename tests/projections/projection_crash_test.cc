// Kill a process that runs the order status projection live (while it also writes orders) at
// random moments, at least 20 times. After each kill the projection, reopened, must equal a fresh
// fold of the log at its checkpoint (nothing skipped, nothing applied twice), and again at the
// head after catching up.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "ledger_fixture.h"
#include "projections/history.h"
#include "tests/support/child_process.h"

namespace ledger::projections {
namespace {

using namespace std::chrono_literals;

// Starts the worker and waits until it says it is ready (the ledger is open and the runner live).
pid_t StartWorker(const testing::LedgerFixture& ledger, uint64_t seed, const std::string& prefix) {
  return ledger::testing::SpawnWhenReady({LEDGER_PROJECTION_CRASH_WORKER, ledger.log_path(),
                                          ledger.state_path(), std::to_string(seed), prefix});
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
    REQUIRE(ledger::testing::KillAndReap(child));

    ledger.Open();
    {
      auto runner = ledger.OrderStatusRunner({.batch_events_max = 64, .idle_wait = 5ms});
      INFO("round " << round << ", checkpoint " << runner->checkpoint() << ", head "
                    << ledger.store().HeadPosition());
      REQUIRE(runner->checkpoint() <= ledger.store().HeadPosition());
      const bool behind = runner->checkpoint() < ledger.store().HeadPosition();
      if (behind) ++checkpoints_behind_head;
      CheckAgainstFold(ledger, *runner);  // At the checkpoint the kill left.
      REQUIRE(runner->CatchUp().has_value());
      REQUIRE(runner->checkpoint() == ledger.store().HeadPosition());
      // At the head; when the checkpoint was there already, the check above was this one.
      if (behind) CheckAgainstFold(ledger, *runner);
    }
    ledger.Close();
  }
  // The kills must have caught the projection behind the log at least sometimes, or the test
  // proved little.
  CHECK(checkpoints_behind_head > 0);
}

}  // namespace
}  // namespace ledger::projections
